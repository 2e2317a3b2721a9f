// fctf web UI: optional live behaviour. Every action works without this script.
(function () {
  "use strict";

  // Countdowns: <span class="countdown" data-seconds="N">…</span>
  function format(seconds, done) {
    if (seconds <= 0) return done || "expired";
    if (seconds >= 86400) return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
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
      node.textContent = format(left, node.getAttribute("data-done"));
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
            if (fresh) { region.innerHTML = fresh.innerHTML; copyButtons(region); }
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

  // Copy buttons next to <code data-copy> (connection info). Clipboard API where the page is
  // a secure context, else a selection and execCommand("copy").
  function copyText(node, done) {
    var text = node.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
  }
  function copyButtons(root) {
    var nodes = root.querySelectorAll("code[data-copy]");
    Array.prototype.forEach.call(nodes, function (node) {
      var next = node.nextElementSibling;
      if (next && next.classList.contains("copy")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      button.addEventListener("click", function () {
        copyText(node, function () {
          button.textContent = "Copied";
          button.classList.add("done");
          setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 1500);
        });
      });
      node.parentNode.insertBefore(button, node.nextSibling);
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
          time.textContent = String(data.date || "").replace("T", " ").replace(/Z$/, "").slice(0, 19);
          var empty = document.getElementById("notification-empty");
          if (empty) empty.remove();
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
    copyButtons(document);
    confirmations();
    live();
  });
})();
