"""Reliability and security of the nodes in a real ComfyUI against the emulator: a re-queue after a
restart or an interrupt resumes the recorded task (no second create), a download dropped midway
still ends with the whole video and no partial file, and no key reaches the ledger or /kling/*."""
from __future__ import annotations

import sqlite3
import time

import pytest

from kling_devtools import host as ch
from kling_devtools.sample_images import write_sample_images
from kling_devtools.host_workflows import creates, kling_video
from test_nodes_host import api_prompt

from kling_api.media.video import probe_video

pytestmark = pytest.mark.host

LEDGER = ("user", "__kling_ledger", "ledger.sqlite3")


@pytest.fixture(autouse=True)
def fresh_emulator(emulator_process):
    emulator_process.reset()


@pytest.fixture(scope="module")
def host(comfy_host, tmp_path_factory):
    comfy_host.require_nodes("KlingImageToVideo")
    start, end = write_sample_images(tmp_path_factory.mktemp("inputs"))
    comfy_host.upload_image(start)
    comfy_host.upload_image(end)
    return comfy_host


def ledger_rows(base_dir) -> list[dict]:
    with sqlite3.connect(base_dir.joinpath(*LEDGER).as_uri() + "?mode=ro", uri=True) as conn:  # never creates it
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM submissions ORDER BY created_at")]


def ledger_set_up_within(base_dir, seconds: float) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return ledger_rows(base_dir)
        except sqlite3.OperationalError:  # not there yet, or its table not yet made
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_same_workflow_and_seed_after_a_restart_reuses_the_task_and_video(comfy_install, emulator_process,
                                                                           tmp_path):
    base = tmp_path / "comfy"
    env = {"KLING_API_BASE": emulator_process.url, "KLING_API_KEY": emulator_process.api_key}
    start, _ = write_sample_images(tmp_path)
    with ch.ComfyHost(env=env, install=comfy_install, base_dir=base) as first:
        assert ledger_set_up_within(base, 30) == []  # while ComfyUI boots, not inside the first prompt
        first.upload_image(start)
        prompt, kling = api_prompt("kling_image_to_video", first.object_info(), seed=424242)
        video = kling_video(first, first.run(prompt, timeout=180), kling)
        content = video.read_bytes()
    assert len(creates(emulator_process)) == 1
    requests_before = len(emulator_process.requests())
    with ch.ComfyHost(env=env, install=comfy_install, base_dir=base) as second:  # ComfyUI restarted
        entry = second.run(prompt, timeout=180)
        again = kling_video(second, entry, kling)
        responses = [second.request("GET", "/kling/credentials").body.decode(),
                     second.request("GET", "/kling/capabilities").body.decode(),
                     second.request("POST", "/kling/credentials", json_body={"api_key": "stored-key-abcdef"}
                                    ).body.decode(),
                     second.request("DELETE", "/kling/credentials").body.decode()]
        log = second.log_text()
    assert again.name == video.name and again.read_bytes() == content
    assert len(creates(emulator_process)) == 1
    assert len(emulator_process.requests()) == requests_before  # the video was reused: nothing sent at all
    (row,) = ledger_rows(base)
    assert row["task_id"] == video.stem.removeprefix("Kling_") and row["status"] == "succeed"
    assert row["seed"] == "424242" and row["video_path"] == str(video) and row["creates"] == 1
    raw = b"".join(p.read_bytes() for p in base.joinpath(*LEDGER[:-1]).iterdir())
    for key in (emulator_process.api_key, "stored-key-abcdef"):
        assert key.encode() not in raw and key not in log
        assert all(key not in body for body in responses), responses


def test_requeue_after_an_interrupt_while_polling_resumes_the_same_task(host, object_info_cache, emulator_process):
    emulator_process.set_config(processing_seconds=6)
    prompt, kling = api_prompt("kling_image_to_video", object_info_cache)
    prompt_id = host.queue(prompt)
    deadline = time.monotonic() + 30
    while not emulator_process.tasks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert emulator_process.tasks(), "the task was never created"
    time.sleep(1.5)
    host.interrupt()
    entry = host.wait(prompt_id, timeout=15, check=False)
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    (task,) = emulator_process.tasks()
    assert task["task_status"] != "succeed"  # interrupted while Kling was still working on it
    entry = host.run(prompt, timeout=120)  # the same workflow and seed, queued again
    assert kling_video(host, entry, kling).name == f"Kling_{task['task_id']}.mp4"
    assert len(creates(emulator_process)) == 1 and len(emulator_process.tasks()) == 1
    row = next(r for r in ledger_rows(host.base_dir) if r["task_id"] == task["task_id"])
    assert row["status"] == "succeed" and row["creates"] == 1 and row["last_error"] == ""


def test_download_dropped_midway_ends_with_the_whole_video_and_no_partial_file(host, object_info_cache,
                                                                               emulator_process):
    emulator_process.set_config(drop_downloads=2, drop_download_after_bytes=3000)
    prompt, kling = api_prompt("kling_image_to_video", object_info_cache)
    entry = host.run(prompt, timeout=180)
    video = kling_video(host, entry, kling)
    assert probe_video(video).frame_count == 24 * 5
    downloads = [r for r in emulator_process.requests() if r["path"].startswith("/_files/")]
    assert len(downloads) == 3  # two dropped midway, the third complete
    assert not [p for p in host.output_dir.rglob("*") if p.name.endswith(".part")]
    assert len(creates(emulator_process)) == 1
    row = next(r for r in ledger_rows(host.base_dir) if r["video_path"] == str(video))
    assert row["task_id"] == video.stem.removeprefix("Kling_")


def test_cross_origin_delete_of_the_credentials_is_refused(host):
    stored = host.request("POST", "/kling/credentials", json_body={"api_key": "keep-me-key-123"})
    assert stored.status == 200
    path = host.user_dir / "__kling" / "credentials.json"
    foreign = host.request("DELETE", "/kling/credentials", headers={"Origin": "http://evil.example"})
    assert foreign.status == 403 and path.is_file()
    foreign_post = host.request("POST", "/kling/credentials", json_body={"api_key": "evil-key-456789"},
                                headers={"Origin": "http://evil.example"})
    assert foreign_post.status == 403 and "keep-me-key-123" in path.read_text()
    assert host.request("DELETE", "/kling/credentials").status == 200 and not path.exists()


@pytest.fixture(scope="module")
def object_info_cache(host):
    return host.object_info()

