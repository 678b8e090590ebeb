"""The ``approval`` kind: a person's answer as a step (for now, an answer given up front).

Params: ``prompt`` (the question, may be a template) and optional ``choices`` (the answers
allowed). A real pause, durable and answered later from the CLI, the API or the web page,
needs the run store, which does not exist yet. Until then the answer must come with the run:
``params={"approvals": {"review": "yes"}}`` (or the flat key ``"approvals.review"``). Without
one the step fails, saying so and how to pass it.

The output is ``{"approved": ..., "answer": answer}``: ``approved`` is True for ``yes``, ``y``,
``true``, ``ok``, ``approve``, ``approved`` (any case) and True; False for ``no``, ``n``,
``false``, ``reject``, ``rejected`` and False; otherwise the answer itself (a choice such as
``"staging"``). With ``choices``, an answer outside them fails the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.templates import namespace, render, template_problems, to_text

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["ApprovalKind", "ApprovalMissing", "answer_of", "approved"]

_YES = frozenset({"yes", "y", "true", "ok", "approve", "approved"})
_NO = frozenset({"no", "n", "false", "reject", "rejected"})


class ApprovalMissing(Exception):
    """An approval step has no answer, or one it does not accept."""


def answer_of(params: Mapping[str, Any], step_id: str) -> Any:
    """The answer the run's params give for ``step_id``, or None."""
    approvals = params.get("approvals")
    if isinstance(approvals, Mapping) and step_id in approvals:
        return approvals[step_id]
    return params.get(f"approvals.{step_id}")


def approved(answer: Any) -> Any:
    """True or False for a yes or no answer (see the module docstring), else the answer."""
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, str):
        word = answer.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    return answer


class ApprovalKind:
    """Reads the step's answer from the run's params; see the module docstring."""

    fields: tuple[str, ...] = ("prompt", "choices")

    def problems(self, step: Step) -> list[str]:
        prompt = step.params.get("prompt")
        out = []
        if not isinstance(prompt, str) or not prompt.strip():
            out.append(f"an approval step needs params prompt: 'the question', got {prompt!r}")
        else:
            out += template_problems(prompt, "prompt")
        choices = step.params.get("choices")
        if choices is not None and not (
            isinstance(choices, list)
            and choices
            and all(isinstance(c, str | int | float | bool) for c in choices)
        ):
            out.append(f"choices must be a list of answers such as [yes, no], got {choices!r}")
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        prompt, choices, step_id = step.params["prompt"], step.params.get("choices"), step.id
        where = f"step {step_id!r} params.prompt"

        def answer(inputs: Mapping[str, Any]) -> dict[str, Any]:
            question = to_text(render(prompt, namespace(inputs, ctx), where=where))
            given = answer_of(ctx.params, step_id)
            if given is None:
                raise ApprovalMissing(
                    f"step {step_id!r} waits for approval ({question!r}); pausing for an answer "
                    f"needs the run store (not yet available); pass the answer as params "
                    f"approvals.{step_id}=yes"
                )
            if choices is not None and not _among(given, choices):
                allowed = ", ".join(to_text(c) for c in choices)
                raise ApprovalMissing(
                    f"step {step_id!r}: the answer {given!r} is not one of the choices: {allowed}"
                )
            return {"approved": approved(given), "answer": given}

        return Action(answer, "inline", _bind_inputs)


def _among(answer: Any, choices: list[Any]) -> bool:
    """Whether ``answer`` is one of ``choices``, comparing as text (``yes`` matches True)."""
    text = to_text(answer).strip().lower()
    return any(text == to_text(choice).strip().lower() for choice in choices) or any(
        approved(answer) is approved(choice) for choice in choices if isinstance(choice, bool)
    )


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


KINDS = {"approval": ApprovalKind()}
