"""Shell, HTTP, Lua, JavaScript, wasm and Python code steps on a real Dask LocalCluster.

One cluster for the module (2 worker processes, 1 thread each), reached by ``dask_address``;
the missing-runtime test starts a fresh one, whose workers never loaded a runtime.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import pardag  # noqa: E402
from pardag.errors import CommandFailed, HTTPFailed, MissingRuntime, StepTimeout  # noqa: E402
from pardag.executors.dask import LOCAL_CONFIG  # noqa: E402
from pardag.states import StepState  # noqa: E402
from tests.kinds.test_http import Server, _serving  # noqa: E402

pytestmark = pytest.mark.timeout(120)

WASM = Path(__file__).parent / "wasm"
LENGTH = Path(__file__).parents[2] / "examples" / "wasm" / "length.wat"


def _cluster(workers: int) -> Any:
    with dask.config.set(LOCAL_CONFIG):
        return distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of the module's cluster; its ``scheduler.address`` is the run's address."""
    local = _cluster(2)
    client = distributed.Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


@pytest.fixture
def site() -> Iterator[Server]:
    with _serving("127.0.0.1") as record:
        yield record


def run(client: Any, wf: pardag.Workflow, **options: Any) -> pardag.RunResult:
    """A run on the client's cluster in which one step's failure stops no other."""
    return wf.run(dask_address=client.scheduler.address, on_failure="continue", **options)


def worker_pids(client: Any) -> set[int]:
    return set(client.run(os.getpid).values())


def error_of(result: pardag.RunResult, step: str) -> BaseException:
    """The step's own exception (a timeout's: the ``StepTimeout``)."""
    error = result.steps[step].error
    assert error is not None, result.steps[step]
    if type(error) is pardag.StepFailed and error.cause is not None:
        return error.cause
    return error


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its reaper counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def ends(pid: int) -> bool:
    """Whether process ``pid`` ends within 20 s (a kill lands at once; the cap is for a
    loaded machine, not a measure)."""
    deadline = time.monotonic() + 20
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


# --- shell ---------------------------------------------------------------------------------


def test_a_shell_step_runs_on_a_worker_and_a_value_stays_data(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = f'\'; touch {marker}; echo "$(touch {marker})" `touch {marker}`'
    wf = pardag.Workflow("sh")
    wf.add("say", kind="shell", params={"command": "echo {{ params.v }}; echo $PPID"})
    result = run(client, wf, executor="dask", params={"v": value})
    assert result.status == "succeeded", result.error
    assert result.steps["say"].executor == "dask"
    said, parent = result.outputs["say"]["stdout"].splitlines()
    assert said == value
    assert int(parent) in worker_pids(client) and int(parent) != os.getpid()
    assert not marker.exists()


def test_a_failing_command_fails_with_its_exit_code_and_stderr(client: Any) -> None:
    wf = pardag.Workflow("sh")
    wf.add("bad", kind="shell", params={"command": "echo broken >&2; exit 3"}, executor="dask")
    result = run(client, wf)
    assert result.steps["bad"].state is StepState.FAILED
    error = error_of(result, "bad")
    assert isinstance(error, CommandFailed)
    assert "3" in str(error) and "broken" in str(error)


def test_a_json_line_is_the_output_and_inputs_arrive_as_variables(client: Any) -> None:
    wf = pardag.Workflow("sh")
    wf.add("n", lambda: {"k": 41})
    wf.add(
        "next",
        kind="shell",
        params={"script": 'k=$(echo "$INPUT_N" | tr -dc 0-9)\necho "{\\"k\\": $((k + 1))}"'},
        depends_on=["n"],
        executor="dask",
    )
    result = run(client, wf)
    assert result.outputs["next"] == {"k": 42}, result.error


def test_the_worker_kills_a_shell_step_at_its_timeout(client: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wf = pardag.Workflow("sh")
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    wf.add("slow", kind="shell", params={"command": command}, executor="dask", timeout=1)
    result = run(client, wf)
    assert isinstance(error_of(result, "slow"), StepTimeout)
    assert ends(int(pid_file.read_text())), "the step's process outlived its timeout"


def test_a_shell_call_on_a_worker_keeps_its_own_deadline(client: Any, tmp_path: Path) -> None:
    """Without the runner (which cancels the task at the timeout too), the worker's own timer
    kills the process group."""
    from pardag.kinds.shell import Command, ShellOnWorker

    pid_file = tmp_path / "pid"
    command = Command(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], {}, None, False)
    task = client.submit(ShellOnWorker("sh", None, 0.5), command, pure=False)
    with pytest.raises(TimeoutError, match=r"timeout of 0\.5s on the Dask worker tcp://"):
        task.result()
    assert ends(int(pid_file.read_text()))


def test_a_shell_step_cancelled_by_fail_fast_is_killed_on_its_worker(
    client: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    wf = pardag.Workflow("sh")
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    wf.add("slow", kind="shell", params={"command": command}, executor="dask")
    wf.add(
        "fail",
        kind="shell",
        params={"command": f"until [ -s {pid_file} ]; do sleep 0.05; done; exit 1"},
    )
    result = wf.run(dask_address=client.scheduler.address, executor="dask")
    assert result.steps["slow"].state is StepState.CANCELLED
    assert ends(int(pid_file.read_text())), "the cancelled step's process lives on"


def test_a_worker_keeps_its_secret_variables_and_secrets_are_masked(client: Any) -> None:
    def plant() -> None:
        os.environ["PARDAG_SECRET_PLANTED"] = "from-the-worker-env"

    client.run(plant)
    try:
        wf = pardag.Workflow("sh", secrets=["TOKEN"])
        wf.add("env", kind="shell", params={"command": "env"}, executor="dask")
        command = "echo {{ secrets.TOKEN }}; echo {{ secrets.TOKEN }} >&2; exit 1"
        wf.add("leak", kind="shell", params={"command": command}, executor="dask")
        result = run(client, wf, secrets={"TOKEN": "hush-hush-42"})
    finally:
        client.run(lambda: os.environ.pop("PARDAG_SECRET_PLANTED", None))
    assert "PARDAG_SECRET_PLANTED" not in result.outputs["env"]["stdout"]
    assert "from-the-worker-env" not in result.outputs["env"]["stdout"]
    error = str(result.steps["leak"].error)
    assert "***" in error and "hush-hush-42" not in error
    logs = str(client.get_worker_logs())
    assert "hush-hush-42" not in logs


def test_what_a_step_writes_on_a_worker_comes_back_into_its_log(
    client: Any, tmp_path: Path, site: Server
) -> None:
    from pardag.store import open_store

    wf = pardag.Workflow("logs")
    wf.add("sh", kind="shell", params={"command": "echo out; echo err >&2"})
    wf.add("lua", kind="lua", params={"code": 'function run() print("from lua") end'})
    wf.add("get", kind="http", params={"url": f"{site.url}/status/500"})
    url = str(tmp_path / "runs.db")
    result = run(client, wf, executor="dask", store=url)
    assert result.steps["sh"].executor == "dask"
    with open_store(url) as store:
        logs = {
            step: {p.stream: p.text for p in store.get_logs(result.run_id, step)}
            for step in ("sh", "lua", "get")
        }
    assert logs["sh"] == {"stdout": "out\n", "stderr": "err\n"}
    assert logs["lua"] == {"stdout": "from lua\n"}
    assert "status 500 body" in logs["get"]["log"]


# --- http ----------------------------------------------------------------------------------


def test_an_http_step_on_a_worker_returns_the_response(client: Any, site: Server) -> None:
    wf = pardag.Workflow("http")
    wf.add("get", kind="http", params={"url": f"{site.url}/json/x", "query": {"q": "a b"}})
    wf.add("missing", kind="http", params={"url": f"{site.url}/status/404"})
    result = run(client, wf, executor="dask")
    assert result.steps["get"].executor == "dask"
    output = result.outputs["get"]
    assert output["status"] == 200 and output["body"]["query"] == {"q": ["a b"]}
    error = error_of(result, "missing")
    assert isinstance(error, HTTPFailed) and error.status == 404
    assert f"HTTP 404 from GET {site.url}/status/404" in str(error)


def test_the_egress_policy_holds_on_the_worker_for_names_and_dns_answers(
    client: Any, site: Server
) -> None:
    port = site.url.rsplit(":", 1)[1]
    wf = pardag.Workflow("http")
    wf.add("by_address", kind="http", params={"url": site.url})
    wf.add("by_name", kind="http", params={"url": f"http://localhost:{port}/"})
    result = run(client, wf, executor="dask", http_deny=["127.0.0.0/8"])
    assert site.seen == []
    for step in ("by_address", "by_name"):
        error = error_of(result, step)
        assert isinstance(error, HTTPFailed) and "127.0.0.0/8" in str(error), error
    assert "localhost" in str(error_of(result, "by_name"))


# --- embedded languages and Python code ------------------------------------------------------


LANGUAGES = [
    ("lua", "function run(inputs) return inputs.n + 1 end", 42, 'function run() error("boom") end'),
    (
        "javascript",
        "function run(inputs) { return inputs.n + 1 }",
        42,
        "function run() { throw new Error('boom') }",
    ),
]


@pytest.mark.parametrize(("kind", "good", "output", "bad"), LANGUAGES)
def test_a_language_step_runs_on_a_worker(
    client: Any, kind: str, good: str, output: Any, bad: str
) -> None:
    wf = pardag.Workflow(kind)
    wf.add("n", lambda: 41)
    wf.add("good", kind=kind, params={"code": good}, depends_on=["n"], executor="dask")
    wf.add("bad", kind=kind, params={"code": bad}, executor="dask")
    result = run(client, wf)
    assert result.steps["good"].executor == "dask"
    assert result.outputs["good"] == output
    assert "boom" in str(result.steps["bad"].error) and "step bad" in str(result.steps["bad"].error)


def test_a_wasm_step_runs_on_a_worker(client: Any) -> None:
    wf = pardag.Workflow("wasm")
    wf.add("n", lambda: "abc")
    wf.add("length", kind="wasm", params={"module": str(LENGTH)}, depends_on=["n"])
    wf.add("trap", kind="wasm", params={"module": str(WASM / "trap.wat")})
    result = run(client, wf, executor="dask")
    assert result.steps["length"].executor == "dask"
    assert result.outputs["length"] == {"bytes": len('{"n": "abc"}')}
    assert "step trap" in str(result.steps["trap"].error)


def test_python_code_steps_run_on_a_worker_async_too(client: Any) -> None:
    wf = pardag.Workflow("code")
    wf.add("sync", params={"code": "import os\ndef run():\n    return os.getpid()\n"})
    code = (
        "import asyncio, os\nasync def run():\n    await asyncio.sleep(0)\n    return os.getpid()\n"
    )
    wf.add("async", params={"code": code})
    wf.add("bad", params={"code": "def run():\n    return 1 / 0\n"})
    result = run(client, wf, executor="dask")
    pids = worker_pids(client)
    assert result.outputs["sync"] in pids and result.outputs["async"] in pids
    assert "line 2: ZeroDivisionError" in str(result.steps["bad"].error)


# --- where steps run -----------------------------------------------------------------------


def test_a_run_wide_dask_sends_work_to_the_cluster_and_keeps_control_steps(client: Any) -> None:
    wf = pardag.Workflow("where")
    wf.add("wait", kind="delay", params={"duration": 0})
    wf.add("branch", lambda: os.getpid(), kind="condition")
    wf.add("pid", kind="shell", params={"command": "echo $PPID"}, depends_on=["wait"])
    wf.add("items", lambda: ["a", "b"])
    wf.add("each", kind="shell", params={"command": "echo $PPID {{ item }}"}, map_over="items")
    result = run(client, wf, executor="dask")
    assert result.status == "succeeded", result.error
    assert result.steps["wait"].executor != "dask"
    assert result.steps["branch"].executor == "threads"
    assert result.outputs["branch"] == os.getpid()  # a condition's function, in the runner
    assert result.steps["pid"].executor == "dask"
    pids = worker_pids(client)
    assert int(result.outputs["pid"]["stdout"]) in pids
    for k, item in enumerate(["a", "b"]):
        pid, said = result.outputs[f"each[{k}]"]["stdout"].split()
        assert int(pid) in pids and said == item
    local = wf.run()
    assert int(local.outputs["pid"]["stdout"]) == os.getpid()


def test_a_files_execution_section_sends_its_shell_step_to_the_cluster(
    client: Any, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.yaml"
    address = client.scheduler.address
    flow.write_text(
        f"name: filed\nexecution: {{executor: dask, dask: {{address: {address!r}}}}}\n"
        "steps:\n  pid:\n    kind: shell\n    command: echo $PPID\n"
    )
    result = pardag.load(flow).run()
    assert result.steps["pid"].executor == "dask", result.error
    assert int(result.outputs["pid"]["stdout"]) in worker_pids(client)


def test_a_control_step_naming_dask_is_a_validation_problem() -> None:
    wf = pardag.Workflow("w")
    wf.add("wait", kind="delay", params={"duration": 0}, executor="dask")
    with pytest.raises(pardag.ValidationError, match="a delay step runs in the runner, not on"):
        wf.validate()


def test_a_runtime_missing_on_a_worker_names_the_step_worker_and_extra() -> None:
    fresh = _cluster(1)
    try:
        with distributed.Client(fresh) as client:
            client.run(lambda: [sys.modules.__setitem__(n, None) for n in ("quickjs", "httpx")])
            [address] = client.scheduler_info()["workers"]
            wf = pardag.Workflow("missing")
            wf.add("js", kind="javascript", params={"code": "function run() { return 1 }"})
            wf.add("get", kind="http", params={"url": "http://127.0.0.1:9/"})
            result = run(client, wf, executor="dask")
    finally:
        fresh.close()
    js, get = error_of(result, "js"), error_of(result, "get")
    assert isinstance(js, MissingRuntime) and isinstance(get, MissingRuntime)
    for error, step in ((js, "js"), (get, "get")):
        assert f"step {step!r} ran on the Dask worker {address}" in str(error)
    assert "pip install 'pardag[javascript]'" in str(js)
    assert "'httpx'" in str(get) and "pip install pardag" in str(get)
