"""One suite every executor must pass: the contract of ``pardag.executors.base.Executor``.

Each test runs its body in a fresh event loop through ``asyncio.run`` (no pytest-asyncio).
Coroutine functions go to the async executor, plain module-level functions to the others.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pardag.executors.base import Executor, format_traceback
from pardag.executors.coroutines import AsyncExecutor
from pardag.executors.processes import ProcessExecutor
from pardag.executors.threads import ThreadExecutor
from tests.executors import calls
from tests.support import child_pids, pid_gone

CAPACITY = 2


@dataclass(frozen=True)
class Flavor:
    """An executor class, whether ``stop`` really stops, and which calls it runs."""

    name: str
    make: Callable[[int], Executor]
    stoppable: bool
    coroutines: bool

    def fn(self, name: str) -> Callable[..., Any]:
        return getattr(calls, f"{name}_async" if self.coroutines else name)  # type: ignore[no-any-return]


FLAVORS = [
    Flavor("async", AsyncExecutor, stoppable=True, coroutines=True),
    Flavor("threads", ThreadExecutor, stoppable=False, coroutines=False),
    Flavor("processes", ProcessExecutor, stoppable=True, coroutines=False),
]


@pytest.fixture(params=FLAVORS, ids=[f.name for f in FLAVORS])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return request.param  # type: ignore[no-any-return]


def run(flavor: Flavor, body: Callable[[Executor], Awaitable[Any]]) -> Any:
    """Run ``body(executor)`` in a fresh event loop, closing the executor afterwards."""

    async def main() -> Any:
        executor = flavor.make(CAPACITY)
        try:
            return await body(executor)
        finally:
            await executor.aclose()

    return asyncio.run(main())


async def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + calls.WAIT_LIMIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.01)


def test_name_and_capacity(flavor: Flavor) -> None:
    executor = flavor.make(CAPACITY)
    assert executor.name == flavor.name
    assert executor.capacity == CAPACITY
    asyncio.run(executor.aclose())


def test_result_comes_back(flavor: Flavor) -> None:
    async def body(executor: Executor) -> Any:
        return await executor.submit(flavor.fn("add"), (2, 3), {})

    assert run(flavor, body) == 5


def test_args_and_kwargs_arrive(flavor: Flavor) -> None:
    async def body(executor: Executor) -> Any:
        return await executor.submit(flavor.fn("echo"), (1, "two"), {"three": [3], "four": None})

    assert run(flavor, body) == ((1, "two"), {"three": [3], "four": None})


def test_exception_comes_back_with_its_traceback(flavor: Flavor) -> None:
    fn = flavor.fn("raise_value_error")

    async def body(executor: Executor) -> BaseException:
        with pytest.raises(ValueError) as info:
            await executor.submit(fn, ("boom 42",), {})
        return info.value

    exc = run(flavor, body)
    assert type(exc) is ValueError
    assert str(exc) == "boom 42"
    text = format_traceback(exc)
    assert f", in {fn.__name__}\n" in text  # the frame that raised, not just our call site
    assert "ValueError: boom 42" in text


def test_calls_run_concurrently_up_to_capacity(flavor: Flavor, tmp_path: Path) -> None:
    # Each call waits for the other to start: they only both succeed if they overlap.
    async def body(executor: Executor) -> Any:
        rendezvous = flavor.fn("rendezvous")
        first = executor.submit(rendezvous, (str(tmp_path), "a", "b"), {})
        second = executor.submit(rendezvous, (str(tmp_path), "b", "a"), {})
        return await asyncio.gather(first, second)

    assert run(flavor, body) == ["a", "b"]


@pytest.mark.timeout(30)
def test_stop(flavor: Flavor, tmp_path: Path) -> None:
    seconds = 0.3

    async def body(executor: Executor) -> None:
        future = executor.submit(flavor.fn("mark_and_sleep"), (str(tmp_path), seconds), {})
        await wait_for_file(tmp_path / "started")
        stopped = executor.stop(future)
        await asyncio.wait([future])  # must complete either way; the pytest timeout guards
        if flavor.stoppable:
            assert stopped is True
            assert future.cancelled()
            await asyncio.sleep(2 * seconds)
            assert not (tmp_path / "finished").exists(), "the work went on after stop()"
        else:
            assert stopped is False
            assert not future.cancelled()
            assert future.result() == "finished"
        # The executor keeps working after a stop.
        assert await executor.submit(flavor.fn("add"), (1, 1), {}) == 2

    run(flavor, body)


@pytest.mark.timeout(30)
def test_aclose_leaves_no_tasks_threads_or_processes(flavor: Flavor, tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    processes_before = set(multiprocessing.active_children())
    children_before = child_pids()

    async def main() -> int:
        tasks_before = asyncio.all_tasks()
        executor = flavor.make(CAPACITY)
        assert await executor.submit(flavor.fn("add"), (1, 2), {}) == 3
        # One call still running at aclose(): stuck for good where stop works, short otherwise.
        seconds = 3600 if flavor.stoppable else 0.2
        in_flight = executor.submit(flavor.fn("mark_and_sleep"), (str(tmp_path), seconds), {})
        await wait_for_file(tmp_path / "started")
        await executor.aclose()
        await executor.aclose()  # idempotent
        await asyncio.sleep(0)  # let done-callbacks run
        assert in_flight.done()
        if flavor.stoppable:
            assert in_flight.cancelled()
        else:
            assert in_flight.result() == "finished"
        assert asyncio.all_tasks() - tasks_before == set()
        return int((tmp_path / "started").read_text())

    worker_pid = asyncio.run(main())

    if worker_pid != os.getpid():
        assert pid_gone(worker_pid)
    assert set(multiprocessing.active_children()) - processes_before == set()
    assert child_pids() - children_before == set()
    deadline = time.monotonic() + 5  # asyncio.run's own executor shutdown may lag a moment
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - threads_before == set()
