"""A run's owner is a process, not a pid: a later process that got the pid is not it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pardag
from pardag import RunStatus, history
from pardag.owner import Owner, parse, started_at, this_process
from pardag.store import RunUpdate, open_store
from tests.test_approvals import FLOW, _write

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process: the one that got the dead owner's pid."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_owner_string_names_host_pid_and_start_and_reads_back() -> None:
    owner = parse(this_process())
    assert owner is not None and owner.host == socket.gethostname()
    assert owner.started is not None and owner.started.count(".") == 1
    assert parse(str(owner)) == owner
    assert parse("db-1.example:4242") == Owner("db-1.example", 4242)  # an older pardag's
    assert parse("garbage") is None and parse(None) is None


def test_a_process_is_alive_only_with_the_start_it_was_recorded_with(
    bystander: subprocess.Popen[bytes],
) -> None:
    host, real = socket.gethostname(), started_at(bystander.pid)
    assert real is not None
    assert Owner(host, bystander.pid, real).alive()
    boot, ticks = real.split(".")
    assert not Owner(host, bystander.pid, f"{boot}.{int(ticks) - 1}").alive()  # pid reused
    assert Owner(host, bystander.pid).alive()  # pid only: all an old record can tell
    assert Owner("elsewhere", bystander.pid, "x.1").alive()  # cannot look: counts as alive


def test_after_pid_reuse_cancel_signals_nobody_and_resume_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bystander: subprocess.Popen[bytes]
) -> None:
    """The run's process died and its pid went to an unrelated process: ``cancel`` used to
    send it a signal and ``resume`` refused the run as still running."""
    monkeypatch.chdir(tmp_path)
    url = str(tmp_path / "runs.db")
    first = pardag.load(_write(tmp_path, FLOW)).run(store=url)
    assert first.status is RunStatus.PAUSED
    real = started_at(bystander.pid)
    assert real is not None
    boot, ticks = real.split(".")
    reused = f"{socket.gethostname()}:{bystander.pid}:{boot}.{int(ticks) - 1}"
    with open_store(url) as store:  # as a runner killed mid-run leaves it
        store.write(runs=[RunUpdate(first.run_id, status="running", owner=reused)])
        record = store.get_run(first.run_id)
    assert record is not None and history.owner_gone(record)

    again = pardag.resume(first.run_id, store=url)  # not "still running in process ..."
    assert again.status is RunStatus.PAUSED
    with open_store(url) as store:
        store.write(runs=[RunUpdate(first.run_id, status="running", owner=reused)])
    said = pardag.history.cancel(first.run_id, store=url)
    assert said.endswith("is now cancelled")
    assert bystander.poll() is None  # the bystander got no signal
    (listed,) = pardag.runs(store=url)
    assert listed.status == "cancelled"
