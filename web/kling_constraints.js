// Pure rules over the capability table served by GET /kling/capabilities (kling_api/capabilities.json).
// No ComfyUI imports and no copy of the table: every fact comes from the `table` argument, so a model
// added or changed in capabilities.json reaches the widgets without touching this file.
//
// The rules mirror kling_api/validation.py for the fields the node's widgets decide: model_name (a
// retired model names its successor), mode, duration, sound and which of the exclusive features is
// connected: an end frame (image_tail), a camera move (camera_control) or a motion brush (motion_brush).
// tests/test_frontend.py checks this module against the Python validation for every combination of the
// table.
//
// `scope` (optional, last argument) narrows the models to the ones a node offers: {models: [...]}
// (e.g. Kling Text to Video takes only the text2video models). Without it: every current model.

/** Mode used in combos ("mode/duration") for models without a mode choice (the master models). */
export const NO_MODE = "-";

export function modelCaps(table, model) {
  const models = table && table.models;
  return models && Object.prototype.hasOwnProperty.call(models, model) ? models[model] : null;
}

export function modelNames(table) {
  return Object.keys((table && table.models) || {});
}

/** Whether the table marks the model retired ("retired": "<date>", "successor": "<model>"). */
export function isRetired(caps) {
  return !!(caps && caps.retired);
}

/** The models offered for new work: every row but the retired ones (capabilities.py model_names). */
export function currentModelNames(table) {
  return modelNames(table).filter((name) => !isRetired(modelCaps(table, name)));
}

/** The models a node may offer: scope.models (when given) that are current rows of the table. */
export function scopeModels(table, scope) {
  const current = currentModelNames(table);
  const wanted = scope && Array.isArray(scope.models) ? scope.models : null;
  return wanted ? current.filter((name) => wanted.includes(name)) : current;
}

/**
 * Why a retired model cannot be used and what to pick instead, as capabilities.py says it
 * (e.g. "kling-v1-5 was retired by Kling (2026-09-15); pick kling-v1-6 instead"); "" for a current model.
 */
export function retirementMessage(table, model) {
  const caps = modelCaps(table, model);
  if (!isRetired(caps)) return "";
  const when = ["true", "True", "yes"].includes(String(caps.retired)) ? "" : ` (${caps.retired})`;
  const pick = caps.successor ? `; pick ${caps.successor} instead` : "";
  return `${model} was retired by Kling${when}${pick}`;
}

/** The current model that replaces a retired one (following successors of successors), else the model. */
export function successorOf(table, model) {
  let name = model;
  for (let hops = 0; hops < 10; hops++) {
    const caps = modelCaps(table, name);
    if (!isRetired(caps) || !caps.successor) break;
    name = caps.successor;
  }
  return name;
}

export function hasModeChoice(caps) {
  return !!(caps && caps.modes && caps.modes.length);
}

/** The mode as the table keys it: "-" for models without a mode choice. */
export function effectiveMode(caps, mode) {
  return hasModeChoice(caps) ? mode || "std" : NO_MODE;
}

/** Whether `feature` ("image_tail", "sound", ...) is allowed at mode/duration ("*" is a wildcard). */
export function allows(caps, feature, mode, duration) {
  if (!caps) return false;
  const m = effectiveMode(caps, mode);
  const d = String(duration);
  return (caps[feature] || []).some((combo) => {
    const [wantMode, wantDuration] = String(combo).split("/");
    return (wantMode === "*" || wantMode === m) && (wantDuration === "*" || wantDuration === d);
  });
}

/** Every concrete [mode, duration] pair of the model where `feature` is allowed. */
export function allowedCombos(caps, feature) {
  if (!caps) return [];
  const modes = hasModeChoice(caps) ? caps.modes : [NO_MODE];
  const out = [];
  for (const m of modes) for (const d of caps.durations) if (allows(caps, feature, m, d)) out.push([m, d]);
  return out;
}

export function modelsSupporting(table, feature, scope) {
  return scopeModels(table, scope).filter((name) => allowedCombos(modelCaps(table, name), feature).length);
}

function describeCombos(combos) {
  return combos.map(([m, d]) => (m === NO_MODE ? `${d} s` : `${m}/${d} s`)).join(", ");
}

/** The connected inputs that need a table feature: [input name, table feature, what the user calls it]. */
export const FEATURE_INPUTS = [
  ["image_tail", "image_tail", "an end frame (image_tail)"],
  ["camera_control", "camera_control", "camera control (camera_control)"],
  ["motion_brush", "motion_brush", "a motion brush (motion_brush)"],
];

function featureProblem(table, caps, state, input, feature, label, scope) {
  const model = state.model_name;
  const duration = String(state.duration);
  if (allows(caps, feature, state.mode, duration)) return null;
  const combos = allowedCombos(caps, feature);
  const now = hasModeChoice(caps) ? `${state.mode}/${duration} s` : `${duration} s`;
  if (!combos.length) {
    const others = modelsSupporting(table, feature, scope);
    return {
      field: input,
      message: `${model} takes no ${label.replace(/^an? /, "")}` + (others.length ? `; models that do: ${others.join(", ")}` : ""),
    };
  }
  const what = label.charAt(0).toUpperCase() + label.slice(1);
  return { field: input, message: `${what} on ${model} needs ${describeCombos(combos)}; now ${now}` };
}

/**
 * What is wrong with the widget state, as a list of {field, message}; [] when the combination is valid.
 * state = {model_name, mode, duration, image_tail, camera_control, motion_brush: bool (connected),
 *          camera_type: the connected Kling Camera Control's type, when known, sound: bool (on)}.
 */
export function problems(table, state, scope) {
  const out = [];
  const model = state.model_name;
  const caps = modelCaps(table, model);
  if (!caps) {
    out.push({ field: "model_name", message: `model ${model} is not in the capability table` });
    return out;
  }
  if (isRetired(caps)) {
    out.push({ field: "model_name", message: retirementMessage(table, model) });
    return out;
  }
  const offered = scopeModels(table, scope);
  if (!offered.includes(model)) {
    out.push({ field: "model_name", message: `this node does not take ${model}; pick ${offered.join(", ")}` });
    return out;
  }
  if (hasModeChoice(caps) && !caps.modes.includes(state.mode)) {
    out.push({ field: "mode", message: `${model} has no mode "${state.mode}" (modes: ${caps.modes.join(", ")})` });
  }
  const duration = String(state.duration);
  if (!caps.durations.includes(duration)) {
    out.push({
      field: "duration",
      message: `${model} makes ${caps.durations.join(", ")} s videos, not ${duration} s`,
    });
  }
  const connected = FEATURE_INPUTS.filter(([input]) => state[input]);
  if (connected.length > 1) {
    out.push({
      field: connected.map(([input]) => input).join("+"),
      message: `${connected.map(([input]) => input).join(" and ")} cannot be used together; ` +
        "connect only one of image_tail, camera_control, motion_brush",
    });
  }
  for (const [input, feature, label] of connected) {
    const problem = featureProblem(table, caps, state, input, feature, label, scope);
    if (problem) out.push(problem);
  }
  if (state.sound) {
    const problem = featureProblem(table, caps, state, "sound", "sound", "sound", scope);
    if (problem) out.push(problem);
    else if (state.image_tail && caps.image_tail_requires_silence) {
      out.push({ field: "sound", message: `An end frame (image_tail) on ${model} works only without sound; now sound on` });
    }
  }
  const cameraTypes = caps.camera_types || [];
  if (state.camera_control && state.camera_type && allowedCombos(caps, "camera_control").length &&
      !cameraTypes.includes(state.camera_type)) {
    out.push({
      field: "camera_control",
      message: `Camera type ${state.camera_type} is not offered on ${model}; types: ${cameraTypes.join(", ")}`,
    });
  }
  return out;
}

export function isValid(table, state, scope) {
  return problems(table, state, scope).length === 0;
}

function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function lexLess(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/**
 * The valid combination closest to `state`, by these rules in order:
 *   1. keep the model if any of its combinations is valid (a retired model: its successor); otherwise
 *      the most similar model (longest common name prefix, e.g. kling-v2-1-master -> kling-v2-1; then
 *      nearest in table order);
 *   2. keep sound on (e.g. kling-v2-6 std -> pro), else turn it off;
 *   3. keep the mode;
 *   4. the duration nearest to the current one (ties: the shorter, cheaper one).
 * Returns {model_name, mode, duration, sound} or null when nothing in the table fits (e.g. no model takes
 * an end frame). A model without a mode choice keeps the current mode value (its widget is hidden, ignored).
 */
export function nearestValid(table, state, scope) {
  const names = scopeModels(table, scope);
  if (!names.length) return null;
  const current = String(state.duration);
  const currentNumber = Number.parseFloat(current);
  const model = successorOf(table, String(state.model_name ?? ""));
  let home = names.indexOf(model);
  if (home < 0) home = Math.max(0, names.indexOf(table.default_model));
  const sounds = state.sound ? [true, false] : [false];
  let best = null;
  names.forEach((name, index) => {
    const caps = modelCaps(table, name);
    const modes = hasModeChoice(caps) ? caps.modes : [state.mode];
    for (const sound of sounds) {
      for (const mode of modes) {
        for (const duration of caps.durations) {
          const candidate = {
            model_name: name, mode, duration, image_tail: !!state.image_tail, sound,
            camera_control: !!state.camera_control, motion_brush: !!state.motion_brush, camera_type: state.camera_type,
          };
          if (!isValid(table, candidate, scope)) continue;
          const n = Number.parseFloat(duration);
          const comparable = Number.isFinite(n) && Number.isFinite(currentNumber);
          const key = [
            name === model ? 0 : 1,
            name === model ? 0 : -commonPrefix(name, model),
            Math.abs(index - home),
            sound === !!state.sound ? 0 : 1,
            mode === state.mode || !hasModeChoice(caps) ? 0 : 1,
            duration === current ? 0 : comparable ? Math.abs(n - currentNumber) : Infinity,
            comparable && n > currentNumber ? 1 : 0,
          ];
          if (!best || lexLess(key, best.key)) best = { key, model_name: name, mode, duration, sound };
        }
      }
    }
  });
  return best && { model_name: best.model_name, mode: best.mode, duration: best.duration, sound: best.sound };
}

/** Short label of what the fix changes, e.g. "mode pro, 10 s", "kling-v1-5, pro, 10 s" or "sound off". */
export function describeChange(table, state, fix) {
  const parts = [];
  if (fix.model_name !== state.model_name) parts.push(fix.model_name);
  if (fix.mode !== state.mode && hasModeChoice(modelCaps(table, fix.model_name))) parts.push(`mode ${fix.mode}`);
  if (String(fix.duration) !== String(state.duration)) parts.push(`${fix.duration} s`);
  if (fix.sound !== undefined && !!fix.sound !== !!state.sound) parts.push(`sound ${fix.sound ? "on" : "off"}`);
  return parts.join(", ");
}

/** What the widgets may offer for a model: null means "unknown model: leave the widget alone". */
export function widgetPlan(table, model) {
  const caps = modelCaps(table, model);
  if (!caps) return null;
  return {
    durations: caps.durations.slice(),
    modes: hasModeChoice(caps) ? caps.modes.slice() : [],
    showMode: hasModeChoice(caps),
    showCfgScale: !!caps.cfg_scale,
    showSound: allowedCombos(caps, "sound").length > 0,
  };
}
