"""Kling's price table (kling-pricing-video.md) as the default rate card: every model it lists has an
estimate before its first run, units/s x duration and the page's USD likewise; the account's own
deductions win once known; KLING_RATE_CARD overrides both; a model the table lacks stays unknown; and the
spend guard counts a first run."""
from __future__ import annotations

import json

import pytest
from kling_devtools.library_emulator import fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.cli import commands as cli
from kling_api.costs import estimates
from kling_api.costs.guard import SpendLimitExceeded, SpendLimits, preflight
from kling_api.costs.pricing import (FROM_LEDGER, FROM_PRICE_TABLE, FROM_RATE_CARD, UNKNOWN, CostEstimate,
                                     PromptEstimate, estimate_cost, estimate_requests)
from kling_api.costs.rates import RateCard, RateCardError, combination_for
from kling_api.remote.ledger import TaskLedger
from kling_api.remote.tasks import Task
from kling_api.rules.capabilities import capability_table
from kling_api.rules.endpoints import endpoint_for
from kling_api.rules.prices import price_rows, price_table
from kling_api.rules.request import (ImageToVideoRequest, MultiImageToVideoRequest, TextToVideoRequest,
                                     VideoExtendRequest, request_summary)
from kling_api.rules.validation import validate_request

API_KEY = "price-table-key"
STAND_IN_IMAGE = "aGVsbG8="  # never sent: the estimate needs only the request's combination
PAGE = "kling-pricing-video.md"


def _plain(row: dict) -> bool:
    """A row a text or image request can hit (no voice control, reference video or motion control)."""
    return not (row.get("voice") or row.get("video_input") or row.get("motion_control")) and row["audio"] is not None


def _cases() -> list[tuple[str, str, str, str, dict]]:
    """(model, tier, duration, sound, row) for every plain row of the table and every model of the pack
    that names its product, at each tier meaning the row's resolution (legacy std/pro: 720p/1080p, our
    reading), the shortest and longest duration, the sound the row says (both for an always-audio
    product), wherever the capability table allows that combination."""
    table, caps_table = price_table(), capability_table()
    cases = []
    for row in filter(_plain, price_rows()):
        for model, product in table["models"].items():
            caps = caps_table.get(model)
            if product != row["model"] or caps is None or caps.retired:
                continue
            tiers = [t for t in caps.tiers if table["legacy_modes"].get(t, t) == row["resolution"]]
            sounds = ["off", "on"] if product in table["always_audio"] else ["on" if row["audio"] else "off"]
            for tier in tiers:
                for duration in sorted({caps.durations[0], caps.durations[-1]}, key=int):
                    for sound in sounds:
                        if sound == "on" and not caps.sound_always and not caps.allows("sound", tier, duration):
                            continue
                        cases.append((model, tier, duration, sound, row))
    return cases


CASES = _cases()


def _request(rules: str, model: str, tier: str, duration: str, sound: str):
    """A request as a user gives it (a new-standard model's tier as resolution), then validated."""
    caps = capability_table().get(model)
    tier_field = {"resolution": tier, "mode": None} if caps.is_new_standard else {"mode": tier}
    sound_field = None if caps.sound_always else sound
    if rules == "image2video":
        request = ImageToVideoRequest(model_name=model, image=STAND_IN_IMAGE, duration=duration, sound=sound_field,
                                      **tier_field)
    else:
        request = TextToVideoRequest(model_name=model, prompt="a lighthouse at dusk", duration=duration,
                                     sound=sound_field, **tier_field)
    return validate_request(request).request


def test_the_cases_cover_every_row_the_pack_can_send():
    """Guards the table-driven test below from passing on an empty list: every plain row at a resolution
    the capability table offers is reached (4k rows too: kling-v3 mode 4k, kling-3.0 resolution 4k)."""
    reached = {(row["model"], row["feature"], row["resolution"]) for *_, row in CASES}
    table = price_table()
    expected = set()
    for row in filter(_plain, price_rows()):
        for model, product in table["models"].items():
            caps = capability_table().get(model)
            if product == row["model"] and caps is not None and not caps.retired and \
                    row["resolution"] in {table["legacy_modes"].get(t, t) for t in caps.tiers}:
                expected.add((row["model"], row["feature"], row["resolution"]))
    assert reached == expected and len(reached) >= 10, sorted(expected - reached)


def _makes_videos_from_text(model: str) -> bool:
    return model in capability_table().as_json()["endpoints"]["text2video"]["models"] \
        or capability_table().get(model).is_new_standard


#: Each case on each endpoint whose node offers the model (text to video: the models that make videos from text).
ENDPOINT_CASES = [(rules, *case) for rules in ("image2video", "text2video") for case in CASES
                  if rules == "image2video" or _makes_videos_from_text(case[0])]


@pytest.mark.parametrize("rules, model, tier, duration, sound, row", ENDPOINT_CASES,
                         ids=[f"{r}-{m}-{t}-{d}s-sound_{s}" for r, m, t, d, s, _ in ENDPOINT_CASES])
def test_before_any_run_the_estimate_is_the_tables_price_times_the_duration(rules, model, tier, duration, sound, row,
                                                                            tmp_path):
    ledger = TaskLedger(tmp_path / "never-written.sqlite3")  # no run yet
    estimate = estimate_requests([_request(rules, model, tier, duration, sound)] * 2, ledger=ledger)
    part = estimate.parts[0]
    seconds = int(duration)
    assert part.units_per_task == pytest.approx(row["units_per_second"] * seconds)
    assert part.usd_per_task == pytest.approx(row["usd_per_second"] * seconds)
    assert estimate.total == pytest.approx(2 * row["units_per_second"] * seconds)
    assert estimate.known_usd == pytest.approx(2 * row["usd_per_second"] * seconds)
    assert part.basis == FROM_PRICE_TABLE and PAGE in part.source and row["date"] in part.source
    assert f"{row['units_per_second']:g} units/s" in part.source and f"x {seconds} s" in part.source
    # the combination carries the tier: a new-standard model's resolution in the mode slot
    assert part.combination.mode == tier and part.combination.endpoint == rules


def test_a_new_standard_combination_carries_its_resolution_and_turbo_always_has_audio():
    both = [combination_for(endpoint_for("image2video", "kling-3.0"), "kling-3.0", None, "5", "off", "1080p"),
            combination_for("image2video", "kling-3.0", "1080p", "5")]  # the tier given in the mode slot
    assert both[0] == both[1] and both[0].mode == "1080p" and both[0].endpoint == "image2video"
    assert combination_for("image2video", "kling-3.0", None, "5").mode == "720p"  # the page's default
    silent = estimate_cost(combination_for("image2video", "kling-3.0-turbo", None, "5", "off", "720p"))
    loud = estimate_cost(combination_for("image2video", "kling-3.0-turbo", None, "5", "on", "720p"))
    assert silent.units_per_task == loud.units_per_task == pytest.approx(0.8 * 5)
    assert "With Native Audio" in silent.source


def test_the_node_line_and_the_describe_text_name_units_usd_and_source():
    i2v = estimate_cost(combination_for("image2video", "kling-3.0-turbo", None, "5", None, "720p"))
    assert i2v.per_task_text() == "4 units ($0.56) per image (a batch of B images costs B tasks), " \
                                  "from Kling's price table"
    t2v = estimate_cost(combination_for("text2video", "kling-3.0", None, "7", "on", "1080p"), 3)
    assert t2v.per_task_text() == "8.4 units ($1.176) per task, from Kling's price table"
    text = t2v.describe()
    assert text.startswith("Estimated cost: 25.2 units (3 tasks x 8.4), $3.528 list price, from Kling's price table")
    assert "With Native Audio x No Voice Control at 1080p, 1.2 units/s, $0.168/s x 7 s" in text
    legacy = estimate_cost(combination_for("image2video", "kling-v2-5-turbo", "pro", "5"))
    assert "at 1080p (legacy pro, our reading)" in legacy.describe() and "$0.35 list price" in legacy.describe()
    unknown = estimate_cost(combination_for("image2video", "kling-v1-6", "pro", "5"))
    assert unknown.per_task_text() == UNKNOWN
    mixed = PromptEstimate((i2v, legacy, unknown))
    assert mixed.describe() == (f"Estimated cost of 3 tasks: 6.5 units known, $0.91 list price for 2 of them, "
                                f"plus 1 tasks {UNKNOWN} (image2video kling-v1-6 pro 5 s)")


@pytest.mark.parametrize("combination", [
    combination_for("image2video", "kling-v1-6", "pro", "5"),
    combination_for("image2video", "kling-v2-1", "std", "10"),
    combination_for("image2video", "kling-v2-master", None, "5"),
    combination_for("text2video", "kling-v2-1-master", None, "5"),
    combination_for("multi-image2video", "kling-v1-6", "std", "5"),
    combination_for("video-extend"),
], ids=lambda c: c.label())
def test_a_model_the_table_does_not_list_stays_unknown(combination, tmp_path):
    estimate = estimate_cost(combination, ledger=TaskLedger(tmp_path / "none.sqlite3"))
    assert estimate.units_per_task is None and estimate.usd_per_task is None
    assert UNKNOWN in estimate.describe()


def _record(ledger: TaskLedger, request, units: str, n: int = 0) -> None:
    """A finished task of ``request`` in the ledger, as the generation life files it."""
    fingerprint = f"fp-{n}"
    with ledger.claim(fingerprint, external_task_id=f"e{n}", endpoint=request.endpoint.ledger_family,
                      base_url="http://x", summary=request_summary(request)):
        pass
    ledger.record_created(fingerprint, Task(task_id=f"t{n}", status="submitted"))
    ledger.record_task(Task(task_id=f"t{n}", status="succeed", final_unit_deduction=units), fingerprint)


@pytest.mark.parametrize("model, tier", [("kling-3.0", "1080p"), ("kling-v3", "pro"), ("kling-v2-5-turbo", "std")])
def test_the_accounts_own_deduction_wins_over_the_table_and_a_rate_card_over_both(model, tier, tmp_path):
    request = _request("image2video", model, tier, "5", "off")
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    before = estimate_requests([request], ledger=ledger).parts[0]
    assert before.basis == FROM_PRICE_TABLE
    _record(ledger, request, "7")
    known = estimate_requests([request], ledger=ledger).parts[0]
    assert (known.units_per_task, known.basis, known.usd_per_task) == (7.0, FROM_LEDGER, None)
    assert "as Kling deducted for task t0" in known.describe()
    other = _request("image2video", model, tier, "10", "off")  # another duration: still the table's
    assert estimate_requests([other], ledger=ledger).parts[0].basis == FROM_PRICE_TABLE
    card = RateCard.from_json({"rates": [{"endpoint": "image2video", "model_name": model, "mode": tier, "units": 1.5}]},
                              "card.json")
    carded = estimate_requests([request, other], ledger=ledger, rate_card=card)
    assert [p.units_per_task for p in carded.parts] == [1.5, 1.5] and carded.parts[0].basis == FROM_RATE_CARD
    assert carded.parts[0].per_task_text() == "1.5 units per image (a batch of B images costs B tasks), " \
                                              "from the rate card"


def test_a_rate_card_names_a_resolution_for_a_new_standard_model(tmp_path):
    card = RateCard.from_json({"rates": [{"endpoint": "text2video", "model_name": "kling-2.6", "mode": "1080p",
                                          "units": 9}]}, "card.json")
    hit = combination_for("text2video", "kling-2.6", None, "5", "on", "1080p")
    miss = combination_for("text2video", "kling-2.6", None, "5", "off", "720p")
    assert estimate_cost(hit, rate_card=card).units_per_task == 9
    assert estimate_cost(miss, rate_card=card).basis == FROM_PRICE_TABLE
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"rates": [{"endpoint": "text2video", "mode": "2k", "units": 1}]}))
    with pytest.raises(RateCardError, match=r'mode="2k" is not allowed; allowed: std, pro, 4k, 720p, 1080p'):
        RateCard.load(path)


def test_the_guard_refuses_a_first_run_over_the_limit(tmp_path):
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    request = _request("image2video", "kling-3.0-turbo", "1080p", "5", "on")
    said: list[str] = []
    with pytest.raises(SpendLimitExceeded) as info:
        preflight([request] * 2, SpendLimits(per_prompt=9), ledger=ledger, write=said.append)
    text = str(info.value)
    assert "estimated cost 10 units exceeds the limit of 9 units per prompt. Nothing was sent." in text
    assert "from Kling's price table" in text and "$1.40 list price" in text
    assert said and "not counted" not in " ".join(said)  # the guard counted every task
    preflight([request] * 2, SpendLimits(per_prompt=10), ledger=ledger, write=said.append)  # at the limit: passes


@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


def test_the_cli_refuses_a_models_first_run_sending_nothing_then_the_deduction_takes_over(emu, tmp_path, monkeypatch,
                                                                                        capsys):
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    monkeypatch.delenv("KLING_RATE_CARD", raising=False)
    start, _ = write_sample_images(tmp_path)
    common = ["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"), "--ledger",
              str(tmp_path / "ledger.sqlite3")]
    args = ["image2video", "--image", str(start), "--model", "kling-v2-5-turbo", "--mode", "pro", "--duration", "5"]
    emu.reset()
    assert cli.main([*common, *args, "--out", str(tmp_path / "a.mp4"), "--max-units", "2"]) == 1
    err = capsys.readouterr().err
    assert "estimated cost 2.5 units exceeds the limit of 2 units per prompt" in err, err
    assert "from Kling's price table" in err and emu.requests == []  # nothing was sent
    assert cli.main([*common, *args, "--out", str(tmp_path / "b.mp4"), "--max-units", "2.5"]) == 0
    capsys.readouterr()
    posts = [r for r in emu.requests if r["method"] == "POST"]
    assert len(posts) == 1
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    deducted = float(ledger.entries(1)[0].final_unit_deduction)
    again = estimate_cost(combination_for("image2video", "kling-v2-5-turbo", "pro", "5"), ledger=ledger)
    assert (again.units_per_task, again.basis) == (deducted, FROM_LEDGER)


def test_the_old_import_path_still_has_every_name():
    """nodes/spend_guard.py imports the costs from kling_api.costs.estimates (a re-export)."""
    assert estimates.CostEstimate is CostEstimate and estimates.preflight is preflight
    assert set(estimates.__all__) <= set(dir(estimates))
