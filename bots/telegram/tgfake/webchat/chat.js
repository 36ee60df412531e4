// The web chat without reloads: ask for the chat's version every second
// and swap in the messages when it changed. Without script the page works
// the same; the Refresh link shows new messages.
(function () {
  "use strict";
  var box = document.getElementById("messages");
  if (!box || !window.fetch) { return; }
  var version = box.getAttribute("data-version");
  var refresh = document.getElementById("refresh");
  if (refresh) { refresh.hidden = true; }
  function toBottom() { window.scrollTo(0, document.body.scrollHeight); }
  toBottom();
  var text = document.getElementById("text");
  if (text && !location.hash) { text.focus(); }
  function poll() {
    fetch("/chat/version", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (v) {
        if (v === version) { return null; }
        return fetch("/chat/messages", { credentials: "same-origin", cache: "no-store" })
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) { version = v; box.innerHTML = html; box.setAttribute("data-version", v); toBottom(); });
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
