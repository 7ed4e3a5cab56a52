// Settings › Kling › Costs: the spend guard's limits (units per prompt, per day) and the balance.
// The limits are posted to the server (/kling/spend_limits), which refuses a prompt over them at queue
// time, also for prompts queued by scripts; the page computes nothing. The balance is read from
// /kling/account (Kling's GET /account/costs: free, may lag up to 12 hours) only when this panel is shown
// or refreshed, and the server's own words are displayed.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const PER_PROMPT = "Kling.Costs.MaxUnitsPerPrompt";
const PER_DAY = "Kling.Costs.MaxUnitsPerDay";
const BALANCE = "Kling.Costs.Balance";
const CATEGORY = ["Kling", "Costs"];

let postTimer = null;

function settingValue(id) {
  const value = app.extensionManager?.setting?.get(id);
  return value === undefined || value === null || value === "" ? 0 : Number(value);
}

// Both limits in one post, once both settings are registered (each fires onChange when it is added).
function postLimits() {
  clearTimeout(postTimer);
  postTimer = setTimeout(async () => {
    try {
      const res = await api.fetchApi("/kling/spend_limits", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ per_prompt: settingValue(PER_PROMPT), per_day: settingValue(PER_DAY) }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        app.extensionManager?.toast?.add({ severity: "error", summary: "Kling spend limits not saved",
          detail: body.error || `HTTP ${res.status}`, life: 6000 });
      }
    } catch (err) {
      console.warn("Kling: spend limits not sent", err);
    }
  }, 150);
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, attrs);
  if (text) node.textContent = text;
  return node;
}

async function readJson(path) {
  const res = await api.fetchApi(path);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function renderBalance() {
  const row = el("div", { className: "kling-costs-balance" });
  row.style.cssText = "display:flex;flex-direction:column;align-items:flex-end;gap:0.3rem;text-align:right";
  const balance = el("span", { className: "kling-costs-balance-text" }, "Balance: not read yet");
  const spent = el("span", { className: "kling-costs-spent-text" });
  spent.style.opacity = "0.8";
  const refresh = el("button", { className: "kling-btn", type: "button" }, "Refresh balance");
  refresh.style.cssText = "cursor:pointer;border-radius:6px;padding:0.3rem 0.7rem;font:inherit";
  async function update() {
    refresh.disabled = true;
    balance.textContent = "Balance: reading…";
    try {
      const account = await readJson("/kling/account");
      balance.textContent = `Balance: ${account.text}`;
    } catch (err) {
      balance.textContent = `Balance not read: ${err.message || err}`;
    }
    try {
      const limits = await readJson("/kling/spend_limits");
      spent.textContent = `Spent today (task ledger): ${limits.spent_today} units`;
    } catch (err) {
      spent.textContent = "";
    }
    refresh.disabled = false;
  }
  refresh.addEventListener("click", update);
  row.append(balance, spent, refresh);
  update();
  return row;
}

const limitSetting = (id, label, name, tooltip) => ({
  id,
  category: [...CATEGORY, label],
  name,
  tooltip,
  type: "number",
  attrs: { min: 0, step: 1, showButtons: true },
  defaultValue: 0,
  onChange: postLimits,
});

app.registerExtension({
  name: "Kling.Costs",
  settings: [
    limitSetting(PER_DAY, "Limit per day", "Spend limit per day (units, 0: none)",
      "A prompt is refused at queue time when today's spend (from the task ledger) plus its estimated " +
      "cost would exceed this. Nothing is sent. 0: no limit."),
    limitSetting(PER_PROMPT, "Limit per prompt", "Spend limit per prompt (units, 0: none)",
      "A prompt whose estimated cost (the last deduction Kling made for the same model, mode, duration and " +
      "sound, or your KLING_RATE_CARD) exceeds this is refused at queue time. Nothing is sent. " +
      "An unknown cost is not counted. 0: no limit."),
    {
      id: BALANCE,
      category: [...CATEGORY, "Balance"],
      name: "Balance (units remaining)",
      tooltip: "Units remaining in the account's online resource packs (GET /account/costs, free)",
      type: renderBalance,
      defaultValue: "",
    },
  ],
});
