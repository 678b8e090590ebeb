"""Task-tree JSON: tasks nested under the tasks that must finish before them.

::

    {"id": "deploy", "name": "Deploy", "tasks": [
      {"id": "build", "name": "Build",
       "function": {"name": "cli_command", "input": {"command": "make", "args": ["dist"]}},
       "next_tasks": [
         {"id": "ask", "name": "Ask",
          "function": {"name": "user_input", "input": {"prompt": "Ship it?"}},
          "next_tasks": ["publish"]}]},
      {"id": "publish", "name": "Publish",
       "function": {"name": "cli_command",
                    "input": {"command": "echo", "args": ["{{ steps.ask.output }}"]}}}]}

Every task becomes a step whose id is the task's ``id`` (ids are unique in the whole file:
"Duplicate task ID: X" otherwise). A task in ``next_tasks`` runs after the task that holds it;
tasks side by side run in parallel. A string in ``next_tasks`` names a task defined elsewhere
in the file, which then also waits for this one: that is how two branches join. A task
depends on every task above it (its parents, theirs, and so on), so its templates can read
``steps.<id>.output`` of any of them.

Functions:

* ``cli_command``: ``{command, args}`` runs the program ``command`` with ``args`` as its
  argument list, with no shell in between: a value with spaces or ``;`` stays one argument.
  Templates in ``command`` and ``args`` (``{{ params.target }}``) are rendered when it starts.
  It is a ``shell`` step, with that kind's output.
* ``user_input``: ``{prompt, input_type, required, default}`` is an ``approval`` step asking
  ``prompt``; its output is the answer (see the ``approval`` kind for how it is given).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pardag.formats.document import Document
from pardag.formats.reading import KeyPath, Reader, hint, topological_order
from pardag.model import Workflow

__all__ = ["FIELDS", "FUNCTIONS", "TASK_FIELDS", "detect", "read"]

FIELDS = ("id", "name", "tasks")
"""The fields of the file itself."""
TASK_FIELDS = ("id", "name", "function", "next_tasks")
"""The fields of a task."""
FUNCTIONS = {
    "cli_command": ("command", "args"),
    "user_input": ("prompt", "input_type", "required", "default"),
}
"""The functions a task can call, with the fields of their ``input``."""
INPUT_TYPES = ("string", "number", "boolean")
"""What ``user_input.input_type`` may be."""


def detect(doc: Document) -> bool:
    """A mapping with a ``tasks`` list holding a task with ``function`` or ``next_tasks``."""
    data = doc.data
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), list):
        return False
    return any(
        isinstance(t, Mapping) and ("function" in t or "next_tasks" in t) for t in data["tasks"]
    )


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow in a task-tree file; raises every problem at once, with its line.

    ``defaults`` (settings from below the file) are not needed to validate: a task tree
    declares no pools or run settings, and ``read_workflow`` applies them to the result.
    """
    return _Reader(doc).read()


@dataclass
class _Task:
    """One task as read: where it is, its step, and the tasks right above it."""

    id: str
    key: KeyPath
    kind: str
    params: dict[str, Any]
    parents: list[str] = field(default_factory=list)


class _Reader(Reader):
    """Walks the tree once, collecting tasks and problems."""

    def __init__(self, doc: Document) -> None:
        super().__init__(doc)
        self.tasks: dict[str, _Task] = {}
        self.references: list[tuple[str, str, KeyPath]] = []  # (parent, target, where)

    def read(self) -> Workflow:
        data = self.top("tasks", "a task tree is a mapping with a 'tasks' list")
        self.unknown(data, FIELDS, ())
        for raw, key, parent in self.walk(data["tasks"]):
            self.task(raw, key, parent)
        self.resolve_references()
        wf = Workflow(self.name(data))
        wf.source = self.doc.path
        above = _ancestors(self.tasks)
        for task in self.tasks.values():
            wf.add(task.id, kind=task.kind, depends_on=above[task.id], params=task.params)
            wf.locations[task.id] = self.doc.where(*task.key)
        return self.checked(wf)

    def name(self, data: Mapping[str, Any]) -> str:
        for key in ("id", "name"):
            value = data.get(key)
            if value is not None and not (isinstance(value, str) and value):
                self.problem(f"{key} must be a non-empty string", key)
            elif value:
                return str(value)
        return Path(self.doc.path).stem

    def walk(self, tasks: list[Any]) -> Iterator[tuple[Any, KeyPath, str | None]]:
        """Every task object in the tree, depth first in file order, with its parent's id.

        A string in ``next_tasks`` is a reference, recorded for later; it is not walked.
        """
        stack: list[tuple[Any, KeyPath, str | None]] = [
            (raw, ("tasks", i), None) for i, raw in reversed(list(enumerate(tasks)))
        ]
        while stack:
            raw, key, parent = stack.pop()
            if isinstance(raw, str) and parent is not None:
                self.references.append((parent, raw, key))
                continue
            yield raw, key, parent
            below = raw.get("next_tasks") if isinstance(raw, Mapping) else None
            me = raw.get("id") if isinstance(raw, Mapping) else None
            if isinstance(below, list) and isinstance(me, str) and me:
                nested = (*key, "next_tasks")
                stack += [(t, (*nested, j), me) for j, t in reversed(list(enumerate(below)))]

    def task(self, raw: Any, key: KeyPath, parent: str | None) -> None:
        if not isinstance(raw, Mapping):
            self.problem("each task must be a mapping with an id and a function", *key)
            return
        tid = raw.get("id")
        if not isinstance(tid, str) or not tid:
            self.problem("each task needs an id (a non-empty string)", *key)
            return
        self.unknown(raw, TASK_FIELDS, key, step=tid)
        if tid in self.tasks:
            self.problem(f"Duplicate task ID: {tid}", *key, "id")
            return
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            self.problem("name must be a string", *key, "name", step=tid)
        below = raw.get("next_tasks")
        if below is not None and not isinstance(below, list):
            self.problem(
                "next_tasks must be a list of tasks (or of task ids)", *key, "next_tasks", step=tid
            )
        kind, params = self.function(raw.get("function"), key, tid)
        self.tasks[tid] = _Task(tid, key, kind, params, [parent] if parent else [])

    def function(self, value: Any, key: KeyPath, tid: str) -> tuple[str, dict[str, Any]]:
        """The step kind and params of a task's ``function``."""
        at = (*key, "function")
        if not isinstance(value, Mapping):
            self.problem("function must be a mapping {name, input}", *at, step=tid)
            return "shell", {"command": ["true"]}
        self.unknown(value, ("name", "input"), at, step=tid)
        name = value.get("name")
        inputs = value.get("input", {})
        if not isinstance(name, str) or name not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            close = difflib.get_close_matches(str(name), list(FUNCTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.problem(
                f"function {name!r} is unknown; use one of {known}{hint}", *at, "name", step=tid
            )
            return "shell", {"command": ["true"]}
        if not isinstance(inputs, Mapping):
            self.problem("input must be a mapping", *at, "input", step=tid)
            inputs = {}
        self.unknown(inputs, FUNCTIONS[name], (*at, "input"), step=tid)
        if name == "cli_command":
            return "shell", self.cli_command(inputs, (*at, "input"), tid)
        return "approval", self.user_input(inputs, (*at, "input"), tid)

    def cli_command(self, inputs: Mapping[str, Any], at: KeyPath, tid: str) -> dict[str, Any]:
        command = inputs.get("command")
        args = inputs.get("args", [])
        if not isinstance(command, str) or not command.strip():
            self.problem('command must be the program to run, e.g. "make"', *at, step=tid)
            command = "true"
        if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
            self.problem("args must be a list of strings", *at, "args", step=tid)
            args = []
        return {"command": [command], "args": [a if isinstance(a, str) else str(a) for a in args]}

    def user_input(self, inputs: Mapping[str, Any], at: KeyPath, tid: str) -> dict[str, Any]:
        prompt = inputs.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            self.problem('prompt must say what to ask, e.g. "Deploy now?"', *at, step=tid)
            prompt = tid
        params: dict[str, Any] = {"prompt": prompt}
        kind = inputs.get("input_type", "string")
        if kind not in INPUT_TYPES:
            self.problem(
                f"input_type {kind!r} is unknown; use one of {', '.join(INPUT_TYPES)}",
                *at,
                "input_type",
                step=tid,
            )
        elif kind == "boolean":
            params["choices"] = [True, False]
        if not isinstance(inputs.get("required", True), bool):
            self.problem("required must be true or false", *at, "required", step=tid)
        return params

    def resolve_references(self) -> None:
        """Strings in ``next_tasks``: the named task also waits for the one that names it."""
        for parent, target, key in self.references:
            if parent not in self.tasks:  # the task naming it had a problem of its own
                continue
            task = self.tasks.get(target)
            if task is None:
                fix = hint(target, self.tasks, "define a task with that id")
                self.problem(f"next_tasks names unknown task {target!r}; {fix}", *key, step=parent)
            elif parent not in task.parents:
                task.parents.append(parent)


def _ancestors(tasks: Mapping[str, _Task]) -> dict[str, list[str]]:
    """Every task above each task, in a topological order (file order breaks ties).

    With a cycle (through references), each task keeps its direct parents only, so that
    validation reports the cycle itself.
    """
    order = topological_order({tid: t.parents for tid, t in tasks.items()})
    if len(order) < len(tasks):
        return {tid: list(t.parents) for tid, t in tasks.items()}
    rank = {tid: i for i, tid in enumerate(order)}
    above: dict[str, set[str]] = {}
    for tid in order:
        found = set(tasks[tid].parents)
        for parent in tasks[tid].parents:
            found |= above[parent]
        above[tid] = found
    return {tid: sorted(above[tid], key=rank.__getitem__) for tid in order}
