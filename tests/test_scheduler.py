"""The scheduler on its own: no I/O, no threads, time passed in by the test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pardag import StepState, Trigger, Workflow
from pardag.model import Graph
from pardag.scheduler import Pool, Scheduler
from pardag.states import Mode

SUCCEEDED, FAILED = StepState.SUCCEEDED, StepState.FAILED
SKIPPED, CANCELLED = StepState.SKIPPED, StepState.CANCELLED
READY, PENDING, RUNNING = StepState.READY, StepState.PENDING, StepState.RUNNING
ROOT = Path(__file__).resolve().parents[1]


def noop(inputs: Mapping[str, Any]) -> None:
    return None


def build(
    spec: Iterable[tuple[str, Sequence[str]] | tuple[str, Sequence[str], dict[str, Any]]],
    pools: Mapping[str, int | tuple[int, float]] | None = None,
) -> Graph:
    """A compiled graph from ``(id, deps[, step options])`` in declaration order."""
    wf = Workflow("sched", pools=pools)
    for entry in spec:
        sid, deps, *rest = entry
        wf.add(sid, noop, depends_on=list(deps), **(rest[0] if rest else {}))
    return wf.compile()


def make(graph: Graph, **kwargs: Any) -> Scheduler:
    sched = Scheduler(graph, **kwargs)
    sched.prepare()
    return sched


def ids(graph: Graph, steps: Iterable[int]) -> list[str]:
    return [graph.ids[i] for i in steps]


def drain(sched: Scheduler, now: float = 0.0) -> list[str]:
    """Run to the end, finishing steps in the order they were handed out; the dispatch order."""
    order: list[int] = []
    queue: list[int] = []
    while sched.is_active():
        ready = sched.get_ready(now)
        queue.extend(ready)
        order.extend(ready)
        assert queue, "the scheduler stalled"
        sched.done(queue.pop(0), SUCCEEDED)
    return ids(sched.graph, order)


def state(sched: Scheduler, sid: str) -> StepState:
    return sched.state[sched.graph.index[sid]]


def reason(sched: Scheduler, sid: str) -> str | None:
    return sched.reason.get(sched.graph.index[sid])


def finish(sched: Scheduler, sid: str, outcome: StepState = SUCCEEDED, **kw: Any) -> None:
    sched.done(sched.graph.index[sid], outcome, **kw)


# -- dispatch order -------------------------------------------------------------------------


def test_dynamic_order_priority_then_upward_rank_then_declaration() -> None:
    r"""
    b  a   long1      urgent (priority 5)   big (estimate 10)
           |
           long2
           |
           long3
    """
    graph = build(
        [
            ("b", []),
            ("a", []),
            ("long1", []),
            ("long2", ["long1"]),
            ("long3", ["long2"]),
            ("urgent", [], {"priority": 5}),
            ("big", [], {"estimate": 10}),
        ]
    )
    sched = make(graph)
    # Everything ready at once comes out best first.
    assert ids(graph, sched.get_ready()) == ["urgent", "big", "long1", "b", "a"]


def test_priority_beats_rank_and_negative_priority_goes_last() -> None:
    graph = build(
        [
            ("low", [], {"priority": -1}),
            ("plain", []),
            ("deep1", []),
            ("deep2", ["deep1"]),
            ("high", [], {"priority": 1}),
        ]
    )
    # deep2 (rank 1) and plain (rank 1) tie on rank: declaration order decides.
    assert drain(make(graph, limit=1)) == ["high", "deep1", "plain", "deep2", "low"]


def test_ready_order_reconsiders_steps_released_later() -> None:
    """A step released by a dependency competes on its key, not on when it became ready."""
    graph = build(
        [
            ("gate", []),
            ("filler1", []),
            ("filler2", []),
            ("vip", ["gate"], {"priority": 9}),
        ]
    )
    sched = make(graph, limit=1)
    assert ids(graph, sched.get_ready()) == ["gate"]
    finish(sched, "gate")
    assert ids(graph, sched.get_ready()) == ["vip"]


def test_levels_mode_sorts_ids_as_strings_within_a_level() -> None:
    graph = build([("s2", []), ("s10", []), ("s1", []), ("x", [], {"priority": 100})])
    assert ids(graph, make(graph, mode=Mode.LEVELS).get_ready()) == ["s1", "s10", "s2", "x"]
    # The same graph in dynamic mode: priority, then declaration order.
    assert ids(graph, make(graph).get_ready()) == ["x", "s2", "s10", "s1"]


def test_levels_mode_waits_for_the_whole_level() -> None:
    r"""
    slow   fast
            |
           next      (level 1: must wait for slow too)
    """
    graph = build([("slow", []), ("fast", []), ("next", ["fast"])])
    sched = make(graph, mode=Mode.LEVELS)
    assert ids(graph, sched.get_ready()) == ["fast", "slow"]
    finish(sched, "fast")
    assert sched.get_ready() == []  # barrier: slow is still running
    assert state(sched, "next") is READY
    finish(sched, "slow")
    assert ids(graph, sched.get_ready()) == ["next"]

    dynamic = make(graph)
    dynamic.get_ready()
    finish(dynamic, "fast")
    assert ids(graph, dynamic.get_ready()) == ["next"]  # no barrier


def test_levels_mode_counts_skipped_and_failed_steps_as_level_done() -> None:
    graph = build([("a", []), ("b", []), ("c", ["a"]), ("d", ["b"]), ("e", ["c", "d"])])
    sched = make(graph, mode=Mode.LEVELS)
    assert ids(graph, sched.get_ready()) == ["a", "b"]
    finish(sched, "a", FAILED)  # c is skipped: level 1 still has d
    assert state(sched, "c") is SKIPPED
    assert sched.get_ready() == []
    finish(sched, "b")
    assert ids(graph, sched.get_ready()) == ["d"]
    finish(sched, "d")
    assert state(sched, "e") is SKIPPED
    assert not sched.is_active()


def test_sequential_mode_hands_out_one_step_at_a_time() -> None:
    graph = build([(f"s{i}", []) for i in range(5)] + [("last", ["s0"], {"priority": 1})])
    sched = make(graph, mode=Mode.SEQUENTIAL, limit=8)  # sequential ignores the limit
    seen = []
    while sched.is_active():
        ready = sched.get_ready()
        assert len(ready) == 1
        assert sched.get_ready() == []
        seen += ids(graph, ready)
        sched.done(ready[0], SUCCEEDED)
    # Dynamic order: last has priority, so it goes right after s0 releases it.
    assert seen == ["s0", "last", "s1", "s2", "s3", "s4"]


def test_limit_caps_running_steps() -> None:
    graph = build([(f"s{i}", []) for i in range(10)])
    sched = make(graph, limit=3)
    first = sched.get_ready()
    assert ids(graph, first) == ["s0", "s1", "s2"]
    assert sched.get_ready() == []
    assert sched.running == 3
    sched.done(first[1], SUCCEEDED)
    assert ids(graph, sched.get_ready()) == ["s3"]
    assert sched.get_ready() == []
    unlimited = make(graph)
    assert len(unlimited.get_ready()) == 10


def test_order_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    script = tmp_path / "order.py"
    script.write_text(
        "from tests.test_scheduler import build, drain, make\n"
        "from pardag.model import Mode\n"
        "spec = [(f'n{i}', [f'n{j}' for j in range(max(0, i - 3), i) if (i * j) % 3 == 0])\n"
        "        for i in range(60)]\n"
        "g = build(spec)\n"
        "print(drain(make(g, limit=2)), drain(make(g, mode=Mode.LEVELS, limit=2)))\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT}/src"}
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1


# -- pools --------------------------------------------------------------------------------


def test_pool_capacity_is_respected() -> None:
    graph = build([(f"d{i}", [], {"resources": {"db": 1}}) for i in range(5)], pools={"db": 2})
    sched = make(graph, pools={"db": Pool(2)})
    first = sched.get_ready()
    assert ids(graph, first) == ["d0", "d1"]
    assert sched.get_ready() == []
    assert "db" in sched.waiting_on[graph.index["d2"]]
    sched.done(first[0], SUCCEEDED)
    assert ids(graph, sched.get_ready()) == ["d2"]
    assert sched.get_ready() == []
    sched.done(first[1], FAILED)  # a failure gives the unit back as well
    assert ids(graph, sched.get_ready()) == ["d3"]


def test_pool_blocked_step_does_not_block_later_steps() -> None:
    """Head-of-line: a step waiting for a pool leaves the slots to steps that need none."""
    graph = build(
        [
            ("db1", [], {"resources": {"db": 1}, "priority": 2}),
            ("db2", [], {"resources": {"db": 1}, "priority": 2}),
            ("db3", [], {"resources": {"db": 1}, "priority": 2}),
            ("free1", []),
            ("free2", []),
        ],
        pools={"db": 1},
    )
    sched = make(graph, limit=3, pools={"db": Pool(1)})
    assert ids(graph, sched.get_ready()) == ["db1", "free1", "free2"]
    assert sched.running == 3
    assert state(sched, "db2") is READY
    sched.done(graph.index["db1"], SUCCEEDED)
    assert ids(graph, sched.get_ready()) == ["db2"]


def test_step_asking_for_several_units_waits_until_they_are_all_free() -> None:
    graph = build(
        [("small", [], {"resources": {"gpu": 1}}), ("big", [], {"resources": {"gpu": 2}})],
        pools={"gpu": 2},
    )
    sched = make(graph, pools={"gpu": Pool(2)})
    assert ids(graph, sched.get_ready()) == ["small"]
    finish(sched, "small")
    assert ids(graph, sched.get_ready()) == ["big"]


def test_step_needing_two_pools_holds_neither_while_waiting() -> None:
    graph = build(
        [
            ("a_only", [], {"resources": {"a": 1}}),
            ("both", [], {"resources": {"a": 1, "b": 1}}),
            ("b_only", [], {"resources": {"b": 1}}),
        ],
        pools={"a": 1, "b": 1},
    )
    sched = make(graph, pools={"a": Pool(1), "b": Pool(1)})
    # "both" cannot get "a", so it must not sit on "b": b_only runs.
    assert ids(graph, sched.get_ready()) == ["a_only", "b_only"]
    finish(sched, "a_only")
    assert sched.get_ready() == []  # b is still held by b_only
    finish(sched, "b_only")
    assert ids(graph, sched.get_ready()) == ["both"]


def starts_per_window(rate: float, steps: int, until: float, tick: float) -> list[float]:
    """Poll a rate-limited pool every ``tick`` s; return the start times, done at once."""
    graph = build(
        [(f"r{i}", [], {"resources": {"api": 1}}) for i in range(steps)], pools={"api": 100}
    )
    sched = make(graph, pools={"api": Pool(100, rate)})
    starts: list[float] = []
    k = 0
    while k * tick <= until:
        now = k * tick
        sched.wake_rate_limited()
        for i in sched.get_ready(now):
            starts.append(now)
            sched.done(i, SUCCEEDED)
        k += 1
    return starts


def test_rate_limited_pool_gives_at_most_rate_per_second() -> None:
    starts = starts_per_window(rate=4, steps=200, until=5.0, tick=0.01)
    for t in range(5):
        in_window = [s for s in starts if t <= s < t + 1]
        assert len(in_window) <= 4
        assert len(in_window) >= 3  # and it does not starve either
    # No burst at the start even though every step was ready at once.
    assert len([s for s in starts if s < 0.5]) <= 2


def test_rate_limited_pool_sets_wakeup_at() -> None:
    graph = build([(f"r{i}", [], {"resources": {"api": 1}}) for i in range(3)], pools={"api": 5})
    sched = make(graph, pools={"api": Pool(5, 2.0)})
    first = sched.get_ready(100.0)
    assert len(first) == 1
    assert sched.wakeup_at == pytest.approx(100.5)
    assert "rate" in sched.waiting_on[graph.index["r1"]]
    sched.wake_rate_limited()
    assert sched.get_ready(100.2) == []  # too early: no token yet
    assert sched.wakeup_at == pytest.approx(100.5)
    sched.wake_rate_limited()
    assert len(sched.get_ready(100.5)) == 1
    assert sched.wakeup_at == pytest.approx(101.0)


def test_slow_rate_below_one_per_second() -> None:
    starts = starts_per_window(rate=0.5, steps=5, until=5.0, tick=0.25)
    assert starts == [0.0, 2.0, 4.0]


# -- trigger rules --------------------------------------------------------------------------

TRIGGER_CASES = [
    # rule, outcome of p1, outcome of p2, expected state, expected reason (or None)
    ("all_success", SUCCEEDED, SUCCEEDED, READY, None),
    ("all_success", SUCCEEDED, FAILED, SKIPPED, "upstream failed: p2"),
    ("all_success", SUCCEEDED, CANCELLED, SKIPPED, "upstream failed: p2"),
    ("all_success", SUCCEEDED, SKIPPED, SKIPPED, "upstream skipped: p2"),
    ("all_success", SKIPPED, FAILED, SKIPPED, "upstream failed: p2"),
    ("all_done", FAILED, SKIPPED, READY, None),
    ("all_done", CANCELLED, CANCELLED, READY, None),
    ("any_success", FAILED, SUCCEEDED, READY, None),
    ("any_success", SKIPPED, SUCCEEDED, READY, None),
    ("any_success", FAILED, SKIPPED, SKIPPED, "upstream failed: p1"),
    ("any_success", SKIPPED, SKIPPED, SKIPPED, "upstream skipped: p1"),
    ("none_failed", SUCCEEDED, SKIPPED, READY, None),
    ("none_failed", SKIPPED, SKIPPED, READY, None),
    ("none_failed", SUCCEEDED, FAILED, SKIPPED, "upstream failed: p2"),
    ("none_failed", CANCELLED, SUCCEEDED, SKIPPED, "upstream failed: p1"),
]


@pytest.mark.parametrize("spelling", ["enum", "string"])
@pytest.mark.parametrize(("rule", "first", "second", "expected", "why"), TRIGGER_CASES)
def test_trigger_rules(
    rule: str,
    first: StepState,
    second: StepState,
    expected: StepState,
    why: str | None,
    spelling: str,
) -> None:
    """Each rule, given as ``Trigger.X`` or as the plain string users write (YAML, API)."""
    trigger = Trigger(rule) if spelling == "enum" else rule
    graph = build([("p1", []), ("p2", []), ("s", ["p1", "p2"], {"trigger": trigger})])
    sched = make(graph)
    sched.get_ready()
    finish(sched, "p1", first)
    # A rule is applied only once ALL dependencies are final.
    assert state(sched, "s") is PENDING
    finish(sched, "p2", second)
    assert state(sched, "s") is expected
    assert reason(sched, "s") == why
    if expected is READY:
        assert ids(graph, sched.get_ready()) == ["s"]
    else:
        assert sched.get_ready() == []
        assert not sched.is_active()


def test_skip_of_a_dependency_reached_through_a_trigger_cascades() -> None:
    graph = build(
        [("a", []), ("b", ["a"]), ("c", ["b"], {"trigger": Trigger.ALL_DONE}), ("d", ["c"])]
    )
    sched = make(graph)
    sched.get_ready()
    finish(sched, "a", FAILED)
    assert state(sched, "b") is SKIPPED
    assert reason(sched, "b") == "upstream failed: a"
    assert state(sched, "c") is READY  # all_done runs even after a skip
    assert ids(graph, sched.get_ready()) == ["c"]


# -- branches ----------------------------------------------------------------------------


def branch_graph() -> Graph:
    r"""
       cond
    true/  \false
     yes    no
      |      |
     after  other
       \    /
       join (any_success)
    """
    return build(
        [
            ("cond", [], {"kind": "condition"}),
            ("yes", ["cond"], {"branch": {"cond": "true"}}),
            ("no", ["cond"], {"branch": {"cond": "false"}}),
            ("after", ["yes"]),
            ("other", ["no"]),
            ("join", ["after", "other"], {"trigger": Trigger.ANY_SUCCESS}),
        ]
    )


def test_branch_handle_routes_and_skips_the_other_branch() -> None:
    graph = branch_graph()
    sched = make(graph)
    sched.get_ready()
    finish(sched, "cond", handle="false")
    assert state(sched, "no") is READY
    assert state(sched, "yes") is SKIPPED
    assert reason(sched, "yes") == "branch not taken: cond chose 'false', not 'true'"
    assert state(sched, "after") is SKIPPED
    assert reason(sched, "after") == "upstream skipped: yes"
    assert drain(sched) == ["no", "other", "join"]


def test_case_name_handles() -> None:
    graph = build(
        [("pick", [], {"kind": "condition"})]
        + [(c, ["pick"], {"branch": {"pick": c}}) for c in ("red", "green", "blue")]
    )
    sched = make(graph)
    sched.get_ready()
    finish(sched, "pick", handle="green")
    assert [state(sched, c) for c in ("red", "green", "blue")] == [SKIPPED, READY, SKIPPED]
    assert reason(sched, "blue") == "branch not taken: pick chose 'green', not 'blue'"


def test_failed_condition_skips_both_branches_as_upstream_failed() -> None:
    graph = branch_graph()
    sched = make(graph)
    sched.get_ready()
    finish(sched, "cond", FAILED)
    assert reason(sched, "yes") == "upstream failed: cond"
    assert reason(sched, "no") == "upstream failed: cond"
    assert state(sched, "join") is SKIPPED
    assert not sched.is_active()


def test_edge_without_handle_from_a_condition_is_a_plain_dependency() -> None:
    graph = build([("cond", []), ("always", ["cond"])])
    sched = make(graph)
    sched.get_ready()
    finish(sched, "cond", handle="false")
    assert state(sched, "always") is READY


# -- skips at scale -------------------------------------------------------------------------


def test_skip_cascade_through_a_hundred_thousand_step_chain() -> None:
    n = 100_000
    graph = build([("s0", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(1, n)])
    sched = make(graph)
    assert ids(graph, sched.get_ready()) == ["s0"]
    sched.done(0, FAILED)
    assert not sched.is_active()
    assert sched.state[1] is SKIPPED
    assert sched.reason[1] == "upstream failed: s0"
    assert sched.state[n - 1] is SKIPPED
    assert sched.reason[n - 1] == f"upstream skipped: s{n - 2}"
    assert sched.state.count(SKIPPED) == n - 1


# -- retries, cancellation, detaching ------------------------------------------------------


def test_retry_later_holds_no_slot_and_requeue_competes_again() -> None:
    graph = build(
        [("flaky", [], {"resources": {"db": 1}}), ("other", [], {"resources": {"db": 1}})],
        pools={"db": 1},
    )
    sched = make(graph, limit=1, pools={"db": Pool(1)})
    assert ids(graph, sched.get_ready()) == ["flaky"]
    sched.retry_later(0)
    assert sched.state[0] is StepState.RETRYING
    assert sched.running == 0
    assert ids(graph, sched.get_ready()) == ["other"]  # slot and pool unit were given back
    sched.requeue(0)
    assert sched.state[0] is READY
    assert sched.get_ready() == []  # other holds the slot
    finish(sched, "other")
    assert ids(graph, sched.get_ready()) == ["flaky"]
    finish(sched, "flaky")
    assert not sched.is_active()


def test_cancel_pending_cancels_everything_but_running_steps() -> None:
    graph = build(
        [
            ("run", []),
            ("queued", []),
            ("later", ["run"]),
            ("flaky", []),
            ("pooled", [], {"resources": {"db": 1}}),
            ("pooled2", [], {"resources": {"db": 1}}),
        ],
        pools={"db": 1},
    )
    sched = make(graph, limit=3, pools={"db": Pool(1)})
    started = ids(graph, sched.get_ready())
    assert started == ["run", "queued", "flaky"]
    finish(sched, "queued")
    sched.retry_later(graph.index["flaky"])
    assert ids(graph, sched.get_ready()) == ["pooled"]  # pooled2 waits on the pool
    finish(sched, "pooled")  # pooled2 gets back in line
    cancelled = ids(graph, sched.cancel_pending("run failed at step 'x'"))
    assert sorted(cancelled) == ["flaky", "later", "pooled2"]
    for sid in cancelled:
        assert state(sched, sid) is CANCELLED
        assert reason(sched, sid) == "run failed at step 'x'"
    assert state(sched, "run") is RUNNING
    assert sched.get_ready() == []
    finish(sched, "run")
    assert state(sched, "later") is CANCELLED
    assert sched.get_ready() == []
    assert not sched.is_active()


def test_detach_keeps_the_slot_until_release_detached() -> None:
    graph = build(
        [("thread", [], {"resources": {"db": 1}}), ("next", [], {"resources": {"db": 1}})],
        pools={"db": 2},
    )
    sched = make(graph, limit=1, pools={"db": Pool(2)})
    assert ids(graph, sched.get_ready()) == ["thread"]
    token = sched.detach(0)
    sched.done(0, FAILED, reason="timed out after 1s")
    assert sched.state[0] is FAILED
    assert sched.get_ready() == []  # the slot is still taken
    sched.release_detached(token)
    assert ids(graph, sched.get_ready()) == ["next"]


def test_detached_pool_unit_is_kept_until_released() -> None:
    graph = build(
        [("thread", [], {"resources": {"db": 1}}), ("next", [], {"resources": {"db": 1}})],
        pools={"db": 1},
    )
    sched = make(graph, pools={"db": Pool(1)})  # no overall limit: only the pool holds it
    assert ids(graph, sched.get_ready()) == ["thread"]
    token = sched.detach(0)
    sched.retry_later(0)  # a detached step may also be retried later
    sched.requeue(0)
    assert sched.get_ready() == []
    sched.release_detached(token)
    assert ids(graph, sched.get_ready()) == ["thread"]


def test_empty_graph_is_not_active() -> None:
    sched = make(Workflow("empty").compile())
    assert not sched.is_active()
    assert sched.get_ready() == []
