"""The dask benchmark series (issue 15): pardag's ``dask`` executor against distributed's own
``Client.submit`` graph on one shared cluster, at tiny sizes on a real ``LocalCluster``. It
checks that both engines run the same graph and that the series fills its part of the
performance page; no timing is checked here."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from benchmarks import dask_cluster, harness, report, report_dask, run, tasks
from benchmarks.engines.distributed import Distributed
from benchmarks.engines.pardag import Pardag
from benchmarks.workloads import generate

from tests.bench_support import results_doc

W4_TINY = {"workload": "W4", "n": 24, "layers": 4, "mean": 0.002, "slots": 2, "series": "dask"}
CASES = [
    {"workload": "W1", "n": 6, "slots": 2, "series": "dask"},
    {"workload": "W2", "n": 4, "slots": 2, "series": "dask"},
    {"workload": "W2", "n": 1, "slots": 2, "series": "dask"},
    W4_TINY,
]
FEED = [{"workload": "W1", "n": n, "slots": 2, "series": "dask"} for n in (20, 40)]


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """One real cluster for the module, started the way the driver starts it."""
    with dask_cluster.started(workers=1, threads=2) as found:
        before = os.environ.get(dask_cluster.ADDRESS_ENV)
        os.environ[dask_cluster.ADDRESS_ENV] = found
        yield found
        if before is None:
            del os.environ[dask_cluster.ADDRESS_ENV]
        else:
            os.environ[dask_cluster.ADDRESS_ENV] = before


def _scheduler_edges(dask_scheduler: Any) -> dict[str, list[str]]:
    return {k: sorted(d.key for d in ts.dependencies) for k, ts in dask_scheduler.tasks.items()}


@pytest.mark.parametrize("case", [CASES[0], W4_TINY], ids=["W1", "W4"])
def test_the_direct_graph_is_pardags_graph(address: str, case: dict[str, Any]) -> None:
    wl = generate(case)
    direct = Distributed("cluster", 1e6)
    direct.setup(wl)
    assert direct.client is not None
    futures = direct.submit(direct.client, wl, "t")
    got = {k: f.result() for k, f in futures.items()}
    edges = direct.client.run_on_scheduler(_scheduler_edges)  # held futures: tasks kept
    direct.close()

    wf = Pardag("dask", 1e6).build(wl)
    result = wf.run(executor="dask", dask_address=address, max_concurrency=2)
    result.raise_for_status()

    # the same edges: pardag's workflow, and the tasks distributed's scheduler was given
    want = {s.id: sorted(s.deps) for s in wl.steps}
    assert {k: sorted(s.depends_on) for k, s in wf.steps.items()} == want
    assert {k.removesuffix("-t"): [d.removesuffix("-t") for d in v] for k, v in edges.items()} == (
        want
    )
    # the same work in each step, and the same outputs from every step
    for s in wl.steps:
        fn = wf.steps[s.id].fn
        if s.kind == "sleep":
            assert isinstance(fn, functools.partial) and fn.func is tasks.sleep
            assert (fn.func, *fn.args) == direct.call(s) == (tasks.sleep, s.duration)
        else:
            assert (fn, direct.call(s)) == (tasks.noop, (tasks.noop_args,))
    assert dict(result.outputs) == got == dict.fromkeys(want)


def test_the_series_runs_and_fills_its_part_of_the_page(address: str, tmp_path: Path) -> None:
    results = []
    jobs = [("pardag", "dask", CASES), ("distributed", "cluster", CASES)]
    jobs += [("pardag", "dask-feed", FEED), ("distributed", "cluster-feed", FEED)]
    for engine_name, variant, cases in jobs:
        engine = (Pardag if engine_name == "pardag" else Distributed)(variant, 1e6)
        for k, case in enumerate(cases):  # the feed's sizes in one process here, not two
            spec = {"repeats": 1, "memory": variant.endswith("feed")}
            out = harness.run_case(engine, case, k, spec, lambda *_a, **_k: None)
            results.append({**out, "engine": engine_name, "variant": variant})
        engine.close()
    feeds = [r["runs"][0] for r in results if r["variant"].endswith("feed")]
    assert all(run["bytes_written"] > 0 and run["bytes_read"] > 0 for run in feeds)
    assert all(run["peak_self"] >= run["base_self"] for run in feeds)

    doc = results_doc(results, dask_cluster={"workers": 1, "threads": 2})
    page = tmp_path / "performance.md"
    report.write(doc, page)
    text = page.read_text()
    part = text[text.index("### Steps on a Dask cluster") :]
    assert "1 worker processes x 2 threads (distributed 2026" in part
    for what in ("| W1 (8 no-ops) | us/step |", "| W2 (4 no-ops) | us/step |"):
        assert what in part
    assert "| one step (a run's fixed cost) | ms per run |" in part
    assert "| W4 (24 sleeps, LB " in part and "| makespan / LB |" in part
    assert "| **pardag** | 22 |" in part and "| distributed | 42 |" in part
    assert "From 22 to 42 steps the peak grew by " in part and " KiB (distributed) a step." in part
    for target, measured, _limit in report_dask.targets(report.Results(doc)):
        assert measured is not None and measured > 0, target
        assert f"| {target} | " in text


def _run(total: float) -> dict[str, float]:
    return {"build_s": 0.0, "run_s": total}


def test_the_ratio_is_of_medians_and_a_failed_side_is_not_measured() -> None:
    case = {"workload": "W2", "n": 10, "slots": 2, "series": "dask"}

    def result(engine: str, variant: str, runs: list[float]) -> dict[str, Any]:
        return {
            "engine": engine,
            "variant": variant,
            "case": case,
            "status": "ok",
            "label": "W2 n=10",
            "workload": "W2",
            "tasks": 10,
            "runs": [_run(t) for t in runs],
        }

    doc = results_doc(
        [
            result("pardag", "dask", [0.3, 0.1, 0.2, 0.9]),  # median: the lower middle, 0.2
            result("distributed", "cluster", [0.1, 0.1, 0.4]),
        ]
    )
    assert report_dask.ratio(report.Results(doc), "W2") == pytest.approx(2.0)
    row = report_dask.versus_table(report.Results(doc)).splitlines()[-1]
    assert row == "| W2 (10 no-ops) | us/step | 10,000 | 20,000 | 10,000 | 10,000 | 2.00 |"
    doc["results"][1] = {**doc["results"][1], "status": "timeout", "error": "timeout (> 60 s)"}
    assert report_dask.ratio(report.Results(doc), "W2") is None
    assert "| W2 10 | timeout (> 60 s) |" in report_dask.versus_table(report.Results(doc))


def test_the_series_is_picked_by_its_own_name() -> None:
    dask_case = {"workload": "W1", "n": 10, "series": "dask"}
    assert run.selected(dask_case, {"dask"}) and not run.selected(dask_case, {"W1"})
    assert run.selected({"workload": "W1", "n": 10}, {"W1"})
    jobs = [j for j in run.plan("quick") if any(c.get("series") == "dask" for c in j.cases)]
    assert [(j.engine, j.variant, j.repeats) for j in jobs] == [
        ("pardag", "dask", 3),
        ("distributed", "cluster", 3),
        ("pardag", "dask-feed", 1),
        ("distributed", "cluster-feed", 1),
        ("pardag", "dask-feed", 1),
        ("distributed", "cluster-feed", 1),
    ]
    assert jobs[0].cases == jobs[1].cases and jobs[2].cases == jobs[3].cases
    assert [j.cases[0]["n"] for j in jobs[2:]] == [1_000, 1_000, 5_000, 5_000]
    assert all(j.memory for j in jobs[2:])
    threads = dask_cluster.WORKERS * dask_cluster.THREADS
    assert {c["slots"] for j in jobs for c in j.cases} == {threads}
