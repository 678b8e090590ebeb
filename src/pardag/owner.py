"""Which process owns a run, told apart from a later process that got the same pid.

A run records its owner as ``host:pid:boot.start`` (``this_process``): the pid, and on Linux
when that process started (``/proc/PID/stat``'s start time, in clock ticks since boot) and
which boot that was (``/proc/sys/kernel/random/boot_id``). A pid alone is reused: after the
owner died, ``pardag cancel`` signalled an unrelated process that got its pid, and ``resume``
refused the run as still running. ``alive`` checks the start too, so a reused pid counts as
gone. Where the start cannot be read (not Linux), the owner is ``host:pid`` and the pid is
all there is to check; owners recorded as ``host:pid`` by an older pardag are read the same.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Owner", "parse", "this_process"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Owner:
    """A run's owner: its host, pid, and when it started (None: unknown, pid only)."""

    host: str
    pid: int
    started: str | None = None

    def __str__(self) -> str:
        return ":".join([self.host, str(self.pid), *([self.started] if self.started else [])])

    @property
    def here(self) -> bool:
        """On this machine, and not this very process."""
        return self.host == socket.gethostname() and self.pid != os.getpid()

    def alive(self) -> bool:
        """Whether this process (on this machine) still runs: its pid exists and, where the
        start was recorded, started then. A process on another machine counts as alive."""
        if not self.here:
            return True
        if not _pid_exists(self.pid):
            return False
        return self.started is None or started_at(self.pid) in (None, self.started)


def this_process() -> str:
    """The owner string of the running process."""
    pid = os.getpid()
    return str(Owner(socket.gethostname(), pid, started_at(pid)))


def parse(text: str | None) -> Owner | None:
    """The owner ``text`` records (``host:pid`` or ``host:pid:boot.start``), None if none."""
    if not text:
        return None
    parts = text.split(":")
    for n in (3, 2):  # the last field is the start when it has one; a host has no colon
        if len(parts) >= n and parts[len(parts) - n + 1].isdigit():
            host = ":".join(parts[: len(parts) - n + 1])
            started = parts[-1] if n == 3 else None
            return Owner(host, int(parts[len(parts) - n + 1]), started)
    return None


def started_at(pid: int) -> str | None:
    """``boot.start`` of process ``pid``: this boot's id and the process's start time in
    clock ticks since boot; None where ``/proc`` does not tell (not Linux, or gone)."""
    try:
        boot = _BOOT_ID.read_text().strip().split("-")[0]
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return f"{boot}.{fields[19]}" if len(fields) > 19 else None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
