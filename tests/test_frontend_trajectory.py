"""The Motion Brush's trajectory editor in the real frontend: paths drawn, dragged and removed with the
mouse, saved and reloaded, edited on a zoomed canvas, and run: the emulator receives the path in
Kling's bottom-left origin. Its paths, colours and point limits are the server's (GET
/kling/trajectory_rules); without them it says so and draws nothing."""
from __future__ import annotations

import json
import time

import pytest

from frontend_checks import EXTRA_NOISE, NODE, REPO, assert_no_page_errors, new_prompt_id, shot
from kling_api.rules.motion import trajectory_rules
from kling_devtools.browser import kling_frontend as kf
from kling_devtools.host_workflows import creates
from kling_devtools.sample_images import START_NAME, write_sample_images

BRUSH = "KlingMotionBrush"
RULES = trajectory_rules()
RULES_ROUTE = "**/kling/trajectory_rules"


def _counts(*first: int) -> str:
    """The editor's points per path ("3,1,0,0,0,0"): ``first`` then zeros, one entry per path of the rules."""
    return ",".join(str(c) for c in list(first) + [0] * (len(RULES["paths"]) - len(first)))


def _editor_box(page, brush: int) -> dict:
    return kf.js(page.page, """(() => {
        const n = window.__kt.node(arg);
        const root = n.__klingTrajectory.root;
        const c = n.__klingTrajectory.canvas;
        const r = c.getBoundingClientRect();
        return {left: r.left, top: r.top, width: r.width, height: r.height, cw: c.clientWidth, ch: c.clientHeight,
                image: root.dataset.image, points: root.dataset.points};
    })()""", brush)


def _client_point(box: dict, image_size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Image pixel -> client px, by the editor's documented layout: the image contain-fitted, centred."""
    iw, ih = image_size
    scale = min(box["cw"] / iw, box["ch"] / ih)
    ox, oy = (box["cw"] - iw * scale) / 2, (box["ch"] - ih * scale) / 2
    ratio = box["width"] / box["cw"]
    return box["left"] + (ox + x * scale) * ratio, box["top"] + (oy + y * scale) * ratio


def _brush_value(page, brush: int) -> list:
    return json.loads(kf.state(page, brush)["widgets"]["trajectories"]["value"])


def _close(points, expected, tol: float = 3.0) -> bool:
    return len(points) == len(expected) and all(abs(a - b) <= tol for p, q in zip(points, expected)
                                                for a, b in zip(p, q))


def _editor_buttons(page, brush: int) -> list[dict]:
    return kf.js(page.page, """[...window.__kt.node(arg).__klingTrajectory.root.querySelectorAll('[data-path]')]
        .map((b) => ({path: b.dataset.path, colour: b.dataset.colour, title: b.title,
                      border: getComputedStyle(b).borderTopColor}))""", brush)


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _status(page, brush: int) -> str:
    return kf.js(page.page, "window.__kt.node(arg).__klingTrajectory.status.textContent", brush)


def _wait_for_points(page, brush: int, counts: str, timeout: int = 10_000) -> None:
    """Until the editor shows ``counts`` points per path ("3,1,0,0,0,0"): a busy machine may take
    longer than any fixed pause to handle a click, and the next click must meet the drawn state."""
    page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.points === '{counts}'",
        timeout=timeout)


def _wait_for_value(page, brush: int, accept, timeout: float = 10.0) -> list:
    """The trajectories value once ``accept(value)`` holds (polled), else the last value seen."""
    deadline = time.monotonic() + timeout
    value = _brush_value(page, brush)
    while not accept(value) and time.monotonic() < deadline:
        kf.settle(page, 100)
        value = _brush_value(page, brush)
    return value


@pytest.mark.browser
@pytest.mark.slow
def test_trajectory_editor_draw_save_reload_and_run(kling_page, ui_host, tmp_path, request):
    emulator = request.getfixturevalue("emulator_process")
    start, _ = write_sample_images(tmp_path)
    ui_host.upload_image(start, name=START_NAME)
    workflow = json.loads((REPO / "example_workflows" / "kling_motion_brush.json").read_text())
    brush_entry = next(n for n in workflow["nodes"] if n["type"] == BRUSH)
    brush_entry["widgets_values"][0] = "[]"  # start with no path: the user draws it
    kf.load_workflow(kling_page, workflow)
    kf.install(kling_page.page)
    brush = brush_entry["id"]
    kf.frame_node(kling_page, [brush], zoom=1.0, top=150, left=300)  # room for the selection toolbox
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.image === '640x384'", timeout=15_000)
    size = (640, 384)
    mouse = kling_page.page.mouse
    # one button per path of the server's rules, in its colour, named after its input and colour
    buttons = _editor_buttons(kling_page, brush)
    assert [b["path"] for b in buttons] == [str(i) for i in range(len(RULES["paths"]))], buttons
    for button, path in zip(buttons, RULES["paths"]):
        assert button["colour"] == path["colour"] and button["border"] == _rgb(path["colour"]), button
        assert path["input"] in button["title"] and path["colour_name"] in button["title"], button

    def at(x: float, y: float) -> tuple[float, float]:
        """Where image pixel (x, y) is on screen now (a user aims at what they see)."""
        return _client_point(_editor_box(kling_page, brush), size, x, y)

    # click three points of path 1 (the sun rises to the right), then drag the middle one
    for count, (x, y) in enumerate(((160, 250), (300, 150), (480, 80)), 1):
        mouse.click(*at(x, y))
        _wait_for_points(kling_page, brush, _counts(count))
    mouse.move(*at(300, 150))
    mouse.down()
    for step in range(1, 6):
        mouse.move(*at(300 + 12 * step, 150 - 8 * step))
    mouse.up()
    _wait_for_value(kling_page, brush, lambda v: bool(v) and _close(v[0], [[160, 250], [360, 110], [480, 80]]))
    # path 2: a single point is kept while drawing, but a path needs the rules' least points
    kf.js(kling_page.page, "window.__kt.node(arg).__klingTrajectory.root.querySelector('[data-path=\"1\"]').click()",
          brush)
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.active === '1'", timeout=5000)
    mouse.click(*at(500, 300))
    _wait_for_points(kling_page, brush, _counts(3, 1))
    lo, hi = RULES["points"]["min"], RULES["points"]["max"]
    status = _status(kling_page, brush)
    assert RULES["paths"][1]["colour_name"] in status and f"needs {lo}-{hi}" in status, status
    # right-click off a point: nothing (far enough: the hit radius is 9 CSS px, ~20 image px on a small editor)
    mouse.click(*at(600, 340), button="right")
    kf.settle(kling_page, 150)
    value = _wait_for_value(kling_page, brush, lambda v: len(v) == 2)
    assert _close(value[0], [[160, 250], [360, 110], [480, 80]]), value
    assert _close(value[1], [[500, 300]]), value
    mouse.click(*at(*value[1][0]), button="right")  # right-click the point: removed
    _wait_for_points(kling_page, brush, _counts(3))
    value = _wait_for_value(kling_page, brush, lambda v: len(v) == 1)
    assert len(value) == 1 and _close(value[0], [[160, 250], [360, 110], [480, 80]]), value
    shot(kling_page, "frontend_trajectory_editor")

    # save, clear, reload: the JSON and the drawing come back as saved
    saved = kf.serialize_graph(kling_page)
    saved_brush = next(n for n in saved["nodes"] if n["type"] == BRUSH)
    assert saved_brush["widgets_values"] == [json.dumps(value, separators=(",", ":"))]
    kf.clear_graph(kling_page)
    kf.load_workflow(kling_page, saved)
    kf.install(kling_page.page)
    assert _brush_value(kling_page, brush) == value
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.points === '{_counts(3)}'",
        timeout=10_000)
    # still editable after the reload, on a zoomed-out canvas: drag the last point
    kf.frame_node(kling_page, [brush], zoom=0.75, top=60, left=300)
    box = _editor_box(kling_page, brush)
    assert box["width"] < box["cw"]  # the editor really is scaled with the canvas
    mouse.move(*at(*value[0][2]))
    mouse.down()
    for step in range(1, 5):
        mouse.move(*at(value[0][2][0] + 5 * step, value[0][2][1] + 5 * step))
    mouse.up()
    moved = _wait_for_value(kling_page, brush, lambda v: bool(v) and _close(v[0][2:], [[value[0][2][0] + 20,
                                                                                      value[0][2][1] + 20]]))
    assert _close(moved[0][:2], value[0][:2], tol=0) and _close(moved[0][2:], [[value[0][2][0] + 20, value[0][2][1] + 20]]), moved
    value = moved
    shot(kling_page, "frontend_trajectory_editor_reloaded")

    # run it from the page: the emulator receives the path flipped to Kling's bottom-left origin
    emulator.reset()
    kling = next(n["id"] for n in saved["nodes"] if n["type"] == NODE)
    kf.set_value(kling_page, kling, "seed", int(time.time()) % 100000)
    before = set(ui_host.history())
    kling_page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    prompt_id = new_prompt_id(ui_host, before, timeout=120)
    assert prompt_id, "nothing was queued"
    entry = ui_host.wait(prompt_id, timeout=180)
    assert entry["status"]["status_str"] == "success"
    sent = creates(emulator)
    assert len(sent) == 1
    body = sent[0]["json"]
    assert body["dynamic_masks"][0]["trajectories"] == [{"x": x, "y": 383 - y} for x, y in value[0]]
    assert body["static_mask"] and len(body["dynamic_masks"]) == 1
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_trajectory_editor_says_when_its_rules_cannot_be_loaded(kling_page):
    """The server does not answer the rules: the editor says why and takes no click (it never guesses
    Kling's numbers); once the server answers again it shows the paths of the rules."""
    page = kling_page.page
    page.route(RULES_ROUTE, lambda route: route.fulfill(status=503, content_type="application/json",
                                                        body=json.dumps({"error": "rules unavailable"})))
    brush = kf.add_node(kling_page, BRUSH, (100, 100))
    kf.frame_node(kling_page, [brush], zoom=1.0, top=150, left=300)
    page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.rules === 'error'", timeout=15_000)
    status = _status(kling_page, brush)
    assert "rules not loaded" in status and "rules unavailable" in status, status
    assert _editor_buttons(kling_page, brush) == []
    box = _editor_box(kling_page, brush)
    page.mouse.click(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
    kf.settle(kling_page, 300)
    assert kf.state(kling_page, brush)["widgets"]["trajectories"]["value"] == "[]"
    shot(kling_page, "frontend_trajectory_rules_missing")
    # the server answers again: the editor asks again by itself
    page.unroute(RULES_ROUTE)
    page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.rules === 'ready'", timeout=15_000)
    assert [b["colour"] for b in _editor_buttons(kling_page, brush)] == [p["colour"] for p in RULES["paths"]]
    assert kling_page.unexpected_errors(EXTRA_NOISE + [r"503"]) == []
