"""The Lua workflow file with four independent one-second steps, at two concurrency limits.

    python -m benchmarks.lua_file        # prints the timings (--json: as data for the page)

The file is ``examples/flows/parallel_demo.lua``: a Lua step, four ``sleep 1`` shell steps
that depend only on it, and a Python step joining them. The four should take about one second
together with ``max_concurrency`` 4 and about four with 1. The tests check the order of
events (``tests/formats/test_lua.py``); the clock is read here only.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pardag
from benchmarks.workloads import REPO

FILE = REPO / "examples" / "flows" / "parallel_demo.lua"
TASKS = ("task_a", "task_b", "task_c", "task_d")


def measure(limit: int) -> dict[str, Any]:
    """One run at ``max_concurrency=limit``: the four tasks' span and the whole run's."""
    result = pardag.load(FILE).run(max_concurrency=limit)
    if result.status is not pardag.RunStatus.SUCCEEDED:
        raise RuntimeError(f"{FILE.name} did not succeed: {result.error}")
    steps = [result.steps[t] for t in TASKS]
    starts = [s.started_at for s in steps if s.started_at is not None]
    ends = [s.finished_at for s in steps if s.finished_at is not None]
    return {
        "max_concurrency": limit,
        "tasks_s": round(max(ends) - min(starts), 3),
        "run_s": round(result.finished_at - result.started_at, 3),
    }


def run() -> list[dict[str, Any]]:
    return [measure(4), measure(1)]


def describe(rows: list[dict[str, Any]]) -> list[str]:
    """Lines for the terminal and the performance page."""
    out = [f"`{FILE.relative_to(REPO)}`, four independent `sleep 1` shell steps:"]
    for row in rows:
        out.append(
            f"- max_concurrency={row['max_concurrency']}: the four took {row['tasks_s']:.2f} s "
            f"(the whole run, with its Lua and Python steps, {row['run_s']:.2f} s)"
        )
    return out


def main(argv: list[str]) -> int:
    rows = run()
    print(json.dumps(rows) if "--json" in argv else "\n".join(describe(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
