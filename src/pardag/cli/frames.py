"""Where in the user's own code a step failed: the innermost frame of a recorded traceback
that lies outside pardag, the standard library and installed packages."""

from __future__ import annotations

import os
import re
import sysconfig

import pardag

__all__ = ["user_frame"]

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')


def _library_paths() -> tuple[str, ...]:
    """Directories whose code is not the user's: pardag's own, the standard library's and
    installed packages'."""
    paths = {os.path.dirname(pardag.__file__)}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            paths.add(path)
    return tuple(os.path.realpath(p) + os.sep for p in paths)


def user_frame(traceback: str | None) -> str | None:
    """``file:line in function`` of the innermost frame of ``traceback`` (text, as recorded)
    in the user's code; None when every frame is library code (a shell command's failure)."""
    if not traceback:
        return None
    libraries = _library_paths()
    found = None
    for line in traceback.splitlines():
        match = _FRAME.match(line)
        if match is None:
            continue
        path = match["file"]
        if path.startswith("<frozen") or os.path.realpath(path).startswith(libraries):
            continue
        found = f"{path}:{match['line']} in {match['name']}"
    return found
