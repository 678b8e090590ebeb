"""The ``javascript`` kind: a step written in JavaScript, run by an embedded QuickJS engine.

``params={"code": "function run(inputs) { ... }"}``: the code defines ``run``, called with an
object mapping each dependency id to its output and the run's params as a second argument
(JavaScript lets ``run`` ignore both, so a root step may declare ``run()``). Its return value,
through ``JSON.stringify``, is the step's output. Aliases: ``js``, ``node``, ``nodejs`` (the
engine is QuickJS through the ``quickjs`` package either way, never a ``node`` binary).

Each attempt gets a fresh ``quickjs.Context``: nothing leaks between attempts, steps or runs.
QuickJS as embedded here has only the ECMAScript built-ins: no ``require``, ``fetch``,
``process``, timers, file or network access. Data crosses as JSON text both ways. An ``async
run`` is awaited by running the engine's job queue until its promise settles.

Limits: the engine heap is capped at ``MAX_MEMORY``; the JSON output at ``MAX_OUTPUT``.
QuickJS's interrupt counts the *process's* CPU time (C ``clock()``); the limit is therefore the
timeout (plus ``TIMEOUT_MARGIN``) times the CPUs the process may use, so other busy threads can
never stop a step before its timeout. The interrupt never fires inside the regex engine
(``/^(a+)+$/`` on a long string backtracks for ever); that is why a step runs on a worker
process by default, which the runner kills at the timeout (``code.WorkerCall``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.errors import JavaScriptStepError, JavaScriptTimeout
from pardag.kinds import code as common
from pardag.kinds.base import lazy_module
from pardag.kinds.code import MAX_MEMORY, MAX_OUTPUT, TIMEOUT_MARGIN, CodeKind

if TYPE_CHECKING:
    import quickjs  # type: ignore[import-untyped]
else:
    quickjs = lazy_module("quickjs")

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "TIMEOUT_MARGIN",
    "JavaScriptKind",
    "JavaScriptStepError",
    "JavaScriptTimeout",
    "run_javascript",
    "syntax_error",
]

EXAMPLE = "'function run(inputs) { ... }'"
"""What ``run`` looks like, in the messages that ask for one."""

CHECK_LIMIT = 2.0
"""CPU seconds the syntax check may take (it only compiles, but the code is the user's)."""

_CALL = "globalThis.__pardag_out = run(JSON.parse(__pardag_inputs), JSON.parse(__pardag_params))"
_AWAIT = """
globalThis.__pardag_state = "pending";
globalThis.__pardag_out.then(
  (value) => { globalThis.__pardag_state = "fulfilled"; globalThis.__pardag_out = value; },
  (error) => { globalThis.__pardag_state = "rejected"; globalThis.__pardag_out = error; },
);
"""
_ENGINE_LIMITS = ("InternalError: interrupted", "InternalError: out of memory")
_FRAME = re.compile(r"^\s*at (?P<name>\S+)(?: \(<input>(?::(?P<paren>\d+))?\)|.*?:(?P<bare>\d+))")


class _DeadlinePassed(Exception):
    """The timeout passed between two jobs of an ``async run`` (each job has the CPU limit)."""


def _context(cpu_limit: float | None, memory: int | None = None) -> quickjs.Context:
    ctx = quickjs.Context()
    ctx.set_memory_limit(MAX_MEMORY if memory is None else memory)
    if cpu_limit is not None:
        ctx.set_time_limit(cpu_limit)
    return ctx


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def syntax_error(code: str) -> str | None:
    """The engine's message for ``code`` that does not compile (with its line), else None.

    The code is compiled as the body of a function that is never called, so its lines keep
    their numbers and nothing in it runs (the CPU limit bounds code crafted to break out).
    """
    ctx = _context(CHECK_LIMIT)
    try:
        ctx.eval("(function(){" + code + "\n})")
    except quickjs.JSException as exc:
        return _message(exc, last_frame_is_ours=False)
    return None


def run_javascript(
    step_id: str,
    code: str,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    timeout: float | None = None,
    memory: int | None = None,
    output: int | None = None,
) -> Any:
    """Run ``code``'s ``run(inputs, params)`` once in a fresh context; its output as JSON data.

    ``memory`` and ``output`` are the caps in bytes (default ``MAX_MEMORY``, ``MAX_OUTPUT``).
    """
    where = common.step_prefix(step_id, "javascript")
    limit = None if timeout is None else (timeout + TIMEOUT_MARGIN) * _cpus()
    started = time.monotonic()
    memory = MAX_MEMORY if memory is None else memory
    ctx = _context(limit, memory)
    try:
        ctx.set("__pardag_inputs", _json(where, "inputs", inputs))
        ctx.set("__pardag_params", _json(where, "params", params))
        deadline = None if timeout is None else started + timeout + TIMEOUT_MARGIN
        text = _call_run(ctx, step_id, code, deadline)
    except (quickjs.JSException, _DeadlinePassed) as exc:
        interrupted = isinstance(exc, _DeadlinePassed) or "InternalError: interrupted" in str(exc)
        if interrupted and timeout is not None:
            elapsed = time.monotonic() - started
            raise JavaScriptTimeout(
                f"{common.stopped(where, timeout)} ({elapsed:.1f}s elapsed)"
            ) from None
        if "InternalError: out of memory" in str(exc):
            raise JavaScriptStepError(common.out_of_memory(where, "JavaScript", memory)) from None
        raise JavaScriptStepError(f"{where}: {_message(exc)}") from None
    return _output(where, text, output)


def _json(where: str, what: str, value: Mapping[str, Any]) -> str:
    """``value`` as JSON text for the engine; other Python values become their ``str()``."""
    try:
        return json.dumps(dict(value), default=str, allow_nan=False)
    except ValueError as exc:
        raise JavaScriptStepError(f"{where}: the {what} cannot be sent as JSON: {exc}") from None


def _call_run(ctx: quickjs.Context, step_id: str, code: str, deadline: float | None) -> str | None:
    """Execute the code, then call its ``run``; the output as JSON text (None for undefined)."""
    where = common.step_prefix(step_id, "javascript")
    try:
        ctx.eval(code)
    except quickjs.JSException as exc:
        raise JavaScriptStepError(f"{where}: {_message(exc, last_frame_is_ours=False)}") from None
    kind = ctx.eval("typeof run")
    if kind == "undefined":
        raise JavaScriptStepError(common.no_run(step_id, f"define {EXAMPLE}"))
    if kind != "function":
        raise JavaScriptStepError(common.run_not_callable(step_id, kind, "make it a function"))
    ctx.eval(_CALL)
    _settle(ctx, where, deadline)
    try:
        text = ctx.eval("JSON.stringify(globalThis.__pardag_out)")
    except quickjs.JSException as exc:
        first = str(exc).strip().splitlines()[0]
        raise JavaScriptStepError(
            f"{where}: the output cannot be converted to JSON: {first}; return plain data"
        ) from None
    return text if isinstance(text, str) else None


def _settle(ctx: quickjs.Context, where: str, deadline: float | None) -> None:
    """Await the output of an ``async run``: run the engine's jobs until its promise settles.

    The engine's CPU limit holds per job, so the deadline is also checked between jobs. A
    rejection is thrown again, so it reports like any error; a promise that nothing can
    settle any more (no job left) fails the step.
    """
    if not ctx.eval("globalThis.__pardag_out instanceof Promise"):
        return
    ctx.eval(_AWAIT)
    while ctx.execute_pending_job():
        if deadline is not None and time.monotonic() > deadline:
            raise _DeadlinePassed
    state = ctx.eval("globalThis.__pardag_state")
    if state == "rejected":
        try:
            ctx.eval("throw globalThis.__pardag_out")
        except quickjs.JSException as exc:  # the stack is the one of the rejection
            if str(exc).startswith(_ENGINE_LIMITS):
                raise  # the timeout or memory cap, reported as such by the caller
            message = _message(exc, last_frame_is_ours=False)
            raise JavaScriptStepError(f"{where}: {message}") from None
    if state != "fulfilled":
        raise JavaScriptStepError(
            f"{where}: 'run' returned a promise that never settled "
            "(nothing left to wait for); resolve it, or return the value itself"
        )


def _message(exc: BaseException, *, last_frame_is_ours: bool = True) -> str:
    """The engine's message, plus the line of the code where it happened.

    QuickJS reports ``<input>:N``; the last frame of a ``run`` call is pardag's one-line call,
    so it is left out, and an error without any line of the code gets none.
    """
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    frames = lines[1:-1] if last_frame_is_ours else lines[1:]
    for frame in frames:
        match = _FRAME.match(frame)
        if match is None:
            continue
        line = match.group("paren") or match.group("bare")
        if line is not None:
            name = match.group("name")
            inside = f" in {name}()" if name not in ("<eval>", "<input>") else ""
            return f"{first} (line {line} of the code{inside})"
    return first or "an error without a message was thrown; throw an Error with a message"


def _output(where: str, text: str | None, cap: int | None) -> Any:
    if text is None:
        return None
    common.check_output_size(where, len(text.encode()), JavaScriptStepError, cap)
    return json.loads(text)


class JavaScriptKind(CodeKind):
    """Runs inline JavaScript ``code`` defining ``run``; see the module docstring."""

    language = "javascript"
    label = "JavaScript"
    example = EXAMPLE
    error = JavaScriptStepError

    def syntax_error(self, code: str) -> str | None:
        return syntax_error(code)

    def runner(self) -> Callable[..., Any]:
        return run_javascript

    def caps(self) -> tuple[int, int]:
        return MAX_MEMORY, MAX_OUTPUT


_KIND = JavaScriptKind()
KINDS = {"javascript": _KIND, "js": _KIND, "node": _KIND, "nodejs": _KIND}
"""The ``javascript`` kind and its aliases: one class, QuickJS underneath."""
