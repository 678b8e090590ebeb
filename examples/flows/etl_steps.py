"""The Python steps of the example flows etl.yaml, etl.toml and etl.json.

The flow files name these functions as ``function: "etl_steps:clean"``; ``pardag.load`` puts
the flow file's directory on ``sys.path``, so they run from anywhere:

    .venv/bin/pardag run examples/flows/etl.yaml
    .venv/bin/python -c "import pardag; print(pardag.load('examples/flows/etl.yaml').run())"

Each function takes its dependencies' outputs by parameter name, as any Python step does.
"""

from __future__ import annotations

import csv
import io
import threading
from typing import Any

_lock = threading.Lock()
_calls = {"rates": 0}


class RatesUnavailable(Exception):
    """The exchange-rate service did not answer this time; worth another try."""


def rates() -> dict[str, float]:
    """Exchange rates from a flaky service: every other call fails (the flow retries it)."""
    with _lock:
        _calls["rates"] += 1
        failing = _calls["rates"] % 2 == 1
    if failing:
        raise RatesUnavailable("connection reset by peer")
    return {"USD": 1.0, "EUR": 1.1}


def clean(extract: dict[str, Any], rates: dict[str, float]) -> dict[str, list[dict[str, Any]]]:
    """Parse the CSV the ``extract`` shell step printed; split good rows from rejected ones."""
    good, rejected = [], []
    for row in csv.DictReader(io.StringIO(extract["stdout"])):
        try:
            amount = float(row["amount"]) * rates[row["currency"]]
        except (ValueError, KeyError):
            rejected.append(row)
        else:
            good.append({"order_id": int(row["order_id"]), "amount": round(amount, 2)})
    return {"good": good, "rejected": rejected}


def bulk_load(clean: dict[str, list[dict[str, Any]]]) -> str:
    """Load all good rows at once (the branch for large batches)."""
    return f"bulk-loaded {len(clean['good'])} rows"


def row_load(clean: dict[str, list[dict[str, Any]]]) -> str:
    """Load the good rows one by one (the branch for small batches)."""
    return f"loaded {len(clean['good'])} rows one by one"


def audit(clean: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Describe each rejected row; runs only when there are some (its ``when``)."""
    return [f"rejected order {row['order_id']}" for row in clean["rejected"]]


def summary(loaded: dict[str, str], clean: dict[str, list[dict[str, Any]]]) -> str:
    """One line for the run: how the rows were loaded and their total amount."""
    (how,) = loaded.values()
    total = sum(row["amount"] for row in clean["good"])
    return f"{how}; total {total:.2f}"
