"""``benchmarks.report`` rewrites docs/performance.md but keeps the web page's section, which
``benchmarks.page`` measures apart."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import kept_sections


def test_the_web_pages_section_is_carried_over_and_nothing_else(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(
        "# Performance\n\n## Results\nold numbers\n\n## The web page at 1,000 steps\n"
        "lag p50 17 ms\n\n| a | b |\n\n## Runs that did not finish\n- x\n"
    )
    assert kept_sections(page) == [
        "## The web page at 1,000 steps",
        "lag p50 17 ms",
        "",
        "| a | b |",
        "",
        "",
    ]
    assert kept_sections(tmp_path / "missing.md") == []
