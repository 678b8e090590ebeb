"""The model: validation (every problem at once), graph analysis at scale, settings and retry."""

from __future__ import annotations

import itertools
import sys
from typing import Any

import pytest

import pardag
from pardag import ArgumentError, CycleError, RetryPolicy, Trigger, ValidationError, Workflow

N_BIG = 100_000


def noop() -> None:
    return None


def takes_inputs(inputs: dict[str, Any]) -> int:
    return len(inputs)


def problems_of(wf: Workflow) -> list[pardag.Problem]:
    with pytest.raises(ValidationError) as info:
        wf.validate()
    return info.value.problems


def has_problem(problems: list[pardag.Problem], step: str | None, *fragments: str) -> bool:
    return any(p.step == step and all(f in p.message for f in fragments) for p in problems)


def chain(n: int, *, closed: bool = False) -> Workflow:
    """s0 -> s1 -> ... -> s{n-1}; ``closed`` adds s{n-1} -> s0, making one big cycle."""
    wf = Workflow(f"chain{n}")
    wf.add("s0", takes_inputs, depends_on=[f"s{n - 1}"] if closed else [])
    for i in range(1, n):
        wf.add(f"s{i}", takes_inputs, depends_on=[f"s{i - 1}"])
    return wf


# -- validation -----------------------------------------------------------------------------


def test_validation_reports_every_problem_at_once() -> None:
    wf = Workflow("bad", pools={"db": 2})
    wf.add("a", noop)
    wf.add("a", noop)  # duplicate
    wf.add("uses_typo", takes_inputs, depends_on=["extract"])  # unknown, no close id
    wf.add("zero_timeout", noop, timeout=0)
    wf.add("neg_timeout", noop, timeout=-1.5)
    wf.add("neg_retry", noop, retry=RetryPolicy(retries=-1))
    wf.add("odd_trigger", noop, trigger="sometimes")
    wf.add("odd_kind", noop, kind="teleport")
    wf.add("no_pool", noop, resources={"gpu": 1})
    wf.add("too_much", noop, resources={"db": 3})
    wf.add("bad id!", noop)
    wf.add("odd_executor", noop, executor="fibers")
    wf.add("unbindable", lambda x, y, z: x, depends_on=["a"])

    problems = problems_of(wf)

    assert has_problem(problems, "a", "more than once")
    assert has_problem(problems, "uses_typo", "unknown step 'extract'")
    assert has_problem(problems, "zero_timeout", "timeout", "0")
    assert has_problem(problems, "neg_timeout", "timeout", "-1.5")
    assert has_problem(problems, "neg_retry", "retries", "-1")
    assert has_problem(problems, "odd_trigger", "sometimes", "all_success")
    assert has_problem(problems, "odd_kind", "teleport", "python")
    assert has_problem(problems, "no_pool", "'gpu'", "not declared")
    assert has_problem(problems, "too_much", "3", "'db'", "2")
    assert has_problem(problems, "bad id!", "id")
    assert has_problem(problems, "odd_executor", "fibers")
    assert has_problem(problems, "unbindable", "x, y, z", "inputs")
    assert len(problems) == 12
    # The message lists them all too, one per line, with the count.
    with pytest.raises(ValidationError) as info:
        wf.validate()
    message = str(info.value)
    assert "12 problems" in message
    assert message.count("\n  - ") == 12


def test_problems_of_valid_steps_are_not_invented() -> None:
    wf = Workflow("ok", pools={"db": 2})
    wf.add("a.b-c_1", noop, resources={"db": 2}, timeout=0.5, retry=0, trigger="none_failed")
    wf.add("d", takes_inputs, depends_on=["a.b-c_1"], executor="threads")
    wf.validate()  # no error
    assert wf.topological_order() == ["a.b-c_1", "d"]


def test_unknown_dependency_suggests_the_closest_id() -> None:
    wf = Workflow("typo")
    wf.add("extract", noop)
    wf.add("extras", noop)
    wf.add("load", takes_inputs, depends_on=["extrct"])
    [problem] = problems_of(wf)
    assert problem.step == "load"
    assert "'extrct'" in problem.message
    assert "did you mean 'extract'?" in problem.message


def test_nothing_runs_when_the_workflow_is_invalid() -> None:
    calls: list[str] = []
    wf = Workflow("invalid")
    wf.add("first", lambda: calls.append("first"))
    wf.add("second", lambda first: calls.append("second"), depends_on=["frist"])
    with pytest.raises(ValidationError):
        wf.run()
    with pytest.raises(ValidationError):
        wf.run(mode="sequential")
    assert calls == []


def test_validation_error_is_a_value_error_and_carries_problems() -> None:
    wf = Workflow("flow")
    wf.add("a", noop, timeout=0)
    with pytest.raises(ValueError, match="workflow 'flow' is invalid") as info:
        wf.validate()
    assert isinstance(info.value, ValidationError)
    assert [str(p) for p in info.value.problems] == [
        "step 'a': timeout must be a positive number of seconds, got 0"
    ]


def test_unknown_step_option_names_it() -> None:
    wf = Workflow("opts")
    with pytest.raises(ArgumentError, match="colour"):
        wf.add("a", noop, colour="red")


def assert_is_cycle_of(wf: Workflow, cycle: list[str], members: set[str]) -> None:
    """``cycle`` closes on itself, follows dependency edges and visits exactly ``members``."""
    assert cycle[0] == cycle[-1]
    assert set(cycle) == members
    assert len(cycle) == len(members) + 1
    for before, after in itertools.pairwise(cycle):
        assert before in wf.steps[after].depends_on, f"{before} -> {after} is not an edge"


def test_cycle_is_reported_as_its_path() -> None:
    wf = Workflow("loop")
    wf.add("a", takes_inputs, depends_on=["c"])
    wf.add("b", takes_inputs, depends_on=["a"])
    wf.add("c", takes_inputs, depends_on=["b"])
    wf.add("free", noop)
    with pytest.raises(CycleError) as info:
        wf.validate()
    error = info.value
    assert isinstance(error, ValidationError)
    assert_is_cycle_of(wf, error.cycle, {"a", "b", "c"})
    assert " -> ".join(error.cycle) in str(error)
    # Starting from "a", the path must read a -> b -> c -> a.
    start = error.cycle.index("a")
    rotated = error.cycle[start:-1] + error.cycle[:start] + ["a"]
    assert rotated == ["a", "b", "c", "a"]


def test_cycle_is_reported_together_with_other_problems() -> None:
    wf = Workflow("loop")
    wf.add("a", takes_inputs, depends_on=["b"])
    wf.add("b", takes_inputs, depends_on=["a"])
    wf.add("c", takes_inputs, depends_on=["missing"])
    wf.add("d", noop, timeout=-1)
    with pytest.raises(CycleError) as info:
        wf.validate()
    problems = info.value.problems
    assert has_problem(problems, "c", "'missing'")
    assert has_problem(problems, "d", "timeout")
    assert any("cycle" in p.message for p in problems)
    assert_is_cycle_of(wf, info.value.cycle, {"a", "b"})


def test_self_dependency_is_a_cycle() -> None:
    wf = Workflow("self")
    wf.add("a", takes_inputs, depends_on=["a"])
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert info.value.cycle == ["a", "a"]


@pytest.mark.parametrize("downstream_first", [False, True])
def test_cycle_behind_a_valid_prefix_names_only_the_cycle(downstream_first: bool) -> None:
    wf = Workflow("tail")
    if downstream_first:  # the first stuck step is not on the cycle itself
        wf.add("after", takes_inputs, depends_on=["z"])
    wf.add("root", noop)
    wf.add("x", takes_inputs, depends_on=["root", "z"])
    wf.add("y", takes_inputs, depends_on=["x"])
    wf.add("z", takes_inputs, depends_on=["y"])
    if not downstream_first:
        wf.add("after", takes_inputs, depends_on=["z"])
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert_is_cycle_of(wf, info.value.cycle, {"x", "y", "z"})


def test_bad_when_expression_is_reported_by_validation_with_the_other_problems() -> None:
    wf = Workflow("when")
    wf.add("a", noop)
    wf.add("b", lambda a: a, when="a >")  # not an expression
    wf.add("d", noop, timeout=0)
    problems = problems_of(wf)
    assert has_problem(problems, "d", "timeout")
    assert has_problem(problems, "b", "when")


def test_when_callable_that_cannot_bind_is_reported_by_validation() -> None:
    """A ``when`` function binds like a step function; if it cannot, validation says so.

    DESIGN §1: every problem is reported at once, before anything runs.
    """
    calls: list[str] = []
    wf = Workflow("when")
    wf.add("a", lambda: calls.append("a"))
    wf.add("c", lambda a: a, when=lambda x, y, z: True)  # a's output cannot fill x, y, z
    wf.add("d", noop, timeout=0)
    problems = problems_of(wf)
    assert has_problem(problems, "d", "timeout")
    assert has_problem(problems, "c", "when")
    with pytest.raises(ValidationError):
        wf.run()
    assert calls == []


# -- analysis at scale (iterative: no RecursionError) ---------------------------------------


def test_hundred_thousand_step_chain_analyses_without_recursion() -> None:
    assert sys.getrecursionlimit() < N_BIG
    wf = chain(N_BIG)
    graph = wf.compile()
    assert graph.ids[0] == "s0"
    order = wf.topological_order()
    assert order == [f"s{i}" for i in range(N_BIG)]
    levels = wf.levels()
    assert len(levels) == N_BIG
    assert levels[0] == ["s0"]
    assert levels[-1] == [f"s{N_BIG - 1}"]
    path = wf.critical_path()
    assert len(path) == N_BIG
    assert path[0] == "s0"
    assert path[-1] == f"s{N_BIG - 1}"
    rank = graph.upward_rank()
    assert rank[0] == N_BIG
    assert rank[-1] == 1


def test_hundred_thousand_step_cycle_is_a_cycle_error() -> None:
    wf = chain(N_BIG, closed=True)
    with pytest.raises(CycleError) as info:
        wf.validate()
    cycle = info.value.cycle
    assert len(cycle) == N_BIG + 1
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {f"s{i}" for i in range(N_BIG)}
    index = {sid: i for i, sid in enumerate(f"s{i}" for i in range(N_BIG))}
    for before, after in itertools.pairwise(cycle):
        assert index[after] == (index[before] + 1) % N_BIG


def test_hundred_thousand_step_unknown_dependencies_do_not_hang() -> None:
    wf = chain(N_BIG)
    wf.add("tail", takes_inputs, depends_on=["s99999x"])
    problems = problems_of(wf)
    assert has_problem(problems, "tail", "'s99999x'")


# -- levels, topological order, critical path, upward rank ---------------------------------


def test_levels_group_by_depth_and_sort_ids_as_strings() -> None:
    wf = Workflow("levels")
    for sid in ("s2", "s10", "s1"):
        wf.add(sid, noop)
    wf.add("b", takes_inputs, depends_on=["s2"])
    wf.add("a", takes_inputs, depends_on=["s10", "b"])
    wf.add("c", takes_inputs, depends_on=["s1"])
    assert wf.levels() == [["s1", "s10", "s2"], ["b", "c"], ["a"]]
    order = wf.topological_order()
    assert order.index("s2") < order.index("b") < order.index("a")
    assert order.index("s10") < order.index("a")
    assert order.index("s1") < order.index("c")
    # Ties keep declaration order.
    assert order[:3] == ["s2", "s10", "s1"]


def test_critical_path_follows_estimates() -> None:
    r"""
           a
          / \
    (1)  b   c  (5)
          \ /
           d
    """
    wf = Workflow("cp")
    wf.add("a", noop)
    wf.add("b", takes_inputs, depends_on=["a"], estimate=1)
    wf.add("c", takes_inputs, depends_on=["a"], estimate=5)
    wf.add("d", takes_inputs, depends_on=["b", "c"])
    assert wf.critical_path() == ["a", "c", "d"]

    wf2 = Workflow("cp2")
    wf2.add("a", noop)
    wf2.add("b", takes_inputs, depends_on=["a"], estimate=10)
    wf2.add("c", takes_inputs, depends_on=["a"], estimate=5)
    wf2.add("d", takes_inputs, depends_on=["b", "c"])
    assert wf2.critical_path() == ["a", "b", "d"]


def test_critical_path_picks_the_longest_of_separate_roots() -> None:
    wf = Workflow("roots")
    wf.add("short", noop, estimate=3)
    wf.add("long1", noop, estimate=2)
    wf.add("long2", takes_inputs, depends_on=["long1"], estimate=2)
    assert wf.critical_path() == ["long1", "long2"]
    assert Workflow("empty").critical_path() == []


def test_upward_rank_is_longest_remaining_path_including_self() -> None:
    wf = Workflow("rank")
    wf.add("a", noop, estimate=2)
    wf.add("b", takes_inputs, depends_on=["a"], estimate=3)
    wf.add("c", takes_inputs, depends_on=["a"])  # estimate 1 by default
    wf.add("d", takes_inputs, depends_on=["b", "c"], estimate=0.5)
    graph = wf.compile()
    assert graph.upward_rank() == [5.5, 3.5, 1.5, 0.5]
    assert graph.upward_rank([1, 1, 1, 1]) == [3, 2, 2, 1]
    assert graph.levels() == [0, 1, 1, 2]


def test_negative_estimate_is_a_problem() -> None:
    wf = Workflow("est")
    wf.add("a", noop, estimate=-1)
    assert has_problem(problems_of(wf), "a", "estimate")


# -- building: dependency inference and retry -----------------------------------------------


def test_dependencies_are_inferred_from_parameter_names() -> None:
    wf = Workflow("infer")

    @wf.step
    def extract() -> int:
        return 1

    @wf.step
    def limit() -> int:
        return 2

    @wf.step
    def transform(extract: int, inputs: dict[str, Any], params: dict[str, Any]) -> int:
        return extract

    @wf.step
    def load(transform: int, limit: int = 5, verbose: bool = False, *rest: Any, **kw: Any) -> int:
        return transform

    assert wf.steps["extract"].depends_on == ()
    assert wf.steps["transform"].depends_on == ("extract",)
    # A defaulted parameter is a dependency only when it names an existing step.
    assert wf.steps["load"].depends_on == ("transform", "limit")
    # The decorator returns the function unchanged.
    assert load(3) == 3


def test_required_parameter_naming_no_step_is_an_unknown_dependency() -> None:
    wf = Workflow("infer")

    @wf.step
    def report(summary: str) -> str:
        return summary

    assert wf.steps["report"].depends_on == ("summary",)
    assert has_problem(problems_of(wf), "report", "unknown step 'summary'")


def test_explicit_depends_on_overrides_inference() -> None:
    wf = Workflow("explicit")
    wf.add("a", noop)
    wf.add("b", noop)
    wf.add("c", lambda a: a, depends_on="b")
    assert wf.steps["c"].depends_on == ("b",)


def test_retry_int_means_that_many_retries() -> None:
    wf = Workflow("retry")
    step = wf.add("a", noop, retry=3)
    assert step.retry == RetryPolicy(retries=3)
    assert wf.add("b", noop, retry=0).retry == RetryPolicy(retries=0)
    policy = RetryPolicy(retries=2, delay=0.5)
    assert wf.add("c", noop, retry=policy).retry is policy

    @wf.step(retry=4, timeout=10)
    def d() -> None:
        return None

    assert wf.steps["d"].retry == RetryPolicy(retries=4)
    assert wf.steps["d"].timeout == 10


@pytest.mark.parametrize("bad", [True, "3", 2.5])
def test_retry_of_the_wrong_type_is_an_argument_error(bad: Any) -> None:
    wf = Workflow("retry")
    with pytest.raises(ArgumentError, match="retry"):
        wf.add("a", noop, retry=bad)


def test_retry_takes_the_mapping_the_files_write() -> None:
    wf = Workflow("retry")
    step = wf.add("a", noop, retry={"retries": 2, "delay": 0.1, "max_delay": "2m"})
    assert step.retry == RetryPolicy(retries=2, delay=0.1, max_delay=120.0)
    from pardag.formats import read_workflow
    from pardag.formats.document import parse_document

    text = "steps:\n  a: {kind: merge, retry: {retries: 2, delay: 0.1, max_delay: 2m}}\n"
    loaded = read_workflow(parse_document(text, "flow.yaml", "yaml"))  # the file's mapping
    assert loaded.steps["a"].retry == step.retry


def test_a_bad_retry_mapping_says_what_the_files_say() -> None:
    wf = Workflow("retry")
    with pytest.raises(ArgumentError) as info:
        wf.add("a", noop, retry={"retries": -1, "dealy": 1, "factor": "big"})
    assert str(info.value) == (
        "step 'a': 'retry.retries' must be an integer >= 0, got -1; "
        "unknown field 'dealy' in retry; did you mean 'delay'?; "
        "'retry.factor' must be a number, got 'big'"
    )


def test_the_retry_keys_are_the_files_retry_fields() -> None:
    from pardag.formats.native_fields import RETRY
    from pardag.retrying import RETRY_KEYS

    assert tuple(f.name for f in RETRY) == RETRY_KEYS


@pytest.mark.parametrize(
    ("kind", "meant"), [("bash", "shell"), ("sh", "shell"), ("python3", "python"), ("htpp", "http")]
)
def test_a_near_miss_of_a_kind_is_told_the_kind(kind: str, meant: str) -> None:
    wf = Workflow("kinds")
    wf.add("a", kind=kind, params={"command": "true"})
    assert has_problem(problems_of(wf), "a", f"kind {kind!r} is unknown; did you mean {meant!r}?")


def test_merge_kind_defaults_to_any_success_but_keeps_an_explicit_trigger() -> None:
    wf = Workflow("merge")
    assert wf.add("m", kind="merge").trigger == Trigger.ANY_SUCCESS
    assert wf.add("n", kind="merge", trigger="all_done").trigger == "all_done"
    assert wf.add("p", noop).trigger == Trigger.ALL_SUCCESS


# -- RetryPolicy.backoff --------------------------------------------------------------------


def test_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(retries=10, delay=1.0, factor=2.0, max_delay=10.0, jitter=0.0)
    delays = [policy.backoff(n, 0.3) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    flat = RetryPolicy(delay=0.25, factor=1.0, jitter=0.0)
    assert [flat.backoff(n, 0.9) for n in (1, 2, 5)] == [0.25, 0.25, 0.25]


def test_backoff_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(delay=4.0, factor=3.0, max_delay=100.0, jitter=0.25)
    base = 12.0  # second retry: 4 * 3
    assert policy.backoff(2, 0.0) == pytest.approx(base * 0.75)
    assert policy.backoff(2, 0.5) == pytest.approx(base)
    samples = [policy.backoff(2, k / 1000) for k in range(1000)]
    assert min(samples) >= base * 0.75
    assert max(samples) <= base * 1.25
    assert max(samples) > base * 1.24  # the spread really uses the whole range
    assert len(set(samples)) > 900
    # The cap applies before jitter: capped delays spread around max_delay.
    capped = RetryPolicy(delay=1.0, factor=10.0, max_delay=5.0, jitter=0.2)
    assert 4.0 <= capped.backoff(6, 0.0) <= capped.backoff(6, 0.999) <= 6.0


def test_backoff_is_never_negative() -> None:
    policy = RetryPolicy(delay=0.0, jitter=1.0)
    assert policy.backoff(1, 0.0) == 0.0
    assert RetryPolicy(delay=1.0, jitter=1.0).backoff(1, 0.0) == 0.0


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        (RetryPolicy(delay=-1), "delay"),
        (RetryPolicy(max_delay=-1), "delay"),
        (RetryPolicy(factor=0.5), "factor"),
        (RetryPolicy(jitter=1.5), "jitter"),
        (RetryPolicy(jitter=-0.1), "jitter"),
    ],
)
def test_bad_retry_policy_is_a_validation_problem(policy: RetryPolicy, fragment: str) -> None:
    wf = Workflow("policy")
    wf.add("a", noop, retry=policy)
    assert has_problem(problems_of(wf), "a", fragment)


# -- settings -------------------------------------------------------------------------------


def test_unknown_run_setting_is_an_argument_error_naming_it() -> None:
    wf = Workflow("settings")
    wf.add("a", noop)
    with pytest.raises(ArgumentError, match="max_concurency") as info:
        wf.run(max_concurency=2)
    assert "max_concurrency" in str(info.value)  # lists what it could have been


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"mode": "fastest"}, "mode"),
        ({"on_failure": "explode"}, "on_failure"),
        ({"max_concurrency": -1}, "max_concurrency"),
        ({"max_concurrency": 1.5}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -3}, "timeout"),
        ({"pools": {"db": 0}}, "db"),
        ({"pools": {"api": (2, 0)}}, "api"),
    ],
)
def test_bad_run_setting_is_an_argument_error_naming_the_argument(
    overrides: dict[str, Any], name: str
) -> None:
    calls: list[int] = []
    wf = Workflow("settings")
    wf.add("a", lambda: calls.append(1))
    with pytest.raises(ArgumentError, match=name):
        wf.run(**overrides)
    assert calls == []


def test_bad_mode_string_lists_the_valid_modes() -> None:
    with pytest.raises(ArgumentError) as info:
        Workflow("w", mode="parallel")
    message = str(info.value)
    assert "mode" in message
    assert "'parallel'" in message
    for mode in ("dynamic", "levels", "sequential"):
        assert mode in message
    with pytest.raises(ArgumentError, match="on_failure"):
        Workflow("w", on_failure="ignore")


def test_run_overrides_do_not_change_the_workflow_settings() -> None:
    wf = Workflow("w", mode="levels", max_concurrency=3)
    wf.add("a", noop)
    assert wf.run(mode="sequential", max_concurrency=1).ok
    assert wf.settings.mode == "levels"
    assert wf.settings.max_concurrency == 3


def test_bad_workflow_settings_are_validation_problems() -> None:
    wf = Workflow("w", max_concurrency=-2, pools={"db": 0})
    wf.add("a", noop)
    problems = problems_of(wf)
    assert has_problem(problems, None, "max_concurrency")
    assert has_problem(problems, None, "'db'")


def test_branch_on_a_step_that_is_not_a_condition_is_a_problem() -> None:
    wf = Workflow("branches")
    wf.add("a", lambda: 1)
    wf.add("b", lambda: 2, depends_on=["a"], branch={"a": "true"})
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert "branch names 'a', which is a 'python' step, not a condition" in str(info.value)


@pytest.mark.parametrize("fn", [42, "print"])
def test_a_step_that_is_not_a_function_is_a_validation_problem(fn: Any) -> None:
    wf = Workflow("not_callable")
    wf.add("a", fn)  # no TypeError from looking at its parameters
    with pytest.raises(ValidationError) as info:
        wf.validate()
    [problem] = info.value.problems
    assert problem.message.startswith(f"a python step needs a callable, got {fn!r}")


def test_a_builtin_without_a_signature_can_be_a_step() -> None:
    wf = Workflow("builtin")
    wf.add("a", print)  # inspect cannot read print's parameters
    assert wf.run().outputs == {"a": None}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("shel", "kind 'shel' is unknown; did you mean 'shell'?"),
        ("zzz", "kind 'zzz' is unknown; use one of accumulator, approval,"),
    ],
)
def test_an_unknown_kind_suggests_the_closest(kind: str, message: str) -> None:
    wf = Workflow("kinds")
    wf.add("a", kind=kind)
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert info.value.problems[0].message.startswith(message)
