"""locales/en/nodeDefs.json as the node schemas make it: written by scripts/make_locale.py, checked by
tests/test_widget_plan.py, so the English strings the frontend shows are the schemas' own."""
from __future__ import annotations

import json
from typing import Any

from . import PACK_LINK_NAME, REPO_ROOT

LOCALE_FILE = REPO_ROOT / "locales" / "en" / "nodeDefs.json"


def pack_nodes(object_info: dict[str, Any]) -> dict[str, Any]:
    """The /object_info entries of this pack's nodes (ComfyUI's own Kling nodes left out)."""
    return {name: d for name, d in object_info.items()
            if d.get("python_module", "").endswith(f"custom_nodes.{PACK_LINK_NAME}")}


def _entry(name: str, tooltip: Any) -> dict[str, str]:
    return {"name": name, "tooltip": tooltip} if tooltip else {"name": name}


def locale_from_object_info(object_info: dict[str, Any]) -> dict[str, Any]:
    """{node: {display_name, description, inputs: {id: {name, tooltip}}, outputs: {"0": {name, tooltip}}}}."""
    locale = {}
    for node, d in pack_nodes(object_info).items():
        inputs = {}
        for section in ("required", "optional"):
            for name, spec in d["input"].get(section, {}).items():
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                inputs[name] = _entry(options.get("display_name", name), options.get("tooltip"))
        tooltips = d.get("output_tooltips") or [None] * len(d["output_name"])
        outputs = {str(i): _entry(out, tip) for i, (out, tip) in enumerate(zip(d["output_name"], tooltips))}
        locale[node] = {"display_name": d["display_name"], "description": d["description"], "inputs": inputs,
                        "outputs": outputs}
    return locale


def locale_text(locale: dict[str, Any]) -> str:
    """The file's text: stable (indented, non-ASCII kept) so that a regenerated file diffs cleanly."""
    return json.dumps(locale, indent=2, ensure_ascii=False) + "\n"
