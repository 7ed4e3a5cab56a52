"""The widget plan (kling_api.rules.widget_plan, POST /kling/widget_plan): the one place the page learns the rules.

Library part: over every endpoint and every combination of model, mode, duration, sound, aspect ratio
and linked sockets, the plan warns exactly when kling_api.rules.validation refuses the same request (built
here by hand, with the same wording), its fix is accepted by validation, and the combos never offer
a value validation refuses. Host part: the route in a real ComfyUI, for every Kling node type, and the
queue-time refusal of the same values carries the plan's warning.
"""
from __future__ import annotations

import functools
import http.client
import itertools
import json
import statistics
import time
from urllib.parse import urlparse

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import load_ui, node_id_of
from kling_devtools.node_locale import LOCALE_FILE, locale_from_object_info
from kling_devtools.workflow_convert import ui_to_api

from kling_api.rules import capabilities
from kling_api.rules.capabilities import TABLE_FILE_ENV, capability_table, endpoint_aspect_ratios, endpoint_models, load_raw
from kling_api.costs.estimates import is_cost_line
from kling_api.errors import KlingValidationError
from kling_api.rules.request import CAMERA_TYPES, ImageToVideoRequest, MultiImageToVideoRequest, TextToVideoRequest
from kling_api.rules.tooltips import durations_text, where_allowed
from kling_api.rules.validation import validate, validate_multi_image_to_video, validate_text_to_video
from kling_api.rules.widget_plan import ENDPOINT_RULES, WidgetPlanError, model_notes, plan_request, widget_plan

TABLE = capability_table()
B64 = "aGVsbG8="
UNKNOWN_MODEL = "kling-v9"
ODD_RATIO = "4:3"
SOCKETS = ("image_tail", "camera_control", "motion_brush")


#: The node's two tier widgets: legacy models read ``mode``, new-standard models ``resolution``. A combination's
#: tier is one value for either; the other widget keeps its default.
MODES, RESOLUTIONS = ("std", "pro"), ("720p", "1080p")
TIERS = MODES + RESOLUTIONS


def tier_fields(model: str, tier: str) -> dict:
    """The request's mode/resolution for a combination's tier, as the node builds them from its widgets."""
    caps = TABLE.get(model)
    if caps is not None and caps.is_new_standard:
        return {"mode": None, "resolution": tier if tier in RESOLUTIONS else RESOLUTIONS[0]}
    return {"mode": tier if tier in MODES else MODES[0]}


def fix_tier(values: dict) -> str:
    caps = TABLE.get(values["model_name"])
    return values["resolution"] if caps is not None and caps.is_new_standard else values["mode"]


def request_of(endpoint: str, model: str, mode: str, duration: str, sound: str | None, ratio: str | None,
               linked: tuple[str, ...], camera_type: str = "simple"):
    """The request the node would send for these widget values (images and prompt stand in); ``mode`` is the
    combination's tier."""
    if endpoint == "text2video":
        return TextToVideoRequest(model_name=model, prompt="a boat", duration=duration,
                                  aspect_ratio=ratio, sound=sound, **tier_fields(model, mode))
    if endpoint == "multi-image2video":
        return MultiImageToVideoRequest(model_name=model, image_list=(B64,), prompt="a boat", mode=mode,
                                        duration=duration, aspect_ratio=ratio)
    camera = {"type": "simple", "config": {"zoom": 1.0}} if camera_type == "simple" else {"type": camera_type}
    return ImageToVideoRequest(model_name=model, image=B64, image_tail=B64 if "image_tail" in linked else None,
                               duration=duration, sound=sound, **tier_fields(model, mode),
                               camera_control=camera if "camera_control" in linked else None,
                               static_mask=B64 if "motion_brush" in linked else None)


VALIDATORS = {"image2video": validate, "text2video": validate_text_to_video,
              "multi-image2video": validate_multi_image_to_video}


def refusal(endpoint: str, *args, **kw) -> str | None:
    try:
        VALIDATORS[endpoint](request_of(endpoint, *args, **kw))
    except KlingValidationError as exc:
        return str(exc)
    return None


def combinations(endpoint: str):
    """(model, mode, duration, sound, ratio, linked) over the table, with values it refuses mixed in."""
    rules = ENDPOINT_RULES[endpoint]
    sounds = ("off", "on") if "sound" in rules.widgets else (None,)
    ratios = (endpoint_aspect_ratios(endpoint)[0], ODD_RATIO) if "aspect_ratio" in rules.widgets else (None,)
    links = [combo for size in range(len(rules.sockets) + 1) for combo in itertools.combinations(rules.sockets, size)]
    for model in TABLE.all_model_names + [UNKNOWN_MODEL]:
        tiers = TIERS if "resolution" in rules.widgets else MODES
        for mode, duration, sound, ratio, linked in itertools.product(tiers, TABLE.all_durations, sounds,
                                                                      ratios, links):
            if len(linked) > 1 and duration not in ("5", "7"):
                continue  # two links are refused whatever the duration: two durations say enough
            yield model, mode, duration, sound, ratio, linked


def values_of(model, mode, duration, sound, ratio, endpoint: str = "image2video") -> dict:
    """The node's widget values for a combination (``mode``: its tier, in whichever widget holds it)."""
    values = {"model_name": model, "mode": mode if mode in MODES else MODES[0], "duration": duration}
    if "resolution" in ENDPOINT_RULES[endpoint].widgets:
        values["resolution"] = mode if mode in RESOLUTIONS else RESOLUTIONS[0]
    if sound is not None:
        values["sound"] = sound
    if ratio is not None:
        values["aspect_ratio"] = ratio
    return values


@functools.cache
def accepted_anywhere(endpoint: str, linked: tuple[str, ...], sound: str | None) -> list[tuple]:
    """Every combination of the endpoint's models that validation accepts with these links."""
    ratio = endpoint_aspect_ratios(endpoint)[0]
    found = []
    for model in endpoint_models(endpoint):
        caps = TABLE.get(model)
        for mode in caps.modes or caps.resolutions or ("std",):
            for duration in caps.durations:
                for s in ((sound, "off") if sound == "on" else (sound,)):
                    if refusal(endpoint, model, mode, duration, s, ratio, linked) is None:
                        found.append((model, mode, duration, s))
    return found


# --------------------------------------------------------------------------------------------------
# the library


@pytest.mark.parametrize("endpoint", list(ENDPOINT_RULES))
def test_the_plan_warns_exactly_when_validation_refuses_and_its_fix_is_accepted(endpoint):
    checked = fixed = unfixable = 0
    for model, mode, duration, sound, ratio, linked in combinations(endpoint):
        plan = widget_plan(endpoint, values_of(model, mode, duration, sound, ratio, endpoint), list(linked))
        refused = refusal(endpoint, model, mode, duration, sound, ratio, linked)
        case = (endpoint, model, mode, duration, sound, ratio, linked, plan)
        assert plan["warning"] == refused, case  # same decision, same words as at queue time
        checked += 1
        if refused is None:
            assert plan["fix"] is None and plan["info"] == model_notes(model), case
            continue
        fix = plan["fix"]
        anywhere = accepted_anywhere(endpoint, linked, sound)
        if fix is None:
            assert anywhere == [] and plan["info"], case  # no model of the node fits these links
            unfixable += 1
            continue
        values = fix["values"]
        assert refusal(endpoint, values["model_name"], fix_tier(values), values["duration"], values.get("sound"),
                       values.get("aspect_ratio"), linked) is None, case
        assert fix["label"].startswith("Fix: use "), case
        fixed += 1
        # nearest: the model is kept when it fits anywhere (sound kept on when it can be)
        same_model = [c for c in anywhere if c[0] == model]
        assert (values["model_name"] == model) == bool(same_model), case
        if same_model and sound == "on" and any(c[3] == "on" for c in same_model):
            assert values["sound"] == "on", case
        caps = TABLE.get(model)
        if caps is not None and any(c[0] == model and c[1] == mode and c[3] == sound for c in anywhere):
            assert fix_tier(values) == mode or not (caps.has_mode_choice or caps.resolutions), case
    assert checked > 300 and fixed > 100, (checked, fixed, unfixable)


@pytest.mark.parametrize("endpoint", list(ENDPOINT_RULES))
def test_combo_choices_never_offer_a_value_validation_refuses(endpoint):
    rules = ENDPOINT_RULES[endpoint]
    ratio = endpoint_aspect_ratios(endpoint)[0] if "aspect_ratio" in rules.widgets else None
    sound = "off" if "sound" in rules.widgets else None
    for model in endpoint_models(endpoint):
        caps = TABLE.get(model)
        widgets = widget_plan(endpoint, values_of(model, "std", caps.durations[0], sound, ratio, endpoint))["widgets"]
        assert set(widgets) == set(rules.widgets)
        assert widgets["model_name"]["choices"] == endpoint_models(endpoint)
        modes = widgets["mode"]["choices"] if caps.has_mode_choice else \
            widgets["resolution"]["choices"] if caps.is_new_standard else ["std"]
        for mode, duration in itertools.product(modes, widgets["duration"]["choices"]):
            assert refusal(endpoint, model, mode, duration, sound, ratio, ()) is None, (model, mode, duration)
            for choice in widgets.get("sound", {}).get("choices", []):
                if choice == "on":  # offered where the model has sound at all; the fix finds the mode
                    assert caps.allowed_combos("sound"), model
            for other in widgets.get("aspect_ratio", {}).get("choices", []):
                assert refusal(endpoint, model, mode, duration, sound, other, ()) is None, (model, other)
        # what shows follows the model
        assert widgets["duration"]["choices"] == list(caps.durations)
        assert widgets["mode"]["visible"] == caps.has_mode_choice
        if "resolution" in widgets:
            assert widgets["resolution"]["visible"] == caps.is_new_standard
            if caps.is_new_standard:
                assert widgets["resolution"]["choices"] == list(caps.resolutions)
        if "cfg_scale" in widgets:
            assert widgets["cfg_scale"]["visible"] == caps.cfg_scale
        if "sound" in widgets:
            assert widgets["sound"]["visible"] == bool(caps.allowed_combos("sound"))
            assert widgets["sound"]["choices"] == (["off", "on"] if caps.allowed_combos("sound") else ["off"])
            on = widget_plan(endpoint, values_of(model, "std", caps.durations[0], "on", ratio, endpoint))["widgets"]
            # kept in sight while on, so the warning points at it (a model that always has sound has no switch)
            assert on["sound"]["visible"] != caps.sound_always, model


def test_the_seed_examples_read_as_at_queue_time():
    plan = widget_plan("image2video", {"model_name": "kling-v2-5-turbo", "mode": "std", "duration": "5",
                                       "sound": "off"}, ["image_tail"])
    assert plan["warning"] == "image_tail needs mode=pro and duration=10 on kling-v2-5-turbo; got std/5"
    assert plan["fix"] == {"label": "Fix: use mode pro, 10 s",
                           "values": {"model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "10",
                                      "sound": "off"}}
    plan = widget_plan("image2video", {"model_name": "kling-v2-5-turbo", "mode": "std", "duration": "5",
                                       "sound": "on"}, [])
    assert "sound is not supported on kling-v2-5-turbo" in plan["warning"]
    assert plan["fix"]["label"] == "Fix: use sound off"
    plan = widget_plan("image2video", {"model_name": "kling-v2-6", "mode": "std", "duration": "10", "sound": "on"})
    assert plan["fix"]["values"]["mode"] == "pro" and plan["fix"]["values"]["sound"] == "on"
    # the master models have no mode: the widget hides and its value is left as it is
    plan = widget_plan("image2video", {"model_name": "kling-v2-master", "mode": "pro", "duration": "5"})
    assert plan["warning"] is None and not plan["widgets"]["mode"]["visible"]


def test_a_widget_whose_value_comes_from_a_link_is_judged_when_the_node_runs():
    values = {"model_name": "kling-v2-5-turbo", "mode": "std", "duration": "7", "sound": "off"}
    assert widget_plan("image2video", values)["warning"]
    for name in ("model_name", "mode", "duration"):
        plan = widget_plan("image2video", values, [name])
        assert plan["warning"] is None and plan["fix"] is None, (name, plan)
        plan = widget_plan("image2video", {k: v for k, v in values.items() if k != name})
        assert plan["warning"] is None, (name, plan)
    assert widget_plan("text2video", {**values, "duration": "5"}, ["aspect_ratio"])["warning"] is None


def test_a_camera_preset_no_model_offers_has_no_fix_but_says_what_to_change():
    values = {"model_name": "kling-v1-5", "mode": "pro", "duration": "5", "camera_type": "down_back"}
    plan = widget_plan("image2video", values, ["camera_control"])
    assert plan["warning"] == refusal("image2video", "kling-v1-5", "pro", "5", None, None, ("camera_control",),
                                      camera_type="down_back")
    assert "down_back" in plan["warning"] and plan["fix"] is None
    assert plan["info"] == ["No model of this node accepts these links; disconnect camera_control or use camera "
                            "type simple."]
    plan = widget_plan("image2video", {**values, "camera_type": "simple"}, ["camera_control"])
    assert plan["warning"] is None


@pytest.mark.parametrize("camera_type", CAMERA_TYPES)
def test_a_linked_camera_move_of_each_type_warns_as_validation_and_fixes_to_a_model_that_offers_it(camera_type):
    offered = [m for m in TABLE.model_names if camera_type in TABLE.get(m).camera_types
               and TABLE.get(m).allowed_combos("camera_control")]
    for model, mode, duration in itertools.product(TABLE.all_model_names, ("std", "pro"), TABLE.all_durations):
        values = {"model_name": model, "mode": mode, "duration": duration, "sound": "off", "camera_type": camera_type}
        plan = widget_plan("image2video", values, ["camera_control"])
        refused = refusal("image2video", model, mode, duration, "off", None, ("camera_control",), camera_type)
        case = (model, mode, duration, camera_type, plan)
        assert plan["warning"] == refused, case
        if refused is None:
            continue
        assert (plan["fix"] is not None) == bool(offered), case
        if plan["fix"]:
            fixed = plan["fix"]["values"]
            assert fixed["model_name"] in offered, case
            assert refusal("image2video", fixed["model_name"], fixed["mode"], fixed["duration"], fixed["sound"], None,
                           ("camera_control",), camera_type) is None, case


@pytest.fixture
def retired_table(tmp_path, monkeypatch):
    """The table with kling-v1-5 retired (successor kling-v1-6), read instead of the packaged one."""
    raw = load_raw()
    raw["models"]["kling-v1-5"].update(retired="2026-09-15", successor="kling-v1-6")
    path = tmp_path / "capabilities.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    monkeypatch.setenv(TABLE_FILE_ENV, str(path))
    capabilities._read_table.cache_clear()
    capabilities.capability_table.cache_clear()
    yield
    monkeypatch.delenv(TABLE_FILE_ENV)
    capabilities._read_table.cache_clear()
    capabilities.capability_table.cache_clear()


def test_a_retired_model_names_its_successor_and_the_fix_switches_to_it(retired_table):
    plan = widget_plan("image2video", {"model_name": "kling-v1-5", "mode": "pro", "duration": "10", "sound": "off"},
                       ["image_tail"])
    assert plan["warning"] == "model_name: kling-v1-5 was retired by Kling (2026-09-15); pick kling-v1-6 instead"
    assert plan["fix"]["values"]["model_name"] == "kling-v1-6" and "kling-v1-6" in plan["fix"]["label"]
    assert plan["fix"]["values"]["mode"] == "pro" and plan["fix"]["values"]["duration"] == "10"
    assert "kling-v1-5" not in plan["widgets"]["model_name"]["choices"]


#: kling-v1 as the packaged table retires it (Kling's live answer of 2026-09-20, see the README's
#: "Retirements and their evidence").
V1_RETIRED = "model_name: kling-v1 was retired by Kling (2026-09-20)"


def test_a_saved_kling_v1_motion_brush_at_std_is_fixed_to_kling_v1_5_pro_and_the_fix_says_so():
    """kling-v1 took the motion brush at std/5 and pro/5; its successor kling-v1-5 only at pro/5: the
    warning names the successor and its mode, the one fix switches model and mode, and nothing else."""
    plan = widget_plan("image2video", {"model_name": "kling-v1", "mode": "std", "duration": "5", "sound": "off",
                                       "cfg_scale": 0.5}, ["motion_brush"])
    assert plan["warning"].startswith(V1_RETIRED + "; pick kling-v1-5 instead"), plan
    assert "motion brush needs pro/5" in plan["warning"], plan
    assert plan["fix"]["values"] == {"model_name": "kling-v1-5", "mode": "pro", "duration": "5", "sound": "off"}
    assert plan["fix"]["label"] == "Fix: use kling-v1-5, mode pro"
    assert "kling-v1" not in plan["widgets"]["model_name"]["choices"]
    assert plan["widgets"]["cfg_scale"]["visible"]  # kling-v1-5 takes cfg_scale, as kling-v1 did
    # at pro/5 the same workflow keeps its mode: only the model changes
    pro = widget_plan("image2video", {"model_name": "kling-v1", "mode": "pro", "duration": "5", "sound": "off"},
                      ["motion_brush"])
    assert pro["fix"]["values"]["model_name"] == "kling-v1-5" and pro["fix"]["label"] == "Fix: use kling-v1-5"
    assert widget_plan("image2video", {**pro["fix"]["values"]}, ["motion_brush"])["warning"] is None


def test_a_saved_kling_v1_text_to_video_is_fixed_to_kling_v1_6():
    """Kling's text to video takes no kling-v1-5: there the successor is kling-v1-6, mode and duration kept."""
    assert "kling-v1-5" not in endpoint_models("text2video") and "kling-v1-6" in endpoint_models("text2video")
    for mode, duration in (("std", "5"), ("pro", "10")):
        plan = widget_plan("text2video", {"model_name": "kling-v1", "mode": mode, "duration": duration,
                                          "aspect_ratio": "16:9", "sound": "off"}, [])
        assert plan["warning"].startswith(V1_RETIRED) and "pick kling-v1-6 instead" in plan["warning"], plan
        assert "kling-v1-5" not in plan["warning"], plan  # the image node's successor is not this node's
        assert plan["fix"]["values"] == {"model_name": "kling-v1-6", "mode": mode, "duration": duration,
                                         "sound": "off", "aspect_ratio": "16:9"}, plan


def test_a_malformed_request_says_what_is_wrong():
    nodes = {"KlingImageToVideo": "image2video", "KlingVideoExtend": None}
    for body, words in (([], "JSON object"), ({"node_type": "Nope"}, "'Nope' is not a Kling node"),
                        ({"node_type": "KlingImageToVideo", "values": []}, "values must be an object"),
                        ({"node_type": "KlingImageToVideo", "linked": "image_tail"}, "linked must be a list"),
                        ({"node_type": "KlingImageToVideo", "values": {"model_name": ["kling-v1"]}},
                         "values.model_name must be a widget value")):
        with pytest.raises(WidgetPlanError, match=words):
            plan_request(body, nodes)
    assert plan_request({"node_type": "KlingVideoExtend", "values": {"prompt": "x"}}, nodes) == {
        "widgets": {}, "warning": None, "fix": None, "info": []}


# --------------------------------------------------------------------------------------------------
# the route, in a real ComfyUI

KLING_NODES = ("KlingImageToVideo", "KlingTextToVideo", "KlingMultiImageToVideo", "KlingVideoExtend",
               "KlingTaskResult", "KlingCameraControl", "KlingMotionBrush")
RULE_NODES = {"KlingImageToVideo": "image2video", "KlingTextToVideo": "text2video",
              "KlingMultiImageToVideo": "multi-image2video"}


def post_plan(host: ch.ComfyHost, body, raw: bytes | None = None) -> ch.HttpResponse:
    if raw is not None:
        return host.request("POST", "/kling/widget_plan", data=raw, headers={"Content-Type": "application/json"})
    return host.request("POST", "/kling/widget_plan", json_body=body)


def defaults(info: dict) -> dict:
    """The node's widget defaults, as a new node on the page has them."""
    inputs = {**info["input"]["required"], **info["input"].get("optional", {})}
    return {name: spec[1]["default"] for name, spec in inputs.items()
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]}


@pytest.mark.host
def test_the_route_answers_the_plan_for_every_kling_node(comfy_host, object_info):
    for node in KLING_NODES:
        info = object_info[node]
        answer = post_plan(comfy_host, {"node_type": node, "values": defaults(info), "linked": []})
        assert answer.status == 200, (node, answer.body)
        plan = answer.json()
        assert set(plan) == {"widgets", "warning", "fix", "info"}, plan
        assert plan["warning"] is None and plan["fix"] is None, (node, plan)  # a new node is valid
        inputs = {**info["input"]["required"], **info["input"].get("optional", {})}
        assert set(plan["widgets"]) <= set(inputs), (node, plan["widgets"])
        # the pack's cost lines (nodes/spend_guard.plan_info) follow the rules' own info lines
        expected = widget_plan(RULE_NODES[node], defaults(info), []) if node in RULE_NODES else \
            {"widgets": {}, "warning": None, "fix": None, "info": []}
        own = len(expected["info"])
        assert all(is_cost_line(line) for line in plan["info"][own:])
        plan = {**plan, "info": plan["info"][:own]}
        if node not in RULE_NODES:
            assert plan == expected, node
            continue
        # the combos offer a subset of the node's own options, as the library plans them
        for name, shown in plan["widgets"].items():
            if "choices" in shown:
                options = inputs[name][1].get("options") or inputs[name][0]
                assert set(shown["choices"]) <= set(options), (node, name, shown, options)
        assert plan == expected


@pytest.mark.host
def test_the_route_refuses_an_unknown_node_type_and_a_malformed_body(comfy_host):
    for body, raw, words in (({"node_type": "KSampler", "values": {}}, None, "'KSampler' is not a Kling node"),
                             (None, b"{not json", "not JSON"),
                             (["KlingImageToVideo"], None, "JSON object"),
                             ({"node_type": "KlingImageToVideo", "values": {}, "linked": [1]}, None,
                              "linked must be a list of input names")):
        answer = post_plan(comfy_host, body, raw)
        assert answer.status == 400, (body, answer.body)
        assert words in answer.json()["error"], answer.json()


@pytest.mark.host
@pytest.mark.parametrize("workflow, node, inputs", [
    ("kling_start_end_frame", "KlingImageToVideo", {"mode": "std", "duration": "5"}),
    ("kling_camera_control", "KlingImageToVideo", {"mode": "std"}),
    ("kling_motion_brush", "KlingImageToVideo", {"model_name": "kling-v2-5-turbo"}),
    ("kling_image_to_video", "KlingImageToVideo", {"sound": "on"}),
    ("kling_text_to_video", "KlingTextToVideo", {"model_name": "kling-v2-1"}),
    ("kling_multi_image_to_video", "KlingMultiImageToVideo", {"duration": "7"}),
])
def test_the_plan_warning_is_the_queue_time_refusal(sample_host, object_info, workflow, node, inputs):
    ui = load_ui(workflow)
    prompt = ui_to_api(ui, object_info)
    kling = node_id_of(ui, node)
    prompt[kling]["inputs"].update(inputs)
    values = {k: v for k, v in prompt[kling]["inputs"].items() if not isinstance(v, list)}
    linked = [k for k, v in prompt[kling]["inputs"].items() if isinstance(v, list)]
    plan = post_plan(sample_host, {"node_type": node, "values": values, "linked": linked}).json()
    assert plan["warning"] and plan["fix"], plan
    with pytest.raises(ch.PromptRejected) as info:
        sample_host.queue(prompt)
    details = [error.get("details", "") for error in info.value.node_errors[kling]["errors"]]
    assert any(plan["warning"] in text for text in details), (plan["warning"], details)
    # the fix's values are accepted at queue time as far as the table goes
    fixed = {**prompt[kling]["inputs"], **plan["fix"]["values"]}
    again = post_plan(sample_host, {"node_type": node, "values": {k: v for k, v in fixed.items()
                                                                   if not isinstance(v, list)},
                                    "linked": linked}).json()
    assert again["warning"] is None, again


@pytest.mark.host
def test_a_plan_round_trip_on_loopback_is_well_under_50_ms(comfy_host):
    url = urlparse(comfy_host.url)
    body = json.dumps({"node_type": "KlingImageToVideo", "linked": ["image_tail"],
                       "values": {"model_name": "kling-v1-6", "mode": "std", "duration": "5", "sound": "on"}})
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    timings = []
    try:
        for _ in range(21):
            start = time.perf_counter()
            connection.request("POST", "/kling/widget_plan", body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            plan = json.loads(answer.read())
            timings.append(time.perf_counter() - start)
            assert answer.status == 200 and plan["fix"], plan
    finally:
        connection.close()
    assert statistics.median(timings[1:]) < 0.050, timings


# --------------------------------------------------------------------------------------------------
# tooltips and the English locale, from the same table


def test_rule_phrases_of_the_tooltips_name_exactly_the_models_the_table_allows():
    for feature in ("image_tail", "sound", "camera_control", "motion_brush"):
        named = {part.split(" ")[0] for part in where_allowed(feature).split(", ")}
        assert named == {m for m in TABLE.model_names if TABLE.get(m).allowed_combos(feature)}, feature
    assert where_allowed("sound") == "kling-v2-6 pro, kling-v3, kling-3.0, kling-2.6 1080p"
    assert where_allowed("motion_brush") == "kling-v1-5 pro 5 s"  # kling-v1 (std/5, pro/5) is retired
    assert durations_text() == "5 or 10 on most models; 3-15 on kling-v3, kling-3.0-turbo, kling-3.0"
    assert durations_text(endpoint_models("multi-image2video")) == "5 or 10"


@pytest.mark.host
def test_the_english_locale_is_the_schemas_own_text(object_info, comfy_host):
    """locales/en/nodeDefs.json overrides the schemas' tooltips in the frontend: it must say the same
    (regenerate it with scripts/make_locale.py)."""
    expected = locale_from_object_info(object_info)
    assert set(expected) == set(RULE_NODES) | {"KlingVideoExtend", "KlingTaskResult", "KlingCameraControl",
                                                "KlingMotionBrush"}
    assert json.loads(LOCALE_FILE.read_text(encoding="utf-8")) == expected, "run scripts/make_locale.py"
    image = expected["KlingImageToVideo"]["inputs"]
    assert where_allowed("sound") in image["sound"]["tooltip"]
    assert durations_text() in image["duration"]["tooltip"]
    assert comfy_host.get_json("/i18n")["en"]["nodeDefs"] == expected  # what the frontend is handed


@pytest.mark.parametrize("endpoint, extra", [("image2video", {}), ("text2video", {"aspect_ratio": "16:9"})])
def test_a_negative_prompt_on_a_new_api_model_is_named_and_one_click_clears_it(endpoint, extra):
    """A saved workflow moved to a new-API model keeps its negative prompt, which that API refuses by name:
    the node says so before the run and its fix clears the text (a legacy model keeps it)."""
    values = {"model_name": "kling-3.0-turbo", "mode": "std", "resolution": "720p", "duration": "5", "sound": "off",
              "negative_prompt": "blurry, distorted", **extra}  # the page sends every widget, hidden mode too
    plan = widget_plan(endpoint, values, [])
    assert plan["warning"] and "negative_prompt" in plan["warning"] and "kling-3.0-turbo" in plan["warning"], plan
    assert plan["fix"] == {"label": "Fix: clear negative_prompt", "values": {"negative_prompt": ""}}
    assert widget_plan(endpoint, {**values, **plan["fix"]["values"]}, [])["warning"] is None
    legacy = {**values, "model_name": "kling-v2-5-turbo", "mode": "pro"}
    assert widget_plan(endpoint, legacy, [])["warning"] is None


def test_with_a_negative_prompt_the_combination_fix_still_stays_on_the_new_api():
    """An end frame on Turbo and a negative prompt: first the text is cleared, then the combination's fix
    keeps to the new API (the text never pushes the fix to a legacy model)."""
    values = {"model_name": "kling-3.0-turbo", "mode": "std", "resolution": "1080p", "duration": "5", "sound": "off",
              "negative_prompt": "blurry"}
    plan = widget_plan("image2video", values, ["image_tail"])
    assert plan["fix"] == {"label": "Fix: clear negative_prompt", "values": {"negative_prompt": ""}}, plan
    cleared = {**values, **plan["fix"]["values"]}
    plan = widget_plan("image2video", cleared, ["image_tail"])
    assert "image_tail" in plan["warning"] and plan["fix"] is not None, plan
    fixed = {**cleared, **plan["fix"]["values"]}
    assert capability_table().get(fixed["model_name"]).is_new_standard, plan["fix"]
    assert widget_plan("image2video", fixed, ["image_tail"])["warning"] is None
