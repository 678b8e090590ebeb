"""The web page's screenshots for the docs, light and dark: ``make screenshots``.

Run from the repository's root as ``python -m tests.server.ui.screenshots``. It starts a real
service (``tests.server.conftest.serving``) on a SQLite store in a temporary folder, stores a
few demo workflows, runs them to different ends (succeeded, failed, paused at an approval, and
one still running), and has Chromium (``tests.browser``) take, in each colour scheme:

- ``page-runs-*.png``: the runs list;
- ``page-run-*.png``: the running run's page, its running step selected (the side panel);
- ``page-timeline-*.png``: the timeline tab of the finished ETL run (a retry, pool waits).

Then it writes ``docs/img/page-screenshots.json``: the hash of the page's sources the images
were taken of (``inputs_hash``) and each image's sha256, which
``tests/server/ui/test_screenshots.py`` checks against the sources as they are now.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
"""The repository's root."""
IMAGES = ROOT / "docs" / "img"
MANIFEST = IMAGES / "page-screenshots.json"
SOURCES = (
    "src/pardag/server/templates",
    "src/pardag/server/static/css",
    "src/pardag/server/static/js",
)
"""The folders whose files make the page's look (with this file: ``inputs_hash``)."""
SELF = "tests/server/ui/screenshots.py"
PAGES = ("runs", "run", "timeline")
SCHEMES = ("light", "dark")
NAMES = tuple(f"page-{page}-{scheme}.png" for page in PAGES for scheme in SCHEMES)
"""Every image the manifest lists."""
VIEWPORT = {"width": 1280, "height": 800}
PATIENCE_MS = 30_000


def source_files(root: Path = ROOT) -> list[Path]:
    """The files ``inputs_hash`` covers under ``root``, in sorted relative-path order."""
    found = [path for folder in SOURCES for path in (root / folder).rglob("*") if path.is_file()]
    found.append(root / SELF)
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def inputs_hash(root: Path = ROOT) -> str:
    """sha256 over the page's sources under ``root``: each file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in source_files(root):
        data = path.read_bytes()
        name = path.relative_to(root).as_posix().encode()
        digest.update(b"%d:%s\0%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the demo workflows ------------------------------------------------------------------

TABLES = ("orders", "customers", "products", "stock", "prices", "returns", "shipments", "reviews")


def etl(marker: Path) -> str:
    """Extract, eight tables cleaned in parallel and loaded one at a time (pool ``db: 1``, so
    the loaders wait), a check that fails once and is retried, a fan-in, a delay."""
    lines = [
        "name: nightly-etl",
        "execution:",
        "  max_concurrency: 4",
        "  pools: {db: 1}",
        "steps:",
        "  extract:",
        "    kind: shell",
        "    command: sleep 0.3; echo extracted",
    ]
    for table in TABLES:
        lines += [
            f"  load_{table}:",
            "    kind: shell",
            "    depends_on: extract",
            "    resources: {db: 1}",
            f"    command: sleep 0.25; echo loaded {table}",
        ]
    lines += [
        "  check:",
        "    kind: shell",
        "    depends_on: extract",
        "    retry: {retries: 1, delay: 0.5}",
        f"    command: sleep 0.3; test -f {marker} || {{ touch {marker}; echo busy >&2; exit 1; }}",
        "  merge_all:",
        "    kind: shell",
        f"    depends_on: [check, {', '.join('load_' + t for t in TABLES)}]",
        "    command: sleep 0.2; echo merged",
        "  settle:",
        "    kind: delay",
        "    depends_on: merge_all",
        "    duration: 300ms",
        "  publish:",
        "    kind: shell",
        "    depends_on: settle",
        "    command: echo published",
    ]
    return "\n".join(lines) + "\n"


REPORT = """\
name: weekly-report
steps:
  query:
    kind: shell
    command: echo queried
  render:
    kind: shell
    depends_on: query
    retry: {retries: 1, delay: 0.5}
    command: echo 'template report.html not found' >&2; exit 3
  mail:
    kind: shell
    depends_on: render
    command: echo mailed
"""

RELEASE = """\
name: release
steps:
  build:
    kind: shell
    command: echo built
  test:
    kind: shell
    depends_on: build
    command: sleep 0.2; echo tested
  review:
    kind: approval
    depends_on: test
    prompt: Ship this build?
    schema: {type: object, required: [target], properties: {target: {enum: [staging, prod]}}}
  ship:
    kind: shell
    depends_on: review
    command: echo shipped
"""

BACKFILL = """\
name: backfill
params: {days: 30}
steps:
  plan:
    kind: shell
    command: echo planned {{ params.days }} days
  fetch:
    kind: shell
    depends_on: plan
    command: echo fetched
  index:
    kind: delay
    depends_on: plan
    duration: 200ms
  rebuild:
    kind: shell
    depends_on: [fetch, index]
    command: sleep 120
  verify:
    kind: shell
    depends_on: rebuild
    command: echo verified
  announce:
    kind: shell
    depends_on: verify
    command: echo announced
"""


# ---- taking them ---------------------------------------------------------------------------


def _status(want: str | tuple[str, ...]) -> Any:
    wanted = (want,) if isinstance(want, str) else want
    return lambda run: run["status"] in wanted


def _steps_in(state: str, *steps: str) -> Any:
    def done(run: dict[str, Any]) -> bool:
        states = {s["step"]: s["state"] for s in run.get("steps", [])}
        return all(states.get(step) == state for step in steps)

    return done


def _runs(site: Any, folder: Path) -> dict[str, str]:
    """The demo runs, each waited for to its end (the backfill to its sleeping step)."""
    made = {
        name: site.workflow("admin", text)
        for name, text in (
            ("etl", etl(folder / "warehouse-ready")),
            ("report", REPORT),
            ("release", RELEASE),
            ("backfill", BACKFILL),
        )
    }
    runs = {"release": site.start("operator", made["release"])}
    site.wait_for("viewer", runs["release"], _status("paused"))
    runs["report"] = site.start("operator", made["report"])
    site.wait_for("viewer", runs["report"], _status(("succeeded", "failed")))
    runs["etl"] = site.start("operator", made["etl"])
    run = site.wait_for("viewer", runs["etl"], _status(("succeeded", "failed")))
    if run["status"] != "succeeded":
        raise SystemExit(f"the demo ETL run should succeed: {run}")
    runs["backfill"] = site.start("operator", made["backfill"], params={"days": 90})
    site.wait_for("viewer", runs["backfill"], _steps_in("running", "rebuild"))
    return runs


def _settle(page: Any) -> None:
    """Fonts loaded, no pending requests, two frames painted."""
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready.then(() => 1)")
    page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _shoot(page: Any, name: str) -> None:
    page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)  # no hover effects
    _settle(page)
    page.screenshot(path=str(IMAGES / name), full_page=False, animations="disabled", caret="hide")
    print(f"  docs/img/{name}")


def _take(browser: Any, site: Any, runs: dict[str, str], scheme: str) -> None:
    from tests.server.ui.conftest import sign_in

    context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        sign_in(page, site, "operator")

        page.goto(f"{site.url}/runs")
        page.wait_for_selector(f"#run-{runs['backfill']} .badge.st-running")
        _shoot(page, f"page-runs-{scheme}.png")

        page.goto(f"{site.url}/runs/{runs['backfill']}")
        page.wait_for_selector("#dag .dag-node[data-id=rebuild].st-running")
        page.wait_for_selector("#dag .dag-node[data-id=fetch].st-succeeded")
        page.locator("#dag .dag-node[data-id=rebuild]").click()
        page.wait_for_selector("#panel .panel-body[data-step=rebuild]")
        _shoot(page, f"page-run-{scheme}.png")

        page.goto(f"{site.url}/runs/{runs['etl']}")
        page.wait_for_selector("#run-status.st-succeeded")
        page.click("#tab-timeline")
        page.wait_for_selector("#timeline .seg-backoff")
        page.wait_for_selector("#timeline .seg-wait")
        page.locator("#timeline .tl-label", has_text="check").click()
        page.wait_for_selector("#panel .panel-body[data-step=check]")
        _shoot(page, f"page-timeline-{scheme}.png")
    finally:
        context.close()


def write_manifest() -> dict[str, Any]:
    manifest = {
        "inputs": inputs_hash(),
        "images": {name: file_hash(IMAGES / name) for name in NAMES},
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> int:
    from playwright.sync_api import sync_playwright

    from pardag.store import open_store
    from tests.browser import chromium_path
    from tests.server.conftest import serving

    began = time.monotonic()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pardag-shots-") as scratch:
        folder = Path(scratch)
        with open_store(str(folder / "runs.db")) as store, serving(store, workers=3) as site:
            runs = _runs(site, folder)
            try:
                with sync_playwright() as driver:
                    browser = driver.chromium.launch(
                        executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
                    )
                    try:
                        for scheme in SCHEMES:
                            _take(browser, site, runs, scheme)
                    finally:
                        browser.close()
            finally:
                site.call("operator", "POST", f"/api/runs/{runs['backfill']}/cancel")
                site.wait_for("viewer", runs["backfill"], _status("cancelled"))
    write_manifest()
    print(f"docs/img/page-screenshots.json ({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
