"""Shell-orchestrator YAML: a ``steps:`` list of shell commands, as other engines write it.

::

    name: build
    params: "v1.2 prod"                 # $1, $2 ...
    env: {BRANCH: main}                 # or a list: ["BRANCH=main"] or [{BRANCH: main}]
    steps:
      - name: version
        command: git describe --tags
        output: {stdout: VERSION}       # steps that descend from this one read $VERSION
      - name: test
        command: make test
        depends: version                # a name or a list of names
        retry_policy: {limit: 2, interval_sec: 1}
      - name: package
        script: |
          tar czf "app-$VERSION.tgz" dist
        after: [version]                # after version and everything that depends on it
        when: {predicate: "$BRANCH", expected: main}
        preconditions: [{predicate: "`uname`", expected: "re:Linux|Darwin"}]
        continue_on_error: true

Each step becomes a step of kind ``shellflow`` (``pardag.kinds.shellflow`` documents how
commands, variables and predicates behave) whose id is the step's ``name``. The file's
``params`` and ``env`` become the workflow's default run params, so a run overrides them:
``wf.run(params={"params": "v1.3 staging", "BRANCH": "dev"})``. ``$VAR`` and ``${VAR}`` in
``env`` values are expanded when the file is read, from the entries above and the process's
environment (unknown names are left as written).

``depends`` and ``after`` give ``depends_on``. ``after: [X]`` means X and every step that
depends on X through ``depends``, directly or not (leaving out the step itself and the steps
that depend on it). Dependencies are ordered as the steps run (a topological order), so where
two of them pass on the same output variable, the later one's value wins. ``when`` skips the
step (reason "condition false") and so its descendants. ``retry_policy.limit`` is the number
of retries after the first attempt, ``interval_sec`` apart (default 0), for failed commands
only: a precondition that does not hold fails the step once. ``continue_on_error: true`` is
``critical=False``: the step's failure does not fail the run, and its descendants are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pardag.formats.document import Document
from pardag.formats.reading import KeyPath, Reader, hint, topological_order
from pardag.kinds.shell import CommandFailed
from pardag.kinds.shellflow import (
    VARIABLE,
    Predicate,
    expected_problems,
    expected_text,
    output_problems,
    refused_param,
)
from pardag.model import RetryPolicy, Workflow
from pardag.secrets import declared
from pardag.units import parse_duration

__all__ = ["FIELDS", "STEP_FIELDS", "detect", "read"]

FIELDS = ("name", "description", "params", "env", "secrets", "steps")
"""The fields of the file itself."""
STEP_FIELDS = (
    "name",
    "description",
    "command",
    "script",
    "args",
    "dir",
    "env",
    "depends",
    "after",
    "preconditions",
    "when",
    "retry_policy",
    "continue_on_error",
    "output",
)
"""The fields of a step."""
_RETRY_FIELDS = ("limit", "interval_sec")
_PREDICATE_FIELDS = ("predicate", "expected")
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def detect(doc: Document) -> bool:
    """A mapping whose ``steps`` is a list holding a step with ``name`` and a command or script."""
    data = doc.data
    if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
        return False
    return any(
        isinstance(s, Mapping) and "name" in s and ("command" in s or "script" in s)
        for s in data["steps"]
    )


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow in a shell-orchestrator file; raises every problem at once, with its line.

    ``defaults`` (settings from below the file) are not needed to validate: such a file
    declares no pools or run settings, and ``read_workflow`` applies them to the result.
    """
    return _Reader(doc).read()


@dataclass
class _Step:
    """One step as read, before its dependencies are resolved."""

    name: str
    index: int
    params: dict[str, Any]
    depends: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    retry: RetryPolicy | None = None
    critical: bool = True


class _Reader(Reader):
    """Reads a shell-orchestrator file; ``file_env`` is its ``env``, which steps' ``env`` extend."""

    def __init__(self, doc: Document) -> None:
        super().__init__(doc)
        self.file_env: dict[str, str] = {}

    def read(self) -> Workflow:
        data = self.top("steps", "a shell-orchestrator file is a mapping with a 'steps:' list")
        self.unknown(data, FIELDS, ())
        wf = Workflow(self.name(data))
        wf.source = self.doc.path
        wf.params = self.run_defaults(data)
        wf.refuse_param = refused_param
        wf.secrets, problems = declared(data.get("secrets", []))
        for index, message in problems:
            self.problem(message, *(("secrets",) if index is None else ("secrets", index)))
        steps = [s for i, raw in enumerate(data["steps"]) if (s := self.step(raw, i)) is not None]
        _Graph(self, steps).build(wf)
        return self.checked(wf)

    def name(self, data: Mapping[str, Any]) -> str:
        name = data.get("name", Path(self.doc.path).stem)
        if isinstance(name, str) and name:
            return name
        self.problem("name must be a non-empty string", "name")
        return Path(self.doc.path).stem

    # -- the file's own fields ------------------------------------------------------------

    def run_defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The file's ``params`` and ``env``, as the workflow's default run params."""
        out: dict[str, Any] = {}
        if "params" in data and self.positional_ok(data["params"]):
            out["params"] = data["params"]
        self.file_env = self.env(data.get("env"), ("env",), {})
        if self.file_env.pop("params", None) is not None:
            self.problem("env may not set 'params': it holds the positional parameters", "env")
        out.update({k: v for k, v in self.file_env.items() if refused_param(k) is None})
        return out

    def positional_ok(self, params: Any) -> bool:
        if isinstance(params, list) and all(isinstance(p, str | int | float) for p in params):
            return True
        if not isinstance(params, str):
            self.problem(
                'params must be a string of space-separated values ("v1.2 prod") or a list',
                "params",
            )
            return False
        try:
            shlex.split(params)
        except ValueError as exc:
            self.problem(f"params {params!r} cannot be split into words ({exc})", "params")
            return False
        return True

    def env(
        self, value: Any, key: KeyPath, known: Mapping[str, str], step: str | None = None
    ) -> dict[str, str]:
        """An ``env`` mapping or list of ``KEY=value``, with ``$VAR`` in values expanded."""
        if value is None:
            return {}
        out: dict[str, str] = {}
        for name, text, where in self.env_pairs(value, key, step):
            if not isinstance(name, str) or not VARIABLE.fullmatch(name):
                self.problem(
                    f"env name {name!r} is not a variable name (letters, digits and _)",
                    *where,
                    step=step,
                )
            elif isinstance(text, Mapping | list):
                self.problem(f"env {name!r} must be a string, number or bool", *where, step=step)
            else:
                out[name] = _expand(expected_text(text), {**known, **out})
        return out

    def env_pairs(
        self, value: Any, key: KeyPath, step: str | None
    ) -> Iterator[tuple[Any, Any, KeyPath]]:
        if isinstance(value, Mapping):
            for name, text in value.items():
                yield name, text, (*key, name)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str) and "=" in item:
                    name, _, text = item.partition("=")
                    yield name.strip(), text, (*key, i)
                elif isinstance(item, Mapping) and len(item) == 1:
                    ((name, text),) = item.items()
                    yield name, text, (*key, i)
                else:
                    self.problem(
                        f"env item {item!r} must be 'KEY=value' or {{KEY: value}}",
                        *key,
                        i,
                        step=step,
                    )
        else:
            self.problem("env must be a mapping or a list of 'KEY=value'", *key, step=step)

    # -- steps ------------------------------------------------------------------------------

    def step(self, raw: Any, i: int) -> _Step | None:
        """One step, or None when it has no usable name."""
        if not isinstance(raw, Mapping):
            self.problem("each step must be a mapping with a name and a command", "steps", i)
            return None
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            self.problem("each step needs a name (a non-empty string)", "steps", i)
            return None
        self.unknown(raw, STEP_FIELDS, ("steps", i), step=name)
        at = ("steps", i)
        params = self.command(raw, at, name)
        env = self.env(raw.get("env"), (*at, "env"), self.file_env, name)
        unsafe = {k: v for k, v in self.file_env.items() if refused_param(k) is not None}
        env = {**unsafe, **env}  # the file's own: not run params, which may not set these
        if env:
            params["env"] = env
        cwd = raw.get("dir")
        if cwd is not None:
            if isinstance(cwd, str) and cwd:
                params["dir"] = cwd
            else:
                self.problem("dir must be a directory path", *at, "dir", step=name)
        when = raw.get("when")
        if when is not None:
            predicate = self.predicate(when, (*at, "when"), name)
            if predicate is not None:
                params["when"] = {"predicate": predicate.text, "expected": predicate.expected}
        preconditions = self.preconditions(raw.get("preconditions"), at, name)
        if preconditions:
            params["preconditions"] = preconditions
        self.output(raw, params, at, name)
        return _Step(
            name,
            i,
            params,
            depends=self.names(raw.get("depends"), (*at, "depends"), name),
            after=self.names(raw.get("after"), (*at, "after"), name),
            retry=self.retry(raw.get("retry_policy"), at, name),
            critical=not self.flag(raw.get("continue_on_error"), (*at, "continue_on_error"), name),
        )

    def command(self, raw: Mapping[str, Any], at: KeyPath, name: str) -> dict[str, Any]:
        """The ``command``, ``script`` and ``args`` of a step, as kind params."""
        params: dict[str, Any] = {}
        for field_name in ("command", "script"):
            value = raw.get(field_name)
            if value is None:
                continue
            if isinstance(value, str) and value.strip():
                params[field_name] = value
            else:
                self.problem(
                    f"{field_name} must be non-empty shell text", *at, field_name, step=name
                )
        if "command" not in raw and "script" not in raw:
            self.problem("the step needs a command (shell text) or a script", *at, step=name)
        args = raw.get("args")
        if args is None:
            return params
        if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
            self.problem("args must be a list of strings", *at, "args", step=name)
        elif "command" not in raw:
            self.problem("args go with command; write them into the script", *at, "args", step=name)
        else:
            params["args"] = [expected_text(a) for a in args]
        return params

    def preconditions(self, value: Any, at: KeyPath, name: str) -> list[dict[str, str]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(
                "preconditions must be a list of {predicate, expected}",
                *at,
                "preconditions",
                step=name,
            )
            return []
        found = [self.predicate(p, (*at, "preconditions", j), name) for j, p in enumerate(value)]
        return [{"predicate": p.text, "expected": p.expected} for p in found if p is not None]

    def predicate(self, value: Any, key: KeyPath, name: str) -> Predicate | None:
        """A ``{predicate, expected}`` mapping, checked."""
        if not isinstance(value, Mapping):
            self.problem("must be a mapping {predicate: text, expected: value}", *key, step=name)
            return None
        self.unknown(value, _PREDICATE_FIELDS, key, step=name)
        text = value.get("predicate")
        expected = value.get("expected")
        ok = True
        if not isinstance(text, str) or not text:
            self.problem('predicate must be shell text, e.g. "$BRANCH"', *key, step=name)
            ok = False
        if "expected" not in value:
            self.problem(
                "add expected: the text the predicate must expand to (or re:PATTERN)",
                *key,
                step=name,
            )
            ok = False
        elif isinstance(expected, Mapping | list):
            self.problem("expected must be a string (or re:PATTERN)", *key, "expected", step=name)
            ok = False
        for message in expected_problems(expected) if ok else []:
            self.problem(message, *key, "expected", step=name)
            ok = False
        return Predicate(str(text), expected_text(expected)) if ok else None

    def output(
        self, raw: Mapping[str, Any], params: dict[str, Any], at: KeyPath, name: str
    ) -> None:
        value = raw.get("output")
        if value is None:
            return
        messages = output_problems(value)
        for message in messages:
            self.problem(message, *at, "output", step=name)
        if not messages:
            params["output"] = {"stdout": value} if isinstance(value, str) else dict(value)

    def names(self, value: Any, key: KeyPath, name: str) -> list[str]:
        """``depends``/``after``: a step name or a list of them."""
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self.problem(f"{key[-1]} must be a step name or a list of names", *key, step=name)
        return []

    def retry(self, value: Any, at: KeyPath, name: str) -> RetryPolicy | None:
        """``retry_policy: {limit, interval_sec}``: retries of a failed command."""
        if value is None:
            return None
        key = (*at, "retry_policy")
        if not isinstance(value, Mapping):
            self.problem(
                "retry_policy must be a mapping {limit: N, interval_sec: S}", *key, step=name
            )
            return None
        self.unknown(value, _RETRY_FIELDS, key, step=name)
        limit = value.get("limit", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            self.problem(
                f"limit must be a whole number >= 0, got {limit!r}", *key, "limit", step=name
            )
            return None
        try:
            interval = parse_duration(value.get("interval_sec", 0), "interval_sec")
        except ValueError as exc:
            self.problem(str(exc), *key, "interval_sec", step=name)
            return None
        return RetryPolicy(
            retries=limit,
            delay=interval,
            factor=1.0,
            max_delay=max(60.0, interval),
            jitter=0.0,
            retry_on=(CommandFailed,),
        )

    def flag(self, value: Any, key: KeyPath, name: str) -> bool:
        if value is None or isinstance(value, bool):
            return bool(value)
        self.problem(f"{key[-1]} must be true or false, got {value!r}", *key, step=name)
        return False


class _Graph:
    """Resolves step names in ``depends`` and ``after`` and adds the steps to a workflow."""

    def __init__(self, reader: _Reader, steps: list[_Step]) -> None:
        self.reader = reader
        self.steps: dict[str, _Step] = {}
        for s in steps:
            first = self.steps.setdefault(s.name, s)
            if first is not s:
                reader.problem(
                    f"the name {s.name!r} is already used by step {first.index + 1} "
                    f"({reader.doc.where('steps', first.index)}); give each step a unique name",
                    "steps",
                    s.index,
                    "name",
                    step=s.name,
                )

    def build(self, wf: Workflow) -> None:
        depends = {s.name: self.known(s, "depends") for s in self.steps.values()}
        children: dict[str, list[str]] = {name: [] for name in self.steps}
        for name, deps in depends.items():
            for dep in deps:
                children[dep].append(name)
        final = {s.name: self.with_after(s, depends[s.name], children) for s in self.steps.values()}
        rank = {name: i for i, name in enumerate(topological_order(final))}
        for s in self.steps.values():
            deps = sorted(final[s.name], key=lambda d: rank.get(d, self.steps[d].index))
            wf.add(
                s.name,
                kind="shellflow",
                depends_on=deps,
                params=s.params,
                retry=s.retry,
                critical=s.critical,
            )
            wf.locations[s.name] = self.reader.doc.where("steps", s.index)

    def known(self, s: _Step, field_name: str) -> list[str]:
        """The names in ``s``'s ``depends`` or ``after`` that exist; a problem for each other."""
        out = []
        for dep in getattr(s, field_name):
            if dep in self.steps:
                out.append(dep)
                continue
            fix = hint(dep, self.steps, "declare it or fix the name")
            self.reader.problem(
                f"{field_name} names unknown step {dep!r}; {fix}",
                "steps",
                s.index,
                field_name,
                step=s.name,
            )
        return out

    def with_after(
        self, s: _Step, depends: list[str], children: Mapping[str, list[str]]
    ) -> list[str]:
        """``depends`` plus, for each ``after: X``, X and its descendants through ``depends``."""
        if not s.after:
            return depends
        mine = _descendants([s.name], children)
        out = dict.fromkeys(depends)
        for target in self.known(s, "after"):
            for name in [target, *_descendants([target], children)]:
                if name != s.name and name not in mine:
                    out[name] = None
        return list(out)


def _descendants(roots: list[str], children: Mapping[str, list[str]]) -> list[str]:
    """Every step below ``roots`` through ``children``, each once, roots left out."""
    seen: dict[str, None] = {}
    stack = list(roots)
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen[child] = None
                stack.append(child)
    return [name for name in seen if name not in roots]


def _expand(text: str, known: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced from ``known`` or the environment; unknown ones kept."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = known.get(name, os.environ.get(name))
        return match.group(0) if found is None else found

    return _REFERENCE.sub(value, text)
