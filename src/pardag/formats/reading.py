"""What the readers of other engines' files share: problems collected, each at its line.

A reader does not stop at the first problem: it notes each one (``Reader.problem``) and goes
on, so that one run shows the user everything to fix in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from pardag.errors import CycleError, Problem, ValidationError
from pardag.formats.document import Document
from pardag.model import Workflow

__all__ = ["KeyPath", "Reader", "hint", "line_of", "topological_order"]

KeyPath = tuple[str | int, ...]
"""Where a value is in the document: the keys and indexes leading to it."""


class Reader:
    """Reads one document, collecting problems instead of stopping at the first."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def problem(self, message: str, *key: str | int, step: str | None = None) -> None:
        self.problems.append(self.doc.problem(message, *key, step=step))

    def fail(self, message: str) -> NoReturn:
        """Raise ``message`` about the whole file: it is not this format, so nothing to read."""
        self.problem(message)
        raise ValidationError(self.doc.path, self.problems)

    def top(self, key: str, message: str) -> Mapping[str, Any]:
        """The document, which must be a mapping with a ``key`` list (else ``fail``)."""
        data = self.doc.data
        if not isinstance(data, Mapping) or not isinstance(data.get(key), list):
            self.fail(message)
        return data

    def unknown(
        self, data: Mapping[str, Any], known: Sequence[str], key: KeyPath, step: str | None = None
    ) -> None:
        """A problem for each field of ``data`` not in ``known``, with the closest one."""
        for name in data:
            if name not in known:
                fix = hint(str(name), known, "the fields are " + ", ".join(known))
                self.problem(f"unknown field {name!r}; {fix}", *key, name, step=step)

    def checked(self, wf: Workflow) -> Workflow:
        """Validate ``wf`` too, so the model's problems (cycles, ids) come out with ours.

        A step the reader already found problems with is not reported again by the model.
        """
        self.problems.sort(key=line_of)
        try:
            wf.validate()
        except CycleError as exc:
            raise CycleError(self.doc.path, [*self.problems, *exc.problems], exc.cycle) from None
        except ValidationError as exc:
            flagged = {p.step for p in self.problems}
            self.problems += [p for p in exc.problems if p.step is None or p.step not in flagged]
        if self.problems:
            raise ValidationError(self.doc.path, self.problems)
        return wf


def hint(word: str, options: Iterable[str], otherwise: str) -> str:
    """``did you mean 'x'?`` with the option closest to ``word``, else ``otherwise``."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm over ``deps`` (each name's dependencies), ties in their order.

    Names on a cycle are left out, so that validation can report the cycle itself.
    """
    waiting = {name: len(d) for name, d in deps.items()}
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, d in deps.items():
        for dep in d:
            dependents[dep].append(name)
    order = [name for name, count in waiting.items() if count == 0]
    for name in order:  # grows while it is walked
        for child in dependents[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                order.append(child)
    return order


def line_of(problem: Problem) -> int:
    """The line a problem is placed at (0 for the file as a whole), to list them in order."""
    _, _, line = (problem.where or "").rpartition(":")
    return int(line) if line.isdigit() else 0
