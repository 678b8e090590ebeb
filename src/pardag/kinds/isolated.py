"""A worker process's address space, capped around one embedded-language step attempt.

Why a cap on the process, not only on the runtime's heap: lupa and QuickJS count what their
own allocator hands out, but the attempt also converts its output to Python data, and that
went uncapped (a 15-million-integer Lua table under a 256 MiB Lua heap took 2.9 GiB to turn
into a list). ``RLIMIT_AS`` caps everything the attempt maps, whoever maps it.

Why relative to what the worker maps now: a worker has already mapped its interpreter,
pardag and the runtime's library (a few hundred MiB of address space, varying by platform and
by what earlier steps loaded), so the cap is what *this attempt* may add to that. Lua and
JavaScript code cannot call ``setrlimit``, so only the soft limit is lowered, and it is
restored after the call: the worker stays usable for the next step, whatever its cap.

One capped block runs at a time per process (a lock): on a Dask worker, attempts run on
several threads of one process, and a second block would restore the first's cap when it
ended. While a block runs, the cap holds for the process's other threads too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["address_space_cap", "mapped_bytes"]

_ONE_AT_A_TIME = threading.Lock()


def mapped_bytes() -> int | None:
    """The address space this process maps now, in bytes; None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def address_space_cap(extra: int) -> Iterator[None]:
    """While the block runs, this process may map at most ``extra`` more bytes than now.

    Past it, allocations fail (``MemoryError`` in Python, an out-of-memory error in the
    runtimes). Where the platform gives no mapped size or does not enforce ``RLIMIT_AS``
    (macOS), the block runs without it, bounded by the runtime's own cap only.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        resource = None  # type: ignore[assignment]
    with _ONE_AT_A_TIME, contextlib.ExitStack() as undo:
        now = mapped_bytes()
        if resource is not None and now is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            finite = [n for n in (soft, hard) if n != resource.RLIM_INFINITY]
            with contextlib.suppress(ValueError, OSError):  # a platform that refuses it
                resource.setrlimit(resource.RLIMIT_AS, (min([now + extra, *finite]), hard))
                undo.callback(resource.setrlimit, resource.RLIMIT_AS, (soft, hard))
        yield
