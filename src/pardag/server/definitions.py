"""A workflow definition sent to the API, read and validated as ``pardag validate`` reads a file.

The text goes through the same readers, limits and checks as a file named ``NAME.FORMAT``
would, so a problem is reported as ``etl.yaml:7: step 'load': ...``, exactly as the command
line words it for that file.
"""

from __future__ import annotations

import dataclasses
import re

from pardag.formats import read_workflow
from pardag.formats.document import parse_document
from pardag.model import Workflow

__all__ = ["SYNTAXES", "read_definition"]

_PLAIN = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SYNTAXES = ("yaml", "json", "toml")
"""The ``format`` values a definition may be written in (any reader's files: steps files,
node graphs, task trees, shell orchestrators; the reader is told from the content)."""


def read_definition(name: str | None, syntax: str, text: str) -> Workflow:
    """The validated workflow ``text`` describes; ValidationError listing every problem.

    Problems name the file ``NAME.SYNTAX``: ``name``, else the ``name`` the text declares."""
    doc = parse_document(text, f"{name or 'workflow'}.{syntax}", syntax)
    declared = doc.data.get("name")
    if name is None and isinstance(declared, str) and _PLAIN.fullmatch(declared):
        doc = dataclasses.replace(doc, path=f"{declared}.{syntax}")
    wf = read_workflow(doc)
    wf.compile()
    wf.source = None  # no file on disk: a run keeps the text (its snapshot) and nothing else
    return wf
