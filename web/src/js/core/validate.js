// Form fields checked against the API's own constraints before anything is confirmed or
// sent: the rules come from /api/openapi.json (pattern, lengths, minimum/maximum and the
// "x-rule" words the API writes next to each pattern), and a broken rule is said in words
// next to its field, never as a regular expression.

import { api } from "./api.js";
import { h } from "./dom.js";

let schemasPromise = null;

// The document's component schemas, fetched once per page (the API caches it too). If it
// cannot be read, forms still work: the API checks everything again.
export function schemas() {
  schemasPromise ??= api("/api/openapi.json", { redirectOn401: false })
    .then((doc) => doc?.components?.schemas || {})
    .catch(() => ({}));
  return schemasPromise;
}

// The constraints of one property of a request model (the non-null branch of an optional).
export async function ruleOf(model, property) {
  const schema = (await schemas())[model];
  const prop = schema?.properties?.[property];
  if (!prop) return {};
  const branch = (prop.anyOf || []).find((s) => s.type && s.type !== "null");
  return { ...(branch || prop), required: (schema.required || []).includes(property) };
}

function matches(pattern, value) {
  try {
    return new RegExp(pattern, "u").test(value);
  } catch {
    return true; // a pattern this browser cannot compile: leave the check to the API
  }
}

// The first broken rule of `value` in words, or null. `label` names the field in the
// sentence ("Lifetime (hours) must be …"); `what` is how to ask for it ("the version").
export function problemWith(rule, value, { label, what }) {
  const text = typeof value === "string" ? value : String(value ?? "");
  if (text.trim() === "") return rule.required !== false ? `Enter ${what || label.toLowerCase()}.` : null;
  if (rule.type === "integer" || rule.type === "number") {
    const number = Number(text);
    if (!Number.isFinite(number)) return `${label} must be a number.`;
    if (rule.type === "integer" && !Number.isInteger(number)) return `${label} must be a whole number.`;
    const low = rule.minimum ?? rule.exclusiveMinimum;
    const high = rule.maximum ?? rule.exclusiveMaximum;
    if ((low !== undefined && number < low) || (high !== undefined && number > high)) {
      if (low !== undefined && high !== undefined) return `${label} must be from ${low} to ${high}.`;
      return low !== undefined ? `${label} must be at least ${low}.` : `${label} must be at most ${high}.`;
    }
    return null;
  }
  if (rule.maxLength !== undefined && [...text].length > rule.maxLength) {
    return `${label} is too long: at most ${rule.maxLength} characters.`;
  }
  if (rule.minLength !== undefined && [...text].length < rule.minLength) {
    return `${label} is too short: at least ${rule.minLength} characters.`;
  }
  if (rule.pattern && !matches(rule.pattern, text)) {
    return `${label}: ${rule["x-rule"] || "it contains characters that are not allowed here"}.`;
  }
  if (rule.enum && !rule.enum.includes(value)) return `${label} must be one of ${rule.enum.join(", ")}.`;
  return null;
}

const CONTROLS = new Set(["INPUT", "SELECT", "TEXTAREA"]);

// Show (or clear, with message null) a field's problem right under it. A group (a fieldset
// of checkboxes or rows, marked data-field) gets the message inside it, after its legend.
export function markField(input, message) {
  const group = !CONTROLS.has(input.tagName);
  const holder = group ? input : input.closest("label, .field") || input.parentElement;
  const name = String(input.getAttribute("name") || input.id || input.dataset.field || "field").replace(/[^\w-]/g, "-");
  const id = `${input.form?.id || input.closest("form")?.id || "form"}-${name}-problem`;
  let box = holder.querySelector(`#${CSS.escape(id)}`);
  if (group) input.classList.toggle("invalid", Boolean(message));
  if (!message) {
    box?.remove();
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    return;
  }
  if (!box) {
    box = h("small", { class: "field-problem", id, role: "alert" });
    holder.append(box);
  }
  box.textContent = message;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", id);
}

export function clearMarks(form) {
  for (const input of form.querySelectorAll("[aria-invalid=true]")) markField(input, null);
}

// Check `fields` ([{input, model, property, label, what}]) against the OpenAPI rules; mark
// every broken one, focus the first. True when all pass.
export async function validateFields(form, fields) {
  clearMarks(form);
  let first = null;
  for (const field of fields) {
    const rule = await ruleOf(field.model, field.property);
    const value = field.value ?? field.input.value;
    const message = problemWith({ ...rule, ...(field.rule || {}) }, value, field);
    if (message) {
      markField(field.input, message);
      first ??= field.input;
    }
  }
  first?.focus();
  return first === null;
}

// An API 422/409 that names a field of this form is shown next to that field.
export function markProblemField(form, err) {
  const name = err?.field ? String(err.field).split(".").pop() : null;
  const input = name ? form.elements[name] : null;
  if (!input || !(input instanceof HTMLElement)) return false;
  markField(input, err.detail.replace(/^[\w.]+: /, ""));
  input.focus();
  return true;
}

// Clear a field's (or its group's) mark as soon as its value changes.
export function clearOnInput(form) {
  const clear = (event) => {
    const marked = event.target.closest?.("[aria-invalid=true]");
    if (marked && form.contains(marked)) markField(marked, null);
  };
  form.addEventListener("input", clear);
  form.addEventListener("change", clear);
}
