"""Readers for workflow files; each maps its format to the one model (``Workflow``).

``load(path)`` reads the file (``document``), picks the format from the extension and the
content, and hands the parsed document to that format's reader. Every reader is a module here
with ``detect(doc) -> bool`` and ``read(doc) -> Workflow``; readers report problems with the
file and line (``Document.where``) and record each step's place in ``Workflow.locations``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from pardag.errors import Problem, ValidationError
from pardag.formats.document import Document, read_document
from pardag.model import Workflow

__all__ = ["FORMATS", "detect_format", "load", "read_workflow"]

FORMATS = ("nodegraph", "tasktree", "shellflow", "native")
"""Format names, in the order detection tries them (the native format last: it is the
most permissive)."""


def load(path: str | os.PathLike[str], *, format: str | None = None) -> Workflow:
    """Read the workflow in ``path``; ``format`` forces one of ``FORMATS``.

    Raises ``ValidationError`` naming the file and line for a file that cannot be read, is
    malformed, or describes an invalid workflow.
    """
    return read_workflow(read_document(path), format)


def read_workflow(doc: Document, format: str | None = None) -> Workflow:
    """The workflow in an already parsed document."""
    name = format or detect_format(doc)
    wf: Workflow = _reader(name, doc).read(doc)
    wf.source = doc.path
    return wf


def detect_format(doc: Document) -> str:
    """The name of the format ``doc`` is written in, judged from its content."""
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
    if name not in FORMATS:
        raise ValidationError(
            doc.path,
            [Problem(None, f"format {name!r} is unknown; use one of {', '.join(FORMATS)}")],
        )
    return importlib.import_module(f"pardag.formats.{name}")
