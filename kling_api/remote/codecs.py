"""How a request and a task are spelt on each of Kling's two API standards.

The client speaks through :func:`codec_for` and never asks which standard an endpoint is on: each codec
builds the create body from a request dataclass, says how one task is queried (by task id or by
external_task_id), reads Kling's answer into the one :class:`~kling_api.remote.tasks.Task` both
standards share, and says which credentials the standard accepts.

* legacy (``/v1/...``): ``model_name`` in a flat body, ``GET <endpoint>/<id>``, ``task_status``
  ``succeed``, ``final_unit_deduction``; a storyboard is ``multi_shot: true``, ``shot_type: "customize"``
  and ``multi_prompt: [{index, prompt, duration}]`` (reference section 3);
* new design standard (the model in the path): ``contents`` / ``settings`` / ``options``,
  ``GET /tasks?task_ids=`` or ``?external_task_ids=`` answering a list (an unknown id: an empty list),
  ``status`` ``succeeded``, ``outputs[type=video]``, ``billing[].amount``; API keys only; a storyboard is
  the pages' shot syntax as the prompt (``shot 1, 2, words; shot 2, 3, words;``), and on a model whose page
  has ``settings.multi_shot`` (kling-3.0) that setting says whether the task is multi-shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any, Protocol

from ..errors import KlingCredentialsError, KlingProtocolError
from ..rules.capabilities import capability_table
from ..rules.endpoints import LEGACY, NEW, Endpoint
from ..rules.request import ImageToVideoRequest, RequestBody, Shot, TextToVideoRequest
from ..rules.storyboard import shot_syntax
from .auth import Credentials
from .tasks import STATUS_SUCCEED, Task, VideoResult

#: The console where an API key is made, as Kling's own 1002 answer to an AK/SK JWT on a new-standard
#: path names it (observed live, kling_api.md section 1.4; no page spells the message).
API_KEY_CONSOLE = "https://kling.ai/dev/api-key"
#: The new standard's status for a finished task (legacy: ``succeed``, which :class:`Task` keeps).
NEW_SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Query:
    """One GET: the path and its query parameters."""

    path: str
    params: dict[str, str] | None = None


class Codec(Protocol):
    standard: str
    #: Whether the endpoint lists its newest tasks (``GET <endpoint>?pageNum=``), used to double-check
    #: a lookup by external_task_id.
    lists_tasks: bool

    def body(self, request: RequestBody) -> dict[str, Any]: ...
    def external_id(self, body: dict[str, Any]) -> str: ...
    def model_of(self, body: dict[str, Any]) -> str: ...
    def with_external_id(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]: ...
    def query(self, endpoint: Endpoint, task_id: str) -> Query: ...
    def query_external(self, endpoint: Endpoint, external_task_id: str) -> Query: ...
    def created(self, data: Any) -> Task: ...
    def found(self, data: Any) -> Task | None: ...
    def check_credentials(self, credentials: Credentials, endpoint: Endpoint) -> None: ...


class LegacyCodec:
    """Kling's ``/v1/`` standard (the user's reference): the request dataclasses' own body."""

    standard = LEGACY
    lists_tasks = True

    def body(self, request: RequestBody) -> dict[str, Any]:
        body = request.to_body()
        shots: tuple[Shot, ...] = getattr(request, "shots", ())
        if shots:
            body.update(multi_prompt_fields(shots))
        return body

    def external_id(self, body: dict[str, Any]) -> str:
        return str(body.get("external_task_id") or "")

    def model_of(self, body: dict[str, Any]) -> str:
        return str(body.get("model_name") or "")

    def with_external_id(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        return {**body, "external_task_id": external_task_id}

    def query(self, endpoint: Endpoint, task_id: str) -> Query:
        return Query(endpoint.query_one(task_id))

    def query_external(self, endpoint: Endpoint, external_task_id: str) -> Query:
        # The docs put the external id in the path ("choose one" of task_id/external_task_id).
        return Query(endpoint.query_one(external_task_id))

    def created(self, data: Any) -> Task:
        return Task.from_api(data)

    def found(self, data: Any) -> Task | None:
        return Task.from_api(data)

    def check_credentials(self, credentials: Credentials, endpoint: Endpoint) -> None:
        """Both an API key and an access key + secret key work here."""


class NewStandardCodec:
    """Kling's new design standard (pages kling-3.0-turbo-i2v.md and the other path-based pages)."""

    standard = NEW
    lists_tasks = False

    def body(self, request: RequestBody) -> dict[str, Any]:
        if not isinstance(request, (ImageToVideoRequest, TextToVideoRequest)):
            raise TypeError(f"{type(request).__name__} has no new-standard form")
        prompt = shot_syntax(request.shots) if request.shots else request.prompt
        if isinstance(request, ImageToVideoRequest):
            contents: list[dict[str, str]] = []
            if prompt:
                contents.append({"type": "prompt", "text": prompt})
            if request.image is not None:
                contents.append({"type": "first_frame", "url": request.image})
            if request.image_tail is not None:
                contents.append({"type": "last_frame", "url": request.image_tail})
            body: dict[str, Any] = {"contents": contents}
        else:
            body = {"prompt": prompt}
        settings: dict[str, Any] = {}
        if request.resolution:
            settings["resolution"] = request.resolution
        settings["duration"] = int(request.duration)  # an int on this standard (legacy: a string)
        if isinstance(request, TextToVideoRequest) and request.aspect_ratio:
            settings["aspect_ratio"] = request.aspect_ratio
        if request.sound is not None:  # left out for models without the field (validation decides)
            settings["audio"] = "native" if request.sound == "on" else "off"
        caps = capability_table().get(request.model_name)
        if caps is not None and caps.multi_shot_setting:
            # Always said: the page's default is true, and a request without shots is one shot (the README's
            # "Storyboards"; the page's own single-shot examples send false).
            settings["multi_shot"] = bool(request.shots)
        body["settings"] = settings
        options = {key: value for key, value in (("external_task_id", request.external_task_id),
                                                 ("callback_url", request.callback_url)) if value}
        if options:
            body["options"] = options
        return body

    def external_id(self, body: dict[str, Any]) -> str:
        return str((body.get("options") or {}).get("external_task_id") or "")

    def model_of(self, body: dict[str, Any]) -> str:
        return ""  # in the path: the endpoint names it

    def with_external_id(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        return {**body, "options": {**(body.get("options") or {}), "external_task_id": external_task_id}}

    def query(self, endpoint: Endpoint, task_id: str) -> Query:
        return Query(endpoint.query_path, {"task_ids": task_id})

    def query_external(self, endpoint: Endpoint, external_task_id: str) -> Query:
        return Query(endpoint.query_path, {"external_task_ids": external_task_id})

    def created(self, data: Any) -> Task:
        return task_from_new_standard(data)

    def found(self, data: Any) -> Task | None:
        """The first task of a ``GET /tasks`` answer; an empty list means Kling has no such task."""
        if not isinstance(data, list):
            raise KlingProtocolError(f"GET /tasks answered without a list: {str(data)[:200]}")
        return task_from_new_standard(data[0]) if data else None

    def check_credentials(self, credentials: Credentials, endpoint: Endpoint) -> None:
        if credentials.kind != "api_key":
            raise KlingCredentialsError(
                f"{endpoint.model or endpoint.name} is on Kling's new API, which accepts only an API key; "
                "these credentials are an access key + secret key (legacy API only)",
                hint=f"create an API key in Kling's console ({API_KEY_CONSOLE}) and set KLING_API_KEY (or "
                     "Settings > Kling > API credentials), or pick a legacy model (kling-v3, kling-v2-6, ...)")


def multi_prompt_fields(shots: tuple[Shot, ...]) -> dict[str, Any]:
    """A storyboard as the legacy API takes it: ``multi_prompt`` items numbered from 1, each ``duration`` a
    string (as the legacy ``duration`` is)."""
    return {"multi_shot": True, "shot_type": "customize",
            "multi_prompt": [{"index": n, "prompt": shot.prompt, "duration": str(shot.duration)}
                             for n, shot in enumerate(shots, 1)]}


def task_from_new_standard(data: Any) -> Task:
    """A new-standard task object as the :class:`Task` both standards share (``succeeded`` read as
    ``succeed``; the units are the ``unit`` amounts of ``billing``)."""
    if not isinstance(data, dict) or not data.get("id"):
        raise KlingProtocolError(f"Kling answered without a task object: {str(data)[:200]}")
    outputs = [o for o in (data.get("outputs") or []) if isinstance(o, dict)]
    videos = tuple(VideoResult(id=str(o.get("id", "")), url=str(o.get("url", "")), duration=str(o.get("duration", "")),
                               watermark_url=str(o.get("watermark_url", "") or ""))
                   for o in outputs if o.get("type") == "video")
    status = str(data.get("status", ""))
    return Task(task_id=str(data["id"]), status=STATUS_SUCCEED if status == NEW_SUCCEEDED else status,
                status_msg=str(data.get("message", "") or ""), external_task_id=str(data.get("external_id", "") or ""),
                videos=videos, final_unit_deduction=_units(data.get("billing")),
                created_at=int(data.get("create_time") or 0), updated_at=int(data.get("update_time") or 0), raw=data)


def _units(billing: Any) -> str:
    """The units a task deducted from resource packs (``charge_type`` "unit"); '' when Kling says none."""
    amounts = [str(b.get("amount", "")) for b in (billing or []) if isinstance(b, dict)
               and b.get("charge_type", "unit") == "unit" and b.get("amount") not in (None, "")]
    if not amounts:
        return ""
    try:
        return f"{sum(float(a) for a in amounts):g}"
    except ValueError:
        return " + ".join(amounts)


_CODECS: dict[str, Codec] = {LEGACY: LegacyCodec(), NEW: NewStandardCodec()}


def check_request_credentials(requests: Iterable[RequestBody], credentials: Credentials) -> None:
    """Raise ``KlingCredentialsError`` when ``credentials`` cannot reach one of the requests' standards
    (an access key + secret key reaches the legacy API only): said before anything is sent."""
    for request in requests:
        codec_for(request.endpoint).check_credentials(credentials, request.endpoint)


def codec_for(endpoint: Endpoint) -> Codec:
    return _CODECS[endpoint.standard]


__all__ = ["API_KEY_CONSOLE", "Codec", "check_request_credentials", "LegacyCodec", "NewStandardCodec", "Query", "codec_for",
           "multi_prompt_fields", "task_from_new_standard"]
