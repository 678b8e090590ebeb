"""The page on a PostgreSQL run store: a run's page and the runs list follow it live (the
streams wake on LISTEN/NOTIFY there), and an approval from the page resumes the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from pardag.store import open_store
from tests.server.conftest import FLOW, GATED, Served, serving
from tests.server.ui.conftest import sign_in
from tests.store.conftest import own_schema


@pytest.fixture(scope="module")
def pg_site(postgres: str) -> Iterator[Served]:
    with own_schema(postgres) as url, open_store(url) as store, serving(store) as service:
        yield service


def test_a_run_on_postgresql_is_followed_live_and_approved_from_the_page(
    page: Any, pg_site: Served
) -> None:
    sign_in(page, pg_site, "approver")
    page.goto(f"{pg_site.url}/runs")
    chain = pg_site.start("operator", pg_site.workflow("admin", FLOW))
    page.wait_for_selector(f"#run-{chain} .badge.st-succeeded")  # the list, live
    gated = pg_site.start("operator", pg_site.workflow("admin", GATED))
    page.goto(f"{pg_site.url}/runs/{gated}")
    form = page.locator(".approval[data-step=review] form.approve-form")
    form.wait_for()
    form.locator("select").select_option(label="staging")
    form.locator("[data-action=approve]").click()
    page.wait_for_selector("#run-status.st-succeeded")
    expect(page.locator("#dag .dag-node.st-succeeded")).to_have_count(3)
    answer = pg_site.call("viewer", "GET", f"/api/runs/{gated}/steps/review").json()
    assert answer["attempts"][-1]["output"] == {"target": "staging"}
