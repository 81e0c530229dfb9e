// A project's script catalogue: the scripts (admins add, change and delete them), a form
// with typed parameters, and a preview of the argv a run would execute, from values
// entered in the same run form operators get (core/script_form.js).
import { api, apiAll, param } from "../core/api.js";
import { $, clear, fillTable, formMessage, h, loadPage, problemText, showMessage } from "../core/dom.js";
import { NEEDS, confirmTyped, disableFor, lockForm, roleSentence, submitting } from "../core/forms.js";
import { renderScriptForm, scriptValues } from "../core/script_form.js";
import { requireSession } from "../core/session.js";
import { clearOnInput, markField } from "../core/validate.js";

const session = await requireSession();
const slug = param("p");
const path = `/api/projects/${encodeURIComponent(slug || "")}`;
const PLACEHOLDER = /\{([a-zA-Z][a-zA-Z0-9_]{0,63})\}/g;
const TYPES = ["string", "integer", "number", "boolean"];
let project = null;
let scripts = [];
let environments = [];
let editing = null; // the name of the script being changed, or null for a new one

const isAdmin = () => session.can(project.id, "admin");

// -- parameter rows ---------------------------------------------------------------------
function paramRow(p = { name: "", type: "string", required: true }) {
  const rows = $("#param-rows");
  const i = rows.children.length;
  const id = (what) => `param-${i}-${what}`;
  const field = (what, label, input, cls = "field") => h("label", { class: cls, for: id(what) }, h("span", {}, label), input);
  const remove = h("button", { type: "button", class: "button ghost", "aria-label": `Remove parameter ${i + 1}` }, "Remove");
  const row = h("li", { class: "row param-row", dataset: { index: String(i) } },
    field("name", "Name", h("input", { id: id("name"), name: id("name"), "data-field": `parameters.${i}.name`, value: p.name || "", required: true, autocomplete: "off" })),
    field("type", "Type", h("select", { id: id("type"), name: id("type"), "data-field": `parameters.${i}.type` },
      ...TYPES.map((t) => h("option", { value: t, selected: t === (p.type || "string") || null }, t))), "field narrow"),
    field("default", "Default", h("input", { id: id("default"), name: id("default"), "data-field": `parameters.${i}.default`,
      value: p.default === null || p.default === undefined ? "" : String(p.default), autocomplete: "off" })),
    field("enum", "Allowed values", h("input", { id: id("enum"), name: id("enum"), "data-field": `parameters.${i}.enum`,
      value: (p.enum || []).join(", "), placeholder: "comma separated (optional)", autocomplete: "off" })),
    field("pattern", "Pattern", h("input", { id: id("pattern"), name: id("pattern"), "data-field": `parameters.${i}.pattern`,
      value: p.pattern || "", placeholder: "regular expression (optional)", autocomplete: "off" })),
    field("description", "Description", h("input", { id: id("description"), name: id("description"), "data-field": `parameters.${i}.description`,
      value: p.description || "", autocomplete: "off" })),
    h("label", { class: "checkbox", for: id("required") }, h("input", { type: "checkbox", id: id("required"), name: id("required"), checked: p.required !== false || null }), "required"),
    h("label", { class: "checkbox", for: id("secret") }, h("input", { type: "checkbox", id: id("secret"), name: id("secret"), checked: p.secret || null }), "secret"),
    remove);
  remove.addEventListener("click", () => {
    const kept = readParams({ check: false }).parameters.filter((_, j) => j !== i);
    clear(rows);
    kept.forEach((k) => paramRow(k));
    refreshPreview();
  });
  rows.append(row);
  return row;
}

function typed(type, raw) {
  if (type === "integer" || type === "number") {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n) || (type === "integer" && !Number.isInteger(n))) return { error: `must be ${type === "integer" ? "a whole number" : "a number"}` };
    return { value: n };
  }
  if (type === "boolean") {
    if (!["true", "false"].includes(raw.trim().toLowerCase())) return { error: "must be true or false" };
    return { value: raw.trim().toLowerCase() === "true" };
  }
  return { value: raw };
}

// The parameter rows as the API takes them; with check, a value that does not fit its
// type is marked under its field and nothing is returned.
function readParams({ check = true } = {}) {
  const out = [];
  for (const row of $("#param-rows").children) {
    const i = row.dataset.index;
    const get = (what) => row.querySelector(`[name="param-${i}-${what}"]`);
    const type = get("type").value;
    const p = { name: get("name").value.trim(), type, required: get("required").checked,
      description: get("description").value.trim(), secret: get("secret").checked };
    const pattern = get("pattern").value.trim();
    if (pattern) p.pattern = pattern;
    const rawDefault = get("default").value;
    if (rawDefault.trim() !== "") {
      const d = typed(type, rawDefault);
      if (d.error && check) { markField(get("default"), `The default ${d.error}.`); return { error: get("default") }; }
      p.default = d.error ? rawDefault : d.value;
    }
    const rawEnum = get("enum").value.split(",").map((x) => x.trim()).filter(Boolean);
    if (rawEnum.length) {
      const values = rawEnum.map((x) => typed(type, x));
      const bad = values.find((v) => v.error);
      if (bad && check) { markField(get("enum"), `Each allowed value ${bad.error}.`); return { error: get("enum") }; }
      p.enum = values.map((v, j) => (v.error ? rawEnum[j] : v.value));
    }
    out.push(p);
  }
  return { parameters: out };
}

function argvOf(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

// -- preview ----------------------------------------------------------------------------
let previewShape = "";

function refreshPreview() {
  const draft = { parameters: readParams({ check: false }).parameters };
  const shape = JSON.stringify(draft.parameters);
  if (shape !== previewShape) {
    previewShape = shape;
    renderScriptForm($("#preview-params"), draft);
  }
  renderArgv(draft);
}

function renderArgv(draft) {
  const argv = argvOf($("#script-argv").value);
  const declared = new Map(draft.parameters.map((p) => [p.name, p]));
  const container = $("#preview-params");
  const values = {};
  for (const p of draft.parameters) {
    const input = container.querySelector(`[name="${CSS.escape(p.name)}"]`);
    if (!input) continue;
    if (p.type === "boolean") { values[p.name] = input.checked; continue; }
    if (input.value.trim() !== "") values[p.name] = input.value.trim();
    else if (p.default !== undefined && p.default !== null && p.default !== "") values[p.name] = p.default;
  }
  const missing = new Set();
  const undeclared = new Set();
  const items = argv.map((element) => {
    let unset = false;
    const text = element.replace(PLACEHOLDER, (whole, name) => {
      const p = declared.get(name);
      if (!p) { undeclared.add(name); unset = true; return whole; }
      if (p.secret) return "••••";
      if (!(name in values)) {
        if (p.required) { missing.add(name); unset = true; return `‹${name}›`; }
        return "";
      }
      const v = values[name];
      return typeof v === "boolean" ? String(v).toLowerCase() : String(v);
    });
    return h("li", { class: unset ? "unset" : null }, text);
  });
  clear($("#argv-preview")).append(...items);
  const notes = [];
  if (!argv.length) notes.push("Write the argv to see what runs.");
  if (undeclared.size) notes.push(`Not declared as parameters: ${[...undeclared].join(", ")} (the API refuses this).`);
  if (missing.size) notes.push(`A run must give: ${[...missing].join(", ")}.`);
  $("#preview-note").textContent = notes.join(" ");
  // the API's "argv uses {x} but no such parameter" goes once x is declared
  const argvInput = $("#script-argv");
  if (!undeclared.size && argvInput.getAttribute("aria-invalid") === "true"
      && /no such parameter/.test(argvInput.parentElement.querySelector(".field-problem")?.textContent || "")) {
    markField(argvInput, null);
  }
}

$("#script-form").addEventListener("input", refreshPreview);
$("#script-form").addEventListener("change", refreshPreview);
$("#preview-form").addEventListener("input", () => renderArgv({ parameters: readParams({ check: false }).parameters }));
$("#preview-form").addEventListener("change", () => renderArgv({ parameters: readParams({ check: false }).parameters }));
$("#preview-form").addEventListener("submit", (event) => {
  event.preventDefault();
  scriptValues($("#preview-params"), { parameters: readParams({ check: false }).parameters });
});
$("#add-param").addEventListener("click", () => {
  paramRow().querySelector("input").focus();
  refreshPreview();
});

// -- edit, save, delete -----------------------------------------------------------------
function fillForm(script) {
  const form = $("#script-form");
  editing = script ? script.name : null;
  form.elements.name.value = script?.name || "";
  form.elements.name.readOnly = Boolean(script);
  form.elements.description.value = script?.description || "";
  form.elements.argv.value = (script?.argv || []).join("\n");
  form.elements.timeoutSeconds.value = script?.timeoutSeconds ?? 600;
  clear($("#param-rows"));
  (script?.parameters || []).forEach((p) => paramRow(p));
  $("#script-form-title").textContent = script ? `Change ${script.name}` : "New script";
  $("#script-save").textContent = script ? "Save changes" : "Add script";
  $("#script-name-note").textContent = script ? "A script keeps its name: environments and tasks refer to it."
    : "Lower-case letters, digits and hyphens; a script keeps its name.";
  $("#script-new").hidden = !script;
  formMessage(form, "ok", "");
  previewShape = "";
  refreshPreview();
}

$("#script-new").addEventListener("click", () => { fillForm(null); $("#script-form").elements.name.focus(); });

$("#script-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const params = readParams();
  if (params.error) { params.error.focus(); formMessage(form, "error", "Correct the marked value."); return; }
  const body = { name: form.elements.name.value.trim(), description: form.elements.description.value.trim(),
    argv: argvOf(form.elements.argv.value), parameters: params.parameters,
    timeoutSeconds: Number(form.elements.timeoutSeconds.value) };
  const changing = editing;
  const outcome = await submitting(form, () => (changing
    ? api(`${path}/scripts/${encodeURIComponent(changing)}`, { method: "PUT", body })
    : api(`${path}/scripts`, { method: "POST", body })), {
    what: changing ? `${changing} was not changed` : "The script was not added",
    fallback: form.elements.argv,
    done: (s) => (changing ? `Saved ${s.name}.` : `Added ${s.name}.`),
  });
  if (outcome.ok) {
    await loadScripts();
    fillForm(scripts.find((s) => s.name === outcome.result.name) || null);
    formMessage(form, "ok", changing ? `Saved ${outcome.result.name}.` : `Added ${outcome.result.name}.`);
  }
});

async function deleteScript(script) {
  const users = environments.filter((e) => e.target?.deployScript === script.name).map((e) => e.name);
  const ok = await confirmTyped({
    title: `Delete script ${script.name}?`, name: script.name, okLabel: "Delete script",
    lines: [`${script.name} leaves the catalogue of ${project.name}: nobody can run it any more. Tasks that already ran it keep their logs.`,
      users.length ? `Deploys of ${users.join(", ")} use it as their deploy script and will fail until another is chosen.`
        : "No environment uses it as its deploy script."],
  });
  if (!ok) return;
  try {
    await api(`${path}/scripts/${encodeURIComponent(script.name)}`, { method: "DELETE" });
    showMessage($("#catalogue-message"), "ok", `Deleted ${script.name}.`);
    if (editing === script.name) fillForm(null);
    await loadScripts();
  } catch (err) {
    showMessage($("#catalogue-message"), "error", `${script.name} was not deleted. ${problemText(err)}`);
  }
}

async function loadScripts() {
  scripts = (await apiAll(`${path}/scripts`)).items;
  fillTable($("#scripts-table"), scripts.map((s) => {
    const edit = h("button", { type: "button", class: "button ghost", id: `edit-${s.name}` }, `Change ${s.name}`);
    const remove = h("button", { type: "button", class: "button ghost danger-text", id: `delete-${s.name}` }, `Delete ${s.name}…`);
    edit.addEventListener("click", () => { fillForm(s); $("#script-form").elements.description.focus(); });
    remove.addEventListener("click", () => deleteScript(s));
    if (!isAdmin()) { disableFor(edit, NEEDS.admin); disableFor(remove, NEEDS.admin); }
    return h("tr", { dataset: { script: s.name } },
      h("td", {}, h("strong", {}, s.name), s.description ? h("div", { class: "small muted" }, s.description) : null),
      h("td", {}, h("code", {}, s.argv.join(" "))),
      h("td", {}, s.parameters.length ? s.parameters.map((p) => `${p.name}: ${p.type}${p.required ? "" : "?"}`).join(", ") : h("span", { class: "muted" }, "none")),
      h("td", {}, `${s.timeoutSeconds} s`),
      h("td", {}, h("div", { class: "table-actions" }, edit, remove)));
  }), $("#no-scripts"));
}

async function fill() {
  if (!slug) throw Object.assign(new Error("The address needs ?p=<project>."), { detail: "The address needs ?p=<project>." });
  project = await api(path);
  document.title = `Scripts · ${project.name} · CloudOps`;
  $("#crumb-project").textContent = project.name;
  $("#scripts-title").textContent = `Script catalogue of ${project.name}`;
  $("#role-here").textContent = roleSentence(session, project.id) + (isAdmin() ? "" : " Changing the catalogue needs the admin role.");
  environments = (await apiAll(`${path}/environments`)).items;
  await loadScripts();
  fillForm(null);
  if (!isAdmin()) lockForm($("#script-form"), NEEDS.admin);
}

clearOnInput($("#script-form"));
loadPage(fill, () => `Could not load the scripts of ${slug || ""}`);
