"""The scheduler's part for mapped steps: instances that join a run while it goes on.

A mapped step's instances (``pardag.runner.mapping``) are appended to the scheduler's flat
lists when the step's turn comes; they share its place in the ready order and wait in a heap
of their own (item order), at most its ``max_concurrency`` running. ``Scheduler`` inherits
this; it is apart only so that each file stays readable.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pardag.model import Graph
from pardag.states import StepState

__all__ = ["MappedSteps"]

PENDING, READY, RUNNING = StepState.PENDING, StepState.READY, StepState.RUNNING


@dataclass(slots=True)
class _Fan:
    """The instances of one mapped step: those waiting (a heap of step numbers, so item order)
    and how many run, against the map's own ``cap``."""

    pending: list[int]
    cap: float
    left: int
    running: int = 0


class MappedSteps:
    """Mapped steps' instances in the ready queue; the state it reads is ``Scheduler``'s."""

    graph: Graph
    state: list[StepState]
    running: int
    unfinished: int
    _amounts: list[Mapping[int, int]]
    _needs: list[tuple[int, ...]]
    _triggers: list[object]
    _pos: list[int]
    _waiting: list[int]
    _levels: bool
    _level: list[int]
    _left_in_level: list[int]
    _heap: list[int]
    _fans: dict[int, _Fan]
    _member: dict[int, int]
    fans_done: list[int]

    if TYPE_CHECKING:  # ``Scheduler``'s own

        def vacate(self, i: int) -> None: ...
        def _acquire(self, i: int, now: float) -> bool: ...
        def _resolve(self, s: int) -> bool: ...

    def start_early(self, m: int) -> None:
        """Pending mapped step ``m`` starts before its source has ended (its instances will
        each wait for one of the source's, ``expand``'s ``gates``): as if its turn had come."""
        self.state[m] = RUNNING
        self.running += 1

    def expand(
        self, m: int, count: int, cap: int | None = None, gates: range | None = None
    ) -> range:
        """Running mapped step ``m`` becomes ``count`` instances, numbered after every step so
        far (the graph already lists them); returns their numbers. ``m`` gives back its slot
        and stays running until they are all final (then it is in ``fans_done``); they take
        its place in the ready order, dispatched in item order, at most ``cap`` at once.
        With ``gates`` (the instances of the map it maps over), instance k waits for gate k to
        end and follows its trigger rule then. Ready instances are not logged: the caller
        announces them, before any can start."""
        first = len(self.state)
        new = range(first, first + count)
        self.state.extend([READY if gates is None else PENDING] * count)
        self._amounts.extend([self._amounts[m]] * count)
        self._needs.extend([self._needs[m]] * count)
        self._triggers.extend([self._triggers[m]] * count)
        self._pos.extend([self._pos[m]] * count)  # its place in the ready order
        self._waiting.extend([0] * count)
        if self._levels:
            self._level.extend([self._level[m]] * count)
            self._left_in_level[self._level[m]] += count
        self.unfinished += count
        self.vacate(m)
        self._member.update(dict.fromkeys(new, m))
        if gates is None:
            self._fans[m] = _Fan(list(new), cap or math.inf, count)  # ascending: a heap already
            heapq.heappush(self._heap, self._pos[m])
            return new
        self._fans[m] = _Fan([], cap or math.inf, count)
        self._gate(new, gates)
        return new

    def _gate(self, new: range, gates: range) -> None:
        """Instance ``new[k]`` depends on ``gates[k]``: ready once it ends (at once if it has)."""
        preds, succs, state = self.graph.preds, self.graph.succs, self.state
        for j, g in zip(new, gates, strict=True):
            preds[j] = (g,)
            if state[g].is_final():
                self._resolve(j)
            else:
                self._waiting[j] = 1
                succs[g] = (*succs[g], j)

    def _next_instance(self, m: int, now: float, out: list[int]) -> None:
        """Mapped step ``m``'s turn came in the ready heap: start its next instance, if its
        cap and pools allow, and keep its place while more wait."""
        fan = self._fans[m]
        if not fan.pending or fan.running >= fan.cap:
            return  # ``release`` puts it back when an instance ends
        j = heapq.heappop(fan.pending)
        while self.state[j] is not READY:  # restored final (a resumed run): not run again
            if not fan.pending:
                return
            j = heapq.heappop(fan.pending)
        if self._needs[j] and not self._acquire(j, now):  # queued on the pool by ``m``'s place
            heapq.heappush(fan.pending, j)
            return
        self.state[j] = RUNNING
        self.running += 1
        fan.running += 1
        out.append(j)
        self._wake_fan(m)

    def _wake_fan(self, m: int) -> None:
        fan = self._fans[m]
        if fan.pending and fan.running < fan.cap:
            heapq.heappush(self._heap, self._pos[m])

    def parent_of(self, i: int) -> int | None:
        """The mapped step that instance ``i`` belongs to; None for any other step."""
        return self._member.get(i) if self._member else None
