// A project's backup schedules (admins add, edit, pause, delete; next runs shown in the
// schedule's own time zone) and its sandboxes (operators extend and tear down).
import { api, apiAll } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, clear, fillTable, fmtTime, formMessage, h, loadPage, problemText, showMessage, showNote, timeNode } from "../core/dom.js";
import { clearProblems, lockForm, submitting } from "../core/forms.js";
import { loadProject, whyNot } from "../core/project_nav.js";
import { requireSession } from "../core/session.js";
import { clearOnInput } from "../core/validate.js";

const session = await requireSession();
const form = $("#schedule-form");
let ctx = null;
let environments = [];
let schedules = [];      // [{...schedule, env}]
let editing = null;
let adminWhy = null;
let operatorWhy = null;

const envBase = (env) => `/api/projects/${encodeURIComponent(ctx.slug)}/environments/${encodeURIComponent(env.slug)}`;

// A time in the schedule's own zone, named ("Mon 3 Mar, 02:00 CET"); the viewer's on hover.
function inZone(iso, timeZone) {
  try {
    return new Intl.DateTimeFormat(undefined, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      hour12: false, timeZone, timeZoneName: "short",
    }).format(new Date(iso));
  } catch {
    return fmtTime(iso);
  }
}

function keeps(s) {
  const parts = [];
  if (s.retainCount) parts.push(`newest ${s.retainCount}`);
  if (s.retainDays) parts.push(`${s.retainDays} day${s.retainDays === 1 ? "" : "s"}`);
  return parts.length ? parts.join(", at most ") : "all (no retention)";
}

function scheduleRow(s) {
  const why = adminWhy ? { disabled: true, "aria-describedby": "schedules-why-not" } : {};
  const slots = s.nextSlots || [];
  return h("tr", { dataset: { scheduleId: s.id } },
    h("td", {}, h("a", { href: `/environment/?p=${encodeURIComponent(ctx.slug)}&e=${encodeURIComponent(s.env.slug)}` }, s.env.name)),
    h("td", {}, h("code", {}, s.cron), h("div", { class: "muted small" }, s.timeZone),
      s.enabled ? null : h("span", { class: "badge" }, "paused")),
    h("td", {}, slots.length
      ? h("ol", { class: "slots", "aria-label": `Next runs in ${s.timeZone}` },
        ...slots.map((slot) => h("li", {}, h("time", { datetime: slot, title: fmtTime(slot) }, inZone(slot, s.timeZone)))))
      : h("span", { class: "muted" }, s.enabled ? "never fires" : "paused: none")),
    h("td", { class: "small" }, keeps(s)),
    h("td", { class: "small" }, s.lastSlotAt ? timeNode(s.lastSlotAt, { relative: true }) : h("span", { class: "muted" }, "not yet")),
    h("td", {}, h("div", { class: "row-actions" },
      h("button", { type: "button", class: "button ghost", dataset: { action: "edit" }, ...why,
        "aria-label": `Edit the schedule of ${s.env.name} (${s.cron})` }, "Edit"),
      h("button", { type: "button", class: "button ghost danger-text", dataset: { action: "delete" }, ...why,
        "aria-label": `Delete the schedule of ${s.env.name} (${s.cron})` }, "Delete"))));
}

function sandboxRow(env) {
  const parent = environments.find((e) => e.id === env.parentId);
  const why = operatorWhy ? { disabled: true, "aria-describedby": "sandboxes-why-not" } : {};
  const hoursId = `extend-${env.slug}`;
  return h("tr", { dataset: { env: env.slug } },
    h("td", {}, h("a", { href: `/environment/?p=${encodeURIComponent(ctx.slug)}&e=${encodeURIComponent(env.slug)}` }, env.name),
      h("div", { class: "mono muted small" }, env.slug)),
    h("td", {}, parent ? parent.name : h("span", { class: "muted" }, "—")),
    h("td", { class: "small" }, env.createdBy),
    h("td", {}, env.expiresAt ? h("span", {}, timeNode(env.expiresAt), h("div", { class: "muted small" }, expiresIn(env.expiresAt)))
      : h("span", { class: "muted" }, "never")),
    h("td", {}, h("form", { class: "extend-form row-actions", id: `extend-form-${env.slug}`, novalidate: true, dataset: { env: env.slug } },
      h("label", { class: "field narrow", for: hoursId }, h("span", { class: "sr-only" }, `Hours to extend ${env.name} by`),
        h("input", { id: hoursId, name: "hours", type: "number", min: "1", max: "168", step: "1", value: "24", ...why })),
      h("button", { type: "submit", class: "button ghost", ...why, "aria-label": `Extend ${env.name}` }, "Extend"))),
    h("td", {}, h("button", { type: "button", class: "button ghost danger-text", dataset: { action: "teardown" }, ...why,
      "aria-label": `Tear down ${env.name}` }, "Tear down")));
}

function expiresIn(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (seconds <= 0) return "expired: teardown pending";
  if (seconds < 3600) return `in ${Math.ceil(seconds / 60)} min`;
  if (seconds < 86400) return `in ${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `in ${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

function render() {
  fillTable($("#schedules"), schedules.map(scheduleRow), $("#no-schedules"));
  fillTable($("#sandboxes"), environments.filter((e) => e.kind === "sandbox").map(sandboxRow), $("#no-sandboxes"));
  showNote($("#schedules-why-not"), adminWhy);
  showNote($("#sandboxes-why-not"), operatorWhy);
}

function fillForm(s) {
  editing = s;
  clearProblems(form);
  form.elements.environment.value = s ? s.env.slug : (form.elements.environment.options[0]?.value || "");
  form.elements.environment.disabled = Boolean(s) || Boolean(adminWhy);
  form.elements.cron.value = s ? s.cron : "0 0 2 * * *";
  form.elements.timeZone.value = s ? s.timeZone : (Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  form.elements.retainCount.value = s?.retainCount ?? "";
  form.elements.retainDays.value = s?.retainDays ?? "";
  form.elements.enabled.checked = s ? s.enabled : true;
  $("#schedule-enabled-field").hidden = !s;
  $("#schedule-form-title").textContent = s ? `Edit the schedule of ${s.env.name}` : "New backup schedule";
  $("#schedule-submit").textContent = s ? "Save changes" : "Add schedule";
  $("#schedule-cancel").hidden = !s;
}

function body() {
  const number = (name) => {
    const raw = form.elements[name].value.trim();
    return raw === "" ? null : Number(raw);
  };
  const out = { cron: form.elements.cron.value.trim(), timeZone: form.elements.timeZone.value.trim(),
    retainCount: number("retainCount"), retainDays: number("retainDays") };
  if (editing) out.enabled = form.elements.enabled.checked;
  return out;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const s = editing;
  const env = s ? s.env : environments.find((e) => e.slug === form.elements.environment.value);
  if (!env) return formMessage(form, "error", "Choose an environment.");
  await submitting(form, async () => {
    const saved = s
      ? await api(`${envBase(env)}/backup-schedules/${s.id}`, { method: "PUT", body: body() })
      : await api(`${envBase(env)}/backup-schedules`, { method: "POST", body: body() });
    await loadSchedules();
    fillForm(null);
    return saved;
  }, { what: s ? "Not saved" : "Not added",
    done: (saved) => `${s ? "Saved" : "Added"} the schedule of ${env.name}.` +
      (saved.nextSlots?.[0] ? ` Next backup: ${inZone(saved.nextSlots[0], saved.timeZone)}.` : " It is paused.") });
});
$("#schedule-cancel").addEventListener("click", () => { fillForm(null); form.elements.cron.focus(); });
clearOnInput(form);

$("#schedules").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const s = schedules.find((x) => x.id === button.closest("tr").dataset.scheduleId);
  if (!s) return;
  if (button.dataset.action === "edit") {
    fillForm(s);
    form.elements.cron.focus();
    return;
  }
  const ok = await confirmAction({
    title: `Delete the backup schedule of ${s.env.name}?`, danger: true, okLabel: "Delete schedule",
    lines: [`No more backups of ${s.env.name} are taken at "${s.cron}" (${s.timeZone}).`,
      "Backups it already took stay, and are no longer pruned by its retention."],
  });
  if (!ok) return button.focus();
  try {
    await api(`${envBase(s.env)}/backup-schedules/${s.id}`, { method: "DELETE" });
    await loadSchedules();
    formMessage(form, "ok", `Deleted the schedule of ${s.env.name}.`);
    $("#schedules-title").focus(); // the row (and its button) is gone
  } catch (err) {
    formMessage(form, "error", `Could not delete the schedule. ${problemText(err)}`);
  }
});

$("#sandboxes").addEventListener("submit", async (event) => {
  event.preventDefault();
  const extendForm = event.target;
  const env = environments.find((e) => e.slug === extendForm.dataset.env);
  const hours = Number(extendForm.elements.hours.value);
  const outcome = await submitting(extendForm,
    () => api(`${envBase(env)}/extend`, { method: "POST", body: { hours } }), { what: "Not extended" });
  if (outcome.ok) {
    Object.assign(env, outcome.result);
    render();
    sandboxMessage("ok", `${env.name} now expires ${fmtTime(outcome.result.expiresAt)}.`);
  }
});

$("#sandboxes").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action=teardown]");
  if (!button || button.disabled) return;
  const env = environments.find((e) => e.slug === button.closest("tr").dataset.env);
  const ok = await confirmAction({
    title: `Tear down sandbox ${env.name}?`, danger: true, okLabel: `Tear down ${env.slug}`, typeToConfirm: env.slug,
    lines: [`A teardown task runs on ${env.slug}: its database and workloads are deleted, then the sandbox itself.`,
      "Its data is gone for good; nothing is backed up first. Work already queued on it runs before the teardown."],
  });
  if (!ok) return button.focus();
  try {
    const task = await api(`${envBase(env)}/teardown`, { method: "POST", body: { reason: "torn down from the Schedules and sandboxes page" } });
    sandboxMessage("ok", h("span", {}, `Teardown of ${env.name} requested: `, h("a", { href: `/task/?id=${task.id}` }, "follow the task"), "."));
  } catch (err) {
    sandboxMessage("error", `Could not tear down ${env.name}. ${problemText(err)}`);
  }
});

const sandboxMessage = (kind, content) => showMessage($("#sandbox-message"), kind, content);

async function loadSchedules() {
  const shared = environments.filter((e) => e.kind !== "sandbox");
  const lists = await Promise.all(shared.map((env) => apiAll(`${envBase(env)}/backup-schedules`)
    .then((page) => page.items.map((s) => ({ ...s, env })))));
  schedules = lists.flat();
  render();
}

async function fill() {
  ctx = await loadProject(session);
  document.title = `Schedules and sandboxes · ${ctx.project.name} · CloudOps`;
  adminWhy = whyNot(ctx.role, "admin", "Changing backup schedules");
  operatorWhy = whyNot(ctx.role, "operator", "Extending or tearing down a sandbox");
  environments = (await apiAll(`/api/projects/${encodeURIComponent(ctx.slug)}/environments`)).items;
  const select = form.elements.environment;
  clear(select).append(...environments.filter((e) => e.kind !== "sandbox").map((e) => h("option", { value: e.slug }, e.name)));
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["UTC"];
  clear($("#zones")).append(...["UTC", ...zones].map((z) => h("option", { value: z })));
  await loadSchedules();
  if (adminWhy) lockForm(form, adminWhy, { note: $("#schedules-why-not") });
  fillForm(null);
}

loadPage(fill, "Could not load the schedules");
