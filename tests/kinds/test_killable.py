"""Lua and JavaScript code the runtime's hooks cannot interrupt still ends at the timeout.

Issue 13 §4 and §8: a Lua ``__gc`` finalizer loop, Lua pattern backtracking and QuickJS regex
backtracking run inside one C call, where neither Lua's count hook nor QuickJS's interrupt
fires; converting a 15-million-integer Lua table to Python took 2.9 GiB and 21 s past a 2 s
timeout. On a thread, each kept its run from returning. Each attack here runs in a separate
``pardag`` process, bounded by ``_BOUND``: a run that never returns fails the test instead of
hanging it (and its stuck thread dies with that process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pardag

pytestmark = pytest.mark.timeout(180)

_SOURCES = str(Path(pardag.__file__).parents[1])
"""Where the pardag under test is imported from: the child processes import the same one."""

_BOUND = 60.0
"""Seconds a run under attack may take before the test calls it hung (its timeouts are 1-2 s)."""


def _flow(tmp_path: Path, language: str, code: str, timeout: str | None = "1s") -> Path:
    """A workflow file of one step ``s`` in ``language`` running ``code``."""
    limit = f"    timeout: {timeout}\n" if timeout else ""
    body = textwrap.indent(textwrap.dedent(code).strip(), "      ")
    path = tmp_path / "flow.yaml"
    path.write_text(
        f"name: attack\nsteps:\n  s:\n    language: {language}\n{limit}    code: |\n{body}\n"
    )
    return path


def _run(path: Path, *args: str, script: str | None = None) -> dict[str, Any]:
    """``pardag run FILE --json`` (or a Python ``script``) in its own process; its JSON."""
    argv = [sys.executable, "-m", "pardag", "run", path.name, "--json", *args]
    if script is not None:
        argv = [sys.executable, "-c", script, path.name]
    try:
        done = subprocess.run(
            argv, cwd=path.parent, env=_env(), capture_output=True, text=True, timeout=_BOUND
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not return within {_BOUND:g}s: the step was never stopped")
    assert "Traceback" not in done.stderr, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": _SOURCES}


def _timed_out(result: dict[str, Any], timeout: str = "1s") -> None:
    assert result["status"] == "failed"
    step = result["steps"]["s"]
    assert step["state"] == "failed"
    assert step["error"] == f"step 's' failed: timed out after {timeout}"


def test_a_lua_gc_finalizer_loop_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    """Lua runs __gc with hooks off: the count hook never fires in a finalizer."""
    code = """
        function run()
          setmetatable({}, {__gc = function() while true do end end})
          collectgarbage()
          return 1
        end
    """
    _timed_out(_run(_flow(tmp_path, "lua", code)))


def test_lua_pattern_backtracking_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    """string.find is one C call: O(n^5) backtracking over 100,000 characters."""
    code = """
        function run()
          return (string.rep("a", 100000)):find(".-.-.-.-.-x")
        end
    """
    _timed_out(_run(_flow(tmp_path, "lua", code)))


def test_a_quickjs_regex_that_backtracks_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    """QuickJS checks its interrupt between bytecodes, never inside the regex engine."""
    code = """
        function run() {
          return /^(a+)+$/.test("a".repeat(40) + "b");
        }
    """
    _timed_out(_run(_flow(tmp_path, "javascript", code)))


def test_the_run_timeout_stops_a_step_that_has_none(tmp_path: Path) -> None:
    """No step timeout: the run's own timeout must stop the step (it cancels it)."""
    code = """
        function run()
          setmetatable({}, {__gc = function() while true do end end})
          collectgarbage()
        end
    """
    result = _run(_flow(tmp_path, "lua", code, timeout=None), "--timeout", "1s")
    assert result["status"] == "timed_out"
    assert result["error"] == "run timed out after 1s; raise timeout= or make steps faster"
    assert result["steps"]["s"]["state"] == "cancelled"


def test_the_run_timeout_stops_a_wasm_module_without_a_step_timeout(tmp_path: Path) -> None:
    """wasm's epoch deadline comes from the step's timeout only: on a thread, a module without
    one kept a run with --timeout from ever returning; on a worker, the run's stop kills it."""
    loop = Path(__file__).parent / "wasm" / "loop.wat"
    path = tmp_path / "flow.yaml"
    path.write_text(f"name: attack\nsteps:\n  s:\n    kind: wasm\n    module: {loop}\n")
    result = _run(path, "--timeout", "1s")
    assert result["status"] == "timed_out"
    assert result["steps"]["s"]["state"] == "cancelled"


_MEMORY = """
import json, resource, sys
import pardag
result = pardag.load(sys.argv[1]).run()
step = result.steps["s"]
print(json.dumps({
    "state": step.state.value,
    "error": str(getattr(step.error, "cause", None) or step.error),
    "timed_out": isinstance(step.error, pardag.StepTimeout),
    "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
}))
"""
"""Runs the flow and says how the step ended and the most memory the runner's process held."""


def test_converting_a_huge_lua_output_is_under_the_timeout_and_memory_cap(
    tmp_path: Path,
) -> None:
    """15 million integers fit the 256 MiB Lua heap (0.5 s to build with table.move); turning
    them into a Python list took 2.9 GiB and 21 s, in the runner, past a 2 s timeout. The
    conversion now runs in the worker, under the same deadline and a cap on the whole attempt,
    and the runner's own memory stays small."""
    code = """
        function run()
          local n, t = 15000000, {1}
          while #t < n do table.move(t, 1, math.min(#t, n - #t), #t + 1) end
          return t
        end
    """
    out = _run(_flow(tmp_path, "lua", code, timeout="2s"), script=_MEMORY)
    assert out["state"] == "failed"
    assert (
        out["timed_out"]
        or out["error"]
        == "step s (lua): ran out of its 256 MiB of Lua memory; keep less data in Lua"
    ), out
    assert out["maxrss_mib"] < 1024, out


def test_a_print_in_a_worker_reaches_the_step_log(tmp_path: Path) -> None:
    """Lua's print goes to the step's log from the worker process as it did from a thread."""
    code = """
        function run()
          print("from the worker", 42)
          return 1
        end
    """
    path = _flow(tmp_path, "lua", code, timeout=None)
    result = _run(path)
    assert result["status"] == "succeeded"
    logs = subprocess.run(
        [sys.executable, "-m", "pardag", "logs", result["run_id"], "s"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=_BOUND,
    )
    assert logs.stdout == "--- s, attempt 1 ---\nfrom the worker\t42\n"


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_the_address_space_cap_holds_in_the_block_and_is_lifted_after() -> None:
    import resource

    from pardag.kinds.isolated import address_space_cap

    before = resource.getrlimit(resource.RLIMIT_AS)
    with address_space_cap(64 * 1024 * 1024):
        with pytest.raises(MemoryError):
            bytearray(256 * 1024 * 1024)
        small = bytearray(16 * 1024 * 1024)  # within the cap
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytearray(256 * 1024 * 1024)) > len(small)
