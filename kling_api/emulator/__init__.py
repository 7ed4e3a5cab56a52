"""A local stand-in for Kling's video API, for tests and the offline demo: the legacy ``/v1/`` endpoints
(image2video, text2video, multi-image2video, video-extend) and the new design standard
(``/image-to-video/<model>``, ``/text-to-video/<model>``, ``GET``/``POST /tasks``; ``new_rules``,
``new_standard``).

Faithful to the reference (``shared/reference/kling_api.md``) and Kling's pages, not shaped to this
pack's client: same paths, envelope, task objects, auth codes and 1201 messages, real H.264 mp4
results, plus switches for the faults a client must survive. Standard library HTTP server; no ComfyUI, no torch.
"""
from .access import DEFAULT_API_KEY
from .faults import EmulatorConfig
from .server import Emulator

__all__ = ["DEFAULT_API_KEY", "Emulator", "EmulatorConfig"]
