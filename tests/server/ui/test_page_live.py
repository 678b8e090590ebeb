"""The run's page in Chromium, against a real service: live without a reload, and its actions.

Each test drives the page as a person would (click Run, Approve, Cancel, Retry) and checks the
run's outcome in the store through the API, so a page that only looks right fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server.conftest import FLOW, GATED, Served
from tests.server.ui.conftest import sign_in

FINAL = "#dag .dag-node.st-succeeded, #dag .dag-node.st-failed, #dag .dag-node.st-skipped"

SLOW = """\
name: slow
steps:
  first:
    kind: shell
    command: echo started
  wait:
    kind: shell
    command: sleep 60
    depends_on: first
  after:
    kind: shell
    command: echo never
    depends_on: wait
"""


def flaky(marker: Path) -> str:
    """A workflow whose step ``check`` fails until ``marker`` exists; ``count`` never fails."""
    return f"""\
name: flaky
steps:
  count:
    kind: shell
    command: echo counted
  check:
    kind: shell
    command: test -f {marker}
    depends_on: count
  report:
    kind: shell
    command: echo reported
    depends_on: check
"""


def attempts(site: Served, run_id: str) -> dict[str, int]:
    steps = site.call("viewer", "GET", f"/api/runs/{run_id}").json()["steps"]
    return {s["step"]: s["attempts"] for s in steps}


def test_a_run_started_from_the_page_goes_live_to_its_end_without_a_reload(
    page: Any, site: Served
) -> None:
    workflow = site.workflow("admin", FLOW)
    sign_in(page, site, "operator")
    page.goto(f"{site.url}/workflows/{workflow}")
    page.fill("#p-who", "browser")
    page.click("[data-action=run]")
    page.wait_for_url("**/runs/*")
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
    assert page.locator("#dag .dag-node").count() == 3
    expect(page.locator("#dag .dag-node.st-succeeded")).to_have_count(3)
    page.wait_for_selector("#run-status.st-succeeded")
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("window.pardagDag.layouts") == 1
    run_id = page.url.rsplit("/", 1)[1]
    run = site.call("viewer", "GET", f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded" and run["params"] == {"who": "browser"}
    for step in ("a", "b", "c"):  # the table followed too
        badge = page.locator(f"#steps tr[data-step={step}] .badge")
        assert "succeeded" in badge.inner_text()
    assert page.locator("#timeline .seg-run").count() == 3


def test_a_paused_step_is_approved_from_its_form_and_the_run_finishes(
    page: Any, site: Served
) -> None:
    run_id = site.start("operator", site.workflow("admin", GATED))
    sign_in(page, site, "approver")
    page.goto(f"{site.url}/runs/{run_id}")
    form = page.locator(".approval[data-step=review] form.approve-form")
    form.wait_for()  # the header and the form come when the run pauses, without a reload
    assert "Ship it?" in page.locator(".approval .prompt").inner_text()
    form.locator("select").select_option(label="prod")
    form.locator("[data-action=approve]").click()
    page.wait_for_selector("#run-status.st-succeeded")
    review = site.call("viewer", "GET", f"/api/runs/{run_id}/steps/review").json()
    assert review["attempts"][-1]["output"] == {"target": "prod"}
    assert page.locator("#dag .dag-node[data-id=ship].st-succeeded").count() == 1


def test_cancel_stops_a_running_run(page: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", SLOW))
    sign_in(page, site, "operator")
    page.goto(f"{site.url}/runs/{run_id}")
    page.wait_for_selector("#dag .dag-node[data-id=wait].st-running")
    page.locator("[data-action=cancel]").click()
    page.wait_for_selector("#run-status.st-cancelled")
    page.wait_for_selector("#dag .dag-node[data-id=wait].st-cancelled")
    assert site.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "cancelled"


def test_retry_of_a_failed_run_reruns_only_the_failed_step(
    page: Any, site: Served, tmp_path: Path
) -> None:
    marker = tmp_path / "fixed"
    run_id = site.start("operator", site.workflow("admin", flaky(marker)))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "failed")
    sign_in(page, site, "operator")
    page.goto(f"{site.url}/runs/{run_id}")
    assert page.locator("#dag .dag-node[data-id=check].st-failed").count() == 1
    marker.touch()
    page.locator("[data-action=retry-failed]").click()
    page.wait_for_selector("#run-status.st-succeeded")
    counted = attempts(site, run_id)
    assert counted["count"] == 1 and counted["check"] == 2  # what succeeded kept its output
    report = site.call("viewer", "GET", f"/api/runs/{run_id}/steps/report").json()["attempts"]
    assert [a["state"] for a in report][-1] == "succeeded"  # it had not run; now it did
    assert len(report) == 2


def finished_run_page(page: Any, site: Served, who: str) -> str:
    """A run of FLOW, succeeded, on ``page`` as ``who`` sees it; its id."""
    run_id = site.start("operator", site.workflow("admin", FLOW))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    sign_in(page, site, who)
    page.goto(f"{site.url}/runs/{run_id}")
    return run_id


@pytest.mark.parametrize(
    ("button", "rerun"),
    [
        ("retry-step", {"a": 1, "b": 2, "c": 1}),  # that step alone
        ("retry-downstream", {"a": 1, "b": 2, "c": 2}),  # it and what follows it
    ],
)
def test_retry_of_one_step_from_its_panel_reruns_what_the_button_says(
    page: Any, site: Served, button: str, rerun: dict[str, int]
) -> None:
    run_id = finished_run_page(page, site, "operator")
    page.locator("#dag .dag-node[data-id=b]").click()
    page.locator(f"#panel [data-action={button}]").click()
    page.wait_for_url(f"**/runs/{run_id}?done=retry")
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    expect(page.locator("#dag .dag-node.st-succeeded")).to_have_count(3)
    assert attempts(site, run_id) == rerun


def test_a_node_is_reached_by_keyboard_and_opens_its_panel(page: Any, site: Served) -> None:
    finished_run_page(page, site, "viewer")
    page.locator("#dag .dag-node[data-id=c]").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel .panel-body[data-step=c]")
    assert "succeeded" in page.locator("#panel").inner_text()


def test_a_paused_step_rejected_from_the_page_fails_with_the_reason(
    page: Any, site: Served
) -> None:
    run_id = site.start("operator", site.workflow("admin", GATED))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    sign_in(page, site, "approver")
    page.goto(f"{site.url}/runs/{run_id}")
    page.fill(".reject-form input[name=reason]", "not on a Friday")
    page.locator("[data-action=reject]").click()
    page.wait_for_selector("#run-status.st-failed")
    review = site.call("viewer", "GET", f"/api/runs/{run_id}/steps/review").json()
    assert "not on a Friday" in (review["attempts"][-1]["error"] or "")
    expect(page.locator("#dag .dag-node[data-id=ship]:not(.st-succeeded)")).to_have_count(1)
