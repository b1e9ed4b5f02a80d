// Obligations in the shop console: invoices between businesses outside the ledger. The
// creditor records one, the debtor accepts or rejects it, the creditor may withdraw it while
// proposed; an accepted one is cleared by clearing runs, or paid through the ledger in a
// currency the creditor takes. And whether the business takes part in clearing at all.
import { Scrip } from "/assets/app.js";
const { api, get, Dec, el, rows, onSubmit, showProblem, toast, when, idempotencyKey } = Scrip;

/** An obligation's amount (8 decimals) without its trailing zeros. */
const units = (v) => (v.includes(".") ? v.replace(/0+$/, "").replace(/\.$/, "") : v);

const STATUS = { proposed: "waiting for the debtor", accepted: "accepted", rejected: "rejected", withdrawn: "withdrawn" };

/** Wires the obligations card for the business `business()`; `held()` lists the business's
 *  balances (to offer what it can pay with); returns the card's loader. */
export function wireObligations(business, held, reload) {
  const form = document.getElementById("obligation-form");
  onSubmit(form, async (data) => {
    const body = { debtor: data.debtor || "", creditor: business(), amount: data.amount || "", unit: data.unit || "EUR" };
    if (data.memo) body.memo = data.memo;
    const r = await api("POST", "/api/v1/obligations", body);
    if (!r.ok) return showProblem(form, r.data, "amount");
    form.reset();
    toast(`Recorded: ${r.data.debtor} owes ${Dec.pretty(r.data.amount)} ${r.data.unit}, waiting for ${r.data.debtor} to accept.`);
    await load();
  });

  async function decide(o, verb) {
    const r = await api("POST", `/api/v1/obligations/${encodeURIComponent(o.id)}/${verb}`, {});
    toast(r.ok ? `Obligation #${o.id} is ${r.data.status}.` : (r.data.detail || "That could not be done."));
    await load();
  }

  /** The pay form of an accepted obligation the business owes: what it holds, the creditor's
   *  own currencies first (what it takes for sure). */
  function payForm(o, creditorCodes) {
    const choices = held().filter((a) => Dec.compare(a.available, "0") > 0).map((a) => a.currency)
      .sort((a, b) => Number(creditorCodes.includes(b)) - Number(creditorCodes.includes(a)));
    const f = el("form", { class: "inline-form", novalidate: "" },
      el("div", { class: "field" },
        el("label", { for: `pay-${o.id}-amount`, class: "sr-only" }, "Amount"),
        el("input", { id: `pay-${o.id}-amount`, name: "amount", inputmode: "decimal", value: units(o.remaining), required: "" }),
        el("p", { class: "error", role: "alert", hidden: "" })),
      el("div", { class: "field" },
        el("label", { for: `pay-${o.id}-currency`, class: "sr-only" }, "Currency"),
        el("select", { id: `pay-${o.id}-currency`, name: "currency" }, ...choices.map((c) => el("option", { value: c }, c))),
        el("p", { class: "error", role: "alert", hidden: "" })),
      el("p", { class: "error form-error", role: "alert", hidden: "" }),
      el("button", { type: "submit", class: "secondary" }, "Pay"));
    const key = idempotencyKey();
    onSubmit(f, async (data) => {
      const r = await api("POST", `/api/v1/obligations/${encodeURIComponent(o.id)}/pay`, data, { "Idempotency-Key": key });
      if (!r.ok) return showProblem(f, r.data, "amount");
      toast(`Paid ${Dec.pretty(r.data.currency_amount)} ${r.data.currency} to ${o.creditor}; ${units(r.data.obligation.remaining)} ${o.unit} left.`);
      await Promise.all([load(), reload()]);
    });
    return f;
  }

  function actions(o, creditorCodes) {
    const mine = business();
    const cell = el("td", { class: "actions" });
    const button = (label, verb, style) => {
      const b = el("button", { type: "button", class: style || "", "data-verb": verb }, label);
      b.addEventListener("click", () => decide(o, verb));
      return b;
    };
    if (o.status === "proposed" && o.debtor === mine) cell.append(button("Accept", "accept"), button("Reject", "reject", "secondary"));
    if (o.status === "proposed" && o.creditor === mine) cell.append(button("Withdraw", "withdraw", "secondary"));
    if (o.status === "accepted" && o.debtor === mine && !Dec.isZero(o.remaining)) cell.append(payForm(o, creditorCodes.get(o.creditor) || []));
    return cell;
  }

  const toggle = document.getElementById("clearing-enabled");
  toggle.addEventListener("change", async () => {
    const r = await api("PUT", `/api/v1/businesses/${encodeURIComponent(business())}/clearing`, { enabled: toggle.checked });
    if (!r.ok) { toggle.checked = !toggle.checked; return toast(r.data.detail || "Not changed."); }
    toast(toggle.checked ? "Clearing may set this business's debts off." : "Clearing leaves this business out.");
  });

  async function load() {
    try {
      const participation = await get(`/api/v1/businesses/${encodeURIComponent(business())}/clearing`);
      toggle.checked = participation.enabled;
    } catch (_) { /* shown as it was */ }
    let items;
    try { items = (await get("/api/v1/obligations?limit=200")).items; } catch (_) { return; }
    const mine = items.filter((o) => o.debtor === business() || o.creditor === business());
    // The currencies of each business this one owes (to offer them first when paying).
    const creditorCodes = new Map();
    for (const creditor of new Set(mine.filter((o) => o.debtor === business() && o.status === "accepted").map((o) => o.creditor))) {
      try {
        const profile = await get("/api/v1/businesses/" + encodeURIComponent(creditor));
        creditorCodes.set(creditor, (profile.currencies || []).map((c) => c.code));
      } catch (_) { creditorCodes.set(creditor, []); }
    }
    rows(document.querySelector("#obligations tbody"), mine, (o) => el("tr", { "data-id": o.id },
      el("td", {}, `#${o.id}`),
      el("td", {}, o.debtor === business() ? `owes ${o.creditor}` : `owed by ${o.debtor}`),
      el("td", {}, `${units(o.amount)} ${o.unit}`),
      el("td", {}, `${units(o.remaining)} ${o.unit}`),
      el("td", {}, `${STATUS[o.status] || o.status}${o.memo ? " · " + o.memo : ""} · ${when(o.created_at)}`),
      actions(o, creditorCodes)),
      "No obligations: record what another business owes this one below.");
  }
  return load;
}
