"""``POST /api/runs/{id}/cancel`` on a run the service's worker holds (SQLite and
PostgreSQL): a 202 at once, then the worker stops the run, its long step's process gone, the
lease let go, and it goes on with the next queued run. Another organisation's run is a 404.
"""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import FLOW, Served
from tests.test_worker_cancel import LONG, alive


def test_cancelling_a_run_the_worker_holds_stops_it_there(served: Served, tmp_path: Path) -> None:
    flag, pids = tmp_path / "never", tmp_path / "pids"
    long = served.start(
        "operator",
        served.workflow("admin", LONG),
        params={"flag": str(flag), "pids": str(pids)},
    )
    served.wait_for("viewer", long, lambda r: r["status"] == "running" and pids.exists())
    served.wait_for("viewer", long, lambda r: pids.read_text().strip() != "")
    pid = int(pids.read_text())
    assert alive(pid)
    after = served.start("operator", served.workflow("admin", FLOW))  # waits for the worker

    theirs = served.call("rival", "POST", f"/api/runs/{long}/cancel")
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    held = served.store.get_run(long)
    assert held is not None and held.worker is not None and held.cancel_requested is None
    assert served.store.cancel_requests(held.worker) == {}

    answer = served.call("operator", "POST", f"/api/runs/{long}/cancel")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["id"], body["status"]) == (long, "running")  # answered before it stopped
    assert "to cancel run" in body["message"]

    run = served.wait_for("viewer", long, lambda r: r["status"] != "running")
    assert (run["status"], run["error"]) == (
        "cancelled",
        "run cancelled: by token 'operator' over the API",
    )
    steps = {s["step"]: s for s in run["steps"]}
    assert steps["wait"]["reason"] == "cancelled by token 'operator' over the API"
    served.wait_for("viewer", long, lambda r: not alive(pid))
    record = served.store.get_run(long)
    assert record is not None and record.lease_until is None
    done = served.wait_for("viewer", after, lambda r: r["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded" and not flag.exists()
    again = served.call("operator", "POST", f"/api/runs/{long}/cancel")
    assert again.status_code == 409 and "already finished" in again.json()["error"]["message"]
