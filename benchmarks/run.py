"""The benchmark driver: every (workload, engine, variant) in its own fresh process.

    python -m benchmarks.run --quick            # make bench: a few minutes
    python -m benchmarks.run --full             # make bench-full: everything
    python -m benchmarks.run --quick --only pardag,stdlib --workloads W1,W2

It calibrates the ``cpu`` kind once, runs the plan (``plan()`` below) job by job, one process
each (``python -m benchmarks.harness``), with a per-run timeout and a memory watchdog that
kills a job's process tree above the limit, writes the raw results to
``benchmarks/results/latest.json`` and then the page, ``docs/performance.md``, with its plots
(``benchmarks/report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import dask_cluster, tasks
from benchmarks.harness import _status, descendants
from benchmarks.workloads import REPO, wfcommons_dir, wfcommons_instances

RESULTS = REPO / "benchmarks" / "results"
GIB = 1024**3
ENGINES = ("pardag", "stdlib", "dask", "distributed", "prefect", "ray")
PACKAGES = {  # engine -> distributions whose versions the page lists
    "dask": ["dask"],
    "distributed": ["distributed"],
    "prefect": ["prefect", "fastapi"],
    "ray": ["ray"],
}


@dataclass
class Job:
    engine: str
    variant: str
    cases: list[dict[str, Any]]
    repeats: int = 1
    memory: bool = False  # sample memory closely; each repeat in its own process
    note: str = ""

    @property
    def name(self) -> str:
        works = sorted({str(c["workload"]) for c in self.cases})
        return f"{'+'.join(works)}:{self.engine}:{self.variant}"


@dataclass
class Limits:
    run_timeout: float  # seconds per timed run
    startup_timeout: float  # import + start + warm-up + generating the workload
    memory: int  # bytes of process-tree RSS


# -- the plan --------------------------------------------------------------------------------


def W(name: str, **params: Any) -> dict[str, Any]:
    return {"workload": name, **params}


def plan(mode: str) -> list[Job]:
    """Every job of a mode, in order. Quick mode trims sizes and anchors (see NOTES)."""
    full = mode == "full"
    jobs: list[Job] = []

    def add(engine: str, variants: list[str], cases: list[dict[str, Any]], **kw: Any) -> None:
        # medians of 3; quick mode runs once, except where a run takes under a second
        cheap = all(
            c["workload"] in ("W1", "W2", "W3") or c.get("n", 10**9) <= 10_000 for c in cases
        )
        repeats = 3 if full or (cheap and engine in ("pardag", "stdlib", "dask")) else 1
        for v in variants:
            jobs.append(Job(engine, v, cases, repeats, kw.get("memory", False)))

    wf = wfcommons_instances()
    wf_cases = [W("wfcommons", instance=i, slots=s) for i in wf for s in (4, 16)]
    w3 = [W("W3", n=1000, slots=1000), W("W3", n=1000, slots=100)]

    # pardag
    add("pardag", ["async", "threads", "inline", "builtin", "durable"], [W("W1", n=10_000)])
    add(
        "pardag",
        ["async", "threads", "inline", "builtin", "durable", "sequential"],
        [W("W2", n=10_000)],
    )
    add("pardag", ["async", "threads"], w3)
    add("pardag", ["async", "threads", "async-noest", "threads-noest", "levels"], [W("W4")])
    add("pardag", ["async", "threads", "inline", "builtin"], [W("W5", n=200_000)], memory=True)
    # 1,000,000 steps: inline in quick mode too (about 15 s), so the page always has the row
    big = ["async", "threads", "inline"] if full else ["inline"]
    add("pardag", big, [W("W5", n=1_000_000)], memory=True)
    add("pardag", ["processes", "threads"], [W("W6")])
    if wf_cases:
        add("pardag", ["async", "threads"] + (["async-noest", "levels"] if full else []), wf_cases)
    for n in (1_000, 10_000, 100_000):
        add("pardag", ["async", "threads", "inline"], [W("W5", n=n, series="scaling")])
    # W7 mapped steps: a map against the same steps added up front, and the stdlib pool
    w7_chain = (
        W("W7", shape="chain", n=200, slots=32) if full else W("W7", shape="chain", n=64, slots=16)
    )
    w7_fan = W("W7", n=10_000, slots=8)
    add("pardag", ["map-inline", "inline"], [W("W7", n=100_000, slots=2)])
    add("pardag", ["map-threads"], [w7_fan, w7_chain])
    add("pardag", ["threads"], [w7_fan])
    add("pardag", ["threads-noest"] + (["map-async"] if full else []), [w7_chain])

    # the hand-written stdlib loop
    add("stdlib", ["dynamic", "barrier"], [W("W1", n=10_000)])
    add("stdlib", ["dynamic", "barrier"], [W("W2", n=10_000)])
    add("stdlib", ["threads", "asyncio"], w3)
    add("stdlib", ["dynamic", "barrier"], [W("W4")])
    add("stdlib", ["dynamic", "barrier"], [W("W5", n=200_000)], memory=True)
    if full:
        add("stdlib", ["dynamic", "barrier"], [W("W5", n=1_000_000)], memory=True)
    add("stdlib", ["threads", "processes"], [W("W6")])
    if wf_cases:
        add("stdlib", ["dynamic", "barrier"] if full else ["dynamic"], wf_cases)
    for n in (1_000, 10_000, 100_000):
        add("stdlib", ["dynamic"], [W("W5", n=n, series="scaling")])
    add("stdlib", ["map"], [w7_fan, w7_chain])
    add("stdlib", ["dynamic"], [w7_chain])

    # dask's local schedulers
    add("dask", ["sync", "threads"], [W("W1", n=10_000)])
    add("dask", ["sync", "threads"], [W("W2", n=10_000)])
    add("dask", ["threads"], w3)
    add("dask", ["threads"], [W("W4")])
    if full:
        add("dask", ["sync", "threads"], [W("W5", n=200_000)], memory=True)
        add("dask", ["threads", "processes", "processes-chunk1"], [W("W6")])
    else:
        add("dask", ["processes-chunk1"], [W("W6")])
    if wf_cases:
        add("dask", ["threads"], wf_cases)
    if full:
        add("dask", ["threads"], [w7_fan, w7_chain])

    jobs += dask_jobs(full, [i for i in wf if full or i.startswith("cycles")])

    if full:
        add("distributed", ["threads", "procs", "threads-graph"], [W("W1", n=10_000)])
        add("distributed", ["threads", "procs", "threads-graph"], [W("W2", n=2_000)])
        add("distributed", ["threads", "procs", "threads-async"], w3)
        add("distributed", ["threads", "procs"], [W("W4")])
        add("distributed", ["threads", "procs", "threads-graph"], [W("W5", n=200_000)], memory=True)
        add("distributed", ["threads", "procs"], [W("W6")])
        if wf_cases:
            add("distributed", ["threads"], wf_cases)

        add("prefect", ["threads"], [W("W1", n=1_000)])
        add("prefect", ["threads"], [W("W2", n=1_000)])
        add("prefect", ["threads", "async"], w3)
        add("prefect", ["threads"], [W("W4")])
        add("prefect", ["threads"], [W("W5", n=2_000)], memory=True)
        add("prefect", ["threads", "processes"], [W("W6")])
        if wf_cases:
            add("prefect", ["threads"], wf_cases)

        add("ray", ["tasks"], [W("W1", n=10_000)])
        add("ray", ["tasks"], [W("W2", n=10_000)])
        add("ray", ["actor-threads", "actor-async"], w3)
        add("ray", ["tasks"], [W("W4")])
        add("ray", ["tasks"], [W("W5", n=200_000)], memory=True)
        add("ray", ["tasks", "actor-threads"], [W("W6")])
        if wf_cases:
            add("ray", ["tasks"], wf_cases)
    else:
        # Quick: the anchors that take seconds to start run their cases in one process each,
        # at scaled-down sizes where they need seconds per thousand steps.
        small_w3 = [W("W3", n=200, slots=200), W("W3", n=200, slots=20)]
        add("distributed", ["threads"], [W("W1", n=1_000), W("W2", n=500), *w3, W("W4"), W("W6")])
        add("distributed", ["procs"], [W("W4"), W("W6")])
        add("prefect", ["threads"], [W("W1", n=200), W("W2", n=200), W("W6")])
        add("prefect", ["async"], small_w3)
        add("ray", ["tasks"], [W("W1", n=2_000), W("W2", n=1_000), W("W4"), W("W6")])
        add("ray", ["actor-async"], w3)
    return jobs


def dask_jobs(full: bool, instances: list[str]) -> list[Job]:
    """The dask series: pardag (``executor="dask"``) and distributed's own ``Client.submit``
    graph on one shared cluster (``benchmarks/dask_cluster.py``), medians of 3; then W1 at two
    sizes, once each, for how fast one runner feeds the cluster and its memory per step."""
    slots = dask_cluster.WORKERS * dask_cluster.THREADS

    def D(name: str, **params: Any) -> dict[str, Any]:
        return W(name, slots=slots, series="dask", **params)

    cases = [
        D("W1", n=10_000 if full else 1_000),
        D("W2", n=2_000 if full else 300),
        D("W2", n=1),  # one step: what a run costs besides its steps
        D("W4"),
        *(D("wfcommons", instance=i) for i in instances),
    ]
    jobs = [Job("pardag", "dask", cases, 3), Job("distributed", "cluster", cases, 3)]
    for n in (1_000, 10_000) if full else (1_000, 5_000):  # two sizes: memory's growth a step
        for engine, variant in (("pardag", "dask-feed"), ("distributed", "cluster-feed")):
            jobs.append(Job(engine, variant, [D("W1", n=n)], 1, memory=True))
    return jobs


def dask_case(case: dict[str, Any]) -> bool:
    """Whether a case is of the dask series (it runs on the shared cluster)."""
    return case.get("series") == "dask"


def selected(case: dict[str, Any], keep: set[str]) -> bool:
    """``--workloads``: a case by its workload's name; the dask series by its own, ``dask``."""
    if dask_case(case):
        return "dask" in keep
    return case["workload"] in keep


QUICK_NOTES = [
    "Quick mode (`make bench`): medians of 3 runs for pardag, stdlib and Dask on W1-W3 and "
    "the scaling sizes up to 10,000, one run elsewhere; W5 at 200,000 steps, and at "
    "1,000,000 for pardag's `inline` variant only; of the anchors only the stdlib loops run "
    "W5 (Dask, distributed and Ray needed more than two minutes or 16 GiB for 200,000 steps "
    "in ANCHORS.md; Prefect runs it at 2,000 in full mode); Dask's W6 is `processes-chunk1` "
    "only.",
    "Quick mode runs a subset of the slow-starting anchors' variants, each once for several "
    "workloads in one fresh process (start-up paid once), at scaled-down sizes: distributed "
    "`threads` (W1 at 1,000 leaves, W2 at 500 steps, W3, W4, W6) and `procs` (W4, W6); "
    "Prefect `threads` (W1 and W2 at 200, W6) and `async` (W3 at 200 steps, slots 200 and "
    "20, so the ideal stays 50 ms and 0.5 s); Ray `tasks` (W1 at 2,000, W2 at 1,000, W4, W6) "
    "and `actor-async` (W3). Per-step figures are per step of the size run. "
    "`make bench-full` runs every variant at full size, each workload in its own process.",
    "The dask series (pardag's `dask` executor against distributed's own `Client.submit` on "
    "one shared cluster) in quick mode: W1 at 1,000 leaves, W2 at 300 steps, WfCommons "
    "`cycles` only, the feeding figures at 1,000 and 5,000 leaves (full: 10,000, 2,000, all "
    "six instances, 1,000 and 10,000).",
    "W7 (mapped steps) in quick mode: the 100,000-item fan runs once (medians of 3 at 10,000 "
    "and for the chain); the chain has 64 items on 16 slots (200 on 32 in full mode); "
    "pardag's `map-async` and Dask run W7 in full mode only.",
]
FULL_NOTES = [
    "Full mode (`make bench-full`): medians of 3 runs (the run with the median total); W5 "
    "repeats each in a fresh process. Scaled-down anchors: distributed W2 at 2,000 steps, "
    "Prefect W1/W2 at 1,000 and W5 at 2,000 (as in ANCHORS.md). W7's chain: 200 items on "
    "32 slots.",
]


# -- running one job ---------------------------------------------------------------------------


class Watch:
    """Reads a runner's event lines from a pipe on a thread."""

    def __init__(self, fd: int) -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(fd,), daemon=True)
        self.thread.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r") as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    self.events.put(json.loads(line))
        self.events.put(None)


def tree_rss(pids: list[int]) -> int:
    return sum(_status(pid, "VmRSS").get("VmRSS", 0) for pid in pids)


def kill_all(pids: set[int], leader: int) -> None:
    """SIGKILL a runner's process group and every process seen in its tree."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    for pid in pids:
        if pid == os.getpid():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def run_job(job: Job, cpu_rate: float, limits: Limits, log: Path) -> list[dict[str, Any]]:
    """Run one job (possibly several processes); one result dict per case (and repeat)."""
    if job.memory and job.repeats > 1:  # each repeat in a fresh process, then merged
        parts = []
        for rep in range(job.repeats):
            one = Job(job.engine, job.variant, job.cases, 1, True, job.note)
            got = _run_process(one, cpu_rate, limits, log, rep)
            parts.append(got)
            if any(r["status"] != "ok" for r in got):
                break  # a timeout or a kill will not go better the next time
        return _merge(parts)
    return _run_process(job, cpu_rate, limits, log, 0)


def _merge(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    merged = []
    for k in range(len(parts[0])):
        first = dict(parts[0][k])
        runs = [r for p in parts if k < len(p) for r in p[k].get("runs", [])]
        bad = [p[k] for p in parts if k < len(p) and p[k]["status"] != "ok"]
        if bad:
            first = dict(bad[0])
        first["runs"] = runs
        first["processes"] = len(parts)
        merged.append(first)
    return merged


def _run_process(
    job: Job, cpu_rate: float, limits: Limits, log: Path, attempt: int
) -> list[dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    remaining = list(range(len(job.cases)))
    while remaining:
        cases = [job.cases[k] for k in remaining]
        got, stop = _one_process(job, cases, cpu_rate, limits, log, attempt)
        for i, k in enumerate(remaining):
            if i in got:
                results[k] = got[i]
        if stop is None:
            break
        # killed or crashed on one case: record it, then go on with the rest in a new process
        failed_at = stop.pop("case_index")
        if failed_at not in got:
            results[remaining[failed_at]] = {"case": job.cases[remaining[failed_at]], **stop}
        remaining = [k for i, k in enumerate(remaining) if i > failed_at and i not in got]
    return [results[k] for k in range(len(job.cases))]


def _one_process(
    job: Job,
    cases: list[dict[str, Any]],
    cpu_rate: float,
    limits: Limits,
    log: Path,
    attempt: int,
) -> tuple[dict[int, dict[str, Any]], dict[str, Any] | None]:
    """Run one runner process; its results by case index, and why it was stopped (or None)."""
    spec = {"cases": cases, "repeats": job.repeats, "cpu_rate": cpu_rate, "memory": job.memory}
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PARDAG_BENCH_FD"] = str(write_fd)
    if job.engine == "ray":
        env["PARDAG_BENCH_RAY_CPUS"] = str(max(_slots(c) for c in cases))
    home = None
    if job.engine == "prefect":  # its database and settings, removed after the job
        home = tempfile.mkdtemp(prefix="pardag-bench-prefect-")
        env["PREFECT_HOME"] = home
        env["PARDAG_BENCH_PREFECT_HOME"] = "keep"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.harness",
        "--engine",
        job.engine,
        "--variant",
        job.variant,
        "--spec",
        json.dumps(spec),
    ]
    with open(log, "a") as logf:
        logf.write(f"\n=== {job.name} attempt {attempt}: {' '.join(cmd[:7])} ...\n")
        logf.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    watch = Watch(read_fd)
    seen: set[int] = {proc.pid}
    results: dict[int, dict[str, Any]] = {}
    peaks: dict[tuple[int, int], int] = {}
    current: tuple[int, int] | None = None
    last_event = time.monotonic()
    run_started: float | None = None
    timed_total = 0.0
    stop: dict[str, Any] | None = None
    case_index = 0
    interval = 0.05 if job.memory else 0.25
    eof = False
    while True:
        try:
            ev = watch.events.get(timeout=interval)
        except queue.Empty:
            ev = False  # type: ignore[assignment]
        if ev is None:
            eof = True
        elif ev:
            last_event = time.monotonic()
            kind = ev.get("event")
            if kind == "run":
                current = (ev["case"], ev["rep"])
                case_index = ev["case"]
                run_started = time.monotonic()
                peaks[current] = 0
            elif kind == "end":
                if run_started is not None:
                    timed_total += time.monotonic() - run_started
                current, run_started = None, None
            elif kind == "result":
                k = ev.pop("case_index")
                ev.pop("event")
                runs = ev.get("runs") or []
                for rep, run in enumerate(runs):
                    if (k, rep) in peaks:
                        run["peak_tree"] = peaks[(k, rep)]
                results[k] = ev
                case_index = k + 1
            elif kind == "version":
                pass
        pids = descendants(proc.pid) if proc.poll() is None else []
        seen.update(pids)
        rss = tree_rss(pids)
        if current is not None:
            peaks[current] = max(peaks.get(current, 0), rss)
        now = time.monotonic()
        why = None
        if rss > limits.memory:
            in_runs = timed_total + (now - run_started if run_started else 0.0)
            why = (
                "memory-limit",
                f"process-tree RSS exceeded {limits.memory / GIB:.0f} GiB after "
                f"{in_runs:.0f} s of timed runs",
            )
        elif run_started is not None and now - run_started > limits.run_timeout:
            why = ("timeout", f"timeout (> {limits.run_timeout:.0f} s per run)")
        elif run_started is None and now - last_event > limits.startup_timeout:
            why = ("timeout", f"no progress in {limits.startup_timeout:.0f} s outside timed runs")
        if why is not None:
            stop = {
                "case_index": min(case_index, len(cases) - 1),
                "status": why[0],
                "error": why[1],
                "peak_tree": max(peaks.values(), default=rss),
            }
            if why[0] == "timeout":  # where it hung goes to the job's log
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(1.0)
            kill_all(seen, proc.pid)
            proc.wait()
            break
        if eof and proc.poll() is not None:
            break
        if eof and now - last_event > 30 and proc.poll() is None:
            kill_all(seen, proc.pid)  # closed its pipe but hangs on exit
            proc.wait()
            break
    kill_all(seen, proc.pid)  # whatever it left behind (servers, workers)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)
    if stop is None and len(results) < len(cases):
        tail = _tail(log)
        stop = {
            "case_index": min(case_index, len(cases) - 1),
            "status": "crashed",
            "error": f"exit code {proc.returncode}: {tail}",
        }
    return results, stop


def _slots(case: dict[str, Any]) -> int:
    if "slots" in case:
        return int(case["slots"])
    return {"W4": 8}.get(str(case["workload"]), 2)


def _tail(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:200]
    return lines[-1][:200] if lines else ""


SIDE_JOBS = ("lua_file", "code_steps")
"""Benchmarks of one feature each (``benchmarks/<name>.py --json``), shown under the results."""


def side_job(name: str) -> Any:
    """``benchmarks/<name>.py`` in its own process: its data, or why it failed (a string)."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
    found = json.loads(proc.stdout)
    print(f"  {name}: {found}", file=sys.stderr)
    return found


# -- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / GIB, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ["pardag", "dask", "distributed", "prefect", "fastapi", "ray", "matplotlib"]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        if commit:
            out["pardag_commit"] = commit + (" with uncommitted changes in src/" if dirty else "")
    except OSError:
        pass
    return out


def missing_anchors() -> dict[str, str]:
    """Anchors that cannot be imported here, and why (the page lists them)."""
    out = {}
    for engine, mods in {
        "dask": ["dask"],
        "distributed": ["distributed"],
        "prefect": ["prefect"],
        "ray": ["ray"],
    }.items():
        for mod in mods:
            probe = subprocess.run(
                [sys.executable, "-c", f"import {mod}"], capture_output=True, text=True
            )
            if probe.returncode != 0:
                last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
                out[engine] = f"`import {mod}` failed: {last[:200]}"
    reason_file = RESULTS / "install-failures.txt"  # written by `make bench` when pip failed
    if reason_file.exists():
        for line in reason_file.read_text().splitlines():
            engine, _, why = line.partition(":")
            if engine.strip() in out:
                out[engine.strip()] = f"{why.strip()} ({out[engine.strip()]})"
    return out


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    parser.add_argument("--only", help="engines to run, comma-separated (default: all)")
    parser.add_argument("--workloads", help="e.g. W1,W2,wfcommons (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--page", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--no-page", action="store_true", help="write the JSON only")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--run-timeout", type=float, help="seconds per timed run")
    parser.add_argument("--memory-gib", type=float, default=16.0, help="process-tree RSS limit")
    parser.set_defaults(mode="quick")
    args = parser.parse_args(argv)

    jobs = plan(args.mode)
    if args.only:
        keep = set(args.only.split(","))
        jobs = [j for j in jobs if j.engine in keep]
    if args.workloads:
        keep = set(args.workloads.split(","))
        jobs = [
            Job(
                j.engine,
                j.variant,
                [c for c in j.cases if selected(c, keep)],
                j.repeats,
                j.memory,
                j.note,
            )
            for j in jobs
        ]
        jobs = [j for j in jobs if j.cases]
    if args.list:
        for j in jobs:
            print(f"{j.name:40} repeats={j.repeats} cases={j.cases}")
        return 0

    full = args.mode == "full"
    limits = Limits(
        run_timeout=args.run_timeout or (120.0 if full else 60.0),
        startup_timeout=240.0 if full else 90.0,
        memory=int(args.memory_gib * GIB),
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = RESULTS / "logs"
    logs.mkdir(exist_ok=True)
    began = time.monotonic()
    print(f"pardag benchmarks ({args.mode}): calibrating the cpu kind ...", file=sys.stderr)
    cpu_rate = tasks.calibrate()
    missing = missing_anchors()
    doc: dict[str, Any] = {
        "mode": args.mode,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench-full" if full else "make bench",
        "machine": machine(),
        "versions": versions(),
        "cpu_rate": cpu_rate,
        "limits": {"run_timeout_s": limits.run_timeout, "memory_gib": limits.memory / GIB},
        "missing": missing,
        "notes": FULL_NOTES if full else QUICK_NOTES,
        "wfcommons": str(wfcommons_dir() or ""),
        "results": [],
    }
    print(
        f"  {tasks.iterations(cpu_rate, 0.5):,} iterations = 0.5 s; {len(jobs)} jobs",
        file=sys.stderr,
    )
    # the dask series' cluster: started before its first job, stopped after its last (idle
    # workers would share the cores with the jobs around it); it also stops if this process dies
    cluster = contextlib.ExitStack()
    on_cluster = [n for n, j in enumerate(jobs, 1) if any(dask_case(c) for c in j.cases)]
    for n, job in enumerate(jobs, 1):
        why = missing.get(job.engine) or (missing.get("distributed") if n in on_cluster else None)
        if why is not None:
            for case in job.cases:
                doc["results"].append(
                    {
                        "engine": job.engine,
                        "variant": job.variant,
                        "case": case,
                        "status": "missing",
                        "error": why,
                    }
                )
            continue
        if n in on_cluster and "dask_cluster" not in doc:
            os.environ[dask_cluster.ADDRESS_ENV] = cluster.enter_context(dask_cluster.started())
            doc["dask_cluster"] = {"workers": dask_cluster.WORKERS, "threads": dask_cluster.THREADS}
        t0 = time.monotonic()
        log = logs / f"{n:03d}-{job.engine}-{job.variant}.log"
        log.unlink(missing_ok=True)
        got = run_job(job, cpu_rate, limits, log)
        for r in got:
            r.update(engine=job.engine, variant=job.variant, grouped=len(job.cases) > 1)
            doc["results"].append(r)
        status = ", ".join(sorted({r["status"] for r in got}))
        print(
            f"  [{n}/{len(jobs)}] {job.name:34} {time.monotonic() - t0:6.1f} s  {status}",
            file=sys.stderr,
        )
        doc["elapsed_s"] = time.monotonic() - began
        args.out.write_text(json.dumps(doc, indent=1))
        if n == max(on_cluster, default=0):
            cluster.close()
    cluster.close()
    for name in SIDE_JOBS:
        if (not args.only or "pardag" in args.only) and (
            not args.workloads or name in args.workloads
        ):
            doc[name] = side_job(name)
    doc["elapsed_s"] = time.monotonic() - began
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"results: {args.out} ({doc['elapsed_s']:.0f} s)", file=sys.stderr)
    if not args.no_page:
        from benchmarks import report

        args.page.parent.mkdir(parents=True, exist_ok=True)
        report.write(doc, args.page)
        print(f"page: {args.page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
