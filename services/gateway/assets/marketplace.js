// The marketplace: search listings (full text, kind, category), post an offer or a want, and
// follow one's deals: pay an open one, rate a paid one.
import { Scrip } from "/assets/app.js";
import { listingItem } from "/assets/listings.js";
(() => {
  const { me, api, get, Dec, el, onSubmit, showProblem, toast, when } = Scrip;
  const list = document.getElementById("listings");
  const more = document.getElementById("more");
  const searchForm = document.getElementById("search-form");
  const error = document.getElementById("search-error");
  let cursor = null;
  let query = "";

  const params = new URLSearchParams(location.search);
  for (const name of ["q", "kind", "category"]) {
    if (params.get(name)) searchForm.elements[name].value = params.get(name);
  }
  async function search(append) {
    error.hidden = true;
    const r = await api("GET", "/api/v1/listings?limit=20&" + query + (append && cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    if (!r.ok) {
      error.textContent = r.data.detail || "The search failed.";
      error.hidden = false;
      return;
    }
    cursor = r.data.next_cursor;
    more.hidden = !cursor;
    const items = r.data.items.map(listingItem);
    if (append) list.append(...items);
    else list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Nothing listed matches. Post what you offer or want.")]));
  }
  function readSearch() {
    const p = new URLSearchParams();
    for (const name of ["q", "kind", "category"]) {
      const value = searchForm.elements[name].value.trim();
      if (value) p.set(name, value);
    }
    query = p.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }
  searchForm.addEventListener("submit", (event) => { event.preventDefault(); readSearch(); search(false); });
  searchForm.elements.kind.addEventListener("change", () => { readSearch(); search(false); });
  searchForm.elements.category.addEventListener("change", () => { readSearch(); search(false); });
  more.addEventListener("click", () => search(true));

  // Categories offered in the filter: the ones in use among the newest listings.
  async function loadCategories() {
    const r = await api("GET", "/api/v1/listings?limit=500");
    if (!r.ok) return;
    const select = searchForm.elements.category;
    const chosen = select.value || params.get("category") || "";
    const categories = [...new Set(r.data.items.map((l) => l.category).filter(Boolean))].sort();
    if (chosen && !categories.includes(chosen)) categories.push(chosen);
    select.replaceChildren(el("option", { value: "" }, "Every category"), ...categories.map((c) => el("option", { value: c }, c)));
    select.value = chosen;
  }

  readSearch();
  search(false);
  loadCategories();
  if (!me) return;

  // Posting: for oneself or a business one owns.
  const form = document.getElementById("listing-form");
  const holders = [me.handle, ...me.businesses.filter((b) => b.role === "owner").map((b) => b.handle)];
  form.elements.holder.replaceChildren(...holders.map((h) => el("option", { value: h }, h === me.handle ? `${h} (me)` : h)));
  onSubmit(form, async (data) => {
    const body = { kind: form.elements.kind.value, title: data.title || "" };
    if (data.description) body.description = data.description;
    if (data.category) body.category = data.category;
    if (data.place) body.place = data.place;
    if (data.holder && data.holder !== me.handle) body.holder = data.holder;
    const amount = data["price.amount"], currency = (data["price.currency"] || "").toUpperCase();
    if (amount || currency) {
      if (!amount) return showProblem(form, { code: "invalid_request", field: "price.amount", detail: "Say the price, or leave the currency empty." });
      if (!currency) return showProblem(form, { code: "invalid_request", field: "price.currency", detail: "Say which currency the price is in." });
      body.price = { amount, currency };
    }
    if (data.accepts) body.accepts = data.accepts.split(/[\s,]+/).filter(Boolean).map((c) => c.toUpperCase());
    const r = await api("POST", "/api/v1/listings", body);
    if (!r.ok) return showProblem(form, r.data, "title");
    toast(`Listed: ${r.data.title}`);
    form.reset();
    location.href = "/marketplace/" + encodeURIComponent(r.data.id);
  });

  // My deals: pay the open ones I buy, rate the paid ones I have not rated.
  const dealsBody = document.querySelector("#deals tbody");
  const mine = new Set(holders);
  function nextStep(deal) {
    if (deal.status === "open" && mine.has(deal.buyer)) {
      const go = el("a", { class: "button", href: `/marketplace/${encodeURIComponent(deal.listing)}?deal=${encodeURIComponent(deal.id)}` }, "Pay");
      return go;
    }
    if (deal.status === "open") return el("span", { class: "muted" }, `waiting for ${deal.buyer} to pay`);
    const rated = deal.feedback.find((f) => mine.has(f.from));
    if (rated) return el("span", {}, `you rated ${"★".repeat(rated.rating)}`);
    const rating = el("select", { "aria-label": "Rating", name: "rating" }, ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n) }, "★".repeat(n))));
    const comment = el("input", { name: "comment", placeholder: "comment (optional)", "aria-label": "Comment", maxlength: "1000" });
    const f = el("form", { class: "row", novalidate: "" }, el("div", { class: "field" }, rating, el("p", { class: "error", role: "alert", hidden: "" })),
      el("div", { class: "field" }, comment, el("p", { class: "error", role: "alert", hidden: "" })),
      el("p", { class: "error form-error", role: "alert", hidden: "" }), el("button", { type: "submit", class: "small" }, "Rate"));
    onSubmit(f, async () => {
      const body = { rating: Number(rating.value) };
      if (comment.value.trim()) body.comment = comment.value.trim();
      const r = await api("POST", `/api/v1/deals/${encodeURIComponent(deal.id)}/feedback`, body);
      if (!r.ok) return showProblem(f, r.data, "rating");
      toast(`Thank you: you rated ${mine.has(deal.buyer) ? deal.seller : deal.buyer}`);
      loadDeals();
      search(false);
    });
    return f;
  }
  async function loadDeals() {
    let deals;
    try { deals = await get("/api/v1/deals"); } catch (_) { return; }
    Scrip.rows(dealsBody, deals.items, (d) => {
      const other = mine.has(d.buyer) ? d.seller : d.buyer;
      const role = mine.has(d.buyer) ? "from" : "to";
      return el("tr", {},
        el("td", {}, el("a", { href: "/marketplace/" + encodeURIComponent(d.listing) }, d.listing_title), el("small", {}, when(d.created_at))),
        el("td", {}, `${role} `, el("a", { href: "/people/" + encodeURIComponent(other) }, other)),
        el("td", {}, d.amount ? `${Dec.pretty(d.amount)} ${d.currency}` : `in ${d.currency}, what the buyer judges fair`),
        el("td", {}, d.status === "paid" ? `paid ${when(d.paid_at)}` : "open"),
        el("td", {}, nextStep(d)));
    }, "No deals yet: find something above.");
  }
  loadDeals();
  Scrip.onEvent((event) => { if (event.type === "payment_received" || event.type === "lagged") loadDeals(); });
})();
