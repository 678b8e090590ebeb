"""A run's set-up, decided before it starts: which steps chain, who runs what, which fast
paths a run may take. Pure functions of the workflow and its settings."""

from __future__ import annotations

import asyncio

from pardag import Workflow
from pardag.kinds import RunContext
from pardag.model import Settings
from pardag.runner.plan import Plan, make_plan, make_scheduler
from pardag.states import Mode


def noop() -> None:
    return None


def plan_of(wf: Workflow, *, durable: bool = False, exact_events: bool = False) -> Plan:
    ctx = RunContext("run", wf.name, {})
    return make_plan(wf.compile(), wf.settings, ctx, durable=durable, exact_events=exact_events)


def chain_workflow(**settings: object) -> Workflow:
    wf = Workflow("chains", **settings)  # type: ignore[arg-type]
    wf.add("a", noop)
    wf.add("b", noop, depends_on=["a"])  # a's only dependent, a its only dependency: follows
    wf.add("c", noop, depends_on=["b"], timeout=5)  # a timeout starts with its step: no
    wf.add("d", noop)
    wf.add("e", noop, depends_on=["d"])  # d has two dependents: no
    wf.add("f", noop, depends_on=["d"])
    wf.add("g", noop, depends_on=["e"], when=lambda e: True)  # a precondition: no
    return wf


def test_a_step_follows_only_its_single_dependency_with_nothing_in_between() -> None:
    plan = plan_of(chain_workflow())
    ids = plan.graph.ids
    assert plan.chain is not None
    assert {ids[i]: ids[j] for i, j in plan.chain.items()} == {"a": "b"}


def test_no_fast_path_when_someone_must_see_each_start() -> None:
    wf = chain_workflow()
    for flags in ({"durable": True, "exact_events": True}, {"exact_events": True}):
        plan = plan_of(wf, **flags)
        assert plan.chain is None and not plan.hand_ahead
    assert plan_of(wf).chain is not None


def test_levels_mode_has_no_chains_and_sequential_no_hand_ahead() -> None:
    assert plan_of(chain_workflow(mode="levels")).chain is None
    plain = Workflow("plain", mode="sequential")
    plain.add("a", noop)
    assert not plan_of(plain).hand_ahead
    plain.settings.mode = Mode.DYNAMIC
    assert plan_of(plain).hand_ahead


def test_the_run_executor_replaces_only_the_plain_function_default() -> None:
    async def coro() -> None:
        await asyncio.sleep(0)

    wf = Workflow("exec", executor="inline")
    wf.add("plain", noop)
    wf.add("mine", noop, executor="threads")
    wf.add("coro", coro)
    wf.add("merge", kind="merge", depends_on=["plain"])
    assert dict(zip(plan_of(wf).graph.ids, plan_of(wf).executor_of, strict=True)) == {
        "plain": "inline",
        "mine": "threads",
        "coro": "async",
        "merge": "inline",
    }


def test_auto_concurrency_gives_each_executor_its_own_pool() -> None:
    wf = Workflow("auto")
    wf.add("t", noop)
    wf.add("i", noop, executor="inline")
    sched = make_scheduler(plan_of(wf))
    assert set(sched.pools) == {"executor:threads"}
    assert sched.limit is None
    wf.settings = Settings(max_concurrency=3)
    limited = make_scheduler(plan_of(wf))
    assert limited.pools == {} and limited.limit == 3
