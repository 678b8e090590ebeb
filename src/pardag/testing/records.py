"""Records for store tests: every field set to what a careless backend would mangle.

``pardag.testing.stores`` builds its tests from these; a backend's own tests may too.
"""

from __future__ import annotations

from typing import Any

from pardag.store import RunRecord, StepRecord, Store

__all__ = ["BIG_JSON", "T0", "UNICODE", "full_run", "full_step", "ids", "new_run", "seed_runs"]

T0 = 1_700_000_000.123456
"""A time with microseconds: a backend must keep every digit."""
UNICODE = "Grüße → 日本語 🚀 \u200b 'quotes' \"double\" \\ back; DROP TABLE runs; --"
BIG_JSON = '{"rows": [' + ",".join(f'{{"n": {i}, "s": "{"x" * 40}"}}' for i in range(40_000)) + "]}"
"""About 2 MB of JSON: more than a page, a packet or a default column size."""


def new_run(run_id: str = "run000001", **fields: object) -> RunRecord:
    """A plain running run of workflow ``wf``, with ``fields`` changed."""
    values: dict[str, Any] = {"workflow": "wf", "status": "running", "created_at": T0}
    values.update(fields)
    return RunRecord(run_id, **values)


def full_run(run_id: str) -> RunRecord:
    """A run with every field set to something a careless backend would mangle."""
    return RunRecord(
        run_id=run_id,
        workflow=UNICODE,
        status="failed",
        created_at=T0,
        definition="steps:\n  a: {kind: shell, command: echo 'é'}\n" * 50,
        definition_format="native",
        definition_hash="sha256:" + "ab" * 32,
        source="/tmp/flow ü.yaml",
        settings_json='{"max_concurrency": 8, "pools": {"db": 2}}',
        params_json=BIG_JSON,
        finished_at=T0 + 0.000001,
        error=UNICODE + "\nsecond line",
        owner="host.example:12345",
        heartbeat_at=T0 + 1e-6,
        org="org " + UNICODE,
        trigger_json='{"body": "' + "é" * 100 + '"}',
        worker="worker ü:1",
        lease_until=T0 + 30.000001,
        claimed_at=T0 + 0.5,
        claims=3,
    )


def full_step(run_id: str, step_id: str = "step ü", attempt: int = 3) -> StepRecord:
    """A step attempt with every field set, like ``full_run``."""
    return StepRecord(
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        state="failed",
        executor="processes",
        started_at=T0 + 1.5,
        finished_at=T0 + 2.25,
        output_json=BIG_JSON,
        output_stored=False,
        error="ValueError: " + UNICODE,
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\nValueError\n' * 20,
        reason="timed out after 5s",
        cached=True,
        position=7,
        processes="4242:0a1b2c3d.987654 4243:0a1b2c3d.987700",
    )


def seed_runs(store: Store) -> None:
    """Five runs of two workflows, ``r1`` (oldest) to ``r5``, for the listing tests."""
    rows = [
        ("r1", "etl", "succeeded", T0 + 1),
        ("r2", "etl", "failed", T0 + 2),
        ("r3", "report", "succeeded", T0 + 3),
        ("r4", "etl", "succeeded", T0 + 4),
        ("r5", "report", "paused", T0 + 5),
    ]
    for run_id, workflow, status, created in rows:
        store.create_run(new_run(run_id, workflow=workflow, status=status, created_at=created))


def ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]
