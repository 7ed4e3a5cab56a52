"""The new design standard's queries: ``GET /tasks`` (by task ids or custom ids) and ``POST /tasks``
(the cursor search), from the "Query Task (By task ID)" and "Query Task (By Cursor)" sections that
every new-standard page ends with.

What the pages leave open (research note 13) is the emulator's choice, said where it is made: both or
neither id list, unknown ids, order and duplicates, whitespace, the cursor's form, the page order.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Sequence

from .errors import ApiError, bad_param
from .tasks import NEW_STATUS, Task

ID_PARAMS = ("task_ids", "external_task_ids")
#: POST /tasks: "limit ... Default 100", "Maximum value: 500"; the default window "end_time - 30 days".
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
WINDOW_MS = 30 * 86_400_000
FILTER_VALUES = {"status": tuple(NEW_STATUS.values()), "product_type": ("video", "image", "try_on")}
SEARCH_FIELDS = ("start_time", "end_time", "cursor", "limit", "filters")


def asked_ids(query: dict[str, list[str]]) -> tuple[str, list[str]]:
    """(which parameter, the ids asked) of a ``GET /tasks`` query. The page: "you can choose between two
    query methods: task_ids and external_task_ids, but you cannot use them simultaneously"; "separated
    by ","". Both, or neither, is a 1201 (the emulator's choice of answer; the zh page says "at least
    one and only one"). Blanks around ids are dropped, and an id asked twice is answered once."""
    asked = {name: [part.strip() for value in query.get(name, []) for part in value.split(",") if part.strip()]
             for name in ID_PARAMS}
    given = [name for name in ID_PARAMS if name in query]
    if len(given) == 2:
        raise bad_param("task_ids and external_task_ids cannot be used together")
    if not given or not asked[given[0]]:
        raise bad_param("task_ids or external_task_ids is required")
    return given[0], list(dict.fromkeys(asked[given[0]]))


def query_tasks(tasks: Sequence[Task], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """``GET /tasks``' ``data``: the asked tasks in the order asked. An id the account has no task for is
    simply absent (the emulator's choice: no page says; a query of one unknown id answers ``[]``)."""
    name, ids = asked_ids(query)
    if name == "task_ids":
        found = {t.task_id: t for t in tasks}
    else:
        found = {t.external_task_id: t for t in tasks if t.external_task_id}
    return [found[i].view() for i in ids if i in found]


def search_tasks(tasks: Sequence[Task], body: Any, now: int) -> dict[str, Any]:
    """``POST /tasks``' ``data``: ``{result, count, next_cursor, has_more}``, newest first (the emulator's
    order). ``start_time`` / ``end_time`` are ms, sent as numbers (turbo pages) or strings (the others),
    so both are read; a cursor carries its window ("When cursor is not empty, start_time and end_time are
    ignored"). ``filters`` keys: ``status`` (submitted, processing, succeeded, failed) and
    ``product_type`` (video, image, try_on; every emulator task is a video)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, 1200, "request body must be a JSON object")
    for key in body:  # unknown keys refused, as on the creates (the emulator's choice)
        if key not in SEARCH_FIELDS:
            raise bad_param(f"unknown field '{key}' on /tasks")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise bad_param(f"limit value '{limit}' is invalid: it must be an integer from 1 to {MAX_LIMIT}")
    wanted = _filters(body.get("filters"))
    cursor = body.get("cursor") or ""
    if cursor:
        start, end, after = _read_cursor(cursor)
    else:
        end = _millis("end_time", body.get("end_time"), now)
        start = _millis("start_time", body.get("start_time"), end - WINDOW_MS)
        if start >= end:
            raise bad_param("start_time must be earlier than end_time")
        after = None
    chosen = [t for t in sorted(tasks, key=_order_key, reverse=True)
              if start <= t.created_at <= end and (after is None or _order_key(t) < after)
              and t.new_status in wanted.get("status", (t.new_status,))
              and "video" in wanted.get("product_type", ("video",))]
    page, more = chosen[:limit], len(chosen) > limit
    next_cursor = _write_cursor(start, end, _order_key(page[-1])) if more else ""
    return {"result": [t.view() for t in page], "count": len(page), "next_cursor": next_cursor, "has_more": more}


def _order_key(task: Task) -> tuple[int, str]:
    return task.created_at, task.task_id


def _filters(value: Any) -> dict[str, tuple[str, ...]]:
    if value in (None, []):
        return {}
    if not isinstance(value, list):
        raise bad_param("filters must be an array")
    found: dict[str, tuple[str, ...]] = {}
    for i, item in enumerate(value):
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or key not in FILTER_VALUES:
            raise bad_param(f"filters[{i}].key value '{key}' is invalid")
        values = item.get("values")
        if not isinstance(values, list) or not values:
            raise bad_param(f"filters[{i}].values must be a non-empty array")
        for v in values:
            if v not in FILTER_VALUES[key]:
                raise bad_param(f"filters[{i}].values value '{v}' is invalid for {key}")
        found[key] = tuple(values)
    return found


def _millis(field: str, value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise bad_param(f"{field} value '{value}' is invalid: it must be a Unix timestamp in milliseconds")


def _write_cursor(start: int, end: int, after: tuple[int, str]) -> str:
    """An opaque cursor (the emulator's form): the window and the last task shown, base64url JSON."""
    raw = json.dumps([start, end, after[0], after[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: Any) -> tuple[int, int, tuple[int, str]]:
    try:
        start, end, created, task_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(start), int(end), (int(created), str(task_id))
    except (TypeError, ValueError, binascii.Error):
        raise bad_param(f"cursor value '{cursor}' is invalid") from None
