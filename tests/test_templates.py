"""Templates in step params: names, typed single expressions, quoting, errors, caching."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any

import pytest

from pardag.errors import ExpressionError, PardagError
from pardag.kinds.base import RunContext
from pardag.templates import Sandbox, namespace, render, template_problems

WHERE = "flow.yaml:7: step 'call' url"


def names(**params: Any) -> dict[str, Any]:
    ctx = RunContext("run-1", "flow", params)
    return namespace({"fetch": {"id": 7, "items": [1, 2], "ok": True}, "count": 3}, ctx)


def failing(value: Any, **params: Any) -> str:
    with pytest.raises(ExpressionError) as info:
        render(value, names(**params), where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ": "), message
    assert info.value.where == WHERE
    return message


# --- names ------------------------------------------------------------------------------


def test_namespace_has_inputs_steps_params_trigger_env_and_extras() -> None:
    ctx = RunContext("r", "wf", {"amount": 5})
    ns = namespace({"a": 1}, ctx, item="x", params={"over": 1})
    assert ns["inputs"] == {"a": 1}
    assert ns["steps"] == {"a": {"output": 1}}
    assert ns["trigger"] == {"amount": 5}
    assert ns["params"] == {"over": 1}  # extras override
    assert ns["item"] == "x"
    assert ns["env"] == dict(os.environ)
    assert ns["env"] is not os.environ  # a snapshot: see test_readonly.py


def test_a_missing_environment_variable_does_not_list_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Errors reach logs, the store and (soon) API clients: the names of the machine's
    variables are not theirs to read. A close name is still suggested."""
    monkeypatch.setenv("PARDAG_SECRETLY_NAMED_TOKEN", "x")
    monkeypatch.setenv("DEPLOY_TARGET", "prod")
    message = failing("{{ env.DEPLOY_TARGT }}")
    assert "PARDAG_SECRETLY_NAMED_TOKEN" not in message and "PATH" not in message
    assert "the environment has no variable 'DEPLOY_TARGT'" in message
    assert "did you mean 'DEPLOY_TARGET'" in message


def test_every_name_is_readable_from_a_template() -> None:
    os.environ["PARDAG_TEMPLATE_TEST"] = "from-env"
    try:
        text = render(
            "{{ inputs.count }} {{ steps.fetch.output.id }} {{ params.n }} {{ trigger.n }} "
            "{{ env.PARDAG_TEMPLATE_TEST }}",
            names(n=9),
            where=WHERE,
        )
    finally:
        del os.environ["PARDAG_TEMPLATE_TEST"]
    assert text == "3 7 9 9 from-env"


# --- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ steps.fetch.output.id }}", 7),
        ("{{steps.fetch.output.id}}", 7),
        ("{{ inputs.fetch }}", {"id": 7, "items": [1, 2], "ok": True}),
        ("{{ inputs.fetch.items }}", [1, 2]),
        ("{{ inputs.fetch.ok }}", True),
        ("{{ params.missing | default(none) }}", None),
        ("{{ inputs.count * 2 }}", 6),
        ("{{ 'a' ~ inputs.count }}", "a3"),
    ],
)
def test_a_single_expression_keeps_its_type(template: str, expected: Any) -> None:
    result = render(template, names(), where=WHERE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("id={{ steps.fetch.output.id }}", "id=7"),
        ("{{ inputs.count }}{{ inputs.count }}", "33"),
        (" {{ inputs.count }}", " 3"),
        ("items={{ inputs.fetch.items }}", "items=[1, 2]"),
        ("ok={{ inputs.fetch.ok }} none={{ none }}", "ok=true none=null"),
        ("{{ inputs.fetch | tojson }}!", '{"id": 7, "items": [1, 2], "ok": true}!'),
        ("<{{ '<&>' | tojson }}>", '<"<&>">'),  # no HTML escaping
        ("{% for i in inputs.fetch['items'] %}[{{ i }}]{% endfor %}", "[1][2]"),
        ("{% if inputs.count > 2 %}big{% else %}small{% endif %}", "big"),
        ("line\n{{ inputs.count }}\n", "line\n3\n"),  # the trailing newline stays
        ("{## a comment ##}x{{ 1 }}", "x1"),
        ("echo ${#arr[@]} {{ inputs.count }}", "echo ${#arr[@]} 3"),  # shell's ${#x} is text
    ],
)
def test_anything_else_renders_to_text(template: str, expected: str) -> None:
    assert render(template, names(), where=WHERE) == expected


def test_containers_are_rendered_recursively_and_keep_their_shape() -> None:
    value = {
        "url": "https://api/{{ inputs.fetch.id }}",
        "headers": {"X-Count": "{{ inputs.count }}", "Plain": "no template {here}"},
        "list": ["{{ inputs.count }}", 5, None],
        "tuple": ("{{ inputs.fetch.ok }}",),
        "number": 1.5,
    }
    assert render(value, names(), where=WHERE) == {
        "url": "https://api/7",
        "headers": {"X-Count": 3, "Plain": "no template {here}"},
        "list": [3, 5, None],
        "tuple": (True,),
        "number": 1.5,
    }


def test_strings_without_template_markers_are_returned_as_they_are() -> None:
    for text in ("plain", "{ not: a template }", "%s {x}", "", "a }} b", "${#x}"):
        assert render(text, {}, where=WHERE) == text


def test_mapping_keys_win_over_dict_methods() -> None:
    assert render("{{ inputs.fetch.items }}", names(), where=WHERE) == [1, 2]


# --- quoting ----------------------------------------------------------------------------


def test_quote_applies_to_every_substituted_value_and_not_to_the_text() -> None:
    ns = names(name="a b; echo pwned", n=3)
    rendered = render(
        "printf '%s|' {{ params.name }} {{ params.n }}", ns, where=WHERE, quote=shlex.quote
    )
    assert rendered == "printf '%s|' 'a b; echo pwned' 3"
    # a lone expression is quoted too (it is going into a shell command)
    assert render("{{ params.name }}", ns, where=WHERE, quote=shlex.quote) == ("'a b; echo pwned'")


@pytest.mark.parametrize(
    "hostile",
    ["a b", "$(touch pwned)", "`touch pwned`", "x; touch pwned", "it's", '"q"', "*", "\n"],
)
def test_quoted_values_reach_a_real_shell_as_one_literal_argument(
    hostile: str, tmp_path: Any
) -> None:
    command = render(
        "printf '%s' {{ params.value }}",
        names(value=hostile),
        where=WHERE,
        quote=shlex.quote,
    )
    done = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout == hostile
    assert not (tmp_path / "pwned").exists()


# --- errors -----------------------------------------------------------------------------


def test_an_undefined_name_lists_the_names_and_suggests_one() -> None:
    message = failing("https://x/{{ parms.id }}")
    assert "name 'parms' is not defined" in message
    assert "available: env, inputs, params, secrets, steps, trigger" in message
    assert "did you mean 'params'?" in message
    assert "'https://x/{{ parms.id }}'" in message


def test_an_undefined_key_lists_the_keys() -> None:
    message = failing("{{ steps.fetc.output }}")
    assert "key 'fetc' not found; its keys: count, fetch; did you mean 'fetch'?" in message
    assert "key 'amonut' not found" in failing("x{{ params.amonut }}", amount=1)


def test_undefined_values_are_errors_not_empty_strings() -> None:
    failing("a{{ inputs.nothing }}b")
    failing("{% if params.flag %}x{% endif %}")


def test_syntax_errors_at_render_time_are_expression_errors() -> None:
    message = failing("{{ inputs.count }")
    assert "template syntax error" in message


def test_the_sandbox_refuses_internals_and_huge_values() -> None:
    assert "key '__class__' not found" in failing("{{ params.__class__.__mro__ }}")
    assert "unsafe" in failing("{{ ''.__class__ }}")
    assert "too long" in failing("{{ 'a' * 10 ** 9 }}")
    assert "exponent" in failing("x{{ 2 ** 100000 }}")


def test_other_failures_name_the_cause() -> None:
    message = failing("{{ 1 / inputs.count.zero }}")
    assert "no attribute or key 'zero'" in message
    assert "ZeroDivisionError" in failing("{{ 1 / 0 }}")


def test_expression_errors_are_pardag_errors() -> None:
    with pytest.raises(PardagError):
        render("{{ nope }}", {}, where=WHERE)
    message = failing("{{ nope }}")
    assert "available:" in message


# --- validation and caching -------------------------------------------------------------


def test_template_problems_finds_every_bad_template_in_a_value() -> None:
    problems = template_problems(
        {"url": "{{ x }", "ok": "{{ x }}", "list": ["{% if %}", 3], "plain": "{nope"},
        "step 'call'",
    )
    assert len(problems) == 2
    assert all(problem.startswith("step 'call': template syntax error") for problem in problems)
    assert "'{{ x }'" in problems[0]
    assert "'{% if %}'" in problems[1]


def test_template_problems_name_the_line_of_multi_line_templates() -> None:
    (problem,) = template_problems("echo 1\necho {{ x }\n", "step 's' script")
    assert "(line 2)" in problem


def test_valid_templates_have_no_problems() -> None:
    assert template_problems({"a": "{{ x.y | default(1) }}", "b": [1, None, "z"]}, "w") == []


def test_each_template_string_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    original = Sandbox.from_string

    def counting(self: Sandbox, source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(source)
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(Sandbox, "from_string", counting)
    template = "compiled once {{ inputs.count }} " + str(id(compiled))
    for _ in range(5):
        assert render(template, names(), where=WHERE).startswith("compiled once 3")
    assert compiled.count(template) == 1


@pytest.mark.parametrize(
    "source",
    ["{{ " + "(" * 400 + "1" + ")" * 400 + " }}", "{% if 1 %}" * 400 + "x" + "{% endif %}" * 400],
)
def test_a_template_nested_too_deeply_is_a_problem_not_a_crash(source: str) -> None:
    """Jinja2 compiles recursively: hundreds of levels used to end the command with
    "failed unexpectedly: RecursionError". Now it is a problem of the template, and reading
    what it reads (validation) does not crash either."""
    from pardag.reads import template_reads

    (problem,) = template_problems("echo " + source, "command")
    assert "nested too deeply to compile" in problem
    assert template_reads("echo " + source).names == frozenset()
    with pytest.raises(ExpressionError, match="nested too deeply"):
        render("echo " + source, names(), where=WHERE)
