"""HTTP routing: Kling's endpoints, the video files, and the ``/_emulator/*`` control endpoints.

Kling's answers use the envelope ``{"code", "message", "request_id", "data"}`` (reference 5.1; the new
standard's pages show the same envelope); errors carry the HTTP status and business code of section 6.1.
Legacy endpoints take POST (create), GET (list) and GET /{id}; the new standard's create paths
(``/image-to-video/<model>``, ``/text-to-video/<model>``) take POST only, and its tasks are queried at
``GET /tasks`` and ``POST /tasks`` (``new_standard``), all with an API key only. Video files need no auth
(Kling's are plain CDN URLs) and honour single Range requests. Control endpoints need no auth either and
are not recorded.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..rules.endpoints import (ACCOUNT_COSTS_PATH, IMAGE2VIDEO, MULTI_IMAGE2VIDEO, NEW, NEW_QUERY_PATH,
                               NEW_STANDARD_ENDPOINTS, TEXT2VIDEO, VIDEO_EXTEND, Endpoint, endpoint_for_path)
from .errors import ApiError, bad_param
from .faults import CREATE_ERRORS, SERVER_ERROR_STATUS
from .new_rules import check_new_create
from .new_standard import query_tasks, search_tasks
from .rules import CreateOrder, check_create, check_extend_create, check_multi_image_create, check_text_create

log = logging.getLogger(__name__)

#: Kling's task endpoints (the endpoint table; reference 1.2, 1.3, 1.4): name -> the check that turns a
#: create body into an order (or raises Kling's 1200/1201). ``emu`` is the running
#: :class:`~kling_api.emulator.server.Emulator`.
CREATE_CHECKS: dict[str, Callable[[Any, Any], CreateOrder]] = {
    IMAGE2VIDEO.name: lambda emu, body: check_create(body, emu.fetch_image),
    TEXT2VIDEO.name: lambda emu, body: check_text_create(body),
    MULTI_IMAGE2VIDEO.name: lambda emu, body: check_multi_image_create(body, emu.fetch_image),
    VIDEO_EXTEND.name: lambda emu, body: check_extend_create(body, emu.find_video),
    **{row.name: (lambda emu, body, row=row: check_new_create(row, body, emu.fetch_image))
       for row in NEW_STANDARD_ENDPOINTS},
}
#: What a truncated answer to a poll looks like on each standard (the malformed_json_polls switch).
TRUNCATED_POLL = {False: b'{"code":0,"message":"SUCCEED","data":{"task_id":"',
                  True: b'{"code":0,"message":"SUCCEED","data":[{"id":"'}
#: Units in the emulator's one resource pack (tasks deduct their final_unit_deduction from it).
RESOURCE_PACK_UNITS = 1000.0
#: Room for a 50 MB image (the new pages' limit) sent as base64 (about 67 MB) with the rest of a body;
#: Kling's own body limit is not documented, so this one is the emulator's.
MAX_BODY_BYTES = 96 * 1024 * 1024
PAGE_NUM_RANGE, PAGE_SIZE_RANGE = (1, 1000), (1, 500)
SERVER_ERROR_MESSAGES = {5000: "Internal server error", 5001: "Service temporarily unavailable",
                         5002: "Server internal timeout"}
NOT_MP4_PAGE = b"<html><head><title>403 Forbidden</title></head><body>Access denied</body></html>"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) of a single ``bytes=`` range; None means "send it all" (RFC 9110 lets a
    server ignore ranges it does not take, like multi-range)."""
    match = _RANGE.fullmatch((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        if int(last) == 0:
            raise Unsatisfiable
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise Unsatisfiable
    return start, end


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KlingEmulator/1.0"
    timeout = 60  # an idle keep-alive connection frees its thread after this long

    @property
    def emu(self) -> Any:
        """The :class:`~kling_api.emulator.server.Emulator` serving this request (it sets itself on the
        HTTP server; typed loosely so that the handler needs no import of the server module)."""
        return self.server.emulator  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base class name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- dispatch --------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        raw = self._read_body()
        if raw is None:
            return
        if path.startswith("/_emulator/"):
            self._control(method, path, raw)
            return
        body = _json_or_none(raw)
        self.emu.record(method, self.path, self.headers, body)
        delay = self.emu.switches.snapshot().delay_seconds
        if delay:
            time.sleep(delay)
        request_id = str(uuid.uuid4())
        endpoint = endpoint_for_path(path)
        try:
            if path.startswith("/_files/") and method in ("GET", "HEAD"):
                self._download(method, path)
            elif path.startswith("/_uploads/") and method in ("GET", "HEAD"):
                self._uploaded(method, path)
            elif endpoint is not None and endpoint.standard == NEW:
                self.emu.auth.check_api_key(self.headers.get("Authorization"))
                if method != "POST":
                    raise ApiError(404, 1202, "invalid request method")
                self._create(endpoint, raw, request_id)
            elif endpoint is not None:
                self.emu.auth.check(self.headers.get("Authorization"))
                self._task_endpoint(endpoint, method, path, query, raw, request_id)
            elif path == NEW_QUERY_PATH:
                self.emu.auth.check_api_key(self.headers.get("Authorization"))
                self._new_query(method, query, raw, request_id)
            elif path == ACCOUNT_COSTS_PATH and method == "GET":
                self.emu.auth.check(self.headers.get("Authorization"))
                self._account_costs(query, request_id)
            else:
                raise ApiError(404, 1203, "resource not found")
        except ApiError as exc:
            self._send_json(exc.http_status, {"code": exc.code, "message": exc.message, "request_id": request_id})

    def _task_endpoint(self, endpoint: Endpoint, method: str, path: str, query: dict[str, list[str]], raw: bytes,
                       request_id: str) -> None:
        """A task endpoint: create, list, query one (list and query see its own tasks only)."""
        task_ref = path[len(endpoint.query_path) + 1:] if path.startswith(endpoint.query_path + "/") else ""
        if method == "POST" and not task_ref:
            self._create(endpoint, raw, request_id)
        elif method in ("GET", "HEAD") and not task_ref:
            if not self._poll_fault(new=False):
                self._list(endpoint, query, request_id)
        elif method in ("GET", "HEAD") and "/" not in task_ref:
            if not self._poll_fault(new=False):
                task = self.emu.find_task(task_ref, endpoint=endpoint.create_path)
                if task is None:
                    raise ApiError(404, 1203, "task not found")
                self._send_ok(task.view(), request_id)
        else:
            raise ApiError(404, 1202, "invalid request method")

    # -- Kling endpoints -------------------------------------------------------------------
    def _create(self, endpoint: Endpoint, raw: bytes, request_id: str) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, 1200, "request body is not valid JSON") from None
        order = CREATE_CHECKS[endpoint.name](self.emu, body)
        self.emu.refuse_duplicate(order)
        self.emu.refuse_discontinued(order)
        switches = self.emu.switches
        for counter, code in (("balance_depleted_creates", 1102), ("content_policy_creates", 1301),
                              ("rate_limit_creates", 1303), ("create_errors", switches.snapshot().create_error_code)):
            if switches.take(counter):
                raise ApiError(CREATE_ERRORS[code][0], code, CREATE_ERRORS[code][1])
        task = self.emu.create_task(order, endpoint.create_path)
        if switches.take("drop_after_create"):
            log.info("dropping the connection after creating task %s (fault switch)", task.task_id)
            self._drop()
            return
        self._send_ok(task.created_view(), request_id)

    def _account_costs(self, query: dict[str, list[str]], request_id: str) -> None:
        """Reference 1.3: start_time/end_time (ms) required; one video pack of RESOURCE_PACK_UNITS, less
        the units of every task made so far (legacy final_unit_deduction, new-standard billing amount)."""
        times = {}
        for name in ("start_time", "end_time"):
            value = query.get(name, [""])[0]
            if not value.isdigit():
                raise bad_param(f"{name}({value}) is invalid")
            times[name] = int(value)
        if times["start_time"] > times["end_time"]:
            raise bad_param("start_time is after end_time")
        used = sum(float(t.units()) for t in self.emu.tasks_newest_first())
        now = int(time.time() * 1000)
        pack = {"resource_pack_name": "Video generation pack (emulator)", "resource_pack_id": "emulator-pack-1",
                "resource_pack_type": "decreasing_total", "total_quantity": RESOURCE_PACK_UNITS,
                "remaining_quantity": RESOURCE_PACK_UNITS - used, "purchase_time": now - 86_400_000,
                "effective_time": now - 86_400_000, "invalid_time": now + 365 * 86_400_000, "status": "online"}
        name = query.get("resource_pack_name", [""])[0]
        packs = [pack] if not name or name == pack["resource_pack_name"] else []
        self._send_ok({"code": 0, "msg": "", "resource_pack_subscribe_infos": packs}, request_id)

    def _new_query(self, method: str, query: dict[str, list[str]], raw: bytes, request_id: str) -> None:
        """``GET /tasks`` (by ids) and ``POST /tasks`` (cursor search); both count as polls for the faults."""
        if method not in ("GET", "HEAD", "POST"):
            raise ApiError(404, 1202, "invalid request method")
        if self._poll_fault(new=True):
            return
        tasks = self.emu.new_standard_tasks()
        if method == "POST":
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                raise ApiError(400, 1200, "request body is not valid JSON") from None
            self._send_ok(search_tasks(tasks, body, int(time.time() * 1000)), request_id)
        else:
            self._send_ok(query_tasks(tasks, query), request_id)

    def _poll_fault(self, *, new: bool) -> bool:
        """Answers a poll with an injected fault; True when it did."""
        switches = self.emu.switches
        if switches.take("server_error_polls"):
            code = switches.snapshot().server_error_code
            raise ApiError(SERVER_ERROR_STATUS[code], code, SERVER_ERROR_MESSAGES[code])
        if switches.take("malformed_json_polls"):
            self._send_bytes(200, TRUNCATED_POLL[new], "application/json")
            return True
        return False

    def _list(self, endpoint: Endpoint, query: dict[str, list[str]], request_id: str) -> None:
        page = _int_param(query, "pageNum", 1, PAGE_NUM_RANGE)
        size = _int_param(query, "pageSize", 30, PAGE_SIZE_RANGE)
        tasks = self.emu.tasks_newest_first(endpoint.create_path)
        wanted = query.get("external_task_id", [None])[0]
        if wanted:
            tasks = [t for t in tasks if t.external_task_id == wanted]
        self._send_ok([t.view() for t in tasks[(page - 1) * size: page * size]], request_id)

    # -- files -----------------------------------------------------------------------------
    def _download(self, method: str, path: str) -> None:
        name = path[len("/_files/"):]
        task = self.emu.find_task(name[:-4], external=False) if name.endswith(".mp4") else None
        data = task.video if task is not None else None
        if data is None:
            self._send_bytes(404, b"Not Found", "text/plain")
            return
        switches = self.emu.switches
        if method == "GET" and switches.take("non_mp4_downloads"):
            self._send_bytes(200, NOT_MP4_PAGE, "text/html")
            return
        try:
            span = parse_range(self.headers.get("Range"), len(data))
        except Unsatisfiable:
            self._send_bytes(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
            return
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{task.video_id}"'}
        status, chunk = 200, data
        if span is not None:
            status, chunk = 206, data[span[0]:span[1] + 1]
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{len(data)}"
        if method == "HEAD":
            self._send_head(status, len(chunk), "video/mp4", headers)
        elif switches.take("drop_downloads"):
            keep = switches.snapshot().drop_download_after_bytes
            log.info("dropping the download of task %s after %d bytes (fault switch)", task.task_id, keep)
            self._send_head(status, len(chunk), "video/mp4", headers)
            self.wfile.write(chunk[:keep])
            self._drop()
        else:
            self._send_bytes(status, chunk, "video/mp4", headers)

    def _uploaded(self, method: str, path: str) -> None:
        found = self.emu.upload(path.rsplit("/", 1)[-1])
        if found is None:
            self._send_bytes(404, b"Not Found", "text/plain")
        elif method == "HEAD":
            self._send_head(200, len(found[0]), found[1], {})
        else:
            self._send_bytes(200, found[0], found[1])

    # -- control ---------------------------------------------------------------------------
    def _control(self, method: str, path: str, raw: bytes) -> None:
        emu = self.emu
        name = path[len("/_emulator/"):]
        if method == "GET" and name == "config":
            self._send_json(200, emu.describe_config())
        elif method == "POST" and name == "config":
            changes = _json_or_none(raw)
            if not isinstance(changes, dict):
                self._send_json(400, {"error": "send a JSON object of config keys"})
                return
            try:
                self._send_json(200, emu.configure(**changes))
            except KeyError as exc:
                self._send_json(400, {"error": f"unknown config key {exc}",
                                      "keys": sorted(emu.describe_config())})
            except (TypeError, ValueError) as exc:
                self._send_json(400, {"error": str(exc)})
        elif method == "POST" and name == "reset":
            self._send_json(200, emu.reset())
        elif method == "GET" and name == "requests":
            self._send_json(200, {"requests": emu.requests})
        elif method == "GET" and name == "callbacks":
            self._send_json(200, {"callbacks": emu.callbacks})
        elif method == "GET" and name == "tasks":
            self._send_json(200, {"tasks": emu.created_tasks()})
        elif method == "POST" and name == "uploads":
            kind = self.headers.get("Content-Type", "application/octet-stream")
            self._send_json(200, {"url": emu.add_upload(raw, kind)})
        else:
            self._send_json(404, {"error": f"no control endpoint {method} {path}"})

    # -- plumbing --------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send_json(411, {"code": 1200, "message": "chunked request bodies are not supported",
                                  "request_id": str(uuid.uuid4())})
            self.close_connection = True
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send_json(413, {"code": 1200, "message": "request body is too large",
                                  "request_id": str(uuid.uuid4())})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send_ok(self, data: Any, request_id: str) -> None:
        self._send_json(200, {"code": 0, "message": "SUCCEED", "request_id": request_id, "data": data})

    def _send_json(self, status: int, payload: Any) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json")

    def _send_head(self, status: int, length: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._send_head(status, len(body), content_type, headers or {})
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        """Close the socket with no (further) response, as a broken network would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _int_param(query: dict[str, list[str]], name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = query.get(name, [None])[0]
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not bounds[0] <= int(raw) <= bounds[1]:
        raise bad_param(f"{name}({raw}) must be in [{bounds[0]}, {bounds[1]}]")
    return int(raw)
