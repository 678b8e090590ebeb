"""Where pardag lets Python find a workflow's own modules: after the installed packages.

A step ``function: "etl_steps:clean"`` imports a module that lives beside the workflow file
(or in the current directory, for ``pardag``). Putting that folder at the front of
``sys.path``, as ``python script.py`` does, let any file there shadow an installed package:
a ``quickjs.py`` beside a flow ran during ``pardag validate``, when the validation imported
the JavaScript runtime. So the folder goes at the end: the project's own modules are found,
and an installed package always wins over a file of the same name.
"""

from __future__ import annotations

import os
import sys

__all__ = ["add_folder", "from_project_folder"]

_FOLDERS: set[str] = set()
"""The folders ``add_folder`` put on ``sys.path``, absolute."""


def add_folder(directory: str) -> None:
    """Let modules in ``directory`` be imported, after everything already on ``sys.path``."""
    _FOLDERS.add(os.path.abspath(directory))
    if directory not in sys.path:
        sys.path.append(directory)


def from_project_folder(origin: str) -> bool:
    """Whether a module file (``x.py`` or ``x/__init__.py``) lies directly in a folder that
    ``add_folder`` added: a project's file, never one of pardag's own dependencies (when the
    dependency is not installed, a ``quickjs.py`` there would be found last, and run)."""
    folder = os.path.dirname(os.path.abspath(origin))
    if os.path.basename(origin).startswith("__init__."):
        folder = os.path.dirname(folder)
    return folder in _FOLDERS
