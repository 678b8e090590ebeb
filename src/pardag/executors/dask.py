"""The ``dask`` executor: plain functions on a ``dask.distributed`` cluster.

pardag decides, Dask executes. The runner still decides everything it decides for the local
executors (readiness, order, pools, retries, timeouts, events, the store); this executor only
hands each ready call to the cluster, from an asynchronous ``distributed.Client`` on the run's
own event loop, and reports its end through an ``asyncio.Future`` like any other executor.

* Where: ``dask_address`` names a running scheduler (``tcp://host:8786``); the run connects a
  client to it and closes only that client at its end. Without one, the run starts a
  ``LocalCluster`` of worker processes (so steps run in parallel despite the GIL, and a step
  that crashes its worker does not take the run with it) and closes it at its end.
* Each call is one Dask task with the key ``pardag-{run}-{step}-{attempt}`` (two runs of one
  workflow on one cluster never share a key), ``pure=False`` and ``retries=0``: pardag retries.
  A call is sent when the cluster has a free thread (its ``total_threads``), the highest
  priority first: Dask assigns a task to a busy worker as soon as it arrives, so a queue on
  the cluster would keep arrival order, not pardag's. Its Dask ``priority`` is its place in
  pardag's ready order (higher rank first), for the cluster to weigh against others' tasks.
* The function and its arguments cross as one pickle made here (``pardag.executors.payload``:
  by value when the worker could not import them, as for the ``processes`` executor); an
  input that another step left on the cluster crosses as its Dask future instead, worker to
  worker (``dask_data.Outputs``). A result comes back to the client as soon as its task ends,
  unless it is kept on the cluster (``Label.keep``: a ``KeptOnCluster`` comes back); its future
  is held while a dependent on the cluster may take it (``Label.dependents``), else released.
* A worker announces each call as it begins it (``Label.announce``: on a Dask event topic of
  the run), and the runner's ``on_start`` hook hears of it: ``step_started`` is the worker's.
* ``stop`` cancels the task (``Future.cancel``): a queued one never runs. A task already
  running on a worker thread cannot be interrupted: Dask forgets it, but the thread runs the
  function to its end (docs/scale-out.md), unless it runs isolated (``Label.isolate``: in a
  subprocess of the worker, killed once the call's cancel ``Event`` is set; ``dask_isolation``).
* A step's ``resources`` that are no pardag pool are Dask worker resources (``Label``); a call
  asking for one that no worker has fails at submit, not by waiting forever.
* A worker that dies mid-step fails that attempt (the clusters this executor starts allow no
  re-run by Dask: ``allowed-failures`` 0), and pardag's retry policy decides what follows;
  the error names the step and the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib.util
import itertools
import pickle
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pardag.errors import ArgumentError
from pardag.executors.base import Executor, Label, deliverable
from pardag.executors.dask_data import KeptOnCluster, Outputs, unswapped
from pardag.executors.dask_worker import Talk, run_call, summary
from pardag.executors.payload import describe, dumps
from pardag.states import ExecutorName
from pardag.steplog import Logged

__all__ = ["LOCAL_CONFIG", "DaskExecutor", "missing_dask"]

LOCAL_CONFIG = {"distributed.scheduler.allowed-failures": 0}
"""The Dask settings of a cluster the executor starts (docs/scale-out.md): a worker that dies
fails the attempt at once, and pardag's retry policy decides what follows."""


def missing_dask() -> str | None:
    """Why the ``dask`` executor cannot run here (Dask is not installed), or None."""
    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        found = False
    if found:
        return None
    return "runs on the dask executor, which needs Dask: pip install 'pardag[dask]'"


@dataclass(order=True)
class _Held:
    """A call waiting for a free thread on the cluster; the heap pops the highest priority,
    then the earliest submitted."""

    rank: int
    seq: int
    future: asyncio.Future[Any] = field(compare=False)
    payload: bytes = field(compare=False)
    label: Label = field(compare=False)
    inputs: list[Any] = field(compare=False)  # futures of the outputs it takes, held here
    taken: list[int] = field(compare=False)  # their ids (``Outputs.used``)


class DaskExecutor(Executor):
    """Runs plain functions as tasks on a Dask cluster; see the module docstring."""

    name = ExecutorName.DASK
    labels = True

    def __init__(self, max_workers: int | None = None, address: str | None = None) -> None:
        self._max_workers = max_workers
        self._address = address
        self.label: Callable[[int], Label] | None = None
        self.on_start: Callable[[int, float, str], None] | None = None
        self._client: asyncio.Task[Any] | None = None  # a distributed.Client (untyped)
        self._cluster: Any = None
        self._held: list[_Held] = []
        self._seq = itertools.count()
        self._tasks: dict[asyncio.Future[Any], asyncio.Task[None]] = {}
        self._dask: dict[asyncio.Future[Any], Any] = {}  # distributed.Future by ours
        self._cancels: set[asyncio.Future[Any]] = set()
        self._resources: list[dict[str, float]] | None = None  # each worker's, when asked
        self._outputs = Outputs()
        self._stops: dict[asyncio.Future[Any], str] = {}  # isolated calls: their cancel Event
        self._starting: dict[str, tuple[int, asyncio.Future[Any]]] = {}  # by key: announced
        self._results: dict[str, asyncio.Future[bytes]] = {}  # by key: a small one, sent
        self._run = uuid.uuid4().hex[:12]
        self._topic = f"pardag-started-{self._run}"
        self._closed = False

    @property
    def capacity(self) -> int | None:
        """``max_concurrency`` when set; else None: every ready step is handed over, and
        held here until the cluster has a free thread for it."""
        return self._max_workers

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the dask executor is closed")
        future: asyncio.Future[Any] = loop.create_future()
        seq = next(self._seq)
        label = self._name(tag, seq)
        args, kwargs, inputs, taken = self._outputs.swap(args, kwargs)
        gone = unswapped(args, kwargs)
        if gone is not None:
            future.set_exception(_gone(gone, label.what))
            return future
        try:
            payload = dumps((fn, args, kwargs))
        except Exception as exc:
            error = TypeError(
                f"the dask executor must send {fn!r} and its arguments to a worker, but they "
                f"cannot be pickled ({describe(exc)}); pass picklable values, or let the "
                "function open what it needs itself"
            )
            error.__cause__ = exc
            future.set_exception(error)
            return future
        held = _Held(-label.priority, seq, future, payload, label, inputs, taken)
        heapq.heappush(self._held, held)
        if label.announce:
            self._starting[label.key] = (tag, future)
        future.add_done_callback(self._on_future_done)
        if self._client is None:
            self._client = loop.create_task(self._connect())
            self._client.add_done_callback(lambda _: self._send())
        self._send()
        return future

    def stop(self, future: asyncio.Future[Any]) -> bool:
        """Cancel the call: a held or queued one never runs; a running one goes on out of
        sight (a thread cannot be stopped)."""
        future.cancel()  # _on_future_done cancels its task on the cluster
        return True

    async def aclose(self) -> None:
        """Cancel every task still on the cluster, close the client and any cluster started."""
        self._closed = True
        for held in self._held:
            held.future.cancel()
        self._held.clear()
        for future in list(self._tasks):
            future.cancel()
        tasks = list(self._tasks.values())
        await asyncio.gather(*tasks, *self._cancels, return_exceptions=True)
        self._cancels.clear()
        for task in self._outputs.drop_all():
            task.release()
        starting, self._client = self._client, None
        if starting is not None:
            if not starting.done():
                starting.cancel()
            with contextlib.suppress(BaseException):
                client = await starting
                await _forget_topic(client, self._topic)
                await client.close()
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            try:
                await cluster.close()
            finally:
                _mainless_workers.release()

    # --- on the loop ----------------------------------------------------------------------

    def _name(self, tag: int, seq: int) -> Label:
        """The runner's label of the step, or one made up for a call without a step."""
        if self.label is not None and tag >= 0:
            return self.label(tag)
        key = f"pardag-{self._run}-call-{seq}"
        return Label(key, f"task {key!r}", 0)

    def _send(self) -> None:
        """Hand held calls to the cluster, highest priority first, while it has a free
        thread: the rest wait here, where pardag's order holds (Dask would assign them to
        busy workers as they arrive)."""
        starting = self._client
        if starting is None or not starting.done() or self._closed:
            return
        error = None if starting.cancelled() else starting.exception()
        if error is not None or starting.cancelled():
            for held in self._held:
                if not held.future.done():
                    held.future.set_exception(error or RuntimeError("the client was closed"))
            self._held.clear()
            return
        client = starting.result()
        threads = max(1, client.scheduler_info().get("total_threads", 0))
        loop = starting.get_loop()
        while self._held and len(self._tasks) < threads:
            held = heapq.heappop(self._held)
            if not held.future.done():
                call = self._call(client, held)
                self._tasks[held.future] = loop.create_task(call)

    async def _connect(self) -> Any:
        """The client, listening to what the workers say on the run's topic (``Talk``)."""
        client = await self._open()
        client.subscribe_topic(self._topic, self._heard)
        _send_promptly(client)
        return client

    def _heard(self, event: tuple[float, Any]) -> None:
        """A worker announced a call's start, or sent its small result (on the loop)."""
        message = event[1]
        key = str(message.get("key"))
        if "value" in message:
            sent = self._results.get(key)
            if sent is not None and not sent.done():
                sent.set_result(message["value"])
            return
        tag, future = self._starting.pop(key, (-1, None))
        if future is not None and not future.done() and self.on_start is not None:
            self.on_start(tag, float(message["at"]), str(message.get("worker")))

    async def _open(self) -> Any:
        """The client, connected to ``address`` or to a LocalCluster started for the run."""
        import dask
        import distributed

        Client: Any = distributed.Client  # untyped
        LocalCluster: Any = distributed.LocalCluster
        if self._address is None:
            with dask.config.set(LOCAL_CONFIG), _mainless_workers:
                self._cluster = await LocalCluster(
                    processes=True, asynchronous=True, dashboard_address=None
                )
            _mainless_workers.hold()  # a worker that dies is restarted the same way
            return await Client(self._cluster, asynchronous=True)
        try:
            return await Client(self._address, asynchronous=True)  # Dask's connect timeout
        except (OSError, TimeoutError, ValueError) as exc:
            waited = dask.config.get("distributed.comm.timeouts.connect")
            raise ArgumentError(
                f"dask_address {self._address!r}: no Dask scheduler answered there within "
                f"{waited} ({describe(exc)}); check the address (dask_address, "
                "--dask-address, PARDAG_DASK_ADDRESS or execution: dask: address:) and that "
                "the scheduler runs, or leave it out to start a LocalCluster for the run"
            ) from None

    async def _call(self, client: Any, held: _Held) -> None:
        """Run one call as a Dask task; settle its future with the outcome."""
        future, label = held.future, held.label
        try:
            if label.resources:
                await self._check_resources(client, label)
            talk = Talk(self._topic, label.key, label.announce, not label.keep)
            stop = f"{label.key}-stop" if label.isolate else None
            if stop is not None:
                self._stops[future] = stop
            task: Any = client.submit(
                run_call,
                held.payload,
                talk,
                stop,
                *held.inputs,
                key=label.key,
                pure=False,
                retries=0,
                priority=label.priority,
                resources=label.resources,
            )
            self._dask[future] = task
            kept = False
            try:
                if label.keep:
                    result = await self._summed(client, task, label)
                else:
                    result = await self._result(task, label.key)
                outcome: tuple[bool, Any] = (True, result)
                value = result.value if isinstance(result, Logged) else result
                if label.dependents and (label.keep or _worth_holding(value)):
                    kept = self._outputs.hold(value, task, label.dependents)
                for used in self._outputs.used(held.taken):
                    used.release()
            finally:
                self._dask.pop(future, None)
                self._starting.pop(label.key, None)
                self._results.pop(label.key, None)
                self._stops.pop(future, None)
                if not kept:
                    task.release()  # the result is here: the cluster need not keep it
        except asyncio.CancelledError:
            if not future.done():
                future.cancel()
            return
        except BaseException as exc:
            outcome = (False, _explained(exc, label.what))
        finally:
            self._tasks.pop(future, None)
            self._send()
        if not future.done():
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])

    async def _result(self, task: Any, key: str) -> Any:
        """The call's result: as its worker sent it on the topic if small (no round trip to
        fetch it), else fetched; its error, or its worker's death, as Dask reports it."""
        sent = self._results[key] = asyncio.get_running_loop().create_future()
        ended = asyncio.ensure_future(task._state.wait())  # distributed's own wait, no fetch
        try:
            await asyncio.wait((sent, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if sent.done():
            with contextlib.suppress(Exception):  # unpicklable here: fetch it as Dask does
                return pickle.loads(sent.result())
        return await task

    async def _summed(self, client: Any, task: Any, label: Label) -> Any:
        """A kept output's ``KeptOnCluster`` (with the log its call wrote), asked of the
        worker that holds it: the value itself never comes here."""
        info: Any = client.submit(summary, task, key=f"{label.key}-summary", pure=False)
        try:
            kind, nbytes, pieces, dropped = await info
        except Exception:
            if task.status == "error":
                await task  # the step's own error (or its lost worker's), not the summary's
            raise
        finally:
            info.release()
        kept = KeptOnCluster(label.key, kind, nbytes)
        return kept if pieces is None else Logged(kept, pieces, dropped)

    async def _check_resources(self, client: Any, label: Label) -> None:
        """Fail at submit, not by waiting forever, when no worker has what the call needs
        (asked of the scheduler once, and again before giving up: workers come and go)."""
        assert label.resources is not None
        known = self._resources or []
        for fresh in (self._resources is None, True):
            if fresh:
                info = await client.scheduler.identity(n_workers=-1)
                workers = info.get("workers", {}).values()
                self._resources = known = [dict(w.get("resources") or {}) for w in workers]
            if any(_fits(label.resources, have) for have in known):
                return
        kinds = sorted({name for have in known for name in have}) or ["none"]
        raise RuntimeError(
            f"{label.what} asks for Dask worker resources {label.resources}, which no worker "
            f"of the cluster has (its workers' resources: {', '.join(kinds)}); start workers "
            "with them (dask worker --resources 'GPU=1'), or declare a pardag pool of that "
            "name to make it a limit of the run instead"
        )

    def _on_future_done(self, future: asyncio.Future[Any]) -> None:
        """A cancelled future (``stop``, a timeout, the run ending) cancels its task."""
        if not future.cancelled():
            return
        task = self._dask.pop(future, None)
        stop = self._stops.pop(future, None)
        if task is not None and self._client is not None and self._client.done():
            client: Any = self._client.result()
            cancel = client.cancel([task], force=True)
            self._cancels.add(asyncio.ensure_future(cancel))  # aclose awaits them
            if stop is not None:  # its worker kills the subprocess
                self._cancels.add(asyncio.ensure_future(_set_event(client, stop)))
        call = self._tasks.get(future)
        if call is not None:
            call.cancel()


class _Mainless:
    """While a cluster this module started is open, distributed starts its worker processes
    as pardag's own (``pardag.executors.spawning.WorkerProcess``): forked by pardag's fork
    server, blind to ``__main__``. Else each would run the user's script again, and a script
    that runs a workflow at its top level (no ``__main__`` guard) would fail to start them.
    Functions from ``__main__`` reach the workers by value (``payload.dumps``)."""

    def __init__(self) -> None:
        self._held = 0
        self._original: Any = None

    def __enter__(self) -> None:
        self.hold()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def hold(self) -> None:
        from multiprocessing.context import ForkServerContext

        from distributed import process

        from pardag.executors.spawning import WorkerProcess

        class Context(ForkServerContext):
            Process = WorkerProcess

        if self._held == 0:
            self._original = getattr(process, _GET_CONTEXT)
            context = Context()
            setattr(process, _GET_CONTEXT, lambda: context)
        self._held += 1

    def release(self) -> None:
        from distributed import process

        self._held -= 1
        if self._held == 0:
            setattr(process, _GET_CONTEXT, self._original)


_GET_CONTEXT = "get_mp_context"
"""What ``distributed.process`` calls for the multiprocessing context of a new worker."""
_mainless_workers = _Mainless()


def _fits(needs: dict[str, int], has: dict[str, float]) -> bool:
    return all(has.get(name, 0) >= amount for name, amount in needs.items())


HELD_FROM = 64 * 1024
"""The size (``dask.sizeof``) from which an output's dependents on the cluster take it from
the worker that holds it; a smaller one goes inside their call, which costs less than a
transfer between workers."""


def _worth_holding(value: Any) -> bool:
    from dask.sizeof import sizeof

    return bool(sizeof(value) >= HELD_FROM)


SEND_EVERY = 0.001
"""Seconds between two batches of messages from the client to the scheduler (Dask's: 0.01)."""


def _send_promptly(client: Any) -> None:
    """Let the client send to the scheduler every ``SEND_EVERY`` instead of every 10 ms.

    Dask's client batches its messages (submissions, releases) and sends at most one batch
    every 10 ms, which suits a client that submits a whole graph at once. pardag submits each
    step as it becomes ready, so a step whose call follows another message within 10 ms
    waited up to 10 ms (on a chain, every step did). The interval is the client's own
    ``BatchedSend`` attribute; a client without it is left as it is."""
    comm = getattr(client, "scheduler_comm", None)
    if comm is not None and isinstance(getattr(comm, "interval", None), float):
        comm.interval = SEND_EVERY


async def _forget_topic(client: Any, topic: str) -> None:
    """Drop what the scheduler kept of the run's topic (it keeps every topic's messages)."""

    def forget(dask_scheduler: Any) -> None:  # sent by value: the scheduler needs no pardag
        broker = getattr(dask_scheduler, "_broker", None)  # distributed >= 2024.8
        topics = broker._topics if broker is not None else dask_scheduler.events
        topics.pop(topic, None)

    with contextlib.suppress(Exception):  # a scheduler that runs no functions: it keeps them
        await client.run_on_scheduler(forget)


async def _set_event(client: Any, name: str) -> None:
    """Set the Dask ``Event`` ``name`` (an isolated call's cancel), then forget it."""
    import distributed

    Event: Any = distributed.Event  # untyped
    await Event(name, client=client).set()


def _gone(kept: KeptOnCluster, what: str) -> RuntimeError:
    """The error of a call given an output kept on the cluster that it cannot take."""
    return RuntimeError(
        f"{what} takes an output kept on the Dask cluster ({kept!r}) that is no longer held "
        "there; run without keep_outputs_on_cluster, or rerun the step that made it"
    )


def _explained(exc: BaseException, what: str) -> BaseException:
    """The step's own exception as is; a lost worker or cancelled task in pardag's words."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        worker = getattr(exc.last_worker, "address", exc.last_worker)
        error = RuntimeError(
            f"the Dask worker {worker} died while running {what}; "
            "pardag's retry policy decides whether it runs again (see the worker's log for "
            "why it died: often memory)"
        )
        error.__cause__ = exc
        return error
    if isinstance(exc, FutureCancelledError):
        error = RuntimeError(f"Dask cancelled {what} ({exc}); it did not finish")
        error.__cause__ = exc
        return error
    return deliverable(exc)
