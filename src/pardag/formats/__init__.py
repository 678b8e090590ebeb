"""Readers for workflow files; each maps its format to the one model (``Workflow``).

``load(path)`` reads the file (``document``), picks the format from the extension and the
content, and hands the parsed document to that format's reader. Every reader is a module here
with ``detect(doc) -> bool`` and ``read(doc, defaults) -> Workflow``. ``defaults`` are the
settings from the layers below the file (a config file's pools, say): a reader whose files
declare settings applies them (``apply_defaults``) before it validates, so that a step may use
a pool the config file declares. Readers report problems with the file and line
(``Document.where``) and record each step's place in ``Workflow.locations``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from pardag.errors import Problem, ValidationError
from pardag.formats.document import Document, read_document
from pardag.formats.python_file import is_python_target, load_python
from pardag.model import Workflow
from pardag.searchpath import add_folder

__all__ = ["FORMATS", "apply_defaults", "detect_format", "load", "read_workflow"]

FORMATS = ("nodegraph", "tasktree", "shellflow", "native")
"""Format names, in the order detection tries them (the native format last: it is the
most permissive)."""
SCRIPT_FORMATS = ("lua",)
"""Formats whose files are programs, not data: chosen by the file's extension alone."""


def load(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Workflow:
    """Read the workflow in ``path``; ``format`` forces one of ``FORMATS``.

    ``defaults`` are settings from the layers below the file (a config file): they count for
    what the file does not declare, pools merged by name, when the workflow is validated.

    The file's directory goes to the front of ``sys.path`` first (as ``python script.py``
    does for a script), so ``function: "steps:clean"`` finds a ``steps.py`` beside the file.
    ``flow.py`` or ``flow.py:name`` is a workflow defined in Python
    (``pardag.formats.python_file``): the file's only ``Workflow``, or the one named.

    Raises ``ValidationError`` naming the file and line for a file that cannot be read, is
    malformed, or describes an invalid workflow.
    """
    if is_python_target(os.fspath(path)):
        wf = load_python(os.fspath(path))
        apply_defaults(wf, MappingProxyType(dict(defaults or {})))
        wf.validate()
        return wf
    directory = str(Path(path).resolve().parent)
    add_folder(directory)
    return read_workflow(read_document(path), format, defaults)


def read_workflow(
    doc: Document, format: str | None = None, defaults: Mapping[str, Any] | None = None
) -> Workflow:
    """The workflow in an already parsed document."""
    name = format or detect_format(doc)
    below = MappingProxyType(dict(defaults or {}))
    wf: Workflow = _reader(name, doc).read(doc, below)
    apply_defaults(wf, below)
    wf.source = doc.path
    wf.definition = doc.text
    wf.definition_format = f"{name}:{doc.format}"
    return wf


def apply_defaults(wf: Workflow, defaults: Mapping[str, Any]) -> None:
    """Give ``wf`` the settings from below its file that the file does not declare.

    A reader calls it with the ``defaults`` it was given before it validates, so that a pool
    declared in a config file counts; ``read_workflow`` calls it on what every reader returns
    (applying them twice changes nothing).
    """
    for name, value in defaults.items():
        if name == "pools":
            wf.settings.pools = {**value, **wf.settings.pools}
        elif name not in wf.file_settings:
            setattr(wf.settings, name, value)


def detect_format(doc: Document) -> str:
    """The name of the format ``doc`` is written in, judged from its content."""
    if doc.format in SCRIPT_FORMATS:
        return doc.format
    for name in FORMATS:
        if _reader(name, doc).detect(doc):
            return name
    raise ValidationError(
        doc.path,
        [
            Problem(
                None,
                "is not a workflow pardag can read: expected a steps file (a 'steps:' "
                "mapping), node-graph JSON ('nodes' and 'edges'), a shell-orchestrator "
                "YAML ('steps:' list) or a task tree ('tasks' list)",
                doc.path,
            )
        ],
    )


def _reader(name: str, doc: Document) -> ModuleType:
    if name not in (*FORMATS, *SCRIPT_FORMATS):
        raise ValidationError(
            doc.path,
            [Problem(None, f"format {name!r} is unknown; use one of {', '.join(FORMATS)}")],
        )
    return importlib.import_module(f"pardag.formats.{name}")
