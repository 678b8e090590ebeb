"""The executor conformance suite (``pardag.testing.executors``) for each built-in executor.

Each class says what its executor can do; ``make_executor`` goes through ``create_executor``,
so the suite also checks that every name in ``EXECUTORS`` is registered.
"""

from __future__ import annotations

from pardag.executors import EXECUTORS, Executor, create_executor
from pardag.states import ExecutorName
from pardag.testing.executors import ExecutorSuite
from pardag.testing.executors import wait_for_file as wait_for_file  # for test_processes


class BuiltIn(ExecutorSuite):
    executor_name: ExecutorName

    def make_executor(self, max_workers: int) -> Executor:
        return create_executor(self.executor_name, max_workers)


class TestAsync(BuiltIn):
    executor_name = ExecutorName.ASYNC
    coroutines = True


class TestThreads(BuiltIn):
    executor_name = ExecutorName.THREADS
    stoppable = False  # a thread cannot be stopped from outside


class TestProcesses(BuiltIn):
    executor_name = ExecutorName.PROCESSES


class TestInline(BuiltIn):
    executor_name = ExecutorName.INLINE
    stoppable = False  # the call has ended before submit returns
    concurrent = False
    sized = False


def test_every_executor_has_its_class_here() -> None:
    tested = {cls.executor_name for cls in BuiltIn.__subclasses__()}
    assert tested | {ExecutorName.DASK} == set(EXECUTORS)  # dask: in test_dask (a cluster)
