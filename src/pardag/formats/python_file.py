"""A workflow defined in a Python file: ``pardag run flow.py`` or ``flow.py:name``.

The file is imported as a module (under a name of its own, never ``__main__``, so that its
``if __name__ == "__main__":`` part does not run; its folder first on ``sys.path``, as for
``python flow.py``), and the workflow is its only ``Workflow`` object, or the one named after
the colon. The workflow records its import path (``/abs/flow.py:name``) so that ``pardag
resume`` can import it again.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from pardag.errors import Problem, ValidationError
from pardag.executors.payload import FLOW_MODULE_PREFIX
from pardag.model import Settings, Workflow
from pardag.searchpath import add_folder

__all__ = ["is_python_target", "load_python"]


def is_python_target(target: str) -> bool:
    """Whether ``target`` names a Python file, with or without ``:name``."""
    return _split(target)[0].endswith(".py")


def load_python(target: str) -> Workflow:
    """The workflow ``target`` (``flow.py`` or ``flow.py:name``) names; ``ValidationError``
    naming the file when it cannot be imported or does not hold exactly that workflow."""
    file, name = _split(target)
    path = str(Path(file).resolve())
    module = _import(path, file)
    found: dict[str, Workflow] = {}
    for attr, value in vars(module).items():
        if isinstance(value, Workflow) and all(value is not w for w in found.values()):
            found[attr] = value  # one workflow under two names counts once
    attr = _choose(file, found, name, module)
    wf = found[attr]
    wf.import_path = f"{path}:{attr}"
    wf.source = wf.source or file
    if not wf.file_settings:  # its own settings, a layer like a file's execution: section
        default = Settings()
        wf.file_settings = {
            f: getattr(wf.settings, f)
            for f in Settings.__dataclass_fields__
            if getattr(wf.settings, f) != getattr(default, f)
        }
    return wf


def _split(target: str) -> tuple[str, str | None]:
    file, sep, name = target.rpartition(":")
    if sep and file.endswith(".py") and name.isidentifier():
        return file, name
    return target, None


def _import(path: str, file: str) -> ModuleType:
    """Run the file as a fresh module named after its path (two files never share one)."""
    if not Path(path).is_file():
        raise _error(file, "no such file; give the path of a Python file defining a Workflow")
    directory = str(Path(path).parent)
    add_folder(directory)
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"{FLOW_MODULE_PREFIX}{digest}", path)
    if spec is None or spec.loader is None:
        raise _error(file, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[spec.name]
        raise _error(file, _import_failure(exc, path)) from exc
    return module


def _import_failure(exc: Exception, path: str) -> str:
    """``importing it failed at line 12: NameError: ...``, the line in the file itself."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    if isinstance(exc, SyntaxError) and exc.filename == path:
        return f"Python syntax error at line {exc.lineno}: {exc.msg}"
    at = f" at line {frames[-1].lineno}" if frames else ""
    return f"importing it failed{at}: {type(exc).__name__}: {exc}"


def _choose(file: str, found: dict[str, Workflow], name: str | None, module: ModuleType) -> str:
    if name is not None:
        if name in found:
            return name
        close = difflib.get_close_matches(name, list(found), n=1)
        hint = f"did you mean {file}:{close[0]}?" if close else _listing(found)
        raise _error(file, f"has no Workflow named {name!r}; {hint}")
    if len(found) == 1:
        return next(iter(found))
    if not found:
        raise _error(
            file,
            f"defines no Workflow at module level ({_found(module)}); define one there "
            "(wf = pardag.Workflow('name')) or give a workflow file",
        )
    first = next(iter(found))
    raise _error(
        file,
        f"defines {len(found)} Workflows ({', '.join(found)}); name the one to use: {file}:{first}",
    )


def _found(module: ModuleType) -> str:
    """What a module defines instead: ``it defines: main (function), x (int)``."""
    names = [n for n in vars(module) if not n.startswith("_") and n != "pardag"]
    shown = [f"{n} ({type(vars(module)[n]).__name__})" for n in names[:8]]
    return f"it defines: {', '.join(shown)}" if shown else "it defines nothing"


def _listing(found: dict[str, Workflow]) -> str:
    return f"its Workflows: {', '.join(found)}" if found else "it defines no Workflow"


def _error(file: str, message: str) -> ValidationError:
    return ValidationError(file, [Problem(None, message, file)])
