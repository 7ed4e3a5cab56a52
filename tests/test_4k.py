"""4K on both standards (issue #24, item 1), from Kling's pages rather than from the capability table:

* legacy: ``mode: "4k"`` on kling-v3, image and text to video, since 04/23/2026 (kling-updates-api.md:
  "Set the mode parameter value to 4k ... just like in PRO mode"; "Text-to-Video: kling-v3 model",
  "Image-to-Video: kling-v3 model"; "3 units deducted per second");
* new API: ``settings.resolution: "4k"`` on kling-3.0 (kling-omni-3.0-i2v.md and -t2v.md list 720p, 1080p,
  4k, with no rule tying 4k to the duration, the audio or the last frame); Turbo, 2.6 and 2.5 Turbo list
  720p and 1080p only (their pages; kling-guide-capability-map-video.md: "720P, 1080P").

Every model x 4k is allowed or refused with its reason (naming the field, the value and what is allowed),
the estimate is the price table's 3 units/s ($0.42/s) x seconds, the widget plan offers 4k only there, and the
command line reaches the emulator with mode 4k / settings.resolution 4k (one run uncapped: a real 2160p mp4).
"""
from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from PIL import Image

from kling_devtools.library_emulator import fast_emulator

from kling_api.cli import commands as cli
from kling_api.cli.common import tier_fields
from kling_api.costs.pricing import FROM_PRICE_TABLE, estimate_requests
from kling_api.errors import KlingValidationError
from kling_api.media.video import probe_video
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.capabilities import capability_table, endpoint_models
from kling_api.rules.endpoints import NEW_QUERY_PATH
from kling_api.rules.request import ImageToVideoRequest, TextToVideoRequest
from kling_api.rules.validation import validate_request
from kling_api.rules.widget_plan import widget_plan

API_KEY = "four-k-key-0123456789"
STAND_IN = "aGVsbG8="
#: The pages' 4K: the model, the field it goes in.
FOUR_K = {"kling-v3": "mode", "kling-3.0": "resolution"}
ENDPOINTS = ("image2video", "text2video")
CASES = [(endpoint, model) for endpoint in ENDPOINTS for model in endpoint_models(endpoint)]


def request(endpoint: str, model: str, **fields):
    """A request for ``model`` at 4k, the tier in the field its standard takes (as the CLI and the node do)."""
    caps = capability_table().get(model)
    tier = {"mode": None, "resolution": "4k"} if caps.is_new_standard else {"mode": "4k", "resolution": None}
    base = dict(model_name=model, duration=fields.pop("duration", caps.durations[0]), **tier, **fields)
    if endpoint == "image2video":
        return ImageToVideoRequest(image=STAND_IN, **base)
    return TextToVideoRequest(prompt="a lighthouse at dusk", **base)


def test_the_pages_4k_models_are_the_tables():
    table = capability_table()
    assert [m for m in table.model_names if "4k" in table.get(m).modes] == ["kling-v3"]
    assert [m for m in table.model_names if "4k" in table.get(m).resolutions] == ["kling-3.0"]
    for model in FOUR_K:
        assert table.get(model).output_for("4k") == {"height": 2160, "fps": 24}


@pytest.mark.parametrize("endpoint, model", CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_every_model_at_4k_is_allowed_where_the_page_says_else_refused_with_its_reason(endpoint, model):
    caps = capability_table().get(model)
    if model in FOUR_K:
        done = validate_request(request(endpoint, model)).request
        assert getattr(done, FOUR_K[model]) == "4k"
        return
    with pytest.raises(KlingValidationError) as refused:
        validate_request(request(endpoint, model))
    error = refused.value
    if caps.is_new_standard:
        assert (error.field, error.value) == ("resolution", "4k")
        assert str(error) == (f"resolution: 4k is kling-3.0 only (the legacy API: kling-v3, mode 4k); {model} takes "
                              "720p, 1080p")
    else:
        assert (error.field, error.value) == ("mode", "4k")
        takes = f"takes {', '.join(caps.modes)}" if caps.modes else "has no mode choice"
        assert str(error) == f"mode: 4k is kling-v3 only (the new API: kling-3.0, resolution 4k); {model} {takes}"


@pytest.mark.parametrize("model", ["kling-v3", "kling-3.0"])
def test_4k_takes_what_the_page_gives_the_model_every_duration_an_end_frame_and_sound(model):
    caps = capability_table().get(model)
    assert caps.durations == tuple(str(d) for d in range(3, 16))
    for duration in caps.durations:
        for sound in ("on", "off"):
            done = validate_request(request("image2video", model, duration=duration, sound=sound,
                                            image_tail=STAND_IN)).request
            assert (done.duration, done.sound, done.image_tail) == (duration, sound, STAND_IN)
            assert validate_request(request("text2video", model, duration=duration, sound=sound,
                                            aspect_ratio="9:16")).request.duration == duration


def test_a_legacy_model_given_a_resolution_of_4k_means_mode_4k_and_a_disagreeing_mode_is_refused():
    assert tier_fields("kling-v3", None, "4k") == {"mode": "4k", "resolution": None}
    assert tier_fields("kling-3.0", "4k", None) == {"mode": None, "resolution": "4k"}
    assert tier_fields("kling-v2-6", None, "4k") == {"mode": "4k", "resolution": None}  # then refused, as above
    with pytest.raises(KlingValidationError, match="--resolution"):
        tier_fields("kling-v3", "pro", "4k")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("model", list(FOUR_K))
@pytest.mark.parametrize("sound", ["off", "on"])
@pytest.mark.parametrize("seconds", [3, 10, 15])
def test_the_4k_estimate_is_3_units_and_42_cents_a_second(endpoint, model, sound, seconds, tmp_path):
    """kling-pricing-video.md: Kling 3.0 at 4K, "3.0 Units ($0.42) /s" with or without native audio; the
    changelog's legacy mode 4k: "3 units deducted per second"."""
    estimate = estimate_requests([validate_request(request(endpoint, model, duration=str(seconds),
                                                           sound=sound)).request],
                                 ledger=TaskLedger(tmp_path / "none.sqlite3"))
    (part,) = estimate.parts
    assert part.basis == FROM_PRICE_TABLE
    assert part.units_per_task == pytest.approx(3.0 * seconds) and estimate.total == pytest.approx(3.0 * seconds)
    assert part.usd_per_task == pytest.approx(0.42 * seconds)
    assert f"{3 * seconds:g} units" in estimate.describe() and "$" in estimate.describe()


# --- the widget plan ---------------------------------------------------------------------------------------


def plan_values(model: str, endpoint: str, tier: str) -> dict:
    caps = capability_table().get(model)
    values = {"model_name": model, "duration": caps.durations[0], "sound": "off",
              "mode": "std" if caps.is_new_standard else tier, "resolution": tier if caps.is_new_standard else "720p"}
    return {**values, **({"aspect_ratio": "16:9"} if endpoint == "text2video" else {})}


@pytest.mark.parametrize("endpoint, model", CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_the_widget_plan_offers_4k_only_on_the_4k_models(endpoint, model):
    caps = capability_table().get(model)
    widget = "resolution" if caps.is_new_standard else "mode"
    plan = widget_plan(endpoint, plan_values(model, endpoint, "4k"), [])
    if model in FOUR_K:
        assert plan["warning"] is None and plan["widgets"][widget]["visible"], plan
        assert "4k" in plan["widgets"][widget]["choices"]
        return
    assert "4k" not in plan["widgets"][widget]["choices"] or not caps.has_mode_choice and not caps.is_new_standard
    assert plan["warning"] and f"{widget}: 4k is" in plan["warning"], plan
    assert plan["widgets"][widget]["visible"], plan  # the warning points at a widget in sight
    fixed = {**plan_values(model, endpoint, "4k"), **plan["fix"]["values"]}
    assert fixed["model_name"] == model, plan["fix"]  # the same model, one tier down
    assert widget_plan(endpoint, fixed, [])["warning"] is None
    if caps.has_mode_choice or caps.is_new_standard:
        assert fixed[widget] == ("1080p" if caps.is_new_standard else "pro"), plan["fix"]


# --- the command line against the emulator -----------------------------------------------------------------


@pytest.fixture
def wide_image(tmp_path) -> Path:
    """A 16:9 start frame (the video's aspect ratio follows it: 3840x2160 at 4k)."""
    path = tmp_path / "wide.png"
    Image.new("RGB", (1280, 720), (40, 90, 160)).save(path)
    return path


def run(emu, tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    common = ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"),
              "--ledger", str(tmp_path / "ledger.sqlite3")]
    code = cli.main([*common, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sent(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"] != NEW_QUERY_PATH]


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_BASE", "KLING_RATE_CARD", "KLING_MAX_UNITS",
                 "KLING_MAX_UNITS_PER_DAY"):
        monkeypatch.delenv(name, raising=False)


def test_cli_kling_v3_resolution_4k_sends_mode_4k(api_key, tmp_path, capsys, wide_image):
    with fast_emulator(API_KEY) as emu:
        out = tmp_path / "v3.mp4"
        code, stdout, err = run(emu, tmp_path, capsys, "image2video", "--image", str(wide_image), "--model",
                                "kling-v3", "--resolution", "4k", "--duration", "3", "--out", str(out))
        assert code == 0, err
        (create,) = sent(emu)
        assert create["path"] == "/v1/videos/image2video"
        assert create["json"]["mode"] == "4k" and create["json"]["model_name"] == "kling-v3"
        assert "resolution" not in create["json"]
        assert "Estimated cost: 9 units, $1.26 list price" in err, err  # 3/s x 3 s, $0.42/s
        info = probe_video(out)
        assert info.height == 96 and info.width == 170 and info.fps == 24, info  # 16:9 at the tests' cap
        assert json.loads(stdout)["video"] == str(out)


@pytest.mark.parametrize("model, words", [
    ("kling-v2-6", "mode: 4k is kling-v3 only"),
    ("kling-2.6", "resolution: 4k is kling-3.0 only"),
    ("kling-3.0-turbo", "resolution: 4k is kling-3.0 only"),
])
def test_cli_4k_where_the_model_has_none_is_refused_before_anything_is_sent(api_key, tmp_path, capsys, wide_image,
                                                                           model, words):
    with fast_emulator(API_KEY) as emu:
        code, _, err = run(emu, tmp_path, capsys, "image2video", "--image", str(wide_image), "--model", model,
                           "--resolution", "4k", "--duration", "5", "--out", str(tmp_path / "no.mp4"))
        assert code != 0 and words in err and model in err, err
        assert emu.requests == []


def test_cli_kling_3_0_resolution_4k_is_a_real_2160p_h264_video(api_key, tmp_path, capsys, wide_image):
    """No height cap here: the emulator makes the 3840x2160 mp4 that 4k is (3 s, to keep 4K encoding short)."""
    with fast_emulator(API_KEY, max_height=None) as emu:
        out = tmp_path / "uhd.mp4"
        code, _, err = run(emu, tmp_path, capsys, "image2video", "--image", str(wide_image), "--model", "kling-3.0",
                           "--resolution", "4k", "--duration", "3", "--sound", "on", "--timeout", "300",
                           "--out", str(out))
        assert code == 0, err
        (create,) = sent(emu)
        assert create["path"] == "/image-to-video/kling-3.0"
        assert create["json"]["settings"]["resolution"] == "4k" and create["json"]["settings"]["audio"] == "native"
        assert "Estimated cost: 9 units" in err, err
        info = probe_video(out)
        assert (info.width, info.height, info.fps) == (3840, 2160, 24) and info.has_audio, info
        assert abs(info.duration - 3) < 0.1
        with av.open(str(out)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
