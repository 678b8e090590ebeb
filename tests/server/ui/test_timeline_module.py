"""The timeline module (static/js/timeline.js) in Chromium, fed synthetic run events.

Every event's ``at`` is chosen by the test (T0 + offset), so nothing depends on the clock:
positions are checked against the scale the chart reports (``data-pps`` on its root).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import STATIC, serve_folder

HARNESS = Path(__file__).parent / "harness" / "timeline.html"
T0 = 1_700_000_000.0
PX = 0.6  # px of rounding allowed in a position


@pytest.fixture
def chart(page: Any, tmp_path: Path) -> Iterator[Any]:
    """The harness page with an empty timeline drawn from T0 (``window.tl``)."""
    (tmp_path / "static").symlink_to(STATIC)
    shutil.copy(HARNESS, tmp_path / "timeline.html")
    with serve_folder(tmp_path) as base:
        page.goto(f"{base}/timeline.html")
        page.wait_for_function("window.ready === true")
        page.evaluate("t0 => window.draw(t0)", T0)
        yield page


def ev(seq: int, at: float, kind: str, step: str | None = None, attempt: int = 0, **data: Any):
    return {"seq": seq, "at": T0 + at, "kind": kind, "step": step, "attempt": attempt, "data": data}


def feed(page: Any, events: list[dict[str, Any]]) -> None:
    page.evaluate("events => events.forEach((e) => window.tl.add(e))", events)


def call(page: Any, method: str, offset: float) -> None:
    page.evaluate(f"t => window.tl.{method}(t)", T0 + offset)


def pps(page: Any) -> float:
    return float(page.get_attribute(".tl", "data-pps"))


def segs(page: Any, step: str, kind: str) -> list[dict[str, Any]]:
    """The segments of one kind on a step's row: left and width (px), classes, title."""
    return page.evaluate(
        """([step, kind]) => [...document.querySelectorAll(
               `.tl-row[data-step="${step}"] .seg-${kind}`)].map((s) => ({
             left: parseFloat(s.style.left), width: parseFloat(s.style.width),
             cls: [...s.classList], title: s.title}))""",
        [step, kind],
    )


def visible_rows(page: Any) -> list[str]:
    return page.evaluate(
        "[...document.querySelectorAll('.tl-row')].filter((r) => r.checkVisibility())"
        ".map((r) => r.dataset.step)"
    )


def spans(page: Any, seg: dict[str, Any], start: float, end: float) -> None:
    """``seg`` is drawn from ``start`` to ``end`` seconds after T0 at the current scale."""
    scale = pps(page)
    assert seg["left"] == pytest.approx(start * scale, abs=PX)
    assert seg["width"] == pytest.approx((end - start) * scale, abs=PX)


POOL = "pool 'gpu' (all 1 in use)"
EXAMPLE = [
    ev(1, 0.0, "run_started"),
    ev(2, 0.0, "step_ready", "a"),
    ev(3, 0.0, "step_ready", "b"),
    ev(4, 0.01, "step_waiting", "b", waiting_on=POOL),
    ev(5, 0.02, "step_started", "a", 1),
    ev(6, 1.0, "step_started", "b", 1),
    ev(7, 1.22, "step_succeeded", "a", 1),
    ev(8, 1.23, "step_ready", "c"),
    ev(9, 1.25, "step_started", "c", 1),
    ev(10, 1.75, "step_retrying", "c", 1, delay=0.19, error="ValueError('boom')"),
    ev(11, 1.94, "step_ready", "c", 1),
    ev(12, 2.0, "step_started", "c", 2),
    ev(13, 2.5, "step_failed", "c", 2, reason="ValueError('boom again')"),
    ev(14, 2.6, "step_cancelled", "b", 1, reason="the run failed"),
    ev(15, 2.7, "run_finished", status="failed"),
]


# Labels inside rows are read as DOM text: rows use content-visibility, and a row not yet
# rendered has no innerText (the check would depend on when the browser painted).
def test_a_real_run_draws_a_row_per_step_and_a_bar_per_attempt(chart: Any) -> None:
    feed(chart, EXAMPLE)
    assert visible_rows(chart) == ["a", "b", "c"]
    assert chart.locator(".tl-label").all_text_contents() == ["a", "b", "c"]

    [a_run] = segs(chart, "a", "run")
    assert "st-succeeded" in a_run["cls"]
    assert "1.20 s" in a_run["title"] and "attempt 1" in a_run["title"]
    spans(chart, a_run, 0.02, 1.22)

    first, second = segs(chart, "c", "run")
    assert "attempt 1" in first["title"] and "attempt 2" in second["title"]
    assert "st-running" not in first["cls"] and "st-succeeded" not in first["cls"]
    assert "st-failed" in second["cls"]
    spans(chart, first, 1.25, 1.75)
    spans(chart, second, 2.0, 2.5)
    [backoff] = segs(chart, "c", "backoff")
    spans(chart, backoff, 1.75, 1.94)
    assert first["left"] + first["width"] <= backoff["left"] + PX
    assert backoff["left"] + backoff["width"] <= second["left"] + PX
    assert "0.19 s" in backoff["title"]
    assert [w["width"] > 0 for w in segs(chart, "c", "wait")] == [True, True]

    [b_wait] = segs(chart, "b", "wait")
    assert "pool 'gpu'" in b_wait["title"]
    spans(chart, b_wait, 0.0, 1.0)
    [b_run] = segs(chart, "b", "run")
    assert "st-cancelled" in b_run["cls"]
    spans(chart, b_run, 1.0, 2.6)
    assert chart.locator(".tl-tick").first.inner_text() == "0s"


def test_a_pause_is_drawn_from_paused_to_resumed(chart: Any) -> None:
    feed(
        chart,
        [
            ev(1, 0.0, "step_ready", "gate"),
            ev(2, 0.5, "step_started", "gate", 1),
            ev(3, 1.0, "step_paused", "gate", 1, prompt="Deploy to prod?"),
            ev(4, 4.0, "step_resumed", "gate", 1),
            ev(5, 4.0, "step_started", "gate", 1),
            ev(6, 5.0, "step_succeeded", "gate", 1),
        ],
    )
    [paused] = segs(chart, "gate", "paused")
    spans(chart, paused, 1.0, 4.0)
    assert "Deploy to prod?" in paused["title"] and "3.00 s" in paused["title"]
    runs = segs(chart, "gate", "run")
    spans(chart, runs[0], 0.5, 1.0)
    spans(chart, runs[1], 4.0, 5.0)


def test_an_open_bar_grows_with_tick_and_closes_at_finish(chart: Any) -> None:
    feed(chart, [ev(1, 0.0, "run_started"), ev(2, 0.0, "step_started", "x", 1)])
    chart.click("button[aria-label='Zoom in']")  # a fixed scale: px widths comparable
    call(chart, "tick", 2.0)
    [run] = segs(chart, "x", "run")
    assert "st-running" in run["cls"]
    spans(chart, run, 0.0, 2.0)
    call(chart, "tick", 5.0)
    [grown] = segs(chart, "x", "run")
    assert grown["width"] > run["width"]
    spans(chart, grown, 0.0, 5.0)

    call(chart, "finish", 6.0)
    width = chart.eval_on_selector(".tl-scroll", "s => s.scrollWidth")
    call(chart, "tick", 30.0)  # the run is over: nothing grows any more
    assert chart.eval_on_selector(".tl-scroll", "s => s.scrollWidth") == width
    [closed] = segs(chart, "x", "run")
    assert "st-running" not in closed["cls"]
    spans(chart, closed, 0.0, 6.0)


def test_the_axis_follows_the_run_as_it_grows(chart: Any) -> None:
    feed(chart, [ev(1, 0.0, "run_started"), ev(2, 0.0, "step_started", "x", 1)])
    call(chart, "tick", 10.0)
    labels = chart.locator(".tl-tick").all_inner_texts()
    assert labels[0] == "0s" and "10s" in labels and not any("m" in t for t in labels)
    call(chart, "tick", 300.0)
    labels = chart.locator(".tl-tick").all_inner_texts()
    assert labels[0] == "0s" and "1m" in labels and "4m" in labels


def test_zoom_buttons_fit_and_wheel_change_the_scale_and_survive_a_tick(chart: Any) -> None:
    feed(chart, [ev(1, 0.0, "step_started", "x", 1), ev(2, 10.0, "step_succeeded", "x", 1)])
    feed(chart, [ev(3, 10.0, "step_started", "y", 1)])  # still running
    before = segs(chart, "x", "run")[0]["width"]
    chart.click("button[aria-label='Zoom in']")
    assert segs(chart, "x", "run")[0]["width"] / before == pytest.approx(2, rel=1e-3)
    chart.click("button[aria-label='Zoom out']")
    assert segs(chart, "x", "run")[0]["width"] == pytest.approx(before, rel=1e-3)

    chart.click("button[aria-label='Zoom in']")
    chart.click("button[aria-label='Zoom in']")
    zoomed = pps(chart)
    call(chart, "tick", 40.0)  # the run grows: the chosen zoom stays
    assert pps(chart) == zoomed
    spans(chart, segs(chart, "y", "run")[0], 10.0, 40.0)

    chart.click("button[aria-label='Fit the whole run']")
    box = chart.evaluate(
        """() => { const s = document.querySelector('.tl-scroll');
                   const y = document.querySelector('.tl-row[data-step="y"] .seg-run');
                   return {over: s.scrollWidth - s.clientWidth,
                           right: s.getBoundingClientRect().right,
                           end: y.getBoundingClientRect().right}; }"""
    )
    assert box["over"] <= 0  # no horizontal scrolling
    assert box["right"] - 60 <= box["end"] <= box["right"]  # the run's end near the right edge

    fitted = pps(chart)
    chart.hover(".tl-row[data-step='x'] .tl-track")
    chart.keyboard.down("Control")
    chart.mouse.wheel(0, -100)
    chart.keyboard.up("Control")
    assert pps(chart) > fitted


def test_labels_stay_at_the_left_when_the_chart_scrolls(chart: Any) -> None:
    feed(chart, [ev(1, 0.0, "step_started", "x", 1), ev(2, 60.0, "step_succeeded", "x", 1)])
    for _ in range(4):
        chart.click("button[aria-label='Zoom in']")
    where = chart.evaluate(
        """() => { const s = document.querySelector('.tl-scroll');
                   const left = (css) => document.querySelector(css).getBoundingClientRect().left;
                   s.scrollLeft = 0;
                   const before = left('.seg-run');
                   s.scrollLeft = 500;
                   return {scrolled: s.scrollLeft, moved: before - left('.seg-run'),
                           left: s.getBoundingClientRect().left + s.clientLeft,
                           label: left('.tl-head'), corner: left('.tl-corner')}; }"""
    )
    assert where["scrolled"] == 500 and where["moved"] == pytest.approx(500, abs=1)
    assert where["label"] == pytest.approx(where["left"], abs=0.5)
    assert where["corner"] == pytest.approx(where["left"], abs=0.5)


def test_a_mapped_steps_instances_are_collapsed_under_it(chart: Any) -> None:
    events = [ev(1, 0.0, "step_ready", "a"), ev(2, 0.0, "step_started", "m", 1)]
    seq = 3
    for i in range(500):
        for kind, later in (("step_ready", 0), ("step_started", 0.1), ("step_succeeded", 0.5)):
            events.append(ev(seq, 0.01 * i + later, kind, f"m[{i}]", 1, parent="m"))
            seq += 1
    events += [ev(seq, 6.0, "step_ready", "z"), ev(seq + 1, 6.0, "step_ready", "n[0]", parent="n")]
    feed(chart, events)
    assert visible_rows(chart) == ["a", "m", "z", "n"]
    toggle = chart.locator(".tl-row[data-step='m'] .tl-toggle")
    assert (
        "500" in (toggle.text_content() or "") and toggle.get_attribute("aria-expanded") == "false"
    )
    assert "1" in (chart.locator(".tl-row[data-step='n'] .tl-toggle").text_content() or "")

    toggle.click()
    shown = visible_rows(chart)
    assert len(shown) == 504 and toggle.get_attribute("aria-expanded") == "true"
    assert shown[:3] == ["a", "m", "m[0]"] and shown[501:] == ["m[499]", "z", "n"]
    spans(chart, segs(chart, "m[7]", "run")[0], 0.17, 0.57)
    toggle.click()
    assert visible_rows(chart) == ["a", "m", "z", "n"]


def test_an_event_seen_twice_is_drawn_once(chart: Any) -> None:
    feed(chart, EXAMPLE[:13])
    feed(chart, EXAMPLE)  # a snapshot overlapping the live events already added
    feed(chart, [ev(5, 3.0, "step_started", "ghost", 1)])  # a seen seq: ignored
    assert visible_rows(chart) == ["a", "b", "c"]
    assert len(segs(chart, "c", "run")) == 2 and len(segs(chart, "c", "backoff")) == 1
    assert len(segs(chart, "a", "run")) == 1 and len(segs(chart, "b", "wait")) == 1


def test_a_skipped_step_is_a_marker_with_its_reason(chart: Any) -> None:
    feed(
        chart,
        [ev(1, 0.0, "step_ready", "a"), ev(2, 2.0, "step_skipped", "s", reason="upstream failed")],
    )
    [skip] = segs(chart, "s", "skip")
    assert skip["left"] == pytest.approx(2.0 * pps(chart), abs=PX)
    assert "upstream failed" in skip["title"]
    assert segs(chart, "s", "run") == [] and segs(chart, "s", "wait") == []


def test_a_label_is_a_button_that_selects_its_step(chart: Any) -> None:
    feed(chart, [*EXAMPLE[:-1], ev(16, 2.7, "step_skipped", "a-name-too-long-for-its-column" * 3)])
    heads = chart.eval_on_selector_all(".tl-head", "hs => hs.map((h) => h.offsetWidth)")
    assert len(heads) == 4 and len(set(heads)) == 1  # a long name does not widen its label
    chart.click(".tl-row[data-step='b'] .tl-label")
    chart.focus(".tl-row[data-step='c'] .tl-label")
    chart.keyboard.press("Enter")
    assert chart.evaluate("window.selected") == ["b", "c"]
