// Standing swaps in the wallet: "I give up to 50 BREAD for GROCER, at par". Clearing runs
// find rings of such offers among holders and settle them at par, with no order book and no
// spread: what you give and what you get are worth the same in the currencies' unit.
import { Scrip } from "/assets/app.js";
const { api, get, Dec, el, rows, onSubmit, showProblem, toast, when } = Scrip;

const STATUS = { open: "waiting for a ring", filled: "done", cancelled: "cancelled" };

/** Wires the swaps card; `reload()` refreshes the balances once something changed. */
export function wireSwaps(reload) {
  const card = document.getElementById("swaps-card");
  if (!card) return async () => {};
  const form = document.getElementById("swap-form");
  onSubmit(form, async (data) => {
    const r = await api("POST", "/api/v1/clearing/intents", {
      give: (data.give || "").toUpperCase(), want: (data.want || "").toUpperCase(), max_amount: data.max_amount || "",
    });
    if (!r.ok) return showProblem(form, r.data, "max_amount");
    form.reset();
    toast(`Offered up to ${Dec.pretty(r.data.max_amount)} ${r.data.give} for ${r.data.want}: the next clearing run settles it if a ring closes.`);
    await load();
  });

  async function cancel(intent) {
    const r = await api("DELETE", `/api/v1/clearing/intents/${encodeURIComponent(intent.id)}`);
    toast(r.ok ? "Cancelled." : (r.data.detail || "Not cancelled."));
    await load();
  }

  async function load() {
    let items;
    try { items = (await get("/api/v1/clearing/intents")).items; } catch (_) { return; }
    rows(document.querySelector("#swaps tbody"), items, (i) => {
      const action = el("td", { class: "actions" });
      if (i.status === "open") {
        const b = el("button", { type: "button", class: "secondary" }, "Cancel");
        b.addEventListener("click", () => cancel(i));
        action.append(b);
      }
      return el("tr", { "data-id": i.id },
        el("td", {}, `${Dec.pretty(i.max_amount)} ${i.give} → ${i.want}`),
        el("td", {}, `${Dec.pretty(i.remaining)} ${i.give}`),
        el("td", {}, `${Dec.pretty(i.received)} ${i.want}`),
        el("td", {}, `${STATUS[i.status] || i.status} · ${when(i.created_at)}`),
        action);
    }, "No standing swaps.");
    if (items.some((i) => !Dec.isZero(i.received))) reload();
  }
  return load;
}
