// A task log that stays fast at any length: lines are kept as data and only the rows in
// view (plus a margin) exist in the DOM, each one fixed-height row; search runs over the
// loaded text (lower-cased once per line) and shows the matching lines only.

import { h } from "./dom.js";
import { fmtClock, fmtTime } from "./time.js";

const ROW_HEIGHT = 21; // px; .log-line in olympus.css has the same height
const OVERSCAN = 30; // rows rendered above and below the visible ones

export class LogView {
  constructor(container) {
    this.container = container;
    this.lines = []; // {seq, at, level, text, lower}
    this.query = "";
    this.matches = null; // indices into lines while a query is active
    this.spacer = h("div", { class: "logs-spacer" });
    this.window = h("div", { class: "logs-window" });
    this.spacer.append(this.window);
    container.replaceChildren(this.spacer);
    this.rendered = { first: -1, last: -1, count: -1 };
    this.frame = 0;
    container.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule(true)).observe(container);
  }

  get lastSeq() {
    return this.lines.length ? this.lines[this.lines.length - 1].seq : 0;
  }

  get total() {
    return this.lines.length;
  }

  get shown() {
    return this.matches ? this.matches.length : this.lines.length;
  }

  atBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 2 * ROW_HEIGHT;
  }

  // Append lines that follow lastSeq contiguously (the caller checks order).
  append(items) {
    const start = this.lines.length;
    for (const item of items) {
      this.lines.push({ seq: item.seq, at: item.at, level: item.level, text: item.text, lower: item.text.toLowerCase() });
    }
    if (this.matches && this.query) {
      for (let i = start; i < this.lines.length; i += 1) {
        if (this.lines[i].lower.includes(this.query)) this.matches.push(i);
      }
    }
    this.schedule(true);
  }

  search(text) {
    const query = text.trim().toLowerCase();
    if (query === this.query) return;
    this.query = query;
    if (!query) {
      this.matches = null;
    } else {
      const found = [];
      const { lines } = this;
      for (let i = 0; i < lines.length; i += 1) if (lines[i].lower.includes(query)) found.push(i);
      this.matches = found;
    }
    this.container.scrollTop = 0;
    this.render(true);
  }

  scrollToEnd() {
    this.container.scrollTop = this.container.scrollHeight;
    this.render();
  }

  schedule(force = false) {
    if (force) this.dirty = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render(this.dirty);
    });
  }

  // Draw the rows in view. `force`: the lines or the query changed, redraw even if the
  // same range is in view.
  render(force = false) {
    this.dirty = false;
    const count = this.shown;
    this.spacer.style.height = `${count * ROW_HEIGHT}px`;
    const top = this.container.scrollTop;
    const height = this.container.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(count, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const same = this.rendered.first === first && this.rendered.last === last && this.rendered.count === count;
    if (same && !force) return;
    this.rendered = { first, last, count };
    this.window.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const rows = [];
    for (let i = first; i < last; i += 1) {
      const line = this.lines[this.matches ? this.matches[i] : i];
      rows.push(this.row(line));
    }
    this.window.replaceChildren(...rows);
  }

  row(line) {
    const match = this.query ? " match" : "";
    return h("div", { class: `log-line level-${line.level}${match}`, dataset: { seq: String(line.seq) } },
      h("span", { class: "log-seq", "aria-hidden": "true" }, String(line.seq)),
      h("time", { class: "log-time", datetime: line.at, title: fmtTime(line.at) }, fmtClock(line.at)),
      h("span", { class: "log-text" }, line.text));
  }
}
