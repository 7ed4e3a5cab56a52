"""The Kling emulator over real HTTP on loopback: auth, lifecycle and queries, recording, the control
endpoint and the command line. The video, validation and faults are in test_emulator_video.py,
test_emulator_validation.py and test_emulator_faults.py; the other endpoints in test_emulator_endpoints.py.

Videos are kept tiny (max_height 128) and the lifecycle short, so each file runs in seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

from emulator_http import (ACCESS_KEY, API_KEY, AUTH, ENDPOINT, SECRET_KEY, assert_error, body, clean,  # noqa: F401
                           create, created_ok, emu, get, jwt_token)
from kling_api.emulator import DEFAULT_API_KEY, Emulator
from kling_api.emulator.faults import settings_from_env

ROOT = Path(__file__).resolve().parents[1]


# -- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize("header, code", [
    (None, 1001),
    ("", 1001),
    ("Token test-key", 1002),
    ("Bearer", 1002),
    ("Bearer  test-key", 1002),
    ("bearer test-key", 1002),
    ("Bearer wrong-key", 1000),
    ("Bearer " + "x.y.z", 1000),
])
def test_auth_header_codes(emu, header, code):
    headers = {} if header is None else {"Authorization": header}
    r = requests.get(emu.url + ENDPOINT, headers=headers, timeout=10)
    assert_error(r, 401, code)


# Claims as a function of the time the test runs (not of collection: a long suite reaches them much later).
@pytest.mark.parametrize("claims_at, code", [
    (lambda now: {}, 0),
    (lambda now: {"_secret": "another-secret-also-long-enough-for-hs256"}, 1000),
    (lambda now: {"iss": "unknown-access-key"}, 1000),
    (lambda now: {"exp": None}, 1000),
    (lambda now: {"nbf": now + 600}, 1003),
    (lambda now: {"exp": now - 60, "nbf": now - 1900}, 1004),
], ids=["valid", "wrong-secret", "unknown-issuer", "no-exp", "not-yet-valid", "expired"])
def test_auth_jwt_codes(emu, claims_at, code):
    claims = claims_at(int(time.time()))
    r = requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {jwt_token(**claims)}"}, timeout=10)
    if code == 0:
        assert r.status_code == 200 and r.json()["code"] == 0 and r.json()["data"] == []
    else:
        assert_error(r, 401, code)


def test_auth_refuses_unsigned_jwt(emu):
    token = jwt.encode({"iss": ACCESS_KEY, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert_error(requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {token}"}, timeout=10),
                 401, 1000)


def test_default_key_when_none_configured():
    with Emulator() as fresh:
        assert requests.get(fresh.url + ENDPOINT, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                            timeout=10).json()["code"] == 0
        assert "emulator-key" in fresh.auth.describe()
    with Emulator(access_keys={"a": "s3cret"}) as jwt_only:
        assert "s3cret" not in jwt_only.auth.describe()
        assert_error(requests.get(jwt_only.url + ENDPOINT, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                                  timeout=10), 401, 1000)


# -- lifecycle and queries -----------------------------------------------------------------
def test_lifecycle_and_task_object(emu):
    r = create(emu, body(external_task_id="ext-1"))
    assert r.status_code == 200
    envelope = r.json()
    assert envelope["code"] == 0 and envelope["message"] == "SUCCEED" and envelope["request_id"]
    data = envelope["data"]
    assert data["task_id"].isdigit() and len(data["task_id"]) >= 18
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "ext-1"}
    assert isinstance(data["created_at"], int) and data["created_at"] > 1_600_000_000_000
    assert data["updated_at"] == data["created_at"]

    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        polled = get(emu, data["task_id"]).json()["data"]
        if not seen or seen[-1] != polled["task_status"]:
            seen.append(polled["task_status"])
        if polled["task_status"] in ("succeed", "failed"):
            break
        time.sleep(0.01)
    assert seen[-2:] == ["processing", "succeed"] and set(seen) <= {"submitted", "processing", "succeed"}
    assert polled["task_status_msg"] == ""
    assert polled["final_unit_deduction"] == "1"
    assert polled["updated_at"] > polled["created_at"]
    video = polled["task_result"]["videos"][0]
    assert video["duration"] == "5" and video["id"]
    assert video["url"] == f"{emu.url}/_files/{data['task_id']}.mp4"

    by_external = get(emu, "ext-1").json()["data"]
    assert by_external["task_id"] == data["task_id"]
    assert emu.created_tasks()[0]["task_id"] == data["task_id"]


def test_task_result_absent_before_success(emu):
    emu.configure(submitted_seconds=5)
    task_id = created_ok(emu, body())
    data = get(emu, task_id).json()["data"]
    assert data["task_status"] == "submitted" and "task_result" not in data
    assert data["final_unit_deduction"] == "0"


def test_list_newest_first_paging_and_filter(emu):
    ids = [created_ok(emu, body(external_task_id=f"list-{i}")) for i in range(3)]
    page = requests.get(emu.url + ENDPOINT, params={"pageNum": 1, "pageSize": 2}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in page["data"]] == [ids[2], ids[1]]
    page2 = requests.get(emu.url + ENDPOINT, params={"pageNum": 2, "pageSize": 2}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in page2["data"]] == [ids[0]]
    one = requests.get(emu.url + ENDPOINT, params={"external_task_id": "list-1"}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in one["data"]] == [ids[1]]
    assert_error(requests.get(emu.url + ENDPOINT, params={"pageSize": 501}, headers=AUTH, timeout=10), 400, 1201,
                 "pageSize(501) must be in [1, 500]")
    assert_error(requests.get(emu.url + ENDPOINT, params={"pageNum": 0}, headers=AUTH, timeout=10), 400, 1201)


def test_unknown_task_and_wrong_method(emu):
    assert_error(get(emu, "123456789012345678"), 404, 1203)
    assert_error(requests.put(emu.url + ENDPOINT, json={}, headers=AUTH, timeout=10), 404, 1202)
    assert_error(requests.post(emu.url + ENDPOINT + "/123", json={}, headers=AUTH, timeout=10), 404, 1202)


def test_duplicate_external_task_id(emu):
    created_ok(emu, body(external_task_id="dup"))
    assert_error(create(emu, body(external_task_id="dup")), 400, 1201, "external_task_id(dup) already exists")
    assert len(emu.created_tasks()) == 1


# -- recording and the control endpoint ----------------------------------------------------
def test_requests_recorded_with_auth_redacted(emu):
    create(emu, body(prompt="recorded"))
    requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {jwt_token()}"}, timeout=10)
    recorded = emu.requests
    assert [(r["method"], r["path"].split("?")[0]) for r in recorded] == [("POST", ENDPOINT), ("GET", ENDPOINT)]
    assert recorded[0]["json"]["prompt"] == "recorded"
    assert all(r["headers"]["Authorization"] == "Bearer ***" for r in recorded)
    over_http = requests.get(emu.url + "/_emulator/requests", timeout=10).json()["requests"]
    assert len(over_http) == 2 and API_KEY not in json.dumps(over_http) and SECRET_KEY not in json.dumps(over_http)
    assert requests.post(emu.url + "/_emulator/reset", timeout=10).status_code == 200
    assert emu.requests == [] and emu.created_tasks() == []


def test_control_endpoint(emu):
    r = requests.post(emu.url + "/_emulator/config", json={"rate_limit_creates": 1, "processing_seconds": "0.2"},
                      timeout=10)
    assert r.status_code == 200 and r.json()["rate_limit_creates"] == 1 and r.json()["processing_seconds"] == 0.2
    assert_error(create(emu, body()), 429, 1303)
    assert requests.get(emu.url + "/_emulator/config", timeout=10).json()["rate_limit_creates"] == 0
    bad = requests.post(emu.url + "/_emulator/config", json={"no_such_switch": 1}, timeout=10)
    assert bad.status_code == 400 and "rate_limit_creates" in bad.json()["keys"]
    assert requests.post(emu.url + "/_emulator/config", json={"server_error_code": 4000},
                         timeout=10).status_code == 400
    assert requests.post(emu.url + "/_emulator/reset", timeout=10).json()["processing_seconds"] == 0.15
    task_id = created_ok(emu, body())
    listed = requests.get(emu.url + "/_emulator/tasks", timeout=10).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]
    assert emu.requests[-1]["path"] == ENDPOINT  # control calls are not recorded


def test_settings_from_env():
    env = {"KLING_EMULATOR_RATE_LIMIT_CREATES": "3", "KLING_EMULATOR_MAX_HEIGHT": "none",
           "KLING_EMULATOR_CALLBACKS": "false", "KLING_EMULATOR_DELAY_SECONDS": "0.5", "OTHER": "x"}
    assert settings_from_env(env) == {"rate_limit_creates": 3, "max_height": None, "callbacks": False,
                                      "delay_seconds": 0.5}
    with pytest.raises(TypeError):
        Emulator(no_such_switch=1)


def test_cli_in_another_process(emu):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KLING_EMULATOR_RATE_LIMIT_CREATES": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kling_api.emulator", "--port", "0", "--api-key", "cli-key",
                             "--max-height", "128", "--processing-seconds", "0.1", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert "1 configured API key(s)" in line and "cli-key" not in line
        headers = {"Authorization": "Bearer cli-key"}
        first = requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10)
        assert first.json()["code"] == 1303
        requests.post(url + "/_emulator/config", json={"balance_depleted_creates": 1}, timeout=10)
        assert requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10).json()["code"] == 1102
        assert requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10).json()["code"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
