// fctf admin UI: small enhancements only; every form works without this file.
(function () {
  "use strict";
  // Confirm dangerous actions.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
  // "Select all" checkboxes of bulk tables.
  document.querySelectorAll("input.select-all").forEach(function (box) {
    box.addEventListener("change", function () {
      var form = box.getAttribute("data-form");
      document.querySelectorAll('input[name="ids"][form="' + form + '"]').forEach(function (row) {
        row.checked = box.checked;
      });
    });
  });
  // Auto-refresh of log views: reload the page's <pre class="log"> every N seconds.
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (seconds > 0) {
    window.setInterval(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("pre.log").forEach(function (pre) {
            var fresh = doc.getElementById(pre.id);
            if (fresh) { pre.textContent = fresh.textContent; }
          });
        })
        .catch(function () {});
    }, seconds * 1000);
  }
})();
