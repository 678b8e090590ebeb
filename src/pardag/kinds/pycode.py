"""Python ``code`` steps: source defining ``run``, executed by default in a worker process.

Why a worker process: a code step is a script someone wrote into a workflow file. An infinite
loop, a segfault in an extension or a runaway allocation must end that step, not the runner.
So ``run_code`` (module level, so the ``processes`` executor pickles it by name) compiles the
code in the worker, executes it in a fresh namespace on every attempt, calls ``run`` under an
address-space cap (``MAX_MEMORY``), and checks the size of what it returns (``MAX_OUTPUT``).
A timeout kills the worker's process group; a crash fails only that step.

A step that names ``executor: threads``, ``inline`` or ``async`` runs in the runner's own
process instead (``in_process``), like a Python function: faster to start, no caps.

Errors name the step, the language and the line of the code (``step s (python): line 3:
ZeroDivisionError: division by zero``); the whole traceback stays on the step's error.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import inspect
import linecache
import pickle
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import CodeType
from typing import Any

from pardag.errors import PardagError, PythonStepError

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "CodeCall",
    "PythonStepError",
    "compile_code",
    "in_process",
    "run_code",
]

MAX_MEMORY = 2 * 1024**3
"""Bytes of address space a code step's worker may use while ``run`` runs (``RLIMIT_AS``)."""

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
) -> Any:
    """One attempt of a code step in a worker process: ``run(*args, **kwargs)``'s value."""
    compiled, _ = compile_code(step_id, code)
    with _address_space(memory):
        try:
            value = _call(step_id, compiled, args, kwargs)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
        except MemoryError:
            raise PythonStepError(
                f"step {step_id} (python): ran out of its {memory // 2**20} MiB of memory "
                "(pardag.kinds.pycode.MAX_MEMORY); use less, or run it as a function step"
            ) from None
    _check_size(step_id, value, output)
    return value


@dataclass(frozen=True)
class CodeCall:
    """One code step's call on the ``processes`` executor: picklable (a module-level class
    with its code's text), and named after its step in messages, not by its whole source."""

    step_id: str
    code: str
    memory: int = MAX_MEMORY
    output: int = MAX_OUTPUT

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return run_code(self.step_id, self.code, args, kwargs, self.memory, self.output)

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


@contextlib.contextmanager
def _address_space(limit: int) -> Iterator[None]:
    """Cap this process's address space while the block runs (POSIX), then restore it."""
    try:
        import resource
    except ImportError:  # not POSIX: no cap
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield  # already as tight
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):  # a platform that does not enforce it (macOS): no cap
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


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
