"""Step output caching: a step whose cache key has a stored successful output is not run again.

A step opts in with ``cache=True`` (``cache: true`` in a file) or
``cache={"key": TEMPLATE, "ttl": DURATION}``. The cache lives in the run store (table
``cache``), so it outlives the process and is shared by every run that uses that store.

The key is a SHA-256 digest of canonical JSON (sorted keys, no spaces): of the step's
definition, a newline, then of its inputs (or of its rendered ``key`` template), so the same
step with the same inputs gets the same key in every process. By default it covers:

* the key scheme's version (``1``), the workflow's name and the step's id: a cache is one
  step's own, never shared between steps that happen to look alike;
* the step's kind and its params as written (templates unrendered);
* for a Python callable (``fn=`` or ``function: module:callable``) its fingerprint, see
  :func:`function_fingerprint`: editing the function's body runs the step again;
* the run's params (they are also what ``params.x`` and ``trigger.x`` read), and its trigger
  data when it has some (then what ``trigger.x`` reads, ``pardag.triggerdata``);
* the inputs, by dependency id.

It leaves out what decides *whether* or *how* a step runs rather than what it returns
(``retry``, ``timeout``, ``when``, ``trigger``, ``executor``, ``priority``, ...), the
environment, and functions the step's function calls by name. A ``key`` template replaces all
of that: the template is rendered with the step's template names (``inputs``, ``steps``,
``params``, ``trigger``, ``env``) and hashed with only the workflow's name and the step's id.

Inputs or params that JSON cannot hold (even with the run's ``encoder``) make the step
uncacheable for that run: it runs, and a ``RuntimeWarning`` says why.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import json
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pardag.store.base import CacheEntry, Store
from pardag.templates import namespace, render, template_problems
from pardag.triggerdata import TriggeredParams
from pardag.units import parse_duration

if TYPE_CHECKING:
    from pardag.kinds.base import RunContext
    from pardag.model import Step

__all__ = [
    "CACHE_OPTIONS",
    "KEY_VERSION",
    "CachePolicy",
    "cache_entry",
    "cache_policies",
    "cache_problems",
    "canonical_json",
    "function_fingerprint",
    "lookup",
    "wants_cache",
]

KEY_VERSION = 1
"""Part of every key: changing what goes into keys bumps it, so old entries stop matching."""

CACHE_OPTIONS = ("key", "ttl")
"""The options of ``cache={...}``."""

Encoder = Callable[[Any], Any]

_EXAMPLE = "e.g. cache: true, or cache: {key: '{{ inputs.url }}', ttl: 1h}"
_MAX_DEPTH = 32
"""How deep function fingerprints follow closures and defaults (nested functions)."""


# -- validation ---------------------------------------------------------------------------------


def wants_cache(step: Step) -> bool:
    """Whether ``step`` asks for caching (``cache=True`` or a mapping; None/False do not)."""
    return step.cache is not None and step.cache is not False


def cache_problems(step: Step) -> list[str]:
    """What is wrong with ``step.cache``, each message saying how to fix it."""
    value = step.cache
    if value is None or value is False:
        return []
    if value is not True and not isinstance(value, Mapping):
        return [f"cache must be true, false or a mapping of key and ttl, got {value!r}; {_EXAMPLE}"]
    options: Mapping[Any, Any] = value if isinstance(value, Mapping) else {}
    out = [_unknown_option(name) for name in options if name not in CACHE_OPTIONS]
    if "key" in options:
        out += _key_problems(options["key"])
    elif not _is_json(step.params):
        out.append(
            "cache: the step's params are not JSON, so they cannot be part of its cache key; "
            "give the key yourself, e.g. cache={'key': '{{ inputs }}'}"
        )
    if options.get("ttl") is not None:
        out += _ttl_problems(options["ttl"])
    return out


def _unknown_option(name: object) -> str:
    close = difflib.get_close_matches(str(name), CACHE_OPTIONS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"cache has no option {name!r}; {hint}(the options are {', '.join(CACHE_OPTIONS)})"


def _key_problems(key: object) -> list[str]:
    if not isinstance(key, str) or not key.strip():
        return [
            f"cache.key must be a non-empty string (a template such as "
            f"'{{{{ inputs.url }}}}'), got {key!r}"
        ]
    return template_problems(key, "cache.key")


def _ttl_problems(ttl: object) -> list[str]:
    try:
        seconds = parse_duration(ttl, "cache.ttl")
    except ValueError as exc:
        return [str(exc)]
    if seconds <= 0:
        return [f"cache.ttl must be more than 0, got {ttl!r}; leave ttl out to never expire"]
    return []


def _is_json(value: Any, encoder: Encoder | None = None) -> bool:
    try:
        canonical_json(value, encoder)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return False
    return True


# -- keys ---------------------------------------------------------------------------------------


def canonical_json(value: Any, default: Encoder | None = None) -> str:
    """``value`` as JSON with sorted keys and no spaces: equal values give equal text.

    Raises TypeError or ValueError (NaN, infinities) when JSON cannot hold ``value``.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=default
    )


class CachePolicy:
    """A step's caching in one run: how to make its key from its inputs, and its ``ttl``.

    Built once per step per run (:meth:`of`), so the step's definition and the function's
    fingerprint are encoded and hashed once, not per attempt.
    """

    __slots__ = (
        "_ctx",
        "_encoder",
        "_prefix",
        "_problem",
        "_template",
        "_warned",
        "step_id",
        "ttl",
    )

    def __init__(
        self,
        step_id: str,
        ttl: float | None,
        ctx: RunContext,
        *,
        definition: Mapping[str, Any] | None = None,
        template: str | None = None,
        problem: str | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.step_id = step_id
        self.ttl = ttl
        """Seconds a stored output stays usable; None: for ever."""
        self._ctx = ctx
        self._template = template
        self._problem = problem
        self._encoder = encoder
        self._warned = False
        head = {"cache": KEY_VERSION, "workflow": ctx.workflow, "step": step_id}
        if definition is not None:
            head.update(definition)
        self._prefix = hashlib.sha256(canonical_json(head).encode() + b"\n")

    @classmethod
    def of(
        cls, step: Step, ctx: RunContext, *, encoder: Encoder | None = None
    ) -> CachePolicy | None:
        """The policy of a validated ``step`` in the run ``ctx``; None when it is not cached."""
        if not wants_cache(step):
            return None
        options: Mapping[str, Any] = step.cache if isinstance(step.cache, Mapping) else {}
        ttl = options.get("ttl")
        seconds = None if ttl is None else parse_duration(ttl, "cache.ttl")
        if "key" in options:
            return cls(step.id, seconds, ctx, template=options["key"], encoder=encoder)
        definition, problem = _definition(step, ctx, encoder)
        return cls(step.id, seconds, ctx, definition=definition, problem=problem, encoder=encoder)

    def key(self, inputs: Mapping[str, Any]) -> str | None:
        """The cache key for these inputs, or None (with a warning) when there is none.

        A ``key`` template that fails to render raises ``pardag.errors.ExpressionError``
        naming ``cache.key``: a mistake in the workflow, which fails the step.
        """
        if self._problem is not None:
            self._warn(self._problem)
            return None
        if self._template is not None:
            value: Any = render(self._template, namespace(inputs, self._ctx), where="cache.key")
        else:
            value = inputs
        try:
            text = canonical_json(value, self._encoder)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            self._warn(self._not_json(value, exc))
            return None
        digest = self._prefix.copy()
        digest.update(text.encode())
        return digest.hexdigest()

    def _not_json(self, value: Any, exc: BaseException) -> str:
        if self._template is not None:
            return f"its cache.key renders to a value JSON cannot hold ({exc})"
        for dep, output in value.items():
            if not _is_json(output, self._encoder):
                kind = type(output).__name__
                return f"its input from {dep!r} ({kind}) is not JSON ({exc})"
        return f"its inputs are not JSON ({exc})"

    def _warn(self, why: str) -> None:
        """Say once per run why the step runs without the cache; it still runs."""
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"step {self.step_id!r}: {why}, so it has no cache key and runs without the cache "
            "in this run; return JSON values, pass encoder= to run(), or give "
            "cache={'key': TEMPLATE}",
            RuntimeWarning,
            stacklevel=3,
        )


def _definition(
    step: Step, ctx: RunContext, encoder: Encoder | None
) -> tuple[dict[str, Any] | None, str | None]:
    """What the default key covers besides the inputs; or why there can be no key."""
    params = ctx.shared("pardag.caching.params", functools.partial(_json_or_none, ctx.params))
    if params is None:
        return None, "the run's params are not JSON"
    fn = _callable_of(step)
    fingerprint = None if fn is None else _memo_fingerprint(fn, ctx)
    definition = {"kind": step.kind, "params": step.params, "function": fingerprint}
    try:
        definition["params"] = json.loads(canonical_json(step.params, encoder))
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        return None, f"its params are not JSON ({exc})"
    definition["run_params"] = json.loads(params)
    if isinstance(ctx.params, TriggeredParams):  # what trigger.x reads: its data (triggerdata)
        data = ctx.params.trigger
        trigger = ctx.shared("pardag.caching.trigger", functools.partial(_json_or_none, data))
        if trigger is None:
            return None, "the run's trigger data is not JSON"
        definition["trigger"] = json.loads(trigger)
    return definition, None


def _json_or_none(value: Any) -> str | None:
    try:
        return canonical_json(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def _callable_of(step: Step) -> Callable[..., Any] | None:
    """The Python function a step calls (``fn=`` or ``function:``), when it calls one."""
    if callable(step.fn):
        return step.fn
    spec = step.params.get("function") if step.kind == "python" else None
    if not isinstance(spec, str):
        return None
    from pardag.kinds.python import resolve_function

    try:
        fn = resolve_function(spec)
    except Exception:  # validation reports it; the params still name it
        return None
    return fn if callable(fn) else None


def _memo_fingerprint(fn: Callable[..., Any], ctx: RunContext) -> str:
    """``function_fingerprint(fn)``, once per function per run (generated graphs share one)."""
    memo: dict[int, tuple[Any, str]] = ctx.shared("pardag.caching.functions", dict)
    found = memo.get(id(fn))
    if found is not None and found[0] is fn:
        return found[1]
    digest = function_fingerprint(fn)
    with ctx.lock:
        memo[id(fn)] = (fn, digest)
    return digest


# -- function fingerprints ----------------------------------------------------------------------


def function_fingerprint(fn: Callable[..., Any]) -> str:
    """A SHA-256 digest of what decides what ``fn`` computes, the same in every process.

    It covers the function's module and qualified name, its code (bytecode, constants, the
    global and attribute names it uses, local names, argument counts and flags; nested
    functions, lambdas and comprehensions likewise), its defaults, and the values its closure
    captured: JSON values as they are, functions by their own fingerprint, other objects by
    their type only. Line numbers are left out, so moving a function in its file changes
    nothing. ``functools.partial`` adds its arguments; a bound method counts its function and
    the type it is bound to; other callables count by their type's ``__call__`` or their name.
    """
    text = canonical_json(_describe_callable(fn, set(), 0))
    return hashlib.sha256(text.encode()).hexdigest()


def _name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{qualname}"


def _describe_callable(fn: Any, seen: set[int], depth: int) -> Any:
    if id(fn) in seen or depth > _MAX_DEPTH:
        return ["again", _name(fn)]
    seen = seen | {id(fn)}
    if isinstance(fn, functools.partial):
        args = [_describe_value(a, seen, depth + 1) for a in fn.args]
        kwargs = {k: _describe_value(v, seen, depth + 1) for k, v in fn.keywords.items()}
        return ["partial", _describe_callable(fn.func, seen, depth + 1), args, kwargs]
    if inspect.ismethod(fn):
        bound = _name(type(fn.__self__))
        return ["method", _describe_callable(fn.__func__, seen, depth + 1), bound]
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        return ["function", _name(fn), _describe_code(code), *_captured(fn, seen, depth)]
    call = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), None)
    if isinstance(getattr(call, "__code__", None), types.CodeType):
        return ["object", _name(type(fn)), _describe_callable(call, seen, depth + 1)]
    return ["callable", _name(fn)]


def _captured(fn: Any, seen: set[int], depth: int) -> list[Any]:
    """The function's defaults, keyword defaults and closure values, described."""
    defaults = [_describe_value(v, seen, depth + 1) for v in fn.__defaults__ or ()]
    kwdefaults = {
        k: _describe_value(v, seen, depth + 1) for k, v in (fn.__kwdefaults__ or {}).items()
    }
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(_describe_value(cell.cell_contents, seen, depth + 1))
        except ValueError:  # a cell not filled yet
            cells.append(["empty"])
    return [defaults, kwdefaults, cells]


def _describe_code(code: types.CodeType) -> list[Any]:
    return [
        code.co_code.hex(),
        [_describe_const(c) for c in code.co_consts],
        list(code.co_names),
        list(code.co_varnames),
        list(code.co_freevars),
        [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags],
    ]


def _describe_const(value: Any) -> Any:
    """A constant of a code object; frozensets sorted, since their order varies by process."""
    if isinstance(value, types.CodeType):
        return ["code", _describe_code(value)]
    if isinstance(value, tuple):
        return ["tuple", [_describe_const(v) for v in value]]
    if isinstance(value, frozenset):
        items = [_describe_const(v) for v in value]
        return ["frozenset", sorted(items, key=canonical_json)]
    return [type(value).__name__, repr(value)]


def _describe_value(value: Any, seen: set[int], depth: int) -> Any:
    """A default or a captured value: JSON as is, callables fingerprinted, else the type."""
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if isinstance(value, type):
        return ["type", _name(value)]
    if callable(value):
        return _describe_callable(value, seen, depth)
    try:
        canonical_json(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return ["object", _name(type(value))]
    return ["json", value]


# -- the store ----------------------------------------------------------------------------------


def lookup(store: Store, key: str, now: float, ttl: float | None = None) -> tuple[bool, Any]:
    """``(True, output)`` when ``key`` has a usable stored output at ``now``, else ``(False,
    None)``.

    Usable means not expired as stored and, when the step declares a ``ttl`` now, stored less
    than ``ttl`` seconds ago: shortening a step's ttl applies to outputs stored before. An
    entry whose JSON cannot be read counts as a miss (the fresh output replaces it).
    """
    entry = store.get_cache(key, now)
    if entry is None or (ttl is not None and now - entry.stored_at >= ttl):
        return False, None
    try:
        return True, json.loads(entry.output_json)
    except ValueError:
        return False, None


def cache_entry(
    key: str,
    output_json: str,
    now: float,
    ttl: float | None,
    run_id: str | None = None,
    step_id: str | None = None,
) -> CacheEntry:
    """What the store keeps for a successful output stored at ``now``: it expires ``ttl``
    seconds later (never when ``ttl`` is None)."""
    expires = None if ttl is None else now + ttl
    return CacheEntry(key, output_json, now, expires, run_id, step_id)


def cache_policies(
    steps: Sequence[Step],
    ctx: RunContext,
    *,
    stored: bool,
    encoder: Encoder | None = None,
) -> list[CachePolicy | None] | None:
    """Each step's policy for a run, or None when no step asks for caching (or, warning
    that nothing is cached, when the run has no store: ``stored`` False)."""
    wanting = [step.id for step in steps if wants_cache(step)]
    if not wanting:
        return None
    if not stored:
        shown = ", ".join(map(repr, wanting[:5])) + (", ..." if len(wanting) > 5 else "")
        warnings.warn(
            f"step {shown} asks for caching, but this run has no run store, so nothing is "
            "cached; pass store= to run() or set PARDAG_STORE",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return [CachePolicy.of(step, ctx, encoder=encoder) for step in steps]
