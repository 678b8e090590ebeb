"""The ``wasm`` kind: a step that is a WebAssembly module, run by wasmtime with no WASI.

``params={"module": "path/to/mod.wasm"}`` (a ``.wasm`` binary or ``.wat`` text; in a workflow
file a relative path is taken from the file's directory, from Python from the current one)
or ``params={"wat": "(module ...)"}`` (inline text;
``code`` is a synonym, for ``language: wasm`` steps).

The ABI (see examples/wasm/): the module exports ``memory``, ``alloc(len: i32) -> i32`` and
``run(ptr: i32, len: i32) -> i64``. pardag writes the JSON text of the inputs mapping (UTF-8,
by dependency id) at the pointer ``alloc`` returns and calls ``run``; the i64 result packs
``out_ptr << 32 | out_len``, the place in ``memory`` of the output JSON text. The module gets
no imports at all, so it has no file, network or clock access.

Validation compiles the module and checks these exports and their types. Each attempt
instantiates it in a fresh store (nothing leaks between attempts), on a worker process by
default (``WasmCall``), so that the run's own timeout or a cancel, which cannot reach a thread,
kills it; ``executor: threads`` runs it in the runner's process. Limits, set on the store
so that they hold for the whole attempt: one instance, one linear memory of at most
``MAX_MEMORY`` bytes (wasmtime caps each memory, so a module of four memories took four times
the cap), at most ``MAX_TABLES`` tables of ``MAX_TABLE_ELEMENTS`` elements (8 bytes each;
tables were uncapped); the output at ``MAX_OUTPUT`` bytes. A step timeout really stops the
code: wasmtime's epoch interruption traps the module once ``TIMEOUT_MARGIN`` past the
timeout, even inside an infinite loop.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pardag.errors import WasmStepError, WasmTimeout
from pardag.kinds import code as common
from pardag.kinds.base import Action, RunContext, lazy_module
from pardag.kinds.cluster import OnWorker
from pardag.kinds.code import MAX_MEMORY, MAX_OUTPUT, TIMEOUT_MARGIN
from pardag.regularfile import NotRegularFile, read_regular
from pardag.states import ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

if TYPE_CHECKING:
    import wasmtime
else:
    wasmtime = lazy_module("wasmtime")

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "MAX_TABLES",
    "MAX_TABLE_ELEMENTS",
    "TICK",
    "TIMEOUT_MARGIN",
    "WasmCall",
    "WasmKind",
    "WasmStepError",
    "WasmTimeout",
    "abi_problems",
    "compile_module",
    "run_wasm",
]

MAX_TABLES = 4
"""Tables one attempt's module may define (compilers emit one, for indirect calls)."""

MAX_TABLE_ELEMENTS = 1 << 20
"""Elements each table may hold (8 bytes each in wasmtime: 8 MiB a table, 32 MiB in all)."""

TICK = 0.01
"""Seconds between two epoch ticks: the resolution of the timeout."""

_RUN = "'run(ptr: i32, len: i32) -> i64'"
"""The ABI's ``run``, in the messages that ask for one."""

_NO_DEADLINE = 2**40
"""Epoch ticks standing for "no timeout" (centuries at ``TICK``)."""


@functools.cache
def engine() -> wasmtime.Engine:
    """The one engine, made on first use: compiled modules belong to it and its epoch drives
    every timeout."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.wasm_gc = False  # its GC heap is a second heap, beside linear memory, as large
    return wasmtime.Engine(config)


_ticker_lock = threading.Lock()
_ticker: threading.Thread | None = None


def _tick_forever() -> None:
    while True:
        time.sleep(TICK)
        engine().increment_epoch()


def _start_ticker() -> None:
    """Start the daemon thread advancing the epoch, once, when a first timeout needs it."""
    global _ticker
    with _ticker_lock:
        if _ticker is None:
            _ticker = threading.Thread(target=_tick_forever, name="pardag-wasm-epoch", daemon=True)
            _ticker.start()


_cache: dict[tuple[str, str, float], wasmtime.Module] = {}


@atexit.register
def _forget() -> None:
    """Drop compiled modules and the engine before wasmtime's own teardown at exit (else it
    prints "Exception ignored" for each)."""
    _cache.clear()
    engine.cache_clear()


_cache_lock = threading.Lock()


def compile_module(source: str, *, inline: bool) -> wasmtime.Module:
    """The compiled module of a path (or of inline WAT text); cached by path and mtime.

    Raises ``WasmStepError`` naming the file (or "inline 'wat'") and wasmtime's message.
    """
    if inline:
        key, what = ("wat", source, 0.0), "the inline 'wat'"
    else:
        path = Path(source)
        what = f"module file {source!r}"
        try:
            key = ("file", str(path.resolve()), path.stat().st_mtime)
        except OSError as exc:
            raise WasmStepError(
                f"cannot read {what}: {exc.strerror}; fix the path "
                "(in a workflow file, relative to the file's directory)"
            ) from None
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        # a path is read only if it is a regular file: /dev/zero or a FIFO would never end
        module = wasmtime.Module(engine(), source if inline else read_regular(source))
    except wasmtime.WasmtimeError as exc:
        raise WasmStepError(
            f"{what} does not compile: {_with_cause(exc)}; fix the module"
        ) from None
    except OSError as exc:  # a device, FIFO or folder, no permission: stat() cannot tell
        raise WasmStepError(
            f"cannot read {what}: it {exc.strerror}; give the path of a .wasm or .wat file"
            if isinstance(exc, NotRegularFile)
            else f"cannot read {what}: {exc.strerror}; give the path of a .wasm or .wat file"
        ) from None
    with _cache_lock:
        _cache[key] = module
    return module


def run_wasm(
    step_id: str,
    source: str,
    inline: bool,
    inputs: Mapping[str, Any],
    timeout: float | None = None,
    cap: int | None = None,
) -> Any:
    """Instantiate the module in a fresh store, call ``run`` on the inputs JSON; the output.

    ``cap`` caps the linear memory in bytes (default ``MAX_MEMORY``).
    """
    where = common.step_prefix(step_id, "wasm")
    cap = MAX_MEMORY if cap is None else cap
    try:
        module = compile_module(source, inline=inline)
    except WasmStepError as exc:
        raise WasmStepError(f"{where}: {exc}") from None
    store = _store(timeout, cap)
    try:
        instance = wasmtime.Instance(store, module, [])
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raise WasmStepError(
            f"{where}: cannot instantiate the module: {_instantiate(exc, cap)}"
        ) from None
    memory, alloc, run = _exports(store, instance, step_id, where)
    data = json.dumps(dict(inputs), ensure_ascii=False, default=str).encode()
    try:
        ptr = _call(alloc, store, where, len(data))
        _write(store, memory, where, ptr, data)
        packed = _call(run, store, where, ptr, len(data))
    except wasmtime.Trap as exc:
        if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
            raise WasmTimeout(common.stopped(where, timeout)) from None
        raise WasmStepError(f"{where}: wasm trap: {_trap_message(exc)}") from None
    except wasmtime.WasmtimeError as exc:
        raise WasmStepError(f"{where}: {_first_line(exc)}") from None
    return _output(store, memory, where, packed)


def _store(timeout: float | None, memory: int) -> wasmtime.Store:
    """A fresh store with the memory cap and the epoch deadline of this attempt."""
    store = wasmtime.Store(engine())
    store.set_limits(
        memory_size=memory,
        table_elements=MAX_TABLE_ELEMENTS,
        instances=1,
        tables=MAX_TABLES,
        memories=1,
    )
    if timeout is None:
        store.set_epoch_deadline(_NO_DEADLINE)
    else:
        _start_ticker()
        store.set_epoch_deadline(max(1, math.ceil((timeout + TIMEOUT_MARGIN) / TICK)))
    return store


def _instantiate(exc: Exception, memory: int) -> str:
    message = _first_line(exc)
    lower = message.lower()
    if "memory count" in lower or "memories" in lower:
        return f"{message} (a step's module gets one memory, 'memory'); define no other"
    if "table count" in lower:
        return f"{message} (a step's module may define {MAX_TABLES} tables); define fewer"
    if "table" in lower and ("limit" in lower or "grow" in lower):
        return (
            f"{message} (tables are capped at {MAX_TABLE_ELEMENTS} elements); "
            "declare a smaller initial table"
        )
    if "memory" in lower and ("limit" in lower or "grow" in lower):
        return (
            f"{message} (memory is capped at {memory // 2**20} MiB); "
            "declare a smaller initial memory"
        )
    return f"{message}; the module must need no imports"


def _exports(
    store: wasmtime.Store, instance: wasmtime.Instance, step_id: str, where: str
) -> tuple[wasmtime.Memory, wasmtime.Func, wasmtime.Func]:
    """``memory``, ``alloc`` and ``run``, each checked, with the fix when missing."""
    exports = instance.exports(store)
    run = exports.get("run")
    if not isinstance(run, wasmtime.Func):
        raise WasmStepError(_run_problem(step_id, run))
    alloc = exports.get("alloc")
    if not isinstance(alloc, wasmtime.Func):
        raise WasmStepError(
            f"{where}: the module exports no function 'alloc'; "
            "export 'alloc(len: i32) -> i32' returning where to write the input"
        )
    memory = exports.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise WasmStepError(f"{where}: the module exports no memory 'memory'; export its memory")
    return memory, alloc, run


def _run_problem(step_id: str, run: object) -> str:
    """Why the export ``run`` (None if absent) is not a function: one wording for validation
    (which sees export types) and runs (which see the exports)."""
    if run is None:
        return common.no_run(step_id, f"export {_RUN} from the module")
    return common.run_not_callable(step_id, _kind_name(run), f"export a function {_RUN}")


_SIGNATURES = {"run": (["i32", "i32"], ["i64"]), "alloc": (["i32"], ["i32"])}
"""The ABI's functions: their parameter and result types."""


def abi_problems(module: wasmtime.Module, step_id: str) -> list[str]:
    """What the module's exports lack for the ABI, found before any run (no instantiation)."""
    types = {export.name: export.type for export in module.exports}
    run = types.get("run")
    out = [] if isinstance(run, wasmtime.FuncType) else [_run_problem(step_id, run)]
    if not isinstance(types.get("alloc"), wasmtime.FuncType):
        out.append("the module exports no function 'alloc'; export 'alloc(len: i32) -> i32'")
    if not isinstance(types.get("memory"), wasmtime.MemoryType):
        out.append("the module exports no memory 'memory'; export its memory as 'memory'")
    for name, (params, results) in _SIGNATURES.items():
        kind = types.get(name)
        if isinstance(kind, wasmtime.FuncType):
            got = ([str(t) for t in kind.params], [str(t) for t in kind.results])
            if got != (params, results):
                out.append(
                    f"'{name}' takes ({', '.join(got[0])}) -> ({', '.join(got[1])}); "
                    f"the ABI needs ({', '.join(params)}) -> ({', '.join(results)})"
                )
    return out


def _kind_name(value: object) -> str:
    """What an export is (or, at validation, its type describes): "memory", "global", ..."""
    kinds: dict[type, str] = {
        wasmtime.MemoryType: "memory",
        wasmtime.Memory: "memory",
        wasmtime.GlobalType: "global",
        wasmtime.Global: "global",
        wasmtime.TableType: "table",
        wasmtime.Table: "table",
    }
    return kinds.get(type(value), type(value).__name__)


def _call(fn: wasmtime.Func, store: wasmtime.Store, where: str, *args: int) -> int:
    result = fn(store, *args)
    if not isinstance(result, int):
        raise WasmStepError(
            f"{where}: a function returned {result!r}, not one integer; follow the ABI in the docs"
        )
    return result


def _write(
    store: wasmtime.Store, memory: wasmtime.Memory, where: str, ptr: int, data: bytes
) -> None:
    size = memory.data_len(store)
    ptr &= 0xFFFFFFFF
    if ptr + len(data) > size:
        raise WasmStepError(
            f"{where}: alloc({len(data)}) returned {ptr}, but memory has only {size} bytes; "
            "make alloc grow the memory"
        )
    memory.write(store, data, ptr)


def _output(store: wasmtime.Store, memory: wasmtime.Memory, where: str, packed: int) -> Any:
    """The JSON value at ``packed`` (``out_ptr << 32 | out_len``), checked and decoded."""
    packed &= 0xFFFFFFFFFFFFFFFF
    ptr, length = packed >> 32, packed & 0xFFFFFFFF
    common.check_output_size(where, length, WasmStepError)
    size = memory.data_len(store)
    if ptr + length > size:
        raise WasmStepError(
            f"{where}: run returned the output at {ptr}..{ptr + length}, past the end of "
            f"memory ({size} bytes); return out_ptr << 32 | out_len"
        )
    raw = bytes(memory.read(store, ptr, ptr + length))
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WasmStepError(
            f"{where}: the output is not valid JSON ({exc}); it starts with "
            f"{raw[:40]!r}; write UTF-8 JSON text and return out_ptr << 32 | out_len"
        ) from None


def _trap_message(trap: wasmtime.Trap) -> str:
    """The trap's cause and where it happened: "integer divide by zero (in function run ...)"."""
    text = str(trap).strip()
    cause = text.rsplit("Caused by:", 1)[-1].strip().splitlines()
    message = (cause[-1].strip() if cause else text).removeprefix("wasm trap: ")
    frames = trap.frames
    if frames:
        frame = frames[0]
        name = frame.func_name or f"#{frame.func_index}"
        message += f" (in function {name} at module offset {frame.module_offset:#x})"
    return message


def _with_cause(exc: BaseException) -> str:
    """wasmtime's first line and its innermost cause ("... without the gc feature")."""
    first = _first_line(exc)
    causes = str(exc).split("Caused by:", 1)[1:]
    lines = [line.strip() for line in causes[0].splitlines() if line.strip()] if causes else []
    return f"{first}: {re.sub(r'^[0-9]+: ', '', lines[-1])}" if lines else first


def _first_line(exc: BaseException) -> str:
    """wasmtime's message without its backtrace."""
    return str(exc).strip().split("\n", 1)[0].strip() or type(exc).__name__


class WasmKind:
    """Runs a WebAssembly module (``module`` path or inline ``wat``); see the module docstring."""

    fields: tuple[str, ...] = ("module", "wat", "code")
    cluster = True  # may run on a Dask worker (pardag.kinds.cluster)

    def problems(self, step: Step) -> list[str]:
        out: list[str] = []
        if step.fn is not None:
            out.append("a wasm step takes its module from params 'module' or 'wat', not a function")
        source = _source(step.params)
        if source is None:
            out.append(
                "a wasm step needs exactly one of params 'module' (a .wasm or .wat file path) "
                "or 'wat' (WebAssembly text; 'code' is the same)"
            )
        else:
            try:
                out.extend(abi_problems(compile_module(source[0], inline=source[1]), step.id))
            except WasmStepError as exc:
                out.append(str(exc))
        executor = common.code_executor("wasm", step.executor)
        if executor is not None:
            out.append(executor)
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        source = _source(step.params)
        assert source is not None  # validated
        text, inline = source
        step_id, timeout, memory = step.id, step.timeout, MAX_MEMORY
        if step.executor == ExecutorName.THREADS:

            def bind(
                inputs: Mapping[str, Any], params: Mapping[str, Any]
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
                return (step_id, text, inline, dict(inputs), timeout, memory), {}

            return Action(run_wasm, ExecutorName.THREADS, bind)
        path = text if inline else os.path.abspath(text)  # the worker's directory may differ
        call = WasmCall(step_id, path, inline, timeout, memory)

        def bind_plain(
            inputs: Mapping[str, Any], params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (common.plain(inputs),), {}

        if step.executor == ExecutorName.DASK:
            return Action(OnWorker(step_id, call), ExecutorName.DASK, bind_plain)
        return Action(call, ExecutorName.PROCESSES, bind_plain)


@dataclass(frozen=True)
class WasmCall:
    """One wasm attempt on a worker process: picklable (the module's path or text, the cap).

    No address-space cap here, unlike Lua and JavaScript: wasmtime reserves gigabytes of
    address space per memory up front, and the store's limits already cap what it may use.
    """

    step_id: str
    source: str
    inline: bool
    timeout: float | None
    memory: int

    def __call__(self, inputs: Mapping[str, Any]) -> Any:
        return run_wasm(self.step_id, self.source, self.inline, inputs, self.timeout, self.memory)

    def __repr__(self) -> str:
        return f"wasm step {self.step_id!r}"


def _source(params: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(path or WAT text, is it inline) when exactly one of ``module``/``wat``/``code`` is given.

    ``code`` is ``wat`` under the name every ``language:`` step uses for its code.
    """
    given = [name for name in ("module", "wat", "code") if params.get(name) is not None]
    if len(given) != 1:
        return None
    value = params[given[0]]
    if not isinstance(value, str) or not value.strip():
        return None
    return value, given[0] != "module"


KINDS = {"wasm": WasmKind()}
