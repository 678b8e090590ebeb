"""The web page's screenshots in docs/img are current: taken of the page's sources as they are
now (``make screenshots`` retakes them: ``tests/server/ui/screenshots.py``). No browser here."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

from tests.server.ui.screenshots import (
    IMAGES,
    MANIFEST,
    NAMES,
    ROOT,
    SELF,
    SOURCES,
    VIEWPORT,
    inputs_hash,
    source_files,
)

PNG = b"\x89PNG\r\n\x1a\n"


def manifest() -> dict[str, object]:
    assert MANIFEST.is_file(), "no docs/img/page-screenshots.json: run `make screenshots`"
    return dict(json.loads(MANIFEST.read_text()))


def test_the_screenshots_were_taken_of_the_page_as_it_is_now() -> None:
    assert manifest()["inputs"] == inputs_hash(), (
        "the page changed since its screenshots were taken: run `make screenshots` and commit "
        "docs/img"
    )


def test_every_screenshot_is_listed_and_is_the_png_the_manifest_names() -> None:
    images = manifest()["images"]
    assert isinstance(images, dict)
    assert sorted(images) == sorted(NAMES)
    for name, digest in images.items():
        path = IMAGES / name
        assert path.is_file(), f"docs/img/{name} is missing: run `make screenshots`"
        data = path.read_bytes()
        assert data[:8] == PNG, f"docs/img/{name} is not a PNG"
        assert data[12:16] == b"IHDR", f"docs/img/{name} has no IHDR chunk first"
        width, height = struct.unpack(">II", data[16:24])
        assert width == VIEWPORT["width"] == 1280, f"docs/img/{name} is {width} px wide"
        assert height == VIEWPORT["height"], f"docs/img/{name} is {height} px high"
        assert hashlib.sha256(data).hexdigest() == digest, (
            f"docs/img/{name} is not the image the manifest lists: run `make screenshots`"
        )


def test_the_inputs_cover_the_templates_styles_scripts_and_the_generator() -> None:
    covered = {path.relative_to(ROOT).as_posix() for path in source_files()}
    assert SELF in covered
    for folder in SOURCES:
        assert any(name.startswith(folder + "/") for name in covered), folder
    assert "src/pardag/server/templates/run.html" in covered
    assert "src/pardag/server/static/js/timeline.js" in covered
    assert "src/pardag/server/static/css/pardag.css" in covered
    assert not any("/vendor/" in name for name in covered)


def test_one_changed_template_byte_changes_the_inputs_hash(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for path in source_files():
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    assert inputs_hash(copy) == inputs_hash()  # the copy hashes as the sources do
    template = copy / "src/pardag/server/templates/run.html"
    data = bytearray(template.read_bytes())
    data[len(data) // 2] ^= 0x01
    template.write_bytes(bytes(data))
    assert inputs_hash(copy) != inputs_hash()
