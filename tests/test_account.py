"""Costs: GET /account/costs (emulator + client, throttled to one query a second) and the CLI command."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kling_devtools.library_emulator import client_for as shared_client_for, fast_emulator

from kling_api.remote import account
from kling_api.remote.client import KlingClient
from kling_api.emulator import Emulator
from kling_api.generation.life import run_image_to_video
from kling_api.rules.request import ImageToVideoRequest

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "account-test-key"


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


def client_for(emu: Emulator) -> KlingClient:
    return shared_client_for(emu, API_KEY)


def test_costs_query_sends_the_time_window_and_reads_the_packs(emu):
    emu.reset()
    costs = client_for(emu).account_costs()
    assert costs.packs and costs.packs[0].status == "online"
    assert costs.remaining == costs.packs[0].total_quantity
    sent = [r for r in emu.requests if r["path"].startswith("/account/costs")][-1]
    assert "start_time=" in sent["path"] and "end_time=" in sent["path"]


def test_remaining_units_drop_by_the_final_unit_deduction(emu, tmp_path):
    emu.reset()
    client = client_for(emu)
    before = client.account_costs().remaining
    from kling_devtools.sample_images import write_sample_images
    start, _ = write_sample_images(tmp_path)
    import base64
    image = base64.b64encode(start.read_bytes()).decode()
    result = run_image_to_video(client, ImageToVideoRequest(model_name="kling-v2-5-turbo", image=image, mode="pro",
                                                            duration="10"),
                                lambda task: tmp_path / f"{task.task_id}.mp4", timeout=60)
    assert float(result.task.final_unit_deduction) == 4
    assert client.account_costs().remaining == before - 4


def test_at_most_one_query_a_second(emu):
    emu.reset()
    client = client_for(emu)
    started = time.monotonic()
    for _ in range(3):
        client.account_costs()
    assert time.monotonic() - started >= 2.0  # three queries need at least two gaps of a second
    sleeps: list[float] = []
    clock = iter([100.0, 100.0, 100.3, 101.3]).__next__
    account._last_sent[0] = float("-inf")
    assert account.throttle(sleep=sleeps.append, clock=clock) == 0.0
    assert account.throttle(sleep=sleeps.append, clock=clock) == pytest.approx(0.7)
    assert sleeps == [pytest.approx(0.7)]


def test_cli_account_prints_the_remaining_units(emu):
    env = {"PATH": "/usr/bin:/bin", "KLING_API_BASE": emu.url, "KLING_API_KEY": API_KEY, "HOME": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "kling_api", "account"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["remaining"] > 0 and result["packs"][0]["remaining_quantity"] == result["remaining"]
