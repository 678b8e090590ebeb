"""Template values reach a shell as environment variables, never as its code.

A value pasted into shell text is parsed by the shell, however it is quoted: ``shlex.quote``
keeps it one word outside quotes, but inside ``"..."`` its ``'`` are text and its ``$(...)``
runs, in a comment its newline starts a command, in a here-document its line ``EOF`` ends
the document, after a ``$`` it becomes ``$'...'``. So shell text is rendered with
:func:`mark` as the template's quote function: each value becomes a token holding it, the
text is scanned as the shell reads it (:func:`pardag.shellquote.place`), and each token is
replaced by a reference to an environment variable ``PARDAG_V<n>`` that holds the value,
written for the spot it landed in:

* outside quotes ``"$PARDAG_V1"`` (one word, never split or globbed, as ``shlex.quote`` gave);
* in ``"..."`` and unquoted here-documents ``${PARDAG_V1}``; in ``'...'`` ``'"$PARDAG_V1"'``
  (close, reference, reopen); in ``$'...'`` (bash) ``'"$PARDAG_V1"$'``; in a comment an
  inert ``$PARDAG_V1``; after an operator in ``${X:-...}`` ``"$PARDAG_V1"``.

The shell expands a reference to the value and never parses that value again, with one
exception: where bash evaluates arithmetic (``$((...))``, ``((...))``, ``let``, an array
subscript, ``-eq``/``-lt``... in ``[[ ]]``) it evaluates the *contents* of a variable too,
and ``a[$(cmd)]`` there runs ``cmd``; a value landing there must be an integer. Spots where
no reference can stay data are refused, naming the placeholder and the fix (see
:class:`pardag.shellquote.Misplaced`); :func:`text_problems` finds them at validation when
the template has no ``{% %}`` tags. A script for another interpreter (``#!/usr/bin/env
python3``) or code given to one (``python3 -c``) takes no placeholder at all: its values come
through ``env:``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from pardag.errors import ArgumentError
from pardag.shellquote import MARK, Misplaced, place
from pardag.templates import is_template, parse

__all__ = [
    "ANSI_SHELLS",
    "ENV_PREFIX",
    "SHELLS",
    "ShellValues",
    "argv_problems",
    "code_reader",
    "interpreter",
    "is_shell",
    "mark",
    "program",
    "shell_text",
    "text_problems",
]

ENV_PREFIX = "PARDAG_V"
"""The environment variables holding a step's template values: ``PARDAG_V1``, ``PARDAG_V2``..."""

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "yash", "posh"})
"""Programs whose text is shell text (by the name of the program, any path)."""
ANSI_SHELLS = frozenset({"bash", "zsh", "ksh", "ksh93", "mksh"})
"""Shells that read ``$'...'`` as bash does (dash reads ``$`` then ``'...'``)."""

_CODE_FLAGS = {
    "python": ("-c",),
    "pypy": ("-c",),
    "node": ("-e", "-p", "--eval", "--print"),
    "nodejs": ("-e", "-p", "--eval", "--print"),
    "deno": ("eval",),
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "lua": ("-e",),
    "luajit": ("-e",),
    "Rscript": ("-e",),
    "osascript": ("-e",),
    "pwsh": ("-c", "-Command"),
}
"""Interpreters, and the flags after which their code comes as an argument."""

_MAX_ENV_STRING = 128 * 1024
"""Bytes one ``NAME=value`` of the environment may take on Linux (MAX_ARG_STRLEN)."""
_INTEGER = re.compile(r"[+-]?[0-9]+")
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_COMMENT = re.compile(r"\{##.*?##\}", re.DOTALL)
_SHORT = 60


def mark(value: str) -> str:
    """The token standing for ``value`` in rendered shell text (the template's quote function).

    It holds the value hex-encoded, so that rendering stays a pure function (Jinja2 folds
    constants at compile time) and no value can end its token early."""
    return MARK + value.encode("utf-8", "surrogatepass").hex() + MARK


def _unmark(token: str) -> str:
    return bytes.fromhex(token[1:-1]).decode("utf-8", "surrogatepass")


def _short(value: str) -> str:
    return repr(value) if len(value) <= _SHORT else repr(value[:_SHORT]) + "..."


def program(word: Any) -> str:
    """The name of a program as given (``/usr/bin/python3.12`` -> ``python3.12``)."""
    return str(word).rstrip("/").rsplit("/", 1)[-1]


def _family(name: str) -> str:
    """``python3.12`` -> ``python``, ``lua5.4`` -> ``lua``: the name without its version."""
    return name.rstrip("0123456789.") or name


def is_shell(word: Any) -> bool:
    """Whether ``word`` names a shell; an unknown program counts as one unless it is a known
    interpreter of another language (``python3``, ``node``...)."""
    name = program(word)
    return name in SHELLS or _family(name) not in _CODE_FLAGS


def interpreter(script: str) -> str | None:
    """The program a script's ``#!`` line runs (through ``env`` too), None without one."""
    if not script.startswith("#!"):
        return None
    words = script[2:].split("\n", 1)[0].split()
    if words and program(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return program(words[0]) if words else None


def _program_at(argv: Sequence[Any]) -> int:
    """Where the program is in ``argv``: after ``env`` with its options and assignments."""
    i = 0
    if argv and isinstance(argv[0], str) and program(argv[0]) == "env":
        i = 1
        while (
            i < len(argv)
            and isinstance(argv[i], str)
            and (argv[i].startswith("-") or "=" in argv[i])
        ):
            i += 1
    return i


def _code_after(argv: Sequence[Any], at: int, flags: tuple[str, ...]) -> int | None:
    """The index of the code argument of ``argv[at:]`` (``PROGRAM [options] FLAG CODE``)."""
    j, seen = at + 1, False
    while j < len(argv) and isinstance(argv[j], str):
        word = argv[j]
        if seen or word == "--":
            return j + (word == "--" and not seen)
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            j += 2
            continue
        if _is_flag(word, flags):
            seen = True
        elif not word.startswith(("-", "+")) or word in ("-", "+"):
            return None
        j += 1
    return None


def shell_text(argv: Sequence[Any]) -> tuple[int, str] | None:
    """The index of TEXT in ``[SHELL, ..., -c, TEXT, ...]`` (``env`` before it allowed) and
    SHELL's name, where argv runs a shell on text; None otherwise."""
    at = _program_at(argv)
    if at >= len(argv) or not isinstance(argv[at], str) or program(argv[at]) not in SHELLS:
        return None
    text = _code_after(argv, at, ("-c",))
    return None if text is None else (text, program(argv[at]))


def code_reader(words: Sequence[Any], stdin: bool = False) -> str | None:
    """The program that reads the next word of a command as code, given the command's words
    so far (``eval``, ``sh -c``, ``timeout 5 bash -ec``, ``python3 -c``, ``node -e``); with
    ``stdin``, the program that reads the command's standard input as code (``bash <<EOF``,
    ``python3 - <<EOF``). None when the next word (or stdin) is data."""
    words = [str(w) for w in words]
    if words and program(words[0]) in ("eval", "trap") and not stdin:
        return program(words[0])
    for k, word in enumerate(words):
        name = program(word)
        flags = ("-c",) if name in SHELLS else _CODE_FLAGS.get(_family(name))
        if flags is None:
            continue
        rest = words[k + 1 :]
        if stdin and all(w.startswith("-") for w in rest):
            return name
        if not stdin and rest and _is_flag(rest[-1], flags):
            return f"{word} {rest[-1]}"
    return None


def _is_flag(word: str, flags: tuple[str, ...]) -> bool:
    """Whether ``word`` is one of ``flags``; ``-c`` also as ``-ec``, ``-lc``, ``-xc``..."""
    letters = word[1:]
    return word in flags or (
        "-c" in flags and word.startswith("-") and letters.isalpha() and "c" in letters
    )


def argv_problems(argv: Sequence[Any], field: str) -> list[str]:
    """Placeholders in code an argv hands to a program other than its own shell: ``sh -c``
    behind a wrapper (``timeout 5 sh -c``), ``python3 -c``, ``node -e``..."""
    found = shell_text(argv)
    own = None if found is None else found[0]
    out = []
    for at, word in enumerate(argv):
        reader = None if at == own or not is_template(word) else code_reader(argv[:at])
        if reader is not None:
            out.append(
                f"{field}: {word!r} is code for {reader}, and a placeholder in it would paste "
                f"the value into that code; pass the value as an argument after the code (sh -c "
                f"'echo \"$1\"' sh '{{{{ x }}}}', sys.argv[1], process.argv) or through env: "
                f"{{NAME: '{{{{ x }}}}'}} and read NAME there"
            )
    return out


def _placeholders(source: str) -> list[str] | None:
    """The ``{{ ... }}`` of ``source`` in order, when each renders exactly once (no tags)."""
    if "{%" in source:
        return None
    return _PLACEHOLDER.findall(_COMMENT.sub("", source))


def _raw_blocks(tree: nodes.Template) -> bool:
    """Whether ``{% filter %}`` or ``{% call %}`` write a result that skips the quoting."""
    return tree.find(nodes.FilterBlock) is not None or tree.find(nodes.CallBlock) is not None


@functools.lru_cache(maxsize=1024)
def _source_has_raw_blocks(source: str) -> bool:
    return "{%" in source and _raw_blocks(parse(source))


_RAW_BLOCK = (
    "{% filter %} and {% call %} blocks write their result as shell text, unquoted; apply "
    "the filter to the value instead ({{ x | upper }})"
)


def text_problems(source: Any, field: str, shell: str) -> list[str]:
    """What is wrong, before any run, with template ``source`` as shell text for ``shell``."""
    if not is_template(source):
        return []
    try:
        tree = parse(source)
    except TemplateSyntaxError:
        return []  # reported as a syntax problem
    if not is_shell(shell):
        return _other_language(tree, field, shell)
    out = [f"{field}: {_RAW_BLOCK}"] if _raw_blocks(tree) else []
    found = _placeholders(source)
    if found is None:
        return out
    probe = _PLACEHOLDER.sub(lambda _: mark("0"), _COMMENT.sub("", source))
    try:
        place(
            probe,
            lambda token, context, arithmetic: "",
            ansi=program(shell) in ANSI_SHELLS,
            reader=code_reader,
        )
    except Misplaced as exc:
        out.append(_message(field, exc, found))
    except ArgumentError as exc:
        out.append(f"{field}: {exc}")
    return out


def _other_language(tree: nodes.Template, field: str, language: str) -> list[str]:
    has_value = any(
        not isinstance(node, nodes.TemplateData)
        for output in tree.find_all(nodes.Output)
        for node in output.nodes
    )
    if not has_value:
        return []
    return [f"{field}: {_OTHER_LANGUAGE.format(language=language)}"]


_OTHER_LANGUAGE = (
    "a placeholder in code for {language} would paste the value into its code, and nothing "
    "quotes it for {language}; give the value through env: {{NAME: '{{{{ x }}}}'}} and read "
    "it there (os.environ['NAME'], process.env.NAME)"
)


def _message(where: str, exc: Misplaced, placeholders: list[str] | None) -> str:
    named = ""
    if placeholders is not None and exc.ordinal < len(placeholders):
        named = f" {placeholders[exc.ordinal]}"
    return f"{where}:{named} (line {exc.line}): {exc}"


class ShellValues:
    """One step attempt's values: each distinct value one ``PARDAG_V<n>`` variable."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def text(self, rendered: str, where: str, source: str, shell: str) -> str:
        """``rendered`` (shell text rendered with :func:`mark`) with each value a reference;
        raises :class:`~pardag.errors.ArgumentError` naming ``where`` and the placeholder."""
        if "\x00" in source:
            raise ArgumentError(f"{where}: the text holds a NUL character; remove it")
        if not is_shell(shell):
            if MARK in rendered:
                raise ArgumentError(f"{where}: {_OTHER_LANGUAGE.format(language=shell)}")
            return rendered
        if MARK in rendered and _source_has_raw_blocks(source):
            raise ArgumentError(f"{where}: {_RAW_BLOCK}")
        try:
            return place(
                rendered, self.reference, ansi=program(shell) in ANSI_SHELLS, reader=code_reader
            )
        except Misplaced as exc:
            raise ArgumentError(_message(where, exc, _placeholders(source))) from None
        except ArgumentError as exc:
            raise ArgumentError(f"{where}: {exc}") from None

    def reference(self, token: str, context: str, arithmetic: bool) -> str:
        """The text for the value of ``token`` landing in ``context``."""
        value = _unmark(token)
        if "\x00" in value:
            raise ArgumentError(
                "its value holds a NUL byte, which no environment variable (and no shell "
                "string) can hold; remove it first, e.g. | replace('\\x00', '')"
            )
        if arithmetic and _INTEGER.fullmatch(value) is None:
            raise ArgumentError(
                "it lands where bash evaluates arithmetic ($((...)), ((...)), let, an array "
                "subscript, -eq/-lt... in [[ ]]), which runs a $(...) hidden in a value, so its "
                f"value must be an integer; got {_short(value)}. Check the value, or compare "
                "it as text ([[ $x == ... ]])"
            )
        name = self._name(value)
        if arithmetic and context in ("bare", "word"):
            return f"${{{name}}}"  # a checked integer, which arithmetic takes unquoted
        return {
            "bare": f'"${name}"',
            "word": f'"${name}"',
            "double": f"${{{name}}}",
            "single": f"'\"${name}\"'",
            "ansi": f"'\"${name}\"$'",
            "comment": f"${name}",
        }[context]

    def _name(self, value: str) -> str:
        name = self._names.get(value)
        if name is None:
            name = self._names[value] = f"{ENV_PREFIX}{len(self._names) + 1}"
            size = len(name) + 2 + len(value.encode("utf-8", "surrogatepass"))
            if sys.platform.startswith("linux") and size > _MAX_ENV_STRING:
                raise ArgumentError(
                    f"its value is {size:,} bytes, over the 128 KiB one environment variable "
                    "can hold on Linux; write it to a file in an earlier step and pass the path"
                )
            self.env[name] = value
        return name
