"""The public API: exactly the names DESIGN §4 promises, typed and sorted."""

from __future__ import annotations

import asyncio

import pardag


def test_design_section_4_example_runs() -> None:
    wf = pardag.Workflow("etl")

    @wf.step
    def extract() -> list[int]:
        return [1, 2, 3]

    @wf.step(retry=3, timeout=10)
    def transform(extract: list[int]) -> list[int]:
        return [x * 10 for x in extract]

    def load_fn(transform: list[int]) -> int:
        return sum(transform)

    wf.add("load", load_fn, depends_on=["transform"])
    result = wf.run(mode="dynamic", max_concurrency=8)
    assert result.status == "succeeded"
    assert result.outputs["transform"] == [10, 20, 30]
    step = result.steps["transform"]
    assert step.state == "succeeded"
    assert step.attempts == 1
    assert step.started_at is not None and step.finished_at is not None
    assert step.started_at <= step.finished_at
    assert step.error is None
    assert result.final_output == 60
    assert wf.steps["transform"].retry == pardag.RetryPolicy(retries=3)
    assert extract() == [1, 2, 3]  # the decorator returns the function unchanged


def test_run_async_gives_the_same_result() -> None:
    wf = pardag.Workflow("a")
    wf.add("x", lambda: 2)

    async def double(x: int) -> int:
        return x * 2

    wf.add("y", double)
    result = asyncio.run(wf.run_async())
    assert result.outputs == {"x": 2, "y": 4}
    assert result.steps["y"].executor == "async"
    assert result.steps["x"].executor == "threads"


def test_top_level_run_is_workflow_run() -> None:
    wf = pardag.Workflow("r")
    wf.add("only", lambda: "done")
    assert pardag.run(wf, max_concurrency=1).final_output == "done"


def test_workflow_params_are_defaults_under_the_runs_params() -> None:
    wf = pardag.Workflow("p")
    wf.params = {"region": "eu", "size": 1}
    wf.add("show", lambda params: dict(params))
    assert wf.run().outputs["show"] == {"region": "eu", "size": 1}
    assert wf.run(params={"size": 5}).outputs["show"] == {"region": "eu", "size": 5}
