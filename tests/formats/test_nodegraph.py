"""Node-graph JSON: nodes become steps, edges dependencies and branches; broken graphs say where."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import pardag
from pardag import CycleError, RunStatus, StepState, Trigger, ValidationError, Workflow
from pardag.config import resolve
from pardag.events import Event, EventKind
from pardag.formats.document import Document
from pardag.formats.nodegraph import detect, infer_type, read, step_id
from pardag.states import OnFailure

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def graph_text(nodes: list[Any], edges: list[Any], **top: Any) -> str:
    """JSON with one node or edge a line: node i is on line 3 + i, edge j on 5 + len(nodes) + j."""
    lines = ["{", '"nodes": [']
    lines += [json.dumps(n) + ("," if i < len(nodes) - 1 else "") for i, n in enumerate(nodes)]
    lines += ["],", '"edges": [']
    lines += [json.dumps(e) + ("," if j < len(edges) - 1 else "") for j, e in enumerate(edges)]
    lines.append("]" + "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in top.items()))
    return "\n".join([*lines, "}"]) + "\n"


def write(tmp_path: Path, nodes: Any, edges: Sequence[Any] = (), **top: Any) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(graph_text(nodes, list(edges), **top))
    return path


def load(tmp_path: Path, nodes: Any, edges: Sequence[Any] = (), **top: Any) -> Workflow:
    return pardag.load(write(tmp_path, nodes, edges, **top))


def broken(tmp_path: Path, nodes: Any, edges: Sequence[Any] = (), **top: Any) -> list[str]:
    """The problems of a graph that does not load, as text."""
    with pytest.raises(ValidationError) as exc:
        load(tmp_path, nodes, edges, **top)
    return [str(p) for p in exc.value.problems]


def n(node_id: str | int, node_type: str | None = None, **data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node_id, "data": data, "position": {"x": 0, "y": 0}}
    if node_type is not None:
        out["type"] = node_type
    return out


def e(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"{source}-{target}", "source": source, "target": target}
    if handle is not None:
        out["sourceHandle"] = handle
    return out


# -- detection and types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"nodes": [], "edges": []}, True),
        ({"nodes": [{"id": "a"}]}, True),  # half a graph: node-graph messages, not "unknown"
        ({"edges": []}, True),
        ({"nodes": [], "steps": {}}, False),
        ({"steps": {"a": {}}}, False),
        ([{"nodes": []}], False),
    ],
)
def test_detect(data: Any, expected: bool) -> None:
    assert detect(Document("flow.json", data)) is expected


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"value": 1}, "number"),
        ({"text": "hi"}, "text"),
        ({"mode": "chart"}, "visualization"),
        ({"op": "add"}, "operation"),
        ({"text_op": "uppercase"}, "text_operation"),
        ({"url": "http://x"}, "http"),
        ({"condition": "true"}, "condition"),
        ({"var_name": "x", "var_op": "get"}, "variable"),
        ({"var_name": "x", "var_op": "set", "value": 1}, "variable"),
        ({"field": "a"}, "extract"),
        ({"fields": ["a"]}, "extract"),
        ({"counter_op": "get"}, "counter"),
        ({"accum_op": "sum", "value": 2}, "accumulator"),
        ({"duration": "1s"}, "delay"),
        ({"cache_op": "set", "cache_key": "k", "value": 1}, "cache"),
        ({"context_name": "x", "context_value": 1}, "context"),
        ({"const_name": "x", "const_value": 1}, "constant"),
        ({"label": "nothing to go by"}, None),
    ],
)
def test_infer_type_from_data_keys(data: dict[str, Any], kind: str | None) -> None:
    assert infer_type(data) == kind


def test_nodes_become_steps_of_their_kind_with_data_as_params(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [
            n("start", "trigger-webhook"),
            n("go", "manual"),
            n("two", value=2),
            n("up", "textOperation", text_op="uppercase"),
            n("join", "control-merge"),
            n("fetch", "action", actionType="http", url="http://127.0.0.1:1/"),
            n("sh", "shell", command="echo hi"),
            n("Loud", "Text Operation", text_op="lowercase"),
        ],
        [e("two", "up"), e("up", "join"), e("start", "join"), e("two", "Loud")],
    )
    kinds = {sid: s.kind for sid, s in wf.steps.items()}
    assert kinds == {
        "start": "trigger",
        "go": "trigger",
        "two": "number",
        "up": "text_operation",
        "join": "merge",
        "fetch": "http_node",
        "sh": "shell",
        "Loud": "text_operation",
    }
    assert wf.steps["two"].params == {"value": 2}
    assert wf.steps["join"].trigger is Trigger.ANY_SUCCESS
    assert wf.steps["join"].depends_on == ("up", "start")
    assert wf.locations["up"] == f"{tmp_path / 'flow.json'}:6"


# -- edges ------------------------------------------------------------------------------------


def test_inputs_follow_the_order_of_the_edges_array(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("a", text="alpha"), n("b", text="beta"), n("c", text="gamma"), n("j", text_op="concat")],
        [e("c", "j"), e("a", "j"), e("b", "j")],
    )
    assert wf.run().final_output == "gammaalphabeta"


def test_several_edges_between_two_nodes_count_once(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("a", value=1), n("b", value=2), n("sum", op="add")],
        [e("a", "sum"), e("a", "sum"), e("b", "sum")],
    )
    assert wf.steps["sum"].depends_on == ("a", "b")
    assert wf.run().final_output == 3.0


def test_a_node_runs_once_whatever_the_paths_into_it(tmp_path: Path) -> None:
    r"""
        top
       /   \
    left   right
       \   /
       bottom (counts its runs)
    """
    wf = load(
        tmp_path,
        [
            n("top", counter_op="increment", counter_name="top"),
            n("left", counter_op="get", counter_name="top"),
            n("right", counter_op="get", counter_name="top"),
            n("bottom", counter_op="increment", counter_name="bottom"),
        ],
        [e("top", "left"), e("top", "right"), e("left", "bottom"), e("right", "bottom")],
    )
    result = wf.run()
    assert result.outputs == {"top": 1, "left": 1, "right": 1, "bottom": 1}
    assert all(step.attempts == 1 for step in result.steps.values())


# -- conditions and branches ------------------------------------------------------------------

BRANCHES = (
    [
        n("start", "trigger-webhook"),
        n("check", "condition", condition="trigger.amount > 100 and start.ok"),
        n("big", text="big {{ trigger.amount }}"),
        n("small", text="small {{ trigger.amount }}"),
        n("after_big", text_op="uppercase"),
        n("always", text="ran"),
        n("join", "control-merge"),
    ],
    [
        e("start", "check"),
        e("check", "big", "true"),
        e("check", "small", "false"),
        e("big", "after_big"),
        e("check", "always"),
        e("after_big", "join"),
        e("small", "join"),
    ],
)


def test_only_the_chosen_branch_runs(tmp_path: Path) -> None:
    wf = load(tmp_path, *BRANCHES)
    result = wf.run(params={"amount": 150, "ok": True})
    assert result.ok
    assert result.outputs["check"] is True
    assert result.outputs["after_big"] == "BIG 150"
    assert result.outputs["always"] == "ran"
    assert result.steps["small"].state is StepState.SKIPPED
    assert result.steps["small"].reason == "branch not taken: check chose 'true', not 'false'"
    assert result.outputs["join"] == {"after_big": "BIG 150"}


def test_the_false_branch_and_the_skip_cascade(tmp_path: Path) -> None:
    wf = load(tmp_path, *BRANCHES)
    result = wf.run(params={"amount": 150, "ok": False})
    assert result.outputs["check"] is False
    assert result.steps["big"].reason == "branch not taken: check chose 'false', not 'true'"
    assert result.steps["after_big"].reason == "upstream skipped: big"
    assert result.outputs["join"] == {"small": "small 150"}
    assert result.final_output == {"always": "ran", "join": {"small": "small 150"}}


def test_a_condition_output_is_a_bool_and_braces_are_allowed(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("c", condition="{{ trigger.name }}"), n("yes", text="y"), n("no", text="n")],
        [e("c", "yes", "true"), e("c", "no", "false")],
    )
    assert wf.run(params={"name": "ann"}).outputs == {"c": True, "yes": "y"}
    assert wf.run(params={"name": ""}).outputs == {"c": False, "no": "n"}


def test_edges_with_both_handles_or_none_leave_the_target_unconditional(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("c", condition="false"), n("both", text="b"), n("mixed", text="m")],
        [e("c", "both", "true"), e("c", "both", "false"), e("c", "mixed", "true"), e("c", "mixed")],
    )
    assert wf.steps["both"].branch == {}
    assert wf.steps["mixed"].branch == {}
    assert wf.run().outputs == {"c": False, "both": "b", "mixed": "m"}


def test_a_merge_whose_inputs_were_all_skipped_is_skipped(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("c", condition="false"), n("a", text="a"), n("b", text="b"), n("join", "control-merge")],
        [e("c", "a", "true"), e("c", "b", "true"), e("a", "join"), e("b", "join")],
    )
    result = wf.run()
    assert result.steps["join"].state is StepState.SKIPPED
    assert result.steps["join"].reason == "upstream skipped: a"


# -- outputs and ids --------------------------------------------------------------------------


def test_final_output_is_the_single_terminal_node(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("a", value=2), n("b", value=5), n("m", op="multiply")],
        [e("a", "m"), e("b", "m")],
    )
    assert wf.run().final_output == 10.0


def test_final_output_of_several_terminal_nodes_is_a_mapping(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("a", value=2), n("t", text="x"), n("v", "visualization", mode="m")],
        [e("a", "v")],
    )
    assert wf.run().final_output == {"t": "x", "v": {"mode": "m", "value": 2.0}}


def test_node_ids_outside_the_step_id_characters_are_mapped(tmp_path: Path) -> None:
    assert step_id("node-1.b_c") == "node-1.b_c"
    assert step_id("HTTP Request") == "HTTP_Request"
    assert step_id("trigger: web hook") == "trigger_web_hook"
    wf = load(
        tmp_path,
        [n("first number", value=2), n(7, value=3), n("x:y", op="add")],
        [e("first number", "x:y"), {"source": 7, "target": "x:y"}],
    )
    assert list(wf.steps) == ["first_number", "7", "x_y"]
    assert wf.steps["x_y"].depends_on == ("first_number", "7")
    assert wf.run().outputs["x_y"] == 5.0


def test_two_nodes_mapped_to_one_step_id_are_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    found = broken(tmp_path, [n("a b", value=1), n("a_b", value=2)])
    assert found == [
        f"{path}:4: node 'a_b' would run as step 'a_b', as node 'a b' does ({path}:3); "
        "rename one of them"
    ]


# -- broken graphs ----------------------------------------------------------------------------


def test_a_graph_that_is_not_an_object() -> None:
    """The document reader refuses such files first; the reader checks for itself too."""
    with pytest.raises(ValidationError) as exc:
        read(Document("flow.json", [{"nodes": []}]), {})
    assert [str(p) for p in exc.value.problems] == [
        'flow.json: a node graph is a JSON object {"nodes": [...], "edges": [...]}, got list'
    ]


def test_missing_nodes_and_edges(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text('{"edges": [], "viewport": {"x": 0}}')
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    assert [str(p) for p in exc.value.problems] == [
        f"{path}: a node graph needs a 'nodes' list; add the nodes"
    ]
    path.write_text('{\n"nodes": [{"id": "a", "data": {"value": 1}}]\n}')
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    assert str(exc.value.problems[0]) == (
        f"{path}: a node graph needs an 'edges' list; write \"edges\": [] for a graph without edges"
    )


def test_empty_and_wrongly_typed_lists(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    assert broken(tmp_path, []) == [f"{path}:2: 'nodes' is empty; add at least one node"]
    path.write_text('{\n"nodes": {"a": {}},\n"edges": "a->b"\n}')
    with pytest.raises(ValidationError) as exc:
        pardag.load(path, format="nodegraph")
    assert [str(p) for p in exc.value.problems] == [
        f"{path}:2: 'nodes' must be a list, got dict",
        f"{path}:3: 'edges' must be a list, got str",
    ]


def test_bad_edges_name_the_edge_and_suggest_the_id(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    nodes = [n("number1", value=1), n("number2", value=2), n("total", op="add")]
    edges = [
        e("number1", "total"),
        e("nubmer2", "total"),
        e("number2", "totl"),
        {"source": "number1"},
        e("total", "total"),
        "number1->total",
    ]
    assert broken(tmp_path, nodes, edges) == [
        f"{path}:9: edge 1: source 'nubmer2' is not a node id; did you mean 'number2'?",
        f"{path}:10: edge 2: target 'totl' is not a node id; did you mean 'total'?",
        f"{path}:11: edge 3 needs a target, the id of a node; got nothing",
        f"{path}:12: edge 4 connects node 'total' to itself; remove it",
        f"{path}:13: edge 5 must be an object with source and target, got str",
        f"{path}:5: step 'total': operation needs 2 inputs, got 1; draw edges into it from "
        "the nodes it reads",
    ]


def test_a_node_without_an_inferable_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    (found,) = broken(tmp_path, [n("mystery", label="?"), n("half", var_op="get")])[:1]
    assert found.startswith(
        f"{path}:3: step 'mystery': node 'mystery' has no type and its data keys (label) name "
        'none. Add "type", or give data the keys of one type: context_name+context_value'
    )
    half = broken(tmp_path, [n("half", var_op="get")])[0]
    assert "data keys (var_op) name none; 'var_op' needs 'var_name' too." in half


def test_an_unknown_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    found = broken(tmp_path, [n("a", "foo"), n("b", "numbr", value=1), n("c", "action")])
    assert found[0].startswith(
        f"{path}:3: step 'a': node type 'foo' is unknown; use one of: accumulator, action, "
    )
    assert "control-delay, control-merge, counter, delay," in found[0]
    assert "trigger-*, variable, visualization" in found[0]  # registered kinds may follow
    assert found[0].endswith("; or leave type out to infer it from data")
    assert found[1].startswith(
        f"{path}:4: step 'b': node type 'numbr' is unknown (did you mean 'number'?); use one of"
    )
    assert found[2] == (
        f"{path}:5: step 'c': an action node runs data.actionType 'http', the only action pardag "
        "knows; got None"
    )


def test_node_shapes_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    found = broken(
        tmp_path,
        [
            "a",
            {"data": {"value": 1}},
            {"id": True, "data": {}},
            n("ok", value=1),
            n("ok", value=2),
            {"id": "d", "data": [1]},
            {"id": "t", "type": 3, "data": {}},
        ],
    )
    assert found == [
        f"{path}:3: node 0 must be an object with an id, got str",
        f"{path}:4: node 1 needs an id, a non-empty string; got nothing",
        f"{path}:5: node 2 needs an id, a non-empty string; got True",
        f"{path}:7: node id 'ok' is used twice (also at {path}:6); give each node its own id",
        f"{path}:8: step 'd': data must be an object of the node's settings, got list",
        f"{path}:9: step 't': type must be a string, got 3",
    ]


def test_condition_problems(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    found = broken(
        tmp_path,
        [
            n("c", "condition"),
            n("d", condition="trigger.x >"),
            n("ok", condition="true"),
            n("t", text="t"),
        ],
        [e("ok", "t", "maybe")],
    )
    assert found[0].startswith(f"{path}:3: step 'c': a condition node needs data.condition")
    assert found[1].startswith(f"{path}:4: step 'd': data.condition: invalid syntax")
    assert found[2] == (
        f"{path}:9: edge 0: sourceHandle 'maybe' of condition 'ok' must be 'true' or 'false' "
        "(or left out, to run after the condition whatever it chose)"
    )


def test_a_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    with pytest.raises(CycleError) as exc:
        load(
            tmp_path,
            [n("a", text_op="uppercase"), n("b", text_op="uppercase"), n("c", text="x")],
            [e("c", "a"), e("a", "b"), e("b", "a")],
        )
    assert exc.value.cycle in (["a", "b", "a"], ["b", "a", "b"])
    assert str(exc.value.problems[0]).startswith(f"{path}:")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = broken(
        tmp_path,
        [n("a", "foo"), n("b", value="x"), n("c", op="add")],
        [e("a", "c"), e("zz", "c")],
    )
    assert len(found) == 4  # unknown type, unknown source, bad value, too few inputs


def test_non_numeric_operation_inputs_fail_the_node_at_run_time(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [n("a", value=1), n("word", text="ten"), n("sum", op="add")],
        [e("a", "sum"), e("word", "sum")],
    )
    result = wf.run()
    assert result.status is RunStatus.FAILED
    assert result.steps["sum"].reason == (
        "NodeError: operation 'add' needs numbers; input 2 (from 'word') is 'ten' (str)"
    )
    assert isinstance(result.error, pardag.StepFailed) and result.error.step == "sum"


# -- delay ------------------------------------------------------------------------------------


def test_a_delay_outputs_its_first_input_duration_and_that_it_waited(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [
            n("a", text="payload"),
            n("wait", "control-delay", duration="10ms"),
            n("b", duration=0),
            n("alone", "delay", duration="{{ const.pause }}"),
            n("pause", const_name="pause", const_value="1ms"),
        ],
        [e("a", "wait"), e("wait", "b")],
    )
    assert {wf.steps[s].kind for s in ("wait", "b", "alone")} == {"delay_node"}
    result = wf.run()
    assert result.ok, result.error
    assert result.outputs["wait"] == {"value": "payload", "duration": "10ms", "delayed": True}
    assert result.outputs["b"] == {"value": result.outputs["wait"], "duration": 0, "delayed": True}
    assert result.outputs["alone"] == {"value": None, "duration": "1ms", "delayed": True}


def test_an_extract_of_value_after_a_variable_get_reads_the_variable(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [
            n("n", value=7),
            n("set", var_name="x", var_op="set"),
            n("get", "variable", var_name="x", var_op="get"),
            n("value", field="value"),
        ],
        [e("n", "set"), e("set", "get"), e("get", "value")],
    )
    result = wf.run()
    assert result.outputs["get"] == {"var_name": "x", "operation": "get", "value": 7.0}
    assert result.final_output == 7.0


def test_a_delay_is_cancelled_when_the_run_fails(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        [
            n("wait", duration="60s"),
            n("after", text="never"),
            n("zero", value=0),
            n("one", value=1),
            n("q", op="divide"),
        ],
        [e("wait", "after"), e("one", "q"), e("zero", "q")],
    )
    result = wf.run()
    assert result.status is RunStatus.FAILED
    assert result.steps["q"].reason == "NodeError: division by zero (1 / 0)"
    assert result.steps["wait"].state is StepState.CANCELLED
    assert result.steps["after"].state is StepState.CANCELLED


# -- http against a real local server ---------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it; /missing gives 404."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        request = {
            "method": self.command,
            "path": self.path,
            "auth": self.headers.get("Authorization"),
            "body": json.loads(body) if body.startswith("{") else body,
        }
        self.seen.append(request)
        status = 404 if self.path.startswith("/missing") else 200
        payload = json.dumps({"request": request, "name": "ann", "score": 41}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_http_nodes_render_trigger_variables_and_constants(tmp_path: Path, server: str) -> None:
    wf = load(
        tmp_path,
        [
            n("base", const_name="api", const_value=server),
            n("token", context_name="token", context_value="s3cret"),
            n("start", "trigger-webhook"),
            n(
                "fetch",
                url="{{ const.api }}/users/{{ trigger.user }}",
                headers={"Authorization": "Bearer {{ variable.token }}"},
            ),
            n("name", field="body.name"),
            n("score", field="body.score"),
            n("one", value=1),
            n("plus", op="add"),
            n(
                "post",
                "action",
                actionType="http",
                method="POST",
                url="{{ const.api }}/scores",
                body={"user": "{{ trigger.user }}", "score": "{{ plus }}"},
            ),
        ],
        [
            e("start", "fetch"),
            e("fetch", "name"),
            e("fetch", "score"),
            e("score", "plus"),
            e("one", "plus"),
            e("plus", "post"),
        ],
    )
    result = wf.run(params={"user": "u1"})
    assert result.ok, result.error
    assert result.outputs["name"] == "ann"
    assert result.outputs["plus"] == 42.0
    assert result.outputs["post"]["status"] == 200
    first, second = _Recorder.seen
    assert first == {"method": "GET", "path": "/users/u1", "auth": "Bearer s3cret", "body": ""}
    assert second["method"] == "POST" and second["path"] == "/scores"
    assert second["body"] == {"user": "u1", "score": 42.0}
    assert result.steps["fetch"].executor == "async"


def test_rendered_values_are_not_rendered_again(tmp_path: Path, server: str) -> None:
    """Trigger data that looks like a template reaches the server as written (no injection)."""
    wf = load(
        tmp_path,
        [n("post", url=server + "/echo", method="POST", body={"note": "{{ trigger.note }}"})],
    )
    result = wf.run(params={"note": "{{ env.HOME }}"})
    assert result.ok, result.error
    assert _Recorder.seen[0]["body"] == {"note": "{{ env.HOME }}"}


def test_an_http_error_status_fails_the_node(tmp_path: Path, server: str) -> None:
    wf = load(tmp_path, [n("get", url=server + "/missing")])
    result = wf.run()
    assert result.steps["get"].state is StepState.FAILED
    assert "404" in str(result.steps["get"].reason)


# -- the examples -----------------------------------------------------------------------------


def test_the_calculator_example(tmp_path: Path) -> None:
    wf = pardag.load(EXAMPLES / "nodegraph_calc.json")
    result = wf.run()
    assert result.ok, result.error
    assert result.final_output == {"mode": "number", "value": 42.0}
    assert result.outputs["label"] == "THE ANSWER IS 42 KG"


def test_the_webhook_example(server: str) -> None:
    wf = pardag.load(EXAMPLES / "nodegraph_webhook.json")
    big = wf.run(params={"order": "A-17", "amount": 250, "notify_url": server + "/orders"})
    assert big.ok, big.error
    assert big.steps["small_order"].reason == ("branch not taken: is_big chose 'true', not 'false'")
    (request,) = _Recorder.seen
    assert request["path"] == "/orders"
    assert request["body"] == {"order": "A-17", "amount": 250, "priority": "high"}
    small = wf.run(params={"order": "A-18", "amount": 20, "notify_url": server + "/orders"})
    assert small.ok, small.error
    assert small.steps["notify"].state is StepState.SKIPPED
    assert len(_Recorder.seen) == 1


# -- failure: the two dialects ------------------------------------------------------------------


class _Branches(BaseHTTPRequestHandler):
    """``/slow`` answers once the run has recorded ``http-2``'s failure; ``/fail`` is a 500."""

    released: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.released.wait(10)
        status = 500 if self.path == "/fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Release:
    """Lets the slow requests answer once ``http-2`` has failed: after it, not before."""

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.STEP_FAILED and event.step == "http-2":
            _Branches.released.set()


@pytest.fixture
def branches() -> Iterator[str]:
    _Branches.released = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Branches)
    httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a cancelled request's socket is closed
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Branches.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def three_requests(tmp_path: Path, server: str, editor: bool, **top: Any) -> Workflow:
    """A start node and three requests after it: http-2 fails, http-1 and http-3 are slow."""
    paths = {"http-1": "/slow", "http-2": "/fail", "http-3": "/slow"}
    if editor:  # as the visual editors save it
        nodes = [n("start", "trigger-manual")]
        nodes += [n(i, "action", actionType="http", url=server + p) for i, p in paths.items()]
    else:  # types inferred from data
        nodes = [n("start", text="go")] + [n(i, url=server + p) for i, p in paths.items()]
    return load(tmp_path, nodes, [e("start", i) for i in paths], **top)


CONTINUES = {
    "http-1": StepState.SUCCEEDED,
    "http-2": StepState.FAILED,
    "http-3": StepState.SUCCEEDED,
}
STOPS = {"http-1": StepState.CANCELLED, "http-2": StepState.FAILED, "http-3": StepState.CANCELLED}


@pytest.mark.parametrize(
    ("editor", "top", "run_options", "expected"),
    [
        (True, {}, {}, CONTINUES),  # the editors' backends run every branch to its end
        (False, {}, {}, STOPS),  # the other dialect's engine is fail-fast
        (True, {"execution": {"on_failure": "fail_fast"}}, {}, STOPS),  # the file says
        (False, {"execution": {"on_failure": "continue"}}, {}, CONTINUES),
        (True, {}, {"on_failure": "fail_fast"}, STOPS),  # the run says
        (False, {}, {"on_failure": "continue"}, CONTINUES),
    ],
)
def test_a_failing_branch_cancels_its_siblings_only_where_the_dialect_or_a_setting_says(
    tmp_path: Path,
    branches: str,
    editor: bool,
    top: dict[str, Any],
    run_options: dict[str, Any],
    expected: dict[str, StepState],
) -> None:
    wf = three_requests(tmp_path, branches, editor, **top)
    result = wf.run(listeners=[_Release()], **run_options)
    assert {sid: result.steps[sid].state for sid in expected} == expected
    assert result.status is RunStatus.FAILED
    assert "http-2" in str(result.error)
    assert "500" in str(result.steps["http-2"].reason)


def test_the_editor_default_is_the_weakest_layer_of_the_settings(tmp_path: Path) -> None:
    """What ``pardag run`` resolves: the format's default, then the config file, flags."""
    wf = three_requests(tmp_path, "http://127.0.0.1:1", editor=True)
    assert wf.format_settings == {"on_failure": "continue"} and not wf.file_settings
    resolved = resolve(wf, environ={}, cwd=tmp_path)
    assert resolved.settings().on_failure is OnFailure.CONTINUE
    assert resolved.sources["on_failure"] == "default of the file's format (nodegraph)"
    flagged = resolve(wf, flags={"on_failure": "fail_fast"}, environ={}, cwd=tmp_path)
    assert flagged.settings().on_failure is OnFailure.FAIL_FAST
    (tmp_path / "pardag.toml").write_text('on_failure = "fail_fast"\n')
    assert resolve(wf, environ={}, cwd=tmp_path).settings().on_failure is OnFailure.FAIL_FAST
    other = three_requests(tmp_path, "http://127.0.0.1:1", editor=False)
    assert other.format_settings == {} and other.settings.on_failure is OnFailure.FAIL_FAST


def test_a_bad_execution_section_is_a_problem_with_its_line(tmp_path: Path) -> None:
    (found,) = broken(tmp_path, [n("a", text="x")], execution={"on_failure": "contineu"})
    assert "did you mean 'continue'?" in found
