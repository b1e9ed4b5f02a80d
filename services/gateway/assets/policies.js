// A currency's policies in words a customer understands before holding it (the public
// currency page and the shop console say the same things, from the same API fields).
import { Dec } from "/assets/money.js";

/** "1.5 %" from basis points. */
export function percent(bps) {
  return `${Number((bps / 100).toFixed(2))} %`;
}

const PERIOD = { day: "every day", week: "every week", month: "every month" };
const FIELD = {
  credit_limit: "the credit limit", max_balance: "the maximum balance", member_credit_limit: "new members' credit limit",
  max_payment: "the largest payment", transfer_fee: "the payment fee", demurrage: "demurrage",
  requires_admission: "admission", freezable: "freezing", joining_fee: "the joining fee",
};

/** `[{ title, text }]`: what holding and paying with the currency means, in order of weight. */
export function policyWords(c) {
  const amount = (a) => `${Dec.pretty(a)} ${c.code}`;
  const words = [];
  if (c.kind === "mutual_credit") {
    words.push({ title: "Community credit", text: `A community LETS run by ${c.issuer}: every member may go below zero, down to their own credit limit (new members start with ${amount(c.member_credit_limit || "0")}). All balances always add up to zero.` });
  } else if (c.kind === "backed" && c.backing) {
    const b = c.backing;
    const lock = b.lock_days > 0 ? ` Each deposit into the reserve stays locked for ${b.lock_days} days.` : "";
    words.push({ title: "Backed by a reserve", text: `Issued by ${c.issuer}, who keeps ${percent(b.ratio_bps)} of everything outstanding covered by a reserve of ${b.currency} it holds, valued at par: ${c.issuer} can issue no more than the reserve backs (now ${amount(b.backs)}, from ${Dec.pretty(b.reserve)} ${b.currency}), and takes reserve back only as holders redeem.${lock}` });
  } else {
    words.push({ title: "Store credit", text: `Issued by ${c.issuer}, who owes every holder what they hold. Only ${c.issuer}'s own account may go below zero, down to ${amount(c.credit_limit)}.` });
  }
  if (c.requires_admission) words.push({ title: "Members only", text: `Only members admitted by ${c.issuer}'s stewards may hold it or be paid in it.` });
  if (c.joining_fee) {
    const f = c.joining_fee;
    const refund = f.refundable_after_days !== null && f.refundable_after_days !== undefined
      ? `refunded when you leave after ${f.refundable_after_days} days of membership` : "never refunded";
    words.push({ title: "Joining fee", text: `Members pay ${Dec.pretty(f.amount)} ${f.currency} once, to ${c.issuer}, when they join (${refund}). Only members may be paid in it.` });
  }
  if (c.max_balance) words.push({ title: "Largest holding", text: `Nobody may hold more than ${amount(c.max_balance)}.` });
  if (c.max_payment) words.push({ title: "Largest payment", text: `One payment or order is at most ${amount(c.max_payment)}.` });
  if (c.transfer_fee) {
    const min = c.transfer_fee.min && Dec.compare(c.transfer_fee.min, "0") > 0 ? `, at least ${amount(c.transfer_fee.min)}` : "";
    words.push({ title: "Payment fee", text: `Each payment pays ${percent(c.transfer_fee.bps)} of its amount${min} on top, to ${c.transfer_fee.to || c.issuer}.` });
  }
  if (c.demurrage) {
    const d = c.demurrage;
    words.push({ title: "Demurrage", text: `Holding it costs ${percent(d.rate_bps)} of your balance ${PERIOD[d.period] || d.period}, paid to ${d.to || c.issuer} (it keeps money moving). Money your open orders hold counts too, but is only taken once it is free again. Next charge: ${new Date(d.next_charge_at).toLocaleString()}.` });
  }
  if (c.freezable) words.push({ title: "Can be frozen", text: `${c.issuer}'s stewards may freeze a holder's account; a frozen account can neither pay nor trade.` });
  const sealed = (c.sealed || []).map((f) => FIELD[f] || f);
  words.push(sealed.length
    ? { title: "Sealed", text: `These can never change again: ${sealed.join(", ")}. Everything else ${c.issuer} may change.` }
    : { title: "Not sealed", text: `${c.issuer} may change these policies later.` });
  return words;
}
