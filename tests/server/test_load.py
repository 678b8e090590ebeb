"""The load test, scaled down for the suite: ``benchmarks/server_load.py`` against a real
``pardag serve --workers 2`` process (SQLite and PostgreSQL), runs submitted at once, event
streams of all runs open. Every run succeeds, no step runs twice (an external ledger), and
every stream gets every step's frame exactly once. The full size (200 runs x 20 steps, 100
streams) runs as the script; docs/server.md has its figures. No figure is asserted on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from benchmarks.server_load import load

from tests.store.conftest import own_schema

RUNS, STEPS, CLIENTS = 20, 6, 10


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_run_completes_once_with_every_stream_seeing_every_step(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = str(tmp_path / "runs.db")
        else:
            url = stack.enter_context(own_schema(request.getfixturevalue("postgres")))
        figures = load(url, RUNS, STEPS, CLIENTS)
    print(figures.summary())
    assert figures.succeeded == RUNS
    assert (figures.ledger_lines, figures.repeated) == (RUNS * STEPS, 0)
    assert len(figures.delivery) == RUNS * STEPS * CLIENTS
    assert len(figures.submit) == RUNS
