// Leadline dashboard: the few lines htmx cannot express declaratively.

// Auto-refresh (hx-trigger="every 5s" on [data-poll]) must never wipe out work in progress: it
// pauses while rows are selected, while the operator is typing in a form marked
// data-pause-polling, and while the tab is hidden. (Not an hx-trigger filter: filters need
// eval, which the Content-Security-Policy forbids.)
function pollingAllowed() {
  if (document.visibilityState !== "visible") return false;
  if (document.querySelector("input[data-select]:checked")) return false;
  const active = document.activeElement;
  if (active && active.matches("input, textarea, select") && active.closest("[data-pause-polling]")) {
    return false;
  }
  return true;
}

document.addEventListener("htmx:beforeRequest", function (event) {
  if (event.detail.elt.matches("[data-poll]") && !pollingAllowed()) event.preventDefault();
});

// Coming back to the tab: refresh at once instead of waiting for the next tick.
document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible" && pollingAllowed()) {
    document.querySelectorAll("[data-poll]").forEach(function (el) { htmx.trigger(el, "refresh"); });
  }
});

// "Select all" checkbox in a table header.
document.addEventListener("change", function (event) {
  if (!event.target.matches("[data-select-all]")) return;
  const table = event.target.closest("table");
  table.querySelectorAll("input[data-select]").forEach(function (box) { box.checked = event.target.checked; });
});
