"""A workflow definition sent to the API, read and validated as ``pardag validate`` reads a file.

The text goes through the same readers, limits and checks as a file named ``NAME.FORMAT``
would, so a problem is reported as ``etl.yaml:7: step 'load': ...``, exactly as the command
line words it for that file.
"""

from __future__ import annotations

from pardag.formats import read_workflow
from pardag.formats.document import parse_document
from pardag.model import Workflow

__all__ = ["SYNTAXES", "read_definition"]

SYNTAXES = ("yaml", "json", "toml")
"""The ``format`` values a definition may be written in (any reader's files: steps files,
node graphs, task trees, shell orchestrators; the reader is told from the content)."""


def read_definition(name: str, syntax: str, text: str) -> Workflow:
    """The validated workflow ``text`` describes; ValidationError listing every problem."""
    doc = parse_document(text, f"{name}.{syntax}", syntax)
    wf = read_workflow(doc)
    wf.compile()
    wf.source = None  # no file on disk: a run keeps the text (its snapshot) and nothing else
    return wf
