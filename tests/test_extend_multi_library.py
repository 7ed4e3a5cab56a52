"""Multi-image to video and video extend in the library: validation, bodies, and the ledger's
check of an extend's source video before anything is sent."""
from __future__ import annotations

import pytest
from kling_devtools.library_emulator import client_for, fast_emulator

from kling_api.errors import KlingValidationError
from kling_api.generation.finish import endpoint_estimate
from kling_api.generation.life import run_job
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.endpoints import IMAGE2VIDEO
from kling_api.rules.request import MultiImageToVideoRequest, VideoExtendRequest
from kling_api.remote.tasks import Task, VideoResult
from kling_api.remote.transport import RetryPolicy
from kling_api.rules.validation import SourceVideo, validate_multi_image_to_video, validate_video_extend

API_KEY = "extend-multi-key"
PNG = "iVBORw0KGgo="


def multi(**changes) -> MultiImageToVideoRequest:
    base = dict(model_name="kling-v1-6", image_list=(PNG, PNG), prompt="the two of them dance")
    return MultiImageToVideoRequest(**{**base, **changes})


def test_multi_image_body_has_image_objects_in_order():
    body = validate_multi_image_to_video(multi(image_list=("a1", "b2", "c3"))).request.to_body()
    assert body["image_list"] == [{"image": "a1"}, {"image": "b2"}, {"image": "c3"}]
    assert body["model_name"] == "kling-v1-6" and body["duration"] == "5" and body["aspect_ratio"] == "16:9"


@pytest.mark.parametrize("changes, field, words", [
    ({"model_name": "kling-v2-6"}, "model_name", "pick kling-v1-6"),
    ({"image_list": ()}, "image_list", "1 to 4 images"),
    ({"image_list": (PNG,) * 5}, "image_list", "1 to 4 images"),
    ({"image_list": (PNG, "data:image/png;base64,AAAA")}, "image_list[1]", "data:"),
    ({"prompt": " "}, "prompt", "needs a prompt"),
    ({"aspect_ratio": "4:3"}, "aspect_ratio", "16:9, 9:16, 1:1"),
    ({"duration": "7"}, "duration", "5, 10"),
    ({"mode": "turbo"}, "mode", "std, pro"),
])
def test_multi_image_refusals_name_field_value_and_allowed(changes, field, words):
    with pytest.raises(KlingValidationError) as err:
        validate_multi_image_to_video(multi(**changes))
    assert err.value.field == field
    assert words in str(err.value)


@pytest.mark.parametrize("video_id", ["", "  ", "a,b", "two words"])
def test_extend_needs_one_video_id(video_id):
    with pytest.raises(KlingValidationError) as err:
        validate_video_extend(VideoExtendRequest(video_id=video_id))
    assert err.value.field == "video_id"


def test_extend_cfg_scale_range_and_body():
    with pytest.raises(KlingValidationError) as err:
        validate_video_extend(VideoExtendRequest(video_id="v1", cfg_scale=1.5))
    assert err.value.field == "cfg_scale"
    body = validate_video_extend(VideoExtendRequest(video_id=" v1 ", prompt="on", cfg_scale=1)).request.to_body()
    assert body == {"video_id": "v1", "prompt": "on", "cfg_scale": 1.0}


def test_extend_source_model_and_total_length_checked_when_known():
    request = VideoExtendRequest(video_id="vid-1")
    with pytest.raises(KlingValidationError) as err:
        validate_video_extend(request, SourceVideo("vid-1", "kling-v2-5-turbo", "5"))
    assert "kling-v2-5-turbo" in str(err.value) and "kling-v1, kling-v1-5, kling-v1-6" in str(err.value)
    with pytest.raises(KlingValidationError) as err:
        validate_video_extend(request, SourceVideo("vid-1", "kling-v1-6", "177"))
    assert "180 s" in str(err.value)
    assert validate_video_extend(request, SourceVideo("vid-1", "kling-v1-6", "175.5")).request.video_id == "vid-1"


def _recorded_video(ledger: TaskLedger, base_url: str, model: str, video_id: str, duration: str = "5") -> None:
    """A finished submission in the ledger, as an earlier run of image to video leaves it."""
    fingerprint = f"fp-{video_id}"
    with ledger.claim(fingerprint, external_task_id=f"ext-{video_id}", endpoint=IMAGE2VIDEO.ledger_family,
                      base_url=base_url, summary={"model_name": model, "duration": duration}):
        pass
    task = Task(task_id=f"t-{video_id}", status="succeed", videos=(VideoResult(id=video_id, url=""),))
    ledger.record_created(fingerprint, task)
    ledger.record_task(task, fingerprint)


def test_extend_of_a_recorded_v2_video_is_refused_before_sending(tmp_path):
    with fast_emulator(API_KEY) as emu:
        client = client_for(emu, API_KEY, retry=RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.01, jitter=0.0))
        ledger = TaskLedger(tmp_path / "ledger.sqlite3")
        _recorded_video(ledger, client.base_url, "kling-v2-5-turbo", "vid-v25")
        with pytest.raises(KlingValidationError) as err:
            run_job(client, VideoExtendRequest(video_id="vid-v25"), tmp_path / "out.mp4", ledger=ledger)
        assert "made by kling-v2-5-turbo" in str(err.value)
        assert emu.requests == []
        assert ledger.find_video("vid-v25").model_name == "kling-v2-5-turbo"
        assert ledger.find_video("vid-v25", base_url="https://elsewhere.example") is None


def test_progress_estimates_follow_the_endpoint():
    assert endpoint_estimate("/v1/videos/text2video") == 319
    assert endpoint_estimate("/v1/videos/video-extend") == 320
    assert endpoint_estimate("/v1/videos/image2video") is None  # the table's default (164 s) applies
