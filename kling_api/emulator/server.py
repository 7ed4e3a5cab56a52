"""The emulator object: a ThreadingHTTPServer on loopback plus the state tests look at.

    with Emulator(port=0, api_keys=["test-key"], max_height=160) as emu:
        requests.post(emu.url + "/v1/videos/image2video", ...)
        emu.configure(rate_limit_creates=2)
        emu.requests, emu.created_tasks(), emu.callbacks
"""
from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, replace
from email.message import Message
from http.server import ThreadingHTTPServer
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from ..rules.endpoints import LEGACY
from .access import Authenticator
from .errors import ApiError, Unreachable, bad_param
from .faults import CREATE_ERRORS, EmulatorConfig, Switches, coerce
from .handler import Handler
from .pictures import MAX_FETCH_BYTES
from .rules import CreateOrder, SourceVideo
from .tasks import (MODERATION_FAILED, PROCESSING, SUBMITTED, SUCCEED, CallbackSender, Lifecycle, Task,
                    is_loopback_host)
from .videos import VideoSpec, extend_mp4, motion_for_camera, mp4_seconds, output_geometry, render_mp4

log = logging.getLogger(__name__)

MAX_HEIGHT_ENV = "KLING_EMULATOR_MAX_HEIGHT"
FETCH_TIMEOUT_S = 10.0


def redact_headers(headers: Message | Mapping[str, str]) -> dict[str, str]:
    """Headers as received, with the Authorization value hidden (its scheme kept when it is Bearer)."""
    out = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            value = "Bearer ***" if value.startswith("Bearer") else "***"
        out[name] = value
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeouts, fault tests) is routine; anything else is logged in full."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            log.debug("client %s went away", client_address)
        else:
            log.exception("error while answering %s", client_address)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A loopback image URL must not bounce the emulator to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Emulator:
    """Kling's video task endpoints on a local port, with fault switches and a record of every request.

    ``api_keys`` are accepted as-is; ``access_keys`` maps access key -> secret key for JWTs. With
    neither, the key ``"emulator-key"`` is accepted. Other keyword arguments are
    :class:`EmulatorConfig` fields (timing and faults); ``max_height`` defaults to
    ``$KLING_EMULATOR_MAX_HEIGHT``. ``public_url`` overrides the base of the video URLs it hands out.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys: Iterable[str] | None = None,
                 access_keys: Mapping[str, str] | None = None, public_url: str | None = None,
                 **settings: Any) -> None:
        if "max_height" not in settings and os.environ.get(MAX_HEIGHT_ENV):
            settings["max_height"] = os.environ[MAX_HEIGHT_ENV]
        unknown = sorted(set(settings) - set(EmulatorConfig.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown emulator settings: {', '.join(unknown)}")
        self.switches = Switches(EmulatorConfig(**{k: coerce(k, v) for k, v in settings.items()}))
        self.auth = Authenticator(api_keys or (), access_keys)
        self.host, self.port = host, port
        self._public_url = public_url.rstrip("/") if public_url else None
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._callbacks: list[dict[str, Any]] = []
        self._tasks: dict[str, Task] = {}
        self._uploads: dict[str, tuple[bytes, str]] = {}
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sender: CallbackSender | None = None

    # -- running ---------------------------------------------------------------------------
    def start(self) -> "Emulator":
        """Bind and serve in a background thread; ``port=0`` picks a free port (see ``url``)."""
        self._stop.clear()
        self._server = _Server((self.host, self.port), Handler)
        self._server.emulator = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._sender = CallbackSender(self._record_callback)
        self._thread = threading.Thread(target=self._server.serve_forever, name="kling-emulator", daemon=True)
        self._thread.start()
        log.info("Kling emulator at %s accepts %s", self.url, self.auth.describe())
        return self

    def stop(self) -> None:
        """Stop serving and end the task threads (their tasks stay where they were)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL clients use (``KLING_API_BASE``), also the base of the video URLs."""
        if self._public_url:
            return self._public_url
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else "::1" if self.host == "::" else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    # -- control and inspection ------------------------------------------------------------
    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change timing/fault switches now (the same keys as ``POST /_emulator/config``)."""
        return self.switches.update(changes)

    @property
    def config(self) -> EmulatorConfig:
        return self.switches.snapshot()

    def reset(self) -> dict[str, Any]:
        """Forget requests, callbacks, tasks and uploads; switches go back to the constructor's.

        Tasks still under way stop where they are, so none of them calls back after the reset."""
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            self._requests.clear()
            self._callbacks.clear()
            self._tasks.clear()
            self._uploads.clear()
        return self.switches.reset()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every API and download request: method, path, headers (Authorization redacted), json."""
        with self._lock:
            return list(self._requests)

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every callback attempt: url, payload, outcome."""
        with self._lock:
            return list(self._callbacks)

    def created_tasks(self) -> list[dict[str, Any]]:
        """Every task created so far, oldest first, as its query shows it (``GET .../{task_id}`` on the
        legacy paths, ``GET /tasks`` on the new standard)."""
        with self._lock:
            tasks = list(self._tasks.values())
        return [t.view() for t in tasks]

    def find_task(self, task_or_external_id: str, *, external: bool = True,
                  endpoint: str | None = None) -> Task | None:
        """By task_id, else (when ``external``) by external_task_id, as the query path allows; with
        ``endpoint``, only a task created on that path (Kling's query is per endpoint)."""
        with self._lock:
            task = self._tasks.get(task_or_external_id)
        if task is not None and endpoint in (None, task.endpoint):
            return task
        if not external:
            return None
        return next((t for t in self.tasks_newest_first(endpoint) if t.external_task_id == task_or_external_id),
                    None)

    def tasks_newest_first(self, endpoint: str | None = None) -> list[Task]:
        """Every task, or those created on ``endpoint``."""
        with self._lock:
            return [t for t in reversed(self._tasks.values()) if endpoint in (None, t.endpoint)]

    def new_standard_tasks(self) -> list[Task]:
        """The tasks ``GET /tasks`` and ``POST /tasks`` see, newest first: those made on the new standard.
        Legacy tasks are left out (the emulator's choice; they have their own query paths, and the page's
        "Query Task" sections belong to the new-standard endpoints)."""
        return [t for t in self.tasks_newest_first() if t.is_new]

    def find_video(self, video_id: str) -> SourceVideo | None:
        """The video of a succeeded task (any endpoint) by its ``task_result.videos[].id``."""
        task = next((t for t in self.tasks_newest_first() if t.video_id == video_id), None)
        if task is None or task.status != SUCCEED or task.video is None:
            return None
        return SourceVideo(video_id=task.video_id, url=task.video_url, model=task.order.model,
                           mode=task.order.mode, duration=task.order.duration, data=task.video)

    # -- used by the handler ---------------------------------------------------------------
    def record(self, method: str, path: str, headers: Message, body: Any) -> None:
        entry = {"method": method, "path": path, "headers": redact_headers(headers), "json": body,
                 "time": time.time()}
        with self._lock:
            self._requests.append(entry)

    def _record_callback(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._callbacks.append(entry)

    def add_upload(self, data: bytes, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = (data, content_type)
        return f"{self.url}/_uploads/{upload_id}"

    def upload(self, upload_id: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._uploads.get(upload_id)

    def fetch_image(self, field: str, url: str) -> bytes:
        """Images given as URLs: the emulator's own uploads, or other loopback URLs; nothing else."""
        parts = urlsplit(url)
        own = urlsplit(self.url)
        if (parts.hostname, parts.port) == (own.hostname, own.port) and parts.path.startswith("/_uploads/"):
            found = self.upload(parts.path.rsplit("/", 1)[-1])
            if found is None:
                raise Unreachable(f"{field} url download failed: HTTP 404")
            return found[0]
        if not is_loopback_host(parts.hostname):
            raise Unreachable(f"{field} url download failed: {parts.hostname} is not reachable from the emulator "
                              "(it fetches only loopback URLs; send base64 or upload to /_emulator/uploads)")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)
        try:
            with opener.open(url, timeout=FETCH_TIMEOUT_S) as response:
                return response.read(MAX_FETCH_BYTES)
        except urllib.error.HTTPError as exc:
            raise Unreachable(f"{field} url download failed: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise Unreachable(f"{field} url download failed: {type(exc).__name__}") from None

    def create_task(self, order: CreateOrder, endpoint: str) -> Task:
        """Store a new task of ``endpoint`` (its path) and start its lifecycle thread."""
        config = self.switches.snapshot()
        failure = order.failure
        if (config.moderation_marker and config.moderation_marker in order.prompt) \
                or self.switches.take("moderation_fail_creates"):
            failure = MODERATION_FAILED
        if config.discontinued_as == "task":
            failure = config.discontinued(order.model.name) or failure
        if order.sound and self.switches.take("silent_creates"):
            order = replace(order, sound=False)
        with self._lock:  # the duplicate check and the insert are one step, as two racing creates need
            self._refuse_duplicate_locked(order)
            if config.concurrency_limit and self._slots_held() >= config.concurrency_limit:
                status, message = CREATE_ERRORS[1303]
                raise ApiError(status, 1303, message)
            task_id = str(random.randrange(7 * 10**17, 9 * 10**17))
            while task_id in self._tasks:
                task_id = str(random.randrange(7 * 10**17, 9 * 10**17))
            task = Task(task_id=task_id, order=order, base_url=self.url, endpoint=endpoint)
            self._tasks[task_id] = task
        log.info("task %s created on %s (%s%s)", task_id, endpoint, order.combo, ", will fail" if failure else "")
        Lifecycle(task, submitted_s=config.submitted_seconds, processing_s=config.processing_seconds,
                  render=lambda: self._render_for(task, config), failure=failure,
                  on_change=self._status_changed, stop=self._stop).start()
        return task

    def refuse_duplicate(self, order: CreateOrder) -> None:
        """1201 when the account already has a task with the order's external_task_id (reference 3 and the
        new pages: unique within the account, so across endpoints and standards too)."""
        with self._lock:
            self._refuse_duplicate_locked(order)

    def _refuse_duplicate_locked(self, order: CreateOrder) -> None:
        wanted = order.external_task_id
        if wanted and any(t.external_task_id == wanted for t in self._tasks.values()):
            if order.standard == LEGACY:
                raise bad_param(f"external_task_id({wanted}) already exists")
            # The pages give no wording for a duplicate: the emulator's, in the new standard's style.
            raise bad_param(f"options.external_task_id value '{wanted}' already exists")

    def refuse_discontinued(self, order: CreateOrder) -> None:
        """The discontinued-model switch, when it answers at the create: HTTP 400, code 1201 and Kling's
        live words (the status and code are the emulator's choice: the live report kept only the words)."""
        config = self.switches.snapshot()
        message = config.discontinued(order.model.name) if config.discontinued_as == "create" else None
        if message:
            raise bad_param(message)

    def _render_for(self, task: Task, config: EmulatorConfig) -> bytes:
        """The task's mp4, its measured length noted on the task (the new standard reports it)."""
        data = self._render(task.order, config)
        try:
            task.video_seconds = f"{mp4_seconds(data):.3f}"
        except Exception:  # a served video_file that is not an mp4: the requested duration stands in
            log.warning("could not measure the video of task %s", task.task_id, exc_info=True)
        return data

    def _render(self, order: CreateOrder, config: EmulatorConfig) -> bytes:
        if config.video_file:
            with open(config.video_file, "rb") as clip:
                return clip.read()
        if order.source is not None:  # an extend keeps its source's size and fps
            return extend_mp4(order.source.data, order.added_seconds)
        return render_mp4(self._video_spec(order, config.max_height))

    def _slots_held(self) -> int:
        """Tasks of the account that hold a concurrency slot: not yet succeed or failed (lock held)."""
        return sum(1 for task in self._tasks.values() if task.status in (SUBMITTED, PROCESSING))

    def _video_spec(self, order: CreateOrder, max_height: int | None) -> VideoSpec:
        first = order.image or order.image_tail
        assert first is not None  # rules refuse a create with neither (or fail the task before a render)
        width, height, fps = output_geometry(order.model, order.mode, first.width / first.height, max_height)
        return VideoSpec(start=order.image.data if order.image else None,
                         tail=order.image_tail.data if order.image_tail else None,
                         width=width, height=height, fps=fps, frames=int(order.duration) * fps,
                         sound=order.sound, motion=motion_for_camera(order.camera))

    def _status_changed(self, task: Task) -> None:
        log.debug("task %s is %s", task.task_id, task.status)
        sender = self._sender
        if task.order.callback_url and sender is not None and self.switches.snapshot().callbacks:
            sender.send(task.order.callback_url, task.callback_payload())

    def describe_config(self) -> dict[str, Any]:
        return asdict(self.switches.snapshot())
