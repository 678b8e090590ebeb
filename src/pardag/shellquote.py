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
outside POSIX ``sh`` (bash's ``[[ ]]`` and ``<<<`` aside) is not modelled.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from pardag.errors import ArgumentError

__all__ = ["in_double_quotes", "in_single_quotes", "substitute"]


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
_BARE, _SINGLE, _DOUBLE, _BACKQUOTE, _COMMAND, _BRACE, _ARITH, _ANSI = range(8)
_OPENERS = {
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


class _Scanner:
    """One pass over the text, copying it to ``out`` with the values written in."""

    def __init__(self, text: str, values: Mapping[str, str]) -> None:
        self.text, self.values = text, values
        self.out: list[str] = []
        self.i = 0
        self.stack = [_Frame(_BARE, True, 0)]
        self.heredocs: list[_Heredoc] = []
        self.wrote = False

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def run(self) -> str:
        while self.i < len(self.text):
            kind = self.top.kind
            if kind in (_SINGLE, _ANSI):
                self.quoted(kind)
            elif kind == _DOUBLE:
                self.double()
            else:
                self.bare()
        if len(self.stack) > 1 and self.wrote:
            frame = self.top
            line = self.text.count("\n", 0, frame.start) + 1
            raise ArgumentError(
                f"the {_OPENERS[frame.kind]} opened on line {line} is never closed, so where a "
                'value would land cannot be told; close it (or write "$VAR", which the shell '
                "expands itself)"
            )
        return "".join(self.out)

    # -- copying ----------------------------------------------------------------------------

    def copy(self, n: int = 1) -> None:
        self.out.append(self.text[self.i : self.i + n])
        self.i += n

    def push(self, kind: int, opener: int, writes: bool = True) -> None:
        self.stack.append(_Frame(kind, writes and self.top.writes, self.i))
        self.copy(opener)

    def pop(self, closer: int = 1) -> None:
        self.stack.pop()
        self.copy(closer)

    # -- contexts ---------------------------------------------------------------------------

    def quoted(self, kind: int) -> None:
        """Inside ``'...'`` (nothing is special but the closing quote) or ``$'...'``."""
        char = self.text[self.i]
        if char == "'":
            self.pop()
        elif char == "\\" and kind == _ANSI:
            self.copy(2)
        elif char == "$" and kind == _SINGLE:
            self.dollar()
        else:
            self.copy()

    def double(self) -> None:
        char = self.text[self.i]
        if char == '"':
            self.pop()
        elif char == "\\":
            self.copy(2)
        elif char == "`":
            self.push(_BACKQUOTE, 1)
        elif char == "$":
            self.dollar()
        else:
            self.copy()

    def bare(self) -> None:
        """Outside quotes: at the top, in ``$(...)``, backquotes, ``${...}`` or ``$((...))``."""
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
        elif char == "#" and self.word_start():
            self.comment()
        elif char == "\n":
            self.copy()
            self.here_bodies()
        elif self.text.startswith("<<", self.i) and not self.text.startswith("<<<", self.i):
            self.here_start()
        elif frame.kind == _COMMAND and self.word_start():
            self.case_word(frame)
        else:
            self.copy()

    def escape(self) -> None:
        """A backslash outside quotes; in backquotes, ``\\``` opens (or closes) a nested
        backquoted command, which no value is written into."""
        frame = self.top
        if frame.kind != _BACKQUOTE or not self.text.startswith("\\`", self.i):
            self.copy(2)
        elif frame.depth:  # the nested one's end
            self.pop(2)
        else:
            self.push(_BACKQUOTE, 2, writes=False)
            self.top.depth = 1

    def paren(self, frame: _Frame, char: str) -> None:
        if char == "(":
            frame.depth += 1
            self.copy()
        elif frame.kind == _ARITH and frame.depth == 0:
            self.pop(2)  # the )) of $((
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

    def comment(self) -> None:
        end = self.text.find("\n", self.i)
        self.copy((len(self.text) if end < 0 else end) - self.i)

    # -- here-documents ---------------------------------------------------------------------

    def here_start(self) -> None:
        """``<<WORD`` or ``<<-WORD``: its body, after this line, is copied as it is."""
        opener = _HEREDOC.match(self.text, self.i)
        assert opener is not None
        self.copy(opener.end() - self.i)
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in _WORD_BREAK:
            quote = self.text[self.i]
            end = self.text.find(quote, self.i + 1) if quote in "'\"" else -1
            self.i = end + 1 if end > 0 else self.i + 1 + (quote == "\\")
        word = self.text[start : self.i]
        self.out.append(word)
        self.heredocs.append(_Heredoc(re.sub(r"[\\'\"]", "", word), opener[1] == "-"))

    def here_bodies(self) -> None:
        """After a newline: the bodies of the here-documents its line opened, verbatim."""
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i : end]
                self.copy(end + 1 - self.i)
                if (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                    break

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
        elif text.startswith("((", after):
            self.push(_ARITH, 3, writes=False)
        elif text.startswith("(", after):
            self.push(_COMMAND, 2)
        elif text.startswith("{", after) and braced is None:
            self.push(_BRACE, 2, writes=False)
        elif text.startswith("'", after) and self.top.kind != _DOUBLE:
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


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``$NAME`` and ``${NAME}`` of ``values`` replaced, quoted for where it
    lands (see the module docstring); every other ``$`` is left for the shell.

    Raises :class:`~pardag.errors.ArgumentError` when a value was written into text whose
    quoting does not close, so that where it landed cannot be told.
    """
    if "$" not in text or not values:
        return text
    return _Scanner(text, values).run()
