"""The ways into a run: ``Workflow.run`` (its own event loop, Ctrl-C handled), ``run_async``
(inside the caller's loop) and ``resume_run`` (a recorded run, going on in this process).

Each checks the options, opens the run store the run records to (closing it afterwards when it
opened it), builds a ``Runner`` and drives it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pardag.clock import SystemClock
from pardag.egress import EgressPolicy
from pardag.errors import ArgumentError
from pardag.journal import Journal
from pardag.kinds import RunContext
from pardag.model import Workflow, param_problem, with_overrides
from pardag.options import RUN_OPTIONS, SETTING_OPTIONS, RunOptions, check_options
from pardag.recording import Resumption, open_run_store, run_record
from pardag.results import RunResult
from pardag.runner.core import Runner
from pardag.runner.events import Announcer
from pardag.runner.handle import RunHandle
from pardag.runner.mapping import fork_graph, has_maps
from pardag.runner.plan import make_plan, past_durations
from pardag.runner.records import RunRecords
from pardag.runner.state import RunState
from pardag.secrets import SECRETS_KEY, Secrets, default_sources
from pardag.store.masked import MaskedStore
from pardag.triggerdata import recorded_trigger, with_trigger

__all__ = ["new_runner", "resume_run", "run_sync", "run_workflow"]


def run_sync(
    wf: Workflow,
    options: RunOptions,
    resumption: Resumption | None = None,
    handle: RunHandle | None = None,
) -> RunResult:
    """``Workflow.run``: run on a fresh event loop; Ctrl-C cancels cleanly, a second exits.
    ``handle`` gets the runner once built, so another thread can cancel the run."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ArgumentError(
            "wf.run() was called inside a running event loop; use "
            "'await wf.run_async(...)' there instead"
        )
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(_run_with_signals(wf, options, resumption, handle))
    except KeyboardInterrupt:  # the second Ctrl-C: leave now, without waiting for threads
        _close_loop(loop, wait_for_threads=False)
        raise
    _close_loop(loop, wait_for_threads=True)
    return result


def resume_run(
    wf: Workflow, resumption: Resumption, options: RunOptions, handle: RunHandle | None = None
) -> RunResult:
    """Go on with the recorded run ``resumption`` in this process (``pardag.resume``);
    ``handle``: as for ``run_sync``."""
    return run_sync(wf, options, resumption, handle)


async def run_workflow(wf: Workflow, options: RunOptions) -> RunResult:
    """``Workflow.run_async``: one run, recorded when a store is given or configured."""
    runner, close = new_runner(wf, options)
    try:
        return await runner.run()
    finally:
        close()


def new_runner(
    wf: Workflow, options: RunOptions, resumption: Resumption | None = None
) -> tuple[Runner, Callable[[], None]]:
    """A runner for ``wf`` with ``options``, assembled from its parts (the plan, the state,
    the run store's journal, events), and what to call once it is done (closing a store it
    opened). Every option is checked before the store is opened."""
    check_options(options, RUN_OPTIONS, "run()")
    given = options.get("params") or {}
    unknown = [m for name in given if (m := param_problem(wf, name)) is not None]
    if unknown:
        raise ArgumentError("run(params=...): " + "; ".join(unknown))
    use_cache = options.get("cache", True)
    if not isinstance(use_cache, bool):
        raise ArgumentError(
            f"cache={use_cache!r} is not valid; give cache=False to run every step without "
            "looking in the cache (fresh outputs still refresh it), or leave it out"
        )
    overrides: Mapping[str, Any] = {k: v for k, v in options.items() if k in SETTING_OPTIONS}
    settings = with_overrides(wf.settings, overrides)
    graph = wf.compile()
    if has_maps(graph):  # its instances are appended to the run's own copy
        graph = fork_graph(graph)
    params = {**wf.params, **given}
    secrets = _run_secrets(wf, options, params)  # a missing secret: before the store opens
    store, owned = open_run_store(options.get("store"))
    masked = MaskedStore(store, secrets.masker) if store is not None and secrets else store
    record = resumption.record if resumption is not None else None
    if record is None and store is not None:
        record = run_record(wf, uuid.uuid4().hex)
    run_id = record.run_id if record is not None else uuid.uuid4().hex
    clock = options.get("clock") or SystemClock()
    floor = options.get("egress_floor")
    egress = EgressPolicy(settings.http_allow, settings.http_deny, floor=floor)
    if record is not None and resumption is not None:  # a queued run's trigger data, kept
        params = with_trigger(params, recorded_trigger(record.trigger_json))
    context = RunContext(run_id, wf.name, params, clock=clock, egress=egress)
    context.state[SECRETS_KEY] = secrets
    first_event = 1
    if resumption is not None:
        context.paused_at.update(resumption.paused_since)  # approval waits so far
        first_event = resumption.first_event
    journal = Journal(masked, run_id, first_event, clock) if masked is not None else None
    listeners = [*options.get("listeners", ()), *([journal] if journal is not None else [])]
    encoder = options.get("encoder")
    plan = make_plan(
        graph,
        settings,
        context,
        durable=journal is not None,
        exact_events=bool(listeners),
        encoder=encoder,
        durations=past_durations(store, wf.name, graph, settings.mode),
        lookups=use_cache,
    )
    state = RunState.of(len(graph.ids))
    events = Announcer(listeners, run_id, graph.ids, state.attempts, clock, secrets.masker)
    records = None
    if journal is not None and record is not None:
        records = RunRecords(journal, plan, state, record, clock, encoder, secrets)
    runner = Runner(plan, context, state, events, records, resumption)
    return runner, (store.close if owned and store is not None else _nothing)


def _run_secrets(wf: Workflow, options: RunOptions, params: dict[str, Any]) -> Secrets:
    """The run's secrets (a ``Secret`` param's value goes into ``params``); see
    ``pardag.secrets``."""
    sources = options.get("secret_sources")
    if sources is None:
        sources = default_sources(options.get("secrets_file"))
    declared = getattr(wf, "secrets", ())
    return Secrets.for_run(declared, options.get("secrets"), params, sources)


def _nothing() -> None:
    pass


async def _run_with_signals(
    wf: Workflow, options: RunOptions, resumption: Resumption | None, handle: RunHandle | None
) -> RunResult:
    runner, close = new_runner(wf, options, resumption)
    if handle is not None:
        handle.attach(runner, asyncio.get_running_loop())
    handled = threading.current_thread() is threading.main_thread() and os.name == "posix"
    interrupts = _Interrupts(runner, asyncio.get_running_loop()) if handled else None
    if interrupts is not None:
        interrupts.install()
    try:
        return await runner.run()
    finally:
        if handle is not None:
            handle.detach()
        close()
        if interrupts is not None:
            interrupts.uninstall()


_STOPPED_BY = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "`pardag cancel` (SIGTERM)"}
"""What stops a run, by the signal it sends: ``pardag cancel`` sends SIGTERM (so does
``kill PID``), Ctrl-C SIGINT. The first cancels the run; the second, of either, leaves."""


class _Interrupts:
    """The signals that stop a run of ``Workflow.run``, counted on its loop.

    The first cancels the run, which then waits for the steps it cannot stop (threads): it
    says which, and that a second Ctrl-C leaves now. The second records the run as cancelled
    and leaves with ``KeyboardInterrupt`` (``run_sync`` then does not wait for the threads).
    """

    def __init__(self, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
        self.runner, self.loop, self.presses = runner, loop, 0

    def install(self) -> None:
        for signum, by in _STOPPED_BY.items():
            self.loop.add_signal_handler(signum, self.on_signal, by)

    def uninstall(self) -> None:
        for signum in _STOPPED_BY:
            self.loop.remove_signal_handler(signum)

    def on_signal(self, by: str) -> None:
        self.presses += 1
        if self.presses == 1:
            self.runner.cancel(by)
            runner = self.runner  # its threads go on after the run stopped them
            waiting = [runner.plan.graph.ids[i] for i in runner.sched.detached_steps()]
            if waiting:
                print(_waiting_for(self.runner.run_id, by, waiting), file=sys.stderr, flush=True)
            return
        self.uninstall()
        self.runner.leave()
        raise KeyboardInterrupt


def _waiting_for(run_id: str, by: str, steps: list[str]) -> str:
    names = ", ".join(repr(s) for s in steps[:_NAMED]) + (
        f" and {len(steps) - _NAMED} more" if len(steps) > _NAMED else ""
    )
    step_s = "step" if len(steps) == 1 else "steps"
    return (
        f"pardag: run {run_id[:12]} cancelled by {by}; waiting for {step_s} {names} to return "
        "(on threads, which cannot be stopped); press Ctrl-C again to leave now"
    )


_NAMED = 5
"""How many still-running steps the message after the first Ctrl-C names."""


def _close_loop(loop: asyncio.AbstractEventLoop, *, wait_for_threads: bool) -> None:
    """Close the run's loop; after a second Ctrl-C, give tasks a moment but not threads."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        if wait_for_threads:
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
