"""Triggers declared in workflow files: native ``triggers:`` and node-graph trigger nodes,
and their problems with the file's lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pardag
from pardag.errors import ValidationError
from pardag.triggers import Schedule, Webhook

STEPS = "steps:\n  a:\n    kind: shell\n    command: echo hi\n"


def load(tmp_path: Path, name: str, text: str) -> pardag.Workflow:
    path = tmp_path / name
    path.write_text(text)
    return pardag.load(path)


def problems(tmp_path: Path, name: str, text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load(tmp_path, name, text)
    return [str(p) for p in caught.value.problems]


def test_a_steps_file_declares_webhooks_and_schedules(tmp_path: Path) -> None:
    text = (
        "name: etl\n"
        "triggers:\n"
        "  - webhook: orders\n"
        '  - cron: "*/5 * * * *"\n'
        "    timezone: Europe/Paris\n"
        '  - cron: "0 6 * * 1-5"\n' + STEPS
    )
    wf = load(tmp_path, "etl.yaml", text)
    assert wf.triggers == (
        Webhook("orders"),
        Schedule("*/5 * * * *", "Europe/Paris"),
        Schedule("0 6 * * 1-5", "UTC"),
    )
    assert load(tmp_path, "plain.yaml", STEPS).triggers == ()


def test_bad_triggers_are_problems_at_their_lines(tmp_path: Path) -> None:
    text = (
        "triggers:\n"
        '  - cron: "61 * * * *"\n'
        "    timezone: Mars/Olympus\n"
        "  - webhook: has space\n"
        '  - cron: "* * *"\n'
        "  - {every: 5m}\n"
        "  - webhook: orders\n"
        "  - webhook: orders\n" + STEPS
    )
    found = problems(tmp_path, "bad.yaml", text)
    assert any(
        p.startswith(f"{tmp_path}/bad.yaml:2: cron '61 * * * *' is not a valid") for p in found
    )
    assert any(
        p.startswith(f"{tmp_path}/bad.yaml:3: timezone 'Mars/Olympus' is not a time zone")
        for p in found
    )
    assert any(":4: a webhook's name is part of its URL" in p for p in found)
    assert any(":5: cron must be five fields" in p for p in found)
    assert any(":6: a trigger is {webhook: NAME} or {cron: EXPRESSION" in p for p in found)
    assert any("webhook 'orders' is declared twice" in p for p in found)
    assert len(found) == 6
    assert problems(tmp_path, "one.yaml", "triggers: {webhook: x}\n" + STEPS) == [
        f"{tmp_path}/one.yaml:1: triggers must be a list such as "
        "[{webhook: orders}, {cron: \"*/5 * * * *\"}], got {'webhook': 'x'}"
    ]


def graph(*nodes: dict[str, object]) -> str:
    return json.dumps({"nodes": list(nodes), "edges": []}, indent=1)


def node(ident: str, kind: str, **data: str) -> dict[str, object]:
    return {"id": ident, "type": kind, "data": data}


def test_node_graph_trigger_nodes_declare_triggers(tmp_path: Path) -> None:
    text = graph(
        node("order", "trigger-webhook", label="New order", name="New order"),
        node("named", "trigger-webhook", webhook="refunds"),
        node("tick", "triggerSchedule", cron="0 * * * *", timezone="Asia/Tokyo"),
        node("go", "trigger-manual"),
    )
    wf = load(tmp_path, "flow.json", text)
    assert wf.triggers == (
        Webhook("order"),
        Webhook("refunds"),
        Schedule("0 * * * *", "Asia/Tokyo"),
    )


def test_node_graph_trigger_problems_name_the_node_and_line(tmp_path: Path) -> None:
    text = graph(
        node("tick", "trigger-schedule", cron="0 25 * * *"),
        node("nocron", "trigger-schedule", timezone="UTC"),
        node("zone", "trigger-schedule", cron="0 1 * * *", timezone="Nowhere"),
        node("a", "trigger-webhook", webhook="same"),
        node("b", "trigger-webhook", webhook="same"),
    )
    found = problems(tmp_path, "flow.json", text)
    lines = text.splitlines()
    cron_line = 1 + next(i for i, line in enumerate(lines) if "0 25 * * *" in line)
    where = f"{tmp_path}/flow.json:{cron_line}: step 'tick': cron '0 25 * * *' is not a valid"
    assert any(p.startswith(where) for p in found), found
    assert any("cron '0 25 * * *' is not a valid expression" in p for p in found)
    assert any("a trigger-schedule node needs data.cron" in p for p in found)
    assert any("timezone 'Nowhere' is not a time zone name" in p for p in found)
    assert any("webhook 'same' is declared twice" in p for p in found)
    assert len(found) == 4
