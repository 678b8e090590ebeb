"""The run's page at scale: draw time and live-event lag of a 200- and a 1,000-step run.

``python -m benchmarks.page`` (from the repo root; ``--repeat N``, ``--out FILE``) serves a
SQLite store in this process (``tests.server.conftest.serving``, two workers, as the browser
tests do; but streams recheck their token every 5 s as ``pardag serve`` does, not every 0.2 s
as in the tests: ``--recheck``), starts a run of ``layers x 20`` ``delay`` steps (the workflow
of ``tests.server.ui.test_page_scale``) and opens its page in Chromium at once, so that its
events arrive over the page's stream. Each scenario runs ``--repeat`` times, each time on a
fresh page. Per run it reports:

- html, draw: navigation start to the page's HTML received (the server rendering it), and to
  the first frame painted after the DAG's nodes are in the page;
- 1st event: navigation start to the first live event reaching the page's handler;
- lag p50/p95/max: ``window.pardagStats.lags``, per live event, ms from its arrival to the
  next animation frame after it was applied (run.js ``apply``); ``> 16.7 ms``: the share of
  events whose lag exceeds one frame at 60 Hz;
- frame p50/p95/max: ms between two animation frames, from the first live event to the
  frame after the last (a click or a scroll waits up to one such gap);
- apply: ms the page's handler spent per event (median) and in all (s); events/s: live
  events over the time from the first one's arrival to the last one's end;
- stale p50/p95: seconds from an event's own time (``at``, stamped when it happened) to the
  end of the page's handler for it: how old what the page shows is (SQLite streams read the
  store every 0.2 s, so events come in bursts and 0.1-0.2 s of this is the server's);
- behind: seconds between the run's end (``finished_at``) and the page applying its last event.

The ``timeline shown`` scenario clicks the Timeline tab as soon as the page's scripts have
run (the Graph tab is the default: the timeline is hidden). Results: a table (medians of the
repeats) on stdout and ``benchmarks/results/page.json`` (ignored by git, as the other
results); docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.browser import chromium_path
from tests.server.conftest import Served, serving
from tests.server.ui.conftest import sign_in
from tests.server.ui.test_page_scale import WIDTH, all_succeeded, layered_flow

from pardag.server.events import RECHECK
from pardag.store import open_store

REPO = Path(__file__).resolve().parent.parent
FRAME_MS = 1000 / 60
PATIENCE_MS = 300_000

# Before the page's scripts: when the DAG's first node is in the page and the frame after
# it, and the time the page's stream handlers take (EventSource listeners wrapped).
PROBE = """
(() => {
  const probe = (window.pardagProbe = { drawn: null, painted: null, spent: [], first: null,
                                        last: null, lastEpoch: null, stale: [], frames: [] });
  let before = null;
  const frame = (now) => {  // frame intervals while live events come (after the first)
    if (probe.first !== null && before !== null) probe.frames.push([now, now - before]);
    before = now;
    if (!probe.done) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const seen = new MutationObserver(() => {
    if (!document.querySelector("#dag svg .dag-node")) return;
    seen.disconnect();
    probe.drawn = performance.now();
    requestAnimationFrame(() => { probe.painted = performance.now(); });
  });
  seen.observe(document, { childList: true, subtree: true });
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, listener, options) {
    if (type === "end") return add.call(this, type, listener, options);
    const timed = function (message) {
      const start = performance.now();
      if (probe.first === null) probe.first = start;
      try { return listener.call(this, message); } finally {
        probe.last = performance.now();
        probe.lastEpoch = Date.now() / 1000;
        probe.spent.push(probe.last - start);
        probe.stale.push(probe.lastEpoch - JSON.parse(message.data).at);
      }
    };
    return add.call(this, type, timed, options);
  };
})();
"""
SHOW_TIMELINE = """
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("tab-timeline").click();
});
"""
"""The Timeline tab shown once the page's scripts ran (module scripts run before
DOMContentLoaded), before its first live event."""


@dataclass
class Scenario:
    name: str
    layers: int
    timeline: bool = False

    @property
    def steps(self) -> int:
        return self.layers * WIDTH


SCENARIOS = (
    Scenario("200 steps", 10),
    Scenario("1,000 steps", 50),
    Scenario("1,000 steps, timeline shown", 50, timeline=True),
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def measure(browser: Any, site: Served, workflow: str, scenario: Scenario) -> dict[str, Any]:
    """One run of ``scenario``'s workflow with its page open from the start."""
    # bypass_csp: the page's policy forbids eval, which wait_for_function's expressions need;
    # the policy changes nothing of what is measured
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.add_init_script(PROBE)
        if scenario.timeline:
            page.add_init_script(SHOW_TIMELINE)
        sign_in(page, site, "viewer")
        run_id = site.start("operator", workflow)
        page.goto(f"{site.url}/runs/{run_id}")
        page.wait_for_function(all_succeeded(scenario.steps), polling=250)
        page.wait_for_selector("#run-status.st-succeeded")
        page.wait_for_function("window.pardagProbe.painted !== null")
        page.evaluate("window.pardagProbe.done = true")
        got = page.evaluate(
            "({stats: window.pardagStats, probe: window.pardagProbe, layouts: "
            "window.pardagDag.layouts, html: performance.getEntriesByType('navigation')[0]"
            ".responseEnd, snapshot: JSON.parse(document.getElementById('snapshot')"
            ".textContent).events.length})"
        )
        run = site.call("viewer", "GET", f"/api/runs/{run_id}").json()
    finally:
        context.close()
    stats, probe = got["stats"], got["probe"]
    lags = stats["lags"]
    during = [at <= probe["last"] for at, _ in probe["frames"]] + [False]
    ends = during.index(False)  # the first frame after the last event closes the span
    frames = [gap for _, gap in probe["frames"][: ends + 1]]
    span = (probe["last"] - probe["first"]) / 1000 if probe["first"] is not None else 0.0
    return {
        "run": run_id,
        "status": run["status"],
        "run_s": run["finished_at"] - run["created_at"],
        "layouts": got["layouts"],
        "snapshot_events": got["snapshot"],
        "events": stats["events"],
        "html_ms": got["html"],
        "draw_ms": probe["painted"],
        "first_event_ms": probe["first"],
        "lag_p50_ms": percentile(lags, 0.5),
        "lag_p95_ms": percentile(lags, 0.95),
        "lag_max_ms": max(lags, default=0.0),
        "over_frame": sum(lag > FRAME_MS for lag in lags) / len(lags) if lags else 0.0,
        "frame_p50_ms": percentile(frames, 0.5),
        "frame_p95_ms": percentile(frames, 0.95),
        "frame_max_ms": max(frames, default=0.0),
        "frames": len(frames),
        "apply_p50_ms": percentile(probe["spent"], 0.5),
        "apply_total_s": sum(probe["spent"]) / 1000,
        "events_per_s": stats["events"] / span if span else 0.0,
        "stale_p50_s": percentile(probe["stale"], 0.5),
        "stale_p95_s": percentile(probe["stale"], 0.95),
        "behind_s": probe["lastEpoch"] - run["finished_at"],
    }


COLUMNS = (
    ("html ms", "html_ms", "{:.0f}"),
    ("draw ms", "draw_ms", "{:.0f}"),
    ("1st event ms", "first_event_ms", "{:.0f}"),
    ("lag p50", "lag_p50_ms", "{:.0f}"),
    ("lag p95", "lag_p95_ms", "{:.0f}"),
    ("lag max", "lag_max_ms", "{:.0f}"),
    ("> 16.7 ms", "over_frame", "{:.0%}"),
    ("frame p50", "frame_p50_ms", "{:.0f}"),
    ("frame p95", "frame_p95_ms", "{:.0f}"),
    ("frame max", "frame_max_ms", "{:.0f}"),
    ("apply ms", "apply_p50_ms", "{:.2f}"),
    ("apply s", "apply_total_s", "{:.1f}"),
    ("events/s", "events_per_s", "{:.0f}"),
    ("live events", "events", "{:.0f}"),
    ("run s", "run_s", "{:.1f}"),
    ("stale p50 s", "stale_p50_s", "{:.2f}"),
    ("stale p95 s", "stale_p95_s", "{:.2f}"),
    ("behind s", "behind_s", "{:.1f}"),
)


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Medians over the repeats, one row per scenario (markdown)."""
    head = ["scenario", *(name for name, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in results.items():
        cells = [fmt.format(statistics.median(r[key] for r in runs)) for _, key, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--recheck", type=float, default=RECHECK, help="seconds between a stream's token checks"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "page.json")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder, open_store(f"{folder}/runs.db") as store:
        served = serving(store, workers=2, recheck=args.recheck)
        with served as site, sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
            )
            for scenario in SCENARIOS:
                workflow = site.workflow("admin", layered_flow(scenario.layers, WIDTH))
                for _ in range(args.repeat):
                    got = measure(browser, site, workflow, scenario)
                    assert got["status"] == "succeeded" and got["layouts"] == 1, got
                    results.setdefault(scenario.name, []).append(got)
                    print(scenario.name, json.dumps(got), flush=True)
            version = browser.version
            browser.close()
    print(table(results))
    record = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "chromium": version,
        "recheck": args.recheck,
        "scenarios": [asdict(s) for s in SCENARIOS],
        "results": results,
        "table": table(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
