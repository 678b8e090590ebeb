"""A run store that never receives a secret: every record is masked on its way in.

A run with secrets writes through ``MaskedStore``, the one door between the run and its store:
params, outputs, errors, tracebacks, reasons, events and step logs have each secret value
replaced with ``***`` (``pardag.secrets.Masker``) before the backend sees them, so neither
the database file, its WAL nor ``pardag show`` / ``logs`` ever holds one. Reads pass through.

A step output that held a secret is recorded masked, as not stored (``output_stored=False``):
a resumed run runs that step again rather than hand ``***`` to its dependents, and the step
output cache keeps no copy of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pardag.secrets import Masker
from pardag.store import base as rec
from pardag.store.base import Store
from pardag.store.delegate import DelegatingStore

__all__ = ["MaskedStore"]


class MaskedStore(DelegatingStore):
    """``inner`` with every record written masked by ``masker``; see the module docstring."""

    def __init__(self, inner: Store, masker: Masker) -> None:
        super().__init__(inner)
        self.masker = masker

    def create_run(self, run: rec.RunRecord) -> None:
        m = self.masker
        self.inner.create_run(
            replace(
                run,
                params_json=m.json(run.params_json) or "{}",
                settings_json=m.json(run.settings_json) or "{}",
                error=m.text(run.error) if run.error else run.error,
            )
        )

    def write(
        self,
        *,
        runs: Sequence[rec.RunUpdate] = (),
        steps: Sequence[rec.StepRecord] = (),
        events: Sequence[rec.EventRecord] = (),
        logs: Sequence[rec.LogRecord] = (),
    ) -> None:
        m = self.masker
        self.inner.write(
            runs=[replace(r, error=m.text(r.error) if r.error else r.error) for r in runs],
            steps=[self._step(s) for s in steps],
            events=[replace(e, data_json=m.json(e.data_json) or "{}") for e in events],
            logs=[replace(p, text=m.text(p.text)) for p in logs],
        )

    def _step(self, step: rec.StepRecord) -> rec.StepRecord:
        m = self.masker
        masked = replace(
            step,
            output_json=m.json(step.output_json),
            error=m.text(step.error) if step.error else step.error,
            traceback=m.text(step.traceback) if step.traceback else step.traceback,
            reason=m.text(step.reason) if step.reason else step.reason,
        )
        if masked.output_json != step.output_json and step.output_json is not None:
            masked.output_stored = False  # not the real output: a resume runs the step again
        return masked

    def put_answer(self, answer: rec.Answer) -> None:
        m = self.masker
        reason = m.text(answer.reason) if answer.reason else answer.reason
        value = m.json(answer.value_json) or "null"
        self.inner.put_answer(replace(answer, value_json=value, reason=reason))

    def put_cache(self, entry: rec.CacheEntry) -> None:
        if self.masker.json(entry.output_json) == entry.output_json:  # holds no secret
            self.inner.put_cache(entry)

    def enqueue(self, run: rec.RunRecord) -> str:
        m = self.masker
        params, trigger = m.json(run.params_json) or "{}", m.json(run.trigger_json) or "{}"
        return self.inner.enqueue(replace(run, params_json=params, trigger_json=trigger))
