"""The run queue's two ends: ``submit`` puts a run in the store, a ``Worker`` claims and runs it.

A submitted run waits in the store as ``queued``, with everything a worker needs (the
workflow's snapshot, settings, params, trigger data, organisation). Workers, in any number of
processes on any machines that reach the store, claim runs one at a time with a lease
(``Store.claim``: fairness between organisations is the store's rule) and run each with the
normal runner, as ``resume`` does (``history.run_recorded``): a queued run has no step done
yet, and a run taken over from a dead worker keeps the steps that finished. While a run
runs, a timer renews its lease (every third of it); a worker killed with ``kill -9`` renews
nothing, so its runs' leases expire and other workers take them over.

Runs go on in threads of the worker's process (each on its own event loop, as
``Workflow.run``), so killing the process stops them all: nothing of a dead worker runs on.
``stop`` claims nothing more and waits for the runs in hand; a process that must leave at
once just exits, and its leases expire (docs/server.md). A worker that finds at a renewal that
its lease was taken over (it was stalled for longer than the lease) fences the run: its writes
are refused from then on (``store.fenced``), so the run stops there at its next commit.

The same thread asks the store, every ``poll`` seconds while runs are in hand, which of them
someone asked to cancel (``pardag cancel``, ``POST /api/runs/{id}/cancel``:
``Store.cancel_requests``), and cancels each as a first Ctrl-C does (``RunHandle``): running
steps are stopped, the run is recorded cancelled, each step naming who asked, and its lease
is let go as for any run that ended.

Each poll, a worker also fires the cron slots that are due (``pardag.schedules``: one run per
slot among all workers); ``submit_stored`` queues a run of a workflow the service stores, as
webhooks and schedules do.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any, Unpack

from pardag.egress import service_floor
from pardag.errors import ArgumentError, StoreError
from pardag.formats import read_workflow
from pardag.formats.document import parse_document
from pardag.history import cancel, run_recorded
from pardag.model import Workflow, param_problem, with_overrides
from pardag.options import RunOptions, SettingOptions
from pardag.owner import this_process
from pardag.recording import open_run_store, queued_record, service_origin
from pardag.runner.handle import RunHandle
from pardag.schedules import fire_due
from pardag.secrets import default_sources
from pardag.states import RunStatus
from pardag.store.base import RunRecord, RunUpdate, Store
from pardag.store.fenced import FencedStore
from pardag.store.tenancy import StoredWorkflow
from pardag.store.triggers import TriggerRecord
from pardag.vault import Keyring, run_sources

__all__ = ["DEFAULT_LEASE", "POLL_EVERY", "Worker", "submit", "submit_stored"]

DEFAULT_LEASE = 30.0
"""Seconds a claim holds without renewal: how long a dead worker's runs wait to be taken over."""
POLL_EVERY = 1.0
"""Seconds an idle worker waits before it asks the store for a run again."""


def submit(
    wf: Workflow,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    org: str = "default",
    via: str | None = None,
    **settings: Unpack[SettingOptions],
) -> str:
    """Queue a run of ``wf`` in ``store`` (``PARDAG_STORE`` by default) for a worker; its id.

    Returns at once: no step runs here. ``wf`` is validated, ``params`` and ``settings``
    checked, as ``run`` would; a workflow built in Python must be importable by the worker
    (``wf.import_path``), since only files are kept whole in the store. ``via``: the part of
    the service queuing it (``"api"``, ``"webhook"``, ``"schedule"``); workers run such a run
    under the service's egress preset (``Worker``'s ``allow_private``).
    """
    if not isinstance(org, str) or not org.strip():
        raise ArgumentError(f"org={org!r}: give the organisation's name, such as 'default'")
    if via is not None and (not isinstance(via, str) or not via.strip()):
        raise ArgumentError(f"via={via!r}: name the part of the service queuing it, such as 'api'")
    given = dict(params or {})
    unknown = [m for name in given if (m := param_problem(wf, name)) is not None]
    if unknown:
        raise ArgumentError("submit(params=...): " + "; ".join(unknown))
    resolved = with_overrides(wf.settings, settings)
    wf.compile()  # an invalid workflow is refused here, not by the worker later
    record = queued_record(
        wf,
        uuid.uuid4().hex,
        settings=resolved,
        params={**wf.params, **given},
        trigger=dict(trigger or {}),
        org=org,
        via=via,
    )
    if record.definition_format == "python" and not record.source:
        raise ArgumentError(
            f"workflow {wf.name!r} was built in Python and a worker could not import it; define "
            "it at module level (wf = Workflow(...)) or set wf.import_path = 'module:wf'"
        )
    opened, owned = open_run_store(store)
    if opened is None:
        raise ArgumentError(
            "submit() needs the run store the workers claim from: pass store=URL or set "
            "PARDAG_STORE"
        )
    try:
        return opened.enqueue(record)
    finally:
        if owned:
            opened.close()


def submit_stored(
    store: Store, stored: StoredWorkflow, trigger: Mapping[str, Any], via: str
) -> str:
    """Queue a run of ``stored`` (a workflow the service keeps) with ``trigger`` data, in its
    organisation; its id. What a webhook or a schedule (``via``) starts: read as ``pardag
    validate`` reads a file ``NAME.FORMAT``; a service run (the egress preset holds)."""
    doc = parse_document(stored.definition, f"{stored.name}.{stored.format}", stored.format)
    wf = read_workflow(doc)
    wf.source = None  # no file on disk: the run keeps the text
    return submit(wf, store=store, trigger=trigger, org=stored.org, via=via)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Worker:
    """Claims runs from ``store`` and runs them, up to ``max_runs`` at once, each under a
    lease of ``lease`` seconds that it renews; ``say`` gets a line per run started and ended.
    ``options`` are run options every run gets (a ``secrets_file``, say); a run's secrets
    come from its organisation's in the store first, opened with ``keyring``'s key."""

    def __init__(
        self,
        store: Store,
        *,
        max_runs: int = 1,
        lease: float = DEFAULT_LEASE,
        poll: float = POLL_EVERY,
        name: str | None = None,
        say: Callable[[str], None] = _to_stderr,
        options: RunOptions | None = None,
        keyring: Keyring | None = None,
        allow_private: Collection[str] = (),
    ) -> None:
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise ArgumentError(f"max_runs={max_runs!r}: give how many runs at once, 1 or more")
        for what, value in (("lease", lease), ("poll", poll)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ArgumentError(f"{what}={value!r}: give a number of seconds above 0")
        self.store, self.max_runs, self.lease, self.poll = store, max_runs, float(lease), poll
        self.name = name or this_process()
        self._say = say
        self._options: RunOptions = {**(options or {})}
        self.keyring = keyring or Keyring()
        self.allow_private = frozenset(allow_private)
        self._active: dict[str, tuple[threading.Thread, FencedStore, RunHandle]] = {}
        self._lock = threading.Lock()
        self._stopping, self._wake, self._closed = (threading.Event() for _ in range(3))
        self._next_tick = 0.0  # when to look for due cron slots again

    @property
    def running(self) -> list[str]:
        """The ids of the runs this worker has in hand."""
        with self._lock:
            return list(self._active)

    def serve(self, *, until_idle: bool = False) -> None:
        """Claim and run until ``stop`` is called, then wait for the runs in hand.

        ``until_idle``: stop as well once nothing is queued and no run is in hand (a batch
        job, or cron, that empties the queue and exits).
        """
        renewer = threading.Thread(target=self._renew_all, name="pardag-lease", daemon=True)
        renewer.start()
        try:
            while not self._stopping.is_set():
                self._fire_schedules()
                if len(self.running) < self.max_runs:
                    record = self._claim()
                    if record is not None:
                        self._start(record)
                        continue
                    if until_idle and not self.running:
                        break
                self._wake.wait(self.poll)
                self._wake.clear()
            self._drain()
        finally:
            self._closed.set()
            renewer.join()

    def stop(self) -> None:
        """Claim nothing more; ``serve`` returns once the runs in hand have ended. Safe to
        call from a signal handler."""
        self._stopping.set()
        self._wake.set()

    # -- schedules (pardag.schedules) ---------------------------------------------------------

    def _fire_schedules(self) -> None:
        """Every ``poll`` seconds, fire the cron slots that are due (once among all workers)."""
        now = time.time()
        if now < self._next_tick:
            return
        self._next_tick = now + self.poll
        try:
            fire_due(self.store, now, self._start_scheduled, self._say)
        except StoreError as exc:  # the store may come back: the slot is still due then
            self._say(f"worker {self.name}: cannot fire schedules now: {exc}")

    def _start_scheduled(self, trigger: TriggerRecord, data: dict[str, object]) -> str:
        versions = self.store.workflow_versions(trigger.org, trigger.workflow_id)
        if not versions:
            raise ArgumentError(f"workflow {trigger.workflow_id} was deleted meanwhile")
        run_id = submit_stored(self.store, versions[-1], data, "schedule")
        self._say(
            f"worker {self.name}: schedule {trigger.cron!r} started run {run_id} "
            f"({versions[-1].name}, {data['slot']})"
        )
        return run_id

    # -- claiming and running ---------------------------------------------------------------

    def _claim(self) -> RunRecord | None:
        try:
            return self.store.claim(self.name, self.lease, time.time())
        except StoreError as exc:  # the store may come back: say so and ask again later
            self._say(f"worker {self.name}: cannot claim a run now: {exc}")
            return None

    def _start(self, record: RunRecord) -> None:
        fenced = FencedStore(self.store)  # closed to the run's writes if the lease is lost
        handle = RunHandle()  # how the lease thread cancels it when asked to
        thread = threading.Thread(
            target=self._run,
            args=(record, fenced, handle),
            name=f"pardag-run-{record.run_id[:12]}",
        )
        with self._lock:
            self._active[record.run_id] = (thread, fenced, handle)
        thread.start()

    def _run(self, record: RunRecord, fenced: FencedStore, handle: RunHandle) -> None:
        """Run one claimed run here; let go of its lease however it ends."""
        how = "taking over" if record.claims > 1 else "running"
        self._say(f"worker {self.name}: {how} run {record.run_id} ({record.workflow})")
        paused = False
        try:
            result = run_recorded(fenced, record, self._run_options(record), handle)
            self._say(f"worker {self.name}: run {record.run_id} {result.status} here")
            paused = result.status == RunStatus.PAUSED and not fenced.fenced
        except Exception as exc:  # it could not run here (its file gone, say): fail it, said why
            if not fenced.fenced:  # else it is another worker's run now
                self._fail(record, exc)
        finally:
            with self._lock:
                del self._active[record.run_id]
            try:
                self.store.release(record.run_id, self.name)
            except StoreError as exc:  # then its lease expires; the run is final already
                self._say(f"worker {self.name}: cannot release run {record.run_id}: {exc}")
            if paused:
                self._cancel_paused(record.run_id)
            self._wake.set()

    def _cancel_paused(self, run_id: str) -> None:
        """A run that paused (for an approval) before this worker read a request to cancel
        it: cancel it now, as ``pardag cancel`` cancels a paused run, naming who asked."""
        try:
            now = self.store.get_run(run_id)
            if now is None or now.status != RunStatus.PAUSED or now.cancel_requested is None:
                return
            cancel(run_id, store=self.store, by=now.cancel_requested)
            self._say(
                f"worker {self.name}: cancelled paused run {run_id} (asked by "
                f"{now.cancel_requested})"
            )
        except (StoreError, ArgumentError) as exc:  # answered or cancelled meanwhile, say
            self._say(f"worker {self.name}: cannot cancel paused run {run_id}: {exc}")

    def _run_options(self, record: RunRecord) -> RunOptions:
        """The options of one run: the worker's, the run's organisation's stored secrets
        before its own, and the service's egress preset for a run the service queued, unless
        its organisation is allowed private addresses."""
        own = self._options.get("secret_sources")
        if own is None:
            own = default_sources(self._options.get("secrets_file"))
        sources = run_sources(self.store, record.org, self.keyring, own)
        options: RunOptions = {**self._options, "secret_sources": sources}
        if service_origin(record) is None or record.org in self.allow_private:
            return options
        return {**options, "egress_floor": service_floor(record.org)}

    def _fail(self, record: RunRecord, exc: Exception) -> None:
        why = f"worker {self.name} could not run it: {type(exc).__name__}: {exc}"
        self._say(f"worker {self.name}: run {record.run_id} failed: {why}")
        update = RunUpdate(record.run_id, status=RunStatus.FAILED.value, error=why)
        update.finished_at = time.time()
        try:
            self.store.write(runs=[update])
        except StoreError as again:
            self._say(f"worker {self.name}: cannot record run {record.run_id} failed: {again}")

    def _drain(self) -> None:
        """Wait for the runs in hand (in short waits, so that signals are handled)."""
        while threads := list(self._active_threads()):
            for thread in threads:
                thread.join(0.2)

    def _active_threads(self) -> list[threading.Thread]:
        with self._lock:
            return [thread for thread, _, _ in self._active.values()]

    # -- leases -----------------------------------------------------------------------------

    def _renew_all(self) -> None:
        """Every ``poll`` seconds, cancel the runs in hand someone asked to cancel; every third
        of a lease, renew the lease of each run in hand."""
        every = min(self.poll, self.lease / 3)
        due = time.monotonic() + self.lease / 3
        while not self._closed.wait(every):
            self._cancel_asked()
            if time.monotonic() >= due:
                due = time.monotonic() + self.lease / 3
                self._renew_held()

    def _cancel_asked(self) -> None:
        """Cancel each run in hand that someone asked to cancel (``Store.cancel_requests``)."""
        with self._lock:
            handles = {run_id: h for run_id, (_, f, h) in self._active.items() if not f.fenced}
        if not handles:
            return
        try:
            asked = self.store.cancel_requests(self.name)
        except StoreError as exc:  # asked again at the next check
            self._say(f"worker {self.name}: cannot read the cancel requests now: {exc}")
            return
        for run_id, by in asked.items():
            handle = handles.get(run_id)
            if handle is not None and handle.cancel(by):
                self._say(f"worker {self.name}: cancelling run {run_id} (asked by {by})")

    def _renew_held(self) -> None:
        """Renew the lease of each run in hand; a run whose lease another worker took over is
        fenced: it records nothing more."""
        with self._lock:
            held = [(run_id, f) for run_id, (_, f, _) in self._active.items() if not f.fenced]
        for run_id, fenced in held:
            try:
                kept = self.store.renew(run_id, self.name, self.lease, time.time())
            except StoreError as exc:
                self._say(f"worker {self.name}: cannot renew the lease on {run_id}: {exc}")
                continue
            if not kept and run_id in self.running:
                why = (
                    f"worker {self.name} lost its lease on run {run_id}: another worker "
                    "took it over (this one was stalled for longer than the lease; give "
                    "a longer --lease), so this one records nothing more of it"
                )
                fenced.fence(why)
                self._say(why)
