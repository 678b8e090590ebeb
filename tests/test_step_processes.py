"""A runner killed with ``kill -9`` takes its step processes with it, and ``resume`` never
runs a step beside an earlier attempt of it that still runs (issue 13 §5).

Real processes throughout: ``pardag run`` in a process of its own, ten shell steps
(``sleep`` under ``sh``, so a grandchild of the step's process) and Python code steps on
worker processes, all of them found afterwards by a marker in their environment (/proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pardag.store import open_store

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds processes through /proc"
)

REPO = Path(__file__).resolve().parents[1]
SHELL_STEPS = 10
CODE_STEPS = 2
"""As many as the processes executor runs at once on a 2-core machine (its default)."""

SHELL = """\
  s{n}:
    kind: shell
    command: >-
      for p in $(cat {ledger}.s{n} 2>/dev/null); do grep -qsv ') [ZX] ' /proc/$p/stat && echo
      overlap >> {ledger}.overlaps; done; echo $$ >> {ledger}.s{n}; sleep 30; echo done
"""
CODE = """\
  p{n}:
    language: python
    code: |
      import os, time
      def run():
          path = "{ledger}.p{n}"
          for pid in open(path).read().split() if os.path.exists(path) else []:
              try:
                  stat = open(f"/proc/{{pid}}/stat").read()
              except OSError:
                  continue
              if stat[stat.rfind(")") + 2] not in "ZX":  # alive, not a zombie
                  open("{ledger}.overlaps", "a").write("overlap\\n")
          open(path, "a").write(f"{{os.getpid()}}\\n")
          time.sleep(30)
"""


def write_flow(tmp_path: Path) -> tuple[Path, Path]:
    """A flow of ten shell steps and two code steps that each sleep 30 s, noting their pid
    (and any earlier attempt of theirs still alive) in files beside ``ledger``."""
    ledger = tmp_path / "ledger"
    steps = [SHELL.format(n=n, ledger=ledger) for n in range(SHELL_STEPS)]
    steps += [CODE.format(n=n, ledger=ledger) for n in range(CODE_STEPS)]
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: tethered\nsteps:\n" + "".join(steps))
    return flow, ledger


def cli(tmp_path: Path, marker: str, *args: str) -> subprocess.Popen[bytes]:
    """``pardag ARGS`` in a process of its own, every process under it carrying ``marker``."""
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO / "src")) if p)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_")}
    env.update(PYTHONPATH=path, PARDAG_TEST_MARK=marker)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    with open(tmp_path / "out", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pardag", *args, "--store", store],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def marked(marker: str) -> set[int]:
    """The live processes whose environment holds ``marker`` (not zombies: pid 1 here may
    be slow to reap what a killed runner left)."""
    needle = f"PARDAG_TEST_MARK={marker}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat[stat.rfind(")") + 2] not in "ZX":
            found.add(int(entry))
    return found


def pids_of_steps(ledger: Path) -> set[int]:
    """Every pid the steps noted so far."""
    out = set()
    for path in ledger.parent.glob(ledger.name + ".[sp]*"):
        out |= {int(p) for p in path.read_text().split()}
    return out


def wait_for_all_steps(ledger: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until every step has started and the store holds the process of each (journaled with
    its start, in a group commit that may come a little later)."""
    deadline = time.monotonic() + 60
    while len(pids_of_steps(ledger)) < SHELL_STEPS + CODE_STEPS:
        assert proc.poll() is None, "the run ended before its steps all started"
        assert time.monotonic() < deadline, "the steps did not all start"
        time.sleep(0.05)
    while recorded_processes(ledger.parent) < SHELL_STEPS + CODE_STEPS:
        assert proc.poll() is None, "the run ended before its steps' processes were recorded"
        assert time.monotonic() < deadline, "the steps' processes were not all recorded"
        time.sleep(0.02)


def recorded_processes(directory: Path) -> int:
    """How many steps of the run in ``directory``'s store have their processes recorded."""
    with open_store(f"sqlite:///{directory / 'runs.db'}", create=False) as store:
        (run,) = store.list_runs()
        return sum(1 for s in store.get_steps(run.run_id) if s.processes)


def wait_until_gone(marker: str, within: float) -> set[int]:
    """The marked processes still alive after ``within`` seconds (none, once they died)."""
    deadline = time.monotonic() + within
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_keeper(runner: int) -> None:
    """SIGKILL the runner's keeper process (``pardag.tether``): a runner whose keeper died
    too, as when everything of a user is killed at once."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == runner and b"killpg" in cmdline:
                os.kill(int(entry), signal.SIGKILL)
                return
    raise AssertionError(f"runner {runner} has no keeper process")


@pytest.fixture
def marker() -> Iterator[str]:
    mark = uuid.uuid4().hex
    yield mark
    for pid in marked(mark):  # whatever a failed test left behind
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_the_step_processes_die_with_a_killed_runner(tmp_path: Path, marker: str) -> None:
    flow, ledger = write_flow(tmp_path)
    runner = cli(tmp_path, marker, "run", str(flow))
    wait_for_all_steps(ledger, runner)
    steps = pids_of_steps(ledger)
    assert steps <= marked(marker)  # the steps run, and the marker finds them
    runner.kill()
    assert runner.wait(timeout=10) == -signal.SIGKILL
    assert wait_until_gone(marker, within=10) == set()


def orphaned_run(tmp_path: Path, marker: str) -> tuple[Path, set[int]]:
    """A run killed with its keeper, so that its steps' processes outlive it: the ledger and
    the pids of the steps left running."""
    flow, ledger = write_flow(tmp_path)
    runner = cli(tmp_path, marker, "run", str(flow))
    wait_for_all_steps(ledger, runner)
    kill_keeper(runner.pid)
    runner.kill()
    assert runner.wait(timeout=10) == -signal.SIGKILL
    earlier = pids_of_steps(ledger)
    assert earlier <= marked(marker)  # without their keeper they outlive the runner
    return ledger, earlier


def test_resume_stops_what_an_earlier_attempt_left_running(tmp_path: Path, marker: str) -> None:
    ledger, earlier = orphaned_run(tmp_path, marker)

    with open_store(f"sqlite:///{tmp_path / 'runs.db'}", create=False) as store:
        (run,) = store.list_runs()
        recorded = [s.processes for s in store.get_steps(run.run_id) if s.processes]
    assert len(recorded) == SHELL_STEPS + CODE_STEPS

    resumed = cli(tmp_path, marker, "resume", run.run_id, "--json")
    deadline = time.monotonic() + 60
    while len(pids_of_steps(ledger)) < 2 * (SHELL_STEPS + CODE_STEPS):
        assert resumed.poll() is None, (tmp_path / "out").read_text()
        assert time.monotonic() < deadline, "the resumed steps did not all start"
        time.sleep(0.05)
    assert not Path(f"{ledger}.overlaps").exists()
    assert not earlier & marked(marker)  # every earlier attempt was stopped first
    resumed.send_signal(signal.SIGINT)
    resumed.wait(timeout=30)


def test_a_finished_step_records_the_process_it_ran(tmp_path: Path) -> None:
    import pardag

    wf = pardag.Workflow("recorded")
    wf.add("sh", kind="shell", params={"command": "echo $$; sleep 0.5"})
    result = wf.run(store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert result.ok
    pid = json.loads(json.dumps(result.outputs["sh"]))["stdout"].strip()
    with open_store(f"sqlite:///{tmp_path / 'runs.db'}", create=False) as store:
        (step,) = store.get_steps(result.run_id)
    assert step.processes is not None
    (ident,) = step.processes.split()
    assert ident.split(":")[0] == pid and "." in ident.split(":")[1]  # pid:boot.start


def test_stop_kills_the_recorded_group_and_leaves_a_reused_pid_alone() -> None:
    from pardag import stepprocs

    step = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(group := _group_members(step.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # until sh has started both sleeps (0.2 s was not always enough)
        assert len(group) == 3
        ident = stepprocs.identity(step.pid)
        assert ident is not None
        boot = ident.split(":")[1].split(".")[0]
        reused = f"{other.pid}:{boot}.1"  # other's pid, but a process started at boot
        assert stepprocs.stop([ident, reused]) == []
        assert step.wait(timeout=5) == -signal.SIGKILL
        assert not _group_members(step.pid)  # the grandchild went with it
        assert other.poll() is None  # not the process recorded: left alone
    finally:
        for proc in (step, other):
            proc.kill()
            proc.wait()


def _group_members(group: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields and int(fields[2]) == group and fields[0] not in "ZX":
            found.add(int(entry))
    return found


def test_cancelling_a_dead_run_stops_what_its_steps_left_running(
    tmp_path: Path, marker: str
) -> None:
    _, earlier = orphaned_run(tmp_path, marker)
    with open_store(f"sqlite:///{tmp_path / 'runs.db'}", create=False) as store:
        (run,) = store.list_runs()
    cancel = cli(tmp_path, marker, "cancel", run.run_id)
    assert cancel.wait(timeout=60) == 0, (tmp_path / "out").read_text()
    assert not earlier & marked(marker)
