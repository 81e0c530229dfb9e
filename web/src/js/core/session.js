// Who is signed in (Easy Auth /.auth/me) and what they may do (/api/me roles).
// Pages offer only what the role allows; the API enforces it anyway.

import { api, loginUrl } from "./api.js";
import { $$, h, showError } from "./dom.js";

const RANK = { reader: 1, operator: 2, admin: 3 };

export class Session {
  constructor(principal, me) {
    this.principal = principal;
    this.me = me;
  }
  get name() { return this.me?.name || this.principal?.userDetails || "signed in"; }
  get globalRole() { return this.me?.globalRole || null; }
  roleOn(projectId) {
    const global = this.globalRole;
    const project = projectId ? this.me?.projectRoles?.[projectId] : null;
    return (RANK[project] || 0) > (RANK[global] || 0) ? project : global;
  }
  can(projectId, need) {
    return (RANK[this.roleOn(projectId)] || 0) >= RANK[need];
  }
  canGlobally(need) {
    return (RANK[this.globalRole] || 0) >= RANK[need];
  }
}

export async function currentPrincipal() {
  const response = await fetch("/.auth/me", { credentials: "same-origin" });
  if (!response.ok) return null;
  const data = await response.json();
  return data.clientPrincipal || null;
}

// For signed-in pages: the session, or a redirect to sign-in (the promise never settles).
export async function requireSession() {
  try {
    const principal = await currentPrincipal();
    if (!principal) {
      location.assign(loginUrl());
      return new Promise(() => {});
    }
    const me = await api("/api/me");
    const session = new Session(principal, me);
    renderUserMenu(session);
    return session;
  } catch (err) {
    // Without knowing who this is, no page can decide what to offer: say so and stop.
    let section = document.getElementById("page-error");
    if (!section) {
      section = h("section", { class: "error-state", role: "alert" },
        h("h2", { class: "error-title" }), h("p", { class: "error-detail" }),
        h("p", { class: "error-hint muted" }));
      document.getElementById("main").prepend(section);
    }
    showError(section, err, { what: "Could not find out who you are", retry: () => location.reload() });
    const loading = document.getElementById("loading");
    if (loading) loading.hidden = true;
    return new Promise(() => {});
  }
}

function renderUserMenu(session) {
  const menu = document.getElementById("usermenu");
  if (!menu) return;
  for (const node of $$(".user-name", menu)) node.textContent = session.name;
  const avatar = menu.querySelector(".avatar");
  if (avatar) avatar.textContent = session.name.slice(0, 1).toUpperCase();
  const roles = Object.values(session.me?.projectRoles || {});
  const roleText = session.globalRole ? `${session.globalRole} (all projects)`
    : roles.length ? `per project (${[...new Set(roles)].join(", ")})` : "none yet";
  menu.querySelector(".user-role").textContent = roleText;
  menu.hidden = false;
  for (const link of $$("[data-needs-role]")) {
    link.hidden = !session.canGlobally(link.dataset.needsRole);
  }
}
