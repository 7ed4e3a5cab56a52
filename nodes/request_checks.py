"""The checks every write route of the pack makes: same origin, a JSON object body."""
from __future__ import annotations

from urllib.parse import urlparse

from aiohttp import web


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser cross-site request (curl, scripts on this machine)
    return urlparse(origin).netloc == request.host


def refuse_foreign(request: web.Request) -> web.Response | None:
    if not _same_origin(request):
        return web.json_response({"error": "cross-origin requests are refused"}, status=403)
    if request.content_type != "application/json" and request.method == "POST":
        return web.json_response({"error": "send JSON (Content-Type: application/json)"}, status=415)
    return None


async def json_object(request: web.Request) -> dict | web.Response:
    """A write route's body as a JSON object, or the answer that refuses it (foreign origin, not JSON)."""
    refused = refuse_foreign(request)
    if refused is not None:
        return refused
    try:
        data = await request.json()
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    if not isinstance(data, dict):
        return web.json_response({"error": "send a JSON object"}, status=400)
    return data
