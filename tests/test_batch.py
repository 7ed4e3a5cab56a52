"""``python -m kling_api batch``: every row checked before anything is sent, rows run concurrently with
1303 waited out, a failed and a refused row reported in the results, a rerun (here or on another machine,
or after Ctrl-C) resumes and never pays twice, and progress is a bar on a terminal, lines elsewhere."""
from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from kling_devtools.library_emulator import fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.cli import batch
from kling_api.cli import commands as cli
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.endpoints import IMAGE2VIDEO

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "batch-test-key-0123456789"


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_BASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    return write_sample_images(tmp_path)


def creates(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"] == IMAGE2VIDEO.create_path]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def common(emu, tmp_path: Path, ledger: str = "ledger") -> list[str]:
    return ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"),
            "--ledger", str(tmp_path / ledger / "ledger.sqlite3")]


def results_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_row_is_checked_before_anything_is_sent_and_bad_rows_are_named(emu, tmp_path, images, capsys):
    start, _ = images
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"image": start.name, "prompt": "fine"},
        {"image": "missing.png"},
        {"image": start.name, "duration": 7},
        {"image": start.name, "colour": "red"},
        "{not json",
        "",
        {"image": start.name, "image_tail": start.name, "mode": "std", "duration": "5"},
        {"image": start.name, "out": "row-0001.mp4"},
    ])
    assert cli.main([*common(emu, tmp_path), "batch", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "nothing was sent" in err and "7 problem(s)" not in err
    expected = ["line 2: image:", "line 3: duration: duration='7' is not accepted",
                "line 4: colour: unknown field", "line 5: (row): not valid JSON",
                "line 7: image_tail: image_tail needs mode=pro and duration=10",
                "line 8: out:"]
    for text in expected:
        assert text in err, (text, err)
    assert "line 1:" not in err and "6 problem(s)" in err
    assert emu.requests == []  # not even a look-up
    csv_manifest = tmp_path / "jobs.csv"
    csv_manifest.write_text(f"image,model,seed\n{start.name},kling-v2-5-turbo,1\n{start.name},kling-v9,2\n")
    assert cli.main([*common(emu, tmp_path), "batch", str(csv_manifest)]) == 2
    err = capsys.readouterr().err
    assert "line 3: model: 'kling-v9' is not accepted" in err and "line 2" not in err
    assert emu.requests == []


def test_rows_run_concurrently_1303_is_waited_out_and_a_failed_and_a_refused_row_are_reported(
        emu, tmp_path, images, capsys):
    # one task at a time, each long enough that the other rows' creates surely meet it: 1303 first
    emu.configure(concurrency_limit=1, processing_seconds=4.0)
    start, end = images
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"image": start.name, "prompt": "first", "seed": 1},
        {"image": start.name, "prompt": "MODERATION_FAIL this one", "seed": 2},
        {"image": "https://unreachable.invalid/start.png", "prompt": "refused"},
        {"image": start.name, "end_image": end.name, "mode": "pro", "duration": 10, "model": "kling-v2-5-turbo"},
    ])
    code = cli.main([*common(emu, tmp_path), "batch", str(manifest), "--concurrency", "3"])
    printed = capsys.readouterr()
    assert code == 1, printed.err
    summary = json.loads(printed.out)
    results = tmp_path / "jobs-videos" / "results.jsonl"
    assert summary == {"rows": 4, "succeeded": 2, "failed": 2, "interrupted": False, "results": str(results)}
    rows = results_of(results)
    assert [r["row"] for r in rows] == [1, 2, 3, 4] and [r["line"] for r in rows] == [1, 2, 3, 4]
    tasks = {t["task_id"]: t for t in emu.created_tasks()}
    ok, failed, refused, with_tail = rows
    assert ok["status"] == "succeed" and ok["task_id"] in tasks and ok["units"] == "1" and ok["error"] == ""
    assert Path(ok["video"]) == tmp_path / "jobs-videos" / "row-0001.mp4"
    assert Path(ok["video"]).read_bytes()[4:8] == b"ftyp"
    assert failed["status"] == "failed" and tasks[failed["task_id"]]["task_status"] == "failed"
    assert "task failed" in failed["error"].lower() and failed["video"] == ""
    assert refused["status"] == "failed" and refused["task_id"] == "" and "Kling error 1201" in refused["error"]
    assert with_tail["status"] == "succeed" and Path(with_tail["video"]).is_file() and with_tail["units"]
    assert len(tasks) == 3 and len(creates(emu)) > 4  # creates answered 1303 were sent again after backoff
    lines = printed.err.splitlines()
    assert any(ln.startswith("row 1 (line 1): started | done 0/4, running ") for ln in lines), printed.err
    assert lines[-1].endswith("running 0, failed 2, elapsed " + lines[-1].split("elapsed ")[1])
    assert "done 2/4" in lines[-1] and all("\r" not in ln for ln in lines)


def test_a_rerun_here_or_on_another_machine_never_pays_again(emu, tmp_path, images, capsys):
    start, end = images
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"image,prompt,seed\n{start.name},one,1\n{end.name},two,2\n{start.name},three,3\n")
    assert cli.main([*common(emu, tmp_path, "a"), "batch", str(manifest)]) == 0
    first = results_of(tmp_path / "jobs-videos" / "results.jsonl")
    assert [r["status"] for r in first] == ["succeed"] * 3 and len(creates(emu)) == 3
    sent = len(emu.requests)
    assert cli.main([*common(emu, tmp_path, "a"), "batch", str(manifest)]) == 0
    assert [r["status"] for r in results_of(tmp_path / "jobs-videos" / "results.jsonl")] == ["reused"] * 3
    assert len(emu.requests) == sent  # this machine: its ledger has every video
    other = tmp_path / "machine-b"
    assert cli.main([*common(emu, tmp_path, "b"), "batch", str(manifest), "--out-dir", str(other),
                     "--results", str(other / "r.jsonl")]) == 0
    again = results_of(other / "r.jsonl")
    assert [r["task_id"] for r in again] == [r["task_id"] for r in first] and len(creates(emu)) == 3
    assert all(Path(r["video"]).parent == other and Path(r["video"]).is_file() for r in again)
    capsys.readouterr()


def batch_process(emu, tmp_path: Path, manifest: Path, *extra: str, stderr=subprocess.PIPE,
                  extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "KLING_API_KEY": API_KEY, "HOME": "/nonexistent", **(extra_env or {})}
    # Ctrl-C as in a terminal: a test run started in the background (nohup cmd &) ignores SIGINT, and
    # its children would inherit that.
    return subprocess.Popen([sys.executable, "-m", "kling_api", *common(emu, tmp_path), "batch", str(manifest),
                             *extra], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=stderr,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_leaves_created_tasks_resumable_and_a_rerun_creates_only_the_rest(emu, tmp_path, images):
    emu.configure(processing_seconds=12.0)  # the interrupt surely comes while both tasks run, even on a busy machine
    start, end = images
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"image": start.name, "seed": n} for n in range(3)])
    proc = batch_process(emu, tmp_path, manifest, "--concurrency", "2")
    deadline = time.monotonic() + 60
    while len(emu.created_tasks()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and json.loads(out)["interrupted"] is True
    made = {t["task_id"] for t in emu.created_tasks()}
    assert len(made) == 2 and all(t["task_status"] != "succeed" for t in emu.created_tasks())
    stopped = results_of(tmp_path / "jobs-videos" / "results.jsonl")
    assert sorted(r["status"] for r in stopped) == ["interrupted", "interrupted", "not started"]
    assert {r["task_id"] for r in stopped if r["status"] == "interrupted"} == made
    ledger_rows = TaskLedger(tmp_path / "ledger" / "ledger.sqlite3").entries()
    assert {r.task_id for r in ledger_rows} == made
    emu.configure(processing_seconds=0.2)
    rerun = batch_process(emu, tmp_path, manifest, "--concurrency", "2")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    done = results_of(tmp_path / "jobs-videos" / "results.jsonl")
    assert [r["status"] for r in done] == ["succeed"] * 3 and all(Path(r["video"]).is_file() for r in done)
    assert made < {r["task_id"] for r in done} and len(emu.created_tasks()) == 3 and len(creates(emu)) == 3


def batch_on_a_terminal(emu, tmp_path: Path, images, extra_env: dict[str, str] | None = None) -> str:
    """Two rows through ``python -m kling_api batch`` with stderr on a 100-column pseudo-terminal: what the
    terminal received, with the terminal's own CRLF line ends turned back into newlines."""
    start, _ = images
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"image": start.name, "seed": n} for n in range(2)])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    proc = batch_process(emu, tmp_path, manifest, stderr=slave, extra_env=extra_env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(out)["succeeded"] == 2
    return seen.decode(errors="replace").replace("\r\n", "\n")


def test_on_a_terminal_progress_is_a_tqdm_bar(emu, tmp_path, images):
    pytest.importorskip("tqdm", reason="the bar is tqdm's (ComfyUI's venv has it); without it, see the next test")
    text = batch_on_a_terminal(emu, tmp_path, images)
    assert "Kling batch" in text and "2/2" in text and "running 0, failed 0" in text
    assert "\r" in text  # the bar is redrawn in place
    assert "started |" not in text  # no plain lines on a terminal


def test_on_a_terminal_without_tqdm_progress_is_plain_lines(emu, tmp_path, images):
    """Where tqdm is not installed (a venv with requirements.txt only): the batch process imports a tqdm
    that raises what a missing module raises, found ahead of any installed one; the same run then
    shows one plain line per change, even on a terminal."""
    hidden = tmp_path / "no-tqdm" / "tqdm"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'tqdm\'", name="tqdm")\n')
    text = batch_on_a_terminal(emu, tmp_path, images, extra_env={"PYTHONPATH": str(hidden.parent)})
    lines = text.splitlines()
    assert "Kling batch" not in text and "\r" not in text, text  # no bar: nothing redrawn in place
    assert sum(ln.startswith("row ") and ": started | done " in ln for ln in lines) == 2, text
    assert any(ln.startswith("row ") and ": succeed: " in ln and "| done 2/2, running 0, failed 0" in ln
               for ln in lines), text


def test_without_tqdm_progress_falls_back_to_plain_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    stream = io.StringIO()
    progress = batch.BatchProgress(1, stream, bar=True)
    row = batch.BatchRow(row=1, line=3, request=None, image="", image_tail=None, fit=None, seed="0",  # type: ignore[arg-type]
                         timeout=1.0, out=Path("x.mp4"))
    progress.started(row)
    progress.finished(row, batch.RowOutcome(1, 3, "succeed", "t1", "x.mp4", "1"))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("row 1 (line 3): started | done 0/1, running 1, failed 0, elapsed 0s, remaining ?")
    assert lines[1].startswith("row 1 (line 3): succeed: x.mp4 | done 1/1, running 0, failed 0, elapsed 0s")


def test_csv_cells_may_hold_commas_and_line_breaks_and_rows_keep_their_line_numbers(tmp_path, images):
    start, _ = images
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f'Image,Negative-Prompt,prompt\n{start.name},,"dawn, then\nthe harbour"\n{start.name},blur,\n')
    first, second = batch.load_manifest(manifest)
    assert first.request.prompt == "dawn, then\nthe harbour" and first.line == 3 and first.image == str(start)
    assert second.request.negative_prompt == "blur" and second.line == 4 and second.out.name == "row-0002.mp4"
    assert second.out.parent == tmp_path / "jobs-videos" and second.seed == "0"
