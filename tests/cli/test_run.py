"""``pardag run``, its settings and its params, run as a real subprocess on workflow files
written to tmp_path."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pardag.cli import run_params
from pardag.errors import ArgumentError
from tests.cli.inprocess import here
from tests.cli.support import (
    BRANCHES,
    FLOW,
    clean_env,
    interrupted,
    pardag,
    start_run,
    write,
)

FAILING = """\
name: failing
steps:
  broken:
    kind: shell
    command: 'echo "disk full" >&2; exit 3'
  after:
    kind: shell
    depends_on: broken
    command: echo never
  independent:
    kind: shell
    command: echo fine
"""

SLOW = """\
name: slow
steps:
  nap:
    kind: shell
    command: touch {marker}; sleep 30
  after:
    kind: shell
    depends_on: nap
    command: echo never
"""

RUN_KEYS = {"run_id", "workflow", "status", "error", "final_output", "outputs", "steps"}
STEP_KEYS = {
    "state",
    "reason",
    "attempts",
    "started_at",
    "finished_at",
    "duration",
    "error",
    "cached",
}
ANSI = "\x1b["


def settings_of(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``pardag run ARGS --show-settings --json`` in ``cwd``, as a real subprocess."""
    done = pardag(cwd, "run", *args, "--show-settings", "--json", env=env)
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def settings_here(
    monkeypatch: pytest.MonkeyPatch, cwd: Path, *args: str, **env: str
) -> dict[str, Any]:
    """What ``settings_of`` gives, from the same command run in this process (``here``):
    the settings are resolved from the current directory, the environment and the flags
    when the command runs."""
    done = here(monkeypatch, cwd, "run", *args, "--show-settings", "--json", **env)
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


# -- run ----------------------------------------------------------------------------------------


def test_run_succeeds_with_a_plain_table_on_stdout(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml")
    assert done.returncode == 0, done.stderr
    assert ANSI not in done.stderr + done.stdout  # pipes: no colour, no live display
    (first,) = done.stderr.splitlines()  # progress and messages only
    assert re.fullmatch(r"run [0-9a-f]{32}", first)  # the run's id comes first
    lines = done.stdout.splitlines()  # the results are data: stdout
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:5]}
    assert lines[0].split() == [
        "step",
        "state",
        "duration",
        "attempts",
        "reason",
    ]
    assert set(rows) == {"a", "b", "c", "d"}
    assert all(state == "succeeded" and attempts == "1" for state, _, attempts in rows.values())
    assert "run succeeded in " in done.stdout
    assert ": 4 steps (4 succeeded)" in done.stdout
    assert 'output: {"n": 4}' in done.stdout


def test_a_single_step_is_counted_in_the_singular(project: Path) -> None:
    write(project, "one.yaml", "steps:\n  only:\n    kind: shell\n    command: echo hi\n")
    done = pardag(project, "run", "one.yaml")
    assert done.returncode == 0, done.stderr
    assert ": 1 step (1 succeeded)" in done.stdout


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``FLOW`` run once with ``--events events.jsonl --json`` (its directory and stdout), for
    the two tests that read what that one run wrote."""
    project = tmp_path_factory.mktemp("flow_run")
    (project / ".git").mkdir()
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml", "--events", "events.jsonl", "--json")
    assert done.returncode == 0, done.stderr
    return project, done.stdout


def test_run_json_has_the_stable_keys_and_the_outputs(flow_run: tuple[Path, str]) -> None:
    _, stdout = flow_run
    result = json.loads(stdout)
    assert set(result) >= RUN_KEYS
    assert result["workflow"] == "demo"
    assert result["status"] == "succeeded"
    assert result["error"] is None
    assert result["final_output"] == {"n": 4}
    assert result["outputs"] == {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}, "d": {"n": 4}}
    assert list(result["steps"]) == ["a", "b", "c", "d"]
    for step in result["steps"].values():
        assert set(step) == STEP_KEYS
        assert step["state"] == "succeeded" and step["attempts"] == 1 and step["error"] is None
        assert step["duration"] == pytest.approx(step["finished_at"] - step["started_at"])
    steps = result["steps"]
    assert steps["a"]["finished_at"] <= steps["b"]["started_at"]
    assert max(steps["b"]["finished_at"], steps["c"]["finished_at"]) <= steps["d"]["started_at"]
    assert result["speedup"] is None or result["speedup"] >= 1.1  # see tests/test_progress.py


ODD_OUTPUT = """\
steps:
  odd:
    code: |
      def run():
          return {1: {3, 2}, "raw": b"bytes", "nan": float("nan"), "pair": (1, 2), "obj": object}
"""


def test_json_output_is_strict_json_whatever_the_steps_return(project: Path) -> None:
    write(project, "odd.yaml", ODD_OUTPUT)
    done = pardag(project, "run", "odd.yaml", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout, parse_constant=lambda name: pytest.fail(name))
    assert result["outputs"]["odd"] == {
        "1": [2, 3],
        "raw": "bytes",
        "nan": "nan",
        "pair": [1, 2],
        "obj": "<class 'object'>",
    }


def test_events_file_has_every_event_in_order(flow_run: tuple[Path, str]) -> None:
    project, stdout = flow_run
    events = [json.loads(line) for line in (project / "events.jsonl").read_text().splitlines()]
    assert events[0]["kind"] == "run_started" and events[0]["step"] is None
    assert events[-1] == {**events[-1], "kind": "run_finished", "data": {"status": "succeeded"}}
    assert {e["run"] for e in events} == {json.loads(stdout)["run_id"]}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    def at(kind: str, step: str) -> int:
        return next(n for n, e in enumerate(events) if e["kind"] == kind and e["step"] == step)

    for step in "abcd":
        assert at("step_ready", step) < at("step_started", step) < at("step_succeeded", step)
    assert at("step_succeeded", "a") < at("step_ready", "b")
    assert at("step_succeeded", "b") < at("step_ready", "d")
    assert at("step_succeeded", "c") < at("step_ready", "d")
    assert events[at("step_started", "a")]["attempt"] == 1


def test_set_params_reach_the_steps(project: Path) -> None:
    write(project, "branches.yaml", BRANCHES)
    default = json.loads(pardag(project, "run", "branches.yaml", "--json").stdout)
    assert default["outputs"]["small"] == {"size": "small"}
    assert default["steps"]["big"]["state"] == "skipped"
    # 10 is parsed as JSON (a number), and limits.floor from the file's params is kept
    done = pardag(project, "run", "branches.yaml", "--json", "--set", "limits.rows=10")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outputs"]["big"] == {"size": "big"}
    assert result["steps"]["small"]["state"] == "skipped"
    assert result["steps"]["small"]["reason"].startswith("branch not taken")


def test_failed_run_exits_1_naming_the_step_without_a_traceback(project: Path) -> None:
    write(project, "failing.yaml", FAILING)
    done = pardag(project, "run", "failing.yaml", "--on-failure", "continue")
    assert done.returncode == 1
    assert "error: step 'broken' failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert ANSI not in done.stderr
    assert "pardag show " in done.stderr and " broken  for the traceback" in done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert lines["after"].split()[1] == "skipped" and "upstream failed: broken" in lines["after"]
    assert lines["independent"].split()[1] == "succeeded"  # --on-failure continue reached it


def test_debug_shows_the_traceback(project: Path) -> None:
    write(project, "failing.yaml", FAILING)
    done = pardag(project, "run", "failing.yaml", "--debug")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "error: step 'broken' failed" in done.stderr


def test_run_timeout_flag_times_the_run_out(project: Path) -> None:
    marker = project / "started"
    write(project, "slow.yaml", SLOW.format(marker=marker))
    done = pardag(project, "run", "slow.yaml", "--timeout", "200ms", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "timed_out"
    assert result["error"].startswith("run timed out after 0.2s")
    assert result["steps"]["after"]["state"] == "cancelled"


def test_ctrl_c_cancels_the_run_and_exits_130(project: Path) -> None:
    marker = project / "started"
    write(project, "slow.yaml", SLOW.format(marker=marker))
    code, stdout, stderr = interrupted(project, ["run", "slow.yaml", "--json"], marker)
    assert code == 130
    assert "Traceback" not in stderr
    assert "error: run cancelled: by Ctrl-C" in stderr
    assert "press Ctrl-C again" not in stderr  # nothing ran on a thread: nothing to wait for
    result = json.loads(stdout)
    assert result["status"] == "cancelled"
    for step in ("nap", "after"):
        assert result["steps"][step]["state"] == "cancelled"
        assert result["steps"][step]["reason"] == "cancelled by Ctrl-C"


def test_pardag_cancel_cancels_a_live_run_and_says_so_in_each_step(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = project / "started"
    proc, run_id = start_run(project, "slow.yaml", SLOW.format(marker=marker))
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        done = pardag(project, "cancel", run_id)
        assert done.returncode == 0, done.stderr
        assert f"asked process {proc.pid} to cancel run {run_id}" in done.stderr
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    shown = json.loads(here(monkeypatch, project, "show", run_id, "--json").stdout)
    assert shown["status"] == "cancelled"
    assert shown["error"] == "run cancelled: by `pardag cancel` (SIGTERM)"
    for step in ("nap", "after"):
        assert shown["steps"][step]["reason"] == "cancelled by `pardag cancel` (SIGTERM)"


def test_fail_fast_says_which_step_failed_in_each_cancelled_step(project: Path) -> None:
    broken = "steps:\n  broken:\n    kind: shell\n    command: exit 3"
    failing = SLOW.format(marker=project / "started").replace("steps:", broken, 1)
    write(project, "failing.yaml", failing)
    result = json.loads(pardag(project, "run", "failing.yaml", "--json").stdout)
    assert result["status"] == "failed"
    for step in ("nap", "after"):
        assert result["steps"][step]["reason"] == "cancelled: fail-fast after step 'broken' failed"


STUCK = """\
name: stuck
steps:
  stuck:
    executor: threads
    code: |
      def run():
          import pathlib, time
          pathlib.Path({marker!r}).touch()
          time.sleep(60)  # a thread: Ctrl-C cannot stop it, the run waits for it
"""


def test_a_second_ctrl_c_exits_at_once_with_130(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = project / "started"
    write(project, "stuck.yaml", STUCK.format(marker=str(marker)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pardag", "run", "stuck.yaml", "--events", "events.jsonl"],
        cwd=project,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # cancels the run, which then waits for the thread
        assert proc.stderr is not None
        run_id = proc.stderr.readline().split()[1]
        said = proc.stderr.readline()  # the first press was handled, and it says so
        assert said == (
            f"pardag: run {run_id[:12]} cancelled by Ctrl-C; waiting for step 'stuck' to return "
            "(on threads, which cannot be stopped); press Ctrl-C again to leave now\n"
        )
        proc.send_signal(signal.SIGINT)  # leaves without waiting
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert (
        "error: left at the second Ctrl-C without waiting for the steps still running; "
        "the run is recorded as cancelled"
    ) in stderr
    shown = json.loads(here(monkeypatch, project, "show", run_id, "--json").stdout)
    assert (shown["status"], shown["owner_gone"]) == ("cancelled", False)  # not left running
    assert shown["steps"]["stuck"]["state"] == "cancelled"
    assert shown["steps"]["stuck"]["reason"] == "cancelled by Ctrl-C"


def test_live_progress_only_on_a_terminal(project: Path) -> None:
    """With stderr on a pseudo-terminal the live view draws (with colour); see above for pipes."""
    import pty

    write(project, "flow.yaml", FLOW)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pardag", "run", "flow.yaml"],
        cwd=project,
        env=clean_env(TERM="xterm-256color"),
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        summary = proc.stdout.read().decode()
    finally:
        proc.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert ANSI in text
    assert "demo" in text and "/4" in text  # the live header: name and the count of steps
    assert "run succeeded" in summary  # then the summary, on stdout (a pipe: plain)
    assert ANSI not in summary


def test_live_view_counts_what_runs_and_what_waits_for_a_pool() -> None:
    """The live view's text at the moment step b runs and c waits for the pool they share."""
    import io

    from rich.console import Console

    import pardag
    from pardag.progress import LiveProgress

    console = Console(file=io.StringIO(), width=120, color_system=None)
    wf = pardag.Workflow("pooled", pools={"db": 1})
    live = LiveProgress(console, wf.name, 4)
    seen: list[str] = []

    def snapshot(a: int) -> int:  # runs while holding the pool: its sibling c must wait
        deadline = time.monotonic() + 10
        while "c" not in live.waiting and time.monotonic() < deadline:  # the event is on its way
            time.sleep(0.01)
        with console.capture() as captured:
            console.print(live.render())
        seen.append(captured.get())
        return a

    wf.add("a", lambda: 1)
    wf.add("b", snapshot, depends_on=["a"], resources={"db": 1})
    wf.add("c", lambda a: a, depends_on=["a"], resources={"db": 1})
    wf.add("d", lambda b, c: b + c, critical=False, when=lambda b, c: False)
    assert wf.run(listeners=[live]).status == "succeeded"
    (text,) = seen
    assert "pooled" in text and "1/4" in text
    assert "running 1 · waiting 1 · succeeded 1 · failed 0 · skipped 0" in text
    assert "running: b" in text
    assert "waiting: c (for pool 'db' (all 1 in use))" in text
    assert live.counts == {"succeeded": 3, "failed": 0, "skipped": 1, "cancelled": 0}
    assert not (live.running or live.ready or live.waiting)


def test_the_pardag_script_imports_step_functions_from_the_current_directory(
    project: Path,
) -> None:
    write(project, "mysteps.py", "def double(inputs):\n    return 2 * inputs['a']['n']\n")
    write(
        project, "flow.yaml", FLOW + "  twice:\n    depends_on: a\n    function: mysteps:double\n"
    )
    script = Path(sys.executable).with_name("pardag")
    done = subprocess.run(
        [str(script), "run", "flow.yaml", "--json"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["twice"] == 2


# -- settings -----------------------------------------------------------------------------------


def test_show_settings_names_each_layer(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "pardag.toml", 'mode = "levels"\nmax_concurrency = 3\ntimeout = "1m"\n')
    write(project, "plain.yaml", FLOW)
    write(
        project,
        "flow.yaml",
        FLOW.replace("steps:", "execution:\n  max_concurrency: 4\n  on_failure: continue\nsteps:"),
    )
    defaults = settings_of(project, "plain.yaml")  # one real process; the rest in this one
    assert defaults["mode"] == {"value": "levels", "source": "pardag.toml"}
    assert defaults["max_concurrency"] == {"value": 3, "source": "pardag.toml"}
    assert defaults["timeout"] == {"value": 60.0, "source": "pardag.toml"}
    assert defaults["executor"] == {"value": None, "source": "default"}

    declared = settings_here(monkeypatch, project, "flow.yaml")
    assert declared["max_concurrency"] == {"value": 4, "source": "workflow file flow.yaml"}
    assert declared["on_failure"] == {"value": "continue", "source": "workflow file flow.yaml"}
    assert declared["mode"] == {"value": "levels", "source": "pardag.toml"}

    env = {"PARDAG_MAX_CONCURRENCY": "5", "PARDAG_EXECUTION_MODE": "sequential"}
    from_env = settings_here(monkeypatch, project, "flow.yaml", **env)
    assert from_env["max_concurrency"] == {"value": 5, "source": "PARDAG_MAX_CONCURRENCY"}
    assert from_env["mode"] == {"value": "sequential", "source": "PARDAG_EXECUTION_MODE"}

    flags = settings_here(
        monkeypatch, project, "flow.yaml", "--max-concurrency", "6", "--executor", "processes"
    )
    assert flags["max_concurrency"] == {"value": 6, "source": "--max-concurrency"}
    assert flags["executor"] == {"value": "processes", "source": "--executor"}
    both = settings_here(monkeypatch, project, "flow.yaml", "--max-concurrency", "6", **env)
    assert both["max_concurrency"] == {"value": 6, "source": "--max-concurrency"}


def test_show_settings_as_a_table(project: Path) -> None:
    write(project, "pyproject.toml", '[tool.pardag]\nmode = "sequential"\n')
    (project / "sub").mkdir()
    write(project / "sub", "flow.yaml", FLOW)
    done = pardag(project / "sub", "run", "flow.yaml", "--show-settings", "--mode", "levels")
    assert done.returncode == 0, done.stderr
    rows = [line.split(None, 2) for line in done.stdout.splitlines()]
    assert rows[0] == ["setting", "value", "source"]
    assert ["mode", "levels", "--mode"] in rows
    assert any(r[0] == "max_concurrency" and r[2].endswith("default") for r in rows)
    done = pardag(project / "sub", "run", "flow.yaml", "--show-settings")
    assert "../pyproject.toml [tool.pardag]" in done.stdout


def test_show_settings_names_the_store_runs_go_to(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default store is the one ``pardag run`` records to, not "none"; a URL's password
    is hidden and a path keeps its case."""
    write(project, "flow.yaml", FLOW)
    table = pardag(project, "run", "flow.yaml", "--show-settings").stdout
    assert ["store", ".pardag/runs.db", "default"] in [line.split() for line in table.splitlines()]
    assert settings_here(monkeypatch, project, "flow.yaml")["store"] == {
        "value": ".pardag/runs.db",
        "source": "default",
    }
    assert pardag(project, "run", "flow.yaml").returncode == 0
    assert (project / ".pardag" / "runs.db").is_file()  # where it said
    url = "postgresql://me:s3cret@db.example/runs"
    shown = settings_here(monkeypatch, project, "flow.yaml", PARDAG_STORE=url)["store"]
    assert shown["source"] == "PARDAG_STORE" and "s3cret" not in shown["value"]
    table = pardag(project, "run", "flow.yaml", "--show-settings", env=clean_env(PARDAG_STORE=url))
    assert "s3cret" not in table.stdout and "db.example/runs" in table.stdout
    assert settings_here(monkeypatch, project, "flow.yaml", "--store", "Runs/My.db")["store"] == {
        "value": "Runs/My.db",
        "source": "--store",
    }
    table = pardag(project, "run", "flow.yaml", "--show-settings", "--store", "Runs/My.db").stdout
    assert "Runs/My.db" in table


def test_the_settings_reach_the_run(project: Path) -> None:
    """mode = "sequential" in pardag.toml really runs one step at a time."""
    write(project, "pardag.toml", 'mode = "sequential"\n')
    write(project, "flow.yaml", FLOW)
    result = json.loads(pardag(project, "run", "flow.yaml", "--json").stdout)
    steps = result["steps"]
    order = sorted(steps, key=lambda s: steps[s]["started_at"])
    for earlier, later in itertools.pairwise(order):  # one at a time
        assert steps[earlier]["finished_at"] <= steps[later]["started_at"]


def test_invalid_environment_value_exits_2_with_the_exact_message(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml", env=clean_env(PARDAG_MAX_CONCURRENCY="abc"))
    assert done.returncode == 2
    assert done.stderr == (
        "error: Invalid PARDAG_MAX_CONCURRENCY value 'abc': expected an integer >= 0\n"
    )


def test_invalid_config_file_value_names_file_and_line(project: Path) -> None:
    write(project, "pardag.toml", '[execution]\nmode = "fast"\n')
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml")
    assert done.returncode == 2
    assert (
        "Invalid mode value 'fast' in pardag.toml:2: expected one of dynamic, levels, sequential"
        in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_unknown_pardag_variable_warns_and_runs(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml", env=clean_env(PARDAG_MAX_CONCURENCY="2"))
    assert done.returncode == 0
    assert (
        "warning: unknown environment variable PARDAG_MAX_CONCURENCY is ignored; "
        "did you mean PARDAG_MAX_CONCURRENCY?" in done.stderr
    )


def test_pools_merge_by_name_across_layers(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "pardag.toml", "[pools]\ndb = 3\napi = 2\n")
    write(project, "flow.yaml", FLOW.replace("steps:", "execution:\n  pools: {db: 1}\nsteps:"))
    shown = settings_here(monkeypatch, project, "flow.yaml", PARDAG_POOLS='{"gpu": 1}')
    assert shown["pools.db"] == {"value": 1, "source": "workflow file flow.yaml"}
    assert shown["pools.api"] == {"value": 2, "source": "pardag.toml"}
    assert shown["pools.gpu"] == {"value": 1, "source": "PARDAG_POOLS"}


def test_pools_from_the_config_file_count_for_validation(project: Path) -> None:
    write(project, "pardag.toml", "[pools]\ndb = 1\n")
    flow = FLOW.replace("command: echo '{\"n\":2}'", "command: echo '{\"n\":2}'\n    resources:")
    write(project, "flow.yaml", flow.replace("    resources:", "    resources: {db: 1}"))
    assert pardag(project, "validate", "flow.yaml").returncode == 0


# -- params -------------------------------------------------------------------------------------


def test_run_params_parse_json_and_nest() -> None:
    defaults = {"region": "eu", "limits": {"rows": 1, "floor": 5}}
    params = run_params(
        defaults,
        ["limits.rows=10", "region=us", "tags=[1, 2]", "note=hello world", "zip=007", "x.y.z=null"],
    )
    assert params == {
        "region": "us",
        "limits": {"rows": 10, "floor": 5},
        "tags": [1, 2],
        "note": "hello world",  # not JSON: kept as text
        "zip": "007",
        "x": {"y": {"z": None}},
    }
    assert defaults["limits"] == {"rows": 1, "floor": 5}  # the workflow's own are untouched


def test_run_params_refuse_a_key_inside_a_value() -> None:
    with pytest.raises(ArgumentError, match="param 'region' is 'eu', not a mapping"):
        run_params({"region": "eu"}, ["region.name=x"])
    with pytest.raises(ArgumentError, match="expected key=value"):
        run_params({}, ["=3"])


DEPLOY = """\
name: deploy
params:
  env: dev
steps:
  go:
    kind: shell
    command: "echo deploying to {{ params.env }}"
"""


def test_set_of_a_param_the_file_does_not_declare_is_an_error(project: Path) -> None:
    write(project, "deploy.yaml", DEPLOY)
    done = pardag(project, "run", "deploy.yaml", "--set", "enviro=prod")
    assert done.returncode != 0
    assert "--set enviro=prod: workflow 'deploy' has no param 'enviro'" in done.stderr
    assert "did you mean 'env'?" in done.stderr and "Traceback" not in done.stderr
    assert "deploying" not in done.stdout + done.stderr
    ok = pardag(project, "run", "deploy.yaml", "--json", "--set", "env=prod")
    assert json.loads(ok.stdout)["outputs"]["go"]["stdout"] == "deploying to prod\n"


def test_run_params_refuse_what_the_workflow_does_not_take() -> None:
    def takes(name: str) -> str | None:
        return None if name == "env" else f"no param {name!r}"

    assert run_params({"env": "dev"}, ["env=prod"], takes) == {"env": "prod"}
    with pytest.raises(ArgumentError, match=r"--set enviro\.x=1: no param 'enviro'"):
        run_params({"env": "dev"}, ["enviro.x=1"], takes)
