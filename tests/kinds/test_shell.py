"""The ``shell`` kind: output from a JSON line or the raw streams, failures, inputs as env."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pardag import RunResult, StepFailed, StepState, StepTimeout, ValidationError, Workflow
from pardag.kinds.shell import CommandFailed, input_env, run_command
from tests.support import eventually_gone, pid_gone

pytestmark = pytest.mark.timeout(60)


def run_shell(command: str | list[str], **step: Any) -> RunResult:
    wf = Workflow("shell")
    wf.add("sh", kind="shell", params={"command": command, **step.pop("params", {})}, **step)
    return wf.run()


def test_first_json_object_line_is_the_output() -> None:
    result = run_shell(
        "echo starting; echo '[1, 2]'; echo '{broken'; echo '{\"n\": 3}'; echo '{\"n\": 4}'"
    )
    assert result.ok
    assert result.outputs["sh"] == {"n": 3}


def test_without_a_json_line_the_output_is_the_streams_and_exit_code() -> None:
    result = run_shell("echo hello; echo warning >&2")
    assert result.outputs["sh"] == {"stdout": "hello\n", "stderr": "warning\n", "exit_code": 0}


def test_non_zero_exit_fails_with_the_tail_of_stderr() -> None:
    result = run_shell("echo progress; echo 'disk full' >&2; exit 3")
    assert result.status == "failed"
    step = result.steps["sh"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepFailed)
    assert isinstance(step.error.cause, CommandFailed)
    assert "code 3" in (step.reason or "")
    assert "disk full" in (step.reason or "")


def test_only_the_tail_of_a_long_stderr_is_kept() -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('x' * 50000 + 'THE-END'); sys.exit(1)",
    ]
    result = run_shell(command)
    reason = result.steps["sh"].reason or ""
    assert "THE-END" in reason
    assert len(reason) < 5000


def test_stdout_is_the_message_when_stderr_is_empty() -> None:
    result = run_shell("echo 'only on stdout'; exit 2")
    assert "only on stdout" in (result.steps["sh"].reason or "")


def test_command_as_a_list_of_arguments_is_not_split_by_a_shell() -> None:
    result = run_shell(["printf", "%s\\n", '{"words": "a b; echo injected"}'])
    assert result.outputs["sh"] == {"words": "a b; echo injected"}


def test_inputs_arrive_as_input_env_variables() -> None:
    wf = Workflow("env")
    wf.add("my-step.v2", lambda: {"x": 1, "s": "two words"})
    wf.add("count", lambda: 7)
    script = (
        "import json, os; print(json.dumps({"
        "'step': json.loads(os.environ['INPUT_MY_STEP_V2']), "
        "'count': json.loads(os.environ['INPUT_COUNT'])}))"
    )
    wf.add(
        "sh",
        kind="shell",
        depends_on=["my-step.v2", "count"],
        params={"command": [sys.executable, "-c", script]},
    )
    result = wf.run()
    assert result.outputs["sh"] == {"step": {"x": 1, "s": "two words"}, "count": 7}


def test_input_env_names_and_values() -> None:
    env = input_env({"load-data.v1": [1, 2], "x": None, "when": "now"})
    assert env == {"INPUT_LOAD_DATA_V1": "[1, 2]", "INPUT_X": "null", "INPUT_WHEN": '"now"'}
    assert json.loads(input_env({"t": object()})["INPUT_T"]).startswith("<object")


def test_env_and_cwd_params(tmp_path: Path) -> None:
    result = run_shell(
        'echo "{\\"greeting\\": \\"$GREETING\\", \\"dir\\": \\"$(pwd)\\"}"',
        params={"env": {"GREETING": "hi"}, "cwd": str(tmp_path)},
    )
    assert result.outputs["sh"] == {"greeting": "hi", "dir": str(tmp_path.resolve())}


def test_shell_output_feeds_a_python_step() -> None:
    wf = Workflow("mixed")
    wf.add("sh", kind="shell", params={"command": "echo '{\"rows\": 41}'"})
    wf.add("plus_one", lambda sh: sh["rows"] + 1)
    assert wf.run().final_output == 42


def test_missing_command_is_a_validation_problem() -> None:
    wf = Workflow("no-command")
    wf.add("sh", kind="shell")
    wf.add("empty", kind="shell", params={"command": ""})
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert sorted(p.step for p in info.value.problems) == ["empty", "sh"]
    assert all("command" in p.message for p in info.value.problems)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A background grandchild of the shell dies with it."""
    pidfile = tmp_path / "grandchild"
    command = f"sleep 60 & echo $! > {pidfile}; wait"
    t0 = time.monotonic()
    result = run_shell(command, timeout=0.5)
    assert time.monotonic() - t0 < 30
    assert isinstance(result.steps["sh"].error, StepTimeout)
    pid = int(pidfile.read_text())
    assert eventually_gone(pid), f"grandchild {pid} survived the timeout"


def test_run_command_directly() -> None:
    out = asyncio.run(run_command(["sh", "-c", "echo '{\"ok\": true}'"]))
    assert out == {"ok": True}
    with pytest.raises(CommandFailed, match="code 5"):
        asyncio.run(run_command("exit 5"))


def test_cancelling_run_command_kills_the_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    async def main() -> None:
        task = asyncio.ensure_future(run_command(f"echo $$ > {pidfile}; exec sleep 60"))
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert pid_gone(int(pidfile.read_text()))


def test_environment_of_the_parent_is_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARDAG_TEST_MARKER", "inherited")
    result = run_shell('echo "{\\"m\\": \\"$PARDAG_TEST_MARKER\\"}"')
    assert result.outputs["sh"] == {"m": os.environ["PARDAG_TEST_MARKER"]}
