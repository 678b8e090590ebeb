"""Checking ``function: "package.module:callable"`` without importing the module.

Importing runs the module's top-level code, and ``pardag validate`` and ``pardag graph`` run
no step code: a module planted beside a workflow would otherwise run when someone only
checks the file. So validation finds the module's file the way ``import`` would (the finders
on ``sys.meta_path``, parent packages' ``__path__``, no package ``__init__`` executed), reads
its source and parses it: a missing module, a syntax error, a missing top-level name and a
plain ``def`` whose parameters cannot bind are problems; anything only running code can tell
(a name made at import time, an extension module, a decorated function) is checked when the
step runs, as the import then happens. A module already imported is used as it is.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, SourceFileLoader

from pardag.regularfile import read_regular

__all__ = ["MAX_SOURCE_BYTES", "Found", "find_source", "top_level_names"]

MAX_SOURCE_BYTES = 10 * 1024 * 1024
"""Largest module source parsed at validation."""


@dataclass(frozen=True, slots=True)
class Found:
    """What validation knows of a module: its parsed source, or None (not Python source:
    checked at run); ``problem`` when it cannot be found or parsed."""

    tree: ast.Module | None = None
    problem: str | None = None


def find_source(module_name: str, spec_text: str) -> Found:
    """Locate and parse ``module_name`` without running any of it."""
    try:
        spec = _find_spec(module_name)
    except (ImportError, ValueError) as exc:  # ".x", a finder's own refusal
        return Found(problem=f"function {spec_text!r}: cannot find {module_name!r}: {exc}")
    if isinstance(spec, str):
        return Found(problem=spec_problem(spec_text, spec))
    if not isinstance(spec.loader, SourceFileLoader) or spec.origin is None:
        return Found()  # an extension, a namespace package, a zip: the run imports it
    try:
        source = read_regular(spec.origin, MAX_SOURCE_BYTES)
        if len(source) > MAX_SOURCE_BYTES:
            return Found()
        return Found(ast.parse(source, spec.origin))
    except SyntaxError as exc:
        return Found(
            problem=f"function {spec_text!r}: importing {module_name!r} failed: SyntaxError: "
            f"{exc.msg} ({exc.filename}, line {exc.lineno})"
        )
    except (OSError, ValueError) as exc:
        return Found(problem=f"function {spec_text!r}: cannot read {spec.origin}: {exc}")


def spec_problem(spec_text: str, missing: str) -> str:
    """The words for a module that is not found."""
    return (
        f"function {spec_text!r}: no module named {missing!r}; check the spelling, install "
        "it, or run from the directory that holds it (modules are found on sys.path)"
    )


def _find_spec(name: str) -> ModuleSpec | str:
    """The spec ``import name`` would use, or the first missing part's dotted name; no
    package's ``__init__`` runs (``importlib.util.find_spec`` would import the parents)."""
    parts = name.split(".")
    path: list[str] | None = None
    spec: ModuleSpec | None = None
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        module = sys.modules.get(full)
        if module is not None:
            spec, path = module.__spec__, getattr(module, "__path__", None)
            if spec is None:
                return full
            continue
        spec = importlib.util.find_spec(full) if i == 0 else _search(full, path)
        if spec is None:
            return full
        path = spec.submodule_search_locations
        if i < len(parts) - 1 and path is None:
            return ".".join(parts[: i + 2])  # a module, not a package: no submodules
    assert spec is not None
    return spec


def _search(full: str, path: list[str] | None) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None:
            spec = find(full, path, None)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
    return None


def top_level_names(tree: ast.Module) -> dict[str, ast.stmt] | None:
    """The names a module binds at its top level (in ``if``/``try`` blocks too), each with the
    statement that binds it; None when it may bind names no parse can list (``import *``,
    a module ``__getattr__``, ``globals()``)."""
    names: dict[str, ast.stmt] = {}
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names[alias.asname or alias.name.split(".")[0]] = node
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for block in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, block, []))
        elif isinstance(node, ast.ExceptHandler):
            statements.extend(node.body)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.setdefault(sub.id, node)
    if "__getattr__" in names or "globals" in _called(tree):
        return None
    return names


def _called(tree: ast.Module) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def missing_name(spec_text: str, module_name: str, name: str, names: Mapping[str, object]) -> str:
    """The words for a top-level name the module does not define."""
    public = [n for n in names if not n.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"function {spec_text!r}: {module_name!r} has no attribute {name!r}{hint}"
