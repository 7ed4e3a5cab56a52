"""Command line: ``python -m kling_api image2video --image start.png --out out.mp4`` and friends.

This module prints to the terminal on purpose; the library itself only logs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from . import batch
from ..remote.auth import load_credentials
from ..rules.capabilities import capability_table, markdown_table
from ..rules.widget_plan import PENDING_IMAGE
from ..remote.account import describe_balance
from .progress import ProgressOutput
from ..remote.client import DEFAULT_TIMEOUT_S, KlingClient
from ..costs.guard import spent_today
from ..errors import KlingCancelled, KlingError
from ..generation.life import Generation
from .common import add_spend_options, command_generation, tier_fields
from ..remote.ledger import TaskLedger, default_cli_ledger_path
from ..rules.endpoints import ENDPOINTS, IMAGE2VIDEO
from ..rules.request import ImageToVideoRequest, RequestBody, Shot, VideoExtendRequest
from ..remote.tasks import StatusUpdate

DEFAULT_CREDENTIALS_FILE = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "kling" / "credentials.json"


_progress_output: ProgressOutput | None = None


def _progress() -> ProgressOutput:
    """The progress writer for the current stderr (terminal-aware, see cli_progress)."""
    global _progress_output
    if _progress_output is None or _progress_output.stream is not sys.stderr:
        _progress_output = ProgressOutput(sys.stderr)
    return _progress_output


def _progress_line(update: StatusUpdate) -> None:
    _progress().status(update)


def _client(args: argparse.Namespace) -> KlingClient:
    return KlingClient(load_credentials(args.credentials), args.base_url)


def _ledger(args: argparse.Namespace) -> TaskLedger | None:
    return None if args.no_ledger else TaskLedger(args.ledger)


_load_image = batch.image_reference


def cmd_batch(args: argparse.Namespace) -> int:
    return batch.command(args, lambda: _client(args), _ledger(args))


def cmd_image2video(args: argparse.Namespace) -> int:
    client = _client(args)  # credentials first: no point encoding images for a request that cannot be sent
    tier = tier_fields(args.model, args.mode, args.resolution)
    stand_in = ImageToVideoRequest(model_name=args.model, image=PENDING_IMAGE,
                                   image_tail=PENDING_IMAGE if args.image_tail else None, prompt=args.prompt,
                                   negative_prompt=args.negative_prompt, duration=args.duration,
                                   cfg_scale=args.cfg_scale, sound=args.sound, external_task_id=args.external_task_id,
                                   callback_url=args.callback_url, shots=_shots(args.shot), **tier)
    generation = command_generation(args, client, _ledger(args), _stderr_line)
    generation.prepare([stand_in])  # refused before any image is read or anything is sent
    request = stand_in.with_changes(image=_load_image(args.image, "image", args.fit),
                                    image_tail=_load_image(args.image_tail, "image_tail", args.fit))
    return _run_and_report(client, request, args, generation)


def _shots(given: Sequence[str] | None) -> tuple[Shot, ...]:
    """The storyboard of repeated ``--shot SECONDS:TEXT`` options, in order (validation checks the rules)."""
    return tuple(Shot.from_text(text, f"--shot[{i}]") for i, text in enumerate(given or ()))


def cmd_extend(args: argparse.Namespace) -> int:
    request = VideoExtendRequest(video_id=args.video_id, prompt=args.prompt, negative_prompt=args.negative_prompt,
                                 cfg_scale=args.cfg_scale, external_task_id=args.external_task_id,
                                 callback_url=args.callback_url)
    return _run_and_report(_client(args), request, args)


def _stderr_line(text: str) -> None:
    sys.stderr.write(text + "\n")


def _run_and_report(client: KlingClient, request: RequestBody, args: argparse.Namespace,
                    prepared: Generation | None = None) -> int:
    """One task through the generation life: a refused request says only why (nothing is estimated or
    sent), then the estimate and the spend guard, then create or resume, wait, download. ``prepared``:
    a generation whose :meth:`~Generation.prepare` already ran for this request."""
    generation = prepared or command_generation(args, client, _ledger(args), _stderr_line)
    if prepared is None:
        generation.prepare([request])
    result = generation.run(request, args.out, seed=args.seed, on_status=_progress_line,
                            on_created=lambda t: sys.stderr.write(f"task {t.task_id} created\n"))
    if result.reused:
        _progress().message(f"task {result.task.task_id}: video reused from an earlier run, nothing sent")
    _progress().end_line()
    print(json.dumps({"task_id": result.task.task_id, "video_id": result.video_id,
                      "video": str(result.video_path)}))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    generation = command_generation(args, _client(args), _ledger(args), _stderr_line)
    result = generation.resume(args.task_id, args.out, endpoint=args.endpoint, on_status=_progress_line)
    _progress().end_line()
    print(json.dumps({"task_id": result.task.task_id, "video_id": result.video_id, "video": str(result.video_path)}))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    client = _client(args)
    task = client.find_task(args.task_id) if args.external else client.get_task(args.task_id)
    if task is None:
        print(f"no task with external_task_id {args.task_id}", file=sys.stderr)
        return 1
    print(json.dumps(task.raw, indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for task in _client(args).list_tasks(args.page, args.page_size):
        print(f"{task.task_id}\t{task.status}\t{task.external_task_id}\t{task.video.url if task.video else ''}")
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    """Remaining resource-pack units (GET /account/costs; Kling may lag up to 12 hours) as JSON."""
    costs = _client(args).account_costs(resource_pack_name=args.resource_pack_name or None)
    print(json.dumps(costs.to_json(), indent=2))
    sys.stderr.write(f"# {describe_balance(costs)}; spent today (ledger): {spent_today(TaskLedger(args.ledger)):g}\n")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """The ledger, newest first: what was submitted, what became of it, where the video is."""
    ledger = TaskLedger(args.ledger)
    if not ledger.path.exists():
        print("[]" if args.json else f"no ledger yet at {ledger.path}")
        return 0
    entries = ledger.entries(args.limit)
    units, counted = ledger.total_units()
    if args.json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return 0
    print(f"# ledger {ledger.path}", file=sys.stderr)
    print("updated\tstatus\ttask_id\texternal_task_id\tmodel\tseed\tunits\tvideo\tlast_error")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.updated_at))
        combo = "/".join(x for x in (e.model_name, e.mode, e.duration) if x)
        print("\t".join([when, e.status, e.task_id or "-", e.external_task_id, combo, e.seed or "-",
                         e.final_unit_deduction or "-", e.video_path or "-", e.last_error[:100] or "-"]))
    print(f"# {units:g} units deducted in total (final_unit_deduction of {counted} tasks in the ledger)",
          file=sys.stderr)
    return 0


def cmd_capabilities(args: argparse.Namespace) -> int:
    print(markdown_table() if args.markdown else json.dumps(capability_table().as_json(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    table = capability_table()
    parser = argparse.ArgumentParser(prog="python -m kling_api", description="Kling image-to-video from the terminal")
    parser.add_argument("--base-url", default=None, help="API host or preset (global, china); default KLING_API_BASE")
    parser.add_argument("--credentials", default=str(DEFAULT_CREDENTIALS_FILE),
                        help="JSON file with api_key or access_key+secret_key, read after the environment")
    parser.add_argument("--ledger", default=str(default_cli_ledger_path()),
                        help="task ledger (SQLite) that makes a repeated command resume instead of paying again; "
                             "default $KLING_LEDGER or $XDG_CACHE_HOME/kling/ledger.sqlite3")
    parser.add_argument("--no-ledger", action="store_true", help="do not record or resume submissions")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True)

    i2v = sub.add_parser("image2video", help="create a task, wait for it, download the mp4")
    i2v.add_argument("--image", required=True, help="start frame: a .png/.jpg file or an http(s) URL")
    i2v.add_argument("--image-tail", help="end frame (only where the model/mode/duration allow it)")
    i2v.add_argument("--prompt", default="")
    i2v.add_argument("--negative-prompt", default="")
    i2v.add_argument("--model", default=table.default_model, choices=table.model_names,
                     help="; ".join(f"{name}: {table.get(name).credential_label()}" for name in table.model_names))
    i2v.add_argument("--mode", default=None, choices=["std", "pro", "4k"],
                     help="legacy models: std (720p), pro (1080p) or 4k (kling-v3 only); default std (kept for "
                          "existing scripts)")
    i2v.add_argument("--resolution", default=None, choices=["720p", "1080p", "4k"],
                     help="every model: new-API models send it; on legacy models it means mode std/pro/4k")
    i2v.add_argument("--duration", default="5", choices=table.all_durations)
    i2v.add_argument("--cfg-scale", type=float, default=None, help="0-1, kling-v1.x only")
    i2v.add_argument("--sound", choices=["on", "off"], default=None,
                     help="native sound where the model has it (the new API's audio native/off)")
    i2v.add_argument("--shot", action="append", metavar="SECONDS:TEXT",
                     help="a shot of a storyboard (repeat for each, in order; 1-6 shots whose seconds add up to "
                          "--duration; leave --prompt empty); models: kling-v3, kling-3.0, kling-3.0-turbo")
    i2v.add_argument("--external-task-id", default=None)
    i2v.add_argument("--callback-url", default=None)
    i2v.add_argument("--fit", choices=["pad", "crop"], default=None,
                     help="pad or crop an image whose size or aspect ratio Kling would refuse")
    i2v.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds of processing to wait")
    i2v.add_argument("--seed", default="0", help="the same inputs and seed resume the earlier task (or reuse its "
                                                 "video) instead of paying again; another seed makes a new task")
    i2v.add_argument("--out", required=True, help="where to write the mp4")
    add_spend_options(i2v)
    i2v.set_defaults(func=cmd_image2video)

    wait = sub.add_parser("wait", help="wait for an existing task and download its video (no new charge)")
    wait.add_argument("task_id")
    wait.add_argument("--out", required=True)
    wait.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    wait.add_argument("--endpoint", default=IMAGE2VIDEO.create_path,
                      choices=[row.create_path for row in ENDPOINTS] + [row.name for row in ENDPOINTS],
                      help="the endpoint that made the task (its name or create path)")
    wait.set_defaults(func=cmd_wait)

    ext = sub.add_parser("extend", help="continue a video (its video_id) by 4-5 s: kling-v1/-v1-5/-v1-6 videos")
    ext.add_argument("video_id")
    ext.add_argument("--prompt", default="")
    ext.add_argument("--negative-prompt", default="")
    ext.add_argument("--cfg-scale", type=float, default=None)
    ext.add_argument("--external-task-id", default=None)
    ext.add_argument("--callback-url", default=None)
    ext.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds of processing to wait")
    ext.add_argument("--seed", default="0", help="as for image2video")
    ext.add_argument("--out", required=True, help="where to write the whole, extended mp4")
    add_spend_options(ext)
    ext.set_defaults(func=cmd_extend)

    get = sub.add_parser("get", help="print one task as JSON")
    get.add_argument("task_id")
    get.add_argument("--external", action="store_true", help="the id is an external_task_id")
    get.set_defaults(func=cmd_get)

    lst = sub.add_parser("list", help="list recent tasks")
    lst.add_argument("--page", type=int, default=1)
    lst.add_argument("--page-size", type=int, default=30)
    lst.set_defaults(func=cmd_list)

    tasks = sub.add_parser("tasks", help="list the task ledger (submissions, task ids, status, videos)")
    tasks.add_argument("--limit", type=int, default=50)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=cmd_tasks)

    acct = sub.add_parser("account", help="remaining resource-pack units (GET /account/costs, free)")
    acct.add_argument("--resource-pack-name", default="")
    acct.set_defaults(func=cmd_account)

    batch.add_parser(sub).set_defaults(func=cmd_batch)

    caps = sub.add_parser("capabilities", help="print the capability table")
    caps.add_argument("--markdown", action="store_true", help="as the README's markdown table")
    caps.set_defaults(func=cmd_capabilities)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KlingCancelled:
        _progress().message("cancelled")
        return 130
    except KeyboardInterrupt:
        _progress().message("interrupted (the task, if created, keeps running at Kling: resume it with `wait`)")
        return 130
    except KlingError as exc:
        _progress().message(f"error: {exc}")
        return 2 if isinstance(exc, ValueError) else 1
    except OSError as exc:
        _progress().message(f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}")
        return 1
