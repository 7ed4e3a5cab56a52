"""4K in the real frontend (both canvases, the pinned and the newest frontend; see frontend_checks.py): picked
by a user's clicks, kling-v3's mode and kling-3.0's resolution offer 4k and queue it; a model without 4K keeps
the value, says why and one click moves it a tier down. Expectations come from kling_api's widget plan."""
from __future__ import annotations

import pytest
from frontend_checks import (NODE, TABLE, assert_no_page_errors, assert_renders, fix_label, pick, problems_text,
                             python_plan)

from kling_devtools.browser import kling_frontend as kf




@pytest.mark.browser
def test_4k_is_offered_on_kling_v3_and_kling_3_0_only_and_refused_elsewhere_with_a_fix(kling_page, ui_setup):
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node], zoom=0.9)
    for model, widget in (("kling-v3", "mode"), ("kling-3.0", "resolution")):
        pick(kling_page, node, "model_name", model, ui_setup)
        st = kf.state(kling_page, node)
        caps = TABLE.get(model)
        assert st["widgets"][widget]["values"] == list(caps.modes or caps.resolutions) and \
            "4k" in st["widgets"][widget]["values"], st["widgets"][widget]
        pick(kling_page, node, widget, "4k", ui_setup)
        st = kf.state(kling_page, node)
        assert problems_text(st) == "", problems_text(st)
        assert_renders(st, python_plan(NODE, st))
        queued = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
        assert (queued["model_name"], queued[widget]) == (model, "4k")

    # kling-2.6 has no 4k: the value is kept, the node says why, and one click moves it to 1080p
    pick(kling_page, node, "model_name", "kling-2.6", ui_setup)
    st = kf.state(kling_page, node)
    assert "4k" not in st["widgets"]["resolution"]["values"] and st["widgets"]["resolution"]["value"] == "4k"
    assert "resolution: 4k is kling-3.0 only" in problems_text(st), problems_text(st)
    assert fix_label(st) == "Fix: use 1080p", fix_label(st)
    assert_renders(st, python_plan(NODE, st))
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["resolution"]["value"] == "1080p" and problems_text(st) == "", st["panel"]
    assert_no_page_errors(kling_page)
