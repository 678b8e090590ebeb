"""The ``python`` kind: how a function's parameters receive its dependencies' outputs."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pardag import ValidationError, Workflow
from pardag.kinds.base import Binder, RunContext
from pardag.kinds.python import PythonKind, bind_function, default_executor
from pardag.model import Step
from tests.support import step_problems

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


# --- functions by name ------------------------------------------------------------------


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    """A real module ``name`` in ``tmp_path``, importable for this test only."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def _problems(**params: Any) -> list[str]:
    wf = Workflow("files")
    wf.add("a", lambda: 3)
    wf.add("s", kind="python", depends_on=["a"], params=params)
    return step_problems(wf, "s")


def test_a_function_by_name_runs_and_binds_like_any_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(
        tmp_path,
        monkeypatch,
        "pardag_steps_ok",
        """
        import asyncio

        def double(a):
            return a * 2

        class Tools:
            @staticmethod
            def total(inputs, params):
                return sum(inputs.values()) + params["extra"]

        async def later(a):
            await asyncio.sleep(0)
            return -a
        """,
    )
    wf = Workflow("by-name")
    wf.add("a", lambda: 21)
    wf.add("double", depends_on=["a"], params={"function": "pardag_steps_ok:double"})
    wf.add("total", depends_on=["a"], params={"function": "pardag_steps_ok:Tools.total"})
    wf.add("later", depends_on=["a"], params={"function": "pardag_steps_ok:later"})
    result = wf.run(params={"extra": 100})
    assert result.outputs == {"a": 21, "double": 42, "total": 121, "later": -21}
    later = PythonKind().action(wf.steps["later"], CTX)
    assert later.executor == "async"
    assert PythonKind().action(wf.steps["double"], CTX).executor == "threads"


def test_a_module_another_thread_is_importing_is_validated_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of a worker validate at once: one's import of the steps' module is under way
    (in ``sys.modules``, its names not defined yet) while the other validates; the names the
    source defines are not missing."""
    _module(tmp_path, monkeypatch, "pardag_steps_busy", "def double(a):\n    return a * 2\n")
    spec = importlib.util.find_spec("pardag_steps_busy")
    assert spec is not None
    half = importlib.util.module_from_spec(spec)  # as the importing thread left it: no names
    spec._initializing = True  # type: ignore[attr-defined]  (what importlib sets meanwhile)
    monkeypatch.setitem(sys.modules, "pardag_steps_busy", half)
    wf = Workflow("busy")
    wf.add("a", lambda: 3)
    wf.add("s", depends_on=["a"], params={"function": "pardag_steps_busy:double"})
    wf.validate()
    assert _problems(function="pardag_steps_busy:triple") == [
        "function 'pardag_steps_busy:triple': 'pardag_steps_busy' has no attribute 'triple'"
    ]


def test_a_function_by_name_can_run_on_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(
        tmp_path,
        monkeypatch,
        "pardag_steps_proc",
        "import os\ndef pid():\n    return os.getpid()\n",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    wf = Workflow("proc")
    wf.add("pid", params={"function": "pardag_steps_proc:pid"}, executor="processes")
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert result.outputs["pid"] != os.getpid()


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("json", "must be 'package.module:callable', got 'json'; e.g. function:"),
        ("json:", "must be 'package.module:callable'"),
        (":dumps", "must be 'package.module:callable'"),
        ("pardag_nosuch_module:f", "no module named 'pardag_nosuch_module'; check the spelling"),
        ("pardag_nosuch_pkg.sub:f", "no module named 'pardag_nosuch_pkg'"),
        ("json:JSONDecodr", "'json' has no attribute 'JSONDecodr'; did you mean 'JSONDecoder'?"),
        ("json:decoder.JSONDecoder.nope", "'json.decoder.JSONDecoder' has no attribute 'nope'"),
        ("json:__name__", "is a str, not something callable"),
    ],
)
def test_a_function_that_cannot_be_resolved_is_a_validation_problem(
    spec: str, fragment: str
) -> None:
    [message] = _problems(function=spec)
    assert fragment in message
    assert repr(spec) in message


def _valid(**params: Any) -> bool:
    wf = Workflow("files")
    wf.add("a", lambda: 3)
    wf.add("s", kind="python", depends_on=["a"], params=params)
    wf.validate()
    return True


def _run_error(**params: Any) -> str:
    """The error of a run whose step ``s`` calls ``params``: validation imported nothing."""
    wf = Workflow("files")
    wf.add("a", lambda: 3)
    wf.add("s", kind="python", depends_on=["a"], params=params)
    wf.validate()  # no problem: the module is not imported
    result = wf.run()
    assert result.steps["s"].state == "failed"
    return str(result.error)


def test_a_module_failing_at_import_fails_the_step_naming_its_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation does not import (issue 13 §9: checking a file runs none of its code); the
    import happens when the step runs, and its failure names the module, file and line."""
    _module(
        tmp_path,
        monkeypatch,
        "pardag_steps_boom",
        "x = 1\nraise RuntimeError('boom')\ndef f(): ...\n",
    )
    message = _run_error(function="pardag_steps_boom:f")
    assert "step 's': function 'pardag_steps_boom:f': importing 'pardag_steps_boom' failed" in (
        message
    )
    assert "RuntimeError: boom" in message
    assert f"({tmp_path / 'pardag_steps_boom.py'}, line 2)" in message


def test_a_module_with_a_syntax_error_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(tmp_path, monkeypatch, "pardag_steps_syntax", "def f():\n    return (\n")
    [message] = _problems(function="pardag_steps_syntax:f")
    assert "SyntaxError" in message
    assert "line 2)" in message


def test_a_module_missing_its_own_dependency_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(
        tmp_path,
        monkeypatch,
        "pardag_steps_needs",
        "import pardag_not_installed_xyz\ndef f(): ...\n",
    )
    message = _run_error(function="pardag_steps_needs:f")
    assert "it needs the module 'pardag_not_installed_xyz', which is not installed" in message


def test_validation_imports_no_module_it_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module beside a workflow runs nothing when the workflow is only checked: the
    canary its top level would write is absent after validation, present after a run."""
    canary = tmp_path / "canary"
    source = f"open({str(canary)!r}, 'w').close()\ndef f(a):\n    return a + 1\n"
    _module(tmp_path, monkeypatch, "pardag_steps_canary", source)
    assert _valid(function="pardag_steps_canary:f")
    assert _problems(function="pardag_steps_canary:ff") == [
        "function 'pardag_steps_canary:ff': 'pardag_steps_canary' has no attribute 'ff'; "
        "did you mean 'f'?"
    ]
    assert not canary.exists() and "pardag_steps_canary" not in sys.modules
    wf = Workflow("files")
    wf.add("a", lambda: 3)
    wf.add("s", kind="python", depends_on=["a"], params={"function": "pardag_steps_canary:f"})
    assert wf.run().outputs["s"] == 4 and canary.exists()


def test_a_package_init_does_not_run_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "canary"
    package = tmp_path / "pardag_steps_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(canary)!r}, 'w').close()\n")
    (package / "steps.py").write_text(f"open({str(canary)!r}, 'w').close()\ndef f(): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _valid(function="pardag_steps_pkg.steps:f")
    assert (
        "no module named 'pardag_steps_pkg.nope'"
        in _problems(function="pardag_steps_pkg.nope:f")[0]
    )
    assert not canary.exists()


def test_a_function_by_name_that_cannot_bind_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(tmp_path, monkeypatch, "pardag_steps_bind", "def f(x, y, z):\n    return x\n")
    [message] = _problems(function="pardag_steps_bind:f")
    assert "function 'f' needs (x, y, z) but the step depends on ['a']" in message


def test_a_function_is_given_once() -> None:
    assert "either params 'function' or 'code'" in _problems(function="json:dumps", code="x")[0]
    wf = Workflow("twice")
    wf.add("s", lambda: 1, params={"code": "def run():\n    return 1\n"})
    with pytest.raises(ValidationError, match="either fn= or params 'code'"):
        wf.validate()
    assert PythonKind.fields == ("function", "code", "limits")
