/* Figures page: follow the progress of queued snapshots without reloading by hand.
   The page works without it (a "refresh" link in <noscript>). Strict CSP: no inline script. */
(function () {
  "use strict";

  var FIRST_DELAY_MS = 1500;
  var MAX_DELAY_MS = 10000;

  function follow(item) {
    var url = item.getAttribute("data-status-url");
    var text = item.querySelector(".status-text");
    var delay = FIRST_DELAY_MS;
    var failures = 0;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (status) {
          failures = 0;
          item.className = "state-" + status.state;
          if (text && text.textContent !== status.label) { text.textContent = status.label; }
          if (status.done && item.getAttribute("data-follow") === "true") {
            // The figures someone asked for are ready: show them.
            window.location.assign(status.url);
            return;
          }
          if (status.done && text) {
            var link = document.createElement("a");
            link.href = status.url;
            link.textContent = item.getAttribute("data-show-label");
            text.appendChild(document.createTextNode(" "));
            text.appendChild(link);
          }
          if (!status.finished) {
            delay = Math.min(MAX_DELAY_MS, Math.round(delay * 1.3));
            window.setTimeout(poll, delay);
          }
        })
        .catch(function () {
          // A network hiccup or a signed-out session: keep trying, more slowly, a few times.
          failures += 1;
          if (failures < 6) { window.setTimeout(poll, MAX_DELAY_MS); }
        });
    }

    window.setTimeout(poll, delay);
  }

  function ready() {
    document.querySelectorAll("[data-status-url]").forEach(follow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
