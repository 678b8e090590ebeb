"""The ``python`` kind: a Python function (plain or ``async def``), given three ways.

* ``fn``: a function given through the API (``wf.add("x", fn)``);
* ``params={"function": "package.module:callable"}``: a function importable by name. Validation
  finds and parses the module without importing it (``pardag.kinds.locate``: checking a file
  runs none of its code), so a missing module or name, a syntax error or parameters that
  cannot bind are validation problems; the module is imported when the step is about to run,
  and a module that fails to import then fails the step. Modules are found on ``sys.path``;
* ``params={"code": "def run(inputs):\n    ..."}``: inline code defining ``run``, compiled at
  validation (a syntax error is a problem naming the line), executed in a fresh namespace on
  every attempt, in a worker process unless the step names another executor (see
  ``pardag.kinds.pycode``). Binding reads ``run``'s own parameters (decorators are not looked
  through).

The executor defaults to ``async`` for ``async def`` functions and ``threads`` otherwise, and to
``processes`` for ``code``.

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

import ast
import contextlib
import difflib
import importlib
import inspect
import sys
import traceback
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.child import Limits
from pardag.errors import PythonStepError
from pardag.kinds import locate, pycode
from pardag.kinds.base import Action, Binder, RunContext, no_inputs
from pardag.kinds.cluster import OnWorker
from pardag.kinds.pycode import Def, compile_code
from pardag.states import EXECUTORS, ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["PythonKind", "bind_function", "default_executor", "resolve_function"]

_EXECUTORS = EXECUTORS


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
    return ExecutorName.ASYNC if is_async else ExecutorName.THREADS


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
    """Runs ``step.fn``, a ``function`` by name or inline ``code``; see the module docstring."""

    fields: tuple[str, ...] = ("function", "code", "limits")
    item_inputs = True  # mapped from a file: ``run(inputs)`` gets inputs 'item', 'item_index'
    cluster = True  # may run on a Dask worker (a code step: pardag.kinds.pycode.CodeOnWorker)

    def problems(self, step: Step) -> list[str]:
        if step.fn is not None and not step.params and callable(step.fn):  # the common case
            return _callable_problems(step, step.fn)
        given = [name for name in ("function", "code") if name in step.params]
        if step.fn is not None and given:
            return [f"give the function once: either fn= or params {given[0]!r}, not both"]
        if len(given) == 2:
            return ["give either params 'function' or 'code', not both"]
        if given == ["function"]:
            return _function_problems(step)
        if given == ["code"]:
            return _code_problems(step) + pycode.limits_problems(step)
        if "limits" in step.params:
            return ["limits apply to code steps (params code:), which run in a worker process"]
        if step.fn is None or not callable(step.fn):
            return [
                f"a python step needs a callable, got {step.fn!r}; pass the function to add(), "
                "or give params function: 'package.module:callable' or code: 'def run(inputs): ...'"
            ]
        return _callable_problems(step, step.fn)

    def action(self, step: Step, ctx: RunContext) -> Action:
        if "code" in step.params:
            return _code_action(step)
        if step.fn is not None:
            fn = step.fn
            binder = bind_function(fn, step.depends_on)
            assert callable(fn) and not isinstance(binder, str)  # validated
            return Action(fn, step.executor or default_executor(fn), binder)
        return _function_action(step)


def _callable_problems(step: Step, fn: Callable[..., Any]) -> list[str]:
    binder = bind_function(fn, step.depends_on)
    out = [binder] if isinstance(binder, str) else []
    return out + executor_problems(step, fn) if step.executor is not None else out


# --- functions by name ------------------------------------------------------------------


def resolve_function(spec: str) -> Any:
    """The object ``"package.module:attr.path"`` names; raises ImportError/AttributeError."""
    module_name, _, path = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _function_problems(step: Step) -> list[str]:
    spec = step.params["function"]
    example = "e.g. function: 'myproject.steps:clean'"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        return [f"params 'function' must be 'package.module:callable', got {spec!r}; {example}"]
    module_name, _, path = spec.partition(":")
    module = sys.modules.get(module_name)
    if module is None or _importing(module):  # validation imports nothing: importing runs
        return _source_problems(step, spec, module_name, path)  # the module's code
    obj: Any = module
    for done, part in enumerate(path.split(".")):
        if not hasattr(obj, part):
            owner = ".".join([module_name, *path.split(".")[:done]])
            names = [name for name in dir(obj) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return [f"function {spec!r}: {owner!r} has no attribute {part!r}{hint}"]
        obj = getattr(obj, part)
    if not callable(obj):
        return [f"function {spec!r} is a {type(obj).__name__}, not something callable"]
    return _callable_problems(step, obj)


def _importing(module: Any) -> bool:
    """Whether another thread is importing ``module`` right now (a worker's runs validate
    at once): it is in ``sys.modules`` without all its names yet, so only its source tells."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _source_problems(step: Step, spec: str, module_name: str, path: str) -> list[str]:
    """What the module's source shows wrong, found without importing it (``kinds.locate``)."""
    found = locate.find_source(module_name, spec)
    if found.problem is not None:
        return [found.problem]
    names = None if found.tree is None else locate.top_level_names(found.tree)
    if names is None:
        return []  # only the run's import can tell
    first = path.split(".")[0]
    node = names.get(first)
    if node is None:
        return [locate.missing_name(spec, module_name, first, names)]
    if "." in path or not isinstance(node, Def) or node.decorator_list:
        return []  # a method, a name made at import, a decorated function: checked at run
    stub = _signature_stub(node)
    stub.__name__ = stub.__qualname__ = node.name  # messages name the author's function
    binder = bind_function(stub, step.depends_on)
    return [binder] if isinstance(binder, str) else executor_problems(step, stub)


def _function_action(step: Step) -> Action:
    """The call of ``function:``, imported now that the step is about to run; a module that
    fails to import or a function its inputs cannot bind to fails the step, saying why."""
    spec: str = step.params["function"]
    module_name = spec.partition(":")[0]
    try:
        fn = resolve_function(spec)
    except Exception as exc:
        return _failing(step, _import_problem(spec, module_name, exc))
    if not callable(fn):
        return _failing(step, f"function {spec!r} is a {type(fn).__name__}, not callable")
    binder = bind_function(fn, step.depends_on)
    if isinstance(binder, str):
        return _failing(step, f"function {spec!r}: {binder}")
    return Action(fn, step.executor or default_executor(fn), binder)


def _failing(step: Step, message: str) -> Action:
    """An action that fails the step with ``message`` (what validation could not see)."""

    def fail() -> None:
        raise PythonStepError(f"step {step.id!r}: {message}; fix the module or the step")

    return Action(fail, ExecutorName.INLINE, no_inputs)


def _import_problem(spec: str, module_name: str, exc: BaseException) -> str:
    """Why importing ``module_name`` failed, in words, with the place for errors inside it."""
    if isinstance(exc, ModuleNotFoundError) and exc.name is not None:
        if module_name == exc.name or module_name.startswith(exc.name + "."):
            return (
                f"function {spec!r}: no module named {exc.name!r}; check the spelling, install "
                "it, or run from the directory that holds it (modules are found on sys.path)"
            )
        return (
            f"function {spec!r}: importing {module_name!r} failed: it needs the module "
            f"{exc.name!r}, which is not installed"
        )
    place = ""
    if isinstance(exc, SyntaxError):
        place = f" ({exc.filename}, line {exc.lineno})"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            place = f" ({frames[-1].filename}, line {frames[-1].lineno})"
    return (
        f"function {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}{place}"
    )


# --- inline code ------------------------------------------------------------------------


def _code_problems(step: Step) -> list[str]:
    code = step.params["code"]
    if not isinstance(code, str) or not code.strip():
        return ["params 'code' must be Python source defining run, e.g. 'def run(inputs): ...'"]
    try:
        _, node = compile_code(step.id, code)
    except SyntaxError as exc:
        text = f": {exc.text.strip()!r}" if exc.text and exc.text.strip() else ""
        return [f"Python syntax error in 'code' line {exc.lineno}: {exc.msg}{text}; fix the code"]
    if node is None:
        return [
            "no 'run' function found in the code; define it at top level as "
            "'def run(inputs): ...' (or async def run)"
        ]
    stub = _signature_stub(node)
    binder = bind_function(stub, step.depends_on)
    if isinstance(binder, str):
        return [binder]
    if step.executor in (None, ExecutorName.PROCESSES):
        return []
    return executor_problems(step, stub)


def _signature_stub(node: Def) -> Callable[..., Any]:
    """A function with ``run``'s parameters and nothing else: binding is decided without
    running the user's code (defaults become None, annotations are dropped)."""
    args = ast.arguments(
        posonlyargs=[ast.arg(a.arg) for a in node.args.posonlyargs],
        args=[ast.arg(a.arg) for a in node.args.args],
        vararg=ast.arg(node.args.vararg.arg) if node.args.vararg else None,
        kwonlyargs=[ast.arg(a.arg) for a in node.args.kwonlyargs],
        kw_defaults=[None if d is None else ast.Constant(None) for d in node.args.kw_defaults],
        kwarg=ast.arg(node.args.kwarg.arg) if node.args.kwarg else None,
        defaults=[ast.Constant(None) for _ in node.args.defaults],
    )
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    namespace: dict[str, Any] = {}
    exec(f"{prefix}def run({ast.unparse(args)}):\n    pass\n", namespace)
    stub: Callable[..., Any] = namespace["run"]
    return stub


def _code_action(step: Step) -> Action:
    """On ``processes`` (the default) the call is ``run_code`` by name, with the code's text;
    on another executor the step's ``run`` is called in the runner's process."""
    code: str = step.params["code"]
    compiled, node = compile_code(step.id, code)
    assert node is not None  # validated
    stub = _signature_stub(node)
    binder = bind_function(stub, step.depends_on)
    assert not isinstance(binder, str)  # validated
    executor = step.executor or ExecutorName.PROCESSES
    if executor == ExecutorName.DASK:  # by name, compiled on the worker
        on_worker = OnWorker(step.id, pycode.CodeOnWorker(step.id, code))
        return Action(on_worker, ExecutorName.DASK, binder)
    if executor != ExecutorName.PROCESSES:
        is_async = default_executor(stub) == ExecutorName.ASYNC
        return Action(pycode.in_process(step.id, compiled, is_async), executor, binder)
    limits = Limits.read(step.params.get("limits"))
    call = pycode.CodeCall(step.id, code, pycode.MAX_MEMORY, pycode.MAX_OUTPUT, limits)
    return Action(call, ExecutorName.PROCESSES, _packed(binder))


def _packed(binder: Binder) -> Binder:
    """Hand ``run``'s arguments over as two values, so no input name can clash with
    ``run_code``'s own parameters."""

    def bind(
        inputs: Mapping[str, Any], run_params: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return binder(inputs, run_params), {}

    return bind


def executor_problems(step: Step, fn: Callable[..., Any]) -> list[str]:
    """Messages for an executor the step names that does not exist or cannot run ``fn``."""
    if step.executor is None:
        return []
    if step.executor not in _EXECUTORS:
        return [f"executor {step.executor!r} is unknown; use one of {', '.join(_EXECUTORS)}"]
    is_async = default_executor(fn) == ExecutorName.ASYNC
    if is_async and step.executor != ExecutorName.ASYNC:
        return [
            f"an async def function runs on the 'async' executor, not {step.executor!r}; "
            "drop executor= or make the function a plain def"
        ]
    if not is_async and step.executor == ExecutorName.ASYNC:
        return [
            "executor 'async' needs an async def function; use 'threads', 'processes' or "
            "'inline' for a plain function"
        ]
    return []


KINDS = {"python": PythonKind()}
