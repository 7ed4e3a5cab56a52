"""``/kling/spend_limits``: the settings page posts the spend guard's limits here; the server keeps them."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ..kling_api.errors import KlingValidationError
from .request_checks import json_object
from .spend_guard import limits_json, on_prompt, save_limits

log = logging.getLogger(__name__)


async def get_spend_limits(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(limits_json))


async def post_spend_limits(request: web.Request) -> web.Response:
    """``{"per_prompt": units, "per_day": units}`` (0 or null: no limit); refused cross-origin or not JSON."""
    data = await json_object(request)
    if isinstance(data, web.Response):
        return data
    try:
        limits = await asyncio.to_thread(save_limits, data.get("per_prompt"), data.get("per_day"))
    except KlingValidationError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    log.info("Kling spend limits: %s units per prompt, %s per day", limits.per_prompt, limits.per_day)
    return web.json_response(await asyncio.to_thread(limits_json))


def register_cost_routes(server: Any) -> None:
    """The limits routes, and the hook that lets the guard see a whole prompt before it is validated."""
    server.routes.get("/kling/spend_limits")(get_spend_limits)
    server.routes.post("/kling/spend_limits")(post_spend_limits)
    server.add_on_prompt_handler(on_prompt)
