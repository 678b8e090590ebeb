"""Worker processes that start without importing the user's ``__main__``.

multiprocessing's ``spawn`` and ``forkserver`` methods prepare every new process with
``spawn.get_preparation_data``: when ``sys.modules["__main__"]`` has a ``__spec__`` name or a
``__file__``, it adds ``init_main_from_name`` or ``init_main_from_path``, and the child's
``spawn.prepare`` runs that module again as ``__mp_main__`` (``_fixup_main_from_path``) before
it unpickles its target. That is what runs a script without an ``if __name__ == "__main__":``
guard a second time, and what fails with "An attempt has been made to start a new process
before the current process has finished its bootstrapping phase" when the script starts a run
at its top level.

A pardag worker needs nothing from ``__main__``: its target is the worker loop of
``pardag.executors.processes``, and functions defined in ``__main__`` arrive by value
(``pardag.executors.payload``). So ``WorkerProcess`` is started with the same preparation
data minus those two keys, as loky starts its workers with ``init_main_module=False``.

It is forked by a fork server of pardag's own: multiprocessing's server and its preload list
are shared by everyone in the interpreter (its default preload is ``__main__`` itself). Ours
preloads the worker loop, cloudpickle and Python code steps (``pardag.kinds.pycode``, which
loads the kinds): a worker whose caps a code step set for good serves only code steps with the
same caps, so a run mixing them starts more workers, each ready in milliseconds.
"""

from __future__ import annotations

import io
import os
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from multiprocessing.process import BaseProcess

__all__ = ["WorkerProcess"]

_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")
"""The preparation data that makes a new process run the parent's ``__main__`` again."""

_SERVER = forkserver.ForkServer()
_SERVER.set_forkserver_preload(
    ["pardag.executors.processes", "cloudpickle", "pardag.kinds", "pardag.kinds.pycode"]
)


class _Popen(popen_forkserver.Popen):
    """``popen_forkserver.Popen`` with its ``_launch`` steps (the same from Python 3.11 to
    3.14) but for two: the preparation data leaves ``__main__`` out, and pardag's server forks."""

    _fds: list[int]  # set by popen_forkserver.Popen: the fds the child inherits

    def _launch(self, process_obj: BaseProcess) -> None:
        prep_data = spawn.get_preparation_data(process_obj.name)
        for key in _MAIN_KEYS:
            prep_data.pop(key, None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = _SERVER.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child watches it to learn that its parent is gone
        self.finalizer = util.Finalize(self, _close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class WorkerProcess(ForkServerProcess):
    """A ``multiprocessing`` process forked by pardag's server, blind to ``__main__``."""

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> _Popen:
        return _Popen(process_obj)
