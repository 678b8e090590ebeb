"""Reading a file a workflow names: only a regular file, checked on the open descriptor.

A path in a workflow (a wasm ``module:``, the workflow file itself, a config file) is data
someone else may have written. ``/dev/zero`` never ends and a FIFO with no writer blocks
forever, so ``pardag validate`` would hang or fill memory. The file is opened without
blocking (``O_NONBLOCK``: opening a FIFO returns at once), then ``fstat`` on that descriptor
decides, so a path swapped for a device after an earlier check is still refused.
"""

from __future__ import annotations

import os
import stat

__all__ = ["NotRegularFile", "read_regular"]


class NotRegularFile(OSError):
    """The path names a device, FIFO, socket or directory."""


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of ``path``; at most ``limit + 1`` of them when ``limit`` is given, so the
    caller can tell a file past its limit. Raises ``NotRegularFile`` (an ``OSError`` whose
    ``strerror`` says what the path is) and the ``OSError`` of a failed open."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(0, f"is {_what(mode)}, not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read() if limit is None else stream.read(limit + 1)
    finally:
        os.close(fd)


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
