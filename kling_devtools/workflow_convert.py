"""Turn a UI-format workflow (what users save and share) into the API format POST /prompt takes.

The mapping follows each node's /object_info: widget inputs consume ``widgets_values`` in order
(a seed with control_after_generate also stores its control mode right after it), linked inputs
come from ``links``. Checking a workflow this way also proves its node types and links exist.
"""
from __future__ import annotations

from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


class WorkflowError(ValueError):
    """The workflow does not fit the server's node definitions."""


def _is_widget(spec: list[Any]) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _ordered_inputs(definition: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    order = definition.get("input_order") or {}
    inputs = definition.get("input", {})
    result = []
    for section in ("required", "optional"):
        names = order.get(section) or list(inputs.get(section, {}))
        result += [(name, inputs[section][name]) for name in names]
    return result


def ui_to_api(workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    links = {link[0]: link for link in workflow.get("links", [])}
    nodes = {node["id"]: node for node in workflow["nodes"]}
    prompt: dict[str, Any] = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in ("Note", "MarkdownNote", "Reroute"):
            continue
        definition = object_info.get(kind)
        if definition is None:
            raise WorkflowError(f"node {node['id']}: unknown node type {kind}")
        linked = {slot["name"]: slot.get("link") for slot in node.get("inputs", []) if slot.get("link") is not None}
        values = list(node.get("widgets_values") or [])
        inputs: dict[str, Any] = {}
        position = 0
        for name, spec in _ordered_inputs(definition):
            if _is_widget(spec):
                if position < len(values):
                    inputs[name] = values[position]
                position += 1
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if options.get("control_after_generate"):
                    position += 1
            if name in linked:
                link = links.get(linked[name])
                if link is None:
                    raise WorkflowError(f"node {node['id']} ({kind}): input {name} uses missing link {linked[name]}")
                _, source_id, source_slot, target_id, _, link_type = link[:6]
                if target_id != node["id"] or source_id not in nodes:
                    raise WorkflowError(f"link {link[0]} is inconsistent")
                source_def = object_info.get(nodes[source_id]["type"], {})
                outputs = source_def.get("output", [])
                if source_slot >= len(outputs):
                    raise WorkflowError(f"link {link[0]}: {nodes[source_id]['type']} has no output {source_slot}")
                expected = spec[0] if not isinstance(spec[0], list) else "COMBO"
                if outputs[source_slot] != expected and "*" not in (outputs[source_slot], expected):
                    raise WorkflowError(f"link {link[0]}: {outputs[source_slot]} into {kind}.{name} ({expected})")
                inputs[name] = [str(source_id), source_slot]
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt
