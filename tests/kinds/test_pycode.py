"""Python ``code`` steps: a worker process by default, the runner's process when asked.

The worker-process tests run real processes: an infinite loop is killed at its timeout, a
crash and a runaway allocation fail only their step, and the runner goes on.
"""

from __future__ import annotations

import os
import resource
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pardag import ValidationError, Workflow
from pardag.errors import StepFailed, StepTimeout
from pardag.kinds import pycode
from pardag.kinds.base import RunContext
from pardag.kinds.python import PythonKind
from pardag.model import RetryPolicy
from pardag.results import RunResult
from tests.support import pid_gone, step_problems

CTX = RunContext("run", "wf", {})
IN_PROCESS = ["threads", "inline"]


def _code(source: str) -> dict[str, str]:
    return {"code": textwrap.dedent(source)}


def _error(result: RunResult, step: str) -> StepFailed:
    error = result.steps[step].error
    assert isinstance(error, StepFailed), result.steps[step]
    return error


def rlimit_as() -> tuple[int, int]:
    """A function step on the processes executor: the worker's address-space limit."""
    return resource.getrlimit(resource.RLIMIT_AS)


# --- where it runs ----------------------------------------------------------------------


def test_code_runs_in_a_worker_process_with_the_binding_rules() -> None:
    wf = Workflow("code")
    wf.add("a", lambda: 4)
    wf.add("b", lambda: 5)
    wf.add(
        "named",
        depends_on=["a", "b"],
        params=_code("import math\ndef run(b, a):\n    return math.prod([a, b])\n"),
    )
    wf.add("whole", depends_on=["a", "b"], params=_code("def run(inputs):\n    return inputs\n"))
    wf.add("pid", params=_code("import os\ndef run():\n    return os.getpid()\n"))
    wf.add(
        "later",
        depends_on=["a"],
        params=_code("import asyncio\nasync def run(a):\n    await asyncio.sleep(0)\n    return a"),
    )
    result = wf.run()
    assert result.outputs["named"] == 20
    assert result.outputs["whole"] == {"a": 4, "b": 5}
    assert result.outputs["later"] == 4
    assert result.outputs["pid"] != os.getpid()
    assert {result.steps[s].executor for s in ("named", "whole", "pid", "later")} == {"processes"}


@pytest.mark.parametrize("executor", IN_PROCESS)
def test_a_code_step_naming_an_executor_runs_in_the_runners_process(executor: str) -> None:
    wf = Workflow("here")
    wf.add("a", lambda: 2)
    wf.add(
        "pid",
        depends_on=["a"],
        params=_code("import os\ndef run(a):\n    return [a, os.getpid()]\n"),
        executor=executor,
    )
    wf.add("co", params=_code("async def run():\n    return 'awaited'\n"), executor="async")
    result = wf.run()
    assert result.outputs["pid"] == [2, os.getpid()]
    assert result.outputs["co"] == "awaited"
    assert result.steps["pid"].executor == executor


def test_input_names_cannot_clash_with_the_worker_call() -> None:
    """Dependencies named like ``run_code``'s own parameters still reach ``run``."""
    wf = Workflow("names")
    for name, value in {"code": 1, "args": 2, "kwargs": 3, "memory": 4, "step_id": 5}.items():
        wf.add(name, lambda v=value: v)
    wf.add(
        "sum",
        depends_on=["code", "args", "kwargs", "memory", "step_id"],
        params=_code(
            "def run(code, args, kwargs, memory, step_id):\n"
            "    return [code, args, kwargs, memory, step_id]\n"
        ),
    )
    assert wf.run().outputs["sum"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("executor", [None, *IN_PROCESS])
def test_the_code_runs_afresh_on_every_attempt(executor: str | None) -> None:
    code = """
        attempts = globals().get("attempts", 0) + 1  # counts up if a namespace survived

        def run():
            raise ValueError(f"attempt number {attempts}")
        """
    wf = Workflow("fresh")
    wf.add("flaky", params=_code(code), retry=RetryPolicy(retries=2, delay=0), executor=executor)
    result = wf.run(on_failure="continue")
    assert result.steps["flaky"].attempts == 3
    assert _error(result, "flaky").reason.endswith("ValueError: attempt number 1")


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [None, *IN_PROCESS])
def test_an_error_names_the_step_the_language_and_the_line(executor: str | None) -> None:
    wf = Workflow("tb")
    wf.add("bad", params=_code("def run():\n    x = 1\n    return x / 0\n"), executor=executor)
    error = _error(wf.run(on_failure="continue"), "bad")
    assert error.reason == (
        "PythonStepError: step bad (python): line 3: ZeroDivisionError: division by zero"
    )
    assert isinstance(error.cause, pycode.PythonStepError)
    assert "<step 'bad' code>\", line 3" in error.traceback
    assert "return x / 0" in error.traceback


def test_an_error_inside_a_library_points_at_the_codes_own_line() -> None:
    wf = Workflow("lib")
    wf.add("bad", params=_code("import json\n\ndef run():\n    return json.loads('{')\n"))
    reason = _error(wf.run(on_failure="continue"), "bad").reason
    assert reason.startswith("PythonStepError: step bad (python): line 4: JSONDecodeError:")


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_run_that_is_not_callable_once_executed_is_named(executor: str | None) -> None:
    wf = Workflow("shadow")
    wf.add("s", params=_code("def run():\n    return 1\nrun = 5\n"), executor=executor)
    reason = _error(wf.run(on_failure="continue"), "s").reason
    assert "'run' is not callable in step s: it is a int; make it a function" in reason


def _problems(**params: Any) -> list[str]:
    wf = Workflow("files")
    wf.add("a", lambda: 3)
    wf.add("s", kind="python", depends_on=["a"], params=params)
    return step_problems(wf, "s")


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (
            "def run(inputs):\n    return (\n",
            "Python syntax error in 'code' line 2: '(' was never closed: 'return ('; fix the code",
        ),
        ("def run(:\n", "Python syntax error in 'code' line 1:"),
        ("x = 1\n", "no 'run' function found in the code; define it at top level as 'def run("),
        ("run = print\n", "no 'run' function found"),
        ("", "params 'code' must be Python source defining run"),
        ("def run(x, y, z):\n    pass\n", "function 'run' needs (x, y, z)"),
    ],
)
def test_bad_code_is_a_validation_problem(code: str, fragment: str) -> None:
    [message] = _problems(code=code)
    assert fragment in message


@pytest.mark.parametrize(
    ("code", "executor", "fragment"),
    [
        ("def run(a):\n    return a\n", "async", "executor 'async' needs an async def function"),
        ("async def run(a):\n    return a\n", "threads", "runs on the 'async' executor"),
        ("def run(a):\n    return a\n", "gpu", "executor 'gpu' is unknown"),
    ],
)
def test_an_executor_that_cannot_run_the_code_is_a_validation_problem(
    code: str, executor: str, fragment: str
) -> None:
    wf = Workflow("exec")
    wf.add("a", lambda: 3)
    wf.add("s", depends_on=["a"], params={"code": code}, executor=executor)
    with pytest.raises(ValidationError, match=fragment):
        wf.validate()


def test_validation_does_not_run_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()\ndef run(a=len([])):\n    return 1\n"
    wf = Workflow("quiet")
    wf.add("s", params={"code": code})
    wf.validate()
    assert not marker.exists()
    assert wf.run().outputs["s"] == 1
    assert marker.exists()


def test_the_action_is_run_code_on_processes() -> None:
    wf = Workflow("action")
    wf.add("s", params=_code("def run():\n    return 1\n"))
    action = PythonKind().action(wf.steps["s"], CTX)
    assert action.executor == "processes"
    assert action.fn == pycode.CodeCall("s", "def run():\n    return 1\n")


def test_unpicklable_run_params_are_named_with_the_step_not_its_source() -> None:
    wf = Workflow("params")
    wf.add("s", params=_code("def run(params):\n    return 1\n"))
    reason = _error(wf.run(params={"lock": threading.Lock()}), "s").reason
    assert reason.startswith(
        "TypeError: the arguments of Python code step 's' cannot be pickled for the processes "
        "executor (TypeError: cannot pickle '_thread.lock' object)"
    )


# --- the runner survives ----------------------------------------------------------------


def test_an_infinite_loop_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wf = Workflow("loop")
    wf.add(
        "spin",
        params=_code(f"""
            import os
            def run():
                open({str(pid_file)!r}, "w").write(str(os.getpid()))
                while True:
                    pass
            """),
        timeout=1.0,
    )
    wf.add("after", lambda: "still here", depends_on=["spin"], trigger="all_done")
    result = wf.run(on_failure="continue")
    assert isinstance(result.steps["spin"].error, StepTimeout)
    assert result.outputs["after"] == "still here"
    worker = int(pid_file.read_text())
    assert worker != os.getpid()
    assert pid_gone(worker)  # killed, not left spinning: the run waited for its end


@pytest.mark.parametrize(
    ("body", "how"),
    [
        ("os._exit(7)", "exited with code 7"),
        ("os.kill(os.getpid(), signal.SIGSEGV)", "was killed by SIGSEGV (exit code -11)"),
    ],
)
def test_a_crash_fails_only_its_step(body: str, how: str) -> None:
    wf = Workflow("crash")
    wf.add("boom", params=_code(f"import os, signal\ndef run():\n    {body}\n"))
    wf.add("other", params=_code("def run():\n    return 'fine'\n"))
    wf.add("later", params=_code("def run():\n    return 'after'\n"), depends_on=["other"])
    result = wf.run(on_failure="continue")
    assert _error(result, "boom").reason == (
        f"RuntimeError: worker process {how} while running the step"
    )
    assert result.outputs["other"] == "fine"
    assert result.outputs["later"] == "after"


def test_memory_past_the_cap_fails_the_step_and_the_cap_is_lifted_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pycode, "MAX_MEMORY", 256 * 2**20)
    wf = Workflow("memory")
    wf.add("hog", params=_code("def run():\n    return len(bytearray(512 * 2**20))\n"))
    wf.add(
        "small",
        params=_code("def run():\n    return len(bytearray(2**20))\n"),
        depends_on=["hog"],
        trigger="all_done",
    )
    wf.add("limit", rlimit_as, executor="processes", depends_on=["small"])
    result = wf.run(on_failure="continue", max_concurrency=1)  # one worker runs all three
    assert _error(result, "hog").reason == (
        "PythonStepError: step hog (python): ran out of its 256 MiB of memory "
        "(pardag.kinds.pycode.MAX_MEMORY); use less, or run it as a function step"
    )
    assert result.outputs["small"] == 2**20
    assert result.outputs["limit"] == resource.getrlimit(resource.RLIMIT_AS)


def test_an_output_over_the_cap_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pycode, "MAX_OUTPUT", 1000)
    wf = Workflow("output")
    wf.add("big", params=_code("def run():\n    return 'x' * 5000\n"))
    wf.add("fits", params=_code("def run():\n    return 'x' * 500\n"))
    result = wf.run(on_failure="continue")
    reason = _error(result, "big").reason
    assert "step big (python): the output is 50" in reason
    assert "bytes pickled, over the cap of 1000 bytes" in reason
    assert result.outputs["fits"] == "x" * 500


def test_an_output_that_cannot_leave_the_worker_is_named() -> None:
    wf = Workflow("lambda")
    wf.add("fn", params=_code("def run():\n    return lambda: 1\n"))
    reason = _error(wf.run(on_failure="continue"), "fn").reason
    assert "step fn (python): the output cannot be sent back from the worker process" in reason


def test_the_runs_executor_setting_does_not_move_a_code_step_off_its_worker() -> None:
    wf = Workflow("setting")
    wf.add("fn", lambda: os.getpid())
    wf.add("code", params=_code("import os\ndef run():\n    return os.getpid()\n"))
    result = wf.run(executor="inline")
    assert result.steps["fn"].executor == "inline"
    assert result.steps["code"].executor == "processes"
    assert result.outputs["code"] != os.getpid()
