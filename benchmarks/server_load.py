"""Load on ``pardag serve``: many runs submitted at once, many event streams open.

``python -m benchmarks.server_load --store URL`` starts ``pardag serve --workers 2`` on that
store (a process of its own, as a user starts it), opens ``--clients`` streams of
``GET /api/events``, posts a ``--steps``-step workflow and submits ``--runs`` runs of it at once,
then waits until every stream has seen every run finish. It reports:

- every run's status (all must succeed) and an external ledger: each step appends a line
  ``RUN STEP`` to a file, so a run or step executed twice shows as a repeated line;
- submit latency (the POST's round trip) p50/p99;
- event delivery, step end to SSE frame: a ``step_succeeded`` frame's arrival at a client
  minus the event's own time (``at``, stamped by the runner when the step ended), over every
  frame of every client, p50/p99.

``--poll-only`` serves with the PostgreSQL listener off (streams poll the store every 0.2 s,
as before ``LISTEN/NOTIFY``): the figure to compare with. ``tests/server/test_load.py`` runs a
smaller size in the suite; docs/server.md has the full size's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parent.parent / "src"
PATIENCE = 600.0
"""Seconds the load may take before it is reported as stuck."""
_POLL_ONLY = (
    "import pardag.store.postgres as p, sys; p.PostgresStore.listen = lambda self: None; "
    "from pardag.cli import main; sys.argv[0] = 'pardag'; main()"
)


def workflow(steps: int, ledger: Path) -> str:
    """A fan: the first step, ``steps - 2`` after it side by side, the last after them all;
    each appends ``TAG STEP`` to ``ledger``."""
    names = [f"s{i:02d}" for i in range(steps)]
    lines = ["name: load", "params: {tag: none}", "steps:"]
    for i, name in enumerate(names):
        after = [] if i == 0 else [names[0]] if i < steps - 1 else names[1:-1]
        lines += [f"  {name}:", "    kind: shell"]
        lines.append(f"    command: echo {{{{ params.tag }}}} {name} >> {ledger}")
        if after:
            lines.append(f"    depends_on: [{', '.join(after)}]")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def serving(store: str, workers: int = 2, poll_only: bool = False) -> Iterator[tuple[str, str]]:
    """``pardag serve`` on ``store`` (a new one: it prints its first token); (URL, token)."""
    env = {k: v for k, v in os.environ.items() if k != "PARDAG_STORE"}
    env["PYTHONPATH"] = str(SRC)
    start = ["-c", _POLL_ONLY] if poll_only else ["-m", "pardag"]
    args = ["serve", "--port", "0", "--workers", str(workers), "--store", store]
    process = subprocess.Popen(
        [sys.executable, *start, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        token = url = None
        while url is None:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"pardag serve exited ({process.wait()})")
            if found := re.search(r"(pdg_[A-Za-z0-9_-]{43})", line):
                token = found.group(1)
            if found := re.search(r"(http://127\.0\.0\.1:\d+) ", line):
                url = found.group(1)
        if token is None:
            raise RuntimeError("the store had tokens already: give a new store")
        yield url, token
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Figures:
    """What a load measured (seconds)."""

    runs: int
    steps: int
    clients: int
    succeeded: int = 0
    ledger_lines: int = 0
    repeated: int = 0
    submit: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "steps": self.steps,
            "clients": self.clients,
            "succeeded": self.succeeded,
            "ledger_lines": self.ledger_lines,
            "repeated": self.repeated,
            "submit_p50_ms": _ms(self.submit, 0.50),
            "submit_p99_ms": _ms(self.submit, 0.99),
            "delivery_p50_ms": _ms(self.delivery, 0.50),
            "delivery_p99_ms": _ms(self.delivery, 0.99),
            "frames_measured": len(self.delivery),
            "wall_s": round(self.wall, 1),
        }


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)


class Client:
    """One ``GET /api/events`` stream: the arrival of each ``step_succeeded`` frame."""

    def __init__(self, http: httpx.AsyncClient, after: int) -> None:
        self.http, self.after = http, after
        self.delays: list[float] = []
        self.finished: set[str] = set()
        self.connected = asyncio.Event()

    async def follow(self, runs: set[str], everything: asyncio.Event) -> None:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(self.after)}
        async with self.http.stream("GET", "/api/events", headers=headers) as answer:
            self.connected.set()
            buffer = b""
            async for chunk in answer.aiter_bytes():
                buffer += chunk
                *frames, buffer = buffer.split(b"\n\n")
                now = time.time()
                for frame in frames:
                    self._take(frame, now)
                if runs and runs <= self.finished:
                    everything.set()
                    return

    def _take(self, frame: bytes, now: float) -> None:
        if b"event: step_succeeded" in frame:
            data = json.loads(frame.rsplit(b"data: ", 1)[1])
            self.delays.append(now - data["at"])
        elif b"event: run_finished" in frame:
            self.finished.add(json.loads(frame.rsplit(b"data: ", 1)[1])["run"])


async def drive(url: str, token: str, runs: int, steps: int, clients: int, ledger: Path) -> Figures:
    """The load against the server at ``url`` (see the module's docstring)."""
    figures = Figures(runs, steps, clients)
    limits = httpx.Limits(max_connections=clients + 64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=PATIENCE, limits=limits
    ) as http:
        made = await http.post("/api/workflows", json={"definition": workflow(steps, ledger)})
        made.raise_for_status()
        after = (await http.get("/api/events?after=0")).json()["last"]
        submitted: set[str] = set()
        followers = [Client(http, after) for _ in range(clients)]
        done = [asyncio.Event() for _ in followers]
        tasks = [
            asyncio.create_task(c.follow(submitted, d))
            for c, d in zip(followers, done, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in followers)), 60)
        began = time.monotonic()
        ids = await asyncio.gather(
            *(_submit(http, made.json()["id"], i, figures) for i in range(runs))
        )
        submitted.update(ids)
        await asyncio.wait_for(asyncio.gather(*(d.wait() for d in done)), PATIENCE)
        figures.wall = time.monotonic() - began
        for task in tasks:
            task.cancel()
        for run_id in ids:
            run = (await http.get(f"/api/runs/{run_id}")).json()
            figures.succeeded += run["status"] == "succeeded"
    figures.delivery = [d for c in followers for d in c.delays]
    lines = ledger.read_text().splitlines()
    figures.ledger_lines, figures.repeated = len(lines), len(lines) - len(set(lines))
    return figures


async def _submit(http: httpx.AsyncClient, workflow_id: str, i: int, figures: Figures) -> str:
    start = time.perf_counter()
    answer = await http.post(
        f"/api/workflows/{workflow_id}/runs", json={"params": {"tag": f"r{i}"}}
    )
    figures.submit.append(time.perf_counter() - start)
    answer.raise_for_status()
    return str(answer.json()["id"])


def load(store: str, runs: int, steps: int, clients: int, poll_only: bool = False) -> Figures:
    """A server on ``store`` under the load; its figures."""
    with (
        tempfile.TemporaryDirectory() as folder,
        serving(store, poll_only=poll_only) as (url, token),
    ):
        ledger = Path(folder) / "ledger"
        ledger.touch()
        return asyncio.run(drive(url, token, runs, steps, clients, ledger))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="a new store: a file path or postgresql://")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--poll-only", action="store_true", help="PostgreSQL listener off")
    args = parser.parse_args()
    figures = load(args.store, args.runs, args.steps, args.clients, args.poll_only)
    print(json.dumps(figures.summary(), indent=2))


if __name__ == "__main__":
    main()
