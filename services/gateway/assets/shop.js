// Shop console: open a business, issue its currency, set its limits, pay out, see redemptions,
// outstanding and holders, open a market for it, manage members.
import { Scrip } from "/assets/app.js";
import { newPolicies, renderPolicies, wireCreateForm, wirePolicyForms } from "/assets/shop_policies.js";
import { wireGovernance } from "/assets/shop_governance.js";
import { wireClearing } from "/assets/shop_clearing.js";
import { wireObligations } from "/assets/shop_obligations.js";
(() => {
  const { api, get, getAll, Dec, el, rows, onSubmit, showProblem, toast, when, idempotencyKey } = Scrip;
  const select = document.getElementById("business");
  const business = () => select.value;
  const show = (id, visible) => { document.getElementById(id).hidden = !visible; };
  let profile = null;

  async function loadAllCurrencies() {
    try {
      const { items } = await get("/api/v1/currencies?limit=500");
      document.getElementById("all-currencies").replaceChildren(
        ...items.map((c) => el("option", { value: c.code }, `${c.name} (${c.issuer})`)));
    } catch (_) { /* suggestions only */ }
  }

  // A worker sees the till only; owners see everything.
  const role = () => (select.selectedOptions[0] && select.selectedOptions[0].dataset.role) || "owner";

  async function load() {
    const has = !!business();
    const owner = has && role() === "owner";
    show("till-card", has);
    for (const id of ["currency-card", "payout-card", "market-card", "members-card", "activity-card", "holders-card", "approvals-card", "log-card", "clearing-card", "obligations-card"]) show(id, owner);
    if (!has) return;
    try {
      profile = await get("/api/v1/businesses/" + encodeURIComponent(business()));
    } catch (problem) { toast(problem.detail || "The business cannot be loaded."); return; }
    document.getElementById("business-title").textContent = profile.name;
    renderTill();
    if (!owner) return;
    renderCurrency();
    await Promise.all([loadIssuing(), loadActivity(), loadMembers(), loadMarkets(), loadHolders(false), loadGovernance(), loadStatements(), loadBalances().then(loadObligations)]);
  }
  let loadGovernance = async () => {};
  const loadStatements = wireClearing(business);
  // What the business holds: what it may pay an obligation with.
  let balances = [];
  async function loadBalances() {
    try { balances = (await get("/api/v1/accounts?holder=" + encodeURIComponent(business()))).items; } catch (_) { balances = []; }
  }
  const loadObligations = wireObligations(business, () => balances, () => Promise.all([loadIssuing(), loadBalances()]));

  // A business may issue several currencies: one is shown at a time.
  const pick = document.getElementById("currency-pick");
  const current = () => (profile.currencies || []).find((c) => c.code === pick.value) || (profile.currencies || [])[0];
  pick.addEventListener("change", () => { renderCurrency(); loadHolders(false); });
  document.getElementById("add-currency").addEventListener("click", () => {
    document.getElementById("currency-form").hidden = false;
    document.getElementById("currency-code").focus();
  });

  async function loadMarkets() {
    const list = document.getElementById("business-markets");
    const own = (profile.currencies || []).map((c) => c.code);
    try {
      const items = await getAll("/api/v1/markets");
      const mine = items.filter((m) => own.includes(m.base) || own.includes(m.quote));
      list.replaceChildren(...(mine.length ? mine.map((m) => el("li", {},
        el("a", { href: "/exchange/" + encodeURIComponent(m.symbol) }, m.symbol),
        el("span", { class: "muted" }, ` · last ${m.last_price ? Dec.pretty(m.last_price) : "no trade yet"} · fee ${(m.fee_bps / 100).toFixed(2)} %`)))
        : [el("li", { class: "muted" }, "No market trades this business's currencies yet.")]));
    } catch (_) { /* optional */ }
  }

  // Holders of the shown currency, a page at a time.
  let holdersCursor = null;
  async function loadHolders(more) {
    const tbody = document.querySelector("#holders-table tbody");
    const c = current();
    const button = document.getElementById("holders-more");
    if (!c) { rows(tbody, [], null, "No currency yet."); button.hidden = true; return; }
    if (!more) holdersCursor = null;
    try {
      const page = await get(`/api/v1/currencies/${encodeURIComponent(c.code)}/holders?limit=20` +
        (holdersCursor ? "&cursor=" + encodeURIComponent(holdersCursor) : ""));
      const render = (h) => el("tr", {}, el("th", { scope: "row" }, h.holder),
        el("td", {}, `${Dec.pretty(h.balance)} ${c.code}`), el("td", {}, Dec.pretty(h.held)),
        el("td", {}, c.freezable ? freezeButton(c, h) : (h.frozen ? "frozen" : "")));
      if (more) tbody.append(...page.items.map(render));
      else rows(tbody, page.items, render, `Nobody holds ${c.code} yet: pay some out.`);
      holdersCursor = page.next_cursor;
      button.hidden = !holdersCursor;
    } catch (problem) { rows(tbody, [], null, problem.detail || "Holders cannot be loaded."); }
  }
  document.getElementById("holders-more").addEventListener("click", () => loadHolders(true));

  // A freezable currency's stewards freeze a holder's account (it can neither pay nor trade
  // in it, its orders are cancelled) and unfreeze it.
  function freezeButton(c, h) {
    const verb = h.frozen ? "unfreeze" : "freeze";
    const button = el("button", { type: "button", class: h.frozen ? "secondary" : "link", "data-holder": h.holder },
      h.frozen ? "Unfreeze" : "Freeze");
    button.addEventListener("click", async () => {
      button.disabled = true;
      const r = await api("POST", `/api/v1/currencies/${encodeURIComponent(c.code)}/${verb}`, { holder: h.holder });
      if (!r.ok) { button.disabled = false; return toast(r.data.detail || "It could not be changed."); }
      toast(r.data.frozen ? `${h.holder}'s ${c.code} account is frozen: it can neither pay nor trade, its orders are cancelled.`
        : `${h.holder}'s ${c.code} account is unfrozen.`);
      await loadHolders(false);
    });
    return button;
  }

  // The till: a tracked payment request for the business, its QR code, and "Paid" live.
  const tillForm = document.getElementById("till-form");
  let stopTill = () => {};
  function renderTill() {
    const currencies = (profile.currencies || []).map((c) => c.code);
    document.getElementById("till-currency").replaceChildren(...currencies.map((code) => el("option", { value: code }, code)));
    tillForm.hidden = false;
    document.getElementById("till-request").hidden = true;
    stopTill();
    loadReceived();
  }

  // What the till has taken: the business's balances and its latest payments received
  // (a worker sees only these; an owner's list is filtered to the same).
  async function loadReceived() {
    const list = document.getElementById("till-received");
    try {
      const [{ items: accounts }, { items: lines }] = await Promise.all([
        get("/api/v1/accounts?holder=" + encodeURIComponent(business())),
        get("/api/v1/transfers?limit=20&holder=" + encodeURIComponent(business())),
      ]);
      const own = (profile.currencies || []).map((c) => c.code);
      document.getElementById("till-balance").textContent = accounts.filter((a) => !own.includes(a.currency))
        .map((a) => `${Dec.pretty(a.balance)} ${a.currency}`).join(" · ");
      const received = lines.filter((t) => t.to === business() && t.kind === "payment").slice(0, 8);
      list.replaceChildren(...(received.length ? received.map((t) => el("li", {},
        el("strong", {}, `${Dec.pretty(t.amount)} ${t.currency}`), ` from ${t.from}`,
        t.memo ? ` · ${t.memo}` : "", el("span", { class: "muted" }, ` · ${when(t.created_at)}`)))
        : [el("li", { class: "muted" }, "No payment received yet.")]));
    } catch (_) { list.replaceChildren(); }
  }
  onSubmit(tillForm, async (data) => {
    const body = { to: business(), currency: data.currency || "", amount: data.amount || "" };
    if (data.memo) body.memo = data.memo;
    if (!body.currency) return showProblem(tillForm, { detail: "The business has no currency to be paid in yet." });
    const r = await api("POST", "/api/v1/payment-requests", body);
    if (!r.ok) return showProblem(tillForm, r.data, "amount");
    tillForm.hidden = true;
    document.getElementById("till-request").hidden = false;
    stopTill = Scrip.showRequest(r.data, {
      qr: document.getElementById("till-qr"),
      link: document.getElementById("till-link"),
      status: document.getElementById("till-status"),
    }, () => { loadReceived(); if (role() === "owner") { loadActivity(); loadIssuing(); } });
  });
  document.getElementById("till-next").addEventListener("click", () => {
    tillForm.reset();
    renderTill();
    tillForm.elements.amount.focus();
  });

  function renderCurrency() {
    const details = document.getElementById("currency-details");
    const currencies = profile.currencies || [];
    document.getElementById("currency-form").hidden = currencies.length > 0;
    document.getElementById("limits-form").hidden = currencies.length === 0;
    document.getElementById("policies-form").hidden = currencies.length === 0;
    document.getElementById("currency-members").hidden = true;
    document.getElementById("add-currency").hidden = currencies.length === 0;
    const shown = pick.value;
    pick.replaceChildren(...currencies.map((c) => el("option", { value: c.code }, c.code)));
    if (currencies.some((c) => c.code === shown)) pick.value = shown;
    pick.hidden = currencies.length < 2;
    pick.previousElementSibling.hidden = pick.hidden;
    const payout = document.getElementById("payout-currency");
    const payoutShown = payout.value;
    payout.replaceChildren(...currencies.map((c) => el("option", { value: c.code }, c.code)));
    if (currencies.some((c) => c.code === payoutShown)) payout.value = payoutShown;
    if (!currencies.length) {
      details.replaceChildren(el("p", { class: "muted" }, `${profile.name} has no currency yet. Create one to start paying out.`));
      return;
    }
    const c = current();
    details.replaceChildren(el("dl", { class: "stats", id: "currency-stats" },
      el("dt", {}, "Code"), el("dd", {}, c.code),
      el("dt", {}, "Name"), el("dd", {}, c.name),
      el("dt", {}, "Outstanding"), el("dd", { id: "outstanding" }, `${Dec.pretty(c.outstanding)} ${c.code}`),
      el("dt", {}, "Holders"), el("dd", { id: "holders" }, String(c.holders)),
      el("dt", {}, "Credit limit"), el("dd", {}, Dec.pretty(c.credit_limit)),
      el("dt", {}, "Max balance"), el("dd", {}, c.max_balance ? Dec.pretty(c.max_balance) : "none"),
      el("dt", {}, "Worth"), el("dd", {}, `${c.par} ${c.unit}`)));
    const limits = document.getElementById("limits-form");
    limits.elements.credit_limit.value = c.credit_limit;
    limits.elements.max_balance.value = c.max_balance || "";
    for (const [name, field] of [["credit_limit", "credit_limit"], ["max_balance", "max_balance"]]) {
      limits.elements[name].disabled = (c.sealed || []).includes(field);
    }
    renderPolicies(c);
    document.getElementById("market-base").value ||= c.code;
  }

  /** What the business's issuing accounts can still pay out, by currency. */
  const issuing = {};
  async function loadIssuing() {
    try {
      const { items } = await get("/api/v1/accounts?holder=" + encodeURIComponent(business()));
      const own = (profile.currencies || []).map((c) => c.code);
      for (const a of items) issuing[a.currency] = a.available;
      const line = document.getElementById("issuing-balance");
      line.replaceChildren(...items.filter((a) => own.includes(a.currency)).map((a) =>
        el("span", { class: "muted" }, `Issuing account: ${Dec.pretty(a.balance)} ${a.currency}, `,
          el("strong", {}, `${Dec.pretty(a.available)} ${a.currency}`), " can still be paid out.")));
    } catch (_) { /* optional */ }
  }

  async function loadActivity() {
    const tbody = document.querySelector("#activity tbody");
    try {
      const { items } = await get("/api/v1/transfers?limit=50&holder=" + encodeURIComponent(business()));
      rows(tbody, items, (t) => {
        const incoming = t.to === business();
        return el("tr", {},
          el("td", {}, when(t.created_at)),
          el("td", {}, incoming ? t.from : t.to),
          el("td", { class: "down" }, incoming ? "" : `${Dec.pretty(t.amount)} ${t.currency}`),
          el("td", { class: "up" }, incoming ? `${Dec.pretty(t.amount)} ${t.currency}` : ""),
          el("td", {}, t.memo || ""));
      }, "No payments yet.");
    } catch (problem) { rows(tbody, [], null, problem.detail); }
  }

  async function loadMembers() {
    const list = document.getElementById("members-list");
    try {
      const { items } = await get(`/api/v1/businesses/${encodeURIComponent(business())}/members`);
      list.replaceChildren(...items.map(memberItem));
    } catch (problem) { list.replaceChildren(el("li", { class: "muted" }, problem.detail || "")); }
  }

  // A member, or an invitation waiting for the person to accept, which an owner may withdraw.
  function memberItem(m) {
    if (m.status !== "invited") return el("li", {}, el("strong", {}, m.handle), " · ", m.role);
    const withdraw = el("button", { type: "button", class: "link" }, "Withdraw");
    withdraw.addEventListener("click", async () => {
      const path = `/api/v1/businesses/${encodeURIComponent(business())}/invitations/${encodeURIComponent(m.handle)}`;
      const r = await api("DELETE", path);
      if (!r.ok) return toast(r.data.detail || "Could not withdraw the invitation.");
      toast(`The invitation of ${m.handle} is withdrawn.`);
      await loadMembers();
    });
    return el("li", {}, el("strong", {}, m.handle), " · ", m.role, " · ",
      el("span", { class: "muted" }, `invited by ${m.invited_by}, not accepted yet`), " ", withdraw);
  }

  // Opening a business: it joins the selector and becomes the one shown.
  const businessForm = document.getElementById("business-form");
  onSubmit(businessForm, async (data) => {
    const r = await api("POST", "/api/v1/businesses", { handle: data.handle || "", name: data.name || "" });
    if (!r.ok) return showProblem(businessForm, r.data, "handle");
    select.append(el("option", { value: r.data.handle }, r.data.handle));
    select.value = r.data.handle;
    businessForm.reset();
    toast(`${r.data.name} is open. Now create its currency.`);
    await load();
    document.getElementById("currency-code").focus();
  });

  const currencyForm = document.getElementById("currency-form");
  onSubmit(currencyForm, async (data) => {
    const body = { issuer: business(), code: (data.code || "").toUpperCase(), name: data.name || "",
      scale: Number(data.scale ?? 2), credit_limit: data.credit_limit || "", ...newPolicies(data) };
    if (data.max_balance) body.max_balance = data.max_balance;
    if (data.unit) body.unit = data.unit.toUpperCase();
    if (data.par) body.par = data.par;
    const r = await api("POST", "/api/v1/currencies", body);
    if (!r.ok) return showProblem(currencyForm, r.data, "code");
    if (Scrip.proposed(r)) return currencyForm.reset();
    toast(`${r.data.code} created: pay it out to your workers and customers.`);
    await Promise.all([load(), loadAllCurrencies()]);
    // Show the new one.
    pick.value = r.data.code;
    renderCurrency();
    loadHolders(false);
  });

  const limitsForm = document.getElementById("limits-form");
  onSubmit(limitsForm, async (data) => {
    const code = current().code;
    // A sealed limit is not sent at all (its field is locked): the API refuses any change of it.
    const c = current(), sealed = c.sealed || [], body = {};
    if (!sealed.includes("credit_limit")) body.credit_limit = data.credit_limit || "";
    if (!sealed.includes("max_balance")) body.max_balance = data.max_balance || null;
    if (!Object.keys(body).length) return toast("Both limits are sealed.");
    const r = await api("PATCH", "/api/v1/currencies/" + encodeURIComponent(code), body);
    if (!r.ok) return showProblem(limitsForm, r.data, "credit_limit");
    if (Scrip.proposed(r)) return;
    toast("Limits saved.");
    await load();
  });

  // Paying out: a large pay-out (a tenth of the credit line or more) is confirmed first, and
  // one that leaves little of the credit line says so.
  const payoutForm = document.getElementById("payout-form");
  const payoutConfirm = document.getElementById("payout-confirm");
  let confirmed = null;
  payoutForm.addEventListener("input", () => { confirmed = null; payoutConfirm.hidden = true; });
  function payoutWarning(body) {
    const c = (profile.currencies || []).find((x) => x.code === body.currency);
    if (!c || Dec.places(body.amount) > c.scale || Dec.parse(body.amount, c.scale) === null) return null;
    const amount = Dec.parse(body.amount, c.scale), limit = Dec.parse(c.credit_limit, c.scale);
    const left = issuing[c.code] !== undefined ? Dec.parse(issuing[c.code], c.scale) - amount : null;
    const parts = [];
    if (limit > 0n && amount * 10n >= limit) parts.push(`This pays out ${Dec.pretty(body.amount)} ${c.code} to ${body.to}, a tenth of the credit limit or more.`);
    if (left !== null && left >= 0n && limit > 0n && left * 10n < limit) parts.push(`Afterwards only ${Dec.pretty(Dec.format(left, c.scale))} ${c.code} can still be paid out before the credit limit.`);
    return parts.length ? parts.join(" ") + " Press Pay out again to confirm." : null;
  }
  onSubmit(payoutForm, async (data) => {
    const body = { from: business(), to: data.to || "", currency: data.currency || "", amount: data.amount || "" };
    if (data.memo) body.memo = data.memo;
    if (!body.currency) return showProblem(payoutForm, { detail: "Create the business's currency first." });
    const warning = payoutWarning(body);
    const key = JSON.stringify(body);
    if (warning && confirmed !== key) {
      confirmed = key;
      payoutConfirm.textContent = warning;
      payoutConfirm.hidden = false;
      return;
    }
    confirmed = null;
    payoutConfirm.hidden = true;
    const r = await api("POST", "/api/v1/transfers", body, { "idempotency-key": idempotencyKey() });
    if (!r.ok) return showProblem(payoutForm, r.data, "amount");
    if (Scrip.proposed(r)) { payoutForm.elements.amount.value = ""; return; }
    toast(`Paid ${Dec.pretty(r.data.amount)} ${r.data.currency} to ${r.data.to}`);
    payoutForm.elements.amount.value = "";
    payoutForm.elements.memo.value = "";
    await load();
  });

  const marketForm = document.getElementById("market-form");
  onSubmit(marketForm, async (data) => {
    const body = { base: (data.base || "").toUpperCase(), quote: (data.quote || "").toUpperCase(),
      tick_size: data.tick_size || "", lot_size: data.lot_size || "", fee_bps: Number(data.fee_bps ?? 0) };
    const r = await api("POST", "/api/v1/markets", body);
    if (!r.ok) return showProblem(marketForm, r.data, "base");
    if (Scrip.proposed(r)) return;
    marketForm.replaceChildren(el("p", { class: "notice" }, "Market open: ",
      el("a", { href: "/exchange/" + encodeURIComponent(r.data.symbol) }, r.data.symbol)));
    loadMarkets();
  });

  const memberForm = document.getElementById("member-form");
  onSubmit(memberForm, async (data) => {
    const r = await api("POST", `/api/v1/businesses/${encodeURIComponent(business())}/members`,
      { handle: data.handle || "", role: data.role || "worker" });
    if (!r.ok) return showProblem(memberForm, r.data, "handle");
    if (Scrip.proposed(r)) return memberForm.reset();
    toast(r.data.status === "invited"
      ? `${r.data.handle} is invited as ${r.data.role}: they become one when they accept.`
      : `${r.data.handle} is now ${Scrip.article(r.data.role)} of ${r.data.business}.`);
    memberForm.reset();
    await loadMembers();
  });

  wireCreateForm(currencyForm);
  wirePolicyForms(current, load);
  loadGovernance = wireGovernance(business, load);
  select.addEventListener("change", load);
  loadAllCurrencies();
  load();
})();
