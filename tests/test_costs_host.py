"""Cost estimate and spend guard inside a real headless ComfyUI, against the emulator (which reports
final_unit_deduction): the estimate of a combination is Kling's last deduction for it, a limit below it
refuses the prompt at queue time with nothing sent, a batch is counted before any create."""
from __future__ import annotations

import random

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import creates, load_ui, node_id_of
from kling_devtools.workflow_convert import ui_to_api

from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]

TURBO_PRO_5 = {"model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5"}


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo")
    return sample_host


@pytest.fixture
def limits(host):
    """Sets the spend limits as the settings page does; back to none afterwards (the host is shared)."""
    def set_limits(per_prompt=None, per_day=None) -> dict:
        answer = host.request("POST", "/kling/spend_limits", json_body={"per_prompt": per_prompt, "per_day": per_day})
        assert answer.status == 200, answer.body
        return answer.json()
    yield set_limits
    set_limits()


def i2v_prompt(object_info: dict, batch: int = 1, **inputs) -> tuple[dict, str]:
    ui = load_ui("kling_image_to_video")
    prompt = ui_to_api(ui, object_info)
    kling = node_id_of(ui, "KlingImageToVideo")
    prompt[kling]["inputs"].update(seed=random.randrange(1 << 40), **inputs)
    if batch > 1:
        prompt["900"] = {"class_type": "RepeatImageBatch", "inputs": {"image": prompt[kling]["inputs"]["image"],
                                                                     "amount": batch}}
        prompt[kling]["inputs"]["image"] = ["900", 0]
    return prompt, kling


def plan_info(host, node_type: str, values: dict) -> list[str]:
    answer = host.request("POST", "/kling/widget_plan", json_body={"node_type": node_type, "values": values,
                                                                  "linked": []})
    assert answer.status == 200, answer.body
    return answer.json()["info"]


def deduction_of(emulator_process, task_id: str) -> float:
    client = KlingClient(Credentials(api_key=Secret(emulator_process.api_key), source="test"), emulator_process.url)
    return float(client.get_task(task_id).final_unit_deduction)


def test_spend_limits_route_keeps_the_values_and_refuses_bad_ones(host, limits):
    answer = limits(per_prompt=5, per_day="20")
    assert (answer["per_prompt"], answer["per_day"]) == (5.0, 20.0)
    assert host.get_json("/kling/spend_limits")["effective"] == {"per_prompt": 5.0, "per_day": 20.0}
    bad = host.request("POST", "/kling/spend_limits", json_body={"per_prompt": "lots"})
    assert bad.status == 400 and "per_prompt='lots'" in bad.json()["error"]
    foreign = host.request("POST", "/kling/spend_limits", json_body={"per_prompt": 0},
                           headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    assert host.get_json("/kling/spend_limits")["per_prompt"] == 5.0  # unchanged by the refused posts


def test_every_node_that_creates_tasks_shows_a_cost_line_and_no_other_node_does(host, object_info):
    kling_nodes = sorted(name for name, info in object_info.items() if info.get("category") == "Kling")
    with_cost = {name for name in kling_nodes if any(line.startswith("Estimated cost:")
                                                     for line in plan_info(host, name, {}))}
    # Video Extend costs a task but has no table rules: its cost line must not hang on the rules.
    assert with_cost == {"KlingImageToVideo", "KlingTextToVideo", "KlingMultiImageToVideo", "KlingVideoExtend"}
    assert {"KlingCameraControl", "KlingMotionBrush", "KlingTaskResult"} <= set(kling_nodes) - with_cost


def test_estimate_is_the_last_deduction_a_lower_limit_refuses_at_queue_time_and_a_batch_counts_three(
        host, object_info, emulator_process, limits):
    prompt, kling = i2v_prompt(object_info, **TURBO_PRO_5)
    entry = host.run(prompt, timeout=180)
    task_id = host.output_files(entry, kling)[0].stem.removeprefix("Kling_")
    deducted = deduction_of(emulator_process, task_id)
    assert deducted > 0
    # The node shows it: the widget plan's info lines (rendered on the node in both canvases).
    values = {"model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5", "sound": "off"}
    assert f"Estimated cost: {deducted:g} units per image (a batch of B images costs B tasks), from the ledger" \
        in plan_info(host, "KlingImageToVideo", values)
    # A combination no test runs (13 s): Kling's price table (Kling 3.0 Turbo at 720p: 0.8 units/s x 13 s)...
    unrun = {"model_name": "kling-3.0-turbo", "resolution": "720p", "duration": "13"}
    lines = [line for line in plan_info(host, "KlingImageToVideo", unrun) if line.startswith("Estimated cost:")]
    assert len(lines) == 1 and lines[0].startswith("Estimated cost: 10.4 units ($1.456) per image"), lines
    assert "from Kling's price table" in lines[0]
    # ... and a model the price table does not list says so, never a guess.
    assert "Estimated cost: unknown until the first run of this combination" in \
        plan_info(host, "KlingImageToVideo", {"model_name": "kling-v2-1-master", "duration": "10"})

    limits(per_prompt=deducted - 0.5)
    assert f"Spend guard: {deducted - 0.5:g} units per prompt" in plan_info(host, "KlingImageToVideo", values)
    emulator_process.reset()
    again, _ = i2v_prompt(object_info, **TURBO_PRO_5)
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(again)
    text = str(info.value.node_errors)
    assert f"estimated cost {deducted:g} units" in text and f"limit of {deducted - 0.5:g} units per prompt" in text
    assert "Settings > Kling > Costs" in text and task_id in text  # where to change it, where the estimate came from
    assert emulator_process.requests() == []  # nothing was sent

    limits(per_prompt=2 * deducted)  # one task passes at queue time; the batch of 3 is refused before any create
    with pytest.raises(ch.PromptFailed) as failed:
        host.run(i2v_prompt(object_info, batch=3, **TURBO_PRO_5)[0], timeout=120)
    assert f"estimated cost {3 * deducted:g} units" in str(failed.value)
    assert f"(3 tasks x {deducted:g})" in str(failed.value)
    assert emulator_process.requests() == []

    limits(per_prompt=1.5 * deducted)  # each of two nodes passes alone; the prompt of both is refused
    two, kling = i2v_prompt(object_info, **TURBO_PRO_5)
    two["901"] = {**two[kling], "inputs": {**two[kling]["inputs"], "seed": random.randrange(1 << 40)}}
    two["902"] = {"class_type": "PreviewImage", "inputs": {"images": ["901", 0]}}
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(two)
    assert f"Estimated cost of 2 tasks: {2 * deducted:g} units" in str(info.value.node_errors)
    assert emulator_process.requests() == []


def test_an_unknown_cost_does_not_block_and_the_node_says_so(host, object_info, emulator_process, limits):
    limits(per_prompt=0.01)
    prompt, kling = i2v_prompt(object_info, model_name="kling-v2-1", mode="std", duration="10")
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=240)
        texts = ws.progress_texts(kling)
    assert entry["status"]["status_str"] == "success"
    assert len(creates(emulator_process)) == 1
    assert any("unknown until the first run of this combination" in t for t in texts), texts
    assert any("not counted against the limit" in t for t in texts), texts


def test_a_rate_card_overrides_the_ledger_and_a_batch_over_the_balance_warns(comfy_install, emulator_process,
                                                                              tmp_path):
    """A host of its own with KLING_RATE_CARD: its price is the estimate; a batch of 3 priced over the
    emulator's remaining units is warned about on the node (and still runs: Kling's count may lag)."""
    from kling_devtools.sample_images import write_sample_images

    remaining = KlingClient(Credentials(api_key=Secret(emulator_process.api_key), source="test"),
                            emulator_process.url).account_costs().remaining
    per_task = remaining / 2  # three tasks are 1.5 times the balance
    card = tmp_path / "card.json"
    card.write_text(f'{{"rates": [{{"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "units": {per_task}}}]}}')
    env = {"KLING_API_BASE": emulator_process.url, "KLING_API_KEY": emulator_process.api_key,
           "KLING_RATE_CARD": str(card)}
    with ch.ComfyHost(env=env, install=comfy_install) as host:
        for picture in write_sample_images(tmp_path):
            host.upload_image(picture)
        object_info = host.object_info()
        host.request("POST", "/kling/spend_limits", json_body={"per_prompt": per_task - 1})
        with pytest.raises(ch.PromptRejected) as info:  # the card's price, not a ledger's, is the estimate
            host.queue(i2v_prompt(object_info, **TURBO_PRO_5)[0])
        assert f"estimated cost {per_task:g} units" in str(info.value.node_errors)
        assert f"from the rate card {card}" in str(info.value.node_errors)
        host.request("POST", "/kling/spend_limits", json_body={})
        prompt, kling = i2v_prompt(object_info, batch=3, **TURBO_PRO_5)
        with host.ws_messages() as ws:
            entry = host.run(prompt, timeout=300)
            texts = ws.progress_texts(kling)
    assert entry["status"]["status_str"] == "success"
    warning = f"the estimated cost {3 * per_task:g} units exceeds the {remaining:g} units remaining"
    assert any(warning in t for t in texts), texts
    assert any("12 hours late" in t for t in texts)
    assert len(creates(emulator_process)) == 3
