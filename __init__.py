"""ComfyUI entry point of the Kling video nodes (V3 API, ComfyUI >= 0.3.48).

Only ``comfy_entrypoint`` is exported for nodes: a ``NODE_CLASS_MAPPINGS`` beside it would make
ComfyUI silently ignore the entry point.
"""
import logging
import sys

log = logging.getLogger(__name__)

try:
    from comfy_api.latest import ComfyExtension, io  # noqa: F401  (V3 API: ComfyUI >= 0.3.48)
except ImportError:
    if "folder_paths" in sys.modules:  # inside an older ComfyUI (not, say, pytest importing this folder)
        log.error("Kling video nodes need ComfyUI 0.3.48 or newer (V3 node API); no Kling nodes were registered. "
                  "Please update ComfyUI.")
else:
    from .nodes import KlingExtension, register_routes, start_ledger_setup

    WEB_DIRECTORY = "./web"
    register_routes()

    async def comfy_entrypoint() -> KlingExtension:
        start_ledger_setup()
        return KlingExtension()
