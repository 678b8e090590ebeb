"""A run store a worker's run writes through, closed to writes once the worker lost its lease.

A worker stalled for longer than its lease (a long pause, a suspended machine) finds, at its
next renewal, that another worker has taken its run over. From then on, whatever its run
still tries to record is refused with a ``StoreError`` saying so: the run's journal stops at
its next commit (the runner stops a run whose store fails), and the run is left to the worker
that holds it. Reads pass through.
"""

from __future__ import annotations

from collections.abc import Sequence

from pardag.store import base as rec
from pardag.store.base import StoreError
from pardag.store.delegate import DelegatingStore

__all__ = ["FencedStore"]


class FencedStore(DelegatingStore):
    """``inner``, its writes refused once ``fence`` has been called."""

    _why: str | None = None

    def fence(self, why: str) -> None:
        """Refuse every write from now on, with ``why`` as the error."""
        self._why = why

    @property
    def fenced(self) -> bool:
        return self._why is not None

    def _check(self) -> None:
        if self._why is not None:
            raise StoreError(self._why)

    def create_run(self, run: rec.RunRecord) -> None:
        self._check()
        super().create_run(run)

    def write(
        self,
        *,
        runs: Sequence[rec.RunUpdate] = (),
        steps: Sequence[rec.StepRecord] = (),
        events: Sequence[rec.EventRecord] = (),
        logs: Sequence[rec.LogRecord] = (),
    ) -> None:
        self._check()
        super().write(runs=runs, steps=steps, events=events, logs=logs)

    def put_answer(self, answer: rec.Answer) -> None:
        self._check()
        super().put_answer(answer)

    def put_cache(self, entry: rec.CacheEntry) -> None:
        self._check()
        super().put_cache(entry)

    def reopen(
        self, run_id: str, was: str, status: str, settings_json: str, owner: str | None
    ) -> bool:
        self._check()
        return super().reopen(run_id, was, status, settings_json, owner)
