// Portal behaviour without inline scripts (the CSP forbids them).
(function () {
  "use strict";

  // Copy buttons: the text stays selectable when the clipboard is unavailable.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    var status = button.parentElement.querySelector(".copy-status");
    var say = function (text) { if (status) status.textContent = text; };
    source.focus();
    source.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(
        function () { say("Copied."); },
        function () { say("Press Ctrl+C (or ⌘C) to copy the selected text."); }
      );
    } else {
      say("Press Ctrl+C (or ⌘C) to copy the selected text.");
    }
  });

  // Confirmation before destructive actions; a second submit of the same form is ignored
  // and its buttons are disabled while the request runs (cancel/refund must be pressed once).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-disable-on-submit")) {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "1";
      window.setTimeout(function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      }, 0);
    }
  });
})();
