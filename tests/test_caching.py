"""Step output caching (pardag.caching) against a real SQLite run store.

What a broken cache would get wrong: a key that differs between processes (no hit ever), a key
that stays the same when the step's params, inputs, run params or code change (a stale output),
a ttl that does not expire, inputs JSON cannot hold crashing the run instead of running the
step, and problems that do not say how to fix them.

The end-to-end tests at the bottom go through ``wf.run(store=...)``; they wait for the runner
integration (see the report that came with pardag/caching.py) and are skipped until then.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag.caching import (
    CachePolicy,
    cache_entry,
    cache_policies,
    cache_problems,
    canonical_json,
    function_fingerprint,
    lookup,
)
from pardag.errors import ExpressionError
from pardag.events import EventKind, Recorder
from pardag.kinds.base import RunContext
from pardag.model import Step
from pardag.store import Store, open_store
from pardag.store.base import RunUpdate, StepRecord

ROOT = Path(__file__).resolve().parent.parent


# -- functions the keys are made of (module level: a subprocess imports them by name) -----------


def classify(word: str) -> str:
    """Reads a set literal: Python keeps it as a frozenset constant, whose order varies."""
    return "vowel" if word[:1] in {"a", "e", "i", "o", "u"} else "other"


def scale(factor: int) -> Callable[[int], int]:
    def times(n: int) -> int:
        return n * factor

    return times


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "runs.db") as opened:
        yield opened


def ctx(params: Mapping[str, Any] | None = None, workflow: str = "wf") -> RunContext:
    return RunContext("run1", workflow, dict(params or {}))


def key_of(
    step: Step,
    inputs: Mapping[str, Any] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    workflow: str = "wf",
    encoder: Callable[[Any], Any] | None = None,
) -> str | None:
    policy = CachePolicy.of(step, ctx(params, workflow), encoder=encoder)
    assert policy is not None
    return policy.key(inputs or {})


def cached(id: str = "s", fn: Callable[..., Any] | None = classify, **options: Any) -> Step:
    options.setdefault("cache", True)
    return Step(id, fn, **options)


def compiled(source: str, name: str = "run", module: str = "flow_steps") -> Callable[..., Any]:
    """The function ``name`` defined by ``source``, as if imported from ``module``."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(textwrap.dedent(source), f"{module}.py", "exec"), namespace)
    fn: Callable[..., Any] = namespace[name]
    return fn


# -- keys: stable -----------------------------------------------------------------------------

KEY_IN_A_SUBPROCESS = """
import json, sys
from pardag.caching import CachePolicy
from pardag.kinds.base import RunContext
from pardag.model import Step
from tests.test_caching import classify

step = Step("s", classify, depends_on=("words",), params={"lang": "en"}, cache=True)
policy = CachePolicy.of(step, RunContext("other-run", "wf", {"region": "eu"}))
print(policy.key({"words": ["apple", {"b": 2, "a": 1}]}))
"""


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_the_same_step_and_inputs_give_the_same_key_in_another_process(hash_seed: str) -> None:
    step = Step("s", classify, depends_on=("words",), params={"lang": "en"}, cache=True)
    here = key_of(step, {"words": ["apple", {"a": 1, "b": 2}]}, params={"region": "eu"})
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}  # frozenset constants reorder
    there = subprocess.run(
        [sys.executable, "-c", KEY_IN_A_SUBPROCESS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert here is not None and len(here) == 64 and int(here, 16) >= 0
    assert there == here


def test_the_order_of_mappings_does_not_change_the_key() -> None:
    step = cached(depends_on=("a", "b"))
    assert key_of(step, {"a": {"x": 1, "y": 2}, "b": 3}) == key_of(
        step, {"b": 3, "a": {"y": 2, "x": 1}}
    )


def test_the_same_function_moved_to_another_line_keeps_its_key() -> None:
    here = compiled("def run(x):\n    return x + 1\n")
    moved = compiled("\n\n\n# a comment above it\ndef run(x):\n    return x + 1\n")
    assert function_fingerprint(here) == function_fingerprint(moved)
    assert key_of(cached(fn=here)) == key_of(cached(fn=moved))


# -- keys: what changes them ------------------------------------------------------------------


def test_the_key_changes_with_everything_the_default_covers() -> None:
    base = {"depends_on": ("a",), "params": {"lang": "en"}}
    inputs = {"a": [1, 2]}
    keys = {
        "baseline": key_of(cached(**base), inputs),
        "params": key_of(cached(**{**base, "params": {"lang": "fr"}}), inputs),
        "input value": key_of(cached(**base), {"a": [1, 3]}),
        "input id": key_of(cached(depends_on=("b",), params={"lang": "en"}), {"b": [1, 2]}),
        "run params": key_of(cached(**base), inputs, params={"full": True}),
        "step id": key_of(cached("t", **base), inputs),
        "workflow": key_of(cached(**base), inputs, workflow="other"),
        "kind": key_of(Step("s", None, kind="merge", cache=True, **base), inputs),  # type: ignore[arg-type]
        "function": key_of(cached(fn=scale(2), **base), inputs),
    }
    assert None not in keys.values()
    assert len(set(keys.values())) == len(keys), keys


def test_settings_that_do_not_change_the_output_keep_the_key() -> None:
    plain = key_of(cached(depends_on=("a",)), {"a": 1})
    tuned = cached(depends_on=("a",), timeout=5.0, priority=3, executor="threads", critical=False)
    assert key_of(tuned, {"a": 1}) == plain
    assert key_of(cached(depends_on=("a",), cache={"ttl": "1h"}), {"a": 1}) == plain


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("return x + 1", "return x + 2"),  # a constant
        ("return x + 1", "return x - 1"),  # the bytecode
        ("return math.floor(x)", "return math.ceil(x)"),  # a name it uses
        ("return [x for _ in 'a'][0]", "return [x + 1 for _ in 'a'][0]"),  # nested code
        ("return x + 1", "y = x + 1\n    return x + 1"),  # another statement
    ],
)
def test_editing_the_function_changes_the_key(before: str, after: str) -> None:
    original = compiled(f"def run(x):\n    {before}\n")
    edited = compiled(f"def run(x):\n    {after}\n")
    assert function_fingerprint(edited) != function_fingerprint(original)
    assert key_of(cached(fn=edited)) != key_of(cached(fn=original))
    assert key_of(cached(fn=original)) == key_of(
        cached(fn=compiled(f"def run(x):\n    {before}\n"))
    )


def test_defaults_closures_and_partial_arguments_are_part_of_the_function() -> None:
    assert function_fingerprint(scale(2)) == function_fingerprint(scale(2))
    assert function_fingerprint(scale(2)) != function_fingerprint(scale(3))
    one, two = (lambda n=1: n), (lambda n=2: n)
    assert function_fingerprint(one) != function_fingerprint(two)
    assert function_fingerprint(functools.partial(classify, "a")) != function_fingerprint(
        functools.partial(classify, "b")
    )
    # a closure over a function counts that function's code too
    assert function_fingerprint(scale_with(abs_plus(1))) != function_fingerprint(
        scale_with(abs_plus(2))
    )


def abs_plus(k: int) -> Callable[[int], int]:
    return lambda n: abs(n) + k


def scale_with(inner: Callable[[int], int]) -> Callable[[int], int]:
    return lambda n: inner(n) * 2


def test_a_function_named_by_import_path_is_hashed_by_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "cache_steps_mod.py"
    module.write_text("def clean(rows):\n    return rows[:10]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cache_steps_mod", raising=False)
    step = Step("clean", params={"function": "cache_steps_mod:clean"}, cache=True)
    before = key_of(step, {})
    again = key_of(step, {})
    module.write_text("def clean(rows):\n    return rows[:20]\n")
    importlib.reload(sys.modules["cache_steps_mod"])
    assert before == again
    assert key_of(step, {}) != before
    sys.modules.pop("cache_steps_mod", None)


# -- template keys ----------------------------------------------------------------------------


def test_a_template_key_uses_only_what_it_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    step = cached(depends_on=("fetch",), cache={"key": "{{ inputs.fetch.id }}-{{ env.DATA_V }}"})
    monkeypatch.setenv("DATA_V", "1")
    first = key_of(step, {"fetch": {"id": 7, "at": "10:00"}})
    assert first == key_of(step, {"fetch": {"id": 7, "at": "11:00"}})  # `at` is not in the key
    assert first == key_of(
        Step("s", scale(9), depends_on=("fetch",), cache=step.cache), {"fetch": {"id": 7}}
    )  # nor is the function
    assert first != key_of(step, {"fetch": {"id": 8, "at": "10:00"}})
    assert first != key_of(
        cached("other", depends_on=("fetch",), cache=step.cache), {"fetch": {"id": 7}}
    )  # the step id is
    monkeypatch.setenv("DATA_V", "2")
    assert first != key_of(step, {"fetch": {"id": 7, "at": "10:00"}})


def test_a_template_key_keeps_the_rendered_type_apart_from_text() -> None:
    as_number = key_of(cached(depends_on=("a",), cache={"key": "{{ inputs.a }}"}), {"a": 1})
    as_text = key_of(cached(depends_on=("a",), cache={"key": "{{ inputs.a }}"}), {"a": "1"})
    assert as_number != as_text


def test_a_template_key_that_cannot_render_names_cache_key() -> None:
    step = cached(depends_on=("fetch",), cache={"key": "{{ inputs.fetch.idd }}"})
    with pytest.raises(ExpressionError) as caught:
        key_of(step, {"fetch": {"id": 7}})
    assert str(caught.value).startswith("cache.key: key 'idd' not found; its keys: id")
    assert "did you mean 'id'?" in str(caught.value)


# -- the store: lookup, cache_entry, ttl ------------------------------------------------------


def test_lookup_finds_what_remember_stored(store: Store) -> None:
    assert lookup(store, "k1", now=1000.0) == (False, None)
    store.put_cache(cache_entry("k1", json.dumps({"rows": [1, 2]}), 1000.0, None, "run1", "load"))
    assert lookup(store, "k1", now=1001.0) == (True, {"rows": [1, 2]})
    assert lookup(store, "k2", now=1001.0) == (False, None)
    entry = store.get_cache("k1", 1001.0)
    assert entry is not None and (entry.run_id, entry.step_id) == ("run1", "load")
    store.put_cache(
        cache_entry("k1", "null", 1002.0, None, "run2", "load")
    )  # a later output replaces it
    assert lookup(store, "k1", now=1003.0) == (True, None)


def test_an_output_expires_after_its_ttl(store: Store) -> None:
    store.put_cache(cache_entry("k", "42", 1000.0, 60.0, "run1", "s"))
    assert lookup(store, "k", now=1059.5, ttl=60.0) == (True, 42)
    assert lookup(store, "k", now=1060.0, ttl=60.0) == (False, None)
    assert lookup(store, "k", now=1060.0) == (False, None)  # expired as stored, too


def test_without_ttl_an_output_never_expires(store: Store) -> None:
    store.put_cache(cache_entry("k", '"kept"', 1000.0, None))
    assert lookup(store, "k", now=1e12) == (True, "kept")


def test_a_shorter_ttl_applies_to_outputs_stored_before(store: Store) -> None:
    store.put_cache(cache_entry("k", "1", 1000.0, None))
    assert lookup(store, "k", now=1009.0, ttl=10.0) == (True, 1)
    assert lookup(store, "k", now=1010.0, ttl=10.0) == (False, None)


def test_unreadable_json_in_the_store_is_a_miss(store: Store) -> None:
    store.put_cache(cache_entry("k", "{not json", 1000.0, None))
    assert lookup(store, "k", now=1001.0) == (False, None)


def test_the_policy_carries_the_ttl() -> None:
    policy = CachePolicy.of(cached(cache={"ttl": "2m"}), ctx())
    assert policy is not None and policy.ttl == 120.0
    plain = CachePolicy.of(cached(), ctx())
    assert plain is not None and plain.ttl is None
    assert CachePolicy.of(cached(cache=None), ctx()) is None
    assert CachePolicy.of(cached(cache=False), ctx()) is None


# -- uncacheable ------------------------------------------------------------------------------


def test_inputs_json_cannot_hold_mean_no_key_with_one_warning() -> None:
    policy = CachePolicy.of(cached(depends_on=("load",)), ctx())
    assert policy is not None
    with pytest.warns(RuntimeWarning) as caught:
        assert policy.key({"load": {1, 2}}) is None
        assert policy.key({"load": {3}}) is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("step 's': its input from 'load' (set) is not JSON")
    assert "runs without the cache" in message and "encoder=" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a JSON input still gets a key, silently
        assert policy.key({"load": [1, 2]}) is not None


def test_nan_inputs_have_no_key() -> None:
    with pytest.warns(RuntimeWarning, match="its input from 'x' \\(float\\) is not JSON"):
        assert key_of(cached(depends_on=("x",)), {"x": math.nan}) is None


def test_the_run_encoder_makes_inputs_cacheable() -> None:
    step = cached(depends_on=("load",))
    first = key_of(step, {"load": {2, 1}}, encoder=sorted)
    assert first is not None
    assert first == key_of(step, {"load": {1, 2}}, encoder=sorted)
    assert first != key_of(step, {"load": {1, 3}}, encoder=sorted)


def test_run_params_json_cannot_hold_mean_no_key() -> None:
    policy = CachePolicy.of(cached(), ctx({"since": object()}))
    assert policy is not None
    with pytest.warns(RuntimeWarning, match="step 's': the run's params are not JSON"):
        assert policy.key({}) is None


def test_a_template_rendering_to_a_non_json_value_has_no_key() -> None:
    step = cached(depends_on=("a",), cache={"key": "{{ inputs.a }}"})
    with pytest.warns(RuntimeWarning, match="its cache.key renders to a value JSON cannot hold"):
        assert key_of(step, {"a": {1, 2}}) is None


# -- problems ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ok", [None, True, False, {}, {"ttl": "1h"}, {"key": "v1", "ttl": 30}])
def test_valid_cache_options_have_no_problems(ok: Any) -> None:
    assert cache_problems(cached(cache=ok)) == []


@pytest.mark.parametrize(
    ("cache", "problem"),
    [
        (
            "yes",
            "cache must be true, false or a mapping of key and ttl, got 'yes'; "
            "e.g. cache: true, or cache: {key: '{{ inputs.url }}', ttl: 1h}",
        ),
        (
            {"tll": "1h"},
            "cache has no option 'tll'; did you mean 'ttl'? (the options are key, ttl)",
        ),
        ({"expire": 1}, "cache has no option 'expire'; (the options are key, ttl)"),
        (
            {"key": ""},
            "cache.key must be a non-empty string (a template such as '{{ inputs.url }}'), got ''",
        ),
        ({"key": 5}, "cache.key must be a non-empty string"),
        ({"ttl": "soon"}, "cache.ttl 'soon' is not a duration; write seconds or '200ms'"),
        ({"ttl": 0}, "cache.ttl must be more than 0, got 0; leave ttl out to never expire"),
        ({"ttl": -1}, "cache.ttl -1 must be a finite number of seconds >= 0"),
    ],
)
def test_bad_cache_options_say_how_to_fix_them(cache: Any, problem: str) -> None:
    found = cache_problems(cached(cache=cache))
    assert len(found) == 1 and found[0].startswith(problem), found


def test_a_key_template_syntax_error_is_a_problem() -> None:
    found = cache_problems(cached(cache={"key": "{{ inputs.a", "tll": 1}))
    assert found[0] == "cache has no option 'tll'; did you mean 'ttl'? (the options are key, ttl)"
    assert found[1].startswith("cache.key: template syntax error")
    assert len(found) == 2


def test_params_json_cannot_hold_need_a_key_template() -> None:
    step = cached(fn=None, kind="python", params={"function": "x:y", "extra": object()})
    found = cache_problems(step)
    assert found == [
        "cache: the step's params are not JSON, so they cannot be part of its cache key; "
        "give the key yourself, e.g. cache={'key': '{{ inputs }}'}"
    ]
    step.cache = {"key": "{{ inputs }}"}
    assert cache_problems(step) == []


# -- policies for a run -----------------------------------------------------------------------


def test_policies_are_built_only_when_a_step_asks_and_the_run_has_a_store() -> None:
    plain = [Step("a", classify), Step("b", classify)]
    assert cache_policies(plain, ctx(), stored=True) is None
    steps = [Step("a", classify), Step("b", classify, cache={"ttl": 5})]
    policies = cache_policies(steps, ctx(), stored=True)
    assert policies is not None and policies[0] is None
    assert policies[1] is not None and policies[1].ttl == 5.0
    with pytest.warns(RuntimeWarning, match=r"step 'b' asks for caching, but this run has no"):
        assert cache_policies(steps, ctx(), stored=False) is None


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": [1, {"d": 1, "c": 2}], "a": None}) == (
        '{"a":null,"b":[1,{"c":2,"d":1}]}'
    )
    with pytest.raises(ValueError):
        canonical_json(math.inf)


# -- end to end, through wf.run (enabled once the runner calls pardag.caching) ----------------


class Counter:
    """Counts calls in a file, so that every run (and process) sees the same count."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bump(self) -> int:
        n = self.count() + 1
        self.path.write_text(str(n))
        return n

    def count(self) -> int:
        return int(self.path.read_text()) if self.path.exists() else 0


def counted_workflow(tmp_path: Path, **cache: Any) -> tuple[pardag.Workflow, Counter]:
    calls = Counter(tmp_path / "calls")
    source = tmp_path / "source.json"
    if not source.exists():
        source.write_text('{"rows": 3}')
    wf = pardag.Workflow("cached")
    wf.add("read", lambda: json.loads(source.read_text()))
    wf.add(
        "expensive",
        lambda read: {"rows": read["rows"] * 10, "call": calls.bump()},
        cache=cache or True,
    )
    wf.add("report", lambda expensive: f"{expensive['rows']} rows")
    return wf, calls


def test_a_second_run_takes_the_cached_output(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, calls = counted_workflow(tmp_path)
    first = wf.run(store=url)
    second = wf.run(store=url)
    assert calls.count() == 1
    assert first.outputs["expensive"] == second.outputs["expensive"] == {"rows": 30, "call": 1}
    assert second.outputs["report"] == "30 rows"  # dependents run on the cached output
    step = second.steps["expensive"]
    assert step.state == "succeeded" and step.cached and step.reason == "cached"
    assert not first.steps["expensive"].cached
    with open_store(url) as store:
        records = {r.step_id: r for r in store.get_steps(second.run_id)}
    assert records["expensive"].cached and records["expensive"].state == "succeeded"
    assert json.loads(records["expensive"].output_json or "") == {"rows": 30, "call": 1}
    assert not records["read"].cached


def test_a_cached_step_is_announced_as_succeeded_without_starting(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, _ = counted_workflow(tmp_path)
    wf.run(store=url)
    recorder = Recorder()
    wf.run(store=url, listeners=[recorder])
    mine = [e for e in recorder.events if e.step == "expensive"]
    assert [e.kind for e in mine] == [EventKind.STEP_READY, EventKind.STEP_SUCCEEDED]
    assert mine[-1].data == {"reason": "cached"}


def test_a_cached_condition_still_chooses_its_branch(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    calls = Counter(tmp_path / "calls")
    wf = pardag.Workflow("branches")
    wf.add("check", lambda: calls.bump() < 100, kind="condition", cache=True)
    wf.add("yes", lambda: "yes", depends_on=["check"], branch={"check": "true"})
    wf.add("no", lambda: "no", depends_on=["check"], branch={"check": "false"})
    wf.run(store=url)
    result = wf.run(store=url)
    assert calls.count() == 1 and result.steps["check"].cached
    assert result.steps["yes"].state == "succeeded"
    assert result.steps["no"].state == "skipped"


def test_resuming_keeps_a_cached_step_cached(tmp_path: Path) -> None:
    flow = counting_flow(tmp_path)
    url = str(tmp_path / "runs.db")
    pardag.load(flow).run(store=url)
    second = pardag.load(flow).run(store=url)
    with open_store(url) as store:  # as if its process died once `count` was committed
        store.write(runs=[RunUpdate(second.run_id, status="running", owner="gone:1")])
        store.write(steps=[StepRecord(second.run_id, "after", 1, "running")])
    resumed = pardag.resume(second.run_id, store=url)
    assert resumed.status == "succeeded"
    assert (tmp_path / "calls.txt").read_text() == "x\n"
    assert resumed.steps["count"].cached and not resumed.steps["after"].cached


def test_a_changed_input_runs_the_step_again(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, calls = counted_workflow(tmp_path)
    wf.run(store=url)
    (tmp_path / "source.json").write_text('{"rows": 4}')
    result = wf.run(store=url)
    assert calls.count() == 2
    assert result.outputs["expensive"] == {"rows": 40, "call": 2}
    assert not result.steps["expensive"].cached
    (tmp_path / "source.json").write_text('{"rows": 3}')  # back to the first input: a hit
    assert wf.run(store=url).outputs["expensive"] == {"rows": 30, "call": 1}
    assert calls.count() == 2


def test_changed_run_params_run_the_step_again(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, calls = counted_workflow(tmp_path)
    wf.run(store=url, params={"region": "eu"})
    wf.run(store=url, params={"region": "eu"})
    wf.run(store=url, params={"region": "us"})
    assert calls.count() == 2


def test_an_expired_output_runs_the_step_again(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, calls = counted_workflow(tmp_path, ttl="1h")
    wf.run(store=url)
    assert wf.run(store=url).steps["expensive"].cached
    with sqlite3.connect(tmp_path / "runs.db") as db:  # two hours pass, without sleeping
        db.execute("UPDATE cache SET stored_at = stored_at - 7200, expires_at = expires_at - 7200")
    result = wf.run(store=url)
    assert calls.count() == 2 and not result.steps["expensive"].cached


def test_cache_false_runs_every_step_and_refreshes_the_cache(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    wf, calls = counted_workflow(tmp_path)
    wf.run(store=url)
    bypassed = wf.run(store=url, cache=False)
    assert calls.count() == 2 and not bypassed.steps["expensive"].cached
    refreshed = wf.run(store=url)
    assert refreshed.steps["expensive"].cached
    assert refreshed.outputs["expensive"] == {"rows": 30, "call": 2}  # the newer output


def test_a_template_key_decides_what_counts(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    calls = Counter(tmp_path / "calls")
    wf = pardag.Workflow("keyed")
    wf.add("user", lambda params: {"id": params["id"], "seen": params["seen"]})
    wf.add("profile", lambda user: calls.bump(), cache={"key": "user-{{ inputs.user.id }}"})
    wf.run(store=url, params={"id": 7, "seen": "mon"})
    wf.run(store=url, params={"id": 7, "seen": "tue"})  # `seen` is not in the key: a hit
    wf.run(store=url, params={"id": 8, "seen": "tue"})
    assert calls.count() == 2


def test_a_key_template_that_fails_to_render_fails_the_step_once(tmp_path: Path) -> None:
    wf = pardag.Workflow("bad-key")
    wf.add("a", lambda: {"id": 1})
    wf.add("b", lambda a: a, cache={"key": "{{ inputs.a.idd }}"}, retry=3)
    result = wf.run(store=str(tmp_path / "runs.db"))
    step = result.steps["b"]
    assert step.state == "failed" and step.attempts == 1
    assert step.reason is not None and "cache.key: key 'idd' not found" in step.reason


@pytest.mark.filterwarnings("ignore:step 'a'")  # the run store keeps no copy of the set
def test_uncacheable_inputs_run_the_step_with_a_warning(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    calls = Counter(tmp_path / "calls")
    wf = pardag.Workflow("sets")
    wf.add("a", lambda: {1, 2})
    wf.add("b", lambda a: calls.bump() + len(a), cache=True)
    with pytest.warns(RuntimeWarning, match="step 'b': its input from 'a' \\(set\\) is not JSON"):
        wf.run(store=url)
        result = wf.run(store=url)
    assert result.status == "succeeded" and calls.count() == 2


def test_without_a_store_nothing_is_cached_and_a_warning_says_so(tmp_path: Path) -> None:
    wf, calls = counted_workflow(tmp_path)
    with pytest.warns(RuntimeWarning, match="asks for caching, but this run has no run store"):
        wf.run()
        wf.run()
    assert calls.count() == 2


def test_bad_cache_options_fail_validation_with_the_step() -> None:
    wf = pardag.Workflow("bad")
    wf.add("a", lambda: 1, cache={"tll": "1h"})
    with pytest.raises(pardag.ValidationError) as caught:
        wf.validate()
    assert "step 'a': cache has no option 'tll'; did you mean 'ttl'?" in str(caught.value)


def counting_flow(tmp_path: Path) -> Path:
    """A workflow file whose cached shell step appends a line to calls.txt each time it runs."""
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        textwrap.dedent(
            """
            name: files
            steps:
              count:
                kind: shell
                command: echo x >> calls.txt && wc -l < calls.txt
                cwd: {cwd}
                cache: {{ttl: 1h}}
              after:
                kind: shell
                depends_on: count
                command: echo counted {{{{ steps.count.output.stdout }}}}
            """
        ).format(cwd=tmp_path)
    )
    return flow


def test_a_cached_shell_step_from_a_file(tmp_path: Path) -> None:
    flow = counting_flow(tmp_path)
    url = str(tmp_path / "runs.db")
    first = pardag.load(flow).run(store=url)
    second = pardag.load(flow).run(store=url)
    assert second.outputs["count"] == first.outputs["count"]
    assert second.outputs["after"]["stdout"].split() == ["counted", "1"]
    assert (tmp_path / "calls.txt").read_text() == "x\n"
    assert second.steps["count"].cached
