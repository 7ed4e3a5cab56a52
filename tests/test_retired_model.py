"""A model Kling retires: removed from the choices in one place (the table), named with its successor
everywhere a saved workflow still uses it.

The real table retires kling-v1 (Kling answered it live as discontinued, 2026-09-20): through the session
host and a real Chromium, a workflow saved with kling-v1 (a motion brush at std/5, which its successor
kling-v1-5 takes only at pro/5; a text to video, where the successor is kling-v1-6) loads unchanged, says
which model to pick and what the fix changes, and is refused at queue time with nothing sent.

A second ComfyUI host boots with KLING_CAPABILITIES_FILE pointing at a copy of the capability table in
which kling-v1-5 is retired too (successor kling-v1-6). Through that host and a real Chromium:
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


#: kling-v1 as the packaged table retires it (see the README's "Retirements and their evidence").
V1, V1_WHEN = "kling-v1", "2026-09-20"
V1_MESSAGE = f"{V1} was retired by Kling ({V1_WHEN}); pick kling-v1-5 instead"
#: Kling Image to Video's and Kling Text to Video's widget positions of model_name and mode
#: (scripts/make_example_workflows.py).
MODEL_AT, MODE_AT = 2, 3


def saved_with_kling_v1(name: str, mode: str, kind: str = IMAGE_NODE) -> dict:
    """An example workflow (UI format) as a user saved it while kling-v1 was offered, in ``mode``."""
    workflow = json.loads((REPO / "example_workflows" / f"{name}.json").read_text())
    values = next(n for n in workflow["nodes"] if n["type"] == kind)["widgets_values"]
    values[MODEL_AT], values[MODE_AT] = V1, mode
    return workflow


def test_the_real_table_retires_kling_v1_and_no_other_model():
    """The copy below must retire a model the real table still offers; the real one retires kling-v1 only
    (kling-v1-6 and kling-v2-1 rest on one client's test: not retired)."""
    raw = load_raw()
    retired = {name: row.get("retired") for name, row in raw["models"].items() if row.get("retired")}
    assert retired == {V1: V1_WHEN}
    assert raw["models"][V1]["successor"] == "kling-v1-5" and raw["models"][V1]["successors"] == {
        "text2video": "kling-v1-6"}


V1_GONE = "The model 'kling-v1' has been discontinued and is no longer available."
V1_TEXT_BODY = {"model_name": V1, "prompt": "a lighthouse at dusk", "mode": "std", "duration": "5",
                "aspect_ratio": "16:9"}


def v1_answer(discontinued_as: str):
    """Send kling-v1 past the table (an old script, a table of one's own) to the default emulator, which
    answers it as Kling did live; the error the client raises."""
    from kling_api.emulator import Emulator
    from kling_api.remote.auth import Credentials, Secret
    from kling_api.remote.client import KlingClient
    from kling_api.remote.transport import RetryPolicy

    with Emulator(api_keys=["k"], submitted_seconds=0.05, processing_seconds=0.1,
                  discontinued_as=discontinued_as) as emu:
        assert emu.switches.snapshot().discontinued_models == V1  # the default, no switch set
        client = KlingClient(Credentials(api_key=Secret("k"), source="test"), emu.url, retry=RetryPolicy(attempts=1))
        with pytest.raises(Exception) as info:
            task = client.create_task("text2video", V1_TEXT_BODY)
            client.wait(task.task_id, endpoint="text2video", timeout=20)
    return info.value


def assert_names_what_to_pick(error) -> None:
    from kling_api.errors import KlingModelDiscontinued
    from kling_api.rules.capabilities import endpoint_models

    assert isinstance(error, KlingModelDiscontinued), repr(error)
    assert error.model == V1 and error.kling_message == V1_GONE
    assert error.hint == "Pick a model Kling still runs: " + ", ".join(endpoint_models("text2video"))


def test_kling_v1_sent_anyway_fails_its_task_with_klings_words_and_what_to_pick():
    assert_names_what_to_pick(v1_answer("task"))


def test_kling_v1_sent_anyway_is_refused_at_the_create_with_klings_words_and_what_to_pick():
    error = v1_answer("create")
    assert V1_GONE in str(error)  # Kling's own words, and what the pack still offers
    assert_names_what_to_pick(error)


@pytest.mark.host
def test_kling_v1_is_offered_by_no_node_of_the_real_table(sample_host):
    info = sample_host.object_info()
    for node in (IMAGE_NODE, TEXT_NODE, "KlingMultiImageToVideo"):
        assert V1 not in info[node]["input"]["required"]["model_name"][1]["options"], node
    served = sample_host.get_json("/kling/capabilities")
    assert served["models"][V1]["retired"] == V1_WHEN and served["models"][V1]["successor"] == "kling-v1-5"


@pytest.mark.host
@pytest.mark.parametrize("name, mode, kind, words", [
    ("kling_motion_brush", "std", IMAGE_NODE, (V1_MESSAGE, "its motion brush needs pro/5")),
    ("kling_motion_brush", "pro", IMAGE_NODE, (V1_MESSAGE,)),
    ("kling_text_to_video", "std", TEXT_NODE, (f"{V1} was retired by Kling ({V1_WHEN}); pick kling-v1-6 instead",)),
])
def test_queueing_a_workflow_saved_with_kling_v1_is_refused_naming_its_successor(
        sample_host, emulator_process, name, mode, kind, words):
    emulator_process.reset()
    workflow = saved_with_kling_v1(name, mode, kind)
    prompt = ui_to_api(workflow, sample_host.object_info())
    node = str(kling_node(workflow, kind))
    assert (prompt[node]["inputs"]["model_name"], prompt[node]["inputs"]["mode"]) == (V1, mode)
    with pytest.raises(ch.PromptRejected) as info:
        sample_host.queue(prompt)
    text = json.dumps(info.value.node_errors)
    assert all(w in text for w in words), text
    assert list(info.value.node_errors) == [node], text
    assert "Value not in list" not in text, text
    assert [r for r in emulator_process.requests() if r["method"] == "POST"] == []


@pytest.mark.browser
def test_a_kling_v1_motion_brush_saved_at_std_loads_and_one_click_switches_to_kling_v1_5_pro(open_ui, ui_host):
    """The successor takes the motion brush at pro/5 only: the fix says so and changes model and mode."""
    page = open_ui(ui_host)
    kf.install(page.page)
    kf.clear_graph(page)
    workflow = saved_with_kling_v1("kling_motion_brush", "std")
    saved_values = next(n for n in workflow["nodes"] if n["type"] == IMAGE_NODE)["widgets_values"]
    kf.load_workflow(page, workflow)
    kf.install(page.page)
    node = kling_node(workflow)
    kf.frame_node(page, [node], zoom=0.9)
    kf.settle(page)
    st = kf.state(page, node)
    assert st["widgets"]["model_name"]["value"] == V1 and V1 not in st["widgets"]["model_name"]["values"]
    again = next(n for n in kf.serialize_graph(page)["nodes"] if n["type"] == IMAGE_NODE)
    assert again["widgets_values"] == saved_values  # loaded as saved
    assert V1_MESSAGE in kf.problems_text(st) and "motion brush needs pro/5" in kf.problems_text(st), st["panel"]
    assert kf.fix_label(st) == "Fix: use kling-v1-5, mode pro", st["panel"]
    page.screenshot(f"frontend_retired_kling_v1_motion_brush_{page.setup.id}")

    kf.click_fix(page, node)  # ONE real click
    st = kf.state(page, node)
    assert (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"]) == ("kling-v1-5", "pro")
    assert kf.problems_text(st) == "" and kf.fix_label(st) == ""
    queued = kf.graph_to_prompt(page)["output"][str(node)]["inputs"]
    assert (queued["model_name"], queued["mode"], queued["duration"]) == ("kling-v1-5", "pro", "5")
    assert page.unexpected_errors() == []


@pytest.fixture(scope="module")
def retired_table(tmp_path_factory) -> Path:
    raw = load_raw()
    assert RETIRED in raw["models"] and not raw["models"][RETIRED].get("retired"), "pick another model to retire"
    assert raw["models"][SUCCESSOR].get("retired") in (None, ""), "the copy's successor must be current"
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
