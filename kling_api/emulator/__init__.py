"""A local stand-in for Kling's video API (image2video, text2video, multi-image2video, video-extend),
for tests and the offline demo.

Faithful to the reference (``shared/reference/kling_api.md``), not shaped to this pack's client:
same paths, envelope, task objects, auth codes and 1201 messages, real H.264 mp4 results, plus
switches for the faults a client must survive. Standard library HTTP server; no ComfyUI, no torch.
"""
from .access import DEFAULT_API_KEY
from .faults import EmulatorConfig
from .server import Emulator

__all__ = ["DEFAULT_API_KEY", "Emulator", "EmulatorConfig"]
