// Agent pools and their agents (live): status, labels, version, last heartbeat, current
// job. Global admins also create pools, issue registration tokens (shown once, with the
// command line to paste), disable, enable and revoke agents, and grant pools and other
// resources to projects. Everyone else sees the same controls disabled, with the reason.
//
// Pool sections are built once and updated in place, so a token just shown or a form
// being typed survives live updates and polling.
import { api, apiAll } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, clear, describeTask, fmtTime, h, loadPage, problemText, showMessage, timeNode } from "../core/dom.js";
import { clearProblems, submitting } from "../core/forms.js";
import { live } from "../core/live.js";
import { requireSession } from "../core/session.js";
import { clearOnInput, markField } from "../core/validate.js";

const session = await requireSession();
const isAdmin = session.canGlobally("admin");
const adminWhy = isAdmin ? null
  : `Managing pools, agents and grants needs the global admin role; yours is ${session.globalRole || "a project role only"}.`;
const agents = new Map();   // agent id → agent
const jobs = new Map();     // agent name → running task
const sections = new Map(); // pool name → {section, tbody, badge, grants}
let pools = [];
let resources = [];
let projects = [];

const why = () => (adminWhy ? { disabled: true, "aria-describedby": "admin-why-not" } : {});
const idOf = (text) => String(text).replace(/[^a-zA-Z0-9_-]/g, "-");

const message = (kind, ...content) => showMessage($("#agents-message"), kind, ...content);

// ---- agents ---------------------------------------------------------------------------

function agentRow(a) {
  const revoked = a.status === "revoked";
  return h("tr", { dataset: { agentId: a.id, status: a.status } },
    h("td", {}, h("span", { class: "agent-name" }, a.name), h("div", { class: "muted small mono" }, a.id.slice(0, 8))),
    h("td", {}, h("span", { class: `badge agent-${a.status}` }, a.status)),
    h("td", {}, h("span", { class: "chips" }, ...(a.labels.length ? a.labels.map((l) => h("span", { class: "chip" }, l)) : [h("span", { class: "muted" }, "none")]))),
    currentJob(a),
    h("td", { class: "small" }, `${a.version || "?"}`, h("div", { class: "muted" }, a.os || "")),
    h("td", { class: "small" }, timeNode(a.lastHeartbeatAt, { relative: true })),
    h("td", {}, revoked ? h("span", { class: "muted small" }, `revoked ${a.revokedAt ? fmtTime(a.revokedAt) : ""}`)
      : h("div", { class: "row-actions" },
        h("button", { type: "button", class: "button ghost", dataset: { action: a.enabled ? "disable" : "enable" }, ...why(),
          "aria-label": `${a.enabled ? "Disable" : "Enable"} agent ${a.name}` }, a.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "button ghost danger-text", dataset: { action: "revoke" }, ...why(),
          "aria-label": `Revoke agent ${a.name}` }, "Revoke"))));
}

// Agents carry no current-job field in the API; a running task names its agent in its
// reason ("running on agent NAME"), so that is where the current job comes from.
function currentJob(agent) {
  const task = jobs.get(agent.name);
  if (!task) return h("td", { class: "muted" }, "idle");
  return h("td", {}, h("a", { href: `/task/?id=${task.id}` }, describeTask(task)),
    h("div", { class: "muted small" }, `${task.progress}%`));
}

async function loadJobs() {
  const running = await api("/api/tasks?status=running&limit=200");
  jobs.clear();
  for (const task of running.items) {
    const match = /running on agent (\S+)/.exec(task.reason || "");
    if (match) jobs.set(match[1], task);
  }
}

async function agentAction(pool, agent, action, button) {
  if (action !== "enable") {
    const revoke = action === "revoke";
    const ok = await confirmAction({
      title: `${revoke ? "Revoke" : "Disable"} agent ${agent.name}?`, danger: revoke,
      okLabel: `${revoke ? "Revoke" : "Disable"} ${agent.name}`, typeToConfirm: revoke ? agent.name : null,
      lines: revoke
        ? [`${agent.name}'s key stops working for good: it cannot call the control plane again and must register anew with a new token.`,
          "Jobs it is running now fail over at once (re-queued where safe to repeat, failed otherwise)."]
        : [`${agent.name} gets no new jobs; a job it is running now finishes. It keeps its key, and Enable brings it back.`],
    });
    if (!ok) return button.focus();
  }
  try {
    const changed = await api(`/api/pools/${encodeURIComponent(pool.name)}/agents/${agent.id}/${action}`, { method: "POST", body: {} });
    agents.set(changed.id, changed);
    renderAgents(pool);
    message("ok", `${agent.name} is now ${changed.status}.`);
    // the row was redrawn: keep the keyboard where it was (its first action, if any)
    sections.get(pool.name)?.tbody.querySelector(`tr[data-agent-id="${changed.id}"] button`)?.focus();
  } catch (err) {
    message("error", `Could not ${action} ${agent.name}. ${problemText(err)}`);
  }
}

function renderAgents(pool) {
  const part = sections.get(pool.name);
  if (!part) return;
  const members = [...agents.values()].filter((a) => a.poolId === pool.id).sort((x, y) => x.name.localeCompare(y.name));
  const online = members.filter((a) => a.status === "online").length;
  part.badge.className = `badge ${online ? "agent-online" : "agent-offline"}`;
  part.badge.textContent = `${online} of ${members.length} online`;
  clear(part.tbody).append(...members.map(agentRow));
  part.table.hidden = members.length === 0;
  part.none.hidden = members.length > 0;
}

// ---- registration tokens ----------------------------------------------------------------

function copyButton(target, label) {
  return h("button", { type: "button", class: "button ghost", "aria-label": label, onclick: async (event) => {
    const text = target.textContent;
    try {
      await navigator.clipboard.writeText(text);
      event.currentTarget.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(target);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      event.currentTarget.textContent = "Selected: press Ctrl+C";
    }
  } }, "Copy");
}

function tokenBox(pool) {
  const id = idOf(pool.name);
  const form = h("form", { class: "form-grid", id: `token-form-${id}`, novalidate: true },
    h("fieldset", { class: "plain wide", disabled: Boolean(adminWhy) }, h("div", { class: "form-grid" },
      h("label", { class: "field narrow" }, h("span", {}, "Valid for (minutes)"),
        h("input", { name: "expiresInMinutes", type: "number", min: "1", step: "1", value: "60" })),
      h("label", { class: "field narrow" }, h("span", {}, "Agents it may register"),
        h("input", { name: "maxUses", type: "number", min: "1", max: "10000", step: "1", value: "1" })),
      h("label", { class: "field" }, h("span", {}, "Labels for the command line"),
        h("input", { name: "labels", placeholder: "linux, postgres", autocomplete: "off" })))),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button primary", ...why() }, "Issue token")));
  const out = h("div", { class: "secret-box", id: `token-output-${id}`, hidden: true });
  clearOnInput(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const minutes = Number(form.elements.expiresInMinutes.value);
    const uses = Number(form.elements.maxUses.value);
    const body = { expiresInMinutes: minutes };
    if (uses > 1) Object.assign(body, { multiUse: true, maxUses: uses });
    const outcome = await submitting(form,
      () => api(`/api/pools/${encodeURIComponent(pool.name)}/registration-tokens`, { method: "POST", body }),
      { what: "No token issued" });
    if (outcome.ok) {
      const issued = outcome.result;
      const labels = form.elements.labels.value.split(",").map((x) => x.trim()).filter(Boolean);
      const command = [`cloudops-agent register --url ${location.origin} --pool ${issued.pool} --token ${issued.token}`
        + (labels.length ? ` --labels ${labels.join(",")}` : ""), "cloudops-agent run"].join("\n");
      const tokenPre = h("pre", { class: "secret mono", id: `token-${id}` }, issued.token);
      const commandPre = h("pre", { class: "secret mono", id: `command-${id}` }, command);
      out.replaceChildren(
        h("p", { class: "form-message ok", role: "status" }, `Copy it now: this token is not shown again. It registers ${issued.maxUses || 1} agent${(issued.maxUses || 1) > 1 ? "s" : ""} until ${fmtTime(issued.expiresAt)}.`),
        h("div", { class: "copy-row" }, tokenPre, copyButton(tokenPre, `Copy the token for ${pool.name}`)),
        h("p", { class: "muted small" }, "On the agent's machine, run:"),
        h("div", { class: "copy-row" }, commandPre, copyButton(commandPre, `Copy the command line for ${pool.name}`)));
      out.hidden = false;
      tokenPre.setAttribute("tabindex", "0");
      tokenPre.focus();
    }
  });
  return h("details", { class: "token-details" },
    h("summary", {}, `Register an agent in ${pool.name}`),
    h("p", { class: "muted small" }, "An agent trades this token for its own key once. The token is shown once."), form, out);
}

// ---- grants -----------------------------------------------------------------------------

function grantChips(resource) {
  const grants = resource.grants || [];
  if (!grants.length) return [h("span", { class: "muted" }, "no project")];
  return grants.map((g) => h("span", { class: "chip", dataset: { grantId: g.id } },
    g.project === "*" ? "every project" : g.project,
    g.namespaces?.length ? ` (${g.namespaces.join(", ")})` : "", " ",
    h("button", { type: "button", class: "linklike", dataset: { action: "withdraw", grantId: g.id, resourceId: resource.id }, ...why(),
      "aria-label": `Withdraw ${resource.name} from ${g.project === "*" ? "every project" : g.project}` }, "×")));
}

function grantForm(resource) {
  const id = `grant-form-${idOf(resource.id)}`;
  const taken = new Set((resource.grants || []).map((g) => g.project));
  const options = [h("option", { value: "" }, "Choose a project…"),
    ...projects.filter((p) => !taken.has(p.slug)).map((p) => h("option", { value: p.slug }, p.name)),
    taken.has("*") ? null : h("option", { value: "*" }, "Every project (also future ones)")].filter(Boolean);
  const form = h("form", { class: "row-actions", id, novalidate: true, dataset: { resourceId: resource.id } },
    h("label", { class: "field inline" }, h("span", { class: "sr-only" }, `Project to grant ${resource.name} to`),
      h("select", { name: "project", ...why() }, ...options)),
    resource.kind === "cluster" ? h("label", { class: "field inline" }, h("span", { class: "sr-only" }, "Namespaces"),
      h("input", { name: "namespaces", placeholder: "namespaces, comma separated", ...why() })) : null,
    h("button", { type: "submit", class: "button ghost", ...why(), "aria-label": `Grant ${resource.name}` }, "Grant"));
  clearOnInput(form);
  return form;
}

async function submitGrant(form) {
  const resource = resources.find((r) => r.id === form.dataset.resourceId);
  const body = { project: form.elements.project.value };
  if (form.elements.namespaces) {
    const ns = form.elements.namespaces.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (ns.length) body.namespaces = ns;
  }
  clearProblems(form);
  if (!body.project) {
    markField(form.elements.project, `Choose the project to grant ${resource.name} to.`);
    form.elements.project.focus();
    return;
  }
  const outcome = await submitting(form,
    () => api(`/api/resources/${resource.id}/grants`, { method: "POST", body }), { what: "Not granted" });
  if (outcome.ok) {
    await loadResources();
    message("ok", `Granted ${resource.name} to ${body.project === "*" ? "every project" : body.project}.`);
  }
}

async function withdraw(button) {
  const resource = resources.find((r) => r.id === button.dataset.resourceId);
  const grant = resource?.grants.find((g) => g.id === button.dataset.grantId);
  if (!grant) return;
  const who = grant.project === "*" ? "every project" : `project ${grant.project}`;
  const ok = await confirmAction({
    title: `Withdraw ${resource.name} from ${who}?`, danger: true, okLabel: "Withdraw grant",
    lines: [`Environments of ${who} can no longer use ${resource.kind} ${resource.name}.`,
      "Their tasks still waiting for it fail now, saying why; running work is not stopped."],
  });
  if (!ok) return button.focus();
  try {
    await api(`/api/resources/${resource.id}/grants/${grant.id}`, { method: "DELETE" });
    await loadResources();
    message("ok", `Withdrew ${resource.name} from ${who}.`);
  } catch (err) {
    message("error", `Could not withdraw the grant. ${problemText(err)}`);
  }
}

let shownGrants = "";

function renderGrants() {
  // re-read on every poll: rebuild only what changed, so a choice being made survives
  const signature = JSON.stringify([resources, projects.map((p) => p.slug), pools.map((p) => p.name)]);
  if (signature === shownGrants) return;
  shownGrants = signature;
  for (const pool of pools) {
    const part = sections.get(pool.name);
    const resource = resources.find((r) => r.kind === "pool" && r.name === pool.name);
    if (!part) continue;
    clear(part.grants).append(h("span", { class: "chips" }, ...(resource ? grantChips(resource) : [h("span", { class: "muted" }, "not registered")])),
      resource ? grantForm(resource) : "");
  }
  const others = resources.filter((r) => r.kind !== "pool");
  $("#resources-panel").hidden = others.length === 0;
  clear($("#resources tbody")).append(...others.map((r) => h("tr", { dataset: { resourceId: r.id } },
    h("td", {}, h("strong", {}, r.name), r.description ? h("div", { class: "muted small" }, r.description) : null),
    h("td", {}, r.kind),
    h("td", {}, h("span", { class: "chips" }, ...grantChips(r))),
    h("td", {}, grantForm(r)))));
}

// ---- pools ------------------------------------------------------------------------------

function poolSection(pool) {
  const id = idOf(pool.name);
  const badge = h("span", { class: "badge" });
  const tbody = h("tbody");
  const table = h("div", { class: "table-wrap" }, h("table", { class: "agents", id: `agents-${id}` },
    h("caption", { class: "sr-only" }, `Agents in pool ${pool.name}`),
    h("thead", {}, h("tr", {}, ...["Agent", "Status", "Labels", "Current job", "Version", "Last heartbeat", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    tbody));
  const none = h("p", { class: "muted" }, "No agents registered in this pool.");
  const grants = h("div", { class: "grants", id: `grants-${id}` });
  const section = h("section", { class: "panel pool", id: `pool-${id}`, "aria-labelledby": `pool-title-${id}`, dataset: { pool: pool.name } },
    h("div", { class: "panel-head" }, h("h2", { id: `pool-title-${id}` }, pool.name), badge),
    pool.description ? h("p", { class: "muted" }, pool.description) : null,
    table, none,
    h("h3", {}, "Granted to"), grants,
    tokenBox(pool));
  section.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    if (button.dataset.action === "withdraw") return withdraw(button);
    const agent = agents.get(button.closest("tr")?.dataset.agentId);
    if (agent) agentAction(pool, agent, button.dataset.action, button);
  });
  section.addEventListener("submit", (event) => {
    if (event.target.matches("form[data-resource-id]")) {
      event.preventDefault();
      submitGrant(event.target);
    }
  });
  sections.set(pool.name, { section, tbody, badge, grants, table, none });
  return section;
}

function renderPools() {
  const root = $("#pools");
  for (const pool of pools) {
    if (!sections.has(pool.name)) root.append(poolSection(pool));
    renderAgents(pool);
  }
  $("#no-pools").hidden = pools.length > 0;
}

async function loadResources() {
  resources = (await apiAll("/api/resources")).items;
  renderGrants();
}

async function fill() {
  const [poolPage, resourcePage, projectPage] = await Promise.all([
    apiAll("/api/pools"), apiAll("/api/resources"), apiAll("/api/projects")]);
  pools = poolPage.items;
  resources = resourcePage.items;
  projects = projectPage.items;
  const lists = await Promise.all(pools.map((p) => apiAll(`/api/pools/${encodeURIComponent(p.name)}/agents`)));
  agents.clear();
  for (const list of lists) for (const a of list.items) agents.set(a.id, a);
  await loadJobs().catch(() => jobs.clear());
  renderPools();
  renderGrants();
}

function load() {
  return loadPage(fill, "Could not load the agent pools");
}

const poolForm = $("#pool-form");
clearOnInput(poolForm);
poolForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: poolForm.elements.name.value.trim(), description: poolForm.elements.description.value.trim() };
  const outcome = await submitting(poolForm, () => api("/api/pools", { method: "POST", body }), { what: "No pool created" });
  if (outcome.ok) {
    const pool = outcome.result;
    poolForm.reset();
    await load();
    message("ok", `Created pool ${pool.name}. Register its first agent below.`);
    sections.get(pool.name)?.section.querySelector("details")?.setAttribute("open", "");
  }
});

$("#global-role").textContent = `your role: ${session.globalRole ? `${session.globalRole} (all projects)` : "per project"}`;
$("#admin-why-not").hidden = !adminWhy;
$("#admin-why-not").textContent = adminWhy || "";
for (const control of poolForm.querySelectorAll("input, button")) {
  control.disabled = Boolean(adminWhy);
  if (adminWhy) control.setAttribute("aria-describedby", "admin-why-not");
}

await load();
live.on("agentUpdated", (agent) => {
  agents.set(agent.id, agent);
  loadJobs().catch(() => {}).then(() => pools.filter((p) => p.id === agent.poolId).forEach(renderAgents));
});
live.onResync(load);
live.start(["agents"]);
setInterval(() => pools.forEach(renderAgents), 15000); // keep "last heartbeat" ages current
