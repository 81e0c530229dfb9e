// A project's settings (project admins): its name and description, its environments
// (each opens its own settings page; delete with a typed confirmation), and deleting the
// project. Readers and operators see the settings with the controls disabled and why.
import { api, apiAll, param } from "../core/api.js";
import { $, fillTable, h, loadPage, problemText, showMessage } from "../core/dom.js";
import { NEEDS, confirmTyped, disableFor, lockForm, roleSentence, submitting } from "../core/forms.js";
import { requireSession } from "../core/session.js";
import { clearOnInput } from "../core/validate.js";

const session = await requireSession();
const slug = param("p");
const path = `/api/projects/${encodeURIComponent(slug || "")}`;
let project = null;
let environments = [];

const isAdmin = () => session.can(project.id, "admin");

function targetText(t) {
  if (!t || t.type === "noop") return "dry run";
  if (t.type === "agent") return `agent pool ${t.pool}${t.cluster ? ` · cluster ${t.cluster}/${t.namespace || "default"}` : ""}`;
  if (t.type === "appservice") return `App Service ${t.site} (slot ${t.slot || "staging"})`;
  return t.type;
}

async function deleteEnvironment(env) {
  const ok = await confirmTyped({
    title: `Delete environment ${env.name}?`, name: env.slug, okLabel: "Delete environment",
    lines: [`${env.name} (${env.slug}) leaves project ${project.name}: its tasks and logs, backup records, approval rule, windows and schedules are deleted.`,
      "The activity log keeps what happened. Nothing on the target is touched."],
  });
  if (!ok) return;
  try {
    await api(`${path}/environments/${encodeURIComponent(env.slug)}`, { method: "DELETE" });
    showMessage($("#env-message"), "ok", `Deleted ${env.name}.`);
    await loadEnvironments();
  } catch (err) {
    showMessage($("#env-message"), "error", `${env.name} was not deleted. ${problemText(err)}`);
  }
}

async function loadEnvironments() {
  environments = (await apiAll(`${path}/environments`)).items;
  const details = await Promise.all(environments.map((e) => api(`${path}/environments/${encodeURIComponent(e.slug)}`)));
  fillTable($("#environments-table"), details.map((env) => {
    const settings = `/environment-settings/?p=${encodeURIComponent(slug)}&e=${encodeURIComponent(env.slug)}`;
    const remove = h("button", { type: "button", class: "button ghost danger-text", id: `delete-${env.slug}` }, `Delete ${env.slug}…`);
    remove.addEventListener("click", () => deleteEnvironment(env));
    if (!isAdmin()) disableFor(remove, NEEDS.admin);
    const rule = env.protection;
    return h("tr", { dataset: { env: env.slug } },
      h("td", {}, h("a", { href: `/environment/?p=${encodeURIComponent(slug)}&e=${encodeURIComponent(env.slug)}` }, env.name),
        h("div", { class: "mono muted small" }, `${env.slug}${env.kind === "sandbox" ? " · sandbox" : ""}`)),
      h("td", {}, targetText(env.target)),
      h("td", {}, env.database?.connection || h("span", { class: "muted" }, "none")),
      h("td", {}, rule ? `${rule.operations.join(", ")} · ${rule.requiredApprovals} approval(s)` : h("span", { class: "muted" }, "not protected")),
      h("td", {}, h("div", { class: "table-actions" }, h("a", { class: "button ghost", href: settings }, `Settings of ${env.slug}`), remove)));
  }), $("#no-environments"));
}

function renderProject() {
  const form = $("#project-form");
  document.title = `${project.name} · settings · CloudOps`;
  $("#crumb-project").textContent = project.name;
  $("#settings-title").textContent = `${project.name} · settings`;
  $("#role-here").textContent = roleSentence(session, project.id)
    + (isAdmin() ? "" : " Changing the project needs its admin role.");
  form.elements.slug.value = project.slug;
  form.elements.name.value = project.name;
  form.elements.description.value = project.description || "";
}

$("#project-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { name: form.elements.name.value.trim(), description: form.elements.description.value };
  const outcome = await submitting(form, () => api(path, { method: "PATCH", body }),
    { what: "The project was not saved", done: (p) => `Saved ${p.name}.` });
  if (outcome.ok) { project = outcome.result; renderProject(); }
});

$("#project-delete").addEventListener("click", async () => {
  const ok = await confirmTyped({
    title: `Delete project ${project.name}?`, name: project.slug, okLabel: "Delete project",
    lines: [h("p", {}, `This deletes ${project.name} and, with it:`),
      h("ul", {}, h("li", {}, `${environments.length} environment${environments.length === 1 ? "" : "s"} (${environments.map((e) => e.slug).join(", ") || "none"}), their tasks, logs and backup records`),
        h("li", {}, "its script catalogue, role assignments, approval rules and resource grants")),
      "The activity log keeps what happened. Targets and databases are not touched. This cannot be undone."],
  });
  if (!ok) return;
  try {
    await api(path, { method: "DELETE" });
    location.assign("/projects/");
  } catch (err) {
    showMessage($("#project-delete-message"), "error", `Not deleted. ${problemText(err)}`);
  }
});

async function fill() {
  if (!slug) throw Object.assign(new Error("The address needs ?p=<project>."), { detail: "The address needs ?p=<project>." });
  project = await api(path);
  renderProject();
  $("#new-environment").href = `/environment-settings/?p=${encodeURIComponent(slug)}`;
  await loadEnvironments();
  const deleted = param("deleted");
  if (deleted) showMessage($("#deleted-note"), "ok", `Deleted environment ${deleted}.`);
  if (!isAdmin()) {
    lockForm($("#project-form"), NEEDS.admin);
    disableFor($("#project-delete"), NEEDS.admin);
    const link = $("#new-environment");
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
    link.classList.add("disabled");
    link.title = NEEDS.admin;
    link.after(h("small", { class: "why-disabled muted", id: "new-environment-why" }, NEEDS.admin));
    link.setAttribute("aria-describedby", "new-environment-why");
  }
}

clearOnInput($("#project-form"));
loadPage(fill, () => `Could not load project ${slug || ""}`);
