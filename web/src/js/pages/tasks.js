// All tasks the user can see, filtered by project and status, live through project groups.
import { api, apiAll, param, qs } from "../core/api.js";
import { $, clear, describeTask, h, showError } from "../core/dom.js";
import { live } from "../core/live.js";
import { requireSession } from "../core/session.js";
import { TaskTable } from "../core/tasks.js";

await requireSession();
const envNames = new Map();
const table = new TaskTable($("#all-tasks tbody"), { envNames, limit: 1000, emptyNode: $("#all-tasks-empty") });
let projects = [];
let cursor = null;

function filters() {
  return { project: $("#filter-project").value, status: $("#filter-status").value };
}

table.filter = (task) => {
  const f = filters();
  const project = projects.find((p) => p.slug === f.project);
  if (project && task.projectId !== project.id) return false;
  return !f.status || f.status.split(",").includes(task.status);
};

async function load(append = false) {
  $("#loading").hidden = false;
  $("#page-error").hidden = true;
  try {
    const data = await api(`/api/tasks${qs({ ...filters(), cursor: append ? cursor : null })}`);
    if (append) table.append(data.items); else table.replaceAll(data.items);
    cursor = data.nextCursor;
    $("#more").hidden = !cursor;
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the tasks", retry: () => load(append) });
  } finally {
    $("#loading").hidden = true;
  }
}

// Shown to approvers only: the API lists just the tasks this user may decide.
async function loadApprovals() {
  try {
    const pending = (await apiAll("/api/approvals")).items;
    $("#my-approvals").hidden = pending.length === 0;
    clear($("#my-approvals-list")).append(...pending.map((t) => h("li", {},
      h("a", { href: `/task/?id=${encodeURIComponent(t.id)}` }, describeTask(t)),
      ` · ${envNames.get(t.environmentId) || ""} · requested by ${t.requestedByName || t.requestedBy}`)));
  } catch {
    $("#my-approvals").hidden = true;
  }
}

async function start() {
  try {
    projects = (await apiAll("/api/projects")).items;
    const envLists = await Promise.all(projects.map((p) => apiAll(`/api/projects/${p.id}/environments`)));
    envLists.forEach((list, i) => list.items.forEach((e) => envNames.set(e.id, `${e.name} · ${projects[i].name}`)));
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the projects", retry: start });
    return;
  }
  for (const p of projects) $("#filter-project").append(h("option", { value: p.slug }, p.name));
  restoreFilters();
  await load();
  await loadApprovals();
  live.on("taskUpdated", (task) => {
    table.update(task);
    if (task.approval) loadApprovals();
  });
  live.onResync(() => load());
  live.start(projects.slice(0, 50).map((p) => `project:${p.id}`));
}

// Filters live in the address (?project=&status=): a reload, a bookmark or a shared link
// shows the same list, and Back returns to the previous filter.
function restoreFilters() {
  for (const [name, select] of [["project", $("#filter-project")], ["status", $("#filter-status")]]) {
    const wanted = param(name) || "";
    if ([...select.options].some((o) => o.value === wanted)) select.value = wanted;
  }
}

$("#task-filters").addEventListener("change", () => {
  const next = `${location.pathname}${qs(filters())}`;
  if (next !== `${location.pathname}${location.search}`) history.pushState(null, "", next);
  load();
});
window.addEventListener("popstate", () => {
  restoreFilters();
  load();
});
$("#more").addEventListener("click", () => load(true));
start();
