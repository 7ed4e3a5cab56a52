"""A farm: two real ComfyUI hosts (each its own base dir, user dir and ledger) on one Kling account (one
emulator). A job re-queued on another worker resumes the task the first one made; two workers given the
same job at once make one task; a new seed makes a new task."""
from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import creates, kling_video
from kling_devtools.sample_images import write_sample_images
from test_nodes_host import api_prompt

pytestmark = pytest.mark.host

LEDGER = ("user", "__kling_ledger", "ledger.sqlite3")


@pytest.fixture(autouse=True)
def fresh_emulator(emulator_process):
    emulator_process.reset()


def worker(install: ch.ComfyInstall, emulator: ch.EmulatorProcess, images: Path) -> ch.ComfyHost:
    host = ch.ComfyHost(env={"KLING_API_BASE": emulator.url, "KLING_API_KEY": emulator.api_key}, install=install)
    host.start()
    host.upload_image(images)
    return host


@pytest.fixture(scope="module")
def start_image(tmp_path_factory) -> Path:
    return write_sample_images(tmp_path_factory.mktemp("farm-inputs"))[0]


@pytest.fixture(scope="module")
def host_a(comfy_install, emulator_process, start_image):
    host = worker(comfy_install, emulator_process, start_image)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def host_b(comfy_install, emulator_process, start_image):
    host = worker(comfy_install, emulator_process, start_image)
    host.require_nodes("KlingImageToVideo")
    yield host
    host.stop()


@pytest.fixture(scope="module")
def object_info(host_b) -> dict:
    return host_b.object_info()


def ledger_rows(host: ch.ComfyHost) -> list[dict]:
    with sqlite3.connect(host.base_dir.joinpath(*LEDGER)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM submissions ORDER BY created_at")]


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_killed_after_its_create_is_finished_by_another_worker_with_one_create(
        comfy_install, emulator_process, start_image, host_b, object_info):
    emulator_process.set_config(processing_seconds=6)
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    doomed = worker(comfy_install, emulator_process, start_image)
    try:
        doomed.queue(prompt)
        wait_for(lambda: creates(emulator_process))
        os.killpg(doomed.pid, signal.SIGKILL)  # pre-empted right after its create
        doomed.proc.wait(30)
    finally:
        doomed.stop()
    (task,) = emulator_process.tasks()
    assert task["task_status"] != "succeed"  # Kling was still working on it
    video = kling_video(host_b, host_b.run(prompt, timeout=180), kling)
    assert video.name == f"Kling_{task['task_id']}.mp4" and video.read_bytes()[4:8] == b"ftyp"
    assert len(creates(emulator_process)) == 1 and len(emulator_process.tasks()) == 1
    row = next(r for r in ledger_rows(host_b) if r["task_id"] == task["task_id"])
    assert row["creates"] == 0 and row["status"] == "succeed" and row["video_path"] == str(video)
    assert row["external_task_id"] == task["task_info"]["external_task_id"]


def test_two_workers_queued_at_the_same_moment_make_one_task_and_both_get_the_video(host_a, host_b, object_info,
                                                                                   emulator_process):
    emulator_process.set_config(delay_seconds=0.2)  # both are inside look-up and create together
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    queued = [(host, host.queue(prompt)) for host in (host_a, host_b)]
    videos = [kling_video(host, host.wait(prompt_id, timeout=180), kling) for host, prompt_id in queued]
    (task,) = emulator_process.tasks()
    assert [v.name for v in videos] == [f"Kling_{task['task_id']}.mp4"] * 2
    assert videos[0].read_bytes() == videos[1].read_bytes()
    assert 1 <= len(creates(emulator_process)) <= 2  # a create that lost the race was refused, never paid


def test_a_new_seed_on_another_worker_makes_a_new_task(host_a, host_b, object_info, emulator_process):
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    first = kling_video(host_a, host_a.run(prompt, timeout=180), kling)
    prompt[kling]["inputs"]["seed"] += 1
    second = kling_video(host_b, host_b.run(prompt, timeout=180), kling)
    tasks = emulator_process.tasks()
    assert len(tasks) == 2 and len(creates(emulator_process)) == 2
    assert {first.name, second.name} == {f"Kling_{t['task_id']}.mp4" for t in tasks}
