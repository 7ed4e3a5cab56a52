"""HTTP routes under ``/kling``: the widget plan, the capability table, the trajectory editor's rules, and
credential management.

The credential routes answer only ``{configured, source}``; write routes refuse cross-origin
requests and anything that is not JSON (so a foreign page cannot post without a CORS preflight).
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from server import PromptServer

from ..kling_api.remote.account import describe_balance
from ..kling_api.remote.auth import delete_credentials_file, write_credentials_file
from ..kling_api.rules.capabilities import load_raw
from ..kling_api.rules.motion import trajectory_rules
from ..kling_api.remote.client import KlingClient
from ..kling_api.errors import KlingCredentialsError, KlingError
from ..kling_api.rules.widget_plan import WidgetPlanError, plan_request
from .cost_routes import register_cost_routes
from .frame_links import mark_frame_links
from .credentials import credentials_path, credentials_status, env_credentials_set, node_credentials
from .registry import rules_endpoints
from .request_checks import json_object, refuse_foreign
from .spend_guard import plan_info, remember_balance

log = logging.getLogger(__name__)


async def get_capabilities(request: web.Request) -> web.Response:
    return web.json_response(load_raw())


async def get_trajectory_rules(request: web.Request) -> web.Response:
    """The Motion Brush editor's paths (input and colour each) and point limits (kling_api.rules.motion);
    the page draws nothing before it has them."""
    return web.json_response(trajectory_rules())


async def post_widget_plan(request: web.Request) -> web.Response:
    """Which widgets a node shows, the choices of its combos, why its values are refused and the one-click
    fix, computed by kling_api.rules.validation (the page holds no rule)."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    try:
        plan = plan_request(body, rules_endpoints())
    except WidgetPlanError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    # The cost lines: the estimate of the current values, the spend guard, the last balance read.
    plan["info"] = plan["info"] + await asyncio.to_thread(plan_info, body["node_type"], body.get("values") or {})
    return web.json_response(plan)


async def get_credentials(request: web.Request) -> web.Response:
    return web.json_response(credentials_status())


async def post_credentials(request: web.Request) -> web.Response:
    data = await json_object(request)
    if isinstance(data, web.Response):
        return data
    try:
        write_credentials_file(credentials_path(), api_key=str(data.get("api_key") or ""),
                               access_key=str(data.get("access_key") or ""),
                               secret_key=str(data.get("secret_key") or ""))
    except KlingCredentialsError as exc:
        return web.json_response({"error": exc.message}, status=400)
    status = credentials_status()
    if env_credentials_set():
        status["note"] = "environment variables are set and take precedence over the stored keys"
    return web.json_response(status)


async def delete_credentials(request: web.Request) -> web.Response:
    refused = refuse_foreign(request)
    if refused is not None:
        return refused
    removed = delete_credentials_file(credentials_path())
    log.info("Kling credentials file %s", "removed" if removed else "was already absent")
    return web.json_response(credentials_status())


async def get_account(request: web.Request) -> web.Response:
    """Remaining resource-pack units from Kling's GET /account/costs (free; at most one query a second,
    later calls wait). Never contains the key."""
    try:
        costs = await asyncio.to_thread(lambda: KlingClient(node_credentials()).account_costs())
    except KlingError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    remember_balance(costs)  # the nodes' cost lines show it (the plan never queries Kling itself)
    return web.json_response({**costs.to_json(), "text": describe_balance(costs)})


def register_routes() -> None:
    """Add the routes once, at import time (aiohttp freezes the router when the server starts)."""
    server = getattr(PromptServer, "instance", None)
    if server is None or server.app.router.frozen:
        log.warning("Kling routes not registered: the server router is not available")
        return
    routes = server.routes
    routes.get("/kling/capabilities")(get_capabilities)
    routes.get("/kling/trajectory_rules")(get_trajectory_rules)
    routes.post("/kling/widget_plan")(post_widget_plan)
    routes.get("/kling/credentials")(get_credentials)
    routes.get("/kling/account")(get_account)
    routes.post("/kling/credentials")(post_credentials)
    routes.delete("/kling/credentials")(delete_credentials)
    register_cost_routes(server)
    server.add_on_prompt_handler(mark_frame_links)  # the cache follows links to the frames output
