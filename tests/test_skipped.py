"""A step that skips itself (``raise StepSkipped(reason)``), on every executor.

What a broken implementation would get wrong: the step failing or being retried, the reason
lost, dependents not following their trigger rules, or the skip not recorded in the store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import pardag
from pardag import RetryPolicy, RunStatus, StepSkipped, StepState, Workflow
from pardag.store import open_store
from tests.steps import skip_in_worker


def skip_here() -> None:
    raise StepSkipped("nothing new")


async def skip_async() -> None:
    await asyncio.sleep(0)
    raise StepSkipped("nothing new")


@pytest.mark.parametrize(
    ("fn", "executor", "reason"),
    [
        (skip_here, "threads", "nothing new"),
        (skip_here, "inline", "nothing new"),
        (skip_async, None, "nothing new"),
        (skip_in_worker, "processes", "nothing new in the worker"),
    ],
)
def test_a_step_skips_itself_with_its_reason_and_is_not_retried(
    fn: object, executor: str | None, reason: str
) -> None:
    wf = Workflow("skips")
    wf.add("a", fn, executor=executor, retry=RetryPolicy(retries=3, delay=0))
    wf.add("needs_a", lambda a: "ran", depends_on=["a"])
    wf.add("after_all", lambda: "ran", depends_on=["a"], trigger="all_done")
    recorder = pardag.Recorder()
    result = wf.run(listeners=[recorder])
    a = result.steps["a"]
    assert (a.state, a.reason, a.attempts) == (StepState.SKIPPED, reason, 1)
    assert a.error is None
    assert result.status is RunStatus.SUCCEEDED
    assert result.steps["needs_a"].reason == "upstream skipped: a"
    assert result.outputs["after_all"] == "ran"
    kinds = [e.kind.value for e in recorder.events if e.step == "a"]
    assert kinds == ["step_ready", "step_started", "step_skipped"]


def test_a_code_step_can_skip_itself() -> None:
    wf = Workflow("code")
    wf.add(
        "s",
        params={
            "code": "from pardag import StepSkipped\ndef run():\n    raise StepSkipped('idle')\n"
        },
    )
    step = wf.run().steps["s"]
    assert (step.state, step.reason) == (StepState.SKIPPED, "idle")


def test_the_default_reason_says_the_step_chose_it() -> None:
    wf = Workflow("default")
    wf.add("s", lambda: (_ for _ in ()).throw(StepSkipped()))
    assert wf.run().steps["s"].reason == "skipped by the step"


def test_a_skip_is_recorded_in_the_store(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf = Workflow("recorded")
    wf.add("s", skip_here)
    result = wf.run(store=url)
    with open_store(url) as store:
        [record] = store.get_steps(result.run_id)
    assert (record.state, record.reason, record.error) == ("skipped", "nothing new", None)
