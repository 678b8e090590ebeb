"""What running Python ``code`` steps in a worker process costs, against the runner's threads.

    python -m benchmarks.code_steps       # prints the figures (--json: as data for the page)

A code step runs on the ``processes`` executor by default, so an infinite loop or a crash ends
only that step (docs/languages.md); ``executor: threads`` opts into the runner's process. Here
200 trivial code steps (a chain and a fan of independent ones, two slots) run both ways, after
a first run that starts the forkserver, whose cost is shown apart.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pardag

CODE = "def run(inputs):\n    return len(inputs)\n"
STEPS = 200


def _workflow(shape: str, executor: str | None) -> pardag.Workflow:
    wf = pardag.Workflow(f"code-{shape}", max_concurrency=2)
    for i in range(STEPS):
        deps = [f"s{i - 1}"] if shape == "chain" and i else []
        wf.add(f"s{i}", params={"code": CODE}, depends_on=deps, executor=executor)
    return wf


def _seconds(wf: pardag.Workflow) -> float:
    start = time.perf_counter()
    wf.run().raise_for_status()
    return time.perf_counter() - start


def run() -> dict[str, Any]:
    one = pardag.Workflow("first", max_concurrency=1)
    one.add("s", params={"code": CODE})
    first = _seconds(one)  # starts the forkserver: once per interpreter
    rows = []
    for shape in ("fan", "chain"):
        for executor in ("processes", "threads"):
            wf = _workflow(shape, None if executor == "processes" else executor)
            best = min(_seconds(wf) for _ in range(3))
            rows.append({"shape": shape, "executor": executor, "us_per_step": best / STEPS * 1e6})
    return {"first_run_s": first, "rows": rows}


def describe(found: dict[str, Any]) -> list[str]:
    """Lines for the terminal and the performance page."""
    out = [
        f"{STEPS} trivial Python `code` steps, two slots, best of three runs; the first run of "
        f"a process also starts the forkserver: {found['first_run_s']:.2f} s.",
        "",
        "| shape | where | us/step |",
        "|---|---|---|",
    ]
    for row in found["rows"]:
        where = "worker process (default)" if row["executor"] == "processes" else "threads"
        out.append(f"| {row['shape']} | {where} | {row['us_per_step']:,.0f} |")
    return out


def main(argv: list[str]) -> int:
    found = run()
    print(json.dumps(found) if "--json" in argv else "\n".join(describe(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
