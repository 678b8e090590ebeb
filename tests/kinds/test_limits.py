"""``limits: {memory, processes, open_files}`` on shell and Python code steps: set in the
step's own process with the hard limit equal to the soft one, so the step cannot lift them
(issue 13 §8). Real processes: each test makes a step go past its cap.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import textwrap
from typing import Any

import pytest

from pardag import StepFailed, Workflow
from pardag.child import Limits, limits_problems
from pardag.results import RunResult
from tests.support import step_problems

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")

OPEN_64 = "import sys; fs = [open(sys.executable, 'rb') for _ in range(64)]; print(len(fs))"
ALLOCATE_256 = "b = bytearray(256 * 2**20); print(len(b))"


def _run(params: dict[str, Any], kind: str = "shell") -> RunResult:
    wf = Workflow("limited")
    if kind == "shell":
        wf.add("s", kind="shell", params=params)
    else:
        wf.add("s", params={**params, "code": textwrap.dedent(params["code"])})
    return wf.run(on_failure="continue")


def _reason(result: RunResult) -> str:
    error = result.steps["s"].error
    assert isinstance(error, StepFailed), result.steps["s"]
    return error.reason


# --- shell steps --------------------------------------------------------------------------


def test_a_shell_step_opening_more_files_than_its_limit_fails() -> None:
    command = [sys.executable, "-c", OPEN_64]
    assert _run({"command": command}).outputs["s"]["stdout"] == "64\n"  # fine without
    result = _run({"command": command, "limits": {"open_files": 16}})
    assert "Too many open files" in _reason(result)


def test_a_shell_step_allocating_past_its_memory_fails() -> None:
    command = [sys.executable, "-c", ALLOCATE_256]
    assert _run({"command": command}).ok
    result = _run({"command": command, "limits": {"memory": "64 MiB"}})
    assert "MemoryError" in _reason(result)


def test_a_shell_step_cannot_lift_its_limit() -> None:
    script = "ulimit -S -n 64\necho lifted\n"  # a soft limit alone would be lifted
    assert _run({"script": script}).outputs["s"]["stdout"] == "lifted\n"
    reason = _reason(_run({"script": script, "limits": {"open_files": 16}}))
    assert "ulimit: error setting limit (Invalid argument)" in reason  # soft over hard


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs the step as nobody (RLIMIT_NPROC never applies to root)",
)
def test_a_shell_step_starting_more_processes_than_its_limit_fails() -> None:
    forks = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; wait; echo forked"
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", forks]
    assert _run({"command": as_nobody}).outputs["s"]["stdout"] == "forked\n"
    result = _run({"command": as_nobody, "limits": {"processes": 4}})
    assert "fork" in _reason(result).lower()  # sh: Cannot fork


# --- Python code steps --------------------------------------------------------------------

LIFT_THEN_ALLOCATE = """
import resource

def run():
    try:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass
    return len(bytearray(512 * 2**20))
"""


def test_a_code_step_cannot_lift_its_memory_cap() -> None:
    result = _run({"code": LIFT_THEN_ALLOCATE, "limits": {"memory": "256 MiB"}}, "code")
    assert _reason(result) == (
        "PythonStepError: step s (python): ran out of its 256 MiB of memory (limits.memory); "
        "use less, or raise limits.memory"
    )


def test_the_default_cap_of_a_code_step_cannot_be_lifted_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pardag.kinds import pycode

    monkeypatch.setattr(pycode, "MAX_MEMORY", 256 * 2**20)
    result = _run({"code": LIFT_THEN_ALLOCATE}, "code")
    assert "ran out of its 256 MiB of memory (pardag.kinds.pycode.MAX_MEMORY)" in _reason(result)


def test_a_code_step_opening_more_files_than_its_limit_fails() -> None:
    code = "def run():\n    return len([open(__import__('sys').executable) for _ in range(64)])\n"
    assert _run({"code": code}, "code").outputs["s"] == 64
    reason = _reason(_run({"code": code, "limits": {"open_files": 16}}, "code"))
    assert "step s (python): line 2: OSError: [Errno 24] Too many open files" in reason


def test_a_worker_that_took_limits_runs_no_step_with_other_caps() -> None:
    wf = Workflow("after")
    wf.add("limited", params={"code": "def run():\n    return 1\n", "limits": {"open_files": 16}})
    wf.add("next", _nofile, executor="processes", depends_on=["limited"])
    result = wf.run(max_concurrency=1)  # one worker would run both, were it reused
    assert result.outputs["next"] == list(resource.getrlimit(resource.RLIMIT_NOFILE))


def _nofile() -> list[int]:
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


def _pid_and_nofile() -> list[int]:
    return [os.getpid(), *resource.getrlimit(resource.RLIMIT_NOFILE)]


def test_code_steps_with_the_same_caps_share_a_worker_and_no_other_step_does() -> None:
    pid = "import os, resource\ndef run():\n    return os.getpid()\n"
    wf = Workflow("share")
    wf.add("a", params={"code": pid})
    wf.add("b", params={"code": pid}, depends_on=["a"])
    wf.add("c", params={"code": pid, "limits": {"open_files": 64}}, depends_on=["b"])
    wf.add("d", params={"code": pid}, depends_on=["c"])
    wf.add("f", _pid_and_nofile, executor="processes", depends_on=["d"])
    out = wf.run(max_concurrency=1).outputs  # one worker at a time
    assert out["a"] == out["b"]  # the same (default) caps: the warm worker again
    assert out["c"] != out["b"] and out["d"] != out["c"]  # other caps: another worker
    assert out["f"][0] not in (out["a"], out["c"], out["d"])  # a function: an uncapped one
    assert out["f"][1:] == list(resource.getrlimit(resource.RLIMIT_NOFILE))


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ("512MiB", "limits must be a mapping such as {memory: 512MiB"),
        ({"ram": "1GiB"}, "limits has no field 'ram'; use memory, processes, open_files"),
        ({"memory": "lots"}, "limits.memory 'lots' is not a size; write bytes or '512KiB'"),
        ({"memory": 100}, "limits.memory 100 is below 1 MiB"),
        ({"processes": 0}, "limits.processes must be a whole number of 1 or more, got 0"),
        ({"open_files": "many"}, "limits.open_files must be a whole number of 1 or more"),
    ],
)
def test_bad_limits_are_problems_naming_the_step_and_field(limits: Any, problem: str) -> None:
    wf = Workflow("bad")
    wf.add("s", kind="shell", params={"command": "true", "limits": limits})
    (message,) = step_problems(wf, "s")
    assert problem in message
    code = Workflow("bad")
    code.add("s", params={"code": "def run():\n    return 1\n", "limits": limits})
    assert problem in step_problems(code, "s")[0]


def test_limits_on_a_code_step_in_the_runners_process_are_a_problem() -> None:
    wf = Workflow("threads")
    wf.add("s", executor="threads", params={"code": "def run():\n    return 1\n", "limits": {}})
    assert limits_problems({}) == []
    wf2 = Workflow("threads")
    params = {"code": "def run():\n    return 1\n", "limits": {"open_files": 8}}
    wf2.add("s", executor="threads", params=params)
    (message,) = step_problems(wf2, "s")
    assert "limits apply in a worker process, not on executor 'threads'" in message


def test_limits_read_sizes_in_every_unit() -> None:
    assert Limits.read({"memory": "64 MiB", "open_files": 16}) == Limits(64 * 2**20, None, 16)
    assert Limits.read({}) is None
    assert Limits(2**30, 8, 64).describe() == "memory 1 GiB, processes 8, open_files 64"
