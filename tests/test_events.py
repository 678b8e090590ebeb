"""Events: one listener protocol, in order, and free when nobody listens."""

from __future__ import annotations

import time

import pytest

import pardag
from pardag import EventKind


def test_no_listener_builds_no_event(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an event was built with no listener registered")

    monkeypatch.setattr("pardag.runner.events.Event", forbidden)
    wf = pardag.Workflow("quiet", on_failure="continue")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    wf.add("c", lambda b: 1 / 0)
    wf.add("d", lambda c: c, depends_on=["c"])
    result = wf.run()
    assert result.outputs == {"a": 1, "b": 2}
    assert result.steps["d"].state == "skipped"


def test_pool_waits_are_reported_with_what_they_wait_for() -> None:
    wf = pardag.Workflow("pooled", pools={"db": 1})
    for k in range(3):
        wf.add(f"s{k}", lambda: time.sleep(0.01), resources={"db": 1})
    rec = pardag.Recorder()
    wf.run(listeners=[rec])
    waits = rec.of(EventKind.STEP_WAITING)
    assert {e.step for e in waits} == {"s1", "s2"}
    assert all(e.data["waiting_on"] == "pool 'db' (all 1 in use)" for e in waits)
    starts = [e.step for e in rec.of(EventKind.STEP_STARTED)]
    assert starts == ["s0", "s1", "s2"]


def test_rate_limited_pool_spaces_out_starts_and_says_so() -> None:
    wf = pardag.Workflow("rated", pools={"api": (5, 50.0)})
    for k in range(4):
        wf.add(f"s{k}", lambda: None, resources={"api": 1})
    rec = pardag.Recorder()
    result = wf.run(listeners=[rec])
    assert result.ok
    waits = rec.of(EventKind.STEP_WAITING)
    assert {e.data["waiting_on"] for e in waits} == {"pool 'api' (rate 50/s)"}
    # The bucket starts with one token, so every step after the first waits for a refill
    # (the spacing itself is the scheduler's business: tests/test_scheduler.py, no clock).
    assert {e.step for e in waits} == {"s1", "s2", "s3"}
    assert [e.step for e in rec.of(EventKind.STEP_STARTED)] == ["s0", "s1", "s2", "s3"]


def test_event_sequence_of_a_small_run() -> None:
    wf = pardag.Workflow("seq", on_failure="continue")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: 1 / 0)
    wf.add("c", lambda b: b, depends_on=["b"])
    rec = pardag.Recorder()
    wf.run(listeners=[rec])
    seen = [(e.kind.value, e.step) for e in rec.events]
    assert seen[0] == ("run_started", None)
    assert seen[-1] == ("run_finished", None)
    assert rec.events[-1].data["status"] == "failed"
    assert seen.index(("step_succeeded", "a")) < seen.index(("step_ready", "b"))
    assert seen.index(("step_ready", "b")) < seen.index(("step_started", "b"))
    assert seen.index(("step_failed", "b")) < seen.index(("step_skipped", "c"))
    skipped = rec.of(EventKind.STEP_SKIPPED)[0]
    assert skipped.data["reason"] == "upstream failed: b"
    assert all(e.run == rec.events[0].run for e in rec.events)
    times = [e.time for e in rec.events]
    assert times == sorted(times)


def test_a_failing_listener_does_not_break_the_run() -> None:
    class Broken:
        def on_event(self, event: pardag.Event) -> None:
            raise RuntimeError("listener bug")

    rec = pardag.Recorder()
    wf = pardag.Workflow("robust")
    wf.add("a", lambda: 1)
    result = wf.run(listeners=[Broken(), rec])
    assert result.ok
    assert rec.of(EventKind.STEP_SUCCEEDED)[0].step == "a"
