"""The test harness itself: a real ComfyUI (core nodes only) and the emulator process wrapper."""
from __future__ import annotations

import os
import re
import struct
import sys
from pathlib import Path

import pytest

from kling_devtools import host as ch


def _tiny_save_prompt(prefix: str, size: int = 64) -> dict:
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0x3366CC}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


ROOT = Path(__file__).resolve().parents[1]


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def installed_comfyui_version(comfyui_dir: Path) -> str:
    """The version the install declares (comfyui_version.py, the module ComfyUI reports from)."""
    match = re.search(r'^__version__\s*=\s*"([0-9.]+)"', (comfyui_dir / "comfyui_version.py").read_text(), re.M)
    assert match, f"no __version__ in {comfyui_dir / 'comfyui_version.py'}"
    return match.group(1)


def oldest_supported_comfyui() -> str:
    """pyproject's ``requires-comfyui = ">=X.Y.Z"``."""
    match = re.search(r'^requires-comfyui\s*=\s*">=([0-9.]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, "pyproject.toml has no requires-comfyui"
    return match.group(1)


@pytest.fixture(scope="module")
def bare_host(comfy_install):
    """A ComfyUI of its own with no custom nodes at all (independent of the pack's state)."""
    host = ch.ComfyHost(pack_dir=None, install=comfy_install)
    problem = None
    try:
        host.start()
    except ch.HostError as e:
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield host
    host.stop()
    assert not host.base_dir.exists(), "stop() should remove the temp base directory"


# -- locating the install (no host needed) -----------------------------------------------------


def test_find_comfyui_reports_missing_install(tmp_path, monkeypatch):
    monkeypatch.delenv("COMFYUI_DIR", raising=False)
    monkeypatch.delenv("KLING_PYTHON", raising=False)
    monkeypatch.setenv("KLING_HOST_ROOT", str(tmp_path))
    with pytest.raises(ch.HostNotInstalled, match="scripts/setup_host.sh"):
        ch.find_comfyui()
    (tmp_path / "comfyui_dir").write_text(str(tmp_path / "nowhere"))
    with pytest.raises(ch.HostNotInstalled, match="no ComfyUI main.py"):
        ch.find_comfyui()


def test_find_comfyui_env_overrides(tmp_path, monkeypatch):
    (tmp_path / "main.py").write_text("")
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path))
    monkeypatch.setenv("KLING_PYTHON", sys.executable)
    install = ch.find_comfyui()
    assert install.comfyui_dir == tmp_path.resolve() and install.python == sys.executable
    comfy_dir, python = install  # also a plain tuple
    assert comfy_dir == tmp_path.resolve()


def test_boot_failure_carries_the_log_tail(tmp_path):
    fake = tmp_path / "comfy"
    fake.mkdir()
    (fake / "main.py").write_text("import sys\nprint('fake comfy says: broken on purpose')\nsys.exit(3)\n")
    host = ch.ComfyHost(pack_dir=None, install=ch.ComfyInstall(fake, sys.executable), boot_timeout=10)
    with pytest.raises(ch.HostError, match=r"(?s)exited with code 3.*broken on purpose"):
        host.start()
    assert not host.running and not host.base_dir.exists()


def test_ws_binary_frames_are_decoded():
    node = b"12"
    text_frame = struct.pack(">I", 3) + struct.pack(">I", len(node)) + node + "Kling: processing 40%".encode()
    msg = ch.WSCollector._decode_binary(text_frame)
    assert msg == {"type": "progress_text", "binary": True, "event": 3, "size": len(text_frame) - 4,
                   "node": "12", "text": "Kling: processing 40%"}
    preview = ch.WSCollector._decode_binary(struct.pack(">I", 1) + b"\x00" * 10)
    assert preview["type"] == "preview_image" and preview["size"] == 10


# -- a real ComfyUI -------------------------------------------------------------------------------


@pytest.mark.host
def test_core_nodes_registered(bare_host):
    info = bare_host.object_info()
    for node in ("LoadImage", "CreateVideo", "SaveVideo", "GetVideoComponents", "LoadVideo"):
        assert node in info, node
    assert bare_host.object_info("SaveVideo")["SaveVideo"]["output_node"] is True
    running = bare_host.system_stats()["system"]["comfyui_version"]  # any supported ComfyUI (COMFYUI_DIR)
    assert running == installed_comfyui_version(bare_host.install.comfyui_dir)
    assert version_tuple(running) >= version_tuple(oldest_supported_comfyui()), running
    assert bare_host.import_failures() == []  # nothing in custom_nodes/
    assert bare_host.boot_seconds is not None and bare_host.boot_seconds < 60


@pytest.mark.host
def test_core_workflow_writes_png(bare_host):
    with bare_host.ws_messages() as ws:
        prompt_id = bare_host.queue(_tiny_save_prompt("harness"))
        entry = bare_host.wait(prompt_id, timeout=60)
        done = ws.wait_done(prompt_id, timeout=10)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert done["type"] == "execution_success"
    assert any(m["type"] == "executed" and m["data"]["node"] == "2" for m in ws.for_prompt(prompt_id))
    files = bare_host.output_files(entry, node_id="2")
    assert len(files) == 1 and files[0].parent == bare_host.output_dir
    png = files[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 64)  # IHDR width, height
    assert bare_host.view(files[0].name) == png
    assert bare_host.queue_remaining() == 0


@pytest.mark.host
def test_ws_collects_progress_text(bare_host):
    """Core GetImageSize calls PromptServer.send_progress_text: the binary frame reaches the collector."""
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 32, "batch_size": 2, "color": 0}},
        "3": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "EmptyImage",
              "inputs": {"width": ["3", 0], "height": ["3", 1], "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "sized"}},
    }
    with bare_host.ws_messages() as ws:
        prompt_id = bare_host.queue(prompt)
        bare_host.wait(prompt_id, timeout=60)
        ws.wait_done(prompt_id, timeout=10)
        texts = ws.progress_texts("3")
    assert texts == ["width: 48, height: 32\n batch size: 2"]


@pytest.mark.host
def test_invalid_prompt_gives_node_errors(bare_host):
    bad = _tiny_save_prompt("bad")
    bad["1"]["inputs"]["width"] = "not a number"
    with pytest.raises(ch.PromptRejected) as exc:
        bare_host.queue(bad)
    err = exc.value
    assert err.status == 400
    assert err.error["type"] == "prompt_outputs_failed_validation"
    assert err.node_errors["1"]["class_type"] == "EmptyImage"
    assert err.node_errors["1"]["errors"][0]["extra_info"]["input_name"] == "width"

    # An unknown node type is refused before any input is looked at, with no node_errors: the error
    # itself names the node. ComfyUI 0.12.0 renamed its type invalid_prompt -> missing_node_type and
    # added extra_info naming the node (ComfyUI PR #12194, commit 32621c6a, first in v0.12.0).
    with pytest.raises(ch.PromptRejected) as exc:
        bare_host.queue({"1": {"class_type": "NoSuchNode", "inputs": {}}})
    err = exc.value
    assert err.status == 400
    assert err.error["details"] == "Node ID '#1'" and "NoSuchNode" in err.error["message"], err.error
    running = version_tuple(bare_host.system_stats()["system"]["comfyui_version"])
    if running >= (0, 12, 0):
        assert err.error["type"] == "missing_node_type", err.error
        assert err.error["extra_info"]["node_id"] == "1", err.error
        assert err.error["extra_info"]["class_type"] == "NoSuchNode", err.error
    else:
        assert err.error["type"] == "invalid_prompt", err.error


@pytest.mark.host
def test_interrupt_on_idle_server(bare_host):
    bare_host.interrupt()
    bare_host.interrupt(prompt_id="not-running")
    assert bare_host.queue_state() == {"queue_running": [], "queue_pending": []}
    assert bare_host.running_prompt_ids() == []
    # the server still works afterwards
    entry = bare_host.run(_tiny_save_prompt("after_interrupt"), timeout=60)
    assert entry["status"]["status_str"] == "success"


@pytest.mark.host
def test_upload_image(bare_host, tmp_path):
    from PIL import Image
    src = tmp_path / "upload me.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(src)
    answer = bare_host.upload_image(src)
    assert answer["type"] == "input" and answer["subfolder"] == ""
    assert (bare_host.input_dir / answer["name"]).read_bytes() == src.read_bytes()
    info = bare_host.object_info("LoadImage")["LoadImage"]
    assert answer["name"] in info["input"]["required"]["image"][0]


@pytest.mark.host
def test_session_host_links_the_pack(comfy_host):
    link = comfy_host.pack_link
    assert link.is_symlink() and link.resolve() == ch.REPO_ROOT
    environ = Path(f"/proc/{comfy_host.pid}/environ").read_bytes().split(b"\0")
    assert any(v.startswith(b"KLING_API_BASE=http://127.0.0.1:") for v in environ)
    assert comfy_host.object_info("LoadImage")  # core nodes are still there with the pack loaded


# -- the emulator process wrapper -----------------------------------------------------------------


def test_emulator_process_lifecycle():
    with ch.EmulatorProcess(api_key="harness-key") as emu:
        assert emu.running and emu.url.startswith("http://127.0.0.1:")
        assert emu.requests() == []
        r = ch.http_request("GET", emu.url + "/v1/videos/image2video/nope",
                            headers={"Authorization": "Bearer wrong-key"})
        assert r.status in (401, 403)
        recorded = emu.requests()
        assert len(recorded) == 1 and recorded[0]["path"].endswith("/nope")
        emu.set_config(processing_seconds=0.25)
        assert emu.config()["processing_seconds"] == 0.25
        with pytest.raises(ch.HostError, match="400"):
            emu.set_config({"no_such_switch": 1})
        emu.reset()
        assert emu.requests() == [] and emu.config()["processing_seconds"] != 0.25
        log_path = emu.log_path
        assert "listening" in emu.log_text()
    assert not emu.running and emu.proc.returncode is not None
    assert not log_path.exists()


def test_emulator_boot_failure_carries_the_log_tail(tmp_path):
    (tmp_path / "broken_emulator.py").write_text("raise SystemExit('emulator broken on purpose')\n")
    emu = ch.EmulatorProcess(module="broken_emulator", cwd=tmp_path, boot_timeout=10)
    with pytest.raises(ch.HostError, match="(?s)exited with code 1.*broken on purpose"):
        emu.start()
    assert not emu.running
    if os.environ.get("KLING_KEEP_HOST_DIR") != "1":
        assert not emu.log_path.exists()
