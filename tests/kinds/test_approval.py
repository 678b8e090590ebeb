"""The ``approval`` kind, before the run store: the answer comes with the run's params."""

from __future__ import annotations

from typing import Any

import pytest

from pardag import StepState, ValidationError, Workflow
from pardag.kinds.approval import ApprovalKind, answer_of, approved


def review_flow(**params: Any) -> Workflow:
    wf = Workflow("deploy")
    wf.add("build", lambda: {"version": "1.4.2"})
    wf.add(
        "review",
        kind="approval",
        depends_on=["build"],
        params={"prompt": "Deploy {{ steps.build.output.version }}?", **params},
    )
    wf.add("deploy", lambda review: f"deployed: {review['approved']}", when="review.approved")
    return wf


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("yes", True),
        ("Approve", True),
        (True, True),
        ("no", False),
        ("REJECTED", False),
        (False, False),
        ("staging", "staging"),
    ],
)
def test_the_answer_from_the_run_params_is_the_output(answer: Any, expected: Any) -> None:
    result = review_flow().run(params={"approvals": {"review": answer}})
    assert result.outputs["review"] == {"approved": expected, "answer": answer}


def test_an_approved_step_lets_its_dependents_run_and_a_rejected_one_does_not() -> None:
    yes = review_flow().run(params={"approvals": {"review": "yes"}})
    assert yes.outputs["deploy"] == "deployed: True"
    no = review_flow().run(params={"approvals": {"review": "no"}})
    assert no.steps["deploy"].state is StepState.SKIPPED


def test_the_flat_key_form_is_read_too() -> None:
    result = review_flow().run(params={"approvals.review": "y"})
    assert result.outputs["review"]["approved"] is True


def test_without_an_answer_the_step_pauses_and_so_does_the_run() -> None:
    result = review_flow().run()
    assert result.status == "paused"
    assert result.steps["review"].state is StepState.PAUSED
    assert result.steps["deploy"].state is StepState.PENDING  # it waits, it is not skipped


def test_choices_limit_the_answers() -> None:
    flow = review_flow(choices=["staging", "production"])
    assert flow.run(params={"approvals": {"review": "Production"}}).outputs["review"] == {
        "approved": "Production",
        "answer": "Production",
    }
    result = flow.run(params={"approvals": {"review": "moon"}})
    reason = result.steps["review"].reason or ""
    assert "the answer 'moon' is not one of the choices: staging, production" in reason


def test_yes_matches_a_boolean_choice() -> None:
    flow = review_flow(choices=[True, False])
    assert flow.run(params={"approvals": {"review": "yes"}}).outputs["review"]["approved"] is True


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "an approval step needs params prompt: 'the question'"),
        ({"prompt": ""}, "needs params prompt"),
        ({"prompt": "ok {{ x }"}, "prompt: template syntax error"),
        ({"prompt": "ok?", "choices": "yes"}, "choices must be a list of answers"),
        ({"prompt": "ok?", "choices": []}, "choices must be a list of answers"),
    ],
)
def test_bad_params_are_validation_problems(params: dict[str, Any], fragment: str) -> None:
    wf = Workflow("bad")
    wf.add("review", kind="approval", params=params)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    [problem] = info.value.problems
    assert problem.step == "review"
    assert fragment in problem.message


def test_helpers() -> None:
    assert answer_of({"approvals": {"a": "yes"}}, "a") == "yes"
    assert answer_of({"approvals": {"a": "yes"}}, "b") is None
    assert answer_of({"approvals.b": 0}, "b") == 0
    assert approved(" ok ") is True
    assert approved(3) == 3
    assert ApprovalKind.fields == (
        "prompt",
        "choices",
        "schema",
        "timeout",
        "on_timeout",
        "default",
    )
