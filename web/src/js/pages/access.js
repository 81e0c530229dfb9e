// Access: with ?p=<project>, its members and their roles (admins grant and revoke) and who
// may approve which operations where; without, your roles on every project. Global roles
// are listed and changed by platform admins only; others see why not.
import { api, apiAll, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, OPERATION_LABELS, clear, fillTable, fmtTime, h, loadPage, problemText, showMessage } from "../core/dom.js";
import { NEEDS, disableFor, lockForm, roleSentence, submitting } from "../core/forms.js";
import { requireSession } from "../core/session.js";
import { clearOnInput } from "../core/validate.js";

const session = await requireSession();
const slug = param("p");
const projectPath = `/api/projects/${encodeURIComponent(slug || "")}`;
let project = null;

const isMe = (a) => (a.principalType === "user" && a.principalId === session.me.id)
  || (a.principalType === "group" && [...(session.me.groups || []), ...(session.me.appRoles || [])].includes(a.principalId));

function assignmentRow(a, { base, mayChange, reason, message, reload }) {
  const revoke = h("button", { type: "button", class: "button ghost danger-text", id: `revoke-${a.id}` }, "Revoke…");
  if (!mayChange) disableFor(revoke, reason);
  revoke.addEventListener("click", async () => {
    const where = project ? `project ${project.name}` : "every project";
    const ok = await confirmAction({ title: `Revoke ${a.role} from ${a.principalId}?`, okLabel: "Revoke role", danger: true,
      lines: [`${a.principalType} ${a.principalId} loses the ${a.role} role on ${where}.`,
        isMe(a) ? "This is you: you keep only the roles you hold elsewhere (globally or through a group)." : null] });
    if (!ok) return;
    try {
      await api(`${base}/${encodeURIComponent(a.id)}`, { method: "DELETE" });
      showMessage(message, "ok", `Revoked ${a.role} from ${a.principalId}.`);
      await reload();
    } catch (err) {
      showMessage(message, "error", `Not revoked. ${problemText(err)}`);
    }
  });
  return h("tr", { dataset: { principal: a.principalId } },
    h("td", {}, a.principalId, isMe(a) ? h("span", { class: "you" }, " (you)") : null),
    h("td", {}, a.principalType), h("td", {}, h("span", { class: "badge role" }, a.role)),
    h("td", { class: "small muted" }, `by ${a.createdBy}, ${fmtTime(a.createdAt)}`), h("td", {}, revoke));
}

async function loadMembers() {
  const mayChange = session.can(project.id, "admin");
  const base = `${projectPath}/roles`;
  const items = (await apiAll(base)).items;
  fillTable($("#members-table"), items.map((a) => assignmentRow(a, {
    base, mayChange, reason: NEEDS.admin, message: $("#members-message"), reload: loadMembers })), $("#no-members"));
}

function youApprove(rule) {
  const memberships = new Set([...(session.me.groups || []), ...(session.me.appRoles || [])]);
  const named = rule.approvers.some((a) => (a.type === "user" && a.id === session.me.id) || (a.type === "group" && memberships.has(a.id)));
  if (!named) return "not an approver";
  return rule.allowSelfApproval ? "approver" : "approver (not of your own requests)";
}

async function loadApprovers() {
  const envs = (await apiAll(`${projectPath}/environments`)).items;
  const details = await Promise.all(envs.map((e) => api(`${projectPath}/environments/${encodeURIComponent(e.slug)}`)));
  const rows = details.filter((e) => e.protection).map((e) => {
    const rule = e.protection;
    return h("tr", { dataset: { env: e.slug } },
      h("td", {}, h("a", { href: `/environment-settings/?p=${encodeURIComponent(slug)}&e=${encodeURIComponent(e.slug)}` }, e.name)),
      h("td", {}, rule.operations.map((o) => OPERATION_LABELS[o] || o).join(", ")),
      h("td", {}, rule.approvers.map((a) => `${a.type} ${a.id}`).join(", ")),
      h("td", {}, String(rule.requiredApprovals)),
      h("td", {}, rule.allowSelfApproval ? "allowed" : "not allowed"),
      h("td", {}, `${rule.timeoutMinutes} min`),
      h("td", {}, youApprove(rule)));
  });
  fillTable($("#approvers-table"), rows, $("#no-protection"));
}

async function loadMyRoles() {
  const projects = (await apiAll("/api/projects")).items;
  clear($("#my-roles-table tbody")).append(...projects.map((p) => h("tr", {},
    h("td", {}, h("a", { href: `/project/?p=${encodeURIComponent(p.slug)}` }, p.name)),
    h("td", {}, roleSentence(session, p.id).replace(/^Your role here: /, "").replace(/\.$/, "")),
    h("td", {}, h("a", { href: `/access/?p=${encodeURIComponent(p.slug)}` }, `Members of ${p.name}`)))));
}

async function loadGlobal() {
  if (!session.canGlobally("admin")) {
    $("#global-note").textContent = `A global role holds on every project. ${NEEDS.globalAdmin.replace("Needs", "Seeing and changing them needs")}`;
    return;
  }
  $("#global-body").hidden = false;
  const items = (await apiAll("/api/roles")).items;
  fillTable($("#global-table"), items.map((a) => assignmentRow(a, {
    base: "/api/roles", mayChange: true, reason: null, message: $("#global-message"), reload: loadGlobal })), $("#no-global"));
}

function grantForm(form, base, reload, message) {
  clearOnInput(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { principalType: form.elements.principalType.value,
      principalId: form.elements.principalId.value.trim(), role: form.elements.role.value };
    const outcome = await submitting(form, () => api(base(), { method: "POST", body }), {
      what: "The role was not granted", done: (a) => `Granted ${a.role} to ${a.principalId}.` });
    if (outcome.ok) {
      form.elements.principalId.value = "";
      showMessage(message, "ok", "");
      await reload();
    }
  });
}

grantForm($("#member-form"), () => `${projectPath}/roles`, () => loadMembers(), $("#members-message"));
grantForm($("#global-form"), () => "/api/roles", () => loadGlobal(), $("#global-message"));

async function fill() {
  if (slug) {
    project = await api(projectPath);
    document.title = `Access · ${project.name} · CloudOps`;
    // a project's access is one of its pages: its crumbs and tabs, under Projects
    $("#crumbs").hidden = false;
    $("#project-tabs").hidden = false;
    $("#crumb-project").textContent = project.name;
    $(".mainnav a[aria-current]")?.removeAttribute("aria-current");
    $(".mainnav a[href='/projects/']").setAttribute("aria-current", "page");
    $("#access-title").textContent = `Access to ${project.name}`;
    $("#role-here").textContent = roleSentence(session, project.id);
    $("#members-panel").hidden = false;
    $("#approvers-panel").hidden = false;
    await Promise.all([loadMembers(), loadApprovers()]);
    if (!session.can(project.id, "admin")) lockForm($("#member-form"), NEEDS.admin);
  } else {
    $("#role-here").textContent = session.globalRole ? `Your global role: ${session.globalRole}.` : "You hold no global role; your roles per project are below.";
    $("#my-roles-panel").hidden = false;
    await loadMyRoles();
  }
  await loadGlobal();
}

function load() {
  return loadPage(fill, "Could not load access");
}

load();
