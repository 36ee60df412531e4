// Polls the sign-in status and continues by itself once the chat
// confirmed. Without JavaScript the page's Continue link does the same.
(function () {
  "use strict";
  var main = document.getElementById("signin");
  if (!main) { return; }
  var statusURL = main.getAttribute("data-status-url");
  var continueURL = main.getAttribute("data-continue-url");
  var every = parseInt(main.getAttribute("data-poll-ms"), 10) || 2000;
  function show(id, on) { var el = document.getElementById(id); if (el) { el.hidden = !on; } }
  // With script the page goes on by itself; say so instead of asking
  // for Continue.
  show("hint-nojs", false);
  show("hint-js", true);
  function poll() {
    fetch(statusURL, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { status: r.status === 429 ? "pending" : "expired" }; })
      .then(function (s) {
        if (s.status === "confirmed" || s.status === "expired") {
          window.location.assign(continueURL);
          return;
        }
        if (s.status === "declined") {
          show("waiting", false);
          show("declined", true);
          window.location.assign(continueURL);
          return;
        }
        setTimeout(poll, every);
      })
      .catch(function () { setTimeout(poll, every * 2); });
  }
  setTimeout(poll, every);
})();
