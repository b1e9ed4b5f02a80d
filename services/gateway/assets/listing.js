// One listing: what it is, who offers or wants it and their reputation, and the deal: buy at
// the price now (converted from what the buyer holds when it lacks the currency), agree to
// pay after the service, or (`?deal=`) pay an open deal on it. Its holder may withdraw it.
import { Scrip } from "/assets/app.js";
import { listingItem, payWith, priceWords, reputationWords } from "/assets/listings.js";
(() => {
  const { me, api, get, Dec, el, onSubmit, showProblem, toast } = Scrip;
  const id = document.getElementById("listing-title").dataset.id;
  const openDeal = new URLSearchParams(location.search).get("deal");
  let listing = null;
  let deal = null;

  async function load() {
    try { listing = await get("/api/v1/listings/" + encodeURIComponent(id)); } catch (problem) {
      document.getElementById("listing-title").textContent = "Not found";
      document.querySelector(".market-grid").hidden = true;
      const error = document.getElementById("listing-error");
      error.textContent = problem.detail || "There is no such listing.";
      error.hidden = false;
      return;
    }
    document.title = `${listing.title} · Scrip`;
    document.getElementById("listing-title").textContent = listing.title;
    document.getElementById("listing-kind").textContent = listing.status === "withdrawn" ? "withdrawn" : (listing.kind === "want" ? "wanted" : "offered");
    document.getElementById("listing-price").textContent = priceWords(listing);
    document.getElementById("listing-description").textContent = listing.description || "No description.";
    const facts = [["Takes", listing.accepts.join(", ") || "any currency agreed"], ["Category", listing.category || "none"], ["Place", listing.place || "not given"], ["Listed", Scrip.when(listing.created_at)]];
    document.getElementById("listing-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const holder = document.getElementById("holder-link");
    holder.textContent = listing.holder;
    holder.href = "/people/" + encodeURIComponent(listing.holder);
    document.getElementById("holder-name").textContent = listing.holder_name && listing.holder_name !== listing.holder ? listing.holder_name : "";
    document.getElementById("holder-reputation").textContent = reputationWords(listing.holder_reputation);
    const mineToo = me && (me.handle === listing.holder || me.businesses.some((b) => b.handle === listing.holder && b.role === "owner"));
    if (me && openDeal) {
      try { deal = await get("/api/v1/deals/" + encodeURIComponent(openDeal)); } catch (_) { deal = null; }
      // Only an open deal on this very listing is paid here.
      if (deal && (deal.listing !== listing.id || deal.status !== "open")) deal = null;
    }
    document.getElementById("withdraw").hidden = !mineToo || listing.status !== "open" || Boolean(deal);
    document.getElementById("deal-card").hidden = deal ? false : (listing.status !== "open" || mineToo);
    loadMatches();
    if (me && (deal || !mineToo)) await setUpDeal();
  }

  async function loadMatches() {
    const r = await api("GET", `/api/v1/listings/${encodeURIComponent(id)}/matches`);
    const ul = document.getElementById("matches");
    if (!r.ok) { ul.replaceChildren(el("li", { class: "muted" }, r.data.detail || "")); return; }
    ul.replaceChildren(...(r.data.items.length ? r.data.items.map(listingItem)
      : [el("li", { class: "muted" }, `No ${listing.kind === "offer" ? "wants" : "offers"} match it yet.`)]));
  }

  document.getElementById("withdraw").addEventListener("click", async () => {
    const r = await api("DELETE", "/api/v1/listings/" + encodeURIComponent(id));
    if (!r.ok) return toast(r.data.detail || "Could not withdraw it.");
    toast("Withdrawn: no longer found or dealt.");
    load();
  });

  const form = document.getElementById("deal-form");
  if (!form) { load(); return; }
  const conversion = payWith(document.getElementById("pay-with"));
  const amountField = document.getElementById("deal-amount-field");
  const result = document.getElementById("deal-result");
  const currencySelect = form.elements.currency;

  /** What the buyer pays now, if anything: `{to, currency, amount}`. */
  function payment() {
    const terms = deal ? deal.terms : form.elements.terms.value;
    const currency = currencySelect.value;
    const priced = listing.price && listing.price.currency === currency;
    if (deal) return { to: deal.seller, currency, amount: deal.amount || form.elements.amount.value.trim() };
    if (terms !== "fixed" || listing.kind !== "offer") return null;
    return { to: listing.holder, currency, amount: priced ? listing.price.amount : form.elements.amount.value.trim() };
  }
  const update = Scrip.throttle(() => {
    const terms = deal ? deal.terms : form.elements.terms.value;
    const priced = listing.price && listing.price.currency === currencySelect.value;
    amountField.hidden = deal ? Boolean(deal.amount) : !(terms === "fixed" && !priced);
    conversion.update(payment());
  }, 300);
  // Ticking what to pay with re-prices inside the box; it does not rebuild it.
  const outsideBox = (event) => { if (!event.target.closest("#pay-with")) update(); };
  form.addEventListener("input", outsideBox);
  form.addEventListener("change", outsideBox);

  const submit = document.getElementById("deal-submit");
  /** The button says what pressing it does. */
  function label() {
    if (deal) return;
    const offer = listing.kind === "offer";
    const after = form.elements.terms.value === "after";
    submit.textContent = offer ? (after ? "Open the deal" : "Buy") : "Offer to do it";
  }
  async function setUpDeal() {
    if (deal) {
      // Paying an open deal: its currency and terms are settled.
      currencySelect.replaceChildren(el("option", { value: deal.currency }, deal.currency));
      currencySelect.disabled = true;
      document.getElementById("deal-title").textContent = "Pay this deal";
      form.querySelector("fieldset.toggle").hidden = true;
      document.getElementById("deal-amount").placeholder = "what you judge fair";
      submit.textContent = deal.amount ? `Pay ${Dec.pretty(deal.amount)} ${deal.currency}` : "Pay";
    } else {
      const codes = listing.accepts.length ? listing.accepts : (await get("/api/v1/accounts")).items.map((a) => a.currency);
      currencySelect.replaceChildren(...codes.map((c) => el("option", { value: c }, c)));
      const offer = listing.kind === "offer";
      document.getElementById("fixed-words").textContent = offer ? "at the price, paid now" : "at the price, they pay";
      document.getElementById("after-words").textContent = offer ? "pay after, what I judge fair" : "they pay after, what they judge fair";
      form.addEventListener("change", label);
      label();
    }
    update();
  }

  // One key per deal asked for: a retry of the same press (a lost answer) gets the same deal;
  // a refusal frees it for the next try.
  const submission = { key: Scrip.idempotencyKey() };
  onSubmit(form, async (data) => {
    const terms = conversion.terms();
    if (terms === null) return showProblem(form, { code: "no_route", detail: "There is no price to pay by yet: see “Pay with what you hold”." });
    let r;
    if (deal) {
      const body = { ...terms };
      body.amount = deal.amount || data.amount || "";
      r = await api("POST", `/api/v1/deals/${encodeURIComponent(deal.id)}/pay`, body, { "idempotency-key": submission.key });
    } else {
      const body = { terms: data.terms, currency: currencySelect.value };
      const priced = listing.price && listing.price.currency === currencySelect.value;
      // The price seen is the price paid: a price changed meanwhile is refused, not charged.
      if (data.terms === "fixed" && priced) body.amount = listing.price.amount;
      else if (data.amount && !amountField.hidden) body.amount = data.amount;
      if (data.terms === "fixed" && listing.kind === "offer") Object.assign(body, terms);
      r = await api("POST", `/api/v1/listings/${encodeURIComponent(id)}/deals`, body, { "idempotency-key": submission.key });
    }
    if (!r.ok) {
      if (r.status !== 0) submission.key = Scrip.idempotencyKey();
      if (r.data.code === "slippage_exceeded") await conversion.refresh();
      return showProblem(form, { ...r.data, detail: r.data.code === "slippage_exceeded" ? "The books moved: it would now cost more. Check the new price and press again." : r.data.detail }, "amount");
    }
    const d = r.data;
    const buyerWords = d.buyer === me.handle ? "you pay" : `${d.buyer} pays`;
    result.replaceChildren(d.status === "paid"
      ? `Paid ${Dec.pretty(d.amount)} ${d.currency} to ${d.seller}${d.onboarding ? ` (the registry's new coinage paid ${Dec.pretty(d.onboarding)} of it)` : ""}. `
      : `Deal ${d.id} is open: ${d.terms === "after" ? `${buyerWords} what ${d.buyer === me.handle ? "you judge" : "they judge"} fair once served` : `${buyerWords} ${Dec.pretty(d.amount)} ${d.currency}`}. `,
      el("a", { href: "/marketplace#deals-title" }, d.status === "paid" ? "Rate them in My deals" : "See it in My deals"));
    toast(d.status === "paid" ? "Paid" : "Deal opened");
    form.hidden = true;
  });

  load();
})();
