// A project's backups across its environments: size, age, sha256, who took them;
// download (operators: a signed link valid 15 minutes) and delete (admins, typed confirm).
import { api, apiAll, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, fillTable, fmtTime, h, loadPage, problemText, showMessage, showNote, timeNode } from "../core/dom.js";
import { loadProject, whyNot } from "../core/project_nav.js";
import { requireSession } from "../core/session.js";

const session = await requireSession();
let ctx = null;
let environments = [];
let backups = [];        // [{...backup, env}]
let downloadWhy = null;
let deleteWhy = null;

const envBase = (env) => `/api/projects/${encodeURIComponent(ctx.slug)}/environments/${encodeURIComponent(env.slug)}`;

function size(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function row(b) {
  const short = b.id.slice(0, 8);
  const dl = downloadWhy ? { disabled: true, "aria-describedby": "download-why-not" } : {};
  const del = deleteWhy ? { disabled: true, "aria-describedby": "delete-why-not" } : {};
  return h("tr", { dataset: { backupId: b.id } },
    h("td", {}, b.env.name, h("div", { class: "muted small mono" }, short),
      b.kind === "safety" ? h("span", { class: "badge", title: "The copy a restore took of what it replaced" }, "safety copy") : null),
    h("td", {}, timeNode(b.createdAt, { relative: true }), h("div", { class: "muted small" }, fmtTime(b.createdAt))),
    h("td", { title: `${b.sizeBytes} bytes` }, size(b.sizeBytes)),
    h("td", {}, h("span", { class: "sha", title: b.sha256 }, b.sha256)),
    h("td", { class: "small", title: b.takenBy || "" }, b.takenByName || b.takenBy || h("span", { class: "muted" }, "unknown"),
      b.taskId ? h("div", {}, h("a", { href: `/task/?id=${b.taskId}`, "aria-label": `Task that took backup ${short}` }, "task")) : null),
    h("td", {}, h("div", { class: "row-actions" },
      h("button", { type: "button", class: "button ghost", dataset: { action: "download" }, ...dl, "aria-label": `Download backup ${short} of ${b.env.name}` }, "Download"),
      h("button", { type: "button", class: "button ghost danger-text", dataset: { action: "delete" }, ...del, "aria-label": `Delete backup ${short} of ${b.env.name}` }, "Delete"))));
}

function render() {
  const chosen = $("#backup-env").value;
  const shown = backups.filter((b) => !chosen || b.env.slug === chosen);
  fillTable($("#backups"), shown.map(row), $("#no-backups"));
  showNote($("#download-why-not"), downloadWhy);
  showNote($("#delete-why-not"), deleteWhy);
}

const message = (kind, ...content) => showMessage($("#backup-message"), kind, ...content);

$("#backup-env").addEventListener("change", render);

$("#backups").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const b = backups.find((x) => x.id === button.closest("tr").dataset.backupId);
  if (!b) return;
  const short = b.id.slice(0, 8);
  if (button.dataset.action === "download") {
    try {
      const link = await api(`${envBase(b.env)}/backups/${b.id}/download`, { method: "POST", body: {} });
      message("ok", h("a", { href: link.url, download: link.fileName, id: "download-link" }, `Download ${link.fileName}`),
        ` (${size(link.sizeBytes)}; the link works until ${fmtTime(link.expiresAt)}; check it against sha256 ${link.sha256}).`);
      $("#download-link").focus();
    } catch (err) {
      message("error", `No download for backup ${short}. ${problemText(err)}`);
    }
    return;
  }
  const ok = await confirmAction({
    title: `Delete backup ${short} of ${b.env.name}?`, danger: true, okLabel: "Delete backup", typeToConfirm: b.env.slug,
    lines: [`The ${size(b.sizeBytes)} dump taken ${fmtTime(b.createdAt)} is removed from storage, then from this list.`,
      `It can no longer be restored, downloaded or used to seed a sandbox. Other backups of ${b.env.name} are kept.`],
  });
  if (!ok) return button.focus();
  try {
    await api(`${envBase(b.env)}/backups/${b.id}`, { method: "DELETE" });
    backups = backups.filter((x) => x.id !== b.id);
    render();
    message("ok", `Deleted backup ${short} of ${b.env.name}.`);
    $("#backups-title").focus(); // the row (and its button) is gone
  } catch (err) {
    message("error", `Backup ${short} was not deleted. ${problemText(err)}`);
  }
});

async function loadBackups() {
  const lists = await Promise.all(environments.map((env) => apiAll(`${envBase(env)}/backups`)
    .then((page) => page.items.map((b) => ({ ...b, env })))));
  backups = lists.flat().sort((x, y) => (y.createdAt || "").localeCompare(x.createdAt || ""));
  render();
}

async function fill() {
  ctx = await loadProject(session);
  document.title = `Backups · ${ctx.project.name} · CloudOps`;
  downloadWhy = whyNot(ctx.role, "operator", "Downloading a backup");
  deleteWhy = whyNot(ctx.role, "admin", "Deleting a backup");
  environments = (await apiAll(`/api/projects/${encodeURIComponent(ctx.slug)}/environments`)).items;
  const select = $("#backup-env");
  select.replaceChildren(h("option", { value: "" }, "All environments"),
    ...environments.map((e) => h("option", { value: e.slug }, e.name)));
  if (param("e")) select.value = param("e");
  await loadBackups();
}

function load() {
  return loadPage(fill, "Could not load the backups");
}

load();
