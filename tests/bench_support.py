"""What the benchmark tests share: the header of a results document, as ``benchmarks.run``
writes it, for the page's writer to read."""

from __future__ import annotations

from typing import Any


def results_doc(results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A quick run's results document holding ``results`` (and ``extra`` keys)."""
    return {
        "mode": "quick",
        "date": "2026-12-03 12:00 UTC",
        "command": "make bench",
        "machine": {"cpu": "test", "cores": 2, "memory_gib": 1.0, "os": "Linux"},
        "versions": {"python": "3.11", "distributed": "2026.8.0"},
        "cpu_rate": 1e7,
        "limits": {"run_timeout_s": 60.0, "memory_gib": 16.0},
        "results": results,
        **extra,
    }
