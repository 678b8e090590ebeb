"""Control kinds: ``condition`` routes branches by handle, ``merge`` joins them."""

from __future__ import annotations

from typing import Any

import pytest

from pardag import RunResult, StepState, Trigger, ValidationError, Workflow
from pardag.kinds.control import branch_handle


def _fail() -> None:
    raise RuntimeError("condition broke")


def if_else(choose: Any, *, merge_fn: Any = None) -> RunResult:
    r"""
       cond
    true/  \false
     yes    no
       \    /
       merged (merge)
    """
    wf = Workflow("if-else")
    wf.add("cond", (lambda: choose) if not callable(choose) else choose, kind="condition")
    wf.add("yes", lambda: "YES", depends_on=["cond"], branch={"cond": "true"})
    wf.add("no", lambda: "NO", depends_on=["cond"], branch={"cond": "false"})
    wf.add("merged", merge_fn, kind="merge", depends_on=["yes", "no"])
    return wf.run()


@pytest.mark.parametrize(
    ("value", "handle"),
    [(True, "true"), (False, "false"), ("red", "red"), (3, "3"), (None, "None")],
)
def test_branch_handle(value: Any, handle: str) -> None:
    assert branch_handle(value) == handle


def test_true_takes_the_true_branch() -> None:
    result = if_else(True)
    assert result.ok
    assert result.steps["yes"].state is StepState.SUCCEEDED
    assert result.steps["no"].state is StepState.SKIPPED
    assert result.steps["no"].reason == "branch not taken: cond chose 'true', not 'false'"
    assert result.outputs["merged"] == {"yes": "YES"}
    assert result.final_output == {"yes": "YES"}


def test_false_takes_the_false_branch() -> None:
    result = if_else(False)
    assert result.ok
    assert result.steps["yes"].state is StepState.SKIPPED
    assert result.outputs["no"] == "NO"
    assert result.outputs["merged"] == {"no": "NO"}


def test_truthy_non_bool_is_a_case_name_not_true() -> None:
    """Only a real bool selects true/false; 1 selects the handle "1"."""
    result = if_else(1)
    assert result.steps["yes"].state is StepState.SKIPPED
    assert result.steps["no"].state is StepState.SKIPPED
    assert result.steps["merged"].state is StepState.SKIPPED


def test_case_names_route_to_one_of_many_branches() -> None:
    wf = Workflow("switch")
    wf.add("colour", lambda params: params["colour"], kind="condition")
    for case in ("red", "green", "blue"):
        wf.add(case, lambda c=case: c.upper(), depends_on=["colour"], branch={"colour": case})
    wf.add("paint", kind="merge", depends_on=["red", "green", "blue"])
    result = wf.run(params={"colour": "green"})
    assert result.outputs["colour"] == "green"
    assert result.outputs["paint"] == {"green": "GREEN"}
    for skipped in ("red", "blue"):
        assert result.steps[skipped].state is StepState.SKIPPED
        assert result.steps[skipped].reason == (
            f"branch not taken: colour chose 'green', not '{skipped}'"
        )


def test_branch_handle_given_as_a_bool() -> None:
    wf = Workflow("bool-handle")
    wf.add("cond", lambda: False, kind="condition")
    wf.add("yes", lambda: 1, depends_on=["cond"], branch={"cond": True})
    wf.add("no", lambda: 0, depends_on=["cond"], branch={"cond": False})
    result = wf.run()
    assert result.outputs == {"cond": False, "no": 0}


def test_condition_receives_inputs_like_any_python_step() -> None:
    wf = Workflow("threshold")
    wf.add("count", lambda: 12)
    wf.add("big", lambda count: count > 10, kind="condition")
    wf.add(
        "alert",
        lambda count: f"{count} is big",
        depends_on=["big", "count"],
        branch={"big": "true"},
    )
    result = wf.run()
    assert result.outputs["alert"] == "12 is big"


def test_skip_on_a_not_taken_branch_cascades() -> None:
    wf = Workflow("cascade")
    wf.add("cond", lambda: True, kind="condition")
    wf.add("no", lambda: 0, depends_on=["cond"], branch={"cond": "false"})
    wf.add("no2", lambda no: no)
    result = wf.run()
    assert result.ok
    assert result.steps["no2"].reason == "upstream skipped: no"


def test_failed_condition_skips_branches_and_the_merge() -> None:
    result = if_else(_fail)
    assert result.status == "failed"
    assert result.steps["cond"].state is StepState.FAILED
    assert result.steps["yes"].reason == "upstream failed: cond"
    assert result.steps["no"].reason == "upstream failed: cond"
    assert result.steps["merged"].state is StepState.SKIPPED


def test_failed_condition_in_continue_mode_skips_the_merge_with_the_reason() -> None:
    wf = Workflow("if-else", on_failure="continue")
    wf.add("cond", _fail, kind="condition")
    wf.add("yes", lambda: 1, depends_on=["cond"], branch={"cond": "true"})
    wf.add("no", lambda: 0, depends_on=["cond"], branch={"cond": "false"})
    wf.add("merged", kind="merge", depends_on=["yes", "no"])
    result = wf.run()
    assert result.steps["merged"].state is StepState.SKIPPED
    assert result.steps["merged"].reason == "upstream skipped: yes"


def test_merge_defaults_to_any_success() -> None:
    wf = Workflow("merge")
    step = wf.add("m", kind="merge", depends_on=[])
    assert step.trigger == Trigger.ANY_SUCCESS


def test_merge_output_maps_succeeded_inputs_in_depends_on_order() -> None:
    wf = Workflow("merge", on_failure="continue")
    wf.add("a", lambda: 1)
    wf.add("b", _fail, critical=False)
    wf.add("c", lambda: 3)
    wf.add("m", kind="merge", depends_on=["c", "b", "a"])
    result = wf.run()
    assert result.ok
    assert list(result.outputs["m"].items()) == [("c", 3), ("a", 1)]


def test_merge_with_a_function_binds_like_a_python_step() -> None:
    result = if_else(True, merge_fn=lambda yes, no: f"{yes}/{no}")
    assert result.outputs["merged"] == "YES/None"


def test_merge_with_an_explicit_all_success_trigger_is_skipped_after_if_else() -> None:
    wf = Workflow("strict")
    wf.add("cond", lambda: True, kind="condition")
    wf.add("yes", lambda: 1, depends_on=["cond"], branch={"cond": "true"})
    wf.add("no", lambda: 0, depends_on=["cond"], branch={"cond": "false"})
    wf.add("m", kind="merge", depends_on=["yes", "no"], trigger="all_success")
    result = wf.run()
    assert result.steps["m"].state is StepState.SKIPPED
    assert result.steps["m"].reason == "upstream skipped: no"


def test_merge_with_no_succeeded_input_is_skipped() -> None:
    wf = Workflow("nothing")
    wf.add("cond", lambda: "neither", kind="condition")
    wf.add("yes", lambda: 1, depends_on=["cond"], branch={"cond": "true"})
    wf.add("no", lambda: 0, depends_on=["cond"], branch={"cond": "false"})
    wf.add("m", kind="merge", depends_on=["yes", "no"])
    result = wf.run()
    assert result.ok
    assert result.steps["m"].state is StepState.SKIPPED


def test_branch_must_name_a_dependency() -> None:
    wf = Workflow("bad-branch")
    wf.add("cond", lambda: True, kind="condition")
    wf.add("other", lambda: 1)
    wf.add("yes", lambda other: other, branch={"cond": "true"})
    with pytest.raises(ValidationError) as info:
        wf.validate()
    [problem] = info.value.problems
    assert problem.step == "yes"
    assert "'cond'" in problem.message
    assert "depends_on" in problem.message


def test_condition_expression() -> None:
    wf = Workflow("expr")
    wf.add("count", lambda: 12)
    wf.add("big", kind="condition", depends_on=["count"], params={"expression": "count > 10"})
    wf.add("alert", lambda: "alert", depends_on=["big"], branch={"big": "true"})
    wf.add("calm", lambda: "calm", depends_on=["big"], branch={"big": "false"})
    result = wf.run()
    assert result.outputs["big"] is True
    assert set(result.outputs) == {"count", "big", "alert"}


def test_condition_needs_a_function_or_an_expression() -> None:
    wf = Workflow("empty")
    wf.add("cond", kind="condition")
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert "expression" in info.value.problems[0].message
