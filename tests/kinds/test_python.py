"""The ``python`` kind: how a function's parameters receive its dependencies' outputs."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

from pardag import ValidationError, Workflow
from pardag.kinds.base import Binder, RunContext
from pardag.kinds.python import PythonKind, bind_function, default_executor
from pardag.model import Step

CTX = RunContext("run", "wf", {})

INPUTS = {"a": 1, "b": 2, "c": 3}
PARAMS = {"mode": "full"}


def binder(fn: Callable[..., Any], deps: tuple[str, ...]) -> Binder:
    result = bind_function(fn, deps)
    assert not isinstance(result, str), result
    return result


def call(fn: Callable[..., Any], deps: tuple[str, ...], inputs: dict[str, Any] = INPUTS) -> Any:
    """Bind as the runner does and call ``fn``."""
    args, kwargs = binder(fn, deps)(inputs, PARAMS)
    return fn(*args, **kwargs)


def test_no_parameters_gets_nothing() -> None:
    bind = binder(lambda: None, ("a", "b"))
    assert bind(INPUTS, PARAMS) == ((), {})


def test_parameters_named_like_dependencies_get_their_outputs() -> None:
    def f(b: int, a: int) -> tuple[int, int]:
        return b, a

    assert binder(f, ("a", "b"))(INPUTS, PARAMS) == ((), {"b": 2, "a": 1})
    assert call(f, ("a", "b")) == (2, 1)


def test_inputs_gets_the_whole_mapping_as_a_copy() -> None:
    seen: list[dict[str, Any]] = []

    def f(inputs: dict[str, Any]) -> None:
        seen.append(inputs)
        inputs["mutated"] = True

    original = dict(INPUTS)
    call(f, ("a", "b", "c"), original)
    assert seen == [{"a": 1, "b": 2, "c": 3, "mutated": True}]
    assert original == INPUTS  # the step's mutation does not leak back


def test_params_gets_the_run_params() -> None:
    assert call(lambda params: params["mode"], ()) == "full"
    assert call(lambda a, params: (a, params["mode"]), ("a",)) == (1, "full")


def test_name_inputs_and_params_together() -> None:
    def f(c: int, inputs: dict[str, Any], params: dict[str, Any]) -> Any:
        return c, sorted(inputs), params["mode"]

    assert call(f, ("a", "c")) == (3, ["a", "b", "c"], "full")


def test_var_keyword_receives_the_dependencies_not_named() -> None:
    def f(a: int, **rest: int) -> tuple[int, dict[str, int]]:
        return a, rest

    assert call(f, ("a", "b", "c")) == (1, {"b": 2, "c": 3})
    assert call(lambda **kw: kw, ("c", "a")) == {"c": 3, "a": 1}


def test_output_of_a_dependency_that_did_not_succeed_is_none() -> None:
    assert call(lambda a, b: (a, b), ("a", "b"), {"a": 1}) == (1, None)
    assert call(lambda x, y: (x, y), ("a", "b"), {"b": 2}) == (None, 2)
    assert call(lambda **kw: kw, ("a", "b"), {"a": 1}) == {"a": 1, "b": None}


def test_positional_parameters_follow_depends_on_order() -> None:
    def f(x: int, y: int) -> tuple[int, int]:
        return x, y

    assert binder(f, ("b", "a"))(INPUTS, PARAMS) == ((2, 1), {})
    assert call(f, ("c", "b")) == (3, 2)


def test_positional_with_defaults_and_var_positional() -> None:
    def f(x: int, y: int = 10) -> int:
        return x + y

    assert call(f, ("a",)) == 11
    assert call(f, ("a", "b")) == 3
    assert call(lambda *xs: xs, ("c", "a", "b")) == (3, 1, 2)


def test_positional_only_parameter_named_like_a_dependency_binds_by_position() -> None:
    def f(a: int, /) -> int:
        return a

    assert binder(f, ("b",))(INPUTS, PARAMS) == ((2,), {})


def test_a_name_match_wins_over_position() -> None:
    def f(b: int, inputs: dict[str, Any]) -> int:
        return b

    # Named: b gets b's output even though a comes first in depends_on.
    assert call(f, ("a", "b")) == 2


@pytest.mark.parametrize(
    ("fn", "deps"),
    [
        (lambda x, y, z: None, ("a",)),  # too many required parameters
        (lambda x: None, ("a", "b")),  # too few parameters for the dependencies
        (lambda a, x: None, ("a",)),  # a is named, x is neither a dependency nor positional fit
        (lambda x: None, ()),  # requires something, depends on nothing
    ],
)
def test_functions_that_cannot_bind_get_a_message_with_the_fix(
    fn: Callable[..., Any], deps: tuple[str, ...]
) -> None:
    message = bind_function(fn, deps)
    assert isinstance(message, str)
    assert "<lambda>" in message
    assert "inputs" in message  # says how to fix it
    assert str(list(deps)) in message


def test_callables_without_a_signature_bind_positionally() -> None:
    # Some builtins have no inspectable signature; they get one argument per dependency.
    assert call(max, ("a", "c")) == 3


def test_partial_and_callable_objects() -> None:
    class Scale:
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, a: int) -> int:
            return a * self.k

    assert call(Scale(5), ("a",)) == 5
    assert call(functools.partial(lambda k, b: k + b, 100), ("b",)) == 102


def test_default_executor_follows_the_function_type() -> None:
    async def coro() -> None:
        await asyncio.sleep(0)

    assert default_executor(coro) == "async"
    assert default_executor(lambda: None) == "threads"


@pytest.mark.parametrize(
    ("fn", "executor", "fragment"),
    [
        (lambda: None, "fibers", "unknown"),
        (lambda: None, "async", "async def"),
        (None, None, "callable"),
        ("not callable", None, "callable"),
    ],
)
def test_kind_problems(fn: Any, executor: str | None, fragment: str) -> None:
    problems = PythonKind().problems(Step("s", fn, executor=executor))
    assert len(problems) == 1
    assert fragment in problems[0]


def test_async_function_on_another_executor_is_a_problem() -> None:
    async def coro() -> None:
        await asyncio.sleep(0)

    [problem] = PythonKind().problems(Step("s", coro, executor="threads"))
    assert "async" in problem
    assert PythonKind().problems(Step("s", coro, executor="async")) == []
    assert PythonKind().problems(Step("s", lambda: 1, executor="processes")) == []


def test_action_uses_the_step_executor_or_the_default() -> None:
    async def coro() -> None:
        await asyncio.sleep(0)

    kind = PythonKind()
    assert kind.action(Step("s", coro), CTX).executor == "async"
    assert kind.action(Step("s", lambda: 1), CTX).executor == "threads"
    assert kind.action(Step("s", lambda: 1, executor="processes"), CTX).executor == "processes"


def test_binding_problem_is_reported_by_validation_and_nothing_runs() -> None:
    ran: list[str] = []
    wf = Workflow("bind")
    wf.add("a", lambda: ran.append("a"))
    wf.add("b", lambda x, y: None, depends_on=["a"])
    with pytest.raises(ValidationError) as info:
        wf.run()
    [problem] = info.value.problems
    assert problem.step == "b"
    assert ran == []


def test_binding_end_to_end_with_kwargs_and_missing_inputs() -> None:
    wf = Workflow("bind", on_failure="continue")
    wf.add("a", lambda: 1)
    wf.add("b", _fail, critical=False)
    wf.add("c", lambda: 3)
    wf.add("all", lambda a, **rest: (a, rest), depends_on=["a", "b", "c"], trigger="all_done")
    result = wf.run()
    assert result.outputs["all"] == (1, {"b": None, "c": 3})


def _fail() -> None:
    raise RuntimeError("no")


def test_a_function_with_only_defaults_keeps_them_whatever_its_dependencies() -> None:
    """``lambda n=n: ...`` in a loop is common: a dependency must not overwrite ``n``."""

    def f(n: int = 7) -> int:
        return n

    assert binder(f, ("a", "b"))(INPUTS, PARAMS) == ((), {})
    assert call(f, ("a",)) == 7
