"""Where pardag lets Python find a workflow's own modules: after the installed packages.

A step ``function: "etl_steps:clean"`` imports a module that lives beside the workflow file
(or in the current directory, for ``pardag``). Putting that folder at the front of
``sys.path``, as ``python script.py`` does, let any file there shadow an installed package:
a ``quickjs.py`` beside a flow ran during ``pardag validate``, when the validation imported
the JavaScript runtime. So the folder goes at the end: the project's own modules are found,
and an installed package always wins over a file of the same name.
"""

from __future__ import annotations

import sys

__all__ = ["add_folder"]


def add_folder(directory: str) -> None:
    """Let modules in ``directory`` be imported, after everything already on ``sys.path``."""
    if directory not in sys.path:
        sys.path.append(directory)
