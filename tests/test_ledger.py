"""The task ledger through the real jobs path against the emulator: a re-queue never pays twice,
a lost create answer or a crash is resumed, a new seed makes a new task, faults leave the task_id
in the error or the ledger, and the ledger never holds a key."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kling_api.cli import commands as cli
from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.emulator import Emulator
from kling_api.errors import (KlingAccountError, KlingNetworkError, KlingPolicyError, KlingTaskFailed,
                              KlingTimeout)
from kling_api.generation.life import run_image_to_video
from kling_api.remote.ledger import LedgerUnavailable, TaskLedger, default_cli_ledger_path, request_fingerprint
from kling_api.rules.request import ImageToVideoRequest
from kling_api.remote.transport import RetryPolicy
from test_client import IMAGE, png_b64

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "ledger-test-key-0123456789"
ACCESS_KEY, SECRET_KEY = "ak-ledger-access", "sk-ledger-secret-long-enough-for-hs256-xxxx"
FAST = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.2, jitter=0.0)


@pytest.fixture(scope="module")
def emu():
    with Emulator(api_keys=[API_KEY], access_keys={ACCESS_KEY: SECRET_KEY}, max_height=96,
                  submitted_seconds=0.05, processing_seconds=0.2) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()


@pytest.fixture
def ledger(tmp_path) -> TaskLedger:
    return TaskLedger(tmp_path / "ledger" / "ledger.sqlite3")


def client_for(emu, creds=None, **kw) -> KlingClient:
    return KlingClient(creds or Credentials(api_key=Secret(API_KEY), source="test"), emu.url,
                       retry=kw.pop("retry", FAST), **kw)


def request(**kw) -> ImageToVideoRequest:
    base = dict(model_name="kling-v2-5-turbo", image=IMAGE, prompt="a slow pan", mode="std", duration="5")
    base.update(kw)
    return ImageToVideoRequest(**base)


def creates(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"].startswith("/v1/videos/image2video")]


def test_same_request_and_seed_reuses_the_video_without_any_request(emu, ledger, tmp_path):
    first = run_image_to_video(client_for(emu), request(), tmp_path / "a.mp4", ledger=ledger, seed=7)
    sent = len(emu.requests)
    again = run_image_to_video(client_for(emu), request(), tmp_path / "a.mp4", ledger=ledger, seed=7)
    assert again.reused and again.task.task_id == first.task.task_id and again.video_id == first.video_id
    assert again.video_path.read_bytes() == first.video_path.read_bytes()
    assert len(emu.requests) == sent  # not even a query
    elsewhere = run_image_to_video(client_for(emu), request(), tmp_path / "copy.mp4", ledger=ledger, seed=7)
    assert elsewhere.video_path == tmp_path / "copy.mp4" and elsewhere.video_path.read_bytes()[4:8] == b"ftyp"
    assert len(emu.created_tasks()) == 1
    (row,) = ledger.entries()
    assert row.status == "succeed" and row.task_id == first.task.task_id and row.creates == 1
    assert row.video_path == str(tmp_path / "a.mp4") and row.finished_at and row.external_task_id


def test_a_new_seed_makes_a_new_task_and_a_lost_file_is_downloaded_again(emu, ledger, tmp_path):
    first = run_image_to_video(client_for(emu), request(), tmp_path / "a.mp4", ledger=ledger, seed=1)
    second = run_image_to_video(client_for(emu), request(), tmp_path / "b.mp4", ledger=ledger, seed=2)
    assert first.task.task_id != second.task.task_id and len(emu.created_tasks()) == 2
    first.video_path.unlink()
    again = run_image_to_video(client_for(emu), request(), tmp_path / "a.mp4", ledger=ledger, seed=1)
    assert not again.reused and again.task.task_id == first.task.task_id and again.video_path.is_file()
    assert len(emu.created_tasks()) == 2 and len(creates(emu)) == 2
    assert request_fingerprint({"image": IMAGE}, seed=1) != request_fingerprint({"image": png_b64(481)}, seed=1)


def test_after_a_timeout_a_requeue_resumes_the_same_task(emu, ledger, tmp_path):
    emu.configure(processing_seconds=3.0)
    with pytest.raises(KlingTimeout) as info:
        run_image_to_video(client_for(emu), request(), tmp_path / "t.mp4", ledger=ledger, seed=3, timeout=0.3)
    task_id = info.value.task_id
    (row,) = ledger.entries()
    assert row.task_id == task_id and row.status == "processing" and "Gave up waiting" in row.last_error
    result = run_image_to_video(client_for(emu), request(), tmp_path / "t.mp4", ledger=ledger, seed=3)
    assert result.task.task_id == task_id and result.video_path.is_file()
    assert len(emu.created_tasks()) == 1 and len(creates(emu)) == 1


def test_create_answer_lost_and_retries_exhausted_then_requeue_finds_it_by_external_id(emu, ledger, tmp_path):
    emu.configure(drop_after_create=1)
    once = RetryPolicy(attempts=1, base_delay=0.05, jitter=0.0)
    with pytest.raises(KlingNetworkError):
        run_image_to_video(client_for(emu, retry=once), request(), tmp_path / "x.mp4", ledger=ledger, seed=4)
    (row,) = ledger.entries()
    assert row.status == "creating" and row.task_id is None and row.last_error
    assert len(emu.created_tasks()) == 1  # Kling made it; only the answer was lost
    result = run_image_to_video(client_for(emu), request(), tmp_path / "x.mp4", ledger=ledger, seed=4)
    assert result.task.task_id == emu.created_tasks()[0]["task_id"]
    assert len(emu.created_tasks()) == 1 and len(creates(emu)) == 1
    assert ledger.entries()[0].task_id == result.task.task_id


def test_crash_before_the_create_was_sent_creates_it_once_with_the_recorded_external_id(emu, ledger, tmp_path):
    body = request().to_body()
    client = client_for(emu)
    fingerprint = request_fingerprint(body, seed=5, scope=client.base_url + "/v1/videos/image2video")
    with ledger.claim(fingerprint, external_task_id="crashed-run-1", endpoint="/v1/videos/image2video",
                      base_url=client.base_url, seed=5, summary=body):
        pass  # the process "died" here: recorded, nothing sent
    result = run_image_to_video(client, request(), tmp_path / "c.mp4", ledger=ledger, seed=5)
    assert result.task.external_task_id == "crashed-run-1"
    assert len(emu.created_tasks()) == 1 and len(creates(emu)) == 1


def test_a_failed_task_is_recorded_and_a_requeue_tries_again_with_a_new_external_id(emu, ledger, tmp_path):
    emu.configure(moderation_fail_creates=1)
    with pytest.raises(KlingTaskFailed) as info:
        run_image_to_video(client_for(emu), request(), tmp_path / "f.mp4", ledger=ledger, seed=6)
    (row,) = ledger.entries()
    assert row.status == "failed" and row.task_id == info.value.task_id and "moderation" in row.last_error.lower()
    first_external = row.external_task_id
    result = run_image_to_video(client_for(emu), request(), tmp_path / "f.mp4", ledger=ledger, seed=6)
    assert result.task.task_id != info.value.task_id and result.task.external_task_id != first_external
    assert len(emu.created_tasks()) == 2


@pytest.mark.parametrize("switch, code, error, hint", [
    ("content_policy_creates", 1301, KlingPolicyError, "change them and try again"),
    ("balance_depleted_creates", 1102, KlingAccountError, "buy a pack or enable post-paid billing"),
])
def test_policy_and_balance_refusals_are_not_retried_have_a_hint_and_are_in_the_ledger(
        emu, ledger, tmp_path, switch, code, error, hint):
    emu.configure(**{switch: 3})
    with pytest.raises(error) as info:
        run_image_to_video(client_for(emu), request(), tmp_path / "p.mp4", ledger=ledger, seed=8)
    assert info.value.code == code and hint in str(info.value)
    assert len(creates(emu)) == 1 and emu.created_tasks() == []
    (row,) = ledger.entries()
    assert row.status == "refused" and f"Kling error {code}" in row.last_error and row.task_id is None
    emu.configure(**{switch: 0})
    result = run_image_to_video(client_for(emu), request(), tmp_path / "p.mp4", ledger=ledger, seed=8)
    assert result.task.external_task_id == row.external_task_id and len(emu.created_tasks()) == 1


def test_client_read_timeout_on_create_finds_the_task_the_slow_request_made(emu, ledger, tmp_path):
    emu.configure(delay_seconds=0.6)  # every answer late; the create still makes its task at ~0.6 s
    slow_start = RetryPolicy(attempts=5, base_delay=1.0, max_delay=1.0, jitter=0.0)
    client = client_for(emu, retry=slow_start, timeout=(2.0, 0.3))
    done: dict = {}

    def job():
        try:
            done["result"] = run_image_to_video(client, request(), tmp_path / "slow.mp4", ledger=ledger, seed=9)
        except BaseException as exc:  # pragma: no cover - reported below
            done["error"] = exc

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 5
    while not creates(emu) and time.monotonic() < deadline:
        time.sleep(0.01)
    emu.configure(delay_seconds=0)  # the network recovers while the client backs off
    worker.join(30)
    assert "error" not in done, done.get("error")
    assert len(emu.created_tasks()) == 1 and len(creates(emu)) == 1  # looked up, not sent again
    assert done["result"].task.task_id == emu.created_tasks()[0]["task_id"]


def test_client_read_timeout_on_polls_is_retried(emu, tmp_path):
    client = client_for(emu, timeout=(2.0, 0.3))
    task = client.create_image_to_video(request())
    emu.configure(delay_seconds=1.0)
    polls_before = len(emu.requests)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("task", client.wait(task.task_id)))
    worker.start()
    deadline = time.monotonic() + 5
    while len(emu.requests) <= polls_before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # at least one poll has timed out by now
    emu.configure(delay_seconds=0)
    worker.join(30)
    assert result["task"].status == "succeed" and len(emu.created_tasks()) == 1


def test_a_resent_create_refused_as_duplicate_resolves_to_the_task_already_made(emu, monkeypatch):
    emu.configure(delay_seconds=0.6)
    client = client_for(emu, retry=RetryPolicy(attempts=5, base_delay=0.5, max_delay=0.5, jitter=0.0),
                        timeout=(2.0, 0.3))
    real_find = client.find_task
    lookups = []

    def lagging_find(*args, **kwargs):  # the first look-up misses it (as an eventually consistent list can)
        lookups.append(args)
        if len(lookups) == 1:
            emu.configure(delay_seconds=0)
            return None
        return real_find(*args, **kwargs)

    monkeypatch.setattr(client, "find_task", lagging_find)
    task = client.create_image_to_video(request(external_task_id="dup-after-timeout"))
    assert len(creates(emu)) == 2 and len(emu.created_tasks()) == 1
    assert task.task_id == emu.created_tasks()[0]["task_id"]


def test_same_submission_from_two_threads_creates_one_task(emu, ledger, tmp_path):
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        run_image_to_video(client_for(emu), request(), tmp_path / f"th{i}.mp4", ledger=ledger, seed=10)))
        for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and results[0].task.task_id == results[1].task.task_id
    assert len(emu.created_tasks()) == 1


PROCESS_JOB = """
import json, sys
from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.generation.life import run_image_to_video
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.request import ImageToVideoRequest
url, key, ledger_path, image_path, out = sys.argv[1:6]
client = KlingClient(Credentials(api_key=Secret(key), source="test"), url)
request = ImageToVideoRequest(model_name="kling-v2-5-turbo", image=open(image_path).read(), prompt="two processes")
result = run_image_to_video(client, request, out, ledger=TaskLedger(ledger_path), seed=11)
print(json.dumps({"task_id": result.task.task_id}))
"""


def test_same_submission_from_two_processes_creates_one_task(emu, ledger, tmp_path):
    emu.configure(delay_seconds=0.3)  # a slow create, so both processes are inside it together
    image = tmp_path / "image.b64"
    image.write_text(IMAGE)
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS_JOB, emu.url, API_KEY, str(ledger.path), str(image),
                               str(tmp_path / f"p{i}.mp4")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert not any("without it" in o[1] for o in outs), [o[1][-2000:] for o in outs]  # both used the ledger
    ids = {json.loads(o[0])["task_id"] for o in outs}
    assert len(ids) == 1 and len(emu.created_tasks()) == 1 and len(creates(emu)) == 1


def test_the_ledger_never_holds_a_key_or_token(emu, ledger, tmp_path):
    jwt_creds = Credentials(access_key=Secret(ACCESS_KEY), secret_key=Secret(SECRET_KEY), source="test")
    run_image_to_video(client_for(emu), request(), tmp_path / "k1.mp4", ledger=ledger, seed=12)
    run_image_to_video(client_for(emu, jwt_creds), request(), tmp_path / "k2.mp4", ledger=ledger, seed=13)
    token = jwt_creds.authorization_header().split()[1]
    bad = Credentials(api_key=Secret("wrong-key-must-not-be-stored"), source="test")
    with pytest.raises(Exception):
        run_image_to_video(client_for(emu, bad), request(), tmp_path / "k3.mp4", ledger=ledger, seed=14)
    with sqlite3.connect(ledger.path) as conn:  # the WAL is folded in, so the bytes below are everything
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(conn.iterdump())
    raw = b"".join(p.read_bytes() for p in ledger.path.parent.iterdir() if p.is_file())
    assert len(ledger.entries()) == 3 and "Kling error 1000" in dump
    for secret in (API_KEY, ACCESS_KEY, SECRET_KEY, token, "wrong-key-must-not-be-stored"):
        assert secret not in dump and secret.encode() not in raw
    assert oct(ledger.path.stat().st_mode & 0o777) == "0o600"


def test_cli_tasks_lists_the_ledger_and_image2video_uses_it(emu, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    start = tmp_path / "start.png"
    import base64
    start.write_bytes(base64.b64decode(IMAGE))
    path = tmp_path / "cli" / "ledger.sqlite3"
    common = ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"), "--ledger", str(path)]
    for _ in range(2):
        assert cli.main([*common, "image2video", "--image", str(start), "--seed", "3",
                         "--out", str(tmp_path / "cli.mp4")]) == 0
    assert len(emu.created_tasks()) == 1
    capsys.readouterr()
    assert cli.main([*common, "tasks"]) == 0
    printed = capsys.readouterr()
    out = printed.out
    assert "# 1 units deducted in total (final_unit_deduction of 1 tasks in the ledger)" in printed.err
    assert TaskLedger(path).total_units() == (1.0, 1)  # kling-v2-5-turbo std 5 s: 1 emulator unit
    task_id = emu.created_tasks()[0]["task_id"]
    assert task_id in out and "succeed" in out and str(tmp_path / "cli.mp4") in out
    assert cli.main([*common, "tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["task_id"] == task_id and rows[0]["seed"] == "3" and "owner" not in rows[0]
    assert default_cli_ledger_path({"XDG_CACHE_HOME": "/c"}) == Path("/c/kling/ledger.sqlite3")
    assert default_cli_ledger_path({"HOME": "/h", "KLING_LEDGER": "/x.db"}) == Path("/x.db")


def test_an_earlier_runs_create_refused_as_duplicate_on_requeue_resolves_to_its_task(emu, ledger, tmp_path,
                                                                                    monkeypatch):
    client = client_for(emu)
    body = request().to_body()
    fingerprint = request_fingerprint(body, seed=15, scope=client.base_url + "/v1/videos/image2video")
    with ledger.claim(fingerprint, external_task_id="slow-create-1", endpoint="/v1/videos/image2video",
                      base_url=client.base_url, seed=15, summary=body):
        made = client.create_task("/v1/videos/image2video", {**body, "external_task_id": "slow-create-1"})
        # ...and this run never heard back (its answer was late, it gave up): the row stays "creating"
    real_find, calls = client.find_task, []

    def lagging_find(*args, **kwargs):  # the re-queue's look-up misses the task once
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args, **kwargs)

    monkeypatch.setattr(client, "find_task", lagging_find)
    result = run_image_to_video(client, request(), tmp_path / "late.mp4", ledger=ledger, seed=15)
    assert result.task.task_id == made.task_id and len(emu.created_tasks()) == 1
    assert ledger.get(fingerprint).status == "succeed"


def test_a_ledger_deleted_while_in_use_is_set_up_again_and_the_lost_row_still_pays_once(emu, ledger, tmp_path):
    # The worst a lost write can do (a power loss undoing the last commits, or someone deleting the
    # file): the row is gone, and the derived external_task_id still finds the task on Kling.
    first = run_image_to_video(client_for(emu), request(), tmp_path / "a.mp4", ledger=ledger, seed=3)
    for path in ledger.path.parent.iterdir():
        path.unlink()
    assert ledger.entries() == []  # the kept connection follows the new, empty file
    again = run_image_to_video(client_for(emu), request(), tmp_path / "b.mp4", ledger=ledger, seed=3)
    assert again.task.task_id == first.task.task_id and not again.reused
    assert len(creates(emu)) == 1 and len(emu.created_tasks()) == 1
    (row,) = ledger.entries()
    assert row.status == "succeed" and row.task_id == first.task.task_id and row.video_path == str(tmp_path / "b.mp4")


KILLED_MID_CLAIM = """
import os, signal, sys
from kling_api.remote.ledger import TaskLedger
ledger = TaskLedger(sys.argv[1])
with ledger.claim("f" * 64, external_task_id="killed-1", endpoint="/v1/videos/image2video", base_url="http://x"):
    ledger.update("f" * 64, creates=1)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_commit_survives_the_process_being_killed(ledger):
    done = subprocess.run([sys.executable, "-c", KILLED_MID_CLAIM, str(ledger.path)], cwd=ROOT, timeout=60)
    assert done.returncode == -9
    row = ledger.get("f" * 64)
    assert row is not None and (row.status, row.external_task_id, row.creates) == ("creating", "killed-1", 1)


def test_a_ledger_file_replaced_under_its_wal_is_refused_rather_than_mixed(ledger, tmp_path):
    with ledger.claim("e" * 64, external_task_id="kept-1", endpoint="/v1/videos/image2video", base_url="http://x"):
        pass
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    other.replace(ledger.path)  # a backup restored, say, while the -wal and -shm of the old file stay
    with pytest.raises(LedgerUnavailable, match=r"ledger\.sqlite3-wal and ledger\.sqlite3-shm of the old file"):
        ledger.entries()
