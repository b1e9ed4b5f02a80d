// Wallet: balances, paying by handle or a payment request, asking to be paid (a tracked
// request with its QR code), history and CSV.
import { Scrip } from "/assets/app.js";
import { checkMyBalance } from "/assets/liabilities.js";
import { wireSwaps } from "/assets/wallet_swaps.js";
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

  /** The holder's accounts as last loaded: what "pay with" may offer. */
  let held = [];
  async function loadBalances() {
    const tbody = document.querySelector("#balances tbody");
    try {
      const { items } = await get("/api/v1/accounts?" + holderQuery());
      held = items;
      rows(tbody, items, (a) => el("tr", { dataset: { currency: a.currency } },
        el("th", { scope: "row" }, el("a", { href: "/currencies/" + encodeURIComponent(a.currency), title: "What holding it means" }, a.currency)),
        el("td", { class: "balance" }, Dec.pretty(a.balance)),
        el("td", { class: "held" }, Dec.pretty(a.held)),
        el("td", { class: "available" }, Dec.pretty(a.available))),
        "No money yet: ask a shop to pay you, or open one in the Shop console.");
      document.getElementById("balance-notes").replaceChildren(...items.flatMap(balanceNotes));
      const provable = items.filter((a) => Dec.compare(a.balance, "0") > 0).map((a) => a.currency);
      const pick = document.getElementById("proof-currency");
      const chosen = pick.value;
      pick.replaceChildren(...provable.map((c) => el("option", { value: c }, c)));
      if (provable.includes(chosen)) pick.value = chosen;
      document.getElementById("proof-check").hidden = !provable.length;
      // What may pay a payment on the form changed: price it again (this also keeps a
      // quote on the form fresh).
      if (payForm.elements.amount.value) previewPayment();
    } catch (problem) {
      rows(tbody, [], null, problem.detail || "Balances cannot be loaded.");
    }
  }

  // Proof of liabilities: the browser folds the proof itself (liabilities.js).
  let lastProof = null;
  document.getElementById("proof-run").addEventListener("click", async () => {
    const code = document.getElementById("proof-currency").value;
    const result = document.getElementById("proof-result");
    result.className = "";
    result.textContent = "Checking…";
    try {
      const found = await checkMyBalance(code, holder());
      lastProof = found.proof || null;
      result.className = found.ok ? "notice" : "notice warn";
      result.textContent = found.text;
      document.getElementById("proof-download").hidden = !lastProof;
    } catch (problem) {
      result.className = "notice warn";
      result.textContent = problem.detail || "The proof cannot be fetched now.";
    }
  });
  document.getElementById("proof-download").addEventListener("click", () => {
    if (lastProof) download(`scrip-proof-${lastProof.currency}-${lastProof.as_of.slice(0, 10)}.json`, JSON.stringify(lastProof, null, 2), "application/json");
  });

  /** What a balance's number alone does not say: a credit line, demurrage to come, a freeze. */
  function balanceNotes(a) {
    const notes = [];
    if (Dec.compare(a.floor, "0") < 0) notes.push(`${a.currency}: may go below zero, down to ${Dec.pretty(a.floor)} (a credit line).`);
    if (a.next_demurrage && Dec.compare(a.next_demurrage.amount, "0") > 0) notes.push(`${a.currency}: demurrage of ${Dec.pretty(a.next_demurrage.amount)} on ${when(a.next_demurrage.at)}.`);
    if (a.frozen) notes.push(`${a.currency}: frozen by its stewards; it can neither pay nor trade.`);
    return notes.map((text) => el("li", {}, text));
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
    // A payment the holder made may have been converted from other currencies: its details
    // (what each cost, the trades) are one click away.
    const kind = t.kind === "payment" && !incoming
      ? el("button", { type: "button", class: "link", title: "What it cost and how it was paid", onclick: (e) => showPayment(e.target, t.id) }, "payment")
      : (t.kind || "");
    return el("tr", {},
      el("td", {}, when(t.created_at)),
      el("td", {}, t.from), el("td", {}, t.to),
      el("td", { class: incoming ? "up" : "down" }, (incoming ? "+" : "−") + Dec.pretty(t.amount) + " " + t.currency),
      el("td", {}, t.memo || ""), el("td", {}, kind));
  }
  /** Opens a payment's details under its row: what each currency cost and its trades. */
  async function showPayment(button, id) {
    const row = button.closest("tr");
    if (row.nextElementSibling && row.nextElementSibling.dataset.details === id) {
      row.nextElementSibling.remove();
      return;
    }
    const r = await api("GET", "/api/v1/payments/" + encodeURIComponent(id));
    const cost = r.ok ? Object.entries(r.data.spent).map(([c, v]) => `${Dec.pretty(v)} ${c}`) : [];
    const text = !r.ok ? (r.data.detail || "The payment cannot be shown.")
      : !r.data.trades.length ? `Paid from your ${r.data.currency}, no conversion.`
      : `Paid with ${cost.join(" + ")}, converted in ${r.data.trades.length} trade${r.data.trades.length === 1 ? "" : "s"}: ` +
        r.data.trades.map((t) => `${Dec.pretty(t.quantity)} at ${Dec.pretty(t.price)} on ${t.market}`).join(", ") +
        (Object.keys(r.data.change).length ? `; left over: ${Object.entries(r.data.change).map(([c, v]) => `${Dec.pretty(v)} ${c}`).join(", ")}` : "") + ".";
    row.after(el("tr", { class: "details", dataset: { details: id } }, el("td", { colspan: 6, class: "muted" }, text)));
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
    // One currency chosen: the server's statement (signed amounts, fees apart, running
    // balance, the last 30 days). All currencies: the history as shown.
    const currency = historyFilter.value.trim().toUpperCase();
    if (currency) {
      const response = await fetch(`/api/v1/statements?${holderQuery()}&currency=${encodeURIComponent(currency)}`,
        { credentials: "same-origin" });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        return toast(problem.detail ? `No statement: ${problem.detail}.` : "The statement cannot be made.");
      }
      return download(`scrip-${holder()}-${currency}.csv`, await response.text(), "text/csv");
    }
    try {
      const items = await getAll(historyPath());
      const lines = [["id", "created_at", "from", "to", "currency", "amount", "memo", "kind"].join(",")];
      for (const t of items) lines.push([t.id, t.created_at, t.from, t.to, t.currency, t.amount, t.memo, t.kind].map(csvCell).join(","));
      download(`scrip-${holder()}-history.csv`, lines.join("\r\n") + "\r\n", "text/csv");
    } catch (problem) {
      toast(problem.detail || "The history cannot be exported.");
    }
  });

  // Paying: a person by handle, or the payment request a QR code opened here.
  const payForm = document.getElementById("pay-form");
  const notice = document.getElementById("pay-request");
  let request = null;
  onSubmit(payForm, async (data) => {
    const from = holder() !== (Scrip.me && Scrip.me.handle) ? holder() : undefined;
    // A paid or expired request on the form: nothing to pay (the button is off too).
    if (payForm.dataset.locked === "1") return;
    if (request) return payRequest(from);
    const body = { to: data.to || "", currency: (data.currency || "").toUpperCase(), amount: data.amount || "" };
    if (data.memo) body.memo = data.memo;
    if (from) body.from = from;
    if (!body.to) return showProblem(payForm, { code: "unknown_account", detail: "Say who to pay." });
    if (!body.amount) return showProblem(payForm, { code: "bad_amount", detail: "Enter an amount." });
    if (!payWith.hidden) return payConverted(body);
    const r = await api("POST", "/api/v1/transfers", body, { "idempotency-key": idempotencyKey() });
    if (!r.ok) return showProblem(payForm, r.data, "amount");
    toast(`Paid ${Dec.pretty(r.data.amount)} ${r.data.currency} to ${r.data.to}`);
    paid();
  });
  async function paid() {
    payForm.reset();
    notice.hidden = true;
    preview.hidden = true;
    payWith.hidden = true;
    quote = null;
    await Promise.all([loadBalances(), loadHistory(false)]);
  }

  // Paying in a currency one does not hold (enough of): the server quotes what each held
  // currency would cost through the books, and the payment is made by that quote (refused,
  // changing nothing, if it would now cost more).
  const payWith = document.getElementById("pay-with");
  const quoteBox = document.getElementById("pay-quote");
  let quote = null;
  /** The currencies ticked to pay with, in the order shown. */
  function sources() {
    return [...payWith.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
  }
  function offerSources(code) {
    const offered = held.filter((a) => a.currency !== code && Dec.compare(a.available, "0") > 0);
    const ticked = new Set(sources());
    const fresh = !payWith.dataset.code || payWith.dataset.code !== code;
    payWith.dataset.code = code;
    document.getElementById("pay-with-sources").replaceChildren(...offered.map((a) =>
      el("label", { class: "check" },
        el("input", { type: "checkbox", value: a.currency, checked: fresh || ticked.has(a.currency) }),
        ` ${a.currency} `, el("span", { class: "muted" }, `(${Dec.pretty(a.available)} available)`))));
    return offered.length > 0;
  }
  function describeQuote(q) {
    const legs = q.legs.map((leg) => {
      const fees = Object.entries(leg.fees).filter(([, v]) => Dec.compare(v, "0") > 0).map(([c, v]) => `${Dec.pretty(v)} ${c}`);
      return el("span", { class: "line" },
        `${Dec.pretty(leg.spend)} ${leg.pay_currency} through ${leg.route.join(" then ")}`,
        el("span", { class: "muted" }, ` (worst price ${leg.worst_price.map(Dec.pretty).join(", ")}${fees.length ? "; market fees " + fees.join(", ") : ""})`));
    });
    const total = Object.entries(q.spend).map(([c, v]) => `${Dec.pretty(v)} ${c}`).join(" + ");
    const change = Object.entries(q.change).map(([c, v]) => `${Dec.pretty(v)} ${c}`);
    return [
      el("strong", { class: "line" }, `You spend ${total} for ${Dec.pretty(q.amount)} ${q.currency}${q.fee ? ` (plus its fee ${Dec.pretty(q.fee)})` : ""}.`),
      ...legs,
      change.length ? el("span", { class: "line muted" }, `Left over with you (whole lots): ${change.join(", ")}.`) : "",
      el("span", { class: "line muted" }, `Priced on the live books at ${Scrip.time(new Date())}; good until ${Scrip.time(new Date(q.expires_at))}. If the books move so it would cost more, nothing is paid and you see the new price.`),
    ];
  }
  async function quotePayment(body) {
    const chosen = sources();
    quote = null;
    quoteBox.hidden = false;
    if (!chosen.length) { quoteBox.textContent = "Tick at least one currency to pay with."; return; }
    quoteBox.textContent = "Asking the books…";
    const ask = { to: body.to, currency: body.currency, amount: body.amount, pay_with: chosen };
    if (body.from) ask.from = body.from;
    const r = await api("POST", "/api/v1/quotes", ask);
    if (!r.ok) {
      quoteBox.textContent = r.data.code === "no_route" ? `Cannot be paid with ${chosen.join(", ")}: ${r.data.detail}.` : (r.data.detail || "No price right now.");
      return;
    }
    quote = { id: r.data.id, body: ask, key: idempotencyKey() };
    quoteBox.replaceChildren(...describeQuote(r.data));
  }
  payWith.addEventListener("change", () => previewPayment());
  /** Pays by the quote shown; `requestId`: the payment request on the form, claimed with it. */
  async function payConverted(body, requestId) {
    if (!quote) return showProblem(payForm, { code: "no_route", detail: "There is no price to pay by yet: see “Pay with what you hold”." });
    const pay = { ...quote.body, quote_id: quote.id };
    if (body.memo) pay.memo = body.memo;
    if (requestId) pay.request_id = requestId;
    const r = await api("POST", "/api/v1/payments", pay, { "idempotency-key": quote.key });
    if (!r.ok) {
      if (["slippage_exceeded", "quote_expired", "no_route"].includes(r.data.code)) await previewPayment();
      return showProblem(payForm, { ...r.data, detail: r.data.code === "slippage_exceeded" ? "The books moved: it would now cost more. Check the new price below and press Pay again." : r.data.detail }, "amount");
    }
    const spent = Object.entries(r.data.spent).map(([c, v]) => `${Dec.pretty(v)} ${c}`).join(" + ");
    toast(`Paid ${Dec.pretty(r.data.amount)} ${r.data.currency} to ${r.data.to} with ${spent}`);
    if (!requestId) return paid();
    payWith.hidden = true;
    quote = null;
    await openRequest(requestId);
    await Promise.all([loadBalances(), loadHistory(false)]);
  }

  // Before paying: the fee that goes on top and the largest payment, as the server will
  // apply them (the currency's own policies, read once per page).
  const preview = document.getElementById("pay-preview");
  async function previewPayment() {
    const code = (payForm.elements.currency.value || "").trim().toUpperCase();
    const amount = (payForm.elements.amount.value || "").trim();
    preview.hidden = true;
    if (!code || !amount) { payWith.hidden = true; return; }
    let c;
    try { c = await Scrip.currency(code); } catch (_) { return; }
    const atoms = Dec.places(amount) <= c.scale ? Dec.parse(amount, c.scale) : null;
    if (atoms === null || atoms <= 0n) return;
    const lines = [];
    if (c.max_payment && atoms > Dec.parse(c.max_payment, c.scale)) lines.push(`The largest payment in ${code} is ${Dec.pretty(c.max_payment)}.`);
    const collector = c.transfer_fee && (c.transfer_fee.to || c.issuer);
    let fee = 0n;
    if (c.transfer_fee && collector !== holder()) {
      fee = Dec.transferFee(atoms, c.transfer_fee.bps, Dec.parse(c.transfer_fee.min || "0", c.scale));
      lines.push(`${code} charges a fee on each payment: ${Dec.pretty(Dec.format(fee, c.scale))} on top, to ${collector}. You pay ${Dec.pretty(Dec.format(atoms + fee, c.scale))} ${code} in all.`);
    }
    if (lines.length) {
      preview.textContent = lines.join(" ");
      preview.hidden = false;
    }
    await offerConversion(code, c, atoms + fee);
  }
  /** Short of the currency: offer what else the holder has, and ask for a price. */
  async function offerConversion(code, c, needed) {
    const own = held.find((a) => a.currency === code);
    const available = own ? Dec.parse(own.available, c.scale) : 0n;
    const to = (payForm.elements.to.value || "").trim();
    if (available >= needed || !to || !offerSources(code)) {
      payWith.hidden = true;
      quote = null;
      return;
    }
    document.getElementById("pay-with-why").textContent = available > 0n
      ? `You have ${Dec.pretty(Dec.format(available, c.scale))} ${code} available: it is used first, and the rest is bought through the exchange with what you tick, in this order, in the same payment.`
      : `You hold no ${code}: it is bought through the exchange with what you tick, in this order, in the same payment.`;
    payWith.hidden = false;
    const from = holder() !== (Scrip.me && Scrip.me.handle) ? holder() : undefined;
    await quotePayment({ to, currency: code, amount: payForm.elements.amount.value.trim(), from });
  }
  payForm.addEventListener("input", Scrip.throttle(previewPayment, 250));

  async function payRequest(from) {
    if (!payWith.hidden) return payConverted({ memo: undefined }, request.id);
    const r = await api("POST", `/api/v1/payment-requests/${encodeURIComponent(request.id)}/pay`, from ? { from } : {},
      { "idempotency-key": request.key });
    if (!r.ok) {
      if (r.data && (r.data.code === "already_paid" || r.data.code === "request_expired")) await openRequest(request.id);
      return showProblem(payForm, r.data, "amount");
    }
    toast(`Paid ${Dec.pretty(r.data.amount)} ${r.data.currency} to ${r.data.to}`);
    await openRequest(request.id);
    await Promise.all([loadBalances(), loadHistory(false)]);
  }

  // A payment request opened here (from its QR code, /pay/ID) fills the form in and pays it.
  async function openRequest(id) {
    const r = await api("GET", "/api/v1/payment-requests/" + encodeURIComponent(id));
    if (!r.ok) {
      notice.textContent = "This payment request does not exist. Ask for a new one.";
      notice.hidden = false;
      return;
    }
    const asked = r.data;
    request = asked.status === "open" ? { id: asked.id, key: (request && request.key) || idempotencyKey() } : null;
    payForm.elements.to.value = asked.to;
    payForm.elements.currency.value = asked.currency;
    payForm.elements.amount.value = asked.amount;
    previewPayment();
    payForm.elements.memo.value = asked.memo || "";
    for (const name of ["to", "currency", "amount", "memo"]) payForm.elements[name].readOnly = asked.status === "open" || asked.status === "paid";
    const what = `${asked.to} asks for ${Dec.pretty(asked.amount)} ${asked.currency}` + (asked.memo ? ` for “${asked.memo}”` : "");
    notice.textContent = {
      open: `${what}. Check it and press Pay.`,
      paid: `${what}: this request has been paid. Nothing more to pay.`,
      expired: `${what}: this request expired unpaid. Ask for a new one.`,
    }[asked.status];
    notice.dataset.status = asked.status;
    if (asked.status !== "open") {
      notice.append(" ", el("button", { type: "button", class: "link", id: "pay-someone-else", onclick: leaveRequest }, "Pay someone else"));
    }
    notice.hidden = false;
    payForm.dataset.locked = asked.status === "open" ? "" : "1";
    payForm.querySelector("button[type=submit]").disabled = asked.status !== "open";
    if (asked.status === "open") payForm.querySelector("button[type=submit]").focus();
  }
  /** Back to an ordinary payment form, the request left behind. */
  function leaveRequest() {
    request = null;
    payForm.dataset.locked = "";
    payForm.reset();
    for (const name of ["to", "currency", "amount", "memo"]) payForm.elements[name].readOnly = false;
    payForm.querySelector("button[type=submit]").disabled = false;
    notice.hidden = true;
    history.replaceState(null, "", location.pathname);
    payForm.elements.to.focus();
  }
  if (params.get("request")) openRequest(params.get("request"));

  // An old-style link (before requests were tracked) still fills the form in.
  if (params.get("pay_to")) {
    payForm.elements.to.value = params.get("pay_to");
    payForm.elements.currency.value = params.get("currency") || "";
    payForm.elements.amount.value = params.get("amount") || "";
    payForm.elements.memo.value = params.get("memo") || "";
    notice.textContent = `${params.get("pay_to")} asks you to pay ${params.get("amount") || ""} ${params.get("currency") || ""}` +
      (params.get("memo") ? ` for “${params.get("memo")}”` : "") + ". Check it and press Pay.";
    notice.hidden = false;
    payForm.querySelector("button[type=submit]").focus();
  }

  // Asking to be paid: a tracked request, its QR code, and "Paid" when it is.
  const requestForm = document.getElementById("request-form");
  let stopFollowing = () => {};
  onSubmit(requestForm, async (data) => {
    const body = { to: holder(), currency: (data.currency || "").toUpperCase(), amount: data.amount || "" };
    if (data.memo) body.memo = data.memo;
    const r = await api("POST", "/api/v1/payment-requests", body);
    if (!r.ok) return showProblem(requestForm, r.data, "amount");
    stopFollowing();
    document.getElementById("request-result").hidden = false;
    stopFollowing = Scrip.showRequest(r.data, {
      qr: document.getElementById("request-qr"),
      link: document.getElementById("request-link"),
      status: document.getElementById("request-status"),
    }, () => { loadBalances(); loadHistory(false); });
  });

  holderSelect.addEventListener("change", () => { loadBalances(); loadHistory(false); });
  loadCurrencyCodes();
  loadBalances();
  loadHistory(false);
  const loadSwaps = wireSwaps(() => loadBalances());
  loadSwaps();
  // Money arrives while the page is open (a customer pays at the till): the event stream says
  // so; a slow poll covers a stream that dropped.
  Scrip.onEvent((event) => {
    if (["payment_received", "order_filled", "order_cancelled", "order_expired", "lagged"].includes(event.type)) {
      loadBalances();
      if (event.type === "payment_received") loadHistory(false);
    }
  });
  setInterval(() => { if (!document.hidden) loadBalances(); }, 15000);

  const passwordForm = document.getElementById("password-form");
  onSubmit(passwordForm, async (data) => {
    const r = await api("POST", "/api/v1/auth/password", { current: data.current || "", new: data.new || "" });
    if (!r.ok) return showProblem(passwordForm, r.data, r.data.code === "weak_password" ? "new" : "current");
    passwordForm.reset();
    const n = r.data.signed_out_sessions;
    toast(`Password changed. ${n === 0 ? "No other session was open." : `${n} other session${n === 1 ? " was" : "s were"} signed out.`}`);
  });
})();
