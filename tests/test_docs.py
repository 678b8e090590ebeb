"""Every ```python block of the docs runs, so an example that goes stale fails the suite.

Each block runs on its own, in a fresh namespace named ``__main__`` (as a script would), so a
block must import what it uses and show its result with ``assert`` statements.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "concepts.md", ROOT / "docs" / "formats.md"]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    """(test id, source) for every ```python block, the id naming the file and line."""
    blocks = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            blocks.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = python_blocks()


def test_the_docs_have_examples() -> None:
    files = {block_id.split(":")[0] for block_id, _ in BLOCKS}
    assert files == {"README.md", "docs/concepts.md", "docs/formats.md"}
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("block_id", "source"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_example_runs(block_id: str, source: str) -> None:
    path, line = block_id.rsplit(":", 1)
    # Pad with newlines so a traceback points at the right line of the Markdown file.
    code = compile("\n" * (int(line) - 1) + source, str(ROOT / path), "exec")
    exec(code, {"__name__": "__main__"})
