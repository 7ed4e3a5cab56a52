"""Several machines, one Kling account, no shared ledger: the external_task_id derived from the request
makes a job re-queued elsewhere resume the task already made (never paid twice). Library and CLI level,
each "machine" with its own ledger, against the in-process emulator."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kling_devtools.library_emulator import client_for, fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.errors import KlingTaskFailed, KlingValidationError
from kling_api.generation.life import run_job
from kling_api.remote.ledger import TaskLedger, external_task_id_for, request_fingerprint
from kling_api.rules.endpoints import IMAGE2VIDEO
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import EXTERNAL_TASK_ID_PATTERN
from test_client import IMAGE

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "farm-test-key-0123456789"
PROMPT = "a secret prompt about the harbour"


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()


def request(**kw) -> ImageToVideoRequest:
    return ImageToVideoRequest(**{"model_name": "kling-v2-5-turbo", "image": IMAGE, "prompt": PROMPT, **kw})


def creates(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"] == IMAGE2VIDEO.create_path]


def machine(tmp_path: Path, name: str) -> TaskLedger:
    return TaskLedger(tmp_path / name / "ledger.sqlite3")


def test_external_ids_are_the_same_everywhere_short_and_reveal_nothing(emu):
    body = request().to_body()
    fingerprint = request_fingerprint(body, seed=3, scope=emu.url + IMAGE2VIDEO.ledger_family)
    first, again = external_task_id_for(fingerprint, 1), external_task_id_for(fingerprint, 1)
    second = external_task_id_for(fingerprint, 2)
    other_seed = external_task_id_for(request_fingerprint(body, seed=4, scope=emu.url + IMAGE2VIDEO.ledger_family))
    assert first == again and len({first, second, other_seed}) == 3
    for value in (first, second, other_seed):
        assert EXTERNAL_TASK_ID_PATTERN.match(value) and len(value) <= 64
        assert value.startswith("comfy-kling-") and fingerprint not in value
        assert not {"secret", "harbour"} & set(value.split("-")) and IMAGE[:16] not in value
    assert first.endswith("-1") and second.endswith("-2") and first[:-2] == second[:-2]
    with pytest.raises(ValueError):
        external_task_id_for(fingerprint, 0)


def test_a_job_created_on_one_machine_is_resumed_on_another_without_a_second_create(emu, tmp_path):
    emu.configure(processing_seconds=1.0)
    a, b = machine(tmp_path, "a"), machine(tmp_path, "b")
    on_a = run_job(client_for(emu, API_KEY), request(), tmp_path / "a.mp4", ledger=a, seed=5)
    on_b = run_job(client_for(emu, API_KEY), request(), tmp_path / "b.mp4", ledger=b, seed=5)
    assert on_b.task.task_id == on_a.task.task_id and not on_b.reused
    assert on_b.video_path.read_bytes() == on_a.video_path.read_bytes()
    assert len(creates(emu)) == 1 and len(emu.created_tasks()) == 1
    (row_b,) = b.entries()
    assert row_b.task_id == on_a.task.task_id and row_b.creates == 0 and row_b.status == "succeed"
    assert row_b.external_task_id == a.entries()[0].external_task_id == emu.created_tasks()[0]["task_info"][
        "external_task_id"]
    on_b_new_seed = run_job(client_for(emu, API_KEY), request(), tmp_path / "b2.mp4", ledger=b, seed=6)
    assert on_b_new_seed.task.task_id != on_a.task.task_id and len(emu.created_tasks()) == 2


def test_a_create_that_loses_the_race_resumes_the_winners_task(emu, tmp_path, monkeypatch):
    winner_client, loser_client = client_for(emu, API_KEY), client_for(emu, API_KEY)
    real_find = loser_client.find_task
    looked_up = []

    def find_before_the_winner(external_task_id, **kwargs):
        looked_up.append(external_task_id)
        if len(looked_up) == 1:  # both look up at the same moment and find nothing...
            found = real_find(external_task_id, **kwargs)
            assert found is None
            winner["result"] = run_job(winner_client, request(), tmp_path / "w.mp4", ledger=machine(tmp_path, "w"),
                                       seed=7)  # ...then the winner's create lands first
            return None
        return real_find(external_task_id, **kwargs)

    winner: dict = {}
    monkeypatch.setattr(loser_client, "find_task", find_before_the_winner)
    lost = run_job(loser_client, request(), tmp_path / "l.mp4", ledger=machine(tmp_path, "l"), seed=7)
    assert lost.task.task_id == winner["result"].task.task_id and lost.video_path.is_file()
    assert len(creates(emu)) == 2 and len(emu.created_tasks()) == 1  # the loser's create was refused
    assert looked_up == [looked_up[0]] * 2


def test_a_task_that_failed_on_one_machine_makes_the_next_attempt_on_another(emu, tmp_path):
    emu.configure(moderation_fail_creates=1)
    with pytest.raises(KlingTaskFailed):
        run_job(client_for(emu, API_KEY), request(), tmp_path / "a.mp4", ledger=machine(tmp_path, "a"), seed=8)
    b = machine(tmp_path, "b")
    result = run_job(client_for(emu, API_KEY), request(), tmp_path / "b.mp4", ledger=b, seed=8)
    failed, made = emu.created_tasks()
    assert failed["task_status"] == "failed" and result.task.task_id == made["task_id"]
    first_id = failed["task_info"]["external_task_id"]
    assert first_id.endswith("-1") and made["task_info"]["external_task_id"] == first_id[:-2] + "-2"
    assert b.entries()[0].attempt == 2 and len(creates(emu)) == 2
    again = run_job(client_for(emu, API_KEY), request(), tmp_path / "c.mp4", ledger=machine(tmp_path, "c"), seed=8)
    assert again.task.task_id == made["task_id"] and len(creates(emu)) == 2  # a third machine pays nothing


def test_a_typed_external_id_is_used_as_given_and_its_failed_task_is_not_retried_under_it(emu, tmp_path):
    ledger = machine(tmp_path, "a")
    done = run_job(client_for(emu, API_KEY), request(external_task_id="my-own-id"), tmp_path / "t.mp4",
                   ledger=ledger, seed=9)
    assert done.task.external_task_id == "my-own-id" and creates(emu)[0]["json"]["external_task_id"] == "my-own-id"
    emu.configure(moderation_fail_creates=1)
    with pytest.raises(KlingTaskFailed):
        run_job(client_for(emu, API_KEY), request(external_task_id="typed-2"), tmp_path / "f.mp4", ledger=ledger,
                seed=9)
    sent = len(emu.requests)
    with pytest.raises(KlingValidationError) as info:
        run_job(client_for(emu, API_KEY), request(external_task_id="typed-2"), tmp_path / "f.mp4", ledger=ledger,
                seed=9)
    assert info.value.field == "external_task_id" and "failed Kling task" in str(info.value)
    assert len(emu.requests) == sent  # refused before anything was sent


def test_a_ledger_from_before_attempt_numbers_gets_the_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old" / "ledger.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE submissions (fingerprint TEXT PRIMARY KEY, endpoint TEXT NOT NULL, base_url TEXT "
                     "NOT NULL, seed TEXT NOT NULL DEFAULT '', model_name TEXT NOT NULL DEFAULT '', mode TEXT NOT NULL "
                     "DEFAULT '', duration TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL DEFAULT '', external_task_id "
                     "TEXT NOT NULL, task_id TEXT, status TEXT NOT NULL, video_id TEXT NOT NULL DEFAULT '', video_path "
                     "TEXT NOT NULL DEFAULT '', final_unit_deduction TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL "
                     "DEFAULT '', creates INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '', claimed_at REAL NOT "
                     "NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL)")
        conn.execute("INSERT INTO submissions (fingerprint, endpoint, base_url, external_task_id, task_id, status, "
                     "created_at, updated_at) VALUES ('f1', 'e', 'b', 'comfy-kling-old', 't1', 'succeed', 1, 1)")
    (row,) = TaskLedger(path).entries()
    assert row.task_id == "t1" and row.attempt == 1 and row.external_task_id == "comfy-kling-old"
    assert row.sound == ""  # the sound column (cost estimates) is added too


# -- the CLI on two "machines": separate ledgers (XDG_CACHE_HOME), one emulator ---------------------------

def cli(emu, cache: Path, image: Path, out: Path, seed: str = "1") -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "KLING_API_BASE": emu.url, "KLING_API_KEY": API_KEY, "HOME": "/nonexistent",
           "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "kling_api", "image2video", "--image", str(image), "--prompt",
                             PROMPT, "--seed", seed, "--out", str(out)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finished(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_cli_killed_after_its_create_is_finished_by_the_cli_on_another_machine(emu, tmp_path):
    emu.configure(processing_seconds=3.0)
    image, _ = write_sample_images(tmp_path)
    a = cli(emu, tmp_path / "a", image, tmp_path / "a.mp4")
    try:
        wait_for(lambda: creates(emu))
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.communicate(timeout=30)
    assert a.returncode == -signal.SIGKILL and not (tmp_path / "a.mp4").exists()
    (task,) = emu.created_tasks()
    assert task["task_status"] != "succeed"  # killed while Kling was still working on it
    result = finished(cli(emu, tmp_path / "b", image, tmp_path / "b.mp4"))
    assert result["task_id"] == task["task_id"] and Path(result["video"]).read_bytes()[4:8] == b"ftyp"
    assert len(creates(emu)) == 1 and len(emu.created_tasks()) == 1
    result = finished(cli(emu, tmp_path / "b", image, tmp_path / "b-new-seed.mp4", seed="2"))
    assert result["task_id"] != task["task_id"] and len(creates(emu)) == 2


def test_cli_on_two_machines_at_the_same_moment_makes_one_task_and_both_get_the_video(emu, tmp_path):
    emu.configure(delay_seconds=0.2)  # every answer a little late: both are inside look-up and create together
    image, _ = write_sample_images(tmp_path)
    procs = [cli(emu, tmp_path / name, image, tmp_path / f"{name}.mp4") for name in ("a", "b")]
    results = [finished(p) for p in procs]
    assert results[0]["task_id"] == results[1]["task_id"] and len(emu.created_tasks()) == 1
    assert Path(results[0]["video"]).read_bytes() == Path(results[1]["video"]).read_bytes()
    assert 1 <= len(creates(emu)) <= 2  # a create that lost the race was refused as a duplicate, never paid
