"""Chromium for the browser tests: the system's own, driven by Playwright for Python.

``make test`` installs Debian's ``chromium`` where it is missing (``make browser``); no
browser is downloaded at run time. ``PARDAG_CHROMIUM`` names another binary. Where none is
found, the tests that need one fail with a message saying how to get one (they are never
skipped: a green run must mean the page was tested).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[1] / "src" / "pardag" / "server" / "static"
"""The page's static files (scripts, styles, vendored libraries)."""

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str:
    """The Chromium binary the tests drive; fails the test, saying how to install one."""
    named = os.environ.get("PARDAG_CHROMIUM")
    if named:
        if not os.access(named, os.X_OK):
            pytest.fail(f"PARDAG_CHROMIUM={named} is not an executable file")
        return named
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "the browser tests need Chromium and none was found: run `make browser` (it installs "
        "Debian's chromium package as root), install your distribution's chromium, or set "
        "PARDAG_CHROMIUM to a Chromium or Chrome binary"
    )


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on a free loopback port (ES modules do not load from
    file:// URLs); its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not the tests' business."""
