// Settings › Kling › Credentials › "API credentials": a button that opens a dialog for an API key or an
// access key + secret key. The keys go to the server once (POST /kling/credentials, JSON); afterwards the
// page only learns {configured, source}. Nothing is written to localStorage, sessionStorage or
// comfy.settings.json: the setting's own value is never set (the render function ignores its setter).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const SETTING_ID = "Kling.Credentials";
const ROUTE = "/kling/credentials";

const STYLE = `
.kling-cred-row { display: flex; align-items: center; gap: 0.5rem; flex-wrap: wrap; justify-content: flex-end; }
.kling-cred-status { font-family: monospace; opacity: 0.9; }
.kling-cred-status[data-configured="true"] { color: #4ade80; }
.kling-cred-note { flex-basis: 100%; text-align: right; font-size: 0.8rem; opacity: 0.75; }
.kling-btn { cursor: pointer; border-radius: 6px; padding: 0.35rem 0.8rem; font: inherit;
  border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #222); color: var(--input-text, #ddd); }
.kling-btn:hover:not(:disabled) { filter: brightness(1.25); }
.kling-btn:disabled { opacity: 0.45; cursor: default; }
.kling-btn-primary { background: #2563eb; border-color: #2563eb; color: #fff; }
dialog.kling-cred-dialog { border: 1px solid var(--border-color, #555); border-radius: 10px; padding: 1.2rem 1.4rem;
  background: var(--comfy-menu-bg, #202020); color: var(--fg-color, #ddd); width: min(30rem, 92vw); }
dialog.kling-cred-dialog::backdrop { background: rgba(0, 0, 0, 0.55); }
.kling-cred-dialog h3 { margin: 0 0 0.4rem 0; font-size: 1.1rem; }
.kling-cred-dialog p { margin: 0.3rem 0 0.8rem 0; font-size: 0.85rem; opacity: 0.8; }
.kling-cred-dialog fieldset { border: none; padding: 0; margin: 0 0 0.8rem 0; display: flex; gap: 1.2rem; }
.kling-cred-dialog label.kling-field { display: block; margin: 0.5rem 0; font-size: 0.9rem; }
.kling-cred-dialog input[type=password] { display: block; width: 100%; box-sizing: border-box; margin-top: 0.25rem;
  padding: 0.4rem; border-radius: 5px; border: 1px solid var(--border-color, #555);
  background: var(--comfy-input-bg, #111); color: var(--input-text, #ddd); font-family: monospace; }
.kling-cred-error { color: #f87171; min-height: 1.2em; font-size: 0.85rem; }
.kling-cred-actions { display: flex; justify-content: flex-end; gap: 0.5rem; margin-top: 0.6rem; }
`;

function injectStyle() {
  if (document.getElementById("kling-credentials-style")) return;
  const style = document.createElement("style");
  style.id = "kling-credentials-style";
  style.textContent = STYLE;
  document.head.appendChild(style);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

async function readJson(res) {
  try {
    return await res.json();
  } catch {
    return {};
  }
}

export async function credentialStatus() {
  const res = await api.fetchApi(ROUTE, { cache: "no-store" });
  const body = await readJson(res);
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

async function sendCredentials(payload) {
  const res = await api.fetchApi(ROUTE, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
    cache: "no-store",
  });
  const body = await readJson(res);
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

async function clearCredentials() {
  const res = await api.fetchApi(ROUTE, { method: "DELETE", cache: "no-store" });
  const body = await readJson(res);
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

/** "configured (environment)", "configured (file)" or "not configured": never more than that. */
export function describeStatus(status) {
  if (status && status.configured) return `configured (${status.source === "environment" ? "environment" : "file"})`;
  return "not configured";
}

function toast(severity, summary, detail) {
  try {
    app.extensionManager?.toast?.add({ severity, summary, detail, life: 4000 });
  } catch {
    /* no toast service: the status line says it all */
  }
}

/**
 * The dialog; resolves with the server's status after a save, or null when cancelled. `host`: the element
 * it is placed in: opened from the settings dialog, inside that dialog (newer frontends close their
 * settings dialog on any pointer or focus outside it, a modal of ours on document.body included).
 */
export function openCredentialsDialog(host = document.body) {
  injectStyle();
  return new Promise((resolve) => {
    let kind = "api_key";
    const apiKey = el("input", { type: "password", name: "api_key", autocomplete: "off", spellcheck: "false" });
    const accessKey = el("input", { type: "password", name: "access_key", autocomplete: "off", spellcheck: "false" });
    const secretKey = el("input", { type: "password", name: "secret_key", autocomplete: "off", spellcheck: "false" });
    const apiKeyBlock = el("div", { "data-kind": "api_key" },
      el("label", { class: "kling-field" }, "API key", apiKey));
    const pairBlock = el("div", { "data-kind": "pair", hidden: true },
      el("label", { class: "kling-field" }, "Access key", accessKey),
      el("label", { class: "kling-field" }, "Secret key", secretKey));
    const error = el("div", { class: "kling-cred-error", role: "alert" });
    const save = el("button", { class: "kling-btn kling-btn-primary", type: "button", "data-action": "save", text: "Save" });
    const cancel = el("button", { class: "kling-btn", type: "button", "data-action": "cancel", text: "Cancel" });

    const choose = (value) => {
      kind = value;
      apiKeyBlock.hidden = value !== "api_key";
      pairBlock.hidden = value !== "pair";
      error.textContent = "";
      (value === "api_key" ? apiKey : accessKey).focus();
    };
    const radio = (value, label, checked) =>
      el("label", {}, el("input", { type: "radio", name: "kling-kind", value, checked, onchange: () => choose(value) }),
        ` ${label}`);

    const dialog = el("dialog", { class: "kling-cred-dialog", "aria-label": "Kling API credentials" },
      el("h3", { text: "Kling API credentials" }),
      el("p", {
        text: "Sent once to this ComfyUI server, which keeps them in its protected user folder. " +
          "They are never put into workflows, settings or browser storage.",
      }),
      el("fieldset", {}, radio("api_key", "API key", true), radio("pair", "Access key + secret key", false)),
      apiKeyBlock, pairBlock, error,
      el("div", { class: "kling-cred-actions" }, cancel, save));

    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      for (const input of [apiKey, accessKey, secretKey]) input.value = "";
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(result);
    };

    save.addEventListener("click", async () => {
      const payload = kind === "api_key"
        ? { api_key: apiKey.value.trim() }
        : { access_key: accessKey.value.trim(), secret_key: secretKey.value.trim() };
      if (kind === "api_key" && !payload.api_key) return void (error.textContent = "Enter the API key.");
      if (kind === "pair" && !(payload.access_key && payload.secret_key)) {
        return void (error.textContent = "Enter both the access key and the secret key.");
      }
      save.disabled = true;
      error.textContent = "";
      try {
        const status = await sendCredentials(payload);
        toast("success", "Kling credentials saved", describeStatus(status) + (status.note ? ` — ${status.note}` : ""));
        finish(status);
      } catch (err) {
        error.textContent = `Not saved: ${err.message || err}`;
        save.disabled = false;
      }
    });
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(null);
    });
    // Escape belongs to this dialog, not to the settings dialog underneath.
    dialog.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Escape") {
        e.preventDefault();
        finish(null);
      } else if (e.key === "Enter" && e.target instanceof HTMLInputElement && e.target.type === "password") {
        e.preventDefault();
        save.click();
      }
    });
    for (const type of ["keyup", "keypress"]) dialog.addEventListener(type, (e) => e.stopPropagation());

    (host && host.isConnected ? host : document.body).appendChild(dialog);
    dialog.showModal();
    choose("api_key");
  });
}

/** The custom setting renderer (FormItem calls it with (name, setter, value, attrs)). */
function renderCredentialsSetting() {
  injectStyle();
  const status = el("span", { class: "kling-cred-status", "data-kling-status": "", text: "checking…" });
  const note = el("span", { class: "kling-cred-note", hidden: true });
  const set = el("button", { class: "kling-btn", type: "button", "data-kling-action": "set", text: "Set credentials…" });
  const clear = el("button", { class: "kling-btn", type: "button", "data-kling-action": "clear", text: "Clear" });
  const row = el("div", { class: "kling-cred-row", "data-kling-credentials": "" }, status, set, clear, note);

  const show = (value, extra) => {
    status.textContent = describeStatus(value);
    status.dataset.configured = String(!!(value && value.configured));
    status.dataset.source = (value && value.source) || "";
    clear.disabled = !(value && value.source === "file");
    clear.title = value && value.source === "environment"
      ? "Set by environment variables on the server; unset them there"
      : "";
    status.title = (value && !value.configured && value.problem) || "";
    const text = extra || (value && value.note) || "";
    note.textContent = text;
    note.hidden = !text;
  };
  const update = async () => {
    try {
      show(await credentialStatus());
    } catch (err) {
      status.textContent = "unknown";
      note.textContent = `Could not ask the server: ${err.message || err}`;
      note.hidden = false;
    }
  };

  set.addEventListener("click", async () => {
    const result = await openCredentialsDialog(row.closest("[role=dialog]") || document.body);
    if (result) show(result);
    else await update();
  });
  clear.addEventListener("click", async () => {
    const dialog = app.extensionManager?.dialog;
    const ok = dialog?.confirm
      ? await dialog.confirm({
        title: "Clear Kling credentials",
        message: "Remove the Kling keys stored on this ComfyUI server?",
        type: "delete",
      })
      : window.confirm("Remove the Kling keys stored on this ComfyUI server?");
    if (!ok) return;
    try {
      const result = await clearCredentials();
      show(result);
      toast("info", "Kling credentials cleared", describeStatus(result));
    } catch (err) {
      show(null, `Not cleared: ${err.message || err}`);
    }
  });
  update();
  return row;
}

app.registerExtension({
  name: "Kling.Credentials",
  settings: [
    {
      id: SETTING_ID,
      category: ["Kling", "Credentials", "API credentials"],
      name: "API credentials",
      tooltip: "Kling API key, or access key + secret key. Kept on the ComfyUI server, never in workflows. " +
        "Environment variables (KLING_API_KEY, or KLING_ACCESS_KEY + KLING_SECRET_KEY) take precedence.",
      type: renderCredentialsSetting,
      // The stored value of this setting is never written: the renderer does not call its setter.
      defaultValue: "",
    },
  ],
  commands: [
    {
      id: "Kling.SetCredentials",
      label: "Kling: set API credentials",
      icon: "pi pi-key",
      function: () => openCredentialsDialog(),
    },
  ],
});
