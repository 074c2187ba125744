// Signup: the new business's time zone defaults to the browser's. Without JavaScript (or without
// Intl) the hidden field keeps UTC, and the owner can choose the zone in settings.
(function () {
  "use strict";
  var field = document.querySelector("input[data-browser-time-zone]");
  if (!field || !window.Intl || !Intl.DateTimeFormat) return;
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) field.value = zone;
  } catch (error) {
    // An old browser: UTC stays.
  }
})();
