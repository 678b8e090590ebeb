"""A chain of merges nests one level per merge: past ``MAX_MERGE_DEPTH`` a clear step error."""

from __future__ import annotations

import pardag
from pardag.kinds.control import MAX_MERGE_DEPTH, nested_deeper
from pardag.states import StepState


def chain(length: int) -> pardag.Workflow:
    wf = pardag.Workflow("chain")
    wf.add("s0", lambda: 1)
    for i in range(1, length + 1):
        wf.add(f"s{i}", kind="merge", depends_on=[f"s{i - 1}"])
    return wf


def test_the_merge_past_the_limit_fails_naming_itself_and_the_limit() -> None:
    result = chain(MAX_MERGE_DEPTH + 5).run()
    last_ok, first_bad = f"s{MAX_MERGE_DEPTH}", f"s{MAX_MERGE_DEPTH + 1}"
    assert result.steps[last_ok].state is StepState.SUCCEEDED
    assert nested_deeper(result.outputs[last_ok], MAX_MERGE_DEPTH - 1)
    assert not nested_deeper(result.outputs[last_ok], MAX_MERGE_DEPTH)
    assert result.steps[first_bad].state is StepState.FAILED
    message = str(result.error)
    assert f"merge step {first_bad!r}: its output would nest more than 100 levels deep" in message
    assert "RecursionError" not in message


def test_depth_is_measured_without_recursion() -> None:
    deep: object = 1
    for _ in range(100_000):  # far past the interpreter's recursion limit
        deep = [deep]
    assert nested_deeper(deep, 99_999) and not nested_deeper(deep, 100_000)
    assert not nested_deeper({"a": [1, 2, {"b": "c"}]}, 3)
    assert nested_deeper({"a": [1, 2, {"b": ["c"]}]}, 3)
