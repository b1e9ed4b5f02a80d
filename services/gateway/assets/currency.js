// A currency's public page: its policies in words before anyone holds it, its numbers, the
// markets it trades in, and (signed in) what the visitor holds and the next demurrage charge.
import { Scrip } from "/assets/app.js";
import { policyWords } from "/assets/policies.js";
import { showHealth, checkMyBalance } from "/assets/liabilities.js";
(() => {
  const { me, api, get, getAll, Dec, el, onSubmit, showProblem } = Scrip;
  const code = document.getElementById("currency-code").dataset.code;

  async function load() {
    let c;
    try { c = await get("/api/v1/currencies/" + encodeURIComponent(code)); } catch (problem) {
      const error = document.getElementById("currency-error");
      error.textContent = problem.detail || `There is no currency ${code}.`;
      error.hidden = false;
      document.getElementById("policies").replaceChildren();
      return;
    }
    document.getElementById("currency-name").textContent = c.name;
    document.getElementById("currency-issuer").textContent = `issued by ${c.issuer}`;
    document.getElementById("policies").replaceChildren(...policyWords(c).flatMap((w) =>
      [el("dt", {}, w.title), el("dd", {}, w.text)]));
    const numbers = [
      ["Outstanding", `${Dec.pretty(c.outstanding)} ${c.code}`],
      ["Holders", String(c.holders)],
      ["Worth", `${c.par} ${c.unit} each`],
      ["Decimals", String(c.scale)],
      ["Since", new Date(c.created_at).toLocaleDateString()],
    ];
    if (c.demurrage) numbers.push(["Demurrage collected", `${Dec.pretty(c.demurrage.collected)} ${c.code}`]);
    if (c.backing) numbers.push(["Reserve", `${Dec.pretty(c.backing.reserve)} ${c.backing.currency}, backing up to ${Dec.pretty(c.backing.backs)} ${c.code}`]);
    document.getElementById("currency-numbers").replaceChildren(...numbers.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    loadMarkets();
    showHealth(document.getElementById("health"), code);
    loadLiabilities();
    if (me) loadMine(c);
    if (c.requires_admission) loadDirectory();
  }

  // The members directory and its verifier: the proof is checked here, with the browser's
  // own SHA-256, against the root the registry published (the encoding is the README's).
  const sha256 = async (...parts) => new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
  const concat = (parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let i = 0; for (const p of parts) { out.set(p, i); i += p.length; } return out; };
  const utf8 = (text) => new TextEncoder().encode(text);
  const fromHex = (hex) => new Uint8Array((hex.match(/../g) || []).map((b) => parseInt(b, 16)));
  const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  async function verifyProof(proof, root) {
    let running = await sha256(Uint8Array.of(0), utf8("scrip-directory-v1"), Uint8Array.of(0), utf8(proof.currency), Uint8Array.of(0), utf8(proof.member));
    for (const step of proof.path) {
      const sibling = fromHex(step.hash);
      running = step.side === "left" ? await sha256(Uint8Array.of(1), sibling, running) : await sha256(Uint8Array.of(1), running, sibling);
    }
    return toHex(running) === root;
  }
  let publishedRoot = null;
  async function loadDirectory() {
    try {
      const directory = await get(`/api/v1/currencies/${encodeURIComponent(code)}/directory`);
      publishedRoot = directory.root;
      document.getElementById("directory-members").textContent = String(directory.members);
      document.getElementById("directory-root").textContent = directory.root;
      document.getElementById("directory-card").hidden = false;
    } catch (_) { /* optional */ }
  }
  const directoryForm = document.getElementById("directory-form");
  onSubmit(directoryForm, async (data) => {
    const result = document.getElementById("directory-result");
    result.textContent = "";
    let proof;
    try {
      proof = await get(`/api/v1/currencies/${encodeURIComponent(code)}/directory/proof?member=${encodeURIComponent(data.member || "")}`);
    } catch (problem) { return showProblem(directoryForm, problem, "member"); }
    const counted = await verifyProof(proof, publishedRoot);
    result.className = counted ? "notice" : "notice warn";
    result.textContent = counted
      ? `✓ ${proof.member} is counted in the root above (checked here: ${proof.path.length} hashes from its leaf).`
      : `✗ The proof for ${proof.member} does not lead to the published root.`;
  });

  async function loadMarkets() {
    const list = document.getElementById("currency-markets");
    try {
      const markets = (await getAll("/api/v1/markets")).filter((m) => m.base === code || m.quote === code);
      list.replaceChildren(...(markets.length ? markets.map((m) => el("li", {},
        el("a", { href: "/exchange/" + encodeURIComponent(m.symbol) }, m.symbol),
        m.last_price ? el("span", { class: "muted" }, ` · last ${Dec.pretty(m.last_price)} ${m.quote}`) : ""))
        : [el("li", { class: "muted" }, `${code} is not traded on the exchange yet.`)]));
    } catch (problem) { list.replaceChildren(el("li", { class: "muted" }, problem.detail || "")); }
  }

  async function loadLiabilities() {
    try {
      const l = await get(`/api/v1/currencies/${encodeURIComponent(code)}/liabilities`);
      document.getElementById("liabilities-total").textContent = `${Dec.pretty(l.total)} ${code}`;
      document.getElementById("liabilities-holders").textContent = String(l.holders);
      document.getElementById("liabilities-as-of").textContent = new Date(l.as_of).toLocaleString();
      document.getElementById("liabilities-root").textContent = l.root;
    } catch (_) { /* optional */ }
  }
  document.getElementById("liabilities-check")?.addEventListener("click", async () => {
    const result = document.getElementById("liabilities-result");
    try {
      const found = await checkMyBalance(code);
      result.className = found.ok ? "notice" : "notice warn";
      result.textContent = found.text;
    } catch (problem) {
      result.className = "notice warn";
      result.textContent = problem.detail || "The proof cannot be fetched now.";
    }
  });

  // Joining: a currency with a joining fee (or a community LETS) takes members who ask; one
  // that admits members takes applications instead.
  const joinable = (c) => !c.requires_admission && (c.joining_fee || c.kind === "mutual_credit");
  function offerJoin(c) {
    const card = document.getElementById("join-card");
    if (!card || !joinable(c)) return;
    const fee = c.joining_fee ? `Joining costs ${Dec.pretty(c.joining_fee.amount)} ${c.joining_fee.currency}, paid once to ${c.issuer}.` : "Joining is free.";
    document.getElementById("join-why").textContent = `Only members may be paid in ${c.code}. ${fee}`;
    card.hidden = false;
    const button = document.getElementById("join-button");
    button.onclick = async () => {
      button.disabled = true;
      const r = await api("POST", `/api/v1/currencies/${encodeURIComponent(code)}/join`, {});
      const result = document.getElementById("join-result");
      result.className = r.ok ? "notice" : "notice warn";
      result.textContent = r.ok ? `You are a member of ${code}${r.data.joining_fee_paid ? `: you paid ${Dec.pretty(r.data.joining_fee_paid.amount)} ${r.data.joining_fee_paid.currency}` : ""}.` : (r.data.detail || "You could not join.");
      button.disabled = r.ok;
      if (r.ok) loadMine(c);
    };
  }
  function offerLeave(c, mine) {
    const button = document.getElementById("leave-button");
    if (!button || !joinable(c)) return;
    button.hidden = Dec.compare(mine.balance, "0") !== 0 || Dec.compare(mine.held, "0") !== 0;
    button.onclick = async () => {
      button.disabled = true;
      const r = await api("DELETE", `/api/v1/currencies/${encodeURIComponent(code)}/members/${encodeURIComponent(me.handle)}`);
      const result = document.getElementById("leave-result");
      result.className = r.ok ? "notice" : "notice warn";
      result.textContent = r.ok ? `You left ${code}${r.data.refunded ? `; ${Dec.pretty(r.data.refunded.amount)} ${r.data.refunded.currency} came back to you` : ""}.` : (r.data.detail || "You could not leave.");
      button.disabled = false;
    };
  }

  async function loadMine(c) {
    try {
      const { items } = await get("/api/v1/accounts");
      const mine = items.find((a) => a.currency === code);
      if (!mine) return offerJoin(c);
      offerLeave(c, mine);
      const rows = [["Balance", `${Dec.pretty(mine.balance)} ${code}`], ["Held in orders", `${Dec.pretty(mine.held)} ${code}`],
        ["Available", `${Dec.pretty(mine.available)} ${code}`]];
      if (Dec.compare(mine.floor, "0") < 0) rows.push(["Your credit limit", `${Dec.pretty(mine.floor.replace(/^-/, ""))} ${code}`]);
      if (mine.next_demurrage) rows.push(["Next demurrage", `${Dec.pretty(mine.next_demurrage.amount)} ${code} on ${new Date(mine.next_demurrage.at).toLocaleString()}`]);
      if (mine.frozen) rows.push(["Frozen", `${c.issuer}'s stewards froze your account: it can neither pay nor trade.`]);
      document.getElementById("mine").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
      document.getElementById("mine-card").hidden = false;
      const check = document.getElementById("liabilities-check");
      if (check) check.hidden = Dec.compare(mine.balance, "0") <= 0;
    } catch (_) { /* optional */ }
  }
  load();
})();
