"""Kling's new design standard through the library: the codec's bodies and tasks, then whole generations
against the in-process emulator (paths, bodies, GET /tasks, credentials, the ledger and two machines)."""
from __future__ import annotations

import pytest

from kling_devtools.library_emulator import FAST_RETRY, client_for, fast_emulator

from kling_api.emulator import Emulator
from kling_api.errors import KlingCancelled, KlingCredentialsError, KlingTaskNotFound, KlingValidationError
from kling_api.generation.life import Generation, run_job
from kling_api.media.video import probe_video
from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.remote.codecs import API_KEY_CONSOLE, NewStandardCodec, task_from_new_standard
from kling_api.remote.ledger import TaskLedger
from kling_api.remote.tasks import STATUS_SUCCEED
from kling_api.rules.endpoints import NEW_MODELS, NEW_QUERY_PATH, endpoint_for
from kling_api.rules.request import ImageToVideoRequest, TextToVideoRequest
from kling_api.rules.validation import validate, validate_text_to_video
from test_client import IMAGE

API_KEY = "new-standard-key-0123456789"
ACCESS, SECRET = "new-standard-ak", "new-standard-sk-0123456789abcdef"
CODEC = NewStandardCodec()


# --- the codec, one function at a time ------------------------------------------------------------------

def test_an_image_to_video_body_is_contents_settings_options():
    request = validate(ImageToVideoRequest(model_name="kling-3.0", image=IMAGE, image_tail=IMAGE, prompt="a boat",
                                           resolution="1080p", duration="7", sound="on", external_task_id="mine-1",
                                           callback_url="https://example.com/cb")).request
    assert request.endpoint.create_path == "/image-to-video/kling-3.0"
    assert CODEC.body(request) == {
        "contents": [{"type": "prompt", "text": "a boat"}, {"type": "first_frame", "url": IMAGE},
                     {"type": "last_frame", "url": IMAGE}],
        # multi_shot said false: the page's default is true, and this is one shot (README "Storyboards").
        "settings": {"resolution": "1080p", "duration": 7, "audio": "native", "multi_shot": False},
        "options": {"external_task_id": "mine-1", "callback_url": "https://example.com/cb"},
    }


def test_a_text_to_video_body_has_a_top_level_prompt_and_an_aspect_ratio():
    request = validate_text_to_video(TextToVideoRequest(model_name="kling-2.5-turbo", prompt="rain", duration="10",
                                                        aspect_ratio="9:16")).request
    assert request.endpoint.create_path == "/text-to-video/kling-2.5-turbo"
    assert CODEC.body(request) == {"prompt": "rain", "settings": {"resolution": "720p", "duration": 10,
                                                                 "aspect_ratio": "9:16"}}


def test_turbo_sends_no_audio_field_and_says_it_always_has_sound():
    checked = validate(ImageToVideoRequest(model_name="kling-3.0-turbo", image=IMAGE, sound="off"))
    assert "audio" not in CODEC.body(checked.request)["settings"]
    assert any("always makes sound" in note for note in checked.notes)


def test_a_task_reads_the_same_whichever_standard_made_it():
    task = task_from_new_standard({
        "id": "8936", "status": "succeeded", "message": "", "create_time": 1781080778802, "update_time": 1781080794151,
        "external_id": "ext-1",
        "outputs": [{"type": "image", "url": "https://x/i.png"},
                    {"type": "video", "id": "v1", "url": "https://x/v.mp4", "watermark_url": "", "duration": "5.041"}],
        "billing": [{"charge_type": "unit", "amount": "3", "package_type": "video"},
                    {"charge_type": "cash", "amount": "0.4", "currency": "USD"}]})
    assert (task.task_id, task.status, task.external_task_id) == ("8936", STATUS_SUCCEED, "ext-1")
    assert task.video.url == "https://x/v.mp4" and task.video.duration == "5.041" and task.video.id == "v1"
    assert task.final_unit_deduction == "3" and task.created_at == 1781080778802
    assert CODEC.found([]) is None


# --- against the emulator -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY, access_keys={ACCESS: SECRET}) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()


def posts(emu: Emulator) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST"]


def jwt_client(emu: Emulator) -> KlingClient:
    creds = Credentials(access_key=Secret(ACCESS), secret_key=Secret(SECRET), source="test")
    return KlingClient(creds, emu.url, retry=FAST_RETRY)


@pytest.mark.parametrize("model", NEW_MODELS)
def test_every_new_standard_model_makes_a_video_from_an_image_and_from_text(emu, tmp_path, model):
    client = client_for(emu, API_KEY)
    made = run_job(client, ImageToVideoRequest(model_name=model, image=IMAGE, prompt="a boat", duration="5"),
                   tmp_path / "i.mp4")
    text = run_job(client, TextToVideoRequest(model_name=model, prompt="a boat", duration="5"), tmp_path / "t.mp4")
    sent = posts(emu)
    assert [r["path"] for r in sent] == [f"/image-to-video/{model}", f"/text-to-video/{model}"]
    assert "model_name" not in sent[0]["json"] and sent[0]["json"]["contents"][0] == {"type": "prompt",
                                                                                      "text": "a boat"}
    assert sent[1]["json"]["prompt"] == "a boat" and sent[1]["json"]["settings"]["duration"] == 5
    for result in (made, text):
        assert result.task.status == STATUS_SUCCEED and float(result.task.final_unit_deduction) > 0
        assert probe_video(result.video_path).duration == pytest.approx(5, abs=0.1)
    polls = [r for r in emu.requests if r["method"] == "GET" and r["path"].startswith(NEW_QUERY_PATH)]
    assert polls and all("task_ids=" in r["path"] or "external_task_ids=" in r["path"] for r in polls)


def test_an_unknown_id_is_not_found_rather_than_an_error(emu):
    client = client_for(emu, API_KEY)
    endpoint = endpoint_for("image2video", "kling-3.0-turbo")
    assert client.get_task_or_none("no-such-task", endpoint=endpoint) is None
    assert client.find_task("no-such-external-id", endpoint=endpoint) is None
    with pytest.raises(KlingTaskNotFound):
        client.get_task("no-such-task", endpoint=endpoint)


def test_an_access_key_is_refused_for_a_new_api_model_before_anything_is_sent(emu, tmp_path):
    generation = Generation(jwt_client(emu))
    request = ImageToVideoRequest(model_name="kling-3.0-turbo", image=IMAGE)
    with pytest.raises(KlingCredentialsError) as info:
        generation.prepare([request])
    assert API_KEY_CONSOLE in str(info.value) and "API key" in str(info.value)
    with pytest.raises(KlingCredentialsError):
        run_job(generation.client, request, tmp_path / "x.mp4")
    assert emu.requests == []
    # the same credentials still reach the legacy API
    legacy = run_job(jwt_client(emu), ImageToVideoRequest(model_name="kling-v2-5-turbo", image=IMAGE), tmp_path / "l.mp4")
    assert legacy.task.status == STATUS_SUCCEED


def test_the_new_standard_refuses_legacy_only_fields_by_name():
    with pytest.raises(KlingValidationError) as info:
        validate(ImageToVideoRequest(model_name="kling-3.0", image=IMAGE, negative_prompt="blur"))
    assert info.value.field == "negative_prompt"
    with pytest.raises(KlingValidationError) as info:
        validate(ImageToVideoRequest(model_name="kling-3.0-turbo", image=IMAGE, image_tail=IMAGE))
    assert info.value.field == "image_tail"
    with pytest.raises(KlingValidationError) as info:
        validate(ImageToVideoRequest(model_name="kling-v3", image=IMAGE, resolution="1080p"))
    assert info.value.field == "resolution"


def test_a_restart_resumes_a_new_standard_task_without_a_second_create(emu, tmp_path):
    emu.configure(processing_seconds=2.0)
    ledger_file = tmp_path / "ledger.sqlite3"
    request = ImageToVideoRequest(model_name="kling-3.0-turbo", image=IMAGE, prompt="resume me")
    created = []

    def cancel_once_created() -> bool:
        return bool(created)

    with pytest.raises(KlingCancelled):
        run_job(client_for(emu, API_KEY), request, tmp_path / "a.mp4", ledger=TaskLedger(ledger_file), seed=1,
                on_created=created.append, should_cancel=cancel_once_created)
    # a new process: a new client and ledger object over the same file
    again = run_job(client_for(emu, API_KEY), request, tmp_path / "b.mp4", ledger=TaskLedger(ledger_file), seed=1)
    assert again.task.task_id == created[0].task_id
    assert len(posts(emu)) == 1


def test_two_machines_share_one_task_through_external_task_ids(emu, tmp_path):
    emu.configure(processing_seconds=0.5)
    request = ImageToVideoRequest(model_name="kling-2.6", image=IMAGE, prompt="farm", resolution="1080p", sound="on")
    a = run_job(client_for(emu, API_KEY), request, tmp_path / "a.mp4", ledger=TaskLedger(tmp_path / "a.sqlite3"),
                seed=9)
    b = run_job(client_for(emu, API_KEY), request, tmp_path / "b.mp4", ledger=TaskLedger(tmp_path / "b.sqlite3"),
                seed=9)
    assert a.task.task_id == b.task.task_id and len(posts(emu)) == 1
    asked = [r["path"] for r in emu.requests if r["method"] == "GET" and "external_task_ids=" in r["path"]]
    assert asked, "the second machine looked the derived id up with GET /tasks?external_task_ids="
    assert probe_video(b.video_path).has_audio
