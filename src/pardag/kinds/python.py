"""The ``python`` kind: a Python function (plain or ``async def``) given through the API.

``inputs`` holds the outputs of the dependencies that succeeded; a parameter bound to one that
did not (possible under the ``all_done``, ``any_success`` and ``none_failed`` triggers) gets None.

How a function receives its dependencies' outputs (DESIGN §2, Data):

1. by name: a parameter named like a dependency gets its output; ``inputs`` gets the whole
   mapping; ``params`` gets the run's params; ``**kwargs`` gets every dependency not named;
2. failing that, a function with required positional parameters gets the outputs in
   ``depends_on`` order, one per parameter (defaulted ones fill only after the required ones;
   a function with defaulted parameters only, like ``lambda n=n: ...``, keeps its defaults);
3. a function with no required parameters gets nothing.
Anything else is a validation problem that says how to name the parameters.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, Binder, RunContext, no_inputs

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["PythonKind", "bind_function", "default_executor"]

_EXECUTORS = ("async", "threads", "processes", "inline")


_SIGNATURES: weakref.WeakKeyDictionary[Callable[..., Any], tuple[inspect.Parameter, ...] | None]
_SIGNATURES = weakref.WeakKeyDictionary()
"""Parameters by function: generated graphs reuse one function for thousands of steps."""


_ASYNC: weakref.WeakKeyDictionary[Callable[..., Any], bool] = weakref.WeakKeyDictionary()


def default_executor(fn: Callable[..., Any]) -> str:
    """``async`` for coroutine functions, ``threads`` for plain ones."""
    try:
        is_async = _ASYNC[fn]
    except (KeyError, TypeError):
        is_async = inspect.iscoroutinefunction(fn)
        with contextlib.suppress(TypeError):
            _ASYNC[fn] = is_async
    return "async" if is_async else "threads"


def _parameters(fn: Callable[..., Any]) -> tuple[inspect.Parameter, ...] | None:
    """``fn``'s parameters (None when it has no signature), looked up once per function."""
    try:
        return _SIGNATURES[fn]
    except (KeyError, TypeError):
        pass
    try:
        params: tuple[inspect.Parameter, ...] | None = tuple(
            inspect.signature(fn).parameters.values()
        )
    except (TypeError, ValueError):
        params = None
    with contextlib.suppress(TypeError):  # not every callable can be weakly referenced
        _SIGNATURES[fn] = params
    return params


def bind_function(fn: Callable[..., Any], deps: tuple[str, ...]) -> Binder | str:
    """A binder for calling ``fn`` with the outputs of ``deps``, or a message saying why not."""
    found = _parameters(fn)
    if found is None:
        return _positional(deps)
    if not found:
        return no_inputs
    params = list(found)
    by_name = _by_name(params, deps)
    if by_name is not None:
        return by_name
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    by_position = [p for p in params if p.kind in positional]
    required = [p for p in by_position if p.default is p.empty]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or (
        required and len(required) <= len(deps) <= len(by_position)
    ):
        return _positional(deps)
    if not required and not any(p.default is p.empty and p.kind == p.KEYWORD_ONLY for p in params):
        return no_inputs  # defaults only (``lambda n=n: ...``): called with nothing
    names = ", ".join(p.name for p in params if p.default is p.empty)
    return (
        f"function {getattr(fn, '__name__', fn)!r} needs ({names}) but the step depends on "
        f"{list(deps)}; name each parameter after a dependency, take one parameter 'inputs', "
        "or take one positional parameter per dependency"
    )


def _by_name(params: list[inspect.Parameter], deps: tuple[str, ...]) -> Binder | None:
    names: list[str] = []
    wants_inputs = wants_params = var_kw = False
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            var_kw = True
        elif p.kind == p.VAR_POSITIONAL:
            continue
        elif p.name == "inputs":
            wants_inputs = True
        elif p.name == "params":
            wants_params = True
        elif p.name in deps and p.kind != p.POSITIONAL_ONLY:
            names.append(p.name)
        elif p.default is p.empty:
            return None
    if not (names or wants_inputs or wants_params or var_kw) and deps:
        return None
    rest = tuple(d for d in deps if d not in names) if var_kw else ()
    bound = tuple(names)

    def bind(
        inputs: Mapping[str, Any], run_params: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs = {n: inputs.get(n) for n in bound}
        for n in rest:
            kwargs[n] = inputs.get(n)
        if wants_inputs:
            kwargs["inputs"] = dict(inputs)
        if wants_params:
            kwargs["params"] = run_params
        return (), kwargs

    return bind


def _positional(deps: tuple[str, ...]) -> Binder:
    def bind(
        inputs: Mapping[str, Any], run_params: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple([inputs.get(d) for d in deps]), {}

    return bind if deps else no_inputs


class PythonKind:
    """Runs ``step.fn``; see the module docstring for how inputs arrive."""

    fields: tuple[str, ...] = ()

    def problems(self, step: Step) -> list[str]:
        if step.fn is None or not callable(step.fn):
            return [f"a python step needs a callable, got {step.fn!r}; pass the function to add()"]
        binder = bind_function(step.fn, step.depends_on)
        out = [binder] if isinstance(binder, str) else []
        if step.executor is not None:
            out += executor_problems(step, step.fn)
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        assert step.fn is not None  # validated
        binder = bind_function(step.fn, step.depends_on)
        assert not isinstance(binder, str)  # validated
        return Action(step.fn, step.executor or default_executor(step.fn), binder)


def executor_problems(step: Step, fn: Callable[..., Any]) -> list[str]:
    """Messages for an executor the step names that does not exist or cannot run ``fn``."""
    if step.executor is None:
        return []
    if step.executor not in _EXECUTORS:
        return [f"executor {step.executor!r} is unknown; use one of {', '.join(_EXECUTORS)}"]
    is_async = default_executor(fn) == "async"
    if is_async and step.executor != "async":
        return [
            f"an async def function runs on the 'async' executor, not {step.executor!r}; "
            "drop executor= or make the function a plain def"
        ]
    if not is_async and step.executor == "async":
        return [
            "executor 'async' needs an async def function; use 'threads', 'processes' or "
            "'inline' for a plain function"
        ]
    return []


KINDS = {"python": PythonKind()}
