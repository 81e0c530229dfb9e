// One way to show a time: absolute, in the browser's zone with the zone named; relative
// ("3 min ago") only with the absolute time on hover. The zone is the viewer's own, said
// in every absolute time so nothing on a page reads as a bare, zone-less clock.

import { h } from "./dom_base.js";

const ABSOLUTE = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short",
});
const CLOCK = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

// The viewer's zone, as absolute times name it ("UTC", "GMT+1", "CET").
export const ZONE = (ABSOLUTE.formatToParts(new Date()).find((p) => p.type === "timeZoneName") || {}).value || "UTC";

export function fmtTime(iso) {
  if (!iso) return "—";
  return ABSOLUTE.format(new Date(iso));
}

// A log line's time of day (the log header names the zone once).
export function fmtClock(iso) {
  if (!iso) return "";
  return CLOCK.format(new Date(iso));
}

export function relTime(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// <time> showing `text` (absolute by default, or relative) with the absolute time on hover.
export function timeNode(iso, { relative = false, prefix = "" } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: fmtTime(iso) }, `${prefix}${relative ? relTime(iso) : fmtTime(iso)}`);
}
