"""Values written into shell text, quoted for the spot they land in.

Some engines' files expect ``$VAR`` to be replaced in the text before the shell reads it, so
that ``test '$myVar' = 'test123'`` compares the value even inside single quotes, where the
shell itself would not expand it. Pasting a value into shell text is how injections happen,
so :func:`substitute` scans the text as ``sh`` would (:mod:`pardag.shellscan`) and quotes
each value for its context:

* bare (outside quotes): ``shlex.quote(value)``, one word whatever it holds;
* inside ``'...'``: the value with each ``'`` written ``'\\''`` (close, escaped quote, reopen);
* inside ``"..."``: the value with ``\\``, ``"``, ``$`` and the backquote escaped;
* inside a backquoted command: quoted as above for its context there, then with ``\\``, ``$``
  and the backquote escaped once more, as the shell unescapes them before it runs it.

``$(...)`` starts a bare context of its own (its quotes are its own); a newline, ``;``,
``*`` or ``$(...)`` in a value is only ever text. Places the scanner does not rewrite, and so
leaves ``$VAR`` for the shell: comments, here-document bodies, ``${VAR...}`` expressions other
than plain ``${VAR}``, ``$((...))`` and ``$'...'`` (the shell expands ``$VAR`` there from the
environment, when the variable is in it). A name not in ``values`` is always left alone: the
environment's ``$HOME``, the script's own variables, ``$1``, ``$@``.

:func:`place` is the same walk for marked spots (:mod:`pardag.shellvalues` marks each
template value with a ``MARK``-delimited token): it tells a callback which context each
token landed in and writes what it returns; spots where no reference could stay data (the
delimiter of a here-document, the body of a quoted one, nested backquotes, the name in
``${...}``, code for another program, right after a ``$`` or a ``\\``) raise
:class:`Misplaced`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pardag.shellscan import (
    ANSI,
    ARITH,
    BACKQUOTE,
    BARE,
    BRACE,
    COMMAND,
    DOUBLE,
    HEREBODY,
    MARK,
    SINGLE,
    TEST,
    WORD_BREAK,
    Frame,
    Misplaced,
    Place,
    Reader,
    Scanner,
    code_for,
    in_double_quotes,
    in_single_quotes,
)

__all__ = ["MARK", "Misplaced", "in_double_quotes", "in_single_quotes", "place", "substitute"]

_DECLARES = frozenset({"declare", "typeset", "local", "export", "readonly"})
_ARITH_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_BRACE_NAME = re.compile(r"[!#]?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])")
_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*")
_ASSIGNED = re.compile(r"[^\]\s]*\]\+?=")


def _declares_integer(words: list[str]) -> bool:
    """``declare -i``, ``local -i``...: what they assign is evaluated as arithmetic."""
    return (
        bool(words)
        and words[0] in _DECLARES
        and any(w.startswith("-") and w[1:].isalpha() and "i" in w for w in words[1:])
    )


class _Placer(Scanner):
    """The scanner that tells, for each marked token, the context it landed in."""

    def context(self) -> tuple[str, bool]:
        """Where the marked token at ``i`` lands, and whether bash evaluates it there as
        arithmetic; raises :class:`Misplaced` where no reference could stay data."""
        frame = self.top
        if any(f.kind == BACKQUOTE and not f.writes for f in self.stack):
            raise self.misplaced(
                "a placeholder inside nested backquotes cannot be placed safely; write "
                "$(...) instead of `...`"
            )
        code = self.code_frame()
        if code.word_at < 0 and code.kind not in (BRACE, ARITH):
            code.word_at = self.i  # the value starts a word
        reader = self.reader(code.words, False) if self.reader else None
        if reader is not None:
            raise self.misplaced(code_for(reader, "this word"))
        arithmetic = (
            frame.kind == ARITH
            or self.in_let()
            or _declares_integer(code.words)
            or self.subscript()
            or self.compared()
        )
        if frame.kind == SINGLE:
            return "single", arithmetic
        if frame.kind == ANSI:
            if not self.ansi:
                raise self.misplaced(
                    "$'...' is bash syntax, which sh may not read as bash does; run it with "
                    "shell: bash, or write the placeholder in '...' or \"...\""
                )
            return "ansi", arithmetic
        if frame.kind == BRACE:
            return "word", self.in_brace(frame)
        return ("double" if frame.kind in (DOUBLE, HEREBODY) else "bare"), arithmetic

    def in_let(self) -> bool:
        """In the words of ``let`` (each an arithmetic expression), not in a command inside."""
        if not self.let_depth or len(self.stack) < self.let_depth:
            return False
        inner = self.stack[self.let_depth :]
        return not any(f.kind in (COMMAND, BACKQUOTE) for f in inner)

    def subscript(self) -> bool:
        """In the subscript of ``name[...]=`` (bash evaluates it as arithmetic)."""
        if self.code_frame().kind not in (BARE, COMMAND, BACKQUOTE, TEST):
            return False
        start = self.i
        while start > 0 and self.text[start - 1] not in WORD_BREAK:
            start -= 1
        if self.top.kind in (SINGLE, DOUBLE, ANSI) and self.top.start < start:
            return False  # the word is inside quotes: text, not an assignment
        end = self.text.index(MARK, self.i + 1) + 1
        return (
            _SUBSCRIPT.fullmatch(self.text, start, self.i) is not None
            and _ASSIGNED.match(self.text, end) is not None
        )

    def compared(self) -> bool:
        """An operand of ``-eq``, ``-lt``... in ``[[ ]]``, which bash evaluates as arithmetic
        (and of ``-v``, a variable name whose subscript it evaluates)."""
        test = self.code_frame()
        if test.kind != TEST:
            return False
        end = self.text.index(MARK, self.i + 1) + 1
        before = self.text[test.start + 2 : self.i].split()
        if before and not self.text[self.i - 1].isspace():
            before.pop()  # the start of this operand
        after = self.text[end:].split(maxsplit=2)
        if after and not self.text[end].isspace():
            after.pop(0)  # the rest of this operand
        return bool(set(before[-1:] + after[:1]) & _ARITH_TESTS) or before[-1:] in (["-v"], ["-R"])

    def in_brace(self, frame: Frame) -> bool:
        """In ``${...}``: the word after an operator (``${X:-WORD}``) takes a value; its name
        cannot be one; a subscript or ``${X:OFFSET:LENGTH}`` is arithmetic (True)."""
        prefix = self.text[frame.start + 2 : self.i]
        if _SUBSCRIPT.fullmatch(prefix.lstrip("!#")):
            return True
        name = _BRACE_NAME.match(prefix)
        if name is None or name.end() == len(prefix):
            raise self.misplaced(
                "a placeholder cannot be (part of) the name in ${...}: the shell would look up "
                'the variable the value names; write the value itself ("{{ x }}")'
            )
        rest = re.sub(r"^\[[^\]]*\]", "", prefix[name.end() :])
        return rest.startswith(":") and rest[1:2] not in ("-", "=", "?", "+")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``$NAME`` and ``${NAME}`` of ``values`` replaced, quoted for where it
    lands (see the module docstring); every other ``$`` is left for the shell.

    Raises :class:`~pardag.errors.ArgumentError` when a value was written into text whose
    quoting does not close, so that where it landed cannot be told.
    """
    if "$" not in text or not values:
        return text
    return Scanner(text, values).run()


def place(text: str, put: Place, *, ansi: bool = True, reader: Reader | None = None) -> str:
    """``text`` with each ``MARK``-delimited token replaced by ``put(token, context)``.

    ``context`` is where it landed: ``bare`` (outside quotes), ``double`` (in ``"..."`` or an
    unquoted here-document), ``single``, ``ansi`` (in ``$'...'``), ``word`` (after an
    operator in ``${...}``) or ``comment``; ``arithmetic`` whether bash evaluates it as
    arithmetic there (``$((...))``, ``((...))``, ``let``, a subscript, an operand of ``-eq``...
    in ``[[ ]]``), which runs a ``$(...)`` hidden in a value (``a[$(cmd)]``).

    Raises :class:`Misplaced` where no text could keep the value data, and
    :class:`~pardag.errors.ArgumentError` for text whose quoting does not close. ``ansi``:
    whether the shell reads ``$'...'`` as bash does; ``reader`` tells which spots are code
    for another program (``eval``, ``sh -c``, ``python3 <<EOF``), refused too.
    """
    if MARK not in text:
        return text
    return _Placer(text, {}, put, ansi, reader).run()
