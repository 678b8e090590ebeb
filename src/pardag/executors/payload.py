"""How a call, its arguments and its result cross to a worker process and back.

Plain ``pickle`` sends a function by reference (its module and name): the worker imports it.
That is fast and what users of importable module-level functions expect. It fails for what a
worker cannot import: a lambda, a nested function or closure, anything a script, a notebook or
a REPL defines in ``__main__`` (a worker never imports the user's ``__main__``: see
``pardag.executors.spawning``), and what a ``flow.py`` run by ``pardag run flow.py`` defines
(imported under a made-up name, ``FLOW_MODULE_PREFIX``). Those are sent by value with
``cloudpickle``, as dask.distributed and loky do. ``dumps`` picks: plain pickle unless it fails
or its bytes name ``__main__`` or a flow module; cloudpickle then (imported only when needed;
``pickle.loads`` reads both).

``send_problems`` is the validation side: a step on the ``processes`` executor whose function
cannot be pickled at all (it closes over a lock, an open file, a socket...) is a problem
reported before anything runs, naming what could not be pickled.
"""

from __future__ import annotations

import inspect
import pickle
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pardag.states import ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["FLOW_MODULE_PREFIX", "describe", "dumps", "send_problems", "unsendable"]

FLOW_MODULE_PREFIX = "_pardag_flow_"
"""The start of the name a ``flow.py`` is imported under (``pardag.formats.python_file``)."""
_MAIN = b"__main__"
"""In a plain pickle, the module of a global looked up by reference; the worker has none."""
_FLOW = FLOW_MODULE_PREFIX.encode()


def describe(exc: BaseException) -> str:
    """``module.Type: message``, safe even when ``str(exc)`` itself raises."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    return f"{name}: {message}" if message else name


def dumps(obj: object) -> bytes:
    """``obj`` pickled for another process: by reference where it can be imported there,
    else by value (cloudpickle). Raises what cloudpickle raises for the unpicklable."""
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return _by_value(obj)
    return _by_value(obj) if _MAIN in data or _FLOW in data else data


def _by_value(obj: object) -> bytes:
    import cloudpickle  # type: ignore[import-untyped]  # 30 ms to import: only when needed

    for name, module in list(sys.modules.items()):  # a flow.py's functions: by value too
        if name.startswith(FLOW_MODULE_PREFIX) and name not in _BY_VALUE:
            cloudpickle.register_pickle_by_value(module)
            _BY_VALUE.add(name)

    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


_BY_VALUE: set[str] = set()
"""The flow modules cloudpickle was told to send by value."""


def send_problems(step: Step, run_executor: str | None) -> list[str]:
    """Why ``step``'s function cannot be sent to a worker process, when it runs on one.

    It runs on ``processes`` when the step says so, or when the run's ``executor`` does and
    the function is a plain one (an ``async def`` keeps ``async``; ``Workflow.run``'s own
    ``executor=`` is checked when the step is submitted, with the same words).
    """
    fn = step.fn
    executor = step.executor if step.executor is not None else run_executor
    if executor != ExecutorName.PROCESSES or step.kind != "python" or not callable(fn):
        return []
    if step.executor is None and inspect.iscoroutinefunction(fn):
        return []
    try:
        dumps(fn)
    except Exception as exc:
        return [unsendable(fn, exc)]
    return []


def unsendable(fn: Callable[..., Any], exc: BaseException) -> str:
    """The message for a function that cannot be pickled: what in it could not, and the fix."""
    culprit = next(_culprits(fn), None)
    what = f"{culprit}, which cannot be pickled" if culprit else "it cannot be pickled"
    return (
        f"the processes executor must send function {_name(fn)} to a worker process, but "
        f"{what} ({describe(exc)}); run the step on executor='threads', or let the function "
        "open what it needs itself (pass a path or an address, not an open file, lock, "
        "socket or connection)"
    )


def _culprits(fn: Callable[..., Any]) -> Iterator[str]:
    """The variables ``fn`` uses (closed over, global, defaults) that cannot be pickled."""
    try:
        found = inspect.getclosurevars(fn)
        defaults = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # not a Python function: a builtin, a callable object
        return
    named = [
        *((f"the variable {n!r} it closes over", v) for n, v in found.nonlocals.items()),
        *((f"the global {n!r} it uses", v) for n, v in found.globals.items()),
        *((f"the default of {p.name!r}", p.default) for p in defaults if p.default is not p.empty),
    ]
    for label, value in named:
        try:
            dumps(value)
        except Exception:
            yield f"{label} (a {type(value).__name__})"


def _name(fn: Callable[..., Any]) -> str:
    return repr(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)
