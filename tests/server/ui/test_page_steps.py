"""What the page shows of steps: pools, maps, a step's output, traceback and live log, the
pages' colours, and the list's pages."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server.conftest import FLOW, Served
from tests.server.ui.conftest import sign_in

POOLED = """\
name: pooled
execution: {pools: {db: 1}}
steps:
  load_a: {kind: shell, command: sleep 2.5, resources: {db: 1}}
  load_b: {kind: shell, command: sleep 2.5, resources: {db: 1}}
"""

MAPPED = """\
name: mapped
steps:
  list:
    language: python
    code: |
      def run(inputs):
          return ["ant", "bee", "cat", "dog", "eel"]
  each:
    kind: shell
    for_each: list
    command: echo {{ item_index }}={{ item }}
"""

TALKY = """\
name: talky
steps:
  talk:
    kind: shell
    command: for i in $(seq 1 30); do echo line $i; sleep 0.1; done
  big:
    language: python
    code: |
      def run(inputs):
          return {"rows": [{"n": n, "name": "row %d" % n} for n in range(200)]}
  broken:
    language: python
    depends_on: talk
    code: |
      def run(inputs):
          raise ValueError("the data is bad")
"""


def test_a_step_waiting_for_a_pool_wears_a_badge_naming_it(page: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", POOLED))
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs/{run_id}")
    badge = page.locator("#dag .dag-node.badged .dag-badge")
    badge.wait_for()
    assert "waiting for pool db" in (badge.text_content() or "")
    expect(page.locator("#dag .dag-node.st-succeeded")).to_have_count(2)
    assert page.locator("#dag .dag-node.badged").count() == 0  # gone once it ran


def test_a_mapped_step_is_one_node_with_a_count_and_a_drill_down(page: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", MAPPED))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs/{run_id}")
    assert page.locator("#dag .dag-node").count() == 2
    node = page.locator("#dag .dag-node[data-id=each]")
    assert "5/5" in (node.locator(".dag-count").text_content() or "")
    node.click()
    instances = page.locator("#panel .instances li")
    instances.first.wait_for()
    assert instances.count() == 5
    page.locator("#panel .instances a", has_text="each[3]").click()
    page.wait_for_url("**/steps/each%5B3%5D")
    assert "3=dog" in page.locator(".output pre").inner_text()


def test_a_steps_page_has_its_output_traceback_and_a_live_log(page: Any, site: Served) -> None:
    run_id = site.start("operator", site.workflow("admin", TALKY))
    site.wait_for("viewer", run_id, lambda r: any(s["step"] == "talk" for s in r["steps"]))
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs/{run_id}/steps/talk")  # as soon as it has started
    log = page.locator("#log")
    expect(log).to_contain_text("line 2\n")
    page.evaluate("document.getElementById('log').scrollTop = 0")  # reading from the top
    expect(log).to_contain_text("line 30")
    assert page.evaluate("document.getElementById('log').scrollTop") == 0  # not pulled down
    assert log.inner_text().count("line ") == 30  # every line once
    with page.expect_download() as got:
        page.click("text=download")
    assert "line 30" in got.value.path().read_text()
    site.wait_for("viewer", run_id, lambda r: r["status"] == "failed")
    page.goto(f"{site.url}/runs/{run_id}/steps/broken")
    assert "ValueError" in page.locator(".problem").first.inner_text()
    assert "the data is bad" in page.locator(".traceback pre").inner_text()
    page.goto(f"{site.url}/runs/{run_id}/steps/big")
    output = page.locator("details.output")
    assert output.get_attribute("open") is None  # large: collapsed
    assert "collapsed" in output.locator("summary").inner_text()
    output.locator("summary").click()
    assert "row 199" in output.locator("pre").inner_text()


@pytest.mark.parametrize(
    ("scheme", "background"), [("light", "rgb(255, 255, 255)"), ("dark", "rgb(13, 17, 23)")]
)
def test_the_page_follows_the_systems_colour_scheme(
    browser: Any, site: Served, scheme: str, background: str
) -> None:
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        sign_in(page, site, "viewer")
        page.goto(f"{site.url}/runs")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    finally:
        context.close()


def test_the_runs_list_pages_with_a_cursor(
    page: Any, site: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pardag.server.ui.listing.PAGE", 2)  # the service runs in this process
    workflow = site.workflow("admin", FLOW.replace("name: chain", "name: pages"))
    made = [site.start("operator", workflow) for _ in range(3)]
    for run_id in made:
        site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    sign_in(page, site, "viewer")
    page.goto(f"{site.url}/runs?workflow=pages")
    rows = page.locator("#runs tbody tr")
    first = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    page.click("a[rel=next]")
    page.wait_for_url("**cursor=*")
    second = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    assert len(first) == 2 and len(second) == 1
    assert set(first) | set(second) == set(made)  # none skipped, none twice
    page.goto(page.url)  # the URL alone brings the same page back
    assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == second


def test_a_big_runs_snapshot_leaves_its_maps_instances_out_of_the_timeline(
    site: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pardag.server.ui import snapshot

    run_id = site.start("operator", site.workflow("admin", MAPPED))
    site.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    record = site.store.get_run(run_id)
    assert record is not None
    whole = snapshot.run_view(site.store, record).data
    assert whole["events_left_out"] == 0
    assert any("[" in (e["step"] or "") for e in whole["events"])
    monkeypatch.setattr(snapshot, "MAX_EVENTS", 12)
    cut = snapshot.run_view(site.store, record).data
    assert not any("[" in (e["step"] or "") for e in cut["events"])  # no instance's event
    assert cut["events"][-1] == whole["events"][-1]  # the latest kept: the run's end
    assert cut["events_left_out"] == len(whole["events"]) - len(cut["events"]) > 0
    assert cut["seq"] == whole["seq"]  # the stream starts after the last event either way
    assert [i for i, _ in cut["instances"]["each"]] == [f"each[{k}]" for k in range(5)]
