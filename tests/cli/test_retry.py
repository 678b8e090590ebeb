"""``pardag retry``: a failed run, fixed, retried from the command line as its hint says;
``--from STEP --no-downstream``; ``--queue`` for a worker; errors without tracebacks.

The flow and its steps' module are those of tests/test_retry.py: every step appends its name
to a ledger, and step b fails while a flag file exists.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path

from tests.cli.support import pardag, write
from tests.test_retry import FLOW, STEPS

PARAMS = ("--set", "ledger=ledger.txt", "--set", "flag=broken.flag")


def ran(project: Path) -> Counter[str]:
    """What ran since the last call, by step (the ledger starts again)."""
    ledger = project / "ledger.txt"
    found = Counter(ledger.read_text().split()) if ledger.exists() else Counter()
    ledger.unlink(missing_ok=True)
    return found


def failed_run(project: Path) -> tuple[str, str]:
    """A run of the flow whose step b failed: its id, and the retry command it printed."""
    write(project, "flow.yaml", FLOW)
    write(project, "rsteps.py", STEPS)
    (project / "broken.flag").touch()
    done = pardag(project, "run", "flow.yaml", "--store", "runs.db", *PARAMS)
    assert done.returncode == 1, done.stderr
    run_id = done.stderr.splitlines()[0].split()[1]
    [hint] = [line for line in done.stderr.splitlines() if line.startswith("pardag retry")]
    assert ran(project) == Counter("abd")
    return run_id, hint.split("  ")[0]


def test_the_printed_retry_runs_again_what_failed_and_reuses_the_rest(project: Path) -> None:
    run_id, command = failed_run(project)
    assert command == f"pardag retry {run_id[:12]} --store runs.db"
    (project / "broken.flag").unlink()  # the fix
    done = pardag(project, *shlex.split(command)[1:], "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[:2] == [
        f"run {run_id}",
        "retry 1: runs again b, c; reused: a, d",
    ]
    result = json.loads(done.stdout)
    assert result["run_id"] == run_id and result["status"] == "succeeded"
    assert result["steps"]["b"]["attempts"] == 2
    assert ran(project) == Counter("bc")


def test_from_a_step_without_downstream_and_the_errors(project: Path) -> None:
    run_id, _ = failed_run(project)
    unknown = pardag(project, "retry", run_id, "--store", "runs.db", "--from", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr == (
        f"error: run {run_id} has no step 'nope': give 'failed', 'all', or one of its steps: "
        "a, b, c, d\n"
    )
    (project / "broken.flag").unlink()
    only = ("--from", "d", "--no-downstream")
    done = pardag(project, "retry", run_id[:8], "--store", "runs.db", *only)
    assert done.returncode == 1, done.stderr  # b's failure is kept: the run fails again
    assert "retry 1: runs again d; reused: a, b, c" in done.stderr
    assert ran(project) == Counter("d")
    fixed = pardag(project, "retry", run_id[:8], "--store", "runs.db")
    assert fixed.returncode == 0 and "retry 2: runs again b, c; reused: a, d" in fixed.stderr
    assert ran(project) == Counter("bc")
    again = pardag(project, "retry", run_id, "--store", "runs.db")
    assert again.returncode == 2 and "nothing to retry" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_queued_retry_is_left_to_a_worker(project: Path) -> None:
    run_id, _ = failed_run(project)
    (project / "broken.flag").unlink()
    queued = pardag(project, "retry", run_id, "--store", "runs.db", "--queue", "--json")
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout) == {"run_id": run_id, "status": "queued", "retry": 1}
    assert ran(project) == Counter()
    refused = pardag(project, "retry", run_id, "--store", "runs.db")
    assert refused.returncode == 2 and f"run {run_id} is queued" in refused.stderr
    worker = pardag(project, "worker", "--store", "runs.db", "--until-idle", "--poll", "0.05s")
    assert worker.returncode == 0, worker.stderr
    shown = json.loads(pardag(project, "show", run_id, "--store", "runs.db", "--json").stdout)
    assert shown["status"] == "succeeded" and ran(project) == Counter("bc")
