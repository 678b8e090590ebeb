"""The dask series on the performance page: pardag's ``dask`` executor against ``distributed``'s
own ``Client.submit`` graph, on one shared cluster (``benchmarks/dask_cluster.py``).

Two tables and three targets (issue 15): per-step overhead on W1 and W2 within 1.2x of
distributed's, and W4's makespan no longer than distributed's (pardag's critical-path order
against its scheduler's submission order); then how many steps per second one runner feeds
the cluster, with the runner's memory and bytes per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from benchmarks.report import Result, Results, failure, num, ok, table, tasks_cell

PARDAG, DIRECT = ("pardag", "dask"), ("distributed", "cluster")
FEEDS = (("pardag", "dask-feed"), ("distributed", "cluster-feed"))


def _series(res: Results) -> list[Result]:
    return [r for r in res.all if r["case"].get("series") == "dask"]


def _find(res: Results, engine: tuple[str, str], case: dict[str, object]) -> Result | None:
    for r in _series(res):
        if (r["engine"], r["variant"]) == engine and r["case"] == case:
            return r
    return None


def _totals(r: Result) -> list[float]:
    return sorted(run["build_s"] + run["run_s"] for run in r["runs"])


def _spans(r: Result) -> list[float]:
    return sorted(run["run_s"] for run in r["runs"])


def _median(xs: list[float]) -> float:
    return xs[(len(xs) - 1) // 2]  # the lower of two, as report.median_run


class Figure(NamedTuple):
    """One row's figure: what it is, its values from a result (sorted), and its unit."""

    name: str
    values: Callable[[Result], list[float]]
    kind: str


def _figure(r: Result) -> Figure:
    if r["workload"] in ("W1", "W2") and r["tasks"] > 1:
        return Figure("us/step", lambda x: [t / x["tasks"] * 1e6 for t in _totals(x)], "us")
    if r["workload"] in ("W1", "W2"):
        return Figure("ms per run", lambda x: [t * 1e3 for t in _totals(x)], "us")
    return Figure("makespan / LB", lambda x: [t / x["ideal"] for t in _spans(x)], "ratio")


def _what(r: Result) -> str:
    if r["workload"] == "W2" and r["tasks"] == 1:
        return "one step (a run's fixed cost)"
    if r["workload"] == "wfcommons":
        return f"WfCommons {r['params']['short']} ({r['tasks']} sleeps)"
    if r["workload"] == "W4":
        return f"W4 ({r['tasks']} sleeps, LB {num(r['ideal'], 's')} s)"
    return f"{r['workload']} ({r['tasks']:,} no-ops)"


def _named(case: dict[str, object]) -> str:
    """A case that did not run, by its parameters."""
    return " ".join(str(v) for k, v in case.items() if k not in ("series", "slots"))


def ratio(res: Results, workload: str) -> float | None:
    """pardag's median over distributed's, for the first case of ``workload`` with steps."""
    for mine in _series(res):
        if (mine["engine"], mine["variant"]) != PARDAG or mine["case"]["workload"] != workload:
            continue
        if not ok(mine) or mine["tasks"] <= 1:
            continue
        theirs = _find(res, DIRECT, mine["case"])
        if theirs is None or not ok(theirs):
            return None
        fig = _figure(mine)
        return _median(fig.values(mine)) / _median(fig.values(theirs))
    return None


def targets(res: Results) -> list[tuple[str, float | None, float]]:
    """(target, pardag over distributed or None, the limit)."""
    return [
        (
            "Dask W1 wide: per-step overhead within 1.2x of distributed's Client.submit",
            ratio(res, "W1"),
            1.2,
        ),
        (
            "Dask W2 chain: per-step overhead within 1.2x of distributed's Client.submit",
            ratio(res, "W2"),
            1.2,
        ),
        ("Dask W4: makespan no longer than distributed's Client.submit", ratio(res, "W4"), 1.0),
    ]


def versus_table(res: Results) -> str:
    """Each case of the series: pardag's and distributed's min and median, and their ratio."""
    rows = []
    for mine in _series(res):
        if (mine["engine"], mine["variant"]) != PARDAG:
            continue
        theirs = _find(res, DIRECT, mine["case"])
        if not ok(mine) or theirs is None or not ok(theirs):
            bad = mine if not ok(mine) else theirs
            why = failure(bad) if bad is not None else "distributed did not run"
            rows.append([_named(mine["case"]), why, "", "", "", "", ""])
            continue
        fig = _figure(mine)
        a, b = fig.values(mine), fig.values(theirs)
        rows.append(
            [
                _what(mine),
                fig.name,
                num(a[0], fig.kind),
                num(_median(a), fig.kind),
                num(b[0], fig.kind),
                num(_median(b), fig.kind),
                num(_median(a) / _median(b), "ratio"),
            ]
        )
    head = [
        "case",
        "figure",
        "pardag min",
        "pardag median",
        "distributed min",
        "distributed median",
        "pardag / distributed",
    ]
    return table(head, rows)


def feed_table(res: Results) -> str:
    """Steps per second fed to the cluster, and the runner's (client's) memory and traffic."""
    rows = []
    for r in _series(res):
        if (r["engine"], r["variant"]) not in FEEDS:
            continue
        if not ok(r):
            rows.append([r["engine"], tasks_cell(r), failure(r), "", "", "", ""])
            continue
        run, n = r["runs"][0], r["tasks"]
        grown = run["peak_self"] - run["base_self"] if run.get("peak_self") else None
        rows.append(
            [
                f"**{r['engine']}**" if r["engine"] == "pardag" else r["engine"],
                f"{n:,}",
                f"{n / (run['build_s'] + run['run_s']):,.0f}",
                num(grown, "mib") if grown is not None else "",
                f"{grown / n / 1024:.1f}" if grown is not None else "",
                f"{run.get('bytes_written', 0) / n:,.0f}",
                f"{run.get('bytes_read', 0) / n:,.0f}",
            ]
        )
    head = [
        "engine",
        "steps",
        "steps/s",
        "peak RSS above baseline MiB",
        "KiB/step",
        "bytes sent/step",
        "bytes received/step",
    ]
    return table(head, rows)


def section(res: Results) -> list[str]:
    """The page's subsection on the dask series, or a line saying it did not run."""
    if not _series(res):
        return [
            "### Steps on a Dask cluster",
            "",
            "Not run in this benchmark run (`python -m benchmarks.run --workloads dask`).",
            "",
        ]
    cluster = res.doc.get("dask_cluster") or {}
    shape = (
        f"{cluster['workers']} worker processes x {cluster['threads']} threads"
        if cluster
        else "worker processes"
    )
    version = res.doc.get("versions", {}).get("distributed") or "?"
    return [
        "### Steps on a Dask cluster",
        "",
        f"One `LocalCluster` of {shape} (distributed {version}), started once by the "
        "benchmark in a process of its own; on it, one job after the other, pardag "
        '(`executor="dask", dask_address=...`, `max_concurrency` = the cluster\'s threads) and '
        "the same graph written with distributed's own `client.submit(fn, *dep_futures, "
        "key=..., pure=False)` from one connected `Client`. Each in a fresh process, 3 runs, "
        "min and median; per-step figures are build + run over steps (pardag's build is "
        "`Workflow.add` and `validate()`; its run connects its own client and closes it, as "
        "every `wf.run` does: the one-step row shows that fixed cost). Sleep steps carry "
        "their duration as pardag's `estimate=`. The runner, scheduler and workers share "
        "this machine's cores.",
        "",
        versus_table(res),
        "",
        "**Feeding the cluster.** W1 at two sizes, once each in a fresh process: steps per "
        "second one runner (or one distributed client) gets through, the peak RSS of its "
        "process above the RSS before the build (the kernel's high-water mark; the cluster is "
        "in other processes), and the bytes its TCP comms wrote and read, per step.",
        "",
        feed_table(res),
        "",
        *_growth_line(res),
    ]


def growth(res: Results, engine: tuple[str, str]) -> tuple[int, int, float] | None:
    """(smaller size, larger size, bytes a step the peak RSS grew by between them)."""
    sizes = {
        r["tasks"]: r["runs"][0]["peak_self"] - r["runs"][0]["base_self"]
        for r in _series(res)
        if (r["engine"], r["variant"]) == engine and ok(r) and r["runs"][0].get("peak_self")
    }
    if len(sizes) < 2:
        return None
    small, big = min(sizes), max(sizes)
    return small, big, (sizes[big] - sizes[small]) / (big - small)


def _growth_line(res: Results) -> list[str]:
    found = [(e, growth(res, (e, v))) for e, v in FEEDS]
    parts = [f"{g[2] / 1024:.1f} KiB ({e})" for e, g in found if g is not None]
    if not parts:
        return []
    small, big = next(g for _, g in found if g is not None)[:2]
    return [
        f"From {small:,} to {big:,} steps the peak grew by {' and '.join(parts)} a step.",
        "",
    ]
