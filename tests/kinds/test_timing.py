"""The ``delay`` kind: waits, passes its first input on, and stops when the run stops it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pardag import StepState, StepTimeout, ValidationError, Workflow
from pardag.kinds.base import RunContext
from pardag.kinds.timing import DelayKind
from pardag.model import Step

pytestmark = pytest.mark.timeout(60)


def test_the_first_input_is_passed_on() -> None:
    wf = Workflow("delay")
    wf.add("a", lambda: {"rows": 3})
    wf.add("b", lambda: "second")
    wf.add("wait", kind="delay", depends_on=["a", "b"], params={"duration": "10ms"})
    wf.add("after", lambda wait: wait["rows"] + 1)
    result = wf.run()
    assert result.outputs["wait"] == {"rows": 3}
    assert result.outputs["after"] == 4


def test_without_inputs_the_output_is_none() -> None:
    wf = Workflow("delay")
    wf.add("wait", kind="delay", params={"duration": 0})
    result = wf.run()
    assert result.ok
    assert result.outputs["wait"] is None


@pytest.mark.parametrize("duration", [0, 0.01, "5ms", "0.01s", "{{ params.wait }}"])
def test_durations_as_numbers_strings_and_templates(duration: Any) -> None:
    wf = Workflow("delay")
    wf.add("a", lambda: "x")
    wf.add("wait", kind="delay", depends_on=["a"], params={"duration": duration})
    assert wf.run(params={"wait": "5ms"}).outputs["wait"] == "x"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "needs params duration, e.g. duration: '500ms'"),
        ({"duration": "soon"}, "'soon'"),
        ({"duration": -1}, ">= 0"),
        ({"duration": [1]}, "duration"),
        ({"duration": "{{ params.wait }"}, "template syntax error"),
    ],
)
def test_bad_durations_are_validation_problems(params: dict[str, Any], fragment: str) -> None:
    wf = Workflow("delay")
    wf.add("wait", kind="delay", params=params)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    [problem] = info.value.problems
    assert problem.step == "wait"
    assert fragment in problem.message


def test_a_template_that_renders_to_a_bad_duration_fails_the_step() -> None:
    wf = Workflow("delay")
    wf.add("wait", kind="delay", params={"duration": "{{ params.wait }}"})
    result = wf.run(params={"wait": "later"})
    assert result.steps["wait"].state is StepState.FAILED
    reason = result.steps["wait"].reason or ""
    assert "'later'" in reason
    assert "params.wait" in reason


def test_a_timeout_stops_the_wait() -> None:
    wf = Workflow("delay")
    wf.add("wait", kind="delay", params={"duration": "1h"}, timeout=0.1)
    started = time.monotonic()
    result = wf.run()
    assert isinstance(result.steps["wait"].error, StepTimeout)
    assert time.monotonic() - started < 50  # not the hour


def test_a_failing_run_cancels_the_wait() -> None:
    wf = Workflow("delay")
    wf.add("wait", kind="delay", params={"duration": "1h"})
    wf.add("boom", _boom)
    result = wf.run()
    assert result.status == "failed"
    assert result.steps["wait"].state is StepState.CANCELLED


def _boom() -> None:
    time.sleep(0.05)
    raise RuntimeError("boom")


def test_fields_and_executor() -> None:
    kind = DelayKind()
    assert kind.fields == ("duration",)
    action = kind.action(Step("w", kind="delay", params={"duration": 1}), RunContext("r", "w", {}))
    assert action.executor == "async"
