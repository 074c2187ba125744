// The widget's own behaviour: talk to the embedding page (only at the origin the server
// checked), move focus to each new step, and make the month grid navigable with arrow keys.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  var parentOrigin = document.body.dataset.parentOrigin;
  var embedded = parentOrigin && window.parent !== window;

  function post(message) {
    if (embedded) window.parent.postMessage(message, parentOrigin);
  }

  var widget = document.getElementById("widget");
  var lastHeight = 0;
  function reportHeight() {
    var height = Math.ceil(widget.getBoundingClientRect().height);
    if (height !== lastHeight) {
      lastHeight = height;
      post({ type: "mais:resize", height: height });
    }
  }

  var announced = {};
  function afterStep(container, moveFocus) {
    var navigate = container.querySelector("[data-navigate]");
    if (navigate) post({ type: "mais:navigate", url: navigate.dataset.navigate });
    var booked = container.querySelector("[data-booked]");
    if (booked && !announced[booked.dataset.booked]) {
      announced[booked.dataset.booked] = true;
      post({ type: "mais:booked", reference: booked.dataset.booked });
    }
    setUpCalendar(container);
    if (moveFocus) {
      var target = container.querySelector("[aria-invalid=true]") || container.querySelector(".step-title");
      if (target) target.focus();
    }
    reportHeight();
  }

  // One day of the grid is in the tab order; arrows move it (a roving tabindex).
  function setUpCalendar(container) {
    var grid = container.querySelector(".calendar");
    if (!grid) return;
    var days = Array.prototype.slice.call(grid.querySelectorAll(".day"));
    var start = grid.querySelector(".day.selected") || grid.querySelector(".day.open") || days[0];
    days.forEach(function (day, index) {
      day.dataset.index = index;
      day.tabIndex = day === start ? 0 : -1;
    });
    grid.addEventListener("keydown", function (event) {
      var current = event.target.closest(".day");
      if (!current) return;
      var index = Number(current.dataset.index);
      var moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 };
      var next;
      if (event.key in moves) next = index + moves[event.key];
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = days.length - 1;
      else return;
      event.preventDefault();
      next = Math.max(0, Math.min(days.length - 1, next));
      current.tabIndex = -1;
      days[next].tabIndex = 0;
      days[next].focus();
    });
  }

  if (window.ResizeObserver) new ResizeObserver(reportHeight).observe(widget);
  window.addEventListener("load", reportHeight);

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    var isPoll = trigger && trigger.hasAttribute && trigger.hasAttribute("data-poll");
    if (event.detail.target && event.detail.target.id === "step") afterStep(event.detail.target, !isPoll);
    else reportHeight();
  });
  afterStep(document.getElementById("step"), false);
})();
