"""The task page's log view in headless Chromium: time to load a big log, DOM size, and
search time per keystroke.

For logs of 10k, 50k and 100k lines (written straight to the log store), it opens
``/task/?id=…`` on our app on the local host and measures, in the page:
- load: navigation start → every line loaded and the count shown (targets: < 2 s at 100k);
- DOM: elements in the document once loaded (virtualised: independent of the log length);
- search: ``input`` event → matching lines rendered, per keystroke while typing a query
  (median and worst; target < 100 ms at 100k).
Baseline, same run and page: fetching and parsing the same lines with bare ``fetch`` (the
pages of 1,000 the view reads, six at a time) — what any view would pay before drawing.
Prints a table and one JSON line. Usage: ./bench.sh logview [--sizes 10000,50000,100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from localhost.easyauth import COOKIE, principal_cookie  # noqa: E402
from scripts.build_web import build  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.logs._postgres import PostgresLogStore  # noqa: E402
from tests.conftest import (  # noqa: E402
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)

CHROMIUM = "/usr/bin/chromium"
QUERY = "line 9917"  # typed one key at a time; the last keystrokes match few lines

BARE_FETCH = """async (taskId) => {
  const started = performance.now();
  let after = 0, total = 0;
  for (;;) {
    const pages = await Promise.all([0, 1, 2, 3, 4, 5].map((k) =>
      fetch(`/api/tasks/${taskId}/logs?after=${after + k * 1000}&limit=1000`)
        .then((r) => r.json())));
    let done = false;
    for (const page of pages) {
      total += page.items.length;
      if (page.items.length < 1000) { done = true; break; }
    }
    if (done) break;
    after += 6000;
  }
  return { ms: performance.now() - started, total };
}"""

TYPE_QUERY = """(query) => {
  const input = document.querySelector('#log-search');
  const times = [];
  for (let i = 1; i <= query.length; i += 1) {
    const started = performance.now();
    input.value = query.slice(0, i);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    void document.body.offsetHeight;  // the rows are laid out, not only created
    times.push(performance.now() - started);
  }
  const count = document.querySelector('#log-count').textContent;
  input.value = '';
  input.dispatchEvent(new Event('input', { bubbles: true }));
  return { times, count };
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,50000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from playwright.sync_api import sync_playwright

    dist = build()
    admin_url, name = create_throwaway_database("cloudops_bench_logview")
    url = with_database(admin_url, name)
    host = start_host(url, Path(tempfile.mkdtemp()), "--web", str(dist))
    db = Database(url).open()
    store = PostgresLogStore(db)
    rows = []
    try:
        session = host.session("bench", ("admin",))
        project = f"bench-{uuid.uuid4().hex[:6]}"
        session.post(host.url("/api/projects"), json={"slug": project, "name": "Bench"})
        session.post(host.url(f"/api/projects/{project}/environments"),
                     json={"slug": "dev", "name": "Dev", "target": {"type": "noop"}})
        tasks = {}
        for size in sizes:
            task = session.post(host.url(f"/api/projects/{project}/environments/dev/"
                                         "deployments"), json={"version": "1.0"}).json()
            deadline = time.monotonic() + 60
            while session.get(host.url(f"/api/tasks/{task['id']}")).json()["status"] \
                    != "succeeded":
                if time.monotonic() > deadline:
                    raise RuntimeError("the dry-run deploy did not finish")
                time.sleep(0.1)
            last = 0
            for start in range(0, size, 5000):
                batch = [f"line {i} of a long log: step output with some words "
                         f"({'x' * (i % 40)})" for i in range(start, min(size, start + 5000))]
                last = store.append(task["id"], batch)[-1].seq
            tasks[size] = (task["id"], last)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            for size in sizes:
                task_id, last = tasks[size]
                context = browser.new_context(base_url=host.base_url,
                                              viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": COOKIE, "url": host.base_url,
                                      "value": principal_cookie("u-bench", "bench@example.com",
                                                                ["admin"])}])
                page = context.new_page()
                page.goto(f"/task/?id={task_id}")
                page.locator(f"body[data-last-seq='{last}']").wait_for(state="attached",
                                                                        timeout=120_000)
                load_ms = page.evaluate("performance.now()")
                nodes = page.evaluate("document.getElementsByTagName('*').length")
                first_log_request = page.evaluate(
                    "Math.round((performance.getEntriesByType('resource')"
                    ".find(e => e.name.includes('/logs?')) || {startTime: -1}).startTime)")
                typed = page.evaluate(TYPE_QUERY, QUERY)
                bare = page.evaluate(BARE_FETCH, task_id)
                context.close()
                rows.append({
                    "lines": last, "load_ms": round(load_ms),
                    "first_log_request_ms": first_log_request,
                    "bare_fetch_ms": round(bare["ms"]), "dom_elements": nodes,
                    "search_median_ms": round(statistics.median(typed["times"]), 1),
                    "search_max_ms": round(max(typed["times"]), 1),
                    "search_result": typed["count"],
                })
            browser.close()
    finally:
        db.close()
        stop_host(host)
        drop_database(admin_url, name)

    header = f"{'lines':>8} {'load ms':>8} {'bare fetch ms':>14} {'DOM elements':>13} " \
             f"{'search ms (median/max)':>24}"
    print(header)
    for r in rows:
        print(f"{r['lines']:>8} {r['load_ms']:>8} {r['bare_fetch_ms']:>14} "
              f"{r['dom_elements']:>13} {r['search_median_ms']:>12} / {r['search_max_ms']:<9}"
              f"  ({r['search_result']})")
    biggest = rows[-1]
    print(f"targets at {biggest['lines']} lines: load < 2000 ms "
          f"({'met' if biggest['load_ms'] < 2000 else 'NOT met'}), search < 100 ms "
          f"({'met' if biggest['search_max_ms'] < 100 else 'NOT met'})")
    print(json.dumps({"bench": "logview", "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
