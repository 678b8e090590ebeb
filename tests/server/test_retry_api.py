"""``POST /api/runs/{id}/retry`` over a real server (SQLite and PostgreSQL): a failed run is
retried by the service's worker, reusing what succeeded; what the run's state refuses is a
409, a step it does not have a 422, each in ``pardag retry``'s words; another organisation's
run is a 404.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import FLOW, GATED, Served


def flaky(flag: Path) -> str:
    """A chain whose middle step fails until ``flag`` exists."""
    return f"""\
name: flaky
steps:
  a:
    kind: shell
    command: echo first
  b:
    kind: shell
    command: test -f {flag} && echo fixed
    depends_on: a
  c:
    kind: shell
    command: echo third
    depends_on: b
"""


def finished(run: dict[str, object]) -> bool:
    return run["status"] in ("succeeded", "failed", "cancelled")


def attempts(served: Served, run_id: str) -> dict[str, tuple[str, int]]:
    run = served.call("viewer", "GET", f"/api/runs/{run_id}").json()
    return {s["step"]: (s["state"], s["attempts"]) for s in run["steps"]}


def test_a_failed_run_is_retried_by_a_worker_reusing_what_succeeded(
    served: Served, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    run_id = served.start("operator", served.workflow("admin", flaky(flag)))
    assert served.wait_for("viewer", run_id, finished)["status"] == "failed"
    assert attempts(served, run_id)["c"][0] == "cancelled"  # the run stopped at b

    flag.touch()
    answer = served.call("operator", "POST", f"/api/runs/{run_id}/retry", json={"from": "failed"})
    assert answer.status_code == 202, answer.text
    assert (answer.json()["id"], answer.json()["status"]) in {
        (run_id, "queued"),
        (run_id, "running"),
    }

    assert served.wait_for("viewer", run_id, finished)["status"] == "succeeded"
    assert attempts(served, run_id) == {
        "a": ("succeeded", 1),  # kept: not run again
        "b": ("succeeded", 2),
        "c": ("succeeded", 2),
    }


def test_a_retry_from_a_step_without_downstream_runs_that_step_only(served: Served) -> None:
    run_id = served.start("operator", served.workflow("admin", FLOW))
    assert served.wait_for("viewer", run_id, finished)["status"] == "succeeded"
    body = {"from": "b", "downstream": False}
    answer = served.call("operator", "POST", f"/api/runs/{run_id}/retry", json=body)
    assert answer.status_code == 202, answer.text
    served.wait_for("viewer", run_id, finished)
    counts = {step: n for step, (_, n) in attempts(served, run_id).items()}
    assert counts == {"a": 1, "b": 2, "c": 1}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"from": "ghost"}, 422, "has no step 'ghost': give 'failed', 'all', or one of its steps"),
        ({"from": "failed"}, 409, "there is nothing to retry"),
        ({}, 409, "there is nothing to retry"),
    ],
)
def test_a_retry_the_run_refuses_says_why_in_the_engines_words(
    served: Served, body: dict[str, str], status: int, words: str
) -> None:
    run_id = served.start("operator", served.workflow("admin", FLOW))
    served.wait_for("viewer", run_id, finished)
    answer = served.call("operator", "POST", f"/api/runs/{run_id}/retry", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]["message"]
    assert served.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "succeeded"


def test_a_run_that_has_not_finished_is_a_conflict(served: Served) -> None:
    run_id = served.start("operator", served.workflow("admin", GATED))
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    answer = served.call("operator", "POST", f"/api/runs/{run_id}/retry", json={"from": "all"})
    assert answer.status_code == 409
    message = answer.json()["error"]["message"]
    assert f"run {run_id} is paused: only a finished run can be retried" in message
    assert served.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "paused"


def test_retrying_is_an_operators_and_another_organisations_run_is_not_found(
    served: Served,
) -> None:
    run_id = served.start("operator", served.workflow("admin", FLOW))
    served.wait_for("viewer", run_id, finished)
    path = f"/api/runs/{run_id}/retry"
    assert served.call("viewer", "POST", path, json={"from": "all"}).status_code == 403
    hidden = served.call("rival", "POST", path, json={"from": "all"})
    assert hidden.status_code == 404
    assert hidden.json()["error"]["message"] == f"there is no run {run_id!r} in your organisation"
    assert served.call(None, "POST", path, json={"from": "all"}).status_code == 401
    assert served.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "succeeded"
