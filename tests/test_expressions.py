"""The expression language of ``when:`` preconditions and condition steps."""

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

from pardag.errors import ArgumentError, PardagError
from pardag.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    compile_expression,
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
    assert repr(source) in message, message
    return info.value


# --- constructs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("0x10", 16),
        ("2j", 2j),
        ("'it' 's'", "its"),
        ('"double"', "double"),
        ("True", True),
        ("False", False),
        ("None", None),
        ("[1, 'a', None]", [1, "a", None]),
        ("[]", []),
        ("(1, 2)", (1, 2)),
        ("(1,)", (1,)),
        ("()", ()),
        ("{'a': 1, 'b': [2]}", {"a": 1, "b": [2]}),
        ("{}", {}),
        ("{1, 2, 2}", {1, 2}),
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
        ("--x", 3),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("'a' + 'b'", "ab"),
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
        ("'k' in {'k': 1}", True),
        ("n is None", True),
        ("zero is None", False),
        ("zero is not None", True),
        ("n is not None", False),
        ("items is items", True),
        ("items is [1]", False),
    ],
)
def test_comparisons(source: str, expected: bool) -> None:
    assert run(source, n=None, zero=0, items=[1]) is expected


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
        ("f'{name}-{count}'", "db-3"),
        ("f'{name!r}'", "'db'"),
        ("f'{ratio:.2f}'", "0.33"),
        ("f'{name:>5}|'", "   db|"),
        ("f'{{x}}'", "{x}"),
        ("f'{count + 1}'", "4"),
        ("f'{name.upper()}'", "DB"),
    ],
)
def test_simple_f_strings(source: str, expected: str) -> None:
    assert run(source, name="db", count=3, ratio=1 / 3) == expected


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
    ],
)
def test_whitelisted_builtins(source: str, expected: Any) -> None:
    result = run(source, rows=[3, 1, 2])
    assert result == expected
    assert type(result) is type(expected)


def test_called_builtins_cannot_be_shadowed_but_can_be_read() -> None:
    assert run("len(rows)", rows=[1, 2], len=lambda _: 99) == 2
    assert run("len", len="a name") == "a name"


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
        ("s.split(',')", [" Hello", " World "]),
        ("'a,b,c'.split(',', maxsplit=1)", ["a", "b,c"]),
        ("s.replace('World', 'there')", " Hello, there "),
        ("p.mode.upper()", "FULL"),
        ("s.strip().lower().startswith('hello')", True),
    ],
)
def test_whitelisted_string_methods(source: str, expected: Any) -> None:
    assert run(source, s=" Hello, World ", p={"mode": "full"}) == expected


def test_string_methods_work_only_on_strings() -> None:
    error = failing("rows.lower()", rows=[1])
    assert ".lower() works only on strings; 'rows' is of type list" in str(error)
    # a mapping key named like a method is not called either
    error = failing("d.upper()", d={"upper": "x"})
    assert "is of type dict" in str(error)


# --- dotted access ----------------------------------------------------------------------


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
    # keys win over dict methods, and a missing key is an error, not a bound method
    assert run("d.items", d={"items": [1, 2]}) == [1, 2]
    assert "key 'get' not found in 'd'" in str(failing("d.get", d={"x": 1}))


def test_dotted_access_on_objects_means_attributes() -> None:
    result = _Result(count=3, data={"rows": [1, 2]})
    assert run("r.count", r=result) == 3
    assert run("r.doubled", r=result) == 6
    assert run("r.data.rows", r=result) == [1, 2]
    assert run("ns.inner.value", ns=SimpleNamespace(inner=SimpleNamespace(value="v"))) == "v"
    assert run("{'r': r}.r.count", r=result) == 3


def test_missing_attribute_on_object() -> None:
    error = failing("r.cnt", r=_Result(count=1, data={}))
    assert "'r' (_Result) has no attribute 'cnt'" in str(error)
    assert isinstance(error.__cause__, AttributeError)


def test_private_keys_are_reachable_with_subscripts() -> None:
    assert run("d['_x']", d={"_x": 1}) == 1


def test_attributes_leading_to_frames_are_refused() -> None:
    def gen() -> Iterator[int]:
        yield 1

    error = failing("g.gi_frame", g=gen())
    assert "attribute 'gi_frame' is not allowed" in str(error)
    # but keys of that name in a mapping are fine
    assert run("d.gi_frame", d={"gi_frame": 1}) == 1


def test_exceptions_raised_by_user_objects_are_wrapped() -> None:
    class Broken:
        @property
        def value(self) -> int:
            raise RuntimeError("boom")

    error = failing("b.value", b=Broken())
    assert "RuntimeError: boom" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


# --- the allow-list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem", "hint"),
    [
        ("lambda: 1", "lambda expressions are not allowed", "allowed: literals"),
        ("[x for x in y]", "list comprehensions are not allowed", "allowed: literals"),
        ("{x for x in y}", "set comprehensions are not allowed", "allowed: literals"),
        ("{x: 1 for x in y}", "dict comprehensions are not allowed", "allowed: literals"),
        ("sum(x for x in y)", "generator expressions are not allowed", "allowed: literals"),
        ("(y := 1)", "':=' assignments are not allowed", "allowed: literals"),
        ("[*a]", "starred expressions ('*x') are not allowed", "allowed: literals"),
        ("{**a}", "'**' unpacking is not allowed", "allowed: literals"),
        ("len(*a)", "starred arguments ('*x') to len() are not allowed", "one by one"),
        ("max(**a)", "'**' arguments to max() are not allowed", "one by one"),
        ("s.split(*a)", "starred arguments ('*x') to .split() are not allowed", "one by one"),
        ("open('f')", "calling 'open' is not allowed", "only abs(), all()"),
        ("eval('1')", "calling 'eval' is not allowed", "only abs(), all()"),
        ("__import__('os')", "calling '__import__' is not allowed", "only abs(), all()"),
        ("getattr(a, 'b')", "calling 'getattr' is not allowed", "only abs(), all()"),
        ("f(1)", "calling 'f' is not allowed", "only abs(), all()"),
        ("len(x)()", "calling the result of an expression is not allowed", "only abs()"),
        ("s.format(1)", "calling method .format() is not allowed", "string methods .endswith()"),
        ("s.join(x)", "calling method .join() is not allowed", "string methods .endswith()"),
        ("a.b.c()", "calling method .c() is not allowed", "string methods .endswith()"),
        ("x.__class__", "attribute '__class__' is not allowed", "x['__class__']"),
        ("x._private", "attribute '_private' is not allowed", "x['_private']"),
        ("s.__len__()", "attribute '__len__' is not allowed", "x['__len__']"),
        (
            "x.__class__.__bases__[0].__subclasses__()",
            "attribute '__subclasses__' is not allowed",
            "names starting with '_' are private",
        ),
        ("a & b", "operator '&' is not allowed", "use 'and', 'or' and 'not'"),
        ("a | b", "operator '|' is not allowed", "use 'and', 'or' and 'not'"),
        ("a ^ b", "operator '^' is not allowed", "use 'and', 'or' and 'not'"),
        ("a << 1", "operator '<<' is not allowed", "use 'and', 'or' and 'not'"),
        ("a >> 1", "operator '>>' is not allowed", "use 'and', 'or' and 'not'"),
        ("a @ b", "operator '@' is not allowed", "use 'and', 'or' and 'not'"),
        ("~a", "operator '~' is not allowed", "use 'and', 'or' and 'not'"),
        ("b'x'", "bytes literals are not allowed", "allowed: literals"),
        ("...", "Ellipsis is not allowed", "allowed: literals"),
        ("sorted(x, key=len)", "keyword argument 'key' to sorted() is not allowed", "reverse"),
        ("len(x, y=1)", "keyword argument 'y' to len() is not allowed", "allowed keywords: none"),
        ("s.strip(chars='x')", "keyword argument 'chars' to .strip() is not allowed", "none"),
        ("f'{x:{w}}'", "nested fields in an f-string format spec", "constant spec"),
        ("f'{x:>1000}'", "format spec '>1000' is too large", "at most 100"),
        ("f'{x:.500f}'", "format spec '.500f' is too large", "at most 100"),
        ("await x", "'await' expressions are not allowed", "allowed: literals"),
        ("(yield)", "'yield' expressions are not allowed", "allowed: literals"),
    ],
)
def test_disallowed_constructs_are_refused_at_compile_time(
    source: str, problem: str, hint: str
) -> None:
    message = rejected(source)
    assert problem in message
    assert hint in message
    assert f" of {source!r})" in message  # quotes the expression, after the column


def test_the_message_points_at_the_offending_column() -> None:
    message = rejected("x > 1 and open('f')")
    assert "(column 11 of \"x > 1 and open('f')\")" in message
    # columns count characters, not UTF-8 bytes
    assert "column 7 of" in rejected("'é' + open(1)")


def test_the_first_offending_part_is_reported() -> None:
    message = rejected("open(1) + (lambda: 2)")
    assert "calling 'open'" in message
    assert "column 1 " in message


def test_where_is_named_as_given() -> None:
    with pytest.raises(ArgumentError, match=r"^condition step 'check' expression: calling"):
        compile_expression("f()", where="condition step 'check' expression")


# --- syntax errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["a >", "x = 1", "(1", "1 +* 2", "a b", "if x: y", "import os", "a ==== b", "1\x00"],
)
def test_syntax_errors_become_argument_errors(source: str) -> None:
    message = rejected(source)
    assert "invalid syntax" in message
    assert repr(source) in message
    assert "allowed: literals" in message


def test_syntax_error_locations() -> None:
    assert "invalid syntax (column 5 of 'a ==== b')" in rejected("a ==== b")
    assert "(the end of 'a >')" in rejected("a >")
    assert "'(' was never closed (column 1 of '(1')" in rejected("(1")


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expressions_are_refused(source: str) -> None:
    assert "the expression is empty" in rejected(source)


def test_non_strings_are_refused() -> None:
    not_a_string: Any = True  # what YAML makes of `when: true`
    with pytest.raises(ArgumentError, match=r"^step 'load' when: an expression must be a str"):
        compile_expression(not_a_string, where=WHERE)


def test_multi_line_expressions_read_as_if_parenthesized() -> None:
    assert run("a and\n  b", a=1, b=2) == 2
    assert run("  x > 1\n", x=2) is True
    assert run("x >\r\n 1", x=2) is True
    assert "(line 2, column 3 of 'a and\\n  open(1)')" in rejected("a and\n  open(1)")
    assert "(line 2, column 3 of 'a and\\n  $b')" in rejected("a and\n  $b")
    error = failing("a and\n  missing", a=1)
    assert "line 2, column 3" in str(error)


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("extract.count > 10 and params.mode == 'full'", {"extract", "params"}),
        ("len(rows) + max(a, b)", {"rows", "a", "b"}),
        ("true and null is None or false", set()),
        ("f'{x}' + d[k] + s.upper() + (y if z else w)", {"x", "d", "k", "s", "y", "z", "w"}),
        ("sorted(v, reverse=r)", {"v", "r"}),
        ("rows[lo:hi:step]", {"rows", "lo", "hi", "step"}),
        ("len", {"len"}),
        ("{k: v}", {"k", "v"}),
        ("'literal'", set()),
    ],
)
def test_names_used(source: str, expected: set[str]) -> None:
    assert compile_expression(source, where=WHERE).names_used == frozenset(expected)


def test_true_false_null_aliases() -> None:
    assert run("true") is True
    assert run("false") is False
    assert run("null") is None
    assert run("x == null", x=None) is True


def test_aliases_can_be_shadowed_by_provided_names() -> None:
    assert run("true", true="yes") == "yes"
    assert run("null", null=5) == 5
    assert run("True", true="yes") is True  # the keyword is not an alias


def test_expression_is_a_frozen_value() -> None:
    expression = compile_expression(" x > 1 ", where=WHERE)
    assert isinstance(expression, Expression)
    assert expression.source == " x > 1 "
    assert expression.where == WHERE
    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.source = "y"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(expression))
    assert again.evaluate({"x": 2}) is True


# --- evaluation errors ------------------------------------------------------------------


def test_unknown_name_names_the_available_ones_and_a_suggestion() -> None:
    error = failing("extrct.count > 10", extract={"count": 1}, params={})
    assert str(error) == (
        "step 'load' when: name 'extrct' is not defined (column 1 of 'extrct.count > 10'); "
        "available: extract, params; did you mean 'extract'?"
    )
    assert error.where == WHERE
    assert error.source == "extrct.count > 10"


def test_unknown_name_without_close_match_or_names() -> None:
    message = str(failing("zzz", extract=1))
    assert message.endswith("available: extract")
    assert "did you mean" not in message
    assert str(failing("zzz")).endswith("no names are available")


def test_long_lists_of_names_are_shortened() -> None:
    names = {f"name{i:02}": i for i in range(25)}
    with pytest.raises(ExpressionError) as info:
        compile_expression("missing", where=WHERE).evaluate(names)
    assert "name19, ... (5 more)" in str(info.value)
    assert "name20" not in str(info.value)


def test_missing_key_names_the_keys_and_a_suggestion() -> None:
    error = failing("extract.cuont > 10", extract={"count": 1, "rows": []})
    assert str(error) == (
        "step 'load' when: key 'cuont' not found in 'extract' (column 1 of 'extract.cuont > 10'); "
        "keys: count, rows; did you mean 'count'?"
    )
    assert isinstance(error.__cause__, KeyError)
    message = str(failing("d['zz']", d={"a": 1}))
    assert "key 'zz' not found in 'd'" in message
    assert "keys: a" in message


def test_index_out_of_range() -> None:
    message = str(failing("x.rows[5]", x={"rows": [1, 2, 3]}))
    assert "index 5 is out of range for 'x.rows' (length 3)" in message


def test_type_errors_name_the_failing_part() -> None:
    message = str(failing("n > 1 and x > 10", n=2, x="a"))
    assert "cannot evaluate 'x > 10': TypeError: '>' not supported between" in message
    assert "column 11" in message


def test_division_by_zero() -> None:
    error = failing("1 + 1 / 0")
    assert "cannot evaluate '1 / 0': ZeroDivisionError: division by zero" in str(error)
    assert "column 5" in str(error)
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_expression_error_is_a_pardag_error_and_pickles() -> None:
    error = failing("missing")
    assert isinstance(error, PardagError)
    assert not isinstance(error, ArgumentError)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ExpressionError
    assert str(again) == str(error)
    assert (again.where, again.source) == (WHERE, "missing")


def test_evaluation_does_not_use_eval_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = compile_expression("len(x.rows) * 2 > 3 and x.name.upper() == 'A'", where=WHERE)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval, exec and compile must not be used")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    assert expression.evaluate({"x": {"rows": [1, 2], "name": "a"}}) is True


# --- resource guards --------------------------------------------------------------------


def test_exponent_limit() -> None:
    assert run("2 ** 10000") == 2**10000
    assert run("10 ** 10000") == 10**10000
    for source in ("2 ** 10001", "2 ** -10001", "2.0 ** 10001", "x ** 10001"):
        assert "exponent" in str(failing(source, x=1))


def test_integer_size_limit() -> None:
    # refused before computing ("would be"), or after for cheap operations ("is")
    assert "would be too large: more than 100,000 bits" in str(failing("(9 ** 9) ** 10000"))
    assert "would be too large: more than 100,000 bits" in str(failing("x * x", x=2**60000))
    assert "is too large: more than 100,000 bits" in str(failing("x + x", x=2**100_000 - 1))


def test_length_limit_on_repetition() -> None:
    assert len(run("'a' * 1000000")) == MAX_LENGTH
    for source in ("'a' * 1000001", "1000001 * 'a'", "[0] * 1000001", "(0,) * 1000001"):
        assert "would be too long: 1,000,001 items" in str(failing(source))
    # refused before anything is built
    assert "too long" in str(failing("'a' * (10 ** 12)"))
    assert "too long" in str(failing("x * (10 ** 12)", x=[1, 2]))


@pytest.mark.parametrize("half", ["a" * 600_000, [0] * 600_000, (0,) * 600_000])
def test_length_limit_on_concatenation(half: Any) -> None:
    assert "would be too long: 1,200,000 items" in str(failing("x + x", x=half))


def test_length_limit_on_replace_sum_str_and_f_strings() -> None:
    big = "a" * 300_000
    assert run("s.replace('a', 'bb')", s="a" * 10) == "b" * 20
    assert "would be too long: 1,200,000 items" in str(failing("s.replace('a', 'aaaa')", s=big))
    assert "would be too long: 1,500,004 items" in str(failing("s.replace('', 'aaaa')", s=big))
    assert run("s.replace('a', 'aaaa', 10)", s=big) == "a" * 300_030  # count caps the growth
    assert "longer than 1,000,000" in str(failing("sum([x, x], [])", x=[0] * 600_000))
    assert "too long" in str(failing("str(x)", x=list(range(300_000))))
    assert "too long" in str(failing("f'{s}{s}{s}{s}'", s=big))


def test_other_guards() -> None:
    assert "ndigits -100000 is too large" in str(failing("round(5, -100000)"))
    assert "'%' string formatting is not allowed" in str(failing("'%s' % x", x=1))
    assert run("7 % x", x=4) == 3


def test_caller_data_is_not_limited_when_only_read() -> None:
    big = list(range(MAX_LENGTH + 10))
    assert run("len(rows) > 5 and rows[-1]", rows=big) == MAX_LENGTH + 9


# --- nesting ----------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert run("-" * (MAX_DEPTH - 1) + "1") == -1
    assert run("1" + " + 1" * (MAX_DEPTH - 1)) == MAX_DEPTH


def test_nesting_beyond_the_limit_is_refused_at_compile_time() -> None:
    message = rejected("-" * MAX_DEPTH + "1")
    assert "nested more than 100 levels deep (column 101 of" in message


@pytest.mark.parametrize(
    "source",
    [
        "-" * 100_000 + "1",
        "not " * 100_000 + "x",
        "1" + "+1" * 100_000,
        "a" + ".b" * 100_000,
        "[" * 250 + "]" * 250,
        "(" * 250 + "1" + ")" * 250,
        "f(" * 1000 + ")" * 1000,
    ],
)
def test_absurd_nesting_is_refused_cleanly(source: str) -> None:
    message = rejected(source)
    assert "nested" in message
    assert len(message) < 1000  # the expression is quoted shortened


def test_evaluating_with_little_stack_left_raises_expression_error() -> None:
    expression = compile_expression("-" * (MAX_DEPTH - 1) + "x", where=WHERE)
    limit = sys.getrecursionlimit()

    def deep(levels: int) -> Any:
        return deep(levels - 1) if levels else expression.evaluate({"x": 1})

    try:
        sys.setrecursionlimit(400)
        with pytest.raises(ExpressionError):
            deep(350)
    finally:
        sys.setrecursionlimit(limit)


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


def test_refusing_absurd_input_leaves_the_parser_usable() -> None:
    """CPython 3.11 breaks later ast.parse calls after a RecursionError inside it."""
    import ast

    for source in ("-" * 100_000 + "1", "1" + "+1" * 100_000, "not " * 50_000 + "x"):
        assert "nested" in rejected(source)
    assert isinstance(ast.parse("def f():\n    return [x + 1 for x in y]"), ast.Module)
    assert compile_expression("x + 1", where=WHERE).evaluate({"x": 1}) == 2
