"""Step processes die with the runner: a keeper process kills their groups when it dies.

A shell step's process and a worker process each lead a process group of their own (so a
timeout kills the step's children too). Without more, ``kill -9`` of the runner left them
running, and ``resume`` started the same steps again beside them. So every such group is
*held* while its step runs: the runner tells a small keeper process (one per runner process,
started on first use, in a session of its own) ``+PGID`` when the group starts and ``-PGID``
when its step is over, through a pipe only the runner holds. When the runner dies, however it
dies, the kernel closes that pipe; the keeper reads end-of-file and ``SIGKILL``s every group
it still holds, then exits. A runner that exits normally has ended its steps already.

Why not ``prctl(PR_SET_PDEATHSIG)`` in each child: it reaches only the direct child (not
``sh -c``'s own children), fires when the forking *thread* ends, is Linux only, and needs a
``preexec_fn``, which makes every start fork instead of vfork. The keeper costs one write per
start and per end, works on every POSIX system, and reaches the whole group.

What it does not cover: a process that left the group (``setsid``, a daemon) and the moment
between a child's start and its ``+PGID`` (a runner killed right then leaves that one:
``resume`` still checks the recorded processes, ``pardag.stepprocs``). A process that forks
the runner without exec (``os.fork``) holds the pipe too, delaying the kill until it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import warnings

__all__ = ["hold", "keeper_pid", "release"]

_KEEPER = r"""
import os, signal
held = set()
rest = b""
while True:
    data = os.read(0, 65536)
    if not data:
        break
    *lines, rest = (rest + data).split(b"\n")
    for line in lines:
        if line[:1] == b"+":
            held.add(int(line[1:]))
        elif line[:1] == b"-":
            held.discard(int(line[1:]))
for group in held:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:  # a worker process that has not made its group yet: itself
        try:
            os.kill(group, signal.SIGKILL)
        except OSError:
            pass
"""

_lock = threading.Lock()
_keeper: tuple[int, subprocess.Popen[bytes]] | None = None  # (the runner's pid, the keeper)
_failed = False


def hold(group: int) -> None:
    """Kill process group ``group`` if this process dies before ``release(group)``."""
    _tell(b"+%d\n" % group)


def release(group: int) -> None:
    """The step of group ``group`` is over: no longer killed when this process dies."""
    _tell(b"-%d\n" % group)


def keeper_pid() -> int | None:
    """The keeper process of this process (None before the first ``hold``), for tests."""
    keeper = _keeper
    return keeper[1].pid if keeper is not None and keeper[0] == os.getpid() else None


def _tell(message: bytes) -> None:
    proc = _started()
    if proc is None or proc.stdin is None:
        return
    with contextlib.suppress(OSError):  # a keeper that died: the steps lose their tether
        os.write(proc.stdin.fileno(), message)


def _started() -> subprocess.Popen[bytes] | None:
    """This process's keeper, started on first use (a forked child starts its own)."""
    global _keeper, _failed
    keeper = _keeper
    if keeper is not None and keeper[0] == os.getpid():
        return keeper[1]
    if _failed or not hasattr(os, "killpg") or not sys.executable:
        return None
    with _lock:
        if _keeper is None or _keeper[0] != os.getpid():
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _KEEPER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # out of reach of a kill aimed at the runner's group
                )
            except OSError as exc:
                _failed = True
                warnings.warn(
                    f"pardag could not start its keeper process ({exc}); a step's processes "
                    "will outlive this process if it is killed",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            _keeper = (os.getpid(), proc)
            atexit.register(_close, os.getpid(), proc)
        return _keeper[1]


def _close(owner: int, proc: subprocess.Popen[bytes]) -> None:
    """At exit: the steps are over, the keeper may go (and is reaped, not left a zombie)."""
    if os.getpid() != owner:  # a forked child runs its parent's exit handlers too
        return
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(1.0)
