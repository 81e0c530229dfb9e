// The activity (audit) log with project, actor and since filters, paged by cursor.
import { api, qs } from "../core/api.js";
import { $, clear, fmtTime, h, showError } from "../core/dom.js";
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

function row(entry) {
  const details = entry.details && Object.keys(entry.details).length ? JSON.stringify(entry.details) : "";
  return h("tr", {},
    h("td", { class: "small" }, fmtTime(entry.at)),
    h("td", { title: entry.actor }, entry.actorName || entry.actor),
    h("td", {}, h("span", { class: "mono" }, entry.action),
      entry.taskId ? h("div", {}, h("a", { href: `/task/?id=${entry.taskId}`, class: "small" }, `task ${entry.taskId.slice(0, 8)}`)) : null),
    h("td", {}, projectNames.get(entry.projectId) || (entry.projectId ? entry.projectId.slice(0, 8) : "—")),
    h("td", { class: "mono small details" }, details));
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
  const projects = (await api("/api/projects")).items;
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
