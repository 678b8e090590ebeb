"""The benchmark workloads as plain data, generated deterministically from a seed.

Every workload is a list of ``Step(id, deps, kind, duration)`` in a topological order (each
step after all of its dependencies), plus the slots (concurrency) it runs on and its ideal
makespan or lower bound. Engines build their own graphs from this data; nothing here knows
about any engine. ``benchmarks/WORKLOADS.md`` defines the workloads; the docstrings below
repeat what each one is.

Kinds: ``noop`` returns None; ``sleep`` sleeps ``duration`` seconds (``asyncio.sleep`` in async
variants); ``cpu`` runs ``benchmarks.tasks.cpu_spin`` for an iteration count calibrated once
per benchmark run so that one step takes ``duration`` seconds on one idle core.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "Step",
    "Workload",
    "critical_path",
    "generate",
    "list_schedule",
    "pipelined_schedule",
    "stage_durations",
    "wfcommons_dir",
    "wfcommons_instances",
]

REPO = Path(__file__).resolve().parent.parent
WFCOMMONS_WORK = 4.0
"""Seconds of total work each WfCommons instance is scaled to."""


class Step(NamedTuple):
    id: str
    deps: tuple[str, ...]
    kind: str  # "noop" | "sleep" | "cpu"
    duration: float  # seconds; 0 for noop


@dataclass
class Workload:
    """One generated workload: steps in topological order and how to judge a run of it."""

    name: str  # e.g. "W1"
    label: str  # e.g. "W1 n=10000 slots=2"
    steps: list[Step]
    slots: int
    kind: str
    ideal: float | None = None  # ideal makespan / lower bound in seconds, where one exists
    critical_path: float | None = None
    work: float | None = None
    params: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.steps)

    def sinks(self) -> list[str]:
        """Ids of the steps nothing depends on, in order."""
        has_succ: set[str] = set()
        for s in self.steps:
            has_succ.update(s.deps)
        return [s.id for s in self.steps if s.id not in has_succ]


def _rng(name: str, seed: int) -> random.Random:
    return random.Random(f"{name}:{seed}")


def critical_path(steps: list[Step]) -> float:
    """Longest path through ``steps`` by duration (steps are in topological order)."""
    finish: dict[str, float] = {}
    best = 0.0
    for s in steps:
        start = max((finish[d] for d in s.deps), default=0.0)
        finish[s.id] = start + s.duration
        best = max(best, finish[s.id])
    return best


def w1(n: int = 10_000, slots: int = 2, seed: int = 0) -> Workload:
    """W1 overhead-wide: ``root`` -> n no-op leaves -> ``sink``."""
    root = Step("root", (), "noop", 0.0)
    leaves = [Step(f"leaf{i}", ("root",), "noop", 0.0) for i in range(n)]
    sink = Step("sink", tuple(s.id for s in leaves), "noop", 0.0)
    return Workload("W1", f"W1 n={n}", [root, *leaves, sink], slots, "noop", params={"n": n})


def w2(n: int = 10_000, slots: int = 2, seed: int = 0) -> Workload:
    """W2 overhead-chain: n no-op steps, each depending on the previous one."""
    steps = [Step("s0", (), "noop", 0.0)]
    for i in range(1, n):
        steps.append(Step(f"s{i}", (steps[-1].id,), "noop", 0.0))
    return Workload("W2", f"W2 n={n}", steps, slots, "noop", params={"n": n})


def w3(n: int = 1_000, slots: int = 1_000, duration: float = 0.05, seed: int = 0) -> Workload:
    """W3 io-fanout: n independent sleeps; ideal = ceil(n / slots) x duration."""
    steps = [Step(f"io{i}", (), "sleep", duration) for i in range(n)]
    ideal = math.ceil(n / slots) * duration
    return Workload(
        "W3",
        f"W3 n={n} slots={slots}",
        steps,
        slots,
        "sleep",
        ideal=ideal,
        critical_path=duration,
        work=n * duration,
        params={"n": n, "concurrency": slots},
    )


def w4(
    n: int = 500, layers: int = 10, slots: int = 8, mean: float = 0.02, seed: int = 0
) -> Workload:
    """W4 uneven-layered: heavy-tailed sleep durations on a random layered DAG.

    Each step is, with probability 0.015, a straggler drawn uniformly from [0.2, 1.0] x 1.0 s,
    else lognormal(mu = ln(0.4 x mean), sigma = 1); then all are scaled to a mean of ``mean``
    and clipped at 1.0 s. Durations are drawn first, for all steps, then the edges: each step
    after the first layer depends on 1 to 3 distinct steps of the earlier layers.
    """
    rng = _rng("W4", seed)
    mu = math.log(0.4 * mean)
    durations = []
    for _ in range(n):
        if rng.random() < 0.015:
            durations.append(rng.uniform(0.2, 1.0) * 1.0)
        else:
            durations.append(rng.lognormvariate(mu, 1.0))
    scale = mean / (sum(durations) / n)
    durations = [min(1.0, d * scale) for d in durations]
    width = n // layers
    steps: list[Step] = []
    for i in range(n):
        layer = i // width
        if layer == 0:
            deps: tuple[str, ...] = ()
        else:
            k = rng.randint(1, 3)
            deps = tuple(f"t{j}" for j in rng.sample(range(layer * width), k))
        steps.append(Step(f"t{i}", deps, "sleep", durations[i]))
    cp, work = critical_path(steps), sum(durations)
    return Workload(
        "W4",
        f"W4 n={n} slots={slots}",
        steps,
        slots,
        "sleep",
        ideal=max(cp, work / slots),
        critical_path=cp,
        work=work,
        params={"n": n, "layers": layers},
    )


def w5(n: int = 200_000, slots: int = 2, window: int = 1_000, seed: int = 0) -> Workload:
    """W5 large-graph: step i depends on k in [1, 3] steps drawn from [max(0, i - 1000), i)."""
    rng = _rng("W5", seed)
    ids = [f"n{i}" for i in range(n)]
    steps = [Step(ids[0], (), "noop", 0.0)] if n else []
    randint, sample = rng.randint, rng.sample
    for i in range(1, n):
        lo = i - window if i > window else 0
        k = min(randint(1, 3), i - lo)
        steps.append(Step(ids[i], tuple([ids[j] for j in sample(range(lo, i), k)]), "noop", 0.0))
    return Workload("W5", f"W5 n={n}", steps, slots, "noop", params={"n": n})


def w6(n: int = 8, duration: float = 0.5, cores: int = 2, seed: int = 0) -> Workload:
    """W6 cpu-bound: n independent CPU steps; ideal = total work / cores."""
    steps = [Step(f"cpu{i}", (), "cpu", duration) for i in range(n)]
    return Workload(
        "W6",
        f"W6 n={n}",
        steps,
        cores,
        "cpu",
        ideal=n * duration / cores,
        critical_path=duration,
        work=n * duration,
        params={"n": n},
    )


def w7(
    n: int = 10_000,
    slots: int = 8,
    shape: str = "fan",
    low: float = 0.005,
    high: float = 0.05,
    seed: int = 0,
) -> Workload:
    """W7 mapped: a source step returning ``n`` items, then one step per item.

    ``fan``: ``src`` -> n no-op steps ``p0..``; ``chain``: ``src`` -> ``a0..`` -> ``b0..``
    (``b{k}`` depends on ``a{k}`` alone), sleeps drawn uniformly from [low, high], all of a's
    first, then b's. Engines that map (``map-*`` variants) build the source and one map per
    stage instead of these steps (``params["stages"]``, ``stage_durations``). The chain's
    ideal is the lower bound max(longest a_k + b_k, work / slots); ``params["barrier"]`` is
    the makespan of running all of a, then all of b, each stage list-scheduled in item order;
    ``params["pipelined"]`` that of b{k} starting once a{k} ends (``pipelined_schedule``).
    """
    src = Step("src", (), "noop", 0.0)
    if shape == "fan":
        steps = [src, *(Step(f"p{k}", ("src",), "noop", 0.0) for k in range(n))]
        params: dict[str, object] = {"n": n, "shape": shape, "stages": ["p"]}
        return Workload("W7", f"W7 fan n={n} slots={slots}", steps, slots, "noop", params=params)
    if shape != "chain":
        raise ValueError(f"W7: shape {shape!r} is neither 'fan' nor 'chain'")
    rng = _rng("W7", seed)
    da = [rng.uniform(low, high) for _ in range(n)]
    db = [rng.uniform(low, high) for _ in range(n)]
    a = [Step(f"a{k}", ("src",), "sleep", d) for k, d in enumerate(da)]
    b = [Step(f"b{k}", (f"a{k}",), "sleep", d) for k, d in enumerate(db)]
    cp, work = critical_path([src, *a, *b]), sum(da) + sum(db)
    barrier = list_schedule(da, slots) + list_schedule(db, slots)
    pipelined = pipelined_schedule(da, db, slots)
    return Workload(
        "W7",
        f"W7 chain n={n} slots={slots}",
        [src, *a, *b],
        slots,
        "sleep",
        ideal=max(cp, work / slots),
        critical_path=cp,
        work=work,
        params={
            "n": n,
            "shape": shape,
            "stages": ["a", "b"],
            "barrier": barrier,
            "pipelined": pipelined,
            "low": low,
            "high": high,
        },
    )


def list_schedule(durations: list[float], slots: int) -> float:
    """Makespan of ``durations`` started in order, each on the first slot to come free."""
    free = [0.0] * slots
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def pipelined_schedule(first: list[float], second: list[float], slots: int) -> float:
    """Makespan of two stages pipelined per item: a free slot takes the next ``first`` item in
    item order while one is left, else the ``second`` item whose ``first`` ended earliest."""
    running: list[tuple[float, int, int]] = []  # (end, stage, item)
    now, todo, ready = 0.0, deque(range(len(first))), deque[int]()
    while todo or ready or running:
        while len(running) < slots and (todo or ready):
            if todo:
                k = todo.popleft()
                heapq.heappush(running, (now + first[k], 0, k))
            else:
                k = ready.popleft()
                heapq.heappush(running, (now + second[k], 1, k))
        now, stage, k = heapq.heappop(running)
        if stage == 0:
            ready.append(k)
    return now


def stage_durations(wl: Workload) -> dict[str, list[float]]:
    """W7's stages in order (``p``; or ``a`` then ``b``), each with its items' durations."""
    names = wl.params.get("stages")
    if not isinstance(names, list):
        raise ValueError(f"{wl.label} is not a W7 workload: it has no stages")
    stages: dict[str, list[float]] = {str(name): [] for name in names}
    for s in wl.steps[1:]:  # after the source, each stage's steps in item order
        stages[s.id.rstrip("0123456789")].append(s.duration)
    return stages


def wfcommons_dir() -> Path | None:
    """Where the WfCommons instances are: $PARDAG_BENCH_WFCOMMONS, else benchmarks/wfcommons."""
    env = os.environ.get("PARDAG_BENCH_WFCOMMONS")
    for candidate in (env, REPO / "benchmarks" / "wfcommons"):
        if candidate and Path(candidate).is_dir() and any(Path(candidate).glob("*.json")):
            return Path(candidate)
    return None


def wfcommons_instances() -> list[str]:
    """Names (file stems) of the available instances, sorted."""
    where = wfcommons_dir()
    return sorted(p.stem for p in where.glob("*.json")) if where else []


def wfcommons(instance: str, slots: int = 4, total_work: float = WFCOMMONS_WORK) -> Workload:
    """A recorded WfCommons workflow replayed as sleeps, scaled to ``total_work`` seconds."""
    where = wfcommons_dir()
    if where is None:
        raise FileNotFoundError("no WfCommons instances (set PARDAG_BENCH_WFCOMMONS)")
    doc = json.loads((where / f"{instance}.json").read_text())
    spec = doc["workflow"]["specification"]["tasks"]
    runtime = {
        t["id"]: float(t.get("runtimeInSeconds") or 0.0)
        for t in doc["workflow"]["execution"]["tasks"]
    }
    parents = {t["id"]: list(dict.fromkeys(t.get("parents") or [])) for t in spec}
    for t in spec:  # some instances list an edge only on the parent's side
        for child in t.get("children") or []:
            if child in parents and t["id"] not in parents[child]:
                parents[child].append(t["id"])
    scale = total_work / sum(runtime.get(tid, 0.0) for tid in parents)
    safe = _safe_ids(list(parents))
    order = _toposort(parents)
    steps = [
        Step(
            safe[tid],
            tuple(safe[p] for p in parents[tid]),
            "sleep",
            runtime.get(tid, 0.0) * scale,
        )
        for tid in order
    ]
    cp, work = critical_path(steps), sum(s.duration for s in steps)
    short = instance.split("-chameleon")[0]
    return Workload(
        "wfcommons",
        f"{short} slots={slots}",
        steps,
        slots,
        "sleep",
        ideal=max(cp, work / slots),
        critical_path=cp,
        work=work,
        params={"instance": instance, "short": short, "edges": sum(len(s.deps) for s in steps)},
    )


def _safe_ids(ids: list[str]) -> dict[str, str]:
    """Map ids onto ``[A-Za-z0-9_.-]+`` (pardag's rule), keeping them distinct."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for tid in ids:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", tid) or "task"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        out[tid] = name
    return out


def _toposort(parents: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm, ties in file order."""
    indeg = {t: len(ps) for t, ps in parents.items()}
    children: dict[str, list[str]] = {t: [] for t in parents}
    for t, ps in parents.items():
        for p in ps:
            children[p].append(t)
    ready = [t for t in parents if indeg[t] == 0]
    order: list[str] = []
    while ready:
        nxt: list[str] = []
        for t in ready:
            order.append(t)
            for c in children[t]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    nxt.append(c)
        ready = nxt
    if len(order) != len(parents):
        raise ValueError("workflow instance has a cycle")
    return order


GENERATORS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6": w6, "W7": w7}


def generate(case: dict[str, object], seed: int = 0) -> Workload:
    """The workload a case names: ``{"workload": "W3", "n": 1000, "slots": 100}`` and so on."""
    args = {k: v for k, v in case.items() if k not in ("workload", "series")}
    name = str(case["workload"])
    if name == "wfcommons":
        return wfcommons(**args)  # type: ignore[arg-type]
    return GENERATORS[name](seed=seed, **args)  # type: ignore[operator]


def warmup(kind: str, cpu_scale: float = 0.001, like: Workload | None = None) -> Workload:
    """A tiny graph of ``kind`` for warming an engine up before the timed runs; like a W7, a W7
    of 8 items, so that the engines that map warm their mapping up too."""
    if like is not None and like.name == "W7":
        return w7(n=8, slots=like.slots, shape=str(like.params["shape"]), low=0.001, high=0.002)
    duration = {"noop": 0.0, "sleep": 0.001, "cpu": 0.5 * cpu_scale}[kind]
    root = Step("wroot", (), kind, duration)
    leaves = [Step(f"wleaf{i}", ("wroot",), kind, duration) for i in range(8)]
    sink = Step("wsink", tuple(s.id for s in leaves), kind, duration)
    return Workload("warmup", "warm-up", [root, *leaves, sink], 2, kind)
