"""The emulator's faults (rate and concurrency limits, depleted balance, server errors, broken JSON, slow
answers, dropped connections, non-mp4 downloads, moderation) and its callbacks (see test_emulator.py)."""
from __future__ import annotations

import time

import pytest
import requests

from emulator_http import (AUTH, ENDPOINT, assert_error, body, clean, create, created_ok, emu, get,  # noqa: F401
                           receiver, settled, stays, video_of, wait)


# -- faults --------------------------------------------------------------------------------
def test_fault_rate_limit_then_success(emu):
    emu.configure(rate_limit_creates=2)
    for _ in range(2):
        assert_error(create(emu, body()), 429, 1303, "parallel task over resource pack limit")
    assert create(emu, body()).status_code == 200
    assert len(emu.created_tasks()) == 1


def test_concurrency_limit_holds_a_slot_from_submitted_until_the_task_ends(emu):
    emu.configure(concurrency_limit=1, processing_seconds=0.3)
    first = created_ok(emu, body())
    assert_error(create(emu, body()), 429, 1303, "parallel task over resource pack limit")
    assert len(emu.created_tasks()) == 1
    for _ in range(200):  # until the first task ends (a wait, not a timing check)
        if get(emu, first).json()["data"]["task_status"] == "succeed":
            break
        time.sleep(0.05)
    assert created_ok(emu, body()) != first
    assert len(emu.created_tasks()) == 2


def test_fault_balance_depleted(emu):
    emu.configure(balance_depleted_creates=1)
    assert_error(create(emu, body()), 429, 1102)
    assert emu.created_tasks() == []
    assert create(emu, body()).status_code == 200


@pytest.mark.parametrize("code, http", [(5000, 500), (5001, 503), (5002, 504)])
def test_fault_server_errors_on_polls(emu, code, http):
    task_id = created_ok(emu, body())
    emu.configure(server_error_polls=2, server_error_code=code)
    assert_error(get(emu, task_id), http, code)
    assert_error(requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=10), http, code)
    assert get(emu, task_id).json()["data"]["task_id"] == task_id


def test_fault_malformed_json_polls(emu):
    task_id = created_ok(emu, body())
    emu.configure(malformed_json_polls=1)
    broken = get(emu, task_id)
    assert broken.status_code == 200 and broken.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        broken.json()
    assert get(emu, task_id).json()["data"]["task_id"] == task_id


def test_fault_slow_responses(emu):
    emu.configure(delay_seconds=0.4)
    started = time.monotonic()
    requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=10)
    assert time.monotonic() - started >= 0.4
    with pytest.raises(requests.Timeout):
        requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=0.1)


def test_fault_drop_after_create(emu):
    emu.configure(drop_after_create=1)
    with pytest.raises(requests.ConnectionError):
        create(emu, body(external_task_id="dropped-1"))
    tasks = emu.created_tasks()
    assert len(tasks) == 1 and tasks[0]["task_info"]["external_task_id"] == "dropped-1"
    assert get(emu, "dropped-1").json()["data"]["task_id"] == tasks[0]["task_id"]
    assert create(emu, body(external_task_id="dropped-2")).status_code == 200


def test_fault_drop_mid_download_then_resume(emu):
    data, mp4 = video_of(emu, body())
    url = data["task_result"]["videos"][0]["url"]
    emu.configure(drop_downloads=1, drop_download_after_bytes=1000)
    got = bytearray()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        with requests.get(url, stream=True, timeout=10) as r:
            assert r.headers["Content-Length"] == str(len(mp4))
            for chunk in r.iter_content(100):  # divides 1000: no chunk is lost with the error
                got += chunk
    assert bytes(got) == mp4[:1000]
    rest = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=10)
    assert rest.status_code == 206 and bytes(got) + rest.content == mp4


def test_fault_non_mp4_download(emu):
    data, mp4 = video_of(emu, body())
    url = data["task_result"]["videos"][0]["url"]
    emu.configure(non_mp4_downloads=1)
    bad = requests.get(url, timeout=10)
    assert bad.status_code == 200 and bad.headers["Content-Type"] == "text/html"
    assert bad.content[4:8] != b"ftyp" and b"<html>" in bad.content
    assert requests.get(url, timeout=10).content == mp4


def test_fault_moderation(emu):
    task_id = created_ok(emu, body(prompt="a cat MODERATION_FAIL"))
    data = wait(emu, task_id)
    assert data["task_status"] == "failed" and data["task_status_msg"] == "Content moderation review failed."
    assert "task_result" not in data
    emu.configure(moderation_fail_creates=1)
    assert wait(emu, created_ok(emu, body()))["task_status"] == "failed"
    assert wait(emu, created_ok(emu, body()))["task_status"] == "succeed"


def test_callbacks_on_each_status_change(emu, receiver):
    task_id = created_ok(emu, body(callback_url=receiver.url + "/hook", external_task_id="cb-1"))
    wait(emu, task_id)
    posts = settled(lambda: list(receiver.posts), lambda got: len(got) >= 3)
    assert [p["task_status"] for p in posts] == ["submitted", "processing", "succeed"]
    last = posts[-1]
    assert "code" not in last and "data" not in last  # not enveloped (reference 5.4)
    assert last["task_id"] == task_id and last["task_info"]["external_task_id"] == "cb-1"
    assert last["task_result"]["videos"][0]["url"].endswith(f"/_files/{task_id}.mp4")
    assert isinstance(last["created_at"], int) and isinstance(last["final_unit_deduction"], str)
    # the emulator records an outcome once the receiver has answered: the third may come after the third post
    outcomes = settled(lambda: [c["outcome"] for c in emu.callbacks], lambda got: len(got) >= 3)
    assert outcomes == ["HTTP 200"] * 3


def test_callbacks_skip_internet_and_can_be_switched_off(emu, receiver):
    wait(emu, created_ok(emu, body(callback_url="https://example.com/hook")))
    outcomes = settled(lambda: [c["outcome"] for c in emu.callbacks], lambda got: len(got) >= 3)
    assert outcomes == ["skipped: not a loopback address"] * 3  # one per status change, none sent
    emu.configure(callbacks=False)
    wait(emu, created_ok(emu, body(callback_url=receiver.url + "/hook")))
    # nothing is queued while callbacks are off; a sender that queued one anyway would post within this
    seen = stays(lambda: (list(receiver.posts), len(emu.callbacks)), lambda got: got == ([], 3), 0.5)
    assert seen == ([], 3)
