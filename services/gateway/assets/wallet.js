// Wallet: balances, paying by handle, payment request links with a QR code, history and CSV.
import { Scrip } from "/assets/app.js";
(() => {
  const { api, get, getAll, Dec, el, rows, onSubmit, showProblem, toast, when, idempotencyKey, download } = Scrip;
  const holderSelect = document.getElementById("holder");
  const holder = () => holderSelect.value;
  const holderQuery = () => "holder=" + encodeURIComponent(holder());
  const params = new URLSearchParams(location.search);

  // Invitations to a business: accepting makes the caller a member, declining drops it.
  for (const button of document.querySelectorAll("#invitations [data-answer]")) {
    button.addEventListener("click", async () => {
      const business = button.closest("li").dataset.business;
      const path = `/api/v1/businesses/${encodeURIComponent(business)}/invitations/${encodeURIComponent(Scrip.me.handle)}`;
      const accept = button.dataset.answer === "accept";
      const r = await api(accept ? "POST" : "DELETE", accept ? path + "/accept" : path);
      if (!r.ok) return toast(r.data.detail || "That did not work; try again.");
      toast(accept ? `You are now ${Scrip.article(r.data.role)} of ${business}.` : `You declined ${business}'s invitation.`);
      const card = document.getElementById("invitations");
      button.closest("li").remove();
      if (!card.querySelector("li")) card.hidden = true;
      // An owner acts for the business from this page: show it in "Acting as".
      if (accept && r.data.role === "owner") setTimeout(() => location.reload(), 1500);
    });
  }

  async function loadCurrencyCodes() {
    try {
      const list = await get("/api/v1/currencies?limit=500");
      document.getElementById("currency-codes").replaceChildren(
        ...list.items.map((c) => el("option", { value: c.code }, `${c.name} (${c.issuer})`)));
    } catch (_) { /* suggestions only */ }
  }

  async function loadBalances() {
    const tbody = document.querySelector("#balances tbody");
    try {
      const { items } = await get("/api/v1/accounts?" + holderQuery());
      rows(tbody, items, (a) => el("tr", { dataset: { currency: a.currency } },
        el("th", { scope: "row" }, a.currency),
        el("td", { class: "balance" }, Dec.pretty(a.balance)),
        el("td", { class: "held" }, Dec.pretty(a.held)),
        el("td", { class: "available" }, Dec.pretty(a.available))),
        "No money yet: ask a shop to pay you, or open one in the Shop console.");
    } catch (problem) {
      rows(tbody, [], null, problem.detail || "Balances cannot be loaded.");
    }
  }

  // History, newest first, a page at a time.
  let historyCursor = null;
  const historyFilter = document.getElementById("history-currency");
  function historyPath() {
    const currency = historyFilter.value.trim().toUpperCase();
    return "/api/v1/transfers?" + holderQuery() + (currency ? "&currency=" + encodeURIComponent(currency) : "");
  }
  function historyRow(t) {
    const incoming = t.to === holder() || t.to.startsWith(holder() + "@");
    return el("tr", {},
      el("td", {}, when(t.created_at)),
      el("td", {}, t.from), el("td", {}, t.to),
      el("td", { class: incoming ? "up" : "down" }, (incoming ? "+" : "−") + Dec.pretty(t.amount) + " " + t.currency),
      el("td", {}, t.memo || ""), el("td", {}, t.kind || ""));
  }
  async function loadHistory(more) {
    const tbody = document.querySelector("#history tbody");
    const more_button = document.getElementById("history-more");
    try {
      const page = await get(historyPath() + "&limit=50" + (more && historyCursor ? "&cursor=" + encodeURIComponent(historyCursor) : ""));
      if (more) tbody.append(...page.items.map(historyRow));
      else rows(tbody, page.items, historyRow, "No payments yet.");
      historyCursor = page.next_cursor;
      more_button.hidden = !historyCursor;
    } catch (problem) {
      rows(tbody, [], null, problem.detail || "History cannot be loaded.");
    }
  }
  document.getElementById("history-more").addEventListener("click", () => loadHistory(true));
  historyFilter.addEventListener("change", () => loadHistory(false));

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    // Quote everything; a leading = + - @ would be run as a formula by spreadsheets.
    const safe = /^[=+\-@\t\r]/.test(text) ? "'" + text : text;
    return '"' + safe.replace(/"/g, '""') + '"';
  }
  document.getElementById("history-csv").addEventListener("click", async () => {
    try {
      const items = await getAll(historyPath());
      const lines = [["id", "created_at", "from", "to", "currency", "amount", "memo", "kind"].join(",")];
      for (const t of items) lines.push([t.id, t.created_at, t.from, t.to, t.currency, t.amount, t.memo, t.kind].map(csvCell).join(","));
      download(`scrip-${holder()}-history.csv`, lines.join("\r\n") + "\r\n", "text/csv");
    } catch (problem) {
      toast(problem.detail || "The history cannot be exported.");
    }
  });

  // Paying.
  const payForm = document.getElementById("pay-form");
  onSubmit(payForm, async (data) => {
    const body = { to: data.to || "", currency: (data.currency || "").toUpperCase(), amount: data.amount || "" };
    if (data.memo) body.memo = data.memo;
    if (holder() !== (Scrip.me && Scrip.me.handle)) body.from = holder();
    if (!body.to) return showProblem(payForm, { code: "unknown_account", detail: "Say who to pay." });
    if (!body.amount) return showProblem(payForm, { code: "bad_amount", detail: "Enter an amount." });
    const r = await api("POST", "/api/v1/transfers", body, { "idempotency-key": idempotencyKey() });
    if (!r.ok) return showProblem(payForm, r.data, "amount");
    toast(`Paid ${Dec.pretty(r.data.amount)} ${r.data.currency} to ${r.data.to}`);
    payForm.reset();
    document.getElementById("pay-request").hidden = true;
    await Promise.all([loadBalances(), loadHistory(false)]);
  });

  // A payment request link opened here fills the form in.
  if (params.get("pay_to")) {
    payForm.elements.to.value = params.get("pay_to");
    payForm.elements.currency.value = params.get("currency") || "";
    payForm.elements.amount.value = params.get("amount") || "";
    payForm.elements.memo.value = params.get("memo") || "";
    const notice = document.getElementById("pay-request");
    notice.textContent = `${params.get("pay_to")} asks you to pay ${params.get("amount") || ""} ${params.get("currency") || ""}` +
      (params.get("memo") ? ` for “${params.get("memo")}”` : "") + ". Check it and press Pay.";
    notice.hidden = false;
    payForm.querySelector("button[type=submit]").focus();
  }

  // Asking to be paid: a link to this page with the form filled in, and its QR code.
  const requestForm = document.getElementById("request-form");
  onSubmit(requestForm, async (data) => {
    const code = (data.currency || "").toUpperCase();
    let currency;
    try { currency = await Scrip.currency(code); }
    catch (problem) { return showProblem(requestForm, problem, "currency"); }
    const atoms = Dec.parse(data.amount || "", currency.scale);
    if (atoms === null || atoms <= 0n) {
      return showProblem(requestForm, { detail: `Enter a positive amount with at most ${currency.scale} decimals.` }, "amount");
    }
    const query = new URLSearchParams({ pay_to: holder(), currency: code, amount: data.amount });
    if (data.memo) query.set("memo", data.memo);
    const link = `${location.origin}/wallet?${query}`;
    const a = document.getElementById("request-link");
    a.href = link;
    a.textContent = link;
    document.getElementById("request-qr").src = "/qr.svg?text=" + encodeURIComponent(link);
    document.getElementById("request-result").hidden = false;
  });

  holderSelect.addEventListener("change", () => { loadBalances(); loadHistory(false); });
  loadCurrencyCodes();
  loadBalances();
  loadHistory(false);
  // Money arrives while the page is open (a customer pays at the till): keep balances fresh.
  setInterval(() => { if (!document.hidden) loadBalances(); }, 5000);
})();
