"""The ``lua`` kind: conversions both ways, errors naming step and line, sandbox, limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pardag import Workflow
from pardag.kinds import lua as lua_kind
from pardag.kinds.lua import MAX_OUTPUT, LuaStepError, LuaTimeout, run_lua
from tests.kinds.code_steps import CodeChecks, Language

pytestmark = pytest.mark.timeout(60)

LUA = Language("lua", "l", LuaStepError)
run_code, failure = LUA.run, LUA.failure


class TestLuaLikeTheOtherLanguages(CodeChecks):
    language = LUA
    kind_module = lua_kind
    label = "Lua"
    quick = ("function run() return 1 end", 1)
    endless = "function run() while true do end end"
    too_big = f"function run() return string.rep('x', {MAX_OUTPUT + 1}) end"
    missing_run = "x = 1"
    run_is_a_number = "run = 3"
    syntax_error = ("function run()\n  x = = 1\nend", "[string]:2:")
    counter = "function run() counter = (counter or 0) + 1 return counter end"
    doubles_param_n = "function run(inputs, params) return params.n * 2 end"
    memory_hog = "function run() return #string.rep('x', 16 * 1024 * 1024) end"
    one_two_three = "function run() return {1, 2, 3} end"
    reads_inputs = (
        """
        function run(inputs)
          local total = 0
          for _, n in ipairs(inputs.nums) do total = total + n end
          return {total = total * inputs.cfg.scale, second_tag = inputs.cfg.tags[2],
                  has_none = inputs.cfg.none ~= nil}
        end
        """,
        {"total": 60, "second_tag": "b", "has_none": False},
    )
    expensive_rows = """
        function run(inputs)
          local out = {}
          for _, row in ipairs(inputs.load) do
            if row.price > 10 then out[#out + 1] = row.name end
          end
          return out
        end
        """
    parallel = """
        function run()
          mine = {n}
          local s = 0
          for i = 1, 20000 do s = s + i % 7 end
          return {{n = mine, s = s}}
        end
        """
    flow = """\
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
    flow_typo = ("local s = 0", "local s = = 0", "[string]:2: unexpected symbol")


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


# -- errors ----------------------------------------------------------------------------------


def test_a_lua_error_names_step_language_and_line() -> None:
    message = failure(run_code("function run()\n  local t = nil\n  return t.x\nend"))
    assert message.startswith("step l (lua): [string]:3: attempt to index a nil value")
    assert "stack traceback" not in message


@pytest.mark.parametrize(
    "code",
    ['function run() error("\\255 bad") end', 'function run() return {a = "\\255"} end'],
    ids=["error", "output"],
)
def test_a_string_that_is_not_utf8_fails_the_step_saying_so(code: str) -> None:
    message = failure(run_code(code))
    assert message.startswith("step l (lua): ")
    assert "holds bytes that are not UTF-8 text (a string escape such as \\255?)" in message


def test_code_whose_syntax_error_is_not_utf8_is_a_validation_problem() -> None:
    [message] = LUA.problems('function "\\255" run() end')
    assert "Lua's message holds bytes that are not UTF-8 text" in message


def test_error_with_a_table_value_still_says_something() -> None:
    assert "not a string" in failure(run_code("function run() error({code = 1}) end"))


# -- sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
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


_GONE = (
    "os.execute",
    "os.remove",
    "os.rename",
    "os.exit",
    "os.getenv",
    "os.tmpname",
    "io",
    "require",
    "dofile",
    "loadfile",
    "package",
    "debug",
)


def test_of_os_only_the_clock_and_calendar_stay() -> None:
    names = ", ".join(f"[{name!r}] = {name} == nil" for name in _GONE)
    kept = ", ".join(f"{name} = type(os.{name})" for name in lua_kind.OS_KEPT)
    result = run_code(f"function run() return {{gone = {{{names}}}, kept = {{{kept}}}}} end")
    assert result.ok, result.steps["l"].error
    output = result.outputs["l"]
    assert output["gone"] == dict.fromkeys(_GONE, True)
    assert output["kept"] == dict.fromkeys(("clock", "time", "date", "difftime"), "function")


def test_a_busy_loop_timed_with_os_clock_runs() -> None:
    code = """
    function run()
      local start, spins = os.clock(), 0
      while os.clock() - start < 0.05 do spins = spins + 1 end
      local now = os.time()
      return {spins = spins, year = tonumber(os.date("%Y", now)),
              same = os.difftime(now, now), fields = os.date("*t", 0).year}
    end
    """
    result = run_code(code)
    assert result.ok, result.steps["l"].error
    output = result.outputs["l"]
    assert output["spins"] > 0
    assert output["year"] >= 2024
    assert output["same"] == 0
    assert output["fields"] in (1969, 1970)


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


# -- limits ----------------------------------------------------------------------------------


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


def test_print_goes_to_the_steps_log_never_to_the_clis_stdout(tmp_path: Path) -> None:
    """Lua's own print wrote to the process's stdout: a line in `pardag run --json`'s output,
    which a step could forge. It now goes through sys.stdout, into the step's log."""
    (tmp_path / "flow.yaml").write_text(
        "name: lp\nsteps:\n  l:\n    language: lua\n    code: |\n"
        "      print('{\"forged\": true}', 2, nil)\n"
        "      function run(inputs) print('in run') return 1 end\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pardag", "run", "flow.yaml", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # nothing but the result on stdout
    assert result["outputs"] == {"l": 1}
    logs = subprocess.run(
        [sys.executable, "-m", "pardag", "logs", result["run_id"], "l"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert logs.stdout == '--- l, attempt 1 ---\n{"forged": true}\t2\tnil\nin run\n'


def test_inputs_that_cannot_be_pickled_still_reach_the_worker_as_text() -> None:
    """The worker process gets plain data: what Lua would see as text anyway (a date, a lock
    an upstream Python step returned) is made text before crossing, not a pickling error."""
    import datetime
    import threading

    wf = Workflow("plain")
    wf.add("up", lambda: {"when": datetime.date(2026, 1, 2), "lock": threading.Lock(), 3: [1]})
    code = "function run(inputs) return {inputs.up.when, type(inputs.up.lock), inputs.up[3][1]} end"
    wf.add("l", kind="lua", depends_on=["up"], params={"code": code})
    result = wf.run()
    assert result.ok, result.steps["l"].error
    assert result.steps["l"].executor == "processes"
    assert result.outputs["l"] == ["2026-01-02", "string", 1]
