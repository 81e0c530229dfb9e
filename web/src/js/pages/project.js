// A project: its environments, the create-environment form (admins), recent tasks (live).
import { api, apiAll, param } from "../core/api.js";
import { $, clear, formMessage, h, problemText, showError, timeNode } from "../core/dom.js";
import { live } from "../core/live.js";
import { requireSession } from "../core/session.js";
import { TaskTable } from "../core/tasks.js";
import { clearOnInput, markProblemField, validateFields } from "../core/validate.js";

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

async function load() {
  $("#loading").hidden = false;
  try {
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
    $("#create-environment").hidden = !session.can(project.id, "admin");
    $("#content").hidden = false;
    live.on("taskUpdated", (task) => { if (task.projectId === project.id) table.update(task); });
    live.onResync(loadTasks);
    live.start([`project:${project.id}`]);
  } catch (err) {
    showError($("#page-error"), err, { what: `Could not load project ${slug || ""}`, retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

clearOnInput($("#environment-form"));

$("#target-type").addEventListener("change", (event) => {
  $("#agent-fields").hidden = event.target.value !== "agent";
});

$("#environment-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const f = Object.fromEntries(new FormData(form));
  let target = { type: "noop" };
  if (f.targetType === "agent") {
    target = { type: "agent", pool: f.pool.trim(),
      labels: f.labels.split(",").map((x) => x.trim()).filter(Boolean) };
    if (f.deployScript.trim()) target.deployScript = f.deployScript.trim();
  }
  const body = { slug: f.slug.trim(), name: f.name.trim(), target };
  if (f.url.trim()) body.url = f.url.trim();
  const fields = [
    { input: form.elements.slug, model: "EnvironmentCreate", property: "slug", label: "Slug", what: "a slug (used in addresses)", value: body.slug },
    { input: form.elements.name, model: "EnvironmentCreate", property: "name", label: "Name", what: "a name", value: f.name },
    { input: form.elements.url, model: "EnvironmentCreate", property: "url", label: "URL", value: body.url || "" },
  ];
  if (f.targetType === "agent") {
    fields.push({ input: form.elements.pool, model: "AgentTarget", property: "pool", label: "Pool", what: "the agent pool", value: target.pool });
    if (target.deployScript) fields.push({ input: form.elements.deployScript, model: "AgentTarget", property: "deployScript", label: "Deploy script", value: target.deployScript });
  }
  if (!(await validateFields(form, fields))) return formMessage(form, "error", "");
  try {
    const env = await api(`/api/projects/${encodeURIComponent(slug)}/environments`, { method: "POST", body });
    formMessage(form, "ok", `Created ${env.name}.`);
    location.assign(`/environment/?p=${encodeURIComponent(slug)}&e=${encodeURIComponent(env.slug)}`);
  } catch (err) {
    markProblemField(form, err);
    formMessage(form, "error", `Could not create the environment. ${problemText(err)}`);
  }
});

load();
