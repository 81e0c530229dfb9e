// Agent pools and their agents: online/offline, labels, version, last heartbeat (live).
import { api, apiAll } from "../core/api.js";
import { $, clear, describeTask, h, showError, timeNode } from "../core/dom.js";
import { live } from "../core/live.js";
import { requireSession } from "../core/session.js";

await requireSession();
const agents = new Map();   // agent id → agent
const jobs = new Map();     // agent name → running task
let pools = [];

function agentRow(a) {
  return h("tr", { dataset: { agentId: a.id, status: a.status } },
    h("td", {}, h("span", { class: "agent-name" }, a.name), h("div", { class: "muted small mono" }, a.id.slice(0, 8))),
    h("td", {}, h("span", { class: `badge agent-${a.status}` }, a.status)),
    h("td", {}, h("span", { class: "chips" }, ...(a.labels.length ? a.labels.map((l) => h("span", { class: "chip" }, l)) : [h("span", { class: "muted" }, "none")]))),
    currentJob(a),
    h("td", { class: "small" }, `${a.version || "?"}`, h("div", { class: "muted" }, a.os || "")),
    h("td", { class: "small" }, timeNode(a.lastHeartbeatAt, { relative: true })));
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

function render() {
  const root = clear($("#pools"));
  for (const pool of pools) {
    const members = [...agents.values()].filter((a) => a.poolId === pool.id).sort((x, y) => x.name.localeCompare(y.name));
    const online = members.filter((a) => a.status === "online").length;
    root.append(h("section", { class: "panel", "aria-labelledby": `pool-${pool.id}` },
      h("div", { class: "panel-head" }, h("h2", { id: `pool-${pool.id}` }, pool.name),
        h("span", { class: `badge ${online ? "agent-online" : "agent-offline"}` }, `${online} of ${members.length} online`)),
      pool.description ? h("p", { class: "muted" }, pool.description) : null,
      members.length ? h("div", { class: "table-wrap" }, h("table", { class: "agents" },
        h("caption", { class: "sr-only" }, `Agents in pool ${pool.name}`),
        h("thead", {}, h("tr", {}, ...["Agent", "Status", "Labels", "Current job", "Version", "Last heartbeat"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...members.map(agentRow))))
        : h("p", { class: "muted" }, "No agents registered in this pool.")));
  }
  $("#no-pools").hidden = pools.length > 0;
}

async function load() {
  $("#loading").hidden = false;
  try {
    pools = (await apiAll("/api/pools")).items;
    const lists = await Promise.all(pools.map((p) => apiAll(`/api/pools/${encodeURIComponent(p.name)}/agents`)));
    agents.clear();
    for (const list of lists) for (const a of list.items) agents.set(a.id, a);
    await loadJobs().catch(() => jobs.clear());
    render();
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the agent pools", retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

await load();
live.on("agentUpdated", (agent) => { agents.set(agent.id, agent); loadJobs().catch(() => {}).then(render); });
live.onResync(load);
live.start(["agents"]);
setInterval(render, 15000); // keep "last heartbeat" ages current
