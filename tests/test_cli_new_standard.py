"""The command line and ``batch`` on Kling's new design standard, against the emulator as a user runs them:
``--resolution`` for every model (a legacy model's mode), ``--sound``, ``--image-tail`` refused where the page
forbids it, an access key + secret key refused before anything is sent, a manifest of new-API rows resumed
by a rerun without paying twice, and two machines sharing one task through its derived external_task_id."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kling_devtools.library_emulator import fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.cli import commands as cli
from kling_api.media.video import probe_video
from kling_api.remote.codecs import API_KEY_CONSOLE
from kling_api.rules.endpoints import IMAGE2VIDEO, NEW_QUERY_PATH
from test_farm import finished, wait_for

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "cli-new-standard-key-0123456789"
ACCESS, SECRET = "cli-new-standard-ak", "cli-new-standard-sk-0123456789abcdef"


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY, access_keys={ACCESS: SECRET}) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_BASE", "KLING_RATE_CARD", "KLING_MAX_UNITS",
                 "KLING_MAX_UNITS_PER_DAY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    return write_sample_images(tmp_path)


def common(emu, tmp_path: Path, ledger: str = "ledger") -> list[str]:
    return ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"),
            "--ledger", str(tmp_path / ledger / "ledger.sqlite3")]


def creates(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"] != NEW_QUERY_PATH]


def run_cli(emu, tmp_path, capsys, *args: str, ledger: str = "ledger") -> tuple[int, str, str]:
    code = cli.main([*common(emu, tmp_path, ledger), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_turbo_at_1080p_goes_to_its_path_with_the_resolution_and_always_has_sound(emu, tmp_path, images, capsys):
    start, _ = images
    out = tmp_path / "turbo.mp4"
    code, stdout, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--prompt", "a boat",
                                "--model", "kling-3.0-turbo", "--resolution", "1080p", "--duration", "3",
                                "--out", str(out))
    assert code == 0, err
    (sent,) = creates(emu)
    assert sent["path"] == "/image-to-video/kling-3.0-turbo" and "model_name" not in sent["json"]
    assert sent["json"]["settings"]["resolution"] == "1080p" and sent["json"]["settings"]["duration"] == 3
    assert "Estimated cost:" in err and "price table" in err  # known before the first run, from Kling's table
    assert json.loads(stdout)["video"] == str(out)
    info = probe_video(out)
    assert info.duration == pytest.approx(3, abs=0.1) and info.has_audio  # Turbo always has sound


def test_resolution_means_the_mode_on_a_legacy_model_and_a_disagreeing_pair_is_refused(emu, tmp_path, images,
                                                                                      capsys):
    start, _ = images
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model",
                           "kling-v2-5-turbo", "--resolution", "1080p", "--duration", "5",
                           "--out", str(tmp_path / "legacy.mp4"))
    assert code == 0, err
    (sent,) = creates(emu)
    assert sent["path"] == IMAGE2VIDEO.create_path and sent["json"]["mode"] == "pro"
    assert sent["json"]["model_name"] == "kling-v2-5-turbo" and "resolution" not in sent["json"]
    emu.reset()
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model",
                           "kling-v2-5-turbo", "--mode", "std", "--resolution", "1080p",
                           "--out", str(tmp_path / "no.mp4"))
    assert code != 0 and "--resolution" in err and "720p" in err and emu.requests == []


def test_sound_on_is_native_audio_and_off_is_silent_on_kling_3_0(emu, tmp_path, images, capsys):
    start, _ = images
    for sound, audible in (("on", True), ("off", False)):
        emu.reset()
        out = tmp_path / f"sound-{sound}.mp4"
        code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model", "kling-3.0",
                               "--resolution", "720p", "--duration", "3", "--sound", sound, "--out", str(out))
        assert code == 0, err
        (sent,) = creates(emu)
        assert sent["path"] == "/image-to-video/kling-3.0"
        assert probe_video(out).has_audio is audible, (sound, sent["json"])


@pytest.mark.parametrize(("model", "resolution", "field"), [
    ("kling-3.0-turbo", "1080p", "image_tail"),  # never on Turbo
    ("kling-2.6", "720p", "image_tail"),  # 1080p only on 2.6
])
def test_an_end_frame_the_page_forbids_is_refused_before_anything_is_sent(emu, tmp_path, images, capsys, model,
                                                                          resolution, field):
    start, end = images
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--image-tail", str(end),
                           "--model", model, "--resolution", resolution, "--duration", "5",
                           "--out", str(tmp_path / "no.mp4"))
    assert code != 0 and field in err and model in err, err
    assert emu.requests == []


def test_an_access_key_and_secret_key_are_refused_for_a_new_api_model_and_say_where_to_get_a_key(
        emu, tmp_path, images, capsys, monkeypatch):
    monkeypatch.delenv("KLING_API_KEY")
    monkeypatch.setenv("KLING_ACCESS_KEY", ACCESS)
    monkeypatch.setenv("KLING_SECRET_KEY", SECRET)
    start, _ = images
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model", "kling-2.6",
                           "--resolution", "720p", "--out", str(tmp_path / "no.mp4"))
    assert code != 0 and "API key" in err and API_KEY_CONSOLE in err, err
    assert SECRET not in err and emu.requests == []
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model", "kling-v2-6",
                           "--mode", "std", "--out", str(tmp_path / "legacy.mp4"))
    assert code == 0, err  # the same keys still reach the legacy API


def test_a_manifest_of_new_api_rows_runs_and_a_rerun_pays_nothing(emu, tmp_path, images, capsys):
    start, _ = images
    manifest = tmp_path / "jobs.jsonl"
    rows = [{"image": start.name, "prompt": "turbo", "model": "kling-3.0-turbo", "resolution": "720p",
             "duration": 3},
            {"image": start.name, "prompt": "two six", "model": "kling-2.6", "resolution": "1080p", "duration": 5,
             "sound": "on"},
            {"image": start.name, "prompt": "legacy", "model": "kling-v2-5-turbo", "resolution": "1080p"}]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out_dir = tmp_path / "videos"
    code, _, err = run_cli(emu, tmp_path, capsys, "batch", str(manifest), "--out-dir", str(out_dir))
    assert code == 0, err
    sent = sorted(creates(emu), key=lambda r: r["path"])
    assert [r["path"] for r in sent] == ["/image-to-video/kling-2.6", "/image-to-video/kling-3.0-turbo",
                                         IMAGE2VIDEO.create_path]
    assert sent[0]["json"]["settings"]["resolution"] == "1080p" and sent[2]["json"]["mode"] == "pro"
    assert sorted(p.name for p in out_dir.glob("*.mp4")) == ["row-0001.mp4", "row-0002.mp4", "row-0003.mp4"]
    made = len(emu.created_tasks())
    before = len(creates(emu))
    for video in out_dir.glob("*.mp4"):
        video.unlink()  # the videos are gone: the rerun downloads them again from the recorded tasks
    code, _, err = run_cli(emu, tmp_path, capsys, "batch", str(manifest), "--out-dir", str(out_dir))
    assert code == 0, err
    assert len(creates(emu)) == before and len(emu.created_tasks()) == made  # nothing created, nothing paid
    assert len(list(out_dir.glob("*.mp4"))) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"image": start.name, "model": "kling-v2-5-turbo", "mode": "std",
                               "resolution": "1080p"}) + "\n")
    code, _, err = run_cli(emu, tmp_path, capsys, "batch", str(bad))
    assert code == 2 and "line 1: resolution:" in err and len(creates(emu)) == before


def machine_cli(emu, cache: Path, image: Path, out: Path) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "KLING_API_BASE": emu.url, "KLING_API_KEY": API_KEY, "HOME": "/nonexistent",
           "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "kling_api", "image2video", "--image", str(image), "--prompt",
                             "one task for the farm", "--model", "kling-3.0-turbo", "--resolution", "720p",
                             "--duration", "3", "--seed", "7", "--out", str(out)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def test_a_new_api_task_created_on_one_machine_is_finished_on_another_through_external_task_ids(emu, tmp_path):
    """Machine A is killed after its create; machine B (its own ledger) finds the task by the derived
    external_task_id at GET /tasks and downloads it: one task, one payment."""
    emu.configure(processing_seconds=3.0)
    image, _ = write_sample_images(tmp_path)
    a = machine_cli(emu, tmp_path / "a", image, tmp_path / "a.mp4")
    try:
        wait_for(lambda: creates(emu))
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.communicate(timeout=30)
    (task,) = emu.created_tasks()
    result = finished(machine_cli(emu, tmp_path / "b", image, tmp_path / "b.mp4"))
    assert result["task_id"] == task["id"] and len(creates(emu)) == 1 and len(emu.created_tasks()) == 1
    looked_up = [r["path"] for r in emu.requests if r["method"] == "GET" and "external_task_ids=" in r["path"]]
    assert looked_up, "machine B found the task by its external_task_id"
    assert probe_video(tmp_path / "b.mp4").duration == pytest.approx(3, abs=0.1)
