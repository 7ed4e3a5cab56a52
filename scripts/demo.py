"""The main job: example workflow (a) in a real headless ComfyUI.

Against the local Kling emulator, unless KLING_API_KEY (or KLING_ACCESS_KEY + KLING_SECRET_KEY)
is set: then against Kling itself, which costs credits. Prints where the mp4 and frames went.

    python -m scripts.demo      (from the repository root, in the host's venv; bash scripts/demo.sh does both)
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from kling_devtools import REPO_ROOT as ROOT
from kling_devtools.host import ComfyHost, EmulatorProcess
from kling_devtools.sample_images import write_sample_images
from kling_devtools.workflow_convert import ui_to_api

WORKFLOW = ROOT / "example_workflows" / "kling_image_to_video.json"
DEMO_DIR = ROOT / "artifacts" / "demo"


def real_credentials() -> bool:
    return bool(os.environ.get("KLING_API_KEY") or
                (os.environ.get("KLING_ACCESS_KEY") and os.environ.get("KLING_SECRET_KEY")))


def run(env: dict[str, str], inherit: bool) -> int:
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    with ComfyHost(env=env, inherit_kling_env=inherit, base_dir=DEMO_DIR, keep_base=True) as host:
        host.require_nodes("KlingImageToVideo")
        start, _ = write_sample_images(DEMO_DIR / "samples")
        host.upload_image(start)
        ui = json.loads(WORKFLOW.read_text())
        prompt = ui_to_api(ui, host.object_info())
        print(f"ComfyUI {host.url}: running {WORKFLOW.name}", file=sys.stderr)
        started = time.monotonic()
        with host.ws_messages() as ws:
            prompt_id = host.queue(prompt, extra_data={"extra_pnginfo": {"workflow": ui}})
            entry = host.wait(prompt_id, timeout=3600, check=False)
            texts = ws.progress_texts()
        if entry["status"]["status_str"] != "success":
            errors = [m[1].get("exception_message", "") for m in entry["status"]["messages"]
                      if m[0] == "execution_error"]
            print("the workflow failed: " + ("; ".join(errors) or json.dumps(entry["status"])), file=sys.stderr)
            return 1
        by_type = {str(n["id"]): n["type"] for n in ui["nodes"]}
        print(f"done in {time.monotonic() - started:.1f} s; last status: {texts[-1] if texts else '-'}")
        for node_id, kind in by_type.items():
            files = host.output_files(entry, node_id)
            if not files:
                continue
            if kind == "PreviewImage":  # previews live in temp/, which ComfyUI empties on exit: keep a copy
                kept = DEMO_DIR / "frames"
                kept.mkdir(exist_ok=True)
                for f in files:
                    shutil.copy2(f, kept / f.name)
                print(f"frames (IMAGE output, {len(files)} PNGs): {kept}")
            else:
                print(f"{kind}: " + ", ".join(str(f) for f in files))
    return 0


def main() -> int:
    if real_credentials():
        print("Kling credentials found in the environment: this run uses the real Kling API and costs credits",
              file=sys.stderr)
        return run({}, inherit=True)
    with EmulatorProcess(api_key="demo-key") as emulator:
        print(f"no Kling credentials set: using the local emulator at {emulator.url}", file=sys.stderr)
        return run({"KLING_API_BASE": emulator.url, "KLING_API_KEY": "demo-key"}, inherit=False)


if __name__ == "__main__":
    sys.exit(main())
