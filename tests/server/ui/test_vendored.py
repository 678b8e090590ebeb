"""The vendored libraries are the pinned copies ``static/VENDORED.md`` lists, unchanged."""

from __future__ import annotations

import hashlib
import re

from tests.browser import STATIC


def test_every_vendored_file_is_listed_with_its_checksum_and_licence() -> None:
    table = (STATIC / "VENDORED.md").read_text()
    listed = dict(re.findall(r"\| `(vendor/[^`]+\.js)` \|.*\| `([0-9a-f]{64})` \|", table))
    scripts = {f"vendor/{p.name}" for p in (STATIC / "vendor").glob("*.js")}
    assert set(listed) == scripts and scripts
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    for licence in re.findall(r"\(`(vendor/[^`]+)`\)", table):
        assert (STATIC / licence).stat().st_size > 100, licence


def test_the_page_loads_nothing_from_another_site() -> None:
    templates = STATIC.parent / "templates"
    for path in [*templates.glob("*.html"), *(STATIC / "js").glob("*.js")]:
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", path.read_text()), path
