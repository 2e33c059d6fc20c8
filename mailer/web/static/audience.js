// New campaign: refresh the recipient count as boxes are ticked, without a click.
// Progressive: the "Count recipients" button does the same without JavaScript.
(function () {
  "use strict";
  var form = document.getElementById("campaign-form");
  var target = document.getElementById("audience-count");
  if (!form || !target) { return; }
  var timer = null;
  function refresh() {
    var data = new FormData(form);
    fetch("/campaigns/new", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("audience-count");
        if (fresh) { target.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* keep the last count; the button still works */ });
  }
  form.addEventListener("change", function (event) {
    if (event.target && (event.target.type === "checkbox" || event.target.name === "languages")) {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    }
  });
})();
