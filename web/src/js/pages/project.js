// A project: its environments (admins add one on its settings page), recent tasks (live).
import { api, apiAll, param } from "../core/api.js";
import { $, clear, h, loadPage, timeNode } from "../core/dom.js";
import { live } from "../core/live.js";
import { requireSession } from "../core/session.js";
import { TaskTable } from "../core/tasks.js";

const session = await requireSession();
const slug = param("p");
const envNames = new Map();
let project = null;
let table = null;

function envCard(env) {
  return h("a", { class: "card env-card", href: `/environment/?p=${encodeURIComponent(slug)}&e=${encodeURIComponent(env.slug)}` },
    h("h3", {}, env.name),
    h("p", { class: "mono muted small" }, env.slug),
    h("p", { class: "chips" },
      h("span", { class: "chip" }, env.kind),
      h("span", { class: "chip" }, `target: ${env.target?.type || "none"}`),
      env.expiresAt ? h("span", { class: "chip warn" }, timeNode(env.expiresAt, { prefix: "expires " })) : null));
}

async function loadTasks() {
  const data = await api(`/api/tasks?project=${encodeURIComponent(slug)}&limit=20`);
  table.replaceAll(data.items);
}

async function fill() {
  if (!slug) throw Object.assign(new Error("The address has no ?p=<project> part."), { status: 0, detail: "The address has no ?p=<project> part." });
  project = await api(`/api/projects/${encodeURIComponent(slug)}`);
  const envs = await apiAll(`/api/projects/${encodeURIComponent(slug)}/environments`);
  document.title = `${project.name} · CloudOps`;
  $("#crumb-project").textContent = project.name;
  $("#project-name").textContent = project.name;
  $("#project-description").textContent = project.description || "";
  $("#project-role").textContent = `your role: ${session.roleOn(project.id) || "none"}`;
  clear($("#environment-list")).append(...envs.items.map(envCard));
  $("#no-environments").hidden = envs.items.length > 0;
  for (const env of envs.items) envNames.set(env.id, env.name);
  table = new TaskTable($("#project-tasks tbody"), { envNames, limit: 20, emptyNode: $("#project-tasks-empty") });
  await loadTasks();
  $("#new-environment").href = `/environment-settings/?p=${encodeURIComponent(slug)}`;
  $("#new-environment").hidden = !session.can(project.id, "admin");
  live.on("taskUpdated", (task) => { if (task.projectId === project.id) table.update(task); });
  live.onResync(loadTasks);
  live.start([`project:${project.id}`]);
}

loadPage(fill, () => `Could not load project ${slug || ""}`);
