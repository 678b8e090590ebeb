"""Step bodies shared by every engine, and the calibration of the ``cpu`` kind.

Bodies are module-level functions so that process-based engines can import them. Each comes
in two spellings: without parameters (for engines that call a step with nothing, such as
pardag and the stdlib loop) and taking ``*deps`` (for engines that pass the outputs of the
dependencies as arguments, such as Dask and Ray); both do the same work. W7's mapped forms
call a body per item instead (``item_body``): it takes the item, an index,
and returns it, so that a second stage can map over the first's outputs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["calibrate", "cpu_spin", "item_body", "item_noop", "noop", "noop_args"]


def noop() -> None:
    return None


def noop_args(*_deps: object) -> None:
    return None


def sleep(duration: float, *_deps: object) -> None:
    time.sleep(duration)


def item_noop(item: int) -> int:
    return item


def item_body(kind: str, durations: list[float]) -> Callable[[int], int]:
    """W7's body for one stage: ``item_noop``, or one that sleeps item ``k``'s duration and
    returns ``k``."""
    if kind == "noop":
        return item_noop

    def sleep_item(k: int) -> int:
        time.sleep(durations[k])
        return k

    return sleep_item


async def async_noop(*_deps: object) -> None:
    return None


async def async_sleep(duration: float, *_deps: object) -> None:
    await asyncio.sleep(duration)


def cpu_spin(iterations: int, *_deps: object) -> int:
    """Pure-Python CPU work: ``iterations`` turns of a small loop (holds the GIL throughout)."""
    x = 0
    for i in range(iterations):
        x = (x + i * i) % 1_000_003
    return x


def iterations(rate: float, duration: float) -> int:
    """How many ``cpu_spin`` iterations take ``duration`` seconds at ``rate`` per second."""
    return max(1, round(rate * duration))


def calibrate(target: float = 0.25, trials: int = 5) -> float:
    """Iterations of ``cpu_spin`` per second on one idle core.

    The fastest of ``trials``: other load on the machine can only slow a trial down, so the
    fastest is the closest to an idle core.
    """
    n = 200_000
    while True:  # grow the probe until it takes a measurable time
        t0 = time.perf_counter()
        cpu_spin(n)
        took = time.perf_counter() - t0
        if took > 0.05:
            break
        n *= 4
    rate = n / took
    rates = []
    for _ in range(trials):
        probe = iterations(rate, target)
        t0 = time.perf_counter()
        cpu_spin(probe)
        rates.append(probe / (time.perf_counter() - t0))
    return max(rates)
