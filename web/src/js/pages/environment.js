// An environment: one-click operations behind a confirm step, its queue, its tasks (live).
import { api, apiAll, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, $$, TERMINAL, clear, describeTask, fmtTime, formMessage, h, pageLoaded, problemText, progressBar, showError, statusBadge } from "../core/dom.js";
import { live } from "../core/live.js";
import { scriptValues, renderScriptForm } from "../core/script_form.js";
import { requireSession } from "../core/session.js";
import { TaskTable } from "../core/tasks.js";
import { clearOnInput, markProblemField, validateFields } from "../core/validate.js";

const session = await requireSession();
const projectSlug = param("p");
const envSlug = param("e");
const base = `/api/projects/${encodeURIComponent(projectSlug || "")}/environments/${encodeURIComponent(envSlug || "")}`;
let project = null;
let env = null;
let scripts = [];
let backups = [];
let protection = null;
let table = null;

// No production flag exists on environments; names are the best signal we have.
const productionLike = (e) => /(^|[^a-z])(prod|production|prd|live)([^a-z]|$)/i.test(`${e.slug} ${e.name}`);

async function loadTasks() {
  const data = await api(`/api/tasks?project=${encodeURIComponent(projectSlug)}&environment=${encodeURIComponent(envSlug)}&limit=30`);
  table.replaceAll(data.items);
  renderQueue();
}

async function loadBackups() {
  const data = await apiAll(`${base}/backups`);
  backups = data.items;
  const select = $("#backup-select");
  clear(select);
  if (!backups.length) select.append(h("option", { value: "" }, "No backups yet — take one first"));
  for (const b of backups) {
    const label = b.kind === "safety" ? " · safety copy taken before a restore" : "";
    select.append(h("option", { value: b.id },
      `${fmtTime(b.createdAt)} · ${b.id.slice(0, 8)} · ${formatBytes(b.sizeBytes)}${label}`));
  }
  // a sandbox is seeded from a fresh backup unless one of the parent's regular backups is chosen
  const seed = $("#sandbox-seed");
  clear(seed);
  seed.append(h("option", { value: "" }, "A fresh backup, taken first"));
  for (const b of backups.filter((x) => x.kind !== "safety")) {
    seed.append(h("option", { value: b.id }, `${fmtTime(b.createdAt)} · ${b.id.slice(0, 8)}`));
  }
  $("#restore-button").disabled = !backups.length;
  $("#backup-download").disabled = !backups.length;
  $("#backup-delete").disabled = !backups.length;
  $("#backup-delete").hidden = !session.can(project.id, "admin");
  showBackupDetails();
}

// What a backup is: size, how long the dump took, its sha256 and the pg_dump that wrote it.
function showBackupDetails() {
  const b = backups.find((x) => x.id === $("#backup-select").value);
  const tools = Object.entries(b?.toolVersions || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  $("#backup-details").textContent = b ? [formatBytes(b.sizeBytes),
    b.durationMs != null ? `took ${(b.durationMs / 1000).toFixed(1)} s` : null,
    tools || null, `sha256 ${b.sha256}`].filter(Boolean).join(" · ") : "";
}
$("#backup-select").addEventListener("change", showBackupDetails);

$("#backup-download").addEventListener("click", async () => {
  const form = $("#restore-form");
  const id = $("#backup-select").value;
  if (!id) return formMessage(form, "error", "Choose a backup to download.");
  try {
    const link = await api(`${base}/backups/${encodeURIComponent(id)}/download`, { method: "POST", body: {} });
    formMessage(form, "ok", "Download ready");
    $(".form-message", form).replaceChildren(h("a", { href: link.url, download: link.fileName, id: "backup-link" }, `Download ${link.fileName}`),
      ` (link valid until ${new Date(link.expiresAt).toLocaleTimeString()})`);
  } catch (err) {
    formMessage(form, "error", `No download. ${problemText(err)}`);
  }
});

$("#backup-delete").addEventListener("click", async () => {
  const form = $("#restore-form");
  const id = $("#backup-select").value;
  if (!id) return formMessage(form, "error", "Choose a backup to delete.");
  const ok = await confirmAction({ title: `Delete backup ${id.slice(0, 8)} of ${env.name}?`, okLabel: "Delete backup", danger: true,
    typeToConfirm: env.slug, lines: ["The dump is removed from storage; it can no longer be restored or downloaded."] });
  if (!ok) return;
  try {
    await api(`${base}/backups/${encodeURIComponent(id)}`, { method: "DELETE" });
    formMessage(form, "ok", `Backup ${id.slice(0, 8)} deleted.`);
    await loadBackups();
  } catch (err) {
    formMessage(form, "error", `Not deleted. ${problemText(err)}`);
  }
});

function formatBytes(n) {
  if (n === null || n === undefined) return "size unknown";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

// Running first, then waiting in arrival order; positions come from the task's reason.
function renderQueue() {
  const open = [...table.tasks.values()].filter((t) => !TERMINAL.has(t.status)).sort((a, b) => a.seq - b.seq);
  const items = open.map((task) => {
    const match = /position (\d+)/.exec(task.reason || "");
    const position = task.status === "running" ? "now" : match ? `#${match[1]}` : "next";
    return h("li", { class: `queue-item status-${task.status}`, dataset: { taskId: task.id } },
      h("span", { class: "queue-pos", "aria-label": `position ${position}` }, position),
      h("span", { class: "queue-main" }, h("a", { href: `/task/?id=${task.id}` }, describeTask(task)),
        h("span", { class: "muted small" }, ` ${task.reason || ""}`)),
      statusBadge(task.status), progressBar(task));
  });
  clear($("#queue")).append(...items);
  $("#queue-empty").hidden = items.length > 0;
}

function chips() {
  const target = env.target || {};
  const list = [h("span", { class: "chip" }, env.kind), h("span", { class: "chip" }, `target: ${target.type || "none"}`)];
  if (target.pool) list.push(h("span", { class: "chip" }, `pool: ${target.pool}`));
  for (const label of target.labels || []) list.push(h("span", { class: "chip" }, label));
  if (productionLike(env)) list.push(h("span", { class: "chip danger" }, "production"));
  if (env.url) list.push(h("a", { class: "chip", href: env.url, rel: "noopener" }, env.url));
  return list;
}

async function load() {
  $("#loading").hidden = false;
  try {
    if (!projectSlug || !envSlug) {
      const detail = "The address needs ?p=<project>&e=<environment>.";
      throw Object.assign(new Error(detail), { detail });
    }
    project = await api(`/api/projects/${encodeURIComponent(projectSlug)}`);
    env = await api(base);
    document.title = `${env.name} · ${project.name} · CloudOps`;
    $("#crumb-project").textContent = project.name;
    $("#crumb-project").href = `/project/?p=${encodeURIComponent(project.slug)}`;
    $("#crumb-env").textContent = env.name;
    $("#env-name").textContent = `${env.name}`;
    clear($("#env-chips")).append(...chips());
    const role = session.roleOn(project.id) || "none";
    $("#env-role").textContent = `your role: ${role}`;
    $("#env-settings-link").href = `/environment-settings/?p=${encodeURIComponent(projectSlug)}&e=${encodeURIComponent(envSlug)}`;
    table = new TaskTable($("#env-tasks tbody"), {
      filter: (t) => t.environmentId === env.id, limit: 30, emptyNode: $("#env-tasks-empty"),
      envNames: new Map([[env.id, env.name]]),
    });
    await loadTasks();
    const operator = session.can(project.id, "operator");
    if (operator) {
      scripts = (await apiAll(`/api/projects/${encodeURIComponent(projectSlug)}/scripts`)).items;

      setUpScripts();
      await loadBackups();
      await setUpRefresh();
      $("#actions").hidden = false;
      if (productionLike(env)) for (const form of $$("#script-form, #deploy-form")) form.classList.add("destructive");
      // App Service deploys ship a package or an image; other targets take the version only.
      for (const field of $$("#deploy-form [data-appservice]")) field.hidden = env.target?.type !== "appservice";
      // A sandbox cannot have sandboxes (the API refuses); offer it only on its parent.
      if (env.kind === "sandbox") $("#sandbox-form").remove();
    } else {
      // Readers get no operation forms at all (the API would refuse them anyway).
      $("#actions").remove();
      $("#readonly-note").hidden = false;
      $("#readonly-role").textContent = role;
    }
    pageLoaded();
    live.on("taskUpdated", (task) => {
      if (task.environmentId !== env.id) return;
      table.update(task);
      renderQueue();
      if (task.operation === "backup" && task.status === "succeeded" && operator) loadBackups();
    });
    // A backup that finished while the connection was down would leave restore disabled.
    live.onResync(async () => { await loadTasks(); if (operator) await loadBackups(); });
    live.start([`project:${project.id}`]);
  } catch (err) {
    showError($("#page-error"), err, { what: `Could not load environment ${envSlug || ""}`, retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

function setUpScripts() {
  const select = $("#script-select");
  clear(select);
  if (!scripts.length) {
    select.append(h("option", { value: "" }, "The catalogue is empty"));
    $("#script-button").disabled = true;
    return;
  }
  for (const s of scripts) select.append(h("option", { value: s.name }, s.name));
  const show = () => {
    const script = scripts.find((s) => s.name === select.value);
    $("#script-description").textContent = script?.description || "";
    renderScriptForm($("#script-params"), script);
  };
  select.addEventListener("change", show);
  show();
}

// What the confirm step says about approval: who must approve, how many, for how long.
function approvalLines(operation) {
  if (!protection || !protection.operations.includes(operation)) return [];
  const who = protection.approvers.map((a) => (a.type === "group" ? `group ${a.id}` : a.id)).join(", ");
  const count = protection.requiredApprovals;
  const self = protection.allowSelfApproval ? "" : " (not yours)";
  return [h("p", { class: "confirm-approval" },
    `${env.name} is protected: this waits for ${count} approval${count === 1 ? "" : "s"} from ${who}${self} `
    + `before it joins the queue, and is cancelled if not approved within ${formatMinutes(protection.timeoutMinutes)}.`)];
}

function formatMinutes(minutes) {
  if (minutes >= 1440 && minutes % 1440 === 0) return `${minutes / 1440} day${minutes === 1440 ? "" : "s"}`;
  if (minutes >= 60 && minutes % 60 === 0) return `${minutes / 60} hour${minutes === 60 ? "" : "s"}`;
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function needsApproval(operation) {
  return Boolean(protection && protection.operations.includes(operation));
}

// Read when an operation is about to be confirmed, so the dialog states the rule as it is
// now (an admin may have changed it since the page loaded); null: not protected.
async function loadProtection() {
  protection = (await api(base)).protection ?? null;
}

async function submit(form, path, body, confirmation) {
  const operation = form.dataset.operation;
  try {
    await loadProtection();
  } catch (err) {
    return formMessage(form, "error", `Not started: could not read the approval rule. ${problemText(err)}`);
  }
  const ok = await confirmAction({
    ...confirmation,
    lines: [...confirmation.lines, ...approvalLines(operation)],
    okLabel: needsApproval(operation) ? `${confirmation.okLabel} (after approval)` : confirmation.okLabel,
  });
  if (!ok) return;
  const button = $("button[type=submit]", form);
  button.disabled = true;
  try {
    const task = await api(`${base}/${path}`, { method: "POST", body });
    table.update(task);
    renderQueue();
    formMessage(form, "ok", "");
    const box = $(".form-message", form);
    box.replaceChildren("Submitted ", h("a", { href: `/task/?id=${task.id}` }, describeTask(task)),
      ": follow it in the queue, or open it for its live log.");
  } catch (err) {
    markProblemField(form, err);
    formMessage(form, "error", `Not started. ${problemText(err)}`);
  } finally {
    button.disabled = false;
  }
}

const where = () => `${env.name} (${project.name})`;

// What a deployment does on this environment's kind of target, in its own words.
// A package URL as the dialog shows it: its query (a SAS signature) stays out of sight.
function withoutQuery(url) {
  const at = url.indexOf("?");
  return at < 0 ? url : `${url.slice(0, at)}?…`;
}

function deployLines(version, ships = {}) {
  const target = env.target || {};
  if (target.type === "noop") {
    return [`${where()} is a dry-run target: nothing is deployed; the task logs what it would do with version ${version}.`];
  }
  if (target.type === "appservice") {
    const what = ships.packageUrl
      ? `the package ${withoutQuery(ships.packageUrl)} (the slot runs from it: WEBSITE_RUN_FROM_PACKAGE)`
      : ships.image ? `the container image ${ships.image}`
        : "no code: only the version setting changes (give a package URL or an image to ship one)";
    return [`Version ${version} goes to slot ${target.slot || "staging"} of ${target.site} with ${what}, is health-checked, then swapped into production.`,
      "If a health check fails, production keeps the version it runs now (a failed swap is swapped back)."];
  }
  if (target.type === "agent" && target.deployScript) {
    return [`An agent of pool ${target.pool} runs the deploy script ${target.deployScript} with version ${version} for ${where()}.`,
      "The version running there now is replaced; what happens on failure is up to that script."];
  }
  return [`${where()} has no deploy script on its agent target, so this deployment will fail. Ask an admin to set one.`];
}

function fieldsOf(form, specs) {
  return specs.map((spec) => ({ ...spec, input: form.elements[spec.property] }));
}

for (const form of $$("form.action")) clearOnInput(form);

$("#deploy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const version = form.elements.version.value.trim();
  const body = { version };
  const specs = [{ model: "DeployRequest", property: "version", label: "Version", what: "the version to deploy", value: version }];
  if (env.target?.type === "appservice") {
    const packageUrl = form.elements.packageUrl.value.trim();
    const image = form.elements.image.value.trim();
    if (packageUrl && image) return formMessage(form, "error", "Give a package URL or a container image, not both.");
    if (packageUrl) {
      body.packageUrl = packageUrl;
      specs.push({ model: "DeployRequest", property: "packageUrl", label: "Package URL", what: "an https URL of a zip package", value: packageUrl });
    }
    if (image) {
      body.image = image;
      specs.push({ model: "DeployRequest", property: "image", label: "Container image", what: "a container image", value: image });
    }
  }
  const valid = await validateFields(form, fieldsOf(form, specs));
  if (!valid) return formMessage(form, "error", "");
  const prod = productionLike(env);
  return submit(form, "deployments", body, {
    title: `Deploy ${version} to ${env.name}?`, okLabel: `Deploy to ${env.name}`, danger: prod,
    typeToConfirm: prod ? env.slug : null,
    lines: deployLines(version, body),
  });
});

$("#backup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return submit(event.currentTarget, "backups", {}, {
    title: `Back up ${env.name}?`, okLabel: "Back up now",
    lines: [`The database of ${where()} is dumped and stored as a new backup.`, "Nothing in the environment changes."],
  });
});

$("#restore-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = event.currentTarget.elements.backupId.value;
  const backup = backups.find((b) => b.id === id);
  if (!backup) return formMessage(event.currentTarget, "error", "Choose a backup to restore.");
  return submit(event.currentTarget, "restores", { backupId: id }, {
    title: `Restore ${env.name} from backup ${id.slice(0, 8)}?`, okLabel: `Restore ${env.name}`, danger: true,
    typeToConfirm: env.slug,
    lines: [`The database of ${where()} is replaced by backup ${id.slice(0, 8)} taken ${fmtTime(backup.createdAt)}.`,
      "Changes made since that backup are lost. A safety backup is taken first."],
  });
});

// Refresh: another environment's backup restored here, then the masking script.
async function setUpRefresh() {
  const others = (await apiAll(`/api/projects/${encodeURIComponent(projectSlug)}/environments`)).items
    .filter((e) => e.id !== env.id);
  const source = clear($("#refresh-source"));
  if (!others.length) source.append(h("option", { value: "" }, "No other environment"));
  for (const e of others) source.append(h("option", { value: e.slug }, e.name));
  $("#refresh-button").disabled = !others.length;
  const mask = clear($("#refresh-mask"));
  mask.append(h("option", { value: "" }, "None"));
  for (const s of scripts) mask.append(h("option", { value: s.name }, s.name));
  const showParams = () => renderScriptForm($("#refresh-mask-params"), scripts.find((s) => s.name === mask.value));
  mask.addEventListener("change", showParams);
  source.addEventListener("change", loadSourceBackups);
  showParams();
  await loadSourceBackups();
}

async function loadSourceBackups() {
  const select = clear($("#refresh-backup"));
  select.append(h("option", { value: "" }, "Latest backup"));
  const slug = $("#refresh-source").value;
  if (!slug) return;
  const data = await apiAll(`/api/projects/${encodeURIComponent(projectSlug)}/environments/${encodeURIComponent(slug)}/backups`);
  for (const b of data.items.filter((x) => x.kind === "backup")) {
    select.append(h("option", { value: b.id }, `${new Date(b.createdAt).toLocaleString()} · ${b.id.slice(0, 8)} · ${formatBytes(b.sizeBytes)}`));
  }
}

$("#refresh-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const sourceEnvironment = form.elements.source.value;
  if (!sourceEnvironment) return formMessage(form, "error", "Choose the environment to refresh from.");
  const body = { sourceEnvironment };
  if (form.elements.backupId.value) body.backupId = form.elements.backupId.value;
  const script = scripts.find((s) => s.name === form.elements.maskScript.value);
  if (script) {
    const values = scriptValues($("#refresh-mask-params"), script);
    if (values.error) return formMessage(form, "error", values.error);
    body.maskScript = script.name;
    body.maskParameters = values.parameters;
  }
  const which = body.backupId ? `backup ${body.backupId.slice(0, 8)}` : "latest backup";
  return submit(form, "refreshes", body, {
    title: `Refresh ${env.name} from ${sourceEnvironment}?`, okLabel: `Refresh ${env.name}`, danger: true,
    typeToConfirm: env.slug,
    lines: [`The database of ${where()} is replaced by ${sourceEnvironment}'s ${which}. A safety backup of ${env.name} is taken first.`,
      script ? `Then ${script.name} runs to mask the data; if it fails, the refresh fails.`
        : "No masking script runs: the data arrives exactly as in the source."],
  });
});

$("#restart-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const workload = form.elements.workload.value.trim();
  const valid = await validateFields(form, fieldsOf(form, [
    { model: "RestartRequest", property: "workload", label: "Workload", what: "the workload to restart", value: workload }]));
  if (!valid) return formMessage(form, "error", "");
  return submit(form, "restarts", { workload }, {
    title: `Restart ${workload} in ${env.name}?`, okLabel: `Restart ${workload}`,
    lines: [env.target?.type === "appservice"
      ? `${workload === env.target.site?.toLowerCase() ? `Site ${env.target.site}` : `Slot ${workload} of ${env.target.site}`} is restarted through Azure, then its health path ${env.target.healthPath || "/health"} is checked before the task succeeds.`
      : (env.target?.services ?? {})[workload]
        ? `Service ${workload} of ${where()} restarts on its agent's machine: a new process, health-checked before the task succeeds.`
        : `The pods of workload ${workload} in ${where()} are restarted one by one (rollout restart), and the task waits until they are ready.`],
  });
});

// Where a new sandbox's data comes from, as the sandbox orchestration does it (agent
// targets only): the backup chosen, else a fresh backup of the parent taken first when it
// has a database connection, else the parent's latest backup (never a safety copy).
function seedingLine(chosenId) {
  if (env.target?.type !== "agent") {
    return `No data is copied: ${env.name}'s ${env.target?.type || "missing"} target has no database to seed a sandbox from.`;
  }
  const chosen = backups.find((b) => b.id === chosenId);
  if (chosen) {
    return `Its database is seeded from ${env.name}'s backup ${chosen.id.slice(0, 8)} taken ${fmtTime(chosen.createdAt)}; no new backup is taken.`;
  }
  if (env.database?.connection) {
    return `A fresh backup of ${env.name} is taken first, and the sandbox's database is seeded from it (the backup stays in ${env.name}'s list).`;
  }
  const latest = backups.filter((b) => b.kind !== "safety")
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  if (!latest) {
    return `${env.name} has no backup yet, so the sandbox starts with an empty database. Back up ${env.name} first to copy its data.`;
  }
  return `Its database is seeded from ${env.name}'s latest backup, ${latest.id.slice(0, 8)} taken ${fmtTime(latest.createdAt)}.`;
}

$("#sandbox-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const f = form.elements;
  const name = f.name.value.trim();
  const valid = await validateFields(form, fieldsOf(form, [
    { model: "SandboxRequest", property: "name", label: "Name", what: "a name for the sandbox", value: name },
    { model: "SandboxRequest", property: "ttlHours", label: "Lifetime (hours)", what: "the lifetime in hours", rule: { required: true } },
  ]));
  if (!valid) return formMessage(form, "error", "");
  const ttlHours = Number(f.ttlHours.value);
  const expires = new Date(Date.now() + ttlHours * 3600_000).toISOString();
  const body = { name, ttlHours };
  if (f.backupId.value) body.backupId = f.backupId.value;
  return submit(form, "sandboxes", body, {
    title: `Create sandbox ${name} from ${env.name}?`, okLabel: "Create sandbox",
    lines: [`A new environment ${name} is created as a copy of ${where()}.`, seedingLine(body.backupId),
      `It is deleted automatically after ${ttlHours} hour${ttlHours === 1 ? "" : "s"} (around ${fmtTime(expires)}) unless extended.`],
  });
});

$("#script-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const script = scripts.find((s) => s.name === $("#script-select").value);
  if (!script) return formMessage(form, "error", "Choose a script.");
  const values = scriptValues($("#script-params"), script);
  if (values.error) return formMessage(form, "error", "");
  const prod = productionLike(env);
  const shown = Object.entries(values.parameters).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  return submit(form, `scripts/${encodeURIComponent(script.name)}/runs`, { parameters: values.parameters }, {
    title: `Run ${script.name} in ${env.name}?`, okLabel: `Run in ${env.name}`, danger: prod,
    typeToConfirm: prod ? env.slug : null,
    lines: [`Script ${script.name} runs on an agent for ${where()}.`,
      shown.length ? h("ul", { class: "mono small" }, ...shown.map((s) => h("li", {}, s))) : "It takes no parameters."],
  });
});

load();
