"""The ``dask`` executor against a real LocalCluster: 2 worker processes, 1 thread each,
started once for the module (the executor connects to it by ``dask_address``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import pardag  # noqa: E402
from pardag.executors import Executor, create_executor  # noqa: E402
from pardag.executors.dask import LOCAL_CONFIG  # noqa: E402
from pardag.states import ExecutorName  # noqa: E402
from pardag.testing.executors import ExecutorSuite  # noqa: E402
from tests.cli.support import clean_env, interrupted, write  # noqa: E402
from tests.cli.support import pardag as pardag_cli  # noqa: E402

_ADDRESS: str | None = None


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[Any]:
    """One LocalCluster for the module, set up as the executor sets up those it starts."""
    global _ADDRESS
    with dask.config.set(LOCAL_CONFIG):
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = distributed.Client(local)
    _ADDRESS = local.scheduler_address
    try:
        yield client
    finally:
        _ADDRESS = None
        client.close()
        local.close()


def scheduler_tasks(client: Any) -> int:
    """How many tasks the scheduler holds, once that number settles at 0 (or 5 s pass)."""
    deadline = time.monotonic() + 5
    while True:
        count: int = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


class TestDask(ExecutorSuite):
    executor_name = ExecutorName.DASK
    abandons = True  # a task running on a worker thread goes on after cancel
    remote = True  # the cluster's workers outlive the executor

    def make_executor(self, max_workers: int) -> Executor:
        return create_executor(ExecutorName.DASK, max_workers, dask_address=_ADDRESS)


# --- steps (module level: the workers import them by name) ---------------------------------


def pid() -> int:
    return os.getpid()


def die_once(marker: str) -> int:
    """Kill this worker process the first time; return the pid the second time."""
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def starter(directory: Path, name: str, seconds: float = 0.0) -> Any:
    """A step (a closure: sent by value) that calls ``started``."""
    where = str(directory)
    return lambda: started(where, name, seconds)


def started(directory: str, name: str, seconds: float = 0.0) -> str:
    """Append ``name`` to the start log, then sleep."""
    with open(Path(directory, "starts"), "a") as log:
        log.write(name + "\n")
    time.sleep(seconds)
    return name


def task_key() -> str:
    """The key of the Dask task running this call."""
    return str(distributed.get_worker().get_current_task())


def sleep_then_fail(seconds: float) -> None:
    time.sleep(seconds)
    raise ValueError("planned failure")


def run_on(wf: pardag.Workflow, **options: Any) -> pardag.RunResult:
    return wf.run(executor="dask", dask_address=_ADDRESS, **options)


# --- runs ----------------------------------------------------------------------------------


def test_a_run_on_the_cluster_passes_outputs_between_steps() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", pid)
    wf.add("b", lambda a: (a, os.getpid()), depends_on="a")  # a lambda: sent by value
    result = run_on(wf)
    assert result.status == "succeeded", result.error
    a, (passed, b) = result.outputs["a"], result.outputs["b"]
    assert passed == a and os.getpid() not in (a, b)


def test_a_worker_killed_mid_step_fails_the_attempt_and_the_retry_runs_elsewhere(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "killed"
    wf = pardag.Workflow("w")
    wf.add("fragile", lambda: die_once(str(marker)), retry={"retries": 1, "delay": 0})
    result = run_on(wf)
    assert result.status == "succeeded", result.error
    assert result.steps["fragile"].attempts == 2
    assert result.outputs["fragile"] != int(marker.read_text())  # another worker process


def test_a_killed_worker_without_retries_names_the_step_and_the_worker(tmp_path: Path) -> None:
    wf = pardag.Workflow("w")
    wf.add("fragile", lambda: die_once(str(tmp_path / "killed")))
    result = run_on(wf)
    assert result.status == "failed"
    reason = result.steps["fragile"].reason or ""
    assert "step 'fragile'" in reason and "Dask worker tcp://" in reason and "died" in reason


def test_fail_fast_leaves_no_task_on_the_cluster(cluster: Any, tmp_path: Path) -> None:
    wf = pardag.Workflow("w")
    wf.add("boom", lambda: sleep_then_fail(0.2))
    for k in range(4):  # one runs, three wait in the cluster's queue when boom fails
        wf.add(f"slow{k}", starter(tmp_path, f"s{k}", 1.0))
    result = run_on(wf)
    assert result.status == "failed"
    assert result.steps["boom"].state == "failed"
    assert scheduler_tasks(cluster) == 0


def test_cancel_leaves_no_task_on_the_cluster(cluster: Any, tmp_path: Path) -> None:
    wf = pardag.Workflow("w")
    for k in range(4):
        wf.add(f"s{k}", starter(tmp_path, f"s{k}", 1.0))

    async def main() -> pardag.RunResult:
        run = asyncio.ensure_future(wf.run_async(executor="dask", dask_address=_ADDRESS))
        starts = tmp_path / "starts"
        while not starts.exists() or len(starts.read_text().split()) < 2:
            await asyncio.sleep(0.01)  # both workers run a step, two wait in the queue
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return None  # type: ignore[return-value]

    asyncio.run(main())
    assert scheduler_tasks(cluster) == 0
    time.sleep(1.2)  # the running two finish their sleep; the queued two never start
    assert len((tmp_path / "starts").read_text().split()) == 2


def test_priority_order_holds_in_the_clusters_queue(tmp_path: Path) -> None:
    """Both worker threads are busy while ``low`` then ``high`` become ready and go to the
    cluster: when the first frees up, it starts ``high`` (Dask's priority, from pardag's)."""
    wf = pardag.Workflow("w")
    wf.add("block1", starter(tmp_path, "block1", 0.6), priority=9)
    wf.add("block2", starter(tmp_path, "block2", 1.2), priority=9)
    wf.add("early", lambda: time.sleep(0.1), executor="threads", priority=5)
    wf.add("late", lambda: time.sleep(0.3), executor="threads", priority=5)
    wf.add("low", starter(tmp_path, "low"), depends_on="early")
    wf.add("high", starter(tmp_path, "high"), depends_on="late", priority=1)
    result = run_on(wf)
    assert result.status == "succeeded", result.error
    assert (tmp_path / "starts").read_text().split()[2:] == ["high", "low"]


def test_two_runs_of_one_workflow_on_one_cluster_do_not_share_keys(cluster: Any) -> None:
    wf = pardag.Workflow("w")
    wf.add("a", task_key)
    first, second = run_on(wf), run_on(wf)
    assert first.outputs["a"] == f"pardag-{first.run_id}-a-1"
    assert second.outputs["a"] == f"pardag-{second.run_id}-a-1"
    assert first.outputs["a"] != second.outputs["a"]
    assert scheduler_tasks(cluster) == 0  # released as soon as the result came back


def test_a_step_on_dask_among_steps_on_threads() -> None:
    wf = pardag.Workflow("w")
    wf.add("here", lambda: os.getpid())
    wf.add("there", pid, executor="dask", depends_on="here")
    result = wf.run(dask_address=_ADDRESS)
    assert result.status == "succeeded", result.error
    assert result.outputs["here"] == os.getpid() != result.outputs["there"]


def test_an_unreachable_address_is_an_error_naming_it() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", pid)
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        result = wf.run(executor="dask", dask_address="tcp://127.0.0.1:9")
    assert result.status == "failed"
    reason = result.steps["a"].reason or ""
    assert "dask_address 'tcp://127.0.0.1:9'" in reason and "--dask-address" in reason


def test_a_bad_dask_address_is_refused_before_the_run() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", pid)
    with pytest.raises(pardag.ArgumentError, match="dask_address must be a Dask scheduler"):
        wf.run(executor="dask", dask_address="tcp://a b")


def test_a_resource_no_worker_has_is_an_error_at_submit() -> None:
    wf = pardag.Workflow("w")
    wf.add("train", pid, executor="dask", resources={"GPU": 1})
    result = wf.run(dask_address=_ADDRESS)
    assert result.status == "failed"
    reason = result.steps["train"].reason or ""
    assert "step 'train'" in reason and "{'GPU': 1}" in reason, reason
    assert "no worker of the cluster has" in reason


def test_resources_that_are_no_pool_go_to_dask_workers_that_have_them() -> None:
    """``GPU`` is no pool: a Dask worker resource; ``db`` is a pool: pardag's limit."""
    wf = pardag.Workflow("w", pools={"db": 1})
    wf.add("train", task_key, executor="dask", resources={"GPU": 1, "db": 1})
    with distributed.LocalCluster(
        n_workers=1, processes=False, resources={"GPU": 1}, dashboard_address=None
    ) as gpus:
        result = wf.run(dask_address=gpus.scheduler_address)
    assert result.status == "succeeded", result.error
    with pytest.raises(pardag.ValidationError, match="pool 'GPU', which is not declared"):
        on_threads = pardag.Workflow("w")
        on_threads.add("train", pid, resources={"GPU": 1})  # not on dask: GPU must be a pool
        on_threads.run()


# --- files and the command line ------------------------------------------------------------

FLOW = """\
name: on-dask
execution:
  executor: dask
  dask: {address: "%s"}
steps:
  where:
    kind: python
    function: "pardag.testing.calls:thread_id"
"""


def test_a_file_names_the_cluster_in_its_execution_section(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW % _ADDRESS)
    wf = pardag.load(flow)
    assert (wf.settings.executor, wf.settings.dask_address) == ("dask", _ADDRESS)
    flow.write_text(FLOW.replace('{address: "%s"}', "{adress: x}"))
    with pytest.raises(pardag.ValidationError, match=r"adress.*execution\.dask"):
        pardag.load(flow)


def test_pardag_run_on_the_cluster_from_flags_and_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "flow.yaml", FLOW.replace('  dask: {address: "%s"}\n', ""))
    done = pardag_cli(tmp_path, "run", "flow.yaml", "--json", "--dask-address", str(_ADDRESS))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["where"] > 0
    env = clean_env(PARDAG_DASK_ADDRESS=str(_ADDRESS))
    shown = pardag_cli(tmp_path, "run", "flow.yaml", "--show-settings", "--json", env=env)
    settings = json.loads(shown.stdout)
    assert settings["dask.address"] == {"value": _ADDRESS, "source": "PARDAG_DASK_ADDRESS"}
    assert settings["executor"] == {"value": "dask", "source": "workflow file flow.yaml"}


def test_pardag_run_with_an_unreachable_address_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    write(tmp_path, "flow.yaml", FLOW % "tcp://127.0.0.1:9")
    env = clean_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="0.5s")
    done = pardag_cli(tmp_path, "run", "flow.yaml", env=env)
    assert done.returncode != 0
    assert "dask_address 'tcp://127.0.0.1:9'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    bad = pardag_cli(tmp_path, "run", "flow.yaml", "--dask-address", "tcp://a b", env=env)
    assert bad.returncode != 0
    assert "Invalid --dask-address value 'tcp://a b'" in bad.stderr, bad.stderr


SCRIPT = """\
import json, os, sys, time
import pardag
from pardag.testing.executors import pid_gone

wf = pardag.Workflow("script")
wf.add("a", lambda: os.getpid())
wf.add("b", lambda a: [a, os.getpid()], depends_on="a")
result = wf.run(executor="dask")  # no __main__ guard: the workers never run this file
workers = set(result.outputs["b"])
deadline = time.monotonic() + 10
while not all(pid_gone(p) for p in workers) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"status": result.status, "workers": sorted(workers),
                  "gone": all(pid_gone(p) for p in workers), "me": os.getpid()}))
"""


def test_without_an_address_a_local_cluster_runs_for_the_run_and_closes(tmp_path: Path) -> None:
    """A script with no ``__main__`` guard starts its own LocalCluster of worker processes,
    whose workers are gone once the run returns."""
    script = write(tmp_path, "flow.py", SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == "succeeded"
    assert report["me"] not in report["workers"] and report["gone"]


FLOW_PY = """\
import pardag

wf = pardag.Workflow("from-a-script")


def talk() -> int:
    print("printed on a worker")
    return 1


wf.add("talk", talk)
"""


def test_pardag_run_flow_py_sends_its_functions_and_brings_their_logs_back(
    tmp_path: Path,
) -> None:
    write(tmp_path, "flow.py", FLOW_PY)
    args = ("--executor", "dask", "--dask-address", str(_ADDRESS), "--json")
    done = pardag_cli(tmp_path, "run", "flow.py", *args)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    logs = pardag_cli(tmp_path, "logs", run_id, "talk")
    assert "printed on a worker" in logs.stdout, logs.stderr


def test_a_python_code_step_runs_on_the_cluster() -> None:
    wf = pardag.Workflow("w")
    code = "import os\ndef run():\n    return os.getpid()\n"
    wf.add("code", params={"code": code}, executor="dask")
    result = wf.run(dask_address=_ADDRESS)
    assert result.status == "succeeded", result.error
    assert result.outputs["code"] != os.getpid()


SLOW_PY = """\
import time
from pathlib import Path

import pardag

wf = pardag.Workflow("slow")


def nap() -> None:
    Path({marker!r}).touch()
    time.sleep(1.5)


wf.add("nap", nap)
wf.add("queued", nap, priority=-1)
wf.add("waiting", nap, priority=-2)
"""


def test_ctrl_c_leaves_no_task_on_the_cluster(cluster: Any, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    write(tmp_path, "flow.py", SLOW_PY.format(marker=str(marker)))
    args = ["run", "flow.py", "--executor", "dask", "--dask-address", str(_ADDRESS), "--json"]
    code, stdout, stderr = interrupted(tmp_path, args, marker)  # a step runs on a worker
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert json.loads(stdout)["status"] == "cancelled"
    assert scheduler_tasks(cluster) == 0


def test_a_step_timeout_fails_the_attempt_without_waiting_for_the_worker(cluster: Any) -> None:
    """The run moves on at the timeout; the worker's thread finishes its sleep unseen."""
    wf = pardag.Workflow("w")
    wf.add("slow", lambda: time.sleep(1.0), timeout=0.2)
    result = run_on(wf)
    assert result.status == "failed"
    assert "timed out" in (result.steps["slow"].reason or "")
    assert scheduler_tasks(cluster) == 0


def test_a_mapped_steps_instances_take_its_worker_resources() -> None:
    wf = pardag.Workflow("w")
    wf.add("items", lambda: [1, 2])

    @wf.map(over="items", executor="dask", resources={"GPU": 1})
    def square(items: int) -> int:
        return items * items

    result = wf.run(dask_address=_ADDRESS)  # the module's cluster has no GPU
    assert result.status == "failed"
    assert "asks for Dask worker resources {'GPU': 1}" in (result.steps["square[0]"].reason or "")
    with distributed.LocalCluster(
        n_workers=1, processes=False, resources={"GPU": 1}, dashboard_address=None
    ) as gpus:
        result = wf.run(dask_address=gpus.scheduler_address)
    assert result.status == "succeeded", result.error
    assert result.outputs["square"] == [1, 4]


def test_without_dask_installed_a_dask_step_is_a_validation_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: no import
    wf = pardag.Workflow("w")
    wf.add("a", pid, executor="dask")
    with pytest.raises(pardag.ValidationError, match=r"pip install 'pardag\[dask\]'"):
        wf.validate()
