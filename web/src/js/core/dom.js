// Tiny DOM helpers and the shared visual pieces (status badges, progress bars, errors).

import { h } from "./dom_base.js";

export { h };
export { fmtClock, fmtTime, relTime, timeNode, ZONE } from "./time.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
export const OPERATION_LABELS = {
  deploy: "Deploy", backup: "Back up", restore: "Restore", refresh: "Refresh", restart: "Restart",
  sandbox_create: "Create sandbox", script_run: "Run script",
};

export function statusBadge(status) {
  const label = (status || "unknown").replace("_", " ");
  return h("span", { class: `badge status-${status}`, dataset: { status } }, label);
}

export function progressBar(task) {
  const value = Math.max(0, Math.min(100, Number(task.progress) || 0));
  const label = `${OPERATION_LABELS[task.operation] || task.operation} progress`;
  return h("span", { class: "progress-wrap" },
    h("progress", { class: `progress status-${task.status}`, max: "100", value: String(value), "aria-label": label }),
    h("span", { class: "progress-value" }, `${value}%`));
}

export function describeTask(task) {
  const p = task.parameters || {};
  switch (task.operation) {
    case "deploy": return `Deploy ${p.version ?? ""}`;
    case "backup": return "Back up database";
    case "restore": return `Restore backup ${String(p.backupId || "").slice(0, 8)}`;
    case "refresh": return `Refresh from ${p.sourceEnvironment ?? ""}${p.maskScript ? `, masked by ${p.maskScript}` : ""}`;
    case "restart": return `Restart ${p.workload ?? ""}`;
    case "sandbox_create": return `Create sandbox ${p.name ?? ""}`;
    case "script_run": return `Run script ${p.script ?? ""}`;
    default: return task.operation;
  }
}

// Fill an error section: what failed, the API's own words, what to do next.
export function showError(section, err, { what = "Something went wrong", hint, retry } = {}) {
  const status = err && err.status;
  const hints = {
    0: "Check your connection, then try again.",
    403: "Ask an admin of this project for a role that allows this.",
    404: "It may have been deleted, or the link is wrong. Go back to the projects list and pick it again.",
    409: "Something with the same name exists or the state changed. Reload and check.",
    422: "Correct the highlighted value and submit again.",
    400: "Correct the value and submit again.",
    500: "The server failed. Try again; if it keeps failing, tell the platform team.",
    503: "A dependency is unavailable. Try again in a minute.",
  };
  section.hidden = false;
  $(".error-title", section).textContent = `${what}${status ? ` (${err.title})` : ""}`;
  $(".error-detail", section).textContent = (err && err.detail) || String(err && err.message || err);
  $(".error-hint", section).textContent = hint || hints[status] || hints[500];
  const button = $("[data-action=retry]", section);
  if (button) {
    // Retrying cannot find what is not there, nor grant access: offer it only otherwise.
    button.hidden = !retry || status === 404 || status === 403;
    button.onclick = retry ? () => { section.hidden = true; retry(); } : null;
  }
}

// Fill a message line (p.form-message): success (teal, a status) or a problem (danger, an
// alert read out at once); text or nodes; hidden when there is nothing to say.
export function showMessage(box, kind, ...content) {
  box.className = `form-message ${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.replaceChildren(...content.filter((c) => c !== "" && c !== null && c !== undefined));
  box.hidden = !box.hasChildNodes();
}

// A short message under a form: success (teal) or the API problem's detail (danger).
export function formMessage(form, kind, text) {
  let box = $(".form-message", form);
  if (!box) {
    box = h("p", { class: "form-message" });
    form.append(box);
  }
  showMessage(box, kind, text);
}

export function problemText(err) {
  if (!err) return "";
  const detail = err.detail || err.message || "";
  return err.status ? `${err.title}: ${detail}` : detail;
}

// The page has loaded what it shows: #content (where there is one) appears and the body
// says data-ready="true", the one sign browser tests wait for before they type or click.
export function pageLoaded() {
  const content = $("#content");
  if (content) content.hidden = false;
  document.body.dataset.ready = "true";
}

// Load a page: the loading line while `fill()` runs, then pageLoaded(); if it throws, the
// page's error section says what could not be loaded (`what`, or what() then), and why,
// with Try again. Returns true when the page loaded.
export async function loadPage(fill, what) {
  $("#loading").hidden = false;
  try {
    await fill();
    pageLoaded();
    return true;
  } catch (err) {
    const retry = () => loadPage(fill, what);
    showError($("#page-error"), err, { what: typeof what === "function" ? what() : what, retry });
    return false;
  } finally {
    $("#loading").hidden = true;
  }
}

// Fill a table's body with `rows`; with none, the table gives way to its empty-state line.
export function fillTable(table, rows, empty) {
  clear(table.tBodies[0]).append(...rows);
  (table.closest(".table-wrap") || table).hidden = rows.length === 0;
  empty.hidden = rows.length > 0;
}

// A line that is there only when it has something to say (why controls are disabled).
export function showNote(node, text) {
  node.hidden = !text;
  node.textContent = text || "";
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}
