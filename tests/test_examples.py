"""The example scripts run as a user would run them and say what they should."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=EXAMPLES.parent,
        env={**os.environ, "PARDAG_DEMO_SCALE": "0.2"},  # the demo's work, a fifth of it
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stderr}"
    return proc


def test_etl_example() -> None:
    out = run_example("etl.py", timeout=60).stdout
    assert out.startswith("run succeeded\n")
    assert re.search(r"^  extract +succeeded +attempts=2$", out, re.MULTILINE)  # one retry
    assert re.search(r"^  bulk_load +skipped .*branch not taken", out, re.MULTILINE)
    assert "loaded 3 rows row by row (via row_load)" in out
    assert "audit: rejected order 3" in out


@pytest.mark.slow
def test_parallel_speedup_demo() -> None:
    # Only that it measured and printed its tables: no assertion on this machine's speed.
    out = run_example("parallel_speedup.py", timeout=110).stdout
    for label in ("sequential", "dynamic (default)", "dynamic, processes", "dynamic, threads"):
        assert re.search(rf"^  {re.escape(label)}.* \d+\.\d\dx  succeeded$", out, re.MULTILINE)
    assert out.count("critical path: ") == 2
    assert "dynamic run status: succeeded" in out
