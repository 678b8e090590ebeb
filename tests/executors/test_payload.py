"""What crosses to a worker process, and how: by reference when importable, else by value;
and the validation problem of a step whose function cannot cross at all."""

from __future__ import annotations

import pickle
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pardag import ValidationError, Workflow
from pardag.errors import Problem
from pardag.executors.payload import dumps
from tests.executors import calls
from tests.support import step_problems

LOCK = threading.Lock()


def _uses_the_global_lock() -> None:
    with LOCK:
        pass


def _in_main(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """A function defined in ``__main__``, as a script's or a notebook's are."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def answer():\n    return 42\n", namespace)
    fn: Callable[[], int] = namespace["answer"]
    monkeypatch.setattr(sys.modules["__main__"], "answer", fn, raising=False)
    return fn


def test_an_importable_function_goes_by_reference_as_plain_pickle() -> None:
    call = (calls.add, (1, 2), {})
    assert dumps(call) == pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(dumps(calls.add)) is calls.add


def test_a_function_of_main_goes_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = _in_main(monkeypatch)
    assert b"__main__" in pickle.dumps(fn)  # by reference: a worker would not find it
    copy = pickle.loads(dumps(fn))
    assert copy is not fn
    assert copy() == 42


def test_lambdas_and_closures_go_by_value() -> None:
    base = 40

    def closure() -> int:
        return base + 2

    for fn in (closure, lambda: base + 2):
        assert pickle.loads(dumps(fn))() == 42


# --- validation -------------------------------------------------------------------------


def test_an_unpicklable_closure_is_a_problem_naming_the_step_and_the_variable(
    tmp_path: Path,
) -> None:
    lock = threading.Lock()

    def guarded() -> None:
        with lock:
            pass

    marker = tmp_path / "ran"
    wf = Workflow("unsendable")
    wf.add("first", marker.touch)
    wf.add("guarded", guarded, depends_on=["first"], executor="processes")
    [message] = step_problems(wf, "guarded")
    assert message.startswith(
        "the processes executor must send function "
        "'test_an_unpicklable_closure_is_a_problem_naming_the_step_and_the_variable.<locals>"
        ".guarded' to a worker process, but the variable 'lock' it closes over (a lock), "
        "which cannot be pickled ("
    )
    assert "run the step on executor='threads'" in message
    with pytest.raises(ValidationError, match="guarded"):
        wf.run()
    assert not marker.exists()  # nothing ran


def test_a_global_of_the_script_and_a_default_are_named_too() -> None:
    script: dict[str, Any] = {"__name__": "__main__"}  # a script's namespace: sent by value
    exec("import threading\nLOCK = threading.Lock()\ndef locked():\n    return LOCK\n", script)
    with socket.socket() as sock:

        def send(s: socket.socket = sock) -> None: ...

        wf = Workflow("unsendable")
        wf.add("send", send, executor="processes")
        wf.add("script", script["locked"], executor="processes")
        wf.add("module", _uses_the_global_lock, executor="processes")
        problems = {p.step: p.message for p in _problems(wf)}
    assert "the default of 's' (a socket), which cannot be pickled" in problems["send"]
    assert "the global 'LOCK' it uses (a lock), which cannot be pickled" in problems["script"]
    # A function of an importable module goes by reference: its globals stay where they are.
    assert "module" not in problems


def test_the_run_executor_setting_counts_but_not_for_async_functions() -> None:
    lock = threading.Lock()

    def plain() -> bool:
        return lock.locked()

    async def coroutine() -> bool:
        return lock.locked()

    wf = Workflow("setting", executor="processes")
    wf.add("plain", plain)
    wf.add("coroutine", coroutine)
    wf.add("threads", plain, executor="threads")
    assert [p.step for p in _problems(wf)] == ["plain"]


def _problems(wf: Workflow) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        wf.validate()
    return list(info.value.problems)


def test_a_flow_files_function_goes_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pardag run flow.py`` imports the file under a made-up name no worker can import:
    its functions travel by value, so the module need not exist where they are loaded."""
    import types

    from pardag.executors.payload import FLOW_MODULE_PREFIX

    name = f"{FLOW_MODULE_PREFIX}test0123"
    module = types.ModuleType(name)
    exec("def here_only():\n    return 7\n", module.__dict__)
    monkeypatch.setitem(sys.modules, name, module)
    data = dumps(module.here_only)
    monkeypatch.delitem(sys.modules, name)
    assert pickle.loads(data)() == 7
