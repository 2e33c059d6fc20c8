// Live preview: reload the page when the content file or a template changes.
// The page names its stamp URL in data-stamp-url; nothing else runs on our pages.
(function () {
  "use strict";
  var root = document.querySelector("[data-stamp-url]");
  if (!root) { return; }
  var url = root.getAttribute("data-stamp-url");
  var seen = root.getAttribute("data-stamp");
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && data.stamp && data.stamp !== seen) { window.location.reload(); }
      })
      .catch(function () { /* server restarting: try again on the next tick */ })
      .finally(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
})();
