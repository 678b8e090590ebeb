"""What a person watching a run sees: a live view while it runs, a summary when it ends.

``LiveProgress`` is a listener. Events only update counters (they arrive on the run's event
loop, which must not wait for a terminal); rich's ``Live`` repaints from those counters on its
own thread a few times a second. The summary (``print_summary``) is built from the
``RunResult`` alone, so it is the same whether or not anything was live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from pardag.events import Event, EventKind
from pardag.instances import instance_parent, instances_of
from pardag.results import RunResult
from pardag.states import RunStatus

__all__ = [
    "LiveProgress",
    "grouped_rows",
    "print_summary",
    "print_trimmed",
    "speedup",
    "speedup_of",
    "step_seconds",
]

_FINAL = {
    EventKind.STEP_SUCCEEDED: "succeeded",
    EventKind.STEP_FAILED: "failed",
    EventKind.STEP_SKIPPED: "skipped",
    EventKind.STEP_CANCELLED: "cancelled",
}
_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "timed_out": "bold red",
    "running": "cyan",
    "waiting": "yellow",
    "retrying": "yellow",
    "paused": "blue",
}
_ONLY_IF_ANY = ("retrying", "paused", "cancelled")
_SHOWN = 4
"""How many running or waiting step ids the live view names before it says "and N more"."""


class LiveProgress:
    """A listener that shows a run live on ``console``: counts, a bar, what runs and waits.

    Use it as a context manager around the run; it starts and stops rich's ``Live``.
    """

    def __init__(self, console: Console, workflow: str, total: int) -> None:
        self.console = console
        self.workflow = workflow
        self.total = total
        self.counts = dict.fromkeys(_FINAL.values(), 0)
        self.running: dict[str, None] = {}  # insertion-ordered sets
        self.ready: dict[str, None] = {}  # ready, no free slot yet (max_concurrency)
        self.waiting: dict[str, str] = {}  # step -> what it waits for
        self.retrying: dict[str, None] = {}
        self.paused: dict[str, None] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()  # events arrive on the loop, repaints on Live's thread
        self._spinner = Spinner("dots", style="cyan")
        self._live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
        )

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    def on_event(self, event: Event) -> None:
        """Record the event; the next repaint shows it."""
        step = event.step
        with self._lock:
            if step is None:
                if event.kind is EventKind.RUN_STARTED:
                    self.started = event.time
                return
            self._update(event.kind, step, event.data)

    def _update(self, kind: EventKind, step: str, data: Mapping[str, Any]) -> None:
        if kind is EventKind.STEP_READY:
            self.ready[step] = None
        elif kind is EventKind.STEP_WAITING:  # ready, and now known to wait for something
            self.ready.pop(step, None)
            self.waiting[step] = str(data.get("waiting_on") or "a slot")
        elif kind in (EventKind.STEP_STARTED, EventKind.STEP_RESUMED):
            self._forget(step)
            self.running[step] = None
            self.total += data.get("instances", 0)  # a mapped step's instances join the run
        elif kind is EventKind.STEP_PAUSED:
            self._forget(step)
            self.paused[step] = None
        elif kind is EventKind.STEP_RETRYING:
            self._forget(step)
            self.retrying[step] = None
        elif kind in _FINAL:
            self._forget(step)
            self.counts[_FINAL[kind]] += 1

    def _forget(self, step: str) -> None:
        for where in (self.running, self.ready, self.waiting, self.retrying, self.paused):
            where.pop(step, None)

    def render(self) -> RenderableType:
        """The live view, from the counters as they are now."""
        with self._lock:
            done = sum(self.counts.values())
            head = Table.grid(padding=(0, 1))
            head.add_row(
                self._spinner,
                Text(self.workflow, style="bold"),
                ProgressBar(
                    total=max(self.total, 1),
                    completed=done,
                    width=30,
                    complete_style="green",
                    finished_style="green",
                ),
                Text(f"{done}/{self.total}"),
                Text(_clock(time.monotonic() - self.started), style="dim"),
            )
            lines: list[RenderableType] = [head, self._counts_line()]
            if self.running:
                lines.append(Text("  running: " + _names(self.running), style="cyan"))
            if self.ready or self.waiting:
                lines.append(Text("  waiting: " + self._waits(), style="yellow"))
        return Group(*lines)

    def _counts_line(self) -> Text:
        c = self.counts
        parts = [
            ("running", len(self.running)),
            ("waiting", len(self.ready) + len(self.waiting)),
            ("retrying", len(self.retrying)),
            ("paused", len(self.paused)),
            ("succeeded", c["succeeded"]),
            ("failed", c["failed"]),
            ("skipped", c["skipped"]),
            ("cancelled", c["cancelled"]),
        ]
        text = Text("  ")
        for label, count in parts:
            if count or label not in _ONLY_IF_ANY:
                text.append(" · " if len(text) > 2 else "")
                text.append(f"{label} {count}", style=_STYLE.get(label, "") if count else "dim")
        return text

    def _waits(self) -> str:
        named = [f"{s} (for {what})" for s, what in self.waiting.items()]
        named += list(self.ready)
        return _names(dict.fromkeys(named))


def _names(ids: Mapping[str, object]) -> str:
    shown = list(ids)[:_SHOWN]
    more = len(ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# -- the summary -----------------------------------------------------------------------------


_MEANINGFUL_SPAN = 0.1
"""Seconds a run's steps must span before its speed-up is shown: below it, timer resolution
and start-up costs decide the ratio (a tiny run read "0.0x" or "0.5x")."""
_MEANINGFUL_RATIO = 1.1
"""The least speed-up worth a line: below it the steps did not really run at once."""


def step_seconds(result: RunResult) -> float:
    """The sum of the durations of the steps this process ran: the time they would have
    taken one after another."""
    return sum(end - start for start, end in _ran_here(result))


def speedup(result: RunResult) -> float | None:
    """How many times faster the run's steps ran than one after another: the sum of their
    durations over the time from the first one's start to the last one's end.

    None where the ratio means nothing (docs/cli.md): a run that did not succeed (it stopped
    part-way), steps spanning less than ``_MEANINGFUL_SPAN``, or a ratio under
    ``_MEANINGFUL_RATIO``. Only the steps this process ran count: a resumed run's earlier
    steps ran in another process, at another time.
    """
    return speedup_of(result.status is RunStatus.SUCCEEDED, _ran_here(result))


def speedup_of(succeeded: bool, spans: Iterable[tuple[float, float]]) -> float | None:
    """``speedup``'s rule on the (start, end) of each step, for a recorded run too."""
    if not succeeded:
        return None
    first, last, total = float("inf"), float("-inf"), 0.0
    for start, end in spans:
        first, last, total = min(first, start), max(last, end), total + end - start
    wall = last - first
    if wall < _MEANINGFUL_SPAN or total / wall < _MEANINGFUL_RATIO:
        return None
    return total / wall


def _ran_here(result: RunResult) -> Iterator[tuple[float, float]]:
    """(start, end) of each step that ran in this process (since ``result.started_at``)."""
    for step in result.steps.values():
        start, end = step.started_at, step.finished_at
        if start is not None and end is not None and start >= result.started_at:
            yield start, end


def print_summary(console: Console, result: RunResult) -> None:
    """Print a table of the steps (state, duration, attempts, reason) and one closing line."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("step", no_wrap=True)
    table.add_column("state")
    table.add_column("duration", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("reason", overflow="fold")
    states = {sid: (step.state.value, step.reason or "") for sid, step in result.steps.items()}
    for sid, (state, reason) in grouped_rows(states).items():
        step = result.steps[sid]
        duration = "-" if step.duration is None else f"{step.duration:.2f}s"
        shown = Text(state, style=_STYLE.get(state, ""))
        reason_text = Text(reason)  # Text, not markup: reasons quote errors verbatim
        table.add_row(Text(sid), shown, duration, str(step.attempts), reason_text)
    print_trimmed(console, table)
    console.print(_closing_line(result), highlight=False)


def grouped_rows(
    rows: Mapping[str, tuple[str, str]], fold: bool = True
) -> dict[str, tuple[str, str]]:
    """The rows of a run's table from each step's (state, reason), by id: a mapped step's
    reason starts with its instances counted by state (``198/200 succeeded, 2 failed``) and its
    instances come right under it, in item order; with ``fold``, only the failed ones, which
    keep their rows for their errors (``pardag run``, and ``pardag show`` without
    ``--instances``)."""
    mapped = instances_of(rows)
    out: dict[str, tuple[str, str]] = {}
    for sid, (state, reason) in rows.items():
        if instance_parent(sid, rows) is not None:
            continue  # placed under its mapped step
        mine = mapped.get(sid)
        if mine is None:
            out[sid] = (state, reason)
            continue
        counts = _counted([rows[i][0] for i in mine])
        out[sid] = (state, counts + (f"; {reason}" if reason else ""))
        out |= {i: rows[i] for i in mine if not fold or rows[i][0] == "failed"}
    return out


def _counted(states: list[str]) -> str:
    """Instances' states counted: ``198/200 succeeded, 2 failed``."""
    by_state: dict[str, int] = {}
    for state in states:
        by_state[state] = by_state.get(state, 0) + 1
    ok = by_state.pop("succeeded", 0)
    rest = "".join(f", {n} {state}" for state, n in by_state.items())
    return f"{ok}/{len(states)} succeeded{rest}"


def print_trimmed(console: Console, renderable: RenderableType) -> None:
    """Print without the trailing blanks rich pads table rows with (they clutter logs)."""
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")


def _closing_line(result: RunResult) -> Text:
    wall = result.finished_at - result.started_at
    counts: dict[str, int] = {}
    for step in result.steps.values():
        counts[step.state.value] = counts.get(step.state.value, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in counts.items())
    status = result.status.value
    line = Text(f"run {status}", style=_STYLE.get(status, ""))
    count = len(result.steps)
    line.append(f" in {wall:.2f}s: {count} step{'' if count == 1 else 's'} ({states})")
    ratio = speedup(result)
    if ratio is not None:
        line.append(
            f"; speed-up {ratio:.1f}x over running them one after another "
            f"({step_seconds(result):.2f}s of steps)"
        )
    return line
