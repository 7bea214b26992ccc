/* The web import's progress bar: polls the import's progress and reloads the page when it has finished.
   Without it the page offers a "Refresh" link (no meta refresh: a page must not reload by itself on a timer). */
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var text = box.querySelector("[data-progress-text]");
  var url = box.getAttribute("data-progress-url");
  var template = box.getAttribute("data-progress-template") || "";
  var refresh = box.querySelector("[data-progress-refresh]");
  if (refresh) { refresh.hidden = true; }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (answer) {
        if (!answer.working) { window.location.reload(); return; }
        bar.value = answer.percent;
        bar.textContent = answer.percent + "%";
        if (text) {
          text.textContent = template.replace("%(percent)s", answer.percent)
            .replace("%(done)s", answer.done.toLocaleString(document.documentElement.lang))
            .replace("%(total)s", answer.total.toLocaleString(document.documentElement.lang));
        }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { if (refresh) { refresh.hidden = false; } });
  }
  window.setTimeout(poll, 1000);
})();
