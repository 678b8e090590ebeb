"""The runner side of a benchmark: one engine variant, in its own fresh process.

``python -m benchmarks.harness --engine pardag --variant async --spec '{...}'`` imports
``benchmarks.engines.<engine>``, then for each case of the spec generates the workload, sets the
engine up, warms it up on a tiny graph of the same kind, and times ``repeats`` runs, each
``build`` (the engine's graph from the plain data) then ``run``. It reports JSON lines on the
file descriptor in ``$PARDAG_BENCH_FD`` (stdout and stderr are left to the engine's own chatter):

- ``{"event": "run", "case": k, "rep": r}`` before each timed run (the driver's per-run timeout
  and memory sampling key on it);
- ``{"event": "end", "case": k, "rep": r}`` after it;
- ``{"event": "result", ...}`` once per case.

An engine module defines ``ENGINE``, a subclass of ``Engine`` below.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import faulthandler  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from benchmarks import tasks  # noqa: E402
from benchmarks.workloads import Step, Workload, generate, warmup  # noqa: E402

__all__ = ["Engine", "main", "rss_self", "rss_tree"]


class Engine:
    """One engine's runner. Subclasses set ``name`` and ``variants`` and override the hooks.

    ``build`` turns the plain workload into whatever the engine runs (outside the timed run
    unless the figure is build + run); ``run`` runs it to the end and raises if it failed.
    """

    name: ClassVar[str] = ""
    variants: ClassVar[dict[str, str]] = {}  # variant -> what it is, for the page

    def __init__(self, variant: str, cpu_rate: float) -> None:
        if variant not in self.variants:
            raise SystemExit(
                f"{self.name}: unknown variant {variant!r}; have {list(self.variants)}"
            )
        self.variant = variant
        self.cpu_rate = cpu_rate

    def version(self) -> str:
        return ""

    def setup(self, wl: Workload) -> None:
        """Called before each case (and its warm-up): start clusters, size pools."""

    def build(self, wl: Workload) -> Any:
        raise NotImplementedError

    def run(self, built: Any, wl: Workload) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Called once at the end: stop clusters."""

    def counters(self) -> dict[str, int]:
        """Running totals the engine keeps (bytes sent, say); each run records their growth."""
        return {}

    def iterations(self, step: Step) -> int:
        """``cpu_spin`` iterations for a cpu step (the same count in every engine)."""
        return tasks.iterations(self.cpu_rate, step.duration)


# -- memory --------------------------------------------------------------------------------------


def _status(pid: int | str, *keys: str) -> dict[str, int]:
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in keys:
            out[key] = int(rest.split()[0]) * 1024
    return out


def rss_self() -> int:
    return _status("self", "VmRSS").get("VmRSS", 0)


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_self() -> int:
    return _status("self", "VmHWM").get("VmHWM", 0)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_tree(root: int) -> int:
    return sum(_status(pid, "VmRSS").get("VmRSS", 0) for pid in descendants(root))


# -- the loop ------------------------------------------------------------------------------------


class Reporter:
    def __init__(self) -> None:
        fd = os.environ.get("PARDAG_BENCH_FD")
        self.out = os.fdopen(int(fd), "w", buffering=1) if fd else sys.stdout

    def __call__(self, event: str, **data: Any) -> None:
        self.out.write(json.dumps({"event": event, **data}) + "\n")
        self.out.flush()


def run_case(
    engine: Engine, case: dict[str, Any], k: int, spec: dict[str, Any], report: Reporter
) -> dict[str, Any]:
    memory = bool(spec.get("memory"))
    wl = generate(case)
    out: dict[str, Any] = {
        "case": case,
        "label": wl.label,
        "workload": wl.name,
        "tasks": wl.size,
        "slots": wl.slots,
        "ideal": wl.ideal,
        "critical_path": wl.critical_path,
        "work": wl.work,
        "params": wl.params,
    }
    gc.collect()
    gc.freeze()  # the workload's own objects are not the engine's garbage to scan
    t0 = time.perf_counter()
    engine.setup(wl)
    warm = warmup(wl.kind, like=wl)
    warm.slots = wl.slots
    engine.run(engine.build(warm), warm)
    out["setup_s"] = time.perf_counter() - t0
    # start-up + warm-up: from the process's start for its first case, else this case's set-up
    out["startup_s"] = time.perf_counter() - PROCESS_START if k == 0 else out["setup_s"]
    out["first_in_process"] = k == 0
    runs = []
    for rep in range(int(spec.get("repeats", 1))):
        gc.collect()
        sample: dict[str, Any] = {}
        if memory:
            sample["base_self"] = rss_self()
            sample["base_tree"] = rss_tree(os.getpid())
            sample["hwm_reset"] = reset_peak()
        report("run", case=k, rep=rep)
        before = engine.counters()
        t0 = time.perf_counter()
        built = engine.build(wl)
        t1 = time.perf_counter()
        engine.run(built, wl)
        t2 = time.perf_counter()
        if memory:
            sample["peak_self"] = peak_self()
        sample.update((key, n - before[key]) for key, n in engine.counters().items())
        report("end", case=k, rep=rep)
        del built
        runs.append({"build_s": t1 - t0, "run_s": t2 - t1, **sample})
    out["runs"] = runs
    out["status"] = "ok"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--spec", required=True, help="JSON: cases, repeats, cpu_rate, memory")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the driver asks before a kill
    report = Reporter()
    report("hello", pid=os.getpid())
    module = importlib.import_module(f"benchmarks.engines.{args.engine}")
    try:
        engine: Engine = module.ENGINE(args.variant, float(spec.get("cpu_rate", 1e7)))
        report("version", version=engine.version())
    except Exception as exc:  # import or start-up trouble: every case says why
        for k, case in enumerate(spec["cases"]):
            report("result", case_index=k, case=case, status="error", error=_why(exc))
        return 1
    failed = False
    for k, case in enumerate(spec["cases"]):
        try:
            result = run_case(engine, case, k, spec, report)
        except Exception as exc:
            failed = True
            result = {"case": case, "status": "error", "error": _why(exc)}
            traceback.print_exc()
        report("result", case_index=k, **result)
    try:
        engine.close()
    except Exception:
        traceback.print_exc()
    report("done")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if failed else 0)  # skip slow interpreter teardown (clusters, 1M-step graphs)


def _why(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 300 else text[:297] + "..."


if __name__ == "__main__":
    main()
