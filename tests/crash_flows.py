"""Workflows the crash tests (tests/test_crash.py) run in a subprocess, kill and resume.

They live at module level in an importable module so that a run records
``tests.crash_flows:<name>`` and ``pardag.resume`` (or ``pardag resume``) can rebuild them in
another process. Every step appends its id to an external ledger (``CRASH_LEDGER``),
one ``O_APPEND`` write per execution, so a test counts executions across processes without
trusting the store it is checking. Run one, recorded in the store ``PARDAG_STORE`` names, with
``python -c "import sys, tests.crash_flows as f; f.main(sys.argv[1:])" NAME``.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pardag
from pardag.events import Event, EventKind

MODULUS = 1_000_003
"""Outputs are kept below this so that sums over deep DAGs stay small numbers."""


def ledger() -> Path:
    """The ledger of the current test (from the environment: the resuming process sets it too)."""
    return Path(os.environ["CRASH_LEDGER"])


def mark(name: str) -> None:
    """Append ``name`` to the ledger in one O_APPEND write: lines never interleave."""
    fd = os.open(ledger(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)


def first_time(name: str) -> bool:
    """True only the first time it is asked about ``name`` in this test (a flag file beside
    the ledger, created exclusively): a step kills its process once, not after the resume."""
    try:
        os.close(os.open(f"{ledger()}.{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def die() -> None:
    """SIGKILL this process: no cleanup, no flush, no atexit; what was committed is all."""
    os.kill(os.getpid(), signal.SIGKILL)


def value(inputs: Mapping[str, Any]) -> int:
    """What every step returns: the sum of its inputs plus one (so outputs depend on all of
    them, and an output restored wrongly on resume changes every value downstream). A list
    input counts as its sum (``padded``'s output)."""
    total = sum(v if isinstance(v, int) else sum(v) for v in inputs.values())
    return (total + 1) % MODULUS


def plain(name: str, pause: float = 0.0) -> Callable[[dict[str, Any]], int]:
    """A step that records itself in the ledger, optionally sleeps, and returns ``value``."""

    def step(inputs: dict[str, Any]) -> int:
        mark(name)
        if pause:
            time.sleep(pause)
        return value(inputs)

    step.__qualname__ = f"plain.{name}"
    return step


# -- kills at chosen points -----------------------------------------------------------------


def _wait_until_recorded_running(step_id: str) -> None:
    """Block until the store shows this step's attempt as running (the write-ahead record is
    committed), read through a connection of its own; exit with status 3 if it never does."""
    from pardag.store import open_store

    deadline = time.monotonic() + 20
    with open_store(os.environ["PARDAG_STORE"], create=False) as store:
        while time.monotonic() < deadline:
            (run,) = store.list_runs(status="running", limit=1)
            if any(s.step_id == step_id for s in store.get_steps(run.run_id)):
                return
            time.sleep(0.005)
    print(f"step {step_id} ran for 20s and was never recorded as running", file=sys.stderr)
    os._exit(3)


def kill_on_start(inputs: dict[str, Any]) -> int:
    """First action: SIGKILL (its running record may not be committed yet)."""
    if first_time("victim"):
        die()
    mark("victim")
    return value(inputs)


def kill_once_recorded(inputs: dict[str, Any]) -> int:
    """Kill as soon as the store holds this attempt as running, before doing any work."""
    if first_time("victim"):
        _wait_until_recorded_running("victim")
        die()
    mark("victim")
    return value(inputs)


def kill_mid_step(inputs: dict[str, Any]) -> int:
    """Do the work (the ledger line), then die before returning."""
    mark("victim")
    if first_time("victim"):
        die()
    return value(inputs)


PADDING = 500_000


def padded(inputs: dict[str, Any]) -> list[int]:
    """``a`` with a large output, ``[1, 0, 0, ...]`` (1.5 MB of JSON): committing it takes a
    while, so a dependent started before that commit would surely kill the process first."""
    mark("a")
    return [1] + [0] * PADDING


def _chosen_point(
    name: str,
    victim: Callable[[dict[str, Any]], int],
    *,
    concurrency: int = 1,
    first: Callable[[dict[str, Any]], Any] | None = None,
) -> pardag.Workflow:
    """``a`` and ``side`` first, then ``victim`` (after ``a``), then ``after`` (after both).

    One step at a time by default: ``a`` (the longer path) starts first, ``side`` takes the
    slot while ``a``'s end is committed, ``victim`` runs after both and ``after`` last.
    """
    wf = pardag.Workflow(name, max_concurrency=concurrency)
    wf.add("a", first or plain("a"))
    wf.add("side", plain("side"))
    wf.add("victim", victim, depends_on=["a"])
    wf.add("after", plain("after"), depends_on=["victim", "side"])
    return wf


killed_on_start = _chosen_point("killed_on_start", kill_on_start)
killed_once_recorded = _chosen_point("killed_once_recorded", kill_once_recorded)
killed_mid_step = _chosen_point("killed_mid_step", kill_mid_step)
killed_after_commit = _chosen_point(
    "killed_after_commit", kill_on_start, concurrency=4, first=padded
)
"""``victim`` kills the process first thing, like ``killed_on_start``; the test looks at the
other side of the kill: ``a`` (padded: a slow commit), whose only dependent it is, must have
committed its success. Several at a time: ``a -> victim`` is a chain a thread could run on
its own without the loop (and, were that allowed in a recorded run, before the commit)."""


class KillAtRunStart:
    """A listener that SIGKILLs the process on ``run_started``. Listeners given to ``run`` hear
    each event before the journal does, so the store then holds the run's record (committed
    before anything starts) and nothing else: no event, no step."""

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.RUN_STARTED and first_time("run"):
            die()


class KillAtRunEnd:
    """A listener that SIGKILLs the process on ``run_finished``: every step's end is committed
    by then (each before its dependents started), the run's own end is not."""

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.RUN_FINISHED and first_time("run"):
            die()


killed_at_run_start = _chosen_point("killed_at_run_start", plain("victim"))
killed_at_run_end = _chosen_point("killed_at_run_end", plain("victim"))
LISTENERS = {
    "killed_at_run_start": [KillAtRunStart()],
    "killed_at_run_end": [KillAtRunEnd()],
}
"""Listeners ``main`` passes to a workflow's first run (``resume`` is not given them)."""


# -- random DAGs ----------------------------------------------------------------------------


def random_dag(
    name: str, seed: int, size: int, *, pause: float = 0.0, concurrency: int = 4
) -> pardag.Workflow:
    """``size`` steps ``s000``, ``s001``...; each depends on up to 3 earlier ones, chosen by
    ``seed``, and runs on threads (plain functions), ``concurrency`` at a time."""
    rng = random.Random(seed)
    wf = pardag.Workflow(name, max_concurrency=concurrency)
    ids = [f"s{i:03d}" for i in range(size)]
    for i, sid in enumerate(ids):
        deps = rng.sample(ids[:i], k=min(i, rng.randint(0, 3)))
        wf.add(sid, plain(sid, pause), depends_on=deps)
    return wf


dag_11 = random_dag("dag_11", 11, 200, pause=0.004)
dag_23 = random_dag("dag_23", 23, 200, pause=0.004)
dag_23_long = random_dag("dag_23_long", 23, 200, pause=0.02)
"""Runs beside a killed ``dag_11``: five times slower, so it is surely still running when its
neighbour is killed at its 40th step, whatever share of the two cores each process gets."""
dag_37 = random_dag("dag_37", 37, 200, pause=0.004)
quick_100 = random_dag("quick_100", 5, 100)
"""Run by several processes at once on one store: no pause, so they write as fast as they can."""


# -- the subprocess's entry point -------------------------------------------------------------


def _barrier() -> None:
    """With ``CRASH_BARRIER=DIR:N``, wait until N processes have arrived, so that
    concurrent runs really overlap instead of following each other's import time."""
    spec = os.environ.get("CRASH_BARRIER")
    if not spec:
        return
    directory, _, count = spec.rpartition(":")
    Path(directory, str(os.getpid())).touch()
    while len(os.listdir(directory)) < int(count):
        time.sleep(0.002)


def main(argv: list[str]) -> int:
    """Run workflow ``argv[0]`` of this module, recorded in the store PARDAG_STORE names."""
    wf = globals()[argv[0]]
    assert isinstance(wf, pardag.Workflow)
    _barrier()
    result = wf.run(listeners=LISTENERS.get(argv[0], ()))
    print(result.run_id)
    return 0 if result.ok else 1
