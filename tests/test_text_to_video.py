"""Text to video in the library and the emulator: /v1/videos/text2video through the same jobs/ledger code."""
from __future__ import annotations

import pytest
from kling_devtools.library_emulator import client_for as shared_client_for, fast_emulator

from kling_api.rules.capabilities import endpoint_models
from kling_api.remote.client import KlingClient
from kling_api.emulator import Emulator
from kling_api.errors import KlingValidationError
from kling_api.generation.life import run_text_to_video
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.request import TextToVideoRequest
from kling_api.rules.validation import validate_text_to_video
from kling_api.media.video import probe_video

API_KEY = "t2v-test-key"


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


def client_for(emu: Emulator) -> KlingClient:
    return shared_client_for(emu, API_KEY)


def test_text2video_models_come_from_the_table():
    names = endpoint_models("text2video")
    assert "kling-v3" in names and "kling-v2-6" in names
    assert "kling-v1-5" not in names and "kling-v2-1" not in names


@pytest.mark.parametrize("changes, field", [
    ({"model_name": "kling-v1-5"}, "model_name"),
    ({"prompt": "  "}, "prompt"),
    ({"aspect_ratio": "4:3"}, "aspect_ratio"),
    ({"duration": "15"}, "duration"),
])
def test_text2video_validation(changes, field):
    base = dict(model_name="kling-v2-5-turbo", prompt="a quiet lake at dawn")
    with pytest.raises(KlingValidationError) as err:
        validate_text_to_video(TextToVideoRequest(**{**base, **changes}))
    assert err.value.field == field


def test_master_model_drops_mode():
    checked = validate_text_to_video(TextToVideoRequest(model_name="kling-v2-master", prompt="x", mode="pro"))
    assert "mode" not in checked.request.to_body()


@pytest.mark.parametrize("ratio, portrait", [("16:9", False), ("9:16", True), ("1:1", None)])
def test_text2video_through_jobs_and_ledger(emu, tmp_path, ratio, portrait):
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    request = TextToVideoRequest(model_name="kling-v3", prompt="a quiet lake at dawn", duration="3",
                                 aspect_ratio=ratio, sound="on")
    dest = lambda task: tmp_path / f"{task.task_id}.mp4"  # noqa: E731
    result = run_text_to_video(client_for(emu), request, dest, timeout=60, ledger=ledger, seed=1)
    info = probe_video(result.video_path)
    assert info.has_audio and abs(info.frame_count / info.fps - 3) < 0.2
    if portrait is None:
        assert info.width == info.height
    else:
        assert (info.height > info.width) == portrait
    posts = [r for r in emu.requests if r["method"] == "POST" and r["path"] == "/v1/videos/text2video"]
    assert posts and posts[-1]["json"]["aspect_ratio"] == ratio and "image" not in posts[-1]["json"]
    again = run_text_to_video(client_for(emu), request, dest, timeout=60, ledger=ledger, seed=1)
    assert again.reused and again.task.task_id == result.task.task_id  # the ledger: never paid twice
    assert client_for(emu).get_task(result.task.task_id, endpoint="/v1/videos/text2video").status == "succeed"


def test_emulator_refuses_a_model_text2video_does_not_take(emu):
    client = client_for(emu)
    from kling_api.errors import KlingAPIError
    with pytest.raises(KlingAPIError) as err:
        client.create_task("/v1/videos/text2video", {"model_name": "kling-v1-5", "prompt": "x"})
    assert err.value.code == 1201
