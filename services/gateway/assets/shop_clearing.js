// Clearing statements in the shop console: every applied run the business took part in, what
// it set off, and the statement itself (balances before and after per currency, each
// settlement, the net position before and after) on screen or as CSV for the accountant.
import { Scrip } from "/assets/app.js";
const { get, Dec, el, rows, toast, when, download } = Scrip;

/** Wires the clearing card for the business `business()`; returns its loader. */
export function wireClearing(business) {
  const base = () => `/api/v1/businesses/${encodeURIComponent(business())}/clearing/statements`;
  const statementPath = (run) =>
    `/api/v1/clearing/runs/${encodeURIComponent(run)}/statements/${encodeURIComponent(business())}`;

  async function downloadCsv(run) {
    const response = await fetch(statementPath(run) + "?format=csv", { credentials: "same-origin" });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      return toast(problem.detail || "The statement cannot be downloaded.");
    }
    download(`scrip-clearing-${business()}-run-${run}.csv`, await response.text(), "text/csv");
  }

  async function showStatement(run) {
    let s;
    try { s = await get(statementPath(run)); } catch (problem) { return toast(problem.detail || "The statement cannot be loaded."); }
    const detail = document.getElementById("statement-detail");
    document.getElementById("statement-title").textContent =
      `Run #${s.run} · ${when(s.finished_at)} · net position ${Dec.pretty(s.position.net_before)} → ${Dec.pretty(s.position.net_after)} ${s.unit} (unchanged)`;
    rows(document.querySelector("#statement-balances tbody"), s.balances, (b) => el("tr", {},
      el("td", {}, b.currency), el("td", {}, Dec.pretty(b.before)), el("td", {}, Dec.pretty(b.after))),
      "No balance of this business moved: only obligations were set off.");
    rows(document.querySelector("#statement-settlements tbody"), s.settlements, (t) => el("tr", {},
      el("td", {}, t.debtor === s.business ? `owed ${t.creditor}` : `owed by ${t.debtor}`),
      el("td", {}, t.source === "holding" ? `${Dec.pretty(t.currency_amount)} ${t.currency} paid back` : `obligation #${t.obligation}`),
      el("td", {}, `${Dec.pretty(t.amount)} ${s.unit}`)),
      "No settlement.");
    const p = s.position;
    document.getElementById("statement-position").textContent =
      `Owed ${Dec.pretty(p.owed_before)} → ${Dec.pretty(p.owed_after)}, owes ${Dec.pretty(p.owes_before)} → ${Dec.pretty(p.owes_after)} ${s.unit}.`;
    detail.hidden = false;
    detail.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  return async function load() {
    let page;
    try { page = await get(base() + "?limit=20"); } catch (_) { return; }
    document.getElementById("statement-detail").hidden = true;
    rows(document.querySelector("#statements tbody"), page.items, (s) => {
      const view = el("button", { type: "button", class: "secondary" }, "View");
      view.addEventListener("click", () => showStatement(s.run));
      const csv = el("button", { type: "button", class: "secondary", "data-csv": s.run }, "CSV");
      csv.addEventListener("click", () => downloadCsv(s.run));
      return el("tr", {},
        el("td", {}, `#${s.run}`), el("td", {}, when(s.finished_at)),
        el("td", {}, `${Dec.pretty(s.cleared)} ${s.unit}`), el("td", {}, `${Dec.pretty(s.net)} ${s.unit}`),
        el("td", { class: "actions" }, view, csv));
    }, "No clearing run has set off this business's debts yet.");
  };
}
