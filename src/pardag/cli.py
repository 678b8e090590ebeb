"""The ``pardag`` command line: run, validate and draw workflow files.

It stays thin: it reads a file with ``pardag.load``, resolves the settings (``pardag.config``),
runs with ``Workflow.run`` and listeners, and prints the ``RunResult``. Exit codes: 0 the run
succeeded, 1 it failed (or timed out), 2 the workflow, a setting or the usage is invalid, 3 it
paused, 130 it was interrupted. Errors are one readable message; ``--debug`` adds tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import pardag
from pardag.config import ResolvedSettings, SettingsError, resolve
from pardag.errors import ArgumentError, PardagError, StepFailed, ValidationError
from pardag.events import Event, EventKind, Listener
from pardag.model import Graph, Workflow
from pardag.progress import LiveProgress, print_summary, print_trimmed, speedup
from pardag.results import RunResult
from pardag.store import DEFAULT_PATH, open_store

__all__ = ["ExitCode", "JsonLines", "app", "main", "render_graph", "result_json", "run_params"]


class ExitCode(IntEnum):
    """What ``pardag`` exits with."""

    SUCCEEDED = 0
    FAILED = 1  # the run failed or timed out, or pardag itself failed
    INVALID = 2  # invalid workflow file, setting or usage
    PAUSED = 3  # the run waits for an approval (reserved for the run store)
    INTERRUPTED = 130  # Ctrl-C


_EXIT_OF_STATUS = {
    "succeeded": ExitCode.SUCCEEDED,
    "failed": ExitCode.FAILED,
    "timed_out": ExitCode.FAILED,
    "cancelled": ExitCode.INTERRUPTED,  # the CLI's runs are cancelled only by Ctrl-C
    "paused": ExitCode.PAUSED,
}

app = typer.Typer(
    name="pardag",
    help="Run workflows shaped as DAGs: every step as soon as its dependencies allow.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

# -- options shared by the commands -------------------------------------------------------------

FileArg = Annotated[Path, typer.Argument(help="The workflow file (any supported format).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file to use instead of the nearest pardag.toml / pyproject.toml.",
        metavar="FILE",
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Run store: a SQLite file or a postgresql:// URL (default .pardag/runs.db).",
        metavar="URL",
    ),
]


class GraphFormat(StrEnum):
    """The ways ``pardag graph`` draws a workflow."""

    MERMAID = "mermaid"
    DOT = "dot"
    LEVELS = "levels"
    ASCII = "ascii"


# -- errors -------------------------------------------------------------------------------------


class _Session:
    """Whether to show tracebacks; known from flag and environment first, settings later."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug or _env_debug()


def _env_debug() -> bool:
    return os.environ.get("PARDAG_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def _reported(session: _Session) -> Iterator[None]:
    """Turn every error into a message and an exit code; a traceback only with ``--debug``."""
    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except ValidationError as exc:
        _trace(session)
        _error(_validation_message(exc))
        raise typer.Exit(ExitCode.INVALID) from None
    except ArgumentError as exc:
        _trace(session)
        for problem in exc.problems if isinstance(exc, SettingsError) else [str(exc)]:
            _error(problem)
        raise typer.Exit(ExitCode.INVALID) from None
    except PardagError as exc:
        _trace(session)
        _error(str(exc))
        raise typer.Exit(ExitCode.FAILED) from None
    except Exception as exc:
        _trace(session)
        hint = "" if session.debug else "; run again with --debug for the traceback"
        _error(f"pardag failed unexpectedly: {type(exc).__name__}: {exc}{hint}")
        raise typer.Exit(ExitCode.FAILED) from None


def _trace(session: _Session) -> None:
    if session.debug:
        _stderr.print(traceback.format_exc(), end="", markup=False)


def _error(message: str) -> None:
    _stderr.print(f"[bold red]error:[/] {escape(message)}")


def _warn(message: str) -> None:
    _stderr.print(f"[yellow]warning:[/] {escape(message)}")


def _validation_message(exc: ValidationError) -> str:
    count = len(exc.problems)
    if count == 1 and exc.problems[0].where:
        return str(exc.problems[0])
    head = f"{exc.workflow} is invalid ({count} problem{'s' if count != 1 else ''}):"
    return "\n".join([head, *(f"  {p}" for p in exc.problems)])


# -- loading ------------------------------------------------------------------------------------


def _prepare(
    file: Path,
    config: Path | None,
    flags: Mapping[str, object] | None = None,
    *,
    validate: bool = True,
) -> tuple[Workflow, ResolvedSettings]:
    """Load ``file``, resolve its settings and (unless told not to) validate it with them."""
    try:
        below = resolve(None, flags=flags, config=config)  # pools the file may use
        wf = pardag.load(file, defaults={"pools": below.settings().pools})
        settings = resolve(wf, flags=flags, config=config)
    except SettingsError as exc:
        for warning in exc.warnings:
            _warn(warning)
        raise
    for warning in settings.warnings:
        _warn(warning)
    wf.settings = settings.settings()  # pools from a config file count when validating
    if validate:
        wf.validate()
    return wf, settings


# -- run ----------------------------------------------------------------------------------------


@app.command()
def run(
    file: FileArg,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events", help="Write every event to this file, JSON lines.", metavar="FILE"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Set a param: key=value (repeatable; a.b=1 sets nested keys).",
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="dynamic, levels or sequential.", metavar="MODE")
    ] = None,
    max_concurrency: Annotated[
        str | None, typer.Option(help="Most steps running at once; 0 = auto.", metavar="N")
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="threads, processes or inline.", metavar="EXECUTOR")
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            help="Limit for the whole run: 30s, 2m, ...; none = no limit.", metavar="DURATION"
        ),
    ] = None,
    on_failure: Annotated[
        str | None, typer.Option(help="fail_fast or continue.", metavar="POLICY")
    ] = None,
    show_settings: Annotated[
        bool,
        typer.Option("--show-settings", help="Print each setting and its source; do not run."),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Run steps that have cache set instead of taking their stored outputs "
            "(their fresh outputs still refresh the cache).",
        ),
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a workflow file and show its progress; exit 0 if it succeeded.

    The run is recorded in the run store (.pardag/runs.db unless --store, PARDAG_STORE or the
    config file says otherwise); its id is the first line on stderr.
    """
    session = _Session(debug)
    flags = {
        "mode": mode,
        "max_concurrency": max_concurrency,
        "executor": executor,
        "timeout": timeout,
        "on_failure": on_failure,
        "store": store,
        "debug": True if debug else None,
    }
    with _reported(session):
        wf, settings = _prepare(file, config, flags, validate=not show_settings)
        session.debug = settings.debug
        if show_settings:
            _print_settings(settings, json_output)
            return
        params = run_params(wf.params, set_ or [])
        store_url = settings.store or str(DEFAULT_PATH)
        result = _run_watched(wf, params, events, store_url, cache=not no_cache)
    raise typer.Exit(_finish(result, json_output, session))


def _run_watched(
    wf: Workflow, params: dict[str, Any], events: Path | None, store: str, *, cache: bool = True
) -> RunResult:
    """Run ``wf`` recorded in ``store``, with the events file and, on a terminal, the live
    view as listeners; the run's id goes first on stderr."""
    listeners: list[Listener] = [_RunIdPrinter()]
    with contextlib.ExitStack() as stack:
        opened = stack.enter_context(open_store(store))
        if events is not None:
            listeners.append(JsonLines(stack.enter_context(_open_events(events))))
        if _stderr.is_terminal:
            live = LiveProgress(_stderr, wf.name, len(wf.steps))
            listeners.append(stack.enter_context(live))
        try:
            return wf.run(listeners=listeners, params=params, store=opened, cache=cache)
        except KeyboardInterrupt:  # the second Ctrl-C: the run did not wait for its steps
            stack.close()
            _error("interrupted (Ctrl-C); the run was abandoned")
            raise typer.Exit(ExitCode.INTERRUPTED) from None


class _RunIdPrinter:
    """Prints ``run <id>`` on stderr when the run starts (scripts read it from there)."""

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.RUN_STARTED:
            _stderr.print(f"run {event.run}", markup=False)


@contextlib.contextmanager
def _open_events(path: Path) -> Iterator[IO[str]]:
    try:
        stream = path.open("w", encoding="utf-8", buffering=1)  # a line at a time: tail -f
    except OSError as exc:
        raise ArgumentError(
            f"cannot write the --events file {path}: {exc.strerror}; give a writable path"
        ) from None
    with stream:
        yield stream


def _finish(result: RunResult, json_output: bool, session: _Session) -> int:
    """Print the result (table on stderr, or JSON on stdout) and return the exit code."""
    if json_output:
        sys.stdout.write(_dumps(result_json(result), indent=2) + "\n")
    else:
        print_summary(_stderr, result)
        if result.ok:
            _stderr.print(f"output: {_short(result.final_output)}", markup=False)
    if result.error is not None and not result.ok:
        if session.debug and isinstance(result.error, StepFailed) and result.error.traceback:
            _stderr.print(result.error.traceback, end="", markup=False)
        _error(str(result.error))
    return _EXIT_OF_STATUS.get(result.status.value, ExitCode.FAILED)


def _short(value: Any, limit: int = 200) -> str:
    text = _dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print_settings(settings: ResolvedSettings, json_output: bool) -> None:
    if json_output:
        sys.stdout.write(json.dumps(settings.as_json(), default=str, indent=2) + "\n")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("setting", "value", "source"):
        table.add_column(column, no_wrap=True)
    for row in settings.rows():
        table.add_row(*(Text(cell) for cell in row))  # Text: "[tool.pardag]" is not markup
    print_trimmed(Console(highlight=False), table)


# -- params -------------------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def run_params(defaults: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """The run's params: ``key=value`` assignments (``--set``) over the workflow's defaults.

    ``a.b=1`` sets key ``b`` inside mapping ``a`` (made when missing, kept otherwise). A value
    that parses as JSON is that JSON value (``3``, ``true``, ``null``, ``[1, 2]``, ``"3"``);
    anything else is the plain string.
    """
    params: dict[str, Any] = _copy(defaults)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not _KEY.fullmatch(key.strip()):
            raise ArgumentError(
                f"Invalid --set value {assignment!r}: expected key=value, "
                "e.g. --set region=eu or --set limits.rows=100"
            )
        _assign(params, key.strip().split("."), _value(text), assignment)
    return params


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assign(params: dict[str, Any], path: list[str], value: Any, assignment: str) -> None:
    node = params
    for depth, part in enumerate(path[:-1]):
        inner = node.setdefault(part, {})
        if not isinstance(inner, dict):
            where = ".".join(path[: depth + 1])
            raise ArgumentError(
                f"Invalid --set value {assignment!r}: param {where!r} is {inner!r}, "
                f"not a mapping; set {where!r} itself or choose another key"
            )
        node = inner
    node[path[-1]] = value


# -- JSON output --------------------------------------------------------------------------------


def result_json(result: RunResult) -> dict[str, Any]:
    """The run as JSON-ready data; these keys are stable (``pardag run --json``)."""
    return {
        "run_id": result.run_id,
        "workflow": result.workflow,
        "status": result.status.value,
        "error": None if result.error is None else str(result.error),
        "final_output": result.final_output,
        "outputs": dict(result.outputs),
        "steps": {
            sid: {
                "state": step.state.value,
                "reason": step.reason,
                "attempts": step.attempts,
                "cached": step.cached,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
                "duration": step.duration,
                "error": None if step.error is None else str(step.error),
            }
            for sid, step in result.steps.items()
        },
        "duration": result.finished_at - result.started_at,
        "speedup": speedup(result),
    }


def _dumps(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON, whatever the steps returned (see ``_plain``)."""
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


_SCALARS = (str, int, bool, type(None))


def _plain(value: Any) -> Any:
    """What JSON can hold: sets and tuples as lists, bytes as text, keys as strings, and
    anything else (an object, NaN) as its ``repr()``."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return [_plain(v) for v in sorted(value, key=repr)]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


class JsonLines:
    """A listener writing each event as one JSON object per line (``--events FILE``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def on_event(self, event: Event) -> None:
        record = {
            "kind": event.kind.value,
            "run": event.run,
            "time": event.time,
            "step": event.step,
            "attempt": event.attempt,
            "data": event.data,
        }
        self.stream.write(_dumps(record) + "\n")


# -- validate -----------------------------------------------------------------------------------


@app.command()
def validate(file: FileArg, config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Check a workflow file and list every problem, with file and line; exit 0 if valid."""
    session = _Session(debug)
    with _reported(session):
        wf, _ = _prepare(file, config)
        graph = wf.compile()
        levels = max(graph.levels(), default=-1) + 1
        typer.echo(f"{file}: valid ({_count(len(graph.ids), 'step')}, {_count(levels, 'level')})")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- graph --------------------------------------------------------------------------------------


@app.command()
def graph(
    file: FileArg,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="How to draw it.")
    ] = GraphFormat.ASCII,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Draw a workflow's graph as Mermaid, Graphviz dot, levels or an ASCII tree."""
    session = _Session(debug)
    with _reported(session):
        wf, _ = _prepare(file, config)
        typer.echo(render_graph(wf, format.value))


def render_graph(wf: Workflow, format: str) -> str:
    """``wf``'s graph as text: ``mermaid``, ``dot``, ``levels`` or ``ascii``."""
    draw = _RENDERERS.get(format)
    if draw is None:
        raise ArgumentError(f"graph format {format!r} is unknown; use one of {list(_RENDERERS)}")
    return draw(wf, wf.compile())


_MERMAID_WORDS = {"end", "graph", "subgraph", "style", "class", "classdef", "click", "linkstyle"}


def _mermaid(wf: Workflow, g: Graph) -> str:
    """``graph TD`` with a node per step (conditions as diamonds), handles as edge labels."""

    def node(i: int) -> str:
        sid = g.ids[i]
        plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sid) and sid.lower() not in _MERMAID_WORDS
        return sid if plain else f"n{i}"

    lines = ["graph TD"]
    for i, step in enumerate(g.steps):
        shape = '{{"{}"}}' if step.kind == "condition" else '["{}"]'
        lines.append(f"    {node(i)}{shape.format(step.id)}")
    for i, succs in enumerate(g.succs):
        for j in succs:
            handle = g.handles.get((i, j))
            arrow = f"-->|{handle}|" if handle else "-->"
            lines.append(f"    {node(i)} {arrow} {node(j)}")
    return "\n".join(lines)


def _dot(wf: Workflow, g: Graph) -> str:
    """A Graphviz ``digraph``: boxes, conditions as diamonds, handles as edge labels."""
    lines = [f"digraph {_quoted(wf.name)} {{", "    node [shape=box];"]
    for step in g.steps:
        shape = " [shape=diamond]" if step.kind == "condition" else ""
        lines.append(f"    {_quoted(step.id)}{shape};")
    for i, succs in enumerate(g.succs):
        for j in succs:
            handle = g.handles.get((i, j))
            label = f" [label={_quoted(handle)}]" if handle else ""
            lines.append(f"    {_quoted(g.ids[i])} -> {_quoted(g.ids[j])}{label};")
    lines.append("}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _levels(wf: Workflow, g: Graph) -> str:
    """One line per level: the steps whose dependencies all lie in earlier levels."""
    return "\n".join(f"level {n}: {', '.join(ids)}" for n, ids in enumerate(wf.levels()))


def _ascii(wf: Workflow, g: Graph) -> str:
    """A tree from each root; a step reached again says "(see above)", chains share a line."""
    levels = max(g.levels(), default=-1) + 1
    lines = [
        f"{wf.name}: {_count(len(g.ids), 'step')} in {_count(levels, 'level')}; "
        f"critical path {' -> '.join(g.critical_path())}"
    ]
    seen: set[int] = set()
    roots = [i for i in range(len(g.ids)) if not g.preds[i]]
    stack: list[tuple[int, str, str, str | None]] = [(r, "", "", None) for r in reversed(roots)]
    while stack:
        i, lead, child_lead, handle = stack.pop()
        text, last = _chain(g, i, seen)
        label = (f"[{handle}] " if handle else "") + text
        lines.append(lead + label)
        if last is None:
            continue
        kids = g.succs[last]
        for k in reversed(range(len(kids))):
            end = k == len(kids) - 1
            stack.append(
                (
                    kids[k],
                    child_lead + ("`-- " if end else "+-- "),
                    child_lead + ("    " if end else "|   "),
                    g.handles.get((last, kids[k])),
                )
            )
    return "\n".join(lines)


def _chain(g: Graph, i: int, seen: set[int]) -> tuple[str, int | None]:
    """``a -> b -> c`` for a run of steps with one successor each that only it feeds.

    Returns the text and the last step, whose successors come next (None if seen before).
    """
    if i in seen:
        return f"{_name(g, i)} (see above)", None
    parts = []
    while True:
        seen.add(i)
        parts.append(_name(g, i))
        succs = g.succs[i]
        if len(succs) != 1 or len(g.preds[succs[0]]) != 1 or (i, succs[0]) in g.handles:
            return " -> ".join(parts), i
        i = succs[0]


def _name(g: Graph, i: int) -> str:
    """The step's id, with its kind for the steps that steer the flow."""
    kind = g.steps[i].kind
    return f"{g.ids[i]} ({kind})" if kind in ("condition", "merge") else g.ids[i]


_RENDERERS: dict[str, Callable[[Workflow, Graph], str]] = {
    "mermaid": _mermaid,
    "dot": _dot,
    "levels": _levels,
    "ascii": _ascii,
}


# -- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    The current directory goes first on ``sys.path``, as with ``python -m pardag``, so that
    ``function: module:callable`` steps find the project's own modules.
    """
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import pardag.cli_runs  # noqa: F401  (registers the run-store commands)

    try:
        app(args=list(argv) if argv is not None else None, prog_name="pardag")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else ExitCode.FAILED)
    return ExitCode.SUCCEEDED
