"""The endpoint table: every Kling task endpoint, declared once.

Each row says what a task endpoint is called (the capability table, the rate card and the messages use
that name), where a task is created and queried, which rules of the capability table apply, and the
family the task ledger files its tasks under. The client, the generation life, the costs, the ledger, the
CLI, the nodes and the emulator all read this table; nothing else spells a Kling path.

``KLING_API_BASE`` chooses the host; the paths are the same on every host.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..errors import KlingValidationError

#: The API standards: ``legacy`` is Kling's ``/v1/`` family (model_name in the body, a query per
#: endpoint); ``new`` is Kling's "new design standard" (the model in the path, a ``contents`` /
#: ``settings`` / ``options`` body, every task queried at ``GET /tasks``, API keys only). Each has its own
#: request/response codec in ``kling_api.remote.codecs``.
LEGACY, NEW = "legacy", "new"
#: Where every new-standard task is queried (``task_ids`` or ``external_task_ids``, comma lists).
NEW_QUERY_PATH = "/tasks"

#: Kling's account endpoint (free; the balance of the resource packs).
ACCOUNT_COSTS_PATH = "/account/costs"


@dataclass(frozen=True)
class Endpoint:
    """One Kling task endpoint."""

    #: Short name, as the capability table ("endpoints"), the rate card and the messages spell it.
    name: str
    #: ``POST`` here creates a task.
    create_path: str
    #: ``GET`` here with the task id (or external_task_id) appended after a ``/`` queries one task; a plain
    #: ``GET`` lists the newest ones (``pageNum``/``pageSize``).
    query_path: str
    #: The capability table's section whose rules apply (its models, aspect ratios, limits).
    rules: str
    #: What the task ledger records as the endpoint of a task made here (kept as the legacy path so that
    #: ledgers written before this table still resume their tasks).
    ledger_family: str
    standard: str = LEGACY
    #: Whether the node for it makes one task per image of a batch (the cost line says "per image").
    per_image: bool = False
    #: New standard: the model this path creates with (it is in the path, not in the body).
    model: str = ""

    def query_one(self, task_id: str) -> str:
        """The path that queries one task by its id (or by its external_task_id, where Kling allows it)."""
        return f"{self.query_path}/{task_id}"

    def owns(self, path: str) -> bool:
        """True for this endpoint's create, list and query paths (new standard: its create path; the
        shared ``GET /tasks`` belongs to no one endpoint)."""
        if self.standard == NEW:
            return path == self.create_path
        return path == self.create_path or path.startswith(self.query_path + "/")


IMAGE2VIDEO = Endpoint("image2video", "/v1/videos/image2video", "/v1/videos/image2video", "image2video",
                       "/v1/videos/image2video", per_image=True)
TEXT2VIDEO = Endpoint("text2video", "/v1/videos/text2video", "/v1/videos/text2video", "text2video",
                      "/v1/videos/text2video")
MULTI_IMAGE2VIDEO = Endpoint("multi-image2video", "/v1/videos/multi-image2video", "/v1/videos/multi-image2video",
                             "multi-image2video", "/v1/videos/multi-image2video")
VIDEO_EXTEND = Endpoint("video-extend", "/v1/videos/video-extend", "/v1/videos/video-extend", "video-extend",
                        "/v1/videos/video-extend")



def _new_standard(product: str, rules: str, model: str) -> Endpoint:
    """A new-standard create path: ``/<product>/<model>`` (pages kling-3.0-turbo-i2v.md and the others)."""
    path = f"/{product}/{model}"
    return Endpoint(f"{product}/{model}", path, NEW_QUERY_PATH, rules, path, standard=NEW, model=model,
                    per_image=rules == IMAGE2VIDEO.name)


#: The new standard's image-to-video and text-to-video paths; the rules are the legacy endpoint's
#: (the same node serves both standards, and the model name decides which one a task goes to).
NEW_MODELS = ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo")
NEW_STANDARD_ENDPOINTS = tuple(
    _new_standard(product, rules, model) for product, rules in (("image-to-video", IMAGE2VIDEO.name),
                                                                 ("text-to-video", TEXT2VIDEO.name))
    for model in NEW_MODELS)

#: Every task endpoint, in the order a task id of unknown origin is looked for.
ENDPOINTS: tuple[Endpoint, ...] = (IMAGE2VIDEO, TEXT2VIDEO, MULTI_IMAGE2VIDEO, VIDEO_EXTEND, *NEW_STANDARD_ENDPOINTS)


def endpoint_named(key: str | Endpoint) -> Endpoint:
    """The row for a name (``image2video``), a create path or a ledger family: callers and saved ledgers
    name endpoints each of these ways. Raises KlingValidationError naming what is known."""
    if isinstance(key, Endpoint):
        return key
    wanted = (key or "").strip()
    for row in ENDPOINTS:
        if wanted in (row.name, row.create_path, row.ledger_family):
            return row
    raise KlingValidationError("endpoint", key, ", ".join(row.name for row in ENDPOINTS))


def endpoint_for(rules: str, model_name: str = "") -> Endpoint:
    """The endpoint a request of ``rules`` (e.g. "image2video") goes to with ``model_name``: the model's
    own new-standard path where it has one, else the legacy endpoint of that name."""
    for row in NEW_STANDARD_ENDPOINTS:
        if row.rules == rules and row.model == model_name:
            return row
    return endpoint_named(rules)


def new_standard_models(rules: str) -> list[str]:
    """The new-standard models that have a path for ``rules`` (the capability table has their rules)."""
    return [row.model for row in NEW_STANDARD_ENDPOINTS if row.rules == rules]


def query_families(rows: Iterable[Endpoint] = ENDPOINTS) -> list[Endpoint]:
    """``rows`` with one stand-in for all new-standard rows: they share ``GET /tasks``, so asking one
    of them about a task id asks them all."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = row.query_path if row.standard == NEW else row.name
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def endpoint_for_path(path: str) -> Endpoint | None:
    """The endpoint whose create/list/query path ``path`` is (the emulator routes with it)."""
    return next((row for row in ENDPOINTS if row.owns(path)), None)


def endpoint_names(rows: Iterable[Endpoint] = ENDPOINTS) -> list[str]:
    return [row.name for row in rows]


__all__ = ["ACCOUNT_COSTS_PATH", "ENDPOINTS", "Endpoint", "IMAGE2VIDEO", "LEGACY", "MULTI_IMAGE2VIDEO", "NEW",
           "NEW_QUERY_PATH", "NEW_STANDARD_ENDPOINTS", "TEXT2VIDEO", "VIDEO_EXTEND", "endpoint_for", "endpoint_for_path",
           "endpoint_named", "endpoint_names", "new_standard_models", "query_families"]
