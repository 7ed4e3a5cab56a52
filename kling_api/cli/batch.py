"""``python -m kling_api batch MANIFEST``: many image-to-video jobs from one JSONL or CSV file.

Every row is checked (its fields, its images, the model's rules) before anything is sent, and one bad
row stops the whole batch with its line number and field. Then rows run at most ``concurrency`` at once
through :meth:`~kling_api.generation.life.Generation.run`, so each one resumes through the ledger and its derived
external_task_id: a rerun, on this machine or another, never pays for a row twice, and Ctrl-C leaves
every created task resumable. 1303 (all of the account's task slots busy) is the client's backoff.

Progress goes to stderr: a tqdm bar on a terminal, one plain line per change otherwise. Like cli.py,
:func:`command` prints on purpose; the rest only logs.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TextIO

from PIL import Image

from ..media.images import encode_image
from ..rules.capabilities import capability_table
from ..remote.client import DEFAULT_TIMEOUT_S, KlingClient
from ..errors import KlingCancelled, KlingError, KlingValidationError
from ..generation.life import Generation, JobResult
from .common import add_spend_options, command_generation, tier_fields
from ..remote.ledger import TaskLedger
from ..rules.request import SHOT_SEPARATOR, SHOT_TEXT_RULE, ImageToVideoRequest
from ..rules.storyboard import parse_shots
from ..remote.tasks import StatusUpdate, Task
from ..rules.validation import validate
from ..rules.widget_plan import PENDING_IMAGE

log = logging.getLogger(__name__)

#: The manifest's fields (the image2video command's options) and what each takes.
FIELDS = {
    "image": "start frame: a .png/.jpg path (relative to the manifest) or an http(s) URL (required)",
    "image_tail": "end frame, as image (where the model/mode/duration allow it)",
    "prompt": "text", "negative_prompt": "text",
    "model": "a model of the capability table", "mode": "std, pro or 4k (legacy models; 4k: kling-v3)",
    "resolution": "720p, 1080p or 4k (a legacy model: std, pro or 4k)", "duration": "seconds, e.g. 5 or 10",
    "cfg_scale": "0-1, kling-v1.x only", "sound": "on or off",
    "shots": f"a storyboard: {SHOT_TEXT_RULE}, the shots separated by '{SHOT_SEPARATOR}' (2:a boat|3:the harbour), "
             "or a JSON list of {\"duration\": seconds, \"prompt\": text} (kling-v3, kling-3.0, kling-3.0-turbo; "
             "the seconds add up to duration; no prompt)",
    "seed": "the same row and seed resume the earlier task; another seed makes a new one (default 0)",
    "external_task_id": "your own id, used as given", "callback_url": "an https URL",
    "fit": "pad or crop an image Kling would refuse", "timeout": "seconds of processing to wait",
    "out": "where the mp4 goes (relative to --out-dir); default row-NNNN.mp4",
}
#: Other spellings of a field (columns are also matched case-insensitively, '-' as '_').
ALIASES = {"model_name": "model", "end_image": "image_tail", "tail_image": "image_tail"}
#: Request fields that the manifest names differently.
_FIELD_OF_REQUEST = {"model_name": "model"}
MAX_PROBLEMS_SHOWN = 50
DEFAULT_BATCH_CONCURRENCY = 2


# -- the manifest ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class ManifestError(KlingError, ValueError):
    """One or more rows are not acceptable; nothing was sent."""

    def __init__(self, manifest: Path, problems: list[ManifestProblem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        super().__init__(f"{manifest}: {len(problems)} problem(s), nothing was sent:\n{shown}"
                         + (f"\n  ... and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class BatchRow:
    """One checked row: the request (its images as stand-ins until the row runs), where its images and
    video are."""

    row: int
    line: int
    request: ImageToVideoRequest
    image: str
    image_tail: str | None
    fit: str | None
    seed: str
    timeout: float
    out: Path

    def encoded(self) -> ImageToVideoRequest:
        """The request with its images read and encoded (done again when the row runs, not kept)."""
        return self.request.with_changes(image=image_reference(self.image, "image", self.fit),
                                         image_tail=image_reference(self.image_tail, "image_tail", self.fit))


def image_reference(path: str | None, field: str, fit: str | None) -> str | None:
    """An image file as Kling takes it (bare base64, fitted when ``fit`` says so); a URL passes as is."""
    if path is None:
        return None
    if path.startswith(("http://", "https://")):
        return encode_image(path, field=field).data  # passed through, after the URL check
    with Image.open(path) as img:
        img.load()
        return encode_image(img, field=field, fit=fit).data


def read_manifest(path: Path) -> Iterator[tuple[int, dict[str, Any] | ManifestProblem]]:
    """(line number, raw row) of a JSONL or CSV file; a line that cannot be read is a ManifestProblem."""
    text = path.read_text(encoding="utf-8-sig")
    as_jsonl = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or (
        path.suffix.lower() != ".csv" and text.lstrip().startswith("{"))
    if as_jsonl:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield number, ManifestProblem(number, "(row)", f"not valid JSON ({exc.msg})")
                continue
            yield number, value if isinstance(value, dict) else ManifestProblem(
                number, "(row)", "a row must be a JSON object of fields")
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for raw in reader:
        if None in raw:
            yield reader.line_num, ManifestProblem(reader.line_num, "(row)", "more cells than the header has columns")
            continue
        yield reader.line_num, {k: v for k, v in raw.items() if k is not None and v not in (None, "")}


def default_out_dir(manifest: str | Path) -> Path:
    """``<manifest stem>-videos`` beside the manifest."""
    manifest = Path(manifest)
    return manifest.resolve().parent / f"{manifest.stem}-videos"


def load_manifest(path: str | Path, *, out_dir: str | Path | None = None,
                  default_timeout: float = DEFAULT_TIMEOUT_S) -> list[BatchRow]:
    """Every row checked (images read and encoded once); raises ManifestError listing every bad row."""
    manifest = Path(path)
    folder = manifest.resolve().parent
    out_root = Path(out_dir) if out_dir is not None else default_out_dir(manifest)
    rows: list[BatchRow] = []
    problems: list[ManifestProblem] = []
    taken: dict[tuple[str, Any], int] = {}  # an output path or a typed external_task_id -> its line
    for index, (number, raw) in enumerate(read_manifest(manifest), 1):
        if isinstance(raw, ManifestProblem):
            problems.append(raw)
            continue
        try:
            row = _check_row(index, number, raw, folder, out_root, default_timeout)
        except _RowRefused as found:
            problems.append(found.problem)
            continue
        for name, value in (("out", row.out), ("external_task_id", row.request.external_task_id)):
            if value and (name, value) in taken:
                problems.append(ManifestProblem(number, name, f"{value} is also the {name} of line "
                                                              f"{taken[name, value]}; each row needs its own"))
            taken.setdefault((name, value), number)
        rows.append(row)
    if not rows and not problems:
        problems.append(ManifestProblem(0, "(file)", "the manifest has no rows"))
    if problems:
        raise ManifestError(manifest, problems)
    return rows


class _RowRefused(Exception):
    """Carries the first problem of a row out of its checks."""

    def __init__(self, problem: ManifestProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _check_row(index: int, line: int, raw: Mapping[str, Any], folder: Path, out_root: Path,
               default_timeout: float) -> BatchRow:
    def refuse(name: str, message: str) -> _RowRefused:
        return _RowRefused(ManifestProblem(line, name, message))

    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key).strip().lower().replace("-", "_"), str(key).strip().lower().replace("-", "_"))
        if name not in FIELDS:
            raise refuse(str(key), f"unknown field; the fields are {', '.join(FIELDS)}")
        if value is None:
            continue
        if isinstance(value, dict) or (isinstance(value, list) and name != "shots"):
            raise refuse(name, f"{value!r} is not a single value")
        values[name] = value

    def text(name: str, default: str | None = None) -> str | None:
        value = values.get(name, default)
        if isinstance(value, bool):
            raise refuse(name, f"{value!r} is not accepted; a text is")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return None if value is None else str(value).strip()

    def number(name: str, default: float | None) -> float | None:
        value = values.get(name, default)
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            raise refuse(name, f"{value!r} is not a number") from None

    table = capability_table()
    model = text("model", table.default_model)
    if model not in table.model_names:
        raise refuse("model", f"{model!r} is not accepted; allowed: {', '.join(table.model_names)}")
    fit = text("fit")
    if fit not in (None, "pad", "crop"):
        raise refuse("fit", f"{fit!r} is not accepted; allowed: pad, crop")
    timeout = number("timeout", default_timeout)
    if timeout is None or not timeout > 0:
        raise refuse("timeout", f"{timeout!r} is not accepted; allowed: a number of seconds above 0")
    sound = values.get("sound")
    sound = ("on" if sound else "off") if isinstance(sound, bool) else text("sound")
    image = text("image")
    if not image:
        raise refuse("image", "missing; every row needs a start image")
    images = {"image": _resolve(image, folder), "image_tail": _resolve(text("image_tail"), folder)}
    try:
        shots = parse_shots(values.get("shots"), "shots")
    except KlingValidationError as exc:
        raise refuse(exc.field, str(exc)) from None
    try:
        tier = tier_fields(model, text("mode"), text("resolution"), resolution_field="resolution", mode_field="mode")
    except KlingValidationError as exc:
        raise refuse("resolution", str(exc)) from None
    request = ImageToVideoRequest(
        model_name=model, prompt=text("prompt", "") or "", negative_prompt=text("negative_prompt", "") or "",
        **tier, duration=text("duration", "5") or "", cfg_scale=number("cfg_scale", None),
        sound=sound, external_task_id=text("external_task_id") or None, callback_url=text("callback_url") or None,
        shots=shots)
    encoded = {}
    for name, where in images.items():
        try:
            encoded[name] = image_reference(where, name, fit)
        except KlingValidationError as exc:
            raise refuse(name, str(exc)) from None
        except OSError as exc:
            raise refuse(name, f"{where} cannot be read as an image ({exc.strerror or exc})") from None
    try:
        validate(request.with_changes(**encoded))
    except KlingValidationError as exc:
        raise refuse(_FIELD_OF_REQUEST.get(exc.field, exc.field), str(exc)) from None
    out = text("out") or f"row-{index:04d}.mp4"
    request = request.with_changes(image=PENDING_IMAGE, image_tail=PENDING_IMAGE if images["image_tail"] else None)
    return BatchRow(row=index, line=line, request=request, image=images["image"] or "",
                    image_tail=images["image_tail"], fit=fit, seed=text("seed", "0") or "0", timeout=timeout,
                    out=out_root / out)


def _resolve(value: str | None, folder: Path) -> str | None:
    if not value or value.startswith(("http://", "https://")):
        return value or None
    return str(folder / Path(value).expanduser())


# -- progress --------------------------------------------------------------------------------------

@dataclass
class RowOutcome:
    """One line of the results JSONL."""

    row: int
    line: int
    status: str  # succeed, reused, failed, interrupted, not started
    task_id: str = ""
    video: str = ""
    units: str = ""
    error: str = ""


class BatchProgress:
    """Counts rows (done, running, failed) and shows every change: one plain line each, or a tqdm bar."""

    def __init__(self, total: int, stream: TextIO, *, bar: bool | None = None) -> None:
        self.total, self.stream = total, stream
        self.done = self.running = self.failed = 0
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._statuses: dict[int, str] = {}
        self._bar = _tqdm_bar(total, stream) if (stream.isatty() if bar is None else bar) else None

    def _counts(self) -> str:
        elapsed = time.monotonic() - self.started_at
        finished = self.done + self.failed
        remaining = f"~{elapsed / finished * (self.total - finished):.0f}s" if finished else "?"
        return (f"done {self.done}/{self.total}, running {self.running}, failed {self.failed}, "
                f"elapsed {elapsed:.0f}s, remaining {remaining}")

    def _show(self, row: BatchRow, what: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"running {self.running}, failed {self.failed}", refresh=True)
            if what.startswith(("failed", "interrupted")):
                self._bar.write(f"row {row.row} (line {row.line}): {what}", file=self.stream)
            return
        self.stream.write(f"row {row.row} (line {row.line}): {what} | {self._counts()}\n")
        self.stream.flush()

    def started(self, row: BatchRow) -> None:
        with self._lock:
            self.running += 1
            self._show(row, "started")

    def created(self, row: BatchRow, task: Task) -> None:
        with self._lock:
            self._show(row, f"task {task.task_id} created")

    def status(self, row: BatchRow, update: StatusUpdate) -> None:
        with self._lock:
            if self._statuses.get(row.row) != update.status:
                self._statuses[row.row] = update.status
                self._show(row, f"task {update.task_id} {update.status}")

    def finished(self, row: BatchRow, outcome: RowOutcome) -> None:
        with self._lock:
            self.running -= 1
            if outcome.status in ("succeed", "reused"):
                self.done += 1
                what = f"{outcome.status}: {outcome.video}"
            else:
                self.failed += outcome.status == "failed"
                what = f"{outcome.status}: {outcome.error}"
            self._show(row, what)
            if self._bar is not None and outcome.status in ("succeed", "reused", "failed"):
                self._bar.update(1)

    def tick(self) -> None:
        """Keep the bar's elapsed/remaining moving between changes."""
        with self._lock:
            if self._bar is not None:
                self._bar.refresh()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()


def _tqdm_bar(total: int, stream: TextIO) -> Any:
    """A tqdm bar (ComfyUI's venv has tqdm); None without tqdm, which means plain lines."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="video", desc="Kling batch", file=stream, dynamic_ncols=True, mininterval=0.2)


# -- running ---------------------------------------------------------------------------------------

@dataclass
class BatchSummary:
    outcomes: list[RowOutcome] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes)

    @property
    def succeeded(self) -> int:
        return sum(o.status in ("succeed", "reused") for o in self.outcomes)


class _ResultsFile:
    """The results JSONL, a line per finished row as it finishes (sorted by row at the end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def add(self, outcome: RowOutcome) -> None:
        with self._lock:
            self._file.write(json.dumps(asdict(outcome)) + "\n")
            self._file.flush()

    def finish(self, outcomes: list[RowOutcome]) -> None:
        with self._lock:
            self._file.close()
            part = self.path.with_name(self.path.name + ".part")
            part.write_text("".join(json.dumps(asdict(o)) + "\n" for o in sorted(outcomes, key=lambda o: o.row)),
                            encoding="utf-8")
            part.replace(self.path)


def run_batch(generation: Generation, rows: list[BatchRow], *, concurrency: int, results: Path,
              progress: BatchProgress) -> BatchSummary:
    """Every row through the generation life, ``concurrency`` at once. Ctrl-C stops waiting (created tasks are in the
    ledger and keep their external_task_id, so a rerun resumes them) and marks unfinished rows."""
    cancel = threading.Event()
    out = _ResultsFile(results)
    summary = BatchSummary()

    def run_row(row: BatchRow) -> RowOutcome:
        progress.started(row)
        seen: dict[str, str] = {}

        def on_created(task: Task) -> None:
            seen["task_id"] = task.task_id
            progress.created(row, task)

        def on_status(update: StatusUpdate) -> None:
            seen["task_id"] = update.task_id
            progress.status(row, update)

        try:
            result: JobResult = generation.run(row.encoded(), row.out, seed=row.seed, timeout=row.timeout,
                                               should_cancel=cancel.is_set, on_status=on_status,
                                               on_created=on_created)
            outcome = RowOutcome(row.row, row.line, "reused" if result.reused else "succeed", result.task.task_id,
                                 str(result.video_path), result.task.final_unit_deduction)
        except KlingCancelled as exc:
            outcome = RowOutcome(row.row, row.line, "interrupted", exc.task_id or seen.get("task_id", ""),
                                 error="interrupted; run the same command again to resume")
        except (KlingError, OSError) as exc:
            outcome = RowOutcome(row.row, row.line, "failed", getattr(exc, "task_id", None) or seen.get("task_id", ""),
                                 error=str(exc))
        except Exception as exc:  # one broken row must not lose the others' results
            log.exception("row %d (line %d) failed unexpectedly", row.row, row.line)
            outcome = RowOutcome(row.row, row.line, "failed", seen.get("task_id", ""), error=repr(exc))
        progress.finished(row, outcome)
        out.add(outcome)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kling-batch")
    futures: dict[Future[RowOutcome], BatchRow] = {pool.submit(run_row, row): row for row in rows}
    try:
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            progress.tick()
    except KeyboardInterrupt:
        summary.interrupted = True
        cancel.set()
        for future in futures:
            future.cancel()
    finally:
        pool.shutdown(wait=True)
        progress.close()
    for future, row in futures.items():
        if future.cancelled():
            outcome = RowOutcome(row.row, row.line, "not started", error="interrupted before it started")
            out.add(outcome)
        else:
            outcome = future.result()
        summary.outcomes.append(outcome)
    out.finish(summary.outcomes)
    return summary


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """The ``batch`` subcommand's arguments (the CLI wires it to :func:`command`)."""
    parser = sub.add_parser("batch", help="many videos from a JSONL or CSV manifest (one row per video)",
                            description="Fields of a row: " + "; ".join(f"{k}: {v}" for k, v in FIELDS.items()))
    parser.add_argument("manifest", help="a .jsonl or .csv file, one row per video")
    parser.add_argument("--out-dir", default=None, help="where the videos go (default: MANIFEST-STEM-videos "
                                                        "beside the manifest)")
    parser.add_argument("--results", default=None, help="results JSONL (default: OUT_DIR/results.jsonl)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_BATCH_CONCURRENCY,
                        help="rows at once; Kling's account limit (1303) is waited out with backoff")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds of processing to wait per row (a row's own timeout wins)")
    add_spend_options(parser)
    return parser


def command(args: argparse.Namespace, client: Callable[[], KlingClient], ledger: TaskLedger | None,
            stream: TextIO | None = None) -> int:
    """Check every row, then run them; 0 when all made their video, 1 when some failed, 130 on Ctrl-C."""
    if args.concurrency < 1:
        raise KlingValidationError("--concurrency", args.concurrency, "1 or more")
    kling = client()  # credentials first: no point reading images for a batch that cannot be sent
    rows = load_manifest(args.manifest, out_dir=args.out_dir, default_timeout=args.timeout)
    stream = stream or sys.stderr
    # The whole manifest's estimate before anything is created; the spend guard counts every row.
    generation = command_generation(args, kling, ledger, lambda line: stream.write(line + "\n"))
    generation.prepare([row.request for row in rows])
    out_dir = default_out_dir(args.manifest) if args.out_dir is None else Path(args.out_dir)
    results = Path(args.results) if args.results else out_dir / "results.jsonl"
    summary = run_batch(generation, rows, concurrency=args.concurrency, results=results,
                        progress=BatchProgress(len(rows), stream))
    # The command's result on stdout (progress and notes go to ``stream``), for scripts to read.
    sys.stdout.write(json.dumps({"rows": len(rows), "succeeded": summary.succeeded, "failed": summary.failed,
                                 "interrupted": summary.interrupted, "results": str(results)}) + "\n")
    if summary.interrupted:
        stream.write("interrupted: created tasks keep running at Kling; run the same command again to resume "
                     "them (nothing is paid twice)\n")
        return 130
    return 1 if summary.failed else 0


__all__ = ["FIELDS", "BatchRow", "BatchProgress", "BatchSummary", "ManifestError", "ManifestProblem", "RowOutcome",
           "add_parser", "command", "image_reference", "load_manifest", "run_batch"]
