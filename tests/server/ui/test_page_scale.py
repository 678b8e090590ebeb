"""The run's page at 1,000 steps, live: every event arrives over the stream and is applied.

A 1,000-step run (50 layers of 20 ``delay`` steps, each after two of the layer before) is
started and its page opened at once, while the run is queued or running, so that most events
come over the page's event stream rather than in its snapshot. The page must follow it to the
end without laying the graph out again. No wall-clock limit is asserted here (the machine's
speed is not the page's correctness); ``python -m benchmarks.page`` measures the same scenario
and docs/performance.md has its figures.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.server.conftest import Served
from tests.server.ui.conftest import sign_in

LAYERS = 50
WIDTH = 20
STEPS = LAYERS * WIDTH
PATIENCE_MS = 120_000
"""How long the page may take to show every step succeeded (a guard, not a measure)."""


def layered_flow(layers: int, width: int, *, duration: str = "20ms", slots: int = 10) -> str:
    """YAML of ``layers`` x ``width`` delay steps ``sLL_WW``: each step of a layer after the
    same and the next column of the layer before; at most ``slots`` run at once (so the run
    lasts a few seconds and its events come over the stream while the page is open)."""
    lines = ["name: scale", f"execution: {{max_concurrency: {slots}}}", "steps:"]
    for layer in range(layers):
        for col in range(width):
            lines += [f"  s{layer:02d}_{col:02d}:", "    kind: delay", f"    duration: {duration}"]
            if layer:
                before = sorted({col, (col + 1) % width})
                deps = ", ".join(f"s{layer - 1:02d}_{c:02d}" for c in before)
                lines.append(f"    depends_on: [{deps}]")
    return "\n".join(lines) + "\n"


def all_succeeded(count: int) -> str:
    """A page expression: ``count`` nodes of the DAG show succeeded."""
    return f"document.querySelectorAll('#dag .dag-node.st-succeeded').length === {count}"


def test_a_thousand_step_run_is_followed_live_to_its_end_with_one_layout(
    page: Any, site: Served
) -> None:
    workflow = site.workflow("admin", layered_flow(LAYERS, WIDTH))
    sign_in(page, site, "viewer")
    run_id = site.start("operator", workflow)
    page.goto(f"{site.url}/runs/{run_id}")  # at once: the run is queued or running
    assert page.locator("#dag .dag-node").count() == STEPS
    succeeded = page.locator("#dag .dag-node.st-succeeded")
    expect(succeeded).to_have_count(STEPS, timeout=PATIENCE_MS)
    page.wait_for_selector("#run-status.st-succeeded", timeout=PATIENCE_MS)
    assert page.evaluate("window.pardagDag.layouts") == 1
    stats = page.evaluate("window.pardagStats")
    assert stats["events"] > STEPS  # live events were applied, not only the snapshot
    assert len(stats["lags"]) == stats["events"]  # each applied event reached a frame
    states = page.evaluate(
        "[...document.querySelectorAll('#steps tbody tr[data-step]')]"
        ".map((row) => row.querySelector('.state .badge').textContent)"
    )
    assert len(states) == STEPS
    assert all("succeeded" in state for state in states), sorted(set(states))
    run = site.call("viewer", "GET", f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded"
