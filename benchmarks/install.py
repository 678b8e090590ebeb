"""Install the benchmark's anchors into the running interpreter, one group at a time.

``python benchmarks/install.py``: reads ``benchmarks/requirements.txt``, installs each group
(``# group: NAME``) with pip, and writes the groups that failed, with pip's last error line, to
``benchmarks/results/install-failures.txt`` for the page. Always exits 0: a missing anchor is
reported, not fatal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (HERE / "requirements.txt").read_text().splitlines():
        spec, _, comment = line.partition("#")
        spec = spec.strip()
        if not spec:
            continue
        name = comment.split("group:", 1)[1].split()[0] if "group:" in comment else "misc"
        out.setdefault(name, []).append(spec)
    return out


def main() -> int:
    failures = []
    for name, specs in groups().items():
        print(f"installing {name}: {' '.join(specs)}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *specs],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            why = next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "")
            print(f"  {name} did not install: {why}", flush=True)
            failures.append(f"{name}: pip could not install {' '.join(specs)}: {why.strip()}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "install-failures.txt").write_text("\n".join(failures) + ("\n" if failures else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
