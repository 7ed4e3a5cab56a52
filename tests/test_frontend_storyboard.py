"""The storyboard widget in the real frontend (both canvases, the pinned and the newest frontend): hidden
for a model without storyboards, shown for kling-v3; shots typed into it (one `SECONDS: TEXT` per line) show
their sum against the duration; a mismatch is the node's warning and one click sets the duration; a prompt
beside the shots is named and one click clears it. Expectations come from kling_api's widget plan."""
from __future__ import annotations

import pytest
from frontend_checks import NODE, TABLE, assert_no_page_errors, assert_renders, pick, python_plan, shot

from kling_devtools.browser import kling_frontend as kf

pytestmark = [pytest.mark.browser]

BOARD = "2: a boat leaves the harbour\n3: gulls circle the mast\n5: the sun sets behind the island"
MARK = "__kling_type_here__"




def type_into(page, node: int, name: str, text: str) -> None:
    """Types ``text`` into the text box of widget ``name`` as a user does (Playwright's fill: focus, input
    events), in whichever canvas draws it; the box is found by a mark set first."""
    kf.set_value(page, node, name, MARK, script=True)
    found = kf.js(page.page, """(() => {
        const box = [...document.querySelectorAll('textarea')].find((t) => t.value === arg);
        if (box) box.setAttribute('data-kling-typing', '1');
        return !!box; })()""", MARK)
    assert found, f"no text box shows the {name} widget"
    box = page.page.locator("textarea[data-kling-typing='1']")
    box.scroll_into_view_if_needed()
    box.fill(text)
    kf.js(page.page, "document.querySelector(\"textarea[data-kling-typing='1']\").removeAttribute('data-kling-typing')")
    kf.settle(page, 300)
    assert kf.state(page, node)["widgets"][name]["value"] == text


def test_shots_typed_on_the_node_show_their_sum_and_one_click_fixes_duration_and_prompt(kling_page, ui_setup):
    page = kling_page
    node = kf.add_node(page, NODE, (100, 100))
    kf.frame_node(page, [node], zoom=0.8)
    st = kf.state(page, node)
    assert not TABLE.get(st["widgets"]["model_name"]["value"]).takes_storyboard("image2video")
    if not ui_setup.static_vue_widgets:
        assert not kf.visible(st, "storyboard"), st["order"]  # the default model takes no storyboard

    pick(page, node, "model_name", "kling-v3", ui_setup)
    pick(page, node, "mode", "pro", ui_setup)
    pick(page, node, "duration", "5", ui_setup)
    assert kf.visible(kf.state(page, node), "storyboard")
    type_into(page, node, "prompt", "")  # a storyboard's words go in its shots
    type_into(page, node, "storyboard", BOARD)
    st = kf.state(page, node)
    assert_renders(st, python_plan(NODE, st))
    assert "Storyboard: 3 shots: 2 + 3 + 5 = 10 s; duration is 5 s" in st["panel"]["info"], st["panel"]
    assert kf.problems_text(st).startswith("⚠ shots: the shots sum to 10 s; duration is 5 s"), kf.problems_text(st)
    assert kf.fix_label(st) == "Fix: use 10 s"
    shot(page, "frontend_storyboard_mismatch")
    kf.click_fix(page, node)
    st = kf.state(page, node)
    assert st["widgets"]["duration"]["value"] == "10" and kf.problems_text(st) == "", kf.problems_text(st)
    assert "Storyboard: 3 shots: 2 + 3 + 5 = 10 s, the duration" in st["panel"]["info"]

    type_into(page, node, "prompt", "a harbour at dusk")
    st = kf.state(page, node)
    assert kf.problems_text(st).startswith("⚠ prompt:") and kf.fix_label(st) == "Fix: clear prompt"
    kf.click_fix(page, node)
    st = kf.state(page, node)
    assert st["widgets"]["prompt"]["value"] == "" and kf.problems_text(st) == ""
    shot(page, "frontend_storyboard_ok")
    queued = kf.graph_to_prompt(page)["output"][str(node)]["inputs"]
    assert (queued["model_name"], queued["mode"], queued["duration"]) == ("kling-v3", "pro", "10")
    assert queued["storyboard"] == BOARD and queued["prompt"] == ""
    assert_no_page_errors(page)
