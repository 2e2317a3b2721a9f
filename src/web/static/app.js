// fctf web UI: optional live behaviour. Every action works without this script.
(function () {
  "use strict";

  // Countdowns: <span class="countdown" data-seconds="N">…</span>
  function format(seconds) {
    if (seconds <= 0) return "expired";
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h > 0 ? h + ":" + two(m) : m) + ":" + two(s);
  }
  function tick() {
    var nodes = document.querySelectorAll(".countdown[data-seconds]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var left = parseInt(node.getAttribute("data-seconds"), 10) - 1;
      if (isNaN(left)) continue;
      if (left < 0) left = 0;
      node.setAttribute("data-seconds", String(left));
      node.textContent = format(left);
    }
  }

  // Regions refreshed in place: <div id="x" data-refresh="15">…</div>
  function refreshRegions() {
    var regions = document.querySelectorAll("[data-refresh][id]");
    Array.prototype.forEach.call(regions, function (region) {
      var every = parseInt(region.getAttribute("data-refresh"), 10) * 1000;
      if (!every || every < 2000) return;
      setInterval(function () {
        if (document.hidden) return;
        fetch(location.href, { credentials: "same-origin", headers: { "X-Fctf-Refresh": "1" } })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (!html) return;
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.getElementById(region.id);
            if (fresh) region.innerHTML = fresh.innerHTML;
          })
          .catch(function () {});
      }, every);
    });
  }

  // Confirmation prompts: <form data-confirm="text">
  function confirmations() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var text = form && form.getAttribute && form.getAttribute("data-confirm");
      if (text && !window.confirm(text)) event.preventDefault();
    });
  }

  // Live notifications over Server-Sent Events: <body data-events="/events">
  function toast(title, content) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var node = document.createElement("div");
    node.className = "toast";
    var strong = document.createElement("strong");
    strong.textContent = title || "Notification";
    var body = document.createElement("span");
    body.textContent = content || "";
    node.appendChild(strong);
    node.appendChild(body);
    box.appendChild(node);
    setTimeout(function () { node.remove(); }, 12000);
  }
  function live() {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    source.addEventListener("notification", function (event) {
      try {
        var data = JSON.parse(event.data);
        toast(data.title, data.content);
        var list = document.getElementById("notification-list");
        if (list) {
          var item = document.createElement("li");
          var time = document.createElement("time");
          time.textContent = data.date || "";
          var text = document.createElement("span");
          var title = document.createElement("strong");
          title.textContent = data.title || "";
          text.appendChild(title);
          text.appendChild(document.createTextNode(" " + (data.content || "")));
          item.appendChild(time);
          item.appendChild(text);
          list.insertBefore(item, list.firstChild);
        }
      } catch (e) { /* ignore malformed events */ }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setInterval(tick, 1000);
    refreshRegions();
    confirmations();
    live();
  });
})();
