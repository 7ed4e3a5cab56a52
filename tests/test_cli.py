"""The CLI end to end against the emulator in another process, as a user runs it."""
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kling_devtools.emulator_process import EmulatorProcess
from kling_devtools.sample_images import write_sample_images

from kling_api.media.video import probe_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with EmulatorProcess(api_key="cli-key", extra_args=["--max-height", "96"]) as emu:
        emu.ledger_cache = str(tmp_path_factory.mktemp("cli-cache"))  # the CLI's task ledger goes here
        yield emu


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory):
    """Tasks queue for 3 s and process for 5 s, so the progress ticks (once a second) several times per status,
    even when the ledger's writes after the create take seconds on a busy disk."""
    with EmulatorProcess(api_key="cli-key", extra_args=["--max-height", "96", "--submitted-seconds", "3",
                                                        "--processing-seconds", "5"]) as emu:
        emu.ledger_cache = str(tmp_path_factory.mktemp("cli-cache"))
        yield emu


def cli_env(emulator, key="cli-key"):
    return {"PATH": "/usr/bin:/bin", "KLING_API_BASE": emulator.url, "KLING_API_KEY": key, "HOME": "/nonexistent",
            "XDG_CACHE_HOME": emulator.ledger_cache}


def cli(emulator, *args, key="cli-key"):
    return subprocess.run([sys.executable, "-m", "kling_api", *args], cwd=ROOT, env=cli_env(emulator, key),
                          capture_output=True, text=True, timeout=120)


def cli_on_a_terminal(emulator, *args) -> tuple[str, str]:
    """Runs the CLI with stderr on a pseudo-terminal (as in a shell); returns (stderr as shown, stdout)."""
    main, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "kling_api", *args], cwd=ROOT, env=cli_env(emulator),
                                stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL)
    finally:
        os.close(follower)
    shown = bytearray()
    try:
        while chunk := os.read(main, 4096):
            shown += chunk
    except OSError:  # EIO: the CLI closed its end
        pass
    finally:
        os.close(main)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0, shown.decode(errors="replace")
    return shown.decode(), stdout


def test_image2video_writes_the_mp4_and_reports_progress(emulator, tmp_path):
    start, end = write_sample_images(tmp_path)
    out = tmp_path / "out.mp4"
    done = cli(emulator, "image2video", "--image", str(start), "--image-tail", str(end), "--prompt", "dawn to dusk",
               "--model", "kling-v2-5-turbo", "--mode", "pro", "--duration", "10", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["video"] == str(out) and result["task_id"] and result["video_id"]
    assert probe_video(out).frame_count == 240
    assert f"task {result['task_id']} created" in done.stderr and "Kling task done in " in done.stderr


def test_progress_off_a_terminal_is_one_plain_line_per_status_change(slow_emulator, tmp_path):
    start, _ = write_sample_images(tmp_path)
    done = cli(slow_emulator, "image2video", "--image", str(start), "--prompt", "to a log file",
               "--out", str(tmp_path / "out.mp4"))
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\033" not in done.stderr
    lines = done.stderr.splitlines()
    task_id = json.loads(done.stdout)["task_id"]
    after_create = lines[lines.index(f"task {task_id} created") + 1:]  # the cost estimate comes before
    assert all(line.startswith("Kling task ") for line in after_create), lines
    statuses = [line.split(" ")[2] for line in after_create]
    # one line per status, in order, although the wait lasted several one-second ticks
    assert statuses in (["submitted", "processing", "done"], ["processing", "done"]), lines
    assert int(re.search(r"done in (\d+)s", after_create[-1]).group(1)) >= 3, lines


def test_progress_on_a_terminal_rewrites_one_line_in_place(slow_emulator, tmp_path):
    start, _ = write_sample_images(tmp_path)
    shown, stdout = cli_on_a_terminal(slow_emulator, "image2video", "--image", str(start), "--prompt", "to a terminal",
                                      "--out", str(tmp_path / "out.mp4"))
    task_id = json.loads(stdout)["task_id"]
    # the terminal shows "\n" as "\r\n"; each update returns to the line's start and clears it
    before, *updates = shown.split("\r\033[K")
    assert before.endswith(f"task {task_id} created\r\n") and "\033" not in before  # after the cost estimate
    assert updates[-1].startswith("Kling task done in ") and updates[-1].endswith("\r\n")
    assert all("\n" not in update for update in updates[:-1])  # one line, rewritten
    processing = [u for u in updates if u.startswith("Kling task processing")]
    assert len(processing) >= 2 and len(set(processing)) >= 2  # ticks within one status: elapsed time moves


def test_refused_combination_exits_non_zero_with_one_line_and_sends_nothing(emulator, tmp_path):
    emulator.reset()
    start, end = write_sample_images(tmp_path)
    done = cli(emulator, "image2video", "--image", str(start), "--image-tail", str(end), "--mode", "std",
               "--duration", "5", "--out", str(tmp_path / "x.mp4"))
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == ["error: image_tail needs mode=pro and duration=10 on kling-v2-5-turbo; got std/5"]
    assert emulator.requests() == []


def test_bad_key_and_missing_file_are_one_line_errors(emulator, tmp_path):
    start, _ = write_sample_images(tmp_path)
    bad = cli(emulator, "image2video", "--image", str(start), "--out", str(tmp_path / "x.mp4"), key="nope")
    assert bad.returncode == 1 and "Kling error 1000" in bad.stderr and "nope" not in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = cli(emulator, "image2video", "--image", str(tmp_path / "absent.png"), "--out", str(tmp_path / "x.mp4"))
    assert missing.returncode == 1 and "absent.png" in missing.stderr and "Traceback" not in missing.stderr


def test_extend_continues_a_kling_v1_6_video_and_refuses_a_v2_one_before_sending(emulator, tmp_path):
    start, _ = write_sample_images(tmp_path)
    made = {}
    for model in ("kling-v1-6", "kling-v2-5-turbo"):
        done = cli(emulator, "image2video", "--image", str(start), "--model", model, "--prompt", model,
                   "--out", str(tmp_path / f"{model}.mp4"))
        assert done.returncode == 0, done.stderr
        made[model] = json.loads(done.stdout)
    out = tmp_path / "longer.mp4"
    done = cli(emulator, "extend", made["kling-v1-6"]["video_id"], "--prompt", "and then", "--out", str(out))
    assert done.returncode == 0, done.stderr
    source, longer = probe_video(tmp_path / "kling-v1-6.mp4"), probe_video(out)
    assert longer.frame_count == source.frame_count + round(4.5 * source.fps)
    extended = json.loads(done.stdout)["task_id"]
    done = cli(emulator, "wait", extended, "--endpoint", "/v1/videos/video-extend", "--out", str(tmp_path / "again.mp4"))
    assert done.returncode == 0, done.stderr
    emulator.reset()
    done = cli(emulator, "extend", made["kling-v2-5-turbo"]["video_id"], "--out", str(tmp_path / "no.mp4"))
    assert done.returncode == 2
    assert "was made by kling-v2-5-turbo" in done.stderr and emulator.requests() == []
