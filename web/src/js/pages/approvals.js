// Pending approvals: every task this user may decide (the API lists only those), with the
// exact plan approved — resources, script argv, parameters — and approve or reject with
// a comment. Decisions by others and new requests arrive live.
import { api, apiAll } from "../core/api.js";
import { confirmAction } from "../core/confirm.js";
import { $, OPERATION_LABELS, clear, describeTask, formMessage, h, pageLoaded, showError, timeNode } from "../core/dom.js";
import { live } from "../core/live.js";
import { showProblems } from "../core/forms.js";
import { requireSession } from "../core/session.js";

await requireSession();
const projects = new Map();
const envs = new Map();

// The plan as facts: the resources it runs on, the script and its argv, the restart or
// refresh source; then the recorded JSON itself.
function planFacts(plan) {
  if (!plan) return [h("p", { class: "muted small" }, "No plan recorded: the task runs what its parameters say.")];
  const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const rows = [];
  for (const [key, value] of Object.entries(plan)) {
    if (key === "script") continue;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) rows.push(h("dt", {}, `${key} ${k}`), h("dd", {}, show(v)));
    } else {
      rows.push(h("dt", {}, key), h("dd", {}, show(value)));
    }
  }
  const out = [];
  const script = plan.script;
  if (script) {
    const argv = script.argv || script.argvTemplate;
    out.push(h("p", { class: "small" }, `Script ${script.name || "?"}${script.missing ? " — no longer in the catalogue: the run fails" : ""}`
      + (argv ? (script.argv ? ", run as this argv (never through a shell):" : ", argv template (values filled in when it runs):") : "")));
    if (argv) out.push(h("ol", { class: "argv-preview", "aria-label": "argv" }, ...argv.map((a) => h("li", {}, a))));
  }
  if (rows.length) out.push(h("dl", { class: "facts" }, ...rows));
  out.push(h("details", {}, h("summary", { class: "small muted" }, "The plan as recorded (JSON)"),
    h("pre", { class: "plan" }, JSON.stringify(plan, null, 2))));
  return out;
}

function card(task) {
  const approval = task.approval || {};
  const env = envs.get(task.environmentId);
  const project = projects.get(task.projectId);
  const who = (approval.approvers || []).map((a) => `${a.type} ${a.id}`).join(", ");
  const deadline = approval.timeoutMinutes ? new Date(Date.parse(task.createdAt) + approval.timeoutMinutes * 60000).toISOString() : null;
  const id = task.id;
  const commentId = `comment-${id}`;
  const form = h("form", { class: "form-grid", id: `decide-${id}`, novalidate: true },
    h("label", { class: "field wide", for: commentId }, h("span", {}, "Comment (recorded with your decision)"),
      h("textarea", { id: commentId, name: "comment", "data-field": "comment", rows: "2", maxlength: "2000" })),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "button primary", value: "approve", id: `approve-${id}` }, "Approve…"), " ",
      h("button", { type: "submit", class: "button danger", value: "reject", id: `reject-${id}` }, "Reject…")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    decide(task, form, event.submitter?.value || "approve");
  });
  // the argv is shown with the plan, once
  const params = Object.entries(task.parameters || {}).filter(([k]) => k !== "argv");
  return h("article", { class: "approval-card", dataset: { taskId: id }, "aria-labelledby": `title-${id}` },
    h("h2", { id: `title-${id}` }, h("a", { href: `/task/?id=${encodeURIComponent(id)}` }, describeTask(task)),
      h("span", { class: "muted" }, ` · ${env?.name || "?"} · ${project?.name || "?"}`)),
    h("p", { class: "small muted" }, `Requested by ${task.requestedByName || task.requestedBy} `, timeNode(task.createdAt),
      deadline ? h("span", {}, " · cancelled if undecided ", timeNode(deadline)) : null),
    h("p", {}, `${OPERATION_LABELS[task.operation] || task.operation}: ${approval.approvals || 0} of ${approval.required || 1} approval(s) from ${who}.`),
    params.length ? h("h3", {}, "Requested") : null,
    params.length ? h("dl", { class: "facts" }, ...params.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))])) : null,
    h("h3", {}, "The plan being approved"),
    ...planFacts(task.plan),
    (approval.decisions || []).length ? h("ul", { class: "small" }, ...(approval.decisions || []).map((d) =>
      h("li", {}, `${d.by}: ${d.decision}${d.comment ? ` — ${d.comment}` : ""}`))) : null,
    form);
}

async function decide(task, form, decision) {
  const approval = task.approval || {};
  const env = envs.get(task.environmentId);
  const last = decision === "approve" && (approval.approvals || 0) + 1 >= (approval.required || 1);
  const ok = await confirmAction({
    title: decision === "approve" ? `Approve ${describeTask(task)}?` : `Reject ${describeTask(task)}?`,
    okLabel: decision === "approve" ? "Approve" : "Reject", danger: decision === "reject",
    lines: decision === "approve"
      ? [last ? `It then joins the queue of ${env?.name || "the environment"} and runs the plan shown.`
        : `It still needs ${(approval.required || 1) - (approval.approvals || 0) - 1} more approval(s) after yours.`]
      : ["The task is cancelled with your comment as the reason; it will not run."],
  });
  if (!ok) return;
  try {
    await api(`/api/tasks/${encodeURIComponent(task.id)}/approvals`, {
      method: "POST", body: { decision, comment: form.elements.comment.value } });
    formMessage(form, "ok", decision === "approve" ? "Approved." : "Rejected.");
    await load();
  } catch (err) {
    showProblems(form, err, { what: "Your decision was not recorded" });
  }
}

async function load() {
  const pending = (await apiAll("/api/approvals")).items;
  const list = $("#approval-list");
  // keep what is being typed in a comment when the list is redrawn
  const typed = new Map([...list.querySelectorAll("textarea")].map((t) => [t.id, t.value]));
  clear(list).append(...pending.map(card));
  for (const [id, value] of typed) { const t = document.getElementById(id); if (t) t.value = value; }
  $("#no-approvals").hidden = pending.length > 0;
}

async function start() {
  $("#loading").hidden = false;
  try {
    for (const p of (await apiAll("/api/projects")).items) projects.set(p.id, p);
    const lists = await Promise.all([...projects.values()].map((p) => apiAll(`/api/projects/${p.id}/environments`)));
    for (const list of lists) for (const e of list.items) envs.set(e.id, e);
    await load();
    pageLoaded();
  } catch (err) {
    showError($("#page-error"), err, { what: "Could not load the pending approvals", retry: start });
    return;
  } finally {
    $("#loading").hidden = true;
  }
  live.on("taskUpdated", (task) => { if (task.approval) load(); });
  live.onResync(load);
  live.start([...projects.values()].slice(0, 50).map((p) => `project:${p.id}`));
}

start();
