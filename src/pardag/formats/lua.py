"""Lua workflow files: a ``.lua`` file that sets a global table ``workflow = { steps = {...} }``.

The file is a program, so it is run, in a sandbox, to get its table: a fresh Lua runtime (lupa)
whose chunk sees only pure functions (``string``, ``table``, ``math``, ``utf8``, ``pairs``,
``error``...), never ``os``, ``io``, ``require``, ``load``, ``dofile``, ``package``, ``debug``
or the Python bridge; with a memory cap (``MAX_MEMORY``) and an instruction cap
(``MAX_INSTRUCTIONS``), so that ``while true do end`` fails with a clear problem, not a hang.

The table is converted to plain data (a table with keys 1..n is a list, any other a mapping)
and then read exactly as a native steps file (``pardag.formats.native``), after mapping each
step's ``language`` to a kind: ``lua``; ``shell``/``bash``/``sh`` (``code`` becomes the shell
kind's ``command``); ``python`` (``code``); ``javascript``/``js``/``node``/``nodejs``. A Lua
table has no order, so steps are added sorted by id: runs are the same every time.
Lines are found by scanning the text for ``id =`` (best effort, like TOML's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pardag.errors import MissingRuntime, Problem, ValidationError
from pardag.formats import native
from pardag.formats.document import MAX_DEPTH, Document, Key
from pardag.formats.languages import LANGUAGES
from pardag.kinds.base import import_runtime
from pardag.model import Workflow

__all__ = ["LANGUAGES", "MAX_INSTRUCTIONS", "MAX_MEMORY", "MAX_VALUES", "detect", "read"]

MAX_MEMORY = 64 * 1024 * 1024
"""Most memory the file's Lua code may allocate while it builds its table (64 MiB)."""
MAX_INSTRUCTIONS = 50_000_000
"""Most Lua instructions the file may run while it builds its table."""

_LIMIT = "pardag: instruction limit reached"

# The sandbox: the chunk runs with ``env`` as its only globals (no ``coroutine``: a coroutine
# would need its own hook). ``load`` with mode "t" refuses
# precompiled bytecode; the count hook (set before ``debug`` is out of reach) stops long runs.
_SANDBOX = """
local load, sethook, limit, steps, message = load, debug.sethook, ...
local env = {}
for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
    "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
    "tostring", "type", "xpcall"}) do env[name] = _G[name] end
for _, name in ipairs({"string", "table", "math", "utf8"}) do
  local copy = {}
  for k, v in pairs(_G[name] or {}) do copy[k] = v end
  env[name] = copy
end
env.string.dump = nil
env.setmetatable = function(t, mt) -- a finaliser would run after the chunk, unlimited
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available while a workflow file is read", 2)
  end
  return setmetatable(t, mt)
end
return function(text, chunkname)
  local chunk, err = load(text, chunkname, "t", env)
  if not chunk then return nil, err end
  local count = 0
  local function hook()
    count = count + 1
    if count > steps then
      sethook(hook, "", 1) -- from now on every instruction fails: pcall cannot swallow it
      error(message, 0)
    end
  end
  sethook(hook, "", limit)
  local ok, failure = pcall(chunk) -- the hook stays: it also bounds anything run later
  if not ok then return nil, failure end
  return env.workflow, nil, env
end
"""


def detect(doc: Document) -> bool:
    """A ``.lua`` file (the format comes from the extension: the file is a program)."""
    return doc.format == "lua"


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow the Lua file in ``doc`` builds; raises ``ValidationError`` naming the line.

    The table it builds is read as a native steps file, with ``defaults`` (settings from
    below the file) applied before it is validated.
    """
    table = _evaluate(doc)
    plain = _Plain(doc)
    data = plain.convert(table, ("workflow",))
    if plain.problems:
        raise ValidationError(doc.path, plain.problems)
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise _fail(
            doc, f"'workflow' must be a table, got {_lua_type(table)}", _line(doc, "workflow")
        )
    data = _native_data(data, doc, problems)
    if problems:
        raise ValidationError(doc.path, problems)
    lines = _lines(doc.text, data)
    return native.read(Document(doc.path, data, lines, "lua", doc.text), defaults)


def _fail(doc: Document, message: str, line: int | None = None) -> ValidationError:
    where = f"{doc.path}:{line}" if line else doc.path
    return ValidationError(doc.path, [Problem(None, message, where)])


# -- running the file -------------------------------------------------------------------------


def _evaluate(doc: Document) -> Any:
    """The file's global ``workflow`` (a Lua value), run in the sandbox."""
    try:
        lupa = import_runtime("lupa")
    except MissingRuntime as exc:
        raise _fail(doc, str(exc)) from None
    lua = lupa.LuaRuntime(
        max_memory=MAX_MEMORY, register_eval=False, register_builtins=False, encoding=None
    )  # no encoding: strings come back as bytes, decoded here so bad UTF-8 is a problem
    runner = lua.execute(_SANDBOX.encode(), 1000, MAX_INSTRUCTIONS // 1000, _LIMIT.encode())
    try:
        result = runner(doc.text.encode(), ("=" + _CHUNK).encode())
    except lupa.LuaMemoryError:
        raise _fail(doc, _memory_message()) from None
    except lupa.LuaError as exc:  # the limit hit in the sandbox's own code after the chunk
        raise _lua_error(doc, str(exc)) from None
    table, error = result[0], result[1]
    if error is not None:
        raise _lua_error(doc, _text(error))
    if table is None:
        raise _fail(
            doc,
            "sets no global 'workflow'; write `workflow = { name = ..., steps = { ... } }` "
            "(a global, not `local workflow`)",
        )
    return table


def _memory_message() -> str:
    return (
        f"used more than {MAX_MEMORY // (1024 * 1024)} MiB while building its table; "
        "a workflow file should only describe steps: move heavy work into a step"
    )


_CHUNK = "workflow file"
"""The chunk's name in Lua messages (Lua shortens long paths, so the path is put back here)."""
_LUA_POSITION = re.compile(r"^(?P<chunk>.*?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)


def _lua_error(doc: Document, error: str) -> ValidationError:
    """A Lua syntax or runtime error as a problem at the line Lua names."""
    if error.startswith(_LIMIT):
        return _fail(
            doc,
            f"ran more than {MAX_INSTRUCTIONS:,} Lua instructions while building its table "
            "(an endless loop?); a workflow file should only describe steps",
        )
    if "not enough memory" in error:
        return _fail(doc, _memory_message())
    found = _LUA_POSITION.match(error)
    if found and found.group("chunk") == _CHUNK:
        message = found.group("message")
        return _fail(doc, f"Lua error: {message}{_hint(message)}", int(found.group("line")))
    return _fail(doc, f"Lua error: {error}{_hint(error)}")


_MISSING_GLOBAL = re.compile(r"\(global '(\w+)'\)")


def _hint(message: str) -> str:
    """How to fix ``message``; a sandboxed global gets its own explanation."""
    found = _MISSING_GLOBAL.search(message)
    if found and found.group(1) in _REMOVED:
        return (
            f"; {found.group(1)!r} is not available while a workflow file is read (the file "
            "only describes steps, in a sandbox): do that work inside a step"
        )
    return "; fix the Lua code"


_REMOVED = frozenset(
    {
        "os",
        "io",
        "require",
        "dofile",
        "loadfile",
        "load",
        "package",
        "debug",
        "coroutine",
        "print",
        "collectgarbage",
        "python",
    }
)
"""Standard globals the sandbox leaves out (``print`` too: reading a file writes nothing)."""


# -- Lua values to plain data -----------------------------------------------------------------


def _lua_type(value: Any) -> str:
    import lupa  # type: ignore[import-untyped, unused-ignore]

    kind = lupa.lua_type(value)
    if kind is not None:
        return f"a {kind}"
    names = {bytes: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "nil" if value is None else type(value).__name__)


MAX_VALUES = 1_000_000
"""Most values the ``workflow`` table may hold, shared tables counted each time they appear
(a table holding the same table twice, nested 100 deep, is a bomb: refused, not expanded)."""


class _Plain:
    """Converts the Lua table to plain data, collecting problems, within ``MAX_VALUES``."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.left = MAX_VALUES

    def bad(self, message: str, path: Key) -> None:
        self.problems.append(Problem(None, message, _where(self.doc, path)))

    def convert(self, value: Any, path: Key) -> Any:
        """``value`` as plain data: tables with keys 1..n become lists, others mappings."""
        import lupa  # type: ignore[import-untyped, unused-ignore]

        self.left -= 1
        if self.left < 0:
            message = f"'workflow' holds more than {MAX_VALUES:,} values; is a table repeated?"
            raise _fail(self.doc, message + " write the steps out instead")
        if value is None or isinstance(value, bool | int | float):
            return value
        what = _dotted(path)
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return self.bad(f"{what} is not UTF-8 text; write it as UTF-8", path)
        if lupa.lua_type(value) != "table":
            return self.bad(
                f"{what} is {_lua_type(value)}; a workflow table holds only data (tables, "
                "strings, numbers, booleans): write code as a string, e.g. code = [[ ... ]]",
                path,
            )
        if len(path) > MAX_DEPTH:
            return self.bad(f"{what} is nested more than {MAX_DEPTH} levels deep; flatten it", path)
        items = list(value.items())
        keys = [k for k, _ in items]
        if (
            keys
            and all(type(k) is int for k in keys)
            and sorted(keys) == [*range(1, len(keys) + 1)]
        ):
            return [self.convert(v, (*path, k)) for k, v in sorted(items, key=lambda kv: kv[0])]
        if keys and all(type(k) is int for k in keys):
            return self.bad(
                f"{what} is a list with gaps (keys {_show(sorted(keys))}); a nil inside a "
                "list makes a gap: remove it",
                path,
            )
        out: dict[str, Any] = {}
        for k, v in items:
            if isinstance(k, bytes):
                name = k.decode("utf-8", "replace")
                out[name] = self.convert(v, (*path, name))
            else:
                self.bad(
                    f"{what} mixes the key {k!r} with names; a table is either a list "
                    "{a, b} or a mapping {name = value}",
                    path,
                )
        return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _dotted(path: Key) -> str:
    """``workflow.steps.a.env``, shortened in the middle for a deep path."""
    parts = [str(p) for p in path]
    return ".".join(parts if len(parts) <= 8 else [*parts[:5], "...", *parts[-2:]])


def _where(doc: Document, path: Key) -> str:
    """``file:line`` of ``path``: each name searched for after the line of the one before."""
    rows = doc.text.splitlines()
    line = None
    for part in path:
        if isinstance(part, str):
            line = _find(rows, part, line or 1) or line
    return f"{doc.path}:{line}" if line else doc.path


# -- the Lua table as a native steps mapping --------------------------------------------------


def _native_data(data: dict[str, Any], doc: Document, problems: list[Problem]) -> dict[str, Any]:
    """``data`` with ``steps`` sorted by id and each step's ``language`` mapped to a kind."""
    steps = data.get("steps")
    if not isinstance(steps, dict):
        shown = "missing" if steps is None else f"a {type(steps).__name__}"
        problems.append(
            Problem(
                None,
                f"'workflow.steps' must be a table of steps by id, {shown}; write "
                "steps = { id = { language = ..., code = [[...]] } }",
                _where(doc, ("workflow", "steps")),
            )
        )
        return data
    out = dict(data)
    out["steps"] = {sid: _step(sid, steps[sid], doc, problems) for sid in sorted(steps)}
    return out


def _step(sid: str, spec: Any, doc: Document, problems: list[Problem]) -> Any:
    """One step's table in native form (``language`` is the native reader's to map)."""
    if not isinstance(spec, dict) or spec.get("depends_on") != {}:
        return spec  # the native reader reports what is wrong with it
    return {**spec, "depends_on": []}  # an empty Lua table reads as a mapping


# -- lines ------------------------------------------------------------------------------------


def _line(doc: Document, name: str) -> int | None:
    """The first line that assigns ``name`` (``name =`` or ``["name"] =``)."""
    return _find(doc.text.splitlines(), name, 1)


def _find(rows: list[str], name: str, start: int, end: int | None = None) -> int | None:
    """The first line from ``start`` (before ``end``) that assigns ``name``."""
    pattern = _assignment(name)
    for number in range(start, end or len(rows) + 1):
        if pattern.search(rows[number - 1]):
            return number
    return None


def _assignment(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"(?:^|[\s{{,;])(?:{quoted}|\[\s*[\"']{quoted}[\"']\s*\])\s*=(?!=)")


def _lines(text: str, data: dict[str, Any]) -> dict[Key, int]:
    """Best-effort lines: top-level keys, each step, and each field after its step's line."""
    rows = text.splitlines()
    lines: dict[Key, int] = {}

    def find(name: str, start: int, end: int | None = None) -> int | None:
        return _find(rows, name, start, end)

    top = find("workflow", 1) or 1
    for key in data:
        line = find(key, top)
        if line is not None:
            lines[(key,)] = line
    steps = data.get("steps")
    start = lines.get(("steps",), top)
    if not isinstance(steps, dict):
        return lines
    for sid in steps:
        at = find(sid, start)
        if at is not None:
            lines[("steps", sid)] = at
    starts = sorted(lines[("steps", sid)] for sid in steps if ("steps", sid) in lines)
    for sid, spec in steps.items():
        at = lines.get(("steps", sid))
        if at is None or not isinstance(spec, dict):
            continue
        end = next((n for n in starts if n > at), len(rows) + 1)
        for key in spec:
            line = find(key, at, end)
            if line is not None:
                lines[("steps", sid, key)] = line
    return lines
