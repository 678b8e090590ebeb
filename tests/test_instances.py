"""Which recorded step is an instance of which mapped step (``pardag.instances``), and the
grouped rows of a run's table built on it (``pardag.progress.grouped_rows``)."""

from __future__ import annotations

import pytest

from pardag.instances import instance_parent, instances_of
from pardag.progress import grouped_rows


@pytest.mark.parametrize(
    ("step_id", "parent"),
    [
        ("process[3]", "process"),
        ("a.b-c_1[12]", "a.b-c_1"),
        ("process", None),
        ("process[]", None),
        ("process[x]", None),
        ("process[3]x", None),
        ("process[-1]", None),
        ("other[0]", None),  # no step 'other' in the run: not an instance
    ],
)
def test_the_parent_comes_from_the_id_and_the_runs_steps(step_id: str, parent: str | None) -> None:
    assert instance_parent(step_id, {"process", "a.b-c_1", step_id}) == parent


def test_instances_are_listed_in_item_order_not_as_text() -> None:
    ids = ["process", "report", *(f"process[{k}]" for k in (10, 2, 0, 11, 1))]
    assert instances_of(ids) == {"process": [f"process[{k}]" for k in (0, 1, 2, 10, 11)]}
    assert instances_of(["process", "report"]) == {}


ROWS = {
    "list": ("succeeded", ""),
    "p": ("failed", "1 of 3 instances failed; p[1]: boom"),
    "report": ("skipped", "upstream failed: p"),
    "p[0]": ("succeeded", ""),
    "p[1]": ("failed", "boom"),
    "p[2]": ("succeeded", ""),
    "q[0]": ("succeeded", ""),  # no step 'q': a row of its own, where it was
}


def test_grouped_rows_fold_the_instances_that_did_not_fail_under_their_step() -> None:
    assert grouped_rows(ROWS) == {
        "list": ("succeeded", ""),
        "p": ("failed", "2/3 succeeded, 1 failed; 1 of 3 instances failed; p[1]: boom"),
        "p[1]": ("failed", "boom"),
        "report": ("skipped", "upstream failed: p"),
        "q[0]": ("succeeded", ""),
    }


def test_grouped_rows_unfolded_keep_every_instance_under_their_step() -> None:
    rows = grouped_rows(ROWS, fold=False)
    assert list(rows) == ["list", "p", "p[0]", "p[1]", "p[2]", "report", "q[0]"]
    assert rows["p"][1].startswith("2/3 succeeded, 1 failed; ")
