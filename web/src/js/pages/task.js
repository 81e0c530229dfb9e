// A task: live status and progress, and its log streamed with no gaps and no duplicates.
//
// Log lines carry sequence numbers. `lastSeq` is the highest line shown; live lines at or
// below it are ignored, and a live batch that starts after lastSeq + 1 (lines were missed,
// e.g. while reconnecting) triggers a catch-up read of GET /logs?after=lastSeq instead.
import { api, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, TERMINAL, clear, describeTask, fmtClock, fmtTime, h, problemText, progressBar, showError, statusBadge } from "../core/dom.js";
import { live, newer } from "../core/live.js";
import { requireSession } from "../core/session.js";

const session = await requireSession();
const taskId = param("id");
const logs = $("#logs");
let task = null;
let lastSeq = 0;
let catchingUp = null;
let catchUpAgain = false;

function atBottom() {
  return logs.scrollHeight - logs.scrollTop - logs.clientHeight < 40;
}

function renderTask() {
  $("#task-title").textContent = describeTask(task);
  clear($("#task-status")).append(statusBadge(task.status));
  clear($("#task-progress")).append(progressBar(task));
  $("#task-reason").textContent = task.reason || "";
  const error = $("#task-error");
  error.hidden = !task.error;
  error.textContent = task.error ? `Error: ${task.error}` : "";
  const facts = [
    ["Task id", task.id], ["Requested by", task.requestedBy], ["Created", fmtTime(task.createdAt)],
    ["Started", fmtTime(task.startedAt)], ["Finished", fmtTime(task.finishedAt)],
    ["Parameters", JSON.stringify(task.parameters || {})],
  ];
  if (task.result) facts.push(["Result", JSON.stringify(task.result)]);
  clear($("#task-facts")).append(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v || "—")]));
  $("#cancel-button").hidden = TERMINAL.has(task.status) || !session.can(task.projectId, "operator");
  document.body.dataset.taskStatus = task.status;
  renderApproval();
}

// Protected operations: who must approve, the decisions so far, and — for approvers
// only (the API lists the tasks this user may decide) — approve and reject.
let mayDecide = false;

function renderApproval() {
  const approval = task.approval;
  const panel = $("#approval-panel");
  panel.hidden = !approval;
  if (!approval) return;
  const who = (approval.approvers || []).map((a) => `${a.type} ${a.id}`).join(", ");
  const states = {
    pending: `Awaiting approval from ${who} (${approval.approvals || 0} of ${approval.required}).`,
    approved: "Approved.", rejected: "Rejected.",
    "pre-approved": `Pre-approved: scheduled by ${approval.by}, who may approve here.`,
  };
  $("#approval-state").textContent = states[approval.state] || approval.state;
  clear($("#approval-decisions")).append(...(approval.decisions || []).map((d) =>
    h("li", {}, `${d.by}: ${d.decision}${d.comment ? ` — ${d.comment}` : ""}`)));
  $("#approval-form").hidden = !(mayDecide && approval.state === "pending" && !TERMINAL.has(task.status));
}

async function checkMayDecide() {
  if (task.approval?.state !== "pending") return;
  try {
    const pending = await api("/api/approvals");
    mayDecide = pending.items.some((t) => t.id === taskId);
  } catch {
    mayDecide = false;
  }
  renderApproval();
}

$("#approval-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const decision = event.submitter?.value || "approve";
  const error = $("#approval-error");
  error.hidden = true;
  try {
    const answer = await api(`/api/tasks/${taskId}/approvals`, {
      method: "POST", body: { decision, comment: $("#approval-comment").value },
    });
    mayDecide = false;
    if (newer(task, answer.task)) task = answer.task;
    renderTask();
  } catch (err) {
    error.hidden = false;
    error.textContent = `Could not record the decision. ${problemText(err)}`;
  }
});

function lineNode(line) {
  return h("div", { class: `log-line level-${line.level}`, dataset: { seq: String(line.seq) } },
    h("span", { class: "log-seq", "aria-hidden": "true" }, String(line.seq)),
    h("time", { class: "log-time", datetime: line.at }, fmtClock(line.at)),
    h("span", { class: "log-text" }, line.text));
}

function appendLines(lines) {
  const fresh = lines.filter((l) => l.seq > lastSeq).sort((a, b) => a.seq - b.seq);
  if (!fresh.length) return;
  const follow = $("#log-follow").checked && atBottom();
  const fragment = document.createDocumentFragment();
  for (const line of fresh) {
    if (line.seq <= lastSeq) continue;
    if (line.seq !== lastSeq + 1) {
      // A hole: fetch what is missing rather than show lines out of order.
      catchUp();
      break;
    }
    fragment.append(lineNode(line));
    lastSeq = line.seq;
  }
  logs.append(fragment);
  document.body.dataset.lastSeq = String(lastSeq);
  applySearch();
  if (follow) logs.scrollTop = logs.scrollHeight;
}

// Read everything after lastSeq from the API (serialised: one read at a time).
async function catchUp() {
  if (catchingUp) {
    catchUpAgain = true;
    return catchingUp;
  }
  catchingUp = (async () => {
    do {
      catchUpAgain = false;
      for (;;) {
        const page = await api(`/api/tasks/${taskId}/logs?after=${lastSeq}&limit=1000`);
        appendContiguous(page.items);
        if (page.items.length < 1000) break;
      }
    } while (catchUpAgain);
  })().finally(() => { catchingUp = null; });
  return catchingUp;
}

function appendContiguous(items) {
  // Lines read from the API are contiguous from lastSeq + 1; show them directly.
  const follow = $("#log-follow").checked && atBottom();
  const fragment = document.createDocumentFragment();
  for (const line of items) {
    if (line.seq <= lastSeq) continue;
    fragment.append(lineNode(line));
    lastSeq = line.seq;
  }
  logs.append(fragment);
  document.body.dataset.lastSeq = String(lastSeq);
  applySearch();
  if (follow) logs.scrollTop = logs.scrollHeight;
}

function applySearch() {
  const query = $("#log-search").value.trim().toLowerCase();
  let shown = 0;
  let total = 0;
  for (const node of logs.children) {
    total += 1;
    const match = !query || node.textContent.toLowerCase().includes(query);
    node.hidden = !match;
    node.classList.toggle("match", Boolean(query) && match);
    if (match) shown += 1;
  }
  $("#logs-empty").hidden = total > 0;
  $("#log-count").textContent = query ? `${shown} of ${total} lines match` : `${total} lines`;
}

async function refresh() {
  const fresh = await api(`/api/tasks/${taskId}`);
  if (newer(task, fresh)) {
    task = fresh;
    renderTask();
  }
  await catchUp();
}

async function load() {
  $("#loading").hidden = false;
  try {
    if (!taskId) {
      const detail = "The address needs ?id=<task id>.";
      throw Object.assign(new Error(detail), { detail });
    }
    task = await api(`/api/tasks/${taskId}`);
    $("#crumb-task").textContent = taskId.slice(0, 8);
    const [project, envs] = await Promise.all([
      api(`/api/projects/${task.projectId}`),
      api(`/api/projects/${task.projectId}/environments`),
    ]);
    const env = envs.items.find((e) => e.id === task.environmentId);
    const where = $("#task-where");
    clear(where).append("in ", h("a", { href: `/environment/?p=${encodeURIComponent(project.slug)}&e=${encodeURIComponent(env?.slug || "")}` },
      `${env?.name || "environment"}`), ` · ${project.name}`);
    document.title = `${describeTask(task)} · CloudOps`;
    renderTask();
    await checkMayDecide();
    $("#content").hidden = false;
    live.on("taskUpdated", (t) => {
      if (t.id !== taskId || !newer(task, t)) return;
      task = t;
      renderTask();
      if (TERMINAL.has(t.status)) catchUp(); // the last lines may still be in flight
    });
    live.on("taskLog", (batch) => { if (batch.taskId === taskId) appendLines(batch.lines || []); });
    live.onResync(refresh);
    await live.start([`task:${taskId}`]);
    await catchUp(); // after joining, so nothing falls between the read and the subscription
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the task", retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

$("#log-search").addEventListener("input", applySearch);
$("#log-follow").addEventListener("change", (event) => {
  if (event.target.checked) logs.scrollTop = logs.scrollHeight;
});
$("#cancel-button").addEventListener("click", async () => {
  const ok = await confirmAction({
    title: "Stop this task?", okLabel: "Stop the task", cancelLabel: "Keep it running", danger: true,
    lines: [`${describeTask(task)} stops at its next safe point; work already done is not undone.`],
  });
  if (!ok) return;
  try {
    task = await api(`/api/tasks/${taskId}/cancel`, { method: "POST" });
    renderTask();
  } catch (err) {
    $("#task-error").hidden = false;
    $("#task-error").textContent = `Could not cancel. ${problemText(err)}`;
  }
});

load();
