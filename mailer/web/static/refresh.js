// Live pages (a campaign going out): fetch the page again every few seconds and swap in
// the new content of <main>, instead of a <meta http-equiv="refresh"> that reloads the
// whole page, loses the reader's place and focus, and fails WCAG 2.2.1 (axe meta-refresh).
// The script tag names the interval in data-seconds; polling stops once the fresh page
// no longer asks for it (the campaign finished). Content is not swapped while focus is
// inside <main>, so a keyboard or screen reader user is not moved.
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = parseInt(script && script.getAttribute("data-seconds"), 10);
  if (!(seconds > 0)) { seconds = 5; }
  function tick() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return true; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var main = document.querySelector("main");
        var next = fresh.querySelector("main");
        var focused = main && main.contains(document.activeElement);
        if (main && next && !focused && main.innerHTML !== next.innerHTML) {
          main.innerHTML = next.innerHTML;
        }
        return focused || fresh.querySelector("script[src='/static/refresh.js']") !== null;
      })
      .catch(function () { return true; /* server restarting: try again */ })
      .then(function (again) { if (again) { window.setTimeout(tick, seconds * 1000); } });
  }
  window.setTimeout(tick, seconds * 1000);
})();
