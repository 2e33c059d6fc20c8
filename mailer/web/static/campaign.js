// Campaign page: follow the campaign until it is finished, without a reload by hand.
// The page names its status URL and stamp (data-status-url, data-stamp on #campaign-live);
// every 2 s the stamp is asked for, and when it changed the page is fetched again and
// #campaign-live swapped for the fresh one. Stops once the campaign is final. As in
// refresh.js, nothing is swapped while focus is inside it (a keyboard or screen reader
// user is not moved, a time being typed is kept): the swap waits for focus to leave.
(function () {
  "use strict";
  var INTERVAL = 2000;
  function live() { return document.getElementById("campaign-live"); }
  var root = live();
  if (!root || root.getAttribute("data-final") === "true") { return; }
  var url = root.getAttribute("data-status-url");

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("campaign-live");
    var current = live();
    if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
    return fresh;
  }

  function poll() {
    var finished = false;
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        var current = live();
        if (!data || !current || data.stamp === current.getAttribute("data-stamp")) {
          finished = Boolean(data && data.final);
          return null;
        }
        if (current.contains(document.activeElement) && document.activeElement !== document.body) {
          return null;  // asked again on the next tick
        }
        return fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) {
            var fresh = html ? swap(html) : null;
            finished = Boolean(fresh && fresh.getAttribute("data-final") === "true");
          });
      })
      .catch(function () { /* server restarting: try again on the next tick */ })
      .finally(function () { if (!finished) { window.setTimeout(poll, INTERVAL); } });
  }
  window.setTimeout(poll, INTERVAL);
})();
