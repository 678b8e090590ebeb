"""What a step's own process is given before its code runs: resource limits it cannot lift.

A step's ``limits: {memory, processes, open_files}`` (shell steps, Python code steps) become
``RLIMIT_AS``, ``RLIMIT_NPROC`` and ``RLIMIT_NOFILE`` of the step's process, each set with
the hard limit equal to the soft one: a process may lower a hard limit but never raise it
again, so the step cannot lift its cap with ``ulimit`` or ``resource.setrlimit``. The one
exception is a process holding ``CAP_SYS_RESOURCE`` (root): ``drop_resource_capability``
takes that capability away from a process for good (Linux), so that the caps hold for root
too. ``RLIMIT_NPROC`` counts every process of the user, and the kernel never applies it to
root (uid 0): ``processes`` is a cap only for a step run as an ordinary user.

Nothing here starts a process: ``apply`` runs in the child (a ``preexec_fn``, or a worker
process about to run a code step). POSIX only; elsewhere a step with ``limits`` is refused
when it starts.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pardag.units import format_size, parse_size

try:  # imported here, not in ``apply``: an import after fork could wait on a lock for ever
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

__all__ = [
    "LIMIT_FIELDS",
    "WORKER_CAPS",
    "Limits",
    "apply",
    "drop_resource_capability",
    "limits_problems",
]

LIMIT_FIELDS = ("memory", "processes", "open_files")
"""The keys of a step's ``limits:``."""

_CAP_SYS_RESOURCE = 24
_PR_CAPBSET_DROP = 24
_CAPABILITY_V3 = 0x20080522

WORKER_CAPS = "pardag_worker_caps"
"""The attribute of a call (a code step's) naming the limits it sets for good in the worker
process that runs it: the ``processes`` executor gives such a worker only calls with the
same caps afterwards (a hard limit cannot be raised again for another step)."""


@dataclass(frozen=True)
class Limits:
    """A step process's caps: bytes of address space, processes of its user, open files
    (None: not capped)."""

    memory: int | None = None
    processes: int | None = None
    open_files: int | None = None

    @classmethod
    def read(cls, value: Mapping[str, Any] | None) -> Limits | None:
        """The limits a step's validated ``limits:`` mapping gives (None: none given)."""
        if not value:
            return None
        memory = value.get("memory")
        return cls(
            None if memory is None else parse_size(memory, "limits.memory"),
            value.get("processes"),
            value.get("open_files"),
        )

    def describe(self) -> str:
        """The caps in words, for error messages."""
        parts = []
        if self.memory is not None:
            parts.append(f"memory {format_size(self.memory)}")
        if self.processes is not None:
            parts.append(f"processes {self.processes}")
        if self.open_files is not None:
            parts.append(f"open_files {self.open_files}")
        return ", ".join(parts)


def limits_problems(value: Any) -> list[str]:
    """What is wrong with a step's ``limits:`` param, each saying what to write instead."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            f"limits must be a mapping such as {{memory: 512MiB, processes: 64, open_files: "
            f"256}}, got {value!r}"
        ]
    out = [
        f"limits has no field {key!r}; use {', '.join(LIMIT_FIELDS)}"
        for key in value
        if key not in LIMIT_FIELDS
    ]
    memory = value.get("memory")
    if memory is not None:
        try:
            if parse_size(memory, "limits.memory") < 1024**2:
                out.append(f"limits.memory {memory!r} is below 1 MiB; no process starts in that")
        except ValueError as exc:
            out.append(str(exc))
    for key in ("processes", "open_files"):
        number = value.get(key)
        if number is not None and not (
            isinstance(number, int) and not isinstance(number, bool) and number >= 1
        ):
            out.append(f"limits.{key} must be a whole number of 1 or more, got {number!r}")
    return out


def apply(limits: Limits) -> None:
    """Set ``limits`` on this process, hard limit = soft limit (run it in the child)."""
    if resource is None:
        raise OSError("resource limits need a POSIX system")

    for which, cap in (
        (resource.RLIMIT_AS, limits.memory),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_NOFILE, limits.open_files),
    ):
        if cap is not None:
            _, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                cap = min(cap, hard)
            resource.setrlimit(which, (cap, cap))


def drop_resource_capability() -> bool:
    """Take ``CAP_SYS_RESOURCE`` from this process (effective, permitted, inheritable and the
    bounding set), so that not even root can raise a hard limit again. Linux only; True when
    the process no longer has it (or never had it)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols: libc's among them
    if not hasattr(libc, "capget"):
        return False
    libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_RESOURCE, 0, 0, 0)  # fails harmlessly unprivileged
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_V3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}: caps 0-31, 32-63
    if libc.capget(header, data) != 0:
        return False
    bit = ~(1 << _CAP_SYS_RESOURCE) & 0xFFFFFFFF
    for k in range(3):
        data[k] &= bit
    return bool(libc.capset(header, data) == 0)
