// Market list: last price, change and volume over the last 24 hours (from hourly candles).
import { Scrip } from "/assets/app.js";
(() => {
  const { get, Dec, el, rows } = Scrip;
  const tbody = document.querySelector("#markets tbody");

  async function dayStats(symbol) {
    try {
      const { items } = await get(`/api/v1/markets/${encodeURIComponent(symbol)}/candles?interval=1h&limit=24`);
      if (!items.length) return null;
      const open = items[0].open, close = items[items.length - 1].close;
      // Exact volume; the change is a ratio (a percentage, not an amount).
      const volume = Dec.sum(items.map((c) => c.volume));
      return { change: Dec.ratio(Dec.sub(close, open), open) * 100, volume };
    } catch (_) { return null; }
  }

  async function load() {
    try {
      const { items } = await get("/api/v1/markets?limit=500");
      const stats = await Promise.all(items.map((m) => dayStats(m.symbol)));
      rows(tbody, items, (m, i) => {
        const s = stats[items.indexOf(m)];
        const change = s ? s.change : null;
        return el("tr", { dataset: { symbol: m.symbol } },
          el("th", { scope: "row" }, el("a", { href: "/exchange/" + encodeURIComponent(m.symbol) }, m.symbol)),
          el("td", { class: "last" }, m.last_price ? Dec.pretty(m.last_price) + " " + m.quote : "–"),
          el("td", { class: change === null ? "" : change >= 0 ? "up" : "down" },
            change === null ? "–" : (change >= 0 ? "+" : "") + change.toFixed(2) + " %"),
          el("td", {}, s ? Dec.pretty(s.volume) + " " + m.base : "–"),
          el("td", {}, (m.fee_bps / 100).toFixed(2) + " %"));
      }, "No markets yet. A shop owner opens one from the Shop console.");
    } catch (problem) {
      rows(tbody, [], null, problem.detail || "Markets cannot be loaded.");
    }
  }
  load();
  setInterval(() => { if (!document.hidden) load(); }, 10000);
})();
