"""Node type -> the endpoints it is tied to, read from each node class's own attributes (one place)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def rules_endpoints() -> dict[str, str | None]:
    """Node type -> the capability-table endpoint whose rules its widgets follow (None: no rules)."""
    from . import NODES  # nodes/__init__ imports the node modules before it lists them

    return {node.define_schema().node_id: getattr(node, "RULES_ENDPOINT", None) for node in NODES}


@lru_cache(maxsize=1)
def task_endpoints() -> dict[str, str]:
    """Node type -> the API path of the tasks it creates, for the Kling nodes that cost money."""
    from . import NODES

    return {node.define_schema().node_id: node.TASK_ENDPOINT for node in NODES if hasattr(node, "TASK_ENDPOINT")}
