"""A store in front of another: every call passes through, for wrappers to override a few.

``MaskedStore`` (masks secrets on the way in) and ``FencedStore`` (refuses writes once a worker
lost its lease) are such wrappers; a run sees them as any ``Store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pardag.store import base as rec
from pardag.store.base import Store

__all__ = ["DelegatingStore"]


class DelegatingStore(Store):
    """``inner``, every call passed through; subclasses override what they change."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url

    def create_run(self, run: rec.RunRecord) -> None:
        self.inner.create_run(run)

    def write(
        self,
        *,
        runs: Sequence[rec.RunUpdate] = (),
        steps: Sequence[rec.StepRecord] = (),
        events: Sequence[rec.EventRecord] = (),
        logs: Sequence[rec.LogRecord] = (),
    ) -> None:
        self.inner.write(runs=runs, steps=steps, events=events, logs=logs)

    def put_answer(self, answer: rec.Answer) -> None:
        self.inner.put_answer(answer)

    def put_cache(self, entry: rec.CacheEntry) -> None:
        self.inner.put_cache(entry)

    def enqueue(self, run: rec.RunRecord) -> str:
        return self.inner.enqueue(run)

    def claim(self, worker: str, lease: float, now: float) -> rec.RunRecord | None:
        return self.inner.claim(worker, lease, now)

    def renew(self, run_id: str, worker: str, lease: float, now: float) -> bool:
        return self.inner.renew(run_id, worker, lease, now)

    def cancel_queued(self, run_id: str, now: float, error: str) -> bool:
        return self.inner.cancel_queued(run_id, now, error)

    def request_cancel(self, run_id: str, by: str, now: float) -> bool:
        return self.inner.request_cancel(run_id, by, now)

    def cancel_requests(self, worker: str) -> dict[str, str]:
        return self.inner.cancel_requests(worker)

    def requeue(self, run_id: str) -> bool:
        return self.inner.requeue(run_id)

    def release(self, run_id: str, worker: str) -> bool:
        return self.inner.release(run_id, worker)

    def reopen(
        self, run_id: str, was: str, status: str, settings_json: str, owner: str | None
    ) -> bool:
        return self.inner.reopen(run_id, was, status, settings_json, owner)

    def get_run(self, run_id: str) -> rec.RunRecord | None:
        return self.inner.get_run(run_id)

    def list_runs(self, **filters: Any) -> list[rec.RunRecord]:
        return self.inner.list_runs(**filters)

    def get_steps(self, run_id: str) -> list[rec.StepRecord]:
        return self.inner.get_steps(run_id)

    def get_events(
        self, run_id: str, step: str | None = None, after: int = 0
    ) -> list[rec.EventRecord]:
        return self.inner.get_events(run_id, step, after)

    def get_logs(
        self, run_id: str, step_id: str, after: tuple[int, int] = (0, 0)
    ) -> list[rec.LogRecord]:
        return self.inner.get_logs(run_id, step_id, after)

    def org_events(self, org: str, after: int = 0, limit: int = 500) -> list[rec.EventRecord]:
        return self.inner.org_events(org, after, limit)

    def last_gseq(self) -> int:
        return self.inner.last_gseq()

    def listen(self) -> rec.EventListener | None:
        return self.inner.listen()

    def step_durations(self, workflow: str, runs: int = 10) -> dict[str, float]:
        return self.inner.step_durations(workflow, runs)

    def org_stats(self, org: str, since: float, recent: int = 100) -> rec.OrgStats:
        return self.inner.org_stats(org, since, recent)

    def get_answers(self, run_id: str) -> dict[str, rec.Answer]:
        return self.inner.get_answers(run_id)

    def get_cache(self, key: str, now: float) -> rec.CacheEntry | None:
        return self.inner.get_cache(key, now)

    def create_token(self, token: rec.TokenRecord) -> None:
        self.inner.create_token(token)

    def token_by_hash(self, token_hash: str) -> rec.TokenRecord | None:
        return self.inner.token_by_hash(token_hash)

    def list_tokens(self, org: str | None = None) -> list[rec.TokenRecord]:
        return self.inner.list_tokens(org)

    def revoke_token(self, token_id: str, now: float) -> bool:
        return self.inner.revoke_token(token_id, now)

    def put_workflow(
        self, org: str, name: str, format: str, definition: str, now: float
    ) -> rec.StoredWorkflow:
        return self.inner.put_workflow(org, name, format, definition, now)

    def workflow_versions(self, org: str, workflow_id: str) -> list[rec.StoredWorkflow]:
        return self.inner.workflow_versions(org, workflow_id)

    def list_workflows(self, org: str) -> list[rec.StoredWorkflow]:
        return self.inner.list_workflows(org)

    def delete_workflow(self, org: str, workflow_id: str) -> bool:
        return self.inner.delete_workflow(org, workflow_id)

    def set_triggers(
        self, org: str, workflow_id: str, wanted: Sequence[rec.TriggerRecord]
    ) -> list[rec.TriggerRecord]:
        return self.inner.set_triggers(org, workflow_id, wanted)

    def list_triggers(self, org: str, workflow_id: str | None = None) -> list[rec.TriggerRecord]:
        return self.inner.list_triggers(org, workflow_id)

    def schedules(self) -> list[rec.TriggerRecord]:
        return self.inner.schedules()

    def webhook(self, org: str, name: str) -> rec.TriggerRecord | None:
        return self.inner.webhook(org, name)

    def claim_slot(self, trigger_id: str, slot: float, now: float) -> bool:
        return self.inner.claim_slot(trigger_id, slot, now)

    def put_secret(self, org: str, name: str, ciphertext: str, now: float) -> bool:
        return self.inner.put_secret(org, name, ciphertext, now)

    def secret_ciphertext(self, org: str, name: str | None) -> str | None:
        return self.inner.secret_ciphertext(org, name)

    def list_secrets(self, org: str) -> list[rec.SecretInfo]:
        return self.inner.list_secrets(org)

    def delete_secret(self, org: str, name: str) -> bool:
        return self.inner.delete_secret(org, name)

    def close(self) -> None:
        self.inner.close()
