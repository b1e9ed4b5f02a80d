// What a customer should know before holding a currency, and how a holder checks it is owed
// what it sees: the issuer's health in words, and the proof of liabilities checked here, in
// the browser, with its own SHA-256 (the encoding is the README's, section "Proof of
// liabilities"), never trusting the server's word that it verifies.
import { Scrip } from "/assets/app.js";
const { get, Dec, el, when } = Scrip;

const percent = (bps) => `${(bps / 100).toFixed(bps % 100 ? 2 : 0)} %`;

/** The issuer's health of `code` as `[title, text]` pairs a customer understands. */
export async function healthWords(code) {
  const h = await get(`/api/v1/currencies/${encodeURIComponent(code)}/health`);
  const words = [
    ["Owed to holders", `${Dec.pretty(h.outstanding)} ${code}` +
      (h.utilisation_bps === null ? "" : h.reserve_backs !== null && h.reserve_backs !== undefined
        ? `, ${percent(h.utilisation_bps)} of what its reserve lets it issue (${Dec.pretty(h.reserve_backs)}; credit limit ${Dec.pretty(h.credit_limit)})`
        : `, ${percent(h.utilisation_bps)} of the issuer's credit limit of ${Dec.pretty(h.credit_limit)}`)],
    ["Last 30 days", `issued ${Dec.pretty(h.issued_30d)}, redeemed ${Dec.pretty(h.redeemed_30d)}`],
    ["Holders", h.holders === 0 ? "nobody yet" : `${h.holders}; the largest holds ${percent(h.largest_holder_bps)} of it`],
    ["Clearing", h.clearing_enabled
      ? (h.last_cleared_at ? `on; debts last set off ${when(h.last_cleared_at)}` : "on; nothing set off yet")
      : "off: the issuer's debts to other businesses are never set off"],
  ];
  if (h.utilisation_bps !== null && h.utilisation_bps >= 9000) {
    const of = h.reserve_backs !== null && h.reserve_backs !== undefined ? "what its reserve backs" : "its credit limit";
    words.unshift(["Warning", `the issuer has used ${percent(h.utilisation_bps)} of ${of}: it can issue little more.`]);
  }
  return words;
}

/** Fills the `<dl>` `list` with the health of `code`; says so if it cannot be read. */
export async function showHealth(list, code) {
  try {
    const words = await healthWords(code);
    list.replaceChildren(...words.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  } catch (problem) {
    list.replaceChildren(el("dd", { class: "muted" }, problem.detail || "The issuer's health cannot be read now."));
  }
}

const utf8 = (text) => new TextEncoder().encode(text);
const fromHex = (hex) => new Uint8Array((hex.match(/../g) || []).map((b) => parseInt(b, 16)));
const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
const sha256 = async (...parts) => new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
const LIMIT = 2n ** 128n;
/** A decimal amount as atoms at `scale` decimals, exactly (BigInt); null unless a plain
 *  non-negative amount of at most `scale` decimals that fits 16 bytes (a negative sum could
 *  hide a balance: the tree's sums are unsigned). */
function atoms(amount, scale) {
  if (typeof amount !== "string" || !/^\d+(\.\d+)?$/.test(amount)) return null;
  const [whole, fraction = ""] = amount.split(".");
  if (fraction.length > scale) return null;
  const value = BigInt(whole + fraction.padEnd(scale, "0"));
  return value < LIMIT ? value : null;
}
const isHash = (hex) => typeof hex === "string" && /^[0-9a-f]{64}$/.test(hex);
/** 16 bytes, big-endian. */
function u128(value) {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) { out[i] = Number(value & 0xffn); value >>= 8n; }
  return out;
}

/** Folds `proof` (from GET /accounts/proof) up to its root; true when it reaches `root` with
 *  sum `total` (the published figures, not the proof's own). */
export async function verifyLiabilityProof(proof, root, total) {
  const scale = proof.scale;
  let sum = atoms(proof.balance, scale);
  const expected = atoms(total, scale);
  if (sum === null || expected === null || !isHash(root) || !/^[0-9a-f]{64}$/.test(proof.salt || "")) return false;
  let hash = await sha256(Uint8Array.of(0), utf8("scrip-liabilities-v1"), Uint8Array.of(0), utf8(proof.currency),
    Uint8Array.of(0), fromHex(proof.salt), utf8(proof.address), Uint8Array.of(0), u128(sum));
  for (const step of proof.path) {
    const siblingSum = atoms(step.sum, scale);
    if (siblingSum === null || !isHash(step.hash) || (step.side !== "left" && step.side !== "right")) return false;
    const sibling = fromHex(step.hash);
    hash = step.side === "left"
      ? await sha256(Uint8Array.of(1), sibling, u128(siblingSum), hash, u128(sum))
      : await sha256(Uint8Array.of(1), hash, u128(sum), sibling, u128(siblingSum));
    sum += siblingSum;
    if (sum >= LIMIT) return false;
  }
  return toHex(hash) === root && sum === expected;
}

/** Fetches the caller's (or `holder`'s) proof for `code` and the published liabilities, checks
 *  the one against the other here, and says what it found in words. */
export async function checkMyBalance(code, holder) {
  const query = `currency=${encodeURIComponent(code)}` + (holder ? `&holder=${encodeURIComponent(holder)}` : "");
  const proof = await get(`/api/v1/accounts/proof?${query}`);
  const published = await get(`/api/v1/currencies/${encodeURIComponent(code)}/liabilities`);
  let root = published.root, total = published.total;
  if (proof.root !== root) {
    // The proof is of a slightly older snapshot: check it against the root recorded for it.
    const { items } = await get(`/api/v1/currencies/${encodeURIComponent(code)}/liabilities/roots?limit=20`);
    const recorded = items.find((r) => r.root === proof.root);
    if (!recorded) return { ok: false, text: `✗ The proof for your ${Dec.pretty(proof.balance)} ${code} leads to a root the registry never published.` };
    root = recorded.root; total = recorded.total;
  }
  const ok = await verifyLiabilityProof(proof, root, total);
  return {
    ok,
    proof,
    text: ok
      ? `✓ Your ${Dec.pretty(proof.balance)} ${code} is counted in the ${Dec.pretty(total)} ${code} the issuer owes its holders (checked here: ${proof.path.length} ${proof.path.length === 1 ? "hash" : "hashes"} up to the published root, as of ${when(proof.as_of)}).`
      : `✗ The proof for your ${Dec.pretty(proof.balance)} ${code} does not lead to the published root and total: the published figure may leave you out.`,
  };
}
