"""The W7 benchmark (mapped steps, benchmarks/WORKLOADS.md): its schedules, its engines' graphs
and its part of the performance page, at tiny sizes. No timing is checked here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks import harness, report, report_map
from benchmarks.engines.pardag import Pardag
from benchmarks.engines.stdlib import Stdlib
from benchmarks.workloads import (
    generate,
    list_schedule,
    pipelined_schedule,
    stage_durations,
    warmup,
)

from tests.bench_support import results_doc


def test_the_barrier_and_the_pipelined_schedules_by_hand() -> None:
    # two slots; a = 1, 1, 3 and b = 2, 2, 1. Barrier: a ends at 4 (a2 after a0), b takes 3.
    # Pipelined: a2 starts at 1, b0 at 1, b1 at 3, b2 at 4 (once a2 ends): all end at 5.
    assert list_schedule([1, 1, 3], 2) + list_schedule([2, 2, 1], 2) == 7
    assert pipelined_schedule([1, 1, 3], [2, 2, 1], 2) == 5
    assert pipelined_schedule([1], [1], 4) == 2


@pytest.mark.parametrize("n, slots", [(5, 2), (64, 16), (200, 32)])
def test_the_chain_bounds_sit_in_order(n: int, slots: int) -> None:
    wl = generate({"workload": "W7", "shape": "chain", "n": n, "slots": slots})
    a, b = stage_durations(wl).values()
    assert len(a) == len(b) == n and all(0.005 <= d <= 0.05 for d in a + b)
    assert a != b  # drawn apart
    longest = max(x + y for x, y in zip(a, b, strict=True))
    assert wl.ideal == pytest.approx(max(longest, sum(a + b) / slots))
    assert wl.ideal <= wl.params["pipelined"] <= wl.params["barrier"]


def test_the_fan_is_a_source_and_its_steps() -> None:
    wl = generate({"workload": "W7", "n": 3, "slots": 8})
    assert [(s.id, s.deps) for s in wl.steps] == [
        ("src", ()),
        ("p0", ("src",)),
        ("p1", ("src",)),
        ("p2", ("src",)),
    ]
    assert stage_durations(wl) == {"p": [0.0, 0.0, 0.0]}
    assert warmup("noop", like=wl).size == 9  # a W7 of 8 items warms the mapping up


@pytest.mark.parametrize("variant", ["map-threads", "map-async", "map-inline"])
def test_pardag_maps_b_over_a_item_by_item(variant: str) -> None:
    wl = generate({"workload": "W7", "shape": "chain", "n": 4, "slots": 2, "high": 0.006})
    wf = Pardag(variant, 1e6).build(wl)
    assert {k: s.map_over for k, s in wf.steps.items()} == {"src": None, "a": "src", "b": "a"}
    result = wf.run(max_concurrency=2, executor="inline" if variant == "map-inline" else None)
    result.raise_for_status()
    assert result.outputs["b"] == [0, 1, 2, 3]
    assert result.outputs["b[2]"] == 2


def test_the_map_variants_refuse_another_workload() -> None:
    with pytest.raises(SystemExit, match="run W7 only, not W1"):
        Pardag("map-threads", 1e6).build(generate({"workload": "W1", "n": 3}))


def test_the_harness_runs_w7_on_each_map_engine() -> None:
    events: list[str] = []

    def reporter(event: str, **_data: Any) -> None:
        events.append(event)

    case = {"workload": "W7", "shape": "chain", "n": 3, "slots": 2, "high": 0.006}
    for engine in (Pardag("map-threads", 1e6), Stdlib("map", 1e6), Stdlib("dynamic", 1e6)):
        out = harness.run_case(engine, case, 0, {"repeats": 1}, reporter)  # type: ignore[arg-type]
        assert out["status"] == "ok" and len(out["runs"]) == 1
        assert out["params"]["barrier"] >= out["ideal"]
    assert events == ["run", "end"] * 3


def _result(
    engine: str, variant: str, case: dict[str, Any], build: float, run: float
) -> dict[str, Any]:
    wl = generate(case)
    return {
        "engine": engine,
        "variant": variant,
        "case": case,
        "status": "ok",
        "label": wl.label,
        "tasks": wl.size,
        "slots": wl.slots,
        "ideal": wl.ideal,
        "params": wl.params,
        "runs": [{"build_s": build, "run_s": run}],
    }


FAN_100K = {"workload": "W7", "n": 100_000, "slots": 2}
FAN_10K = {"workload": "W7", "n": 10_000, "slots": 8}
CHAIN = {"workload": "W7", "shape": "chain", "n": 8, "slots": 4}


def _doc() -> dict[str, Any]:
    return results_doc(
        [
            _result("pardag", "map-inline", FAN_100K, 0.125, 2.375),
            _result("pardag", "inline", FAN_100K, 1.0, 1.0),
            _result("pardag", "map-threads", FAN_10K, 0.125, 0.625),
            _result("stdlib", "map", FAN_10K, 0.0, 0.25),
            _result("pardag", "map-threads", CHAIN, 0.0, 0.375),
            {"engine": "stdlib", "variant": "dynamic", "case": CHAIN, "status": "timeout"},
        ]
    )


def test_the_targets_hold_each_map_to_its_reference() -> None:
    got = report_map.targets(report.Results(_doc()))
    assert [(t.split(":")[0], m, limit) for t, m, limit in got] == [
        ("W7 map over 100,000 no-op items (inline, 2 slots)", 1.25, 1.3),
        ("W7 map over 10,000 no-op items (threads, 8 slots)", 3.0, 1.3),
    ]
    doc = _doc()
    doc["results"] = doc["results"][1:]  # no map on inline: not measured
    assert report_map.targets(report.Results(doc))[0][1] is None


def test_the_page_shows_w7_and_its_targets(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    report.write(_doc(), page)
    text = page.read_text()
    section = text[text.index("### W7 mapped steps") :]
    assert "| **pardag** | map-inline | 100,000 | 2 | 0.125 | 2.500 | 1.25 |  |" in section
    assert "| **pardag** | map-threads | 10,000 | 8 | 0.125 | 0.750 |  | 3.00 |" in section
    assert "| stdlib | dynamic | 8 | timeout |" in section
    chain = generate(CHAIN)
    span = 0.375
    row = next(line for line in section.splitlines() if "| map-threads | 8 |" in line)
    assert row.split(" | ")[3:] == [
        report.num(span, "s"),
        report.num(span / chain.ideal, "ratio"),  # type: ignore[operator]
        report.num(span / chain.params["pipelined"], "ratio"),  # type: ignore[operator]
        report.num(span / chain.params["barrier"], "ratio") + " |",  # type: ignore[operator]
    ]
    assert "within 1.3x of 100,000 steps added up front (inline) | 1.25 | yes |" in text
    assert "| 3.00 (2.31x the target) | **no** |" in text
