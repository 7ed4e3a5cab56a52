// The pack's nodes render the widget plan the server computes (POST /kling/widget_plan): which widgets
// show, the choices of each combo, why the current values are refused, the one-click fix and extra
// info lines. The rules live in Python only (kling_api/rules/validation.py + the capability table); this file
// holds none: it sends the node type, the widget values and the linked inputs, and draws the answer.
//
// Nothing is changed without the user's click on the fix: a workflow saved with refused values loads
// as saved and shows why. Works in the LiteGraph canvas and in Nodes 2.0 (Vue nodes), from frontend
// 1.32.9 on:
// - a pick is noticed through the widget's own callback (Vue nodes call it; they do not call
//   node.onWidgetChanged), wrapped when the node is created, before the canvas captures it;
// - visibility is written to widget.hidden and widget.options.hidden, combo choices to
//   widget.options.values (each node's own array, also updated in place: see setChoices);
// - the panel (warning, fix button, info lines) is a DOM widget created with the node, so every canvas
//   has it from the first render; its content is plain DOM, updated in place. On the LiteGraph canvas its
//   height is the widget's computeSize (the frontend insets the element by the widget's margin on every
//   side), and the node grows to fit it whenever its text or width changes.
// Frontend 1.32.9's Vue nodes render a snapshot of each node's widget list taken when the node is added
// (useGraphNodeManager: later changes reach it only for values): there a widget cannot be hidden or
// shown after the first render. The node still shows the warning and its fix, the choices of an open
// dropdown follow (same array), and the queue-time check still refuses.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const PACK = new URL(import.meta.url).pathname.split("/").slice(-2, -1)[0];
const PACK_MODULE = `custom_nodes.${PACK}`; // nodeData.python_module of this pack's nodes
const PANEL = "kling_plan"; // the node's panel: info lines, the warning and the fix button
const CAMERA_INPUT = "camera_control"; // the plan also looks at the linked camera move's type
const HIDDEN_SIZE = () => [0, -4]; // the core's own idiom for a widget that takes no room (groupNode.ts)
const LINE_HEIGHT = 16;
const BUTTON_HEIGHT = 30;
const FONT = "12px Arial, sans-serif";
// The panel's box model, as makePanel styles it (computeSize adds these up).
const PANEL_PAD_X = 6;
const PANEL_PAD_Y = 4;
const PANEL_GAP = 4;
const WARNING_PAD = 6; // horizontal; 4 vertical, plus a 1 px border
const WRAP_SLACK = 4; // measured text may wrap a little earlier in the DOM than on a canvas

function widgetOf(node, name) {
  return (node.widgets || []).find((w) => w && w.name === name);
}

function isPackNode(nodeData) {
  return nodeData?.python_module === PACK_MODULE;
}

// --- what the page sends ----------------------------------------------------------------------------

/** The node feeding input `name`, through Reroutes. */
function sourceOf(node, name) {
  const slot = node.findInputSlot ? node.findInputSlot(name) : -1;
  let source = slot >= 0 && node.getInputNode ? node.getInputNode(slot) : null;
  for (let hops = 0; source && source.type === "Reroute" && hops < 20; hops++) source = source.getInputNode(0);
  return source;
}

/** The request body: the node type, its widget values and its linked optional inputs. */
export function planRequest(node) {
  const values = {};
  for (const w of node.widgets || []) {
    if (!w || !w.name || w.name === PANEL || w.serialize === false) continue;
    const v = w.value;
    if (v === null || ["string", "number", "boolean"].includes(typeof v)) values[w.name] = v;
  }
  const linked = (node.inputs || []).filter((s) => s && s.link != null).map((s) => s.name);
  if (linked.includes(CAMERA_INPUT)) {
    const type = widgetOf(sourceOf(node, CAMERA_INPUT) || {}, "type")?.value;
    if (typeof type === "string") values.camera_type = type;
  }
  return { node_type: node.comfyClass || node.type, values, linked };
}

// --- the panel (a DOM widget: a real control in both canvases) ----------------------------------------

let measureCtx = null;
function textWidth(text) {
  if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
  measureCtx.font = FONT;
  return measureCtx.measureText(text).width;
}

function wrappedLineCount(text, width) {
  let count = 0;
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    count++;
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const candidate = line ? `${line} ${word}` : word;
      if (line && textWidth(candidate) > width) {
        count++;
        line = word;
      } else line = candidate;
    }
  }
  return count;
}

function makePanel(node) {
  const root = document.createElement("div");
  root.className = "kling-plan";
  root.style.cssText = `box-sizing:border-box;width:100%;padding:${PANEL_PAD_Y}px ${PANEL_PAD_X}px;font:${FONT};` +
    `line-height:${LINE_HEIGHT}px;display:none;flex-direction:column;gap:${PANEL_GAP}px;overflow:hidden;`;
  const info = document.createElement("div");
  info.dataset.klingInfo = "";
  info.style.cssText = "color:var(--descrip-text,#bbb);white-space:pre-wrap;";
  const warning = document.createElement("div");
  warning.dataset.klingWarning = "";
  warning.setAttribute("role", "alert");
  warning.style.cssText = "color:#fde68a;background:rgba(120,53,15,0.85);border:1px solid #f59e0b;" +
    `border-radius:4px;padding:4px ${WARNING_PAD}px;white-space:pre-wrap;`;
  const fix = document.createElement("button");
  fix.type = "button";
  fix.dataset.klingFix = "";
  fix.style.cssText = `font:${FONT};height:${BUTTON_HEIGHT - 4}px;cursor:pointer;border-radius:4px;` +
    "border:1px solid #f59e0b;background:#78350f;color:#fff;";
  fix.addEventListener("click", (event) => {
    event.stopPropagation();
    applyFix(node);
  });
  // keep pointer gestures on the button from dragging the node
  for (const type of ["pointerdown", "mousedown"]) fix.addEventListener(type, (e) => e.stopPropagation());
  root.append(info, warning, fix);

  const widget = node.addDOMWidget(PANEL, "kling_plan", root, {
    serialize: false,
    hideOnZoom: false,
    getValue: () => undefined,
    setValue: () => {},
  });
  widget.serialize = false; // not in widgets_values (LGraphNode.serialize)
  widget.parts = { root, info, warning, fix };
  // The height at the node's real width: the element is always as wide as the node (less the margins),
  // whereas LGraphNode.computeSize asks at the width it computes for the node's minimum.
  widget.computeSize = function (width) {
    if (this.hidden) return [0, -4];
    const nodeWidth = node.size?.[0] || width;
    return [width || nodeWidth, panelHeight(node.__klingPlan || {}, nodeWidth, widgetMargin(this))];
  };
  return widget;
}

/** The inset the frontend gives a DOM widget's element on each side (DOMWidget.margin; 0 if it has none). */
function widgetMargin(widget) {
  return Number.isFinite(widget.margin) ? widget.margin : 0;
}

/** The panel's height on a node `nodeWidth` wide: its parts as makePanel lays them out, wrapped at the
 * element's width, plus the widget's margin above and below (the element is that much smaller). */
function panelHeight(plan, nodeWidth, margin) {
  const inner = Math.max(60, nodeWidth - 2 * margin - 2 * PANEL_PAD_X - WRAP_SLACK);
  const parts = [];
  if (plan.info?.length) parts.push(wrappedLineCount(plan.info.join("\n"), inner) * LINE_HEIGHT);
  if (plan.warning) {
    parts.push(wrappedLineCount(`⚠ ${plan.warning}`, inner - 2 * WARNING_PAD - 2) * LINE_HEIGHT + 2 * 4 + 2);
  }
  if (plan.fix) parts.push(BUTTON_HEIGHT - 4);
  const content = parts.reduce((sum, h) => sum + h, 0) + PANEL_GAP * Math.max(0, parts.length - 1);
  return content + 2 * PANEL_PAD_Y + 2 * margin;
}

/** Whether the LiteGraph canvas draws the nodes (Nodes 2.0 lays them out with CSS instead). */
function classicCanvas() {
  return !window.LiteGraph?.vueNodesMode && !app.extensionManager?.setting?.get?.("Comfy.VueNodes.Enabled");
}

/** Grow the node (never shrink it) until its widgets, the panel included, fit. */
function fitHeight(node) {
  const needed = node.computeSize ? node.computeSize()[1] : node.size[1];
  if (node.size[1] < needed) node.setSize([node.size[0], needed]);
}

function setHidden(widget, hidden) {
  if (!widget) return false;
  const changed = !!widget.hidden !== hidden;
  widget.hidden = hidden;
  // (not for the panel: 1.32.9's Vue nodes drop a widget whose options.hidden is set for good)
  if (widget.options && widget.name !== PANEL) widget.options.hidden = hidden;
  if (hidden && widget.computeSize !== HIDDEN_SIZE && widget.name !== PANEL) {
    widget.__klingSizeDescriptor = Object.getOwnPropertyDescriptor(widget, "computeSize") || null;
    widget.computeSize = HIDDEN_SIZE;
  } else if (!hidden && widget.computeSize === HIDDEN_SIZE) {
    const saved = widget.__klingSizeDescriptor;
    if (saved) Object.defineProperty(widget, "computeSize", saved);
    else delete widget.computeSize;
    delete widget.__klingSizeDescriptor;
  }
  return changed;
}

function sameList(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => String(v) === String(b[i]));
}

/** Give each combo of the node its own choices array (a node definition's list may be shared). */
function ownChoices(node) {
  for (const widget of node.widgets || []) {
    if (widget?.type === "combo" && Array.isArray(widget.options?.values) && !widget.__klingChoices) {
      widget.__klingChoices = widget.options.values.slice();
      widget.options.values = widget.__klingChoices;
    }
  }
}

/** New combo choices: a new array for the canvases that watch the option, and the same array updated in
 * place for 1.32.9's Vue nodes, whose snapshot holds the array the node was first drawn with. */
function setChoices(widget, choices) {
  if (widget.__klingChoices) widget.__klingChoices.splice(0, widget.__klingChoices.length, ...choices);
  widget.options.values = choices.slice();
}

/** Draw a plan on the node: widget visibility, combo choices, the panel. Never changes a value. */
export function applyPlan(node, plan, how = "edit") {
  const before = node.computeSize ? node.computeSize()[1] : node.size[1];
  node.__klingPlan = plan;
  for (const [name, state] of Object.entries(plan.widgets || {})) {
    const widget = widgetOf(node, name);
    if (!widget) continue;
    if (typeof state.visible === "boolean") setHidden(widget, !state.visible);
    if (Array.isArray(state.choices) && widget.options && !sameList(widget.options.values, state.choices)) {
      setChoices(widget, state.choices);
    }
  }
  const shown = !!(plan.warning || plan.fix || plan.info?.length);
  const panel = widgetOf(node, PANEL);
  if (panel) {
    const { info, warning, fix } = panel.parts;
    panel.parts.root.dataset.klingPlan = String(node.id); // which node's panel (tests and styles find it)
    info.textContent = (plan.info || []).join("\n");
    info.style.display = plan.info?.length ? "" : "none";
    warning.textContent = plan.warning ? `⚠ ${plan.warning}` : "";
    warning.style.display = plan.warning ? "" : "none";
    fix.textContent = plan.fix ? plan.fix.label : "";
    fix.style.display = plan.fix ? "" : "none";
    panel.parts.root.style.display = shown ? "flex" : "none";
    setHidden(panel, !shown);
  }
  const after = node.computeSize ? node.computeSize()[1] : before;
  if (how !== "load" && after !== before) {
    node.setSize([node.size[0], Math.max(after, node.size[1] + (after - before))]);
  }
  // a node loaded (or, on the LiteGraph canvas, left) shorter than its widgets and panel grows to show them
  if (how === "load" || classicCanvas()) fitHeight(node);
  node.setDirtyCanvas?.(true, true);
}

// --- asking the server ------------------------------------------------------------------------------

/** Ask for the node's plan and draw it; the latest request of a node wins. */
export async function refresh(node, how = "edit") {
  if (!node || node.__klingConfiguring) return;
  const body = planRequest(node);
  const key = JSON.stringify(body);
  if (how === "edit" && key === node.__klingPlanKey) return; // nothing changed since the last answer
  node.__klingPlanKey = key;
  const ticket = (node.__klingPlanTicket || 0) + 1;
  node.__klingPlanTicket = ticket;
  node.__klingPlanPending = (node.__klingPlanPending || 0) + 1;
  try {
    let plan;
    try {
      const res = await api.fetchApi("/kling/widget_plan", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: key,
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
      plan = data;
      node.__klingPlanError = null;
    } catch (err) {
      node.__klingPlanError = String((err && err.message) || err);
      console.warn("[Kling] widget plan not available:", node.__klingPlanError);
      plan = { widgets: {}, warning: `The Kling widget rules could not be loaded (${node.__klingPlanError}); ` +
        "the values are still checked when the workflow is queued.", fix: null, info: [] };
    }
    if (ticket === node.__klingPlanTicket && node.graph) applyPlan(node, plan, how);
  } finally {
    node.__klingPlanPending--;
  }
}

function setValue(node, name, value) {
  const widget = widgetOf(node, name);
  if (!widget || widget.value === value) return;
  const old = widget.value;
  widget.value = value;
  node.__klingApplying = true;
  try {
    widget.callback?.(value, app.canvas, node);
    node.onWidgetChanged?.(name, value, old, widget);
  } finally {
    node.__klingApplying = false;
  }
}

/** The one-click fix: the values the server's plan offered. */
export async function applyFix(node) {
  const fix = node.__klingPlan?.fix;
  if (!fix) return false;
  for (const [name, value] of Object.entries(fix.values || {})) if (value != null) setValue(node, name, value);
  node.graph?.setDirtyCanvas?.(true, true);
  await refresh(node, "edit");
  return true;
}

/** Pack nodes fed by this node's outputs (their plan may read this node, e.g. a camera move's type). */
function downstream(node) {
  const out = [];
  for (const output of node.outputs || []) {
    for (const id of output.links || []) {
      const link = node.graph?.links?.[id] ?? node.graph?.links?.get?.(id);
      const target = link && node.graph.getNodeById(link.target_id);
      if (target?.__klingPlanned) out.push(target);
    }
  }
  return out;
}

function changed(node) {
  if (node.__klingConfiguring || node.__klingApplying) return;
  refresh(node, "edit");
  for (const target of downstream(node)) refresh(target, "edit");
}

/** Wrap every widget's own callback: the one path a pick takes in both canvases. */
function watchWidgets(node) {
  for (const widget of node.widgets || []) {
    if (!widget || widget.__klingWatched || widget.name === PANEL) continue;
    widget.__klingWatched = true;
    const callback = widget.callback;
    widget.callback = function () {
      const r = callback?.apply(this, arguments);
      queueMicrotask(() => changed(node));
      return r;
    };
  }
}

app.registerExtension({
  name: "Kling.ImageToVideo.Constraints", // the name predates the other nodes; kept for saved settings

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isPackNode(nodeData)) return;
    const proto = nodeType.prototype;
    const makesVideo = (nodeData.output || []).includes("VIDEO");

    const onNodeCreated = proto.onNodeCreated;
    proto.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      // The mp4 the node saves plays on the node: the canvases pick the preview by this core field
      // (1.32.9's Nodes 2.0 would otherwise show it as a broken image).
      if (makesVideo) this.previewMediaType = "video";
      this.__klingPlanned = true;
      ownChoices(this);
      setHidden(makePanel(this), true); // with the node, before any canvas draws it
      watchWidgets(this);
      queueMicrotask(() => refresh(this, "create"));
      return r;
    };

    const configure = proto.configure;
    proto.configure = function () {
      this.__klingConfiguring = true;
      try {
        return configure.apply(this, arguments);
      } finally {
        this.__klingConfiguring = false;
        ownChoices(this);
        watchWidgets(this);
        refresh(this, "load");
      }
    };

    const onConnectionsChange = proto.onConnectionsChange;
    proto.onConnectionsChange = function () {
      const r = onConnectionsChange?.apply(this, arguments);
      if (!this.__klingConfiguring) queueMicrotask(() => refresh(this, "edit"));
      return r;
    };

    // The canvas's own path (LiteGraph menus, script setValue) calls this besides the callback; the
    // request is sent once (refresh skips an unchanged body).
    const onWidgetChanged = proto.onWidgetChanged;
    proto.onWidgetChanged = function () {
      const r = onWidgetChanged?.apply(this, arguments);
      queueMicrotask(() => changed(this));
      return r;
    };

    // A narrower node wraps the panel's lines into more rows: it grows to keep them inside.
    const onResize = proto.onResize;
    proto.onResize = function () {
      const r = onResize?.apply(this, arguments);
      if (!this.__klingConfiguring && !this.__klingFitting && this.__klingPlan && classicCanvas()) {
        this.__klingFitting = true;
        try {
          fitHeight(this);
        } finally {
          this.__klingFitting = false;
        }
      }
      return r;
    };

    // Values can also change without any event (a paste, "refresh node definitions", a script setting
    // widget.value): the LiteGraph canvas re-checks while it draws; refresh() sends nothing unchanged.
    const onDrawForeground = proto.onDrawForeground;
    proto.onDrawForeground = function () {
      const r = onDrawForeground?.apply(this, arguments);
      if (!this.__klingConfiguring && !this.__klingPlanPending) refresh(this, "edit");
      return r;
    };
  },
});
