// A form's API problems next to their fields, the form's values kept as typed.
//
// The API answers problem+json with `field` (the first bad field, camelCase, dotted for
// list items: "events.0", "recipients") and, for validation errors, `errors`
// [{field, message}] naming every one. Each is shown under its field: an input named like
// the field's first part, or a group marked data-field="<name>" (checkbox lists). What
// names no field of the form goes in the form's message line. Nothing here resets a form:
// whatever was typed stays for the next try.

import { formMessage, h, problemText } from "./dom.js";
import { clearMarks, markField } from "./validate.js";

const camel = (name) => String(name).replace(/_([a-z])/g, (_, c) => c.toUpperCase());

// The control (or data-field group) a dotted API field path points at, or null.
export function controlFor(form, path) {
  const parts = String(path || "").split(".").map(camel);
  for (let n = parts.length; n > 0; n -= 1) {
    const name = parts.slice(0, n).join(".");
    const group = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (group) return group;
    const control = form.elements.namedItem(name);
    if (control instanceof HTMLElement) return control;
  }
  return null;
}

// Mark a data-field group (a fieldset of checkboxes): the message under its legend.
function markGroup(group, message) {
  const id = `${group.closest("form")?.id || "form"}-${group.dataset.field}-problem`;
  let box = group.querySelector(`#${CSS.escape(id)}`);
  if (!box) {
    box = h("small", { class: "field-problem", id, role: "alert" });
    group.append(box);
  }
  box.textContent = message;
  group.setAttribute("aria-describedby", id);
  group.classList.add("invalid");
  const first = group.querySelector("input, select, textarea");
  if (first) first.setAttribute("aria-invalid", "true");
}

export function clearProblems(form) {
  clearMarks(form);
  for (const group of form.querySelectorAll("[data-field].invalid")) {
    group.classList.remove("invalid");
    group.removeAttribute("aria-describedby");
    group.querySelector(".field-problem")?.remove();
  }
  formMessage(form, "error", "");
}

// The message without the "field: " prefix the API puts in `detail`.
function words(text) {
  return String(text || "").replace(/^[\w.]+: /, "");
}

// Show `err` (an ApiError) on `form`: each named field marked, the first focused, and a
// summary line saying what did not happen. Returns the number of fields marked.
export function showProblems(form, err, { what = "Not saved." } = {}) {
  clearProblems(form);
  const problems = [];
  const listed = Array.isArray(err?.problem?.errors) ? err.problem.errors : [];
  for (const item of listed) problems.push({ field: item.field, message: item.message });
  if (err?.field && !problems.some((p) => camel(p.field) === err.field)) {
    problems.unshift({ field: err.field, message: words(err.detail) });
  }
  let first = null;
  let marked = 0;
  const seen = new Set();
  for (const { field, message } of problems) {
    const control = controlFor(form, field);
    if (!control || seen.has(control)) continue;
    seen.add(control);
    if (control.dataset?.field) markGroup(control, message);
    else markField(control, message);
    first ??= control.dataset?.field ? control.querySelector("input, select, textarea") : control;
    marked += 1;
  }
  formMessage(form, "error", `${what} ${problemText(err)}`.trim());
  first?.focus();
  return marked;
}

// Clear a group's or field's mark as soon as the user changes it.
export function clearProblemsOnInput(form) {
  const clear = (event) => {
    const group = event.target.closest?.("[data-field].invalid");
    if (group) {
      group.classList.remove("invalid");
      group.removeAttribute("aria-describedby");
      group.querySelector(".field-problem")?.remove();
      for (const input of group.querySelectorAll("[aria-invalid=true]")) input.removeAttribute("aria-invalid");
    } else if (event.target.getAttribute?.("aria-invalid") === "true") {
      markField(event.target, null);
    }
  };
  form.addEventListener("input", clear);
  form.addEventListener("change", clear);
}

// Run `send` once at a time per form (a second submit while one is on its way is
// ignored); the submit button says it is busy but keeps the focus (a disabled button
// would drop it), and the form keeps its values whatever happens.
export async function whileSending(form, send) {
  if (form.dataset.sending === "true") return undefined;
  const button = form.querySelector("[type=submit]");
  form.dataset.sending = "true";
  button?.setAttribute("aria-busy", "true");
  try {
    return await send();
  } finally {
    delete form.dataset.sending;
    button?.removeAttribute("aria-busy");
  }
}
