"""The native steps file: a ``steps:`` mapping of step ids to their fields, in YAML/TOML/JSON.

The fields the format accepts are declared once, below (``TOP``, ``EXECUTION``, ``STEP``,
``RETRY``, ``POOL``), each with the JSON Schema of its value and a description; the reader
checks against them and ``pardag.formats.schema`` renders them as ``docs/schema.json``.

A step's kind parameters (``command`` for ``shell``, ``expression`` for ``condition``, ...: the
kind's ``fields``) may be written at the step's top level or under ``params:``. Every problem
in the file is reported at once, each with its line; then the workflow is validated (unknown
dependencies, cycles, kind problems) and those problems carry their step's line too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pardag.errors import CycleError, Problem, ValidationError
from pardag.formats import apply_defaults
from pardag.formats.document import Document
from pardag.formats.languages import as_kind
from pardag.formats.reading import line_of
from pardag.kinds import KINDS
from pardag.kinds.control import branch_handle
from pardag.model import RetryPolicy, Workflow
from pardag.states import Mode, OnFailure, Trigger
from pardag.units import parse_duration, parse_rate

__all__ = ["EXECUTION", "POOL", "RETRY", "STEP", "TOP", "Field", "detect", "read"]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of the format: its name, the JSON Schema of its value, and what it means."""

    name: str
    schema: dict[str, Any]
    description: str


_DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$"},
    ]
}
_STRINGS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_EXECUTORS = ("async", "threads", "processes", "inline")
_RUN_EXECUTORS = ("threads", "processes", "inline")

RETRY = (
    Field("retries", {"type": "integer", "minimum": 0}, "How many more attempts after a failure."),
    Field("delay", _DURATION, "Wait before the first retry (default 1s)."),
    Field("factor", {"type": "number", "minimum": 1}, "Each wait is this times the last (2)."),
    Field("max_delay", _DURATION, "Longest wait between attempts (default 60s)."),
    Field("jitter", {"type": "number", "minimum": 0, "maximum": 1}, "Spread of waits (0.1)."),
)
POOL = (
    Field("size", {"type": "integer", "minimum": 1}, "Units of the pool; steps take 1 or more."),
    Field(
        "rate",
        {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]},
        "Most starts of steps holding the pool per time unit: '10/s', '100/m', or per second.",
    ),
)
EXECUTION = (
    Field("mode", {"enum": [m.value for m in Mode]}, "How ready steps are ordered (dynamic)."),
    Field(
        "max_concurrency",
        {"type": "integer", "minimum": 0},
        "Most steps running at once across the run; 0 means auto (per executor).",
    ),
    Field("timeout", _DURATION, "Longest the whole run may take, e.g. '10m'."),
    Field(
        "on_failure",
        {"enum": [o.value for o in OnFailure]},
        "fail_fast: a failure cancels the run; continue: independent steps run on.",
    ),
    Field(
        "pools",
        {
            "type": "object",
            "additionalProperties": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/pool"}]
            },
        },
        "Named resource pools: a size, or {size, rate}. Steps take units with resources:.",
    ),
    Field("executor", {"enum": list(_RUN_EXECUTORS)}, "Where plain Python steps run (threads)."),
)
STEP = (
    Field("kind", {"type": "string"}, "What the step does (python by default)."),
    Field("description", {"type": "string"}, "For people reading the file; not used by runs."),
    Field("depends_on", _STRINGS, "Ids of the steps whose outputs this step needs."),
    Field(
        "language",
        {"type": "string"},
        "Instead of kind: lua, python, shell (bash, sh), javascript (js, node), wasm; the "
        "step's code then goes in code.",
    ),
    Field(
        "params",
        {"type": "object"},
        "The kind's parameters (templated); they may also be written at the step's top level.",
    ),
    Field(
        "retry",
        {"anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/retry"}]},
        "A number of retries, or {retries, delay, factor, max_delay, jitter}.",
    ),
    Field("timeout", _DURATION, "Longest one attempt may take: '30s', '2m', or seconds."),
    Field(
        "when",
        {"type": "string"},
        "Run only if this expression over the inputs and params is true, e.g. "
        '"extract.count > 0 and params.full".',
    ),
    Field(
        "trigger",
        {"enum": [t.value for t in Trigger]},
        "When to run once dependencies are final (all_success; merge: any_success).",
    ),
    Field("critical", {"type": "boolean"}, "false: a failure here does not fail the run."),
    Field(
        "cache",
        {
            "anyOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "ttl": _DURATION},
                    "additionalProperties": False,
                },
            ]
        },
        "true, or {key: TEMPLATE, ttl: DURATION}: reuse a stored output (docs/runs.md).",
    ),
    Field(
        "resources",
        {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "Units of named pools this step holds while it runs, e.g. {db: 1}.",
    ),
    Field("priority", {"type": "integer"}, "Higher starts first among ready steps (0)."),
    Field("executor", {"enum": list(_EXECUTORS)}, "Where the step runs."),
    Field("estimate", _DURATION, "Expected duration, for ordering by critical path."),
    Field(
        "branch",
        {
            "type": "object",
            "additionalProperties": {"type": ["string", "boolean", "integer"]},
        },
        "Run only on these condition steps' branches, e.g. {check: true}.",
    ),
)
TOP = (
    Field("$schema", {"type": "string"}, "The JSON Schema this file follows (for editors)."),
    Field("name", {"type": "string"}, "The workflow's name (default: the file name)."),
    Field("description", {"type": "string"}, "What the workflow is for."),
    Field("execution", {"$ref": "#/$defs/execution"}, "Settings of its runs."),
    Field(
        "params",
        {"type": "object"},
        "Default params of its runs; a run's own params are merged over them.",
    ),
    Field(
        "steps",
        {"type": "object", "additionalProperties": {"$ref": "#/$defs/step"}},
        "The steps, by id (letters, digits, '_', '.', '-').",
    ),
)

_MISSING: Any = object()


def detect(doc: Document) -> bool:
    """A native steps file: a top-level mapping with a ``steps`` mapping."""
    return isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), dict)


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow in ``doc``, validated; raises ``ValidationError`` with every problem.

    ``defaults`` are settings from below the file (a config file's pools): they count when
    the workflow is validated, for what the file does not declare.
    """
    return _Reader(doc, defaults).read()


# -- value checks -----------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), _show(value))


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; use one of {', '.join(options)}" if options else ""


class _Reader:
    """Reads one document; ``problems`` collects everything wrong, each at its line."""

    def __init__(self, doc: Document, defaults: Mapping[str, Any]) -> None:
        self.doc = doc
        self.defaults = defaults
        self.problems: list[Problem] = []
        self.bad_steps: set[str] = set()
        self.settings: dict[str, Any] = {}
        """The ``execution:`` settings the file declared, checked."""

    # -- reporting --------------------------------------------------------------------------

    def bad(self, message: str, *key: str | int, step: str | None = None) -> Any:
        """Record a problem at ``key``; returns ``_MISSING`` so callers can return it."""
        self.problems.append(self.doc.problem(message, *key, step=step))
        if step is not None:
            self.bad_steps.add(step)
        return _MISSING

    def unknown(
        self,
        data: Mapping[str, Any],
        fields: Sequence[str],
        where: str,
        at: tuple[str, ...],
        step: str | None = None,
        hint: Callable[[str], str] | None = None,
    ) -> None:
        """A problem for each key of ``data`` that is not one of ``fields``."""
        for key in data:
            if key not in fields:
                extra = hint(key) if hint is not None else ""
                message = f"unknown field {key!r}{where}" + (extra or _suggest(key, fields))
                self.bad(message, *at, key, step=step)

    def expect(
        self,
        ok: bool,
        value: Any,
        what: str,
        expected: str,
        *key: str | int,
        step: str | None = None,
    ) -> bool:
        if not ok:
            self.bad(f"{what!r} must be {expected}, got {_show(value)}", *key, step=step)
        return ok

    def mapping(self, value: Any, what: str, *key: str | int, step: str | None = None) -> bool:
        return self.expect(isinstance(value, dict), value, what, "a mapping", *key, step=step)

    def duration(self, value: Any, what: str, *key: str | int, step: str | None = None) -> Any:
        try:
            return parse_duration(value, what)
        except ValueError:
            expected = "a duration like '30s' or a number of seconds >= 0"
            return self.bad(f"{what!r} must be {expected}, got {_show(value)}", *key, step=step)

    def integer(
        self, value: Any, what: str, low: int | None, *key: str | int, step: str | None = None
    ) -> Any:
        ok = type(value) is int and (low is None or value >= low)
        expected = "an integer" + (f" >= {low}" if low is not None else "")
        return value if self.expect(ok, value, what, expected, *key, step=step) else _MISSING

    def number(self, value: Any, what: str, *key: str | int, step: str | None = None) -> Any:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (
            float(value) if self.expect(ok, value, what, "a number", *key, step=step) else _MISSING
        )

    def choice(
        self,
        value: Any,
        what: str,
        options: Sequence[str],
        *key: str | int,
        step: str | None = None,
    ) -> Any:
        if isinstance(value, str) and value in options:
            return value
        if isinstance(value, str):
            return self.bad(f"{what!r} is {value!r}{_suggest(value, options)}", *key, step=step)
        expected = "one of " + ", ".join(options)
        return self.bad(f"{what!r} must be {expected}, got {_show(value)}", *key, step=step)

    # -- the file ---------------------------------------------------------------------------

    def read(self) -> Workflow:
        data = self.doc.data
        self.unknown(data, [f.name for f in TOP], " at the top level", ())
        wf = Workflow(self._name(data), **self._execution(data.get("execution", _MISSING)))
        wf.source = self.doc.path
        wf.file_settings = dict(self.settings)
        params = data.get("params", {})
        if self.mapping(params, "params", "params"):
            wf.params = dict(params)
        if "description" in data:
            self._text(data["description"], "description", ("description",), None)
        steps = data.get("steps")
        if not self.mapping(steps, "steps", "steps"):
            steps = {}
        for sid, spec in steps.items():
            self._step(wf, sid, spec)
            wf.locations[sid] = self.doc.where("steps", sid)
        self._validate(wf)
        return wf

    def _name(self, data: Mapping[str, Any]) -> str:
        name = data.get("name", _MISSING)
        if name is _MISSING:
            return Path(self.doc.path).stem
        if self.expect(isinstance(name, str) and bool(name), name, "name", "a string", "name"):
            return str(name)
        return Path(self.doc.path).stem

    def _execution(self, section: Any) -> dict[str, Any]:
        """The ``execution:`` settings, checked; also kept as ``self.settings``."""
        if section is _MISSING or not self.mapping(section, "execution", "execution"):
            return {}
        self.unknown(section, [f.name for f in EXECUTION], " in execution", ("execution",))
        at = "execution"
        checks: dict[str, Callable[[Any], Any]] = {
            "mode": lambda v: self.choice(v, "mode", [m.value for m in Mode], at, "mode"),
            "max_concurrency": lambda v: self.integer(
                v, "max_concurrency", 0, at, "max_concurrency"
            ),
            "timeout": lambda v: self._positive(self.duration(v, "timeout", at, "timeout"), at),
            "on_failure": lambda v: self.choice(
                v, "on_failure", [o.value for o in OnFailure], at, "on_failure"
            ),
            "pools": self._pools,
            "executor": lambda v: self.choice(v, "executor", _RUN_EXECUTORS, at, "executor"),
        }
        for key, check in checks.items():
            if key in section:
                value = check(section[key])
                if value is not _MISSING:
                    self.settings[key] = value
        return dict(self.settings)

    def _positive(self, seconds: Any, *key: str) -> Any:
        if seconds is not _MISSING and seconds <= 0:
            return self.bad(
                f"'timeout' must be more than 0 seconds, got {seconds:g}; "
                "leave it out for no limit",
                *key,
            )
        return seconds

    def _pools(self, pools: Any) -> Any:
        if not self.mapping(pools, "pools", "execution", "pools"):
            return _MISSING
        out: dict[str, int | tuple[int, float]] = {}
        for name, spec in pools.items():
            at = ("execution", "pools", name)
            if isinstance(spec, dict):
                self.unknown(spec, [f.name for f in POOL], f" in pool {name!r}", at)
                size = self.integer(spec.get("size"), f"pools.{name}.size", 1, *at, "size")
                rate: Any = None
                if "rate" in spec:
                    try:
                        rate = parse_rate(spec["rate"], f"pools.{name}.rate")
                    except ValueError:
                        rate = self.bad(
                            f"'pools.{name}.rate' must be a rate like '10/s' or a number per "
                            f"second, got {_show(spec['rate'])}",
                            *at,
                            "rate",
                        )
                if size is not _MISSING and rate is not _MISSING:
                    out[name] = size if rate is None else (size, rate)
            else:
                size = self.integer(spec, f"pools.{name}", 1, *at)
                if size is not _MISSING:
                    out[name] = size
        return out

    # -- steps ------------------------------------------------------------------------------

    def _step(self, wf: Workflow, sid: str, spec: Any) -> None:
        at = ("steps", sid)
        if isinstance(spec, dict):  # ``language: bash`` + ``code`` -> ``kind: shell`` + ``command``
            found = len(self.problems)
            spec = as_kind(sid, spec, self.doc.where(*at), self.problems)
            if len(self.problems) > found:  # its language: further checks would only guess
                self.bad_steps.add(sid)
                return
        if not isinstance(spec, dict):
            self.bad(
                f"must be a mapping of step fields (kind, depends_on, ...), got {_type_name(spec)}",
                *at,
                step=sid,
            )
            wf.add(sid, depends_on=())
            return
        kind = spec.get("kind", "python")
        if not isinstance(kind, str):
            self.expect(False, kind, "kind", "a string", *at, "kind", step=sid)
            kind = "python"
        elif kind not in KINDS:
            self.bad(
                f"kind {kind!r} is unknown{_suggest(kind, sorted(KINDS))}", *at, "kind", step=sid
            )
        step_fields = [f.name for f in STEP]
        fields: tuple[str, ...] | None = None  # an unknown kind's: whatever is there
        if kind in KINDS:
            fields = KINDS[kind].fields
            own = [*step_fields, *fields]
            self.unknown(spec, own, "", at, step=sid, hint=lambda key: self._kind_hint(key, own))
        options: dict[str, Any] = {"kind": kind}
        for name, given in spec.items():  # in the file's order, so problems come in line order
            if name in step_fields and name not in ("kind", "params"):
                value = self._option(name, given, sid)
                if value is not _MISSING:
                    options[name] = value
        options["params"] = self._params(spec, step_fields, fields, sid)
        depends_on = options.pop("depends_on", ())
        options.pop("description", None)
        wf.add(sid, depends_on=depends_on, **options)

    def _kind_hint(self, key: str, own: Sequence[str]) -> str:
        """``did you mean`` among the step's fields and, failing that, other kinds' fields."""
        theirs: dict[str, list[str]] = {}
        for name, kind in sorted(KINDS.items()):
            for f in kind.fields:
                theirs.setdefault(f, []).append(repr(name))
        close = difflib.get_close_matches(key, [*own, *theirs], n=1, cutoff=0.6)
        if not close or close[0] in own:
            return _suggest(key, own)
        kinds = " or ".join(theirs[close[0]])
        if close[0] == key:
            return f": it is a parameter of kind {kinds}; set kind"
        return f"; did you mean {close[0]!r}? (a parameter of kind {kinds})"

    def _params(
        self,
        spec: Mapping[str, Any],
        step_fields: Sequence[str],
        fields: Sequence[str] | None,
        sid: str,
    ) -> dict[str, Any]:
        """The kind's parameters: ``params:`` plus the kind's fields given at the top level.

        ``fields`` None (an unknown kind, reported already) takes every other key.
        """
        at = ("steps", sid)
        params: dict[str, Any] = {}
        given = spec.get("params", {})
        if self.mapping(given, "params", *at, "params", step=sid):
            params.update(given)
        for key, value in spec.items():
            if key in step_fields or (fields is not None and key not in fields):
                continue
            if key in params:
                self.bad(
                    f"{key!r} is given both at the step's top level and under params; keep one",
                    *at,
                    key,
                    step=sid,
                )
            params[key] = value
        if spec.get("kind") == "wasm" and isinstance(params.get("module"), str):
            params["module"] = str(Path(self.doc.path).parent / params["module"])  # beside it
        return params

    def _option(self, name: str, value: Any, sid: str) -> Any:
        """The checked value of step field ``name`` (``_MISSING`` after a problem)."""
        at = ("steps", sid, name)
        if name in ("timeout", "estimate"):
            return self.duration(value, name, *at, step=sid)
        if name in ("when", "description"):
            return self._text(value, name, at, sid)
        if name == "critical":
            ok = self.expect(type(value) is bool, value, name, "true or false", *at, step=sid)
            return value if ok else _MISSING
        if name == "priority":
            return self.integer(value, name, None, *at, step=sid)
        if name == "executor":
            return self.choice(value, name, _EXECUTORS, *at, step=sid)
        if name == "trigger":
            found = self.choice(value, name, [t.value for t in Trigger], *at, step=sid)
            return _MISSING if found is _MISSING else Trigger(found)
        if name == "cache":
            return value
        readers: dict[str, Callable[[Any, str], Any]] = {
            "depends_on": self._depends_on,
            "retry": self._retry,
            "resources": self._resources,
            "branch": self._branch,
        }
        return readers[name](value, sid)

    def _text(self, value: Any, what: str, at: tuple[str, ...], sid: str | None) -> Any:
        ok = isinstance(value, str) and bool(value.strip())
        return (
            value
            if self.expect(ok, value, what, "a non-empty string", *at, step=sid)
            else (_MISSING)
        )

    def _depends_on(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "depends_on")
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            expected = "a step id or a list of step ids"
            return self.bad(f"'depends_on' must be {expected}, got {_show(value)}", *at, step=sid)
        good = True
        for n, item in enumerate(items):
            if not isinstance(item, str):
                good = False
                self.bad(
                    f"'depends_on' items must be step ids, got {_show(item)}", *at, n, step=sid
                )
        return tuple(items) if good else _MISSING

    def _retry(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "retry")
        if not isinstance(value, dict):
            if type(value) is int and value >= 0:
                return RetryPolicy(retries=value)
            expected = "a number of retries or a mapping {retries, delay, ...}"
            return self.bad(f"'retry' must be {expected}, got {_show(value)}", *at, step=sid)
        self.unknown(value, [f.name for f in RETRY], " in retry", at, step=sid)
        checks: dict[str, Callable[[Any], Any]] = {
            "retries": lambda v: self.integer(v, "retry.retries", 0, *at, "retries", step=sid),
            "delay": lambda v: self.duration(v, "retry.delay", *at, "delay", step=sid),
            "factor": lambda v: self.number(v, "retry.factor", *at, "factor", step=sid),
            "max_delay": lambda v: self.duration(v, "retry.max_delay", *at, "max_delay", step=sid),
            "jitter": lambda v: self.number(v, "retry.jitter", *at, "jitter", step=sid),
        }
        options = {k: check(value[k]) for k, check in checks.items() if k in value}
        if any(v is _MISSING for v in options.values()):
            return _MISSING
        return RetryPolicy(**options)

    def _resources(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "resources")
        if not self.mapping(value, "resources", *at, step=sid):
            return _MISSING
        out = {}
        for pool, amount in value.items():
            got = self.integer(amount, f"resources.{pool}", 1, *at, pool, step=sid)
            if got is not _MISSING:
                out[pool] = got
        return out

    def _branch(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "branch")
        if not self.mapping(value, "branch", *at, step=sid):
            return _MISSING
        out = {}
        for cond, handle in value.items():
            ok = isinstance(handle, str | bool | int)
            what = f"branch.{cond}"
            if self.expect(
                ok, handle, what, "a handle such as true, false or a case name", *at, cond, step=sid
            ):
                out[cond] = branch_handle(handle)
        return out

    # -- the model's own checks ------------------------------------------------------------

    def _validate(self, wf: Workflow) -> None:
        """Raise every problem in the order of the file's lines: the file's, and the model's
        for steps the file got right (on one line, the file's first)."""
        apply_defaults(wf, self.defaults)  # a pool declared in a config file counts
        try:
            wf.validate()
        except CycleError as exc:
            if not self.problems:
                raise CycleError(self.doc.path, self._placed(wf, exc.problems), exc.cycle) from None
            self.problems += self._placed(wf, exc.problems)
        except ValidationError as exc:
            self.problems += self._placed(wf, exc.problems)
        if self.problems:
            raise ValidationError(self.doc.path, sorted(self.problems, key=line_of))

    def _placed(self, wf: Workflow, problems: list[Problem]) -> list[Problem]:
        """The model's problems, but for steps with file problems already (the likely cause);
        one about an unknown dependency points at that dependency's line."""
        out = []
        for p in problems:
            if p.step in self.bad_steps:
                continue
            if p.where is None:
                p = Problem(p.step, p.message, self.doc.path)
            found = _UNKNOWN_DEP.match(p.message)
            step = wf.steps.get(p.step) if p.step is not None else None
            if found and step is not None and found.group(1) in step.depends_on:
                n = step.depends_on.index(found.group(1))
                p = Problem(p.step, p.message, self.doc.where("steps", step.id, "depends_on", n))
            out.append(p)
        return out


_UNKNOWN_DEP = re.compile(r"depends on unknown step '([^']*)'")
