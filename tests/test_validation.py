"""Every rule of the seed and the capability table, refused locally with a message naming field and value."""
import pytest

from kling_api.rules.capabilities import capability_table, endpoint_models, markdown_table
from kling_api.errors import KlingValidationError
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import validate


def req(**kw):
    base = dict(model_name="kling-v2-5-turbo", image="aGVsbG8=", mode="std", duration="5")
    base.update(kw)
    return ImageToVideoRequest(**base)


def refused(**kw) -> KlingValidationError:
    with pytest.raises(KlingValidationError) as info:
        validate(req(**kw))
    return info.value


def test_seed_example_message_for_image_tail_on_turbo_std_5():
    err = refused(image_tail="eA==")
    assert str(err) == "image_tail needs mode=pro and duration=10 on kling-v2-5-turbo; got std/5"
    assert err.field == "image_tail"


@pytest.mark.parametrize("model", ["kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo"])
@pytest.mark.parametrize("mode,duration,ok", [("pro", "10", True), ("pro", "5", False), ("std", "10", False),
                                               ("std", "5", False)])
def test_seed_start_end_frame_only_pro_10_on_seed_models(model, mode, duration, ok):
    request = req(model_name=model, image_tail="eA==", mode=mode, duration=duration)
    if ok:
        assert validate(request).request.image_tail == "eA=="
    else:
        with pytest.raises(KlingValidationError, match="image_tail needs mode=pro and duration=10"):
            validate(request)


@pytest.mark.parametrize("model", ["kling-v2-master", "kling-v2-1-master"])
def test_image_tail_refused_where_no_combination_allows_it(model):
    err = refused(model_name=model, image_tail="eA==", mode="pro", duration="10")
    assert "not supported on " + model in str(err)


def test_v2_6_start_end_needs_silence_and_v3_allows_any_duration():
    with pytest.raises(KlingValidationError, match="only without sound"):
        validate(req(model_name="kling-v2-6", mode="pro", duration="5", image_tail="eA==", sound="on"))
    assert validate(req(model_name="kling-v2-6", mode="pro", duration="5", image_tail="eA==")).request.image_tail
    assert validate(req(model_name="kling-v3", mode="std", duration="13", image_tail="eA==")).request.duration == "13"


def test_unknown_model_lists_the_models():
    err = refused(model_name="kling-v9")
    assert err.field == "model_name" and "kling-v2-5-turbo" in str(err) and "'kling-v9'" in str(err)


def test_duration_outside_model_range():
    err = refused(duration="7")
    assert err.field == "duration" and "5, 10" in str(err)
    assert validate(req(model_name="kling-v3", duration=7)).request.duration == "7"


def test_mode_checked_and_master_models_drop_mode_with_a_note():
    assert refused(mode="turbo").field == "mode"
    result = validate(req(model_name="kling-v2-master", mode="pro"))
    assert "mode" not in result.request.to_body()
    assert any("no mode choice" in n for n in result.notes)


def test_cfg_scale_left_out_for_v2_with_note_and_range_checked_for_v1():
    result = validate(req(cfg_scale=0.5))
    assert "cfg_scale" not in result.request.to_body()
    assert result.notes == ["cfg_scale is not taken by kling-v2-5-turbo; left out of the request"]
    assert validate(req(model_name="kling-v1-6", cfg_scale=0.3)).request.to_body()["cfg_scale"] == 0.3
    assert refused(model_name="kling-v1-5", cfg_scale=1.5).field == "cfg_scale"
    assert refused(model_name="kling-v1-5", cfg_scale=float("nan")).field == "cfg_scale"


def test_prompt_limits():
    assert validate(req(prompt="a" * 2500)).request.prompt == "a" * 2500
    err = refused(prompt="a" * 2501)
    assert err.field == "prompt" and "2501 characters" in str(err) and "2500" in str(err)
    assert refused(negative_prompt="b" * 2501).field == "negative_prompt"


def test_at_least_one_image_and_no_data_prefix():
    assert refused(image=None).field == "image"
    err = refused(image="data:image/png;base64,iVBORw0KGgo=")
    assert err.field == "image" and "data: prefix" in str(err)
    assert refused(image="ftp://example.com/a.png").field == "image"
    assert validate(req(image="https://example.com/a.png")).request.image == "https://example.com/a.png"


MASK = {"mask": "bWFzaw==", "trajectories": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]}


@pytest.mark.parametrize("groups", [
    dict(image_tail="eA==", static_mask="bQ=="),
    dict(image_tail="eA==", dynamic_masks=[MASK]),
    dict(image_tail="eA==", camera_control={"type": "simple", "config": {"zoom": 5}}),
    dict(static_mask="bQ==", camera_control={"type": "simple", "config": {"zoom": 5}}),
])
def test_seed_mutual_exclusions(groups):
    err = refused(model_name="kling-v1-5", mode="pro", duration="10", **groups)
    assert "cannot be used together" in str(err)


def test_motion_brush_allowed_only_where_the_table_says():
    assert validate(req(model_name="kling-v1-5", mode="pro", duration="5", dynamic_masks=[MASK])).request.dynamic_masks
    err = refused(model_name="kling-v1-5", mode="std", duration="5", dynamic_masks=[MASK])
    assert "needs mode=pro and duration=5 on kling-v1-5" in str(err) and "got std/5" in str(err)
    assert "got pro/10" in str(refused(model_name="kling-v1-5", mode="pro", duration="10", dynamic_masks=[MASK]))
    assert "not supported on kling-v2-5-turbo" in str(refused(static_mask="bQ=="))


def test_motion_brush_counts():
    seven = [MASK] * 7
    brush = dict(model_name="kling-v1-5", mode="pro", duration="5")
    assert refused(**brush, dynamic_masks=seven).field == "dynamic_masks"
    one_point = [{"mask": "bQ==", "trajectories": [{"x": 1, "y": 1}]}]
    assert "2-77 points" in str(refused(**brush, dynamic_masks=one_point))
    many = [{"mask": "bQ==", "trajectories": [{"x": i, "y": i} for i in range(78)]}]
    assert refused(**brush, dynamic_masks=many).field == "dynamic_masks[0].trajectories"


def test_camera_control_rules():
    ok = validate(req(model_name="kling-v1-5", mode="pro", camera_control={"type": "simple", "config": {"zoom": -4}}))
    assert ok.request.camera_control == {"type": "simple", "config": {
        "horizontal": 0.0, "vertical": 0.0, "pan": 0.0, "tilt": 0.0, "roll": 0.0, "zoom": -4.0}}
    two = refused(model_name="kling-v1-5", mode="pro", camera_control={"type": "simple", "config": {"zoom": 1, "pan": 2}})
    assert "exactly one non-zero axis" in str(two)
    assert refused(model_name="kling-v1-5", mode="pro",
                   camera_control={"type": "simple", "config": {"zoom": 11}}).field == "camera_control.config.zoom"
    preset = refused(model_name="kling-v1-5", mode="pro", camera_control={"type": "down_back"})
    assert preset.field == "camera_control.type" and "simple" in str(preset)
    where = refused(model_name="kling-v1-5", mode="std", camera_control={"type": "simple", "config": {"zoom": 1}})
    assert "mode=pro and duration=5" in str(where)


def test_sound_only_where_allowed():
    assert "sound" in validate(req(model_name="kling-v2-6", mode="pro", sound="on")).request.to_body()
    assert refused(model_name="kling-v2-6", mode="std", sound="on").field == "sound"
    assert "sound" not in validate(req(sound="off")).request.to_body()
    assert refused(sound="loud").field == "sound"


def test_callback_and_external_id():
    assert refused(callback_url="http://example.com/hook").field == "callback_url"
    assert validate(req(callback_url="https://example.com/hook")).request.callback_url
    assert refused(external_task_id="has space").field == "external_task_id"
    assert refused(external_task_id="x" * 65).field == "external_task_id"


def test_body_leaves_unset_fields_out_and_sends_duration_as_string():
    body = validate(req(duration=10, mode="pro")).request.to_body()
    assert body == {"model_name": "kling-v2-5-turbo", "image": "aGVsbG8=", "mode": "pro", "duration": "10"}
    assert None not in body.values()


def test_every_model_of_the_seed_and_the_new_ones_is_in_the_table():
    names = capability_table().model_names
    for model in ["kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1", "kling-v2-1-master",
                  "kling-v2-5-turbo", "kling-v2-6", "kling-v3"]:
        assert model in names
    # kling-v1 keeps its row (retired: saved workflows get its successor named), not offered any more
    assert "kling-v1" not in names and "kling-v1" in capability_table().all_model_names
    assert capability_table().get("kling-v3").durations == tuple(str(d) for d in range(3, 16))


def test_a_retired_model_leaves_the_choices_and_names_its_successor(monkeypatch):
    import json

    from kling_api.rules import capabilities
    from kling_api.rules.capabilities import capability_table, markdown_table
    from kling_api.rules.validation import validate as check

    raw = json.loads(capabilities._TABLE_PATH.read_text())
    raw["models"]["kling-v1-6"].update(retired="2026-09-15", successor="kling-v2-5-turbo")
    monkeypatch.setattr(capabilities, "load_raw", lambda: raw)
    capability_table.cache_clear()
    try:
        table = capability_table()
        assert "kling-v1-6" not in table.model_names and "kling-v1-6" in table.all_model_names
        assert "| kling-v1-6 (retired; use kling-v2-5-turbo) |" in markdown_table()
        with pytest.raises(KlingValidationError,
                           match=r"kling-v1-6 was retired by Kling \(2026-09-15\); pick kling-v2-5-turbo instead"):
            check(ImageToVideoRequest(model_name="kling-v1-6", image="aGVsbG8=", mode="std", duration="5"))
        check(ImageToVideoRequest(model_name="kling-v2-5-turbo", image="aGVsbG8=", mode="std", duration="5"))
    finally:
        monkeypatch.undo()
        capability_table.cache_clear()
    assert "kling-v1-6" in capability_table().model_names


def test_kling_v1_is_retired_as_kling_answered_live_with_a_successor_per_endpoint():
    """Kling answered a kling-v1 create on /v1/videos/text2video (2026-09-20) with "The model 'kling-v1' has
    been discontinued and is no longer available.": the real table retires it, naming successors that keep
    what a kling-v1 workflow used (image to video kling-v1-5; text to video, which never took kling-v1-5,
    kling-v1-6)."""
    from kling_api.rules.capabilities import endpoint_models, load_raw
    from kling_api.rules.request import TextToVideoRequest
    from kling_api.rules.validation import validate_text_to_video

    table = capability_table()
    v1 = table.get("kling-v1")
    assert (v1.retired, v1.successor, v1.successor_for("text2video")) == ("2026-09-20", "kling-v1-5", "kling-v1-6")
    assert "The model 'kling-v1' has been discontinued and is no longer available." in \
        load_raw()["models"]["kling-v1"]["retired_evidence"]
    assert "kling-v1" not in endpoint_models("image2video") and "kling-v1" not in endpoint_models("text2video")
    assert "kling-v1" in endpoint_models("text2video", include_retired=True)
    for mode in ("std", "pro"):
        with pytest.raises(KlingValidationError) as info:
            validate(req(model_name="kling-v1", mode=mode))
        assert str(info.value) == ("model_name: kling-v1 was retired by Kling (2026-09-20); pick kling-v1-5 instead "
                                   "(its motion brush needs pro/5; kling-v1 took std/5 too; text to video: kling-v1-6)")
        with pytest.raises(KlingValidationError, match=r"kling-v1 was retired by Kling \(2026-09-20\)"):
            validate_text_to_video(TextToVideoRequest(model_name="kling-v1", prompt="x", mode=mode, duration="5",
                                                      aspect_ratio="16:9"))
    assert v1.retirement("text2video") == \
        "model_name: kling-v1 was retired by Kling (2026-09-20); pick kling-v1-6 instead"
    # what a kling-v1 workflow used, the successors keep (a motion brush only at pro/5)
    for endpoint in ("image2video", "text2video"):
        successor = table.get(v1.successor_for(endpoint))
        assert successor.name in endpoint_models(endpoint) and not successor.retired
        assert (successor.modes, successor.durations, successor.cfg_scale) == (v1.modes, v1.durations, True)
    assert table.get("kling-v1-5").allowed_combos("motion_brush") == [("pro", "5")]
    assert "| kling-v1 (retired; use kling-v1-5, text to video: kling-v1-6) |" in markdown_table()


def test_every_retired_model_names_current_successors_offered_where_they_are_named():
    table = capability_table()
    retired = [caps for caps in table.models.values() if caps.retired]
    assert retired, "the table retires kling-v1"
    for caps in retired:
        for endpoint in ("image2video", "text2video"):
            if caps.name not in endpoint_models(endpoint, include_retired=True):
                continue
            successor = caps.successor_for(endpoint)
            assert successor in endpoint_models(endpoint), (caps.name, endpoint, successor)


def test_kling_v1_6_and_kling_v2_1_are_not_retired():
    """Their reported retirement (2026-09-15) rests on one client's test, not on a page or a live answer
    recorded with its request; Kling's changelog has no such entry (README, "Retirements and their evidence")."""
    table = capability_table()
    for name in ("kling-v1-6", "kling-v2-1"):
        assert not table.get(name).retired and name in table.model_names


def test_the_default_model_is_current_and_on_the_official_price_table():
    """The default must be a model Kling's price page lists (kling-pricing-video.md): kling-v2-5-turbo is the
    legacy name of its "Kling 2.5 Turbo" (legacy std = 720p, pro = 1080p), reachable with AK/SK too."""
    from kling_api.rules.prices import list_price, product_of

    table = capability_table()
    default = table.get(table.default_model)
    assert default is not None and not default.retired and not default.is_new_standard
    assert product_of(default.name) == "Kling 2.5 Turbo"
    for tier in default.tiers:
        price = list_price(default.name, tier, audio=False)
        assert price is not None and price.source.startswith("kling-pricing-video.md"), tier
    assert list_price(default.name, "std", audio=False).units_per_second == 0.3
    assert list_price(default.name, "pro", audio=False).units_per_second == 0.5
