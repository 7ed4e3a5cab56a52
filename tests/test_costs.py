"""Cost estimates, the rate card, the spend guard and the balance, against the emulator (which reports
final_unit_deduction) and through the CLI as a user runs it."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kling_devtools.library_emulator import client_for, fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.costs.guard import SpendLimitExceeded, SpendLimits, balance_warning, check_spend, spend_refusal, spent_today
from kling_api.costs.pricing import UNKNOWN, PromptEstimate, estimate_cost, estimate_requests
from kling_api.costs.rates import RateCard, RateCardError, combination_for, rate_card_from_env
from kling_api.errors import KlingAccountError, KlingValidationError
from kling_api.generation.life import run_job
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.request import ImageToVideoRequest, VideoExtendRequest

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "costs-test-key"
TURBO_PRO_5 = combination_for("/v1/videos/image2video", "kling-v2-5-turbo", "pro", "5")
#: A model Kling's price table does not list: its cost is unknown until its first run.
UNPRICED = "kling-v1-6"
UNPRICED_PRO_5 = combination_for("image2video", UNPRICED, "pro", "5")


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def start_image(tmp_path_factory) -> str:
    start, _ = write_sample_images(tmp_path_factory.mktemp("pictures"))
    return base64.b64encode(start.read_bytes()).decode()


def run_turbo(emu, ledger: TaskLedger, image: str, tmp_path: Path, mode: str = "pro", seed: int = 1,
              model: str = "kling-v2-5-turbo"):
    request = ImageToVideoRequest(model_name=model, image=image, mode=mode, duration="5")
    return run_job(client_for(emu, API_KEY), request, lambda task: tmp_path / f"{task.task_id}.mp4", timeout=60,
                   ledger=ledger, seed=seed)


def write_card(path: Path, rates: list) -> Path:
    path.write_text(json.dumps({"rates": rates}))
    return path


def test_estimate_equals_the_last_deduction_and_a_batch_of_three_costs_three_times(emu, start_image, tmp_path):
    emu.reset()
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    before = estimate_cost(UNPRICED_PRO_5, ledger=ledger)
    assert before.units_per_task is None and UNKNOWN in before.describe()
    result = run_turbo(emu, ledger, start_image, tmp_path, model=UNPRICED)
    deducted = float(result.task.final_unit_deduction)
    assert deducted > 0
    one = estimate_cost(UNPRICED_PRO_5, ledger=ledger)
    assert one.total == deducted and result.task.task_id in one.describe()
    three = estimate_cost(UNPRICED_PRO_5, 3, ledger=ledger)
    assert three.total == 3 * deducted and f"3 tasks x {deducted:g}" in three.describe()
    # Other combinations stay unknown: std, 10 s, another endpoint.
    for other in (combination_for("image2video", UNPRICED, "std", "5"),
                  combination_for("image2video", UNPRICED, "pro", "10"),
                  combination_for("text2video", UNPRICED, "pro", "5")):
        assert estimate_cost(other, ledger=ledger).units_per_task is None, other


def test_the_latest_deduction_wins_and_sound_is_part_of_the_combination(tmp_path):
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    from kling_api.remote.tasks import Task
    for seed, (sound, units) in enumerate([("off", "3"), ("on", "5"), ("off", "4")]):
        body = {"model_name": "kling-v2-6", "mode": "pro", "duration": "5", "sound": sound}
        with ledger.claim(f"fp{seed}", external_task_id=f"e{seed}", endpoint="/v1/videos/image2video",
                          base_url="http://x", summary=body) as (entry, _):
            pass
        ledger.record_created(f"fp{seed}", Task(task_id=f"t{seed}", status="submitted"))
        ledger.record_task(Task(task_id=f"t{seed}", status="succeed", final_unit_deduction=units), f"fp{seed}")
    off = estimate_cost(combination_for("image2video", "kling-v2-6", "pro", "5", "off"), ledger=ledger)
    on = estimate_cost(combination_for("image2video", "kling-v2-6", "pro", "5", "on"), ledger=ledger)
    assert (off.total, on.total) == (4.0, 5.0)


def test_rate_card_overrides_the_ledger_most_specific_entry_first(emu, start_image, tmp_path, monkeypatch):
    emu.reset()
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    run_turbo(emu, ledger, start_image, tmp_path)
    card = write_card(tmp_path / "card.json", [
        {"endpoint": "image2video", "units": 1},
        {"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "mode": "pro", "duration": 5, "units": 7.5}])
    monkeypatch.setenv("KLING_RATE_CARD", str(card))
    rate_card = rate_card_from_env()
    estimate = estimate_cost(TURBO_PRO_5, 2, ledger=ledger, rate_card=rate_card)
    assert estimate.total == 15.0 and str(card) in estimate.describe()
    std = estimate_cost(combination_for("image2video", "kling-v2-5-turbo", "std", "5"), rate_card=rate_card)
    assert std.total == 1.0


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not valid JSON"),
    ('{"rates": {}}', 'a JSON object with a "rates" list'),
    ('{"rates": [{"units": 1}]}', '"endpoint" is missing; allowed: image2video'),
    ('{"rates": [{"endpoint": "img2video", "units": 1}]}', "rates[0]: endpoint=\"img2video\" is not allowed"),
    ('{"rates": [{"endpoint": "image2video", "units": -1}]}', "units=-1 is not allowed; allowed: a number >= 0"),
    ('{"rates": [{"endpoint": "image2video", "units": "2"}]}', 'units="2" is not allowed'),
    ('{"rates": [{"endpoint": "image2video", "mode": "fast", "units": 2}]}',
     'mode="fast" is not allowed; allowed: std, pro, 4k, 720p, 1080p'),
    ('{"rates": [{"endpoint": "image2video", "model_name": "kling-v9", "units": 2}]}', "model_name=\"kling-v9\""),
    ('{"rates": [{"endpoint": "image2video", "price": 2, "units": 2}]}', "unknown key(s) price"),
])
def test_a_bad_rate_card_is_refused_with_the_file_entry_and_what_is_allowed(tmp_path, content, expected):
    card = tmp_path / "card.json"
    card.write_text(content)
    with pytest.raises(RateCardError) as info:
        RateCard.load(card)
    assert expected in str(info.value) and str(card) in str(info.value)


def test_spend_guard_per_prompt_and_per_day_unknown_never_blocks(tmp_path):
    known = estimate_requests([ImageToVideoRequest(model_name="kling-v2-5-turbo", mode="pro", duration="5")] * 3,
                              rate_card=RateCard.from_json({"rates": [{"endpoint": "image2video", "units": 2}]}, "t"))
    assert known.total == 6.0
    refusal = spend_refusal(known, SpendLimits(per_prompt=5, where="Settings > Kling"))
    assert refusal and "6 units" in refusal and "limit of 5 units per prompt" in refusal
    assert "Settings > Kling" in refusal and "Nothing was sent" in refusal
    assert spend_refusal(known, SpendLimits(per_prompt=6)) is None
    daily = spend_refusal(known, SpendLimits(per_day=10), today=5)
    assert daily and "today's spend 5 units" in daily and "daily limit of 10 units" in daily
    unknown = estimate_requests([VideoExtendRequest(video_id="v1")])
    assert unknown.total is None and spend_refusal(unknown, SpendLimits(per_prompt=0.5)) is None
    mixed = estimate_requests([ImageToVideoRequest(model_name="kling-v2-5-turbo", mode="pro", duration="5"),
                               VideoExtendRequest(video_id="v1")],
                              rate_card=RateCard.from_json({"rates": [{"endpoint": "image2video", "units": 2}]}, "t"))
    text = spend_refusal(mixed, SpendLimits(per_prompt=1))
    assert text and "plus 1 task(s) whose cost is " + UNKNOWN in text
    with pytest.raises(KlingValidationError, match="KLING_MAX_UNITS='lots'"):
        SpendLimits.from_env({"KLING_MAX_UNITS": "lots"})
    assert SpendLimits.from_env({"KLING_MAX_UNITS": "0"}).per_prompt is None  # 0: no limit
    assert SpendLimits.from_env({"KLING_MAX_UNITS": "3"}, per_prompt="2").per_prompt == 2.0


def test_today_spend_comes_from_the_ledger(emu, start_image, tmp_path):
    emu.reset()
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    assert spent_today(ledger) == 0.0
    first = run_turbo(emu, ledger, start_image, tmp_path, seed=1)
    second = run_turbo(emu, ledger, start_image, tmp_path, mode="std", seed=2)
    total = float(first.task.final_unit_deduction) + float(second.task.final_unit_deduction)
    assert spent_today(ledger) == total
    estimate = estimate_requests([ImageToVideoRequest(model_name="kling-v2-5-turbo", mode="pro", duration="5")],
                                 ledger=ledger)
    with pytest.raises(SpendLimitExceeded, match="daily limit"):
        check_spend(estimate, SpendLimits(per_day=total + 1), ledger)
    check_spend(estimate, SpendLimits(per_day=total + estimate.known_units), ledger)


def test_balance_warning_and_depleted_pack_explained_with_the_balance(emu, start_image, tmp_path):
    emu.reset()
    client = client_for(emu, API_KEY)
    costs = client.account_costs()
    big = estimate_cost(TURBO_PRO_5, 1, rate_card=RateCard.from_json(
        {"rates": [{"endpoint": "image2video", "units": costs.remaining + 1}]}, "t"))
    assert "exceeds the" in balance_warning(PromptEstimate((big,)), costs)
    assert balance_warning(PromptEstimate((estimate_cost(TURBO_PRO_5, 1),)), costs) == ""
    emu.configure(balance_depleted_creates=1)
    with pytest.raises(KlingAccountError) as info:
        run_turbo(emu, None, start_image, tmp_path)
    text = str(info.value)
    assert "1102" in text and f"{costs.remaining:g} units remaining in 1 online resource pack" in text
    assert "12 hours" in text


# -- the CLI, as a user runs it ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_emulator(tmp_path_factory):
    from kling_devtools.emulator_process import EmulatorProcess
    with EmulatorProcess(api_key="cli-costs-key", extra_args=["--max-height", "96"]) as emulator:
        emulator.cache = str(tmp_path_factory.mktemp("cli-cache"))
        yield emulator


def cli(emulator, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "KLING_API_BASE": emulator.url, "KLING_API_KEY": "cli-costs-key",
               "HOME": "/nonexistent", "XDG_CACHE_HOME": emulator.cache, **env}
    return subprocess.run([sys.executable, "-m", "kling_api", *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=120)


def test_cli_prints_the_estimate_and_refuses_over_the_limit_sending_nothing(cli_emulator, tmp_path):
    start, _ = write_sample_images(tmp_path)
    args = ["image2video", "--image", str(start), "--model", UNPRICED, "--mode", "pro", "--duration", "5"]
    first = cli(cli_emulator, *args, "--out", str(tmp_path / "a.mp4"), "--seed", "1", KLING_MAX_UNITS="1")
    assert first.returncode == 0, first.stderr  # unknown cost: not blocked, and said so
    assert UNKNOWN in first.stderr and "not counted against the limit" in first.stderr
    deducted = float(json.loads(cli(cli_emulator, "get", json.loads(first.stdout)["task_id"]).stdout)
                     ["final_unit_deduction"])
    cli_emulator.reset()
    refused = cli(cli_emulator, *args, "--out", str(tmp_path / "b.mp4"), "--seed", "2", "--max-units", "1")
    assert refused.returncode == 1, refused.stderr
    assert f"Estimated cost: {deducted:g} units" in refused.stderr
    assert f"estimated cost {deducted:g} units" in refused.stderr and "limit of 1 units per prompt" in refused.stderr
    assert "--max-units" in refused.stderr and "Traceback" not in refused.stderr
    assert cli_emulator.requests() == []  # nothing was sent
    card = write_card(tmp_path / "card.json", [{"endpoint": "image2video", "units": 0.5}])
    allowed = cli(cli_emulator, *args, "--out", str(tmp_path / "c.mp4"), "--seed", "3", "--max-units", "1",
                  KLING_RATE_CARD=str(card))
    assert allowed.returncode == 0, allowed.stderr
    assert f"Estimated cost: 0.5 units, from the rate card {card}" in allowed.stderr


def test_cli_account_prints_the_balance_with_the_lag(cli_emulator):
    done = cli(cli_emulator, "account")
    assert done.returncode == 0, done.stderr
    remaining = json.loads(done.stdout)["remaining"]
    assert f"{remaining:g} units remaining" in done.stderr and "12 hours" in done.stderr
    assert "spent today (ledger)" in done.stderr


def test_batch_prints_the_whole_manifest_estimate_and_the_guard_counts_every_row(emu, start_image, tmp_path,
                                                                                 monkeypatch, capsys):
    from kling_api.cli import commands as cli
    emu.reset()
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    monkeypatch.delenv("KLING_RATE_CARD", raising=False)
    ledger_path = tmp_path / "ledger.sqlite3"
    deducted = float(run_turbo(emu, TaskLedger(ledger_path), start_image, tmp_path).task.final_unit_deduction)
    (tmp_path / "start.png").write_bytes(base64.b64decode(start_image))
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps({"image": "start.png", "model": "kling-v2-5-turbo", "mode": "pro",
                                            "duration": 5, "seed": seed}) + "\n" for seed in (11, 12, 13)))
    common = ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"), "--ledger", str(ledger_path)]
    emu.reset()
    code = cli.main([*common, "batch", str(manifest), "--max-units", f"{3 * deducted - 1:g}"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"Estimated cost: {3 * deducted:g} units (3 tasks x {deducted:g})" in err
    assert f"limit of {3 * deducted - 1:g} units per prompt" in err and "--max-units" in err
    assert emu.requests == []  # nothing was sent
    assert cli.main([*common, "batch", str(manifest), "--max-units", f"{3 * deducted:g}"]) == 0
    assert len([r for r in emu.requests if r["method"] == "POST"]) == 3
