"""The run-store commands, through real ``pardag`` processes: runs, show, logs, resume."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

import pardag as pardag_api
from tests.cli.inprocess import here
from tests.cli.support import clean_env, pardag, start_run, write

FLOW = """\
name: recorded
steps:
  first:
    kind: shell
    command: echo '{"n":1}'
  second:
    kind: shell
    depends_on: first
    command: echo '{"n":2}'
"""

SLOW = """\
name: slow
steps:
  a:
    kind: shell
    command: echo a >> ledger && echo '{"done":"a"}'
  b:
    kind: shell
    depends_on: a
    script: |
      echo b >> ledger
      if [ ! -e started ]; then touch started; sleep 30; fi
      echo '{"done":"b"}'
  c:
    kind: shell
    depends_on: b
    command: echo c >> ledger && echo '{"done":"c"}'
"""


class Recorded(NamedTuple):
    """A project whose store holds one finished run, and what ``pardag run`` said of it."""

    project: Path
    done: subprocess.CompletedProcess[str]
    run_id: str


def _project(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory to run in, shared by a module's tests (``project``, module-scoped)."""
    project = tmp_path_factory.mktemp(name)
    (project / ".git").mkdir()
    return project


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """``FLOW`` run once (with ``--events events.jsonl --json``) for the tests that only read
    the run it records: ``show``, ``logs``, ``runs`` and a refused ``resume`` change nothing."""
    project = _project(tmp_path_factory, "recorded")
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml", "--events", "events.jsonl", "--json")
    assert done.returncode == 0, done.stderr
    return Recorded(project, done, json.loads(done.stdout)["run_id"])


def test_run_records_and_show_gives_the_keys_of_run_json(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, done = recorded.project, recorded.done
    ran = json.loads(done.stdout)
    assert done.stderr.splitlines()[0] == f"run {ran['run_id']}"
    assert (project / ".pardag" / "runs.db").exists()

    listed = here(monkeypatch, project, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["run_id"] == ran["run_id"] and row["status"] == "succeeded"

    shown = here(monkeypatch, project, "show", ran["run_id"][:8], "--json")
    assert shown.returncode == 0, shown.stderr
    recorded = json.loads(shown.stdout)
    assert set(recorded) - {"owner_gone"} <= set(ran)  # owner_gone: a recorded run's alone
    assert set(recorded) >= {"run_id", "status", "steps", "outputs", "owner_gone"}
    assert recorded["outputs"] == ran["outputs"] == {"first": {"n": 1}, "second": {"n": 2}}
    assert recorded["final_output"] == {"n": 2}
    for sid, step in recorded["steps"].items():
        assert set(step) == set(ran["steps"][sid])
        assert step["state"] == ran["steps"][sid]["state"] == "succeeded"


def test_logs_print_the_events_of_a_step_in_order(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = here(monkeypatch, recorded.project, "logs", recorded.run_id, "second", "--events")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["kind"] for e in lines] == ["step_ready", "step_started", "step_succeeded"]
    assert all(e["step"] == "second" for e in lines)
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)


def test_asking_about_a_run_that_does_not_exist_says_so(recorded: Recorded) -> None:
    for command in (["show", "abcdef123"], ["logs", "abcdef123"], ["resume", "abcdef123"]):
        done = pardag(recorded.project, *command)  # a store that holds another run
        assert done.returncode == 2
        assert "there is no run 'abcdef123' in the run store" in done.stderr
        assert "Traceback" not in done.stderr


def test_resuming_a_finished_run_says_so(recorded: Recorded) -> None:
    run_id = recorded.run_id
    done = pardag(recorded.project, "resume", run_id)
    assert done.returncode == 2
    assert f"run {run_id} already finished: succeeded" in done.stderr


def test_an_unreachable_store_is_named_with_its_password_masked(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    url = "postgresql://someone:secret@127.0.0.1:1/nowhere"
    done = pardag(project, "run", "flow.yaml", "--store", url)
    assert done.returncode != 0
    assert "someone:***@127.0.0.1:1" in done.stderr
    assert "secret" not in done.stderr and "Traceback" not in done.stderr


def test_kill_9_during_a_run_then_resume_finishes_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, _ = start_run(project, "flow.yaml", SLOW)
    deadline = time.monotonic() + 30
    while not (project / "started").exists():
        assert time.monotonic() < deadline, "step b never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its shell steps, at once
    proc.communicate(timeout=30)
    listed = json.loads(here(monkeypatch, project, "runs", "--json").stdout)
    assert [r["status"] for r in listed] == ["running"]
    write(project, "flow.yaml", "not: a workflow\n")  # resume runs the recorded snapshot
    done = pardag(project, "resume", listed[0]["run_id"][:10], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["c"] == {"done": "c"}
    assert (project / "ledger").read_text().split() == ["a", "b", "b", "c"]


WAITING = """\
name: {name}
steps:
  ok:
    kind: approval
    prompt: Ship it?
    params: {{timeout: {timeout}, on_timeout: approve, default: {{target: staging}}}}
  ship:
    kind: shell
    depends_on: ok
    command: |
      echo '{{"shipped": true}}'
"""


def test_resume_due_applies_on_timeout_to_the_paused_runs_whose_wait_is_over(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(project, "soon.yaml", WAITING.format(name="soon", timeout="0.2s"))
    write(project, "later.yaml", WAITING.format(name="later", timeout="1h"))
    done = pardag(project, "run", "soon.yaml", "--json")
    assert done.returncode == 3, done.stderr  # paused: nothing else to do
    ids = {"soon": json.loads(done.stdout)["run_id"], "later": paused_here(project, "later")}
    time.sleep(0.3)  # let the short wait pass; no timing is asserted
    due = pardag(project, "resume", "--due", "--json")
    assert due.returncode == 0, due.stderr
    resumed = json.loads(due.stdout)
    assert resumed["run_id"] == ids["soon"]
    assert resumed["outputs"] == {"ok": {"target": "staging"}, "ship": {"shipped": True}}
    later = json.loads(here(monkeypatch, project, "show", ids["later"], "--json").stdout)
    assert later["status"] == "paused"  # its hour is not over: left alone
    again = pardag(project, "resume", "--due")
    assert again.returncode == 0, again.stderr
    assert "no paused run has an approval wait that is over" in again.stderr


def paused_here(project: Path, name: str) -> str:
    """The id of a run of ``NAME.yaml`` made in this process, recorded where ``pardag run``
    in ``project`` records (``.pardag/runs.db``), which must pause: for tests of what reads
    or resumes a paused run (that ``pardag run`` pauses and exits 3 is checked above)."""
    store = project / ".pardag" / "runs.db"
    store.parent.mkdir(exist_ok=True)
    result = pardag_api.load(project / f"{name}.yaml").run(store=str(store))
    assert result.status is pardag_api.RunStatus.PAUSED, result.error
    return result.run_id


def test_resume_takes_a_run_id_or_due(project: Path) -> None:
    for args in ((), ("abcdef", "--due")):
        done = pardag(project, "resume", *args)
        assert done.returncode == 2
        assert "give a run id, or --due (not both)" in done.stderr


GATED = """\
name: gated
steps:
  wait:
    kind: shell
    command: while [ ! -e go ]; do sleep 0.05; done; echo '{"waited":true}'
  after:
    kind: shell
    depends_on: wait
    command: echo '{"after":true}'
"""


def test_logs_follow_prints_events_as_they_come_until_the_run_ends(project: Path) -> None:
    run, run_id = _start_gated(project)
    follow = _background(project, "logs", run_id, "--follow")
    try:
        assert follow.stdout is not None
        first = [json.loads(follow.stdout.readline()) for _ in range(3)]
        # the run is held at 'wait': what came so far was printed, and the follower waits on
        assert [e["kind"] for e in first] == ["run_started", "step_ready", "step_started"]
        assert follow.poll() is None
        (project / "go").touch()
        rest, err = follow.communicate(timeout=30)
    finally:
        (project / "go").touch()
        run.communicate(timeout=30)
        follow.kill()
    assert follow.returncode == 0, err
    events = [json.loads(line) for line in rest.splitlines()]
    assert [e["seq"] for e in first + events] == list(range(1, len(events) + 4))
    assert events[-1]["kind"] == "run_finished"
    assert ("step_succeeded", "after") in [(e["kind"], e["step"]) for e in events]


TALKING = """\
name: talking
steps:
  talk:
    kind: shell
    command: echo first line; while [ ! -e go ]; do sleep 0.05; done; echo second line
"""


def test_logs_follow_of_a_step_shows_a_line_while_the_step_still_runs(project: Path) -> None:
    """The step prints one line, then waits in silence: --follow must show that line before
    the step ends (a log hands on what waits shortly after a write, not only at the end)."""
    run, run_id = start_run(project, "talking.yaml", TALKING)
    follow = _background(project, "logs", run_id, "talk", "--follow")
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "--- talk, attempt 1 ---\n"
        assert follow.stdout.readline() == "first line\n"
        assert follow.poll() is None and run.poll() is None  # the step is still waiting
        (project / "go").touch()
        rest, err = follow.communicate(timeout=30)
    finally:
        (project / "go").touch()
        run.communicate(timeout=30)
        follow.kill()
    assert follow.returncode == 0, err
    assert rest == "second line\n"


def test_logs_follow_of_a_run_whose_process_died_says_how_to_finish_it(project: Path) -> None:
    proc, run_id = start_run(project, "flow.yaml", SLOW)
    deadline = time.monotonic() + 30
    while not (project / "started").exists():
        assert time.monotonic() < deadline, "step b never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    done = pardag(project, "logs", run_id, "--follow")
    assert done.returncode == 1
    assert f"run {run_id}: its process is gone; `pardag resume {run_id[:12]}`" in done.stderr
    assert json.loads(done.stdout.splitlines()[0])["kind"] == "run_started"


def _background(project: Path, *args: str) -> subprocess.Popen[str]:
    """``pardag ARGS`` running beside the test, its output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "pardag", *args],
        cwd=project,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_gated(project: Path) -> tuple[subprocess.Popen[str], str]:
    """``gated.yaml`` running in the background, held at step 'wait' until ``go`` exists."""
    return start_run(project, "gated.yaml", GATED)


def test_watch_waits_for_the_run_then_shows_it(project: Path) -> None:
    run, run_id = _start_gated(project)
    watch = _background(project, "watch", run_id[:8])
    try:
        time.sleep(0.5)  # give it time to finish early, which it must not do
        assert watch.poll() is None  # the run is held at 'wait': still watching
        (project / "go").touch()
        out, err = watch.communicate(timeout=30)
    finally:
        (project / "go").touch()
        run.communicate(timeout=30)
        watch.kill()
    assert watch.returncode == 0, err
    assert out.splitlines()[0].startswith(f"run {run_id}  gated  succeeded")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert rows == {"wait": "succeeded", "after": "succeeded"}


def test_watch_on_a_terminal_shows_the_live_view(project: Path) -> None:
    import pty

    run, run_id = _start_gated(project)
    main, child = pty.openpty()
    watch = subprocess.Popen(
        [sys.executable, "-m", "pardag", "watch", run_id],
        cwd=project,
        env=clean_env(TERM="xterm"),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"running: wait" not in seen:  # the live view names the running step
            assert time.monotonic() < deadline, seen[-2000:]
            if select.select([main], [], [], 0.1)[0]:
                seen += os.read(main, 4096)
        (project / "go").touch()
        while True:
            assert time.monotonic() < deadline, seen[-2000:]
            if not select.select([main], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed its end: it exited
                break
            if not chunk:
                break
            seen += chunk
        watch.wait(timeout=30)
    finally:
        (project / "go").touch()
        run.communicate(timeout=30)
        watch.kill()
        os.close(main)
    assert watch.returncode == 0
    assert b"gated" in seen and b"succeeded" in seen


def test_watch_exits_3_for_a_paused_run(project: Path) -> None:
    write(project, "soon.yaml", WAITING.format(name="soon", timeout="1h"))
    run_id = paused_here(project, "soon")
    watched = pardag(project, "watch", run_id)
    assert watched.returncode == 3, watched.stderr
    assert f"run {run_id}  soon  paused" in watched.stdout


def test_recorded_events_feed_the_live_view() -> None:
    from rich.console import Console

    from pardag.cli import as_event
    from pardag.progress import LiveProgress
    from pardag.store.base import EventRecord

    live = LiveProgress(Console(file=open(os.devnull, "w")), "wf", 3)  # noqa: SIM115
    records = [
        EventRecord("r", 1, time.time(), "run_started"),
        EventRecord("r", 2, time.time(), "step_started", "a", 1),
        EventRecord("r", 3, time.time(), "step_succeeded", "a", 1),
        EventRecord("r", 4, time.time(), "step_started", "b", 1),
        EventRecord("r", 5, time.time(), "step_skipped", "c", 0, '{"reason": "condition false"}'),
    ]
    for record in records:
        live.on_event(as_event(record))
    assert live.counts["succeeded"] == 1 and live.counts["skipped"] == 1
    assert list(live.running) == ["b"]


def test_an_unknown_status_filter_is_an_error_not_an_empty_list(project: Path) -> None:
    done = pardag(project, "runs", "--status", "succeded")
    assert done.returncode == 2
    assert "Invalid --status value 'succeded': use one of queued, running, succeeded, failed" in (
        done.stderr
    )
    with pytest.raises(pardag_api.ArgumentError, match="Invalid status value 'finished'"):
        pardag_api.runs(store=str(project / "runs.db"), status="finished")


FAILING = """\
name: failing
steps:
  zeta:
    kind: shell
    command: echo '{"n":1}'
  alpha:
    kind: python
    function: failing_steps:look_up
    depends_on: zeta
    retry: {retries: 1, delay: 0.05}
  tests:
    kind: shell
    depends_on: zeta
    command: for n in 30 31; do echo "test_$n ... FAILED"; done; echo 'see above' >&2; exit 1
"""

FAILING_STEPS = """\
def look_up(zeta):
    print("looking up", zeta)
    return zeta["missing_key"]
"""


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``FAILING`` run once, and its id, for the tests that only read that run (``runs``,
    ``show`` and ``logs`` change nothing in the store)."""
    project = _project(tmp_path_factory, "failed")
    write(project, "failing_steps.py", FAILING_STEPS)
    write(project, "failing.yaml", FAILING)
    done = pardag(project, "run", "failing.yaml", "--on-failure", "continue", "--json")
    assert done.returncode == 1, done.stderr
    run_id: str = json.loads(done.stdout)["run_id"]
    return project, run_id


def test_runs_and_show_print_their_tables_on_stdout_for_grep_and_less(
    failed: tuple[Path, str],
) -> None:
    project, run_id = failed
    piped = subprocess.run(
        f"{sys.executable} -m pardag runs | grep failing",
        shell=True,
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout.split()[:3] == [run_id[:12], "failing", "failed"]
    shown = pardag(project, "show", run_id)
    assert shown.stdout.splitlines()[0].startswith(f"run {run_id}  failing  failed")
    assert shown.stderr == ""


def test_show_lists_steps_as_declared_with_where_each_failure_was_raised(
    failed: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, run_id = failed
    shown = pardag(project, "show", run_id)
    lines = shown.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["zeta", "alpha", "tests"]  # as declared
    text = shown.stdout
    assert "alpha: KeyError: 'missing_key'" in text
    assert f"  at {project / 'failing_steps.py'}:3 in look_up" in text
    assert "tests: CommandFailed: command exited with code 1: see above" in text
    assert f"pardag show {run_id[:12]} alpha  for the traceback and every attempt" in text
    recorded = json.loads(here(monkeypatch, project, "show", run_id, "--json").stdout)
    assert list(recorded["steps"]) == ["zeta", "alpha", "tests"]
    alpha = recorded["steps"]["alpha"]
    attempts = json.loads(here(monkeypatch, project, "show", run_id, "alpha", "--json").stdout)[
        "attempts"
    ]
    first, last = attempts[0], attempts[-1]
    assert len(attempts) == 2
    assert alpha["started_at"] == first["started_at"]  # from the first attempt's start ...
    assert alpha["duration"] == alpha["finished_at"] - first["started_at"]  # ... to the end
    # the retry's backoff is inside it: it spans both attempts (not a clock reading: the
    # backoff timer and the recorded wall-clock stamps may differ by a millisecond)
    assert alpha["duration"] >= last["started_at"] - first["started_at"] > 0
    assert set(recorded) == {*RUN_KEYS, "duration", "speedup", "owner_gone"}


RUN_KEYS = {"run_id", "workflow", "status", "error", "final_output", "outputs", "steps"}


def test_show_run_step_gives_every_attempt_with_its_traceback(
    failed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, run_id = failed
    step = json.loads(here(monkeypatch, project, "show", run_id[:8], "alpha", "--json").stdout)
    assert [(a["attempt"], a["state"]) for a in step["attempts"]] == [
        (1, "retrying"),
        (2, "failed"),
    ]
    for attempt in step["attempts"]:
        assert 'line 3, in look_up\n    return zeta["missing_key"]' in attempt["traceback"]
        assert attempt["log_bytes"] == len("looking up {'n': 1}\n")
    assert step["log"] == f"pardag logs {run_id[:12]} alpha"
    text = pardag(project, "show", run_id, "alpha").stdout
    assert "attempt 1: retrying" in text and "attempt 2: failed" in text
    assert text.count("Traceback (most recent call last)") == 2


def test_logs_of_a_step_print_what_it_wrote_each_attempt_headed(
    failed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, run_id = failed
    shell = pardag(project, "logs", run_id, "tests")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout == (
        "--- tests, attempt 1 ---\ntest_30 ... FAILED\ntest_31 ... FAILED\nsee above\n"
    )
    python = pardag(project, "logs", run_id, "alpha")
    assert python.stdout == (
        "--- alpha, attempt 1 ---\nlooking up {'n': 1}\n"
        "--- alpha, attempt 2 ---\nlooking up {'n': 1}\n"
    )
    pieces = [
        json.loads(line)
        for line in here(
            monkeypatch, project, "logs", run_id, "tests", "--json"
        ).stdout.splitlines()
    ]
    assert [(p["stream"], p["attempt"]) for p in pieces] == [("stdout", 1), ("stderr", 1)]


def test_logs_of_a_step_the_run_does_not_have_is_an_error_naming_its_steps(
    failed: tuple[Path, str],
) -> None:
    project, run_id = failed
    done = pardag(project, "logs", run_id, "alpah")
    assert done.returncode == 2 and done.stdout == ""
    assert (
        f"run {run_id[:12]} has no step 'alpah'; did you mean 'alpha'? "
        "its steps: zeta, alpha, tests" in done.stderr
    )
    assert pardag(project, "show", run_id, "nope").returncode == 2


def test_logs_events_and_the_events_file_share_one_schema(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, run_id = recorded.project, recorded.run_id
    written = [json.loads(line) for line in (project / "events.jsonl").read_text().splitlines()]
    logged = [
        json.loads(line) for line in here(monkeypatch, project, "logs", run_id).stdout.splitlines()
    ]
    assert [set(e) for e in written] == [set(e) for e in logged]
    assert [(e["seq"], e["kind"], e["step"], e["attempt"], e["data"]) for e in written] == [
        (e["seq"], e["kind"], e["step"], e["attempt"], e["data"]) for e in logged
    ]
    assert all(abs(w["at"] - g["at"]) < 1.0 for w, g in zip(written, logged, strict=True))


def test_runs_lists_one_organisations_runs_with_org(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    queued: dict[str, list[str]] = {}
    for org in ("acme", "rival", "acme"):
        done = pardag(project, "run", "flow.yaml", "--queue", "--org", org, "--json")
        assert done.returncode == 0, done.stderr
        queued.setdefault(org, []).append(json.loads(done.stdout)["run_id"])

    mine = pardag(project, "runs", "--org", "acme", "--json")
    assert mine.returncode == 0, mine.stderr
    rows = json.loads(mine.stdout)
    assert sorted(r["run_id"] for r in rows) == sorted(queued["acme"])
    assert {r["org"] for r in rows} == {"acme"}
    assert json.loads(pardag(project, "runs", "--org", "nobody", "--json").stdout) == []
    assert (
        pardag_api.runs(store=project / ".pardag" / "runs.db", org="rival")[0].run_id
        == (queued["rival"][0])
    )

    every = pardag(project, "runs")  # several organisations: each row says whose
    assert every.returncode == 0, every.stderr
    header = every.stdout.splitlines()[0].split()
    assert header[:3] == ["run", "org", "workflow"]
    assert sum(" rival " in line for line in every.stdout.splitlines()) == 1
