// A typed parameter form generated from a catalogue script's parameter list.
import { clear, h } from "./dom.js";

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

// Read the form back as typed values; {error} names the first bad field.
export function scriptValues(container, script) {
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
        input.focus();
        return { error: `${p.name} is required.` };
      }
      continue;
    }
    if (p.type === "integer" || p.type === "number") {
      const value = Number(raw);
      if (!Number.isFinite(value) || (p.type === "integer" && !Number.isInteger(value))) {
        input.focus();
        return { error: `${p.name} must be ${p.type === "integer" ? "a whole number" : "a number"}.` };
      }
      parameters[p.name] = value;
    } else {
      parameters[p.name] = raw;
    }
  }
  return { parameters };
}
