// A project's notification rules: list, create, edit, delete, send a test (admins);
// readers and operators see the rules with the controls disabled and the reason.
import { api, apiAll } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, clear, fillTable, formMessage, h, loadPage, problemText, showMessage, showNote } from "../core/dom.js";
import { clearProblems, lockForm, submitting } from "../core/forms.js";
import { loadProject, whyNot } from "../core/project_nav.js";
import { requireSession } from "../core/session.js";
import { clearOnInput, schemas } from "../core/validate.js";

const session = await requireSession();
const form = $("#rule-form");
const EVENT_WORDS = {
  "task.succeeded": "Task succeeded", "task.failed": "Task failed", "task.cancelled": "Task cancelled",
  "approval.requested": "Approval requested", "backup.failed": "Backup failed",
  "agent.offline": "Agent offline", "sandbox.expiring": "Sandbox expiring",
};
let ctx = null;          // {project, slug, role}
let rules = [];
let environments = [];
let editing = null;      // the rule being edited, or null
let reason = null;       // why this role may not change rules (null: it may)

const base = () => `/api/projects/${encodeURIComponent(ctx.slug)}/notification-rules`;

async function eventNames() {
  const rule = (await schemas()).RuleInput;
  const items = rule?.properties?.events?.items;
  const names = items?.enum || (items?.anyOf || []).flatMap((s) => s.enum || (s.const ? [s.const] : []));
  return names.length ? names : Object.keys(EVENT_WORDS);
}

function checkbox(name, value, label) {
  const id = `${name}-${value.replace(/[^a-z0-9]/gi, "-")}`;
  return h("label", { for: id }, h("input", { type: "checkbox", id, name, value }), label);
}

function sendsTo(rule) {
  if (rule.channel === "teams") {
    return h("span", {}, "Teams ", h("span", { class: "mono muted" }, rule.webhookUrl || "(no URL)"));
  }
  return h("span", {}, "E-mail ", h("span", { class: "muted" }, rule.recipients.join(", ")));
}

function ruleRow(rule) {
  const why = reason ? { disabled: true, "aria-describedby": "rules-why-not" } : {};
  return h("tr", { dataset: { ruleId: rule.id } },
    h("td", {}, h("strong", {}, rule.name), rule.enabled ? null : h("div", {}, h("span", { class: "badge" }, "paused"))),
    h("td", {}, h("span", { class: "chips" }, ...rule.events.map((e) => h("span", { class: "chip" }, EVENT_WORDS[e] || e)))),
    h("td", {}, rule.environments.length ? rule.environments.join(", ") : h("span", { class: "muted" }, "all")),
    h("td", { class: "small" }, sendsTo(rule)),
    h("td", {}, h("div", { class: "row-actions" },
      h("button", { type: "button", class: "button ghost", dataset: { action: "edit" }, ...why,
        "aria-label": `Edit rule ${rule.name}` }, "Edit"),
      h("button", { type: "button", class: "button ghost", dataset: { action: "test" }, ...why,
        "aria-label": `Send a test through rule ${rule.name}` }, "Send a test"),
      h("button", { type: "button", class: "button ghost danger-text", dataset: { action: "delete" }, ...why,
        "aria-label": `Delete rule ${rule.name}` }, "Delete"))));
}

function render() {
  fillTable($("#rules"), rules.map(ruleRow), $("#no-rules"));
  showNote($("#rules-why-not"), reason);
}

function showChannel() {
  const email = form.elements.channel.value === "email";
  $("#webhook-field").hidden = email;
  $("#recipients-field").hidden = !email;
}

function fillForm(rule) {
  editing = rule;
  clearProblems(form);
  form.elements.name.value = rule?.name || "";
  form.elements.channel.value = rule?.channel || "teams";
  form.elements.enabled.checked = rule ? rule.enabled : true;
  for (const box of form.querySelectorAll("input[name=events]")) box.checked = Boolean(rule?.events.includes(box.value));
  for (const box of form.querySelectorAll("input[name=environments]")) box.checked = Boolean(rule?.environments.includes(box.value));
  form.elements.webhookUrl.value = "";
  form.elements.recipients.value = rule?.recipients?.join(", ") || "";
  const stored = rule?.channel === "teams" && rule.hasWebhookUrl;
  form.elements.webhookUrl.placeholder = stored ? `Stored: ${rule.webhookUrl} (leave empty to keep it)` : "https://…";
  $("#webhook-hint").textContent = stored
    ? "Leave empty to keep the stored URL; a new one replaces it. It is never shown again."
    : "A secret: it is stored, never shown again.";
  $("#rule-form-title").textContent = rule ? `Edit rule ${rule.name}` : "New rule";
  $("#rule-submit").textContent = rule ? "Save changes" : "Create rule";
  $("#rule-cancel").hidden = !rule;
  showChannel();
}

function body() {
  const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((b) => b.value);
  const out = {
    name: form.elements.name.value.trim(), channel: form.elements.channel.value,
    events: checked("events"), environments: checked("environments"),
    enabled: form.elements.enabled.checked,
  };
  if (out.channel === "teams") {
    const url = form.elements.webhookUrl.value.trim();
    if (url) out.webhookUrl = url;
  } else {
    out.recipients = form.elements.recipients.value.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
  }
  return out;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = body();
  const rule = editing;
  await submitting(form, async () => {
    const saved = rule
      ? await api(`${base()}/${rule.id}`, { method: "PUT", body: data })
      : await api(base(), { method: "POST", body: data });
    await loadRules();
    fillForm(null);
    return saved;
  }, { what: rule ? "Not saved" : "Not created",
    done: (saved) => (rule ? `Saved rule ${saved.name}.` : `Created rule ${saved.name}.`) });
});

$("#rule-channel").addEventListener("change", showChannel);
$("#rule-cancel").addEventListener("click", () => { fillForm(null); form.elements.name.focus(); });
clearOnInput(form);

$("#rules").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const rule = rules.find((r) => r.id === button.closest("tr").dataset.ruleId);
  if (!rule) return;
  const action = button.dataset.action;
  if (action === "edit") {
    fillForm(rule);
    form.elements.name.focus();
  } else if (action === "test") {
    await sendTest(rule, button);
  } else if (action === "delete") {
    await deleteRule(rule, button);
  }
});

async function sendTest(rule, button) {
  const out = $("#test-result");
  button.disabled = true;
  showMessage(out, "", `Sending a test through ${rule.name}…`);
  try {
    const result = await api(`${base()}/${rule.id}/test`, { method: "POST", body: {} });
    const where = rule.channel === "teams" ? "the Teams channel" : rule.recipients.join(", ");
    showMessage(out, result.delivered ? "ok" : "error", result.delivered
      ? `Test sent through ${rule.name} to ${where}.`
      : `The test through ${rule.name} was not delivered: ${result.error}`);
  } catch (err) {
    showMessage(out, "error", `Could not send a test. ${problemText(err)}`);
  } finally {
    button.disabled = false;
  }
}

async function deleteRule(rule, button) {
  const ok = await confirmAction({
    title: `Delete rule ${rule.name}?`, danger: true, okLabel: "Delete rule",
    lines: [
      `${rule.name} stops at once sending notifications (${rule.events.map((e) => EVENT_WORDS[e] || e).join(", ").toLowerCase()}) ` +
        `to ${rule.channel === "teams" ? "its Teams channel" : rule.recipients.join(", ")}.`,
      "Deliveries already made stay listed on their tasks. The webhook URL is forgotten: to send there again, paste it into a new rule.",
    ],
  });
  if (!ok) return button.focus();
  try {
    await api(`${base()}/${rule.id}`, { method: "DELETE" });
    if (editing?.id === rule.id) fillForm(null);
    await loadRules();
    formMessage(form, "ok", `Deleted rule ${rule.name}.`);
    $("#rules-title").focus(); // the row (and its button) is gone: focus its table's heading
  } catch (err) {
    showMessage($("#test-result"), "error", `Could not delete ${rule.name}. ${problemText(err)}`);
  }
}

async function loadRules() {
  rules = (await apiAll(base())).items;
  render();
}

async function fill() {
  ctx = await loadProject(session);
  document.title = `Notifications · ${ctx.project.name} · CloudOps`;
  reason = whyNot(ctx.role, "admin", "Changing notification rules");
  environments = (await apiAll(`/api/projects/${encodeURIComponent(ctx.slug)}/environments`)).items;
  const names = await eventNames();
  clear($("#rule-events")).append(...names.map((e) => checkbox("events", e, EVENT_WORDS[e] || e)));
  clear($("#rule-environments")).append(...(environments.length
    ? environments.map((e) => checkbox("environments", e.slug, e.name))
    : [h("span", { class: "muted" }, "No environments yet.")]));
  await loadRules();
  if (reason) lockForm(form, reason, { note: $("#rules-why-not") });
  fillForm(null);
}

loadPage(fill, "Could not load the notification rules");
