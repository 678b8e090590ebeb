"""A small ETL workflow: extract, validate, transform, then load in one of two ways.

    extract ──> clean ─┬─> totals ──> is_large ─┬─(true)──> bulk_load ──┐
                       │                         └─(false)─> row_load ───┴─> loaded ──> summary
                       └─> audit (runs only when some rows were rejected)

What it shows:

* ``@wf.step``: dependencies come from parameter names (``clean(extract)`` depends on
  ``extract`` and receives its output).
* ``retry``: ``extract`` reads from a source that fails on the first try; ``RetryPolicy``
  retries it after a short backoff.
* ``timeout``: ``totals`` must finish within 2 seconds.
* a ``condition`` step (``is_large``) choosing a branch, and a ``merge`` step (``loaded``)
  joining the branches: the branch not taken is skipped, the merge still runs.
* ``when``: ``audit`` runs only if some rows were rejected.

Run it: ``.venv/bin/python examples/etl.py``
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pardag

SOURCE = """\
order_id,customer,amount
1,acme,120.50
2,globex,80.00
3,initech,not-a-number
4,acme,42.25
5,umbrella,310.00
"""

LARGE_BATCH = 3  # loads of more rows than this use the bulk path
WAREHOUSE: list[dict[str, Any]] = []  # stands in for a database table

wf = pardag.Workflow("etl")


class SourceUnavailable(Exception):
    """The source could not be read this time; worth another try."""


_attempts = {"extract": 0}


@wf.step(retry=pardag.RetryPolicy(retries=3, delay=0.05, retry_on=(SourceUnavailable,)))
def extract() -> list[dict[str, str]]:
    _attempts["extract"] += 1
    if _attempts["extract"] == 1:
        raise SourceUnavailable("connection reset by peer")
    return list(csv.DictReader(io.StringIO(SOURCE)))


@wf.step
def clean(extract: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    good, rejected = [], []
    for row in extract:
        try:
            good.append({**row, "amount": float(row["amount"])})
        except ValueError:
            rejected.append(row)
    return {"good": good, "rejected": rejected}


@wf.step(when=lambda clean: bool(clean["rejected"]))
def audit(clean: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        f"rejected order {row['order_id']}: amount {row['amount']!r}" for row in clean["rejected"]
    ]


@wf.step(timeout=2)
def totals(clean: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    by_customer: dict[str, float] = {}
    for row in clean["good"]:
        by_customer[row["customer"]] = by_customer.get(row["customer"], 0.0) + row["amount"]
    return [{"customer": c, "total": round(t, 2)} for c, t in sorted(by_customer.items())]


@wf.step(kind="condition")
def is_large(totals: list[dict[str, Any]]) -> bool:
    return len(totals) > LARGE_BATCH


@wf.step(depends_on=["is_large", "totals"], branch={"is_large": "true"})
def bulk_load(totals: list[dict[str, Any]]) -> dict[str, Any]:
    WAREHOUSE.extend(totals)  # one round trip for the whole batch
    return {"method": "bulk", "rows": len(totals)}


@wf.step(depends_on=["is_large", "totals"], branch={"is_large": "false"})
def row_load(totals: list[dict[str, Any]]) -> dict[str, Any]:
    for row in totals:
        WAREHOUSE.append(row)  # one round trip per row
    return {"method": "row by row", "rows": len(totals)}


# A merge step without a function outputs the inputs that succeeded: here the one branch that ran.
wf.add("loaded", kind="merge", depends_on=["bulk_load", "row_load"])


@wf.step
def summary(loaded: dict[str, dict[str, Any]]) -> str:
    (branch, info), *_ = loaded.items()
    return f"loaded {info['rows']} rows {info['method']} (via {branch})"


def main() -> pardag.RunResult:
    result = wf.run(max_concurrency=4)
    print(f"run {result.status.value}")
    for sid, step in result.steps.items():
        note = f" ({step.reason})" if step.reason else ""
        print(f"  {sid:<10} {step.state.value:<10} attempts={step.attempts}{note}")
    print(result.outputs["summary"])
    for line in result.outputs.get("audit", []):
        print("audit:", line)
    return result


if __name__ == "__main__":
    main().raise_for_status()
