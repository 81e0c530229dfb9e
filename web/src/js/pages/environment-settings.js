// An environment's settings (project admins): create or edit its target, database and URL
// from the resources granted to the project; its approval rule; its change freezes and
// business hours; delete it. Everyone who may read the project sees the settings; the
// controls a role may not use are disabled with the reason.
import { api, apiAll, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, OPERATION_LABELS, clear, fillTable, fmtTime, formMessage, h, loadPage, problemText, showMessage } from "../core/dom.js";
import { NEEDS, confirmTyped, disableFor, lockForm, roleSentence, showProblems, submitting } from "../core/forms.js";
import { requireSession } from "../core/session.js";
import { clearOnInput } from "../core/validate.js";

const session = await requireSession();
const projectSlug = param("p");
let envSlug = param("e");
const projectPath = `/api/projects/${encodeURIComponent(projectSlug || "")}`;
const envPath = () => `${projectPath}/environments/${encodeURIComponent(envSlug || "")}`;
const OPERATIONS = ["deploy", "backup", "restore", "refresh", "restart", "sandbox_create", "script_run"];
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
let project = null;
let env = null;
let granted = [];
let scripts = [];
let windows = [];

const isAdmin = () => session.can(project.id, "admin");

// Resources granted to this project (or to every project), by kind.
function grantedOf(kind) {
  return granted.filter((r) => r.kind === kind);
}

function option(value, label, selected) {
  return h("option", { value, selected: selected || null }, label);
}

// A select of granted resources; the current value stays choosable even if its grant was
// withdrawn (saved again, the API then says so next to the field).
function fillSelect(select, items, current, { none = null, describe = (r) => r.name } = {}) {
  clear(select);
  if (none !== null) select.append(option("", none, !current));
  for (const r of items) select.append(option(r.name, describe(r), r.name === current));
  if (current && !items.some((r) => r.name === current)) {
    select.append(option(current, `${current} (current; not granted to this project)`, true));
  }
  if (!select.options.length) select.append(option("", "None granted to this project", true));
}

function checks(container, name, values, chosen, labels = {}) {
  clear(container).append(...values.map((value) => {
    const id = `${container.id}-${value}`;
    return h("label", { class: "checkbox", for: id },
      h("input", { type: "checkbox", id, name, value, checked: chosen.includes(value) || null }),
      labels[value] || value);
  }));
}

function checked(container) {
  return [...container.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value);
}

// -- target, database, URL -------------------------------------------------------------
function clusterNamespaces(name) {
  const cluster = grantedOf("cluster").find((r) => r.name === name);
  const names = new Set();
  for (const g of cluster?.grants || []) {
    if (g.project === projectSlug || g.project === "*") for (const n of g.namespaces || []) names.add(n);
  }
  return [...names].sort();
}

function renderNamespaces() {
  const target = env?.target || {};
  const cluster = $("#agent-cluster").value;
  const names = cluster ? clusterNamespaces(cluster) : [];
  const current = cluster === target.cluster ? target.namespace : null;
  fillSelect($("#agent-namespace"), names.map((n) => ({ name: n })), current || names[0] || "",
    { none: cluster ? null : "No cluster chosen" });
  $("#agent-namespace").disabled = !cluster || !isAdmin();
  const own = $("#agent-namespace").value;
  const extra = cluster === target.cluster ? target.namespaces || [] : [];
  checks($("#extra-namespace-list"), "extraNamespace", names.filter((n) => n !== own), extra);
  $("#extra-namespaces").hidden = !cluster || names.length < 2;
}

function siteLabel(r) {
  const m = r.metadata || {};
  return m.site ? `${m.site} · ${m.resourceGroup} · ${m.subscriptionId}` : r.name;
}

function renderUrlChoices() {
  const site = grantedOf("site").find((r) => r.name === $("#site-select").value);
  const urls = [];
  if (site?.metadata?.site && $("#target-type").value === "appservice") {
    urls.push(`https://${site.metadata.site}.azurewebsites.net`);
    const slot = $("#site-slot").value.trim();
    if (slot) urls.push(`https://${site.metadata.site}-${slot}.azurewebsites.net`);
  }
  if (env?.url) urls.push(env.url);
  clear($("#url-choices")).append(...[...new Set(urls)].map((u) => h("option", { value: u })));
}

function showTargetFields() {
  const type = $("#target-type").value;
  $("#agent-fields").hidden = type !== "agent";
  $("#appservice-fields").hidden = type !== "appservice";
  renderUrlChoices();
}

function renderEnvForm() {
  const form = $("#env-form");
  const target = env?.target || { type: "noop" };
  form.elements.slug.value = env?.slug || "";
  form.elements.slug.readOnly = Boolean(env);
  $("#slug-note").textContent = env ? "The slug is part of addresses and cannot change." : "Used in addresses; cannot change later.";
  form.elements.name.value = env?.name || "";
  $("#target-type").value = target.type || "noop";
  fillSelect($("#agent-pool"), grantedOf("pool"), target.type === "agent" ? target.pool : "");
  $("#agent-labels").value = (target.labels || []).join(", ");
  fillSelect($("#deploy-script"), scripts, target.deployScript || "", {
    none: "None (deploys need one on agent targets)", describe: (s) => `${s.name}${s.description ? ` — ${s.description}` : ""}` });
  fillSelect($("#agent-cluster"), grantedOf("cluster"), target.cluster || "", { none: "No cluster (no Kubernetes restarts)" });
  renderNamespaces();
  $("#agent-services").value = Object.entries(target.services || {}).map(([w, s]) => `${w}=${s}`).join("\n");
  const currentSite = target.type === "appservice" ? [target.subscriptionId, target.resourceGroup, target.site].join("/").toLowerCase() : "";
  fillSelect($("#site-select"), grantedOf("site"), currentSite, { describe: siteLabel });
  $("#site-slot").value = target.type === "appservice" ? target.slot || "staging" : "staging";
  $("#site-health").value = target.type === "appservice" ? target.healthPath || "/health" : "/health";
  fillSelect($("#site-pool"), grantedOf("pool"), target.type === "appservice" ? target.pool || "" : "", { none: "None" });
  fillSelect($("#db-connection"), grantedOf("connection"), env?.database?.connection || "",
    { none: env?.database?.connection ? "Keep the current connection" : "No database" });
  form.elements.url.value = env?.url || "";
  showTargetFields();
}

function readServices(text) {
  const services = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [workload, service] = line.split("=").map((x) => (x || "").trim());
    services[workload] = service || "";
  }
  return services;
}

function envBody() {
  const form = $("#env-form");
  const type = $("#target-type").value;
  let target = { type: "noop" };
  if (type === "agent") {
    target = { type, pool: $("#agent-pool").value,
      labels: $("#agent-labels").value.split(",").map((x) => x.trim()).filter(Boolean) };
    if ($("#deploy-script").value) target.deployScript = $("#deploy-script").value;
    if ($("#agent-cluster").value) {
      target.cluster = $("#agent-cluster").value;
      if ($("#agent-namespace").value) target.namespace = $("#agent-namespace").value;
      const extra = checked($("#extra-namespace-list"));
      if (extra.length) target.namespaces = extra;
    }
    const services = readServices($("#agent-services").value);
    if (Object.keys(services).length) target.services = services;
  } else if (type === "appservice") {
    const site = grantedOf("site").find((r) => r.name === $("#site-select").value);
    const m = site?.metadata || (env?.target?.type === "appservice" ? env.target : {});
    target = { type, subscriptionId: m.subscriptionId, resourceGroup: m.resourceGroup, site: m.site,
      slot: $("#site-slot").value.trim(), healthPath: $("#site-health").value.trim() };
    if ($("#site-pool").value) target.pool = $("#site-pool").value;
  }
  const body = { name: form.elements.name.value.trim(), target };
  if (!env) body.slug = form.elements.slug.value.trim();
  if ($("#db-connection").value) body.database = { connection: $("#db-connection").value };
  const url = form.elements.url.value.trim();
  if (url) body.url = url;
  return body;
}

$("#target-type").addEventListener("change", showTargetFields);
$("#agent-cluster").addEventListener("change", renderNamespaces);
$("#agent-namespace").addEventListener("change", () => {
  const own = $("#agent-namespace").value;
  const names = clusterNamespaces($("#agent-cluster").value);
  checks($("#extra-namespace-list"), "extraNamespace", names.filter((n) => n !== own), checked($("#extra-namespace-list")));
});
$("#site-select").addEventListener("change", renderUrlChoices);
$("#site-slot").addEventListener("input", renderUrlChoices);

$("#env-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = envBody();
  const creating = !env;
  const outcome = await submitting(form, () => (creating
    ? api(`${projectPath}/environments`, { method: "POST", body })
    : api(envPath(), { method: "PATCH", body })), {
    what: creating ? "The environment was not created" : "The environment was not saved",
    done: (saved) => `Saved ${saved.name} (${fmtTime(saved.updatedAt)}).`,
  });
  if (!outcome.ok) return;
  if (creating) {
    location.assign(`/environment-settings/?p=${encodeURIComponent(projectSlug)}&e=${encodeURIComponent(outcome.result.slug)}&created=1`);
    return;
  }
  env = { ...env, ...outcome.result };
  renderHead();
});

// -- protection -------------------------------------------------------------------------
function approverRow(approver = { type: "user", id: "" }) {
  const rows = $("#approver-rows");
  const index = rows.children.length;
  const typeId = `approver-${index}-type`;
  const idId = `approver-${index}-id`;
  const remove = h("button", { type: "button", class: "button ghost", "aria-label": `Remove approver ${index + 1}` }, "Remove");
  const row = h("li", { class: "row" },
    h("label", { class: "field", for: typeId }, h("span", {}, "Kind"),
      h("select", { id: typeId, name: typeId, "data-field": `approvers.${index}.type` },
        option("user", "User (stable id)", approver.type === "user"), option("group", "Group or app role", approver.type === "group"))),
    h("label", { class: "field", for: idId }, h("span", {}, "Id"),
      h("input", { id: idId, name: idId, "data-field": `approvers.${index}.id`, value: approver.id, list: "member-choices", autocomplete: "off", required: true })),
    remove);
  remove.addEventListener("click", () => { row.remove(); renumberApprovers(); });
  rows.append(row);
  return row;
}

function renumberApprovers() {
  const rows = [...$("#approver-rows").children];
  const values = rows.map((row) => ({ type: row.querySelector("select").value, id: row.querySelector("input").value }));
  clear($("#approver-rows"));
  values.forEach((v) => approverRow(v));
  if (!isAdmin()) lockForm($("#protection-form"), NEEDS.admin);
}

function protectionSentence(rule) {
  if (!rule) return "Not protected: every operation joins the queue as soon as it is requested.";
  const who = rule.approvers.map((a) => `${a.type} ${a.id}`).join(", ");
  const ops = rule.operations.map((o) => OPERATION_LABELS[o] || o).join(", ");
  return `${ops}: ${rule.requiredApprovals} approval${rule.requiredApprovals === 1 ? "" : "s"} from ${who}, `
    + `${rule.allowSelfApproval ? "requesters may approve their own" : "not by the requester"}, `
    + `cancelled after ${rule.timeoutMinutes} minutes without a decision.`;
}

function renderProtection(rule) {
  const form = $("#protection-form");
  $("#protection-state").textContent = protectionSentence(rule);
  checks($("#protected-operations"), "protectedOperation", OPERATIONS, rule?.operations || [], OPERATION_LABELS);
  clear($("#approver-rows"));
  for (const a of rule?.approvers || [{ type: "user", id: "" }]) approverRow(a);
  form.elements.requiredApprovals.value = rule?.requiredApprovals ?? 1;
  form.elements.timeoutMinutes.value = rule?.timeoutMinutes ?? 1440;
  form.elements.allowSelfApproval.checked = Boolean(rule?.allowSelfApproval);
  $("#protection-remove").hidden = !rule;
}

async function loadMembers() {
  const choices = new Map([[session.me.id, `you (${session.name})`]]);
  try {
    for (const a of (await apiAll(`${projectPath}/roles`)).items) {
      if (a.principalType !== "service") choices.set(a.principalId, `${a.principalType} · ${a.role}`);
    }
  } catch { /* suggestions only */ }
  clear($("#member-choices")).append(...[...choices].map(([id, label]) => h("option", { value: id }, label)));
}

$("#add-approver").addEventListener("click", () => approverRow().querySelector("input").focus());

$("#protection-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    operations: checked($("#protected-operations")),
    approvers: [...$("#approver-rows").children].map((row) => ({
      type: row.querySelector("select").value, id: row.querySelector("input").value.trim() })),
    requiredApprovals: Number(form.elements.requiredApprovals.value),
    allowSelfApproval: form.elements.allowSelfApproval.checked,
    timeoutMinutes: Number(form.elements.timeoutMinutes.value),
  };
  const outcome = await submitting(form, () => api(`${envPath()}/protection`, { method: "PUT", body }), {
    what: "The approval rule was not saved", done: () => "Approval rule saved." });
  if (outcome.ok) {
    env.protection = outcome.result;
    $("#protection-state").textContent = protectionSentence(outcome.result);
    $("#protection-remove").hidden = false;
  }
});

$("#protection-remove").addEventListener("click", async () => {
  const form = $("#protection-form");
  const ok = await confirmAction({ title: `Remove the approval rule of ${env.name}?`, okLabel: "Remove protection", danger: true,
    lines: [`Operations on ${env.name} will join its queue without anyone approving them.`,
      "Tasks already waiting for approval keep their own rule's decision."] });
  if (!ok) return;
  try {
    await api(`${envPath()}/protection`, { method: "DELETE" });
    env.protection = null;
    renderProtection(null);
    formMessage(form, "ok", "Protection removed.");
  } catch (err) {
    showProblems(form, err, { what: "Protection not removed" });
  }
});

// -- freezes ----------------------------------------------------------------------------
function whenText(w) {
  if (w.type === "freeze") return `${w.start.replace("T", " ")} → ${w.end.replace("T", " ")} (${w.timezone})`;
  return `${w.days.join(", ")} ${w.opens}–${w.closes} (${w.timezone})`;
}

function renderWindows(setting) {
  windows = setting.windows || [];
  fillTable($("#windows-table"), windows.map((w, index) => {
    const remove = h("button", { type: "button", class: "button ghost danger-text", id: `window-remove-${index}` }, "Remove…");
    if (!isAdmin()) disableFor(remove, NEEDS.admin);
    remove.addEventListener("click", () => removeWindow(index));
    return h("tr", {}, h("td", {}, w.name), h("td", {}, w.type === "freeze" ? "change freeze" : "business hours"),
      h("td", {}, whenText(w)), h("td", {}, w.operations.map((o) => OPERATION_LABELS[o] || o).join(", ")),
      h("td", {}, w.mode === "refuse" ? "refused" : "held"), h("td", {}, remove));
  }), $("#no-windows"));
  const o = setting.override;
  $("#freezes-state").textContent = o ? `Every window is lifted until ${fmtTime(o.until)} by ${o.by}: “${o.reason}”.`
    : "Operations a window covers are held until it ends, or refused, as each window says.";
}

async function saveWindows(list, form, what) {
  return submitting(form, () => api(`${envPath()}/freezes`, { method: "PUT", body: { windows: list } }), { what });
}

async function removeWindow(index) {
  const w = windows[index];
  const ok = await confirmAction({ title: `Remove “${w.name}” from ${env.name}?`, okLabel: "Remove window", danger: true,
    lines: [`${w.type === "freeze" ? "The freeze" : "The business hours"} (${whenText(w)}) stop applying; held tasks it covers run now.`] });
  if (!ok) return;
  const outcome = await saveWindows(windows.filter((_, i) => i !== index), $("#window-form"), "The window was not removed");
  if (outcome.ok) renderWindows(outcome.result);
}

$("#window-type").addEventListener("change", (event) => {
  const hours = event.target.value === "business_hours";
  for (const el of document.querySelectorAll("#window-form [data-hours]")) el.hidden = !hours;
  for (const el of document.querySelectorAll("#window-form [data-freeze]")) el.hidden = hours;
});

$("#window-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const f = form.elements;
  const w = { name: f.name.value.trim(), type: f.type.value, timezone: f.timezone.value.trim(),
    operations: checked($("#window-operations")), mode: f.mode.value };
  if (w.type === "freeze") Object.assign(w, { start: f.start.value || null, end: f.end.value || null });
  else Object.assign(w, { days: checked($("#window-days")), opens: f.opens.value || null, closes: f.closes.value || null });
  const outcome = await saveWindows([...windows, w], form, "The window was not added");
  if (outcome.ok) {
    renderWindows(outcome.result);
    formMessage(form, "ok", `Added “${w.name}”.`);
  }
});

$("#override-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { reason: form.elements.reason.value.trim(), minutes: Number(form.elements.minutes.value) };
  const ok = await confirmAction({ title: `Lift every window of ${env.name}?`, okLabel: "Lift the windows", danger: true,
    lines: [`For ${body.minutes} minutes no freeze or business hours apply to ${env.name}: held tasks run now, and new requests run at once.`,
      `Recorded with your name and the reason: “${body.reason}”.`] });
  if (!ok) return;
  const outcome = await submitting(form, () => api(`${envPath()}/freezes/override`, { method: "POST", body }), {
    what: "The windows were not lifted" });
  if (outcome.ok) {
    renderWindows(outcome.result);
    formMessage(form, "ok", `Lifted until ${fmtTime(outcome.result.override.until)}.`);
  }
});

// -- delete -----------------------------------------------------------------------------
$("#env-delete").addEventListener("click", async () => {
  const message = $("#delete-message");
  const ok = await confirmTyped({
    title: `Delete environment ${env.name}?`, name: env.slug, okLabel: "Delete environment",
    lines: [`${env.name} (${env.slug}) leaves project ${project.name}.`,
      h("ul", {}, h("li", {}, "Its tasks and their logs, its backup records, approval rule, windows and backup schedules are deleted."),
        h("li", {}, "The activity log keeps what happened."),
        h("li", {}, "Nothing on the target is touched: sites, databases and agents stay as they are.")),
      "An environment that still has sandboxes cannot be deleted: tear them down first."],
  });
  if (!ok) return;
  try {
    await api(envPath(), { method: "DELETE" });
    location.assign(`/project-settings/?p=${encodeURIComponent(projectSlug)}&deleted=${encodeURIComponent(env.slug)}`);
  } catch (err) {
    showMessage(message, "error", `Not deleted. ${problemText(err)}`);
  }
});

// -- page -------------------------------------------------------------------------------
function renderHead() {
  const title = env ? `${env.name} · settings` : "New environment";
  document.title = `${title} · ${project.name} · CloudOps`;
  $("#settings-title").textContent = title;
  $("#crumb-env").textContent = env ? env.name : "New environment";
  $("#role-here").textContent = roleSentence(session, project.id)
    + (isAdmin() ? "" : " Changing environments needs the admin role on this project.");
  const open = $("#open-environment");
  open.hidden = !env;
  if (env) open.href = `/environment/?p=${encodeURIComponent(projectSlug)}&e=${encodeURIComponent(env.slug)}`;
}

async function fill() {
  if (!projectSlug) throw Object.assign(new Error("The address needs ?p=<project>."), { detail: "The address needs ?p=<project>." });
  project = await api(projectPath);
  $("#crumb-project").textContent = project.name;
  $("#crumb-project").href = `/project/?p=${encodeURIComponent(projectSlug)}`;
  const [resources, catalogue, current] = await Promise.all([
    apiAll("/api/resources"), apiAll(`${projectPath}/scripts`), envSlug ? api(envPath()) : null]);
  granted = resources.items.filter((r) => (r.grants || []).some((g) => g.project === projectSlug || g.project === "*"));
  scripts = catalogue.items;
  env = current;
  renderHead();
  renderEnvForm();
  if (env) {
    renderProtection(env.protection);
    checks($("#window-operations"), "windowOperation", OPERATIONS, ["deploy"], OPERATION_LABELS);
    checks($("#window-days"), "day", DAYS, ["mon", "tue", "wed", "thu", "fri"]);
    renderWindows(await api(`${envPath()}/freezes`));
    await loadMembers();
  }
  $("#protection-panel").hidden = !env;
  $("#freezes-panel").hidden = !env;
  $("#override-panel").hidden = !env;
  $("#delete-panel").hidden = !env;
  if (param("created")) formMessage($("#env-form"), "ok", `Created ${env.name}. Protect it and set its windows below.`);
  if (!isAdmin()) {
    for (const form of [$("#env-form"), $("#protection-form"), $("#window-form"), $("#override-form")]) lockForm(form, NEEDS.admin);
    disableFor($("#env-delete"), NEEDS.admin);
  }
}

function load() {
  return loadPage(fill, () => `Could not load the settings of ${envSlug || "a new environment"}`);
}

for (const id of ["#env-form", "#protection-form", "#window-form", "#override-form"]) clearOnInput($(id));
load();
