// One market: live ladder and depth chart from the WebSocket stream (snapshot, then diffs with
// a gapless sequence; any gap or dropped connection resyncs from a fresh snapshot), trades,
// candles, the order form with its cost and fee worked out exactly before placing, the
// caller's open orders and fills.
import { Scrip } from "/assets/app.js";
import { showHealth } from "/assets/liabilities.js";
import { previewOrder, maxQuantity } from "/assets/money.js";
(() => {
  const { api, get, Dec, el, svg, rows, onSubmit, showProblem, toast, time, when, idempotencyKey, throttle } = Scrip;
  const symbol = document.getElementById("market-symbol").dataset.symbol;
  const path = "/api/v1/markets/" + encodeURIComponent(symbol);
  const signedIn = !!Scrip.me;
  // Whose money the order form trades: the user, or a business the user owns.
  const holderSelect = document.getElementById("order-holder");
  const holder = () => (holderSelect ? holderSelect.value : Scrip.me && Scrip.me.handle);
  const forBusiness = () => !!holderSelect && holder() !== Scrip.me.handle;
  const holderQuery = () => (forBusiness() ? "holder=" + encodeURIComponent(holder()) : "");
  let market = null, baseScale = 0, quoteScale = 0;
  /** The two currencies' largest payment (`max_payment`, in atoms), when they have one. */
  let largest = { base: null, quote: null };
  const book = { bids: new Map(), asks: new Map() };
  let sequence = null;
  let socket = null;
  let retryMs = 500;
  const status = document.getElementById("stream-status");

  function showError(message) {
    const p = document.getElementById("market-error");
    p.textContent = message;
    p.hidden = !message;
  }

  // ---- the book -------------------------------------------------------------------------
  function sortedLevels(side) {
    const levels = [...book[side].entries()].map(([price, quantity]) => ({ price, quantity }));
    levels.sort((a, b) => side === "bids" ? Dec.compare(b.price, a.price) : Dec.compare(a.price, b.price));
    return levels;
  }
  function applyLevels(side, levels) {
    for (const { price, quantity } of levels) {
      if (Dec.isZero(quantity)) book[side].delete(price);
      else book[side].set(price, quantity);
    }
  }
  const changed = new Set();
  function renderBook() {
    const depth = 12;
    const bids = sortedLevels("bids").slice(0, depth);
    const asks = sortedLevels("asks").slice(0, depth);
    const levels = [...bids, ...asks];
    const max = levels.reduce((m, l) => (Dec.compare(l.quantity, m) > 0 ? l.quantity : m), "0");
    // The user's own resting orders are marked where they stand in the book.
    const ownAt = (side, price) => mine.some((o) => o.side === (side === "bid" ? "buy" : "sell") && o.price && Dec.compare(o.price, price) === 0);
    const row = (side) => (l) => {
      const own = ownAt(side, l.price);
      const tr = el("tr", { class: side + (changed.has(side + l.price) ? " flash" : "") + (own ? " mine" : ""), dataset: { price: l.price } },
        el("td", {}, Dec.pretty(l.price), own ? el("span", { class: "own-mark", title: "your order is here" }, " ●") : ""), el("td", {}, Dec.pretty(l.quantity)),
        el("td", {}, Dec.format(Dec.notional(Dec.parse(l.price, quoteScale), Dec.parse(l.quantity, baseScale), baseScale), quoteScale)));
      tr.style.setProperty("--depth", (Dec.ratio(l.quantity, max) * 100).toFixed(1) + "%");
      tr.addEventListener("click", () => { const p = document.getElementById("order-price"); if (p) { p.value = l.price; preview(); } });
      return tr;
    };
    document.getElementById("asks").replaceChildren(...asks.slice().reverse().map(row("ask")));
    document.getElementById("bids").replaceChildren(...bids.map(row("bid")));
    const bestBid = bids[0], bestAsk = asks[0];
    document.getElementById("spread").textContent = bestBid && bestAsk
      ? `spread ${Dec.pretty(Dec.sub(bestAsk.price, bestBid.price))}`
      : bids.length || asks.length ? "one-sided book" : "empty book: be the first to quote";
    changed.clear();
    renderDepth();
    preview();
  }

  function renderDepth() {
    const chart = document.getElementById("depth");
    const W = 600, H = 160, pad = 24;
    const bids = sortedLevels("bids"), asks = sortedLevels("asks");
    if (!bids.length && !asks.length) { chart.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no orders")); return; }
    const cumulative = (levels) => { let sum = 0; return levels.map((l) => ({ p: Number(l.price), q: (sum += Number(l.quantity)) })); };
    const b = cumulative(bids), a = cumulative(asks);
    const prices = [...b, ...a].map((x) => x.p);
    let lo = Math.min(...prices), hi = Math.max(...prices);
    // One price only: show a tenth either side of it (never a negative price).
    if (lo === hi) { const span = Math.max(lo / 10, 0.01); lo = Math.max(0, lo - span); hi += span; }
    const label = (p) => p.toFixed(Math.min(quoteScale || 2, 8));
    const qmax = Math.max(...b.map((x) => x.q), ...a.map((x) => x.q), 1);
    const x = (p) => pad + (p - lo) / (hi - lo) * (W - 2 * pad);
    const y = (q) => H - pad - q / qmax * (H - 2 * pad);
    const steps = (points) => {
      let d = "";
      points.forEach((pt, i) => { d += (i ? ` H${x(pt.p)} V${y(pt.q)}` : `M${x(pt.p)} ${y(0)} V${y(pt.q)}`); });
      return d;
    };
    chart.replaceChildren(
      svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#cbd5e1" }),
      b.length ? svg("path", { d: steps(b) + ` V${y(0)} Z`, fill: "#bbf7d0", stroke: "#12805c", "stroke-width": 1.5 }) : null,
      a.length ? svg("path", { d: steps(a) + ` V${y(0)} Z`, fill: "#fecaca", stroke: "#c2352b", "stroke-width": 1.5 }) : null,
      svg("text", { x: pad, y: H - 6 }, label(lo)), svg("text", { x: W - pad, y: H - 6, "text-anchor": "end" }, label(hi)),
      svg("text", { x: pad, y: 14 }, "cumulative " + (market ? market.base : "")));
  }

  // ---- trades and candles ---------------------------------------------------------------
  const tradesBody = document.querySelector("#trades tbody");
  function tradeRow(t) {
    return el("tr", { dataset: { trade: t.id } },
      el("td", {}, time(t.created_at)),
      el("td", { class: t.taker_side === "buy" ? "up" : "down" }, Dec.pretty(t.price)),
      el("td", {}, Dec.pretty(t.quantity)));
  }
  async function loadTrades() {
    try {
      const { items } = await get(path + "/trades?limit=50");
      rows(tradesBody, items, tradeRow, "No trades yet.");
      if (items[0]) setLastPrice(items[0].price);
    } catch (problem) { rows(tradesBody, [], null, problem.detail); }
  }
  function setLastPrice(price) {
    document.getElementById("last-price").textContent = market ? `${Dec.pretty(price)} ${market.quote}` : price;
  }

  const intervalSelect = document.getElementById("candle-interval");
  async function loadCandles() {
    const chart = document.getElementById("candles");
    const W = 600, H = 220, pad = 28;
    let items;
    try { ({ items } = await get(`${path}/candles?interval=${intervalSelect.value}&limit=60`)); }
    catch (problem) { return; }
    if (!items.length) { chart.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no trades in this range")); return; }
    const lows = items.map((c) => Number(c.low)), highs = items.map((c) => Number(c.high));
    let lo = Math.min(...lows), hi = Math.max(...highs);
    if (lo === hi) { lo -= 1; hi += 1; }
    const slot = (W - 2 * pad) / Math.max(items.length, 20);
    const y = (p) => pad / 2 + (hi - p) / (hi - lo) * (H - 1.5 * pad);
    chart.replaceChildren(
      svg("text", { x: 4, y: y(hi) + 4 }, String(hi)), svg("text", { x: 4, y: y(lo) + 4 }, String(lo)),
      ...items.map((c, i) => {
        const cx = pad + (i + 0.5) * slot;
        const up = Number(c.close) >= Number(c.open);
        const colour = up ? "#12805c" : "#c2352b";
        const top = y(Math.max(Number(c.open), Number(c.close))), bottom = y(Math.min(Number(c.open), Number(c.close)));
        return svg("g", {},
          svg("title", {}, `${new Date(c.start).toLocaleString()}  O ${c.open} H ${c.high} L ${c.low} C ${c.close}  vol ${c.volume}`),
          svg("line", { x1: cx, x2: cx, y1: y(Number(c.high)), y2: y(Number(c.low)), stroke: colour }),
          svg("rect", { x: cx - slot * 0.35, width: slot * 0.7, y: top, height: Math.max(1, bottom - top), fill: colour }));
      }));
  }
  intervalSelect.addEventListener("change", loadCandles);

  // ---- the live stream -------------------------------------------------------------------
  function setStatus(text, cls) { status.textContent = text; status.className = "badge " + (cls || ""); }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${path}/stream`);
    setStatus("connecting…");
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "snapshot") {
        book.bids.clear(); book.asks.clear();
        applyLevels("bids", message.bids); applyLevels("asks", message.asks);
        sequence = message.sequence;
        retryMs = 500;
        setStatus("live", "live");
        renderBook();
        return;
      }
      if (sequence === null || message.sequence !== sequence + 1) {
        // A gap: the book here may be wrong. Start again from a fresh snapshot.
        setStatus("resyncing…");
        socket.close();
        return;
      }
      sequence = message.sequence;
      if (message.type === "book") {
        for (const l of message.bids) changed.add("bid" + l.price);
        for (const l of message.asks) changed.add("ask" + l.price);
        applyLevels("bids", message.bids); applyLevels("asks", message.asks);
        renderBook();
      } else if (message.type === "trade") {
        tradesBody.querySelector("td.muted")?.closest("tr")?.remove();
        tradesBody.prepend(tradeRow(message));
        while (tradesBody.rows.length > 50) tradesBody.lastElementChild.remove();
        setLastPrice(message.price);
        afterTrade();
      }
      if (signedIn) refreshMine();
    };
    socket.onclose = () => {
      sequence = null;
      setStatus("reconnecting…", "down");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }
  const afterTrade = throttle(loadCandles, 1000);

  // ---- the caller's orders, fills and balances -----------------------------------------
  const refreshMine = throttle(() => { loadOrders(); loadBalances(); }, 500);
  let available = { base: null, quote: null };
  async function loadBalances() {
    if (!signedIn || !market) return;
    try {
      const { items } = await get("/api/v1/accounts?" + holderQuery());
      const find = (code) => items.find((a) => a.currency === code);
      const b = find(market.base), q = find(market.quote);
      available = { base: b ? b.available : "0", quote: q ? q.available : "0" };
      const line = document.getElementById("order-balances");
      line.replaceChildren("Available: ",
        el("strong", { id: "available-base" }, `${Dec.pretty(available.base)} ${market.base}`), " · ",
        el("strong", { id: "available-quote" }, `${Dec.pretty(available.quote)} ${market.quote}`),
        held(b, q));
    } catch (_) { /* shown on next refresh */ }
  }
  /** "(held in orders: 2.00 BREAD, 1.10 GROCER)", or nothing when nothing is held. */
  function held(b, q) {
    const parts = [[b, market.base], [q, market.quote]]
      .filter(([a]) => a && !Dec.isZero(a.held)).map(([a, code]) => `${Dec.pretty(a.held)} ${code}`);
    return parts.length ? ` (held in orders: ${parts.join(", ")})` : "";
  }
  /** The caller's open orders here: the preview never trades against them. */
  let mine = [];
  async function loadOrders() {
    if (!signedIn || !market) return;
    try {
      const [open, recent] = await Promise.all([
        get(`/api/v1/orders?market=${encodeURIComponent(symbol)}&status=open&limit=100&${holderQuery()}`),
        get(`/api/v1/orders?market=${encodeURIComponent(symbol)}&limit=50&${holderQuery()}`),
      ]);
      mine = open.items;
      renderBook(); // marks the user's own orders in the book, and previews again

      rows(document.querySelector("#open-orders tbody"), open.items, (o) => el("tr", { dataset: { order: o.id } },
        el("td", {}, time(o.created_at)),
        el("td", { class: o.side === "buy" ? "buy" : "sell" }, o.side),
        el("td", {}, o.price ? Dec.pretty(o.price) : "market"),
        el("td", {}, Dec.pretty(o.quantity)), el("td", {}, Dec.pretty(o.filled)),
        el("td", {}, o.status.replace("_", " ")),
        el("td", {}, el("button", { type: "button", class: "small secondary", "aria-label": `Cancel ${o.side} ${o.remaining} at ${o.price}`, onclick: () => cancel(o.id) }, "Cancel"))),
        "No open orders.");
      // Newest first, each with when it happened and what it was worth.
      const fills = recent.items.flatMap((o) => o.fills.map((f) => ({ ...f, side: o.side })))
        .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
      rows(document.querySelector("#fills tbody"), fills, (f) => el("tr", { dataset: { trade: f.trade_id } },
        el("td", {}, when(f.created_at)),
        el("td", { class: f.side === "buy" ? "buy" : "sell" }, f.side),
        el("td", {}, Dec.pretty(f.price)), el("td", {}, Dec.pretty(f.quantity)),
        el("td", {}, `${Dec.pretty(f.total)} ${market.quote}`),
        el("td", {}, `${Dec.pretty(f.fee)} ${f.fee_currency || ""}`)), "No fills yet.");
      historyRows(recent.items);
    } catch (_) { /* shown on next refresh */ }
  }
  function historyRows(orders) {
    const ended = orders.filter((o) => !["open", "partially_filled"].includes(o.status))
      .sort((a, b) => (a.updated_at < b.updated_at ? 1 : a.updated_at > b.updated_at ? -1 : 0));
    rows(document.querySelector("#order-history tbody"), ended, (o) => el("tr", { dataset: { order: o.id } },
      el("td", {}, when(o.updated_at)),
      el("td", { class: o.side === "buy" ? "buy" : "sell" }, o.side),
      el("td", {}, o.price ? Dec.pretty(o.price) : "market"),
      el("td", {}, `${Dec.pretty(o.filled)} of ${Dec.pretty(o.quantity)}`),
      el("td", {}, o.status.replace("_", " ")),
      el("td", { class: "reason" }, o.reason ? why(o.reason) : "")), "No orders have ended here yet.");
  }
  async function cancel(id) {
    const r = await api("DELETE", "/api/v1/orders/" + encodeURIComponent(id));
    toast(r.ok ? "Order cancelled; its funds are free again." : (r.data && r.data.detail) || "The order cannot be cancelled.");
    refreshMine();
  }

  // ---- the order form --------------------------------------------------------------------
  const form = document.getElementById("order-form");
  function side() { return form.elements.side.value; }
  /** What the order would do now against the live book, by the server's rules (money.js):
   *  each fill at the maker's price, each fill's fee on what this side receives, rounded down;
   *  the registry pays none. */
  function preview() {
    if (!form || !market) return;
    const out = document.getElementById("order-preview");
    const isMarket = form.elements.type.value === "market";
    document.getElementById("price-field").hidden = isMarket;
    form.elements.time_in_force.disabled = isMarket;
    // A market order always takes: post-only is for limit orders.
    form.elements.post_only.disabled = isMarket;
    if (isMarket) form.elements.post_only.checked = false;
    const qty = Dec.parse(form.elements.quantity.value.trim(), baseScale);
    const priceText = form.elements.price.value.trim();
    const price = isMarket ? null : Dec.parse(priceText, quoteScale);
    if (!isMarket && priceText && price === null) {
      out.textContent = `Prices go in steps of ${market.tick_size} ${market.quote}: ${priceText} is not one.`;
      return;
    }
    if (!qty || qty <= 0n || (!isMarket && (!price || price <= 0n))) {
      out.textContent = "Enter a price and quantity to see the cost and fee.";
      return;
    }
    const buying = side() === "buy";
    // The registry pays no fee to itself (as the server settles it).
    const feeBps = Scrip.me && Scrip.me.handle === "registry" ? 0 : market.fee_bps;
    // A market order is immediate-or-cancel (fill-or-kill is not offered for it here).
    const tif = isMarket ? "ioc" : form.elements.time_in_force.value;
    // The caller's own orders on the other side are cancelled by self-trade prevention, not
    // traded against: the preview walks the book without them.
    const ownSide = buying ? "sell" : "buy";
    const own = mine.filter((o) => o.side === ownSide && o.price);
    const levels = sortedLevels(buying ? "asks" : "bids").map((l) => {
      const ownAtoms = own.filter((o) => Dec.compare(o.price, l.price) === 0)
        .reduce((sum, o) => sum + (Dec.parse(o.remaining, baseScale) ?? 0n), 0n);
      const left = (Dec.parse(l.quantity, baseScale) ?? 0n) - ownAtoms;
      return { price: l.price, quantity: Dec.format(left > 0n ? left : 0n, baseScale).replace(/,/g, "") };
    });
    const p = previewOrder({
      side: side(), priceAtoms: price, quantityAtoms: qty,
      levels, baseScale, quoteScale,
      feeBps,
      rests: !isMarket && tif === "gtc",
    });
    const pays = buying ? [quoteScale, market.quote] : [baseScale, market.base];
    const gets = buying ? [baseScale, market.base] : [quoteScale, market.quote];
    const amount = (atoms, [scale, code]) => `${Dec.format(atoms, scale)} ${code}`;
    const parts = [];
    if (p.filledAtoms > 0n) {
      // The average price, rounded down to the quote's scale: for reading, not for money.
      const quoteAtoms = buying ? p.spentAtoms : p.receivedAtoms;
      const average = Dec.format(quoteAtoms * 10n ** BigInt(baseScale) / p.filledAtoms, quoteScale);
      parts.push(`Trades ${amount(p.filledAtoms, [baseScale, market.base])} now at an average of ${average} ${market.quote}: you pay ${amount(p.spentAtoms, pays)} ` +
        `and receive ${amount(p.receivedAtoms - p.feeAtoms, gets)} after a fee of ${amount(p.feeAtoms, gets)}.`);
    }
    if (p.restingAtoms > 0n) {
      // Filled later at its own price, the resting part brings this (its fee can be one atom
      // more when part of the order traded on arrival: the fee steps on the order's total).
      const restQuote = Dec.notional(price, p.restingAtoms, baseScale);
      const restGets = buying ? p.restingAtoms : restQuote;
      const restFee = Dec.fee(restGets, feeBps);
      parts.push(`${p.filledAtoms > 0n ? "The rest" : "The order"}, ${amount(p.restingAtoms, [baseScale, market.base])}, ` +
        `rests in the book holding ${amount(p.heldAtoms, pays)} until it fills or you cancel it; filled at ` +
        `${Dec.format(price, quoteScale)} you receive ${amount(restGets - restFee, gets)} after a fee of ${amount(restFee, gets)}.`);
    }
    const unfilled = qty - p.filledAtoms - p.restingAtoms;
    if (unfilled > 0n) {
      parts.push(p.filledAtoms > 0n
        ? `The other ${amount(unfilled, [baseScale, market.base])} find no match now and expire.`
        : "Nothing on the book matches that now: the order would expire unfilled.");
    }
    if (tif === "fok" && unfilled > 0n) {
      parts.splice(0, parts.length, "Fill-or-kill: the book cannot fill all of it now, so nothing would trade.");
    }
    if (!isMarket && form.elements.post_only?.checked && p.filledAtoms > 0n) {
      out.textContent = "Post-only: this price would trade on arrival, so the order would be refused.";
      return;
    }
    const crossesOwn = own.some((o) => price === null || (buying
      ? Dec.parse(o.price, quoteScale) <= price : Dec.parse(o.price, quoteScale) >= price));
    if (crossesOwn) parts.push("Your own orders it would meet are cancelled instead (no trading with yourself).");
    const warning = orderWarning({ qty, price, isMarket, buying, p, unfilled });
    out.replaceChildren(...(warning ? [el("strong", { class: "warning" }, warning), " "] : []),
      parts.join(" ") + (p.filledAtoms > 0n ? " Prices can move before the order arrives." : ""));
  }

  /** What would make the order fail or disappoint, said before it is sent: the step of price
   *  or quantity, the funds it needs, a book too thin for a market order. */
  function orderWarning({ qty, price, isMarket, buying, p, unfilled }) {
    const tick = Dec.parse(market.tick_size, quoteScale), lot = Dec.parse(market.lot_size, baseScale);
    if (!isMarket && tick && price % tick !== 0n) return `Prices go in steps of ${market.tick_size} ${market.quote}.`;
    if (lot && qty % lot !== 0n) return `Quantities go in steps of ${market.lot_size} ${market.base}.`;
    // What the server holds when the order arrives: a sell its whole quantity, a limit buy
    // price x quantity (fills at better prices give the difference back), a market buy what
    // it spends.
    const [code, scale, have] = buying ? [market.quote, quoteScale, available.quote] : [market.base, baseScale, available.base];
    const needs = !buying ? qty : isMarket ? p.spentAtoms : Dec.notional(price, qty, baseScale);
    const haveAtoms = have === null ? null : Dec.parse(have, scale) ?? 0n;
    if (haveAtoms !== null && needs > haveAtoms) return `Not enough ${code}: this needs ${Dec.format(needs, scale)}, you have ${Dec.pretty(have)} available.`;
    // The currencies' own largest payment bounds an order's quantity and its cost.
    if (largest.base !== null && qty > largest.base) return `The largest order in ${market.base} is ${Dec.format(largest.base, baseScale)} (its issuer's limit on one payment).`;
    const cost = isMarket ? (buying ? p.spentAtoms : null) : Dec.notional(price, qty, baseScale);
    if (largest.quote !== null && cost !== null && cost > largest.quote) return `This order is worth ${Dec.format(cost, quoteScale)} ${market.quote}, more than the largest payment in ${market.quote}, ${Dec.format(largest.quote, quoteScale)}.`;
    if (isMarket && unfilled > 0n) return `Not enough on the book: only ${Dec.format(p.filledAtoms, baseScale)} ${market.base} can trade now.`;
    return null;
  }

  // Max and percent buttons: the largest quantity the available funds pay for, or a share.
  for (const button of document.querySelectorAll("[data-share]")) {
    button.addEventListener("click", () => {
      if (!market) return;
      const buying = side() === "buy", isMarket = form.elements.type.value === "market";
      const price = isMarket ? null : Dec.parse(form.elements.price.value.trim(), quoteScale);
      if (!isMarket && (price === null || price <= 0n)) {
        return showProblem(form, { detail: "Enter a price first: the quantity depends on it." }, "price");
      }
      const share = BigInt(button.dataset.share);
      const have = Dec.parse((buying ? available.quote : available.base) || "0", buying ? quoteScale : baseScale) ?? 0n;
      const qty = maxQuantity({
        side: side(), priceAtoms: price, levels: sortedLevels("asks"),
        availableAtoms: have * share / 100n, baseScale, quoteScale,
        lotAtoms: Dec.parse(market.lot_size, baseScale) ?? 0n,
      });
      form.elements.quantity.value = Dec.format(qty, baseScale).replace(/,/g, "");
      preview();
    });
  }
  if (holderSelect) holderSelect.addEventListener("change", () => { mine = []; refreshMine(); });
  if (form) {
    form.addEventListener("input", preview);
    onSubmit(form, async (data) => {
      clearNotices();
      const body = { market: symbol, side: data.side, type: data.type, quantity: data.quantity || "" };
      if (data.type === "limit") {
        body.price = data.price || "";
        body.time_in_force = data.time_in_force || "gtc";
        if (data.post_only) body.post_only = true;
        if (!body.price) return showProblem(form, { code: "bad_price", detail: "Enter a price." });
      }
      if (!body.quantity) return showProblem(form, { code: "bad_quantity", detail: "Enter a quantity." });
      if (forBusiness()) body.holder = holder();
      const r = await api("POST", "/api/v1/orders", body, { "idempotency-key": idempotencyKey() });
      if (!r.ok) return showProblem(form, r.data, "quantity");
      const o = r.data;
      toast(`${o.side === "buy" ? "Buy" : "Sell"} order ${o.status.replace("_", " ")}: ${o.filled} of ${o.quantity} ${market.base} filled` +
        (o.reason ? ` (${why(o.reason)})` : ""));
      form.elements.quantity.value = "";
      preview();
      refreshMine();
    });
  }

  // ---- what happens to the user's orders while the page is open ---------------------------
  /** Why an order ended, in words. */
  function why(reason) {
    return {
      requested: "you cancelled it",
      self_trade: "your own new order would have traded with it, and nobody trades with themselves",
      max_balance: "you cannot hold more of what it would get (the currency's maximum balance)",
      unfilled: "nothing more was on the book at its price",
      not_fillable: "it could not fill in full (fill or kill)",
      would_cross: "it would have traded on arrival (post-only)",
      frozen: "your account in one of its currencies was frozen by the currency's stewards",
      not_member: "you are no longer a member of one of its currencies, so you cannot be paid in it",
    }[reason] || reason;
  }
  /** Says what the exchange did to the user's orders; several at once are listed, and the
   *  list starts again with the user's next order. */
  function notify(text) {
    const notice = document.getElementById("order-notice");
    if (!notice) return;
    notice.append(el("span", { class: "line" }, text));
    notice.hidden = false;
  }
  function clearNotices() {
    const notice = document.getElementById("order-notice");
    if (notice) { notice.replaceChildren(); notice.hidden = true; }
  }
  Scrip.onEvent((event) => {
    if (event.type === "lagged") return refreshMine();
    if (!market || event.market !== symbol) return;
    // Named by what the user sees of it (side, quantity, price), never its raw id.
    const known = mine.find((o) => o.id === event.order_id);
    const which = known
      ? `Your ${known.side} order of ${Dec.pretty(known.quantity)} ${market.base} at ${known.price ? Dec.pretty(known.price) : "market"}`
      : `Your ${event.side ? event.side + " " : ""}order`;
    if (event.type === "order_filled") {
      toast(`${which} traded: ${Dec.pretty(event.filled)} ${market.base} filled, ${Dec.pretty(event.remaining)} left.`);
    } else if (event.type === "order_cancelled" && event.reason !== "requested") {
      // Kept on screen (not a toast another message could replace): the user did not ask.
      notify(`${which} was cancelled: ${why(event.reason)}.`);
    } else if (event.type === "order_expired" && event.reason !== "unfilled") {
      notify(`${which} expired: ${why(event.reason)}.`);
    }
    if (event.type.startsWith("order_")) refreshMine();
  });

  // ---- start -----------------------------------------------------------------------------
  async function start() {
    try {
      const { items } = await get("/api/v1/markets?limit=500");
      market = items.find((m) => m.symbol === symbol);
      if (!market) { showError(`There is no market ${symbol}.`); setStatus("no market", "down"); return; }
      const [base, quote] = await Promise.all([Scrip.currency(market.base), Scrip.currency(market.quote)]);
      baseScale = base.scale; quoteScale = quote.scale;
      largest = {
        base: base.max_payment ? Dec.parse(base.max_payment, baseScale) : null,
        quote: quote.max_payment ? Dec.parse(quote.max_payment, quoteScale) : null,
      };
      document.getElementById("market-info").textContent =
        `${base.name} priced in ${quote.name} · tick ${market.tick_size} · lot ${market.lot_size} · fee ${(market.fee_bps / 100).toFixed(2)} %`;
      if (market.last_price) setLastPrice(market.last_price);
      const pu = document.getElementById("price-unit"), qu = document.getElementById("quantity-unit");
      if (pu) pu.textContent = `(${market.quote} per ${market.base}, step ${market.tick_size})`;
      if (qu) qu.textContent = `(${market.base}, step ${market.lot_size})`;
    } catch (problem) {
      showError(problem.detail || "This market cannot be loaded.");
      return;
    }
    connect();
    loadTrades();
    loadCandles();
    document.getElementById("health-code").textContent = market.base;
    document.getElementById("health-more").href = "/currencies/" + encodeURIComponent(market.base);
    showHealth(document.getElementById("market-health"), market.base);
    loadOrders();
    loadBalances();
    preview();
    setInterval(() => { if (!document.hidden) loadCandles(); }, 30000);
  }
  // For tests and the curious: the live state of this page.
  window.scripMarket = { get sequence() { return sequence; }, get socket() { return socket; }, book };
  start();
})();
