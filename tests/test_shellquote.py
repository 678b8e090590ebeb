"""``pardag.shellquote``: values written into shell text, each quoted for where it lands.

Every case runs the real ``sh``: a hostile value must arrive as written and never run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pardag.errors import ArgumentError
from pardag.shellquote import in_double_quotes, in_single_quotes, substitute

pytestmark = pytest.mark.timeout(60)

HOSTILE = [
    "'; touch X; '",
    "$(touch X)",
    "`touch X`",
    '"; touch X; "',
    "\\",
    "a\\'b",
    "line one\ntouch X\nline three",
    "*",
    "$HOME",
    "' \"$(touch X)\" '",
    "'\\''",
    "",
    "-n",
    "}; touch X; {",
    ") touch X (",
    "#; touch X",
    "EOF\ntouch X",
]
"""Values that would run ``touch X``, glob, expand or break quoting if pasted as they are."""

CONTEXTS = {
    "bare": ("printf %s $v", "{}"),
    "bare, braced, next to text": ("printf %s ${v}tail", "{}tail"),
    "single quotes": ("printf %s '$v'", "{}"),
    "single quotes, next to text": ("printf %s 'pre${v}post'", "pre{}post"),
    "double quotes": ('printf %s "$v"', "{}"),
    "double quotes, next to text": ('printf %s "pre${v}post"', "pre{}post"),
    "twice": ("printf %s \"$v\" '$v'", "{}{}"),
    "command substitution": ("printf %s \"$(printf %s '$v')\"", "{}"),
    "command substitution, bare": ('printf %s "$(printf %s $v)"', "{}"),
    "backquotes": ("printf %s \"`printf %s '$v'`\"", "{}"),
    "backquotes, double quotes": ('printf %s "`printf %s "$v"`"', "{}"),
    "backquotes, bare": ('printf %s "`printf %s $v`"', "{}"),
    "after a comment": ("# '$v'\nprintf %s '$v'", "{}"),
    "after a here-document": ("cat <<EOF\n$v\nEOF\nprintf %s '$v'", "{v}\n{}"),
}
"""Script text and what it prints, ``{}`` standing for the value."""


def sh(script: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["sh", "-c", script], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, (script, done.stderr)
    return done.stdout


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("context", list(CONTEXTS))
def test_a_hostile_value_arrives_as_written_and_never_runs(
    tmp_path: Path, context: str, value: str
) -> None:
    template, printed = CONTEXTS[context]
    trailing = context.startswith(("command", "backquotes"))  # $(...) drops final newlines
    if trailing and value.endswith("\n"):
        pytest.skip("command substitution drops trailing newlines")
    env = {"PATH": "/usr/bin:/bin", "v": value}
    out = sh(substitute(template, {"v": value}), tmp_path, env)
    assert out == printed.replace("{v}", value).replace("{}", value)
    assert not (tmp_path / "X").exists()


def test_names_not_given_are_left_for_the_shell(tmp_path: Path) -> None:
    script = "own=mine; printf %s \"$own|$HOME|${HOME}|$1|$@|$#|$v\" '$HOME'"
    text = substitute(script, {"v": "x"})
    assert text == "own=mine; printf %s \"$own|$HOME|${HOME}|$1|$@|$#|x\" '$HOME'"


def test_a_longer_name_is_another_variable() -> None:
    assert substitute("echo $vv ${v}v $v_1 $v.", {"v": "x"}) == "echo $vv xv $v_1 x."


@pytest.mark.parametrize(
    "script",
    [
        "# a comment mentions '$v'",
        "cat <<EOF\n'$v'\nEOF",
        "cat <<'EOF'\n'$v'\nEOF",
        "cat <<-EOF\n\t'$v'\n\tEOF",
        "echo ${v:-'$v'} ${#v} $((v + 1)) \\$v",
    ],
)
def test_spots_the_shell_does_not_read_as_quoted_are_left_alone(script: str) -> None:
    """Comments, here-documents, ``${v...}`` and ``$((...))``: the shell expands ``$v`` there
    from the environment (where it does), so the text is kept as written."""
    assert substitute(script, {"v": "'; touch X; '"}) == script


def test_case_patterns_in_a_command_substitution_close_nothing(tmp_path: Path) -> None:
    script = "x=a; printf %s \"$(case $x in a) printf %s '$v';; esac)\" '$v'"
    value = "'; touch X; '"
    assert sh(substitute(script, {"v": value}), tmp_path) == value * 2
    assert not (tmp_path / "X").exists()


def test_a_quote_left_open_is_refused_saying_where() -> None:
    with pytest.raises(ArgumentError, match=r"the ' opened on line 2 is never closed"):
        substitute("echo ok\necho '$v", {"v": "x"})
    assert substitute("echo '$HOME", {"v": "x"}) == "echo '$HOME"  # nothing written: as is


def test_the_quoting_functions() -> None:
    assert in_single_quotes("it's") == "it'\\''s"
    assert in_double_quotes('a"$`\\b') == 'a\\"\\$\\`\\\\b'
