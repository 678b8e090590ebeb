"""The ``wasm`` kind: the JSON-over-memory ABI, errors naming the step, timeout and caps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from pardag import Workflow
from pardag.formats import load
from pardag.kinds import wasm as wasm_kind
from pardag.kinds.wasm import WasmStepError, WasmTimeout, run_wasm
from tests.kinds.code_steps import Language, RuntimeChecks

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent / "wasm"
EXAMPLE = Path(__file__).parents[2] / "examples" / "wasm" / "length.wat"

FIXED = """
(module
  (memory (export "memory") 1)
  (data (i32.const 100) "{\\"ok\\": [1, 2.5, \\"h\\c3\\a9\\"], \\"n\\": null}")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 100) (i64.const 32)) (i64.const 34))))
"""


def module(name: str) -> str:
    return str(HERE / f"{name}.wat")


WASM = Language("wasm", "w", WasmStepError)
run_step, failure, problems = WASM.run, WASM.failure, WASM.problems


class TestWasmLikeTheOtherLanguages(RuntimeChecks):
    language = WASM
    kind_module = wasm_kind
    quick = ({"wat": FIXED}, {"ok": [1, 2.5, "hé"], "n": None})
    endless: ClassVar = {"module": module("loop")}
    too_big: ClassVar = {"module": module("bigout")}


# -- the ABI ---------------------------------------------------------------------------------


def test_inline_wat_returns_its_json_output() -> None:
    result = run_step({"wat": FIXED})
    assert result.ok
    assert result.outputs["w"] == {"ok": [1, 2.5, "hé"], "n": None}


def test_inputs_reach_the_module_as_json_by_dependency_id() -> None:
    wf = Workflow("wasm")
    wf.add("a", lambda: {"x": [1, 2], "t": "é"})
    wf.add("b", lambda: 7)
    wf.add("w", kind="wasm", depends_on=["a", "b"], params={"module": module("echo")})
    result = wf.run()
    assert result.ok
    assert result.outputs["w"] == {"a": {"x": [1, 2], "t": "é"}, "b": 7}


def test_the_example_counts_the_bytes_of_its_input() -> None:
    inputs = {"text": "x" * 12345, "n": [1, 2, 3]}
    expected = len(json.dumps(inputs, ensure_ascii=False).encode())
    assert run_wasm("s", str(EXAMPLE), False, inputs) == {"bytes": expected}
    assert run_wasm("s", str(EXAMPLE), False, {}) == {"bytes": 2}


def test_a_wasm_step_between_python_steps() -> None:
    wf = Workflow("mixed")
    wf.add("make", lambda: ["alpha", "beta"])
    wf.add("size", kind="wasm", depends_on=["make"], params={"module": str(EXAMPLE)})
    wf.add("double", lambda size: size["bytes"] * 2, depends_on=["size"])
    result = wf.run()
    assert result.ok
    assert result.outputs["size"] == {"bytes": len('{"make": ["alpha", "beta"]}')}
    assert result.outputs["double"] == 2 * len('{"make": ["alpha", "beta"]}')


def test_a_workflow_file_runs_a_wasm_step(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        f"name: wasmflow\nsteps:\n  w:\n    kind: wasm\n    module: {json.dumps(module('echo'))}\n"
    )
    result = load(path).run()
    assert result.ok
    assert result.outputs == {"w": {}}


# -- errors ----------------------------------------------------------------------------------


def test_missing_run_is_named_at_validation_and_at_run() -> None:
    [message] = problems({"module": module("norun")})
    assert message.startswith("No 'run' function found in step w;")
    with pytest.raises(WasmStepError, match=r"^No 'run' function found in step s;"):
        run_wasm("s", module("norun"), False, {})


def test_run_that_is_not_a_function_is_named_at_validation_and_at_run() -> None:
    [message] = problems({"module": module("runglobal")})
    assert message.startswith("'run' is not callable in step w: it is a global;")
    with pytest.raises(WasmStepError, match=r"^'run' is not callable in step s: it is a global;"):
        run_wasm("s", module("runglobal"), False, {})


def test_the_abi_exports_and_signatures_are_checked_at_validation() -> None:
    wat = """(module (func (export "run") (param i32) (result i32) (i32.const 0)))"""
    found = problems({"wat": wat})
    assert "the module exports no function 'alloc'; export 'alloc(len: i32) -> i32'" in found
    assert "the module exports no memory 'memory'; export its memory as 'memory'" in found
    assert "'run' takes (i32) -> (i32); the ABI needs (i32, i32) -> (i64)" in found
    assert len(found) == 3


def test_a_trap_names_the_step_and_wasmtime_message() -> None:
    message = failure(run_step({"module": module("trap")}))
    assert message.startswith("step w (wasm): wasm trap:")
    assert "divide by zero" in message


def test_output_that_is_not_json_fails_saying_so() -> None:
    message = failure(run_step({"module": module("badjson")}))
    assert "the output is not valid JSON" in message
    assert "{not json" in message


def test_a_module_that_does_not_compile_is_a_validation_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wat"
    bad.write_text('(module (func (export "run") (result i64) (i32.const 1)))')
    [message] = problems({"module": str(bad)})
    assert f"module file {str(bad)!r} does not compile" in message
    [message] = problems({"wat": "(module (oops))"})
    assert "the inline 'wat' does not compile" in message


def test_a_missing_module_file_is_a_validation_problem(tmp_path: Path) -> None:
    [message] = problems({"module": str(tmp_path / "nope.wasm")})
    assert "cannot read module file" in message
    assert "nope.wasm" in message


def test_exactly_one_of_module_and_wat() -> None:
    [message] = problems({})
    assert "needs exactly one of params 'module'" in message
    [message] = problems({"module": module("echo"), "wat": FIXED})
    assert "needs exactly one of params 'module'" in message
    [message] = problems({"module": 3})
    assert "needs exactly one of params 'module'" in message


def test_code_is_inline_wat_for_language_steps(tmp_path: Path) -> None:
    assert run_step({"code": FIXED}).outputs["w"]["ok"] == [1, 2.5, "hé"]
    path = tmp_path / "flow.yaml"
    wat = FIXED.strip().replace("\n", "\n      ")
    path.write_text(f"name: wasmflow\nsteps:\n  w:\n    language: wasm\n    code: |\n      {wat}\n")
    assert load(path).run().outputs["w"] == {"ok": [1, 2.5, "hé"], "n": None}


# -- limits ----------------------------------------------------------------------------------


def test_the_epoch_deadline_really_stops_the_module() -> None:
    with pytest.raises(WasmTimeout, match=r"step s \(wasm\): stopped after its timeout of 0.2s"):
        run_wasm("s", module("loop"), False, {}, timeout=0.2)


def test_memory_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """bigmem grows 64 MiB at a time until growing fails; it says "capped" if that was soon."""
    monkeypatch.setattr(wasm_kind, "MAX_MEMORY", 128 * 1024 * 1024)
    assert run_step({"module": module("bigmem")}).outputs["w"] == "capped"


def test_initial_memory_over_the_cap_fails_at_instantiation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wasm_kind, "MAX_MEMORY", 8 * 1024 * 1024)
    message = failure(run_step({"module": module("bigout")}))  # declares 170 pages
    assert "cannot instantiate the module" in message
    assert "capped at 8 MiB" in message


# -- limits on the whole store (issue 13 §8) -------------------------------------------------

_ABI = """
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (data (i32.const 64) "\\"capped\\"\\"grown\\"")
  (func $said (param $capped i32) (result i64)
    (if (result i64) (local.get $capped)
      (then (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 8)))
      (else (i64.or (i64.shl (i64.const 72) (i64.const 32)) (i64.const 7)))))
"""
"""alloc, and $said: the output "capped" when its argument is true, else "grown"."""

FOUR_MEMORIES = f"""
(module
  (memory (export "memory") 1) (memory $b 1) (memory $c 1) (memory $d 1)
  {_ABI}
  (func (export "run") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ne (memory.grow 0 (i32.const 16)) (i32.const -1))))
    (loop $more (br_if $more (i32.ne (memory.grow $b (i32.const 16)) (i32.const -1))))
    (loop $more (br_if $more (i32.ne (memory.grow $c (i32.const 16)) (i32.const -1))))
    (loop $more (br_if $more (i32.ne (memory.grow $d (i32.const 16)) (i32.const -1))))
    (call $said (i32.le_u (i32.add (i32.add (memory.size 0) (memory.size $b))
                                   (i32.add (memory.size $c) (memory.size $d)))
                          (i32.const 257)))))
"""
"""Grows each of its four memories until growing fails: each memory had the whole cap."""


def test_a_module_gets_one_memory_not_one_cap_per_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four memories each grew to the cap (1.07 GiB under a 256 MiB cap): the store now
    holds one memory, the ABI's, so the cap is the module's whole linear memory."""
    monkeypatch.setattr(wasm_kind, "MAX_MEMORY", 16 * 1024 * 1024)
    message = failure(run_step({"wat": FOUR_MEMORIES}))
    assert message.startswith("step w (wasm): cannot instantiate the module: ")
    assert "memory count too high" in message
    assert "(a step's module gets one memory, 'memory'); define no other" in message


def _table(initial: int, grow: int) -> str:
    """A module with a table of ``initial`` elements that ``run`` grows by ``grow``."""
    return f"""
(module
  (memory (export "memory") 1) (table $t {initial} funcref)
  {_ABI}
  (func (export "run") (param i32 i32) (result i64)
    (call $said (i32.eq (table.grow $t (ref.null func) (i32.const {grow})) (i32.const -1)))))
"""


def test_a_table_cannot_grow_past_its_cap() -> None:
    """table.grow by ten million elements (80 MB; tables were uncapped: 0.8 GiB seen) fails
    as wasm says growing fails: it returns -1, and the module sees it."""
    assert run_step({"wat": _table(1, 10_000_000)}).outputs["w"] == "capped"
    within = wasm_kind.MAX_TABLE_ELEMENTS - 1
    assert run_step({"wat": _table(1, within)}).outputs["w"] == "grown"


def test_a_table_declared_over_the_cap_fails_at_instantiation() -> None:
    message = failure(run_step({"wat": _table(10_000_000, 0)}))
    assert message.startswith("step w (wasm): cannot instantiate the module: ")
    assert f"(tables are capped at {wasm_kind.MAX_TABLE_ELEMENTS} elements)" in message


def test_tables_are_counted() -> None:
    tables = " ".join("(table 1 funcref)" for _ in range(wasm_kind.MAX_TABLES + 1))
    wat = FIXED.replace('(memory (export "memory") 1)', f'(memory (export "memory") 1) {tables}')
    message = failure(run_step({"wat": wat}))
    assert "table count too high" in message
    assert f"(a step's module may define {wasm_kind.MAX_TABLES} tables); define fewer" in message


def test_gc_types_are_refused_their_heap_would_be_a_second_one() -> None:
    """Wasm GC arrays live in a GC heap beside linear memory, capped on their own (two
    200 MB arrays ran under a 256 MiB memory cap); without GC a module has one heap."""
    wat = FIXED.replace(
        '(memory (export "memory") 1)',
        '(memory (export "memory") 1) (type $a (array (mut i8)))'
        " (func (drop (array.new_default $a (i32.const 200000000))))",
    )
    [message] = problems({"wat": wat})
    assert "the inline 'wat' does not compile" in message
    assert "without the gc feature" in message
