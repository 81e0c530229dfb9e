// Projects list, and the create form for operators and admins.
import { api, apiAll } from "../core/api.js";
import { $, clear, formMessage, h, problemText, showError } from "../core/dom.js";
import { requireSession } from "../core/session.js";
import { clearOnInput, markProblemField, validateFields } from "../core/validate.js";

const session = await requireSession();
const list = $("#project-list");

async function load() {
  $("#loading").hidden = false;
  try {
    const data = await apiAll("/api/projects");
    clear(list);
    for (const project of data.items) {
      list.append(h("a", { class: "card project-card", href: `/project/?p=${encodeURIComponent(project.slug)}` },
        h("h2", {}, project.name),
        h("p", { class: "mono muted small" }, project.slug),
        h("p", { class: "muted" }, project.description || "No description."),
        h("span", { class: "badge role" }, `your role: ${project.yourRole || "none"}`)));
    }
    $("#no-projects").hidden = data.items.length > 0;
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the projects", retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

if (session.canGlobally("operator")) {
  $("#create-project").hidden = false;
  clearOnInput($("#project-form"));
  $("#project-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const body = Object.fromEntries(new FormData(form));
    const valid = await validateFields(form, [
      { input: form.elements.slug, model: "ProjectCreate", property: "slug", label: "Slug", what: "a slug (used in addresses)" },
      { input: form.elements.name, model: "ProjectCreate", property: "name", label: "Name", what: "a name" },
      { input: form.elements.description, model: "ProjectCreate", property: "description", label: "Description" },
    ].filter((f) => f.input));
    if (!valid) return formMessage(form, "error", "");
    try {
      const project = await api("/api/projects", { method: "POST", body });
      formMessage(form, "ok", `Created ${project.name}.`);
      form.reset();
      location.assign(`/project/?p=${encodeURIComponent(project.slug)}`);
    } catch (err) {
      markProblemField(form, err);
      formMessage(form, "error", `Could not create the project. ${problemText(err)}`);
    }
  });
}

load();
