"""Renders example_workflows/<name>.jpg: each workflow as the real ComfyUI frontend draws it.

    python -m scripts.make_workflow_thumbnails     (from the repository root, in the host's venv)
"""
from __future__ import annotations

import json
import time

from kling_devtools import REPO_ROOT as ROOT
from kling_devtools.browser import BrowserSession
from kling_devtools.host import ComfyHost
from kling_devtools.sample_images import write_sample_images


def main() -> None:
    with ComfyHost(env={"KLING_API_BASE": "http://127.0.0.1:9", "KLING_API_KEY": "thumbnail"}) as host, \
            BrowserSession(viewport=(1280, 720)) as browser:
        for picture in write_sample_images(host.base_dir / "samples"):
            host.upload_image(picture)
        page = browser.open_comfy(host.url)
        # Wide workflows fit at under 50 % zoom, where the canvas would drop all text: keep it.
        page.evaluate("async () => { const settings = window.app.extensionManager.setting; "
                      "await settings.set('LiteGraph.Canvas.MinFontSizeForLOD', 1); "
                      "await settings.set('Comfy.Graph.CanvasInfo', false); }")
        # Only the graph: the menus, banners and minimap drawn over the canvas are hidden.
        page.page.add_style_tag(content="body * { visibility: hidden !important; } "
                                        "canvas#graph-canvas, .dom-widget, .dom-widget * "
                                        "{ visibility: visible !important; }")
        for path in sorted((ROOT / "example_workflows").glob("*.json")):
            workflow = json.loads(path.read_text())
            page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'thumb'); }", workflow)
            page.evaluate("async () => { await window.app.extensionManager.command.execute('Comfy.Canvas.FitView'); }")
            time.sleep(1.0)
            target = path.with_suffix(".jpg")
            page.page.locator("canvas#graph-canvas").screenshot(path=str(target), type="jpeg", quality=80)
            print(target)
        page.close()


if __name__ == "__main__":
    main()
