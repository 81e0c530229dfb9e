// A task: live status and progress, and its log streamed with no gaps and no duplicates.
//
// Log lines carry sequence numbers. `lastSeq` is the highest line shown; live lines at or
// below it are ignored, and a live batch that starts after lastSeq + 1 (lines were missed,
// e.g. while reconnecting) triggers a catch-up read of GET /logs?after=lastSeq instead.
import { api, apiAll, param } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, TERMINAL, ZONE, clear, describeTask, fillTable, fmtTime, h, pageLoaded, problemText, progressBar, showError, statusBadge } from "../core/dom.js";
import { LogView } from "../core/log_view.js";
import { live, newer } from "../core/live.js";
import { requireSession } from "../core/session.js";

const session = await requireSession();
const taskId = param("id");
const logs = $("#logs");
let task = null;
let catchingUp = null;
let catchUpAgain = false;

function renderTask() {
  $("#task-title").textContent = describeTask(task);
  clear($("#task-status")).append(statusBadge(task.status));
  clear($("#task-progress")).append(progressBar(task));
  $("#task-reason").textContent = reasonText(task);
  renderOutcome();
  const facts = [
    ["Task id", task.id], ["Requested by", task.requestedByName || task.requestedBy], ["Created", fmtTime(task.createdAt)],
    ["Started", fmtTime(task.startedAt)], ["Finished", fmtTime(task.finishedAt)],
    ["Parameters", JSON.stringify(task.parameters || {})],
  ];
  if (task.result) facts.push(["Result", JSON.stringify(task.result)]);
  clear($("#task-facts")).append(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v || "—")]));
  $("#cancel-button").hidden = TERMINAL.has(task.status) || !session.can(task.projectId, "operator");
  document.body.dataset.taskStatus = task.status;
  renderApproval();
}

// The reason in words, without repeating the status the badge already shows.
function reasonText(t) {
  const reason = (t.reason || "").trim();
  if (["failed", "timed_out", "cancelled"].includes(t.status)) return ""; // the outcome says it
  if (!reason || reason.replace("_", " ") === t.status.replace("_", " ")) return "";
  return reason;
}

// How a task ended, when not in success: a cancel says who asked, in a neutral note; a
// failure shows its error as a block, lines kept, with the last output lines before it.
function renderOutcome() {
  const note = $("#task-cancelled");
  const failure = $("#task-failure");
  note.hidden = task.status !== "cancelled";
  note.textContent = task.status === "cancelled" ? `${task.error || task.reason || "Cancelled"}.` : "";
  const failed = task.status === "failed" || task.status === "timed_out";
  failure.hidden = !failed;
  if (!failed) return;
  const [headline, ...rest] = String(task.error || task.reason || "").split("\n");
  $("#failure-headline").textContent = headline.replace(/[;:,]?\s*last lines:?\s*$/i, "");
  const lines = rest.filter((l) => l.trim() !== "" && !/^last lines:?$/i.test(l.trim()));
  const shown = lines.length ? lines : lastOutputLines(headline);
  $("#failure-output").textContent = shown.join("\n");
  $("#failure-output-wrap").hidden = shown.length === 0;
}

// The log's last lines before the closing "failed: …" line (when the error has none).
function lastOutputLines(headline, count = 12) {
  const texts = loadedLines.map((l) => l.text);
  while (texts.length && (texts.at(-1).startsWith("failed") || texts.at(-1).includes(headline))) texts.pop();
  return texts.slice(-count);
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
    const pending = await apiAll("/api/approvals");
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

// The log: a virtualised view over every loaded line (see core/log_view.js).
const view = new LogView(logs);
const loadedLines = view.lines;
const PAGE = 1000;
const PARALLEL = 6;

function following() {
  return $("#log-follow").checked;
}

// Lines contiguous after view.lastSeq (older or repeated ones are skipped).
function show(items) {
  const follow = following() && view.atBottom();
  const fresh = [];
  let last = view.lastSeq;
  for (const line of items) {
    if (line.seq <= last) continue;
    fresh.push(line);
    last = line.seq;
  }
  if (!fresh.length) return;
  view.append(fresh);
  document.body.dataset.lastSeq = String(view.lastSeq);
  updateCount();
  if (follow) requestAnimationFrame(() => view.scrollToEnd());
  if (TERMINAL.has(task?.status)) renderOutcome();
}

function appendLines(lines) {
  const sorted = lines.filter((l) => l.seq > view.lastSeq).sort((a, b) => a.seq - b.seq);
  if (!sorted.length) return;
  if (sorted[0].seq !== view.lastSeq + 1) {
    // A hole: fetch what is missing rather than show lines out of order.
    catchUp();
    return;
  }
  let end = 0;
  while (end + 1 < sorted.length && sorted[end + 1].seq === sorted[end].seq + 1) end += 1;
  show(sorted.slice(0, end + 1));
  if (end + 1 < sorted.length) catchUp();
}

// Read everything after lastSeq from the API (serialised: one catch-up at a time). Pages
// of 1,000 are read several at once: sequence numbers are contiguous, so page k starts
// after lastSeq + k * 1000; the first short page is the end.
async function catchUp() {
  if (catchingUp) {
    catchUpAgain = true;
    return catchingUp;
  }
  catchingUp = (async () => {
    do {
      catchUpAgain = false;
      for (;;) {
        const base = view.lastSeq;
        const pages = await Promise.all(Array.from({ length: PARALLEL }, (_, k) =>
          api(`/api/tasks/${taskId}/logs?after=${base + k * PAGE}&limit=${PAGE}`)));
        let complete = true;
        for (const page of pages) {
          show(page.items);
          if (page.items.length < PAGE) {
            complete = false;
            break;
          }
        }
        if (!complete) break;
      }
    } while (catchUpAgain);
  })().finally(() => { catchingUp = null; });
  return catchingUp;
}

function updateCount() {
  $("#logs-empty").hidden = view.total > 0;
  $("#log-count").textContent = view.query
    ? `${view.shown} of ${view.total} lines match`
    : `${view.total} lines`;
}

function applySearch() {
  view.search($("#log-search").value);
  updateCount();
}

// The notifications this task's events produced (delivery rows, written once the task ends).
async function loadDeliveries() {
  try {
    const data = await api(`/api/tasks/${taskId}/notifications`);
    fillTable($("#deliveries"), data.items.map((d) => h("tr", { dataset: { status: d.status } },
      h("td", {}, d.event),
      h("td", {}, d.rule),
      h("td", {}, d.channel === "teams" ? "Teams" : "E-mail"),
      h("td", {}, h("span", { class: `badge delivery-${d.status}` }, d.status),
        d.lastError ? h("div", { class: "error-text small" }, d.lastError) : null),
      h("td", {}, String(d.attempts)),
      h("td", { class: "small" }, fmtTime(d.deliveredAt || d.createdAt)))), $("#no-deliveries"));
  } catch (err) {
    $("#no-deliveries").hidden = false;
    $("#no-deliveries").textContent = `Could not read the notifications. ${problemText(err)}`;
  }
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
    // Start reading the log now (a big one takes the longest); the read after joining the
    // live group below catches whatever arrives in between.
    const firstRead = catchUp();
    $("#crumb-task").textContent = taskId.slice(0, 8);
    const [project, envs] = await Promise.all([
      api(`/api/projects/${task.projectId}`),
      apiAll(`/api/projects/${task.projectId}/environments`),
    ]);
    const env = envs.items.find((e) => e.id === task.environmentId);
    const where = $("#task-where");
    clear(where).append("in ", h("a", { href: `/environment/?p=${encodeURIComponent(project.slug)}&e=${encodeURIComponent(env?.slug || "")}` },
      `${env?.name || "environment"}`), ` · ${project.name}`);
    document.title = `${describeTask(task)} · CloudOps`;
    renderTask();
    $("#rules-link").href = `/notifications/?p=${encodeURIComponent(project.slug)}`;
    loadDeliveries();
    await checkMayDecide();
    pageLoaded();
    live.on("taskUpdated", (event) => {
      if (event.id !== taskId) return;
      // A terminal snapshot may carry the lines that closed the task (no taskLog for them).
      const { log: closing, ...t } = event;
      if (closing) appendLines(closing.lines || []);
      if (!newer(task, t)) return;
      task = t;
      renderTask();
      if (TERMINAL.has(t.status)) {
        catchUp(); // the last lines may still be in flight
        loadDeliveries();
      }
    });
    live.on("taskLog", (batch) => { if (batch.taskId === taskId) appendLines(batch.lines || []); });
    live.onResync(refresh);
    live.onResync(loadDeliveries);
    await live.start([`task:${taskId}`]);
    await firstRead;
    await catchUp(); // after joining, so nothing falls between the read and the subscription
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the task", retry: load });
  } finally {
    $("#loading").hidden = true;
  }
}

$("#log-search").addEventListener("input", applySearch);
$("#deliveries-refresh").addEventListener("click", loadDeliveries);
$("#log-follow").addEventListener("change", (event) => {
  if (event.target.checked) view.scrollToEnd();
});
$("#log-zone").textContent = `times in ${ZONE}`;
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
