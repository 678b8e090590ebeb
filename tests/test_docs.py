"""Every ```python block of the docs runs, so an example that goes stale fails the suite.

Each block runs on its own, in a fresh namespace named ``__main__`` (as a script would), so a
block must import what it uses and show its result with ``assert`` statements.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *(
        ROOT / "docs" / f
        for f in ("concepts.md", "formats.md", "runs.md", "scale-out.md", "server.md")
    ),
]
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
    assert files == {
        "README.md",
        "docs/concepts.md",
        "docs/formats.md",
        "docs/runs.md",
        "docs/scale-out.md",
        "docs/server.md",
    }
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("block_id", "source"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_example_runs(block_id: str, source: str) -> None:
    path, line = block_id.rsplit(":", 1)
    # Pad with newlines so a traceback points at the right line of the Markdown file.
    code = compile("\n" * (int(line) - 1) + source, str(ROOT / path), "exec")
    exec(code, {"__name__": "__main__"})


FLOW_FENCE = re.compile(r"^```(yaml|json)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def readme_flows() -> list[tuple[str, str, str]]:
    """(test id, extension, text) for every ```yaml and ```json block of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (f"README.md:{text.count(chr(10), 0, m.start(2)) + 1}", m.group(1), m.group(2))
        for m in FLOW_FENCE.finditer(text)
    ]


FLOWS = readme_flows()


def test_the_readme_shows_one_workflow_per_format() -> None:
    import pardag.formats
    from pardag.formats.document import parse_document

    formats = [
        pardag.formats.detect_format(parse_document(text, "x", ext)) for _, ext, text in FLOWS
    ]
    assert sorted(formats) == sorted(pardag.formats.FORMATS)


@pytest.mark.parametrize(("block_id", "ext", "text"), FLOWS, ids=[f[0] for f in FLOWS])
def test_readme_workflow_runs(block_id: str, ext: str, text: str, tmp_path: Path) -> None:
    import pardag

    path = tmp_path / f"flow.{ext}"
    path.write_text(text, encoding="utf-8")
    result = pardag.load(path).run()
    assert result.status == "succeeded", (block_id, result.error)
    assert result.final_output is not None


# -- links: everything the docs and benchmarks use lives in the repository ----------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")
MARKDOWN = sorted(
    p
    for p in ROOT.rglob("*.md")
    if not any(part.startswith(".") or part in ("results", "node_modules") for part in p.parts)
    and ROOT in p.parents
)
OUTSIDE = re.compile(r"\.\./shared\b|/work/")
"""A path that leaves the repository: the shared folder beside it, or an absolute one here."""


def link_problems(path: Path) -> list[str]:
    """Each relative link of ``path`` that leaves the repository or names nothing in it."""
    problems = []
    for match in LINK.finditer(path.read_text(encoding="utf-8")):
        target = match.group(1).split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor, a URL
            continue
        where = (path.parent / target).resolve()
        if target.startswith("/") or ROOT not in [where, *where.parents]:
            problems.append(f"{target}: outside the repository")
        elif not where.exists():
            problems.append(f"{target}: no such file")
    return problems


def test_the_link_checker_sees_a_link_that_leaves_the_repository() -> None:
    page = ROOT / "docs" / "_link_check.md"
    try:
        page.write_text(
            "[w](../../shared/bench/W.md) [a](/etc/passwd) [x](nothere.md) [ok](cli.md)"
        )
        assert link_problems(page) == [
            "../../shared/bench/W.md: outside the repository",
            "/etc/passwd: outside the repository",
            "nothere.md: no such file",
        ]
    finally:
        page.unlink()


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_every_link_stays_inside_the_repository(path: Path) -> None:
    assert link_problems(path) == []


@pytest.mark.parametrize(
    "path",
    [*MARKDOWN, *sorted((ROOT / "benchmarks").glob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_doc_or_benchmark_names_a_path_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert [m.group(0) for m in OUTSIDE.finditer(text)] == []


def test_the_kind_table_of_formats_lists_the_general_kinds() -> None:
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    table = text[text.index("| kind        | parameters") :].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `(\w+)`", table, re.MULTILINE)
    assert listed == ["python", "shell", "condition", "merge", "http", "approval", "delay"]
