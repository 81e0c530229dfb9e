// A live task table: rows keyed by task id, updated in place from taskUpdated events.

import { clear, describeTask, h, progressBar, statusBadge, timeNode } from "./dom.js";
import { newer } from "./live.js";

export class TaskTable {
  constructor(tbody, { envNames = new Map(), filter = () => true, limit = 50, emptyNode = null } = {}) {
    this.tbody = tbody;
    this.envNames = envNames;
    this.filter = filter;
    this.limit = limit;
    this.emptyNode = emptyNode;
    this.tasks = new Map();
  }

  replaceAll(tasks) {
    this.tasks.clear();
    for (const task of tasks) this.tasks.set(task.id, task);
    this.render();
  }

  append(tasks) {
    for (const task of tasks) if (newer(this.tasks.get(task.id), task)) this.tasks.set(task.id, task);
    this.render();
  }

  update(task) {
    if (!this.filter(task)) {
      if (this.tasks.delete(task.id)) this.render();
      return;
    }
    if (!newer(this.tasks.get(task.id), task)) return;
    this.tasks.set(task.id, task);
    this.render();
  }

  sorted() {
    return [...this.tasks.values()].sort((a, b) => (b.seq || 0) - (a.seq || 0)).slice(0, this.limit);
  }

  render() {
    const rows = this.sorted().map((task) => this.row(task));
    clear(this.tbody).append(...rows);
    if (this.emptyNode) this.emptyNode.hidden = rows.length > 0;
  }

  row(task) {
    const env = this.envNames.get(task.environmentId);
    return h("tr", { dataset: { taskId: task.id, status: task.status } },
      h("td", {}, h("a", { href: `/task/?id=${task.id}`, class: "task-link" }, describeTask(task)),
        h("div", { class: "muted small mono" }, task.id.slice(0, 8))),
      h("td", { class: "col-env" }, env || h("span", { class: "muted" }, "—")),
      h("td", {}, statusBadge(task.status)),
      h("td", { class: "col-progress" }, progressBar(task)),
      h("td", { class: "col-reason", title: task.error || "" }, reasonLine(task)),
      h("td", { class: "small", title: task.requestedBy }, task.requestedByName || task.requestedBy, h("div", { class: "muted" }, timeNode(task.createdAt, { relative: true }))));
  }
}


// One line saying why: the reason, or an error's first line; never the status again.
export function reasonLine(task) {
  const text = (task.reason || String(task.error || "").split("\n")[0] || "").trim();
  return text.replace("_", " ") === String(task.status).replace("_", " ") ? "" : text;
}
