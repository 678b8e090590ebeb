"""The ``lua`` kind: a step written in Lua, run by a real Lua runtime (lupa) in a sandbox.

``params={"code": "function run(inputs) ... end"}``: the code defines ``run``, called with one
table mapping each dependency id to its output (and the run's params as a second argument,
which Lua lets ``run`` ignore), so a root step may declare ``run()``. Its return value is the
step's output, converted to JSON-compatible data (see ``from_lua``).

Each attempt gets a fresh ``LuaRuntime`` (nothing leaks between attempts, steps or runs)
without ``io``, ``require``, ``dofile``, ``loadfile``, ``package``, ``debug`` or access to
Python objects; ``load`` accepts source text only, never bytecode. ``string``, ``table``,
``math``, ``utf8`` and ``coroutine`` stay. Of ``os`` only the clock and calendar functions
stay (``OS_KEPT``: ``os.clock``, ``os.time``, ``os.date``, ``os.difftime``), which read time
and touch nothing: ``os.execute``, ``os.remove``, ``os.getenv`` (secrets) and the rest are
gone.

Limits: the Lua heap is capped at ``MAX_MEMORY``; the JSON form of the output at
``MAX_OUTPUT``. A count hook checks the deadline every ``HOOK_EVERY`` Lua instructions and
raises once it has passed (then on every instruction, so ``pcall`` cannot swallow it). The hook
never fires inside one long C call (a ``__gc`` finalizer, ``string.find`` backtracking) nor
while the output is converted; that is why a step runs on a worker process by default, which
the runner kills at the timeout, under a cap on the whole attempt (``code.WorkerCall``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.errors import LuaStepError, LuaTimeout
from pardag.kinds import code as common
from pardag.kinds.base import lazy_module
from pardag.kinds.code import MAX_MEMORY, MAX_OUTPUT, TIMEOUT_MARGIN, CodeKind

if TYPE_CHECKING:
    import lupa  # type: ignore[import-untyped]
else:
    lupa = lazy_module("lupa")

__all__ = [
    "HOOK_EVERY",
    "MAX_DEPTH",
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "OS_KEPT",
    "TIMEOUT_MARGIN",
    "LuaKind",
    "LuaStepError",
    "LuaTimeout",
    "from_lua",
    "run_lua",
    "syntax_error",
]

MAX_DEPTH = 100
"""Nesting depth of tables converted to and from Lua (a deeper or cyclic table fails)."""

HOOK_EVERY = 10_000
"""Lua instructions between two deadline checks."""

EXAMPLE = "'function run(inputs) ... end'"
"""What ``run`` looks like, in the messages that ask for one."""

CHUNK = "=[string]"
"""The chunk name: Lua reports positions in the code as ``[string]:<line>:``."""

OS_KEPT = ("clock", "time", "date", "difftime")
"""The functions of Lua's ``os`` library a step keeps: they read the clock and nothing else."""

_REMOVED = ("os", "io", "require", "dofile", "loadfile", "package", "debug", "python")

_SANDBOX = """
local check, removed, every, os_kept, write = ...
local os_safe = {}
for _, name in ipairs(os_kept) do os_safe[name] = os[name] end
local sethook, create, resume = debug.sethook, coroutine.create, coroutine.resume
local pack, unpack = table.pack, table.unpack
local function stop() error("stopped: the step timeout passed", 0) end
local function hook()
  if check() then
    sethook(stop, "", 1)
    stop()
  end
end
sethook(hook, "", every)
-- hooks are per coroutine: give each new one the deadline hook too
coroutine.create = function(f)
  local co = create(f)
  sethook(co, hook, "", every)
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end
local raw_load = load
load = function(chunk, name, mode, ...)
  if select("#", ...) == 0 then return raw_load(chunk, name, "t") end
  return raw_load(chunk, name, "t", ...)
end
string.dump = nil
-- print goes through Python's sys.stdout, so it lands in the step's log, never on the
-- process's own stdout (where it would break `pardag run --json`'s output)
local tostring, select, concat = tostring, select, table.concat
print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  write(concat(parts, "\\t") .. "\\n")
end
for _, name in ipairs(removed) do _G[name] = nil end
os = os_safe
"""


def _deny(obj: object, name: object, setting: bool) -> object:
    raise AttributeError("Python objects are not accessible from Lua steps")


def _runtime(memory: int | None = None) -> lupa.LuaRuntime:
    return lupa.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=False,
        attribute_filter=_deny,
        max_memory=MAX_MEMORY if memory is None else memory,
    )


_NOT_UTF8 = (
    "holds bytes that are not UTF-8 text (a string escape such as \\255?); keep Lua strings UTF-8"
)
"""Why a Lua string could not reach Python: lupa decodes every string as UTF-8."""


def syntax_error(code: str) -> str | None:
    """Lua's own message for ``code`` that does not compile (with its line), else None."""
    try:
        _, message = _load(_runtime(), code)
    except UnicodeDecodeError:
        return f"the code does not compile, and Lua's message {_NOT_UTF8}"
    return message


def _load(lua: lupa.LuaRuntime, code: str) -> tuple[Any, str | None]:
    """``code`` compiled as a text chunk: (the chunk, None) or (None, Lua's message)."""
    loaded = lua.globals().load(code, CHUNK, "t")
    if isinstance(loaded, tuple):  # load returned (nil, message)
        return None, str(loaded[1])
    return loaded, None


def _sandboxed(deadline: float | None, memory: int | None = None) -> lupa.LuaRuntime:
    """A fresh runtime with the sandbox and the deadline hook installed."""
    lua = _runtime(memory)

    def check() -> bool:
        return deadline is not None and time.monotonic() > deadline

    kept = lua.table_from(list(OS_KEPT))
    lua.execute(_SANDBOX, check, lua.table_from(list(_REMOVED)), HOOK_EVERY, kept, _write)
    return lua


def _write(text: str) -> None:
    """Lua's ``print``: into ``sys.stdout``, which routes it to the running step's log."""
    sys.stdout.write(text)


def to_lua(lua: lupa.LuaRuntime, value: Any, depth: int = 0) -> Any:
    """``value`` (JSON-like Python data) as Lua values: dicts and lists become tables."""
    if depth > MAX_DEPTH:
        raise LuaStepError(f"inputs nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        table = lua.table()
        for key, item in value.items():
            table[key if isinstance(key, int | float | str) else str(key)] = to_lua(
                lua, item, depth + 1
            )
        return table
    if isinstance(value, list | tuple):
        table = lua.table()
        for n, item in enumerate(value, 1):
            table[n] = to_lua(lua, item, depth + 1)
        return table
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    return str(value)  # dates, paths, ...: their text, as JSON would need anyway


def from_lua(value: Any, depth: int = 0, path: str = "output") -> Any:
    """A Lua value as JSON-compatible Python data.

    nil is None; a non-empty table whose keys are exactly 1..n is a list, any other table a
    dict with string keys (numbers as text); an empty table is an empty dict. Functions,
    coroutines and userdata cannot be converted: the error names where they are.
    """
    kind = lupa.lua_type(value)
    if kind is None:
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if isinstance(value, float) and not math.isfinite(value):
            raise LuaStepError(f"{path} is {value}, which JSON cannot hold; return a finite number")
        return value
    if kind != "table":
        raise LuaStepError(f"{path} is a Lua {kind}, which cannot be an output; return data")
    if depth >= MAX_DEPTH:
        raise LuaStepError(f"the output nests deeper than {MAX_DEPTH} levels (or is cyclic)")
    items = list(value.items())
    keys = [k for k, _ in items]
    if (
        items
        and all(type(k) is int for k in keys)
        and sorted(keys) == list(range(1, len(keys) + 1))
    ):
        ordered = sorted(items, key=lambda kv: int(kv[0]))
        return [from_lua(v, depth + 1, f"{path}[{k}]") for k, v in ordered]
    out: dict[str, Any] = {}
    for k, v in items:
        name = _key(k, path)
        out[name] = from_lua(v, depth + 1, f"{path}.{name}")
    return out


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    if isinstance(key, bool) or lupa.lua_type(key) is not None:
        raise LuaStepError(f"{path} has a key of type {_lua_type(key)}; use string or number keys")
    return str(key)


def run_lua(
    step_id: str,
    code: str,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    timeout: float | None = None,
    memory: int | None = None,
    output: int | None = None,
) -> Any:
    """Run ``code``'s ``run(inputs, params)`` once in a fresh sandbox; its output as JSON data.

    ``memory`` and ``output`` are the caps in bytes (default ``MAX_MEMORY``, ``MAX_OUTPUT``).
    """
    deadline = None if timeout is None else time.monotonic() + timeout + TIMEOUT_MARGIN
    where = common.step_prefix(step_id, "lua")
    memory = MAX_MEMORY if memory is None else memory
    try:
        lua = _sandboxed(deadline, memory)
        result = _call_run(lua, step_id, code, _arguments(lua, where, inputs, params))
    except lupa.LuaMemoryError:
        raise LuaStepError(common.out_of_memory(where, "Lua", memory)) from None
    except lupa.LuaError as exc:
        _check_deadline(where, deadline, timeout)
        raise LuaStepError(f"{where}: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        _check_deadline(where, deadline, timeout)
        raise LuaStepError(
            f"{where}: a string from Lua (its output or an error) {_NOT_UTF8}"
        ) from None
    _check_deadline(where, deadline, timeout)  # a pcall or coroutine may have caught the stop
    try:
        value = from_lua(result)
    except LuaStepError as exc:
        raise LuaStepError(f"{where}: {exc}") from None
    except UnicodeDecodeError:
        raise LuaStepError(f"{where}: the output {_NOT_UTF8}") from None
    size = len(json.dumps(value, ensure_ascii=False).encode())
    common.check_output_size(where, size, LuaStepError, output)
    return value


def _arguments(
    lua: lupa.LuaRuntime, where: str, inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Any, Any]:
    """The inputs and run params as Lua tables."""
    try:
        return to_lua(lua, dict(inputs)), to_lua(lua, dict(params))
    except LuaStepError as exc:
        raise LuaStepError(f"{where}: {exc}") from None


def _call_run(lua: lupa.LuaRuntime, step_id: str, code: str, args: tuple[Any, Any]) -> Any:
    """Execute the chunk, then call its ``run``; Lua errors propagate as lupa's."""
    chunk, message = _load(lua, code)
    if chunk is None:
        raise LuaStepError(f"{common.step_prefix(step_id, 'lua')}: {message}")
    chunk()
    fn = lua.globals().run
    if fn is None:
        raise LuaStepError(common.no_run(step_id, f"define {EXAMPLE}"))
    if lupa.lua_type(fn) != "function":
        raise LuaStepError(common.run_not_callable(step_id, _lua_type(fn), "make it a function"))
    return fn(*args)


def _check_deadline(where: str, deadline: float | None, timeout: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise LuaTimeout(common.stopped(where, timeout))


def _lua_type(value: Any) -> str:
    """The Lua name of a value's type, also for values lupa hands over as Python ones."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | bytes):
        return "string"
    return str(lupa.lua_type(value) or type(value).__name__)


def _first_line(exc: BaseException) -> str:
    """Lua's message without the stack traceback lupa may append."""
    message = str(exc).split("\nstack traceback:", 1)[0].strip()
    return message or "error() was given a value that is not a string; give it a message"


class LuaKind(CodeKind):
    """Runs inline Lua ``code`` defining ``run``; see the module docstring."""

    language = "lua"
    label = "Lua"
    example = EXAMPLE
    error = LuaStepError
    line_hint = " ([string]:N is line N of the code)"

    def syntax_error(self, code: str) -> str | None:
        return syntax_error(code)

    def runner(self) -> Callable[..., Any]:
        return run_lua

    def caps(self) -> tuple[int, int]:
        return MAX_MEMORY, MAX_OUTPUT


KINDS = {"lua": LuaKind()}
