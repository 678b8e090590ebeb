"""The node-graph kinds: each node's output, its error messages, run-wide state under threads."""

from __future__ import annotations

from typing import Any

import pytest

from pardag import ArgumentError, RunResult, StepState, ValidationError, Workflow
from pardag.kinds.nodegraph import MAX_TEXT, NodeError, condition_function

pytestmark = pytest.mark.timeout(60)


def node(wf: Workflow, sid: str, kind: str, *deps: str, **params: Any) -> None:
    """Add a node-graph step: ``params`` are the node's data, ``deps`` its sources in order."""
    executor = params.pop("executor", None)
    wf.add(sid, kind=kind, depends_on=list(deps), params=params, executor=executor)


def numbers(wf: Workflow, **values: Any) -> None:
    for sid, value in values.items():
        node(wf, sid, "number", value=value)


def problems(wf: Workflow) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        wf.validate()
    return [str(p) for p in exc.value.problems]


def failure(result: RunResult, sid: str) -> str:
    """The reason step ``sid`` failed, checking that it did and that the error is kept."""
    step = result.steps[sid]
    assert step.state is StepState.FAILED, (step.state, step.reason)
    assert step.error is not None and isinstance(step.error.cause, NodeError)
    assert step.reason is not None
    return step.reason


# -- values -----------------------------------------------------------------------------------


def test_number_is_its_value_as_a_float() -> None:
    wf = Workflow("n")
    numbers(wf, i=3, f=2.5, s="7.25", t="{{ trigger.n }}")
    result = wf.run(params={"n": 4})
    assert result.ok
    assert dict(result.outputs) == {"i": 3.0, "f": 2.5, "s": 7.25, "t": 4.0}
    assert all(type(v) is float for v in result.outputs.values())
    assert result.steps["i"].executor == "inline"


@pytest.mark.parametrize("value", ["abc", True, None, [1]])
def test_number_without_a_number_is_a_problem(value: Any) -> None:
    wf = Workflow("n")
    numbers(wf, n=value)
    (message,) = problems(wf)
    assert message.startswith("step 'n': data.value must be a number such as 42")


def test_number_from_a_template_that_is_not_a_number_fails_the_node() -> None:
    wf = Workflow("n")
    numbers(wf, n="{{ trigger.n }}")
    reason = failure(wf.run(params={"n": "many"}), "n")
    assert reason == "NodeError: data.value must be a number, got 'many' (str)"


def test_text_renders_trigger_variables_constants_and_inputs() -> None:
    wf = Workflow("t")
    node(wf, "who", "context", context_name="user", context_value="ann")
    node(wf, "unit", "constant", const_name="unit", const_value="kg")
    numbers(wf, weight=3)
    node(
        wf,
        "line",
        "text",
        "weight",
        text="{{ variable.user }} ({{ trigger.id }}): {{ weight }} {{ const.unit }}",
    )
    node(wf, "plain", "text", text=12)
    result = wf.run(params={"id": 7})
    assert result.outputs["line"] == "ann (7): 3 kg"
    assert result.outputs["plain"] == "12"
    assert result.outputs["who"] == "ann" and result.outputs["unit"] == "kg"


def test_text_with_an_undefined_name_fails_naming_what_exists() -> None:
    wf = Workflow("t")
    node(wf, "line", "text", text="{{ variable.nobody }}")
    result = wf.run()
    step = result.steps["line"]
    assert step.state is StepState.FAILED
    assert "step 'line' data.text" in str(step.reason)
    assert "'nobody'" in str(step.reason)


def test_visualization_shows_its_first_input() -> None:
    wf = Workflow("v")
    numbers(wf, a=1, b=2)
    node(wf, "chart", "visualization", "b", "a", mode="bar")
    node(wf, "empty", "visualization", mode="table")
    result = wf.run()
    assert result.outputs["chart"] == {"mode": "bar", "value": 2.0}
    assert result.outputs["empty"] == {"mode": "table", "value": None}


def test_trigger_outputs_the_run_trigger_data() -> None:
    wf = Workflow("t")
    node(wf, "start", "trigger")
    node(wf, "amount", "extract", "start", field="amount")
    result = wf.run(params={"amount": 120, "who": "ann"})
    assert result.outputs["start"] == {"amount": 120, "who": "ann"}
    assert result.final_output == 120


# -- operations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"), [("add", 8.0), ("subtract", 4.0), ("multiply", 12.0), ("divide", 3.0)]
)
def test_operation_on_the_first_two_inputs_in_edge_order(op: str, expected: float) -> None:
    wf = Workflow("op")
    numbers(wf, a=6, b=2, c=100)
    node(wf, "result", "operation", "a", "b", "c", op=op)
    result = wf.run()
    assert result.outputs["result"] == expected


def test_operation_with_fewer_than_two_inputs_is_a_problem() -> None:
    wf = Workflow("op")
    numbers(wf, a=1)
    node(wf, "one", "operation", "a", op="add")
    node(wf, "none", "operation", op="add")
    found = problems(wf)
    assert "step 'one': operation needs 2 inputs, got 1" in found[0]
    assert "step 'none': operation needs 2 inputs, got 0" in found[1]


def test_operation_unknown_op_is_a_problem() -> None:
    wf = Workflow("op")
    numbers(wf, a=1, b=2)
    node(wf, "pow", "operation", "a", "b", op="power")
    assert problems(wf) == [
        "step 'pow': data.op must be one of add, subtract, multiply, divide; got 'power'"
    ]


def test_division_by_zero_fails_the_node() -> None:
    wf = Workflow("op")
    numbers(wf, a=6, zero=0)
    node(wf, "q", "operation", "a", "zero", op="divide")
    node(wf, "after", "visualization", "q", mode="number")
    result = wf.run()
    assert failure(result, "q") == "NodeError: division by zero (6 / 0)"
    assert result.steps["after"].reason == "upstream failed: q"


@pytest.mark.parametrize(
    ("value", "shown"), [("abc", "'abc' (str)"), (True, "True (bool)"), (None, "None (NoneType)")]
)
def test_operation_on_a_non_number_fails_naming_the_input(value: Any, shown: str) -> None:
    wf = Workflow("op")
    numbers(wf, a=1)
    node(wf, "word", "trigger")
    node(wf, "w", "extract", "word", field="w")
    node(wf, "sum", "operation", "a", "w", op="add")
    reason = failure(wf.run(params={"w": value}), "sum")
    assert reason == f"NodeError: operation 'add' needs numbers; input 2 (from 'w') is {shown}"


@pytest.mark.parametrize(
    ("op", "text", "expected"),
    [
        ("uppercase", "Hello World", "HELLO WORLD"),
        ("lowercase", "Hello World", "hello world"),
        ("titlecase", "hello wORLD  they're", "Hello World  They're"),
        ("camelcase", "hello big_world-now", "helloBigWorldNow"),
        ("camelcase", "HTTP request", "httpRequest"),
        ("inversecase", "Hello World", "hELLO wORLD"),
    ],
)
def test_text_operations_on_the_first_input(op: str, text: str, expected: str) -> None:
    wf = Workflow("t")
    node(wf, "in", "text", text=text)
    node(wf, "other", "text", text="ignored")
    node(wf, "out", "text_operation", "in", "other", text_op=op)
    assert wf.run().outputs["out"] == expected


def test_concat_joins_all_inputs_in_edge_order_with_the_separator() -> None:
    wf = Workflow("t")
    node(wf, "a", "text", text="alpha")
    numbers(wf, b=2)
    node(wf, "c", "text", text="gamma")
    node(wf, "joined", "text_operation", "c", "a", "b", text_op="concat", separator=", ")
    node(wf, "bare", "text_operation", "a", "c", text_op="concat")
    result = wf.run()
    assert result.outputs["joined"] == "gamma, alpha, 2"  # a whole float reads as an int
    assert result.outputs["bare"] == "alphagamma"


def test_repeat_repeats_the_first_input() -> None:
    wf = Workflow("t")
    node(wf, "a", "text", text="ab")
    node(wf, "three", "text_operation", "a", text_op="repeat", repeat_n=3)
    node(wf, "zero", "text_operation", "a", text_op="repeat", repeat_n=0)
    result = wf.run()
    assert result.outputs["three"] == "ababab"
    assert result.outputs["zero"] == ""


def test_repeat_refuses_to_build_a_huge_text() -> None:
    wf = Workflow("t")
    node(wf, "a", "text", text="ab")
    node(wf, "huge", "text_operation", "a", text_op="repeat", repeat_n=MAX_TEXT)
    reason = failure(wf.run(), "huge")
    assert reason.startswith("NodeError: the text would be")
    assert f"(limit {MAX_TEXT:,})" in reason


def test_text_operation_problems_say_what_to_write() -> None:
    wf = Workflow("t")
    node(wf, "a", "text", text="ab")
    node(wf, "lonely", "text_operation", text_op="uppercase")
    node(wf, "rep", "text_operation", "a", text_op="repeat", repeat_n="3")
    node(wf, "what", "text_operation", "a", text_op="reverse")
    found = problems(wf)
    assert "step 'lonely': text operation needs 1 input, got 0" in found[0]
    assert found[1] == (
        "step 'rep': repeat needs data.repeat_n, a whole number >= 0, got '3' (str)"
    )
    assert found[2].startswith("step 'what': data.text_op must be one of uppercase, lowercase")


# -- extract ----------------------------------------------------------------------------------


def test_extract_a_field_fields_and_dotted_paths() -> None:
    wf = Workflow("x")
    node(wf, "start", "trigger")
    node(wf, "one", "extract", "start", field="user")
    node(wf, "path", "extract", "start", field="user.tags.1")
    node(wf, "dotted_key", "extract", "start", field="a.b")
    node(wf, "many", "extract", "start", fields=["total", "user.name"])
    data = {"user": {"name": "ann", "tags": ["x", "y"]}, "total": 3, "a.b": "literal"}
    result = wf.run(params=data)
    assert result.outputs["one"] == data["user"]
    assert result.outputs["path"] == "y"
    assert result.outputs["dotted_key"] == "literal"
    assert result.outputs["many"] == {"total": 3, "user.name": "ann"}


def test_extract_a_missing_field_fails_listing_the_keys() -> None:
    wf = Workflow("x")
    node(wf, "start", "trigger")
    node(wf, "get", "extract", "start", field="user.mail")
    reason = failure(wf.run(params={"user": {"name": "ann", "id": 1}}), "get")
    assert reason == (
        "NodeError: field 'user.mail' is not in the input: no key 'mail' (keys: id, name)"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(42, "42"), (42.0, "42"), (-3.0, "-3"), (42.5, "42.5"), (0.1, "0.1"), (1e300, "1e+300")],
)
def test_text_prints_a_whole_number_without_a_decimal_point(value: float, text: str) -> None:
    """As the engines of node-graph files print numbers: 42, not 42.0 (fractions as they are)."""
    wf = Workflow("t")
    numbers(wf, n=value)
    node(wf, "line", "text", "n", text="n={{ n }}")
    node(wf, "upper", "text_operation", "n", text_op="lowercase")
    node(wf, "sum", "accumulator", "n", accum_op="concat")
    result = wf.run()
    assert result.ok, result.error
    assert result.outputs["n"] == float(value)  # the output itself stays a float
    assert (result.outputs["line"], result.outputs["upper"]) == (f"n={text}", text)
    assert result.outputs["sum"] == text


# -- variables, constants, context ------------------------------------------------------------


def test_variable_set_then_get_along_an_edge() -> None:
    wf = Workflow("v")
    numbers(wf, n=5)
    node(wf, "store", "variable", "n", var_name="total", var_op="set")
    node(wf, "read", "variable", "store", var_name="total", var_op="get")
    node(wf, "value", "extract", "read", field="value")
    node(wf, "literal", "variable", "value", var_name="label", var_op="set", value="n={{ value }}")
    node(wf, "label", "text", "literal", text="{{ variable.label }} / {{ variable.total }}")
    result = wf.run()
    assert result.outputs["store"] == {"var_name": "total", "operation": "set", "value": 5.0}
    assert result.outputs["read"] == {"var_name": "total", "operation": "get", "value": 5.0}
    assert result.outputs["value"] == 5.0
    assert result.outputs["label"] == "n=5 / 5"


def test_variable_get_of_an_unset_variable_fails_naming_it() -> None:
    wf = Workflow("v")
    node(wf, "read", "variable", var_name="missing", var_op="get")
    reason = failure(wf.run(), "read")
    assert reason.startswith("NodeError: variable 'missing' is not set (set so far: none)")
    assert "draw an edge from that node to this one" in reason


def test_context_variables_and_constants_exist_from_the_start_without_edges() -> None:
    """Declared after the nodes that read them, unconnected: still visible to every node."""
    wf = Workflow("c")
    node(wf, "read", "variable", var_name="region", var_op="get")
    node(wf, "text", "text", text="{{ const.api }}/{{ variable.region }}")
    node(wf, "region", "context", context_name="region", context_value="eu")
    node(wf, "api", "constant", const_name="api", const_value="https://api")
    result = wf.run()
    assert result.outputs["read"] == {"var_name": "region", "operation": "get", "value": "eu"}
    assert result.outputs["text"] == "https://api/eu"


def test_definitions_cannot_be_templates_and_need_a_value() -> None:
    wf = Workflow("c")
    node(wf, "a", "context", context_name="who", context_value="{{ trigger.who }}")
    node(wf, "b", "constant", const_name="x")
    node(wf, "c", "variable", var_name="x", var_op="set")
    found = problems(wf)
    assert found[0].startswith("step 'a': data.context_value cannot be a template")
    assert found[1] == "step 'b': a constant node needs data.const_value, its value"
    assert found[2] == (
        "step 'c': a variable set needs a value: give data.value or draw an edge into it "
        "from a node"
    )


def test_runs_do_not_share_state() -> None:
    wf = Workflow("c")
    node(wf, "inc", "counter", counter_op="increment")
    node(wf, "add", "accumulator", accum_op="array", value="x")
    node(wf, "set", "variable", "inc", var_name="seen", var_op="set")
    first, second = wf.run(), wf.run()
    assert first.outputs["inc"] == second.outputs["inc"] == 1
    assert first.outputs["add"] == second.outputs["add"] == ["x"]


# -- counters and accumulators ----------------------------------------------------------------


def test_counter_operations_in_order() -> None:
    wf = Workflow("c")
    ops = ["increment", "increment", "decrement", "get", "reset", "increment"]
    previous: list[str] = []
    for n, op in enumerate(ops):
        node(wf, f"c{n}", "counter", *previous, counter_op=op)
        previous = [f"c{n}"]
    node(wf, "other", "counter", "c5", counter_op="increment", counter_name="other", amount=5)
    result = wf.run()
    assert [result.outputs[f"c{n}"] for n in range(len(ops))] == [1, 2, 1, 1, 0, 1]
    assert result.outputs["other"] == 5


def test_many_parallel_counter_nodes_on_threads_count_exactly() -> None:
    wf = Workflow("count", max_concurrency=8)
    ids = [f"inc{n}" for n in range(200)]
    for sid in ids:
        node(wf, sid, "counter", counter_op="increment", executor="threads")
    node(wf, "total", "counter", *ids, counter_op="get")
    result = wf.run()
    assert result.ok
    assert result.outputs["total"] == 200
    # each node saw its own increment: no two read the same value
    assert sorted(result.outputs[sid] for sid in ids) == list(range(1, 201))
    assert {result.steps[sid].executor for sid in ids} == {"threads"}


@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        ("sum", [1, 2, 3.5], 6.5),
        ("product", [2, 3, 4], 24),
        ("concat", ["a", "b", 3], "ab3"),
        ("array", ["a", {"k": 1}, None], ["a", {"k": 1}, None]),
        ("count", ["a", "b", "c"], 3),
    ],
)
def test_accumulator_operations(op: str, values: list[Any], expected: Any) -> None:
    wf = Workflow("acc")
    previous: list[str] = []
    for n in range(len(values)):  # each value comes in as the node's first input
        node(wf, f"v{n}", "trigger")
        node(wf, f"x{n}", "extract", f"v{n}", field=str(n))
        node(wf, f"add{n}", "accumulator", f"x{n}", *previous, accum_op=op)
        previous = [f"add{n}"]
    result = wf.run(params={str(n): v for n, v in enumerate(values)})
    assert result.ok, result.error
    assert result.outputs[previous[0]] == expected


def test_many_parallel_accumulator_nodes_on_threads_lose_nothing() -> None:
    wf = Workflow("acc", max_concurrency=8)
    ids = []
    for n in range(200):
        node(wf, f"s{n}", "accumulator", accum_op="sum", value=n, executor="threads")
        node(wf, f"a{n}", "accumulator", accum_op="array", value=n, executor="threads")
        ids += [f"s{n}", f"a{n}"]
    node(wf, "done", "merge", *ids)
    node(wf, "sum", "accumulator", "done", accum_op="sum", value=0)
    node(wf, "array", "accumulator", "done", accum_op="array", value="last")
    result = wf.run()
    assert result.ok
    assert result.outputs["sum"] == sum(range(200))
    assert sorted(result.outputs["array"][:-1]) == list(range(200))
    assert result.outputs["array"][-1] == "last"
    assert sorted(len(result.outputs[f"a{n}"]) for n in range(200)) == list(range(1, 201))


def test_one_accumulator_name_keeps_one_op() -> None:
    wf = Workflow("acc")
    node(wf, "first", "accumulator", accum_op="sum", accum_name="total", value=1)
    node(wf, "second", "accumulator", "first", accum_op="count", accum_name="total")
    reason = failure(wf.run(), "second")
    assert reason == (
        "NodeError: accumulator 'total' is a 'sum' accumulator, not 'count'; give this node "
        "its own data.accum_name"
    )


def test_accumulator_sum_of_a_non_number_fails() -> None:
    wf = Workflow("acc")
    node(wf, "t", "text", text="x")
    node(wf, "add", "accumulator", "t", accum_op="sum", accum_name="money")
    reason = failure(wf.run(), "add")
    assert reason == "NodeError: accumulator 'money' (sum) needs numbers, got 'x' (str)"


# -- cache ------------------------------------------------------------------------------------


def test_cache_set_then_get_with_a_templated_key() -> None:
    wf = Workflow("cache")
    node(wf, "start", "trigger")
    node(wf, "put", "cache", "start", cache_op="set", cache_key="user-{{ trigger.id }}")
    node(wf, "hit", "cache", "put", cache_op="get", cache_key="user-7")
    node(wf, "miss", "cache", "put", cache_op="get", cache_key="user-8")
    result = wf.run(params={"id": 7})
    assert result.outputs["put"] == {"id": 7}
    assert result.outputs["hit"] == {"id": 7}
    assert result.outputs["miss"] is None


def test_cache_problems() -> None:
    wf = Workflow("cache")
    node(wf, "a", "cache", cache_op="fetch", cache_key="")
    node(wf, "b", "cache", cache_op="get", cache_key="{{ oops")
    found = problems(wf)
    assert found[0] == "step 'a': data.cache_op must be one of get, set; got 'fetch'"
    assert found[1].startswith("step 'a': data.cache_key must be a non-empty string")
    assert found[2].startswith("step 'b': data.cache_key: template syntax error")


# -- executors and conditions -----------------------------------------------------------------


def test_nodes_refuse_the_processes_executor() -> None:
    wf = Workflow("p")
    node(wf, "n", "number", value=1, executor="processes")
    (message,) = problems(wf)
    assert message.startswith("step 'n': executor 'processes' cannot run a node-graph node")


def test_condition_function_is_the_truth_of_its_expression() -> None:
    check = condition_function("{{ trigger.amount > 100 and fetch.ok }}", "data.condition")
    assert check({"fetch": {"ok": True}}, {"amount": 150}) is True
    assert check({"fetch": {"ok": True}}, {"amount": 50}) is False
    assert condition_function("trigger.name", "c")({}, {"name": "ann"}) is True


def test_condition_function_refuses_bad_syntax_naming_where() -> None:
    with pytest.raises(ArgumentError) as exc:
        condition_function("trigger.amount >", "data.condition")
    assert str(exc.value).startswith("data.condition: invalid syntax")
