// The shop console's policies: what a new currency is built with, the policies form of the
// shown currency (sealed ones locked), its policies in words, and its members (a community
// LETS gives each its own credit limit; a members-only currency admits them).
import { Scrip } from "/assets/app.js";
import { policyWords } from "/assets/policies.js";

const { api, get, Dec, el, rows, onSubmit, showProblem, toast } = Scrip;
const SEALABLE = ["credit_limit", "max_balance", "max_payment", "transfer_fee", "demurrage", "requires_admission", "joining_fee"];

/** The policy fields of a create form's data, as POST /currencies takes them. */
export function newPolicies(data) {
  const body = { kind: data.kind || "issuer_credit" };
  if (body.kind === "mutual_credit") body.member_credit_limit = data.member_credit_limit || "0";
  if (body.kind === "backed") {
    body.backing = { currency: (data["backing.currency"] || "").trim().toUpperCase(), ratio_bps: Number(data["backing.ratio_bps"] || 10000),
      lock_days: Number(data["backing.lock_days"] || 0) };
  }
  const joining = joiningFeeOf(data);
  if (joining) body.joining_fee = joining;
  if (data.max_payment) body.max_payment = data.max_payment;
  const fee = feeOf(data), demurrage = demurrageOf(data);
  if (fee) body.transfer_fee = fee;
  if (demurrage) body.demurrage = demurrage;
  body.requires_admission = !!data.requires_admission;
  body.freezable = !!data.freezable;
  body.sealed = SEALABLE.filter((f) => data["seal." + f]);
  return body;
}

function feeOf(data) {
  if (!data["transfer_fee.bps"]) return null;
  const fee = { bps: Number(data["transfer_fee.bps"]) };
  if (data["transfer_fee.min"]) fee.min = data["transfer_fee.min"];
  return fee;
}

function joiningFeeOf(data) {
  if (!data["joining_fee.amount"]) return null;
  const fee = { amount: data["joining_fee.amount"], currency: (data["joining_fee.currency"] || "").trim().toUpperCase() };
  const days = data["joining_fee.refundable_after_days"];
  if (days !== undefined && days !== "") fee.refundable_after_days = Number(days);
  return fee;
}

function demurrageOf(data) {
  if (!data["demurrage.rate_bps"]) return null;
  return { rate_bps: Number(data["demurrage.rate_bps"]), period: data["demurrage.period"] || "month" };
}

const sameAmount = (a, b) => (a === null || a === undefined || a === "")
  ? (b === null || b === undefined || b === "") : (b !== null && b !== undefined && b !== "" && Dec.compare(a, b) === 0);

/** Only what changed. A sealed field is never sent (the API refuses it even unchanged), and
 * its inputs are disabled, so the form does not carry them at all. */
function policyChanges(c, data) {
  const sealed = new Set(c.sealed || []);
  const open = (field) => !sealed.has(field);
  const body = {};
  if (open("member_credit_limit") && c.kind === "mutual_credit" && data.member_credit_limit && !sameAmount(data.member_credit_limit, c.member_credit_limit)) body.member_credit_limit = data.member_credit_limit;
  if (open("max_payment") && !sameAmount(data.max_payment || null, c.max_payment)) body.max_payment = data.max_payment || null;
  const fee = feeOf(data), old = c.transfer_fee;
  const feeSame = !fee ? !old : !!old && old.bps === fee.bps && sameAmount(fee.min || "0", old.min || "0");
  if (open("transfer_fee") && !feeSame) body.transfer_fee = fee;
  const demurrage = demurrageOf(data), was = c.demurrage;
  const demurrageSame = !demurrage ? !was : !!was && was.rate_bps === demurrage.rate_bps && was.period === demurrage.period;
  if (open("demurrage") && !demurrageSame) body.demurrage = demurrage;
  if (open("requires_admission") && !!data.requires_admission !== !!c.requires_admission) body.requires_admission = !!data.requires_admission;
  const joining = joiningFeeOf(data), had = c.joining_fee;
  const joiningSame = !joining ? !had : !!had && sameAmount(joining.amount, had.amount) && joining.currency === had.currency
    && (joining.refundable_after_days ?? null) === (had.refundable_after_days ?? null);
  if (open("joining_fee") && !joiningSame) body.joining_fee = joining;
  const seal = SEALABLE.filter((f) => data["seal." + f] && open(f));
  if (seal.length) body.sealed = seal;
  return body;
}

/** Shows the kind's own field on the create form. */
export function wireCreateForm(form) {
  const toggle = () => {
    document.getElementById("member-limit-field").hidden = form.elements.kind.value !== "mutual_credit";
    document.getElementById("backing-field").hidden = form.elements.kind.value !== "backed";
  };
  form.addEventListener("change", toggle);
  toggle();
}

/** Fills the policies form and words for currency `c`. */
export function renderPolicies(c) {
  const details = document.getElementById("currency-details");
  details.append(el("dl", { class: "policies", id: "currency-policies" },
    ...policyWords(c).flatMap((w) => [el("dt", {}, w.title), el("dd", {}, w.text)])),
  el("p", {}, el("a", { href: "/currencies/" + encodeURIComponent(c.code) }, "Its public page"), " shows customers the same."));
  const form = document.getElementById("policies-form");
  form.hidden = false;
  form.dataset.code = c.code;
  const f = form.elements;
  document.getElementById("policies-member-limit-field").hidden = c.kind !== "mutual_credit";
  f.member_credit_limit.value = c.member_credit_limit || "";
  f.max_payment.value = c.max_payment || "";
  f["transfer_fee.bps"].value = c.transfer_fee ? c.transfer_fee.bps : "";
  f["transfer_fee.min"].value = c.transfer_fee && c.transfer_fee.min !== "0" && Dec.compare(c.transfer_fee.min, "0") > 0 ? c.transfer_fee.min : "";
  f["demurrage.rate_bps"].value = c.demurrage ? c.demurrage.rate_bps : "";
  f["demurrage.period"].value = c.demurrage ? c.demurrage.period : "month";
  f.requires_admission.checked = !!c.requires_admission;
  f["joining_fee.amount"].value = c.joining_fee ? c.joining_fee.amount : "";
  f["joining_fee.currency"].value = c.joining_fee ? c.joining_fee.currency : "";
  f["joining_fee.refundable_after_days"].value = c.joining_fee && c.joining_fee.refundable_after_days !== null ? c.joining_fee.refundable_after_days : "";
  const sealed = c.sealed || [];
  const lock = (names, field) => {
    for (const name of names) if (f[name]) { f[name].disabled = sealed.includes(field); f[name].title = sealed.includes(field) ? "sealed: never changes again" : ""; }
  };
  lock(["member_credit_limit"], "member_credit_limit");
  lock(["max_payment"], "max_payment");
  lock(["transfer_fee.bps", "transfer_fee.min"], "transfer_fee");
  lock(["demurrage.rate_bps", "demurrage.period"], "demurrage");
  lock(["requires_admission"], "requires_admission");
  lock(["joining_fee.amount", "joining_fee.currency", "joining_fee.refundable_after_days"], "joining_fee");
  for (const field of SEALABLE) {
    const box = f["seal." + field];
    box.checked = sealed.includes(field);
    box.disabled = sealed.includes(field);
  }
  document.getElementById("policies-sealed").textContent = sealed.length
    ? `Sealed (locked for good): ${sealed.join(", ")}.` : "Nothing is sealed yet: you may change every policy.";
  renderMembers(c);
  renderReserve(c);
}

/** A backed currency's reserve: what it holds, what it backs, what may be released. */
async function renderReserve(c) {
  const box = document.getElementById("reserve");
  box.hidden = c.kind !== "backed";
  if (box.hidden) return;
  box.dataset.code = c.code;
  try {
    const r = await get(`/api/v1/currencies/${encodeURIComponent(c.code)}/reserve`);
    document.getElementById("reserve-unit").textContent = `(${r.backing_currency})`;
    const stats = [
      ["Reserve", `${Dec.pretty(r.reserve)} ${r.backing_currency}`], ["Locked", `${Dec.pretty(r.locked)} ${r.backing_currency}`],
      ["Releasable now", `${Dec.pretty(r.releasable)} ${r.backing_currency}`], ["Backs", `${Dec.pretty(r.backs)} ${c.code}`],
      ["Outstanding", `${Dec.pretty(r.outstanding)} ${c.code}`], ["Cover", `${(r.ratio_bps / 100).toFixed(2)} % at par`],
    ];
    document.getElementById("reserve-numbers").replaceChildren(...stats.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  } catch (problem) { document.getElementById("reserve-numbers").replaceChildren(el("dd", { class: "muted" }, problem.detail || "")); }
}

// Applications to a members-only currency: the stewards admit (under the approval rule) or
// decline each.
async function loadApplications(c) {
  const box = document.getElementById("applications");
  box.hidden = !c.requires_admission;
  if (!c.requires_admission) return;
  const list = document.getElementById("applications-list");
  const path = `/api/v1/currencies/${encodeURIComponent(c.code)}/applications`;
  try {
    const { items } = await get(path + "?status=pending&limit=50");
    list.replaceChildren(...(items.length ? items.map((a) => {
      const item = el("li", { class: "proposal" }, el("strong", {}, a.applicant), a.message ? ` · “${a.message}”` : "");
      const actions = el("div", { class: "actions" });
      for (const [verb, label, style] of [["admit", "Admit", ""], ["decline", "Decline", "secondary"]]) {
        const button = el("button", { type: "button", class: style, "data-verb": verb }, label);
        button.addEventListener("click", async () => {
          button.disabled = true;
          const r = await api("POST", `${path}/${encodeURIComponent(a.id)}/${verb}`, {});
          if (!r.ok) { button.disabled = false; return toast(r.data.detail || "It could not be decided."); }
          if (!Scrip.proposed(r)) toast(`${a.applicant} is ${r.data.status}.`);
          renderMembers(c);
        });
        actions.append(button);
      }
      item.append(actions);
      return item;
    }) : [el("li", { class: "muted" }, "Nobody is waiting.")]));
  } catch (problem) { list.replaceChildren(el("li", { class: "muted" }, problem.detail || "")); }
}

async function renderMembers(c) {
  const box = document.getElementById("currency-members");
  const has = c.kind === "mutual_credit" || c.requires_admission;
  box.hidden = !has;
  if (!has) return;
  box.dataset.code = c.code;
  document.getElementById("currency-members-why").textContent = c.kind === "mutual_credit"
    ? "Every member may go below zero down to their own credit limit. Set one member's limit here."
    : "Only members may hold it. Admit someone here before paying them.";
  document.getElementById("currency-member-limit-field").hidden = c.kind !== "mutual_credit";
  loadApplications(c);
  const tbody = document.querySelector("#currency-members-table tbody");
  try {
    const { items } = await get(`/api/v1/currencies/${encodeURIComponent(c.code)}/members?limit=100`);
    rows(tbody, items, (m) => el("tr", {}, el("td", {}, m.member), el("td", {}, c.kind === "mutual_credit" ? Dec.pretty(m.credit_limit) : "–"),
      el("td", { class: Dec.compare(m.balance, "0") < 0 ? "down" : "" }, Dec.pretty(m.balance))), "No members yet.");
  } catch (problem) { rows(tbody, [], null, problem.detail); }
}

/** Wires the policies and members forms; `current()` is the shown currency. */
export function wirePolicyForms(current, reload) {
  const form = document.getElementById("policies-form");
  onSubmit(form, async (data) => {
    const c = current();
    const body = policyChanges(c, data);
    if (!Object.keys(body).length) return toast("Nothing changed.");
    const r = await api("PATCH", "/api/v1/currencies/" + encodeURIComponent(c.code), body);
    if (!r.ok) return showProblem(form, r.data, "max_payment");
    if (Scrip.proposed(r)) return;
    toast("Policies saved.");
    await reload();
  });
  const reserveForm = document.getElementById("reserve-form");
  for (const button of reserveForm.querySelectorAll("button[name=verb]")) {
    button.addEventListener("click", () => { reserveForm.dataset.verb = button.value; });
  }
  onSubmit(reserveForm, async (data) => {
    const c = current();
    const release = reserveForm.dataset.verb === "release";
    const path = `/api/v1/currencies/${encodeURIComponent(c.code)}/reserve${release ? "/release" : ""}`;
    const r = await api("POST", path, { amount: data.amount || "" }, { "idempotency-key": Scrip.idempotencyKey() });
    if (!r.ok) return showProblem(reserveForm, r.data, "amount");
    if (Scrip.proposed(r)) return reserveForm.reset();
    toast(release ? `Released ${data.amount} ${r.data.backing_currency}.` : `The reserve now backs ${Dec.pretty(r.data.backs)} ${c.code}.`);
    reserveForm.reset();
    // The whole console: what may be paid out follows the reserve.
    await reload();
  });
  const memberForm = document.getElementById("currency-member-form");
  onSubmit(memberForm, async (data) => {
    const c = current();
    const body = data.credit_limit ? { credit_limit: data.credit_limit } : {};
    const r = await api("PUT", `/api/v1/currencies/${encodeURIComponent(c.code)}/members/${encodeURIComponent(data.handle || "")}`, body);
    if (!r.ok) return showProblem(memberForm, r.data, "handle");
    if (Scrip.proposed(r)) return memberForm.reset();
    toast(c.kind === "mutual_credit" ? `${r.data.member} may go down to -${Dec.pretty(r.data.credit_limit)} ${c.code}.` : `${r.data.member} is a member of ${c.code}.`);
    memberForm.reset();
    renderMembers(c);
  });
}
