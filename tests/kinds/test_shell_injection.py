"""Issue 13 §1: a template value can never become shell syntax, wherever it lands.

Every payload below runs ``touch pwned`` (or creates ``pwned``) if a shell ever parses it
as code. Each lands in every context an author ordinarily writes a placeholder in (outside
quotes, ``"..."``, ``'...'``, a here-document, a comment, ``$(...)``, backquotes, ``${X:-}``,
``$'...'``, a script, ``sh -c`` in argv and in a task tree...), from a run param and from an
upstream output, run by the real ``sh`` (dash here) and ``bash``: each step must print the
value exactly as given, or fail with the error that names why (arithmetic, NUL), and the
canary file must never appear.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import RunResult, StepState, ValidationError, Workflow

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash"),
]

PAYLOADS = [
    # separators
    "; touch pwned",
    "x && touch pwned",
    "false || touch pwned",
    "| touch pwned",
    "& touch pwned &",
    # substitutions
    "$(touch pwned)",
    "`touch pwned`",
    "$(touch${IFS}pwned)",
    ";touch${IFS}pwned",
    "$IFS$(touch pwned)",
    "${x:-$(touch pwned)}",
    "$((a[$(touch pwned)]))",
    # newlines and carriage returns
    "x\ntouch pwned",
    "x\rtouch pwned",
    "x\r\ntouch pwned\r\n",
    "\\\ntouch pwned",
    "# comment\ntouch pwned",
    # quote breakouts
    "'; touch pwned; '",
    '"; touch pwned; "',
    "'\"$(touch pwned)\"'",
    "\"'$(touch pwned)'\"",
    "\\'; touch pwned; #",
    '\\"; touch pwned; #',
    "'\\''; touch pwned; '\\''",
    "}; touch pwned; {",
    ") ; touch pwned ; (",
    ")); touch pwned; ((",
    "]] && touch pwned; [[ 1",
    # here-document terminators
    "EOF\ntouch pwned\nEOF",
    "x\nEOF\ntouch pwned\ncat <<EOF\n",
    "\tEOF\ntouch pwned",
    # process substitution, brace expansion, redirections
    "<(touch pwned)",
    ">(touch pwned)",
    "{touch,pwned}",
    ";{touch,pwned}",
    ">pwned",
    "x >pwned",
    ">>pwned",
    "2>pwned",
    # ANSI-C quoting and arithmetic evaluation
    "$';touch pwned;'",
    "';touch pwned;$'",
    "a[$(touch pwned)]",
    "0 + x[$(touch pwned)]",
    # globs, tilde, options, non-ASCII
    "*",
    "~root",
    "-n",
    "é ünïcødé $(touch pwned)",
    # very long
    "A" * 100_000 + "$(touch pwned)",
]
"""48 values that run ``touch pwned`` (or create it) if pasted into shell code."""

NUL = "a\x00$(touch pwned)"
"""A value no environment variable (and no shell string) can hold."""

Expect = Callable[[str], str]


def _same(value: str) -> str:
    return value


def _hello(value: str) -> str:
    return f"Hello {value}!"


def _line(value: str) -> str:
    return value + "\n"


def _hello_line(value: str) -> str:
    return f"Hello {value}!\n"


def _substituted(value: str) -> str:
    return value.rstrip("\n")  # $(...) drops trailing newlines


CONTEXTS: dict[str, tuple[dict[str, Any], Expect]] = {
    "bare, sh": ({"command": "printf '%s' {{ X }}"}, _same),
    "bare, bash": ({"command": "printf '%s' {{ X }}", "shell": "bash"}, _same),
    "double quotes, sh": ({"command": "printf '%s' \"Hello {{ X }}!\""}, _hello),
    "double quotes, bash": ({"command": "printf '%s' \"Hello {{ X }}!\"", "shell": "bash"}, _hello),
    "single quotes, sh": ({"command": "printf '%s' 'Hello {{ X }}!'"}, _hello),
    "single quotes, bash": ({"command": "printf '%s' 'Hello {{ X }}!'", "shell": "bash"}, _hello),
    "here-document, sh": ({"command": "cat <<EOF\n{{ X }}\nEOF"}, _line),
    "here-document <<-, bash": (
        {"command": "cat <<-EOF\n\t{{ X }}\n\tEOF", "shell": "bash"},
        _line,
    ),
    "here-document in a script": ({"script": "cat <<EOF\nHello {{ X }}!\nEOF\n"}, _hello_line),
    "comment, sh": ({"command": "printf '%s' ok # {{ X }}\nprintf '%s' !"}, lambda v: "ok!"),
    "comment, bash script": (
        {"script": "# {{ X }}\nprintf '%s' ok\n", "shell": "bash"},
        lambda v: "ok",
    ),
    "command substitution": ({"command": "printf '%s' \"$(printf '%s' {{ X }})\""}, _substituted),
    "backquotes": ({"command": "printf '%s' \"`printf '%s' \"{{ X }}\"`\""}, _substituted),
    "${X:-...}, sh": ({"command": "printf '%s' \"${UNSET_NAME:-{{ X }}}\""}, _same),
    "${X:-...} bare, bash": (
        {"command": "printf '%s' ${UNSET_NAME:-{{ X }}}", "shell": "bash"},
        _same,
    ),
    "$'...', bash": ({"command": "printf '%s' $'<{{ X }}>'", "shell": "bash"}, lambda v: f"<{v}>"),
    "case pattern": ({"command": "case {{ X }} in *) printf '%s' ok;; esac"}, lambda v: "ok"),
    "assignment in a script": ({"script": "v={{ X }}\nprintf '%s' \"$v\"\n"}, _same),
    "[[ == ]], bash": (
        {"command": "[[ {{ X }} == {{ X }} ]] && printf '%s' same", "shell": "bash"},
        lambda v: "same",
    ),
    "#!/bin/bash script": ({"script": "#!/bin/bash\nprintf '%s' \"{{ X }}\"\n"}, _same),
    "argument after sh -c TEXT": ({"command": "sh -c 'printf %s \"$1\"' sh {{ X }}"}, _same),
    "sh -c in argv": ({"command": ["sh", "-c", "printf '%s' {{ X }}"]}, _same),
    "bash -ec in argv, quoted": ({"command": ["bash", "-ec", "printf '%s' \"{{ X }}\""]}, _same),
    "sh -c in args (the task-tree form)": (
        {"command": ["sh"], "args": ["-c", "printf '%s' '{{ X }}'"]},
        _same,
    ),
    "env sh -c": ({"command": ["env", "A=1", "sh", "-c", "printf '%s' \"{{ X }}\""]}, _same),
}
"""Where a placeholder lands: the step's params (``X`` stands for the value's name) and
what the step prints for a value."""

ARITHMETIC = {
    "[[ -gt ]], bash": {"command": "[[ {{ X }} -gt 0 ]] && printf '%s' big", "shell": "bash"},
    "$((...))": {"command": "printf '%s' $(( {{ X }} + 1 ))"},
    "((...)), bash": {"command": "(( {{ X }} > 0 )) && printf '%s' big", "shell": "bash"},
    "let, bash": {"command": 'let "n = {{ X }}"; printf \'%s\' "$n"', "shell": "bash"},
    "subscript, bash": {"command": "a[{{ X }}]=1; printf '%s' \"${a[*]}\"", "shell": "bash"},
    "${a[...]}, bash": {"command": "a=(x y); printf '%s' \"${a[{{ X }}]}\"", "shell": "bash"},
    "[[ -v ]], bash": {
        "command": "a=(x y); [[ -v a[{{ X }}] ]] || printf '%s' unset",
        "shell": "bash",
    },
    "declare -i, bash": {"command": "declare -i n={{ X }}; printf '%s' \"$n\"", "shell": "bash"},
}
"""Where bash evaluates a variable's contents as arithmetic: only integers may land."""

SOURCES = {
    "param": "params.p{i}",
    "upstream output": "steps.up.output.p{i}",
}


def _with(params: dict[str, Any], name: str) -> dict[str, Any]:
    """``params`` with ``X`` replaced by ``name`` in every template."""

    def put(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{{ X }}", "{{ " + name + " }}")
        if isinstance(value, list):
            return [put(v) for v in value]
        return value

    return {key: put(value) for key, value in params.items()}


def _corpus(
    tmp_path: Path, contexts: dict[str, dict[str, Any]], values: list[str]
) -> dict[str, RunResult]:
    """Each source x context x value as one step (``c<context>-v<value>``) of one run per
    source, each in a folder of its own under ``tmp_path`` (where ``pwned`` must not appear)."""
    results = {}
    data = {f"p{i}": value for i, value in enumerate(values)}
    for s, (source, pattern) in enumerate(SOURCES.items()):
        wf = Workflow(f"injection-{s}")
        wf.add("up", lambda: dict(data))
        for c, params in enumerate(contexts.values()):
            for i in range(len(values)):
                cwd = tmp_path / f"{s}-{c}-{i}"
                cwd.mkdir()
                wf.add(
                    f"c{c}-v{i}",
                    kind="shell",
                    depends_on=["up"],
                    params={**_with(params, pattern.format(i=i)), "cwd": str(cwd)},
                )
        results[source] = wf.run(params=data, on_failure="continue")
    return results


def _hits(tmp_path: Path) -> list[str]:
    """The steps (source-context-value) whose payload ran."""
    return sorted(path.parent.name for path in tmp_path.glob("*/pwned"))


def test_no_payload_runs_in_any_context_from_any_source(tmp_path: Path) -> None:
    contexts = {name: params for name, (params, _) in CONTEXTS.items()}
    results = _corpus(tmp_path, contexts, PAYLOADS)
    wrong = []
    for source, result in results.items():
        for c, (context, (_, expect)) in enumerate(CONTEXTS.items()):
            for i, value in enumerate(PAYLOADS):
                step = result.steps[f"c{c}-v{i}"]
                out = (result.outputs.get(f"c{c}-v{i}") or {}).get("stdout")
                if step.state is not StepState.SUCCEEDED or out != expect(value):
                    wrong.append((source, context, value[:40], step.reason, (out or "")[:80]))
    assert _hits(tmp_path) == []
    assert wrong == []
    runs = len(SOURCES) * len(CONTEXTS) * len(PAYLOADS)
    assert runs >= 2000  # 2 sources x 25 contexts x 48 payloads, 0 hits


def test_arithmetic_takes_integers_and_refuses_every_payload(tmp_path: Path) -> None:
    """bash evaluates ``a[$(cmd)]`` in a variable's contents in arithmetic: a reference does
    not help there, so the value must be an integer, and anything else fails the step."""
    results = _corpus(tmp_path, ARITHMETIC, ["41", *PAYLOADS])
    for result in results.values():
        for c, context in enumerate(ARITHMETIC):
            assert result.steps[f"c{c}-v0"].state is StepState.SUCCEEDED, (
                context,
                result.steps[f"c{c}-v0"].reason,
            )
            for i in range(1, len(PAYLOADS) + 1):
                step = result.steps[f"c{c}-v{i}"]
                assert step.state is StepState.FAILED, (context, PAYLOADS[i - 1][:40])
                assert "so its value must be an integer" in (step.reason or ""), step.reason
                assert f"step 'c{c}-v{i}' params.command: {{{{" in (step.reason or "")
    assert _hits(tmp_path) == []


def test_a_nul_byte_fails_the_step_naming_it(tmp_path: Path) -> None:
    contexts = {name: params for name, (params, _) in CONTEXTS.items()}
    results = _corpus(tmp_path, contexts, [NUL])
    for result in results.values():
        for c in range(len(contexts)):
            step = result.steps[f"c{c}-v0"]
            assert step.state is StepState.FAILED
            assert f"step 'c{c}-v0' params." in (step.reason or "")
            assert "holds a NUL byte" in (step.reason or ""), step.reason
    assert _hits(tmp_path) == []


# -- spots refused before any run ------------------------------------------------------------

REFUSED = [
    ({"command": "echo ${{ params.v }}", "shell": "bash"}, "drop the $"),
    ({"command": 'echo "${{ params.v }}"'}, "drop the $"),
    ({"command": "cat <<'EOF'\n{{ params.v }}\nEOF"}, "unquote its delimiter (<<EOF)"),
    ({"command": "cat <<\\EOF\n{{ params.v }}\nEOF"}, "unquote its delimiter (<<EOF)"),
    ({"command": "cat <<{{ params.v }}\nx\n"}, "cannot be a here-document's delimiter"),
    ({"command": "echo \\{{ params.v }}"}, "remove the \\"),
    ({"command": "echo ${ {{- params.v }} }"}, "cannot be (part of) the name in ${...}"),
    ({"command": "echo `echo \\`echo {{ params.v }}\\``"}, "write $(...) instead"),
    ({"command": "echo $'{{ params.v }}'"}, "run it with shell: bash"),
    ({"command": "echo $'it\\'s' {{ params.v }}"}, "where dash and bash disagree"),
    ({"command": "echo {% filter upper %}{{ params.v }}{% endfilter %}"}, "apply the filter"),
    (
        {"script": "#!/usr/bin/env python3\nprint({{ params.a }}, {{ params.b }})\n"},
        "give the value through env: {NAME: '{{ x }}'}",
    ),
    ({"script": "#!/usr/bin/perl\nprint '{{ params.v }}';\n"}, "code for perl"),
    ({"command": "print({{ params.v }})", "shell": "python3"}, "code for python3"),
    ({"command": ["python3", "-c", "print({{ params.v }})"]}, "is code for python3 -c"),
    ({"command": ["node", "-e", "console.log('{{ params.v }}')"]}, "is code for node -e"),
    ({"command": ["timeout", "5", "sh", "-c", "echo {{ params.v }}"]}, "is code for sh -c"),
    ({"command": 'eval "echo {{ params.v }}"'}, "is code for eval"),
    ({"command": "trap 'echo {{ params.v }}' EXIT"}, "is code for trap"),
    ({"command": "sh -c 'echo {{ params.v }}'"}, "is code for sh -c"),
    ({"command": 'timeout 5 bash -ec "echo {{ params.v }}"'}, "is code for bash -ec"),
    ({"command": "python3 -c \"print('{{ params.v }}')\""}, "is code for python3 -c"),
    ({"command": "bash <<EOF\necho {{ params.v }}\nEOF"}, "is code for bash"),
    ({"script": "python3 - <<EOF\nprint('{{ params.v }}')\nEOF\n"}, "is code for python3"),
]


@pytest.mark.parametrize(("params", "fix"), REFUSED, ids=[str(p) for p, _ in REFUSED])
def test_a_spot_where_a_value_would_be_code_is_a_validation_problem(
    params: dict[str, Any], fix: str
) -> None:
    wf = Workflow("refused")
    wf.add("s", kind="shell", params=params)
    with pytest.raises(ValidationError) as caught:
        wf.validate()
    messages = [p.message for p in caught.value.problems]
    assert any(fix in m for m in messages), messages


def test_dollar_placeholder_problem_names_the_file_line_and_placeholder(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "steps:\n  greet:\n    kind: shell\n    shell: bash\n    command: |\n      echo hi\n"
        "      echo total=${{ params.total }}\n"
    )
    with pytest.raises(ValidationError) as caught:
        pardag.load(flow)
    text = str(caught.value)
    assert "flow.yaml:" in text
    assert "{{ params.total }} (line 2)" in text
    assert "drop the $" in text


def test_values_reach_another_language_through_env(tmp_path: Path) -> None:
    """The fix the problem names: ``env:`` then ``os.environ``; every payload arrives."""
    script = (
        "#!/usr/bin/env python3\nimport json, os\n"
        f"print(json.dumps({{'v': [os.environ[f'V{{i}}'] for i in range({len(PAYLOADS)})]}}))\n"
    )
    env = {f"V{i}": f"{{{{ params.p{i} }}}}" for i in range(len(PAYLOADS))}
    wf = Workflow("env")
    wf.add("py", kind="shell", params={"script": script, "env": env, "cwd": str(tmp_path)})
    result = wf.run(params={f"p{i}": v for i, v in enumerate(PAYLOADS)})
    assert result.outputs["py"]["v"] == PAYLOADS
    assert not (tmp_path / "pwned").exists()


def test_a_task_tree_sh_c_gets_values_as_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs' shell form for task trees, ``{"command": "sh", "args": ["-c", TEXT]}``, with
    values from an upstream task's output and from run params (tasks run in the current
    directory: ``tmp_path`` here)."""
    monkeypatch.chdir(tmp_path)
    data = {f"p{i}": v for i, v in enumerate(PAYLOADS)}
    up = {"command": "printf", "args": ["%s\\n", json.dumps(data)]}
    below = []
    for i in range(len(PAYLOADS)):
        text = f"printf '%s|%s' \"{{{{ steps.up.output.p{i} }}}}\" {{{{ params.p{i} }}}}"
        below.append(
            {
                "id": f"t{i}",
                "function": {
                    "name": "cli_command",
                    "input": {"command": "sh", "args": ["-c", text]},
                },
            }
        )
    tree = {
        "id": "tree",
        "tasks": [
            {"id": "up", "function": {"name": "cli_command", "input": up}, "next_tasks": below}
        ],
    }
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    result = pardag.load(path).run(params=data, on_failure="continue")
    for i, value in enumerate(PAYLOADS):
        assert result.outputs[f"t{i}"]["stdout"] == f"{value}|{value}", result.steps[f"t{i}"].reason
    assert not (tmp_path / "pwned").exists()


def test_the_bare_form_still_renders_one_word() -> None:
    """Outside quotes a value stays one word, unsplit and unglobbed, as with shlex.quote."""
    wf = Workflow("bare")
    wf.add("s", kind="shell", params={"command": "printf '<%s>' {{ params.v }} {{ params.v }}x"})
    result = wf.run(params={"v": "a  b *"})
    assert result.outputs["s"]["stdout"] == "<a  b *><a  b *x>"


ARGS_AFTER = {
    "after a comment": ("printf '%s' ok # note", lambda v: "ok"),
    "in an unterminated here-document": ("cat <<EOF\nHello", lambda v: f"Hello {v}"),
    "as words": ("printf '<%s>'", lambda v: f"<{v}>"),
}


@pytest.mark.parametrize("context", list(ARGS_AFTER))
def test_args_after_a_command_string_are_placed_like_values(tmp_path: Path, context: str) -> None:
    """``args`` are appended to a ``command`` string: where the text ends in a comment or a
    here-document body, a pasted ``'x\\ntouch pwned #'`` ran its second line."""
    command, expect = ARGS_AFTER[context]
    wf = Workflow("args")
    for i in range(len(PAYLOADS)):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        wf.add(
            f"a{i}",
            kind="shell",
            params={"command": command, "args": [f"{{{{ params.p{i} }}}}"], "cwd": str(cwd)},
        )
    result = wf.run(params={f"p{i}": v for i, v in enumerate(PAYLOADS)}, on_failure="continue")
    assert _hits(tmp_path) == []
    for i, value in enumerate(PAYLOADS):
        assert result.outputs[f"a{i}"]["stdout"] == expect(value), result.steps[f"a{i}"].reason


@pytest.mark.parametrize(
    "params",
    [
        {"command": ["printf", "%s", "{{ params.v }}"]},
        {"command": "printf '%s' \"$V\"", "env": {"V": "{{ params.v }}"}},
    ],
)
def test_a_nul_byte_in_an_argument_or_env_value_is_named(params: dict[str, Any]) -> None:
    wf = Workflow("nul")
    wf.add("s", kind="shell", params=params)
    step = wf.run(params={"v": NUL}).steps["s"]
    assert step.state is StepState.FAILED
    assert "step 's' params." in (step.reason or "")
    assert "holds a NUL byte" in (step.reason or ""), step.reason
