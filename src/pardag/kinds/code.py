"""What the embedded-language kinds (Lua, JavaScript, WebAssembly) share.

Their caps, the wording of their common errors and the checks of a step's params live here
once, so the languages cannot drift apart. Lua and JavaScript take a ``code`` param defining
``run`` (``CodeKind``); WebAssembly takes a module, so it uses the constants and messages only.

Where a Lua or JavaScript attempt runs: in a worker process (the ``processes`` executor), by
default. Their runtimes stop code with hooks (Lua's count hook, QuickJS's interrupt) that never
fire inside one long C call: a Lua ``__gc`` finalizer or ``string.find`` backtracking, a
QuickJS regex such as ``/^(a+)+$/``, converting a huge output. On a thread such a step kept its
run from returning whatever its timeout; a worker is killed at the step's (or the run's)
timeout, and its address space is capped for the whole attempt (``WorkerCall``). A step that
names ``executor: threads`` runs in the runner's process instead, bounded by the hooks only;
one on ``dask`` makes the same ``WorkerCall`` on a Dask worker's thread (its caps, its hooks,
no kill: ``pardag.kinds.cluster``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pardag.kinds.base import Action, RunContext
from pardag.kinds.cluster import OnWorker
from pardag.kinds.isolated import address_space_cap
from pardag.states import ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "TIMEOUT_MARGIN",
    "CodeKind",
    "WorkerCall",
    "check_output_size",
    "no_run",
    "out_of_memory",
    "plain",
    "run_not_callable",
    "step_prefix",
    "stopped",
]

MAX_MEMORY = 256 * 1024 * 1024
"""Bytes one attempt may use; past it the step fails with a memory error.

The runtime's heap is capped at this; on a worker process (Lua and JavaScript by default) so
is everything the attempt adds to the worker's address space, output conversion included.

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


def check_output_size(
    where: str, size: int, error: type[Exception], cap: int | None = None
) -> None:
    """Raise ``error`` when the output's JSON takes ``size`` bytes, over ``cap`` (by default
    ``MAX_OUTPUT``)."""
    cap = MAX_OUTPUT if cap is None else cap
    if size > cap:
        raise error(
            f"{where}: the output is {size} bytes of JSON, over the cap of "
            f"{cap} bytes; return less data, or write it to a file"
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


def code_executor(language: str, executor: str | None) -> str | None:
    """The problem of an embedded-language step asking for an executor it cannot run on."""
    if executor in (None, ExecutorName.PROCESSES, ExecutorName.THREADS, ExecutorName.DASK):
        return None
    return (
        f"a {language} step runs on 'processes' (the default: a worker process, killed at "
        f"the timeout), 'threads' (in the runner's process) or 'dask' (on a Dask worker), "
        f"not {executor!r}; remove the executor setting"
    )


_PLAIN_DEPTH = 128
"""Nesting depth to which inputs are made plain data; deeper, the runtime's own limit speaks."""


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as the data a runtime reads (mappings, lists, scalars), ready to pickle.

    What the runtimes would turn into text anyway (dates, paths, objects) becomes its
    ``str()`` here, so an input that cannot be pickled still reaches a worker process.
    """
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if depth > _PLAIN_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, int | float | str) else str(k): plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    return str(value)


@dataclass(frozen=True)
class WorkerCall:
    """One Lua or JavaScript attempt on a worker process: picklable (the runtime's ``run_*``
    by reference, the code as text, the caps as numbers fixed when the run starts).

    The whole attempt runs under an address-space cap of ``memory`` bytes past what the worker
    maps already, so the cap holds for the step (heap, output conversion, JSON), not only for
    the runtime's heap; the runner kills the worker at the timeout.
    """

    run: Callable[..., Any]
    language: str
    label: str
    error: type[Exception]
    step_id: str
    code: str
    timeout: float | None
    memory: int
    output: int

    def __call__(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
        args = (self.step_id, self.code, inputs, params, self.timeout, self.memory, self.output)
        try:
            with address_space_cap(self.memory):
                return self.run(*args)
        except MemoryError:
            where = step_prefix(self.step_id, self.language)
            raise self.error(out_of_memory(where, self.label, self.memory)) from None
        finally:
            if sys.stdout is not None:  # a print outside any step log must not wait in the worker
                sys.stdout.flush()

    def __repr__(self) -> str:
        return f"{self.label} step {self.step_id!r}"


class CodeKind:
    """A step whose ``params['code']`` defines ``run``, run in an embedded runtime: on a worker
    process by default, on a thread of the runner with ``executor: threads``.

    Subclasses set ``language`` (the kind's name), ``label`` (the language's name in
    messages), ``example`` (what ``run`` looks like), ``line_hint`` (how to read the runtime's
    line numbers, or empty), ``error`` (the step's error type), and implement
    ``syntax_error``, ``runner`` and ``caps``.
    """

    fields: tuple[str, ...] = ("code",)
    item_inputs = True  # mapped: ``run(inputs)`` gets inputs 'item' and 'item_index'
    cluster = True  # may run on a Dask worker (pardag.kinds.cluster)
    language: ClassVar[str]
    label: ClassVar[str]
    example: ClassVar[str]
    error: ClassVar[type[Exception]]
    line_hint: ClassVar[str] = ""

    def syntax_error(self, code: str) -> str | None:
        """The runtime's message for code that does not compile, else None."""
        raise NotImplementedError

    def runner(self) -> Callable[..., Any]:
        """``fn(step_id, code, inputs, params, timeout, memory, output)``: one attempt, a
        function at module level (a worker process imports it by name)."""
        raise NotImplementedError

    def caps(self) -> tuple[int, int]:
        """(memory, output) bytes of one attempt, read from the kind's module when a run
        starts (a test may lower them there)."""
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
        executor = code_executor(name, step.executor)
        if executor is not None:
            out.append(executor)
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        code: str = step.params["code"]
        step_id, timeout = step.id, step.timeout
        memory, output = self.caps()
        if step.executor == ExecutorName.THREADS:

            def bind(
                inputs: Mapping[str, Any], params: Mapping[str, Any]
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
                return (step_id, code, dict(inputs), dict(params), timeout, memory, output), {}

            return Action(self.runner(), ExecutorName.THREADS, bind)
        call = WorkerCall(
            self.runner(),
            self.language,
            self.label,
            self.error,
            step_id,
            code,
            timeout,
            memory,
            output,
        )

        def bind_plain(
            inputs: Mapping[str, Any], params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (plain(inputs), plain(params)), {}

        if step.executor == ExecutorName.DASK:
            return Action(OnWorker(step_id, call), ExecutorName.DASK, bind_plain)
        return Action(call, ExecutorName.PROCESSES, bind_plain)
