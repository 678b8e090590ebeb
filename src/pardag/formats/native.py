"""The native steps file: a ``steps:`` mapping of step ids to their fields, in YAML/TOML/JSON.

The fields the format accepts are declared once, in ``native_fields`` (``TOP``,
``EXECUTION``, ``DASK``, ``STEP``, ``RETRY``, ``POOL``, importable from here too), each with the
JSON Schema of its value and a description; the reader checks against them and
``pardag.formats.schema`` renders them as ``docs/schema.json``. ``native_execution`` reads the
``execution:`` section (by the settings rules every front end shares), ``native_checks`` holds
the checks of values, and this module reads the rest: the top level and the steps.

A step's kind parameters (``command`` for ``shell``, ``expression`` for ``condition``, ...: the
kind's ``fields``) may be written at the step's top level or under ``params:``. Every problem
in the file is reported at once, each with its line; then the workflow is validated (unknown
dependencies, cycles, kind problems) and those problems carry their step's line too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pardag.errors import CycleError, Problem, ValidationError
from pardag.formats import apply_defaults
from pardag.formats.document import Document
from pardag.formats.languages import as_kind
from pardag.formats.native_checks import MISSING, Checks, show, suggest, type_name
from pardag.formats.native_execution import read_execution
from pardag.formats.native_fields import (
    DASK,
    EXECUTION,
    POOL,
    RETRY,
    STEP,
    STEP_EXECUTORS,
    TOP,
    Field,
)
from pardag.formats.reading import line_of
from pardag.kinds import KINDS, unknown_kind
from pardag.kinds.control import branch_handle
from pardag.model import RetryPolicy, Workflow, retry_policy
from pardag.secrets import declared
from pardag.states import ISOLATIONS, Trigger
from pardag.triggers import declared as declared_triggers

__all__ = ["DASK", "EXECUTION", "POOL", "RETRY", "STEP", "TOP", "Field", "detect", "read"]


def detect(doc: Document) -> bool:
    """A native steps file: a top-level mapping with a ``steps`` mapping."""
    return isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), dict)


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow in ``doc``, validated; raises ``ValidationError`` with every problem.

    ``defaults`` are settings from below the file (a config file's pools): they count when
    the workflow is validated, for what the file does not declare.
    """
    return _Reader(doc, defaults).read()


class _Reader(Checks):
    """Reads one document; ``problems`` collects everything wrong, each at its line."""

    def __init__(self, doc: Document, defaults: Mapping[str, Any]) -> None:
        super().__init__(doc)
        self.defaults = defaults

    # -- the file ---------------------------------------------------------------------------

    def read(self) -> Workflow:
        data = self.doc.data
        self.unknown(data, [f.name for f in TOP], " at the top level", ())
        name = self._name(data)
        settings = read_execution(self, data.get("execution", MISSING))
        wf = Workflow(name, **settings)
        wf.source = self.doc.path
        wf.file_settings = dict(settings)
        wf.definition_format = f"native:{self.doc.format}"  # the fixes validation suggests
        if "params" in data and self.mapping(data["params"], "params", "params"):
            wf.params = dict(data["params"])
            wf.extra_params = False
        if "extra_params" in data:
            extra = data["extra_params"]
            if self.expect(
                type(extra) is bool, extra, "extra_params", "true or false", "extra_params"
            ):
                wf.extra_params = extra
        if "description" in data:
            self._text(data["description"], "description", ("description",), None)
        if "secrets" in data:
            wf.secrets = self._secrets(data["secrets"])
        if "triggers" in data:
            wf.triggers, wrong = declared_triggers(data["triggers"])
            for where, message in wrong:
                self.bad(message, "triggers", *where)
        steps = data.get("steps")
        if not self.mapping(steps, "steps", "steps"):
            steps = {}
        for sid, spec in steps.items():
            self._step(wf, sid, spec)
            wf.locations[sid] = self.doc.where("steps", sid)
            self._field_lines(wf, sid, spec)
        self._validate(wf)
        return wf

    def _secrets(self, value: Any) -> tuple[str, ...]:
        """The top-level ``secrets:``: a list of names that can be environment variables."""
        names, problems = declared(value)
        for index, message in problems:
            self.bad(message, *(("secrets",) if index is None else ("secrets", index)))
        return names

    def _field_lines(self, wf: Workflow, sid: str, spec: Any) -> None:
        """Where each field of step ``sid`` is (a kind parameter under ``params:`` too)."""
        if not isinstance(spec, dict):
            return
        params = spec.get("params")
        for key in params if isinstance(params, dict) else ():
            wf.field_locations[(sid, str(key))] = self.doc.where("steps", sid, "params", key)
        for key in spec:
            wf.field_locations[(sid, str(key))] = self.doc.where("steps", sid, key)

    def _name(self, data: Mapping[str, Any]) -> str:
        name = data.get("name", MISSING)
        if name is MISSING:
            return Path(self.doc.path).stem
        if self.expect(isinstance(name, str) and bool(name), name, "name", "a string", "name"):
            return str(name)
        return Path(self.doc.path).stem

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
                f"must be a mapping of step fields (kind, depends_on, ...), got {type_name(spec)}",
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
            self.bad(unknown_kind(kind), *at, "kind", step=sid)
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
                if value is not MISSING:
                    options[name] = value
        options["params"] = self._params(spec, step_fields, fields, sid)
        for field in ("max_concurrency", "max_items", "allow_failures"):
            if field in spec and "for_each" not in spec:
                self.bad(
                    f"{field!r} applies to a mapped step only; add for_each: or remove it",
                    *at,
                    field,
                    step=sid,
                )
        for field, option in _MAP_OPTIONS.items():
            if field in options:
                options[option] = options.pop(field)
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
            return suggest(key, own)
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
        """The checked value of step field ``name`` (``MISSING`` after a problem)."""
        at = ("steps", sid, name)
        if name in ("timeout", "estimate"):
            return self.duration(value, name, *at, step=sid)
        if name in ("when", "description"):
            return self._text(value, name, at, sid)
        if name == "critical":
            ok = self.expect(type(value) is bool, value, name, "true or false", *at, step=sid)
            return value if ok else MISSING
        if name == "priority":
            return self.integer(value, name, None, *at, step=sid)
        if name in ("max_concurrency", "max_items"):
            return self.integer(value, name, 1, *at, step=sid)
        if name == "allow_failures":
            ok = (type(value) is int and value >= 0) or (type(value) is float and 0 <= value <= 1)
            expected = "a number of instances (0, 1, ...) or a fraction of them (0.0 to 1.0)"
            return value if self.expect(ok, value, name, expected, *at, step=sid) else MISSING
        if name == "executor":
            return self.choice(value, name, STEP_EXECUTORS, *at, step=sid)
        if name == "isolation":
            return self.choice(value, name, ISOLATIONS, *at, step=sid)
        if name == "trigger":
            found = self.choice(value, name, [t.value for t in Trigger], *at, step=sid)
            return MISSING if found is MISSING else Trigger(found)
        if name == "cache":
            return value
        readers: dict[str, Callable[[Any, str], Any]] = {
            "depends_on": self._depends_on,
            "retry": self._retry,
            "resources": self._resources,
            "branch": self._branch,
            "for_each": self._for_each,
        }
        return readers[name](value, sid)

    def _for_each(self, value: Any, sid: str) -> Any:
        """The step whose output list this step maps over: its id, or a lone
        ``{{ steps.ID.output }}``; anything else would read as a template it is not. A list
        of those zips their lists."""
        if isinstance(value, list) and value:
            found = [_FOR_EACH.fullmatch(v) if isinstance(v, str) else None for v in value]
            if all(found):
                return tuple(f.group("id") or f.group("ref") for f in found if f)
        found_one = _FOR_EACH.fullmatch(value) if isinstance(value, str) else None
        if found_one is None:
            expected = (
                'a step id or "{{ steps.ID.output }}" (the step whose output is the list), '
                "or a list of those to zip"
            )
            at = ("steps", sid, "for_each")
            return self.bad(f"'for_each' must be {expected}, got {show(value)}", *at, step=sid)
        return found_one.group("id") or found_one.group("ref")

    def _text(self, value: Any, what: str, at: tuple[str, ...], sid: str | None) -> Any:
        ok = isinstance(value, str) and bool(value.strip())
        return (
            value
            if self.expect(ok, value, what, "a non-empty string", *at, step=sid)
            else (MISSING)
        )

    def _depends_on(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "depends_on")
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            expected = "a step id or a list of step ids"
            return self.bad(f"'depends_on' must be {expected}, got {show(value)}", *at, step=sid)
        good = True
        for n, item in enumerate(items):
            if not isinstance(item, str):
                good = False
                self.bad(f"'depends_on' items must be step ids, got {show(item)}", *at, n, step=sid)
        return tuple(items) if good else MISSING

    def _retry(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "retry")
        if not isinstance(value, dict):
            if type(value) is int and value >= 0:
                return RetryPolicy(retries=value)
            expected = "a number of retries or a mapping {retries, delay, ...}"
            return self.bad(f"'retry' must be {expected}, got {show(value)}", *at, step=sid)
        policy, problems = retry_policy(value)
        for key, message in problems:
            self.bad(message, *at, key, step=sid)
        return MISSING if policy is None else policy

    def _resources(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "resources")
        if not self.mapping(value, "resources", *at, step=sid):
            return MISSING
        out = {}
        for pool, amount in value.items():
            got = self.integer(amount, f"resources.{pool}", 1, *at, pool, step=sid)
            if got is not MISSING:
                out[pool] = got
        return out

    def _branch(self, value: Any, sid: str) -> Any:
        at = ("steps", sid, "branch")
        if not self.mapping(value, "branch", *at, step=sid):
            return MISSING
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
            if step is not None and step.map_over is not None and _MAPPED.match(p.message):
                p = Problem(p.step, p.message, self.doc.where("steps", step.id, "for_each"))
            if found and step is not None and found.group(1) in step.depends_on:
                n = step.depends_on.index(found.group(1))
                p = Problem(p.step, p.message, self.doc.where("steps", step.id, "depends_on", n))
            out.append(p)
        return out


_UNKNOWN_DEP = re.compile(r"depends on unknown step '([^']*)'")
_MAPPED = re.compile(
    r"maps over unknown step|\S+ must be a positive int|a \S+ step cannot be mapped"
    r"|cache= is not supported on a mapped step|must name one step, or several"
)
"""The model's problems with a mapped step that belong at its ``for_each:`` line."""
_FOR_EACH = re.compile(
    r"\s*(?:(?P<id>[A-Za-z0-9_.-]+)|\{\{\s*steps\.(?P<ref>[A-Za-z0-9_.-]+?)\.output\s*\}\})\s*"
)
"""A ``for_each:`` value: a step id, or a lone reference to one step's output."""
_MAP_OPTIONS = {"for_each": "map_over", "max_concurrency": "map_concurrency"}
"""The file's names of a mapped step's fields that the model names otherwise."""
