"""The ``approval`` kind: a step that waits for a person's answer.

Params: ``prompt`` (the question, may be a template), optional ``choices`` (the answers
allowed) and optional ``schema`` (a JSON Schema the answer must fit, checked by
``pardag approve``).

Where the answer comes from, in order:
1. the run store: ``pardag approve RUN STEP --input JSON`` (or ``pardag.approve``) records it
   and resumes the run, and the step's output is that JSON value; ``pardag reject`` fails the
   step with the reason;
2. the run's params, for runs without a store: ``params={"approvals": {"review": "yes"}}`` (or
   the flat key ``"approvals.review"``); the output is then ``{"approved": ..., "answer": ...}``
   where ``approved`` is True for ``yes``, ``y``, ``true``, ``ok``, ``approve``, ``approved``
   (any case) and True, False for ``no``, ``n``, ``false``, ``reject``, ``rejected`` and False,
   otherwise the answer itself;
3. none yet: the step pauses (``StepPaused``). With a store, the run ends ``paused`` once
   nothing else can move (``pardag run`` exits 3); without one, it ends paused in memory.

With ``choices``, an answer outside them fails the step.

``timeout`` (a duration) bounds the wait, counted from the first pause; ``on_timeout`` says
what happens then: ``reject`` (the default: the step fails, "no answer within 1h") or
``approve`` (the step succeeds with ``default``, true unless given). The timeout is applied by
the process running the run, while other steps keep it alive, and otherwise by the next
``pardag resume``, ``approve`` or ``reject`` of the paused run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.errors import ApprovalMissing, ApprovalRejected, StepPaused
from pardag.kinds.base import Action, RunContext
from pardag.states import ExecutorName
from pardag.store.base import REJECTED
from pardag.templates import namespace, render, template_problems, to_text
from pardag.units import parse_duration

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "ApprovalKind",
    "ApprovalMissing",
    "ApprovalRejected",
    "answer_of",
    "answer_problem",
    "approved",
    "schema_problems",
]

_YES = frozenset({"yes", "y", "true", "ok", "approve", "approved"})
_NO = frozenset({"no", "n", "false", "reject", "rejected"})


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

    fields: tuple[str, ...] = ("prompt", "choices", "schema", "timeout", "on_timeout", "default")
    templated: tuple[str, ...] = ("prompt",)
    """The fields rendered as templates (validation checks what they read)."""
    template_names: tuple[str, ...] = ()
    """Names its templates read besides ``pardag.templates.TEMPLATE_NAMES``."""

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
        schema = step.params.get("schema")
        if schema is not None:
            out += schema_problems(schema)
        return out + _timeout_problems(step.params)

    def action(self, step: Step, ctx: RunContext) -> Action:
        prompt, choices, step_id = step.params["prompt"], step.params.get("choices"), step.id
        where = f"step {step_id!r} params.prompt"
        limit = step.params.get("timeout")
        timeout = parse_duration(limit, "timeout") if limit is not None else None
        on_timeout = step.params.get("on_timeout", "reject")
        default = step.params.get("default", True)

        def answer(inputs: Mapping[str, Any]) -> Any:
            question = to_text(render(prompt, namespace(inputs, ctx), where=where))
            stored = ctx.answers.get(step_id)
            if stored is not None:
                if stored.decision == REJECTED:
                    raise ApprovalRejected(f"rejected: {stored.reason or 'no reason given'}")
                return json.loads(stored.value_json)
            given = answer_of(ctx.params, step_id)
            if given is None:
                if timeout is None:
                    raise StepPaused(question)
                since = ctx.paused_at.setdefault(step_id, ctx.clock.time())
                left = since + timeout - ctx.clock.time()
                if left > 0:
                    raise StepPaused(question, wait=left)
                if on_timeout == "approve":
                    return default
                raise ApprovalRejected(f"no answer within {limit} (timeout); rejected")
            if choices is not None and not _among(given, choices):
                allowed = ", ".join(to_text(c) for c in choices)
                raise ApprovalMissing(
                    f"step {step_id!r}: the answer {given!r} is not one of the choices: {allowed}"
                )
            return {"approved": approved(given), "answer": given}

        return Action(answer, ExecutorName.INLINE, _bind_inputs)


def _timeout_problems(params: Mapping[str, Any]) -> list[str]:
    out = []
    if "timeout" in params:
        try:
            if parse_duration(params["timeout"], "timeout") <= 0:
                out.append("timeout must be longer than 0, e.g. '1h'")
        except ValueError as exc:
            out.append(str(exc))
    if params.get("on_timeout", "reject") not in ("reject", "approve"):
        out.append(f"on_timeout must be 'reject' or 'approve', got {params['on_timeout']!r}")
    if ("on_timeout" in params or "default" in params) and "timeout" not in params:
        out.append(
            "on_timeout and default apply only with the wait's own timeout, under params "
            "(params: {timeout: '1h'}); a step-level timeout limits a run of the step, not the wait"
        )
    return out


def schema_problems(schema: Any) -> list[str]:
    """Whether ``schema`` is a JSON Schema an answer can be checked against."""
    import jsonschema

    if not isinstance(schema, dict):
        return [f"schema must be a JSON Schema (a mapping), got {schema!r}"]
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [f"schema is not a valid JSON Schema: {exc.message}"]
    return []


def answer_problem(schema: Any, value: Any) -> str | None:
    """Why ``value`` does not fit ``schema`` (the schema's own message), or None."""
    import jsonschema

    if schema is None:
        return None
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(value)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


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
