"""What the embedded-language kinds (Lua, JavaScript, WebAssembly) share.

Their caps, the wording of their common errors and the checks of a step's params live here
once, so the languages cannot drift apart. Lua and JavaScript take a ``code`` param defining
``run`` (``CodeKind``); WebAssembly takes a module, so it uses the constants and messages only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pardag.kinds.base import Action, RunContext
from pardag.states import ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "TIMEOUT_MARGIN",
    "CodeKind",
    "check_output_size",
    "no_run",
    "out_of_memory",
    "run_not_callable",
    "step_prefix",
    "stopped",
    "threads_only",
]

MAX_MEMORY = 256 * 1024 * 1024
"""Bytes the runtime of one attempt may use; past it the step fails with a memory error.

Each kind re-exports it and reads its own copy, so a test can lower it for one language.
"""

MAX_OUTPUT = 10 * 1024 * 1024
"""Bytes of JSON a step's output may take; a bigger output fails the step.

The kinds re-export it under their own names; ``check_output_size`` reads this one.
"""

TIMEOUT_MARGIN = 0.25
"""Seconds past the step timeout before the runtime stops the code.

The runner marks the step timed out at the timeout itself; the margin lets its timer win, so
the step fails as a ``StepTimeout`` (and retries as one) while the code is still stopped.
"""


def step_prefix(step_id: str, language: str) -> str:
    """How a run-time message names its step: ``step s (lua)``."""
    return f"step {step_id} ({language})"


def check_output_size(where: str, size: int, error: type[Exception]) -> None:
    """Raise ``error`` when the output's JSON takes ``size`` bytes, over ``MAX_OUTPUT``."""
    if size > MAX_OUTPUT:
        raise error(
            f"{where}: the output is {size} bytes of JSON, over the cap of "
            f"{MAX_OUTPUT} bytes; return less data, or write it to a file"
        )


def out_of_memory(where: str, label: str, cap: int) -> str:
    """The message of a step whose runtime reached its memory ``cap`` (bytes)."""
    return (
        f"{where}: ran out of its {cap // 2**20} MiB of {label} memory; keep less data in {label}"
    )


def stopped(where: str, timeout: float | None) -> str:
    """The message of a step whose code the runtime stopped at its timeout."""
    return f"{where}: stopped after its timeout of {timeout:g}s"


def no_run(step_id: str, fix: str) -> str:
    """The message of code (or a module) that has no ``run``; ``fix`` says how to add it."""
    return f"No 'run' function found in step {step_id}; {fix}"


def run_not_callable(step_id: str, kind: str, fix: str) -> str:
    """The message of a ``run`` that is a ``kind`` of value, not a function."""
    return f"'run' is not callable in step {step_id}: it is a {kind}; {fix}"


def threads_only(language: str, executor: str | None) -> str | None:
    """The problem of a step asking for another executor: the runtimes run on threads only."""
    if executor in (None, ExecutorName.THREADS):
        return None
    return f"a {language} step runs on 'threads', not {executor!r}; remove the executor setting"


class CodeKind:
    """A step whose ``params['code']`` defines ``run``, run on threads in an embedded runtime.

    Subclasses set ``language`` (the kind's name), ``label`` (the language's name in
    messages), ``example`` (what ``run`` looks like), ``line_hint`` (how to read the runtime's
    line numbers, or empty), and implement ``syntax_error`` and ``runner``.
    """

    fields: tuple[str, ...] = ("code",)
    language: ClassVar[str]
    label: ClassVar[str]
    example: ClassVar[str]
    line_hint: ClassVar[str] = ""

    def syntax_error(self, code: str) -> str | None:
        """The runtime's message for code that does not compile, else None."""
        raise NotImplementedError

    def runner(self) -> Callable[..., Any]:
        """``fn(step_id, code, inputs, params, timeout)`` that runs one attempt."""
        raise NotImplementedError

    def problems(self, step: Step) -> list[str]:
        out: list[str] = []
        name = self.language
        if step.fn is not None:
            out.append(f"a {name} step takes its code from params 'code', not a Python function")
        code = step.params.get("code")
        if not isinstance(code, str) or not code.strip():
            out.append(
                f"a {name} step needs params 'code': {self.label} source defining {self.example}"
            )
        else:
            message = self.syntax_error(code)
            if message is not None:
                out.append(
                    f"{self.label} syntax error in 'code': {message}{self.line_hint}; "
                    "fix the code at that line"
                )
        executor = threads_only(name, step.executor)
        if executor is not None:
            out.append(executor)
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        code: str = step.params["code"]
        step_id, timeout = step.id, step.timeout

        def bind(
            inputs: Mapping[str, Any], params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (step_id, code, dict(inputs), dict(params), timeout), {}

        return Action(self.runner(), ExecutorName.THREADS, bind)
