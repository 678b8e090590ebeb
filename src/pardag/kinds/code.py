"""What the embedded-language kinds (Lua, JavaScript) share: a ``code`` param defining ``run``.

Each language says how to check its syntax and how to run an attempt; the checks of a step's
params and the call the runner makes are the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pardag.kinds.base import Action, RunContext

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["CodeKind"]


class CodeKind:
    """A step whose ``params['code']`` defines ``run``, run on threads in an embedded runtime.

    Subclasses set ``language`` (the kind's name), ``label`` (the language's name in
    messages), ``example`` (what ``run`` looks like), ``line_hint`` (how to read the runtime's
    line numbers, or empty), and implement ``syntax_error`` and ``run``.
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
        if step.executor not in (None, "threads"):
            out.append(
                f"a {name} step runs on 'threads', not {step.executor!r}; "
                "remove the executor setting"
            )
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        code: str = step.params["code"]
        step_id, timeout = step.id, step.timeout

        def bind(
            inputs: Mapping[str, Any], params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (step_id, code, dict(inputs), dict(params), timeout), {}

        return Action(self.runner(), "threads", bind)
