/* Small enhancements; every page works without them (strict CSP: no inline script). */
(function () {
  "use strict";

  // Status form: show the intermediary and "duplicate of" fields only for the moves they apply to.
  // A hidden field is also disabled, so that a value left in it is not sent.
  function setUpStatusForm(form) {
    var select = form.querySelector("select[name=to_status]");
    if (!select) { return; }
    var viaStatuses = (select.getAttribute("data-via-statuses") || "").split(" ");
    var via = form.querySelector("#id_via_field");
    var duplicate = form.querySelector("#id_duplicate_of_field");
    function show(wrapper, visible) {
      if (!wrapper) { return; }
      // A field with an error message stays visible, so the message is never hidden.
      if (wrapper.classList.contains("has-error")) { visible = true; }
      wrapper.hidden = !visible;
      wrapper.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !visible; });
    }
    function update() {
      show(via, viaStatuses.indexOf(select.value) !== -1);
      show(duplicate, select.value === "duplicate");
    }
    select.addEventListener("change", update);
    update();
  }

  // Case list: one box ticks or clears every case on the page (the boxes work one by one without it).
  function setUpSelectAll(box) {
    var table = box.closest("table");
    if (!table) { return; }
    var boxes = table.querySelectorAll("input[type=checkbox][name=case]");
    function sync() {
      var ticked = 0;
      boxes.forEach(function (item) { if (item.checked) { ticked += 1; } });
      box.checked = ticked > 0 && ticked === boxes.length;
      box.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    box.hidden = false;
    box.addEventListener("change", function () {
      boxes.forEach(function (item) { item.checked = box.checked; });
    });
    boxes.forEach(function (item) { item.addEventListener("change", sync); });
    sync();
  }

  // A secret shown once: a button copies it (without script, select the text).
  function setUpCopyButton(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field || !navigator.clipboard) { return; }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(function () {
        button.textContent = button.getAttribute("data-copied") || label;
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
    field.addEventListener("focus", function () { field.select(); });
  }

  function ready() {
    document.querySelectorAll("form.status-form").forEach(setUpStatusForm);
    document.querySelectorAll("input.select-all").forEach(setUpSelectAll);
    document.querySelectorAll("button.copy-button").forEach(setUpCopyButton);
    // After a refused form, move the keyboard focus to the summary of what to correct.
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
