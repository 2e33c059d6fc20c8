// The Photos page: a file larger than the upload limit is refused here, with the size
// and the limit, before it is sent (the server would cut such a body off with a bare
// "Content Too Large"). The limit is the input's data-max-bytes; the server checks again.
(function () {
  "use strict";
  function megabytes(bytes) { return (bytes / (1024 * 1024)).toFixed(1) + " MB"; }
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    var limit = parseInt(input.getAttribute("data-max-bytes"), 10);
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var message = "";
      if (file && limit > 0 && file.size > limit) {
        message = file.name + ": " + megabytes(file.size) + " is more than the limit of " +
          megabytes(limit) + "; make the photo smaller and try again.";
      }
      input.setCustomValidity(message);
      if (message) { input.reportValidity(); }
    });
  });
})();
