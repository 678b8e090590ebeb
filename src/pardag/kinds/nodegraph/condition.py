"""What a node graph's ``condition`` node does: its expression's truth, which picks a branch.

A condition node is no kind of its own: ``formats/nodegraph`` makes it a ``condition`` step
whose function is :func:`condition_function`, so it branches as any condition step does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pardag.expressions import Expression, compile_expression, expression_names

__all__ = ["condition_function"]


def condition_function(source: str, where: str) -> Callable[..., bool]:
    """The function of a condition node: its expression's truth over the inputs and trigger.

    The expression (one ``{{ }}`` around it is allowed) reads each input by its source's id,
    ``inputs``, ``steps.ID.output``, ``params`` and ``trigger`` (the run's trigger data).
    Raises ArgumentError (naming ``where``) when it does not compile.
    """
    text = source.strip() if isinstance(source, str) else source
    if isinstance(text, str) and text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    expression: Expression = compile_expression(text, where=where)

    def condition(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        return bool(expression.evaluate(expression_names(inputs, params)))

    return condition
