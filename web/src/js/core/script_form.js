// A typed parameter form generated from a catalogue script's parameter list.
import { clear, h } from "./dom.js";
import { clearMarks, markField } from "./validate.js";

export function renderScriptForm(container, script) {
  clear(container);
  for (const p of script?.parameters || []) {
    const id = `param-${p.name}`;
    let input;
    if (p.enum && p.enum.length) {
      input = h("select", { id, name: p.name, required: p.required },
        p.required ? null : h("option", { value: "" }, "(default)"),
        ...p.enum.map((v) => h("option", { value: String(v), selected: v === p.default }, String(v))));
    } else if (p.type === "boolean") {
      input = h("input", { id, name: p.name, type: "checkbox", checked: p.default === true });
    } else {
      const numeric = p.type === "integer" || p.type === "number";
      input = h("input", {
        id, name: p.name, type: numeric ? "number" : "text", required: p.required,
        step: p.type === "integer" ? "1" : numeric ? "any" : null,
        pattern: p.pattern || null, autocomplete: "off",
        value: p.default === null || p.default === undefined ? null : String(p.default),
      });
    }
    input.dataset.type = p.type;
    const label = `${p.name}${p.required ? " (required)" : ""}`;
    container.append(h("label", { class: `field${p.type === "boolean" ? " checkbox" : ""}`, for: id },
      h("span", {}, label, h("span", { class: "muted small" }, ` ${p.type}`)), input,
      p.description ? h("small", { class: "muted" }, p.description) : null));
  }
}

// Read the form back as typed values; {error} names the first bad field, which is also
// marked in words right under it.
export function scriptValues(container, script) {
  const form = container.closest("form");
  if (form) clearMarks(form);
  const refuse = (input, error) => {
    markField(input, error);
    input.focus();
    return { error };
  };
  const parameters = {};
  for (const p of script.parameters || []) {
    const input = container.querySelector(`[name="${CSS.escape(p.name)}"]`);
    if (!input) continue;
    if (p.type === "boolean") {
      parameters[p.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") {
      if (p.required && (p.default === null || p.default === undefined)) {
        return refuse(input, `Enter ${p.name}: this script needs it.`);
      }
      continue;
    }
    if (p.type === "integer" || p.type === "number") {
      const value = Number(raw);
      if (!Number.isFinite(value) || (p.type === "integer" && !Number.isInteger(value))) {
        return refuse(input, `${p.name} must be ${p.type === "integer" ? "a whole number" : "a number"}.`);
      }
      parameters[p.name] = value;
    } else {
      if (p.pattern && !fullMatch(p.pattern, raw)) {
        const hint = p.description ? ` (${p.description})` : "";
        return refuse(input, `${p.name} is not in the form this script accepts${hint}.`);
      }
      parameters[p.name] = raw;
    }
  }
  return { parameters };
}

function fullMatch(pattern, value) {
  try {
    return new RegExp(`^(?:${pattern})$`, "u").test(value);
  } catch {
    return true; // the API checks it again with the script's own rules
  }
}
