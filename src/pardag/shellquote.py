"""Values written into shell text, quoted for the spot they land in.

Some engines' files expect ``$VAR`` to be replaced in the text before the shell reads it, so
that ``test '$myVar' = 'test123'`` compares the value even inside single quotes, where the
shell itself would not expand it. Pasting a value into shell text is how injections happen,
so :func:`substitute` scans the text as ``sh`` would and quotes each value for its context:

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

Text whose quoting the scanner cannot follow to its end (a quote left open) is refused with
an :class:`~pardag.errors.ArgumentError` saying where, rather than guessed at. Shell syntax
outside POSIX ``sh`` (bash's ``[[ ]]``, ``(( ))``, ``let``, array subscripts and ``<<<``
aside) is not modelled.

:func:`place` is the same walk for marked spots (:mod:`pardag.shellvalues` marks each
template value with a ``MARK``-delimited token): it tells a callback which context each
token landed in (see :func:`place`) and writes what it returns; spots where no reference
could stay data (the delimiter of a here-document, the body of a quoted one, nested
backquotes, the name in ``${...}``, right after a ``$`` or a ``\\``) raise
:class:`Misplaced`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pardag.errors import ArgumentError

__all__ = ["MARK", "Misplaced", "in_double_quotes", "in_single_quotes", "place", "substitute"]

MARK = "\x00"
"""Starts and ends a marked spot: no shell text can hold it (argv and files of text cannot
carry a NUL to a shell), so the author's text never forges one."""


class Misplaced(ArgumentError):
    """A marked spot where a value cannot be written safely: ``ordinal`` (0-based, in text
    order) says which one, ``line`` where, the message why and what to write instead."""

    def __init__(self, message: str, ordinal: int, line: int) -> None:
        super().__init__(message)
        self.ordinal = ordinal
        self.line = line

    def __reduce__(self) -> tuple[type[Misplaced], tuple[str, int, int]]:
        return (type(self), (str(self), self.ordinal, self.line))


def in_single_quotes(value: str) -> str:
    """``value`` for a spot inside ``'...'``: each ``'`` closes, is escaped and reopens."""
    return value.replace("'", "'\\''")


def in_double_quotes(value: str) -> str:
    """``value`` for a spot inside ``"..."``: the four characters special there escaped."""
    return re.sub(r'([\\"$`])', r"\\\1", value)


def _in_backquotes(text: str) -> str:
    """``text`` for a backquoted command, whose ``\\``, ``$`` and backquote lose a backslash."""
    return re.sub(r"([\\$`])", r"\\\1", text)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WORD_BREAK = " \t\n;&|()<>"
_HEREDOC = re.compile(r"<<(-?)[ \t]*")

# frame kinds
_BARE, _SINGLE, _DOUBLE, _BACKQUOTE, _COMMAND, _BRACE, _ARITH, _ANSI, _TEST, _HEREBODY = range(10)
_OPENERS = {
    _TEST: "[[",
    _SINGLE: "'",
    _DOUBLE: '"',
    _BACKQUOTE: "`",
    _COMMAND: "$(",
    _BRACE: "${",
    _ARITH: "$((",
    _ANSI: "$'",
}


@dataclass(slots=True)
class _Frame:
    """One quoting context: its kind, whether values may be written in it, where it began."""

    kind: int
    writes: bool
    start: int
    depth: int = 0  # open parentheses inside a command substitution or arithmetic
    cases: int = 0  # open ``case`` statements inside a command substitution


@dataclass(slots=True)
class _Heredoc:
    delimiter: str
    strip_tabs: bool
    quoted: bool  # ``<<'EOF'``, ``<<"EOF"``, ``<<\\EOF``: the body is not expanded


Place = Callable[[str, str, bool], str]
"""Given a marked token, its context and whether it is arithmetic there, the text to write."""

_ARITH_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_COMMAND_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "!", "{"})
_BRACE_NAME = re.compile(r"[!#]?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])")
_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*")
_ASSIGNED = re.compile(r"[^\]\s]*\]\+?=")
_WORD_CLOSE = frozenset(_WORD_BREAK) | {""}


class _Scanner:
    """One pass over the text, copying it to ``out`` with the values written in.

    With ``place``, every ``MARK``-delimited token is replaced by what ``place`` returns for
    its context (see :func:`place`); ``ansi`` says whether the shell reads ``$'...'`` as
    bash does (dash reads ``$`` then ``'...'``).
    """

    def __init__(
        self, text: str, values: Mapping[str, str], place: Place | None = None, ansi: bool = True
    ) -> None:
        self.text, self.values, self.place, self.ansi = text, values, place, ansi
        self.out: list[str] = []
        self.i = 0
        self.end = len(text)
        self.stack = [_Frame(_BARE, True, 0)]
        self.heredocs: list[_Heredoc] = []
        self.wrote = False
        self.ordinal = 0  # marked tokens met so far
        self.let_depth = 0  # the stack depth of a ``let`` command's words, 0 outside one
        self.ansi_escape = 0  # the line of a ``$'..\\'..'`` dash and bash read differently

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def run(self) -> str:
        self.scan()
        if len(self.stack) > 1 and self.wrote:
            frame = self.top
            raise ArgumentError(
                f"the {_OPENERS[frame.kind]} opened on line {self.line(frame.start)} is never "
                "closed, so where a value would land cannot be told; close it (or write "
                '"$VAR", which the shell expands itself)'
            )
        if self.ansi_escape and self.ordinal:
            raise self.misplaced(
                f"the $'...' on line {self.ansi_escape} holds \\', where dash and bash disagree "
                "about where it ends; run it with shell: bash, or quote with '...'"
            )
        return "".join(self.out)

    def scan(self) -> None:
        while self.i < self.end:
            kind = self.top.kind
            if self.place is not None and self.text[self.i] == MARK:
                self.marked(*self.context())
            elif kind in (_SINGLE, _ANSI):
                self.quoted(kind)
            elif kind in (_DOUBLE, _HEREBODY):
                self.double()
            else:
                self.bare()

    def line(self, at: int) -> int:
        return self.text.count("\n", 0, at) + 1

    # -- copying ----------------------------------------------------------------------------

    def copy(self, n: int = 1) -> None:
        self.out.append(self.text[self.i : self.i + n])
        self.i += n

    def push(self, kind: int, opener: int, writes: bool = True) -> None:
        self.stack.append(_Frame(kind, writes and self.top.writes, self.i))
        self.copy(opener)

    def pop(self, closer: int = 1) -> None:
        self.stack.pop()
        if len(self.stack) < self.let_depth:
            self.let_depth = 0
        self.copy(closer)

    # -- contexts ---------------------------------------------------------------------------

    def quoted(self, kind: int) -> None:
        """Inside ``'...'`` (nothing is special but the closing quote) or ``$'...'``."""
        char = self.text[self.i]
        if char == "'":
            self.pop()
        elif char == "\\" and kind == _ANSI:
            if not self.ansi and self.text.startswith("\\'", self.i):
                self.ansi_escape = self.ansi_escape or self.line(self.i)
            self.escaped()
        elif char == "$" and kind == _SINGLE:
            self.dollar()
        else:
            self.copy()

    def double(self) -> None:
        """Inside ``"..."``, or the body of an unquoted here-document (where ``"`` is text)."""
        char = self.text[self.i]
        if char == '"' and self.top.kind == _DOUBLE:
            self.pop()
        elif char == "\\":
            self.escaped()
        elif char == "`":
            self.push(_BACKQUOTE, 1)
        elif char == "$":
            self.dollar()
        else:
            self.copy()

    def bare(self) -> None:
        """Outside quotes: at the top, in ``$(...)``, backquotes, ``${...}``, ``$((...))``."""
        frame, char = self.top, self.text[self.i]
        if char == "\\":
            self.escape()
        elif char == "'":
            self.push(_SINGLE, 1)
        elif char == '"':
            self.push(_DOUBLE, 1)
        elif char == "`":
            if frame.kind == _BACKQUOTE:
                if frame.depth:  # a nested one ends with the outer one
                    self.stack.pop()
                self.pop()
            else:
                self.push(_BACKQUOTE, 1)
        elif char == "$":
            self.dollar()
        elif char == "}" and frame.kind == _BRACE:
            self.pop()
        elif char in "()" and frame.kind in (_COMMAND, _ARITH):
            self.paren(frame, char)
        elif frame.kind in (_BRACE, _ARITH):
            self.copy()
        else:
            self.command_text(frame, char)

    def command_text(self, frame: _Frame, char: str) -> None:
        """Outside quotes where commands are: comments, here-documents, ``[[``, ``((``,
        ``let``, and ``case`` inside ``$(...)``."""
        if char == "#" and self.word_start():
            self.comment()
        elif char == "\n":
            self.end_let()
            self.copy()
            self.here_bodies()
        elif self.text.startswith("<<", self.i) and not self.text.startswith("<<<", self.i):
            self.here_start()
        elif char in ";&|":
            self.end_let()
            self.copy()
        elif frame.kind == _TEST and self.text.startswith("]]", self.i) and self.word_start():
            self.pop(2)
        elif self.text.startswith("[[", self.i) and self.word_start() and self.word_ends(2):
            self.push(_TEST, 2)
        elif self.text.startswith("((", self.i) and self.command_start():
            self.push(_ARITH, 2)
        elif self.text.startswith("let", self.i) and self.word_ends(3) and self.command_start():
            self.let_depth = len(self.stack)
            self.copy(3)
        elif frame.kind == _COMMAND and self.word_start():
            self.case_word(frame)
        else:
            self.copy()

    def end_let(self) -> None:
        if len(self.stack) == self.let_depth:
            self.let_depth = 0

    def escape(self) -> None:
        """A backslash outside quotes; in backquotes, ``\\``` opens (or closes) a nested
        backquoted command, which no value is written into."""
        frame = self.top
        if frame.kind != _BACKQUOTE or not self.text.startswith("\\`", self.i):
            self.escaped()
        elif frame.depth:  # the nested one's end
            self.pop(2)
        else:
            self.push(_BACKQUOTE, 2, writes=False)
            self.top.depth = 1

    def escaped(self) -> None:
        """A backslash and the character it escapes; before a marked spot, a problem."""
        if self.place is not None and self.text.startswith(MARK, self.i + 1):
            raise self.misplaced(
                "a \\ right before a placeholder would escape the first character of its "
                "value; remove the \\"
            )
        self.copy(2)

    def paren(self, frame: _Frame, char: str) -> None:
        if char == "(":
            frame.depth += 1
            self.copy()
        elif frame.kind == _ARITH and frame.depth == 0:
            self.pop(2)  # the )) of $(( or ((
        elif frame.depth == 0 and not frame.cases:
            self.pop()
        else:
            frame.depth = max(0, frame.depth - 1)
            self.copy()

    def case_word(self, frame: _Frame) -> None:
        """``case`` ... ``esac`` inside ``$(...)``: its patterns' ``)`` close nothing."""
        word = _NAME.match(self.text, self.i)
        if word is None:
            self.copy()
            return
        end = word.end()
        if end == len(self.text) or self.text[end] in _WORD_BREAK:
            if word[0] == "case":
                frame.cases += 1
            elif word[0] == "esac":
                frame.cases = max(0, frame.cases - 1)
        self.copy(end - self.i)

    def word_start(self) -> bool:
        return self.i == 0 or self.text[self.i - 1] in _WORD_BREAK

    def word_ends(self, n: int) -> bool:
        return self.text[self.i + n : self.i + n + 1] in _WORD_CLOSE

    def command_start(self) -> bool:
        """Whether a command may start here: first in its line, after ``;``, ``&``, ``|``,
        ``(``, or a keyword such as ``then`` or ``do``."""
        before = self.text[: self.i].rstrip(" \t")
        if not before or before[-1] in "\n;&|(":
            return True
        words = before.split()
        return words[-1] in _COMMAND_KEYWORDS

    def comment(self) -> None:
        end = self.text.find("\n", self.i, self.end)
        self.copy_marked((self.end if end < 0 else end) - self.i, "comment")

    def copy_marked(self, n: int, context: str) -> None:
        """Copy ``n`` characters, each marked token in them placed as ``context``."""
        stop = self.i + n
        while self.place is not None and (at := self.text.find(MARK, self.i, stop)) >= 0:
            self.copy(at - self.i)
            self.marked(context)
        self.copy(stop - self.i)

    # -- here-documents ---------------------------------------------------------------------

    def here_start(self) -> None:
        """``<<WORD`` or ``<<-WORD``: its body follows the line (see :meth:`here_bodies`)."""
        opener = _HEREDOC.match(self.text, self.i)
        assert opener is not None
        self.copy(opener.end() - self.i)
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in _WORD_BREAK:
            quote = self.text[self.i]
            end = self.text.find(quote, self.i + 1) if quote in "'\"" else -1
            self.i = end + 1 if end > 0 else self.i + 1 + (quote == "\\")
        word = self.text[start : self.i]
        if self.place is not None and MARK in word:
            self.i = start + word.index(MARK)
            raise self.misplaced(
                "a placeholder cannot be a here-document's delimiter; write the delimiter out"
            )
        self.out.append(word)
        delimiter = re.sub(r"[\\'\"]", "", word)
        self.heredocs.append(_Heredoc(delimiter, opener[1] == "-", delimiter != word))

    def here_bodies(self) -> None:
        """After a newline: the bodies of the here-documents its line opened. A quoted one's
        is copied as it is; an unquoted one's is expanded by the shell, as in ``"..."``."""
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            start = self.i
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                    break
            body, self.i = min(self.i, len(self.text)), start
            if self.place is None or MARK not in self.text[start:body]:
                self.copy(body - start)
            elif doc.quoted:
                self.i = self.text.index(MARK, start)
                raise self.misplaced(
                    f"the shell does not expand the body of the quoted here-document "
                    f"<<'{doc.delimiter}', so a placeholder in it would stay text; unquote its "
                    f"delimiter (<<{doc.delimiter}) to have the value written in"
                )
            else:
                self.expanded_body(body)

    def expanded_body(self, body: int) -> None:
        """An unquoted here-document's body up to ``body``, scanned as ``"..."`` is."""
        outer_end, self.end = self.end, body
        self.stack.append(_Frame(_HEREBODY, True, self.i))
        self.scan()
        if len(self.stack) > 1 and self.top.kind != _HEREBODY:
            raise ArgumentError(
                f"the {_OPENERS[self.top.kind]} opened on line {self.line(self.top.start)} in "
                "a here-document is never closed there; close it"
            )
        self.stack.pop()
        self.end = outer_end

    # -- values -----------------------------------------------------------------------------

    def dollar(self) -> None:
        """``$``: a value to write, or the start of ``$(``, ``$((``, ``${``, ``$'``."""
        text, after = self.text, self.i + 1
        name = _NAME.match(text, after)
        braced = _BRACED.match(text, after)
        found = braced or name
        if found is not None and found[1 if braced else 0] in self.values and self.top.writes:
            self.write(self.values[found[1 if braced else 0]])
            self.i = found.end()
        elif self.top.kind == _SINGLE:
            self.copy()
        elif self.place is not None and text.startswith(MARK, after):
            self.i = after
            raise self.misplaced(
                "a $ right before a placeholder makes the shell read its value as syntax "
                "(${{ x }} renders $'...' under bash); drop the $: {{ x }} is the value"
            )
        elif text.startswith("((", after):
            self.push(_ARITH, 3, writes=False)
        elif text.startswith("(", after):
            self.push(_COMMAND, 2)
        elif text.startswith("{", after) and braced is None:
            self.push(_BRACE, 2, writes=False)
        elif text.startswith("'", after) and self.top.kind not in (_DOUBLE, _HEREBODY):
            self.push(_ANSI, 2, writes=False)
        else:
            self.copy()

    def write(self, value: str) -> None:
        kind = self.top.kind
        if kind == _SINGLE:
            quoted = in_single_quotes(value)
        elif kind == _DOUBLE:
            quoted = in_double_quotes(value)
        else:
            quoted = shlex.quote(value)
        if any(f.kind == _BACKQUOTE for f in self.stack):
            quoted = _in_backquotes(quoted)
        self.out.append(quoted)
        self.wrote = True

    # -- marked spots -----------------------------------------------------------------------

    def marked(self, context: str, arithmetic: bool = False) -> None:
        """The marked token at ``i``, replaced by what ``place`` gives for ``context``."""
        assert self.place is not None
        end = self.text.index(MARK, self.i + 1) + 1
        try:
            self.out.append(self.place(self.text[self.i : end], context, arithmetic))
        except ArgumentError as exc:
            raise self.misplaced(str(exc)) from None
        self.i = end
        self.ordinal += 1
        self.wrote = True

    def misplaced(self, message: str) -> Misplaced:
        return Misplaced(message, self.ordinal, self.line(self.i))

    def context(self) -> tuple[str, bool]:
        """Where the marked token at ``i`` lands, and whether bash evaluates it there as
        arithmetic; raises :class:`Misplaced` where no reference could stay data."""
        frame = self.top
        if any(f.kind == _BACKQUOTE and not f.writes for f in self.stack):
            raise self.misplaced(
                "a placeholder inside nested backquotes cannot be placed safely; write "
                "$(...) instead of `...`"
            )
        arithmetic = frame.kind == _ARITH or self.in_let() or self.subscript() or self.compared()
        if frame.kind == _SINGLE:
            return "single", arithmetic
        if frame.kind == _ANSI:
            if not self.ansi:
                raise self.misplaced(
                    "$'...' is bash syntax, which sh may not read as bash does; run it with "
                    "shell: bash, or write the placeholder in '...' or \"...\""
                )
            return "ansi", arithmetic
        if frame.kind == _BRACE:
            return "word", self.in_brace(frame)
        return ("double" if frame.kind in (_DOUBLE, _HEREBODY) else "bare"), arithmetic

    def in_let(self) -> bool:
        """In the words of ``let`` (each an arithmetic expression), not in a command inside."""
        if not self.let_depth or len(self.stack) < self.let_depth:
            return False
        inner = self.stack[self.let_depth :]
        return not any(f.kind in (_COMMAND, _BACKQUOTE) for f in inner)

    def code_frame(self) -> _Frame:
        """The innermost frame that is not a quote."""
        return next(f for f in reversed(self.stack) if f.kind not in (_SINGLE, _DOUBLE, _ANSI))

    def subscript(self) -> bool:
        """In the subscript of ``name[...]=`` (bash evaluates it as arithmetic)."""
        if self.code_frame().kind not in (_BARE, _COMMAND, _BACKQUOTE, _TEST):
            return False
        start = self.i
        while start > 0 and self.text[start - 1] not in _WORD_BREAK:
            start -= 1
        if self.top.kind in (_SINGLE, _DOUBLE, _ANSI) and self.top.start < start:
            return False  # the word is inside quotes: text, not an assignment
        end = self.text.index(MARK, self.i + 1) + 1
        return (
            _SUBSCRIPT.fullmatch(self.text, start, self.i) is not None
            and _ASSIGNED.match(self.text, end) is not None
        )

    def compared(self) -> bool:
        """An operand of ``-eq``, ``-lt``... in ``[[ ]]``, which bash evaluates as arithmetic."""
        test = self.code_frame()
        if test.kind != _TEST:
            return False
        end = self.text.index(MARK, self.i + 1) + 1
        before = self.text[test.start + 2 : self.i].split()
        if before and not self.text[self.i - 1].isspace():
            before.pop()  # the start of this operand
        after = self.text[end:].split(maxsplit=2)
        if after and not self.text[end].isspace():
            after.pop(0)  # the rest of this operand
        return bool(set(before[-1:] + after[:1]) & _ARITH_TESTS)

    def in_brace(self, frame: _Frame) -> bool:
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
    return _Scanner(text, values).run()


def place(text: str, put: Place, *, ansi: bool = True) -> str:
    """``text`` with each ``MARK``-delimited token replaced by ``put(token, context)``.

    ``context`` is where it landed: ``bare`` (outside quotes), ``double`` (in ``"..."`` or an
    unquoted here-document), ``single``, ``ansi`` (in ``$'...'``), ``word`` (after an
    operator in ``${...}``) or ``comment``; ``arithmetic`` whether bash evaluates it as
    arithmetic there (``$((...))``, ``((...))``, ``let``, a subscript, an operand of ``-eq``...
    in ``[[ ]]``), which runs a ``$(...)`` hidden in a value (``a[$(cmd)]``).

    Raises :class:`Misplaced` where no text could keep the value data, and
    :class:`~pardag.errors.ArgumentError` for text whose quoting does not close. ``ansi``:
    whether the shell reads ``$'...'`` as bash does.
    """
    if MARK not in text:
        return text
    return _Scanner(text, {}, put, ansi).run()
