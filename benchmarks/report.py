"""Writes ``docs/performance.md`` and its plots from a results JSON of ``benchmarks.run``.

    python -m benchmarks.report [benchmarks/results/latest.json] [docs/performance.md]

Regenerating the page never loses hand-written text: ``benchmarks/profile-notes.md``, when it
exists, is included as the section on why targets are missed.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.workloads import REPO

MIB = 1024**2
ENGINE_ORDER = ["pardag", "stdlib", "dask", "distributed", "prefect", "ray"]
NOTES_FILE = REPO / "benchmarks" / "profile-notes.md"

Result = dict[str, Any]


# -- picking figures -----------------------------------------------------------------------------


def ok(r: Result) -> bool:
    return r.get("status") == "ok" and bool(r.get("runs"))


def median_run(r: Result) -> dict[str, float]:
    """The run with the median total (the lower one of two)."""
    runs = sorted(r["runs"], key=lambda x: x["build_s"] + x["run_s"])
    return runs[(len(runs) - 1) // 2]


def build_s(r: Result) -> float:
    return median_run(r)["build_s"]


def run_s(r: Result) -> float:
    return median_run(r)["run_s"]


def total_s(r: Result) -> float:
    m = median_run(r)
    return m["build_s"] + m["run_s"]


def per_task_us(r: Result, what: Callable[[Result], float] = total_s) -> float:
    return what(r) / r["tasks"] * 1e6


def ratio(r: Result) -> float:
    return run_s(r) / r["ideal"]


def memory(r: Result, key: str) -> float | None:
    """Median over runs of peak minus baseline for ``self`` or ``tree``, in bytes."""
    vals = [
        run[f"peak_{key}"] - run[f"base_{key}"]
        for run in r.get("runs", [])
        if run.get(f"peak_{key}") and run.get(f"base_{key}")
    ]
    return statistics.median(vals) if vals else None


def base(r: Result, key: str) -> float | None:
    vals = [run[f"base_{key}"] for run in r.get("runs", []) if run.get(f"base_{key}")]
    return statistics.median(vals) if vals else None


def geomean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# -- formatting ----------------------------------------------------------------------------------


def num(x: float | None, kind: str = "us") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if kind == "s":
        return f"{x:,.0f}" if x >= 1000 else f"{x:.3f}" if x < 10 else f"{x:.2f}"
    if kind == "ratio":
        return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"
    if kind == "mib":
        return f"{x / MIB:,.0f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 0.01 else f"{x:.2g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def failure(r: Result) -> str:
    status = r.get("status", "?")
    error = (r.get("error") or "").replace("|", "/").replace("\n", " ")
    if status in ("timeout", "memory-limit") or error.startswith(status):
        return error or status
    return f"{status}: {error}" if error else status


def tasks_cell(r: Result) -> str:
    n = r.get("tasks")
    if n is None:
        n = r.get("case", {}).get("n")
        return f"n={n:,}" if isinstance(n, int) else ""
    return f"{n:,}"


# -- selecting results ---------------------------------------------------------------------------


class Results:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.all: list[Result] = doc["results"]

    def select(
        self, workload: str, pred: Callable[[Result], bool] = lambda r: True
    ) -> list[Result]:
        rows = [
            r
            for r in self.all
            if r["case"]["workload"] == workload and r["case"].get("series") is None and pred(r)
        ]
        order = {e: i for i, e in enumerate(ENGINE_ORDER)}
        return sorted(rows, key=lambda r: order.get(r["engine"], 99))  # stable: plan order

    def scaling(self) -> list[Result]:
        return [r for r in self.all if r["case"]["workload"] == "W5"]

    def one(
        self,
        workload: str,
        engine: str,
        variant: str,
        pred: Callable[[Result], bool] = lambda r: True,
    ) -> Result | None:
        for r in self.select(workload, pred):
            if r["engine"] == engine and r["variant"] == variant:
                return r
        return None


def size_is(n: int) -> Callable[[Result], bool]:
    return lambda r: r["case"].get("n") == n


def w3_unlimited(r: Result) -> bool:
    return r["case"].get("slots", 0) >= r["case"].get("n", 0)


# -- sections ------------------------------------------------------------------------------------


def overhead_table(res: Results, workload: str, title: str) -> str:
    rows_in = res.select(workload)
    stdlib = next(
        (r for r in rows_in if r["engine"] == "stdlib" and r["variant"] == "dynamic" and ok(r)),
        None,
    )
    ref = per_task_us(stdlib) if stdlib else None
    rows = []
    for r in rows_in:
        if not ok(r):
            rows.append([r["engine"], r["variant"], tasks_cell(r), failure(r), "", "", "", ""])
            continue
        us = per_task_us(r)
        rows.append(
            [
                f"**{r['engine']}**" if r["engine"] == "pardag" else r["engine"],
                r["variant"],
                f"{r['tasks']:,}",
                num(us),
                num(per_task_us(r, build_s)),
                num(per_task_us(r, run_s)),
                num(us / ref, "ratio") if ref else "",
                num(r.get("startup_s"), "s") + ("" if r.get("first_in_process", True) else " *"),
            ]
        )
    head = [
        "engine",
        "variant",
        "tasks",
        "us/task total",
        "us/task build",
        "us/task run",
        "x stdlib",
        "startup + warm-up s",
    ]
    text = f"### {title}\n\n" + table(head, rows)
    if any(not r.get("first_in_process", True) for r in rows_in):
        text += (
            "\n\n\\* run in the same process after other workloads (quick mode): the engine "
            "had started already, so this is the set-up and warm-up of this workload only."
        )
    return text


def makespan_table(res: Results, rows_in: list[Result], title: str, extra: bool = False) -> str:
    rows = []
    for r in rows_in:
        label = f"**{r['engine']}**" if r["engine"] == "pardag" else r["engine"]
        if not ok(r):
            rows.append(
                [label, r["variant"], tasks_cell(r), failure(r), "", "", ""]
                + (["", ""] if extra else [])
            )
            continue
        row = [
            label,
            r["variant"],
            f"{r['tasks']:,}",
            num(run_s(r), "s"),
            num(r["ideal"], "s"),
            num(ratio(r), "ratio"),
            num(build_s(r), "s") if build_s(r) >= 1e-3 else f"{build_s(r):.1g}",
        ]
        if extra:
            row += [num(r["critical_path"], "s"), num(r["work"] / r["slots"], "s")]
        rows.append(row)
    head = ["engine", "variant", "tasks", "makespan s", "ideal/LB s", "ratio", "build s"]
    if extra:
        head += ["CP s", f"work/{rows_in[0]['slots'] if rows_in else 8} s"]
    return f"### {title}\n\n" + table(head, rows)


def w5_table(res: Results, n: int, title: str) -> str:
    rows_in = [
        r
        for r in res.select("W5")
        if r["case"].get("n") == n or (r["engine"] == "prefect" and n == 200_000)
    ]
    stdlib = next(
        (r for r in rows_in if r["engine"] == "stdlib" and r["variant"] == "dynamic" and ok(r)),
        None,
    )
    ref = per_task_us(stdlib) if stdlib else None
    rows = []
    for r in rows_in:
        label = f"**{r['engine']}**" if r["engine"] == "pardag" else r["engine"]
        if not ok(r):
            peak = r.get("peak_tree")
            rows.append(
                [
                    label,
                    r["variant"],
                    tasks_cell(r),
                    failure(r),
                    "",
                    "",
                    "",
                    "",
                    "",
                    num(peak, "mib") if peak else "",
                    "",
                ]
            )
            continue
        us = per_task_us(r)
        rows.append(
            [
                label,
                r["variant"],
                f"{r['tasks']:,}",
                num(total_s(r), "s"),
                num(us),
                num(us / ref, "ratio") if ref else "",
                num(memory(r, "self"), "mib"),
                num(base(r, "self"), "mib"),
                num(memory(r, "tree"), "mib"),
                num(max((x.get("peak_tree") or 0) for x in r["runs"]) or None, "mib"),
                num(base(r, "tree"), "mib"),
            ]
        )
    head = [
        "engine",
        "variant",
        "tasks",
        "build+run s",
        "us/task",
        "x stdlib",
        "peak RSS self above base MiB",
        "base RSS self MiB",
        "peak RSS tree above base MiB",
        "peak RSS tree MiB",
        "base RSS tree MiB",
    ]
    return f"### {title}\n\n" + table(head, rows)


def wfcommons_section(res: Results) -> str:
    rows_in = res.select("wfcommons")
    if not rows_in:
        return (
            "### Real workflow shapes (WfCommons)\n\nNot run: no instances found (set "
            "`PARDAG_BENCH_WFCOMMONS` to a folder of WfFormat JSON files; by default "
            "[`benchmarks/wfcommons`](../benchmarks/wfcommons)).\n"
        )
    instances: dict[str, Result] = {}
    for r in rows_in:
        if ok(r):
            instances.setdefault(r["params"]["short"], r)
    shorts = sorted(instances)
    info_rows = []
    for short in shorts:
        r = instances[short]
        info_rows.append(
            [
                short,
                f"{r['tasks']:,}",
                f"{r['params']['edges']:,}",
                num(r["work"], "s"),
                num(r["critical_path"], "s"),
                num(max(r["critical_path"], r["work"] / 4), "s"),
                num(max(r["critical_path"], r["work"] / 16), "s"),
            ]
        )
    out = [
        "### Real workflow shapes (WfCommons)",
        "",
        "Each instance's recorded runtimes scaled so that its total work is "
        f"{num(next(iter(instances.values()))['work'], 's') if instances else '?'} s, replayed "
        "as sleep steps; ratio = makespan / max(critical path, work / slots).",
        "",
        table(
            [
                "instance",
                "tasks",
                "edges",
                "work s",
                "critical path s",
                "LB 4 slots s",
                "LB 16 slots s",
            ],
            info_rows,
        ),
    ]
    variants: list[tuple[str, str]] = []
    for r in rows_in:
        if (r["engine"], r["variant"]) not in variants:
            variants.append((r["engine"], r["variant"]))
    for slots in (4, 16):
        rows = []
        for engine, variant in variants:
            cells, ratios = [], []
            for short in shorts:
                r = next(
                    (
                        x
                        for x in rows_in
                        if x["engine"] == engine
                        and x["variant"] == variant
                        and x["slots"] == slots
                        and x.get("params", {}).get("short") == short
                    ),
                    None,
                ) or next(
                    (
                        x
                        for x in rows_in
                        if x["engine"] == engine
                        and x["variant"] == variant
                        and x["case"].get("slots") == slots
                        and x["case"].get("instance", "").startswith(short)
                    ),
                    None,
                )
                if r is None:
                    cells.append("")
                elif ok(r):
                    ratios.append(ratio(r))
                    cells.append(num(ratio(r), "ratio"))
                else:
                    cells.append(r.get("status", "?"))
            label = f"**{engine}**" if engine == "pardag" else engine
            gm = num(geomean(ratios), "ratio") if len(ratios) == len(shorts) else ""
            rows.append([label, variant, *cells, gm])
        out += [
            "",
            f"Makespan / lower bound, {slots} slots:",
            "",
            table(["engine", "variant", *shorts, "geo. mean"], rows),
        ]
    return "\n".join(out)


def scaling_section(res: Results) -> tuple[str, dict[tuple[str, str], dict[int, float]]]:
    series: dict[tuple[str, str], dict[int, float]] = {}
    for r in res.scaling():
        if r["engine"] not in ("pardag", "stdlib") or not ok(r):
            continue
        if r["engine"] == "stdlib" and r["variant"] != "dynamic":
            continue
        series.setdefault((r["engine"], r["variant"]), {})[r["tasks"]] = per_task_us(r)
    sizes = sorted({n for s in series.values() for n in s})
    rows = []
    for (engine, variant), pts in series.items():
        row = [f"**{engine}**" if engine == "pardag" else engine, variant]
        row += [num(pts.get(n)) for n in sizes]
        if 10_000 in pts and max(sizes) in pts and max(sizes) > 10_000:
            row.append(num(pts[max(sizes)] / pts[10_000], "ratio"))
        else:
            row.append("")
        rows.append(row)
    head = ["engine", "variant", *(f"{n:,}" for n in sizes), f"{max(sizes, default=0):,} / 10,000"]
    text = (
        "### Per-step overhead against graph size\n\n"
        "W5's shape (random DAG, mean in-degree 2, no-op steps, 2 slots) at each size; build + "
        "run microseconds per step. 200,000 and 1,000,000 are the W5 runs above.\n\n"
        + table(head, rows)
    )
    return text, series


# -- targets ------------------------------------------------------------------------------------


def targets(res: Results) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(target: str, measured: float | None, limit: float, fmt: str, what: str = "") -> None:
        if measured is None:
            rows.append([target, "not measured" + (f" ({what})" if what else ""), "-"])
            return
        met = measured <= limit
        text = {
            "us": f"{measured:.1f} us",
            "ratio": f"{measured:.2f}",
            "s": f"{measured:.2f} s",
            "mib": f"{measured / MIB:,.0f} MiB",
        }[fmt]
        if not met:
            text += f" ({measured / limit:.2f}x the target)"
        rows.append([target, text, "yes" if met else "**no**"])

    def us(workload: str, engine: str, variant: str) -> float | None:
        r = res.one(workload, engine, variant)
        return per_task_us(r) if r and ok(r) else None

    for w, name in (("W1", "W1 wide"), ("W2", "W2 chain")):
        add(f"{name}: async steps <= 12 us/step (build + run)", us(w, "pardag", "async"), 12, "us")
        add(
            f"{name}: built-in kinds <= 5 us/step (build + run)",
            us(w, "pardag", "builtin"),
            5,
            "us",
        )
        add(
            f"{name}: durable (SQLite, inline) <= 50 us/step (build + run)",
            us(w, "pardag", "durable"),
            50,
            "us",
        )
        ref = us(w, "stdlib", "dynamic")
        mine = us(w, "pardag", "threads")
        if ref is None or mine is None:
            add(f"{name}: threads no slower than the stdlib loop", None, 1, "us")
        else:
            met = mine <= ref
            text = f"{mine:.1f} us vs {ref:.1f} us"
            if not met:
                text += f" ({mine / ref:.2f}x the stdlib loop)"
            rows.append(
                [
                    f"{name}: threads no slower than the stdlib loop (then lower)",
                    text,
                    "yes" if met else "**no**",
                ]
            )

    def makespan(
        workload: str, variant: str, pred: Callable[[Result], bool] = lambda r: True
    ) -> float | None:
        r = res.one(workload, "pardag", variant, pred)
        return ratio(r) if r and ok(r) else None

    unlimited = w3_unlimited
    limited = lambda r: not w3_unlimited(r)  # noqa: E731
    add(
        "W3 unlimited: async within 1.10x of ideal",
        makespan("W3", "async", unlimited),
        1.10,
        "ratio",
    )
    add(
        "W3 limit 100: async within 1.05x of ideal", makespan("W3", "async", limited), 1.05, "ratio"
    )
    add(
        "W3 unlimited: threads within 1.5x of ideal",
        makespan("W3", "threads", unlimited),
        1.5,
        "ratio",
    )
    add("W4: dynamic (async, estimates) within 1.08x of LB", makespan("W4", "async"), 1.08, "ratio")
    add(
        "W4: dynamic (async, no estimates) within 1.08x of LB",
        makespan("W4", "async-noest"),
        1.08,
        "ratio",
    )
    for variant in ("async", "threads", "inline"):
        for n, secs, mem in ((200_000, 3.0, 150 * MIB), (1_000_000, 20.0, 1024 * MIB)):
            r = res.one("W5", "pardag", variant, size_is(n))
            what = "make bench-full" if n == 1_000_000 else ""
            size = f"{n // 1000}k" if n < 1_000_000 else "1M"
            add(
                f"W5 {size} ({variant}): build + run < {secs:.0f} s",
                total_s(r) if r and ok(r) else None,
                secs,
                "s",
                what,
            )
            add(
                f"W5 {size} ({variant}): < {mem / MIB:,.0f} MiB above baseline",
                memory(r, "self") if r and ok(r) else None,
                mem,
                "mib",
                what,
            )
    add("W6: processes within 1.05x of ideal", makespan("W6", "processes"), 1.05, "ratio")
    from benchmarks import report_dask, report_map  # they import this module: not at the top

    for target, measured, limit in report_map.targets(res) + report_dask.targets(res):
        add(target, measured, limit, "ratio")
    for variant in ("async", "threads", "inline"):
        pts = {
            r["tasks"]: per_task_us(r)
            for r in res.scaling()
            if r["engine"] == "pardag" and r["variant"] == variant and ok(r)
        }
        big = max(pts, default=0)
        if 10_000 in pts and big >= 1_000_000:
            add(
                f"Linear cost ({variant}): us/step at 1M within 1.5x of 10k",
                pts[big] / pts[10_000],
                1.5,
                "ratio",
            )
        else:
            add(
                f"Linear cost ({variant}): us/step at 1M within 1.5x of 10k",
                None,
                1.5,
                "ratio",
                "make bench-full",
            )
    return rows


def versus(res: Results) -> list[list[str]]:
    """pardag's best variant against the best anchor, per workload."""
    rows = []

    def best(rs: list[Result], key: Callable[[Result], float]) -> Result | None:
        good = [r for r in rs if ok(r)]
        return min(good, key=key) if good else None

    specs: list[tuple[str, list[Result], Callable[[Result], float], str]] = []
    for w in ("W1", "W2"):
        specs.append((w, res.select(w), per_task_us, "us/step"))
    specs.append(("W3 unlimited", res.select("W3", w3_unlimited), ratio, "ratio"))
    specs.append(("W3 limit", res.select("W3", lambda r: not w3_unlimited(r)), ratio, "ratio"))
    specs.append(("W4", res.select("W4"), ratio, "ratio"))
    specs.append(
        (
            "W5 200k",
            res.select("W5", lambda r: r["case"].get("n") in (200_000, 2_000)),
            per_task_us,
            "us/step",
        )
    )
    specs.append(("W6", res.select("W6"), ratio, "ratio"))
    for name, rs, key, unit in specs:
        mine = best([r for r in rs if r["engine"] == "pardag"], key)
        theirs = best([r for r in rs if r["engine"] != "pardag"], key)
        if mine is None or theirs is None:
            continue
        fmt = "us" if unit == "us/step" else "ratio"
        beat = key(mine) <= key(theirs)
        rows.append(
            [
                name,
                unit,
                f"{num(key(mine), fmt)} ({mine['variant']})",
                f"{num(key(theirs), fmt)} ({theirs['engine']} {theirs['variant']})",
                num(key(mine) / key(theirs), "ratio"),
                "yes" if beat else "**no**",
            ]
        )
    for slots in (4, 16):
        rs = [r for r in res.select("wfcommons") if r["slots"] == slots and ok(r)]
        groups: dict[tuple[str, str], list[float]] = {}
        for r in rs:
            groups.setdefault((r["engine"], r["variant"]), []).append(ratio(r))
        n = max((len(v) for v in groups.values()), default=0)
        full = {k: geomean(v) for k, v in groups.items() if len(v) == n}
        mine_k = min((k for k in full if k[0] == "pardag"), key=full.get, default=None)
        theirs_k = min((k for k in full if k[0] != "pardag"), key=full.get, default=None)
        if mine_k and theirs_k:
            rows.append(
                [
                    f"WfCommons {slots} slots",
                    "geo. mean ratio",
                    f"{num(full[mine_k], 'ratio')} ({mine_k[1]})",
                    f"{num(full[theirs_k], 'ratio')} ({' '.join(theirs_k)})",
                    num(full[mine_k] / full[theirs_k], "ratio"),
                    "yes" if full[mine_k] <= full[theirs_k] else "**no**",
                ]
            )
    return rows


# -- plots ----------------------------------------------------------------------------------------


def plots(res: Results, series: dict[tuple[str, str], dict[int, float]], docs: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return [f"(No plots: matplotlib is not installed: {exc}.)"]
    out = []
    style = {
        ("pardag", "async"): ("tab:blue", "o", "-"),
        ("pardag", "threads"): ("tab:orange", "s", "-"),
        ("stdlib", "dynamic"): ("tab:gray", "^", "--"),
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, pts in sorted(series.items()):
        xs = sorted(pts)
        color, marker, line = style.get(key, ("black", "x", ":"))
        ax.plot(
            xs,
            [pts[x] for x in xs],
            marker=marker,
            linestyle=line,
            color=color,
            label=f"{key[0]} {key[1]}",
        )
    ax.set_xscale("log")
    ax.axhline(12, color="tab:blue", linestyle=":", linewidth=1)
    ax.text(
        0.99,
        12,
        "W1/W2 target for async steps: 12 us ",
        ha="right",
        va="bottom",
        fontsize=8,
        color="tab:blue",
        transform=ax.get_yaxis_transform(),
    )
    ax.set_xlabel("steps (W5 shape: random DAG, mean in-degree 2)")
    ax.set_ylabel("build + run, microseconds per step")
    ax.set_ylim(bottom=0)
    ax.set_title("Per-step overhead against graph size (2 slots)")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "perf-overhead.png", dpi=110)
    plt.close(fig)
    out.append("![per-step overhead against graph size](perf-overhead.png)")

    groups: list[tuple[str, list[Result]]] = [
        ("W3\nunlimited", res.select("W3", w3_unlimited)),
        ("W3\nlimit", res.select("W3", lambda r: not w3_unlimited(r))),
        ("W4", res.select("W4")),
        ("W6", res.select("W6")),
    ]
    wf = res.select("wfcommons")
    engines = [e for e in ENGINE_ORDER if any(r["engine"] == e for r in res.all)]
    values: dict[str, list[tuple[float | None, str]]] = {e: [] for e in engines}
    labels = []
    for label, rs in groups:
        labels.append(label)
        for e in engines:
            good = [r for r in rs if r["engine"] == e and ok(r)]
            if e == "pardag":  # the headline variants, not the best of all
                good = [r for r in good if r["variant"] in ("async", "processes")] or good
            b = min(good, key=ratio, default=None)
            values[e].append((ratio(b), b["variant"]) if b else (None, ""))
    for slots in (4, 16):
        labels.append(f"WfCommons\n{slots} slots")
        for e in engines:
            by_var: dict[str, list[float]] = {}
            for r in wf:
                if r["engine"] == e and r["slots"] == slots and ok(r):
                    by_var.setdefault(r["variant"], []).append(ratio(r))
            if e == "pardag" and "async" in by_var:
                by_var = {"async": by_var["async"]}
            best = min(((geomean(v), k) for k, v in by_var.items()), default=(None, ""))
            values[e].append(best)
    colors = {
        "pardag": "tab:blue",
        "stdlib": "tab:gray",
        "dask": "tab:orange",
        "distributed": "tab:red",
        "prefect": "tab:purple",
        "ray": "tab:cyan",
    }
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / max(1, len(engines))
    for j, e in enumerate(engines):
        xs = [i + (j - (len(engines) - 1) / 2) * width for i in range(len(labels))]
        ys = [v if v is not None else 0 for v, _ in values[e]]
        ax.bar(xs, ys, width, label=e, color=colors.get(e))
        for x, (v, _) in zip(xs, values[e], strict=True):
            if v is not None:
                ax.text(
                    x,
                    v * 1.05,
                    f"{v:.2f}" if v < 10 else f"{v:.0f}",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("makespan / ideal or lower bound (log)")
    ax.set_title(
        "Makespan against the lower bound: pardag (async; processes on W6) and each "
        "anchor's best variant",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=3)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(docs / "perf-makespan.png", dpi=110)
    plt.close(fig)
    out.append("![makespan against the lower bound](perf-makespan.png)")
    return out


# -- the page -------------------------------------------------------------------------------------


SIDE_TITLES = {
    "lua_file": "A Lua workflow file, four one-second steps",
    "code_steps": "Python code steps: a worker process against threads",
}


def side_section(name: str, found: Any) -> list[str]:
    """One feature's benchmark (``benchmarks/<name>.py``), described by its own module."""
    import importlib

    head = [f"### {SIDE_TITLES[name]}", ""]
    if found is None:
        return [*head, f"Not run in this benchmark run (`python -m benchmarks.{name}`).", ""]
    if isinstance(found, str):
        return [*head, f"Failed: {found}", ""]
    describe = importlib.import_module(f"benchmarks.{name}").describe
    return [*head, *describe(found), ""]


def write(doc: dict[str, Any], page: Path) -> None:
    from benchmarks import report_dask, report_map  # they import this module: not at the top

    res = Results(doc)
    docs = page.parent
    m, v = doc["machine"], doc["versions"]
    scaling_text, series = scaling_section(res)
    anchors = [
        f"dask {v.get('dask') or '(missing)'}",
        f"distributed {v.get('distributed') or '(missing)'}",
        f"prefect {v.get('prefect') or '(missing)'} (fastapi {v.get('fastapi') or '-'})",
        f"ray {v.get('ray') or '(missing)'}",
    ]
    lines = [
        "# Performance",
        "",
        "<!-- Generated by benchmarks/report.py from benchmarks/results/latest.json: edit the "
        "generator, or benchmarks/profile-notes.md for the profiles section. -->",
        "",
        "pardag against the engines a user would pick instead, on the workloads of "
        "[`WORKLOADS.md`](../benchmarks/WORKLOADS.md) (generated from seed 0 by "
        "[`benchmarks/workloads.py`](../benchmarks/workloads.py)), every engine variant in its "
        "own fresh process, in one run. Anchor figures from an earlier run on this kind of "
        "machine are in [`ANCHORS.md`](../benchmarks/ANCHORS.md); the ones here were measured "
        "beside pardag.",
        "",
        f"- **Run**: `{doc['command']}` ({doc['mode']} mode), {doc['date']}, "
        f"{doc.get('elapsed_s', 0) / 60:.1f} minutes.",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']}.",
        f"- **Versions**: Python {v['python']}; pardag {v.get('pardag', '?')}"
        + (f" (commit {v['pardag_commit']})" if v.get("pardag_commit") else "")
        + "; "
        + ", ".join(anchors)
        + ".",
        f"- **cpu kind**: {doc['cpu_rate'] / 1e6:.2f} M iterations of `cpu_spin` per second on "
        "one idle core, calibrated at the start of the run; every engine runs the same count.",
        f"- **Limits**: {doc['limits']['run_timeout_s']:.0f} s per timed run; a job whose process "
        f"tree passes {doc['limits']['memory_gib']:.0f} GiB RSS is killed.",
        "- **Reproduce**: `make bench` (quick, a few minutes) or `make bench-full` (everything, "
        "about an hour); both create `.venv-bench` with pardag and the pinned anchors "
        "(`benchmarks/requirements.txt`). Raw results: `benchmarks/results/latest.json`.",
        "",
    ]
    for note in doc.get("notes", []):
        lines.append(f"- {note}")
    if doc.get("missing"):
        lines += ["", "**Anchors missing from this run:**", ""]
        for engine, why in doc["missing"].items():
            lines.append(f"- {engine}: {why}")
    lines += [
        "",
        "How to read: *us/task* is wall time over steps, build (the engine's graph from plain "
        "data: for pardag `Workflow.add` for each step and `validate()`) and run separately; "
        "engines that build their graph while running (distributed's and Ray's submissions, "
        "Prefect's flow) show build 0. *ratio* is makespan over the ideal (W3, W6) or over "
        "max(critical path, work / slots) (W4, WfCommons). *startup + warm-up* is from the "
        "process's start to the end of a warm-up run on a 10-step graph (imports, clusters, "
        "servers). Memory is peak RSS during the timed build + run above the RSS just before "
        "it (after generating the workload): *self* is exact (the kernel's high-water mark, "
        "reset before the run), *tree* adds the engine's other processes, sampled every 50 ms.",
        "",
        "## Targets",
        "",
        "From the performance issue; pardag's variants as named in the tables below.",
        "",
        table(["target", "measured", "met?"], targets(res)),
        "",
        "## pardag against the best anchor",
        "",
        "Lower is better; per-step figures compare steps of the size each engine ran.",
        "",
        table(
            [
                "workload",
                "figure",
                "pardag best",
                "best anchor",
                "pardag / anchor",
                "pardag ahead?",
            ],
            versus(res),
        ),
        "",
        "## Profiles of missed targets",
        "",
    ]
    if NOTES_FILE.exists():
        lines.append(NOTES_FILE.read_text().strip())
    else:
        lines.append(
            "Not written yet: where a target above says **no**, the profile that shows why goes "
            "in `benchmarks/profile-notes.md`, which this page includes when regenerated."
        )
    lines += [
        "",
        "## Plots",
        "",
        *plots(res, series, docs),
        "",
        "## Results",
        "",
        overhead_table(res, "W1", "W1 overhead-wide (root -> N no-op leaves -> sink), 2 slots"),
        "",
        overhead_table(res, "W2", "W2 overhead-chain (a chain of N no-ops), 2 slots"),
        "",
        makespan_table(
            res,
            res.select("W3", w3_unlimited),
            "W3 io-fanout, N x sleep 50 ms, unlimited (slots = N, ideal 0.05 s)",
        ),
        "",
        makespan_table(
            res,
            res.select("W3", lambda r: not w3_unlimited(r)),
            "W3 io-fanout, N x sleep 50 ms, limit N / 10 (ideal 0.5 s)",
        ),
        "",
        makespan_table(
            res,
            res.select("W4"),
            "W4 uneven-layered, 500 sleep steps, 8 slots (ratio = makespan / LB)",
            extra=True,
        ),
        "",
        "pardag's `async` and `threads` declare each step's duration as `estimate=` (the "
        "dynamic order is by remaining critical path); `*-noest` do not (every step counts "
        "1); `levels` runs level by level.",
        "",
        w5_table(
            res,
            200_000,
            "W5 large-graph, 200,000 no-ops, mean in-degree 2, 2 slots (Prefect at 2,000)",
        ),
        "",
    ]
    if any(r["case"].get("n") == 1_000_000 for r in res.select("W5")):
        lines += [w5_table(res, 1_000_000, "W5 large-graph, 1,000,000 no-ops"), ""]
    else:
        lines += ["W5 at 1,000,000 steps: not run in quick mode (`make bench-full`).", ""]
    lines += [
        makespan_table(
            res,
            res.select("W6"),
            "W6 cpu-bound, 8 x 0.5 s pure-Python CPU (ideal = 4 s of work / 2 cores)",
        ),
        "",
        *report_map.section(res),
        *report_dask.section(res),
        wfcommons_section(res),
        "",
        scaling_text,
        "",
        *(line for name in SIDE_TITLES for line in side_section(name, doc.get(name))),
    ]
    failures = [r for r in res.all if not ok(r) and r.get("status") != "missing"]
    if failures:
        lines += ["## Runs that did not finish", ""]
        for r in failures:
            lines.append(
                f"- {r['engine']} {r['variant']}, {r.get('label') or r['case']}: {failure(r)}"
            )
        lines.append("")
    page.write_text("\n".join(lines + kept_sections(page)))


KEPT = ("## The web page at 1,000 steps",)
"""Sections of the page that another benchmark writes (``benchmarks.page``): carried over."""


def kept_sections(page: Path) -> list[str]:
    """The ``KEPT`` sections of the page as it is, each up to the next ``## `` heading."""
    old = page.read_text().splitlines() if page.exists() else []
    out: list[str] = []
    for title in KEPT:
        if title in old:
            start = old.index(title)
            end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), None)
            out += [*old[start:end], ""]
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    src = Path(args[0]) if args else REPO / "benchmarks" / "results" / "latest.json"
    page = Path(args[1]) if len(args) > 1 else REPO / "docs" / "performance.md"
    write(json.loads(src.read_text()), page)
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
