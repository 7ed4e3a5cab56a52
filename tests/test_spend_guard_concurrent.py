"""Two prompts posted at once are each judged on their own Kling nodes by the limit per prompt.

A host of its own with a rate card (prices known without a run), a limit of 15 units per prompt and a
test-only gate node whose async validation holds one prompt open between the spend guard's on_prompt and
its Kling nodes' validate_inputs, while a second prompt with the same node ids is posted and answered.
The gate fails when it runs, so nothing reaches Kling. Before the guard kept its note per prompt_id, the
held prompt was judged on the second prompt's nodes (both cases below failed).
"""
from __future__ import annotations

import ast
import json
import random
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import creates
from kling_devtools.sample_images import START_NAME, write_sample_images

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 15
EXPENSIVE = {"model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5"}  # 10 units on the card
CHEAP = {"model_name": "kling-v1-6", "mode": "std", "duration": "5"}  # 4 units
RATES = [{"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "units": 10},
         {"endpoint": "image2video", "model_name": "kling-v1-6", "units": 4}]

GATE_PACK = '''
import asyncio, os, time

GATES = {gates!r}


class KlingTestGate:
    """Passes its image on; its validation waits until the test writes <token>.release (a test fixture)."""
    CATEGORY = "testing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"image": ("IMAGE",), "token": ("STRING", {{"default": ""}})}}}}

    @classmethod
    async def VALIDATE_INPUTS(cls, token):
        open(os.path.join(GATES, token + ".entered"), "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(GATES, token + ".release")) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return True

    def run(self, image, token):
        raise RuntimeError("queue-time test only: nothing runs past this gate")


NODE_CLASS_MAPPINGS = {{"KlingTestGate": KlingTestGate}}
'''


@pytest.fixture(scope="module")
def gated(comfy_install, emulator_process, tmp_path_factory):
    """(host, gates folder): the pack, the gate node, the rate card and KLING_MAX_UNITS=15."""
    root = tmp_path_factory.mktemp("gated")
    gates, pack = root / "gates", root / "kling_test_gate"
    gates.mkdir()
    pack.mkdir()
    (pack / "__init__.py").write_text(GATE_PACK.format(gates=str(gates)), encoding="utf-8")
    card = root / "card.json"
    card.write_text(json.dumps({"rates": RATES}), encoding="utf-8")
    env = {"KLING_API_BASE": emulator_process.url, "KLING_API_KEY": emulator_process.api_key,
           "KLING_RATE_CARD": str(card), "KLING_MAX_UNITS": str(LIMIT)}
    with ch.ComfyHost(env=env, install=comfy_install, extra_custom_nodes=[pack]) as host:
        host.require_nodes("KlingImageToVideo", "KlingTestGate")
        for picture in write_sample_images(root / "inputs"):
            host.upload_image(picture)
        yield host, gates


def gated_prompt(token: str, kling_nodes: dict[str, dict[str, str]]) -> dict[str, Any]:
    """LoadImage -> gate(token) -> one Kling Image to Video per entry (node id -> its combination), each
    with a preview of its frames."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
        "2": {"class_type": "KlingTestGate", "inputs": {"image": ["1", 0], "token": token}},
    }
    for node_id, combination in kling_nodes.items():
        prompt[node_id] = {"class_type": "KlingImageToVideo", "inputs": {
            "image": ["2", 0], "prompt": "leaves drift", "negative_prompt": "", "cfg_scale": 0.5,
            "seed": random.randrange(1 << 40), "sound": "off", **combination}}
        prompt[f"{node_id}9"] = {"class_type": "PreviewImage", "inputs": {"images": [node_id, 0]}}
    return prompt


def post(host, prompt: dict[str, Any], prompt_id: str | None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"prompt": prompt, "client_id": host.client_id}
    if prompt_id is not None:
        body["prompt_id"] = prompt_id
    answer = host.request("POST", "/prompt", json_body=body)
    return answer.status, answer.json()


def post_while_held(host, gates: Path, held: dict[str, dict[str, str]], other: dict[str, dict[str, str]],
                    prompt_id: str | None = None) -> tuple[tuple[int, dict], tuple[int, dict]]:
    """Posts the ``held`` prompt from a thread and, while its validation waits at the gate (after on_prompt,
    before its Kling nodes), posts and gets the answer to ``other``; then lets the first go on."""
    token = uuid.uuid4().hex
    (gates / f"{token}-other.release").touch()  # the other prompt's gate does not wait
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(post, host, gated_prompt(token, held), prompt_id)
        deadline = time.monotonic() + 60
        while not (gates / f"{token}.entered").exists():
            assert time.monotonic() < deadline and not first.done(), "the held prompt never reached its gate"
            time.sleep(0.02)
        second = post(host, gated_prompt(f"{token}-other", other), prompt_id)
        assert not first.done()  # the second was answered while the first was still being validated
        (gates / f"{token}.release").touch()
        answers = first.result(timeout=60), second
    host.wait_idle(timeout=60)  # accepted prompts stop at their gate
    return answers


def node_errors_text(answer: tuple[int, dict]) -> str:
    return json.dumps(answer[1].get("node_errors"))


def test_another_prompts_nodes_are_not_counted(gated, emulator_process):
    """Alone, each passes (10 and 4 + 10 units); counting the second's node 30 with the first's would refuse."""
    host, gates = gated
    held, other = post_while_held(host, gates, {"30": EXPENSIVE}, {"30": CHEAP, "31": EXPENSIVE})
    assert held[0] == 200, node_errors_text(held)
    assert other[0] == 200, node_errors_text(other)
    assert creates(emulator_process) == []


def test_a_prompts_own_nodes_are_all_counted(gated, emulator_process):
    """The held prompt's two nodes (10 + 10 units) are refused although the other prompt (one node, 4
    units) was posted and noted in between; the other passes."""
    host, gates = gated
    held, other = post_while_held(host, gates, {"30": EXPENSIVE, "31": EXPENSIVE}, {"30": CHEAP})
    assert held[0] == 400
    assert set(held[1]["node_errors"]) == {"30", "31"}
    assert "Estimated cost of 2 tasks: 20 units" in node_errors_text(held)
    assert f"limit of {LIMIT} units per prompt" in node_errors_text(held)
    assert other[0] == 200, node_errors_text(other)
    assert creates(emulator_process) == []


def test_one_prompt_id_for_two_prompts_at_once_is_refused_not_guessed(gated, emulator_process):
    """A client reusing a prompt_id while its first post is validated: the guard cannot tell the prompts'
    nodes apart, so it refuses the nodes it validates under that id and says why."""
    host, gates = gated
    shared = str(uuid.uuid4())
    held, other = post_while_held(host, gates, {"30": CHEAP, "31": CHEAP}, {"30": CHEAP, "31": CHEAP},
                                  prompt_id=shared)
    for answer in (held, other):
        assert answer[0] == 400
        assert f"prompt_id {shared} was posted for two prompts at once" in node_errors_text(answer)
    # once both are answered the id is free again
    (gates / f"{shared}.release").touch()
    status, body = post(host, gated_prompt(shared, {"30": CHEAP, "31": CHEAP}), shared)
    assert status == 200, body
    host.wait_idle(timeout=60)
    assert creates(emulator_process) == []


NOTE_LIFETIME = r"""
import asyncio, importlib.util, sys
sys.argv = ['main.py', '--cpu']
import utils.install_util
import comfy.options
comfy.options.enable_args_parsing()
spec = importlib.util.spec_from_file_location('kling_pack', PACK + '/__init__.py', submodule_search_locations=[PACK])
pack = importlib.util.module_from_spec(spec); sys.modules['kling_pack'] = pack; spec.loader.exec_module(pack)
from kling_pack.nodes import spend_guard as sg
from kling_pack.kling_api.costs.estimates import SpendLimits
sg.node_limits = lambda: SpendLimits(per_prompt=15.0)
sg._node_estimates = lambda prompt: {node_id: node_id for node_id in prompt}  # stand-ins: only the keys count
seen = {}

async def request(data):
    sg.on_prompt(data)
    seen[data['prompt_id']] = sorted(sg._pending[data['prompt_id']].others)
    await asyncio.sleep(0)

async def main():
    first, second = {'prompt': {'3': {}, '4': {}}}, {'prompt': {'3': {}, '7': {}}, 'prompt_id': 'mine'}
    await asyncio.gather(request(first), request(second))
    await asyncio.sleep(0)  # the tasks' done callbacks
    seen['after requests'] = sorted(sg._pending)

asyncio.run(main())
sg.on_prompt({'prompt': {'1': {}, '2': {}}, 'prompt_id': 'outside'})  # no request: the age limit drops it
seen['outside'] = sorted(sg._pending)
sg.PENDING_TTL_S = -1
asyncio.run(request({'prompt': {'1': {}, '2': {}}, 'prompt_id': 'later'}))  # the next note sweeps old ones
seen['swept'] = sorted(sg._pending)
sg.on_prompt({'prompt': {'1': {}}, 'prompt_id': 'single'})  # one Kling node counts only itself: no note
seen['single'] = sorted(sg._pending)
print(repr(seen))
"""


def test_a_note_lives_as_long_as_the_request_that_posted_it(comfy_install):
    """In ComfyUI's own Python: on_prompt keys the note by the prompt_id (minted when absent, as the server
    would) and drops it when the posting request's task ends; outside a request, by age."""
    done = subprocess.run([comfy_install.python, "-c", f"PACK = {str(ROOT)!r}\n" + NOTE_LIFETIME],
                          capture_output=True, text=True, timeout=180, cwd=str(comfy_install.comfyui_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    minted = [key for key in seen if key not in ("mine", "later", "after requests", "outside", "swept", "single")]
    assert len(minted) == 1 and str(uuid.UUID(minted[0])) == minted[0]
    assert seen[minted[0]] == ["3", "4"] and seen["mine"] == ["3", "7"]
    assert seen["after requests"] == []
    assert seen["outside"] == ["outside"]
    assert seen["swept"] == [] and seen["single"] == []
