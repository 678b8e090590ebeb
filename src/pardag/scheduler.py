"""The ready-queue state machine of a run: no I/O, no threads, no clock of its own.

It follows graphlib's protocol over typed, flat state indexed by step number::

    sched = Scheduler(graph, mode=Mode.DYNAMIC, limit=8, pools={"db": Pool(2)})
    sched.prepare()
    while sched.is_active():
        for i in sched.get_ready(now):   # steps to start now, slots already taken
            ...
        sched.done(i, StepState.SUCCEEDED)   # as results come back

Selection policy. Every step gets a fixed position in one total order, computed once:
``dynamic`` and ``sequential`` sort by higher ``priority``, then longer remaining critical path
(upward rank), then declaration order; ``levels`` sorts by level, then id as a string. Ready
steps sit in a heap of positions, so dispatch order is deterministic and independent of hash
seeds. ``levels`` also holds back every step above the current level until that level is final.

Limits. ``limit`` caps running steps; each pool caps the steps holding it (and may carry a
token-bucket rate). A step whose pool is full waits in that pool's queue, out of the way of
steps behind it that could run; ``waiting_on`` says what it waits for.

Resolution. When a step's last dependency is final, its trigger rule decides: ready, or
skipped with a reason, which then propagates (iteratively) to its own dependents. An edge with
a branch handle counts as skipped unless its condition chose that handle.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pardag.model import Graph
from pardag.scheduler_maps import MappedSteps, _Fan
from pardag.states import Mode, StepState, Trigger

__all__ = ["Pool", "Scheduler"]

PENDING, READY, RUNNING = StepState.PENDING, StepState.READY, StepState.RUNNING
SUCCEEDED, FAILED = StepState.SUCCEEDED, StepState.FAILED
SKIPPED, CANCELLED = StepState.SKIPPED, StepState.CANCELLED
_BAD = (FAILED, CANCELLED)
_NONE: dict[int, int] = {}  # shared by every step that uses no pool; never written


@dataclass(slots=True)
class Pool:
    """A named resource pool: ``size`` units, optionally at most ``rate`` acquisitions/second."""

    size: int
    rate: float | None = None
    free: int = 0
    tokens: float = 0.0
    stamp: float = -math.inf
    queue: list[int] = field(default_factory=list)  # heap of positions waiting for it

    def __post_init__(self) -> None:
        self.free = self.size
        self.tokens = 1.0

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last look (burst of at most one second's worth)."""
        if self.rate is not None and now > self.stamp:
            cap = max(1.0, self.rate)
            if self.stamp != -math.inf:
                self.tokens = min(cap, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now


class Scheduler(MappedSteps):
    """Bookkeeping of one run; see the module docstring. Only the runner calls it."""

    def __init__(
        self,
        graph: Graph,
        *,
        mode: Mode = Mode.DYNAMIC,
        limit: int | None = None,
        pools: Mapping[str, Pool] | None = None,
        durations: Sequence[float] | None = None,
        resources: Sequence[Mapping[str, int]] | None = None,
    ) -> None:
        n = len(graph.ids)
        self.graph = graph
        self.state: list[StepState] = [PENDING] * n
        self.reason: dict[int, str] = {}
        self.chosen: dict[int, str] = {}
        self.waiting_on: dict[int, str] = {}
        self.waits: list[int] = []  # steps newly parked on a pool, for the runner to report
        self.limit = 1 if mode is Mode.SEQUENTIAL else limit
        self.running = 0
        self.unfinished = n
        self.pools = dict(pools or {})
        self._pool_names = list(self.pools)
        self._pool_list = list(self.pools.values())
        ix = {name: k for k, name in enumerate(self._pool_names)}
        wants = resources if resources is not None else [s.resources for s in graph.steps]
        self._amounts = [{ix[n]: a for n, a in r.items()} if r else _NONE for r in wants]
        self._needs = [tuple(a) if a else () for a in self._amounts]
        self._waiting = [len(p) for p in graph.preds]
        self._handles = bool(graph.handles)
        self._triggers = [Trigger(s.trigger) for s in graph.steps]
        self._levels = mode is Mode.LEVELS
        self._level = graph.levels() if self._levels else []
        self._at_level = 0
        self._left_in_level = _count(self._level)
        self._pos, self._by_pos = _positions(graph, self._level, mode, durations)
        self._heap: list[int] = []
        self._held: dict[int, tuple[int, ...]] = {}  # step -> pools it holds units of
        self._detached: dict[int, tuple[int, tuple[int, ...]]] = {}  # token -> (step, pools)
        self._tokens = 0
        self._vacated: set[int] = set()
        self.paused: set[int] = set()
        self.wakeup_at: float | None = None
        self.log: list[int] = []  # steps that became ready or final, for the runner to report
        self.log_all = True
        """False: log only what the caller cannot know (cascaded skips, cancellations), not
        steps made ready nor the step given to ``done``; a runner without listeners needs no
        more."""
        self._fans: dict[int, _Fan] = {}  # mapped step -> its instances (see ``expand``)
        self._member: dict[int, int] = {}  # instance -> its mapped step
        self.fans_done: list[int] = []  # mapped steps whose instances are all final

    @property
    def ready_queue(self) -> list[int]:
        """The heap of positions of ready steps waiting for a slot (the same list for the
        whole run): empty when no step waits."""
        return self._heap

    # -- the graphlib protocol ------------------------------------------------------------

    def prepare(self) -> None:
        """Make the steps without dependencies (or with only restored ones) ready."""
        state = self.state
        for i, w in enumerate(self._waiting):
            if w == 0 and state[i] is PENDING:
                self._resolve(i)

    def restore(self, final: Mapping[int, tuple[StepState, str | None, str | None]]) -> None:
        """Before ``prepare``: steps that became final in an earlier process (a resumed run)
        keep their (state, chosen handle, reason); their dependents count them as done."""
        waiting, succs = self._waiting, self.graph.succs
        for i, (outcome, handle, reason) in final.items():
            if handle is not None:
                self.chosen[i] = handle
            self._finish(i, outcome, reason, log=False)
            for s in succs[i]:
                waiting[s] -= 1

    def is_active(self) -> bool:
        """True while some step is not final."""
        return self.unfinished > 0

    def get_ready(self, now: float = 0.0) -> list[int]:
        """Steps to start now, best first; their slots and pool units are taken."""
        out: list[int] = []
        heap, by_pos, state = self._heap, self._by_pos, self.state
        limit = self.limit if self.limit else math.inf
        self.wakeup_at = None
        while heap and self.running < limit:
            i = by_pos[heap[0]]
            if self._levels and self._level[i] > self._at_level:  # lower: a stale place
                break
            heapq.heappop(heap)
            if state[i] is not READY:  # claimed out of turn meanwhile (see ``claim``)
                if self._fans and i in self._fans:  # or a mapped step: its next instance
                    self._next_instance(i, now, out)
                continue
            if self._needs[i] and not self._acquire(i, now):
                continue
            state[i] = RUNNING
            self.running += 1
            out.append(i)
        return out

    def done(
        self, i: int, outcome: StepState, *, handle: str | None = None, reason: str | None = None
    ) -> None:
        """Record step ``i`` as final (``SUCCEEDED``, ``FAILED``, ``SKIPPED`` or ``CANCELLED``).

        ``handle`` is the branch a condition step chose; ``reason`` explains a skip or failure.
        """
        if self.state[i] is RUNNING:
            if self._vacated and i in self._vacated:
                self._vacated.discard(i)
            else:
                self.release(i)
        if handle is not None:
            self.chosen[i] = handle
        self._finish(i, outcome, reason, self.log_all)
        if self.graph.succs[i]:
            self._propagate([i])

    def release(self, i: int) -> None:
        """Give back the slot and pool units that step ``i`` holds."""
        self.running -= 1
        if self._needs[i]:  # most steps hold no pool: skip the lookup
            self._give_back(i, self._held.pop(i, ()))
        if self._member and i in self._member:
            m = self._member[i]
            self._fans[m].running -= 1
            self._wake_fan(m)

    def pause(self, i: int) -> None:
        """Running step ``i`` waits for a person: it gives back its slot and stays unfinished
        (its dependents wait); ``paused`` lists such steps."""
        if self.state[i] is RUNNING:
            self.release(i)
        self.state[i] = StepState.PAUSED
        self.paused.add(i)

    def unpause(self, i: int) -> None:
        """Paused step ``i`` competes for a slot again (its wait timed out: it decides)."""
        self.paused.discard(i)
        self._back_in_line(i)

    def vacate(self, i: int) -> None:
        """Give back running step ``i``'s slot now; ``done`` follows later with its outcome.

        For a step that has ended but whose end the run store has not committed yet: the next
        step may take the slot, while its dependents wait for the commit.
        """
        if i in self._vacated:  # a mapped step gave its slot back when it expanded
            return
        self.release(i)
        self._vacated.add(i)

    def claim(self, i: int) -> bool:
        """Mark ready step ``i`` running without waiting for its turn; False if it is not ready.

        For a step whose worker started it straight after its only dependency (the slot that
        dependency gave back is the one it takes). Its place in the ready queue is skipped.
        """
        if self.state[i] is not READY:
            return False
        self.state[i] = RUNNING
        self.running += 1
        if self._needs[i]:  # the units its dependency just gave back, even if others queue
            for p in self._needs[i]:
                self._pool_list[p].free -= self._amounts[i][p]
            self._held[i] = self._needs[i]
        return True

    def adopt(self, i: int) -> int:
        """Hold a slot for work on step ``i`` the scheduler did not start, as ``detach`` does.

        For a step a worker started just as the run began to stop: it cannot be stopped, so its
        slot stays taken until ``release_detached(token)``.
        """
        self._tokens += 1
        self._detached[self._tokens] = (i, ())
        self.running += 1
        return self._tokens

    def detach(self, i: int) -> int:
        """Move running step ``i``'s slot to a token, kept until ``release_detached(token)``.

        For work that cannot be stopped (a thread): the step can be settled (failed, cancelled,
        retried) while its slot stays taken until the work really ends.
        """
        self._tokens += 1
        self._detached[self._tokens] = (i, self._held.pop(i, ()))
        self.state[i] = READY
        return self._tokens

    def release_detached(self, token: int) -> None:
        """The work behind a ``detach`` token has ended: free its slot."""
        i, held = self._detached.pop(token)
        self.running -= 1
        if held:
            self._give_back(i, held)
        if self._member and i in self._member:  # an instance's thread: its map's count too
            self._fans[self._member[i]].running -= 1
            self._wake_fan(self._member[i])

    def resize_pool(self, name: str, size: int) -> None:
        """Change a pool's size while the run goes on; units in use stay taken."""
        pool = self.pools[name]
        pool.free += size - pool.size
        pool.size = size
        self._unqueue(pool)

    def _give_back(self, i: int, held: tuple[int, ...]) -> None:
        for p in held:
            pool = self._pool_list[p]
            pool.free += self._amounts[i][p]
            self._unqueue(pool)

    def _unqueue(self, pool: Pool) -> None:
        """Move as many of a pool's waiters back to the ready heap as it could now serve."""
        for _ in range(min(pool.free, len(pool.queue))):
            heapq.heappush(self._heap, heapq.heappop(pool.queue))

    # -- retries and cancellation -----------------------------------------------------------

    def retry_later(self, i: int) -> None:
        """Step ``i`` failed an attempt and waits out a backoff: it holds no slot meanwhile."""
        if self.state[i] is RUNNING:
            self.release(i)
        self.state[i] = StepState.RETRYING

    def requeue(self, i: int) -> None:
        """A retrying step's backoff is over: it competes for a slot again."""
        self._back_in_line(i)
        if self.log_all:
            self.log.append(i)

    def _back_in_line(self, i: int) -> None:
        self.state[i] = READY
        if self._member and i in self._member:  # an instance: back among its map's waiting
            heapq.heappush(self._fans[self._member[i]].pending, i)
        heapq.heappush(self._heap, self._pos[i])

    def cancel_pending(self, reason: str) -> list[int]:
        """Cancel every step not started or not final yet except running ones; return them."""
        cancelled = [i for i, s in enumerate(self.state) if not s.is_final() and s is not RUNNING]
        for i in cancelled:
            self._finish(i, CANCELLED, reason)
        self._heap.clear()
        for pool in self.pools.values():
            pool.queue.clear()
        for fan in self._fans.values():
            fan.pending.clear()
        return cancelled

    def running_steps(self) -> list[int]:
        """Steps currently running."""
        return [i for i, s in enumerate(self.state) if s is RUNNING]

    def detached_steps(self) -> list[int]:
        """Steps whose work still holds a slot after they were settled (``detach``, ``adopt``):
        a thread that could not be stopped."""
        return sorted({i for i, _ in self._detached.values()})

    # -- internals --------------------------------------------------------------------------

    def _finish(self, i: int, outcome: StepState, reason: str | None, log: bool = True) -> None:
        self.state[i] = outcome
        if reason is not None:
            self.reason[i] = reason
        self.unfinished -= 1
        if log:
            self.log.append(i)
        if self._member and i in self._member:
            m = self._member[i]
            self._fans[m].left -= 1
            if not self._fans[m].left:
                self.fans_done.append(m)
        if self._levels:
            level = self._level[i]
            self._left_in_level[level] -= 1
            while (
                self._at_level < len(self._left_in_level)
                and self._left_in_level[self._at_level] == 0
            ):
                self._at_level += 1

    def _propagate(self, finished: list[int]) -> None:
        """Release the dependents of ``finished`` steps; skips cascade without recursion."""
        waiting, succs, state = self._waiting, self.graph.succs, self.state
        stack = finished
        while stack:
            for s in succs[stack.pop()]:
                waiting[s] -= 1
                if waiting[s] == 0 and state[s] is PENDING and self._resolve(s):
                    stack.append(s)

    def _resolve(self, s: int) -> bool:
        """Apply the trigger rule to ``s``, whose dependencies are all final; True if skipped."""
        why = self._trigger_blocks(s)
        if why is None:
            self.state[s] = READY
            if self._member and s in self._member:  # an instance waiting for its gate
                heapq.heappush(self._fans[self._member[s]].pending, s)
                self._wake_fan(self._member[s])
            else:
                heapq.heappush(self._heap, self._pos[s])
            if self.log_all:
                self.log.append(s)
            return False
        self._finish(s, SKIPPED, why)
        return True

    def _trigger_blocks(self, s: int) -> str | None:
        """None when step ``s`` should run, else the reason it is skipped."""
        preds = self.graph.preds[s]
        if not preds:
            return None
        state = self.state
        if not self._handles and all(state[p] is SUCCEEDED for p in preds):
            return None  # the common case, whatever the rule
        rule = self._triggers[s]
        if rule == Trigger.ALL_DONE:
            return None
        ok_any = False
        first_bad: str | None = None
        first_skip: str | None = None
        for p in preds:
            st = self._effective(p, s)
            if st is SUCCEEDED:
                ok_any = True
            elif st in _BAD:
                first_bad = first_bad or f"upstream failed: {self.graph.ids[p]}"
            else:
                first_skip = first_skip or self._skip_reason(p, s)
        if rule == Trigger.ANY_SUCCESS:
            return None if ok_any else (first_bad or first_skip or "no upstream succeeded")
        if rule == Trigger.NONE_FAILED:
            return first_bad
        return first_bad or first_skip

    def _effective(self, p: int, s: int) -> StepState:
        st = self.state[p]
        if st is SUCCEEDED and self.graph.handles:
            want = self.graph.handles.get((p, s))
            if want is not None and self.chosen.get(p) != want:
                return SKIPPED
        return st

    def _skip_reason(self, p: int, s: int) -> str:
        pid = self.graph.ids[p]
        if self.state[p] is SUCCEEDED:
            want = self.graph.handles[(p, s)]
            return f"branch not taken: {pid} chose {self.chosen.get(p)!r}, not {want!r}"
        return f"upstream skipped: {pid}"

    def _acquire(self, i: int, now: float) -> bool:
        """Take step ``i``'s pool units, or queue it on the first pool that cannot give them."""
        amounts = self._amounts[i]
        for p in self._needs[i]:
            pool = self._pool_list[p]
            if pool.free < amounts[p]:
                heapq.heappush(pool.queue, self._pos[i])
                self._park(i, f"pool {self._pool_names[p]!r} (all {pool.size} in use)")
                return False
            if pool.rate is not None:
                pool.refill(now)
                if pool.tokens < 1.0:
                    heapq.heappush(pool.queue, self._pos[i])
                    self._park(i, f"pool {self._pool_names[p]!r} (rate {pool.rate:g}/s)")
                    wake = now + (1.0 - pool.tokens) / pool.rate
                    self.wakeup_at = wake if self.wakeup_at is None else min(self.wakeup_at, wake)
                    return False
        for p in self._needs[i]:
            pool = self._pool_list[p]
            pool.free -= amounts[p]
            if pool.rate is not None:
                pool.tokens -= 1.0
        self._held[i] = self._needs[i]
        self.waiting_on.pop(i, None)
        return True

    def _park(self, i: int, what: str) -> None:
        if self.waiting_on.get(i) != what:
            self.waiting_on[i] = what
            self.waits.append(i)

    def wake_rate_limited(self) -> None:
        """Put steps waiting on a pool's rate back in the ready heap (the runner's timer fired)."""
        for pool in self._pool_list:
            if pool.rate is not None:
                self._unqueue(pool)


def _positions(
    g: Graph, level: list[int], mode: Mode, durations: Sequence[float] | None
) -> tuple[list[int], list[int]]:
    """Each step's place in the one order of its run, and the step at each place."""
    n = len(g.ids)
    if mode is Mode.LEVELS:
        keys: list[tuple[object, ...]] = [(level[i], g.ids[i]) for i in range(n)]
        by_pos = sorted(range(n), key=keys.__getitem__)
    else:
        # Stable sorts, least significant key first: declaration order breaks the ties.
        longest_first = [-r for r in g.upward_rank(durations)]
        by_pos = sorted(range(n), key=longest_first.__getitem__)
        if any(s.priority for s in g.steps):
            highest_first = [-s.priority for s in g.steps]
            by_pos.sort(key=highest_first.__getitem__)
    pos = [0] * n
    for k, i in enumerate(by_pos):
        pos[i] = k
    return pos, by_pos


def _count(levels: list[int]) -> list[int]:
    counts = [0] * (max(levels) + 1 if levels else 0)
    for level in levels:
        counts[level] += 1
    return counts
