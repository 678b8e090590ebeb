"""Behaviour only the processes executor has: dying, killable, reusable worker processes."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pardag.executors.base import format_traceback
from pardag.executors.processes import ProcessExecutor
from tests.executors import calls
from tests.executors.test_conformance import wait_for_file
from tests.support import eventually_gone, pid_gone

pytestmark = pytest.mark.timeout(30)


def run(body: Callable[[ProcessExecutor], Awaitable[Any]], max_workers: int = 2) -> Any:
    async def main() -> Any:
        executor = ProcessExecutor(max_workers)
        try:
            return await body(executor)
        finally:
            await executor.aclose()

    return asyncio.run(main())


def test_capacity_defaults_to_cpu_count() -> None:
    assert ProcessExecutor().capacity >= 1
    assert ProcessExecutor(0).capacity == ProcessExecutor().capacity


def test_workers_are_reused() -> None:
    async def body(executor: ProcessExecutor) -> tuple[int, int]:
        first = await executor.submit(calls.getpid, (), {})
        second = await executor.submit(calls.getpid, (), {})
        return first, second

    first, second = run(body, max_workers=4)
    assert first == second


@pytest.mark.parametrize(
    ("fn", "args", "how"),
    [
        (calls.exit_now, (3,), "exited with code 3"),
        (calls.segfault, (), r"was killed by SIGSEGV \(exit code -11\)"),
    ],
    ids=["os._exit", "segfault"],
)
def test_a_dying_worker_fails_only_its_call(
    tmp_path: Path, fn: Callable[..., Any], args: tuple[Any, ...], how: str
) -> None:
    async def body(executor: ProcessExecutor) -> None:
        other = executor.submit(calls.mark_and_sleep, (str(tmp_path), 0.3), {})
        await wait_for_file(tmp_path / "started")
        with pytest.raises(RuntimeError, match=rf"worker process {how} while running the step"):
            await executor.submit(fn, args, {})
        assert await other == "finished"
        assert await executor.submit(calls.add, (2, 2), {}) == 4

    run(body)


def test_a_stopped_worker_is_replaced(tmp_path: Path) -> None:
    async def body(executor: ProcessExecutor) -> tuple[int, int]:
        future = executor.submit(calls.mark_and_sleep, (str(tmp_path), 3600), {})
        await wait_for_file(tmp_path / "started")
        stuck_pid = int((tmp_path / "started").read_text())
        assert executor.stop(future) is True
        await asyncio.wait([future])
        assert future.cancelled()
        return stuck_pid, await executor.submit(calls.getpid, (), {})

    stuck_pid, new_pid = run(body, max_workers=1)
    assert new_pid != stuck_pid
    assert eventually_gone(stuck_pid)


def test_cancelling_the_future_kills_the_worker_too(tmp_path: Path) -> None:
    async def body(executor: ProcessExecutor) -> int:
        future = executor.submit(calls.mark_and_sleep, (str(tmp_path), 3600), {})
        await wait_for_file(tmp_path / "started")
        future.cancel()
        await asyncio.sleep(0)  # the done-callback runs
        pid = int((tmp_path / "started").read_text())
        assert eventually_gone(pid)
        result: int = await executor.submit(calls.add, (1, 1), {})
        return result

    assert run(body, max_workers=1) == 2


def test_stop_kills_the_steps_own_child_processes(tmp_path: Path) -> None:
    async def body(executor: ProcessExecutor) -> int:
        future = executor.submit(calls.start_grandchild_and_sleep, (str(tmp_path),), {})
        await wait_for_file(tmp_path / "grandchild")
        grandchild = int((tmp_path / "grandchild").read_text())
        assert not pid_gone(grandchild)
        executor.stop(future)
        return grandchild

    assert eventually_gone(run(body))


def test_lambdas_and_closures_are_sent_by_value() -> None:
    offset = 40

    def nested(n: int) -> int:
        return n + offset

    async def body(executor: ProcessExecutor) -> None:
        assert await executor.submit(lambda: offset + 2, (), {}) == 42
        assert await executor.submit(nested, (2,), {}) == 42
        # An argument and a result may be local functions too.
        (make,), _ = await executor.submit(calls.echo, (lambda: offset,), {})
        assert make() == 40

    run(body)


def test_an_unpicklable_closure_names_the_variable_at_fault() -> None:
    lock = threading.Lock()

    def guarded() -> None:
        with lock:
            pass

    async def body(executor: ProcessExecutor) -> None:
        with pytest.raises(TypeError) as info:
            await executor.submit(guarded, (), {})
        message = str(info.value)
        assert "the variable 'lock' it closes over (a lock), which cannot be pickled" in message
        assert "executor='threads'" in message
        assert await executor.submit(calls.add, (1,), {"b": 2}) == 3

    run(body)


def test_unpicklable_argument_is_a_clear_error() -> None:
    async def body(executor: ProcessExecutor) -> None:
        with pytest.raises(TypeError, match=r"arguments of .* cannot be pickled"):
            await executor.submit(calls.echo, (threading.Lock(),), {})

    run(body)


def test_function_the_worker_cannot_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # In sys.modules here but made at run time: the worker cannot import it by name.
    module = types.ModuleType("pardag_test_parent_only")
    exec("def here_only():\n    return 1\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)

    async def body(executor: ProcessExecutor) -> None:
        with pytest.raises(RuntimeError, match=r"could not be loaded in the worker.*importable"):
            await executor.submit(module.here_only, (), {})
        assert await executor.submit(calls.add, (1, 1), {}) == 2

    run(body)


def test_exception_that_cannot_be_rebuilt_becomes_runtime_error() -> None:
    async def body(executor: ProcessExecutor) -> BaseException:
        with pytest.raises(RuntimeError) as info:
            await executor.submit(calls.raise_needs_two_args, (), {})
        return info.value

    exc = run(body)
    assert "NeedsTwoArgs: left-right" in str(exc)
    assert ", in raise_needs_two_args\n" in format_traceback(exc)


def test_stop_iteration_becomes_runtime_error() -> None:
    async def body(executor: ProcessExecutor) -> None:
        with pytest.raises(RuntimeError, match="StopIteration"):
            await executor.submit(calls.raise_stop_iteration, (), {})

    run(body)


def test_unpicklable_result_is_a_clear_error() -> None:
    async def body(executor: ProcessExecutor) -> None:
        with pytest.raises(RuntimeError, match="return value could not be sent back") as info:
            await executor.submit(calls.return_lock, (), {})
        assert "lock" in str(info.value)
        assert await executor.submit(calls.add, (1, 1), {}) == 2

    run(body)


def test_submit_after_aclose_is_refused() -> None:
    async def body(executor: ProcessExecutor) -> None:
        await executor.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            executor.submit(calls.add, (1,), {})

    run(body)
