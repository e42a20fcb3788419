// Leadline dashboard: the few lines htmx cannot express declaratively.

// Auto-refresh (hx-trigger="every 5s" on [data-poll]) must never wipe out work in progress: it
// pauses while rows are selected, while the operator is typing in a form marked
// data-pause-polling, while an inbox row has the keyboard focus, and while the tab is hidden. (Not an hx-trigger filter: filters need
// eval, which the Content-Security-Policy forbids.)
function pollingAllowed() {
  if (document.visibilityState !== "visible") return false;
  if (document.querySelector("input[data-select]:checked")) return false;
  const active = document.activeElement;
  if (active && active.matches("input, textarea, select") && active.closest("[data-pause-polling]")) {
    return false;
  }
  // Triage in progress: a focused inbox row stays where it is until the operator moves on.
  if (active && active.closest("#inbox-table tr[data-row]")) return false;
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

// --- Inbox triage from the keyboard (issue #15) --------------------------------------------
// j/k move between drafts, a approves, r opens the reason to reject, e edits in place,
// x selects, o opens the workflow, ? lists the keys, Esc cancels. Each action swaps only its
// row (htmx); the next waiting row is focused afterwards. While a row is focused the 5 s
// refresh still runs, and the focus is put back on the same row after it.

function inboxRows() {
  return Array.from(document.querySelectorAll("#inbox-table tr[data-row]"));
}

function focusedRow() {
  const active = document.activeElement;
  return active ? active.closest("#inbox-table tr[data-id]") : null;
}

function focusRow(row) {
  if (!row) return;
  row.focus();
  row.scrollIntoView({ block: "nearest" });
}

function moveFocus(step) {
  const rows = inboxRows();
  if (!rows.length) return;
  const current = focusedRow();
  let index = current ? rows.indexOf(current) : -1;
  if (index === -1 && current) {  // a decided row: continue from its place in the table
    const all = Array.from(document.querySelectorAll("#inbox-table tr[data-id]"));
    const at = all.indexOf(current);
    const after = all.slice(at + 1).find(function (r) { return r.hasAttribute("data-row"); });
    focusRow(step > 0 ? after || rows[rows.length - 1] : rows[0]);
    return;
  }
  index = index === -1 ? 0 : Math.min(rows.length - 1, Math.max(0, index + step));
  focusRow(rows[index]);
}

function openRowForm(row, kind) {
  const form = row.querySelector(kind === "reject" ? "form.row-reject" : "form.row-edit");
  const toggle = row.querySelector("[data-action='" + kind + "']");
  if (!form) return;
  row.querySelectorAll("form.row-reject, form.row-edit").forEach(function (f) { f.hidden = f !== form; });
  form.hidden = false;
  if (toggle) toggle.setAttribute("aria-expanded", "true");
  const first = form.querySelector("input[type=text], textarea");
  if (first) first.focus();
}

function closeRowForms(row) {
  row.querySelectorAll("form.row-reject, form.row-edit").forEach(function (f) { f.hidden = true; });
  row.querySelectorAll("[aria-expanded]").forEach(function (b) { b.setAttribute("aria-expanded", "false"); });
  focusRow(row);
}

document.addEventListener("click", function (event) {
  if (event.target.closest("[data-open-keys]")) {
    document.getElementById("keys-help").showModal();
    return;
  }
  const button = event.target.closest("#inbox-table [data-action]");
  if (!button) return;
  const row = button.closest("tr[data-id]");
  const action = button.getAttribute("data-action");
  if (action === "reject" || action === "edit") openRowForm(row, action);
  if (action === "cancel") closeRowForms(row);
});

document.addEventListener("keydown", function (event) {
  const help = document.getElementById("keys-help");
  if (!help || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const typing = target.matches && target.matches("input[type=text], input[type=search], textarea, select");
  const row = focusedRow();
  if (event.key === "Escape" && row && typing) {
    event.preventDefault();
    closeRowForms(row);
    return;
  }
  if (typing || help.open) return;
  const key = event.key;
  if (key === "?") { event.preventDefault(); help.showModal(); return; }
  if (key === "j" || key === "ArrowDown" && row) { event.preventDefault(); moveFocus(1); return; }
  if (key === "k" || key === "ArrowUp" && row) { event.preventDefault(); moveFocus(-1); return; }
  if (!row || !row.hasAttribute("data-row")) return;
  if (key === "a") {
    const approve = row.querySelector("[data-action='approve']");
    if (approve) { event.preventDefault(); approve.click(); }
  } else if (key === "r") {
    event.preventDefault(); openRowForm(row, "reject");
  } else if (key === "e") {
    event.preventDefault(); openRowForm(row, "edit");
  } else if (key === "x") {
    const box = row.querySelector("input[data-select]");
    if (box) { event.preventDefault(); box.checked = !box.checked; }
  } else if (key === "o") {
    const link = row.querySelector(".lead a");
    if (link) { event.preventDefault(); link.click(); }
  }
});

// Remember which row had the focus across a swap; after a row's own action, go to the next.
let focusedBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", function (event) {
  // A poll sent before the operator started (a row focused, a box ticked, a form typed in)
  // must not land on top of that either: its answer predates their decisions, so it is
  // dropped, and the next tick asks again.
  if (event.detail.elt.matches("[data-poll]") && !pollingAllowed()) {
    event.detail.shouldSwap = false;
    return;
  }
  const row = focusedRow();
  focusedBeforeSwap = row ? row.getAttribute("data-id") : null;
});

document.addEventListener("htmx:afterSettle", function (event) {
  if (!focusedBeforeSwap) return;
  const id = focusedBeforeSwap;
  focusedBeforeSwap = null;
  const row = document.querySelector("#inbox-table tr[data-id='" + id + "']");
  if (!row) { moveFocus(0); return; }
  if (row.hasAttribute("data-row")) {
    if (!row.contains(document.activeElement)) focusRow(row);
    return;
  }
  // Decided: the next waiting row below it, else the one above.
  const all = Array.from(document.querySelectorAll("#inbox-table tr[data-id]"));
  const at = all.indexOf(row);
  const next = all.slice(at + 1).find(function (r) { return r.hasAttribute("data-row"); }) ||
    all.slice(0, at).reverse().find(function (r) { return r.hasAttribute("data-row"); });
  focusRow(next || row);
});
