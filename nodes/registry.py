"""Node type -> the endpoint it is tied to, as the node classes declare it (``TASK_ENDPOINT``, a row of the
endpoint table; ``RULES_ENDPOINT``, the capability table's section its widgets follow).

The package fills it once with its node list (:func:`register_nodes`), so that the spend guard and the
routes can read it without importing the node modules (which import them).
"""
from __future__ import annotations

from typing import Any, Iterable

from ..kling_api.rules.endpoints import Endpoint

_rules: dict[str, str | None] = {}
_tasks: dict[str, Endpoint] = {}
_frames: set[str] = set()


def register_nodes(nodes: Iterable[Any]) -> None:
    """Record each node class's endpoints (called by the package as it lists its nodes)."""
    for node in nodes:
        schema = node.define_schema()
        node_id = schema.node_id
        _rules[node_id] = getattr(node, "RULES_ENDPOINT", None)
        if hasattr(node, "TASK_ENDPOINT"):
            _tasks[node_id] = node.TASK_ENDPOINT
        outputs = schema.outputs or []
        if outputs and outputs[0].id == "frames":
            _frames.add(node_id)


def rules_endpoints() -> dict[str, str | None]:
    """Node type -> the capability-table endpoint whose rules its widgets follow (None: no rules)."""
    return dict(_rules)


def frame_output_nodes() -> frozenset[str]:
    """Node types whose output 0 is the decoded frames (decoded only when something reads them)."""
    return frozenset(_frames)


def task_endpoints() -> dict[str, Endpoint]:
    """Node type -> the endpoint of the tasks it creates, for the Kling nodes that cost money."""
    return dict(_tasks)
