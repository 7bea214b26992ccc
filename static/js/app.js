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

  function ready() {
    document.querySelectorAll("form.status-form").forEach(setUpStatusForm);
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
