// Kling Motion Brush: a trajectory editor drawn on the node, over the start image.
//
// - The paths are stored in the node's own `trajectories` STRING widget as JSON: one list of [x, y]
//   points per dynamic mask, in the start image's pixels, origin top-left (ComfyUI's convention; the
//   Python side flips to Kling's bottom-left origin). So they are saved in widgets_values and survive
//   save/reload like any widget value; this editor only reads and writes that widget.
// - The start image is found by following the graph: motion_brush output -> the Kling Image to Video it
//   feeds -> its `image` input -> upstream (through Reroutes) to a node that shows an image (node.imgs,
//   e.g. after a run) or a Load Image (its file in input/ via /view).
// - Click on the image adds a point to the selected path, dragging a point moves it, right-click a
//   point removes it. One colour per dynamic mask (the same as the node's input tooltips).
// - The Kling rules it draws by (how many paths, each one's input and colour, how many points a path
//   takes) come from the server, GET /kling/trajectory_rules (kling_api.rules.motion): none is written
//   here. Until they have arrived nothing can be drawn; when they cannot be loaded the editor says so and
//   asks again every few seconds, never guessing them.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "KlingMotionBrush";
const KLING_NODE = "KlingImageToVideo";
const VALUE_WIDGET = "trajectories";
const EDITOR_WIDGET = "kling_trajectory_editor";
const RULES_URL = "/kling/trajectory_rules";
const RULES_RETRY_MS = 3000; // after a failed request, the next try
// purely visual
const HIT_RADIUS = 9; // CSS px
const START_DOT_RADIUS = 6; // CSS px, a path's first point
const DOT_RADIUS = 4.5;
const EDITOR_HEIGHT = 300;

function findWidget(node, name) {
  return (node.widgets || []).find((w) => w && w.name === name);
}

// --- the rules, from the server --------------------------------------------------------------------

let rulesRequest = null; // one request for every editor of the page; forgotten when it fails

/** The answer, checked: {paths: [{input, colour, colour_name}], points: {min, max}, point_rule}. */
function checkRules(data) {
  const paths = data && data.paths;
  const points = data && data.points;
  const ok = Array.isArray(paths) && paths.length > 0 &&
    paths.every((p) => p && typeof p.input === "string" && typeof p.colour === "string" &&
      typeof p.colour_name === "string") &&
    points && Number.isInteger(points.min) && Number.isInteger(points.max) && points.min >= 1 &&
    points.max >= points.min;
  if (!ok) throw new Error("the answer is not the editor's rules (is the server's Kling pack older than the page?)");
  return data;
}

/** The editor's rules (a promise, shared); a failed request is asked again on the next call. */
export function loadRules() {
  if (!rulesRequest) {
    const request = (async () => {
      const res = await api.fetchApi(RULES_URL, { cache: "no-store" });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
      return checkRules(data);
    })();
    rulesRequest = request;
    request.catch(() => {
      if (rulesRequest === request) rulesRequest = null;
    });
  }
  return rulesRequest;
}

/** The paths in the widget, always ``count`` long (one per dynamic mask); bad JSON reads as no paths
 * (the widget keeps its text). */
export function readPaths(text, count) {
  let data = [];
  try {
    data = typeof text === "string" && text.trim() ? JSON.parse(text) : [];
  } catch {
    data = [];
  }
  if (data && !Array.isArray(data) && Array.isArray(data.paths)) data = data.paths;
  const out = [];
  for (let i = 0; i < count; i++) {
    const path = Array.isArray(data) && Array.isArray(data[i]) ? data[i] : [];
    out.push(
      path
        .map((p) => (Array.isArray(p) ? p : p && typeof p === "object" ? [p.x, p.y] : null))
        .filter((p) => p && Number.isFinite(Number(p[0])) && Number.isFinite(Number(p[1])))
        .map((p) => [Number(p[0]), Number(p[1])]),
    );
  }
  return out;
}

/** Whether the widget text is readable JSON (empty counts as no paths). */
export function isReadable(text) {
  if (typeof text !== "string" || !text.trim()) return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Compact JSON: trailing empty paths left out, e.g. [[[160,250],[480,80]]]. */
export function writePaths(paths) {
  const trimmed = paths.map((p) => p.map(([x, y]) => [Math.round(x), Math.round(y)]));
  while (trimmed.length && !trimmed[trimmed.length - 1].length) trimmed.pop();
  return JSON.stringify(trimmed);
}

// --- finding the start image ----------------------------------------------------------------------

function upstream(node, inputName) {
  let slot = node.findInputSlot ? node.findInputSlot(inputName) : -1;
  let current = slot >= 0 ? node.getInputNode(slot) : null;
  for (let hops = 0; current && hops < 20 && current.type === "Reroute"; hops++) current = current.getInputNode(0);
  return current;
}

function downstreamKlingNodes(node) {
  const out = [];
  const seen = new Set();
  const walk = (n, depth) => {
    if (!n || depth > 20 || seen.has(n.id)) return;
    seen.add(n.id);
    for (let slot = 0; slot < (n.outputs || []).length; slot++) {
      for (const target of n.getOutputNodes?.(slot) || []) {
        if (target.type === KLING_NODE) out.push(target);
        else if (target.type === "Reroute") walk(target, depth + 1);
      }
    }
  };
  walk(node, 0);
  return out;
}

/** A LoadImage-style widget value ("sub/name.png [input]") as a /view URL. */
function viewUrl(value) {
  if (typeof value !== "string" || !value) return null;
  let name = value;
  let type = "input";
  const m = name.match(/^(.*) \[(input|output|temp)\]$/);
  if (m) [, name, type] = m;
  const cut = name.lastIndexOf("/");
  const subfolder = cut >= 0 ? name.slice(0, cut) : "";
  const file = cut >= 0 ? name.slice(cut + 1) : name;
  const params = new URLSearchParams({ filename: file, type, subfolder });
  return api.apiURL(`/view?${params.toString()}`);
}

/** {url, source} of the start image this brush is drawn on, or {url: null, reason}. */
export function findStartImage(node) {
  const targets = downstreamKlingNodes(node);
  if (!targets.length) return { url: null, reason: "Connect motion_brush to a Kling Image to Video node." };
  for (const kling of targets) {
    const source = upstream(kling, "image");
    if (!source) continue;
    const img = source.imgs && source.imgs[source.imageIndex ?? 0];
    if (img && img.src) return { url: img.src, source: source.type };
    const widget = findWidget(source, "image");
    if (widget && typeof widget.value === "string") return { url: viewUrl(widget.value), source: source.type };
  }
  return {
    url: null,
    reason: "The start image is not known yet: connect a Load Image to the Kling node's image input " +
      "(or run the workflow once so the image source shows a preview).",
  };
}

// --- the editor ------------------------------------------------------------------------------------

class TrajectoryEditor {
  constructor(node) {
    this.node = node;
    this.active = 0;
    this.drag = null;
    this.image = null; // HTMLImageElement once loaded
    this.imageUrl = null;
    this.reason = "";
    this.rules = null; // from the server (loadRules)
    this.rulesError = "";
    this.rulesPending = false;
    this.rulesFailedAt = 0;
    this.buttons = [];

    const root = document.createElement("div");
    root.dataset.klingTrajectory = "";
    // min-height: Nodes 2.0 gives a DOM widget its content's height, not the node's
    root.style.cssText = `display:flex;flex-direction:column;gap:4px;width:100%;height:100%;min-height:${EDITOR_HEIGHT}px;` +
      "box-sizing:border-box;" +
      "font:12px Arial,sans-serif;color:#ddd;";
    const bar = document.createElement("div");
    bar.style.cssText = "display:flex;gap:3px;flex-wrap:wrap;align-items:center;";
    this.bar = bar;
    const clear = document.createElement("button");
    clear.type = "button";
    clear.dataset.action = "clear";
    clear.textContent = "Clear path";
    clear.title = "Remove every point of the selected path";
    clear.style.cssText = "margin-left:auto;background:#333;color:#eee;border:1px solid #666;border-radius:4px;" +
      "padding:1px 6px;cursor:pointer;font:11px Arial,sans-serif;";
    clear.style.visibility = "hidden"; // until the rules are known
    clear.addEventListener("click", (e) => {
      e.stopPropagation();
      if (!this.rules) return;
      const paths = this.paths();
      paths[this.active] = [];
      this.commit(paths);
    });
    bar.appendChild(clear);
    this.clearButton = clear;
    // The canvas fills a box whose size never depends on the canvas: sized from its bitmap (a flex item
    // with height auto, as some frontends' CSS makes it), it changed height with each redraw and the
    // points drawn drifted from the clicks.
    const stage = document.createElement("div");
    stage.style.cssText = "flex:1 1 0;min-height:120px;position:relative;";
    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;max-width:none;" +
      "display:block;background:#111;border-radius:4px;cursor:crosshair;touch-action:none;";
    stage.appendChild(this.canvas);
    this.status = document.createElement("div");
    this.status.dataset.klingStatus = "";
    this.status.style.cssText = "height:28px;overflow:hidden;color:#aaa;font-size:11px;";
    root.append(bar, stage, this.status);
    this.root = root;
    // Nodes 2.0 never calls onDrawForeground: re-resolve the start image (another file picked, a new
    // link, a workflow whose links were configured after this node) and the value there too.
    this.poll = setInterval(() => {
      if (!this.root.isConnected) return;
      this.requestRules();
      this.refreshImage();
      const value = this.valueWidget()?.value;
      if (value !== this.lastValue) {
        this.lastValue = value;
        this.render();
      }
    }, 500);

    const stop = (e) => e.stopPropagation();
    for (const type of ["pointerdown", "pointermove", "pointerup", "wheel", "dblclick", "mousedown", "mouseup"]) {
      root.addEventListener(type, stop);
    }
    this.canvas.addEventListener("pointerdown", (e) => this.onDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onUp(e));
    this.canvas.addEventListener("pointercancel", (e) => this.onUp(e));
    this.canvas.addEventListener("contextmenu", (e) => this.onContextMenu(e));
    if (typeof ResizeObserver !== "undefined") {
      this.resizeObserver = new ResizeObserver(() => this.render());
      this.resizeObserver.observe(this.canvas);
    }
  }

  /** Ask for the rules unless they are known, asked for, or failed less than RULES_RETRY_MS ago. */
  requestRules() {
    if (this.rules || this.rulesPending) return;
    if (this.rulesFailedAt && Date.now() - this.rulesFailedAt < RULES_RETRY_MS) return;
    this.rulesPending = true;
    loadRules().then(
      (rules) => {
        this.rules = rules;
        this.rulesError = "";
        this.active = Math.min(this.active, rules.paths.length - 1);
        this.buildButtons();
      },
      (err) => {
        this.rulesError = String((err && err.message) || err);
        this.rulesFailedAt = Date.now();
        console.warn("[Kling] trajectory rules not available:", this.rulesError);
      },
    ).finally(() => {
      this.rulesPending = false;
      this.render();
    });
  }

  /** One button per path of the rules, in its colour, before Clear path. */
  buildButtons() {
    for (const b of this.buttons) b.remove();
    this.buttons = this.rules.paths.map((path, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.path = String(i);
      b.dataset.colour = path.colour;
      b.title = `Path ${i + 1} (${path.input}, ${path.colour_name})`;
      b.style.cssText = `border:2px solid ${path.colour};background:#222;color:#eee;border-radius:4px;padding:1px 5px;` +
        "cursor:pointer;font:11px Arial,sans-serif;";
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        this.active = i;
        this.render();
      });
      this.bar.insertBefore(b, this.clearButton);
      return b;
    });
    this.clearButton.style.visibility = "";
  }

  valueWidget() {
    return findWidget(this.node, VALUE_WIDGET);
  }

  /** The paths of the widget (only called once the rules are known). */
  paths() {
    return readPaths(this.valueWidget()?.value, this.rules.paths.length);
  }

  commit(paths) {
    const widget = this.valueWidget();
    if (!widget) return;
    const text = writePaths(paths);
    if (widget.value !== text) {
      const old = widget.value;
      widget.value = text;
      widget.callback?.(text, app.canvas, this.node);
      this.node.onWidgetChanged?.(VALUE_WIDGET, text, old, widget);
    }
    this.node.setDirtyCanvas?.(true, true);
    this.render();
  }

  /** Re-resolve the start image (cheap); load it when its URL changed. */
  refreshImage() {
    const found = findStartImage(this.node);
    this.reason = found.reason || "";
    if (found.url === this.imageUrl) return;
    this.imageUrl = found.url;
    this.image = null;
    if (!found.url) {
      this.render();
      return;
    }
    const img = new Image();
    img.onload = () => {
      if (this.imageUrl !== found.url) return;
      this.image = img;
      this.render();
    };
    img.onerror = () => {
      if (this.imageUrl !== found.url) return;
      this.reason = "The start image could not be loaded.";
      this.render();
    };
    img.src = found.url;
  }

  /** Where the image sits in the canvas (CSS px): contain-fit, centred. */
  layout() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (!this.image || !w || !h) return null;
    const iw = this.image.naturalWidth;
    const ih = this.image.naturalHeight;
    const scale = Math.min(w / iw, h / ih);
    return { x: (w - iw * scale) / 2, y: (h - ih * scale) / 2, scale, iw, ih, w, h };
  }

  toImage(e) {
    const rect = this.canvas.getBoundingClientRect();
    const lay = this.layout();
    if (!lay || !rect.width) return null;
    // the DOM widget is CSS-transformed with the canvas zoom: map through the element's real box
    const cssX = ((e.clientX - rect.left) * lay.w) / rect.width;
    const cssY = ((e.clientY - rect.top) * lay.h) / rect.height;
    return { x: (cssX - lay.x) / lay.scale, y: (cssY - lay.y) / lay.scale, lay, ratio: rect.width / lay.w };
  }

  hit(paths, at) {
    const radius = HIT_RADIUS / (at.lay.scale * at.ratio);
    const order = [this.active, ...paths.keys()].filter((v, i, a) => a.indexOf(v) === i);
    for (const p of order) {
      for (let j = paths[p].length - 1; j >= 0; j--) {
        const [x, y] = paths[p][j];
        if (Math.hypot(x - at.x, y - at.y) <= radius) return { path: p, index: j };
      }
    }
    return null;
  }

  clampPoint(at) {
    const { iw, ih } = at.lay;
    return [Math.min(Math.max(Math.round(at.x), 0), iw - 1), Math.min(Math.max(Math.round(at.y), 0), ih - 1)];
  }

  onDown(e) {
    e.stopPropagation();
    if (e.button !== 0 || !this.rules) return;
    const at = this.toImage(e);
    if (!at) return;
    if (!isReadable(this.valueWidget()?.value)) {
      this.render(); // says why: the user's text is never overwritten by a click
      return;
    }
    const paths = this.paths();
    const found = this.hit(paths, at);
    if (found) {
      this.active = found.path;
      this.drag = found;
    } else {
      if (at.x < -0.5 || at.y < -0.5 || at.x > at.lay.iw - 0.5 || at.y > at.lay.ih - 0.5) return;
      const most = this.rules.points.max;
      if (paths[this.active].length >= most) {
        this.status.textContent = `Path ${this.active + 1} already has ${most} points (the most Kling takes: ` +
          `${this.rules.point_rule}).`;
        return;
      }
      paths[this.active].push(this.clampPoint(at));
      this.drag = { path: this.active, index: paths[this.active].length - 1 };
      this.commit(paths);
    }
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch {
      /* synthetic events have no capturable pointer */
    }
    e.preventDefault();
    this.render();
  }

  onMove(e) {
    if (!this.drag || !this.rules) return;
    e.stopPropagation();
    const at = this.toImage(e);
    if (!at) return;
    const paths = this.paths();
    const path = paths[this.drag.path];
    if (!path || !path[this.drag.index]) return;
    path[this.drag.index] = this.clampPoint(at);
    this.commit(paths);
  }

  onUp(e) {
    if (!this.drag) return;
    e.stopPropagation();
    this.drag = null;
    try {
      this.canvas.releasePointerCapture(e.pointerId);
    } catch {
      /* not captured */
    }
    this.render();
  }

  onContextMenu(e) {
    e.preventDefault();
    e.stopPropagation();
    if (!this.rules) return;
    const at = this.toImage(e);
    if (!at) return;
    const paths = this.paths();
    const found = this.hit(paths, at);
    if (!found) return;
    paths[found.path].splice(found.index, 1);
    this.active = found.path;
    this.commit(paths);
  }

  /** Without the rules: say why on the canvas and in the status line; nothing can be drawn. */
  /** The 2D context of the canvas sized for the screen's pixel ratio and cleared, with its CSS size; null
   * while the canvas has no size (not laid out yet). */
  clearedCanvas() {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return null;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  renderWithoutRules() {
    const failed = Boolean(this.rulesError);
    this.root.dataset.rules = failed ? "error" : "loading";
    this.root.dataset.points = "";
    this.root.dataset.image = "";
    const message = failed
      ? `The Kling trajectory rules could not be loaded from the server (${this.rulesError}), so paths ` +
        "cannot be drawn: is ComfyUI running with this Kling pack? Trying again every few seconds."
      : "Loading the Kling trajectory rules from the server...";
    this.status.textContent = failed
      ? `Kling trajectory rules not loaded (${this.rulesError}); trying again.`
      : "Loading the Kling trajectory rules...";
    const cleared = this.clearedCanvas();
    if (!cleared) return;
    const { ctx, w, h } = cleared;
    ctx.fillStyle = failed ? "#f87171" : "#888";
    ctx.font = "12px Arial, sans-serif";
    wrap(ctx, message, w - 20).forEach((line, i) => ctx.fillText(line, 10, 20 + i * 15));
  }

  render() {
    if (!this.rules) {
      this.renderWithoutRules();
      return;
    }
    const colours = this.rules.paths.map((p) => p.colour);
    const paths = this.paths();
    this.buttons.forEach((b, i) => {
      b.textContent = `${i + 1}: ${paths[i].length}`;
      b.style.background = i === this.active ? colours[i] : "#222";
      b.style.color = i === this.active ? "#111" : "#eee";
    });
    this.root.dataset.rules = "ready";
    this.root.dataset.active = String(this.active);
    this.root.dataset.points = paths.map((p) => p.length).join(",");
    const cleared = this.clearedCanvas();
    if (!cleared) return;
    const { ctx, w, h } = cleared;
    const lay = this.layout();
    if (!lay) {
      ctx.fillStyle = "#888";
      ctx.font = "12px Arial, sans-serif";
      const lines = wrap(ctx, this.reason || "Loading the start image...", w - 20);
      lines.forEach((line, i) => ctx.fillText(line, 10, 20 + i * 15));
      this.status.textContent = "";
      this.root.dataset.image = "";
      return;
    }
    this.root.dataset.image = `${lay.iw}x${lay.ih}`;
    ctx.drawImage(this.image, lay.x, lay.y, lay.iw * lay.scale, lay.ih * lay.scale);
    paths.forEach((path, i) => {
      if (!path.length) return;
      const pts = path.map(([x, y]) => [lay.x + x * lay.scale, lay.y + y * lay.scale]);
      const active = i === this.active;
      ctx.strokeStyle = colours[i];
      ctx.lineWidth = active ? 3 : 2;
      ctx.globalAlpha = active ? 1 : 0.75;
      ctx.beginPath();
      pts.forEach(([x, y], j) => (j ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      if (pts.length > 1) arrowHead(ctx, pts[pts.length - 2], pts[pts.length - 1]);
      pts.forEach(([x, y], j) => {
        ctx.beginPath();
        ctx.arc(x, y, j === 0 ? START_DOT_RADIUS : DOT_RADIUS, 0, Math.PI * 2);
        ctx.fillStyle = j === 0 ? "#fff" : colours[i];
        ctx.fill();
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = j === 0 ? colours[i] : "#000";
        ctx.stroke();
      });
      ctx.globalAlpha = 1;
    });
    const count = paths[this.active].length;
    if (!isReadable(this.valueWidget()?.value)) {
      this.status.textContent = "The trajectories text is not valid JSON: correct it, or Clear path to start over.";
      return;
    }
    const { min, max } = this.rules.points;
    const short = count > 0 && count < min ? ` (needs ${min}-${max})` : "";
    this.status.textContent = `${lay.iw}×${lay.ih} · path ${this.active + 1} ` +
      `(${this.rules.paths[this.active].colour_name}): ${count} point${count === 1 ? "" : "s"}${short} · ` +
      "click adds, drag moves, right-click removes";
  }

  destroy() {
    this.resizeObserver?.disconnect();
    clearInterval(this.poll);
  }
}

function wrap(ctx, text, width) {
  const lines = [];
  let line = "";
  for (const word of String(text).split(/\s+/)) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(candidate).width > width) {
      lines.push(line);
      line = word;
    } else line = candidate;
  }
  if (line) lines.push(line);
  return lines;
}

function arrowHead(ctx, [x0, y0], [x1, y1]) {
  const angle = Math.atan2(y1 - y0, x1 - x0);
  const size = 10;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - size * Math.cos(angle - 0.4), y1 - size * Math.sin(angle - 0.4));
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - size * Math.cos(angle + 0.4), y1 - size * Math.sin(angle + 0.4));
  ctx.stroke();
}

function ensureEditor(node) {
  if (node.__klingTrajectory) return node.__klingTrajectory;
  const editor = new TrajectoryEditor(node);
  // Added after the node definition's widgets and never serialised: widgets_values keeps only
  // `trajectories`, the one place the paths live.
  const widget = node.addDOMWidget(EDITOR_WIDGET, "kling_trajectory", editor.root, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => EDITOR_HEIGHT,
    getValue: () => undefined,
    setValue: () => {},
  });
  widget.serialize = false;
  node.__klingTrajectory = editor;
  editor.widget = widget;
  return editor;
}

app.registerExtension({
  name: "Kling.MotionBrush.Trajectories",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_TYPE) return;
    const proto = nodeType.prototype;

    const onNodeCreated = proto.onNodeCreated;
    proto.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      const editor = ensureEditor(this);
      editor.requestRules();
      if (this.size[0] < 420 || this.size[1] < 460) this.setSize([Math.max(420, this.size[0]), Math.max(460, this.size[1])]);
      editor.refreshImage();
      editor.render();
      return r;
    };

    const configure = proto.configure;
    proto.configure = function () {
      const r = configure.apply(this, arguments);
      const editor = ensureEditor(this);
      editor.requestRules();
      editor.refreshImage();
      editor.render();
      return r;
    };

    const onConnectionsChange = proto.onConnectionsChange;
    proto.onConnectionsChange = function () {
      const r = onConnectionsChange?.apply(this, arguments);
      this.__klingTrajectory?.refreshImage();
      return r;
    };

    const onWidgetChanged = proto.onWidgetChanged;
    proto.onWidgetChanged = function (name) {
      const r = onWidgetChanged?.apply(this, arguments);
      if (name === VALUE_WIDGET) this.__klingTrajectory?.render();
      return r;
    };

    // The image source can change anywhere upstream (another file picked in Load Image, a new link):
    // re-resolve while the node is drawn; only a changed URL loads anything. A text edit of the
    // widget shows up here too.
    const onDrawForeground = proto.onDrawForeground;
    proto.onDrawForeground = function () {
      const r = onDrawForeground?.apply(this, arguments);
      const editor = this.__klingTrajectory;
      if (editor) {
        editor.refreshImage();
        const value = findWidget(this, VALUE_WIDGET)?.value;
        if (value !== editor.lastValue) {
          editor.lastValue = value;
          editor.render();
        }
      }
      return r;
    };

    const onRemoved = proto.onRemoved;
    proto.onRemoved = function () {
      this.__klingTrajectory?.destroy();
      return onRemoved?.apply(this, arguments);
    };
  },
});
