from __future__ import annotations

from pathlib import Path

import pytest

from pardag import Workflow
from pardag.formats import load
from pardag.kinds import KINDS
from pardag.kinds import javascript as js_kind
from pardag.kinds.javascript import (
    MAX_OUTPUT,
    JavaScriptStepError,
    JavaScriptTimeout,
    run_javascript,
)
from tests.kinds.code_steps import CodeChecks, Language

pytestmark = pytest.mark.timeout(60)

JS = Language("javascript", "j", JavaScriptStepError)
run_code, failure = JS.run, JS.failure

FLOW = """\
name: jsflow
steps:
  nums:
    kind: js
    code: |
      function run() {
        return [1, 2, 3];
      }
  total:
    kind: javascript
    depends_on: [nums]
    code: |
      function run(inputs) {
        let s = 0;
        for (const n of inputs.nums) s += n;
        return s;
      }
"""


class TestJavaScriptLikeTheOtherLanguages(CodeChecks):
    language = JS
    kind_module = js_kind
    label = "JavaScript"
    quick = ("function run() { return 1 }", 1)
    endless = "function run() { while (true) {} }"
    too_big = f"function run() {{ return 'x'.repeat({MAX_OUTPUT + 1}) }}"
    missing_run = "var x = 1"
    run_is_a_number = "var run = 3"
    syntax_error = ("function run() {\n  x = = 1\n}", "(line 2 of the code)")
    counter = (
        "function run() { globalThis.counter = (globalThis.counter || 0) + 1; return counter }"
    )
    doubles_param_n = "function run(inputs, params) { return params.n * 2 }"
    memory_hog = "function run() { return 'x'.repeat(16 * 1024 * 1024).length }"
    one_two_three = "function run() { return [1, 2, 3] }"
    reads_inputs = (
        """
        function run(inputs) {
          const total = inputs.nums.reduce((a, b) => a + b, 0);
          return {total: total * inputs.cfg.scale, second_tag: inputs.cfg.tags[1],
                  none_is_null: inputs.cfg.none === null,
                  ids: Object.keys(inputs)};
        }
        """,
        {"total": 60, "second_tag": "b", "none_is_null": True, "ids": ["nums", "cfg"]},
    )
    expensive_rows = """
        function run(inputs) {
          return inputs.load.filter(row => row.price > 10).map(row => row.name);
        }
        """
    parallel = """
        function run() {{
          globalThis.mine = {n};
          let s = 0;
          for (let i = 1; i <= 20000; i++) s += i % 7;
          return {{n: mine, s: s}};
        }}
        """
    flow = FLOW
    flow_typo = ("let s = 0;", "let s = = 0;", "(line 2 of the code)")


# -- output conversion -----------------------------------------------------------------------


def test_output_goes_through_json() -> None:
    result = run_code(
        """
        function run() {
          return {
            list: [10, 20, 30],
            nested: [{a: 1}, {b: [true, false, null]}],
            empty_object: {},
            empty_list: [],
            float: 1.5,
            int: 7,
            text: "héllo",
            gone: undefined,
            date: new Date(0),
          };
        }
        """
    )
    assert result.ok
    assert result.outputs["j"] == {
        "list": [10, 20, 30],
        "nested": [{"a": 1}, {"b": [True, False, None]}],
        "empty_object": {},
        "empty_list": [],
        "float": 1.5,
        "int": 7,
        "text": "héllo",
        "date": "1970-01-01T00:00:00.000Z",
    }
    assert type(result.outputs["j"]["int"]) is int


def test_undefined_is_none_and_scalars_pass_through() -> None:
    assert run_code("function run() {}").outputs["j"] is None
    assert run_code("function run() { return null }").outputs["j"] is None
    assert run_code("function run() { return 1 < 2 }").outputs["j"] is True
    assert run_code("function run() { return 'x' + 1 }").outputs["j"] == "x1"
    assert run_code("function run() { return 0.1 + 0.2 }").outputs["j"] == 0.1 + 0.2


def test_outputs_json_cannot_hold_fail_saying_so() -> None:
    message = failure(run_code("function run() { const a = {}; a.a = a; return a }"))
    assert "the output cannot be converted to JSON" in message
    assert "circular" in message
    assert "cannot be converted to JSON" in failure(run_code("function run() { return 1n }"))


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["js", "node", "nodejs"])
def test_aliases_are_the_same_kind(alias: str) -> None:
    assert KINDS[alias] is KINDS["javascript"]
    assert run_code("const run = () => 'ok'", kind=alias).outputs["j"] == "ok"


# -- errors ----------------------------------------------------------------------------------


def test_an_error_in_run_names_step_language_line_and_function() -> None:
    message = failure(run_code("function run() {\n  const t = null;\n  return t.x;\n}"))
    assert message == (
        "step j (javascript): TypeError: cannot read property 'x' of null "
        "(line 3 of the code in run())"
    )


def test_an_error_in_a_helper_names_the_helpers_line() -> None:
    code = "function helper() {\n  throw new Error('boom');\n}\nfunction run() { return helper() }"
    message = failure(run_code(code))
    assert message == "step j (javascript): Error: boom (line 2 of the code in helper())"


def test_an_error_at_the_top_level_names_its_line() -> None:
    message = failure(run_code("var a = 1;\nthrow new RangeError('top');"))
    assert message == "step j (javascript): RangeError: top (line 2 of the code)"


def test_validation_does_not_run_the_code() -> None:
    """Compiling for validation must not execute top-level statements."""
    wf = Workflow("js")
    wf.add("j", kind="javascript", params={"code": "while (true) {}\nfunction run() {}"})
    wf.validate()  # would never return if the loop ran (the CPU limit would then fail it)


# -- sandbox ---------------------------------------------------------------------------------


def test_no_host_access_exists() -> None:
    code = """
    function run() {
      return [typeof require, typeof process, typeof fetch, typeof XMLHttpRequest,
              typeof std, typeof os, typeof setTimeout, typeof Deno];
    }
    """
    assert run_code(code).outputs["j"] == ["undefined"] * 8


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "while (true) {}",
        "while (true) { try { while (true) {} } catch (e) {} }",
        "for (;;) { try { JSON.parse('{'); } catch (e) {} }",
    ],
)
def test_the_engine_really_stops_the_code(body: str) -> None:
    """Called directly (no runner to abandon the thread), the code itself must end."""
    with pytest.raises(
        JavaScriptTimeout, match=r"step s \(javascript\): stopped after its timeout of 0.2s"
    ):
        run_javascript("s", f"function run() {{ {body} }}", {}, {}, timeout=0.2)


def test_an_output_just_under_the_cap_is_kept() -> None:
    code = f"function run() {{ return 'x'.repeat({MAX_OUTPUT - 2}) }}"  # the quotes make 2
    assert len(run_code(code).outputs["j"]) == MAX_OUTPUT - 2


# -- from a workflow file --------------------------------------------------------------------


def test_language_aliases_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        FLOW.replace("kind: js", "language: node").replace("kind: javascript", "language: js")
    )
    assert load(path).run().outputs == {"nums": [1, 2, 3], "total": 6}


def test_inputs_json_cannot_hold_fail_the_step_saying_so() -> None:
    wf = Workflow("js")
    wf.add("bad", lambda: float("nan"))
    wf.add("j", kind="javascript", depends_on=["bad"], params={"code": "function run() {}"})
    message = failure(wf.run())
    assert message.startswith("step j (javascript): the inputs cannot be sent as JSON")


# -- async run -------------------------------------------------------------------------------


def test_an_async_run_is_awaited() -> None:
    wf = Workflow("js")
    wf.add("n", lambda: 20)
    code = "async function run(inputs) { const v = await Promise.resolve(inputs.n); return [v, 2] }"
    wf.add("j", kind="javascript", depends_on=["n"], params={"code": code})
    assert wf.run().outputs["j"] == [20, 2]


def test_a_rejected_promise_reports_its_error_and_line() -> None:
    code = "async function run() {\n  await null;\n  throw new Error('late');\n}"
    assert failure(run_code(code)) == (
        "step j (javascript): Error: late (line 3 of the code in run())"
    )


def test_a_promise_that_never_settles_fails_the_step() -> None:
    message = failure(run_code("function run() { return new Promise(() => {}) }"))
    assert message.startswith("step j (javascript): 'run' returned a promise that never settled")


def test_an_infinite_loop_after_await_is_stopped_too() -> None:
    with pytest.raises(JavaScriptTimeout):
        run_javascript("s", "async function run() { await null; while (true) {} }", {}, {}, 0.2)


def test_modules_cannot_be_imported_from_files(tmp_path: Path) -> None:
    module = tmp_path / "mod.js"
    module.write_text("export const secret = 42;")
    code = f"async function run() {{ return (await import({str(module)!r})).secret }}"
    message = failure(run_code(code))
    assert "could not load module" in message


def test_an_async_loop_of_short_jobs_is_stopped_between_jobs() -> None:
    """Each job stays under the engine's CPU limit; the deadline between jobs must stop it."""
    code = """
    async function run() {
      while (true) {
        await null;
        const t = Date.now();
        while (Date.now() - t < 100) {}
      }
    }
    """
    with pytest.raises(JavaScriptTimeout, match=r"stopped after its timeout of 0\.2s"):
        run_javascript("s", code, {}, {}, timeout=0.2)
