"""Who sees what on the page: signing in, roles, forged forms, organisations, no JavaScript."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from pardag.server.auth import COOKIE
from tests.server.conftest import FLOW, GATED, MARKER, Served
from tests.server.ui.conftest import sign_in

RIVAL_FLOW = FLOW.replace("name: chain", f"name: {MARKER}")


def test_signing_in_with_a_token_keeps_it_in_an_httponly_strict_cookie(
    page: Any, site: Served
) -> None:
    page.goto(f"{site.url}/runs?status=failed")
    page.wait_for_url("**/login?next=*")
    page.fill("#token", "pdg_not-a-token")
    page.click("button[type=submit]")
    assert "unknown" in page.locator(".problem").inner_text() or "token" in page.content()
    page.fill("#token", site.tokens["viewer"])
    page.click("button[type=submit]")
    page.wait_for_url("**/runs?status=failed")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's scripts cannot read it
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]


def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    page: Any, site: Served
) -> None:
    failed = site.start("operator", site.workflow("admin", FLOW.replace("echo third", "exit 3")))
    paused = site.start("operator", site.workflow("admin", GATED))
    site.wait_for("viewer", failed, lambda r: r["status"] == "failed")
    site.wait_for("viewer", paused, lambda r: r["status"] == "paused")
    sign_in(page, site, "viewer")
    for run_id in (failed, paused):
        page.goto(f"{site.url}/runs/{run_id}")
        assert page.locator("[data-action]").count() == 0
    assert "needs the approver role" in page.locator("#approvals").inner_text()
    csrf = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    forged = page.request.post(f"{site.url}/runs/{failed}/retry", form={"from": "failed"})
    assert forged.status == 403 and "security token" in forged.text()
    as_viewer = page.request.post(
        f"{site.url}/runs/{failed}/retry", form={"from": "failed", "csrf": csrf}
    )
    assert as_viewer.status == 403 and "operator role" in as_viewer.text()
    api = page.request.post(f"{site.url}/api/runs/{failed}/retry")  # the cookie is not enough
    assert api.status == 401
    assert site.call("viewer", "GET", f"/api/runs/{failed}").json()["status"] == "failed"


def test_an_operators_form_without_its_csrf_token_is_refused(page: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", FLOW))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    sign_in(page, site, "admin")
    page.goto(f"{site.url}/runs/{run_id}")
    page.evaluate("document.querySelector('[data-action=retry-all]').form.csrf.value = 'forged'")
    page.locator("[data-action=retry-all]").click()
    assert "security token" in page.locator(".problem").inner_text()
    assert len(site.call("viewer", "GET", f"/api/runs/{run_id}/steps/a").json()["attempts"]) == 1


def test_another_organisations_runs_never_appear(page: Any, site: Served) -> None:
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs")
    theirs = site.start("rival", site.workflow("rival", RIVAL_FLOW))
    ours = site.start("operator", site.workflow("admin", FLOW))
    page.wait_for_selector(f"#run-{ours} .badge.st-succeeded")  # the list is live...
    site.wait_for("rival", theirs, lambda r: r["status"] == "succeeded")
    assert MARKER not in page.content()  # ...and rival's run never came into it
    page.reload()
    assert MARKER not in page.content()
    page.goto(f"{site.url}/runs?q={theirs}")
    assert MARKER not in page.content()
    answer = page.goto(f"{site.url}/runs/{theirs}")
    assert answer is not None and answer.status == 404
    assert MARKER not in page.content()
    assert page.goto(f"{site.url}/runs/{theirs}/steps/a").status == 404
    assert page.goto(f"{site.url}/workflows").ok and MARKER not in page.content()


def test_the_list_and_a_run_read_without_javascript(browser: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", FLOW))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, site, "operator")
        page.goto(f"{site.url}/runs")
        assert page.locator(f"#run-{run_id} .badge").inner_text().endswith("succeeded")
        page.click(f"#run-{run_id} a")
        rows = page.locator("#steps tbody tr")
        assert rows.count() == 3
        assert all("succeeded" in rows.nth(i).inner_text() for i in range(3))
        page.locator("[data-action=retry-all]").click()  # a plain form works too
        page.wait_for_url(f"**/runs/{run_id}?done=retry")
    finally:
        context.close()
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    assert len(site.call("viewer", "GET", f"/api/runs/{run_id}/steps/a").json()["attempts"]) == 2


def test_the_runs_list_filters_and_pages(page: Any, site: Served) -> None:
    workflow = site.workflow("admin", FLOW.replace("name: chain", "name: paged"))
    made = [site.start("operator", workflow, params={"who": f"n{i}"}) for i in range(3)]
    for run_id in made:
        site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs?workflow=paged&trigger=api")
    assert {
        page.locator("#runs tbody tr").nth(i).get_attribute("data-run") for i in range(3)
    } == set(made)
    page.fill("#q", "n1")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert page.locator("#runs tbody tr").get_attribute("data-run") == made[1]
    assert "q=n1" in page.url  # deep-linkable
    page.goto(f"{site.url}/runs?trigger=schedule&workflow=paged")
    assert page.locator("#runs tbody tr").count() == 0
    page.goto(f"{site.url}/runs?status=nonsense")
    assert "nonsense" in page.locator(".problem").inner_text()


def test_pages_may_not_be_framed_or_run_inline_script_and_sign_in_is_same_site(
    site: Served,
) -> None:
    with httpx.Client(base_url=site.url, cookies={COOKIE: site.tokens["viewer"]}) as client:
        answer = client.get("/runs")
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert "<script>" not in answer.text  # nothing inline for the policy to block
    with httpx.Client(base_url=site.url) as client:
        forged = client.post(
            "/login",
            data={"token": site.tokens["viewer"]},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert forged.status_code == 403 and COOKIE not in forged.headers.get("set-cookie", "")
