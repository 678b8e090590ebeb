"""The one Dask cluster the dask benchmark's jobs share, and the count of a runner's traffic.

The driver starts it once (``started()``: ``python -m benchmarks.dask_cluster`` in a process
of its own, a ``LocalCluster`` of worker processes) and hands its address to every job of the
dask series in ``$PARDAG_BENCH_DASK_ADDRESS``; pardag (``executor="dask"``) and the direct
``Client.submit`` graph then run on the same scheduler and workers, one job after the other.
The cluster lives outside the jobs' process trees, so their memory figures are the runner's
(pardag's) or the client's (distributed's) alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from benchmarks.workloads import REPO

ADDRESS_ENV = "PARDAG_BENCH_DASK_ADDRESS"
WORKERS = 2
THREADS = 4
"""2 worker processes x 4 threads: 8 threads, W4's 8 slots; every dask case runs 8 slots."""


def address() -> str:
    """The shared cluster's scheduler address, as the driver set it for the job."""
    found = os.environ.get(ADDRESS_ENV)
    if not found:
        raise SystemExit(f"no Dask cluster: run through benchmarks.run, which sets ${ADDRESS_ENV}")
    return found


@contextlib.contextmanager
def started(workers: int = WORKERS, threads: int = THREADS) -> Iterator[str]:
    """Start the cluster in its own process; yield its scheduler address; stop it."""
    cmd = [sys.executable, "-m", "benchmarks.dask_cluster", f"--workers={workers}"]
    env = dict(os.environ)  # its workers import the step bodies from benchmarks.tasks
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen(
        [*cmd, f"--threads={threads}"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Dask cluster did not start (exit code {proc.wait()})")
        yield str(json.loads(line)["address"])
    finally:
        proc.stdin.close()  # the cluster process closes the cluster at EOF
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def serve(workers: int, threads: int) -> None:
    """Run the cluster until stdin closes; its address goes to stdout as one JSON line."""
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
    ) as cluster:
        print(json.dumps({"address": cluster.scheduler_address}), flush=True)
        sys.stdin.read()


class Traffic:
    """Bytes this process's Dask comms wrote and read (every TCP message, its frames and
    headers), counted from ``install()`` on: what one runner or client sends and receives."""

    written = 0
    read = 0

    @classmethod
    def install(cls) -> None:
        from distributed.comm import tcp

        if getattr(tcp, "_pardag_counted", False):
            return
        write, read_rw = tcp.TCP.write, tcp.read_bytes_rw

        async def counted_write(self: Any, *args: Any, **kwargs: Any) -> int:
            n = await write(self, *args, **kwargs)
            cls.written += int(n)
            return n

        async def counted_read(stream: Any, n: int) -> Any:
            cls.read += n + 8  # and the 8-byte length read before (about: once a message)
            return await read_rw(stream, n)

        tcp.TCP.write, tcp.read_bytes_rw = counted_write, counted_read
        tcp._pardag_counted = True

    @classmethod
    def total(cls) -> dict[str, int]:
        return {"bytes_written": cls.written, "bytes_read": cls.read}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    serve(args.workers, args.threads)


if __name__ == "__main__":
    main()
