"""Step outputs that stay on the Dask cluster, and how the steps that take them get them.

When a step on the cluster ends, its Dask future is held as long as a dependent on the cluster
may still take its output: that dependent's task then gets the future instead of a copy
pickled by the runner, so the data moves worker to worker (``Outputs.swap``). A held future is
released once every dependent that takes it has succeeded (``Outputs.used``), or when the run
ends (a dependent skipped or failed for good never takes it).

With ``keep_outputs_on_cluster``, an output that nothing in the runner reads is never pulled:
the runner holds a ``KeptOnCluster`` in its place (its type and size, no data), records that in
the run store, and shows it in the run's result (docs/scale-out.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pardag.executors.dask_worker import Slot

__all__ = ["KEPT_MARK", "KeptOnCluster", "Outputs", "unswapped"]

KEPT_MARK = "$pardag_kept_on_cluster"
"""The key of the JSON object a run store holds for an output kept on the cluster."""


@dataclass(frozen=True)
class KeptOnCluster:
    """A step's output that stayed on the Dask cluster: the runner never had its value.

    Its dependents on the cluster got the value itself; the run's result and the run store
    hold this, which says what it was. A resumed run reruns the step if a dependent still
    needs it (the cluster that held it may be gone)."""

    key: str
    """The Dask task that made it (``pardag-{run}-{step}-{attempt}``)."""
    type: str
    """Its Python type, e.g. ``bytes`` or ``pandas.DataFrame``."""
    nbytes: int
    """Its size as Dask counts it (``dask.sizeof``)."""

    def __repr__(self) -> str:
        return f"<{self.type} of {self.nbytes:,} bytes kept on the Dask cluster ({self.key})>"

    def to_json(self) -> dict[str, Any]:
        """What the run store keeps in the output's place."""
        return {KEPT_MARK: {"key": self.key, "type": self.type, "nbytes": self.nbytes}}

    @staticmethod
    def from_json(value: object) -> KeptOnCluster | None:
        """The ``KeptOnCluster`` a stored output stands for, or None if it is a real output."""
        if not isinstance(value, dict) or set(value) != {KEPT_MARK}:
            return None
        kept = value[KEPT_MARK]
        if not isinstance(kept, dict):
            return None
        return KeptOnCluster(str(kept.get("key")), str(kept.get("type")), int(kept["nbytes"]))


@dataclass(slots=True)
class _Held:
    value: Any  # the object the runner holds (the pulled value, or a KeptOnCluster)
    future: Any  # its distributed.Future
    waiting: int  # how many dependents on the cluster have still to succeed with it


class Outputs:
    """The futures of outputs held on the cluster, by the identity of what the runner holds."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}

    def hold(self, value: Any, future: Any, dependents: int) -> bool:
        """Keep ``future`` (which made ``value``) until ``dependents`` calls took it; False
        when ``value`` is an object held already (``None``, a small int: equal anyway)."""
        if id(value) in self._held:
            return False
        self._held[id(value)] = _Held(value, future, dependents)
        return True

    def swap(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], list[Any], list[int]]:
        """``args`` and ``kwargs`` with every held output (one level of containers deep, where
        pardag's binders put inputs) replaced by a ``Slot``; the futures for the slots, in
        order; and the ids of the outputs taken (for ``used``)."""
        if not self._held:
            return args, kwargs, [], []
        futures: list[Any] = []
        taken: list[int] = []

        def slot(value: Any) -> Any:
            held = self._held.get(id(value))
            if held is None or held.value is not value:
                return value
            taken.append(id(value))
            futures.append(held.future)
            return Slot(len(futures) - 1)

        def deep(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: slot(v) for k, v in value.items()}
            return slot(value)

        new_args = tuple(deep(a) for a in args)
        new_kwargs = {k: deep(v) for k, v in kwargs.items()}
        return new_args, new_kwargs, futures, taken

    def used(self, taken: list[int]) -> list[Any]:
        """A call that took these outputs succeeded: the futures no dependent needs now."""
        done = []
        for ident in taken:
            held = self._held.get(ident)
            if held is not None:
                held.waiting -= 1
                if held.waiting <= 0:
                    done.append(self._held.pop(ident).future)
        return done

    def drop_all(self) -> list[Any]:
        """Every held future (the run ends)."""
        futures = [h.future for h in self._held.values()]
        self._held.clear()
        return futures


def unswapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeptOnCluster | None:
    """A kept output that ``swap`` left in a call's arguments (its future is gone), if any."""
    for value in (*args, *kwargs.values()):
        inner = value.values() if isinstance(value, dict) else (value,)
        for v in inner:
            if isinstance(v, KeptOnCluster):
                return v
    return None
