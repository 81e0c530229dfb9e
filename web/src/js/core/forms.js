// Forms that change settings through the API, the same way on every page:
// - an API problem+json that names fields is shown next to those fields (every entry of
//   its `errors` list, not only the first), in words, and the first one gets the focus;
//   what names no field of the form goes in the form's message line;
// - what was typed stays in the form when the API refuses it (nothing is reset on error);
// - one submit at a time: a second one while the first is on its way is ignored, and the
//   button says it is busy without being disabled (a disabled button would drop the focus);
// - a destructive change says what will happen and asks for its name to be typed;
// - a control the signed-in role may not use is disabled, with the reason next to it
//   (visible text, and the tooltip).

import { confirmAction } from "./confirm.js";
import { formMessage, h, problemText, showNote } from "./dom.js";
import { clearMarks, markField } from "./validate.js";

const camel = (name) => String(name).replace(/_([a-z])/g, (_, c) => c.toUpperCase());

// The input of `form` a problem's field path names ("target.pool", "parameters.0.type",
// "events.0", "name"): an element declaring that path in data-field (or the longest
// declared prefix of it), else the element named by the path's last word (camelCase).
// data-field may list several paths, space separated (one control choosing what the API
// takes as several fields, e.g. a site select for subscriptionId, resourceGroup and site).
export function fieldInput(form, rawPath) {
  if (!form || !rawPath) return null;
  const path = String(rawPath).split(".").map(camel).join(".");
  const declared = [...form.querySelectorAll("[data-field]")]
    .flatMap((el) => el.dataset.field.split(/\s+/).filter(Boolean).map((field) => ({ el, field })));
  const exact = declared.find((d) => d.field === path);
  if (exact) return exact.el;
  const prefix = declared
    .filter((d) => path.startsWith(`${d.field}.`))
    .sort((a, b) => b.field.length - a.field.length)[0];
  if (prefix) return prefix.el;
  const words = path.split(".").filter((w) => !/^\d+$/.test(w));
  const name = words[words.length - 1];
  const named = name ? form.elements.namedItem(name) : null;
  return named instanceof HTMLElement ? named : null;
}

// "target.pool: agent pool 'x' is not granted…" → "agent pool 'x' is not granted…"
function words(message) {
  return String(message || "").replace(/^[\w.]+: /, "").replace(/^Value error, /, "");
}

// The (field, message) pairs a problem carries: its `errors` list, else its one field.
export function problemFields(err) {
  const problem = err?.problem || {};
  const list = Array.isArray(problem.errors) ? problem.errors : [];
  const pairs = list.filter((e) => e && e.field).map((e) => [String(e.field), words(e.message)]);
  if (!pairs.length && err?.field) pairs.push([String(err.field), words(err.detail)]);
  return pairs;
}

// Show an API refusal on the form: each named field marked under it, the first focused,
// and a summary under the form. `fallback` is the input a problem without a known field
// belongs to (e.g. the argv of a script whose placeholders are undeclared). True when at
// least one field was marked.
export function showProblems(form, err, { what = "Not saved", fallback = null } = {}) {
  clearMarks(form);
  let first = null;
  const marked = new Set(); // several problems on one control: the first one is shown
  for (const [path, message] of problemFields(err)) {
    const input = fieldInput(form, path);
    if (!input || marked.has(input)) continue;
    marked.add(input);
    markField(input, message);
    first ??= input;
  }
  if (!first && fallback && err?.status >= 400 && err?.status < 500 && err.status !== 403) {
    markField(fallback, words(err.detail));
    first = fallback;
  }
  // a group of checkboxes or rows is marked as a whole; its first control takes the focus
  const focusable = first?.matches?.("fieldset, div, ul")
    ? first.querySelector("input, select, textarea, button") : first;
  focusable?.focus();
  formMessage(form, "error", `${what}. ${err?.status ? `${err.title}: ${words(err.detail)}` : problemText(err)}`);
  return first !== null;
}

// The form's marks and message line cleared (a form filled afresh, or about to be sent).
export function clearProblems(form) {
  clearMarks(form);
  formMessage(form, "ok", "");
}

// Run `send()` for a form, once at a time: while it is on its way the submit button is
// aria-busy (it keeps the focus) and a second submit is ignored ({ok: false, busy: true});
// a refusal is shown with showProblems (what was typed is kept); a success says what
// `done(result)` returns.
export async function submitting(form, send, { what = "Not saved", fallback = null, done } = {}) {
  if (form.dataset.sending === "true") return { ok: false, busy: true };
  const button = form.querySelector("button[type=submit], button:not([type])");
  form.dataset.sending = "true";
  button?.setAttribute("aria-busy", "true");
  clearProblems(form);
  try {
    const result = await send();
    const text = done ? done(result) : "";
    if (text) formMessage(form, "ok", text);
    return { ok: true, result };
  } catch (err) {
    showProblems(form, err, { what, fallback });
    return { ok: false, error: err };
  } finally {
    delete form.dataset.sending;
    button?.removeAttribute("aria-busy");
  }
}

// A destructive change: the dialog says what will happen (`lines`) and the OK button
// stays disabled until `name` is typed.
export function confirmTyped({ title, lines, name, okLabel }) {
  return confirmAction({ title, lines, okLabel, danger: true, typeToConfirm: name });
}

// Disable `control` for the signed-in role, saying why: the reason is the tooltip and a
// short visible note (linked with aria-describedby, so screen readers say it too).
// `reason` null enables it again.
export function disableFor(control, reason) {
  if (!control) return;
  const id = `${control.id || control.name || "control"}-why`;
  let note = control.parentElement?.querySelector(`#${CSS.escape(id)}`);
  if (!reason) {
    control.disabled = false;
    control.removeAttribute("title");
    if (control.getAttribute("aria-describedby") === id) control.removeAttribute("aria-describedby");
    note?.remove();
    return;
  }
  control.disabled = true;
  control.title = reason;
  if (!note) {
    note = h("small", { class: "why-disabled muted", id });
    control.after(note);
  }
  note.textContent = reason;
  control.setAttribute("aria-describedby", id);
}

// Disable every field and button of a form for the role, with one reason shown once: in a
// line the form begins with, or in `note` (a line the page already has for the section).
export function lockForm(form, reason, { note: given = null } = {}) {
  for (const el of form.querySelectorAll("input, select, textarea, button")) el.disabled = Boolean(reason);
  if (given) {
    showNote(given, reason);
    for (const button of form.querySelectorAll("button")) {
      button.title = reason || "";
      if (reason) button.setAttribute("aria-describedby", given.id);
      else button.removeAttribute("aria-describedby");
    }
    return;
  }
  let note = form.querySelector(".why-disabled.form-level");
  if (!reason) { note?.remove(); return; }
  if (!note) {
    note = h("p", { class: "why-disabled form-level muted small", id: `${form.id}-why` });
    form.prepend(note);
  }
  note.textContent = reason;
  form.setAttribute("aria-describedby", note.id);
  for (const button of form.querySelectorAll("button")) button.title = reason;
}

// "your role here" sentence: the role and where it comes from.
export function roleSentence(session, projectId) {
  const role = session.roleOn(projectId);
  if (!role) return "You have no role here.";
  const own = session.me?.projectRoles?.[projectId];
  const global = session.globalRole;
  const from = own && own === role ? "on this project" : global === role ? "global, on every project" : "";
  return `Your role here: ${role}${from ? ` (${from})` : ""}.`;
}

export const NEEDS = {
  admin: "Needs the admin role on this project.",
  operator: "Needs the operator role on this project.",
  globalAdmin: "Needs the global admin role (platform admins).",
};
