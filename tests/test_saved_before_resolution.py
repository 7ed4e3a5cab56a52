"""Workflows saved before the `resolution` widget existed load and run unchanged (issue #23 item 8).

A saved workflow keeps widget values by position; `resolution` and then `storyboard` were appended last to
Kling Image to Video and Kling Text to Video, so a workflow from before holds two values fewer. In the real frontend (both
canvases, pinned and newest) such a workflow loads with every earlier value where it was, the new widget at
its default and no warning; queued from the page's own graph, it runs against the emulator and sends the
same request as before (a legacy `mode`, no resolution)."""
from __future__ import annotations

import json
import random

import pytest
from frontend_checks import assert_no_page_errors, problems_text

from kling_devtools.browser import kling_frontend as kf
from kling_devtools.host_workflows import WORKFLOWS
from kling_devtools.sample_images import write_sample_images

from kling_api.rules.endpoints import IMAGE2VIDEO, TEXT2VIDEO

pytestmark = [pytest.mark.browser, pytest.mark.host]

#: (example workflow, node type, its create path, the widget appended last): each saved without it.
CASES = [("kling_image_to_video", "KlingImageToVideo", IMAGE2VIDEO.create_path),
         ("kling_text_to_video", "KlingTextToVideo", TEXT2VIDEO.create_path)]


def saved_before_resolution(name: str, node_type: str) -> tuple[dict, list, dict]:
    """(the workflow as saved before the widget, the saved values, its Kling node) from today's example."""
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())
    node = next(n for n in workflow["nodes"] if n["type"] == node_type)
    resolution, storyboard = node["widgets_values"][-2:]
    assert resolution in ("720p", "1080p") and storyboard == "", "the example ends with resolution, storyboard"
    node["widgets_values"] = node["widgets_values"][:-2]  # both appended since
    return workflow, list(node["widgets_values"]), node


@pytest.mark.parametrize("name, node_type, create_path", CASES, ids=[c[0] for c in CASES])
def test_a_workflow_saved_before_the_resolution_widget_loads_and_runs_unchanged(
        comfy_page, ui_host, emulator_process, tmp_path, name, node_type, create_path):
    page = comfy_page
    for picture in write_sample_images(tmp_path):  # the example's LoadImage picture
        ui_host.upload_image(picture)
    workflow, saved, node = saved_before_resolution(name, node_type)
    # a seed of its own: the same inputs again would come from ComfyUI's cache (or the ledger) unsent
    seed_at = saved.index("fixed") - 1  # the seed, before its control_after_generate
    saved[seed_at] = node["widgets_values"][seed_at] = random.randrange(1 << 40)
    kf.install(page.page)
    kf.clear_graph(page)
    kf.load_workflow(page, workflow)
    kf.install(page.page)
    kf.frame_node(page, [node["id"]], zoom=0.8)
    kf.settle(page, 300)
    st = kf.state(page, node["id"])
    assert st["widgets"]["resolution"]["value"] == "720p"  # the new widgets at their defaults
    assert st["widgets"]["storyboard"]["value"] == ""
    assert problems_text(st) == "", problems_text(st)  # no warning: a legacy model, as saved
    again = next(n for n in kf.serialize_graph(page)["nodes"] if n["id"] == node["id"])
    assert again["widgets_values"][:len(saved)] == saved  # every earlier value where it was

    emulator_process.reset()
    prompt = kf.graph_to_prompt(page)["output"]
    entry = ui_host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success"
    (sent,) = [r for r in emulator_process.requests() if r["method"] == "POST" and r["path"] == create_path]
    body = sent["json"]
    model_at = 2  # prompt, negative_prompt, model_name, mode, duration, ...
    assert body["model_name"] == saved[model_at] and body["mode"] == saved[model_at + 1], body
    assert "resolution" not in body and body["duration"] == str(saved[model_at + 2])
    assert_no_page_errors(page)
