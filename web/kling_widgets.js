// The Kling video nodes: widgets that follow the capability table (GET /kling/capabilities).
//
// - cfg_scale is hidden for models that do not take it, mode for models without a mode choice, sound
//   for models without sound (while it is off);
// - the duration list offers only the model's durations;
// - when the combination is invalid (an end frame connected where the model/mode/duration refuses it,
//   a duration the model does not make, sound on where the model/mode has none, a model Kling retired,
//   ...) the node says why and offers the nearest valid combination (for a retired model: its
//   successor) as ONE button. Nothing is ever changed without that click: a workflow saved with an
//   invalid combination loads as saved and shows the problem.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import {
  describeChange,
  nearestValid,
  problems,
  widgetPlan,
} from "./kling_constraints.js";

/**
 * Which widgets and inputs the table decides, per node. A node without model_name (Kling Video Extend:
 * the source video's model and mode apply) has nothing to follow. The models a node offers are its
 * model_name choices (the server builds them from the table: current models of the node's endpoint).
 */
export const NODE_WIDGETS = {
  KlingImageToVideo: ["model_name", "mode", "duration", "cfg_scale", "sound", "image_tail", "camera_control",
    "motion_brush"],
  KlingTextToVideo: ["model_name", "mode", "duration", "cfg_scale", "sound"],
  KlingMultiImageToVideo: ["model_name", "mode", "duration"],
  KlingVideoExtend: [],
};
const RULE_WIDGETS = ["model_name", "mode", "duration", "sound"]; // a change of these re-checks the node
const WARNING_WIDGET = "kling_constraints";
const FIX_WIDGET = "kling_fix";
const HIDDEN_SIZE = () => [0, -4]; // the core's own idiom for a widget that takes no room (groupNode.ts)

let table = null;
let tableError = null;
let tablePromise = null;

/** The capability table, fetched once per page from the route that serves kling_api/capabilities.json. */
export function loadCapabilities() {
  if (!tablePromise) {
    tablePromise = api
      .fetchApi("/kling/capabilities", { cache: "no-store" })
      .then((res) => {
        if (!res.ok) throw new Error(`GET /kling/capabilities answered HTTP ${res.status}`);
        return res.json();
      })
      .then((data) => {
        table = data;
        tableError = null;
        return data;
      })
      .catch((err) => {
        tableError = String((err && err.message) || err);
        tablePromise = null; // try again on the next node
        console.warn("[Kling] capability table not loaded; widgets are not checked:", tableError);
        return null;
      });
  }
  return tablePromise;
}

function applies(node, name) {
  return (NODE_WIDGETS[node.type] || NODE_WIDGETS[node.comfyClass] || []).includes(name);
}

/** A widget the table decides on this node (undefined when the node has no such widget or rule). */
function findWidget(node, name) {
  if (!applies(node, name)) return undefined;
  return (node.widgets || []).find((w) => w && w.name === name);
}

function anyWidget(node, name) {
  return (node.widgets || []).find((w) => w && w.name === name);
}

function inputConnected(node, name) {
  if (!applies(node, name)) return false;
  const slot = (node.inputs || []).find((s) => s && s.name === name);
  return !!slot && slot.link != null;
}

function tailConnected(node) {
  return inputConnected(node, "image_tail");
}

/** The `type` of the Kling Camera Control feeding camera_control (through Reroutes), when known. */
function cameraType(node) {
  const slot = node.findInputSlot ? node.findInputSlot("camera_control") : -1;
  let source = slot >= 0 && node.getInputNode ? node.getInputNode(slot) : null;
  for (let hops = 0; source && source.type === "Reroute" && hops < 20; hops++) source = source.getInputNode(0);
  const widget = source && source.type === "KlingCameraControl" ? anyWidget(source, "type") : null;
  return widget ? widget.value : undefined;
}

/** The widget state the rules look at. */
export function widgetState(node) {
  const value = (name) => {
    const w = findWidget(node, name);
    return w ? w.value : undefined;
  };
  return {
    model_name: value("model_name"),
    mode: value("mode"),
    duration: value("duration") == null ? "" : String(value("duration")),
    image_tail: tailConnected(node),
    camera_control: inputConnected(node, "camera_control"),
    motion_brush: inputConnected(node, "motion_brush"),
    camera_type: inputConnected(node, "camera_control") ? cameraType(node) : undefined,
    sound: value("sound") === "on",
  };
}

/** The models the node offers: its model_name choices (as the server built them from the table). */
function nodeScope(node) {
  const values = findWidget(node, "model_name")?.options?.values;
  return Array.isArray(values) ? { models: values.slice() } : undefined;
}

function setHidden(widget, hidden) {
  if (!widget) return false;
  const changed = !!widget.hidden !== hidden;
  widget.hidden = hidden;
  if (hidden && widget.computeSize !== HIDDEN_SIZE) {
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

// --- the warning drawn on the node ------------------------------------------------------------------

const LINE_HEIGHT = 15;
const FONT = "12px Arial, sans-serif";
let measureCtx = null;

function measure(text) {
  if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
  measureCtx.font = FONT;
  return measureCtx.measureText(text).width;
}

function wrapLines(text, width) {
  const lines = [];
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const candidate = line ? `${line} ${word}` : word;
      if (line && measure(candidate) > width) {
        lines.push(line);
        line = word;
      } else {
        line = candidate;
      }
    }
    if (line) lines.push(line);
  }
  return lines;
}

function makeWarningWidget(node) {
  const margin = 15;
  const widget = {
    type: "kling_warning",
    name: WARNING_WIDGET,
    value: "",
    text: "",
    hidden: true,
    serialize: false, // not in widgets_values (LGraphNode.serialize)
    options: { serialize: false }, // not in the API prompt (graphToPrompt)
    lines(width) {
      return wrapLines(this.text, Math.max(40, width - 2 * margin - 16));
    },
    computeSize(width) {
      if (this.hidden || !this.text) return [0, -4];
      const w = width || node.size[0];
      return [w, this.lines(w).length * LINE_HEIGHT + 10];
    },
    draw(ctx, _node, width, y) {
      if (this.hidden || !this.text) return;
      const lines = this.lines(width);
      const height = lines.length * LINE_HEIGHT + 10;
      ctx.save();
      ctx.fillStyle = "rgba(120, 53, 15, 0.85)";
      ctx.strokeStyle = "#f59e0b";
      ctx.lineWidth = 1;
      ctx.beginPath();
      if (ctx.roundRect) ctx.roundRect(margin, y, width - 2 * margin, height, 4);
      else ctx.rect(margin, y, width - 2 * margin, height);
      ctx.fill();
      ctx.stroke();
      ctx.fillStyle = "#fde68a";
      ctx.font = FONT;
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      lines.forEach((line, i) => ctx.fillText(line, margin + 8, y + 5 + (i + 1) * LINE_HEIGHT - 4));
      ctx.restore();
    },
    mouse() {
      return false;
    },
  };
  return node.addCustomWidget(widget) || widget;
}

function ensureExtraWidgets(node) {
  // Added last, after every widget of the node definition: widgets_values stays index-aligned because
  // these two are never serialised (a non-serialised widget in the middle would leave a hole).
  let warning = anyWidget(node, WARNING_WIDGET);
  if (!warning) warning = makeWarningWidget(node);
  let fix = anyWidget(node, FIX_WIDGET);
  if (!fix) {
    fix = node.addWidget("button", FIX_WIDGET, null, () => applyFix(node), { serialize: false });
    fix.serialize = false;
    fix.label = "Fix";
    setHidden(fix, true);
  }
  return { warning, fix };
}

// --- applying the table -----------------------------------------------------------------------------

function stateKey(node) {
  const durationWidget = findWidget(node, "duration");
  return JSON.stringify([widgetState(node), !!table, tableError]) +
    (durationWidget && durationWidget.options && durationWidget.options.values === node.__klingDurations ? "" : "*");
}

/**
 * Bring the widgets in line with the table for the current values. Never changes a value.
 * how: "create" (new node), "edit" (a value or a link changed: keep the user's extra height),
 *      "load" (the saved size already fits the saved state: only grow if needed).
 */
export function refresh(node, how = "edit") {
  if (!node || node.__klingRefreshing) return;
  node.__klingRefreshing = true;
  try {
    const { warning, fix } = ensureExtraWidgets(node);
    const before = node.computeSize()[1];
    const state = widgetState(node);
    const scope = nodeScope(node);
    let found = [];
    let fixTo = null;

    if (table) {
      const plan = widgetPlan(table, state.model_name);
      if (plan) {
        const duration = findWidget(node, "duration");
        if (duration && duration.options) {
          duration.options.values = plan.durations;
          node.__klingDurations = plan.durations;
        }
        const mode = findWidget(node, "mode");
        if (mode && mode.options && plan.showMode) mode.options.values = plan.modes;
        setHidden(mode, !plan.showMode);
        setHidden(findWidget(node, "cfg_scale"), !plan.showCfgScale);
        // sound stays visible while it is on, so the warning below points at a widget the user can see
        setHidden(findWidget(node, "sound"), !plan.showSound && !state.sound);
      } else {
        // unknown model (e.g. an old workflow): show everything, say so below
        for (const name of ["mode", "cfg_scale", "sound"]) setHidden(findWidget(node, name), false);
      }
      found = problems(table, state, scope);
      if (found.length) fixTo = nearestValid(table, state, scope);
    } else if (tableError) {
      found = [{ field: "", message: `Kling capability table not loaded (${tableError}); widgets are not checked` }];
    }

    warning.text = found.map((p) => `⚠ ${p.message}`).join("\n");
    if (found.length && !fixTo && table) {
      const inputs = ["image_tail", "camera_control", "motion_brush"].filter((name) => state[name]);
      warning.text += `\nNo valid combination in the table fits; disconnect ${inputs.join(" or ") || "image_tail"}` +
        (state.camera_type && state.camera_type !== "simple" ? " or use camera type simple." : ".");
    }
    setHidden(warning, !found.length);
    warning.value = warning.text;
    node.__klingProblems = found;
    node.__klingFix = fixTo;
    if (fixTo) fix.label = `Fix: use ${describeChange(table, state, fixTo) || "the nearest valid combination"}`;
    setHidden(fix, !fixTo);

    const after = node.computeSize()[1];
    if (how === "load") {
      if (node.size[1] < after) node.setSize([node.size[0], after]);
    } else if (after !== before) {
      node.setSize([node.size[0], Math.max(after, node.size[1] + (after - before))]);
    }
    node.__klingKey = stateKey(node);
    node.setDirtyCanvas?.(true, true);
  } finally {
    node.__klingRefreshing = false;
  }
}

function setValue(node, name, value) {
  const widget = findWidget(node, name);
  if (!widget || widget.value === value) return;
  const old = widget.value;
  widget.value = value;
  widget.callback?.(value, app.canvas, node);
  node.onWidgetChanged?.(name, value, old, widget);
}

/** The one-click fix: set the nearest valid model/mode/duration/sound the warning offered. */
export function applyFix(node) {
  if (!table) return false;
  const fix = nearestValid(table, widgetState(node), nodeScope(node));
  if (!fix) return false;
  setValue(node, "model_name", fix.model_name);
  setValue(node, "mode", fix.mode);
  setValue(node, "duration", fix.duration);
  if (findWidget(node, "sound")) setValue(node, "sound", fix.sound ? "on" : "off");
  refresh(node, "edit");
  node.graph?.setDirtyCanvas?.(true, true);
  return true;
}

app.registerExtension({
  name: "Kling.ImageToVideo.Constraints", // the name predates the other nodes; kept for saved settings

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!(NODE_WIDGETS[nodeData?.name] || []).includes("model_name")) return;
    await loadCapabilities();
    const proto = nodeType.prototype;

    const onNodeCreated = proto.onNodeCreated;
    proto.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      refresh(this, "create");
      if (!table) loadCapabilities().then(() => refresh(this, "edit"));
      return r;
    };

    const configure = proto.configure;
    proto.configure = function () {
      this.__klingConfiguring = true;
      try {
        return configure.apply(this, arguments);
      } finally {
        this.__klingConfiguring = false;
        refresh(this, "load");
      }
    };

    const onConnectionsChange = proto.onConnectionsChange;
    proto.onConnectionsChange = function () {
      const r = onConnectionsChange?.apply(this, arguments);
      if (!this.__klingConfiguring) refresh(this, "edit");
      return r;
    };

    const onWidgetChanged = proto.onWidgetChanged;
    proto.onWidgetChanged = function (name) {
      const r = onWidgetChanged?.apply(this, arguments);
      if (!this.__klingConfiguring && RULE_WIDGETS.includes(name)) refresh(this, "edit");
      return r;
    };

    // Values can also change without a widget event (a script, a paste, "refresh node definitions"):
    // re-check when the drawn state differs from the state the widgets were last fitted to.
    const onDrawForeground = proto.onDrawForeground;
    proto.onDrawForeground = function () {
      const r = onDrawForeground?.apply(this, arguments);
      if (!this.__klingConfiguring && !this.__klingRefreshing && this.__klingKey !== stateKey(this)) {
        refresh(this, "edit");
      }
      return r;
    };
  },
});
