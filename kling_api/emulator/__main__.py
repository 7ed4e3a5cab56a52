"""``python -m kling_api.emulator --port 8765``: run the emulator until Ctrl-C.

Every :class:`EmulatorConfig` field can also come from ``KLING_EMULATOR_<FIELD>`` (flags win), and
credentials from ``KLING_EMULATOR_API_KEYS`` (comma-separated), ``KLING_EMULATOR_ACCESS_KEY`` and
``KLING_EMULATOR_SECRET_KEY``. Point the client at it with ``KLING_API_BASE=<printed URL>``.
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Sequence

from .faults import DISCONTINUED_AS, settings_from_env
from .server import Emulator


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kling_api.emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", action="append", default=[], help="accepted as-is (repeatable)")
    parser.add_argument("--access-key", help="JWTs with this iss are checked with --secret-key")
    parser.add_argument("--secret-key")
    parser.add_argument("--public-url", help="base of the video URLs, if clients reach it by another name")
    parser.add_argument("--submitted-seconds", type=float)
    parser.add_argument("--processing-seconds", type=float)
    parser.add_argument("--max-height", type=int, help="cap the videos' pixel height (smaller = faster)")
    parser.add_argument("--discontinued-model", action="append", default=[], metavar="MODEL",
                        help="answer this model (kling-v1, kling-2.5-turbo, ...) as discontinued (repeatable; the "
                             "list replaces the default, kling-v1, which Kling answers so live)")
    parser.add_argument("--discontinued-as", choices=DISCONTINUED_AS,
                        help="refuse the create (default) or fail the task")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if bool(args.access_key) != bool(args.secret_key):
        parser.error("--access-key and --secret-key go together")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = os.environ
    settings = settings_from_env(env)
    for name in ("submitted_seconds", "processing_seconds", "max_height", "discontinued_as"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.discontinued_model:
        settings["discontinued_models"] = ",".join(args.discontinued_model)
    api_keys = args.api_key or [k.strip() for k in env.get("KLING_EMULATOR_API_KEYS", "").split(",") if k.strip()]
    access_key = args.access_key or env.get("KLING_EMULATOR_ACCESS_KEY")
    secret_key = args.secret_key or env.get("KLING_EMULATOR_SECRET_KEY")
    access_keys = {access_key: secret_key} if access_key and secret_key else None
    emulator = Emulator(args.host, args.port, api_keys=api_keys, access_keys=access_keys,
                        public_url=args.public_url, **settings)
    emulator.start()
    print(f"Kling emulator listening on {emulator.url} (accepts {emulator.auth.describe()})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
