"""The store conformance suite, part two: a store's lifetime and its concurrent users.

What survives closing and reopening the store, and the killing of its writer; several threads,
processes and a forked child using one store at once. ``StoreSuite`` (``pardag.testing.stores``)
inherits these tests; see it for the fixtures a subclass provides.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from pardag.store import (
    Answer,
    CacheEntry,
    EventRecord,
    RunRecord,
    RunUpdate,
    StepRecord,
    Store,
    StoreError,
)
from pardag.testing.records import T0, full_run, full_step, new_run

__all__ = ["LifetimeSuite", "Opener"]

Opener = Callable[..., Store]
"""Opens one store (creating it when missing); each call opens the same one again."""


class LifetimeSuite:
    """The lifetime and concurrency tests of ``StoreSuite`` (not collected itself)."""

    persistent: ClassVar[bool] = True
    """What a store wrote survives closing it, and the killing of its process."""
    multiprocess: ClassVar[bool] = True
    """Several processes (spawned, or forked with a store open) may use the store at once."""

    # -- lifetime -----------------------------------------------------------------------------

    def test_everything_is_there_after_reopening(self, opener: Opener) -> None:
        if not self.persistent:
            pytest.skip("the store keeps nothing once closed")
        with opener() as first:
            first.create_run(full_run("persist01"))
            first.write(
                steps=[full_step("persist01")], events=[EventRecord("persist01", 1, T0, "k", "a")]
            )
            first.put_answer(Answer("persist01", "a", "approved"))
            first.put_cache(CacheEntry("k", "1", T0))
        with opener() as second:
            assert second.get_run("persist01") == full_run("persist01")
            assert second.get_steps("persist01") == [full_step("persist01")]
            assert len(second.get_events("persist01")) == 1
            assert set(second.get_answers("persist01")) == {"a"}
            assert second.get_cache("k", T0) is not None

    def test_a_closed_store_says_so(self, opener: Opener) -> None:
        opened = opener()
        opened.close()
        opened.close()  # idempotent
        with pytest.raises(StoreError, match="is closed"):
            opened.get_run("x")
        with pytest.raises(StoreError, match="is closed"):
            opened.write(steps=[StepRecord("x", "a", 1, "running")])

    # -- concurrency ----------------------------------------------------------------------------

    def test_two_threads_write_while_a_third_reads(self, store: Store) -> None:
        writes = 150
        for run_id in ("run-a", "run-b"):
            store.create_run(new_run(run_id))
        errors: list[BaseException] = []
        done = threading.Event()

        def writer(run_id: str) -> None:
            try:
                for n in range(1, writes + 1):
                    step = StepRecord(run_id, f"s{n:04d}", 1, "succeeded", output_json=str(n))
                    event = EventRecord(run_id, n, T0 + n, "step_succeeded", step.step_id)
                    store.write(
                        steps=[step], events=[event], runs=[RunUpdate(run_id, heartbeat_at=n)]
                    )
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            seen = {"run-a": 0, "run-b": 0}
            try:
                while not done.is_set():
                    for run_id in seen:
                        steps = len(store.get_steps(run_id))
                        events = len(store.get_events(run_id))
                        assert steps >= seen[run_id], "a committed step disappeared"
                        assert events >= steps, "a step committed without its event"
                        seen[run_id] = steps
                    store.list_runs()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(r,)) for r in ("run-a", "run-b")]
        watcher = threading.Thread(target=reader)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        assert errors == []
        for run_id in ("run-a", "run-b"):
            assert len(store.get_steps(run_id)) == writes
            assert [e.seq for e in store.get_events(run_id)] == list(range(1, writes + 1))
            found = store.get_run(run_id)
            assert found is not None and found.heartbeat_at == writes

    def test_several_processes_write_to_one_store_at_once(self, opener: Opener) -> None:
        if not self.multiprocess:
            pytest.skip("one process at a time")
        processes, writes = 4, 60
        context = multiprocessing.get_context("spawn")  # separate interpreters, like separate CLIs
        start = context.Barrier(processes)
        children = [
            context.Process(target=_write_from_a_process, args=(opener, f"proc-{n}", writes, start))
            for n in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=90)
        assert [c.exitcode for c in children] == [0] * processes  # a child's traceback is above
        with opener() as store:
            for n in range(processes):
                found = store.get_run(f"proc-{n}")
                assert found is not None and found.status == "succeeded"
                assert len(store.get_steps(f"proc-{n}")) == writes
                assert len(store.get_events(f"proc-{n}")) == writes

    def test_a_forked_child_can_use_its_parents_store(self, store: Store) -> None:
        if not self.multiprocess:
            pytest.skip("one process at a time")
        store.create_run(new_run())
        assert store.get_run("run000001") is not None  # the parent holds an idle connection now
        pid = os.fork()
        if pid == 0:  # the child: its own connections; the parent's are left alone
            code = 1
            try:
                store.write(steps=[StepRecord("run000001", "child", 1, "succeeded")])
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        store.write(steps=[StepRecord("run000001", "parent", 1, "succeeded")])
        assert [s.step_id for s in store.get_steps("run000001")] == ["child", "parent"]

    def test_a_write_that_returned_survives_the_writer_being_killed(self, opener: Opener) -> None:
        if not (self.persistent and self.multiprocess):
            pytest.skip("the store keeps nothing once closed, or lives in one process")
        child = multiprocessing.get_context("spawn").Process(target=_write_then_die, args=(opener,))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == -signal.SIGKILL
        with opener() as store:
            assert [s.output_json for s in store.get_steps("killed")] == ["42"]
            assert len(store.get_events("killed")) == 1


def _write_from_a_process(opener: Opener, run_id: str, writes: int, start: Any) -> None:
    """A separate process: open the store (maybe creating it), then write as fast as it can."""
    start.wait()
    with opener() as store:
        store.create_run(new_run(run_id))
        for n in range(1, writes + 1):
            step = StepRecord(run_id, f"s{n}", 1, "succeeded")
            store.write(steps=[step], events=[EventRecord(run_id, n, T0, "k", step.step_id)])
        store.write(runs=[RunUpdate(run_id, status="succeeded")])


def _write_then_die(opener: Opener) -> None:
    """A separate process: one write, then SIGKILL, with no chance to flush or close."""
    store = opener()
    store.create_run(RunRecord("killed", "wf", "running", 1.0))
    store.write(
        steps=[StepRecord("killed", "a", 1, "succeeded", output_json="42")],
        events=[EventRecord("killed", 1, 1.0, "step_succeeded", "a")],
    )
    os.kill(os.getpid(), signal.SIGKILL)
