"""The node-graph kinds: what the nodes of visual-editor graphs do (see ``formats/nodegraph``).

Each node becomes a step whose ``params`` are the node's ``data``; its inputs are its source
nodes' outputs, in edge order ("the first input" is the output of the first edge's source).
These kinds are microseconds of work, so they run on the ``inline`` executor unless the step
names ``threads``; ``http`` and ``delay`` nodes are async (kinds ``http_node`` and ``delay_node``).

The registry imports this package only; the kinds live in its modules by concept, and their
names stay importable from here:

* ``data``: the error, text limit and messages every node shares;
* ``base``: ``NodeKind``, the run-wide ``GraphState`` and the names templates read;
* ``values``: number, text, visualization, trigger;
* ``ops``: operation, text_operation, extract;
* ``state``: variable, counter, accumulator, cache, context, constant (run-wide state);
* ``http``: http_node;
* ``delay``: delay_node;
* ``condition``: the function of a condition node (a ``condition`` step).
"""

from __future__ import annotations

from pardag.kinds.nodegraph import delay, http, ops, state, values
from pardag.kinds.nodegraph.base import GraphState, NodeKind, graph_state, template_names
from pardag.kinds.nodegraph.condition import condition_function
from pardag.kinds.nodegraph.data import MAX_TEXT, NodeError
from pardag.kinds.nodegraph.http import HttpNodeKind

__all__ = [
    "KINDS",
    "MAX_TEXT",
    "GraphState",
    "HttpNodeKind",
    "NodeError",
    "NodeKind",
    "condition_function",
    "graph_state",
    "template_names",
]

KINDS = {
    **values.KINDS,
    **ops.KINDS,
    **state.KINDS,
    **http.KINDS,
    **delay.KINDS,
}
"""Every node kind by name, in registration order: values, operations, state, http, delay."""
