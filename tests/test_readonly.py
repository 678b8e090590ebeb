"""Templates and expressions only read: the attacks of issue 13 §3, and views that read alike.

A template once ran ``env.update(...)`` on the runner's ``os.environ`` (a later bash step then
ran a function exported through it), a ``when`` changed the run's params, and a template
changed an upstream output that other steps then read. Each attack here must be refused with
a message naming the step, and leave everything as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pardag import RunResult, StepState, Workflow, load
from pardag.kinds.base import RunContext
from pardag.readonly import ReadOnlyList, ReadOnlyMapping, freeze, thaw
from pardag.templates import Sandbox, namespace, render
from tests.cli.support import clean_env, pardag, write

pytestmark = pytest.mark.timeout(60)

POISON = "BASH_FUNC_echo%%"
REFUSED = "templates and expressions only read"


def export_touch(marker: Path | str) -> str:
    """A template that exports ``echo`` to bash subprocesses as ``touch marker``."""
    return "{{ env.update({'" + POISON + "': '() { touch " + str(marker) + "; }'}) }}"


def refusal(result: RunResult, sid: str) -> str:
    """Why step ``sid`` failed, checking that it failed for changing a value."""
    step = result.steps[sid]
    assert step.state is StepState.FAILED, (step.state, step.reason)
    assert step.reason is not None and REFUSED in step.reason, step.reason
    assert f"step {sid!r}" in step.reason
    return step.reason


# --- the environment ----------------------------------------------------------------------


def test_a_template_cannot_export_a_bash_function_to_later_steps(tmp_path: Path) -> None:
    marker = tmp_path / "X"
    wf = Workflow("poison", on_failure="continue")
    wf.add("poison", kind="shell", params={"command": f"true {export_touch(marker)}"})
    wf.add(
        "later",
        kind="shell",
        depends_on=["poison"],
        trigger="all_done",
        params={"command": "echo hi", "shell": "bash"},
    )
    try:
        result = wf.run()
        assert POISON not in os.environ
    finally:
        os.environ.pop(POISON, None)
    assert "'update' would change the" in refusal(result, "poison")
    assert result.outputs["later"]["stdout"] == "hi\n"
    assert not marker.exists()


def test_the_cli_refuses_the_attack_naming_the_step_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    flow = f"""\
name: poison
steps:
  poison:
    kind: shell
    command: "true {export_touch("X")}"
  later:
    kind: shell
    shell: bash
    depends_on: poison
    trigger: all_done
    command: echo hi
"""
    write(tmp_path, "poison.yaml", flow)
    done = pardag(tmp_path, "run", "poison.yaml", "--on-failure", "continue", env=clean_env())
    assert done.returncode == 1
    assert "step 'poison'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "X").exists()


def test_env_is_a_snapshot_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    wf = Workflow("env")
    wf.add("read", kind="shell", params={"command": "echo {{ env.PARDAG_RO_TEST }}"})
    monkeypatch.setenv("PARDAG_RO_TEST", "one")
    assert wf.run().outputs["read"]["stdout"] == "one\n"
    monkeypatch.setenv("PARDAG_RO_TEST", "two")  # a later run takes a new snapshot
    assert wf.run().outputs["read"]["stdout"] == "two\n"


# --- params -------------------------------------------------------------------------------


def test_a_when_expression_cannot_change_the_params() -> None:
    params: dict[str, Any] = {"target": "staging", "tags": ["a"]}
    wf = Workflow("deploy", on_failure="continue")
    wf.add("deploy", lambda: "deployed", when="params.update({'target': 'prod'}) or true")
    wf.add("grow", lambda: "grown", when="params.tags.append('x') or true")
    wf.add("target", kind="shell", params={"command": "echo {{ params.target }}"})
    result = wf.run(params=params)
    assert "step 'deploy' when: 'update' would change the dict" in refusal(result, "deploy")
    assert "step 'grow' when: 'append' would change the list" in refusal(result, "grow")
    assert params == {"target": "staging", "tags": ["a"]}
    assert result.outputs["target"]["stdout"] == "staging\n"


def test_a_condition_step_cannot_change_the_params() -> None:
    params: dict[str, Any] = {"target": "staging"}
    wf = Workflow("cond")
    wf.add("check", kind="condition", params={"expression": "params.setdefault('x', 1)"})
    result = wf.run(params=params)
    assert "expression: 'setdefault' would change the dict" in refusal(result, "check")
    assert params == {"target": "staging"}


def test_two_runs_in_one_process_do_not_see_each_others_changes() -> None:
    params: dict[str, Any] = {"tags": ["a"], "limits": {"rows": 1}}
    wf = Workflow("twice", on_failure="continue")
    wf.add("grow", kind="shell", params={"command": "echo {{ params.tags.append('x') }}"})
    wf.add("raise", kind="shell", params={"command": "echo {{ trigger.limits.clear() }}"})
    first = wf.run(params=params)
    refusal(first, "grow")
    refusal(first, "raise")
    reader = Workflow("reader")
    reader.add(
        "tags", kind="shell", params={"command": "echo {{ params.tags }} {{ params.limits }}"}
    )
    assert reader.run(params=params).outputs["tags"]["stdout"] == '["a"] {"rows": 1}\n'


# --- upstream outputs ---------------------------------------------------------------------

MUTATIONS = [
    "{{ steps.up.output.update({'n': 2}) }}",
    "{{ steps.up.output.items.append(3) }}",
    "{{ inputs.up.items.pop() }}",
    "{{ steps.up.output.items.sort(reverse=true) }}",
    "{{ (steps.up.output | attr('update'))({'n': 2}) }}",
    "{{ (steps.up.output.items | attr('clear'))() }}",
    "{{ (steps.up.output | attr('__setitem__'))('n', 2) }}",
    "{{ steps.up.output.__setitem__('n', 2) }}",
]


@pytest.mark.parametrize("template", MUTATIONS)
def test_a_template_cannot_change_an_upstream_output(template: str) -> None:
    original = {"n": 1, "items": [1, 2]}
    wf = Workflow("outputs", on_failure="continue")
    wf.add("up", lambda: original)
    wf.add("evil", kind="shell", depends_on=["up"], params={"command": f"echo {template}"})
    wf.add("down", lambda up: json.dumps(up), depends_on=["up", "evil"], trigger="all_done")
    result = wf.run()
    assert result.steps["evil"].state is StepState.FAILED
    assert "step 'evil' params.command: " in refusal(result, "evil")
    assert json.loads(result.outputs["down"]) == {"n": 1, "items": [1, 2]}
    assert original == {"n": 1, "items": [1, 2]}


def test_a_node_graph_text_node_cannot_change_env_outputs_or_variables(tmp_path: Path) -> None:
    marker = tmp_path / "X"
    wf = Workflow("graph", on_failure="continue")
    wf.add("n", kind="number", params={"value": 5})
    wf.add("store", kind="variable", depends_on=["n"], params={"var_name": "t", "var_op": "set"})
    attacks = {
        "env": export_touch(marker),
        "by_id": "{{ store.update({'value': 666}) }}",
        "by_steps": "{{ (steps.store.output | attr('update'))({'value': 666}) }}",
        "trigger": "{{ trigger.update({'target': 'prod'}) }}",
        "variable": "{{ variable.update({'t': 666}) }}",
    }
    for sid, text in attacks.items():
        wf.add(sid, kind="text", depends_on=["store"], params={"text": text})
    get = {"var_name": "t", "var_op": "get"}
    wf.add("read", kind="variable", depends_on=list(attacks), trigger="all_done", params=get)
    bash = {"command": "echo hi", "shell": "bash"}
    wf.add("echo", kind="shell", depends_on=["read"], params=bash)
    params = {"target": "staging"}
    try:
        result = wf.run(params=params)
        assert POISON not in os.environ
    finally:
        os.environ.pop(POISON, None)
    for sid in attacks:
        assert f"step {sid!r} data.text" in refusal(result, sid)
    assert result.outputs["store"] == {"var_name": "t", "operation": "set", "value": 5.0}
    assert result.outputs["read"]["value"] == 5.0
    assert result.outputs["echo"]["stdout"] == "hi\n" and not marker.exists()
    assert params == {"target": "staging"}


def test_a_node_graph_condition_cannot_change_the_trigger_data(tmp_path: Path) -> None:
    graph = {
        "nodes": [
            {"id": "t", "type": "trigger", "data": {}},
            {"id": "c", "type": "condition", "data": {"condition": "trigger.clear() or true"}},
        ],
        "edges": [{"source": "t", "target": "c"}],
    }
    path = write(tmp_path, "graph.json", json.dumps(graph))
    params = {"target": "staging"}
    result = load(path).run(params=params)
    assert "data.condition: 'clear' would change the dict" in (result.steps["c"].reason or "")
    assert params == {"target": "staging"}
    assert result.outputs["t"] == {"target": "staging"}


# --- views: a second wall, and reading alike ------------------------------------------------


def test_a_filter_the_sandbox_allows_still_cannot_change_the_data() -> None:
    """A method that slipped past the sandbox (here a filter calling ``update``) finds a view
    without it."""
    original = {"n": 1}
    sandbox = Sandbox()
    sandbox.filters["poke"] = lambda value: value.update({"n": 2})
    names = namespace({"up": original}, RunContext("r", "wf", {"p": [1]}))
    for template in ("{{ steps.up.output | poke }}", "{{ inputs.up | poke }}"):
        with pytest.raises(AttributeError):
            sandbox.from_string(template).render(names)
    with pytest.raises(TypeError):
        names["params"]["p"] = 2  # nor does Python code holding the names
    assert original == {"n": 1}


def ctx_names(**params: Any) -> dict[str, Any]:
    up = {"n": 1, "items": [3, 1, 2], "nested": {"k": [1, {"z": 0}]}}
    return namespace({"up": up}, RunContext("r", "wf", params))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ steps.up.output.items == [3, 1, 2] }}", True),
        ("{{ [3, 1, 2] == steps.up.output.items }}", True),
        ("{{ steps.up.output == inputs.up }}", True),
        ("{{ steps.up.output.nested == {'k': [1, {'z': 0}]} }}", True),
        ("{{ 2 in steps.up.output.items }}", True),
        ("{{ {'z': 0} in steps.up.output.nested.k }}", True),
        ("{{ 'n' in steps.up.output }}", True),
        ("{{ steps.up.output.items + [4] }}", [3, 1, 2, 4]),
        ("{{ steps.up.output.items * 2 }}", [3, 1, 2, 3, 1, 2]),
        ("{{ steps.up.output.items[1:] }}", [1, 2]),
        ("{{ sorted(steps.up.output.items) }}", [1, 2, 3]),
        ("{{ steps.up.output.items | sort | list }}", [1, 2, 3]),
        ("{{ steps.up.output | list }}", ["n", "items", "nested"]),
        ("{{ steps.up.output.keys() | list }}", ["n", "items", "nested"]),
        ("{{ steps.up.output.get('n') }}", 1),
        ("{{ dict(steps.up.output.nested, extra=1) }}", {"k": [1, {"z": 0}], "extra": 1}),
        ("{{ [steps.up.output.nested.k] }}", [[1, {"z": 0}]]),
        ("{{ steps.up.output.items | length }}", 3),
        ("{{ params.xs is sequence and params.m is mapping }}", True),
        ("{{ params.xs[-1] }}", 2),
        ("{{ sum(params.xs) + max(params.xs) }}", 5),
        ("{{ steps.up.output.nested.k[5] is defined }}", False),
    ],
)
def test_views_read_like_the_data(template: str, expected: Any) -> None:
    got = render(template, ctx_names(xs=[1, 2], m={"a": 1}), where="w")
    assert got == expected
    assert not isinstance(got, ReadOnlyMapping | ReadOnlyList)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ steps.up.output.nested }} {{ params.xs }}", '{"k": [1, {"z": 0}]} [1, 2]'),
        ("{{ steps.up.output.nested | tojson }}", '{"k": [1, {"z": 0}]}'),
        ("{{ steps.up.output.nested | string }}", "{'k': [1, {'z': 0}]}"),
        ("{{ steps.up.output.items | join(',') }}", "3,1,2"),
        ("{% for k, v in params.m.items() %}{{ k }}={{ v }}{% endfor %}", "a=1"),
    ],
)
def test_views_render_as_text_like_the_data(template: str, expected: str) -> None:
    assert render(template, ctx_names(xs=[1, 2], m={"a": 1}), where="w") == expected


def test_a_lone_expression_yields_the_upstream_object_itself() -> None:
    up = {"n": 1}
    names = namespace({"up": up}, RunContext("r", "wf", {}))
    assert render("{{ steps.up.output }}", names, where="w") is up


def test_a_missing_index_or_key_of_a_view_names_the_data() -> None:
    with pytest.raises(Exception, match=r"index 5 is out of range \(length 3\)"):
        render("{{ steps.up.output.items[5] + 1 }}", ctx_names(), where="w")
    with pytest.raises(Exception, match=r"key 'nn' not found; its keys: .*did you mean 'n'"):
        render("{{ steps.up.output.nn }}", ctx_names(), where="w")


def test_freeze_and_thaw_round_trip() -> None:
    data = {"a": [1, (2, {"b": 3})]}
    view = freeze(data)
    assert isinstance(view, ReadOnlyMapping) and isinstance(view["a"][1][1], ReadOnlyMapping)
    assert thaw(view) is data
    assert thaw([view, {"x": view["a"]}]) == [data, {"x": data["a"]}]
    assert freeze("text") == "text" and freeze(view) is view
