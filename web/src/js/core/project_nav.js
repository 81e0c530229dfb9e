// The project pages (notifications, schedules, backups): the ?p= project, its links, its
// heading and "your role here".
import { api, param } from "./api.js";
import { $ } from "./dom.js";

export const RANK = { reader: 1, operator: 2, admin: 3 };

// Load the page's project (throws the API's error), fill the crumbs (core/project_links.js
// gives the tabs their ?p=).
export async function loadProject(session) {
  const slug = param("p");
  if (!slug) {
    const detail = "The address has no ?p=<project> part. Open the project from the projects list.";
    throw Object.assign(new Error(detail), { status: 0, detail, title: "No project" });
  }
  const project = await api(`/api/projects/${encodeURIComponent(slug)}`);
  $("#crumb-project").textContent = project.name;
  const role = session.roleOn(project.id) || "none";
  const badge = $("#project-role");
  if (badge) badge.textContent = `your role here: ${role}`;
  return { project, slug: project.slug, role };
}

export function atLeast(role, need) {
  return (RANK[role] || 0) >= RANK[need];
}

// Why a role may not use a control, in words (null: it may).
export function whyNot(role, need, what) {
  if (atLeast(role, need)) return null;
  return `${what} needs the ${need} role on this project; yours is ${role}.`;
}
