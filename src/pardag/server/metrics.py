"""``GET /metrics``: the caller's organisation in the Prometheus text format (version 0.0.4).

Read with a token of any role (viewer and up), and only about the token's organisation, as
every other route: another organisation's runs, workers and streams are not counted, so a
tenant's scrape reveals nothing of the others (the whole server: a viewer token per
organisation). Figures come from the store at each scrape (the step durations of the latest
``RECENT`` finished runs, the workers of the last ``WINDOW`` seconds), and the open event
streams from this server's memory (``streams``). Written by hand: the format is a few lines,
and no dependency is needed for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from pardag.server.auth import Viewer, store_of
from pardag.states import RunStatus
from pardag.store.stats import OrgStats

__all__ = ["CONTENT_TYPE", "QUANTILES", "RECENT", "WINDOW", "exposition", "router"]

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT = 100
"""Finished runs whose step durations the latency summary covers."""
WINDOW = 3600.0
"""Seconds back a worker's claims are counted (and a worker holding nothing is listed)."""
QUANTILES = (0.5, 0.9, 0.99)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value)) if value % 1 else str(int(value))


def _family(name: str, kind: str, help_text: str, samples: Sequence[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of sorted ``ordered`` (NaN when empty)."""
    if not ordered:
        return math.nan
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def exposition(stats: OrgStats, streams: int) -> str:
    """The metrics text of one organisation's ``stats`` and its ``streams`` open."""
    runs = [f'pardag_runs{{status="{s.value}"}} {stats.runs.get(s.value, 0)}' for s in RunStatus]
    queued = [f"pardag_queue_depth {stats.runs.get(RunStatus.QUEUED.value, 0)}"]
    holding = [
        f'pardag_worker_runs{{worker="{_label(w.worker)}"}} {w.holding}' for w in stats.workers
    ]
    claimed = [
        f'pardag_worker_claimed_runs{{worker="{_label(w.worker)}"}} {w.claimed}'
        for w in stats.workers
    ]
    ordered = sorted(stats.durations)
    latency = [
        f'pardag_step_duration_seconds{{quantile="{q}"}} {_number(quantile(ordered, q))}'
        for q in QUANTILES
    ]
    latency += [
        f"pardag_step_duration_seconds_sum {_number(sum(ordered))}",
        f"pardag_step_duration_seconds_count {len(ordered)}",
    ]
    lines = [
        *_family("pardag_runs", "gauge", "Runs of the organisation, by status.", runs),
        *_family("pardag_queue_depth", "gauge", "Runs queued, waiting for a worker.", queued),
        *_family("pardag_worker_runs", "gauge", "Runs each worker holds under lease now.", holding),
        *_family(
            "pardag_worker_claimed_runs",
            "gauge",
            f"Runs each worker claimed last, within the last {WINDOW:g} s.",
            claimed,
        ),
        *_family(
            "pardag_step_duration_seconds",
            "summary",
            f"Seconds each step attempt ran, over the latest {RECENT} finished runs.",
            latency,
        ),
        *_family(
            "pardag_event_streams",
            "gauge",
            "Event streams open on this server.",
            [f"pardag_event_streams {streams}"],
        ),
    ]
    return "\n".join(lines) + "\n"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="The organisation's figures in the Prometheus text format",
)
def metrics(request: Request, who: Viewer) -> PlainTextResponse:
    stats = store_of(request).org_stats(who.org, time.time() - WINDOW, RECENT)
    streams = request.app.state.streams.count(who.org)
    return PlainTextResponse(exposition(stats, streams), media_type=CONTENT_TYPE)
