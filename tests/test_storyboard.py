"""Storyboards (multi-shot videos), table-driven: every rule of the library (kling_api.rules.storyboard), the
bodies of both standards checked against the emulator (library, CLI ``--shot``, ``batch`` manifests, an end
frame with a kling-v3 storyboard), the emulator's own 1201s, the costs, and a rerun that resumes (the ledger's
fingerprint holds the shots)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from kling_devtools.library_emulator import client_for, fast_emulator
from kling_devtools.sample_images import write_sample_images

from kling_api.cli import batch
from kling_api.cli import commands as cli
from kling_api.costs.pricing import estimate_requests
from kling_api.errors import KlingValidationError
from kling_api.generation.life import run_job
from kling_api.media.video import probe_video
from kling_api.remote.codecs import LegacyCodec, NewStandardCodec
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.capabilities import capability_table
from kling_api.rules.endpoints import NEW_QUERY_PATH
from kling_api.rules.request import ImageToVideoRequest, Shot, TextToVideoRequest, request_summary, shots_text
from kling_api.rules.storyboard import (check_storyboard, parse_shots, shot_syntax, storyboard_models, storyboard_rules,
                                        storyboard_sum)
from kling_api.rules.validation import validate_request
from test_client import IMAGE

API_KEY = "storyboard-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TWO = (Shot(2, "a boat leaves"), Shot(3, "the harbour at dusk"))  # 5 s
LEGACY_MODELS, NEW_MODELS = ("kling-v3",), ("kling-3.0", "kling-3.0-turbo")
STORYBOARD_MODELS = LEGACY_MODELS + NEW_MODELS


def _mode(model: str, fields: dict) -> str | None:
    return fields.pop("mode", None if capability_table().get(model).is_new_standard else "std")


def i2v(model: str, shots=TWO, **fields) -> ImageToVideoRequest:
    return ImageToVideoRequest(model_name=model, image=IMAGE, duration=fields.pop("duration", "5"), shots=shots,
                               mode=_mode(model, fields), **fields)


def t2v(model: str, shots=TWO, **fields) -> TextToVideoRequest:
    return TextToVideoRequest(model_name=model, duration=fields.pop("duration", "5"), shots=shots,
                              mode=_mode(model, fields), **fields)


# --- the rules, one row each -------------------------------------------------------------------------------

def test_the_rules_are_the_capability_tables():
    rules = storyboard_rules()
    assert (rules.min_shots, rules.max_shots, rules.shot_prompt_max_chars, rules.min_shot_seconds) == (1, 6, 512, 1)
    for endpoint in ("image2video", "text2video"):
        assert storyboard_models(endpoint) == ["kling-v3", "kling-3.0-turbo", "kling-3.0"]


REFUSED = [
    # (request, field, words in the message)
    *[(make(model, TWO), "shots", f"{model} takes no storyboard")
      for model in ("kling-v2-6", "kling-v2-5-turbo", "kling-2.6", "kling-2.5-turbo") for make in (i2v, t2v)],
    (i2v("kling-v1-6", TWO), "shots", "kling-v1-6 takes no storyboard"),
    (i2v("kling-v3", ()), None, None),  # no shots: no storyboard, nothing to refuse
    *[(make(model, tuple(Shot(1, f"shot {n}") for n in range(7)), duration="7"), "shots",
       "7 shots given; a storyboard has 1 to 6") for model in STORYBOARD_MODELS for make in (i2v, t2v)],
    *[(make(model, (Shot(0, "nothing"), Shot(5, "all"))), "shots[0].duration", "at least 1")
      for model in STORYBOARD_MODELS for make in (i2v, t2v)],
    (i2v("kling-v3", (Shot(2.5, "half"), Shot(2.5, "half"))), "shots[0].duration", "whole seconds"),  # type: ignore[arg-type]
    (i2v("kling-3.0", (Shot(True, "bool"), Shot(4, "x"))), "shots[0].duration", "whole seconds"),  # type: ignore[arg-type]
    *[(make(model, (Shot(2, "x" * 513), Shot(3, "fine"))), "shots[0].prompt", "513 characters; at most 512")
      for model in STORYBOARD_MODELS for make in (i2v, t2v)],
    (i2v("kling-v3", (Shot(2, "ok"), Shot(3, "  "))), "shots[1].prompt", "shot 2 needs a prompt"),
    *[(make(model, TWO, duration="7"), "shots", "the shots sum to 5 s; duration is 7 s")
      for model in STORYBOARD_MODELS for make in (i2v, t2v)],
    (i2v("kling-v3", (Shot(4, "a"), Shot(4, "b")), duration="5"), "shots", "the shots sum to 8 s; duration is 5 s"),
    *[(make(model, TWO, prompt="one prompt too"), "prompt", "a storyboard's words go in its shots")
      for model in STORYBOARD_MODELS for make in (i2v, t2v)],
    # the new standard writes the shots into the prompt: ';' separates them, and the prompt has a limit
    *[(make(model, (Shot(2, "a; b"), Shot(3, "c"))), "shots[0].prompt", "contains ';'")
      for model in NEW_MODELS for make in (i2v, t2v)],
    (i2v("kling-3.0-turbo", tuple(Shot(2 + (n < 3), "y" * 500) for n in range(6)), duration="15"), "shots",
     "at most 2500 are allowed"),
    (i2v("kling-v3", (Shot("2", "a"), Shot(3, "b"))), "shots[0].duration", "whole seconds"),  # type: ignore[arg-type]
    (i2v("kling-v3", ("2:a", "3:b")), "shots[0]", "a Shot"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("request_", "field", "words"), REFUSED,
                         ids=[f"{r.model_name}-{type(r).__name__[:4]}-{f}" for r, f, _ in REFUSED])
def test_every_rule_refuses_naming_the_field_the_value_and_what_is_allowed(request_, field, words):
    if field is None:
        assert validate_request(request_).request.shots == ()
        return
    with pytest.raises(KlingValidationError) as caught:
        validate_request(request_)
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


ACCEPTED = [
    *[(make(model, shots, duration=duration)) for model in STORYBOARD_MODELS for make in (i2v, t2v)
      for shots, duration in ((TWO, "5"), ((Shot(3, "one long shot"),), "3"),
                              (tuple(Shot(2 + (n < 3), f"shot {n}") for n in range(6)), "15"))],
    i2v("kling-v3", TWO, image_tail=IMAGE),  # first/last frame with a kling-v3 storyboard (since 2026-05-07)
    i2v("kling-3.0", TWO, image_tail=IMAGE),
    i2v("kling-v3", TWO, mode="pro", sound="on", negative_prompt="blur"),
    i2v("kling-v3", (Shot(2, "a; b"), Shot(3, "c"))),  # a ';' is fine in a legacy multi_prompt item
    i2v("kling-3.0-turbo", tuple(Shot(2 + (n < 3), "y" * 400) for n in range(6)), duration="15"),
]


@pytest.mark.parametrize("request_", ACCEPTED, ids=[f"{r.model_name}-{type(r).__name__[:4]}-{len(r.shots)}"
                                                    for r in ACCEPTED])
def test_storyboards_the_rules_allow_are_accepted_as_given(request_):
    assert validate_request(request_).request.shots == tuple(request_.shots)


def test_a_list_of_shots_is_kept_as_a_tuple():
    assert validate_request(i2v("kling-v3", list(TWO))).request.shots == TWO


@pytest.mark.parametrize(("seconds", "duration", "matches", "text", "mismatch"), [
    ((2, 3), "5", True, "2 shots: 2 + 3 = 5 s, the duration", ""),
    ((2, 3, 2), "5", False, "3 shots: 2 + 3 + 2 = 7 s; duration is 5 s", "the shots sum to 7 s; duration is 5 s"),
    ((4,), 5, False, "1 shot: 4 = 4 s; duration is 5 s", "the shots sum to 4 s; duration is 5 s"),
    ((), "5", False, "0 shots: 0 = 0 s; duration is 5 s", "the shots sum to 0 s; duration is 5 s"),
    ((2,), "", False, "1 shot: 2 = 2 s; duration is ? s", "the shots sum to 2 s; duration is ? s"),
])
def test_the_sum_a_node_shows(seconds, duration, matches, text, mismatch):
    summed = storyboard_sum([Shot(s, "x") for s in seconds], duration)
    assert (summed.matches, summed.text, summed.mismatch, summed.total) == (matches, text, mismatch, sum(seconds))


@pytest.mark.parametrize(("value", "shots"), [
    ("2:a boat leaves|3:the harbour at dusk", TWO),
    (" 2 : a boat leaves | 3:the harbour at dusk ", TWO),
    ('[{"duration": 2, "prompt": "a boat leaves"}, {"duration": "3", "prompt": "the harbour at dusk"}]', TWO),
    ([{"duration": 2, "prompt": "a boat leaves"}, "3:the harbour at dusk"], TWO),
    ([{"duration": 2.0, "prompt": "a | b: c"}], (Shot(2, "a | b: c"),)),
    (list(TWO), TWO), ("", ()), (None, ()), ([], ()),
])
def test_shots_are_read_from_text_json_and_lists(value, shots):
    assert parse_shots(value) == shots
    if shots == TWO:
        assert parse_shots(shots_text(shots)) == shots  # the text form reads back


@pytest.mark.parametrize(("value", "field"), [
    ("two:a boat", "shots[0]"), ("2 a boat", "shots[0]"), ("2:a|x", "shots[1]"), ("-1:back", "shots[0]"),
    ("[{", "shots"), ('[{"seconds": 2, "prompt": "a"}]', "shots[0]"), ('[{"duration": 2}]', "shots[0]"),
    ([{"duration": 1.5, "prompt": "a"}], "shots[0]"), ([{"duration": True, "prompt": "a"}], "shots[0]"),
    ({"duration": 2, "prompt": "a"}, "shots"), (7, "shots"),
])
def test_a_shot_that_cannot_be_read_is_refused_naming_it(value, field):
    with pytest.raises(KlingValidationError) as caught:
        parse_shots(value)
    assert caught.value.field == field


# --- the bodies of both standards ----------------------------------------------------------------------------

def test_the_legacy_body_is_multi_shot_customize_and_multi_prompt():
    body = LegacyCodec().body(validate_request(i2v("kling-v3", TWO, image_tail=IMAGE)).request)
    assert body["multi_shot"] is True and body["shot_type"] == "customize" and "prompt" not in body
    assert body["multi_prompt"] == [{"index": 1, "prompt": "a boat leaves", "duration": "2"},
                                    {"index": 2, "prompt": "the harbour at dusk", "duration": "3"}]
    assert body["image_tail"] == IMAGE and body["duration"] == "5" and "shots" not in body
    single = LegacyCodec().body(validate_request(i2v("kling-v3", (), prompt="one")).request)
    assert not {"multi_shot", "shot_type", "multi_prompt", "shots"} & set(single)  # as before storyboards


@pytest.mark.parametrize(("make", "model", "multi_shot"), [
    (i2v, "kling-3.0", True), (t2v, "kling-3.0", True), (i2v, "kling-3.0-turbo", None), (t2v, "kling-3.0-turbo", None)])
def test_the_new_body_is_the_pages_shot_syntax_in_the_prompt(make, model, multi_shot):
    body = NewStandardCodec().body(validate_request(make(model, TWO)).request)
    syntax = "shot 1, 2, a boat leaves; shot 2, 3, the harbour at dusk;"
    assert shot_syntax(TWO) == syntax
    prompt = body["prompt"] if make is t2v else body["contents"][0]
    assert prompt == (syntax if make is t2v else {"type": "prompt", "text": syntax})
    assert body["settings"].get("multi_shot") is multi_shot and body["settings"]["duration"] == 5


def test_a_single_shot_kling_3_0_request_says_multi_shot_false_and_turbo_says_nothing():
    for make in (i2v, t2v):
        body = NewStandardCodec().body(validate_request(make("kling-3.0", (), prompt="one shot")).request)
        assert body["settings"]["multi_shot"] is False  # the page's default is true
        turbo = NewStandardCodec().body(validate_request(make("kling-3.0-turbo", (), prompt="one shot")).request)
        assert "multi_shot" not in turbo["settings"]


def test_a_storyboard_costs_its_total_duration_and_the_ledger_lists_its_shots():
    with_shots = estimate_requests([validate_request(i2v("kling-3.0", TWO)).request])
    without = estimate_requests([validate_request(i2v("kling-3.0", (), prompt="x")).request])
    assert with_shots.total == without.total == pytest.approx(5 * 0.6)  # 720p without audio, 0.6 units/s
    assert request_summary(i2v("kling-v3", TWO))["prompt"] == "2:a boat leaves|3:the harbour at dusk"


# --- against the emulator ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emu():
    with fast_emulator(API_KEY) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(request):
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


def creates(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "POST" and r["path"] != NEW_QUERY_PATH]


LIBRARY_RUNS = [(make, model, tail) for model in STORYBOARD_MODELS for make in (i2v, t2v)
                for tail in ((False, True) if make is i2v and model != "kling-3.0-turbo" else (False,))]


@pytest.mark.parametrize(("make", "model", "tail"), LIBRARY_RUNS,
                         ids=[f"{m}-{mk.__name__}{'-tail' if t else ''}" for mk, m, t in LIBRARY_RUNS])
def test_the_emulator_takes_each_storyboard_and_makes_a_video_of_the_total(emu, tmp_path, make, model, tail):
    shots = (Shot(1, "a"), Shot(2, "b"), Shot(4, "c"))
    request = make(model, shots, duration="7", **({"image_tail": IMAGE} if tail else {}))
    result = run_job(client_for(emu, API_KEY), request, tmp_path / "v.mp4")
    (sent,) = creates(emu)
    body = sent["json"]
    if model in LEGACY_MODELS:
        assert [item["duration"] for item in body["multi_prompt"]] == ["1", "2", "4"]
        assert body.get("image_tail") == (IMAGE if tail else None)
    else:
        prompt = body["prompt"] if make is t2v else body["contents"][0]["text"]
        assert prompt == "shot 1, 1, a; shot 2, 2, b; shot 3, 4, c;"
        assert any(item["type"] == "last_frame" for item in body.get("contents", [])) is tail
    assert probe_video(result.video_path).duration == pytest.approx(7, abs=0.1)


def test_the_clients_own_create_spells_a_storyboard_too(emu):
    task = client_for(emu, API_KEY).create_image_to_video(i2v("kling-v3", TWO, image_tail=IMAGE))
    (sent,) = creates(emu)
    assert task.task_id and sent["json"]["multi_prompt"][0]["prompt"] == "a boat leaves"


def test_a_rerun_resumes_and_other_shots_are_another_task(emu, tmp_path):
    ledger = TaskLedger(tmp_path / "ledger.sqlite3")
    client = client_for(emu, API_KEY)
    first = run_job(client, i2v("kling-v3", TWO), tmp_path / "a.mp4", ledger=ledger, seed=1)
    again = run_job(client, i2v("kling-v3", TWO), tmp_path / "a.mp4", ledger=ledger, seed=1)
    assert again.reused and again.task.task_id == first.task.task_id and len(creates(emu)) == 1
    other = run_job(client, i2v("kling-v3", (Shot(3, "a boat leaves"), Shot(2, "the harbour at dusk"))),
                    tmp_path / "b.mp4", ledger=ledger, seed=1)
    assert not other.reused and other.task.task_id != first.task.task_id and len(creates(emu)) == 2


LEGACY_BODY = {"model_name": "kling-v3", "mode": "std", "duration": "5", "image": None, "multi_shot": True,
               "shot_type": "customize",
               "multi_prompt": [{"index": 1, "prompt": "a", "duration": "2"}, {"index": 2, "prompt": "b", "duration": "3"}]}


def legacy(**changes) -> dict:
    body = {**LEGACY_BODY, "image": IMAGE, **changes}
    return {k: v for k, v in body.items() if v is not None}


def shot(index, prompt, duration) -> dict:
    return {"index": index, "prompt": prompt, "duration": duration}


EMULATOR_REFUSED = [
    # legacy image2video / text2video: (path, body, Kling-style 1201 message)
    ("/v1/videos/image2video", legacy(model_name="kling-v2-6"), "multi_shot is not supported with model_name(kling-v2-6)"),
    ("/v1/videos/text2video", {**legacy(model_name="kling-v2-6"), "image": None},
     "multi_shot is not supported with model_name(kling-v2-6)"),
    ("/v1/videos/text2video", {**legacy(shot_type="intelligence", multi_prompt=None), "image": None},
     "prompt is required"),  # only customize shots stand in for the prompt
    ("/v1/videos/image2video", legacy(multi_shot="yes"), "multi_shot(yes) is invalid"),
    ("/v1/videos/image2video", legacy(shot_type=None), "shot_type is required when multi_shot is true"),
    ("/v1/videos/image2video", legacy(shot_type="auto"), "shot_type(auto) is invalid"),
    ("/v1/videos/image2video", legacy(multi_prompt=None), "multi_prompt is required when shot_type is customize"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", "1")] * 7, duration="7"),
     "multi_prompt must have 1 to 6 items, got 7"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", "2"), shot(3, "b", "3")]),
     "multi_prompt[1].index(3) is invalid: shots are numbered 1, 2, ... in order"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", "0"), shot(2, "b", "5")]),
     "multi_prompt[0].duration(0) is invalid: at least 1 whole second(s)"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", "2.5"), shot(2, "b", "2.5")]),
     "multi_prompt[0].duration(2.5) is invalid: at least 1 whole second(s)"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "x" * 513, "2"), shot(2, "b", "3")]),
     "multi_prompt[0].prompt cannot be longer than 512 characters"),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", "2"), shot(2, "", "3")]),
     "multi_prompt[1].prompt is required"),
    ("/v1/videos/image2video", legacy(multi_prompt=[{"index": 1, "prompt": "a"}]),
     "multi_prompt[0] must have index, prompt and duration"),
    ("/v1/videos/image2video", legacy(duration="7"), "multi_prompt durations sum to 5s, not duration(7)"),
    ("/v1/videos/text2video", {**legacy(duration="7"), "image": None}, "multi_prompt durations sum to 5s, not duration(7)"),
    ("/v1/videos/image2video", legacy(multi_shot=None), "shot_type is only supported when multi_shot is true"),
    ("/v1/videos/image2video", legacy(multi_shot=False, shot_type=None),
     "multi_prompt is only supported when multi_shot is true"),
    ("/v1/videos/image2video", legacy(shot_type="intelligence", multi_prompt=None),
     "prompt is required when shot_type is intelligence"),
    # new standard: the shot syntax in the prompt
    ("/image-to-video/kling-3.0", {"contents": [{"type": "prompt", "text": "shot 1, 2, a; shot 2, 2, b;"},
                                                {"type": "first_frame", "url": IMAGE}]},
     "contents[0].text shot durations sum to 4, not settings.duration 5"),
    ("/text-to-video/kling-3.0-turbo", {"prompt": "shot 1, 2, a; shot 3, 3, b;"},
     "prompt value is invalid: shot 2 is numbered 3"),
    ("/text-to-video/kling-3.0", {"prompt": "shot 1, 0, a; shot 2, 5, b;"},
     "prompt shot 1 duration value '0' is invalid: at least 1 second(s)"),
    ("/text-to-video/kling-3.0", {"prompt": "shot 1, 2, a; shot 2, 3, " + "x" * 513 + ";"},
     "prompt shot 2 words cannot exceed 512 characters"),
    ("/text-to-video/kling-3.0", {"prompt": "shot 1, 2, a; shot 2, 3,  ;"}, "prompt shot 2 words are required"),
    ("/text-to-video/kling-3.0-turbo", {"prompt": " ".join(f"shot {n}, 1, s{n};" for n in range(1, 8)),
                                        "settings": {"duration": 7}},
     "prompt value is invalid: 7 shots, supported 1 to 6"),
    ("/text-to-video/kling-3.0-turbo", {"prompt": "shot 1, 2, a; then 3 seconds of b;"},
     "prompt value is invalid: shot 2 is not written 'shot n, m, words'"),
]


@pytest.mark.parametrize(("path", "body", "message"), EMULATOR_REFUSED, ids=[m[:50] for _, _, m in EMULATOR_REFUSED])
def test_the_emulator_refuses_a_bad_storyboard_with_a_1201_naming_the_field(emu, path, body, message):
    answer = requests.post(emu.url + path, json=body, headers=AUTH, timeout=30)
    assert answer.status_code == 400 and answer.json()["code"] == 1201, answer.text
    assert answer.json()["message"] == message


EMULATOR_ACCEPTED = [
    ("/v1/videos/image2video", legacy(image_tail=IMAGE)),  # an end frame with a kling-v3 storyboard
    ("/v1/videos/text2video", {**legacy(), "image": None}),
    ("/v1/videos/image2video", legacy(multi_prompt=[shot(1, "a", 2), shot(2, "b", 3)])),  # ints read as strings
    ("/v1/videos/image2video", legacy(shot_type="intelligence", multi_prompt=None, prompt="cut it yourself")),
    ("/image-to-video/kling-3.0", {"contents": [{"type": "prompt", "text": "shot 1, 2, a; shot 2, 2, b;"},
                                                {"type": "first_frame", "url": IMAGE}],
                                   "settings": {"multi_shot": False}}),  # plain text when multi_shot is false
    ("/text-to-video/kling-3.0-turbo", {"prompt": "shot 1, 2, a; shot 2, 3, b"}),  # no final ';'
    ("/text-to-video/kling-2.6", {"prompt": "shot 1, 9, a plain prompt on a model without multi-shot"}),
]


@pytest.mark.parametrize(("path", "body"), EMULATOR_ACCEPTED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(EMULATOR_ACCEPTED)])
def test_the_emulator_accepts_what_the_pages_allow(emu, path, body):
    answer = requests.post(emu.url + path, json=body, headers=AUTH, timeout=30)
    assert answer.status_code == 200 and answer.json()["code"] == 0, answer.text


# --- the command line and batch ----------------------------------------------------------------------------------

@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    return write_sample_images(tmp_path)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_BASE", "KLING_RATE_CARD", "KLING_MAX_UNITS",
                 "KLING_MAX_UNITS_PER_DAY"):
        monkeypatch.delenv(name, raising=False)


def run_cli(emu, tmp_path, capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--base-url", emu.url, "--credentials", str(tmp_path / "none.json"),
                     "--ledger", str(tmp_path / "ledger" / "ledger.sqlite3"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("model", "tail"), [("kling-v3", True), ("kling-3.0", True), ("kling-3.0-turbo", False)])
def test_the_cli_sends_repeated_shots_as_the_models_standard_spells_them(emu, env, tmp_path, images, capsys, model,
                                                                         tail):
    start, end = images
    out = tmp_path / "story.mp4"
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model", model,
                           *(["--image-tail", str(end)] if tail else []), "--duration", "5",
                           "--shot", "2:a boat leaves", "--shot", "3:the harbour at dusk", "--out", str(out))
    assert code == 0, err
    (sent,) = creates(emu)
    if model == "kling-v3":
        assert sent["json"]["multi_prompt"][1] == {"index": 2, "prompt": "the harbour at dusk", "duration": "3"}
        assert "image_tail" in sent["json"]
    else:
        assert sent["json"]["contents"][0]["text"] == shot_syntax(TWO)
    assert probe_video(out).duration == pytest.approx(5, abs=0.1)
    code, _, err = run_cli(emu, tmp_path, capsys, "image2video", "--image", str(start), "--model", model,
                           *(["--image-tail", str(end)] if tail else []), "--duration", "5",
                           "--shot", "2:a boat leaves", "--shot", "3:the harbour at dusk", "--out", str(out))
    assert code == 0 and len(creates(emu)) == 1  # the rerun resumed: nothing sent


@pytest.mark.parametrize(("args", "words"), [
    (["--shot", "2:a", "--shot", "2:b"], "the shots sum to 4 s; duration is 5 s"),
    (["--shot", "two:a"], "--shot[0]"),
    (["--shot", "5:a", "--prompt", "also"], "a storyboard's words go in its shots"),
    (["--shot", "5:a", "--model", "kling-v2-6"], "kling-v2-6 takes no storyboard"),
    (["--shot", "0:a", "--shot", "5:b"], "shots[0].duration"),
])
def test_the_cli_refuses_a_bad_storyboard_before_anything_is_sent(emu, env, tmp_path, images, capsys, args, words):
    start, _ = images
    base = ["image2video", "--image", str(start), "--duration", "5", "--out", str(tmp_path / "no.mp4")]
    if "--model" not in args:
        base += ["--model", "kling-v3"]
    code, _, err = run_cli(emu, tmp_path, capsys, *base, *args)
    assert code == 2 and words in err, err
    assert emu.requests == []


def test_batch_rows_take_storyboards_and_a_rerun_resumes(emu, env, tmp_path, images, capsys):
    start, end = images
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in [
        {"image": start.name, "model": "kling-v3", "image_tail": end.name, "duration": 5,
         "shots": [{"duration": 2, "prompt": "a boat leaves"}, {"duration": 3, "prompt": "the harbour at dusk"}]},
        {"image": start.name, "model": "kling-3.0", "duration": 5, "shots": "2:a boat leaves|3:the harbour at dusk"},
        {"image": start.name, "model": "kling-3.0-turbo", "duration": 3, "shots": "3:one shot"},
    ]))
    args = ["batch", str(manifest), "--out-dir", str(tmp_path / "out")]
    code, _, err = run_cli(emu, tmp_path, capsys, *args)
    assert code == 0, err
    sent = {r["path"]: r["json"] for r in creates(emu)}
    assert sent["/v1/videos/image2video"]["multi_prompt"][0] == {"index": 1, "prompt": "a boat leaves",
                                                                 "duration": "2"}
    assert sent["/image-to-video/kling-3.0"]["contents"][0]["text"] == shot_syntax(TWO)
    assert sent["/image-to-video/kling-3.0"]["settings"]["multi_shot"] is True
    assert sent["/image-to-video/kling-3.0-turbo"]["contents"][0]["text"] == "shot 1, 3, one shot;"
    code, _, err = run_cli(emu, tmp_path, capsys, *args)
    assert code == 0 and len(creates(emu)) == 3, err  # the rerun resumed every row: nothing paid twice


def test_a_csv_manifest_takes_the_text_form(emu, env, tmp_path, images):
    start, _ = images
    manifest = tmp_path / "jobs.csv"
    manifest.write_text('image,model,duration,shots\n'
                        f'{start.name},kling-v3,5,2:a boat leaves|3:the harbour at dusk\n'
                        f'{start.name},kling-v3,5,"[{{""duration"": 5, ""prompt"": ""a | b""}}]"\n')
    rows = batch.load_manifest(manifest)
    assert [row.request.shots for row in rows] == [TWO, (Shot(5, "a | b"),)]


@pytest.mark.parametrize(("shots", "field", "words"), [
    ("2:a|2:b", "shots", "the shots sum to 4 s; duration is 5 s"),
    ([{"duration": 2, "prompt": "a"}, {"duration": 0, "prompt": "b"}], "shots[1].duration", "at least 1"),
    ("2:a|x", "shots[1]", "SECONDS:TEXT"),
    ({"duration": 5, "prompt": "a"}, "shots", "not a single value"),
    ("5:" + "x" * 513, "shots[0].prompt", "at most 512"),
])
def test_a_bad_storyboard_row_is_named_and_nothing_is_sent(emu, env, tmp_path, images, shots, field, words):
    start, _ = images
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"image": start.name, "prompt": "fine", "model": "kling-v3"}) + "\n"
                        + json.dumps({"image": start.name, "model": "kling-v3", "duration": 5, "shots": shots}) + "\n")
    with pytest.raises(batch.ManifestError) as caught:
        batch.load_manifest(manifest)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (2, field) and words in problem.message, problem
    assert emu.requests == []


def test_check_storyboard_is_the_one_the_queue_time_check_calls():
    caps = capability_table().get("kling-v3")
    assert check_storyboard(caps, "image2video", [], "5", "a prompt") == ()
    assert check_storyboard(caps, "text2video", TWO, "5", "") == TWO
