"""The fast path for short steps on threads: chains and hand-ahead.

For steps of microseconds, the round trip from a worker thread to the event loop and back
costs more than the step. Two shortcuts cut it, only where nobody can tell the difference:
no listener and no run store (events and the journal must see each start as it happens).

* **Chains.** Step ``j`` *follows* ``i`` when it is ``i``'s only dependent and ``i`` its only
  dependency, both plain functions on threads with no timeout and no pool, ``j`` has no
  precondition and no cache, and the edge is not a branch. The worker that finishes ``i`` runs
  ``j`` itself (``Follower.follow``); the loop settles both afterwards (a ``Handoff``
  message), and the scheduler marks ``j`` running in the slot ``i`` gave back.
* **Hand-ahead.** While steps are short, ``HandAhead`` lets the scheduler hand ``AHEAD`` steps
  per thread over at once, so that a thread that finishes takes the next at once; once they
  are not, one per thread again, so that a higher-priority step that becomes ready is not
  stuck behind steps committed early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pardag.caching import CachePolicy
from pardag.executors import default_capacity
from pardag.kinds import Action
from pardag.kinds.base import no_inputs
from pardag.model import Graph, Settings, Step
from pardag.runner.state import Handoff, Message, RunState
from pardag.scheduler import Scheduler
from pardag.states import ExecutorName, Mode

if TYPE_CHECKING:
    from pardag.runner.plan import Check

__all__ = [
    "AHEAD",
    "SHORT_STEP",
    "Follower",
    "HandAhead",
    "chain_table",
    "executor_pool",
    "may_hand_ahead",
]

AHEAD = 16
"""Steps per thread handed to the thread pool at once while steps are short."""
SHORT_STEP = 0.001
"""Seconds (a moving average of dispatch to end) below which a step counts as short."""
_NO_INPUTS: dict[str, Any] = {}
_THREADS = ExecutorName.THREADS


def executor_pool(name: str) -> str:
    """The pool standing for executor ``name``'s own capacity under ``max_concurrency=0``."""
    return f"executor:{name}"


def chain_table(
    graph: Graph,
    executor_of: Sequence[str],
    checks: Sequence[Check | None],
    cache: Sequence[CachePolicy | None] | None,
    mode: Mode,
) -> dict[int, int] | None:
    """Each step that some step follows, mapped to its follower; None when there is none.

    ``levels`` mode has no chains: a follower would start before its level's turn.
    """
    if mode is Mode.LEVELS:
        return None
    steps, chain = graph.steps, {}
    for i, succs in enumerate(graph.succs):
        if len(succs) != 1 or executor_of[i] != _THREADS or steps[i].timeout is not None:
            continue
        j = succs[0]
        if (
            len(graph.preds[j]) == 1
            and executor_of[j] == _THREADS
            and steps[j].timeout is None
            and checks[j] is None
            and (cache is None or cache[j] is None)
            and not steps[i].resources
            and not steps[j].resources
            and (i, j) not in graph.handles
        ):
            chain[i] = j
    return chain or None


def may_hand_ahead(steps: Sequence[Step], executor_of: Sequence[str], mode: Mode) -> bool:
    """Whether steps may be handed over ahead: every step a plain function on threads with
    no timeout (a timeout must start with its step), in a mode that is not sequential."""
    if mode is Mode.SEQUENTIAL or any(name != _THREADS for name in executor_of):
        return False
    return all(step.timeout is None for step in steps)


class Follower:
    """Runs a chain on: the ``follow`` and ``on_follow`` hooks of the thread executor."""

    def __init__(
        self,
        chain: Mapping[int, int],
        graph: Graph,
        actions: Sequence[Action],
        params: Mapping[str, Any],
        state: RunState,
        waiting: list[int],
        reported: dict[asyncio.Future[Any], int],
        post: Callable[[Message], None],
    ) -> None:
        self._chain, self._ids, self._actions, self._params = chain, graph.ids, actions, params
        self._state = state
        self._waiting = waiting  # the scheduler's ready heap: a step waits for a slot
        self._reported = reported
        self._post = post

    def follow(self, i: int, output: Any) -> tuple[int, Callable[..., Any], Any, Any] | None:
        """On the worker thread that ran step ``i``: the call of the step to run next, or None.

        Reads only what does not change during the run, plus two racy looks (is the run
        stopping, does any step wait for a slot) whose stale answer only means a step starts
        as if it had been dispatched a moment earlier.
        """
        j = self._chain.get(i)
        if j is None or self._state.stop is not None or self._waiting:
            return None
        action = self._actions[j]
        inputs = _NO_INPUTS if action.bind is no_inputs else {self._ids[i]: output}
        args, kwargs = action.bind(inputs, self._params)
        return j, action.fn, args, kwargs

    def on_follow(
        self,
        done: asyncio.Future[Any],
        output: Any,
        j: int,
        future: asyncio.Future[Any],
        started: float,
    ) -> None:
        """On the loop: the call behind ``done`` succeeded and its thread went on with ``j``."""
        i = self._reported.pop(done, None)
        if i is not None:
            self._reported[future] = j
            self._post(Handoff(i, done, j, future, started))


class HandAhead:
    """Widens the scheduler's limit ``AHEAD`` times while steps are short; see the module."""

    def __init__(self, settings: Settings, pools: Mapping[str, object]) -> None:
        self._limit = settings.max_concurrency
        pool = executor_pool(_THREADS)
        self._pool = pool if pool in pools else None
        self._factor = 1
        self._step_time = 4 * SHORT_STEP  # assume long steps until some finish quickly

    def observe(self, seconds: float, sched: Scheduler) -> None:
        """A step took ``seconds`` from dispatch to end; widen or narrow when that tips."""
        self._step_time += (seconds - self._step_time) * 0.1
        factor = AHEAD if self._step_time < SHORT_STEP else 1
        if factor == self._factor:
            return
        self._factor = factor
        if self._limit:
            sched.limit = self._limit * factor
        elif self._pool is not None:
            sched.resize_pool(self._pool, (default_capacity(_THREADS) or 1) * factor)
