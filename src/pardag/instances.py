"""Which recorded step is an instance of a mapped step, and of which: ``process[3]`` is item 3
of ``process``.

The run store keeps no parent column: an instance is journaled like any step, under its id, and
its parent is derived from that id and the run's other step ids. A declared step id cannot hold
brackets (``pardag.model.ID_PATTERN``), so ``id[digits]`` names an instance of ``id`` whenever
``id`` is a step of the same run. Runs recorded before mapping existed, and runs of every store
backend, read the same way, with no schema change. The run's table (``pardag.progress``),
``pardag show`` and ``pardag run --json`` all ask here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container

__all__ = ["instance_parent", "instances_of"]

_INSTANCE = re.compile(r"(.+)\[(\d+)\]")


def instance_parent(step_id: str, steps: Container[str]) -> str | None:
    """The mapped step whose instance ``step_id`` is (``"process"`` for ``"process[3]"``),
    or None for a step that is no instance. ``steps`` holds the ids of the run's steps (a set,
    or a mapping by id: ``result.steps``, the ids of ``store.get_steps(run_id)``)."""
    found = _INSTANCE.fullmatch(step_id)
    if found is None or found[1] not in steps:
        return None
    return found[1]


def instances_of(steps: Collection[str]) -> dict[str, list[str]]:
    """Each mapped step among ``steps`` -> its instances' ids, in item order (a mapped step
    whose list was empty has none, and is not listed)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for sid in steps:
        parent = instance_parent(sid, steps)
        if parent is not None:
            out.setdefault(parent, []).append((_item(sid), sid))
    return {parent: [sid for _, sid in sorted(found)] for parent, found in out.items()}


def _item(instance_id: str) -> int:
    """The item number of an instance id (``3`` for ``process[3]``)."""
    return int(instance_id[instance_id.rindex("[") + 1 : -1])
