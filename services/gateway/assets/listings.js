// What the marketplace pages share: a listing as a card, a reputation in words, and paying a
// deal with what one holds (a quote through the books first, then the deal paid bounded by it).
import { Scrip } from "/assets/app.js";

const { api, get, Dec, el } = Scrip;

/** "★ 4.67 from 3 ratings", or that there are none yet. */
export function reputationWords(reputation) {
  if (!reputation || !reputation.ratings) return "No ratings yet";
  const n = reputation.ratings;
  return `★ ${reputation.score} from ${n} rating${n === 1 ? "" : "s"}`;
}

export function priceWords(listing) {
  if (listing.price) return `${Dec.pretty(listing.price.amount)} ${listing.price.currency}`;
  return listing.accepts.length ? `price to agree, in ${listing.accepts.join(" or ")}` : "price to agree";
}

/** One listing in a list: its title (a link), price, who and where. Text only: no markup a
 *  holder typed ever reaches the page as HTML. */
export function listingItem(listing) {
  const meta = [listing.kind === "want" ? "wanted" : "offered", "by"];
  return el("li", { class: "listing" },
    el("a", { class: "title", href: "/marketplace/" + encodeURIComponent(listing.id) }, listing.title),
    el("span", { class: "price" }, priceWords(listing)),
    el("div", { class: "meta" },
      `${meta.join(" ")} `, el("a", { href: "/people/" + encodeURIComponent(listing.holder), title: listing.holder }, listing.holder_name || listing.holder),
      ` · ${reputationWords(listing.holder_reputation)}`,
      listing.category ? ` · ${listing.category}` : "",
      listing.place ? ` · ${listing.place}` : ""));
}

/** Paying `amount` of `currency` to `to`: when the caller's available balance covers it,
 *  nothing more is needed; else the held currencies are offered in `box` (the wallet's
 *  "pay with" fieldset) and priced by a quote. `terms()` then gives what the deal's payment
 *  carries: `{pay_with, max_spend}` bounded by the quote shown, `{}` when no conversion is
 *  needed, or null when there is no price yet. */
export function payWith(box) {
  const sources = box.querySelector("#pay-with-sources");
  const why = box.querySelector("#pay-with-why");
  const quoteBox = box.querySelector("#pay-quote");
  let quote = null;
  let ask = null;
  // While the balances are being read or the books asked, there is nothing to pay by yet.
  let pending = false;
  async function price() {
    const chosen = [...sources.querySelectorAll("input:checked")].map((i) => i.value);
    quote = null;
    quoteBox.hidden = false;
    if (!chosen.length) { quoteBox.textContent = "Tick at least one currency to pay with."; return; }
    quoteBox.textContent = "Asking the books…";
    pending = true;
    const r = await api("POST", "/api/v1/quotes", { ...ask, pay_with: chosen });
    pending = false;
    quoteBox.classList.toggle("warn", !r.ok);
    if (!r.ok) { quoteBox.textContent = `It cannot be paid with ${chosen.join(", ")} now: ${r.data.detail || "no price on the exchange"}.`; return; }
    quote = r.data;
    const total = Object.entries(quote.spend).map(([c, v]) => `${Dec.pretty(v)} ${c}`).join(" + ");
    const routes = quote.legs.map((leg) => `${Dec.pretty(leg.spend)} ${leg.pay_currency} through ${leg.route.join(" then ")}`);
    quoteBox.replaceChildren(
      el("strong", { class: "line" }, `You spend ${total} for ${Dec.pretty(quote.amount)} ${quote.currency}.`),
      ...routes.map((line) => el("span", { class: "line muted" }, line)),
      el("span", { class: "line muted" }, "If the books move so it would cost more, nothing is paid and you see the new price."));
  }
  sources.addEventListener("change", price);
  return {
    /** Shows or hides the box for this payment. */
    async update(next) {
      ask = next;
      quote = null;
      box.hidden = true;
      if (!ask || !ask.amount || !ask.currency) return;
      let c, accounts;
      pending = true;
      try { [c, accounts] = await Promise.all([Scrip.currency(ask.currency), get("/api/v1/accounts")]); } catch (_) { return; } finally { pending = false; }
      if (Dec.places(ask.amount) > c.scale) return;
      const own = accounts.items.find((a) => a.currency === ask.currency);
      const available = own ? Dec.parse(own.available, c.scale) : 0n;
      if (available >= Dec.parse(ask.amount, c.scale)) return;
      const offered = accounts.items.filter((a) => a.currency !== ask.currency && Dec.compare(a.available, "0") > 0);
      if (!offered.length) return;
      sources.replaceChildren(...offered.map((a) => el("label", { class: "check" },
        el("input", { type: "checkbox", value: a.currency, checked: true }),
        ` ${a.currency} `, el("span", { class: "muted" }, `(${Dec.pretty(a.available)} available)`))));
      why.textContent = available > 0n
        ? `You have ${Dec.pretty(own.available)} ${ask.currency}: it is used first, and the rest is bought through the exchange with what you tick, in the same payment.`
        : `You hold no ${ask.currency}: it is bought through the exchange with what you tick, in the same payment.`;
      box.hidden = false;
      await price();
    },
    /** What the payment carries: never a conversion without the quote shown. */
    terms() {
      if (pending) return null;
      // Nothing to convert: pay only with the currency itself (short of it is refused).
      if (box.hidden) return ask && ask.currency ? { pay_with: [ask.currency] } : {};
      if (!quote) return null;
      return { pay_with: Object.keys(quote.spend), max_spend: quote.spend };
    },
    refresh: price,
  };
}
