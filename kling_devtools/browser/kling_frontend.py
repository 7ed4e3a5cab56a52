"""Helpers for driving the Kling node in the real ComfyUI frontend (used by tests/test_frontend*.py).

Everything goes through a ``kling_devtools.browser.ComfyPage``; node ids are LiteGraph node ids. The node is driven
the way a user drives it in the page's canvas (``page.canvas``):
- Nodes 2.0 ("vue"): real clicks on the node's own DOM controls (``[data-node-id=..]``: the combo's
  button, then its ``role=option``), and what is shown is read from the node's DOM;
- LiteGraph: the canvas's combo menu (a real click) or the widget's own setValue (callback +
  onWidgetChanged, what the canvas calls on a pick).
The one-click fix is always a real click on the node's fix button.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .. import PACK_LINK_NAME

KLING_NODE = "KlingImageToVideo"
EXTENSION_BASE = f"/extensions/{PACK_LINK_NAME}"

# JS helpers installed once per page as window.__kt
_HELPERS = r"""
(() => {
  if (window.__kt) return;
  const node = (id) => {
    const n = window.app.graph.getNodeById(id);
    if (!n) throw new Error('no node ' + id);
    return n;
  };
  const widget = (n, name) => (n.widgets || []).find((w) => w.name === name);
  const shownInDom = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  window.__kt = {
    node, widget,
    // names of the widgets a Vue node (Nodes 2.0) renders: each row's label or its control's aria-label
    domWidgets(id) {
      const el = document.querySelector(`[data-node-id="${id}"]`);
      if (!el) return null;
      const names = new Set();
      for (const row of el.querySelectorAll('.lg-node-widget')) {
        if (!shownInDom(row)) continue;
        const first = (row.innerText || '').split('\n').map((t) => t.trim()).find(Boolean);
        if (first) names.add(first);
        for (const a of row.querySelectorAll('[aria-label]')) names.add(a.getAttribute('aria-label'));
      }
      return Array.from(names);
    },
    panel(id) {
      const root = document.querySelector(`[data-kling-plan="${id}"]`);
      const part = (sel) => root?.querySelector(sel);
      const text = (el) => (shownInDom(root) && shownInDom(el) ? el.textContent : '');
      return { shown: shownInDom(root), warning: text(part('[data-kling-warning]')),
               fix: text(part('[data-kling-fix]')), info: text(part('[data-kling-info]')) };
    },
    state(id) {
      const n = node(id);
      const ws = {};
      for (const w of n.widgets || []) {
        const values = w.options && w.options.values;
        ws[w.name] = {
          type: w.type, value: w.value ?? null, hidden: !!w.hidden,
          label: w.label ?? null, text: w.text ?? null,
          values: Array.isArray(values) ? values.slice() : null,
          y: w.y ?? null, height: w.computedHeight ?? null,
        };
      }
      const tail = (n.inputs || []).find((s) => s.name === 'image_tail');
      return { widgets: ws, size: [n.size[0], n.size[1]], pos: [n.pos[0], n.pos[1]],
               tail_connected: !!tail && tail.link != null, order: (n.widgets || []).map((w) => w.name),
               dom: this.domWidgets(id), panel: this.panel(id), plan: n.__klingPlan ?? null };
    },
    // the path the canvas takes when a user picks a value (BaseWidget.setValue: callback + onWidgetChanged)
    setValue(id, name, value) {
      const n = node(id);
      const w = widget(n, name);
      if (!w) throw new Error('no widget ' + name);
      w.setValue(value, { e: undefined, node: n, canvas: window.app.canvas });
      window.app.graph.setDirtyCanvas(true, true);
    },
    // client (CSS pixel) coordinates of a point given in graph space
    toClient(x, y) {
      const canvas = window.app.canvas;
      const [cx, cy] = canvas.ds.convertOffsetToCanvas([x, y]);
      const rect = canvas.canvas.getBoundingClientRect();
      return [rect.left + cx, rect.top + cy];
    },
    widgetCenter(id, name, fraction = 0.5) {
      const n = node(id);
      const w = widget(n, name);
      if (!w) throw new Error('no widget ' + name);
      if (w.hidden) throw new Error('widget ' + name + ' is hidden');
      const h = w.computedHeight || window.LiteGraph.NODE_WIDGET_HEIGHT;
      return this.toClient(n.pos[0] + n.size[0] * fraction, n.pos[1] + w.y + h / 2);
    },
    connect(fromId, slot, toId, inputName) {
      const to = node(toId);
      const link = node(fromId).connect(slot, to, inputName);
      window.app.graph.setDirtyCanvas(true, true);
      return !!link;
    },
    disconnect(toId, inputName) {
      const to = node(toId);
      to.disconnectInput(to.findInputSlot(inputName));
      window.app.graph.setDirtyCanvas(true, true);
    },
  };
})()
"""


def install(page) -> None:
    page.evaluate(f"() => {_HELPERS}")


def js(page, expression: str, arg: Any = None) -> Any:
    """Evaluate ``(arg) => <expression>`` with ``__kt`` installed."""
    install(page)
    return page.evaluate(f"(arg) => {expression}", arg)


def add_node(page, node_type: str, pos: tuple[float, float]) -> int:
    """A new node on the canvas (``ComfyPage.add_node``); returns its id."""
    return page.add_node(node_type, pos)


def state(page, node_id: int) -> dict:
    st = js(page, "window.__kt.state(arg)", node_id)
    st["static_dom"] = bool(getattr(getattr(page, "setup", None), "static_vue_widgets", False))
    if is_vue(page) and st["dom"] is None:
        raise AssertionError(f"Nodes 2.0 is on but node {node_id} is not rendered as [data-node-id]")
    return st


def visible(st: dict, name: str) -> bool:
    """Whether the user sees widget ``name``: in Nodes 2.0 read from the node's DOM, else its hidden flag.
    Where Nodes 2.0 draws the widget list only once (``UiSetup.static_vue_widgets``; see
    test_frontend_widgets.test_early_nodes2_keeps_its_first_widget_list) the widget's own flag is read."""
    if st.get("dom") is not None and not st.get("static_dom"):
        return name in st["dom"]
    return not st["widgets"][name]["hidden"]


def problems_text(st: dict) -> str:
    """The warning the node shows ("" when none)."""
    return st["panel"]["warning"]


def fix_label(st: dict) -> str:
    """The label of the node's one-click fix button ("" when none is shown)."""
    return st["panel"]["fix"]


def is_vue(page) -> bool:
    return getattr(page, "canvas", "litegraph") == "vue"


def set_value(page, node_id: int, name: str, value: Any, *, script: bool = False) -> None:
    """Set a widget as a user does: in Nodes 2.0 a combo is picked with real clicks on the node; else the
    widget's own setValue (callback + onWidgetChanged, the canvas's path). ``script=True`` always takes
    the latter (a value no menu offers, as a loaded workflow or another node may hold)."""
    if not script and is_vue(page) and js(page, "(() => { const w = window.__kt.widget(window.__kt.node(arg[0]), arg[1]);"
                                            " return w.type === 'combo' && String(w.value) !== String(arg[2]) &&"
                                            " (window.__kt.domWidgets(arg[0]) || []).includes(arg[1]); })()",
                                          [node_id, name, value]):
        # (a combo the node does not show cannot be clicked: its value is set as a script would)
        choose_combo(page, node_id, name, str(value))
        return
    js(page, "window.__kt.setValue(arg[0], arg[1], arg[2])", [node_id, name, value])
    settle(page)


def settle(page, ms: int = 150) -> None:
    """Wait for the nodes' widget-plan requests to be answered, then let the canvas draw a frame or two."""
    page.page.wait_for_function("() => (window.app?.graph?._nodes || []).every((n) => !n.__klingPlanPending)",
                                timeout=10_000)
    page.page.wait_for_timeout(ms)


def bring_into_view(page, selector: str, margin: float = 60) -> None:
    """Pan the canvas (as a user drags it) until the element is inside the window."""
    moved = page.evaluate("""([selector, margin]) => {
        const el = document.querySelector(selector);
        if (!el) return false;
        const r = el.getBoundingClientRect();
        const ds = window.app.canvas.ds;
        let dy = 0, dx = 0;
        if (r.bottom > window.innerHeight - margin) dy = window.innerHeight - margin - r.bottom;
        if (r.top + dy < margin) dy = margin - r.top;
        if (r.right > window.innerWidth - margin) dx = window.innerWidth - margin - r.right;
        if (!dx && !dy) return false;
        ds.offset[0] += dx / ds.scale;
        ds.offset[1] += dy / ds.scale;
        window.app.canvas.setDirty(true, true);
        return true;
    }""", [selector, margin])
    if moved:
        page.page.wait_for_timeout(250)


def vue_node(page, node_id: int):
    return page.page.locator(f'[data-node-id="{node_id}"]')


def click_fix(page, node_id: int) -> None:
    """ONE real click on the node's fix button (a DOM control in both canvases)."""
    settle(page)
    selector = f'[data-kling-plan="{node_id}"] [data-kling-fix]'
    button = page.page.locator(selector)
    button.wait_for(state="visible", timeout=5000)
    bring_into_view(page, selector)
    button.click()
    settle(page, 250)


def widget_center(page, node_id: int, name: str, fraction: float = 0.5) -> tuple[float, float]:
    x, y = js(page, "window.__kt.widgetCenter(arg[0], arg[1], arg[2])", [node_id, name, fraction])
    return x, y


def click_widget(page, node_id: int, name: str, fraction: float = 0.5) -> None:
    """A real mouse click on a widget drawn on the canvas."""
    settle(page)
    x, y = widget_center(page, node_id, name, fraction)
    page.page.mouse.click(x, y)
    settle(page)


def _vue_options(page, node_id: int, name: str) -> Any:
    settle(page)
    bring_into_view(page, f'[data-node-id="{node_id}"] [role=combobox][aria-label="{name}"]')
    vue_node(page, node_id).get_by_role("combobox", name=name, exact=True).click()
    options = page.page.get_by_role("option")
    options.first.wait_for(timeout=5000)
    return options


def choose_combo(page, node_id: int, name: str, value: str, timeout: float = 5.0) -> None:
    """Pick a combo value the way a user does: click the widget, then the entry of the menu it opens."""
    if is_vue(page):
        options = _vue_options(page, node_id, name)
        texts = [options.nth(i).inner_text().strip() for i in range(options.count())]
        if value not in texts:
            page.page.keyboard.press("Escape")
            raise AssertionError(f"{value!r} not offered by {name}: {texts}")
        options.nth(texts.index(value)).click()
        settle(page)
        return
    click_widget(page, node_id, name)
    menu = page.page.locator(".litecontextmenu .litemenu-entry", has_text=value)
    deadline = time.monotonic() + timeout
    entries = page.page.locator(".litecontextmenu .litemenu-entry")
    while not entries.count():
        if time.monotonic() > deadline:
            raise AssertionError(f"no combo menu opened for {name}")
        page.page.wait_for_timeout(50)
    exact = [i for i in range(entries.count()) if entries.nth(i).inner_text().strip() == value]
    if not exact:
        raise AssertionError(f"{value!r} not offered by {name}: {combo_menu_entries(page)}")
    entries.nth(exact[0]).click()
    del menu
    settle(page)


def combo_menu_entries(page) -> list[str]:
    entries = page.page.locator(".litecontextmenu .litemenu-entry")
    return [entries.nth(i).inner_text().strip() for i in range(entries.count())]


def open_combo_menu(page, node_id: int, name: str) -> list[str]:
    """Open a combo's menu with a real click and return what it offers (close it with close_menus)."""
    if is_vue(page):
        options = _vue_options(page, node_id, name)
        return [options.nth(i).inner_text().strip() for i in range(options.count())]
    click_widget(page, node_id, name)
    page.page.locator(".litecontextmenu .litemenu-entry").first.wait_for(timeout=5000)
    return combo_menu_entries(page)


def close_menus(page) -> None:
    page.page.keyboard.press("Escape")
    page.evaluate("() => window.LiteGraph.closeAllContextMenus && window.LiteGraph.closeAllContextMenus(window)")
    settle(page, 100)


def connect(page, from_id: int, slot: int, to_id: int, input_name: str) -> None:
    assert js(page, "window.__kt.connect(arg[0], arg[1], arg[2], arg[3])", [from_id, slot, to_id, input_name])
    settle(page)


def disconnect(page, to_id: int, input_name: str) -> None:
    js(page, "window.__kt.disconnect(arg[0], arg[1])", [to_id, input_name])
    settle(page)


def clear_graph(page) -> None:
    page.evaluate("() => { window.app.graph.clear(); window.app.graph.setDirtyCanvas(true, true); }")
    settle(page)


def load_workflow(page, workflow: dict) -> None:
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'kling-test'); }", workflow)
    settle(page, 400)


def serialize_graph(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.app.graph.serialize()))")


def graph_to_prompt(page) -> dict:
    return page.evaluate("async () => JSON.parse(JSON.stringify(await window.app.graphToPrompt()))")


def browser_storage(page) -> dict:
    """Everything in localStorage and sessionStorage, as {area: {key: value}}."""
    return page.evaluate("""() => {
        const dump = (s) => Object.fromEntries(Array.from({length: s.length}, (_, i) => s.key(i)).map(k => [k, s.getItem(k)]));
        return {local: dump(window.localStorage), session: dump(window.sessionStorage)};
    }""")


def frame_node(page, node_ids: list[int], zoom: float = 1.0, top: float = 150, left: float = 90) -> None:
    """Pan the canvas so these nodes sit in the visible area (for readable screenshots)."""
    page.evaluate("""([ids, zoom, top, left]) => {
        const canvas = window.app.canvas;
        const nodes = ids.map((id) => window.app.graph.getNodeById(id));
        const minX = Math.min(...nodes.map((n) => n.pos[0]));
        const minY = Math.min(...nodes.map((n) => n.pos[1] - window.LiteGraph.NODE_TITLE_HEIGHT));
        canvas.ds.scale = zoom;
        canvas.ds.offset[0] = -minX + left / zoom;
        canvas.ds.offset[1] = -minY + top / zoom;
        canvas.setDirty(true, true);
    }""", [node_ids, zoom, top, left])
    settle(page, 250)


def fit_view(page) -> None:
    """The frontend's own "Zoom to fit" (command Comfy.Canvas.FitView), nothing selected."""
    page.evaluate("""async () => {
        window.app.canvas.deselectAll?.();
        await window.app.extensionManager.command.execute('Comfy.Canvas.FitView');
    }""")
    settle(page, 300)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
