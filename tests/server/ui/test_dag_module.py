"""static/js/dag.js in Chromium: layout, state updates, badges, counts, selection, the
critical path, pan and zoom, and 1,000 steps (through the harness page harness/dag.html)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pardag.server.ui.render import STATE_LABELS
from tests.browser import STATIC, serve_folder

HARNESS = Path(__file__).parent / "harness" / "dag.html"

DIAMOND: dict[str, Any] = {
    "nodes": [
        {"id": "a", "kind": "shell", "mapped": False},
        {"id": "b", "kind": "python", "mapped": False},
        {"id": "c", "kind": "http", "mapped": True},
        {"id": "d", "kind": "approval", "mapped": False},
    ],
    "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]],
    "critical": ["a", "b", "d"],
}

STATES = (
    "pending",
    "ready",
    "waiting",
    "running",
    "retrying",
    "paused",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
)
WORDING = {state: STATE_LABELS[state] for state in STATES}
"""Each state's words in the graph: the very words the page's table uses (``render``)."""


@pytest.fixture(scope="module")
def harness_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The static folder and the harness, served together over HTTP."""
    root = tmp_path_factory.mktemp("dag-site")
    (root / "static").symlink_to(STATIC, target_is_directory=True)
    shutil.copy(HARNESS, root / "dag.html")
    with serve_folder(root) as base:
        yield f"{base}/dag.html"


def draw(page: Any, url: str, graph: dict[str, Any]) -> None:
    page.goto(url)
    page.wait_for_function("window.harnessReady === true")
    assert page.evaluate("g => draw(g)", graph) == 1


def node(page: Any, step: str) -> Any:
    return page.locator(f'.dag-node[data-id="{step}"]')


def classes(page: Any, selector: str) -> list[str]:
    found: list[str] = page.eval_on_selector(selector, "el => [...el.classList]")
    return found


def geometry(page: Any) -> dict[str, Any]:
    """Every node's transform and every edge's path: what a re-layout would change."""
    found: dict[str, Any] = page.evaluate(
        """() => ({
          nodes: [...document.querySelectorAll('.dag-node')].map(g => g.getAttribute('transform')),
          edges: [...document.querySelectorAll('.dag-edge')].map(e => e.getAttribute('d')),
        })"""
    )
    return found


def scale_and_shift(page: Any) -> tuple[float, float, float]:
    transform = page.get_attribute(".dag-viewport", "transform")
    found = re.fullmatch(r"translate\(([-\d.e]+),([-\d.e]+)\) scale\(([-\d.e]+)\)", transform)
    assert found, transform
    x, y, k = (float(part) for part in found.groups())
    return k, x, y


def test_small_graph_is_laid_out_left_to_right_and_updated_without_relayout(
    page: Any, harness_url: str
) -> None:
    draw(page, harness_url, DIAMOND)
    assert page.locator(".dag-svg .dag-node").count() == 4
    assert page.locator(".dag-svg .dag-edge").count() == 4
    centres = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.dag-node .dag-box')].map(
            b => { const r = b.getBoundingClientRect();
                   return [b.parentNode.dataset.id, r.left + r.width / 2]; }))"""
    )
    for source, target in DIAMOND["edges"]:
        assert centres[source] < centres[target], (source, target, centres)
    assert page.evaluate("STATE_LABELS") == WORDING
    before = geometry(page)

    for state, words in WORDING.items():
        page.evaluate("s => dag.setStep('b', {state: s})", state)
        assert f"st-{state}" in classes(page, '.dag-node[data-id="b"]')
        assert [c for c in classes(page, '.dag-node[data-id="b"]') if c.startswith("st-")] == [
            f"st-{state}"
        ]
        assert node(page, "b").locator(".dag-state").text_content() == words
        assert node(page, "b").get_attribute("aria-label") == f"step b: {state}"
    page.evaluate(
        """() => { for (let i = 0; i < 200; i++) for (const id of ['a', 'b', 'c', 'd'])
                     dag.setStep(id, {state: i % 2 ? 'running' : 'pending'}); }"""
    )
    page.evaluate("dag.setStep('nope', {state: 'failed'}); dag.setStep('a', {state: 'bogus'})")
    page.evaluate("dag.setStep('a', {state: 'retrying', attempts: 2})")
    assert node(page, "a").locator(".dag-state").text_content() == "↻ retrying · attempt 2"
    assert node(page, "d").locator(".dag-state").text_content() == "▶ running"
    assert page.evaluate("dag.layouts") == 1
    assert geometry(page) == before


def test_reason_in_tooltip_and_waiting_badge_until_the_next_state(
    page: Any, harness_url: str
) -> None:
    draw(page, harness_url, DIAMOND)
    page.evaluate("dag.setStep('b', {state: 'failed', reason: 'exit code 3: disk full'})")
    assert "exit code 3: disk full" in node(page, "b").locator("title").text_content()
    assert node(page, "b").locator(".dag-state").text_content() == "✗ failed"

    badge = node(page, "a").locator(".dag-badge")
    assert not badge.is_visible()
    page.evaluate("dag.setStep('a', {state: 'waiting', waiting_on: \"pool 'gpu' (all 1 in use)\"})")
    assert badge.is_visible()
    assert badge.text_content() == "waiting for pool gpu"
    assert "waiting for pool gpu" in node(page, "a").locator("title").text_content()
    page.evaluate("dag.setStep('a', {state: 'running'})")
    assert not badge.is_visible()
    assert node(page, "a").locator("title").text_content() == "a: ▶ running"

    page.evaluate("dag.setStep('d', {state: 'waiting', waiting_on: 'the approval of ops'})")
    assert node(page, "d").locator(".dag-badge").text_content() == "the approval of ops"
    page.evaluate("dag.setStep('d', {state: 'waiting'})")
    assert not node(page, "d").locator(".dag-badge").is_visible()


def test_mapped_step_is_stacked_and_shows_its_counts(page: Any, harness_url: str) -> None:
    draw(page, harness_url, DIAMOND)
    assert node(page, "c").locator(".dag-stack").count() >= 1
    assert node(page, "c").locator(".dag-stack").first.is_visible()
    assert node(page, "b").locator(".dag-stack").count() == 0
    page.evaluate(
        "dag.setCounts('c', {total: 200, states: {succeeded: 198, failed: 2, running: 0}})"
    )
    assert node(page, "c").locator(".dag-count").text_content() == "198/200 ✓ · 2 ✗"
    page.evaluate("dag.setCounts('c', {total: 200, states: {succeeded: 10, running: 4}})")
    assert node(page, "c").locator(".dag-count").text_content() == "10/200 ✓ · 4 ▶"
    page.evaluate("dag.setCounts('b', {total: 3, states: {}}); dag.setCounts('zz', {total: 1})")
    assert page.evaluate("dag.layouts") == 1


def test_click_and_keyboard_select_a_step(page: Any, harness_url: str) -> None:
    draw(page, harness_url, DIAMOND)
    assert node(page, "b").get_attribute("tabindex") == "0"
    assert node(page, "b").get_attribute("role") == "button"
    node(page, "b").click()
    assert page.evaluate("selections") == ["b"]
    assert "selected" in classes(page, '.dag-node[data-id="b"]')

    node(page, "c").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("selections") == ["b", "c"]
    assert "selected" in classes(page, '.dag-node[data-id="c"]')
    assert "selected" not in classes(page, '.dag-node[data-id="b"]')
    node(page, "d").focus()
    page.keyboard.press(" ")
    assert page.evaluate("selections") == ["b", "c", "d"]
    assert page.locator(".dag-node.selected").count() == 1

    assert page.evaluate("dag.select('a')") is True
    assert page.evaluate("selections") == ["b", "c", "d"]  # select() only marks
    assert [n for n in ["a", "b", "c", "d"] if "selected" in classes(page, f'[data-id="{n}"]')] == [
        "a"
    ]


def edge_classes(page: Any) -> dict[str, bool]:
    found: dict[str, bool] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.dag-edge')].map(
            e => [e.dataset.from + '>' + e.dataset.to, e.classList.contains('critical')]))"""
    )
    return found


def critical_nodes(page: Any) -> list[str]:
    found: list[str] = page.evaluate(
        "[...document.querySelectorAll('.dag-node.critical')].map(n => n.dataset.id).sort()"
    )
    return found


def test_critical_path_marks_nodes_and_edges(page: Any, harness_url: str) -> None:
    draw(page, harness_url, DIAMOND)
    assert critical_nodes(page) == ["a", "b", "d"]
    assert edge_classes(page) == {"a>b": True, "b>d": True, "a>c": False, "c>d": False}
    page.evaluate("dag.setCritical(['a', 'c', 'd'])")
    assert critical_nodes(page) == ["a", "c", "d"]
    assert edge_classes(page) == {"a>b": False, "b>d": False, "a>c": True, "c>d": True}
    page.evaluate("dag.setCritical([])")
    assert critical_nodes(page) == []
    assert page.evaluate("dag.layouts") == 1


def layered(layers: int, width: int) -> dict[str, Any]:
    """Each step takes its layer's predecessor at the same index and one further along."""
    nodes = [
        {"id": f"s{layer}_{i}", "kind": "shell", "mapped": i == 0}
        for layer in range(layers)
        for i in range(width)
    ]
    edges = [
        [f"s{layer - 1}_{source}", f"s{layer}_{i}"]
        for layer in range(1, layers)
        for i in range(width)
        for source in (i, (i + 7) % width)
    ]
    return {"nodes": nodes, "edges": edges, "critical": [f"s{layer}_0" for layer in range(layers)]}


def test_a_thousand_steps_draw_and_all_updates_apply(page: Any, harness_url: str) -> None:
    graph = layered(50, 20)
    page.goto(harness_url)
    page.wait_for_function("window.harnessReady === true")
    drawn = page.evaluate(
        "g => { const t = performance.now(); draw(g); return performance.now() - t; }", graph
    )
    print(f"\n1,000 steps laid out and drawn: {drawn:.0f} ms")
    assert page.locator(".dag-node").count() == 1000
    assert page.locator(".dag-edge").count() == len(graph["edges"])
    assert page.locator(".dag-node.critical").count() == 50
    before = geometry(page)
    elapsed = page.evaluate(
        """async ids => {
            const started = performance.now();
            for (const id of ids) dag.setStep(id, {state: 'succeeded'});
            await new Promise(requestAnimationFrame);
            return performance.now() - started;
        }""",
        [step["id"] for step in graph["nodes"]],
    )
    print(f"\n1,000 setStep calls to the next animation frame: {elapsed:.1f} ms")
    assert page.locator(".dag-node.st-succeeded").count() == 1000
    assert page.locator(".dag-node.st-pending").count() == 0
    assert page.evaluate("dag.layouts") == 1
    assert geometry(page) == before


def test_zoom_buttons_keys_wheel_and_drag_move_one_transform(page: Any, harness_url: str) -> None:
    draw(page, harness_url, DIAMOND)
    fitted = scale_and_shift(page)
    svg_box = page.locator(".dag-svg").bounding_box()
    for box in page.locator(".dag-box").all():  # fitted: every step is in view
        inside = box.bounding_box()
        for start, size in (("x", "width"), ("y", "height")):
            assert svg_box[start] <= inside[start]
            assert inside[start] + inside[size] <= svg_box[start] + svg_box[size]

    page.click('.dag-controls [data-zoom="in"]')
    assert scale_and_shift(page)[0] > fitted[0]
    page.click('.dag-controls [data-zoom="out"]')
    page.click('.dag-controls [data-zoom="out"]')
    assert scale_and_shift(page)[0] < fitted[0]
    page.click('.dag-controls [data-zoom="fit"]')
    assert scale_and_shift(page) == pytest.approx(fitted)

    page.focus("#graph")
    page.keyboard.press("+")
    assert scale_and_shift(page)[0] > fitted[0]
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert scale_and_shift(page)[0] < fitted[0]
    page.keyboard.press("0")
    assert scale_and_shift(page) == pytest.approx(fitted)

    px, py = svg_box["x"] + 200, svg_box["y"] + 150
    page.mouse.move(px, py)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        "k => !document.querySelector('.dag-viewport').getAttribute('transform')"
        ".endsWith(`scale(${k})`)",
        arg=fitted[0],
    )
    k, x, y = scale_and_shift(page)
    assert k > fitted[0]
    # the graph point under the pointer stays under it
    local = (px - svg_box["x"], py - svg_box["y"])
    assert (local[0] - x) / k == pytest.approx((local[0] - fitted[1]) / fitted[0], abs=0.01)
    assert (local[1] - y) / k == pytest.approx((local[1] - fitted[2]) / fitted[0], abs=0.01)

    page.mouse.move(svg_box["x"] + 20, svg_box["y"] + 20)
    page.mouse.down()
    page.mouse.move(svg_box["x"] + 80, svg_box["y"] + 60, steps=5)
    page.mouse.up()
    moved = scale_and_shift(page)
    assert moved[0] == pytest.approx(k)
    assert (moved[1] - x, moved[2] - y) == pytest.approx((60, 40))
    assert page.evaluate("selections") == []
    assert page.evaluate("dag.layouts") == 1
