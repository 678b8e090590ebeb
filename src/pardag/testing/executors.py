"""The executor conformance suite: the contract of ``pardag.executors.base.Executor``.

Subclass ``ExecutorSuite`` in a test module as ``Test<Something>``, give it ``make_executor``
and say what the executor can do in class attributes; pytest collects every ``test_*`` method
for the subclass (see ``pardag.testing`` for an example). Each test runs its body in a fresh
event loop through ``asyncio.run``, so no pytest-asyncio is needed. The calls submitted are
module-level functions of ``pardag.testing.calls``, which a worker process can import.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pardag.executors.base import Executor, format_traceback
from pardag.testing import calls

__all__ = ["CAPACITY", "SHARED_HELPERS", "ExecutorSuite", "child_pids", "pid_gone", "wait_for_file"]

CAPACITY = 2
"""The ``max_workers`` each test makes its executor with."""
SHARED_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
"""Processes multiprocessing shares between all pools; they outlive any one executor."""


async def wait_for_file(path: Path) -> None:
    """Return once ``path`` exists; fail after ``calls.WAIT_LIMIT`` seconds."""
    deadline = time.monotonic() + calls.WAIT_LIMIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.01)


class ExecutorSuite:
    """The tests every executor must pass. Not collected itself (its name lacks ``Test``).

    A subclass implements ``make_executor`` and overrides the class attributes below that do
    not hold for its executor: they say what the executor can do, and the tests expect
    exactly that (a ``stoppable`` executor whose ``stop`` does not stop fails).
    """

    executor_name: ClassVar[str | None] = None
    """The executor's ``name``, checked when given."""
    coroutines: ClassVar[bool] = False
    """It runs ``async def`` functions (submitted the ``*_async`` calls), not plain ones."""
    stoppable: ClassVar[bool] = True
    """``stop`` really stops a running call (False: it returns False and the call goes on)."""
    concurrent: ClassVar[bool] = True
    """It runs up to ``max_workers`` calls at once (False: one at a time)."""
    sized: ClassVar[bool] = True
    """Its ``capacity`` is the ``max_workers`` it was made with (False: None, no limit)."""
    abandons: ClassVar[bool] = False
    """``stop`` releases a running call without stopping it (a task on a Dask worker's
    thread): it returns True and the future is cancelled at once, while the call runs on
    out of sight to its end."""
    remote: ClassVar[bool] = False
    """Calls run in processes the executor does not own (a cluster), which outlive it."""

    def make_executor(self, max_workers: int) -> Executor:
        """A new executor running up to ``max_workers`` calls at once."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_executor")

    def step(self, name: str) -> Callable[..., Any]:
        """The call ``name`` of ``pardag.testing.calls`` this executor runs."""
        fn: Callable[..., Any] = getattr(calls, f"{name}_async" if self.coroutines else name)
        return fn

    def run(self, body: Callable[[Executor], Awaitable[Any]]) -> Any:
        """``body(executor)`` in a fresh event loop, closing the executor afterwards."""

        async def main() -> Any:
            executor = self.make_executor(CAPACITY)
            try:
                return await body(executor)
            finally:
                await executor.aclose()

        return asyncio.run(main())

    def test_name_and_capacity(self) -> None:
        executor = self.make_executor(CAPACITY)
        assert isinstance(executor.name, str) and executor.name
        if self.executor_name is not None:
            assert executor.name == self.executor_name
        assert executor.capacity == (CAPACITY if self.sized else None)
        asyncio.run(executor.aclose())

    def test_result_comes_back(self) -> None:
        async def body(executor: Executor) -> Any:
            return await executor.submit(self.step("add"), (2, 3), {})

        assert self.run(body) == 5

    def test_args_and_kwargs_arrive(self) -> None:
        async def body(executor: Executor) -> Any:
            args, kwargs = (1, "two"), {"three": [3], "four": None}
            return await executor.submit(self.step("echo"), args, kwargs)

        assert self.run(body) == ((1, "two"), {"three": [3], "four": None})

    def test_exception_comes_back_with_its_traceback(self) -> None:
        fn = self.step("raise_value_error")

        async def body(executor: Executor) -> BaseException:
            with pytest.raises(ValueError) as info:
                await executor.submit(fn, ("boom 42",), {})
            return info.value

        exc = self.run(body)
        assert type(exc) is ValueError
        assert str(exc) == "boom 42"
        text = format_traceback(exc)
        assert f", in {fn.__name__}\n" in text  # the frame that raised, not just our call site
        assert "ValueError: boom 42" in text

    def test_stop_iteration_fails_the_call(self) -> None:
        # An asyncio future cannot hold StopIteration: the executor must turn it into an error
        # that says so, rather than break (or hang) while reporting it.
        async def body(executor: Executor) -> None:
            with pytest.raises(RuntimeError, match="StopIteration"):
                await executor.submit(self.step("raise_stop_iteration"), (), {})
            assert await executor.submit(self.step("add"), (1, 1), {}) == 2

        self.run(body)

    def test_calls_run_concurrently_up_to_capacity(self, tmp_path: Path) -> None:
        if not self.concurrent:
            pytest.skip("the executor runs one call at a time")

        # Each call waits for the other to start: they only both succeed if they overlap.
        async def body(executor: Executor) -> Any:
            rendezvous = self.step("rendezvous")
            first = executor.submit(rendezvous, (str(tmp_path), "a", "b"), {})
            second = executor.submit(rendezvous, (str(tmp_path), "b", "a"), {})
            return await asyncio.gather(first, second)

        assert self.run(body) == ["a", "b"]

    def test_submit_runs_the_call_itself_only_when_synchronous(self, tmp_path: Path) -> None:
        async def body(executor: Executor) -> None:
            future = executor.submit(self.step("mark_and_sleep"), (str(tmp_path), 0.2), {})
            if executor.synchronous:  # ran to its end inside submit, in this very process
                assert future.done() and future.result() == "finished"
                assert (tmp_path / "started").read_text() == str(os.getpid())
                ours = executor.submit(calls.thread_id, (), {})
                assert ours.result() == threading.get_ident()  # the loop's own thread
            else:  # submit must not hold up the event loop while the call runs
                assert not future.done()
                assert await future == "finished"

        self.run(body)

    def test_call_of_a_synchronous_executor(self) -> None:
        async def body(executor: Executor) -> None:
            if not executor.synchronous:
                pytest.skip("the executor is not synchronous: it has no call")
            assert executor.call(calls.add, (2,), {"b": 3}) == 5
            assert executor.call(calls.thread_id, (), {}) == threading.get_ident()
            with pytest.raises(ValueError, match="boom 42") as info:  # the step's own, as is
                executor.call(calls.raise_value_error, ("boom 42",), {})
            assert info.traceback[-1].name == "raise_value_error"
            with pytest.raises(StopIteration):  # no future to spare it from
                executor.call(calls.raise_stop_iteration, (), {})
            for run_it in (executor.call, executor.submit):  # as from a direct call
                with pytest.raises(SystemExit):
                    run_it(calls.raise_system_exit, (3,), {})
            assert executor.call(calls.add, (1, 1), {}) == 2

        self.run(body)

    @pytest.mark.timeout(30)
    def test_stop(self, tmp_path: Path) -> None:
        seconds = 0.3

        async def body(executor: Executor) -> None:
            future = executor.submit(self.step("mark_and_sleep"), (str(tmp_path), seconds), {})
            await wait_for_file(tmp_path / "started")
            stopped = executor.stop(future)
            await asyncio.wait([future])  # must complete either way; the pytest timeout guards
            if self.abandons:
                assert stopped is True
                assert future.cancelled()
            elif self.stoppable:
                assert stopped is True
                assert future.cancelled()
                await asyncio.sleep(2 * seconds)
                assert not (tmp_path / "finished").exists(), "the work went on after stop()"
            else:
                assert stopped is False
                assert not future.cancelled()
                assert future.result() == "finished"
            # The executor keeps working after a stop.
            assert await executor.submit(self.step("add"), (1, 1), {}) == 2

        self.run(body)

    @pytest.mark.timeout(30)
    def test_aclose_leaves_no_tasks_threads_or_processes(self, tmp_path: Path) -> None:
        threads_before = set(threading.enumerate())
        processes_before = set(multiprocessing.active_children())
        children_before = child_pids()

        async def main() -> int:
            tasks_before = asyncio.all_tasks()
            executor = self.make_executor(CAPACITY)
            assert await executor.submit(self.step("add"), (1, 2), {}) == 3
            # One call still running at aclose(): stuck for good where stop works, else short.
            seconds = 3600 if self.stoppable and not self.abandons else 0.2
            args = (str(tmp_path), seconds)
            in_flight = executor.submit(self.step("mark_and_sleep"), args, {})
            await wait_for_file(tmp_path / "started")
            await executor.aclose()
            await executor.aclose()  # idempotent
            await asyncio.sleep(0)  # let done-callbacks run
            assert in_flight.done()
            if self.stoppable:
                assert in_flight.cancelled()
            else:
                assert in_flight.result() == "finished"
            assert asyncio.all_tasks() - tasks_before == set()
            return int((tmp_path / "started").read_text())

        worker_pid = asyncio.run(main())

        if worker_pid != os.getpid() and not self.remote:
            assert pid_gone(worker_pid)
        assert set(multiprocessing.active_children()) - processes_before == set()
        assert child_pids() - children_before == set()
        deadline = time.monotonic() + 5  # asyncio.run's own executor shutdown may lag a moment
        while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert set(threading.enumerate()) - threads_before == set()


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def child_pids() -> set[int]:
    """Our live child processes, leaving out multiprocessing's shared helpers (Linux)."""
    children = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        shared = any(helper in cmdline for helper in SHARED_HELPERS)
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and not shared:
            children.add(int(entry.name))
    return children
