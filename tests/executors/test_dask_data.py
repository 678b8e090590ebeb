"""Outputs on the Dask cluster: passed worker to worker, kept there when asked, released when
no dependent needs them; starts announced by the workers; resume after the runner is killed.

One LocalCluster for the module: two worker processes with one thread each, worker ``a``
holding resource ``A`` and worker ``b`` resource ``B``, so a test can pin a step to a worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import pardag  # noqa: E402
from pardag.events import EventKind  # noqa: E402
from pardag.executors.dask import LOCAL_CONFIG  # noqa: E402
from pardag.executors.dask_data import KEPT_MARK, KeptOnCluster  # noqa: E402
from pardag.store import open_store  # noqa: E402
from tests.cli.support import clean_env  # noqa: E402
from tests.cli.support import pardag as pardag_cli  # noqa: E402

_ADDRESS = ""
BIG = 200 * 2**20


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    global _ADDRESS
    with dask.config.set(LOCAL_CONFIG):
        cluster = distributed.LocalCluster(
            n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None
        )
        for name in ("A", "B"):
            spec = {"cls": distributed.Nanny, "options": {"nthreads": 1, "resources": {name: 1}}}
            cluster.worker_spec[name] = spec
        cluster.scale(2)
    with distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        _ADDRESS = cluster.scheduler_address
        yield c
    cluster.close()


def incoming(client: Any) -> dict[str, list[str]]:
    """The keys each worker fetched from another worker, by the resource it holds."""

    def keys(dask_worker: Any) -> list[str]:
        return [str(k) for entry in dask_worker.transfer_incoming_log for k in entry["keys"]]

    by_address = client.run(keys)
    names = {a: next(iter(w["resources"])) for a, w in client.scheduler_info()["workers"].items()}
    return {names[a]: ks for a, ks in by_address.items()}


def held_keys(client: Any) -> list[str]:
    """The keys the scheduler holds, once the run's releases have reached it (or 5 s pass)."""
    deadline = time.monotonic() + 5
    while True:
        keys = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
        if not keys or time.monotonic() > deadline:
            return [str(k) for k in keys]
        time.sleep(0.05)


# --- steps ---------------------------------------------------------------------------------


def make(n: int) -> bytes:
    return b"x" * n


def size(data: bytes) -> int:
    return len(data)


def stamped() -> dict[str, float]:
    """When this call began and ended on its worker (after a nap)."""
    began = time.time()
    time.sleep(0.4)
    return {"began": began, "ended": time.time()}


def keys_on_scheduler(_: Any, __: Any) -> list[str]:
    """The keys whose data the cluster holds, asked from inside a step on the cluster."""

    def in_memory(dask_scheduler: Any) -> list[str]:
        return [str(k) for k, task in dask_scheduler.tasks.items() if task.state == "memory"]

    return list(distributed.get_client().run_on_scheduler(in_memory))


def pinned(wf: pardag.Workflow, sid: str, fn: Any, worker: str, **options: Any) -> None:
    wf.add(sid, fn, executor="dask", resources={worker: 1}, **options)


# --- outputs between steps -----------------------------------------------------------------


def test_an_output_goes_worker_to_worker_and_is_released_after_its_last_dependent(
    client: Any,
) -> None:
    wf = pardag.Workflow("handover")
    pinned(wf, "data", lambda: make(3_000_000), "A")
    pinned(wf, "left", size, "B", depends_on="data")
    pinned(wf, "right", size, "B", depends_on="data")
    pinned(wf, "later", keys_on_scheduler, "B", depends_on=["left", "right"])
    before = incoming(client)["B"]
    result = wf.run(dask_address=_ADDRESS)
    assert result.ok, result.steps
    assert result.outputs["left"] == result.outputs["right"] == 3_000_000
    fetched = incoming(client)["B"][len(before) :]
    data_key = f"pardag-{result.run_id}-data-1"
    assert fetched.count(data_key) == 1  # B took it from A, once for both dependents
    assert result.outputs["data"] == b"x" * 3_000_000  # the runner has it too (by default)
    assert data_key not in result.outputs["later"]  # released before the run went on
    assert held_keys(client) == []


def test_kept_on_the_cluster_a_200_mb_output_never_enters_the_runners_process(
    client: Any, tmp_path: Path
) -> None:
    """The runner is a fresh process, so its peak memory tells what crossed into it."""
    script = tmp_path / "big.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, resource, sys
            import pardag
            from tests.executors.test_dask_data import make, size

            wf = pardag.Workflow("big")
            wf.add("data", lambda: make({BIG}), executor="dask", resources={{"A": 1}})
            wf.add("size", size, executor="dask", resources={{"B": 1}}, depends_on="data")
            keep = sys.argv[2] == "keep"
            result = wf.run(dask_address=sys.argv[1], keep_outputs_on_cluster=keep)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            data = result.outputs["data"]
            print(json.dumps({{"peak": peak, "size": result.outputs["size"],
                               "data": repr(data) if keep else len(data),
                               "run": result.run_id}}))
            """
        )
    )

    def run(mode: str) -> dict[str, Any]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, str(script), _ADDRESS, mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.splitlines()[-1]))

    before = incoming(client)["B"]
    kept, pulled = run("keep"), run("pull")
    assert kept["size"] == pulled["size"] == BIG
    assert pulled["data"] == BIG and pulled["peak"] > BIG  # the control: pulling shows
    assert kept["peak"] < pulled["peak"] - BIG // 2
    assert f"bytes of {BIG:,} bytes kept on the Dask cluster" in kept["data"]
    fetched = incoming(client)["B"][len(before) :]
    assert f"pardag-{kept['run']}-data-1" in fetched  # it went from worker A to worker B
    assert held_keys(client) == []


def test_a_kept_output_is_recorded_as_such_and_a_sink_is_pulled(
    client: Any, tmp_path: Path
) -> None:
    wf = pardag.Workflow("kept")
    wf.add("data", lambda: list(range(1000)), executor="dask")
    wf.add("total", sum, executor="dask", depends_on="data")
    wf.add("shown", lambda data: len(data), executor="threads", depends_on="data")
    wf.add("only", lambda: [1, 2], executor="dask")
    wf.add("twice", lambda only: only * 2, executor="dask", depends_on="only")
    store = tmp_path / "runs.db"
    result = wf.run(dask_address=_ADDRESS, keep_outputs_on_cluster=True, store=store)
    assert result.ok, result.steps
    assert result.outputs["data"] == list(range(1000))  # a step in the runner reads it
    assert result.outputs["total"] == sum(range(1000))
    kept = result.outputs["only"]
    assert isinstance(kept, KeptOnCluster) and kept.type == "list"
    assert result.outputs["twice"] == [1, 2, 1, 2]
    with open_store(store) as opened:
        steps = {s.step_id: s for s in opened.get_steps(result.run_id)}
    assert json.loads(steps["only"].output_json or "")[KEPT_MARK]["type"] == "list"
    assert json.loads(steps["data"].output_json or "") == list(range(1000))


def broken() -> list[int]:
    raise ValueError("no data today")


def test_a_step_whose_output_would_stay_fails_with_its_own_error(client: Any) -> None:
    wf = pardag.Workflow("kept-fails")
    wf.add("data", broken, executor="dask")
    wf.add("total", sum, executor="dask", depends_on="data")
    result = wf.run(dask_address=_ADDRESS, keep_outputs_on_cluster=True)
    error = result.steps["data"].error
    assert error is not None and "ValueError: no data today" in str(error)
    assert result.steps["total"].state == "skipped"


def test_keep_outputs_on_cluster_must_be_a_bool() -> None:
    wf = pardag.Workflow("bad")
    wf.add("a", lambda: 1)
    with pytest.raises(pardag.ArgumentError, match="keep_outputs_on_cluster must be True or"):
        wf.run(keep_outputs_on_cluster="yes")  # type: ignore[typeddict-item]


# --- starts --------------------------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.events: list[pardag.Event] = []

    def on_event(self, event: pardag.Event) -> None:
        self.events.append(event)


def test_a_step_starts_when_a_worker_begins_it_not_when_it_is_handed_over(
    client: Any, tmp_path: Path
) -> None:
    """Three naps on two threads: the third is handed over at once but held until a thread
    is free; its recorded start is its worker's, after a nap ended."""
    wf = pardag.Workflow("starts")
    for sid in ("one", "two", "three"):
        wf.add(sid, stamped, executor="dask")
    seen = Collect()
    store = tmp_path / "runs.db"
    result = wf.run(dask_address=_ADDRESS, listeners=[seen], store=store)
    assert result.ok, result.steps
    with open_store(store) as opened:
        started = {s.step_id: s.started_at or 0.0 for s in opened.get_steps(result.run_id)}
    times = result.outputs
    last = max(times, key=lambda sid: times[sid]["began"])
    first_end = min(times[sid]["ended"] for sid in times if sid != last)
    assert started[last] >= first_end - 0.05  # not its hand-over, before any nap ended
    for sid in times:
        assert started[sid] <= times[sid]["began"]
        assert (result.steps[sid].started_at or 0) <= times[sid]["began"]
    workers = set(client_workers())
    for sid in times:
        kinds = [e.kind for e in seen.events if e.step == sid]
        assert kinds.index(EventKind.STEP_STARTED) < kinds.index(EventKind.STEP_SUCCEEDED)
        [start] = [e for e in seen.events if e.step == sid and e.kind is EventKind.STEP_STARTED]
        assert start.data["worker"] in workers


def client_workers() -> list[str]:
    with distributed.Client(_ADDRESS, timeout=10) as c:
        return list(c.scheduler_info()["workers"])


# --- resume --------------------------------------------------------------------------------

FLOW = """
import os, time
import pardag

LEDGER = os.environ["LEDGER"]


def note(name):
    with open(LEDGER, "a") as f:
        f.write(name + "\\n")


def make():
    note("make")
    return list(range(100))


def slow(make):
    note("slow")
    deadline = time.time() + 60
    while not os.path.exists(LEDGER + ".go") and time.time() < deadline:
        time.sleep(0.05)
    return sum(make)


wf = pardag.Workflow("crashy")
wf.add("make", make, executor="dask")
wf.add("slow", slow, executor="dask", depends_on="make")
"""


@pytest.mark.parametrize("keep", [False, True])
def test_resume_after_the_runner_is_killed_reruns_only_what_it_must(
    client: Any, tmp_path: Path, keep: bool
) -> None:
    """Killed while ``slow`` runs: resumed, ``make`` runs again only if its output stayed on
    the cluster (the resumed run cannot count on it)."""
    (tmp_path / "flow.py").write_text(FLOW)
    ledger, url = tmp_path / "ledger", f"sqlite:///{tmp_path / 'runs.db'}"
    env = clean_env(LEDGER=str(ledger), PARDAG_STORE=url)
    args = [sys.executable, "-m", "pardag", "run", "flow.py", "--dask-address", _ADDRESS]
    if keep:
        args.append("--keep-outputs-on-cluster")
    with open(tmp_path / "out", "wb") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while "slow" not in (ledger.read_text() if ledger.exists() else ""):
        assert proc.poll() is None, (tmp_path / "out").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    (tmp_path / "ledger.go").touch()  # the orphaned call ends too
    with open_store(url) as store:
        [run] = store.list_runs()
    done = pardag_cli(tmp_path, "resume", run.run_id, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["slow"] == sum(range(100))
    assert ledger.read_text().split() == (
        ["make", "slow", "make", "slow"] if keep else ["make", "slow", "slow"]
    )


def test_a_file_keeps_outputs_on_the_cluster_and_a_wrong_value_names_its_line(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "flow.yaml"
    text = "name: f\nexecution:\n  keep_outputs_on_cluster: {}\nsteps:\n"
    text += "  a: {{kind: shell, command: ls}}\n"
    flow.write_text(text.format("true"))
    assert pardag.load(flow).file_settings["keep_outputs_on_cluster"] is True
    flow.write_text(text.format('"yes"'))
    with pytest.raises(
        pardag.ValidationError,
        match=r"flow.yaml:3: 'keep_outputs_on_cluster' must be true or false",
    ):
        pardag.load(flow)


# --- isolation: process ------------------------------------------------------------------


def wait_for_kill(pidfile: str) -> int:
    """Note this process's pid, then wait (a minute at most) to be killed."""
    Path(pidfile).write_text(str(os.getpid()))
    time.sleep(60)
    return os.getpid()


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (within 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def loud(n: int) -> int:
    print(f"in a subprocess: {os.getpid()}")
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n * 2


def test_an_isolated_step_runs_in_a_subprocess_of_its_worker(client: Any, tmp_path: Path) -> None:
    wf = pardag.Workflow("isolated")
    wf.add("where", os.getpid, executor="dask")
    wf.add("twice", lambda: loud(21), executor="dask", isolation="process")
    wf.add("bad", lambda: loud(-1), executor="dask", isolation="process", critical=False)
    store = tmp_path / "runs.db"
    result = wf.run(dask_address=_ADDRESS, store=store, on_failure="continue")
    assert result.outputs["twice"] == 42
    error = result.steps["bad"].error
    assert error is not None and "ValueError: negative: -1" in str(error)
    with open_store(store) as opened:
        logs = "".join(r.text for r in opened.get_logs(result.run_id, "twice"))
    pid = int(logs.split("in a subprocess: ")[1].split()[0])
    workers = client.run(os.getpid).values()
    assert pid not in workers and pid != os.getpid()


@pytest.mark.parametrize("how", ["timeout", "fail_fast"])
def test_a_timeout_or_a_cancel_kills_an_isolated_steps_process(
    client: Any, tmp_path: Path, how: str
) -> None:
    pidfile = str(tmp_path / "pid")
    wf = pardag.Workflow("killed")
    options: dict[str, Any] = {"timeout": 3.0} if how == "timeout" else {}  # after it began
    wf.add(
        "victim", lambda: wait_for_kill(pidfile), executor="dask", isolation="process", **options
    )
    if how == "fail_fast":
        wf.add("fails", lambda: sleep_then_fail(pidfile), executor="threads")
    result = wf.run(dask_address=_ADDRESS)
    assert not result.ok
    assert gone(int(Path(pidfile).read_text()))
    assert held_keys(client) == []


def sleep_then_fail(pidfile: str) -> None:
    deadline = time.monotonic() + 30
    while not Path(pidfile).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError("planned")


def test_isolation_is_for_steps_on_dask() -> None:
    wf = pardag.Workflow("misplaced")
    wf.add("a", lambda: 1, isolation="process")
    wf.add("b", lambda: 1, executor="dask", isolation="thread")
    with pytest.raises(pardag.ValidationError) as caught:
        wf.compile()
    text = str(caught.value)
    assert "step 'a': isolation='process' is for a Python function on the dask executor" in text
    assert "step 'b': isolation='thread' is not known; use 'process'" in text
