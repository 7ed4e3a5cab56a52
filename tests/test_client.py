"""The client against the emulator over real HTTP: retries by business code, no duplicate task,
token refresh, cancel, timeout, download, and nothing sent when validation fails."""
from __future__ import annotations

import base64
import io
import threading
import time

import jwt
import numpy as np
import pytest
from PIL import Image

from kling_api.remote.auth import Credentials, Secret
from kling_api.remote import client as client_module
from kling_api.remote.client import KlingClient, poll_interval
from kling_api.emulator import Emulator
from kling_api.errors import (KlingAccountError, KlingAPIError, KlingAuthError, KlingCancelled, KlingDownloadError,
                              KlingPolicyError, KlingTaskFailed, KlingTimeout, KlingValidationError)
from kling_api.generation.life import finish_task, run_image_to_video
from kling_api.rules.request import ImageToVideoRequest
from kling_api.remote.transport import RetryPolicy

API_KEY = "client-test-key"
ACCESS_KEY, SECRET_KEY = "ak-client", "sk-client-secret-long-enough-for-hs256-xx"
FAST = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.2, jitter=0.0)


def png_b64(width: int = 480, height: int = 320) -> str:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


IMAGE = png_b64()


@pytest.fixture(scope="module")
def emu():
    with Emulator(api_keys=[API_KEY], access_keys={ACCESS_KEY: SECRET_KEY}, max_height=96,
                  submitted_seconds=0.05, processing_seconds=0.2) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()


def client_for(emu: Emulator, creds: Credentials | None = None) -> KlingClient:
    return KlingClient(creds or Credentials(api_key=Secret(API_KEY), source="test"), emu.url, retry=FAST)


def request(**kw) -> ImageToVideoRequest:
    base = dict(model_name="kling-v2-5-turbo", image=IMAGE, prompt="a slow pan", mode="std", duration="5")
    base.update(kw)
    return ImageToVideoRequest(**base)


def creates(emu: Emulator) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"].startswith("/v1/videos/image2video")]


def test_full_job_creates_once_and_downloads_a_real_mp4(emu, tmp_path):
    result = run_image_to_video(client_for(emu), request(), tmp_path / "out.mp4")
    assert result.task.status == "succeed"
    assert result.video_path.read_bytes()[4:8] == b"ftyp"
    assert result.video_id and result.task.video.url.startswith(emu.url)
    assert len(creates(emu)) == 1 and len(emu.created_tasks()) == 1
    body = creates(emu)[0]["json"]
    assert body["external_task_id"].startswith("comfy-kling-")
    assert not body["image"].startswith("data:")
    assert "cfg_scale" not in body and None not in body.values()


def test_invalid_combination_is_refused_and_nothing_is_sent(emu, tmp_path):
    with pytest.raises(KlingValidationError, match="image_tail needs mode=pro and duration=10"):
        run_image_to_video(client_for(emu), request(image_tail=IMAGE), tmp_path / "x.mp4")
    assert emu.requests == []


def test_1303_is_retried_with_backoff_and_one_task_is_created(emu):
    emu.configure(rate_limit_creates=2)
    task = client_for(emu).create_image_to_video(request())
    assert len(emu.created_tasks()) == 1
    assert task.task_id == emu.created_tasks()[0]["task_id"]
    assert len(creates(emu)) == 3


def test_creates_over_the_account_limit_wait_for_a_slot_and_each_task_is_made_once(emu, monkeypatch):
    monkeypatch.setattr(client_module, "SLOT_RETRY_S", 0.1)
    emu.configure(concurrency_limit=2, processing_seconds=0.3)
    client = client_for(emu)
    results, errors = [], []

    def one(index: int) -> None:
        try:
            task = client.create_image_to_video(request(external_task_id=f"slot-{index}"))
            results.append(client.wait(task.task_id))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(t.external_task_id for t in results) == [f"slot-{i}" for i in range(5)]
    assert len(emu.created_tasks()) == 5 and all(t["task_status"] == "succeed" for t in emu.created_tasks())
    assert any(r["path"].endswith("image2video") and r["method"] == "POST" for r in emu.requests)


def test_poll_schedule_is_every_second_while_processing_and_never_faster():
    queued = [poll_interval(n) for n in range(20)]
    assert min(queued) >= 1.0 and queued[:2] == [1.0, 1.0] and queued[-1] == 5.0
    assert [poll_interval(n, processing=True) for n in range(20)] == [1.0] * 20


@pytest.mark.parametrize("ends_after", [2.5, 9.5])
def test_the_end_of_a_task_is_noticed_within_about_a_second_whenever_it_comes(emu, ends_after):
    # Ending 9.5 s after the create fell between polls 5 s apart in the old schedule.
    emu.configure(submitted_seconds=1.0, processing_seconds=ends_after - 1.0)
    client = client_for(emu)
    task = client.create_image_to_video(request())
    done = client.wait(task.task_id)
    noticed = time.time()
    succeed_at = emu.find_task(task.task_id, external=False).updated_at / 1000
    assert done.status == "succeed"
    assert noticed - succeed_at < 1.5
    polls = [r["time"] for r in emu.requests if r["method"] == "GET" and r["path"].endswith("/" + task.task_id)]
    assert len(polls) >= 3 and min(b - a for a, b in zip(polls, polls[1:])) >= 0.99


@pytest.mark.parametrize("code", [5000, 5001, 5002])
def test_server_errors_on_poll_are_retried(emu, code):
    client = client_for(emu)
    task = client.create_image_to_video(request())
    emu.configure(server_error_polls=2, server_error_code=code)
    done = client.wait(task.task_id)
    assert done.status == "succeed"


def test_malformed_json_on_poll_is_retried(emu):
    client = client_for(emu)
    task = client.create_image_to_video(request())
    emu.configure(malformed_json_polls=1)
    assert client.wait(task.task_id).status == "succeed"


def test_depleted_balance_is_not_retried_and_has_a_hint(emu):
    emu.configure(balance_depleted_creates=5)
    with pytest.raises(KlingAccountError) as info:
        client_for(emu).create_image_to_video(request())
    assert info.value.code == 1102 and "buy a pack or enable post-paid billing" in str(info.value)
    assert len(creates(emu)) == 1


def test_bad_key_is_not_retried(emu):
    with pytest.raises(KlingAuthError) as info:
        client_for(emu, Credentials(api_key=Secret("wrong-key"), source="test")).create_image_to_video(request())
    assert info.value.code == 1000 and "wrong-key" not in str(info.value)
    assert len(emu.requests) == 1


def test_jwt_is_accepted_and_resigned_once_on_1004(emu):
    creds = Credentials(access_key=Secret(ACCESS_KEY), secret_key=Secret(SECRET_KEY), source="test")
    # A cached token the server considers expired (as after a wrong clock or a long sleep).
    now = int(time.time())
    creds._token = jwt.encode({"iss": ACCESS_KEY, "exp": now - 100, "nbf": now - 2000}, SECRET_KEY, algorithm="HS256")
    creds._token_expires = now + 1800
    task = client_for(emu, creds).create_image_to_video(request())
    assert task.task_id
    tokens = [r for r in creates(emu)]
    assert len(tokens) == 2 and len(emu.created_tasks()) == 1
    fresh = creds.authorization_header().split()[1]
    claims = jwt.decode(fresh, SECRET_KEY, algorithms=["HS256"])
    assert claims["iss"] == ACCESS_KEY and claims["exp"] - claims["nbf"] == 1805


def test_connection_dropped_after_create_finds_the_task_instead_of_creating_another(emu):
    emu.configure(drop_after_create=1)
    task = client_for(emu).create_image_to_video(request(external_task_id="my-job-1"))
    assert len(emu.created_tasks()) == 1
    assert task.task_id == emu.created_tasks()[0]["task_id"]
    assert task.external_task_id == "my-job-1"


def test_failed_task_raises_with_its_message_and_task_id(emu, tmp_path):
    with pytest.raises(KlingTaskFailed) as info:
        run_image_to_video(client_for(emu), request(prompt="MODERATION_FAIL please"), tmp_path / "x.mp4")
    assert info.value.task_id and "Content moderation review failed." in str(info.value)
    assert not (tmp_path / "x.mp4").exists()


def test_content_policy_at_create_is_not_retried(emu, monkeypatch):
    client = client_for(emu)
    from kling_api.errors import api_error_for
    err = api_error_for(1301, "content security policy triggered")
    assert isinstance(err, KlingPolicyError) and not err.retryable and "change them" in str(err)


def test_cancel_is_noticed_within_a_second(emu):
    emu.configure(processing_seconds=30)
    client = client_for(emu)
    task = client.create_image_to_video(request())
    cancel_at = time.monotonic() + 0.6
    started = time.monotonic()
    with pytest.raises(KlingCancelled):
        client.wait(task.task_id, should_cancel=lambda: time.monotonic() >= cancel_at)
    assert time.monotonic() - cancel_at < 1.0
    assert time.monotonic() - started < 2.0


def test_timeout_carries_the_task_id_and_queued_time_is_not_counted(emu):
    emu.configure(submitted_seconds=1.5, processing_seconds=30)
    client = client_for(emu)
    task = client.create_image_to_video(request())
    started = time.monotonic()
    with pytest.raises(KlingTimeout) as info:
        client.wait(task.task_id, timeout=1.0)
    waited = time.monotonic() - started
    assert info.value.task_id == task.task_id and task.task_id in str(info.value)
    assert waited >= 2.4  # 1.5 s queued (not counted) + 1 s processing


def test_status_callback_reports_elapsed_and_remaining(emu):
    emu.configure(processing_seconds=2.5)
    client = client_for(emu)
    task = client.create_image_to_video(request())
    updates = []
    client.wait(task.task_id, on_status=updates.append, estimated_seconds=10)
    assert updates[-1].status == "succeed"
    processing = [u for u in updates if u.status == "processing"]
    assert processing and all(u.remaining is not None and 0 <= u.remaining <= 10 for u in processing)
    assert [u.elapsed for u in updates] == sorted(u.elapsed for u in updates)


def test_resume_by_task_id_downloads_without_a_new_create(emu, tmp_path):
    client = client_for(emu)
    task = client.create_image_to_video(request())
    result = finish_task(client, task.task_id, tmp_path / "resumed.mp4")
    assert result.video_path.stat().st_size > 0
    assert len(creates(emu)) == 1


def test_find_task_and_list(emu):
    client = client_for(emu)
    task = client.create_image_to_video(request(external_task_id="find-me"))
    assert client.find_task("find-me").task_id == task.task_id
    assert client.find_task("nobody-has-this") is None
    assert task.task_id in [t.task_id for t in client.list_tasks()]


def test_download_resumes_after_a_dropped_connection_and_leaves_no_partial_file(emu, tmp_path):
    client = client_for(emu)
    task = client.wait(client.create_image_to_video(request()).task_id)
    emu.configure(drop_downloads=2, drop_download_after_bytes=2000)
    path = client.download(task.video.url, tmp_path / "v.mp4")
    reference = client_for(emu)
    emu.configure(drop_downloads=0)
    again = reference.download(task.video.url, tmp_path / "v2.mp4")
    assert path.read_bytes() == again.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4", "v2.mp4"]


def test_download_size_cap_and_scheme(emu, tmp_path):
    client = client_for(emu)
    task = client.wait(client.create_image_to_video(request()).task_id)
    with pytest.raises(KlingDownloadError, match="cap"):
        client.download(task.video.url, tmp_path / "v.mp4", max_bytes=1000)
    with pytest.raises(KlingValidationError):
        client.download("file:///etc/passwd", tmp_path / "p.mp4")
    assert list(tmp_path.iterdir()) == []


def test_non_mp4_content_is_refused(emu, tmp_path):
    client = client_for(emu)
    task = client.wait(client.create_image_to_video(request()).task_id)
    emu.configure(non_mp4_downloads=1) if "non_mp4_downloads" in emu.describe_config() else pytest.fail(
        f"emulator switches: {sorted(emu.describe_config())}")
    with pytest.raises(KlingDownloadError, match="not an MP4"):
        client.download(task.video.url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_no_secret_in_client_repr_or_errors(emu):
    creds = Credentials(access_key=Secret(ACCESS_KEY), secret_key=Secret(SECRET_KEY), source="test")
    client = client_for(emu, creds)
    text = repr(client) + repr(client.transport)
    assert SECRET_KEY not in text and ACCESS_KEY not in text


@pytest.mark.parametrize("code, kind, hint", [
    (1100, "KlingAccountError", "problem with the account"),
    (1101, "KlingAccountError", "in arrears"),
    (1103, "KlingAccountError", "no permission"),
    (1300, "KlingPolicyError", "platform policy"),
    (1304, "KlingAccountError", "IP whitelist"),
])
def test_account_and_policy_refusals_are_not_retried_and_say_what_to_do(emu, code, kind, hint):
    """Reference 6.1: these answers share HTTP 429/403/400 with retryable ones; the code decides."""
    emu.configure(create_errors=3, create_error_code=code)
    with pytest.raises(KlingAPIError) as info:
        client_for(emu).create_image_to_video(request())
    assert info.value.code == code and type(info.value).__name__ == kind
    assert hint in str(info.value) and not info.value.retryable
    assert len(creates(emu)) == 1  # one create, no retry (and the look-up finds no task to resume)


def test_request_rate_refusal_1302_is_retried_with_backoff(emu):
    emu.configure(create_errors=2, create_error_code=1302)
    task = client_for(emu).create_image_to_video(request())
    assert task.task_id and len(creates(emu)) == 3
