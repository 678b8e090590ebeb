"""What a workflow is: steps, settings, and the graph a valid workflow compiles to.

A ``Workflow`` is a named, ordered set of ``Step`` objects plus ``Settings``, built with
``@wf.step`` and ``wf.add``. Nothing runs until it validates: ``compile()`` hands it to
``pardag.validate``, which collects every problem (duplicate ids, unknown dependencies with the
closest existing id, cycles printed as their path, bad parameters) and raises them together,
or returns a ``Graph``: steps numbered in declaration order with flat predecessor/successor
lists, which the scheduler and the analyses here (levels, upward rank, critical path) use.

This module is the bottom of the model: it imports no kind, executor or template engine.
``Workflow.compile`` and ``Workflow.run`` are facades that import the layers above them
(``pardag.validate``, ``pardag.run``) when called, so that reading or building a workflow
costs none of that.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from pardag import settings_rules as rules
from pardag.errors import ArgumentError
from pardag.options import SETTING_OPTIONS, STEP_OPTIONS, RunOptions, StepOptions, check_options
from pardag.retrying import RetryPolicy, as_retry_policy, retry_policy
from pardag.states import Mode, OnFailure, Trigger

if TYPE_CHECKING:
    from pardag.results import RunResult
    from pardag.triggers import TriggerSpec

__all__ = [
    "Graph",
    "RetryPolicy",
    "Settings",
    "Step",
    "Workflow",
    "param_problem",
    "retry_policy",
    "settings_problems",
    "with_overrides",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
RESERVED_PARAMS = frozenset({"inputs", "params"})
"""Parameter names a Python step receives specially: all inputs, and the run's params."""
F = TypeVar("F", bound=Callable[..., Any])


class _SharedEmpty(dict[Any, Any]):
    """The empty mapping every step shares as its default ``params``, ``resources``, ``branch``.

    One object instead of three dicts per step (a million-step graph saves ~190 MB). It cannot
    be changed in place; give a step its own dict instead.
    """

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]  # dataclasses accept hashable defaults
        return 0

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a step's default mapping is shared and read-only; assign a new dict")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse


EMPTY: Any = _SharedEmpty()


@dataclass(slots=True)
class Step:
    """One step of a workflow. See DESIGN §1; ``branch`` maps a dependency to a handle.

    A step with ``branch={"check": "true"}`` runs only when condition step ``check`` chose the
    handle ``"true"``; otherwise it is skipped with the reason "branch not taken".
    """

    id: str
    fn: Callable[..., Any] | None = None
    kind: str = "python"
    depends_on: tuple[str, ...] = ()
    params: dict[str, Any] = field(default=EMPTY)
    retry: RetryPolicy | None = None
    timeout: float | None = None
    when: str | Callable[..., Any] | None = None
    trigger: Trigger = Trigger.ALL_SUCCESS
    critical: bool = True
    cache: Any = None
    resources: dict[str, int] = field(default=EMPTY)
    priority: int = 0
    executor: str | None = None
    estimate: float | None = None
    branch: dict[str, str] = field(default=EMPTY)
    map_over: str | tuple[str, ...] | None = None  # mapped: one instance ``id[k]`` per item
    map_concurrency: int | None = None  # the most instances of this mapped step running
    max_items: int | None = None  # the longest list it maps over (None: MAX_ITEMS)
    allow_failures: int | float | None = None  # failed instances a map may end with
    isolation: str | None = None  # "process": on dask, a subprocess of the worker (killable)

    def map_sources(self) -> tuple[str, ...]:
        """The steps whose lists this step maps over, zipped (none: it is not mapped)."""
        over = self.map_over
        return () if over is None else (over,) if isinstance(over, str) else over


@dataclass(slots=True)
class Settings:
    """Execution settings of a run; every field can be overridden per call of ``run``."""

    mode: Mode = Mode.DYNAMIC
    max_concurrency: int = 0
    on_failure: OnFailure = OnFailure.FAIL_FAST
    timeout: float | None = None
    pools: dict[str, int | tuple[int, float]] = field(default_factory=dict)
    executor: str | None = None
    http_allow: tuple[str, ...] = ()
    """Where HTTP steps may connect (``pardag.egress``); empty: anywhere not denied."""
    http_deny: tuple[str, ...] = ()
    """Where HTTP steps may not connect (``("private",)``: the local network)."""
    dask_address: str | None = None
    """The Dask scheduler steps on ``executor="dask"`` run on; None: a LocalCluster."""
    keep_outputs_on_cluster: bool = False
    """Outputs of steps on ``dask`` that nothing in the runner reads stay on the cluster
    (``pardag.executors.dask_data.KeptOnCluster`` in their place; docs/scale-out.md)."""


@dataclass(slots=True)
class Graph:
    """A validated workflow as flat arrays indexed by step number (declaration order)."""

    steps: list[Step]
    ids: list[str]
    index: dict[str, int]
    preds: list[tuple[int, ...]]
    succs: list[tuple[int, ...]]
    handles: dict[tuple[int, int], str]
    order: list[int]  # a topological order

    def levels(self) -> list[int]:
        """Level of each step: 0 without dependencies, else 1 + the deepest dependency's level."""
        level = [0] * len(self.ids)
        for i in self.order:
            for p in self.preds[i]:
                if level[p] + 1 > level[i]:
                    level[i] = level[p] + 1
        return level

    def upward_rank(self, durations: Sequence[float] | None = None) -> list[float]:
        """Longest path from each step to an exit, counting the step's own duration.

        ``durations`` defaults to each step's ``estimate``, else 1.
        """
        cost = list(durations) if durations is not None else self.estimates()
        rank = [0.0] * len(self.ids)
        for i in reversed(self.order):
            best = 0.0
            for s in self.succs[i]:
                if rank[s] > best:
                    best = rank[s]
            rank[i] = cost[i] + best
        return rank

    def estimates(self) -> list[float]:
        """Each step's declared duration estimate, 1.0 where none was given."""
        return [1.0 if s.estimate is None else s.estimate for s in self.steps]

    def critical_path(self, durations: Sequence[float] | None = None) -> list[str]:
        """The ids along the longest path through the graph (by duration), first to last."""
        if not self.ids:
            return []
        rank = self.upward_rank(durations)
        roots = [i for i in range(len(self.ids)) if not self.preds[i]]
        node = max(roots, key=lambda i: (rank[i], -i))
        path = [node]
        while self.succs[node]:
            node = max(self.succs[node], key=lambda s: (rank[s], -s))
            path.append(node)
        return [self.ids[i] for i in path]


class Workflow:
    """A named DAG of steps. Build it with ``@wf.step`` or ``wf.add``, then ``wf.run()``.

    Args:
        name: shown in messages, events and the run store.
        mode, max_concurrency, on_failure, timeout, pools, executor, dask_address,
            keep_outputs_on_cluster: the default ``Settings`` of its runs; ``run()`` can
            override each.
        params: the params its runs take, with their defaults; a run given another one fails
            (see ``param_problem``), as does a template or expression reading another one.
        extra_params: True to take params besides those declared (the default when
            ``params`` is not given).
        secrets: the names of the secrets its runs need and its templates read
            (``secrets.NAME``); see ``pardag.Secret``.
    """

    def __init__(
        self,
        name: str = "workflow",
        *,
        mode: Mode | str = Mode.DYNAMIC,
        max_concurrency: int = 0,
        on_failure: OnFailure | str = OnFailure.FAIL_FAST,
        timeout: float | None = None,
        pools: Mapping[str, int | tuple[int, float]] | None = None,
        executor: str | None = None,
        dask_address: str | None = None,
        keep_outputs_on_cluster: bool = False,
        params: Mapping[str, Any] | None = None,
        extra_params: bool | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.settings = Settings(
            mode=_enum(Mode, mode, "mode", rules.mode),
            max_concurrency=max_concurrency,
            on_failure=_enum(OnFailure, on_failure, "on_failure", rules.on_failure),
            timeout=timeout,
            pools=dict(pools or {}),
            executor=executor,
            dask_address=dask_address,
            keep_outputs_on_cluster=keep_outputs_on_cluster,
        )
        self._steps: dict[str, Step] = {}
        self._duplicates: list[str] = []
        self._graph: Graph | None = None
        self.source: str | None = None
        """The file this workflow was read from, when it came from one."""
        self.locations: dict[str, str] = {}
        """Where each step is declared in ``source`` (``"flow.yaml:12"``), for problems."""
        self.field_locations: dict[tuple[str, str], str] = {}
        """Where each step's fields are, by (step id, field): problems with a field point there."""
        self.definition = ""
        """A snapshot of the file it came from (its text), which the run store records."""
        self.definition_format = "python"
        """``reader:syntax`` of ``definition`` (``native:yaml``), or ``python``."""
        self.import_path: str | None = None
        """``module:attribute`` this workflow can be imported from, for resuming its runs;
        found by looking in its steps' modules when not set."""
        self.params: dict[str, Any] = dict(params or {})
        """Default run params; a run's own ``params=`` are merged over them (top-level keys)."""
        self.extra_params: bool = params is None if extra_params is None else extra_params
        """Whether a run may give params the workflow does not declare. Declaring params
        (``params=`` here, ``params:`` in a file) makes it False unless said otherwise, so a
        misspelt ``--set enviro=prod`` is an error, not a silently unused value."""
        self.secrets: tuple[str, ...] = tuple(secrets)
        """The secrets its runs need (``secrets:`` in a file): each must have a value when a
        run starts (``PARDAG_SECRET_<NAME>``, a secrets file, ``run(secrets=)``)."""
        self.triggers: tuple[TriggerSpec, ...] = ()
        """What starts its runs once stored in ``pardag serve`` (``triggers:`` in a file):
        webhooks and schedules (``pardag.triggers``); a run started here ignores them."""
        self.file_settings: dict[str, Any] = {}
        """The settings the workflow file itself declared (its ``execution:`` section), so
        that configuration layers above and below it can be told apart."""
        self.format_settings: dict[str, Any] = {}
        self.refuse_param: Callable[[str], str | None] | None = None
        """A rule of the file's format: why a run param may not be given (None: it may)."""
        """Defaults the file's format sets in place of pardag's (a node graph of the visual
        editors continues after a failure), weaker than every layer that sets the value."""

    # -- building -------------------------------------------------------------------------

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self, fn: None = None, /, *, id: str | None = None, **options: Unpack[StepOptions]
    ) -> Callable[[F], F]: ...

    def step(
        self, fn: F | None = None, /, *, id: str | None = None, **options: Unpack[StepOptions]
    ) -> F | Callable[[F], F]:
        """Decorator adding a function as a step named after it.

        Dependencies are the function's parameters (except ``inputs``) unless ``depends_on``
        is given. Options are ``Step`` fields (``pardag.options.StepOptions``); ``retry`` also
        takes an int (that many retries). Returns the function unchanged, so it stays callable
        and testable on its own.
        """

        def register(func: F) -> F:
            self.add(id or func.__name__, func, **options)
            return func

        return register(fn) if fn is not None else register

    def map(
        self,
        over: str | Sequence[str],
        *,
        id: str | None = None,
        max_concurrency: int | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorator adding a mapped step: at run time, one instance ``id[k]`` per item of
        step ``over``'s output (a list), the item given as the function's first parameter;
        other dependencies are passed whole. Its output is the list of the instances' outputs.
        Several steps (``over=["a", "b"]``) are zipped: item k of each, as the first parameters."""
        return self.step(id=id, map_over=over, map_concurrency=max_concurrency, **options)

    def add(
        self,
        id: str,
        fn: Callable[..., Any] | Callable[..., Awaitable[Any]] | None = None,
        **options: Unpack[StepOptions],
    ) -> Step:
        """Add a step; the programmatic twin of ``@wf.step``, for generated graphs.

        ``depends_on`` (absent or None) is inferred from ``fn``'s parameter names.
        """
        check_options(options, STEP_OPTIONS, f"step {id!r}")
        fields: dict[str, Any] = dict(options)
        depends_on = fields.pop("depends_on", None)
        if isinstance(depends_on, str):
            depends_on = (depends_on,)
        if fields.get("kind") == "merge":
            fields.setdefault("trigger", Trigger.ANY_SUCCESS)
        over = fields.get("map_over")
        if over is not None and not isinstance(over, str):
            over = fields["map_over"] = tuple(over)  # zipped lists
        sources = () if over is None else (over,) if isinstance(over, str) else over
        deps = (
            tuple(depends_on)
            if depends_on is not None
            else _infer_deps(fn, self._steps, skip=len(sources))  # the items
        )
        deps = (*(s for s in sources if s not in deps), *deps)
        retry = as_retry_policy(fields.pop("retry", None), id)
        step = Step(id, fn, depends_on=deps, retry=retry, **fields)
        if id in self._steps:
            self._duplicates.append(id)
        else:
            self._steps[id] = step
        self._graph = None
        return step

    @property
    def steps(self) -> Mapping[str, Step]:
        """The steps by id, in declaration order."""
        return self._steps

    @property
    def duplicates(self) -> Sequence[str]:
        """Ids added more than once (each repeat listed); validation reports them."""
        return self._duplicates

    # -- checking and analysis ----------------------------------------------------------------

    def validate(self) -> None:
        """Raise ``ValidationError`` listing every problem; return None when all is well."""
        self.compile()

    def compile(self) -> Graph:
        """The validated ``Graph`` of this workflow (cached until the workflow changes)."""
        if self._graph is None:
            from pardag.validate import compile_workflow  # the facade: validation lies above

            self._graph = compile_workflow(self)
        return self._graph

    def topological_order(self) -> list[str]:
        """Step ids so that every step comes after its dependencies (declaration order ties)."""
        graph = self.compile()
        return [graph.ids[i] for i in graph.order]

    def levels(self) -> list[list[str]]:
        """Steps grouped by level, ids sorted as strings within a level."""
        graph = self.compile()
        groups: dict[int, list[str]] = {}
        for i, level in enumerate(graph.levels()):
            groups.setdefault(level, []).append(graph.ids[i])
        return [sorted(groups[level]) for level in sorted(groups)]

    def critical_path(self) -> list[str]:
        """The longest path by declared estimates (1 each where none is given)."""
        return self.compile().critical_path()

    # -- running -----------------------------------------------------------------------------

    def run(self, **options: Unpack[RunOptions]) -> RunResult:
        """Run the workflow to the end on a fresh event loop and return its ``RunResult``.

        ``options`` (``pardag.options.RunOptions``): settings for this run only (``mode``,
        ``max_concurrency``, ``on_failure``, ``timeout``, ``pools``, ``executor``,
        ``http_allow``, ``http_deny``), and ``listeners``, ``params``, ``store``, ``encoder``,
        ``cache``, ``clock``. The first
        Ctrl-C cancels the run cleanly; a second leaves at once.
        """
        from pardag.runner import run_sync  # the facade: the runner lies above the model

        return run_sync(self, options)

    async def run_async(self, **options: Unpack[RunOptions]) -> RunResult:
        """Run the workflow inside the running event loop; options as for ``run``.

        ``store`` (a ``pardag.store.Store`` or a URL; default ``PARDAG_STORE``) records the
        run durably; ``encoder=`` turns outputs JSON cannot hold into ones it can.
        ``cache=False`` runs steps with ``cache`` set instead of taking their stored outputs
        (their fresh outputs still replace the stored ones).
        """
        from pardag.runner import run_workflow

        return await run_workflow(self, options)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, {len(self._steps)} steps)"


# -- helpers for building ---------------------------------------------------------------------


E = TypeVar("E", bound=StrEnum)


def _enum(cls: type[E], value: E | str, what: str, rule: Callable[[object], str | None]) -> E:
    """``value`` as a member of ``cls``, if ``rule`` (``pardag.settings_rules``) accepts it."""
    if rule(value) is not None:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ArgumentError(f"{what}={value!r} is not valid; use one of {allowed}")
    return cls(value)


def _infer_deps(
    fn: Callable[..., Any] | None, known: Mapping[str, Step], *, skip: int = 0
) -> tuple[str, ...]:
    """Dependencies named by ``fn``'s parameters: required ones, and defaulted ones naming steps
    (but not the first ``skip``, a mapped step's items)."""
    try:
        params = list(inspect.signature(fn).parameters.values()) if fn is not None else []
    except (TypeError, ValueError):  # not callable, or no signature: validation says which
        return ()
    params = params[skip:]
    deps = []
    for p in params:
        if p.name in RESERVED_PARAMS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty or p.name in known:
            deps.append(p.name)
    return tuple(deps)


RESERVED_RUN_PARAMS = ("approvals",)
"""Run params every workflow takes: answers to approval steps (``approvals`` or
``approvals.STEP``, see ``pardag.kinds.approval``)."""


def param_problem(wf: Workflow, name: str) -> str | None:
    """Why ``wf`` does not take the run param ``name`` (with the closest declared one), or
    None when it does: it declares it, takes any, or every workflow takes it."""
    refused = wf.refuse_param(name) if wf.refuse_param is not None else None
    if refused is not None:
        return refused
    if wf.extra_params or name in wf.params:
        return None
    if name.partition(".")[0] in RESERVED_RUN_PARAMS:
        return None
    declared = sorted(wf.params)
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"workflow {wf.name!r} has no param {name!r} (it declares "
        f"{', '.join(declared) or 'none'}); {hint}declare it in the workflow's params, "
        "or let it take any (extra_params)"
    )


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """``settings`` with ``overrides`` (field: value) applied, checked; the original stays."""
    check_options(overrides, SETTING_OPTIONS, "the run settings")
    merged = {f: getattr(settings, f) for f in Settings.__dataclass_fields__}
    merged.update(overrides)
    merged["mode"] = _enum(Mode, merged["mode"], "mode", rules.mode)
    merged["on_failure"] = _enum(OnFailure, merged["on_failure"], "on_failure", rules.on_failure)
    for name in ("http_allow", "http_deny"):  # a list or "a,b" as a tuple, when it is valid
        if rules.http_entries(merged[name]) is None:
            merged[name] = rules.http_list(merged[name])
    result = Settings(**merged)
    problems = settings_problems(result)
    if problems:
        raise ArgumentError("; ".join(problems))
    return result


def settings_problems(s: Settings) -> list[str]:
    """What is wrong with these settings, each message naming the setting and the fix.

    The rules come from ``pardag.settings_rules``. The Python API takes values as
    ``Settings`` holds them (seconds, not ``"2m"``) and hands them to the rules unparsed; so,
    as it always has, it takes ``True`` as a pool size of 1 (files and config refuse a bool),
    and a timeout or rate that is not a number raises ``TypeError`` in the rule's comparison.
    """
    out = []
    if not rules.is_integer(s.max_concurrency):
        out.append(f"max_concurrency must be an int (0 = auto), got {s.max_concurrency!r}")
    elif rules.max_concurrency(s.max_concurrency) is not None:
        out.append(f"max_concurrency must be >= 0 (0 = auto), got {s.max_concurrency}")
    if rules.timeout(s.timeout) is not None:
        out.append(f"timeout must be a positive number of seconds, got {s.timeout!r}")
    if s.executor is not None and rules.executor(s.executor) is not None:
        out.append(
            f"executor={s.executor!r} is not valid for a run; use {_either(rules.EXECUTORS)} "
            "(async def steps always run on the event loop)"
        )
    if rules.dask_address(s.dask_address) is not None:
        expected = rules.dask_address(s.dask_address)
        out.append(f"dask_address must be {expected}, got {s.dask_address!r}")
    if not isinstance(s.keep_outputs_on_cluster, bool):
        got = s.keep_outputs_on_cluster
        out.append(f"keep_outputs_on_cluster must be True or False, got {got!r}")
    for name in ("http_allow", "http_deny"):
        words = rules.http_entries(getattr(s, name))
        if words is not None:
            out.append(f"{name}: expected {words}")
    for name, spec in s.pools.items():
        size = spec[0] if isinstance(spec, tuple) else spec
        rate = spec[1] if isinstance(spec, tuple) else None
        if size is not True and rules.pool_size(size) is not None:  # True: kept, a size of 1
            out.append(f"pool {name!r} must have a size >= 1, got {size!r}")
        if rate is not None and rules.pool_rate(rate) is not None:
            out.append(f"pool {name!r} rate must be > 0 per second, got {rate!r}")
    return out


def _either(names: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``."""
    *rest, last = (repr(n) for n in names)
    return f"{', '.join(rest)} or {last}" if rest else last
