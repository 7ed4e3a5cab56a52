"""Is anything linked to a Kling node's frames output? Decoding frames nobody reads costs gigabytes.

A node sees the prompt being run through ComfyUI's hidden ``PROMPT`` input, so at run time it can tell
whether any node takes its output 0 (frames). ComfyUI's cache keys a node on its own inputs, not on what
reads its outputs, so the ``on_prompt`` hook also writes the answer into the node's inputs
(:data:`MARKER`, an input the node does not declare, so it is never passed to it): linking the frames
later changes the key and the node runs again (resumed through the ledger, never paid again) instead of
handing the cached empty frames on.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .registry import frame_output_nodes

log = logging.getLogger(__name__)

#: The input the on_prompt hook adds to each Kling node that has a frames output.
MARKER = "kling_frames_linked"
#: The frames output's index in every Kling generation node (nodes/delivery.OUTPUTS).
FRAMES_OUTPUT = 0


def _is_link(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[1], int) \
        and not isinstance(value[1], bool)


def frames_linked(prompt: Mapping[str, Any] | None, node_id: str | None) -> bool:
    """True when some node of ``prompt`` takes ``node_id``'s frames output. Without a prompt to read
    (an API caller that sends none), True: the frames are decoded, as they always were."""
    if not isinstance(prompt, Mapping) or not prompt or node_id is None:
        return True
    for node in prompt.values():
        inputs = node.get("inputs", {}) if isinstance(node, Mapping) else {}
        for value in inputs.values() if isinstance(inputs, Mapping) else ():
            if _is_link(value) and str(value[0]) == str(node_id) and value[1] == FRAMES_OUTPUT:
                return True
    return False


def mark_frame_links(json_data: Any) -> Any:
    """ComfyUI's on_prompt hook: each Kling node with a frames output gets :data:`MARKER` saying whether
    its frames are linked, so that the cache follows the links (see the module's docstring)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if not isinstance(prompt, dict):
        return json_data
    kinds = frame_output_nodes()
    for node_id, node in prompt.items():
        if isinstance(node, dict) and node.get("class_type") in kinds and isinstance(node.get("inputs"), dict):
            node["inputs"][MARKER] = frames_linked(prompt, node_id)
    return json_data


__all__ = ["FRAMES_OUTPUT", "MARKER", "frames_linked", "mark_frame_links"]
