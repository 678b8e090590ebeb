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
from pardag.kinds.shell import (
    MAX_OUTPUT,
    TAIL_OUTPUT,
    CommandFailed,
    ShellKind,
    input_env,
    run_command,
)
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


@pytest.mark.parametrize("yields", range(8))
def test_a_cancel_at_any_point_of_the_start_ends_and_kills_the_process(
    tmp_path: Path, yields: int
) -> None:
    """A cancel landing while asyncio still connects the new process's pipes used to hang the
    step for ever (CPython gh-125502): this walks the cancel through the first loop turns of
    the start, one test each, and each must end cancelled with its process group gone."""
    pidfile = tmp_path / "pid"

    async def main() -> None:
        # not exec: a grandchild that holds the pipes open, as `touch x; sleep 30` has
        task = asyncio.ensure_future(run_command(f"echo $$ > {pidfile}; sleep 60; true"))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=20)
        assert done, f"cancelled after {yields} loop turns, the step never ended"
        assert task.cancelled()

    asyncio.run(main())
    if pidfile.exists() and pidfile.read_text().strip():
        assert eventually_gone(int(pidfile.read_text()))


@pytest.mark.timeout(60)
def test_a_timeout_ends_the_step_even_when_a_process_that_left_the_group_holds_its_pipes(
    tmp_path: Path,
) -> None:
    """``setsid cmd &`` leaves the step's process group, so killing the group misses it, and
    it holds the step's stdout until it ends: here, until the test says so. The step must end
    at its timeout all the same (it used to run until that process ended)."""
    release = tmp_path / "release"
    command = (
        f"setsid sh -c 'while [ ! -e {release} ]; do sleep 0.05; done' & echo started; sleep 60"
    )
    try:
        result = run_shell(command, timeout=0.5)
    finally:
        release.touch()  # the escaped process ends itself; the step did not wait for it
    step = result.steps["sh"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepTimeout)


def test_environment_of_the_parent_is_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARDAG_TEST_MARKER", "inherited")
    result = run_shell('echo "{\\"m\\": \\"$PARDAG_TEST_MARKER\\"}"')
    assert result.outputs["sh"] == {"m": os.environ["PARDAG_TEST_MARKER"]}


# --- scripts ----------------------------------------------------------------------------


def run_script(script: str, **step: Any) -> RunResult:
    wf = Workflow("script")
    wf.add("sh", kind="shell", params={"script": script, **step.pop("params", {})}, **step)
    return wf.run()


def test_a_script_runs_line_by_line_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    marker = tmp_path / "after"
    result = run_script(f"echo one\nfalse\ntouch {marker}\n")
    assert result.steps["sh"].state is StepState.FAILED
    assert "code 1" in (result.steps["sh"].reason or "")
    assert not marker.exists()
    ok = run_script('x=2\ny=3\necho "{\\"sum\\": $((x + y))}"')
    assert ok.outputs["sh"] == {"sum": 5}


def test_script_args_are_its_positional_parameters() -> None:
    result = _run_with_params(
        {
            "script": 'printf \'{"first": "%s", "second": "%s", "count": %d}\\n\' "$1" "$2" "$#"',
            "args": ["a b; c", "{{ params.n }}"],
        },
        {"n": 7},
    )
    assert result.outputs["sh"] == {"first": "a b; c", "second": "7", "count": 2}


def test_a_script_with_a_shebang_runs_with_that_interpreter() -> None:
    script = f"#!{sys.executable}\nimport json, sys\nprint(json.dumps({{'argv': sys.argv[1:]}}))\n"
    result = run_script(script, params={"args": ["x", "y"]})
    assert result.outputs["sh"] == {"argv": ["x", "y"]}


def test_the_script_file_is_removed_afterwards() -> None:
    result = run_script('echo "{\\"path\\": \\"$0\\"}"')
    path = Path(result.outputs["sh"]["path"])
    assert path.name.startswith("pardag-")
    assert not path.exists()


def test_stdin_is_empty() -> None:
    result = run_shell("cat; echo done")
    assert result.outputs["sh"]["stdout"] == "done\n"


# --- templates and quoting --------------------------------------------------------------

HOSTILE = ["a b", "$(touch pwned)", "`touch pwned`", "x; touch pwned", "it's", '"', "*", "-n"]


@pytest.mark.parametrize("value", HOSTILE)
def test_templated_values_reach_the_shell_quoted(value: str, tmp_path: Path) -> None:
    result = _run_with_params(
        {"command": "printf '%s' {{ params.value }}", "cwd": str(tmp_path)}, {"value": value}
    )
    assert result.outputs["sh"]["stdout"] == value
    assert not (tmp_path / "pwned").exists()


def _run_with_params(params: dict[str, Any], run_params: dict[str, Any]) -> RunResult:
    wf = Workflow("templated")
    wf.add("sh", kind="shell", params=params)
    return wf.run(params=run_params)


@pytest.mark.parametrize("value", HOSTILE)
def test_args_of_a_command_string_are_quoted(value: str, tmp_path: Path) -> None:
    result = _run_with_params(
        {"command": "printf '%s|'", "args": [value, "{{ params.value }}"], "cwd": str(tmp_path)},
        {"value": value},
    )
    assert result.outputs["sh"]["stdout"] == f"{value}|{value}|"
    assert not (tmp_path / "pwned").exists()


def test_a_script_is_rendered_with_quoting_too(tmp_path: Path) -> None:
    result = _run_with_params(
        {"script": "v={{ params.value }}\nprintf '%s' \"$v\"\n", "cwd": str(tmp_path)},
        {"value": "$(touch pwned) it's"},
    )
    assert result.outputs["sh"]["stdout"] == "$(touch pwned) it's"
    assert not (tmp_path / "pwned").exists()


def test_argv_items_are_rendered_without_quotes() -> None:
    result = _run_with_params(
        {"command": ["printf", "%s", "{{ params.value }}"]}, {"value": "a b 'c'"}
    )
    assert result.outputs["sh"]["stdout"] == "a b 'c'"


def test_a_list_adds_each_item_as_an_argument_only_when_spread() -> None:
    wf = Workflow("list-args")
    wf.add("files", lambda: ["one", "two words"])
    args = ["{{ steps.files.output | spread }}", "{{ steps.files.output }}", "end"]
    wf.add(
        "sh", kind="shell", depends_on=["files"], params={"command": "printf '<%s>'", "args": args}
    )
    assert wf.run().outputs["sh"]["stdout"] == '<one><two words><["one", "two words"]><end>'


def test_a_list_valued_param_in_argv_stays_one_argument(tmp_path: Path) -> None:
    """``pattern=["x", "-exec", "touch", "X", ";"]`` used to become five argv items: ``find``
    then ran ``touch X``. A placeholder is one argument."""
    (tmp_path / "a.txt").write_text("")
    attack = ["x", "-exec", "touch", str(tmp_path / "X"), ";"]
    result = _run_with_params(
        {"command": ["find", str(tmp_path), "-name", "{{ params.pattern }}"]},
        {"pattern": attack},
    )
    assert result.ok
    assert not (tmp_path / "X").exists()


def test_operand_refuses_a_value_a_command_would_read_as_an_option(tmp_path: Path) -> None:
    command = ["printf", "%s", "{{ params.rev | operand }}"]
    assert _run_with_params({"command": command}, {"rev": "main"}).outputs["sh"]["stdout"] == "main"
    refused = _run_with_params({"command": command}, {"rev": f"--output={tmp_path}/X"})
    step = refused.steps["sh"]
    assert step.state is StepState.FAILED
    assert "starts with '-', so the command would read it as an option" in str(step.error)


def test_upstream_outputs_env_and_cwd_are_templated(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    wf = Workflow("env-cwd")
    wf.add("conf", lambda: {"dir": str(tmp_path / "sub"), "greeting": "hello there"})
    wf.add(
        "sh",
        kind="shell",
        depends_on=["conf"],
        params={
            "command": 'echo "{\\"g\\": \\"$GREETING\\", \\"n\\": $N, \\"dir\\": \\"$(pwd)\\"}"',
            "env": {"GREETING": "{{ steps.conf.output.greeting }}", "N": 5},
            "cwd": "{{ inputs.conf.dir }}",
        },
    )
    result = wf.run()
    assert result.outputs["sh"] == {
        "g": "hello there",
        "n": 5,
        "dir": str((tmp_path / "sub").resolve()),
    }


def test_a_template_error_fails_the_step_naming_the_param() -> None:
    result = _run_with_params({"command": "echo {{ params.nmae }}"}, {"name": "x"})
    reason = result.steps["sh"].reason or ""
    assert "step 'sh' params.command" in reason
    assert "key 'nmae' not found" in reason
    assert "did you mean 'name'?" in reason


# --- failures and limits ----------------------------------------------------------------


def test_a_missing_program_is_named() -> None:
    result = run_shell(["pardag-no-such-program", "x"])
    reason = result.steps["sh"].reason or ""
    assert "command 'pardag-no-such-program' not found; check the spelling and PATH" in reason


def test_a_missing_working_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run_shell(["true"], params={"cwd": str(missing)})
    reason = result.steps["sh"].reason or ""
    assert f"the working directory {str(missing)!r} does not exist" in reason


def test_a_command_killed_by_a_signal_says_which() -> None:
    result = run_shell("kill -9 $$")
    assert "was killed by SIGKILL" in (result.steps["sh"].reason or "")


def test_each_stream_keeps_its_head_and_tail_and_says_what_it_dropped() -> None:
    script = (
        "import sys; sys.stdout.write('H' * 1000 + 'x' * 200000 + 'TAIL'); "
        "sys.stderr.write('e' * 10)"
    )
    out = asyncio.run(run_command([sys.executable, "-c", script], limit=1000))
    head, marker, tail = out["stdout"].partition("\n[pardag: ")
    assert head == "H" * 1000
    assert marker
    assert tail.startswith(f"{200004 - TAIL_OUTPUT:,} bytes of stdout dropped after the first")
    assert tail.endswith("x" * (TAIL_OUTPUT - 4) + "TAIL")
    assert out["stderr"] == "e" * 10


def test_the_default_limit_is_ten_mib() -> None:
    size = MAX_OUTPUT + TAIL_OUTPUT + 12345
    script = f"import sys; sys.stdout.write('y' * {size})"
    out = run_shell([sys.executable, "-c", script]).outputs["sh"]["stdout"]
    line = "\n[pardag: 12,345 bytes of stdout dropped after the first 10 MiB]\n"
    head, marker, tail = out.partition(line)
    assert marker
    assert head == "y" * MAX_OUTPUT
    assert tail == "y" * TAIL_OUTPUT


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"command": "x", "script": "y"}, "either command or script, not both"),
        ({"command": ["ls", {"a": 1}]}, "command must be non-empty text or a list of strings"),
        ({"script": "   "}, "script must be non-empty text"),
        ({"command": "x", "args": "a b"}, "args must be a list of strings"),
        ({"command": "x", "env": ["A=1"]}, "env must be a mapping of NAME: value"),
        ({"command": "x", "env": {"BAD-NAME": "1"}}, "'BAD-NAME' is not a valid variable name"),
        ({"command": "x", "env": {"A": [1]}}, "env A must be a string"),
        ({"command": "x", "cwd": 3}, "cwd must be a directory path"),
        ({"command": "echo {{ x }"}, "command: template syntax error"),
        ({"script": "{% if %}"}, "script: template syntax error"),
        ({"command": "x", "args": ["{{ }}"]}, "args: template syntax error"),
    ],
)
def test_bad_params_are_validation_problems(params: dict[str, Any], fragment: str) -> None:
    wf = Workflow("bad")
    wf.add("sh", kind="shell", params=params)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    messages = [p.message for p in info.value.problems]
    assert any(fragment in m for m in messages), messages


def test_fields() -> None:
    assert ShellKind.fields == ("command", "script", "args", "env", "cwd", "shell", "limits")


# --- the shell that runs the text -------------------------------------------------------

BASHISM = 'arr=(a b c); [[ ${#arr[@]} == 3 ]] && echo "{\\"shell\\": \\"$0\\"}"'


@pytest.mark.parametrize(("field", "zero"), [("command", "bash"), ("script", ".sh")])
def test_the_shell_param_picks_what_runs_the_text(field: str, zero: str) -> None:
    wf = Workflow("shells")
    wf.add("bash", kind="shell", params={field: BASHISM, "shell": "bash"})
    wf.add("sh", kind="shell", params={field: BASHISM})
    result = wf.run(on_failure="continue")
    assert result.outputs["bash"]["shell"].endswith(zero)  # $0: bash, or the script's file
    if "bash" not in os.path.realpath("/bin/sh"):  # sh is POSIX here: no arrays
        assert result.steps["sh"].state is StepState.FAILED


def test_a_missing_shell_is_named() -> None:
    result = run_shell("echo hi", params={"shell": "pardag-no-such-shell"})
    reason = result.steps["sh"].reason or ""
    assert "command 'pardag-no-such-shell' not found; check the spelling and PATH" in reason


def test_a_bad_shell_param_is_a_validation_problem() -> None:
    wf = Workflow("bad")
    wf.add("sh", kind="shell", params={"command": "x", "shell": ""})
    with pytest.raises(ValidationError, match="shell must be a program name or path, such as bash"):
        wf.validate()


def test_a_failed_commands_whole_output_is_its_log_while_the_reason_keeps_the_tail(
    tmp_path: Path,
) -> None:
    from pardag.store import open_store

    script = (
        'for n in $(seq 1 400); do echo "test_$n ... FAILED"; done; '
        "printf 'h\\303\\251' >&2; printf 'llo\\n' >&2; exit 1"
    )
    wf = Workflow("loud")
    wf.add("tests", kind="shell", params={"command": script})
    url = str(tmp_path / "runs.db")
    result = wf.run(store=url)
    reason = result.steps["tests"].reason or ""
    assert reason.endswith("command exited with code 1: héllo")  # stderr's tail, as before
    assert "test_31 ... FAILED" not in reason
    with open_store(url) as store:
        pieces = store.get_logs(result.run_id, "tests")
    out = "".join(p.text for p in pieces if p.stream == "stdout")
    assert out == "".join(f"test_{n} ... FAILED\n" for n in range(1, 401))
    assert "".join(p.text for p in pieces if p.stream == "stderr") == "héllo\n"
