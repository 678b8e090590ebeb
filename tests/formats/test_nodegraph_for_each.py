"""``data.forEach`` in node-graph files: a node mapped over another node's output list, one
instance ``ID[k]`` per item whose templates read ``{{ item }}`` and ``{{ item_index }}``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag.formats.nodegraph import infer_type
from tests.formats.test_native_for_each import echo, problems  # noqa: F401  (echo: a fixture)
from tests.formats.test_nodegraph import e, graph_text, n
from tests.support import pardag_cli

pytestmark = pytest.mark.timeout(60)

START = n("start", "trigger")
LIST = n("list", field="files")
"""The list comes from the run's trigger data: ``extract`` of its ``files``."""


def write(tmp_path: Path, nodes: list[Any], edges: Sequence[Any]) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(graph_text(nodes, list(edges)))
    return path


def mapped_text(tmp_path: Path, **fields: Any) -> Path:
    """start -> list -> greet (mapped: ``I=ITEM``) -> report (shows the whole list)."""
    greet = n("greet", text="{{ item_index }}={{ item }}", **fields)
    report = n("report", "visualization", mode="list")
    edges = [e("start", "list"), e("list", "greet"), e("greet", "report")]
    return write(tmp_path, [START, LIST, greet, report], edges)


# -- runs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"forEach": "list"},
        {"for_each": "list"},
        {"forEach": "{{ steps.list.output }}"},
        {"forEach": "{{list}}"},
    ],
    ids=["id", "snake-case", "steps-reference", "input-reference"],
)
def test_a_text_node_runs_once_per_item_in_item_order(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    items = [f"file {k}" for k in range(12)]
    result = pardag.load(mapped_text(tmp_path, **fields)).run(params={"files": items})
    assert result.status == "succeeded", result.error
    expected = [f"{k}=file {k}" for k in range(12)]
    assert result.outputs["greet"] == expected
    assert result.final_output == {"mode": "list", "value": expected}
    assert result.outputs["greet[7]"] == "7=file 7"
    assert "greet[12]" not in result.steps


def test_the_map_fields_leave_the_data_for_the_model(tmp_path: Path) -> None:
    wf = pardag.load(mapped_text(tmp_path, forEach="list", maxConcurrency=3, maxItems=50))
    step = wf.steps["greet"]
    assert (step.map_over, step.map_concurrency, step.max_items) == ("list", 3, 50)
    assert step.params == {"text": "{{ item_index }}={{ item }}"}
    assert step.depends_on == ("list",)


def test_node_ids_that_are_numbers_or_not_step_ids(tmp_path: Path) -> None:
    """``forEach: 2`` names node 2; ``"files list"`` runs as step ``files_list``, and either
    spelling names it."""
    for over, source in ((2, 2), ("files list", "files list"), ("files_list", "files list")):
        nodes = [START, n(source, field="files"), n("greet", text="<{{ item }}>", forEach=over)]
        path = write(tmp_path, nodes, [e("start", source), e(source, "greet")])
        result = pardag.load(path).run(params={"files": ["a", "b"]})
        assert result.outputs["greet"] == ["<a>", "<b>"], over


def test_number_and_delay_nodes_map_too(tmp_path: Path) -> None:
    """A number node's value and a delay node's duration read the item."""
    nodes = [
        START,
        LIST,
        n("num", value="{{ item }}", forEach="list"),
        n("wait", duration="{{ item }}ms", forEach="list"),
    ]
    edges = [e("start", "list"), e("list", "num"), e("list", "wait")]
    result = pardag.load(write(tmp_path, nodes, edges)).run(params={"files": ["1", "2.5"]})
    assert result.status == "succeeded", result.error
    assert result.outputs["num"] == [1.0, 2.5]
    assert [w["duration"] for w in result.outputs["wait"]] == ["1ms", "2.5ms"]


def test_a_python_code_node_maps_with_the_item_as_an_input(tmp_path: Path) -> None:
    code = "def run(inputs):\n    return [inputs['item_index'], inputs['item'].upper()]\n"
    nodes = [START, LIST, n("up", "python", code=code, forEach="list")]
    edges = [e("start", "list"), e("list", "up")]
    result = pardag.load(write(tmp_path, nodes, edges)).run(params={"files": ["a", "b"]})
    assert result.status == "succeeded", result.error
    assert result.outputs["up"] == [[0, "A"], [1, "B"]]


def test_a_mapped_node_on_a_branch_runs_only_when_it_is_taken(tmp_path: Path) -> None:
    nodes = [
        START,
        LIST,
        n("check", "condition", condition="trigger.go"),
        n("greet", text="<{{ item }}>", forEach="list"),
    ]
    edges = [e("start", "list"), e("start", "check"), e("list", "greet")]
    wf = pardag.load(write(tmp_path, nodes, [*edges, e("check", "greet", "true")]))
    taken = wf.run(params={"files": ["a", "b"], "go": True})
    assert taken.outputs["greet"] == ["<a>", "<b>"]
    skipped = wf.run(params={"files": ["a", "b"], "go": False})
    assert skipped.steps["greet"].reason == "branch not taken: check chose 'false', not 'true'"
    assert not any(sid.startswith("greet[") for sid in skipped.steps)


def test_an_empty_list_maps_to_an_empty_list(tmp_path: Path) -> None:
    result = pardag.load(mapped_text(tmp_path, forEach="list")).run(params={"files": []})
    assert result.status == "succeeded", result.error
    assert result.outputs["greet"] == []
    assert result.final_output == {"mode": "list", "value": []}
    assert not any(sid.startswith("greet[") for sid in result.steps)


def test_a_source_that_is_not_a_list_fails_the_mapped_node(tmp_path: Path) -> None:
    result = pardag.load(mapped_text(tmp_path, forEach="list")).run(params={"files": "a.txt"})
    assert result.status == "failed"
    assert "maps over 'list', whose output is a str, not a list" in result.steps["greet"].reason
    assert result.steps["report"].state == "skipped"


def test_a_list_over_max_items_fails_before_any_instance(tmp_path: Path) -> None:
    wf = pardag.load(mapped_text(tmp_path, forEach="list", max_items=2))
    result = wf.run(params={"files": ["a", "b", "c"]})
    assert result.status == "failed"
    assert "max_items of 2" in result.steps["greet"].reason
    assert not any(sid.startswith("greet[") for sid in result.steps)


def test_max_concurrency_caps_the_instances(tmp_path: Path) -> None:
    """Each shell instance counts the instances running beside it (marker files) while it
    sleeps: with a cap of 1 it never sees more than itself."""
    running = tmp_path / "running"
    running.mkdir()
    command = "touch m{{ item_index }}; sleep 0.2; ls | wc -l; rm m{{ item_index }}"
    count = n("count", "shell", command=command, cwd=str(running), forEach="list")
    count["data"]["maxConcurrency"] = 1
    path = write(tmp_path, [START, LIST, count], [e("start", "list"), e("list", "count")])
    result = pardag.load(path).run(params={"files": list(range(6))})
    assert result.status == "succeeded", result.error
    assert [int(r["stdout"]) for r in result.outputs["count"]] == [1] * 6


def test_a_mapped_http_action_sends_each_item(tmp_path: Path, echo: str) -> None:  # noqa: F811
    """An editor's graph: one request per item, its query from the instance's item; a node
    with an edge into the mapped one is read whole by every instance."""
    items = ["a b", "x&y=z", "é"]
    query = {"q": "{{ item }}", "i": "{{ item_index }}", "tag": "{{ label }}"}
    nodes = [
        n("start", "trigger-manual"),
        LIST,
        n("label", text="run-{{ trigger.run }}"),
        n("call", "action", actionType="http", url=echo, query=query, forEach="list"),
    ]
    edges = [e("start", "list"), e("start", "label"), e("list", "call"), e("label", "call")]
    result = pardag.load(write(tmp_path, nodes, edges)).run(params={"files": items, "run": 7})
    assert result.status == "succeeded", result.error
    sent = [r["body"] for r in result.outputs["call"]]
    assert sent == [{"q": [x], "i": [str(k)], "tag": ["run-7"]} for k, x in enumerate(items)]


# -- problems, each at its line -----------------------------------------------------------------

NODES_AT = 3
"""Node i of a ``graph_text`` file is on line 3 + i."""


def test_problems_name_the_node_field_and_line(tmp_path: Path) -> None:
    nodes = [
        START,
        LIST,
        n("a", text="{{ item }}", forEach="lst"),
        n("b", text="{{ item }}", forEach="{{ steps.list.output | first }}"),
        n("c", text="hi", maxConcurrency=3),
        n("d", text="{{ item }}", forEach=["list"]),
        n("e", text="{{ item }}", forEach="list", maxConcurrency=0, maxItems="ten"),
        n("f", text="{{ item }}", forEach="list", for_each="list"),
        n("g", text="{{ item }}", forEach="start"),
        n("h", text="{{ item }}", forEach="h"),
    ]
    edges = [e("start", "list"), *(e("list", x) for x in "abcdefh")]
    found = problems(write(tmp_path, nodes, edges))
    line = {node["id"]: NODES_AT + k for k, node in enumerate(nodes)}
    assert found == [
        f'{line["b"]}: b: data.forEach must be a node id or "{{{{ steps.ID.output }}}}" (the '
        "node whose output is the list), got '{{ steps.list.output | first }}'",
        f"{line['c']}: c: data.maxConcurrency applies to a mapped node only; add data.forEach "
        "(the node whose output is the list) or remove it",
        f'{line["d"]}: d: data.forEach must be a node id or "{{{{ steps.ID.output }}}}" (the '
        "node whose output is the list), got ['list']",
        f"{line['e']}: e: data.maxConcurrency must be an integer >= 1, got 0",
        f"{line['e']}: e: data.maxItems must be an integer >= 1, got 'ten'",
        f"{line['f']}: f: data gives both forEach and for_each; keep one",
        f"{line['a']}: a: data.forEach names 'lst', which is not a node id; did you mean 'list'?",
        f"{line['g']}: g: node 'g' maps over 'start' (data.forEach), but no edge goes from "
        "'start' to 'g', and a node reads only the nodes with an edge into it; add "
        '{"source": "start", "target": "g"} to edges',
        f"{line['h']}: h: data.forEach: node 'h' cannot map over itself; name the node whose "
        "output is the list",
    ]


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (n("x", "condition", condition="list"), "a condition picks one branch for the whole run"),
        (n("x", var_name="v", var_op="set"), "it changes the run's shared variables"),
        (n("x", counter_op="increment"), "it changes the run's shared variables"),
        (n("x", text_op="uppercase"), "it computes from its inputs, and an instance's item"),
        (n("x", "control-merge"), "a merge joins branches; map a node before it"),
    ],
    ids=["condition", "variable", "counter", "text-operation", "merge"],
)
def test_a_node_that_cannot_be_mapped_is_refused_at_its_for_each(
    tmp_path: Path, node: dict[str, Any], reason: str
) -> None:
    node["data"]["forEach"] = "list"
    path = write(tmp_path, [START, LIST, node], [e("start", "list"), e("list", "x")])
    found = problems(path)
    written = node.get("type") or infer_type(node["data"])
    assert len(found) == 1, found
    assert found[0].startswith(f"5: x: a {written!r} node cannot be mapped: {reason}")
    assert found[0].endswith(
        "Remove data.forEach, or map a node whose data reads {{ item }} (a text, number, http, "
        "delay or shell node) or a code node (its run(inputs) gets inputs['item'])"
    )


def test_item_outside_a_mapped_node_is_a_problem_at_its_field(tmp_path: Path) -> None:
    nodes = [
        START,
        n("t", text="{{ item_index }}: {{ item }}"),
        n("s", "shell", command="echo {{ item }}"),
    ]
    found = problems(write(tmp_path, nodes, [e("start", "t"), e("start", "s")]))
    tail = "map this node with data.forEach naming the node whose output is the list"
    assert found[:2] == [
        f"4: t: data.text reads 'item', which only a mapped node's templates have (one instance "
        f"per item of a list); {tail}",
        f"4: t: data.text reads 'item_index', which only a mapped node's templates have (one "
        f"instance per item of a list); {tail}",
    ]
    assert len(found) == 3, found
    assert found[2].startswith("5: s: command reads 'item', which only a mapped step's")
    assert found[2].endswith(
        "map this step with data.forEach naming the step whose output is the list"
    )


def test_a_node_named_item_is_read_by_that_name(tmp_path: Path) -> None:
    """Outside a map, ``{{ item }}`` of a node with an edge from node ``item`` is that input."""
    nodes = [n("item", text="an input"), n("u", text="<{{ item }}>")]
    result = pardag.load(write(tmp_path, nodes, [e("item", "u")])).run()
    assert result.outputs["u"] == "<an input>"


# -- the CLI ------------------------------------------------------------------------------------


def test_pardag_run_of_a_mapped_node_graph(tmp_path: Path) -> None:
    path = mapped_text(tmp_path, forEach="list", maxConcurrency=2)
    run = pardag_cli(tmp_path, "run", path.name, "--set", 'files=["a", "b", "c"]')
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("greet")]
    assert len(rows) == 1, run.stdout
    assert re.search(r"^greet\s+succeeded\b.*\b3/3 succeeded", rows[0]), rows
    assert json.dumps(["0=a", "1=b", "2=c"]) in run.stdout


# -- the documentation's example ----------------------------------------------------------------


def test_the_formats_page_shows_a_mapped_node() -> None:
    """docs/formats.md's forEach example is a ```python block that tests/test_docs.py runs;
    here: that it is there, under its heading, and maps a node."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    section = page[page.index("### Mapping a node: `forEach`") :].split("\n## ", 1)[0]
    assert "```python" in section and '"forEach"' in section
