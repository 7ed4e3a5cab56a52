"""A model Kling retires: removed from the choices in one place (the table), named with its successor
everywhere a saved workflow still uses it.

A second ComfyUI host boots with KLING_CAPABILITIES_FILE pointing at a copy of the capability table in
which kling-v1-5 is retired (successor kling-v1-6). Through that host and a real Chromium:
/object_info no longer offers it, a saved workflow that names it loads unchanged and says which model
to pick (one click switches), and queueing it is refused at queue time naming the successor, with
nothing sent to Kling (the emulator).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_devtools import host as ch
from kling_devtools.browser import kling_frontend as kf
from kling_devtools.sample_images import write_sample_images
from kling_devtools.workflow_convert import ui_to_api

from kling_api.rules.capabilities import TABLE_FILE_ENV, load_raw

REPO = Path(__file__).resolve().parents[1]
RETIRED, SUCCESSOR, WHEN = "kling-v1-5", "kling-v1-6", "2026-09-15"
MESSAGE = f"{RETIRED} was retired by Kling ({WHEN}); pick {SUCCESSOR} instead"
IMAGE_NODE, TEXT_NODE = "KlingImageToVideo", "KlingTextToVideo"


def saved_workflow(name: str, model: str = RETIRED) -> dict:
    """An example workflow (UI format) as a user saved it while ``model`` was current."""
    workflow = json.loads((REPO / "example_workflows" / f"{name}.json").read_text())
    for node in workflow["nodes"]:
        if node["type"] in (IMAGE_NODE, TEXT_NODE):
            values = node["widgets_values"]
            values[values.index(load_raw()["default_model"])] = model
    return workflow


def kling_node(workflow: dict, kind: str = IMAGE_NODE) -> int:
    return next(n["id"] for n in workflow["nodes"] if n["type"] == kind)


@pytest.fixture(scope="module")
def retired_table(tmp_path_factory) -> Path:
    raw = load_raw()
    assert RETIRED in raw["models"] and not raw["models"][RETIRED].get("retired"), "pick another model to retire"
    raw["models"][RETIRED].update(retired=WHEN, successor=SUCCESSOR)
    path = tmp_path_factory.mktemp("table") / "capabilities.json"
    path.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return path


def start_retired_host(install, emulator, table: Path, tmp_path_factory, front_end_root=None) -> ch.ComfyHost:
    """A ComfyUI whose pack reads the table with kling-v1-5 retired (the emulator as Kling)."""
    host = ch.ComfyHost(env={"KLING_API_BASE": emulator.url, "KLING_API_KEY": emulator.api_key,
                             TABLE_FILE_ENV: str(table)}, install=install, front_end_root=front_end_root)
    problem = None
    try:
        host.start()
        host.require_nodes(IMAGE_NODE, TEXT_NODE)
        start, end = write_sample_images(tmp_path_factory.mktemp("inputs"))
        host.upload_image(start)
        host.upload_image(end)
    except ch.HostError as e:
        problem = str(e)
    if problem:
        host.stop()
        pytest.fail(problem, pytrace=False)
    return host


@pytest.fixture(scope="module")
def retired_host(comfy_install, emulator_process, retired_table, tmp_path_factory):
    host = start_retired_host(comfy_install, emulator_process, retired_table, tmp_path_factory)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def retired_ui_host(comfy_install, emulator_process, retired_table, tmp_path_factory, ui_setup):
    """The retired-model host serving the browser setup's frontend."""
    host = start_retired_host(comfy_install, emulator_process, retired_table, tmp_path_factory,
                              ui_setup.front_end_root())
    yield host
    host.stop()


@pytest.mark.host
def test_the_retired_model_leaves_the_choices_but_stays_in_the_served_table(retired_host):
    info = retired_host.object_info()
    for node in (IMAGE_NODE, TEXT_NODE):
        options = info[node]["input"]["required"]["model_name"][1]["options"]
        assert RETIRED not in options and SUCCESSOR in options, (node, options)
    # the frontend needs the retired row to say what to pick instead
    served = retired_host.get_json("/kling/capabilities")
    assert served["models"][RETIRED]["retired"] == WHEN and served["models"][RETIRED]["successor"] == SUCCESSOR


@pytest.mark.host
def test_queueing_a_workflow_saved_with_the_retired_model_is_refused_naming_the_successor(
        retired_host, emulator_process):
    emulator_process.reset()
    workflow = saved_workflow("kling_image_to_video")
    prompt = ui_to_api(workflow, retired_host.object_info())
    node = str(kling_node(workflow))
    assert prompt[node]["inputs"]["model_name"] == RETIRED
    with pytest.raises(ch.PromptRejected) as info:
        retired_host.queue(prompt)
    errors = info.value.node_errors
    text = json.dumps(errors)
    assert MESSAGE in text, text
    assert list(errors) == [node], text  # only the Kling node is refused
    # ComfyUI's own "Value not in list" check is skipped: validate_inputs takes model_name
    assert "value_not_in_list" not in text and "Value not in list" not in text, text
    assert [r for r in emulator_process.requests() if r["method"] == "POST" and r["path"].startswith("/v1/")] == []


@pytest.mark.browser
def test_a_workflow_saved_with_the_retired_model_loads_names_the_successor_and_one_click_switches(
        open_ui, retired_ui_host):
    page = open_ui(retired_ui_host)
    kf.install(page.page)
    kf.clear_graph(page)
    for name, kind in (("kling_image_to_video", IMAGE_NODE), ("kling_text_to_video", TEXT_NODE)):
        workflow = saved_workflow(name)
        saved_values = next(n for n in workflow["nodes"] if n["type"] == kind)["widgets_values"]
        kf.load_workflow(page, workflow)
        kf.install(page.page)
        node = kling_node(workflow, kind)
        kf.frame_node(page, [node], zoom=0.9)
        kf.settle(page)
        st = kf.state(page, node)
        # loaded as saved: the value is kept, nothing rewritten
        assert st["widgets"]["model_name"]["value"] == RETIRED
        assert RETIRED not in st["widgets"]["model_name"]["values"]
        again = next(n for n in kf.serialize_graph(page)["nodes"] if n["type"] == kind)
        assert again["widgets_values"] == saved_values
        # ... and says which model to pick instead, with one button that does it
        assert RETIRED in kf.problems_text(st) and SUCCESSOR in kf.problems_text(st), st["panel"]
        assert SUCCESSOR in kf.fix_label(st), st["panel"]
        page.screenshot(f"frontend_retired_model_{kind}_{page.setup.id}")

        kf.click_fix(page, node)  # ONE real click
        st = kf.state(page, node)
        assert st["widgets"]["model_name"]["value"] == SUCCESSOR
        assert kf.problems_text(st) == "" and kf.fix_label(st) == ""
        if st["dom"] is not None:  # Nodes 2.0: the node's own combo shows the switched model
            assert SUCCESSOR in page.evaluate(f"() => document.querySelector('[data-node-id=\"{node}\"]').innerText")
        queued = kf.graph_to_prompt(page)["output"][str(node)]["inputs"]
        assert queued["model_name"] == SUCCESSOR
        page.screenshot(f"frontend_retired_model_{kind}_fixed_{page.setup.id}")
    assert page.unexpected_errors() == []
