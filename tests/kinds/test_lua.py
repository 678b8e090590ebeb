"""The ``lua`` kind: conversions both ways, errors naming step and line, sandbox, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardag import RunResult, StepState, StepTimeout, ValidationError, Workflow
from pardag.errors import StepFailed
from pardag.formats import load
from pardag.kinds import lua as lua_kind
from pardag.kinds.lua import MAX_OUTPUT, LuaStepError, LuaTimeout, run_lua

pytestmark = pytest.mark.timeout(60)


def run_code(code: str, **step: Any) -> RunResult:
    wf = Workflow("lua")
    wf.add("l", kind="lua", params={"code": code}, **step)
    return wf.run()


def failure(result: RunResult, step: str = "l") -> str:
    """The reason a step failed, after checking it failed with a Lua error."""
    outcome = result.steps[step]
    assert outcome.state is StepState.FAILED
    assert isinstance(outcome.error, StepFailed)
    assert isinstance(outcome.error.cause, LuaStepError)
    return str(outcome.error.cause)


def problems(code: Any, **step: Any) -> list[str]:
    wf = Workflow("lua")
    wf.add("l", kind="lua", params={"code": code}, **step)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert all(problem.step == "l" for problem in info.value.problems)
    return [problem.message for problem in info.value.problems]


# -- output conversion -----------------------------------------------------------------------


def test_sequences_become_lists_and_other_tables_dicts() -> None:
    result = run_code(
        """
        function run()
          return {
            list = {10, 20, 30},
            nested = {{a = 1}, {b = {true, false}}},
            mixed = {1, 2, x = 3},
            sparse = {[1] = "a", [3] = "c"},
            empty = {},
            float = 1.5,
            int = 7,
            text = "héllo",
            gone = nil,
          }
        end
        """
    )
    assert result.ok
    assert result.outputs["l"] == {
        "list": [10, 20, 30],
        "nested": [{"a": 1}, {"b": [True, False]}],
        "mixed": {"1": 1, "2": 2, "x": 3},
        "sparse": {"1": "a", "3": "c"},
        "empty": {},
        "float": 1.5,
        "int": 7,
        "text": "héllo",
    }
    assert type(result.outputs["l"]["int"]) is int


def test_nil_is_none_and_scalars_pass_through() -> None:
    assert run_code("function run() return nil end").outputs["l"] is None
    assert run_code("function run() return 3 // 2 end").outputs["l"] == 1
    assert run_code("function run() return 1 < 2 end").outputs["l"] is True
    assert run_code("function run() return 'x' .. 1 end").outputs["l"] == "x1"


def test_outputs_json_cannot_hold_fail_saying_where() -> None:
    assert "output.f is a Lua function" in failure(
        run_code("function run() return {f = print} end")
    )
    assert "output is nan" in failure(run_code("function run() return 0/0 end"))
    assert "cyclic" in failure(run_code("function run() local t = {} t.t = t return t end"))
    assert "key of type boolean" in failure(run_code("function run() return {[true] = 1} end"))


# -- inputs ----------------------------------------------------------------------------------


def test_inputs_are_tables_by_dependency_id_and_a_root_step_takes_none() -> None:
    wf = Workflow("lua")
    wf.add("nums", kind="lua", params={"code": "function run() return {1, 2, 3} end"})
    wf.add("cfg", lambda: {"scale": 10, "tags": ["a", "b"], "none": None})
    wf.add(
        "sum",
        kind="lua",
        depends_on=["nums", "cfg"],
        params={
            "code": """
            function run(inputs)
              local total = 0
              for _, n in ipairs(inputs.nums) do total = total + n end
              return {total = total * inputs.cfg.scale, second_tag = inputs.cfg.tags[2],
                      has_none = inputs.cfg.none ~= nil}
            end
            """
        },
    )
    result = wf.run()
    assert result.ok
    assert result.outputs["sum"] == {"total": 60, "second_tag": "b", "has_none": False}


def test_run_params_are_the_second_argument() -> None:
    wf = Workflow("lua")
    wf.add("l", kind="lua", params={"code": "function run(inputs, params) return params.n end"})
    assert wf.run(params={"n": 5}).outputs["l"] == 5


def test_a_lua_step_between_python_steps() -> None:
    wf = Workflow("mixed")
    wf.add("load", lambda: [{"name": "a", "price": 3}, {"name": "b", "price": 40}])
    wf.add(
        "filter",
        kind="lua",
        depends_on=["load"],
        params={
            "code": """
            function run(inputs)
              local out = {}
              for _, row in ipairs(inputs.load) do
                if row.price > 10 then out[#out + 1] = row.name end
              end
              return out
            end
            """
        },
    )
    wf.add("report", lambda filter: ", ".join(filter).upper(), depends_on=["filter"])
    result = wf.run()
    assert result.ok
    assert result.outputs["filter"] == ["b"]
    assert result.outputs["report"] == "B"


# -- errors ----------------------------------------------------------------------------------


def test_missing_run_is_named() -> None:
    assert "No 'run' function found in step l" in failure(run_code("x = 1"))


def test_run_that_is_not_a_function_is_named() -> None:
    message = failure(run_code("run = 3"))
    assert "'run' is not callable in step l" in message
    assert "number" in message


def test_a_lua_error_names_step_language_and_line() -> None:
    message = failure(run_code("function run()\n  local t = nil\n  return t.x\nend"))
    assert message.startswith("step l (lua): [string]:3: attempt to index a nil value")
    assert "stack traceback" not in message


def test_error_with_a_table_value_still_says_something() -> None:
    assert "not a string" in failure(run_code("function run() error({code = 1}) end"))


def test_syntax_errors_are_validation_problems_with_the_line() -> None:
    [message] = problems("function run()\n  x = = 1\nend")
    assert "Lua syntax error" in message
    assert "[string]:2:" in message


def test_code_must_be_a_non_empty_string() -> None:
    assert "needs params 'code'" in problems(42)[0]
    assert "needs params 'code'" in problems("   ")[0]


def test_only_the_threads_executor() -> None:
    [message] = problems("function run() end", executor="processes")
    assert "runs on 'threads'" in message


# -- sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ("os.execute('touch /tmp/pardag-lua-escape')", "global 'os'"),
        ("io.open('/etc/passwd')", "global 'io'"),
        ("require('os')", "global 'require'"),
        ("dofile('/etc/passwd')", "global 'dofile'"),
        ("debug.getinfo(1)", "global 'debug'"),
        ("python.eval('1')", "global 'python'"),
        ("string.dump(print)", "field 'dump'"),
    ],
)
def test_unsafe_functions_are_absent(call: str, name: str) -> None:
    message = failure(run_code(f"function run() return {call} end"))
    assert name in message


def test_load_refuses_bytecode_but_takes_text() -> None:
    code = """
    function run()
      local ok, err = load("\\27Lua", "x", "b")
      return {text = load("return 1 + 1")(), bytecode = ok == nil, err = err}
    end
    """
    result = run_code(code)
    assert result.ok
    output = result.outputs["l"]
    assert output["text"] == 2
    assert output["bytecode"] is True
    assert "binary" in output["err"]


def test_each_attempt_starts_from_a_fresh_runtime() -> None:
    code = "function run() counter = (counter or 0) + 1 return counter end"
    wf = Workflow("lua")
    wf.add("a", kind="lua", params={"code": code})
    wf.add("b", kind="lua", params={"code": code}, depends_on=["a"])
    assert wf.run().outputs == {"a": 1, "b": 1}


# -- limits ----------------------------------------------------------------------------------


def test_an_infinite_loop_is_stopped_by_the_step_timeout() -> None:
    result = run_code("function run() while true do end end", timeout=0.3)
    assert result.status == "failed"
    step = result.steps["l"]
    assert isinstance(step.error, StepTimeout)


@pytest.mark.parametrize(
    "body",
    [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "local co = coroutine.create(function() while true do end end)"
        " while true do coroutine.resume(co) end",
    ],
)
def test_the_hook_really_stops_the_lua_code(body: str) -> None:
    """Called directly (no runner to abandon the thread), the code itself must end."""
    with pytest.raises(LuaTimeout, match=r"step s \(lua\): stopped after its timeout of 0.2s"):
        run_lua("s", f"function run() {body} end", {}, {}, timeout=0.2)


def test_a_timeout_that_is_not_reached_changes_nothing() -> None:
    assert run_code("function run() return 1 end", timeout=30).outputs["l"] == 1


def test_an_output_over_the_cap_fails_saying_so() -> None:
    code = f"function run() return string.rep('x', {MAX_OUTPUT + 1}) end"
    message = failure(run_code(code))
    assert "over the cap" in message
    assert str(MAX_OUTPUT) in message


def test_memory_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lua_kind, "MAX_MEMORY", 8 * 1024 * 1024)
    message = failure(run_code("function run() return #string.rep('x', 16 * 1024 * 1024) end"))
    assert "ran out of its 8 MiB of Lua memory" in message


# -- from a workflow file --------------------------------------------------------------------

FLOW = """\
name: luaflow
steps:
  nums:
    kind: lua
    code: |
      function run()
        return {1, 2, 3}
      end
  total:
    kind: lua
    depends_on: [nums]
    code: |
      function run(inputs)
        local s = 0
        for _, n in ipairs(inputs.nums) do s = s + n end
        return s
      end
"""


def test_a_workflow_file_runs_lua_steps(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    result = load(path).run()
    assert result.ok
    assert result.outputs == {"nums": [1, 2, 3], "total": 6}


def test_a_syntax_error_in_a_file_names_the_file_step_and_code_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.replace("local s = 0", "local s = = 0"))
    with pytest.raises(ValidationError) as info:
        load(path).validate()
    [problem] = info.value.problems
    assert problem.step == "total"
    assert problem.where == f"{path}:9"  # the step's line; the code line is in the message
    assert "[string]:2: unexpected symbol" in problem.message


def test_parallel_lua_steps_keep_their_own_state() -> None:
    wf = Workflow("lua")
    for n in range(8):
        code = f"""
        function run()
          mine = {n}
          local s = 0
          for i = 1, 20000 do s = s + i % 7 end
          return {{n = mine, s = s}}
        end
        """
        wf.add(f"s{n}", kind="lua", params={"code": code})
    result = wf.run()
    assert result.ok
    expected = sum(i % 7 for i in range(1, 20001))
    assert result.outputs == {f"s{n}": {"n": n, "s": expected} for n in range(8)}
