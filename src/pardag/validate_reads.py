"""What a step's templates and expressions read, checked against what its run will give it.

A step's templates (``command: echo {{ steps.fetch.output.rows }}``) and expressions
(``when: fetch.rows > 3``) read its dependencies' outputs, and only those of its direct
dependencies (``inputs``, DESIGN §2 "Data"); a workflow that declares its params
(``Workflow(params=...)``, ``params:`` in a file) gives only those. So validation reports,
before anything runs, each read of:

* a step the reader does not depend on, with the fix (``add `depends_on: [fetch]```, in the
  syntax of the file the workflow came from);
* a step that does not exist, or a name a template or expression does not have (with the
  closest one);
* a key of ``steps.ID`` other than ``output``;
* a param the workflow does not declare (unless it takes any: ``extra_params``);
* a secret (``secrets.NAME``) the workflow does not declare (``secrets:``), and a
  ``pardag.Secret`` in a step's params (only a run takes secrets).

The fields checked are ``when``, ``cache.key``, a kind's ``expressions`` (a condition's) and
its ``templated`` fields (shell commands, HTTP requests, approval prompts...) when the kind
says which names its templates have besides ``TEMPLATE_NAMES`` (``template_names``; the
node-graph kinds, whose templates also read each input by id, do not say yet).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from typing import Any

from pardag.errors import ArgumentError, Problem
from pardag.expressions import EXPRESSION_NAMES, compile_expression
from pardag.kinds import KINDS
from pardag.model import Step, Workflow, param_problem
from pardag.reads import Reads, template_reads
from pardag.secrets import Secret
from pardag.templates import ITEM_NAMES, TEMPLATE_NAMES

__all__ = ["read_problems"]

_STEP_ROOTS = ("steps", "inputs")
_PARAM_ROOTS = ("params", "trigger")


def read_problems(wf: Workflow) -> list[Problem]:
    """Every read of ``wf``'s steps that the run would fail on, each placed at its field."""
    out: list[Problem] = []
    for step in wf.steps.values():
        missing: dict[str, list[str]] = {}  # a step not depended on -> the fields reading it
        for field, reads, available in _sources(step):
            for message in _field_problems(wf, step, field, reads, available, missing):
                out.append(Problem(step.id, message, wf.field_locations.get((step.id, field))))
        for dep, fields in missing.items():
            where = wf.field_locations.get((step.id, fields[0]))
            out.append(Problem(step.id, _not_a_dependency(wf, step, dep, fields), where))
        for field in sorted(k for k, v in step.params.items() if _holds_secret(v)):
            out.append(Problem(step.id, _secret_in_params(field), None))
    return out


def _holds_secret(value: Any) -> bool:
    """Whether a step param holds a ``pardag.Secret`` (it would render as ``***``)."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_holds_secret(v) for v in value)


def _secret_in_params(field: str) -> str:
    return (
        f"{field} holds a pardag.Secret, which a step's params cannot pass on (it would be "
        "sent as ***); give it to the run, run(secrets={'NAME': ...}) with "
        "Workflow(secrets=['NAME']), and write {{ secrets.NAME }} here"
    )


def _sources(step: Step) -> Iterator[tuple[str, Reads, frozenset[str]]]:
    """(field, what it reads, the names it has) for each template and expression of ``step``."""
    mapped = ITEM_NAMES if step.map_over else frozenset()
    expression_names = EXPRESSION_NAMES | set(step.depends_on) | mapped
    if isinstance(step.when, str):
        yield from _expression("when", step.when, expression_names)
    kind = KINDS.get(step.kind)
    if step.fn is None:
        for field in getattr(kind, "expressions", ()):
            yield from _expression(field, step.params.get(field), expression_names)
    extra = getattr(kind, "template_names", None)
    if extra is not None:  # a kind that says what its templates have: checked here
        names = TEMPLATE_NAMES | set(extra) | mapped
        for field in getattr(kind, "templated", ()):
            if field in step.params:
                yield field, template_reads(step.params[field]), names
    if isinstance(step.cache, dict) and "key" in step.cache:
        yield "cache", template_reads(step.cache["key"]), TEMPLATE_NAMES


def _expression(
    field: str, source: Any, names: frozenset[str]
) -> Iterator[tuple[str, Reads, frozenset[str]]]:
    if not isinstance(source, str):
        return
    try:
        yield field, compile_expression(source, where=field).reads, names
    except ArgumentError:  # its syntax is reported by the step's own checks
        return


def _field_problems(
    wf: Workflow,
    step: Step,
    field: str,
    reads: Reads,
    available: frozenset[str],
    missing: dict[str, list[str]],
) -> Iterator[str]:
    for name in sorted(reads.names - available):
        if name in wf.steps:
            if name not in step.depends_on:
                missing.setdefault(name, []).append(field)
            else:  # a template reads a dependency's output as steps.ID.output
                yield f"{field} reads {name!r} as a name; write steps.{name}.output"
        elif name in ITEM_NAMES:
            yield _item_outside_map(wf, field, name)
        else:
            yield f"{field} reads {name!r}, which is not defined{_closest(name, available)}"
    for root, key, inner in sorted(reads.keys, key=lambda k: (k[0], k[1], k[2] or "")):
        if root not in available:
            continue
        if root in _STEP_ROOTS:
            yield from _step_read(wf, step, field, root, key, inner, missing)
        elif root == "trigger" and wf.triggers:
            continue  # a webhook's body or a schedule's slot: any keys (pardag.triggerdata)
        elif root in _PARAM_ROOTS:
            problem = param_problem(wf, key)
            if problem is not None:
                yield f"{field} reads {root}.{key}: {problem}"
        elif root == "secrets" and key not in wf.secrets:
            yield _undeclared_secret(wf, field, key)


def _item_outside_map(wf: Workflow, field: str, name: str) -> str:
    """``{{ item }}`` in a step that is not mapped: say how to map it."""
    reader = wf.definition_format.partition(":")[0]
    fix = {"python": "map_over=", "nodegraph": "data.forEach"}.get(reader, "for_each:")
    return (
        f"{field} reads {name!r}, which only a mapped step's templates have (one instance per "
        f"item of a list); map this step with {fix} naming the step whose output is the list"
    )


def _undeclared_secret(wf: Workflow, field: str, key: str) -> str:
    declared = f" (it declares: {', '.join(wf.secrets)})" if wf.secrets else ""
    return (
        f"{field} reads secrets.{key}, a secret the workflow does not declare{declared}"
        f"{_closest(key, frozenset(wf.secrets))}; to read it, add {key!r} to the top-level "
        f"secrets: list (in Python: Workflow(secrets=[{key!r}]))"
    )


def _step_read(
    wf: Workflow,
    step: Step,
    field: str,
    root: str,
    key: str,
    inner: str | None,
    missing: dict[str, list[str]],
) -> Iterator[str]:
    if key not in wf.steps:
        yield f"{field} reads {root}.{key}, but there is no step {key!r}{_closest(key, wf.steps)}"
    elif key not in step.depends_on:
        missing.setdefault(key, []).append(field)
    elif root == "steps" and inner is not None and inner != "output":
        yield (
            f"{field} reads steps.{key}.{inner}, but steps.{key} holds only 'output'; "
            f"write steps.{key}.output.{inner}"
        )


def _not_a_dependency(wf: Workflow, step: Step, dep: str, fields: list[str]) -> str:
    named = " and ".join(dict.fromkeys(fields))
    return (
        f"{named} read{'s' if len(set(fields)) == 1 else ''} the output of {dep!r}, which "
        f"it does not depend on (a step gets only its dependencies' outputs); "
        f"add {_depends_fix(wf, [*step.depends_on, dep])}"
    )


def _depends_fix(wf: Workflow, deps: list[str]) -> str:
    """``depends_on`` with ``deps``, written as the workflow's own source writes it."""
    reader, _, syntax = wf.definition_format.partition(":")
    quoted = ", ".join(json.dumps(d) for d in deps)
    if reader == "python":
        return f"depends_on=[{quoted}]"
    if reader == "nodegraph":
        return f"an edge from {deps[-1]!r} into it"
    if reader != "native":
        return f"a dependency on {deps[-1]!r}"
    written = {
        "json": f'"depends_on": [{quoted}]',
        "toml": f"depends_on = [{quoted}]",
        "lua": f"depends_on = {{{quoted}}}",
    }
    return written.get(syntax, f"depends_on: [{', '.join(deps)}]")


def _closest(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
