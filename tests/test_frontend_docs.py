"""The pack's docs in the real frontend: the help pages (their model table is the capability table), every
input's and output's tooltip, the node's help panel, and the README's pictures of the node."""
from __future__ import annotations

import json
import os
import re

import pytest
from frontend_checks import (
    NODE,
    REPO,
    assert_no_page_errors,
    fix_label,
    problems_text,
    setting_name,
    shot,
    tail_cases,
)

from kling_api.rules.capabilities import markdown_table
from kling_devtools.browser import SCREENSHOT_DIR
from kling_devtools.browser import kling_frontend as kf


def test_help_page_model_table_matches_the_capability_table():
    doc = (REPO / "web" / "docs" / f"{NODE}.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- capability-table:start -->\n(.*?)\n<!-- capability-table:end -->", doc, re.S)
    assert block, "the capability-table markers are missing from the help page"
    assert block.group(1).strip() == markdown_table().strip(), (
        "web/docs/KlingImageToVideo.md is out of date; paste kling_api.rules.capabilities.markdown_table() "
        "between its capability-table markers:\n" + markdown_table())


@pytest.mark.host
def test_every_input_and_output_has_a_tooltip(comfy_host):
    locale = json.loads((REPO / "locales" / "en" / "nodeDefs.json").read_text(encoding="utf-8"))
    info = comfy_host.object_info()
    kling = {name: d for name, d in info.items() if d.get("python_module", "").endswith(kf.PACK_LINK_NAME)}
    assert set(kling) == set(locale), (sorted(kling), sorted(locale))
    for name, d in kling.items():
        entry = locale[name]
        assert entry["display_name"] == d["display_name"]
        inputs = {i: spec for section in ("required", "optional") for i, spec in d["input"].get(section, {}).items()}
        assert sorted(entry["inputs"]) == sorted(inputs), name
        for i, spec in inputs.items():
            assert entry["inputs"][i].get("tooltip"), f"{name}.{i} has no tooltip"
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            assert entry["inputs"][i].get("name") == options.get("display_name", i), f"{name}.{i}"
        assert sorted(entry["outputs"], key=int) == [str(i) for i in range(len(d["output"]))], name
        for i, out_name in enumerate(d["output_name"]):
            assert entry["outputs"][str(i)].get("tooltip"), f"{name} output {i} has no tooltip"
            assert entry["outputs"][str(i)].get("name") == out_name
    served = comfy_host.get_json("/i18n")["en"]["nodeDefs"]
    assert served[NODE] == locale[NODE]  # the server hands our locale to the frontend


@pytest.mark.browser
def test_node_help_panel_shows_the_pack_docs(kling_page, ui_host):
    for name in ("KlingImageToVideo", "KlingTaskResult", "KlingCameraControl", "KlingMotionBrush"):
        r = ui_host.request("GET", f"{kf.EXTENSION_BASE}/docs/{name}.md")
        assert r.status == 200, (name, r.status)
        assert r.body.decode("utf-8").startswith("# Kling "), name
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node], top=330)  # room above the node for the selection toolbox
    kling_page.evaluate(f"() => {{ app.canvas.deselectAll?.(); app.canvas.selectNode(app.graph.getNodeById({node})); "
                        f"app.canvas.setDirty(true, true); }}")
    info = kling_page.page.locator("[data-testid=info-button]")
    info.first.wait_for(state="visible", timeout=10_000)
    info.first.click()
    panel = kling_page.page.get_by_text("Widgets that follow the model")
    panel.first.wait_for(state="visible", timeout=10_000)
    assert kling_page.page.get_by_text("Fix: use").count() >= 1
    kling_page.page.wait_for_timeout(300)
    shot(kling_page, "frontend_help_panel")
    assert_no_page_errors(kling_page)


# --------------------------------------------------------------------------------------------------
# the README's pictures of the node (made here, in the newest frontend, in both canvases)

README_SHOTS = {"litegraph": "docs/images/node-litegraph.png", "vue": "docs/images/node-nodes2.png"}
UPDATE_DOCS_ENV = "KLING_UPDATE_DOCS_SCREENSHOTS"  # =1: write the README's pictures into docs/images/


def test_readme_shows_the_node_in_both_canvases():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in README_SHOTS.values():
        assert f"]({path})" in readme, f"the README does not show {path}"
        data = (REPO / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 400_000, (path, len(data))


@pytest.mark.browser
def test_node_picture_for_the_readme(kling_page, ui_setup):
    """The Image to Video node with an end frame on a refusing combination: warning and fix shown, in this
    setup's canvas. In the newest frontend with KLING_UPDATE_DOCS_SCREENSHOTS=1 the picture replaces the
    README's (docs/images/), else it goes to artifacts/screenshots/<setup>/."""
    load_image = kf.add_node(kling_page, "LoadImage", (-300, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    model, mode, duration = tail_cases()[0]
    for name, value in (("model_name", model), (setting_name(model), mode), ("duration", duration)):
        kf.set_value(kling_page, node, name, value)
    kf.connect(kling_page, load_image, 0, node, "image_tail")
    kf.frame_node(kling_page, [node], zoom=0.85, top=120, left=300)
    kf.settle(kling_page, 400)
    st = kf.state(kling_page, node)
    assert problems_text(st) and fix_label(st), st["panel"]
    box = kling_page.evaluate("""(id) => {
        const el = document.querySelector(`[data-node-id="${id}"]`);
        if (el) { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }
        const n = app.graph.getNodeById(id);
        const [x, y] = window.__kt.toClient(n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT);
        const s = app.canvas.ds.scale;
        return [x, y, n.size[0] * s, (n.size[1] + LiteGraph.NODE_TITLE_HEIGHT) * s];
    }""", node)
    margin = 12
    clip = {"x": max(0, box[0] - margin), "y": max(0, box[1] - margin),
            "width": box[2] + 2 * margin, "height": min(box[3] + 2 * margin, 900 - max(0, box[1] - margin))}
    target = SCREENSHOT_DIR / ui_setup.id / f"readme_node_{ui_setup.canvas}.png"
    if not ui_setup.pinned and os.environ.get(UPDATE_DOCS_ENV) == "1":
        target = REPO / README_SHOTS[ui_setup.canvas]
    target.parent.mkdir(parents=True, exist_ok=True)
    kling_page.page.screenshot(path=str(target), clip=clip)
    assert target.stat().st_size > 5_000
    assert_no_page_errors(kling_page)
