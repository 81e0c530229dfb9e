// Live updates: the official @microsoft/signalr client through POST /api/negotiate, group
// joins through POST /api/realtime/groups/{group}, and polling when real time is unavailable.
//
// Events are hints and the API is the truth (shared/realtime/events.py): after every
// (re)connect, and on every poll, pages re-read what they show through their resync
// callbacks, so nothing missed while disconnected is lost.

import { api } from "./api.js";

const RETRY_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 15000];
const POLL_MS = 3000;
const RESTART_MS = 30000;

class Live {
  constructor() {
    this.groups = new Set();
    this.handlers = { taskUpdated: [], taskLog: [], agentUpdated: [] };
    this.resyncs = [];
    this.mode = "idle";
    this.connection = null;
    this.pollTimer = null;
    this.restartTimer = null;
  }

  on(event, fn) { this.handlers[event].push(fn); return this; }
  onResync(fn) { this.resyncs.push(fn); return this; }

  async start(groups = []) {
    for (const group of groups) this.groups.add(group);
    if (typeof window.signalR === "undefined") {
      this.fallBack("the real-time client did not load");
      return;
    }
    this.setMode("connecting");
    try {
      await this.connect();
      this.setMode("live");
    } catch (err) {
      this.fallBack(err.detail || err.message || "negotiate failed");
    }
  }

  async connect() {
    const info = await api("/api/negotiate", { method: "POST" });
    const connection = new window.signalR.HubConnectionBuilder()
      .withUrl(info.url, { accessTokenFactory: () => info.accessToken })
      .withAutomaticReconnect(RETRY_DELAYS_MS)
      .configureLogging(window.signalR.LogLevel.Warning)
      .build();
    for (const event of Object.keys(this.handlers)) {
      connection.on(event, (...args) => {
        for (const payload of args) for (const fn of this.handlers[event]) fn(payload);
      });
    }
    connection.onreconnecting(() => this.setMode("reconnecting"));
    connection.onreconnected(async () => {
      // A new connection id: join the groups again, then re-read what was missed.
      try {
        await this.joinAll();
        this.setMode("live");
      } catch (err) {
        this.fallBack(err.detail || err.message);
        return;
      }
      await this.resync();
    });
    connection.onclose(() => {
      if (this.connection === connection) this.fallBack("the connection closed");
    });
    await connection.start();
    this.connection = connection;
    try {
      await this.joinAll();
    } catch (err) {
      this.connection = null; // so its onclose does not report a second time
      await connection.stop();
      throw err;
    }
  }

  async joinAll() {
    await Promise.all([...this.groups].map((group) => this.joinOne(group)));
  }

  async joinOne(group) {
    if (!this.connection || !this.connection.connectionId) return;
    await api(`/api/realtime/groups/${encodeURIComponent(group)}`, {
      method: "POST", body: { connectionId: this.connection.connectionId },
    });
  }

  async join(group) {
    if (this.groups.has(group)) return;
    this.groups.add(group);
    if (this.mode === "live") {
      try { await this.joinOne(group); } catch { /* the next resync covers it */ }
    }
  }

  async resync() {
    for (const fn of this.resyncs) {
      try { await fn(); } catch (err) { console.warn("resync failed", err); }
    }
  }

  fallBack(why) {
    this.connection = null;
    this.setMode("polling", why);
    if (!this.pollTimer) this.pollTimer = setInterval(() => this.resync(), POLL_MS);
    if (!this.restartTimer) {
      // Keep trying to get real time back; polling carries on meanwhile.
      this.restartTimer = setInterval(async () => {
        if (this.mode !== "polling" || typeof window.signalR === "undefined") return;
        try {
          await this.connect();
          clearInterval(this.pollTimer);
          this.pollTimer = null;
          this.setMode("live");
          await this.resync();
        } catch { /* still unavailable */ }
      }, RESTART_MS);
    }
  }

  setMode(mode, why = "") {
    this.mode = mode;
    document.body.dataset.live = mode;
    const indicator = document.getElementById("live-indicator");
    const banner = document.getElementById("banner");
    if (indicator) {
      const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", polling: "Polling" };
      indicator.hidden = false;
      indicator.dataset.state = mode;
      indicator.textContent = labels[mode] || mode;
      indicator.title = mode === "live" ? "Updates arrive in real time" : why;
    }
    if (banner) {
      if (mode === "polling") {
        banner.hidden = false;
        banner.textContent = `Live updates are unavailable (${why}); this page refreshes every ${POLL_MS / 1000} seconds instead.`;
      } else if (mode === "reconnecting") {
        banner.hidden = false;
        banner.textContent = "Connection lost; reconnecting. Nothing is lost: the page catches up when it is back.";
      } else {
        banner.hidden = true;
      }
    }
  }
}

export const live = new Live();

// Keep the newest snapshot of each task (project and task groups both deliver it).
export function newer(current, incoming) {
  if (!current) return true;
  return (incoming.updatedAt || "") >= (current.updatedAt || "");
}
