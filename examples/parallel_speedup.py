"""The parallel speed-up of pardag, measured on this machine (what `make demo` runs).

Part 1, I/O-bound: a report built from 8 pages of a local HTTP server that answers each request
after 0.5 s (a stand-in for a slow API). One step plans the work, 8 steps fetch the pages (a
fan-out on the threads executor), one step sums them (a fan-in). The same workflow runs once
with ``mode="sequential"`` (one step at a time) and once with the default ``mode="dynamic"``.

Part 2, CPU-bound: 4 steps that count primes, on the ``processes`` executor (threads would
share one interpreter lock and gain nothing). Functions run on processes must be importable,
so they live at module level, and the script has the usual ``if __name__ == "__main__":``
guard, because the worker processes import this module.

Run it: ``.venv/bin/python examples/parallel_speedup.py`` (about 8 s, no extra dependencies).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pardag

PAGES = 8
SCALE = float(os.environ.get("PARDAG_DEMO_SCALE", "1"))  # the test suite's run: 0.2
LATENCY = 0.5 * SCALE  # seconds the local server waits before answering each request
CPU_STEPS = 4
PRIME_LIMIT = int(200_000 * SCALE)  # about 0.25 s of counting per step on a laptop


# -- part 1: I/O-bound fan-out on threads -------------------------------------------------


class SlowHandler(BaseHTTPRequestHandler):
    """Answers GET /page/N with {"page": N, "items": N + 1} after LATENCY seconds."""

    def do_GET(self) -> None:
        time.sleep(LATENCY)
        page = int(self.path.rsplit("/", 1)[-1])
        body = json.dumps({"page": page, "items": page + 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the demo's output to the table


# No proxy: the server is on this machine, whatever http_proxy says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> dict[str, int]:
    with OPENER.open(url, timeout=10) as response:
        data: dict[str, int] = json.load(response)
        return data


def report_workflow(base_url: str) -> pardag.Workflow:
    wf = pardag.Workflow("report")

    @wf.step
    def plan() -> list[str]:
        return [f"{base_url}/page/{n}" for n in range(PAGES)]

    for n in range(PAGES):
        # Each fetch depends on `plan` and receives its output as the parameter `plan`.
        wf.add(f"fetch_{n}", lambda plan, n=n: fetch(plan[n]), depends_on=["plan"])

    @wf.step(depends_on=[f"fetch_{n}" for n in range(PAGES)])
    def total(inputs: dict[str, dict[str, int]]) -> int:
        return sum(page["items"] for page in inputs.values())

    return wf


# -- part 2: CPU-bound fan-out on processes ------------------------------------------------


def count_primes(limit: int) -> int:
    """Trial division in pure Python on purpose: it holds the interpreter lock throughout."""
    count = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
    return count


def primes_limit() -> int:
    return PRIME_LIMIT


def add_counts(inputs: dict[str, int]) -> int:
    return sum(inputs.values())


def primes_workflow() -> pardag.Workflow:
    # Every plain function of this workflow runs on processes unless a run says otherwise.
    wf = pardag.Workflow("primes", executor="processes")
    wf.add("limit", primes_limit)
    for n in range(CPU_STEPS):
        wf.add(f"count_{n}", count_primes, depends_on=["limit"])
    wf.add("add", add_counts, depends_on=[f"count_{n}" for n in range(CPU_STEPS)])
    return wf


# -- measuring ------------------------------------------------------------------------------


def timed_run(wf: pardag.Workflow, **settings: object) -> tuple[pardag.RunResult, float]:
    started = time.perf_counter()
    result = wf.run(**settings)
    wall = time.perf_counter() - started
    result.raise_for_status()
    return result, wall


def critical_path(wf: pardag.Workflow, result: pardag.RunResult) -> tuple[list[str], float]:
    """The longest chain of steps by measured duration: no schedule can beat its length."""
    graph = wf.compile()
    durations = [result.steps[sid].duration or 0.0 for sid in graph.ids]
    path = graph.critical_path(durations)
    return path, sum(durations[graph.index[sid]] for sid in path)


def show_path(path: list[str]) -> str:
    return " -> ".join(path) if len(path) <= 4 else " -> ".join([*path[:2], "...", path[-1]])


def print_table(rows: list[tuple[str, pardag.RunResult, float]], base: float) -> None:
    print(f"  {'run':<28} {'steps':>5} {'wall':>8} {'speed-up':>9}  status")
    for label, result, wall in rows:
        speedup = base / wall
        steps = len(result.steps)
        status = result.status.value
        print(f"  {label:<28} {steps:>5} {wall:>7.2f}s {speedup:>8.2f}x  {status}")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        wf = report_workflow(base_url)
        seq, seq_wall = timed_run(wf, mode="sequential")
        dyn, dyn_wall = timed_run(wf, mode="dynamic")
    finally:
        server.shutdown()
        server.server_close()
    assert seq.outputs["total"] == dyn.outputs["total"]  # the mode never changes outputs

    print(f"I/O-bound: {PAGES} fetches of {LATENCY:g}s each on threads, fan-out then fan-in")
    print_table(
        [("sequential", seq, seq_wall), ("dynamic (default)", dyn, dyn_wall)],
        seq_wall,
    )
    path, length = critical_path(wf, dyn)
    print(f"  critical path: {show_path(path)} = {length:.2f}s (no schedule can go below it)")
    print(f"  output total = {dyn.outputs['total']}")
    print()

    cpus = os.cpu_count() or 1
    pwf = primes_workflow()
    pseq, pseq_wall = timed_run(pwf, mode="sequential")
    pdyn, pdyn_wall = timed_run(pwf, mode="dynamic")
    pthr, pthr_wall = timed_run(pwf, mode="dynamic", executor="threads")
    print(f"CPU-bound: {CPU_STEPS} prime counts on the processes executor ({cpus} CPUs here)")
    print_table(
        [
            ("sequential, processes", pseq, pseq_wall),
            ("dynamic, processes", pdyn, pdyn_wall),
            ("dynamic, threads (GIL)", pthr, pthr_wall),
        ],
        pseq_wall,
    )
    path, length = critical_path(pwf, pdyn)
    print(f"  critical path: {show_path(path)} = {length:.2f}s")
    print(f"  best possible: about {min(CPU_STEPS, cpus)}x on processes (min of steps and CPUs)")
    print("  and 1x on threads; wall times include starting the worker processes")
    print()
    print(f"dynamic run status: {dyn.status.value}")


if __name__ == "__main__":
    main()
