"""The rules of a run's settings, in one place: which values are valid, and what is expected.

A run's settings reach pardag through three front ends: the Python API (``pardag.model``:
``Workflow(...)``, ``run(...)``), config files, ``PARDAG_*`` variables and flags
(``pardag.config``), and a workflow file's ``execution:`` section
(``pardag.formats.native_execution``). Each front end reads its own input into the value
``pardag.Settings`` holds (text to a number, ``"2m"`` to seconds with ``pardag.units``) and
words its own messages; whether that value is valid is decided here, so that the three cannot
drift apart. The names a choice may take come from ``pardag.states``.

Each rule returns None for a valid value, else what is expected, in words a message can end
with (``"an integer >= 0"``). Where a front end still reads a value its own way (a flag's
``"8"``, a file's ``"10/s"``), the call site says so.

This module sits at the bottom with the model: it imports only ``pardag.states`` and
``pardag.egress`` (the syntax of ``http.allow``/``http.deny`` entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

from pardag.egress import entries as http_list
from pardag.states import RUN_EXECUTORS, Mode, OnFailure

__all__ = [
    "EXECUTORS",
    "MODES",
    "ON_FAILURES",
    "dask_address",
    "executor",
    "http_entries",
    "http_list",
    "is_integer",
    "max_concurrency",
    "mode",
    "on_failure",
    "one_of",
    "pool_rate",
    "pool_size",
    "timeout",
]

MODES: tuple[str, ...] = tuple(m.value for m in Mode)
"""The values of ``mode``, as plain strings (for messages and suggestions)."""
ON_FAILURES: tuple[str, ...] = tuple(o.value for o in OnFailure)
"""The values of ``on_failure``."""
EXECUTORS: tuple[str, ...] = tuple(e.value for e in RUN_EXECUTORS)
"""The values of a run's ``executor`` (``async`` is not one: it needs ``async def`` steps)."""


def mode(value: object) -> str | None:
    """How ready steps are ordered: one of ``MODES``, spelt exactly."""
    return one_of(value, MODES)


def on_failure(value: object) -> str | None:
    """What a failure of a critical step does: one of ``ON_FAILURES``, spelt exactly."""
    return one_of(value, ON_FAILURES)


def executor(value: object) -> str | None:
    """Where a run's plain Python steps run: one of ``EXECUTORS``, spelt exactly."""
    return one_of(value, EXECUTORS)


def dask_address(value: object) -> str | None:
    """The Dask scheduler to run ``dask`` steps on: its address, ``tcp://host:8786`` (any
    scheme Dask speaks, or ``host:port``); None starts a LocalCluster for the run."""
    if value is None or (isinstance(value, str) and value.strip() and " " not in value.strip()):
        return None
    return "a Dask scheduler address like 'tcp://host:8786'"


def max_concurrency(value: object) -> str | None:
    """Most steps running at once: an integer >= 0, where 0 means auto (per executor)."""
    return None if is_integer(value) and value >= 0 else "an integer >= 0"


def timeout(seconds: float | None) -> str | None:
    """Longest a whole run may take: more than 0 seconds; None is no limit.

    It takes seconds: reading ``"2m"`` is ``pardag.units.parse_duration``'s job, which also
    refuses what is not a finite number >= 0.
    """
    return None if seconds is None or seconds > 0 else "more than 0 seconds"


def pool_size(value: object) -> str | None:
    """Units of a pool (steps hold 1 or more while they run): an integer >= 1."""
    return None if is_integer(value) and value >= 1 else "an integer >= 1"


def pool_rate(per_second: float) -> str | None:
    """Most starts per second of steps holding a pool: more than 0.

    It takes a number: reading ``"10/s"`` is ``pardag.units.parse_rate``'s job.
    """
    return None if per_second > 0 else "more than 0 per second"


def http_entries(value: object) -> str | None:
    """``http.allow``/``http.deny``: a list of entries (or one comma-separated string), each
    a host, address, CIDR range or preset as ``pardag.egress`` reads them."""
    try:
        http_list(value)
    except ValueError as exc:
        return str(exc)
    return None


def is_integer(value: object) -> TypeGuard[int]:
    """An int that is not a bool: ``true`` in a file or a flag is not a count."""
    return isinstance(value, int) and not isinstance(value, bool)


def one_of(value: object, options: Sequence[str]) -> str | None:
    """The rule of every choice: one of ``options``, spelt exactly."""
    if isinstance(value, str) and value in options:
        return None
    return "one of " + ", ".join(options)
