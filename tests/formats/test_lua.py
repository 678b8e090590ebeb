"""Lua workflow files: real Lua (lupa) in its sandbox, real shell and Python steps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import pardag
from pardag import ValidationError, Workflow
from pardag.events import EventKind, Recorder
from pardag.formats import lua as lua_format
from pardag.formats import read_workflow
from pardag.formats.document import parse_document
from pardag.kinds import KINDS
from pardag.model import RetryPolicy
from pardag.states import Trigger

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "parallel_demo.lua"
needs_lua_kind = pytest.mark.skipif("lua" not in KINDS, reason="the lua kind is not registered")

ISSUE_EXAMPLE = """\
workflow = {
  name = "parallel_demo",
  description = "...",
  steps = {
    init   = { language = "lua", code = [[ function run() return "initialized" end ]] },
    task_a = { depends_on = {"init"}, language = "shell", code = [[ echo hi ]] },
    merge  = { depends_on = {"task_a"}, language = "lua",
               code = [[ function run(inputs) return inputs.task_a end ]] },
  }
}
"""

# The issue's example with Python in place of Lua code, so that it runs with any kinds.
MIXED = """\
workflow = {
  name = "mixed",
  steps = {
    init   = { language = "python", code = [[
def run():
    return "initialized"
]] },
    task_a = { depends_on = {"init"}, language = "bash",
               code = [[ echo "{\\"got\\": $INPUT_INIT}" ]] },
    merge  = { depends_on = {"task_a"}, language = "python", code = [[
def run(inputs):
    return inputs["task_a"]["got"] + "!"
]] },
  }
}
"""


def write(tmp_path: Path, text: str, name: str = "flow.lua") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str) -> Workflow:
    return pardag.load(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[str]:
    """The problems ``pardag.load`` reports for a ``.lua`` file holding ``text``."""
    with pytest.raises(ValidationError) as caught:
        load(tmp_path, text)
    return [str(p) for p in caught.value.problems]


# -- reading and running ----------------------------------------------------------------------


def test_a_lua_file_runs_its_shell_and_python_steps(tmp_path: Path) -> None:
    wf = load(tmp_path, MIXED)
    assert wf.name == "mixed"
    assert {sid: step.kind for sid, step in wf.steps.items()} == {
        "init": "python",
        "merge": "python",
        "task_a": "shell",
    }
    assert wf.steps["task_a"].depends_on == ("init",)
    assert wf.definition_format == "lua:lua"
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert result.outputs == {
        "init": "initialized",
        "task_a": {"got": "initialized"},
        "merge": "initialized!",
    }


def test_steps_point_at_their_lines(tmp_path: Path) -> None:
    wf = load(tmp_path, MIXED)
    path = str(tmp_path / "flow.lua")
    assert wf.locations == {"init": f"{path}:4", "merge": f"{path}:10", "task_a": f"{path}:8"}


def test_the_issue_example_reads_lua_steps_as_the_lua_kind(tmp_path: Path) -> None:
    if "lua" not in KINDS:  # the kind is not there: the reader still asked for it, by line
        found = problems(tmp_path, ISSUE_EXAMPLE)
        assert any(":5: step 'init': kind 'lua' is unknown" in p for p in found), found
        assert any(":7: step 'merge': kind 'lua' is unknown" in p for p in found), found
        return
    wf = load(tmp_path, ISSUE_EXAMPLE)
    assert [wf.steps[s].kind for s in ("init", "task_a", "merge")] == ["lua", "shell", "lua"]
    assert wf.steps["task_a"].params == {"command": " echo hi "}
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert result.outputs["init"] == "initialized"
    assert result.outputs["merge"] == result.outputs["task_a"]


def test_steps_are_taken_in_id_order_every_time(tmp_path: Path) -> None:
    ids = ["zeta", "alpha", "mu", "beta", "omega", "kappa", "delta"]
    body = "\n".join(f'    {sid} = {{ language = "sh", code = "echo {sid}" }},' for sid in ids)
    text = f"workflow = {{\n  steps = {{\n{body}\n  }}\n}}\n"
    orders = {tuple(load(tmp_path, text).steps) for _ in range(5)}
    assert orders == {tuple(sorted(ids))}


def test_native_step_options_are_read(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        """\
        workflow = {
          execution = { max_concurrency = 3, pools = { db = 2 } },
          params = { full = true },
          steps = {
            a = { language = "shell", code = "echo a" },
            b = {
              depends_on = "a",
              language = "sh",
              code = "echo b",
              retry = { retries = 2, delay = "10ms" },
              timeout = "5s",
              when = "params.full",
              trigger = "all_done",
              critical = false,
              priority = 7,
              resources = { db = 1 },
              estimate = 2,
              env = { MODE = "fast" },
            },
            c = { depends_on = {}, code = "def run():\\n    return 1\\n", retry = 1 },
          },
        }
        """,
    )
    b = wf.steps["b"]
    assert b.depends_on == ("a",)
    assert b.retry == RetryPolicy(retries=2, delay=0.01)
    assert (b.timeout, b.when, b.trigger, b.critical) == (
        5.0,
        "params.full",
        Trigger.ALL_DONE,
        False,
    )
    assert (b.priority, b.resources, b.estimate) == (7, {"db": 1}, 2.0)
    assert b.params == {"command": "echo b", "env": {"MODE": "fast"}}
    c = wf.steps["c"]
    assert (c.kind, c.depends_on, c.retry.retries) == ("python", (), 1)
    assert wf.params == {"full": True}
    assert wf.settings.max_concurrency == 3
    assert wf.file_settings["pools"] == {"db": 2}


def test_pools_given_as_defaults_count_when_the_table_is_validated() -> None:
    step = '{ language = "sh", code = "echo", resources = { gpu = 1 } }'
    text = f"workflow = {{ steps = {{ a = {step} }} }}"
    doc = parse_document(text, "flow.lua", "lua")
    with pytest.raises(ValidationError, match="uses pool 'gpu', which is not declared"):
        lua_format.read(doc, {})
    assert lua_format.read(doc, {"pools": {"gpu": 1}}).settings.pools == {"gpu": 1}


def test_lua_code_may_build_the_table(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        """\
        local steps = {}
        for i = 1, 3 do
          steps["part" .. i] = { language = "shell", code = "echo " .. i * 10 }
        end
        steps.total = { depends_on = {"part1", "part2", "part3"}, language = "python",
                        code = [[
        def run(inputs):
            return sum(int(o["stdout"]) for o in inputs.values())
        ]] }
        workflow = { steps = steps }
        """,
    )
    assert list(wf.steps) == ["part1", "part2", "part3", "total"]
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert result.outputs["total"] == 60


def test_a_run_record_reads_back_from_the_text(tmp_path: Path) -> None:
    """What ``history`` does to resume: the stored text, parsed again as ``lua``."""
    text = textwrap.dedent(MIXED)
    wf = read_workflow(parse_document(text, str(tmp_path / "x.lua"), "lua"), "lua")
    assert sorted(wf.steps) == ["init", "merge", "task_a"]


# -- the sandbox and its limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ('os.execute("touch {marker}")', "os"),
        ('io.open("{marker}", "w"):write("x")', "io"),
        ('require("os").execute("touch {marker}")', "require"),
        ('dofile("{marker}")', "dofile"),
        ('load("return 1")()', "load"),
        ("python.eval(\"open('{marker}', 'w')\")", "python"),
        ("debug.sethook()", "debug"),
    ],
)
def test_the_file_runs_without_system_access(tmp_path: Path, call: str, name: str) -> None:
    marker = tmp_path / "pwned"
    found = problems(tmp_path, f"\n{call.format(marker=marker)}\nworkflow = {{ steps = {{}} }}\n")
    assert len(found) == 1
    assert "flow.lua:2: Lua error: attempt to" in found[0]
    assert f"{name!r} is not available while a workflow file is read" in found[0]
    assert not marker.exists()


@pytest.mark.parametrize(
    "code",
    [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local function f() return f() end f()",
    ],
    ids=["loop", "pcall-loop", "tail-call"],
)
def test_an_endless_file_fails_clearly(tmp_path: Path, code: str) -> None:
    found = problems(tmp_path, f"{code}\nworkflow = {{ steps = {{}} }}\n")
    assert found == [
        f"{tmp_path / 'flow.lua'}: ran more than {lua_format.MAX_INSTRUCTIONS:,} Lua "
        "instructions while building its table (an endless loop?); a workflow file should "
        "only describe steps"
    ]


def test_a_memory_hungry_file_fails_clearly(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        local t = {}
        for i = 1, 1e7 do t[i] = string.rep("x", 1000) .. i end
        workflow = { steps = {} }
        """,
    )
    assert len(found) == 1
    assert "flow.lua: used more than 64 MiB while building its table" in found[0]


# -- mistakes in the file ---------------------------------------------------------------------


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        workflow = {
          steps = {
            a = { language = "shell" code = "echo" },
          },
        }
        """,
    )
    assert len(found) == 1
    assert f"{tmp_path / 'flow.lua'}:3: Lua error: " in found[0]
    assert "'}' expected" in found[0]


def test_a_runtime_error_names_its_line(tmp_path: Path) -> None:
    found = problems(tmp_path, 'local x = 1\n\nerror("no steps for you")\n')
    assert found == [f"{tmp_path / 'flow.lua'}:3: Lua error: no steps for you; fix the Lua code"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local workflow = { steps = {} }\n", "sets no global 'workflow'"),
        ("x = 1\n", "sets no global 'workflow'"),
        ("workflow = 42\n", ":1: 'workflow' must be a table, got a number"),
        ('workflow = { name = "x" }\n', "'workflow.steps' must be a table of steps by id, missing"),
        ('workflow = { steps = "a" }\n', "'workflow.steps' must be a table of steps by id, a str"),
    ],
)
def test_the_workflow_table_must_be_there(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert expected in found[0]
    assert found[0].startswith(str(tmp_path / "flow.lua"))


def test_unknown_fields_get_a_did_you_mean_with_their_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        workflow = {
          nmae = "x",
          steps = {
            a = { language = "shell", code = "echo" },
            b = { language = "shell", code = "echo",
                  tmeout = 3 },
            c = { language = "pyhton", code = "x" },
          },
        }
        """,
    )
    path = tmp_path / "flow.lua"
    assert found == [
        f"{path}:2: unknown field 'nmae' at the top level; did you mean 'name'?",
        f"{path}:6: step 'b': unknown field 'tmeout'; did you mean 'timeout'?",
        f"{path}:7: step 'c': language 'pyhton' is unknown; did you mean 'python'?",
    ]


def test_functions_are_not_data(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        workflow = {
          steps = {
            a = { language = "lua", code = function() return 1 end },
          },
        }
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'flow.lua'}:3: workflow.steps.a.code is a function")
    assert "write code as a string, e.g. code = [[ ... ]]" in found[0]


def test_code_and_command_together_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        'workflow = { steps = {\n  a = { language = "sh", code = "echo", command = "ls" },\n} }\n',
    )
    assert found == [
        f"{tmp_path / 'flow.lua'}:2: step 'a': gives both 'code' and 'command'; keep one"
    ]


def test_language_and_kind_together_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path, 'workflow = { steps = {\n  a = { language = "sh", kind = "shell" },\n} }\n'
    )
    assert found == [
        f"{tmp_path / 'flow.lua'}:2: step 'a': gives both 'language' and 'kind'; keep one"
    ]


# -- the shipped example ----------------------------------------------------------------------


@needs_lua_kind
def test_the_example_runs() -> None:
    result = pardag.load(EXAMPLE).run()
    assert result.status == "succeeded", result.error
    assert result.outputs["init"] == "initialized"
    assert result.outputs["task_c"] == {"task": "c", "from": "initialized"}
    assert result.outputs["merge"] == {"tasks": ["a", "b", "c", "d"], "from": ["initialized"]}


FOUR = """\
workflow = {
  steps = {
    a = { language = "sh", code = "sleep 0.5; echo a" },
    b = { language = "sh", code = "sleep 0.5; echo b" },
    c = { language = "sh", code = "sleep 0.5; echo c" },
    d = { language = "sh", code = "sleep 0.5; echo d" },
  },
}
"""


@pytest.mark.parametrize("limit", [4, 1])
def test_independent_steps_overlap_as_far_as_max_concurrency_allows(
    tmp_path: Path, limit: int
) -> None:
    recorder = Recorder()
    result = load(tmp_path, FOUR).run(max_concurrency=limit, listeners=[recorder])
    assert result.status == "succeeded", result.error
    ends = [
        (e.kind, e.step)
        for e in recorder.events
        if e.kind in (EventKind.STEP_STARTED, EventKind.STEP_SUCCEEDED)
    ]
    running, most = 0, 0
    for kind, _ in ends:
        running += 1 if kind is EventKind.STEP_STARTED else -1
        most = max(most, running)
    assert most == limit
    assert [step for kind, step in ends if kind is EventKind.STEP_STARTED] == ["a", "b", "c", "d"]


def test_a_table_bomb_is_refused_not_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lua_format, "MAX_VALUES", 20_000)  # the mechanism, not 25 s of walking
    found = problems(
        tmp_path,
        """\
        local t = {"x"}
        for i = 1, 60 do t = {t, t} end
        workflow = { steps = { a = { language = "sh", code = "echo", env = t } } }
        """,
    )
    assert found == [
        f"{tmp_path / 'flow.lua'}: 'workflow' holds more than {lua_format.MAX_VALUES:,} values; "
        "is a table repeated? write the steps out instead"
    ]


def test_a_table_that_holds_itself_is_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        local t = {} t.t = t
        workflow = { steps = { a = { language = "sh", code = "echo", env = t } } }
        """,
    )
    assert len(found) == 1
    assert "workflow.steps.a.env.t.....t.t is nested more than 100 levels deep" in found[0]


def test_lists_with_gaps_and_strings_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        workflow = {
          name = "\\xff",
          steps = {
            a = { language = "sh", code = "echo" },
            b = { language = "sh", code = "echo", depends_on = {"a", nil, "c"} },
          },
        }
        """,
    )
    path = tmp_path / "flow.lua"
    assert sorted(found) == [
        f"{path}:2: workflow.name is not UTF-8 text; write it as UTF-8",
        f"{path}:5: workflow.steps.b.depends_on is a list with gaps (keys [1, 3]); a nil "
        "inside a list makes a gap: remove it",
    ]


def test_finalisers_cannot_run_code_after_the_limits(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        local t = setmetatable({}, {__gc = function() while true do end end})
        workflow = { steps = { a = { language = "sh", code = "echo" } } }
        """,
    )
    assert found == [
        f"{tmp_path / 'flow.lua'}:1: Lua error: __gc metamethods are not available while a "
        "workflow file is read; fix the Lua code"
    ]
