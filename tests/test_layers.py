"""The package's shape: layers that point one way, and modules a reader can hold in mind.

docs/architecture.md draws the layers. These tests keep the drawing true: no import cycle
among pardag's modules (imports inside functions count; only the documented facades
``Workflow.compile`` and ``Workflow.run`` reach up), ``import pardag.model`` loads no step
kind, executor or template engine, and no module or class grows past what one reading holds.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pardag

ROOT = Path(pardag.__file__).parent
FACADES = {("pardag.model", "pardag.validate"), ("pardag.model", "pardag.runner")}
"""Imports that point up on purpose: ``Workflow.compile`` and ``Workflow.run``, inside them."""
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 450


def module_names() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def _resolve(name: str) -> str | None:
    """The module an import of ``name`` loads (a name inside a module: that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:``: imports for the type checker, never run."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for sub in node.body for n in ast.walk(sub))
    return skip


def imports_of(module: str) -> set[str]:
    """The pardag modules ``module`` imports, at the top or inside functions."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip, found = _type_checking_only(tree), set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found |= {_resolve(f"{base}.{a.name}") for a in node.names}
    return {m for m in found if m and m != module}


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t in imports_of(m) if (m, t) not in FACADES} for m in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first module repeated at the end), or None."""
    colour: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in colour:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        colour[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in colour:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_no_import_cycle_among_the_modules() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_the_cycle_finder_finds_one() -> None:
    """The check above can fail: a cycle through three modules is found and shown."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_facades_are_the_only_upward_imports_of_the_model() -> None:
    assert {("pardag.model", t) for t in imports_of("pardag.model")} & FACADES == FACADES
    below = {
        "pardag.errors",
        "pardag.states",
        "pardag.units",
        "pardag.options",
        "pardag.settings_rules",
        "pardag.retrying",
    }
    assert {t for t in imports_of("pardag.model") if ("pardag.model", t) not in FACADES} <= below


def test_the_model_loads_no_kind_executor_or_template_engine() -> None:
    code = "import sys, pardag.model; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        m
        for m in loaded
        if m.startswith(("pardag.kinds", "pardag.executors", "pardag.runner", "jinja2"))
        or m in ("pardag.validate", "pardag.caching", "pardag.templates", "asyncio", "httpx")
    ]
    assert heavy == []
    assert "pardag.model" in loaded


def test_pardag_loads_no_dask_until_a_step_runs_on_it() -> None:
    """Dask is an extra (``pardag[dask]``): importing pardag and running on threads never
    imports it, so pardag works without it and does not pay its import time."""
    code = (
        "import sys, pardag\n"
        "wf = pardag.Workflow('w'); wf.add('a', lambda: 1); wf.run()\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pardag.runner" in loaded
    assert [m for m in loaded if m.partition(".")[0] in ("dask", "distributed")] == []


def _classes(tree: ast.Module) -> Iterator[ast.ClassDef]:
    return (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_classes_stay_readable(module: str) -> None:
    text = MODULES[module].read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module} has over {MAX_MODULE_LINES} lines"
    for cls in _classes(ast.parse(text)):
        size = (cls.end_lineno or cls.lineno) - cls.lineno + 1
        assert size <= MAX_CLASS_LINES, f"{module}.{cls.name} is {size} lines"


def test_the_architecture_page_names_every_module_of_the_runner() -> None:
    """docs/architecture.md's table of the runner package lists exactly its modules."""
    page = (ROOT.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page.partition("## The runner package")[2].partition("## A step's path")[0]
    named = {
        name.strip().strip("`")
        for row in table.splitlines()
        if row.startswith("| `")
        for name in row.split("|")[1].split(",")
    }
    modules = {m.rpartition(".")[2] for m in MODULES if m.startswith("pardag.runner.")}
    assert named == modules
