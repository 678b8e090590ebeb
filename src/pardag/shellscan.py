"""How ``sh`` reads shell text: a scanner that knows the quoting context at every point.

:class:`Scanner` walks the text once as ``sh`` would, copying it, with a stack of contexts:
bare (outside quotes), ``'...'``, ``"..."``, backquotes, ``$(...)``, ``${...}``,
``$((...))`` and ``((...))``, ``$'...'``, ``[[ ]]``, comments and here-document bodies, and
the words of the current command in each. :mod:`pardag.shellquote` builds on it: writing
``$VAR`` values quoted for their spot (:func:`~pardag.shellquote.substitute`) and placing
template values where they landed (:func:`~pardag.shellquote.place`).

Text whose quoting the scanner cannot follow to its end (a quote left open) is refused with
an :class:`~pardag.errors.ArgumentError` saying where, rather than guessed at. Shell syntax
outside POSIX ``sh`` (bash's ``[[ ]]``, ``(( ))``, ``let``, array subscripts and ``<<<``
aside) is not modelled.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pardag.errors import ArgumentError

__all__ = [
    "ANSI",
    "ARITH",
    "BACKQUOTE",
    "BARE",
    "BRACE",
    "COMMAND",
    "DOUBLE",
    "HEREBODY",
    "MARK",
    "SINGLE",
    "TEST",
    "WORD_BREAK",
    "Frame",
    "Misplaced",
    "Place",
    "Reader",
    "Scanner",
    "code_for",
    "in_double_quotes",
    "in_single_quotes",
]

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
WORD_BREAK = " \t\n;&|()<>"
_HEREDOC = re.compile(r"<<(-?)[ \t]*")

# frame kinds
BARE, SINGLE, DOUBLE, BACKQUOTE, COMMAND, BRACE, ARITH, ANSI, TEST, HEREBODY = range(10)
_OPENERS = {
    TEST: "[[",
    SINGLE: "'",
    DOUBLE: '"',
    BACKQUOTE: "`",
    COMMAND: "$(",
    BRACE: "${",
    ARITH: "$((",
    ANSI: "$'",
}


@dataclass(slots=True)
class Frame:
    """One quoting context: its kind, whether values may be written in it, where it began."""

    kind: int
    writes: bool
    start: int
    depth: int = 0  # open parentheses inside a command substitution or arithmetic
    cases: int = 0  # open ``case`` statements inside a command substitution
    words: list[str] = field(default_factory=list)  # the current command's words so far
    word_at: int = -1  # where the word being read began, -1 between words


@dataclass(slots=True)
class _Heredoc:
    delimiter: str
    strip_tabs: bool
    quoted: bool  # ``<<'EOF'``, ``<<"EOF"``, ``<<\\EOF``: the body is not expanded
    reader: str | None  # the program that reads the body as code (``sh <<EOF``), if any


Place = Callable[[str, str, bool], str]
"""Given a marked token, its context and whether it is arithmetic there, the text to write."""
Reader = Callable[[list[str], bool], "str | None"]
"""Given a command's words before a spot (and whether the spot is its standard input), the
program that reads that spot as code (``eval``, ``sh -c``, ``python3 -c``), if any."""

_COMMAND_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "!", "{"})
_WORD_CLOSE = frozenset(WORD_BREAK) | {""}


def _unquoted(word: str) -> str:
    return re.sub(r"[\\'\"]", "", word)


def _track_word(frame: Frame, text: str, i: int) -> None:
    """Keep ``frame.words``, the words of its current command, up to ``text[i]``."""
    char = text[i]
    if char in WORD_BREAK:
        if frame.word_at >= 0:
            frame.words.append(_unquoted(text[frame.word_at : i]))
            frame.word_at = -1
        if char not in " \t<>":
            frame.words.clear()
    elif frame.word_at < 0:
        frame.word_at = i


def code_for(reader: str, spot: str) -> str:
    return (
        f"{spot} is code for {reader}, which would parse the value as code; pass the value "
        "as an argument after the code (sh -c 'echo \"$1\"' sh {{ x }}), or put it in env: "
        "{NAME: '{{ x }}'} and read $NAME there"
    )


class Scanner:
    """One pass over the text, copying it to ``out`` with the values written in.

    With ``place``, every ``MARK``-delimited token is replaced by what ``place`` returns for
    its context (see :func:`pardag.shellquote.place`); ``ansi`` says whether the shell reads
    ``$'...'`` as bash does (dash reads ``$`` then ``'...'``).
    """

    def __init__(
        self,
        text: str,
        values: Mapping[str, str],
        place: Place | None = None,
        ansi: bool = True,
        reader: Reader | None = None,
    ) -> None:
        self.text, self.values, self.place, self.ansi = text, values, place, ansi
        self.reader = reader
        self.out: list[str] = []
        self.i = 0
        self.end = len(text)
        self.stack = [Frame(BARE, True, 0)]
        self.heredocs: list[_Heredoc] = []
        self.wrote = False
        self.ordinal = 0  # marked tokens met so far
        self.let_depth = 0  # the stack depth of a ``let`` command's words, 0 outside one
        self.ansi_escape = 0  # the line of a ``$'..\\'..'`` dash and bash read differently

    @property
    def top(self) -> Frame:
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
            elif kind in (SINGLE, ANSI):
                self.quoted(kind)
            elif kind in (DOUBLE, HEREBODY):
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
        self.stack.append(Frame(kind, writes and self.top.writes, self.i))
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
        elif char == "\\" and kind == ANSI:
            if not self.ansi and self.text.startswith("\\'", self.i):
                self.ansi_escape = self.ansi_escape or self.line(self.i)
            self.escaped()
        elif char == "$" and kind == SINGLE:
            self.dollar()
        else:
            self.copy()

    def double(self) -> None:
        """Inside ``"..."``, or the body of an unquoted here-document (where ``"`` is text)."""
        char = self.text[self.i]
        if char == '"' and self.top.kind == DOUBLE:
            self.pop()
        elif char == "\\":
            self.escaped()
        elif char == "`":
            self.push(BACKQUOTE, 1)
        elif char == "$":
            self.dollar()
        else:
            self.copy()

    def bare(self) -> None:
        """Outside quotes: at the top, in ``$(...)``, backquotes, ``${...}``, ``$((...))``."""
        frame, char = self.top, self.text[self.i]
        if frame.kind not in (BRACE, ARITH):
            _track_word(frame, self.text, self.i)
        if char == "\\":
            self.escape()
        elif char == "'":
            self.push(SINGLE, 1)
        elif char == '"':
            self.push(DOUBLE, 1)
        elif char == "`":
            if frame.kind == BACKQUOTE:
                if frame.depth:  # a nested one ends with the outer one
                    self.stack.pop()
                self.pop()
            else:
                self.push(BACKQUOTE, 1)
        elif char == "$":
            self.dollar()
        elif char == "}" and frame.kind == BRACE:
            self.pop()
        elif char in "()" and frame.kind in (COMMAND, ARITH):
            self.paren(frame, char)
        elif frame.kind in (BRACE, ARITH):
            self.copy()
        else:
            self.command_text(frame, char)

    def command_text(self, frame: Frame, char: str) -> None:
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
        elif frame.kind == TEST and self.text.startswith("]]", self.i) and self.word_start():
            self.pop(2)
        elif self.text.startswith("[[", self.i) and self.word_start() and self.word_ends(2):
            self.push(TEST, 2)
        elif self.text.startswith("((", self.i) and self.command_start():
            self.push(ARITH, 2)
        elif self.text.startswith("let", self.i) and self.word_ends(3) and self.command_start():
            self.let_depth = len(self.stack)
            self.copy(3)
        elif frame.kind == COMMAND and self.word_start():
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
        if frame.kind != BACKQUOTE or not self.text.startswith("\\`", self.i):
            self.escaped()
        elif frame.depth:  # the nested one's end
            self.pop(2)
        else:
            self.push(BACKQUOTE, 2, writes=False)
            self.top.depth = 1

    def escaped(self) -> None:
        """A backslash and the character it escapes; before a marked spot, a problem."""
        if self.place is not None and self.text.startswith(MARK, self.i + 1):
            raise self.misplaced(
                "a \\ right before a placeholder would escape the first character of its "
                "value; remove the \\"
            )
        self.copy(2)

    def paren(self, frame: Frame, char: str) -> None:
        if char == "(":
            frame.depth += 1
            self.copy()
        elif frame.kind == ARITH and frame.depth == 0:
            self.pop(2)  # the )) of $(( or ((
        elif frame.depth == 0 and not frame.cases:
            self.pop()
        else:
            frame.depth = max(0, frame.depth - 1)
            self.copy()

    def case_word(self, frame: Frame) -> None:
        """``case`` ... ``esac`` inside ``$(...)``: its patterns' ``)`` close nothing."""
        word = _NAME.match(self.text, self.i)
        if word is None:
            self.copy()
            return
        end = word.end()
        if end == len(self.text) or self.text[end] in WORD_BREAK:
            if word[0] == "case":
                frame.cases += 1
            elif word[0] == "esac":
                frame.cases = max(0, frame.cases - 1)
        self.copy(end - self.i)

    def word_start(self) -> bool:
        return self.i == 0 or self.text[self.i - 1] in WORD_BREAK

    def word_ends(self, n: int) -> bool:
        return self.text[self.i + n : self.i + n + 1] in _WORD_CLOSE

    def command_start(self) -> bool:
        """Whether a command may start here: first in its line, after ``;``, ``&``, ``|``,
        ``(``, or a keyword such as ``then`` or ``do``."""
        line = self.text.rfind("\n", 0, self.i) + 1
        before = self.text[line : self.i].rstrip(" \t")
        if not before or before[-1] in ";&|(":
            return True
        return before.split()[-1] in _COMMAND_KEYWORDS

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
        while self.i < len(self.text) and self.text[self.i] not in WORD_BREAK:
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
        delimiter = _unquoted(word)
        reader = self.reader(self.code_frame().words, True) if self.reader else None
        self.heredocs.append(_Heredoc(delimiter, opener[1] == "-", delimiter != word, reader))

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
            elif doc.reader:
                self.i = self.text.index(MARK, start)
                raise self.misplaced(code_for(doc.reader, "the body of this here-document"))
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
        self.stack.append(Frame(HEREBODY, True, self.i))
        self.scan()
        if len(self.stack) > 1 and self.top.kind != HEREBODY:
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
        elif self.top.kind == SINGLE:
            self.copy()
        elif self.place is not None and text.startswith(MARK, after):
            self.i = after
            raise self.misplaced(
                "a $ right before a placeholder makes the shell read its value as syntax "
                "(${{ x }} renders $'...' under bash); drop the $: {{ x }} is the value"
            )
        elif text.startswith("((", after):
            self.push(ARITH, 3, writes=False)
        elif text.startswith("(", after):
            self.push(COMMAND, 2)
        elif text.startswith("{", after) and braced is None:
            self.push(BRACE, 2, writes=False)
        elif text.startswith("'", after) and self.top.kind not in (DOUBLE, HEREBODY):
            self.push(ANSI, 2, writes=False)
        else:
            self.copy()

    def write(self, value: str) -> None:
        kind = self.top.kind
        if kind == SINGLE:
            quoted = in_single_quotes(value)
        elif kind == DOUBLE:
            quoted = in_double_quotes(value)
        else:
            quoted = shlex.quote(value)
        if any(f.kind == BACKQUOTE for f in self.stack):
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

    def code_frame(self) -> Frame:
        """The innermost frame that is not a quote."""
        return next(f for f in reversed(self.stack) if f.kind not in (SINGLE, DOUBLE, ANSI))

    def context(self) -> tuple[str, bool]:
        """Where the marked token at ``i`` lands, and whether it is arithmetic there (see
        :func:`pardag.shellquote.place`, whose scanner says)."""
        raise NotImplementedError
