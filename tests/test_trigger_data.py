"""A run's trigger data reaches its steps as ``trigger`` (``pardag.triggerdata``).

Queued runs on a real store (a SQLite file, and PostgreSQL), run by a ``Worker``; a plain run
keeps ``trigger`` as its params. The webhook end of it is in tests/server/test_trigger_data.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pardag
from pardag.errors import ValidationError
from pardag.schedules import fire_due
from pardag.store import Store, open_store
from pardag.store.triggers import TriggerRecord
from pardag.worker import Worker, submit
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)
from tests.test_schedules import at, start

ORDERS = """\
name: orders
params:
  order: from-params
  amount: 0
triggers:
  - webhook: orders
steps:
  show:
    kind: shell
    command: echo {{ trigger.order }}
  big:
    kind: shell
    command: echo big
    when: trigger.amount > 100
"""

TRICKY = "A-1; touch pwned $(id) `id` '\" && exit 3"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


def outputs(store: Store, run_id: str) -> dict[str, tuple[str, str | None]]:
    """Each step's latest state and what its shell printed (one line)."""
    steps = {rec.step_id: rec for rec in store.get_steps(run_id)}  # later attempts win
    return {
        sid: (rec.state, json.loads(rec.output_json)["stdout"][:-1] if rec.output_json else None)
        for sid, rec in steps.items()
    }


def work(store: Store) -> None:
    Worker(store, lease=5, poll=0.05, say=lambda _: None).serve(until_idle=True)


def test_a_submitted_runs_steps_read_its_trigger_data(tmp_path: Path, store_url: str) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(ORDERS)
    wf = pardag.load(flow)
    big = submit(wf, store=store_url, trigger={"order": TRICKY, "amount": 250})
    small = submit(wf, store=store_url, trigger={"order": "B-2", "amount": 5})
    with open_store(store_url) as store:
        work(store)
        assert outputs(store, big) == {
            "show": ("succeeded", TRICKY),  # the shell got it as data, not as code
            "big": ("succeeded", "big"),
        }
        assert outputs(store, small)["show"] == ("succeeded", "B-2")
        assert outputs(store, small)["big"][0] == "skipped"  # 5 > 100 is false
        assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_retried_run_reads_the_same_trigger_data(tmp_path: Path, store_url: str) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(ORDERS)
    run_id = submit(pardag.load(flow), store=store_url, trigger={"order": "C-3", "amount": 7})
    with open_store(store_url) as store:
        work(store)
        assert outputs(store, run_id)["show"] == ("succeeded", "C-3")
        result = pardag.retry(run_id, from_="all", store=store)
        assert not isinstance(result, str) and result.status == "succeeded"
        assert outputs(store, run_id)["show"] == ("succeeded", "C-3")  # not from-params
        assert outputs(store, run_id)["big"][0] == "skipped"


def test_a_run_without_trigger_data_reads_its_params_as_trigger(tmp_path: Path) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(ORDERS)
    result = pardag.load(flow).run(params={"order": "D-4", "amount": 101})
    assert result.outputs["show"]["stdout"] == "D-4\n"
    assert result.outputs["big"]["stdout"] == "big\n"
    url = str(tmp_path / "runs.db")
    queued = submit(pardag.load(flow), store=url, params={"order": "E-5", "amount": 1})
    with open_store(url) as store:
        work(store)
        assert outputs(store, queued)["show"] == ("succeeded", "E-5")  # no trigger data given


def test_a_scheduled_run_reads_its_slot(store_url: str) -> None:
    definition = (
        "name: tick\ntriggers:\n  - cron: '*/5 * * * *'\nsteps:\n"
        "  a:\n    kind: shell\n    command: echo {{ trigger.slot }} {{ trigger.schedule }}\n"
    )
    with open_store(store_url) as store:
        created = at("2026-06-01T10:00:00")
        wf = store.put_workflow("acme", "tick", "yaml", definition, created)
        cron = TriggerRecord(
            "t1", "acme", wf.workflow_id, "cron", None, "*/5 * * * *", "UTC", None, created
        )
        store.set_triggers("acme", wf.workflow_id, [cron])
        [run_id] = fire_due(store, at("2026-06-01T11:02:00"), start(store), print)
        work(store)
        slot = "2026-06-01T11:00:00+00:00 */5 * * * *"
        assert outputs(store, run_id) == {"a": ("succeeded", slot)}


def test_trigger_reads_are_checked_against_params_only_without_triggers(tmp_path: Path) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(ORDERS.replace("trigger.order", "trigger.customer"))
    pardag.load(flow).validate()  # a webhook's body: any keys
    untriggered = ORDERS.replace("triggers:\n  - webhook: orders\n", "")
    flow.write_text(untriggered.replace("trigger.order", "trigger.customer"))
    with pytest.raises(ValidationError) as refused:
        pardag.load(flow).validate()
    [problem] = refused.value.problems
    assert "reads trigger.customer" in str(problem) and "no param 'customer'" in str(problem)


def test_a_cached_step_keys_on_the_trigger_data(tmp_path: Path) -> None:
    flow = tmp_path / "orders.yaml"
    flow.write_text(
        ORDERS.replace("echo {{ trigger.order }}", "echo {{ trigger.order }}\n    cache: true")
    )
    url = str(tmp_path / "runs.db")
    first = submit(pardag.load(flow), store=url, trigger={"order": "F-1", "amount": 1})
    again = submit(pardag.load(flow), store=url, trigger={"order": "F-1", "amount": 1})
    other = submit(pardag.load(flow), store=url, trigger={"order": "F-2", "amount": 1})
    with open_store(url) as store:
        work(store)
        assert (
            outputs(store, first)["show"] == outputs(store, again)["show"] == ("succeeded", "F-1")
        )
        assert outputs(store, other)["show"] == ("succeeded", "F-2")  # not the cached F-1
        cached = {
            run: [r.cached for r in store.get_steps(run) if r.step_id == "show"][-1]
            for run in (first, again, other)
        }
        assert cached == {first: False, again: True, other: False}  # same data: a hit
