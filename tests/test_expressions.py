"""The expression language of ``when:`` preconditions and condition steps (Jinja2 sandbox)."""

from __future__ import annotations

import builtins
import dataclasses
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pardag
from pardag.errors import ArgumentError, PardagError
from pardag.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    compile_expression,
    expression_names,
)

WHERE = "step 'load' when"


def run(source: str, **names: Any) -> Any:
    return compile_expression(source, where=WHERE).evaluate(names)


def rejected(source: str) -> str:
    """The message of the ArgumentError compiling ``source`` raises; checks where is named."""
    with pytest.raises(ArgumentError) as info:
        compile_expression(source, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ": "), message
    return message


def failing(source: str, **names: Any) -> ExpressionError:
    """The ExpressionError evaluating ``source`` raises; checks where and the source are named."""
    expression = compile_expression(source, where=WHERE)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate(names)
    message = str(info.value)
    assert message.startswith(WHERE + ": "), message
    assert repr(source.strip()) in message, message
    return info.value


# --- constructs written as in Python ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("0x10", 16),
        ("'it' 's'", "its"),
        ('"double"', "double"),
        ("True", True),
        ("False", False),
        ("None", None),
        ("true", True),
        ("false", False),
        ("null", None),
        ("none", None),
        ("[1, 'a', None]", [1, "a", None]),
        ("[]", []),
        ("(1, 2)", (1, 2)),
        ("(1,)", (1,)),
        ("()", ()),
        ("{'a': 1, 'b': [2]}", {"a": 1, "b": [2]}),
        ("{}", {}),
    ],
)
def test_literals(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("7 + 2", 9),
        ("7 - 2", 5),
        ("7 * 2", 14),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-x", -3),
        ("+x", 3),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** (3 ** 2)", 512),
        ("-(2 ** 2)", -4),
        ("'a' + 'b'", "ab"),
        ("'a' ~ 1", "a1"),
        ("[1] * 3", [1, 1, 1]),
        ("2 * 'ab'", "abab"),
        ("(1,) + (2,)", (1, 2)),
        ("x * 1.5", 4.5),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    result = run(source, x=3)
    assert result == expected
    assert type(result) is type(expected)


def test_power_binds_left_to_right_unlike_python() -> None:
    """Jinja2's grammar: documented in pardag.expressions; parentheses make it Python's."""
    assert run("2 ** 3 ** 2") == 64
    assert run("-2 ** 2") == 4


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 < 2", True),
        ("2 < 1", False),
        ("1 <= 1", True),
        ("2 > 1", True),
        ("1 >= 2", False),
        ("1 == 1.0", True),
        ("1 != 1", False),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 > 2 > 2", False),
        ("'a' in 'cat'", True),
        ("'z' in 'cat'", False),
        ("3 not in [1, 2]", True),
        ("2 not in [1, 2]", False),
        ("not 2 in [1, 2]", False),
        ("'k' in {'k': 1}", True),
        ("n is None", True),
        ("n is none", True),
        ("zero is None", False),
        ("zero is not None", True),
        ("n is not None", False),
        ("n == null", True),
        ("flag is True", True),
        ("zero is False", False),
        ("items is sameas items", True),
        ("missing is defined", False),
        ("zero is defined", True),
    ],
)
def test_comparisons_and_tests(source: str, expected: bool) -> None:
    assert run(source, n=None, zero=0, items=[1], flag=True) is expected


def test_chained_comparison_stops_at_the_first_false() -> None:
    assert run("1 > 2 < missing") is False
    failing("2 > 1 < missing")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 and 'yes'", "yes"),
        ("0 and 'yes'", 0),
        ("0 or 'fallback'", "fallback"),
        ("'first' or 'second'", "first"),
        ("1 and 2 and 0 and 3", 0),
        ("0 or '' or None", None),
        ("not 0", True),
        ("not 'x'", False),
        ("not not []", False),
        ("1 < 2 and 'b' > 'a'", True),
    ],
)
def test_boolean_operators_return_python_values(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "source",
    ["false and missing", "true or missing", "0 and missing.x", "1 or missing[0]"],
)
def test_and_or_short_circuit(source: str) -> None:
    assert run(source) in (True, False, 0, 1)


def test_conditional_expression() -> None:
    assert run("'big' if x > 10 else 'small'", x=11) == "big"
    assert run("'big' if x > 10 else 'small'", x=1) == "small"
    assert run("1 if true else missing") == 1
    assert run("missing if false else 2") == 2


def test_conditional_without_else_is_an_error_when_false() -> None:
    assert run("1 if x", x=True) == 1
    assert "no else section" in str(failing("1 if x", x=False))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("rows[0]", 10),
        ("rows[-1]", 40),
        ("rows[1:3]", [20, 30]),
        ("rows[::2]", [10, 30]),
        ("rows[:-1]", [10, 20, 30]),
        ("rows[i]", 30),
        ("rows[i - 1:]", [20, 30, 40]),
        ("d['k']", "v"),
        ("d[key]", "v"),
        ("pairs[1, 2]", "tuple key"),
        ("'hello'[1:3]", "el"),
        ("nested['a'][0]['b']", 5),
        ("nested.a[0].b", 5),
    ],
)
def test_subscripts_and_slices(source: str, expected: Any) -> None:
    names = {
        "rows": [10, 20, 30, 40],
        "i": 2,
        "d": {"k": "v"},
        "key": "k",
        "pairs": {(1, 2): "tuple key"},
        "nested": {"a": [{"b": 5}]},
    }
    assert compile_expression(source, where=WHERE).evaluate(names) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len(rows)", 3),
        ("int('42')", 42),
        ("int('ff', base=16)", 255),
        ("int(2.9)", 2),
        ("float('1.5')", 1.5),
        ("str(5)", "5"),
        ("bool('')", False),
        ("bool(rows)", True),
        ("abs(-3)", 3),
        ("min(3, 1, 2)", 1),
        ("min(rows)", 1),
        ("max(rows)", 3),
        ("max([], default=7)", 7),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("round(1234, -2)", 1200),
        ("round(2.567, ndigits=1)", 2.6),
        ("sum(rows)", 6),
        ("sum(rows, start=10)", 16),
        ("sum([[1], [2]], [])", [1, 2]),
        ("any([0, 1])", True),
        ("any([])", False),
        ("all([1, 0])", False),
        ("all([])", True),
        ("sorted([3, 1, 2])", [1, 2, 3]),
        ("sorted('cab', reverse=True)", ["c", "b", "a"]),
        ("rows | length", 3),
        ("missing | default(7)", 7),
        ("rows | sort | first", 1),
        ("range(3) | list", [0, 1, 2]),
    ],
)
def test_functions_and_filters(source: str, expected: Any) -> None:
    result = run(source, rows=[3, 1, 2])
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s.lower()", " hello, world "),
        ("s.upper()", " HELLO, WORLD "),
        ("s.strip()", "Hello, World"),
        ("s.strip(' H')", "ello, World"),
        ("s.startswith(' He')", True),
        ("s.startswith(('x', ' H'))", True),
        ("s.endswith('x')", False),
        ("s.split()", ["Hello,", "World"]),
        ("'a,b,c'.split(',', maxsplit=1)", ["a", "b,c"]),
        ("s.replace('World', 'there')", " Hello, there "),
        ("p.mode.upper()", "FULL"),
        ("'{}-{}'.format(p.mode, 2)", "full-2"),
        ("s.strip().lower().startswith('hello')", True),
    ],
)
def test_string_methods(source: str, expected: Any) -> None:
    assert run(source, s=" Hello, World ", p={"mode": "full"}) == expected


def test_multi_line_expressions() -> None:
    assert run("a and\n  b", a=1, b=2) == 2
    assert run("  x > 1\n", x=2) is True
    assert run("x >\r\n 1", x=2) is True


# --- names and dotted access ------------------------------------------------------------


@dataclass
class _Result:
    count: int
    data: dict[str, Any]

    @property
    def doubled(self) -> int:
        return self.count * 2


def test_dotted_access_on_mappings_means_keys() -> None:
    names = {"extract": {"count": 11, "meta": {"mode": "full"}}}
    assert compile_expression("extract.count", where=WHERE).evaluate(names) == 11
    assert compile_expression("extract.meta.mode", where=WHERE).evaluate(names) == "full"
    assert run("m.a", m=MappingProxyType({"a": 1})) == 1
    # keys win over dict methods of the same name
    assert run("d.items", d={"items": [1, 2]}) == [1, 2]
    assert run("d.keys", d={"keys": "k"}) == "k"
    assert run("d._x", d={"_x": 1}) == 1
    assert run("d['_x']", d={"_x": 1}) == 1


def test_dotted_access_on_objects_means_attributes() -> None:
    result = _Result(count=3, data={"rows": [1, 2]})
    assert run("r.count", r=result) == 3
    assert run("r.doubled", r=result) == 6
    assert run("r.data.rows", r=result) == [1, 2]
    assert run("ns.inner.value", ns=SimpleNamespace(inner=SimpleNamespace(value="v"))) == "v"
    assert run("{'r': r}.r.count", r=result) == 3


def test_missing_attribute_on_object() -> None:
    message = str(failing("r.cnt", r=_Result(count=1, data={})))
    assert "has no attribute or key 'cnt'" in message
    assert "_Result" in message


@pytest.mark.parametrize(
    "source",
    [
        "x.__class__",
        "x.__class__.__bases__[0].__subclasses__()",
        "s.__len__()",
        "r._private",
        "g.gi_frame",
        "f.__globals__",
        "r['__class__']",
    ],
)
def test_private_and_internal_attributes_are_refused(source: str) -> None:
    def gen() -> Iterator[int]:
        yield 1

    message = str(failing(source, x=1, s="a", r=SimpleNamespace(_private=1), g=gen(), f=lambda: 1))
    assert "unsafe" in message or "no attribute" in message or "not found" in message


def test_mapping_keys_named_like_internal_attributes_are_fine() -> None:
    assert run("d.gi_frame", d={"gi_frame": 1}) == 1


def test_exceptions_raised_by_user_objects_are_wrapped() -> None:
    class Broken:
        @property
        def value(self) -> int:
            raise RuntimeError("boom")

    error = failing("b.value", b=Broken())
    assert "RuntimeError: boom" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("extract.count > 10 and params.mode == 'full'", {"extract", "params"}),
        ("len(rows) + max(a, b)", {"rows", "a", "b"}),
        ("true and null is None or false", set()),
        ("d[k] ~ s.upper() ~ (y if z else w)", {"d", "k", "s", "y", "z", "w"}),
        ("sorted(v, reverse=r)", {"v", "r"}),
        ("rows[lo:hi:step]", {"rows", "lo", "hi", "step"}),
        ("{k: v}", {"k", "v"}),
        ("x | default(y)", {"x", "y"}),
        ("x", {"x"}),
        ("'literal'", set()),
    ],
)
def test_names_used(source: str, expected: set[str]) -> None:
    assert compile_expression(source, where=WHERE).names_used == frozenset(expected)


def test_null_yields_to_a_provided_name_but_keywords_do_not() -> None:
    assert run("null", null=5) == 5
    assert run("true", true="yes") is True
    assert run("True", true="yes") is True


def test_expression_names_give_ids_inputs_steps_params_and_trigger() -> None:
    names = expression_names({"fetch": {"status": 200}}, {"full": True, "amount": 150})
    expression = compile_expression(
        "fetch.status == 200 and steps.fetch.output.status == inputs.fetch.status "
        "and params.full and trigger.amount > 100",
        where=WHERE,
    )
    assert expression.evaluate(names) is True
    # the reserved names win over a dependency with the same id
    assert expression_names({"params": 1}, {"p": 2})["params"] == {"p": 2}


def test_condition_step_reads_trigger_and_steps() -> None:
    wf = pardag.Workflow("route")
    wf.add("fetch", lambda: {"status": 200})
    wf.add(
        "ok",
        kind="condition",
        depends_on=["fetch"],
        params={"expression": "steps.fetch.output.status == 200 and trigger.amount > 100"},
    )
    wf.add("big", lambda: "big", depends_on=["ok"], branch={"ok": "true"})
    wf.add("small", lambda: "small", depends_on=["ok"], branch={"ok": "false"})
    result = wf.run(params={"amount": 150})
    assert result.outputs["ok"] is True
    assert set(result.outputs) == {"fetch", "ok", "big"}
    assert wf.run(params={"amount": 5}).outputs.get("small") == "small"


def test_expression_is_a_frozen_value_that_pickles() -> None:
    expression = compile_expression(" x > 1 ", where=WHERE)
    assert isinstance(expression, Expression)
    assert expression.source == " x > 1 "
    assert expression.where == WHERE
    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.source = "y"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(expression))
    assert again.evaluate({"x": 2}) is True
    assert again.evaluate({"x": 0}) is False


def test_evaluation_does_not_use_eval_exec_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = compile_expression("len(x.rows) * 2 > 3 and x.name.upper() == 'A'", where=WHERE)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval, exec and compile must not be used per evaluation")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    assert expression.evaluate({"x": {"rows": [1, 2], "name": "a"}}) is True


# --- compile-time errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem", "at"),
    [
        ("a >", "invalid syntax: unexpected 'end of the expression'", "the end of 'a >'"),
        ("a b", "invalid syntax: unexpected 'b'", "column 3 of 'a b'"),
        ("a ==== b", "invalid syntax: unexpected '=='", "column 5 of 'a ==== b'"),
        ("(1", "invalid syntax", "the end of '(1'"),
        ("a & b", "unexpected character '&'", "column 3 of 'a & b'"),
        ("lambda x: x", "invalid syntax", "column 8 of 'lambda x: x'"),
        ("[x for x in y]", "expected token ',', got 'for'", "column 4 of '[x for x in y]'"),
        ("x = 1", "invalid syntax", "column 3 of 'x = 1'"),
        ("'é' + $", "unexpected character '$'", "column 7 of"),
    ],
)
def test_syntax_errors_name_the_column_and_what_is_allowed(
    source: str, problem: str, at: str
) -> None:
    message = rejected(source)
    assert problem in message
    assert f"({at}" in message
    assert "write a Jinja2 expression" in message


def test_multi_line_syntax_errors_name_line_and_column() -> None:
    assert "(line 2, column 3 of 'a and\\n  $b')" in rejected("a and\n  $b")


def test_unknown_filters_and_tests_explain_pipe_and_is() -> None:
    message = rejected("a | b")
    assert "No filter named 'b'" in message
    assert "for a logical or write 'or'" in message
    assert "No test named 'Nome'" in rejected("x is Nome")


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expressions_are_refused(source: str) -> None:
    assert "the expression is empty" in rejected(source)


def test_non_strings_are_refused() -> None:
    not_a_string: Any = True  # what YAML makes of `when: true`
    with pytest.raises(ArgumentError, match=r"^step 'load' when: an expression must be a str"):
        compile_expression(not_a_string, where=WHERE)


def test_where_is_named_as_given() -> None:
    with pytest.raises(ArgumentError, match=r"^flow.yaml:3: step 'check' expression: invalid"):
        compile_expression("a >", where="flow.yaml:3: step 'check' expression")


def test_bad_when_is_a_validation_problem() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a, when="a >")
    with pytest.raises(pardag.ValidationError) as info:
        wf.validate()
    assert "invalid syntax" in str(info.value)


# --- evaluation errors ------------------------------------------------------------------


def test_unknown_name_names_the_available_ones_and_a_suggestion() -> None:
    error = failing("extrct.count > 10", extract={"count": 1}, params={})
    assert str(error) == (
        "step 'load' when: name 'extrct' is not defined; available: extract, params; "
        "did you mean 'extract'? (in 'extrct.count > 10')"
    )
    assert error.where == WHERE
    assert error.source == "extrct.count > 10"


def test_unknown_name_without_close_match_or_names() -> None:
    message = str(failing("zzz", extract=1))
    assert "available: extract (in" in message
    assert "did you mean" not in message
    assert "no names are available" in str(failing("zzz"))


def test_long_lists_of_names_are_shortened() -> None:
    names = {f"name{i:02}": i for i in range(25)}
    with pytest.raises(ExpressionError) as info:
        compile_expression("missing", where=WHERE).evaluate(names)
    assert "name19, ... (5 more)" in str(info.value)
    assert "name20" not in str(info.value)


def test_missing_key_names_the_keys_and_a_suggestion() -> None:
    message = str(failing("extract.cuont > 10", extract={"count": 1, "rows": []}))
    assert "key 'cuont' not found; its keys: count, rows; did you mean 'count'?" in message
    message = str(failing("d['zz']", d={"a": 1}))
    assert "key 'zz' not found; its keys: a" in message


def test_index_out_of_range() -> None:
    assert "index 5 is out of range (length 3)" in str(failing("x.rows[5]", x={"rows": [1, 2, 3]}))


def test_type_errors_say_what_failed() -> None:
    message = str(failing("n > 1 and x > 10", n=2, x="a"))
    assert "cannot evaluate: TypeError: '>' not supported between" in message


def test_division_by_zero() -> None:
    error = failing("1 + 1 / x", x=0)
    assert "cannot evaluate: ZeroDivisionError: division by zero" in str(error)
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_expression_error_is_a_pardag_error_and_pickles() -> None:
    error = failing("missing")
    assert isinstance(error, PardagError)
    assert not isinstance(error, ArgumentError)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ExpressionError
    assert str(again) == str(error)
    assert (again.where, again.source) == (WHERE, "missing")


def test_failing_when_fails_the_step_with_the_message() -> None:
    wf = pardag.Workflow("w", on_failure="continue")
    wf.add("a", lambda: {"count": 1})
    wf.add("b", lambda a: a, when="a.cuont > 0")
    result = wf.run()
    assert result.steps["b"].state == "failed"
    assert "did you mean 'count'?" in str(result.steps["b"].error)


# --- resource guards --------------------------------------------------------------------


def test_exponent_limit() -> None:
    assert run("2 ** 10000") == 2**10000
    for source in ("2 ** 10001", "2 ** -10001", "2.0 ** 10001", "x ** 10001"):
        assert "exponent" in str(failing(source, x=1))


def test_integer_size_limit() -> None:
    assert "would be too large: more than 100,000 bits" in str(failing("(9 ** 9) ** 10000"))
    assert "would be too large: more than 100,000 bits" in str(failing("x * x", x=2**60000))


def test_length_limit_on_repetition() -> None:
    assert len(run("'a' * 1000000")) == MAX_LENGTH
    for source in ("'a' * 1000001", "1000001 * 'a'", "[0] * 1000001", "(0,) * 1000001"):
        assert "would be too long: 1,000,001 items" in str(failing(source))
    assert "too long" in str(failing("'a' * (10 ** 12)"))  # refused before anything is built
    assert "too long" in str(failing("x * (10 ** 12)", x=[1, 2]))


@pytest.mark.parametrize("half", ["a" * 600_000, [0] * 600_000, (0,) * 600_000])
def test_length_limit_on_concatenation(half: Any) -> None:
    assert "would be too long: 1,200,000 items" in str(failing("x + x", x=half))


def test_length_limit_on_methods_filters_and_formats() -> None:
    big = "a" * 300_000
    assert run("s.replace('a', 'bb')", s="a" * 10) == "b" * 20
    assert "would be too long: 1,200,000 items" in str(failing("s.replace('a', 'aaaa')", s=big))
    assert "would be too long" in str(failing("s.replace('', 'aaaa')", s=big))
    assert run("s.replace('a', 'aaaa', 10)", s=big) == "a" * 300_030  # count caps the growth
    assert "would be too long" in str(failing("s | replace('a', 'aaaa')", s=big))
    for source in (
        "sum([x, x], [])",
        "'a'.center(10 ** 8)",
        "'a' | center(10 ** 8)",
        "'a' | indent(10 ** 8)",
        "'{:>1000000000}'.format(1)",
        "'%999999999d' | format(1)",
        "range(10 ** 9) | list",
    ):
        message = str(failing(source, x=[0] * 600_000))
        assert "too long" in message or "too big" in message, message
    assert run("'{:>5}'.format(1)") == "    1"
    assert run("'%3d' | format(7)") == "  7"


def test_other_guards() -> None:
    assert "ndigits -100000 is too large" in str(failing("round(5, -100000)"))
    assert "'%' string formatting is not allowed" in str(failing("'%s' % x", x=1))
    assert "nested fields" in str(failing("'{:{w}}'.format(1, w=5)"))
    assert run("7 % x", x=4) == 3


def test_caller_data_is_not_limited_when_only_read() -> None:
    big = list(range(MAX_LENGTH + 10))
    assert run("len(rows) > 5 and rows[-1]", rows=big) == MAX_LENGTH + 9


# --- nesting ----------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert run("-" * (MAX_DEPTH - 1) + "1") == -1
    assert run("1" + " + 1" * (MAX_DEPTH - 2)) == MAX_DEPTH - 1


def test_nesting_beyond_the_limit_is_refused_at_compile_time() -> None:
    assert f"nested more than {MAX_DEPTH} levels deep" in rejected("-" * MAX_DEPTH + "1")


@pytest.mark.parametrize(
    "source",
    [
        "-" * 1500 + "1",
        "not " * 400 + "x",
        "1" + "+1" * 900,
        "a" + ".b" * 900,
        "[" * 250 + "]" * 250,
        "(" * 250 + "1" + ")" * 250,
        "f(" * 900 + ")" * 900,
        "x" * 5000,
    ],
)
def test_absurd_input_is_refused_cleanly(source: str) -> None:
    message = rejected(source)
    assert "nested" in message or "longer than" in message
    assert len(message) < 1000  # the expression is quoted shortened


def _depth() -> int:
    """The recursion depth of the caller, as the interpreter counts it."""
    limit = sys.getrecursionlimit()
    depth = 1
    while True:
        try:
            sys.setrecursionlimit(depth)
        except RecursionError:
            depth += 1
            continue
        sys.setrecursionlimit(limit)
        return depth - 1


def test_evaluating_with_little_stack_left_raises_expression_error() -> None:
    """With a few frames to spare, evaluation returns or raises ExpressionError, never more."""
    expression = compile_expression("x * 2 + len(s.upper()) ** 2", where=WHERE)
    limit = sys.getrecursionlimit()
    outcomes = set()
    try:
        here = _depth()
        for spare in range(6, 60):
            sys.setrecursionlimit(here + spare)
            try:
                outcomes.add(expression.evaluate({"x": 1, "s": "ab"}))
            except ExpressionError as exc:
                assert "too deeply nested" in str(exc)
                outcomes.add("error")
    finally:
        sys.setrecursionlimit(limit)
    assert outcomes == {"error", 6}


def test_refusing_absurd_input_leaves_the_parsers_usable() -> None:
    """CPython 3.11 breaks later ast.parse calls after a RecursionError inside its compiler."""
    import ast

    for source in ("-" * 1900 + "1", "1" + "+1" * 900, "not " * 450 + "x", "(" * 900 + ")" * 900):
        assert "nested" in rejected(source)
    assert isinstance(ast.parse("def f():\n    return [x + 1 for x in y]"), ast.Module)
    assert compile_expression("x + 1", where=WHERE).evaluate({"x": 1}) == 2


# --- property: agrees with Python on arithmetic and comparisons ---------------------------

_VARIABLES = ("x", "y", "z")
_leaves = st.one_of(
    st.integers(-20, 20).map(lambda n: f"({n})"),
    st.sampled_from(_VARIABLES),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children)
    comparison = st.tuples(
        children,
        st.lists(
            st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children),
            min_size=1,
            max_size=3,
        ),
    )
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(_leaves, st.integers(0, 3)).map(lambda t: f"({t[0]} ** {t[1]})"),
        st.tuples(st.sampled_from(["-", "+", "not "]), children).map(lambda t: f"({t[0]}{t[1]})"),
        comparison.map(lambda t: "(" + t[0] + "".join(f" {op} {c}" for op, c in t[1]) + ")"),
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


@settings(max_examples=300, deadline=None)
@given(
    source=st.recursive(_leaves, _extend, max_leaves=12),
    values=st.tuples(*(st.integers(-20, 20) for _ in _VARIABLES)),
)
def test_evaluate_agrees_with_python(source: str, values: tuple[int, ...]) -> None:
    names = dict(zip(_VARIABLES, values, strict=True))
    expression = compile_expression(source, where=WHERE)
    assert expression.names_used <= set(_VARIABLES)
    try:
        expected = eval(source, {"__builtins__": {}}, dict(names))
    except ZeroDivisionError:
        with pytest.raises(ExpressionError, match="ZeroDivisionError"):
            expression.evaluate(names)
        return
    result = expression.evaluate(names)
    assert result == expected
    assert type(result) is type(expected)
