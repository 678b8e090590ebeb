"""The one rule from a run's status to ``pardag``'s exit code, whichever command ends on it."""

from __future__ import annotations

import time
from pathlib import Path

from pardag.cli import main
from pardag.cli.console import Session
from pardag.cli.exits import ExitCode, exit_code, worst
from pardag.cli.run import finish
from pardag.results import RunResult
from pardag.states import RunStatus
from pardag.store import open_store
from pardag.store.base import RunRecord

EXIT_OF = {
    RunStatus.SUCCEEDED: 0,
    RunStatus.FAILED: 1,
    RunStatus.TIMED_OUT: 1,
    RunStatus.CANCELLED: 130,
    RunStatus.PAUSED: 3,
    RunStatus.RUNNING: 1,  # not final: no command ends on it, a failure if one did
    RunStatus.QUEUED: 1,  # the same
}


def test_every_run_status_exits_with_one_code_from_run_and_from_watch(tmp_path: Path) -> None:
    """``run``, ``resume``, ``approve`` and ``reject`` end with ``finish`` on a RunResult's
    status, ``watch`` on the plain string the store recorded: both must give the same code."""
    assert set(EXIT_OF) == set(RunStatus)  # a new status must be given its code here
    db = str(tmp_path / "runs.db")
    ids = {status: f"{n:032x}" for n, status in enumerate(RunStatus)}
    with open_store(db) as store:
        for status, run_id in ids.items():
            store.create_run(RunRecord(run_id, "wf", status.value, time.time()))
    for status, code in EXIT_OF.items():
        assert exit_code(status) == exit_code(status.value) == code
        result = RunResult(ids[status], "wf", status, steps={}, outputs={})
        assert finish(result, True, Session(False)) == code
        if status.is_final() or status is RunStatus.PAUSED:  # watch follows the others
            assert main(["watch", ids[status], "--store", db]) == code
    assert worst([0, 3, 1, 130]) == ExitCode.INTERRUPTED and worst([0, 3, 1]) == ExitCode.FAILED
    assert worst([0, 3]) == ExitCode.PAUSED and worst([]) == ExitCode.SUCCEEDED
