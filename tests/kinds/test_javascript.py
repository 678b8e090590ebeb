from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardag import RunResult, StepState, StepTimeout, ValidationError, Workflow
from pardag.errors import StepFailed
from pardag.formats import load
from pardag.kinds import KINDS
from pardag.kinds import javascript as js_kind
from pardag.kinds.javascript import (
    MAX_OUTPUT,
    JavaScriptStepError,
    JavaScriptTimeout,
    run_javascript,
)

pytestmark = pytest.mark.timeout(60)


def run_code(code: str, kind: str = "javascript", **step: Any) -> RunResult:
    wf = Workflow("js")
    wf.add("j", kind=kind, params={"code": code}, **step)
    return wf.run()


def failure(result: RunResult, step: str = "j") -> str:
    """The reason a step failed, after checking it failed with a JavaScript error."""
    outcome = result.steps[step]
    assert outcome.state is StepState.FAILED
    assert isinstance(outcome.error, StepFailed)
    assert isinstance(outcome.error.cause, JavaScriptStepError)
    return str(outcome.error.cause)


def problems(code: Any, **step: Any) -> list[str]:
    wf = Workflow("js")
    wf.add("j", kind="javascript", params={"code": code}, **step)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert all(problem.step == "j" for problem in info.value.problems)
    return [problem.message for problem in info.value.problems]


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


def test_inputs_are_objects_by_dependency_id_and_a_root_step_takes_none() -> None:
    wf = Workflow("js")
    wf.add("nums", kind="js", params={"code": "function run() { return [1, 2, 3] }"})
    wf.add("cfg", lambda: {"scale": 10, "tags": ["a", "b"], "none": None})
    wf.add(
        "sum",
        kind="javascript",
        depends_on=["nums", "cfg"],
        params={
            "code": """
            function run(inputs) {
              const total = inputs.nums.reduce((a, b) => a + b, 0);
              return {total: total * inputs.cfg.scale, second_tag: inputs.cfg.tags[1],
                      none_is_null: inputs.cfg.none === null,
                      ids: Object.keys(inputs)};
            }
            """
        },
    )
    result = wf.run()
    assert result.ok
    assert result.outputs["sum"] == {
        "total": 60,
        "second_tag": "b",
        "none_is_null": True,
        "ids": ["nums", "cfg"],
    }


def test_run_params_are_the_second_argument() -> None:
    wf = Workflow("js")
    code = "function run(inputs, params) { return params.n * 2 }"
    wf.add("j", kind="javascript", params={"code": code})
    assert wf.run(params={"n": 5}).outputs["j"] == 10


@pytest.mark.parametrize("alias", ["js", "node", "nodejs"])
def test_aliases_are_the_same_kind(alias: str) -> None:
    assert KINDS[alias] is KINDS["javascript"]
    assert run_code("const run = () => 'ok'", kind=alias).outputs["j"] == "ok"


def test_a_javascript_step_between_python_steps() -> None:
    wf = Workflow("mixed")
    wf.add("load", lambda: [{"name": "a", "price": 3}, {"name": "b", "price": 40}])
    wf.add(
        "filter",
        kind="javascript",
        depends_on=["load"],
        params={
            "code": """
            function run(inputs) {
              return inputs.load.filter(row => row.price > 10).map(row => row.name);
            }
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
    assert "No 'run' function found in step j" in failure(run_code("var x = 1"))


def test_run_that_is_not_a_function_is_named() -> None:
    message = failure(run_code("var run = 3"))
    assert "'run' is not callable in step j" in message
    assert "number" in message


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


def test_syntax_errors_are_validation_problems_with_the_line() -> None:
    [message] = problems("function run() {\n  x = = 1\n}")
    assert "JavaScript syntax error" in message
    assert "(line 2 of the code)" in message


def test_validation_does_not_run_the_code() -> None:
    """Compiling for validation must not execute top-level statements."""
    wf = Workflow("js")
    wf.add("j", kind="javascript", params={"code": "while (true) {}\nfunction run() {}"})
    wf.validate()  # would never return if the loop ran (the CPU limit would then fail it)


def test_code_must_be_a_non_empty_string() -> None:
    assert "needs params 'code'" in problems(42)[0]
    assert "needs params 'code'" in problems("   ")[0]


def test_only_the_threads_executor() -> None:
    [message] = problems("function run() {}", executor="processes")
    assert "runs on 'threads'" in message


# -- sandbox ---------------------------------------------------------------------------------


def test_no_host_access_exists() -> None:
    code = """
    function run() {
      return [typeof require, typeof process, typeof fetch, typeof XMLHttpRequest,
              typeof std, typeof os, typeof setTimeout, typeof Deno];
    }
    """
    assert run_code(code).outputs["j"] == ["undefined"] * 8


def test_each_attempt_starts_from_a_fresh_context() -> None:
    code = "function run() { globalThis.counter = (globalThis.counter || 0) + 1; return counter }"
    wf = Workflow("js")
    wf.add("a", kind="javascript", params={"code": code})
    wf.add("b", kind="javascript", params={"code": code}, depends_on=["a"])
    assert wf.run().outputs == {"a": 1, "b": 1}


# -- limits ----------------------------------------------------------------------------------


def test_an_infinite_loop_is_stopped_by_the_step_timeout() -> None:
    result = run_code("function run() { while (true) {} }", timeout=0.3)
    assert result.status == "failed"
    assert isinstance(result.steps["j"].error, StepTimeout)


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


def test_a_timeout_that_is_not_reached_changes_nothing() -> None:
    assert run_code("function run() { return 1 }", timeout=30).outputs["j"] == 1


def test_an_output_over_the_cap_fails_saying_so() -> None:
    code = f"function run() {{ return 'x'.repeat({MAX_OUTPUT + 1}) }}"
    message = failure(run_code(code))
    assert "over the cap" in message
    assert str(MAX_OUTPUT) in message


def test_an_output_just_under_the_cap_is_kept() -> None:
    code = f"function run() {{ return 'x'.repeat({MAX_OUTPUT - 2}) }}"  # the quotes make 2
    assert len(run_code(code).outputs["j"]) == MAX_OUTPUT - 2


def test_memory_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(js_kind, "MAX_MEMORY", 8 * 1024 * 1024)
    message = failure(run_code("function run() { return 'x'.repeat(16 * 1024 * 1024).length }"))
    assert "ran out of its 8 MiB of JavaScript memory" in message


# -- from a workflow file --------------------------------------------------------------------

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


def test_a_workflow_file_runs_javascript_steps(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    result = load(path).run()
    assert result.ok
    assert result.outputs == {"nums": [1, 2, 3], "total": 6}


def test_a_syntax_error_in_a_file_names_the_file_step_and_code_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.replace("let s = 0;", "let s = = 0;"))
    with pytest.raises(ValidationError) as info:
        load(path).validate()
    [problem] = info.value.problems
    assert problem.step == "total"
    assert problem.where == f"{path}:9"
    assert "(line 2 of the code)" in problem.message


def test_parallel_javascript_steps_keep_their_own_state() -> None:
    wf = Workflow("js")
    for n in range(6):
        code = f"""
        function run() {{
          globalThis.mine = {n};
          let s = 0;
          for (let i = 1; i <= 20000; i++) s += i % 7;
          return {{n: mine, s: s}};
        }}
        """
        wf.add(f"s{n}", kind="javascript", params={"code": code})
    result = wf.run()
    assert result.ok
    expected = sum(i % 7 for i in range(1, 20001))
    assert result.outputs == {f"s{n}": {"n": n, "s": expected} for n in range(6)}


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
