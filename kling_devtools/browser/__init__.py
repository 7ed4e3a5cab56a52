"""ComfyUI's real frontend in headless Chromium: the session and page (``page``) and the Kling node's
helpers on that page (``kling_frontend``). Playwright is imported only when a session starts."""
from __future__ import annotations

from .page import (CHROMIUM, KNOWN_NOISE, NEWER_FRONTEND_NOISE, SCREENSHOT_DIR, SETUP_HINT, BrowserNotInstalled,
                   BrowserSession, ComfyPage, safe_name, screenshot)

__all__ = ["CHROMIUM", "KNOWN_NOISE", "NEWER_FRONTEND_NOISE", "SCREENSHOT_DIR", "SETUP_HINT", "BrowserNotInstalled",
           "BrowserSession", "ComfyPage", "safe_name", "screenshot"]
