"""Step logs through real runs: what steps print and log lands in their own attempt's log,
on every executor, capped and said so; and the recorded events keep cause before effect."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

import pardag
from pardag import RunStatus
from pardag.steplog import LOG_LIMIT, StepLog, cut_note
from pardag.store import open_store
from tests import steps


@pytest.fixture
def url(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def _log(url: str, run_id: str, step: str) -> list[tuple[int, str, str]]:
    with open_store(url) as store:
        return [(p.attempt, p.stream, p.text) for p in store.get_logs(run_id, step)]


def _text(url: str, run_id: str, step: str) -> str:
    return "".join(text for _, _, text in _log(url, run_id, step))


def test_a_dependents_cancel_is_recorded_after_its_causes_failure(url: str) -> None:
    def broken() -> None:
        raise KeyError("missing_key")

    wf = pardag.Workflow("order")
    wf.add("a", broken)
    wf.add("b", lambda a: a, depends_on=["a"])
    wf.add("c", lambda b: b, depends_on=["b"])
    result = wf.run(store=url)
    assert result.status is RunStatus.FAILED
    with open_store(url) as store:
        kinds = [(e.kind, e.step) for e in store.get_events(result.run_id)]
    failed = kinds.index(("step_failed", "a"))
    assert kinds.index(("step_cancelled", "b")) > failed
    assert kinds.index(("step_cancelled", "c")) > failed


def test_two_steps_printing_at_once_on_threads_each_get_only_their_own_lines(url: str) -> None:
    both = threading.Barrier(2, timeout=10)

    def talk(name: str) -> object:
        def step() -> str:
            both.wait()  # the two run at the same time
            for n in range(200):
                print(f"{name} {n}")
                if n % 50 == 0:
                    logging.getLogger("talk").warning("%s warns %d", name, n)
                    print(f"{name} err {n}", file=sys.stderr)
            return name

        return step

    wf = pardag.Workflow("talkers")
    wf.add("left", talk("left"), executor="threads")
    wf.add("right", talk("right"), executor="threads")
    result = wf.run(store=url, max_concurrency=2)
    assert result.status is RunStatus.SUCCEEDED
    for name, other in (("left", "right"), ("right", "left")):
        log = _log(url, result.run_id, name)
        out = "".join(t for _, s, t in log if s == "stdout")
        assert out == "".join(f"{name} {n}\n" for n in range(200))
        err = "".join(t for _, s, t in log if s == "stderr")
        assert err == "".join(f"{name} err {n}\n" for n in range(0, 200, 50))
        records = "".join(t for _, s, t in log if s == "log")
        assert records.count(f"WARNING talk: {name} warns") == 4
        assert other not in "".join(t for _, _, t in log)


def test_async_steps_and_the_tasks_they_start_write_into_their_own_logs(url: str) -> None:
    import asyncio

    async def chatty(name: str) -> None:
        async def helper() -> None:
            print(f"{name} helper")

        for n in range(3):
            print(f"{name} {n}")
            await asyncio.sleep(0)
        await asyncio.gather(helper())

    wf = pardag.Workflow("tasks")
    for name in ("x", "y"):

        async def step(name: str = name) -> None:
            await chatty(name)

        wf.add(name, step)
    result = wf.run(store=url)
    for name in ("x", "y"):
        assert _text(url, result.run_id, name) == f"{name} 0\n{name} 1\n{name} 2\n{name} helper\n"


def test_steps_on_worker_processes_bring_their_log_back(url: str) -> None:
    wf = pardag.Workflow("procs")
    wf.add("talk", steps.print_lines, executor="processes")
    wf.add("fail", steps.print_then_fail, executor="processes")
    result = wf.run(store=url, on_failure="continue")
    assert result.outputs["talk"] == 3
    assert _log(url, result.run_id, "talk") == [
        (1, "stdout", "line 0\nline 1\nline 2\n"),
        (1, "stderr", "done\n"),
    ]
    assert _log(url, result.run_id, "fail") == [(1, "stdout", "about to fail\n")]


def test_a_log_past_its_limit_is_cut_and_says_how_much_was_dropped(url: str) -> None:
    def flood() -> None:
        line = "x" * 1023 + "\n"
        for _ in range(LOG_LIMIT // 1024 + 10):
            print(line, end="")

    wf = pardag.Workflow("flood")
    wf.add("f", flood)
    result = wf.run(store=url)
    text = _text(url, result.run_id, "f")
    assert text.endswith("[pardag: ... log cut at 1 MiB; 10,240 bytes dropped]\n")
    assert len(text.encode()) == LOG_LIMIT + len(cut_note(LOG_LIMIT, 10_240))


def test_without_a_step_running_writes_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    from pardag.steplog import install

    install()
    print("plain")
    assert capsys.readouterr().out == "plain\n"


def test_a_log_hands_on_its_pieces_as_it_grows_then_the_rest_when_closed() -> None:
    got: list[tuple[int, str, str]] = []
    log = StepLog(lambda seq, stream, text: got.append((seq, stream, text)), limit=10)
    log.write("stdout", "héllo")  # six bytes
    log.write("stdout", " world")  # four of six kept (the limit counts bytes)
    log.write("stderr", "lost")
    log.close()
    log.write("stdout", "after close")
    assert "".join(t for _, s, t in got if s == "stdout") == "héllo wor"
    assert got[-1] == (len(got), "log", "[pardag: ... log cut at 10 bytes; 6 bytes dropped]\n")
