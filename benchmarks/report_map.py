"""W7 (mapped steps) on the performance page: what expanding a map costs, and the chained map.

Two tables and two targets (issue 14): a map over 100,000 no-op items on ``inline`` within
1.3x of the same 100,000 steps added up front with ``wf.add`` (build + run), and a map over
10,000 items on threads within 1.3x of ``ThreadPoolExecutor.map`` over the list. The chained
map (``b`` maps over ``a``) shows whether ``b[k]`` starts once ``a[k]`` ends or only after all
of ``a``: its makespan against the lower bound and the two simulated schedules.
"""

from __future__ import annotations

from benchmarks.report import Result, Results, build_s, failure, num, ok, run_s, table, total_s

FAN_TARGETS = (
    (100_000, "map-inline", ("pardag", "inline"), "100,000 steps added up front (inline)"),
    (10_000, "map-threads", ("stdlib", "map"), "ThreadPoolExecutor.map over the list"),
)
"""(items, pardag's map variant, the reference it is held to, what that reference is)."""


def _fans(res: Results) -> list[Result]:
    return res.select("W7", lambda r: r["case"].get("shape", "fan") == "fan")


def _chains(res: Results) -> list[Result]:
    return res.select("W7", lambda r: r["case"].get("shape") == "chain")


def _total(rows: list[Result], n: int, engine: str, variant: str) -> float | None:
    for r in rows:
        if r["case"]["n"] == n and r["engine"] == engine and r["variant"] == variant and ok(r):
            return total_s(r)
    return None


def targets(res: Results) -> list[tuple[str, float | None, float]]:
    """(target, pardag's map over its reference in build + run seconds or None, 1.3)."""
    fans, out = _fans(res), []
    for n, variant, (engine, ref), what in FAN_TARGETS:
        mine, theirs = _total(fans, n, "pardag", variant), _total(fans, n, engine, ref)
        measured = mine / theirs if mine is not None and theirs else None
        slots = next((r["slots"] for r in fans if r["case"]["n"] == n), "?")
        out.append(
            (
                f"W7 map over {n:,} no-op items ({variant.removeprefix('map-')}, {slots} slots): "
                f"build + run within 1.3x of {what}",
                measured,
                1.3,
            )
        )
    return out


def _label(r: Result) -> str:
    return f"**{r['engine']}**" if r["engine"] == "pardag" else r["engine"]


def fan_table(res: Results) -> str:
    """Each fan run, with its build + run over the same steps added up front (pardag's map
    variants) and over ``ThreadPoolExecutor.map`` of the same size."""
    fans, rows = _fans(res), []
    for r in fans:
        n = r["case"]["n"]
        if not ok(r):
            rows.append([_label(r), r["variant"], f"{n:,}", str(r["case"]["slots"]), failure(r)])
            rows[-1] += [""] * 3
            continue
        mine = total_s(r)
        added = None
        if r["engine"] == "pardag" and r["variant"].startswith("map-"):
            added = _total(fans, n, "pardag", r["variant"].removeprefix("map-"))
        pool = _total(fans, n, "stdlib", "map")
        rows.append(
            [
                _label(r),
                r["variant"],
                f"{n:,}",
                str(r["slots"]),
                num(build_s(r), "s"),
                num(mine, "s"),
                num(mine / added, "ratio") if added else "",
                num(mine / pool, "ratio") if pool else "",
            ]
        )
    head = [
        "engine",
        "variant",
        "items",
        "slots",
        "build s",
        "build+run s",
        "x added up front",
        "x ThreadPoolExecutor.map",
    ]
    return table(head, rows)


def chain_table(res: Results) -> str:
    """Each chained-map run's makespan against the lower bound and the simulated schedules."""
    rows = []
    for r in _chains(res):
        if not ok(r):
            rows.append([_label(r), r["variant"], f"{r['case']['n']:,}", failure(r), "", "", ""])
            continue
        span, params = run_s(r), r["params"]
        rows.append(
            [
                _label(r),
                r["variant"],
                f"{params['n']:,}",
                num(span, "s"),
                num(span / r["ideal"], "ratio"),
                num(span / params["pipelined"], "ratio"),
                num(span / params["barrier"], "ratio"),
            ]
        )
    head = ["engine", "variant", "items", "makespan s", "/ LB", "/ pipelined", "/ barrier"]
    return table(head, rows)


def section(res: Results) -> list[str]:
    """The page's W7 subsection."""
    lines = [
        "### W7 mapped steps",
        "",
        "**Expanding a map.** A source step returns a list of n items; `p` maps over it with a "
        'no-op (`wf.add("p", fn, map_over="src")`, variants `map-*`). Held against '
        "the same n steps added up front, each depending on the source (pardag's `inline` and "
        "`threads`, the stdlib loop, Dask), and against `ThreadPoolExecutor.map` over the list "
        "with as many threads as pardag's slots (`stdlib map`). Build is `Workflow.add` and "
        "`validate()` (two steps for a map); the map's instances are made in the run.",
        "",
        fan_table(res),
        "",
    ]
    chains = [r for r in _chains(res) if ok(r)]
    if not chains:
        return [*lines, "The chained map did not run.", ""]
    r = chains[0]
    p, slots = r["params"], r["slots"]
    lines += [
        f"**Chained map.** `a` maps over {p['n']} items, `b` maps over `a` (`b[k]` takes "
        f"`a[k]`'s output); every instance sleeps a duration drawn uniformly from "
        f"{p['low'] * 1e3:.0f} to {p['high'] * 1e3:.0f} ms "
        f"(seed 0, apart for `a[k]` and `b[k]`); {slots} slots. Lower bound (LB) = max(longest "
        f"a[k] + b[k], work / slots) = {num(r['ideal'], 's')} s; *pipelined* = "
        f"{num(p['pipelined'], 's')} s, simulated: a's in item order, then each free slot takes "
        f"the b[k] whose a[k] ended first; *barrier* = {num(p['barrier'], 's')} s, simulated: "
        "all of a, then all of b (Airflow's mapped tasks), each list-scheduled in item order. "
        "`stdlib map` runs that barrier for real (`ThreadPoolExecutor.map` a stage at a time); "
        "`stdlib dynamic`, pardag's `threads-noest` and Dask run the same steps added up front, "
        "so b[k] may start once a[k] ends. A makespan near the barrier's means the map waits "
        "for the whole of `a`.",
        "",
        chain_table(res),
        "",
    ]
    return lines
