// Exact money for every page: decimal strings in, BigInt atoms inside, decimal strings out.
// No float ever holds an amount (charts scale pixels with floats, never amounts). The order
// preview follows the server's own rules (services/orderbook/src/state.rs): a taker trades at
// each maker's price, an order's fee is `fee_bps` of all it receives, rounded down once to the
// atom (charged fill by fill as steps of that total), and the registry pays no fee.

const BPS_PER_UNIT = 10000n;

export const Dec = {
  /** "12.5" at scale 2 -> 1250n; null when not a plain decimal or too many decimals. */
  parse(text, scale) {
    const m = /^\s*(-?)(\d*)(?:\.(\d*))?\s*$/.exec(String(text));
    if (!m || (m[2] === "" && (m[3] || "") === "")) return null;
    const frac = (m[3] || "").replace(/0+$/, "");
    if (frac.length > scale) return null;
    const atoms = BigInt((m[2] || "0") + frac.padEnd(scale, "0"));
    return m[1] ? -atoms : atoms;
  },
  /** Decimals a string is written with ("1.50" -> 2). */
  places(text) {
    const i = String(text).indexOf(".");
    return i < 0 ? 0 : String(text).length - i - 1;
  },
  /** Atoms as a decimal string with thousands separators. */
  format(atoms, scale) {
    const negative = atoms < 0n;
    const digits = (negative ? -atoms : atoms).toString().padStart(scale + 1, "0");
    const whole = digits.slice(0, digits.length - scale);
    const frac = scale ? "." + digits.slice(digits.length - scale) : "";
    return (negative ? "-" : "") + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
  },
  /** A decimal string with thousands separators, for display only. */
  pretty(text) {
    if (text === null || text === undefined) return "–";
    const scale = Dec.places(text);
    const atoms = Dec.parse(text, scale);
    return atoms === null ? String(text) : Dec.format(atoms, scale);
  },
  /** The widest scale of several decimal strings. */
  scaleOf(texts) {
    return texts.reduce((s, t) => Math.max(s, Dec.places(t)), 0);
  },
  /** The exact sum of decimal strings, as a decimal string. */
  sum(texts) {
    const scale = Dec.scaleOf(texts);
    const total = texts.reduce((s, t) => s + (Dec.parse(t, scale) ?? 0n), 0n);
    return Dec.format(total, scale).replace(/,/g, "");
  },
  /** a - b of decimal strings, exactly. */
  sub(a, b) {
    const scale = Dec.scaleOf([a, b]);
    return Dec.format(Dec.parse(a, scale) - Dec.parse(b, scale), scale).replace(/,/g, "");
  },
  /** -1, 0 or 1 as a < b, a = b, a > b (decimal strings). */
  compare(a, b) {
    const scale = Dec.scaleOf([a, b]);
    const x = Dec.parse(a, scale), y = Dec.parse(b, scale);
    return x < y ? -1 : x > y ? 1 : 0;
  },
  isZero(text) {
    return Dec.parse(text, Dec.places(text)) === 0n;
  },
  /** price x quantity in quote atoms (price at the quote's scale, quantity at the base's),
   *  rounded down: exact for every order a market accepts. */
  notional(priceAtoms, quantityAtoms, baseScale) {
    return priceAtoms * quantityAtoms / 10n ** BigInt(baseScale);
  },
  /** The fee on `receivedAtoms`: `feeBps` of it, rounded down to the atom, as the server
   *  charges it on each fill. */
  fee(receivedAtoms, feeBps) {
    return receivedAtoms * BigInt(feeBps) / BPS_PER_UNIT;
  },
  /** A currency's transfer fee on a payment of `atoms`, as the server charges it: `bps` of
   *  it rounded down to the atom, and at least `minAtoms`. */
  transferFee(atoms, bps, minAtoms) {
    const share = atoms * BigInt(bps) / BPS_PER_UNIT;
    return share > minAtoms ? share : minAtoms;
  },
  /** A ratio of two decimal strings as a float: for percentages and chart scales only. */
  ratio(a, b) {
    const scale = Dec.scaleOf([a, b]);
    const y = Dec.parse(b, scale);
    return y === 0n ? 0 : Number(Dec.parse(a, scale) * 1000000n / y) / 1000000;
  },
};

/**
 * What an order would do against the book as the page sees it: it crosses the opposite side
 * level by level at each level's price while the level is within its limit, then rests (a
 * limit order) or expires (IOC, market). Returns exact atoms:
 * `{filledAtoms, spentAtoms, receivedAtoms, feeAtoms, restingAtoms, heldAtoms}` where
 * spent and held are in what the order pays (quote for a buy, base for a sell), received and
 * fee in what it gets; the fee is on the total received, exactly as the server charges it.
 *
 * `levels` is the opposite side, best first: `[{price, quantity}]` decimal strings.
 */
export function previewOrder({ side, priceAtoms, quantityAtoms, levels, baseScale, quoteScale, feeBps, rests }) {
  let left = quantityAtoms, filled = 0n, quote = 0n;
  for (const level of levels) {
    if (left === 0n) break;
    const price = Dec.parse(level.price, quoteScale);
    const available = Dec.parse(level.quantity, baseScale);
    if (price === null || available === null) continue;
    if (priceAtoms !== null && (side === "buy" ? price > priceAtoms : price < priceAtoms)) break;
    const take = available < left ? available : left;
    const notional = Dec.notional(price, take, baseScale);
    quote += notional;
    filled += take;
    left -= take;
  }
  const restingAtoms = rests && priceAtoms !== null ? left : 0n;
  const restingCost = side === "buy" ? Dec.notional(priceAtoms ?? 0n, restingAtoms, baseScale) : restingAtoms;
  const fees = Dec.fee(side === "buy" ? filled : quote, feeBps);
  return {
    filledAtoms: filled,
    spentAtoms: side === "buy" ? quote : filled,
    receivedAtoms: side === "buy" ? filled : quote,
    feeAtoms: fees,
    restingAtoms,
    heldAtoms: restingCost,
  };
}

/**
 * The largest quantity (in base atoms, a multiple of `lotAtoms`) that `availableAtoms` can pay
 * for: a sell spends base one for one; a limit buy holds price x quantity in quote; a market
 * buy walks the asks (`levels`, best first) at their prices. For the Max and percent buttons.
 */
export function maxQuantity({ side, priceAtoms, levels, availableAtoms, baseScale, quoteScale, lotAtoms }) {
  const toLot = (atoms) => (lotAtoms > 0n ? atoms / lotAtoms * lotAtoms : atoms);
  if (availableAtoms <= 0n) return 0n;
  if (side === "sell") return toLot(availableAtoms);
  const unit = 10n ** BigInt(baseScale);
  if (priceAtoms !== null) return priceAtoms > 0n ? toLot(availableAtoms * unit / priceAtoms) : 0n;
  let budget = availableAtoms, quantity = 0n;
  for (const level of levels) {
    const price = Dec.parse(level.price, quoteScale), size = Dec.parse(level.quantity, baseScale);
    if (price === null || size === null || price <= 0n) continue;
    const cost = Dec.notional(price, size, baseScale);
    if (cost <= budget) { budget -= cost; quantity += size; continue; }
    quantity += budget * unit / price;
    break;
  }
  return toLot(quantity);
}
