"""``isolation: process`` on the ``dask`` executor: one attempt in a subprocess of the worker.

Why: a Dask worker runs a call on one of its threads, and a thread cannot be stopped, so a
cancelled or timed-out step would run on to its end, out of sight. In a subprocess (its own
process group) it can be killed. The worker thread waits for the subprocess and, every tenth
of a second, asks the Dask ``Event`` named for the call whether the runner cancelled it (a
timeout, fail-fast, Ctrl-C, ``pardag cancel``); if so it kills the group and the call ends.

The call crosses to the subprocess as a file (``payload.dumps``: by value what the subprocess
could not import) and its outcome comes back the same way; the subprocess inherits the
worker's ``sys.path``. Run as ``python -m pardag.executors.dask_isolation CALL RESULT``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pardag.executors.base import deliverable, describe_exit
from pardag.executors.payload import describe, dumps

__all__ = ["run_isolated"]

_POLL = 0.1
"""Seconds between two looks at the subprocess and at the call's cancel ``Event``."""


def run_isolated(fn: Any, args: Any, kwargs: Any, stop: str) -> Any:
    """``fn(*args, **kwargs)`` in a subprocess, killed if the Dask ``Event`` ``stop`` is set."""
    import distributed

    Event: Any = distributed.Event  # untyped
    cancelled = Event(stop)
    with tempfile.TemporaryDirectory(prefix="pardag-call-") as folder:
        call, result = Path(folder, "call"), Path(folder, "result")
        call.write_bytes(dumps((fn, args, kwargs)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-m", __name__, str(call), str(result)]
        proc = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            code = _wait(proc, cancelled)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if code is None:
            raise RuntimeError("cancelled: its process was killed")
        if not result.exists():
            raise RuntimeError(f"the step's process {describe_exit(code)} before it returned")
        ok, value = pickle.loads(result.read_bytes())
    if ok:
        return value
    raise value


def _wait(proc: subprocess.Popen[bytes], cancelled: Any) -> int | None:
    """The subprocess's exit code, or None once ``cancelled`` is set."""
    while True:
        try:
            return proc.wait(timeout=_POLL)
        except subprocess.TimeoutExpired:
            if cancelled.is_set():
                return None


def _main(call: str, result: str) -> None:
    """In the subprocess: run the call, write its outcome (atomically) for the worker."""
    fn, args, kwargs = pickle.loads(Path(call).read_bytes())
    try:
        outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:
        outcome = (False, deliverable(exc))
    try:
        data = dumps(outcome)
    except Exception as exc:
        what = "its result" if outcome[0] else f"its error ({describe(outcome[1])})"
        data = dumps((False, RuntimeError(f"{what} cannot be pickled: {describe(exc)}")))
    partial = Path(result + ".part")
    partial.write_bytes(data)
    partial.rename(result)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
