"""Every error pardag raises, so callers can catch exactly what they mean.

Each is exported as ``pardag.X`` (and named so in tracebacks); the modules that raise one
import it from here, so ``import pardag`` never loads a step kind just to name its error.

The hierarchy::

    PardagError                   base of everything below
    ├── ArgumentError             a bad argument to an API call (names the argument)
    │   ├── SettingsError         ... bad run settings; ``problems`` names each one's source
    │   ├── SecretMissing         ... a secret the run needs has no (usable) value
    │   └── UnknownOption         ... an option the call does not have (names the closest)
    ├── ExpressionError           evaluating a ``when`` or condition expression failed
    ├── ValidationError           a workflow that cannot run; carries every problem found
    │   └── CycleError            ... among them a cycle, available as ``.cycle``
    ├── StepFailed                a step did not succeed; keeps the original exception
    │   ├── StepTimeout           ... because it ran past its timeout
    │   └── StepCancelled         ... because the run was cancelled under it
    ├── StepPaused                a step waits for a person (raised by approval steps)
    ├── StepSkipped               a step skips itself (raised by the step, with a reason)
    ├── MissingRuntime            a step language's runtime is not installed (names the extra)
    ├── RunCancelled              the run was cancelled (Ctrl-C, ``Runner.cancel``)
    ├── RunTimedOut               the run ran past its ``timeout``
    ├── StoreError                the run store cannot be used (unreachable, corrupt, newer)
    ├── CommandFailed             a ``shell`` step's command exited non-zero or did not start
    ├── PreconditionFailed        a ``shellflow`` step's precondition did not hold
    ├── HTTPFailed                an ``http`` step got a status it does not allow (``.status``)
    ├── NodeError                 a node-graph node could not compute its output
    ├── ApprovalMissing           an ``approval`` step got an answer it does not accept
    ├── ApprovalRejected          an ``approval`` step was rejected (``pardag reject``)
    ├── PythonStepError           a Python ``code`` step failed
    ├── LuaStepError              a ``lua`` step failed
    │   └── LuaTimeout            ... its code ran past the step timeout
    ├── JavaScriptStepError       a ``javascript`` step failed
    │   └── JavaScriptTimeout     ... its code ran past the step timeout
    └── WasmStepError             a ``wasm`` step failed
        └── WasmTimeout           ... its module ran past the step timeout

``ArgumentError``, ``ValidationError`` and ``CycleError`` are also ``ValueError`` so that code
written against plain Python conventions still catches them (``UnknownOption`` is also the
``TypeError`` Python raises for an unexpected keyword argument); ``MissingRuntime`` is also an
``ImportError``; ``LuaTimeout``, ``JavaScriptTimeout`` and ``WasmTimeout`` are also
``TimeoutError``. A step's own exception is never swallowed: it is ``StepFailed.cause`` (and
``__cause__``), with its formatted traceback in ``StepFailed.traceback``.

From ``CommandFailed`` down, each is what a step of one kind raises: the ``StepFailed.cause``
a caller checks, the type a ``RetryPolicy(retry_on=...)`` names. Every error pickles with its
attributes, as a worker process sends them back to the runner.

Kept internal, each caught where it is raised and never reaching a caller:

* ``pardag.budget.RenderLimit``: a template or expression that spent its budget (operations,
  size, deadline), becomes an ``ExpressionError`` naming the step and field;
* ``pardag.cli.logs.ProcessGone``: ``pardag logs --follow`` prints it and exits 1;
* ``pardag.config._Invalid``: a value that does not parse, becomes a ``SettingsError`` problem;
* ``pardag.egress.EgressRefused``: a connection the egress policy refused, becomes the http
  step's ``HTTPFailed``;
* ``pardag.formats.syntax.Bad`` and ``pardag.formats.json_lines._Constant``: a problem with a
  workflow file's syntax, which becomes the file's ``ValidationError``;
* ``pardag.kinds.javascript._DeadlinePassed``: becomes a ``JavaScriptTimeout``;
* ``pardag.regularfile.NotRegularFile``: a named file is a device, FIFO or directory, which
  becomes the problem or error of whatever named it (workflow file, wasm module, config);
* ``pardag.shellscan.Misplaced``: a placeholder where shell text could not keep a value data
  (an ``ArgumentError`` with its place), becomes the step's validation problem or error;
* ``pardag.templates.NameMissing``: a jinja2 ``UndefinedError``, becomes an ``ExpressionError``;
* ``pardag.tokens.TokenRefused``: an API token that may not be used, becomes the server's 401;
* ``pardag.vault.SecretKeyError``: a ``SecretMissing`` about the key of the stored secrets
  (missing, malformed, not the one that sealed them), becomes the server's 503;
* ``pardag.server.errors.ApiError``: an HTTP answer other than success, becomes its JSON error.
* ``pardag.server.ui.session.LoginNeeded``: a page asked for without a valid session, becomes a
  redirect to the login form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ApprovalMissing",
    "ApprovalRejected",
    "ArgumentError",
    "CommandFailed",
    "CycleError",
    "ExpressionError",
    "HTTPFailed",
    "JavaScriptStepError",
    "JavaScriptTimeout",
    "LuaStepError",
    "LuaTimeout",
    "MissingRuntime",
    "NodeError",
    "PardagError",
    "PreconditionFailed",
    "Problem",
    "PythonStepError",
    "RunCancelled",
    "RunTimedOut",
    "SecretMissing",
    "SettingsError",
    "StepCancelled",
    "StepFailed",
    "StepPaused",
    "StepSkipped",
    "StepTimeout",
    "StoreError",
    "UnknownOption",
    "ValidationError",
    "WasmStepError",
    "WasmTimeout",
]


class PardagError(Exception):
    """Base class of every error raised by pardag."""


class MissingRuntime(PardagError, ImportError):
    """A step language's runtime is not installed; the message names the extra to install."""


class ArgumentError(PardagError, ValueError):
    """An API call got an argument it cannot use; the message names it and the fix."""


class UnknownOption(ArgumentError, TypeError):
    """A call got an option it does not have (``wf.run(max_concurency=8)``); the message
    names the closest one. Also a ``TypeError``, as Python raises for an unexpected keyword
    argument."""


class SecretMissing(ArgumentError):
    """A secret the run needs has no value, or one it cannot use (too short, or a secrets
    file others may read); the message names it and the ways to give it."""


class SettingsError(ArgumentError):
    """One or more settings are invalid; ``problems`` lists each, naming its source."""

    def __init__(self, problems: list[str], warnings: tuple[str, ...] = ()) -> None:
        self.problems = problems
        self.warnings = warnings
        super().__init__("\n".join(problems))

    def __reduce__(self) -> tuple[type[SettingsError], tuple[list[str], tuple[str, ...]]]:
        return (type(self), (self.problems, self.warnings))


class ExpressionError(PardagError):
    """Evaluating an expression failed; the message names where, the expression and why.

    ``where`` and ``source`` are the place and the expression text.
    """

    def __init__(self, message: str, where: str = "", source: str = "") -> None:
        super().__init__(message)
        self.where = where
        self.source = source

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, str]]:
        return (type(self), (str(self), self.where, self.source))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow: which ``step`` (may be None), what to do, and ``where``.

    ``where`` is a place in a workflow file, such as ``flow.yaml:12``, when the workflow came
    from one.
    """

    step: str | None
    message: str
    where: str | None = None

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        step = f"step {self.step!r}: " if self.step is not None else ""
        return place + step + self.message


class ValidationError(PardagError, ValueError):
    """A workflow failed validation; ``problems`` lists every problem found, not just the first.

    Nothing runs when validation fails.
    """

    def __init__(self, workflow: str, problems: Sequence[Problem]) -> None:
        self.workflow = workflow
        self.problems = list(problems)
        count = len(self.problems)
        head = f"workflow {workflow!r} is invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))

    def __reduce__(self) -> tuple[type[ValidationError], tuple[object, ...]]:
        return (type(self), (self.workflow, self.problems))


class CycleError(ValidationError):
    """The workflow has a cycle. ``cycle`` is its path, first step repeated at the end."""

    def __init__(self, workflow: str, problems: Sequence[Problem], cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(workflow, problems)

    def __reduce__(self) -> tuple[type[ValidationError], tuple[object, ...]]:
        return (type(self), (self.workflow, self.problems, self.cycle))


class StepFailed(PardagError):
    """A step did not succeed. ``cause`` is the step's own exception, ``traceback`` its text."""

    def __init__(
        self, step: str, cause: BaseException | None, reason: str, traceback: str = ""
    ) -> None:
        self.step = step
        self.cause = cause
        self.reason = reason
        self.traceback = traceback
        super().__init__(f"step {step!r} failed: {reason}")
        if cause is not None:
            self.__cause__ = cause

    def __reduce__(self) -> tuple[type[StepFailed], tuple[str, BaseException | None, str, str]]:
        return (type(self), (self.step, self.cause, self.reason, self.traceback))


class StepTimeout(StepFailed):
    """A step ran past its ``timeout`` (or the run's) and was stopped."""


class StepCancelled(StepFailed):
    """A step was cancelled because the run was cancelled or failed elsewhere."""


class StepSkipped(PardagError):
    """Raised by a step to skip itself: it ends ``skipped`` with ``reason``, is not retried,
    and its dependents follow their trigger rules, as after a false ``when``.

    For a decision only the step can make once it runs (no new data, nothing to do).
    """

    def __init__(self, reason: str = "skipped by the step") -> None:
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self) -> tuple[type[StepSkipped], tuple[str]]:
        return (type(self), (self.reason,))


class StepPaused(PardagError):
    """Raised by a step that waits for a person's answer: the runner pauses it (no slot held).

    ``prompt`` is the question. The run goes on with what does not depend on the step and
    ends ``paused`` when nothing else can move; an answer (``pardag approve``) resumes it.
    """

    def __init__(self, prompt: str, wait: float | None = None) -> None:
        self.prompt = prompt
        self.wait = wait
        """Seconds until the step wants another look (its approval timeout), or None."""
        super().__init__(f"waiting for approval: {prompt}")

    def __reduce__(self) -> tuple[type[StepPaused], tuple[str, float | None]]:
        return (type(self), (self.prompt, self.wait))


class RunCancelled(PardagError):
    """The run was cancelled before it finished; ``reason`` says by what."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"run cancelled: {reason}")

    def __reduce__(self) -> tuple[type[RunCancelled], tuple[str]]:
        return (type(self), (self.reason,))


class RunTimedOut(PardagError):
    """The run ran past its ``timeout``; the steps still running were stopped."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"run timed out after {timeout:g}s; raise timeout= or make steps faster")

    def __reduce__(self) -> tuple[type[RunTimedOut], tuple[float]]:
        return (type(self), (self.timeout,))


class StoreError(PardagError):
    """The store cannot be used: unreachable, corrupt, or written by a newer pardag.

    The message names the store (its URL with the password masked, or its file) and the fix.
    """


# -- raised by the step kinds: a step's ``StepFailed.cause``, what ``retry_on`` names ----------


class CommandFailed(PardagError):
    """A shell step's command exited with a non-zero code, or could not be started."""


class PreconditionFailed(PardagError):
    """A precondition did not hold (or could not be evaluated); the step fails once."""


class HTTPFailed(PardagError):
    """A request got a status it does not allow, or no response at all.

    ``status`` is the status code (None when there was no response).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NodeError(PardagError):
    """A node could not compute its output from its inputs and data; the message says why."""


class ApprovalMissing(PardagError):
    """An approval step's answer is not one it accepts."""


class ApprovalRejected(PardagError):
    """Someone rejected the approval step (``pardag reject``); the message gives the reason."""


class PythonStepError(PardagError):
    """A Python code step failed: its ``run`` raised, is not callable, or returned too much."""


class LuaStepError(PardagError):
    """A Lua step failed: no ``run``, a Lua error, an output that cannot be kept."""


class LuaTimeout(LuaStepError, TimeoutError):
    """The step timeout passed while its Lua code was still running."""


class JavaScriptStepError(PardagError):
    """A JavaScript step failed: no ``run``, a JavaScript error, an output that cannot be kept."""


class JavaScriptTimeout(JavaScriptStepError, TimeoutError):
    """The step timeout passed while its JavaScript code was still running."""


class WasmStepError(PardagError):
    """A wasm step failed: a module that does not follow the ABI, a trap, a bad output."""


class WasmTimeout(WasmStepError, TimeoutError):
    """The step timeout passed while its module was still running."""
