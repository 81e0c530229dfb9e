// The activity (audit) log with project, actor and since filters, paged by cursor.
import { api, apiAll, qs } from "../core/api.js";
import { $, clear, h, showError, timeNode } from "../core/dom.js";
import { requireSession } from "../core/session.js";

const session = await requireSession();
const projectNames = new Map();
let cursor = null;

function filters() {
  const since = $("#filter-since").value;
  return {
    project: $("#filter-project").value,
    actor: $("#filter-actor").value.trim(),
    since: since ? new Date(since).toISOString() : "",
  };
}

const OPERATIONS = {
  deploy: "a deployment", backup: "a backup", restore: "a restore", restart: "a restart",
  sandbox_create: "a sandbox", sandbox_delete: "a sandbox teardown", script_run: "a script run",
};
const STATUS_WORDS = {
  queued: "was queued", waiting: "is waiting", running: "started running", succeeded: "succeeded",
  failed: "failed", cancelled: "was cancelled", timed_out: "timed out",
};

const list = (items) => (items || []).join(", ") || "none";

// What happened, as a sentence; unknown actions fall back to their name and details.
function sentence(entry) {
  const d = entry.details || {};
  const [subject, verb] = entry.action.split(".");
  switch (entry.action) {
    case "task.created": return `requested ${OPERATIONS[d.operation] || d.operation || "a task"}`;
    case "task.cancel_requested": return `asked to cancel the task (it was ${String(d.status || "").replace("_", " ")})`;
    case "access.denied": return `was refused: ${d.detail || "not allowed"}${d.method ? ` (${d.method} ${new URL(d.url, location.origin).pathname})` : ""}`;
    case "approval.approve": return `approved the task${d.comment ? `: “${d.comment}”` : ""}`;
    case "approval.reject": return `rejected the task${d.comment ? `: “${d.comment}”` : ""}`;
    case "role.assigned": return `gave ${d.principalType || ""} ${d.principalId || ""} the ${d.role || ""} role`.replace(/\s+/g, " ");
    case "role.revoked": return `revoked ${d.principalType || ""} ${d.principalId || ""}'s ${d.role || ""} role`.replace(/\s+/g, " ");
    case "environment.protected": return `protected ${list(d.operations)} with ${d.requiredApprovals || 1} approval(s) from ${(d.approvers || []).map((a) => a.id).join(", ")}`;
    case "environment.unprotected": return "removed the environment's approval rule";
    case "project.updated": return `changed the project's ${list(d.fields)}`;
    case "sandbox.extended": return `extended sandbox ${d.sandbox || ""} by ${d.hours} hour(s)`;
    case "sandbox.expired": return `tore down expired sandbox ${d.sandbox || ""}`;
    case "backup.pruned": return `pruned backup ${String(d.backup || "").slice(0, 8)} (retention)`;
    case "schedule.fired": return "started a scheduled backup";
    default: break;
  }
  if (subject === "task" && STATUS_WORDS[verb]) {
    const why = d.error || d.reason;
    return `the task ${STATUS_WORDS[verb]}${why && why !== verb ? `: ${String(why).split("\n")[0]}` : ""}`;
  }
  const what = d.slug || d.name || d.pool || d.script || d.sandbox || "";
  return `${verb ? verb.replace("_", " ") : entry.action} ${subject.replace("_", " ")}${what ? ` ${what}` : ""}`;
}

function row(entry) {
  const details = entry.details && Object.keys(entry.details).length ? entry.details : null;
  return h("tr", {},
    h("td", { class: "small" }, timeNode(entry.at)),
    h("td", { title: entry.actor }, entry.actorName || entry.actor),
    h("td", { class: "activity-what" }, h("span", {}, sentence(entry)),
      entry.taskId ? h("div", {}, h("a", { href: `/task/?id=${entry.taskId}`, class: "small" }, `task ${entry.taskId.slice(0, 8)}`)) : null),
    h("td", {}, projectNames.get(entry.projectId) || (entry.projectId ? entry.projectId.slice(0, 8) : "—")),
    h("td", { class: "small details" }, details
      ? h("details", {}, h("summary", { class: "mono" }, entry.action), h("pre", { class: "mono" }, JSON.stringify(details, null, 2)))
      : h("span", { class: "mono muted" }, entry.action)));
}

async function load(append = false) {
  $("#loading").hidden = false;
  $("#page-error").hidden = true;
  try {
    const data = await api(`/api/activity${qs({ ...filters(), cursor: append ? cursor : null })}`);
    const tbody = $("#activity tbody");
    if (!append) clear(tbody);
    tbody.append(...data.items.map(row));
    cursor = data.nextCursor;
    $("#more").hidden = !cursor;
    $("#activity-empty").hidden = tbody.children.length > 0;
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the activity log", retry: () => load(append) });
  } finally {
    $("#loading").hidden = true;
  }
}

try {
  const projects = (await apiAll("/api/projects")).items;
  const select = $("#filter-project");
  for (const p of projects) {
    projectNames.set(p.id, p.name);
    select.append(h("option", { value: p.slug }, p.name));
  }
  // Reading all activity needs a global role; others must pick a project.
  if (!session.globalRole) {
    select.querySelector("option[value='']").remove();
    if (!projects.length) select.append(h("option", { value: "" }, "No projects"));
  }
} catch (err) {
  showError($("#page-error"), err, { what: "Could not load the projects" });
}

$("#activity-filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("#filter-project").addEventListener("change", () => load());
$("#more").addEventListener("click", () => load(true));
load();
