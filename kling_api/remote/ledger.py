"""A persistent task ledger (SQLite): what was submitted, what Kling made of it, where the video went.

Every paid submission is recorded *before* its create request (a fingerprint of the request, the
``external_task_id`` it will carry, status ``creating``) and updated after (``task_id``, status, video
path, ``final_unit_deduction``, last error). Submitting the same request again (same body, images by
hash, same seed) finds the row and resumes instead of paying twice: an existing video is reused, a
known task is waited for, and a create whose answer never arrived is looked up by its
``external_task_id`` before anything is sent.

That ``external_task_id`` is derived from the fingerprint and an attempt number
(:func:`external_task_id_for`), so every machine that sees the same job carries the same id: Kling,
which keeps ids unique per account and answers a look-up by them for free, is then the state that
a farm of machines shares, and a job re-queued on another machine resumes instead of paying again.

Safe across threads (a lock per fingerprint) and processes (SQLite WAL, ``BEGIN IMMEDIATE``, and an
owner lease on a row being created). Never holds a key or a token: only request facts and ids.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import stat
import threading
import time
import uuid
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import KlingError
from .tasks import STATUS_FAILED, STATUS_SUCCEED, Task, VideoResult
from .transport import CancelCheck, sleep_unless_cancelled

log = logging.getLogger(__name__)

LEDGER_FILENAME = "ledger.sqlite3"
STATUS_CREATING = "creating"
#: The create was refused (validation, 1102, 1301...): no task exists, the next submission creates one.
STATUS_REFUSED = "refused"
#: Another process creating the same submission is trusted for this long before the row is taken over.
LEASE_S = 300.0
WAIT_SLICE_S = 0.25
BUSY_TIMEOUT_S = 30.0
#: String values longer than this (base64 images, masks) enter the fingerprint as their SHA-256.
HASH_OVER_CHARS = 256

_PROCESS_TOKEN = uuid.uuid4().hex
_HOST = socket.gethostname()
_locks_guard = threading.Lock()
_locks: dict[tuple[str, str], threading.Lock] = {}

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    fingerprint TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    base_url TEXT NOT NULL,
    seed TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL DEFAULT '',
    duration TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL DEFAULT '',
    external_task_id TEXT NOT NULL,
    task_id TEXT,
    status TEXT NOT NULL,
    video_id TEXT NOT NULL DEFAULT '',
    video_path TEXT NOT NULL DEFAULT '',
    final_unit_deduction TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    creates INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    claimed_at REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 1,
    sound TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS submissions_task_id ON submissions(task_id);
CREATE INDEX IF NOT EXISTS submissions_updated ON submissions(updated_at);
"""


class LedgerUnavailable(KlingError):
    """The ledger file could not be opened or written (the job may go on without it)."""


@dataclass(frozen=True)
class LedgerEntry:
    fingerprint: str
    endpoint: str
    base_url: str
    seed: str
    model_name: str
    mode: str
    duration: str
    prompt: str
    external_task_id: str
    task_id: str | None
    status: str
    video_id: str
    video_path: str
    final_unit_deduction: str
    last_error: str
    creates: int
    owner: str
    claimed_at: float
    created_at: float
    updated_at: float
    finished_at: float | None
    #: 1 for the first task of this submission, +1 for each retry after a failed task.
    attempt: int = 1
    #: "on", "off" or "" (not sent): part of what a cost estimate matches on.
    sound: str = ""

    def as_task(self) -> Task:
        """A Task good enough for a reused result (ids and status; no URL needed)."""
        videos = (VideoResult(id=self.video_id, url=""),) if self.video_id else ()
        return Task(task_id=self.task_id or "", status=self.status, external_task_id=self.external_task_id,
                    videos=videos, final_unit_deduction=self.final_unit_deduction)

    def as_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.pop("owner")
        data.pop("claimed_at")
        return data


_COLUMNS = [f.name for f in fields(LedgerEntry)]


def _digest_values(value: Any) -> Any:
    if isinstance(value, str) and len(value) > HASH_OVER_CHARS:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    if isinstance(value, dict):
        return {k: _digest_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_digest_values(v) for v in value]
    return value


def request_fingerprint(body: Mapping[str, Any], *, seed: Any = None, scope: str = "", batch_index: int = 0) -> str:
    """SHA-256 of the request body (images by their hash) plus the seed, the API host+endpoint and
    the position in a batch: equal for a re-queue of the same thing, different for a new seed."""
    canonical = json.dumps({"body": _digest_values(dict(body)), "seed": None if seed is None else str(seed),
                            "scope": scope, "batch_index": int(batch_index)},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Prefix of the external_task_ids this library makes (Kling allows 64 characters; these take 45-50).
EXTERNAL_ID_PREFIX = "comfy-kling"
EXTERNAL_ID_DIGEST_CHARS = 32


def external_task_id_for(fingerprint: str, attempt: int = 1) -> str:
    """The external_task_id of ``attempt`` (1, 2, ...) of the submission ``fingerprint``: the same on
    every machine, unique per submission and attempt, and a hash only (no prompt, no image)."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    digest = hashlib.sha256(f"kling-external-task-id|{fingerprint}".encode()).hexdigest()
    return f"{EXTERNAL_ID_PREFIX}-{digest[:EXTERNAL_ID_DIGEST_CHARS]}-{attempt}"


def default_cli_ledger_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$KLING_LEDGER``, else ``$XDG_CACHE_HOME/kling/ledger.sqlite3`` (``~/.cache`` by default)."""
    env = os.environ if environ is None else environ
    if env.get("KLING_LEDGER"):
        return Path(env["KLING_LEDGER"])
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "kling" / LEDGER_FILENAME


def _owner_alive(owner: str, claimed_at: float, now: float) -> bool:
    """True when another live process is (probably) creating this row right now."""
    if not owner or now - claimed_at > LEASE_S:
        return False
    host, _, rest = owner.partition("|")
    pid_text, _, token = rest.partition("|")
    if token == _PROCESS_TOKEN:
        return False  # this process; threads are serialised by the fingerprint lock
    if host != _HOST:
        return True  # another machine sharing the folder: trust the lease
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return False  # an earlier process that had this pid (a restarted container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A ledger written by an earlier version gets the columns added since (``attempt``, ``sound``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in conn.execute("PRAGMA table_info(submissions)")}
        if "attempt" not in present:
            conn.execute("ALTER TABLE submissions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
        if "sound" not in present:  # cost estimates match on it
            conn.execute("ALTER TABLE submissions ADD COLUMN sound TEXT NOT NULL DEFAULT ''")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class TaskLedger:
    """One SQLite file; connections are opened per operation, so any thread or process may use it.

    One connection stays open for the object's life (the anchor): when the last connection closes,
    SQLite checkpoints and deletes the WAL, and re-creating it syncs the folder too. On a busy disk
    that churn cost about 40 syncs of 0.1-0.5 s each per node run. Commits use ``synchronous=NORMAL``
    (WAL): a commit survives the process being killed; a power loss or an OS crash can undo the last
    ones. A create is still not paid twice: with a derived ``external_task_id`` the task is looked up
    on Kling before any create, and a typed one Kling refuses as a duplicate. The spend guard's count
    of today's units may then miss the undone tasks."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._ready_lock = threading.Lock()
        self._anchor: weakref.finalize | None = None  # closes the anchor connection, once
        self._anchor_file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file it holds

    def __repr__(self) -> str:
        return f"TaskLedger({str(self.path)!r})"

    # -- plumbing --------------------------------------------------------------------------
    def _open(self, *, any_thread: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=not any_thread)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _file(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def _is_ready(self) -> bool:
        return self._anchor is not None and self._anchor.alive and self._file() == self._anchor_file

    def ensure_ready(self) -> "TaskLedger":
        """Create the folder (0700), the file (0600) and the table once, and again if the file was
        deleted; raises LedgerUnavailable."""
        if self._is_ready():
            return self
        with self._ready_lock:
            if self._is_ready():
                return self
            self._let_go_of_a_replaced_file()
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    self._initialise()
                    break
                except sqlite3.OperationalError as exc:
                    # Another process is setting the file up at this very moment (switching to WAL
                    # takes a lock that busy_timeout does not always wait for): try again shortly.
                    if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                        raise LedgerUnavailable(f"The task ledger {self.path} cannot be used ({exc})") from None
                    time.sleep(0.05)
                except (OSError, sqlite3.Error) as exc:
                    raise LedgerUnavailable(f"The task ledger {self.path} cannot be used ({exc})") from None
        return self

    def _let_go_of_a_replaced_file(self) -> None:
        """Closes the anchor of a file that was deleted or replaced, before the path is opened again.
        Its -wal and -shm belong to the old file: left beside a new one, SQLite would replay them into it."""
        if self._anchor is None:
            return
        self._drop_anchor()
        leftovers = [p.name for p in (Path(f"{self.path}-wal"), Path(f"{self.path}-shm")) if p.exists()]
        if leftovers:
            raise LedgerUnavailable(
                f"The task ledger {self.path} was deleted or replaced while in use, but {' and '.join(leftovers)} "
                "of the old file stayed beside it; stop ComfyUI and delete or restore them together with it")

    def _initialise(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, stat.S_IRUSR | stat.S_IWUSR))
        conn = self._open(any_thread=True)  # only ever closed, from whichever thread lets it go
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            _add_missing_columns(conn)
        except BaseException:
            conn.close()
            raise
        self._anchor, self._anchor_file = weakref.finalize(self, conn.close), self._file()

    def close(self) -> None:
        """Lets the WAL go now rather than when the ledger is collected (the next operation opens it again)."""
        with self._ready_lock:
            self._drop_anchor()

    def _drop_anchor(self) -> None:
        if self._anchor is not None:
            self._anchor()  # the finalizer closes the connection (once)
            self._anchor = None

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        self.ensure_ready()
        try:
            conn = self._open()
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"The task ledger {self.path} cannot be opened ({exc})") from None
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue up instead of failing on upgrade)."""
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _entry(row: sqlite3.Row | None) -> LedgerEntry | None:
        return None if row is None else LedgerEntry(**{name: row[name] for name in _COLUMNS})

    def _lock_for(self, fingerprint: str) -> threading.Lock:
        key = (str(self.path.resolve()), fingerprint)
        with _locks_guard:
            return _locks.setdefault(key, threading.Lock())

    # -- reading ---------------------------------------------------------------------------
    def get(self, fingerprint: str) -> LedgerEntry | None:
        with self._conn() as conn:
            return self._entry(conn.execute("SELECT * FROM submissions WHERE fingerprint = ?",
                                            (fingerprint,)).fetchone())

    def entries(self, limit: int = 50) -> list[LedgerEntry]:
        """Newest first."""
        with self._conn() as conn:
            rows = conn.execute("SELECT * FROM submissions ORDER BY updated_at DESC LIMIT ?", (limit,)).fetchall()
        return [e for e in map(self._entry, rows) if e is not None]

    def find_video(self, video_id: str, *, base_url: str | None = None) -> LedgerEntry | None:
        """The submission that produced ``video_id`` (newest first), e.g. to check an extend's source."""
        return self._find_by("video_id", video_id, base_url)

    def find_task(self, task_id: str, *, base_url: str | None = None) -> LedgerEntry | None:
        """The submission of ``task_id`` (e.g. to know which endpoint made it)."""
        return self._find_by("task_id", task_id, base_url)

    def _find_by(self, column: str, value: str, base_url: str | None) -> LedgerEntry | None:
        if not value:
            return None
        query, args = f"SELECT * FROM submissions WHERE {column} = ?", [value]
        if base_url is not None:
            query, args = query + " AND base_url = ?", args + [base_url]
        with self._conn() as conn:
            return self._entry(conn.execute(query + " ORDER BY updated_at DESC LIMIT 1", args).fetchone())

    def total_units(self) -> tuple[float, int]:
        """(sum of final_unit_deduction, number of tasks that reported one) over the whole ledger."""
        with self._conn() as conn:
            row = conn.execute("SELECT COALESCE(SUM(CAST(final_unit_deduction AS REAL)), 0), COUNT(*) "
                               "FROM submissions WHERE final_unit_deduction != ''").fetchone()
        return float(row[0]), int(row[1])

    def latest_deduction(self, endpoint: str, match: Mapping[str, str]) -> LedgerEntry | None:
        """The newest succeeded task of ``endpoint`` whose columns equal ``match`` (sound compared as
        on/off, a missing sound being off) and that reported a final_unit_deduction: what a cost
        estimate is based on."""
        query = ["SELECT * FROM submissions WHERE endpoint = ? AND status = ? AND final_unit_deduction != ''"]
        args: list[Any] = [endpoint, STATUS_SUCCEED]
        for column, value in match.items():
            if column not in ("model_name", "mode", "duration", "sound"):
                raise KeyError(f"cannot match the ledger on {column!r}")
            query.append("AND (CASE WHEN sound = 'on' THEN 'on' ELSE 'off' END) = ?" if column == "sound"
                         else f"AND {column} = ?")
            args.append(value)
        with self._conn() as conn:
            return self._entry(conn.execute(" ".join(query) + " ORDER BY updated_at DESC LIMIT 1", args).fetchone())

    def units_since(self, since: float) -> tuple[float, int]:
        """(units deducted, tasks) for the submissions created at or after ``since`` (Unix seconds)."""
        with self._conn() as conn:
            row = conn.execute("SELECT COALESCE(SUM(CAST(final_unit_deduction AS REAL)), 0), COUNT(*) "
                               "FROM submissions WHERE final_unit_deduction != '' AND created_at >= ?",
                               (since,)).fetchone()
        return float(row[0]), int(row[1])

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def claim(self, fingerprint: str, *, external_task_id: str, endpoint: str, base_url: str,
              seed: Any = None, summary: Mapping[str, Any] | None = None,
              should_cancel: CancelCheck | None = None) -> Iterator[tuple[LedgerEntry, bool]]:
        """The row of this submission, held for the create phase: ``(entry, new)``.

        A new row is inserted with status ``creating`` before anything is sent. While the block runs,
        other threads of this process wait for it, and another live process finds the row owned and
        waits until it has a task_id (or its lease runs out) instead of creating the task too.
        """
        with self._lock_for(fingerprint):
            entry, new = self._take(fingerprint, external_task_id, endpoint, base_url, seed, summary or {},
                                    should_cancel)
            try:
                yield entry, new
            finally:
                try:
                    with self._write() as conn:
                        conn.execute("UPDATE submissions SET owner = '' WHERE fingerprint = ? AND owner = ?",
                                     (fingerprint, self._me()))
                except LedgerUnavailable:
                    log.warning("Could not release the ledger row %s", fingerprint[:12])

    @staticmethod
    def _me() -> str:
        return f"{_HOST}|{os.getpid()}|{_PROCESS_TOKEN}"

    def _take(self, fingerprint: str, external_task_id: str, endpoint: str, base_url: str, seed: Any,
              summary: Mapping[str, Any], should_cancel: CancelCheck | None) -> tuple[LedgerEntry, bool]:
        announced = False
        while True:
            now = time.time()
            with self._write() as conn:
                row = self._entry(conn.execute("SELECT * FROM submissions WHERE fingerprint = ?",
                                               (fingerprint,)).fetchone())
                if row is None:
                    conn.execute(
                        "INSERT INTO submissions (fingerprint, endpoint, base_url, seed, model_name, mode, duration,"
                        " prompt, external_task_id, status, owner, claimed_at, created_at, updated_at, sound)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (fingerprint, endpoint, base_url, "" if seed is None else str(seed),
                         str(summary.get("model_name") or ""), str(summary.get("mode") or ""),
                         str(summary.get("duration") or ""), str(summary.get("prompt") or "")[:200],
                         external_task_id, STATUS_CREATING, self._me(), now, now, now,
                         str(summary.get("sound") or "")))
                    fresh = conn.execute("SELECT * FROM submissions WHERE fingerprint = ?", (fingerprint,)).fetchone()
                    return self._entry(fresh), True  # type: ignore[return-value]
                busy = row.status == STATUS_CREATING and not row.task_id and _owner_alive(row.owner, row.claimed_at, now)
                if not busy:
                    conn.execute("UPDATE submissions SET owner = ?, claimed_at = ? WHERE fingerprint = ?",
                                 (self._me(), now, fingerprint))
                    return row, False
            if not announced:
                log.info("Another process is creating the same Kling task (%s); waiting for it", row.external_task_id)
                announced = True
            sleep_unless_cancelled(WAIT_SLICE_S, should_cancel)

    def update(self, fingerprint: str, **changes: Any) -> None:
        """Set columns of one row (``updated_at`` too)."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise KeyError(f"unknown ledger columns: {sorted(unknown)}")
        changes["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._write() as conn:
            conn.execute(f"UPDATE submissions SET {assignments} WHERE fingerprint = ?", (*changes.values(), fingerprint))

    def restart(self, fingerprint: str, external_task_id: str, attempt: int | None = None) -> LedgerEntry:
        """A new attempt for a submission whose task failed or whose create was refused."""
        changes: dict[str, Any] = {} if attempt is None else {"attempt": attempt}
        self.update(fingerprint, external_task_id=external_task_id, task_id=None, status=STATUS_CREATING,
                    video_id="", video_path="", final_unit_deduction="", finished_at=None, **changes)
        entry = self.get(fingerprint)
        assert entry is not None
        return entry

    def record_created(self, fingerprint: str, task: Task) -> None:
        with self._write() as conn:
            conn.execute("UPDATE submissions SET task_id = ?, status = ?, external_task_id = CASE WHEN ? != ''"
                         " THEN ? ELSE external_task_id END, last_error = '', updated_at = ? WHERE fingerprint = ?",
                         (task.task_id, task.status or "submitted", task.external_task_id, task.external_task_id,
                          time.time(), fingerprint))

    def record_task(self, task: Task, fingerprint: str | None = None) -> None:
        """Kling's view of a task (status, video id, units), by fingerprint or by task_id."""
        changes: dict[str, Any] = {"status": task.status}
        if task.video is not None and task.video.id:
            changes["video_id"] = task.video.id
        if task.final_unit_deduction:
            changes["final_unit_deduction"] = task.final_unit_deduction
        if task.status == STATUS_FAILED:
            changes["last_error"] = f"task failed: {task.status_msg or 'no reason given'}"
            changes["finished_at"] = time.time()
        self._update_where(fingerprint, task.task_id, changes)

    def record_error(self, error: BaseException, *, fingerprint: str | None = None, task_id: str | None = None,
                     status: str | None = None) -> None:
        changes: dict[str, Any] = {"last_error": str(error)[:500] or type(error).__name__}
        if status:
            changes["status"] = status
        try:
            self._update_where(fingerprint, task_id, changes)
        except LedgerUnavailable as exc:  # never hide the real error behind a ledger problem
            log.warning("%s", exc)

    def record_video(self, path: str | os.PathLike[str], *, fingerprint: str | None = None,
                     task_id: str | None = None) -> None:
        self._update_where(fingerprint, task_id, {"video_path": str(path), "status": STATUS_SUCCEED,
                                                  "last_error": "", "finished_at": time.time()})

    def _update_where(self, fingerprint: str | None, task_id: str | None, changes: dict[str, Any]) -> None:
        if fingerprint:
            self.update(fingerprint, **changes)
        elif task_id:
            changes["updated_at"] = time.time()
            assignments = ", ".join(f"{name} = ?" for name in changes)
            with self._write() as conn:
                conn.execute(f"UPDATE submissions SET {assignments} WHERE task_id = ?", (*changes.values(), task_id))


__all__ = ["TaskLedger", "LedgerEntry", "LedgerUnavailable", "request_fingerprint", "external_task_id_for",
           "default_cli_ledger_path",
           "STATUS_CREATING", "STATUS_REFUSED", "LEDGER_FILENAME"]
