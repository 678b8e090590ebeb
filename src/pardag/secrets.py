"""Secrets: values a run uses but never shows. Where they come from, and the masking of them.

A run's secrets are a table of name -> value (``Secrets``), resolved once before the run starts
from, in order: the values the caller gave (``run(secrets={...})``, a ``Secret`` param), then
each ``SecretSource`` (the ``--secrets-file`` / ``PARDAG_SECRETS_FILE`` file, then the
``PARDAG_SECRET_<NAME>`` environment variables). A source is a small protocol, so that a
service can plug in its own store of secrets per organisation.

The run reads the real values (templates' ``secrets.NAME``, shell steps' environment), while
every place a run's data leaves it (events, the run store, step logs, the ``RunResult``, the
CLI) goes through the run's ``Masker``, which writes ``***`` for every occurrence of every
value, and of its JSON-escaped, ``repr``-escaped and URL-encoded spellings.

This module is at the bottom of the layers: it imports nothing of pardag but the errors.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote, quote_plus

from pardag.errors import ArgumentError, SecretMissing, StepFailed

__all__ = [
    "ENV_PREFIX",
    "FILE_ENV",
    "KEY_ENV",
    "MASK",
    "MIN_LENGTH",
    "SECRETS_KEY",
    "EnvironmentSource",
    "FileSource",
    "Masker",
    "Secret",
    "SecretMissing",
    "SecretSource",
    "Secrets",
    "check_name",
    "declared",
    "default_sources",
    "refuse_shared",
    "secrets_of",
    "without_sources",
]

MASK = "***"
"""What a secret's value is replaced with wherever it would be shown or stored."""
ENV_PREFIX = "PARDAG_SECRET_"
"""``PARDAG_SECRET_TOKEN=...`` gives the secret ``TOKEN``."""
FILE_ENV = "PARDAG_SECRETS_FILE"
"""The environment variable naming a secrets file (as ``--secrets-file`` does)."""
KEY_ENV = "PARDAG_SECRET_KEY"
"""The key of the organisations' secrets kept in the store (``pardag.vault``): never itself a
run's secret, though it is spelled like one."""
MIN_LENGTH = 4
"""Shorter values are refused: masking ``ab`` would hide every ``ab`` in every log."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
"""In a double-quoted value: backslash-n, -t, -r; a backslash before another character
keeps that character (a double quote, a backslash)."""


class Secret:
    """A value to keep secret: ``str()`` and ``repr()`` show ``***``, never the value.

    Give one as a run param (``wf.run(params={"token": Secret("...")})``): the step reads the
    real value, while every output, log, event, error and the run store show ``***``.
    ``Secret.named("TOKEN")`` holds no value: the run takes it from its secret sources
    (``PARDAG_SECRET_TOKEN``, the secrets file), as a resumed run does.
    """

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str | None = None) -> None:
        if not isinstance(value, str):
            raise ArgumentError(f"Secret(...) takes a string, not {type(value).__name__}")
        self._value: str | None = value
        self.name = name

    @classmethod
    def named(cls, name: str) -> Secret:
        """A secret to take from the run's sources by ``name`` when the run starts."""
        secret = cls("", check_name(name))
        secret._value = None
        return secret

    def reveal(self) -> str | None:
        """The value itself (None for ``Secret.named``): only to hand it to what needs it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.name!r})" if self.name else f"Secret({MASK!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (to a worker) keep the value, not shown
        return (Secret, (self._value or "", self.name))


def check_name(name: Any, where: str = "a secret's name") -> str:
    """``name`` if it can be an environment variable's name (letters, digits, ``_``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ArgumentError(
            f"{where}: {name!r} is not a valid secret name; use letters, digits and _ "
            "(not starting with a digit), e.g. API_TOKEN"
        )
    return name


def declared(value: Any) -> tuple[tuple[str, ...], list[tuple[int | None, str]]]:
    """A file's top-level ``secrets:`` read: the names, and each problem (the list index it
    is at, None for the whole value; the message)."""
    if not isinstance(value, list):
        return (), [
            (None, f"secrets must be a list of secret names, e.g. [API_TOKEN], got {value!r}")
        ]
    names: list[str] = []
    problems: list[tuple[int | None, str]] = []
    for n, name in enumerate(value):
        try:
            names.append(check_name(name, "secrets"))
        except ArgumentError as exc:
            problems.append((n, str(exc)))
    return tuple(names), problems


@runtime_checkable
class SecretSource(Protocol):
    """Where a run may find a secret's value by name (the service plugs in its own)."""

    def get(self, name: str) -> str | None:
        """The value of secret ``name``, or None when this source has none."""

    def describe(self, name: str) -> str:
        """How to give ``name`` through this source, for the error when no source has it."""


class EnvironmentSource:
    """``PARDAG_SECRET_<NAME>`` environment variables (read when asked, not at import)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str | None:
        variable = ENV_PREFIX + name
        return None if variable == KEY_ENV else self._environ.get(variable)

    def describe(self, name: str) -> str:
        if ENV_PREFIX + name == KEY_ENV:
            return f"not through {KEY_ENV}, the key of the stored secrets, never given to a run"
        return f"set the environment variable {ENV_PREFIX}{name}"


def without_sources(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables secrets are read from (``PARDAG_SECRET_<NAME>``,
    ``PARDAG_SECRETS_FILE``): what a step's process inherits. A step gets a secret only where
    it asks for one (``{{ secrets.NAME }}``, a shellflow step's ``secrets:``)."""
    return {k: v for k, v in environ.items() if not k.startswith(ENV_PREFIX) and k != FILE_ENV}


class FileSource:
    """A dotenv-style file: ``NAME=value`` lines, ``#`` comments, optional ``export``, values
    in single quotes (as written) or double quotes (backslash escapes, as in JSON). Refused
    when other users may read it (its mode must be 0600 or 0400)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._values: dict[str, str] | None = None

    def get(self, name: str) -> str | None:
        if self._values is None:
            self._values = self._read()
        return self._values.get(name)

    def describe(self, name: str) -> str:
        return f"add a line {name}=... to the secrets file {self.path}"

    def _read(self) -> dict[str, str]:
        where = f"the secrets file {self.path}"
        try:
            with self.path.open(encoding="utf-8") as stream:
                refuse_shared(stream, where, self.path)
                text = stream.read()
        except OSError as exc:
            raise SecretMissing(
                f"cannot read {where}: {exc.strerror}; give a readable file"
            ) from None
        except UnicodeDecodeError:
            raise SecretMissing(f"{where} is not UTF-8 text; save it as UTF-8") from None
        return dict(_dotenv(text, str(self.path)))


def refuse_shared(
    stream: IO[str], where: str, path: Path, error: type[SecretMissing] = SecretMissing
) -> None:
    """Raise ``error`` when users other than its owner may read the open file ``stream``."""
    mode = os.fstat(stream.fileno()).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(
            f"{where} may be read by other users (mode {stat.S_IMODE(mode):04o}); "
            f"make it private with: chmod 600 {path}"
        )


def _dotenv(text: str, path: str) -> Iterator[tuple[str, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not _NAME.fullmatch(name):
            raise SecretMissing(
                f"{path}:{number}: expected NAME=value (a name of letters, digits and _); "
                "fix or remove the line"
            )
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]  # single quotes: as written
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[1]), value[1:-1])
        yield name, value


def default_sources(secrets_file: str | os.PathLike[str] | None = None) -> list[SecretSource]:
    """The secrets file (``secrets_file``, else ``PARDAG_SECRETS_FILE``), then the
    ``PARDAG_SECRET_<NAME>`` environment variables."""
    path = secrets_file or os.environ.get(FILE_ENV) or None
    sources: list[SecretSource] = [FileSource(path)] if path else []
    return [*sources, EnvironmentSource()]


class Masker:
    """Replaces every occurrence of each secret value (and of its escaped spellings: JSON,
    ``repr``, URL-encoded) with ``***``, the longest first. Empty: changes nothing, fast."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        spellings = {s for value in values if value for s in _spellings(value)}
        self._longest = max((len(s) for s in spellings), default=0)
        self._spellings = sorted(spellings, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in self._spellings)
        self._pattern = re.compile(alternatives) if spellings else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret as ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like ``value`` (strings, mappings, lists) with every secret in its
        strings (keys too) as ``***``; other values as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def error(self, error: StepFailed) -> StepFailed:
        """``error`` with its reason and traceback masked (its ``cause`` is the step's own
        exception, kept as it was for a Python caller)."""
        if self._pattern is None:
            return error
        reason, trace = self.text(error.reason), self.text(error.traceback)
        if reason == error.reason and trace == error.traceback:
            return error
        return type(error)(error.step, error.cause, reason, trace)

    def json(self, text: str | None) -> str | None:
        """JSON text with every secret in its strings as ``***`` (still valid JSON), unchanged
        when it holds none; text that is not JSON is masked as text."""
        if self._pattern is None or text is None or self._pattern.search(text) is None:
            return text  # holds no secret (in any spelling): exactly as it was
        try:
            decoded = json.loads(text)
        except ValueError:
            return self.text(text)
        return json.dumps(self.value(decoded), allow_nan=True)

    def safe_end(self, text: str) -> int:
        """How much of ``text`` may be handed on while more may follow: up to where a secret
        might begin that the next piece completes (a stream cut mid-secret keeps its tail)."""
        if self._pattern is None:
            return len(text)
        cut = len(text)
        for i in range(max(0, len(text) - self._longest + 1), len(text)):
            tail = text[i:]
            if any(s.startswith(tail) for s in self._spellings):
                cut = i
                break
        for match in self._pattern.finditer(text, max(0, cut - self._longest)):
            if match.start() < cut < match.end():  # a whole secret spans the cut: keep it out
                return match.end()
        return cut


def _spellings(value: str) -> set[str]:
    """The ways ``value`` is written in text a run produces."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        quote(value),
    }


def _ways(name: str, sources: Sequence[SecretSource]) -> str:
    ways = [s.describe(name) for s in sources]
    if not any(isinstance(s, FileSource) for s in sources):
        ways.append(
            f"put a line {name}=... in a secrets file given with --secrets-file FILE (or "
            f"{FILE_ENV})"
        )
    ways.append(f"from Python, pass run(secrets={{{name!r}: ...}})")
    return "; or ".join(ways)


SECRETS_KEY = "pardag.secrets"
"""Where a run keeps its ``Secrets`` in its ``RunContext`` (``secrets_of`` reads it)."""


class _HasShared(Protocol):
    def shared(self, key: str, factory: Any) -> Any: ...


def secrets_of(ctx: _HasShared) -> Secrets:
    """The secrets of the run ``ctx`` belongs to (none when it was given none)."""
    found: Secrets = ctx.shared(SECRETS_KEY, Secrets)
    return found


class Secrets(Mapping[str, str]):
    """A run's secrets by name, and the ``Masker`` of their values. ``params`` names the
    run params that are secrets (param -> secret name), which the store records as ``***``."""

    def __init__(
        self, values: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> None:
        self._values = dict(values or {})
        self.params = dict(params or {})
        self.masker = Masker(self._values.values())

    @classmethod
    def for_run(
        cls,
        declared: Iterable[str],
        given: Mapping[str, str | Secret | None] | Iterable[str] | None,
        params: dict[str, Any],
        sources: Sequence[SecretSource],
    ) -> Secrets:
        """The secrets of a run: those the workflow ``declared``, those ``given`` (a mapping
        of values, or names to take from ``sources``), and each ``Secret`` param (named after
        its param unless it has a name), whose value replaces it in ``params``."""
        if given is None:
            values: dict[str, str | Secret | None] = {}
        elif isinstance(given, Mapping):
            values = dict(given)
        elif isinstance(given, str):
            raise ArgumentError(
                f"secrets={given!r}: give a mapping of name to value, or a list of names"
            )
        else:
            values = dict.fromkeys(given)
        taken = {p: (v.name or p) for p, v in params.items() if isinstance(v, Secret)}
        for param, name in taken.items():
            values[check_name(name, f"the param {param!r}")] = params[param]
        found = cls.resolve(declared, values, sources)
        for param, name in taken.items():
            params[param] = found[name]
        return cls(found, taken)

    def recorded(self) -> dict[str, Any]:
        """What the run store keeps about them for a resumed run: their names, never values."""
        if not self._values:
            return {}
        return {"secrets": sorted(self._values), "secret_params": self.params}

    @staticmethod
    def resumed(
        recorded: dict[str, Any], given: Any, params: dict[str, Any]
    ) -> dict[str, str | Secret | None]:
        """The ``secrets`` option of a resumed run: the recorded names (taken from the sources
        again) under what the caller gives; the secret params become ``Secret.named``. Takes
        the secret entries out of ``recorded``, the run's recorded settings."""
        names = recorded.pop("secrets", None) or []
        for param, name in (recorded.pop("secret_params", None) or {}).items():
            params[param] = Secret.named(name)
        wanted: dict[str, str | Secret | None] = dict.fromkeys(names)
        if isinstance(given, Mapping):
            wanted.update(given)
        elif given is not None and not isinstance(given, str):
            wanted.update(dict.fromkeys(given))
        return wanted

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Secrets {sorted(self._values)}>"

    @classmethod
    def resolve(
        cls,
        needed: Iterable[str],
        given: Mapping[str, str | Secret | None],
        sources: Sequence[SecretSource],
    ) -> Secrets:
        """The value of each secret ``needed`` or ``given``: a given value first, then the
        first source that has one. A secret with no value (or a value too short to mask) is
        a ``SecretMissing`` naming it and every way to give it."""
        values: dict[str, str] = {}
        for name in dict.fromkeys([*needed, *given]):
            check_name(name)
            value = given.get(name)
            if isinstance(value, Secret):
                value = value.reveal()
            if value is None:
                value = next((v for s in sources if (v := s.get(name)) is not None), None)
            if value is None:
                raise SecretMissing(f"the secret {name!r} has no value; {_ways(name, sources)}")
            if not isinstance(value, str) or len(value) < MIN_LENGTH:
                raise SecretMissing(
                    f"the secret {name!r} must be a string of at least {MIN_LENGTH} "
                    "characters (a shorter one cannot be masked without hiding ordinary text)"
                )
            values[name] = value
        return cls(values)
