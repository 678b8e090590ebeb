"""Python ``code`` steps: source defining ``run``, executed by default in a worker process.

Why a worker process: a code step is a script someone wrote into a workflow file. An infinite
loop, a segfault in an extension or a runaway allocation must end that step, not the runner.
So ``run_code`` (module level, so the ``processes`` executor pickles it by name) compiles the
code in the worker, executes it in a fresh namespace on every attempt, calls ``run`` under an
address-space cap (``MAX_MEMORY``, or the step's ``limits``, set hard: ``pardag.child``), and
checks the size of what it returns (``MAX_OUTPUT``). A worker whose limits were set hard
serves only code steps with the same limits after that (``pardag.child.WORKER_CAPS``). A
timeout kills the worker's process group; a crash fails only that step.

A step that names ``executor: threads``, ``inline`` or ``async`` runs in the runner's own
process instead (``in_process``), like a Python function: faster to start, no caps; one on
``dask`` runs on a Dask worker's thread (``CodeOnWorker``), without caps too.

Errors name the step, the language and the line of the code (``step s (python): line 3:
ZeroDivisionError: division by zero``); the whole traceback stays on the step's error.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import functools
import inspect
import linecache
import pickle
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, Any

from pardag import child
from pardag.child import Limits
from pardag.errors import PardagError, PythonStepError
from pardag.states import ExecutorName
from pardag.units import format_size

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "CodeCall",
    "CodeOnWorker",
    "PythonStepError",
    "compile_code",
    "in_process",
    "run_code",
]

MAX_MEMORY = 2 * 1024**3
"""Bytes of address space a code step's worker may use (``RLIMIT_AS``, hard) unless its
``limits: {memory}`` says otherwise."""

MAX_OUTPUT = 10 * 1024**2
"""Bytes a code step's output may take, pickled, to come back from the worker process."""

Def = ast.FunctionDef | ast.AsyncFunctionDef


@functools.lru_cache(maxsize=256)
def compile_code(step_id: str, code: str) -> tuple[CodeType, Def | None]:
    """The compiled code and its top-level ``def run``; raises SyntaxError.

    The source goes into ``linecache`` under the code's file name, so tracebacks show its lines.
    Cached: validation, the run and a worker's attempts all ask for the same code.
    """
    filename = _filename(step_id)
    tree = ast.parse(code, filename)
    found = [n for n in tree.body if isinstance(n, Def) and n.name == "run"]
    compiled = compile(tree, filename, "exec")
    lines = code.splitlines(keepends=True)
    linecache.cache[filename] = (len(code), None, lines, filename)
    return compiled, (found[-1] if found else None)


def _filename(step_id: str) -> str:
    return f"<step {step_id!r} code>"


def run_code(
    step_id: str,
    code: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    memory: int = MAX_MEMORY,
    output: int = MAX_OUTPUT,
    limits: Limits | None = None,
) -> Any:
    """One attempt of a code step in a worker process: ``run(*args, **kwargs)``'s value.

    The caps (``memory``, or the step's ``limits``) are set hard, and a root worker loses
    ``CAP_SYS_RESOURCE`` first, so the code cannot lift them. A limit set hard cannot be
    undone, so the worker serves only calls with the same caps after this one
    (``CodeCall.pardag_worker_caps``, which the ``processes`` executor reads).
    """
    compiled, _ = compile_code(step_id, code)
    caps = _caps(memory, limits)
    _lock_in(caps)
    try:
        value = _call(step_id, compiled, args, kwargs)
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
    except MemoryError:
        given = limits is not None and limits.memory is not None
        where = "limits.memory" if given else "pardag.kinds.pycode.MAX_MEMORY"
        fix = "raise limits.memory" if given else "run it as a function step"
        raise PythonStepError(
            f"step {step_id} (python): ran out of its {format_size(caps.memory or memory)} of "
            f"memory ({where}); use less, or {fix}"
        ) from None
    _check_size(step_id, value, output)
    return value


def _caps(memory: int, limits: Limits | None) -> Limits:
    """The caps of one attempt: the step's ``limits``, its memory ``memory`` unless given."""
    if limits is None:
        return Limits(memory=memory)
    return dataclasses.replace(limits, memory=limits.memory or memory)


_locked_in: Limits | None = None
"""The caps this worker process took for good (None: none yet)."""


def _lock_in(caps: Limits) -> None:
    """Set ``caps`` on this worker for good (POSIX; elsewhere no cap): see ``run_code``."""
    global _locked_in
    try:
        import resource  # noqa: F401  (POSIX only)
    except ImportError:
        return
    if _locked_in == caps:  # the same caps as its last code step: set already
        return
    if _locked_in is None:
        child.drop_resource_capability()
    _locked_in = caps
    with contextlib.suppress(ValueError, OSError):  # not enforced there (macOS: RLIMIT_AS)
        child.apply(caps)


def limits_problems(step: Step) -> list[str]:
    """What is wrong with a code step's ``limits:`` (they need the worker process)."""
    value = step.params.get("limits")
    out = child.limits_problems(value)
    if value is not None and step.executor not in (None, ExecutorName.PROCESSES):
        out.append(
            f"limits apply in a worker process, not on executor {step.executor!r}; drop "
            "executor (code steps run on 'processes') or the limits"
        )
    return out


@dataclass(frozen=True)
class CodeCall:
    """One code step's call on the ``processes`` executor: picklable (a module-level class
    with its code's text), and named after its step in messages, not by its whole source."""

    step_id: str
    code: str
    memory: int = MAX_MEMORY
    output: int = MAX_OUTPUT
    limits: Limits | None = None

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return run_code(
            self.step_id, self.code, args, kwargs, self.memory, self.output, self.limits
        )

    @property
    def pardag_worker_caps(self) -> Limits:
        """The caps this call sets for good in its worker (``pardag.child.WORKER_CAPS``)."""
        return _caps(self.memory, self.limits)

    def __repr__(self) -> str:
        return f"Python code step {self.step_id!r}"


@dataclass(frozen=True)
class CodeOnWorker:
    """One code step's call on a Dask worker thread (``executor: dask``): compiled there from
    its text, so that its tracebacks show its lines; no caps (a limit would hold for the
    worker's other tasks too); an ``async def run`` gets an event loop of its own."""

    step_id: str
    code: str

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        compiled, _ = compile_code(self.step_id, self.code)
        value = _call(self.step_id, compiled, args, kwargs)
        return asyncio.run(value) if inspect.iscoroutine(value) else value

    def __repr__(self) -> str:
        return f"Python code step {self.step_id!r}"


def in_process(step_id: str, compiled: CodeType, is_async: bool) -> Callable[..., Any]:
    """A caller that runs one attempt in the runner's process (executor threads/inline/async)."""
    if is_async:

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await _call(step_id, compiled, args, kwargs)

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        return _call(step_id, compiled, args, kwargs)

    return call


def _call(step_id: str, compiled: CodeType, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Execute the code in a fresh namespace, then call its ``run``; errors get the line."""
    namespace: dict[str, Any] = {"__name__": f"pardag_code_{step_id}"}
    try:
        exec(compiled, namespace)
        run = namespace.get("run")
        if not callable(run):
            raise PythonStepError(
                f"'run' is not callable in step {step_id}: it is a {type(run).__name__}; "
                "make it a function (def run(inputs): ...)"
            )
        value = run(*args, **kwargs)
        if inspect.iscoroutine(value):
            return _awaited(step_id, value)
        return value
    except (PardagError, MemoryError):  # StepPaused, a pardag error, the memory cap: as is
        raise
    except Exception as exc:
        raise _step_error(step_id, exc) from exc


async def _awaited(step_id: str, coroutine: Any) -> Any:
    try:
        return await coroutine
    except (PardagError, MemoryError):
        raise
    except Exception as exc:
        raise _step_error(step_id, exc) from exc


def _step_error(step_id: str, exc: BaseException) -> PythonStepError:
    """``step s (python): line N: Type: message``, N the last line of the code on the stack."""
    filename = _filename(step_id)
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    where = f"line {lines[-1]}: " if lines else ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return PythonStepError(f"step {step_id} (python): {where}{text}")


def _check_size(step_id: str, value: Any, cap: int) -> None:
    try:
        size = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        raise PythonStepError(
            f"step {step_id} (python): the output cannot be sent back from the worker process "
            f"({type(exc).__name__}: {exc}); return data (dicts, lists, numbers, strings)"
        ) from None
    if size > cap:
        raise PythonStepError(
            f"step {step_id} (python): the output is {size} bytes pickled, over the cap of "
            f"{cap} bytes; return less data, or write it to a file"
        )
