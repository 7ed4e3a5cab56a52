"""A workflow run from the page (the user's Run button) against the emulator: the node shows the pack's
progress text while Kling works, then the video preview."""
from __future__ import annotations

import re
import time

import pytest

from frontend_checks import NODE, assert_no_page_errors, new_prompt_id, shot
from kling_devtools.browser import kling_frontend as kf
from kling_devtools.sample_images import write_sample_images


PROGRESS_TEXT_JS = """(id) => {
    const has = (t) => typeof t === 'string' && t.includes('Kling:');
    const el = document.querySelector(`[data-node-id="${id}"]`);  // Nodes 2.0: the node's own DOM
    if (el && has(el.innerText)) return el.innerText.split('\\n').find(has);
    const n = app.graph.getNodeById(id);
    for (const w of n.widgets || []) {
        if (has(w.value)) return w.value;
        if (has(w.element?.value) || has(w.element?.innerText)) return w.element.value || w.element.innerText;
    }
    return null;
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_workflow_queued_from_the_page_shows_progress_text_and_the_video_preview(kling_page, ui_host, tmp_path,
                                                                                  request):
    emulator = request.getfixturevalue("emulator_process")
    emulator.set_config({"max_height": 240, "processing_seconds": 6})
    try:
        start, _ = write_sample_images(tmp_path)
        uploaded = ui_host.upload_image(start, name="kling_ui_start.png")
        load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
        node = kf.add_node(kling_page, NODE, (100, 100))
        save = kf.add_node(kling_page, "SaveVideo", (560, 100))
        kf.set_value(kling_page, load_image, "image", uploaded["name"], script=True)  # core node: not under test
        kf.set_value(kling_page, node, "prompt", "a slow pan over a gradient")
        # a seed of its own: the same prompt again would be served from ComfyUI's cache
        kf.set_value(kling_page, node, "seed", int(time.time() * 1000) % 1_000_000_007)
        kf.set_value(kling_page, node, "control_after_generate", "fixed")
        kf.connect(kling_page, load_image, 0, node, "image")
        video_slot = kling_page.evaluate(f"() => app.graph.getNodeById({node}).outputs.findIndex(o => o.type === 'VIDEO')")
        kf.connect(kling_page, node, video_slot, save, "video")
        kf.frame_node(kling_page, [load_image, node, save], zoom=0.75)
        before = set(ui_host.history())

        kling_page.page.get_by_role("button", name=re.compile(r"^\s*Run\s*$")).first.click()  # the user's Run
        # while Kling (the emulator) works, the node shows the pack's progress text
        progress = kling_page.page.wait_for_function(PROGRESS_TEXT_JS, arg=node, timeout=60_000).json_value()
        assert progress.startswith("Kling:"), progress
        shot(kling_page, "frontend_progress_text")
        prompt_id = new_prompt_id(ui_host, before, timeout=120)
        assert prompt_id, "the Run button queued nothing"
        entry = ui_host.wait(prompt_id, timeout=120)
        videos = entry["outputs"][str(node)]["images"]
        assert videos and videos[0]["filename"].endswith(".mp4")

        # the node's preview: a <video> element playing /view?filename=<the mp4>
        try:
            _wait_for_video(kling_page, node, videos[0]["filename"])
        except Exception:
            shot(kling_page, "frontend_video_preview_missing")
            raise
        kling_page.page.wait_for_timeout(800)
        shot(kling_page, "frontend_video_preview")
        assert_no_page_errors(kling_page)
    finally:
        emulator.reset()


def _wait_for_video(page, node: int, name: str) -> None:
    page.page.wait_for_function(
        """([id, name]) => {
            const n = app.graph.getNodeById(id);
            const v = n?.videoContainer?.querySelector('video') ||
              Array.from(document.querySelectorAll('video')).find(v => (v.src || '').includes(name));
            return !!v && (v.src || '').includes(encodeURIComponent(name).replace(/%2F/g, '/')) && v.readyState >= 1;
        }""", arg=[node, name], timeout=30_000)
