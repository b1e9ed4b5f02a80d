// Approvals in the shop console: the business's rule (which actions need how many owners),
// the proposals waiting for the caller's decision, and the log of every change.
import { Scrip } from "/assets/app.js";
const { api, get, el, rows, onSubmit, showProblem, toast, when } = Scrip;

const ACTIONS = {
  issue: "paying out", limits: "limits and new currencies", policy: "policies",
  members: "members", markets: "opening markets",
};

function describeRule(rule) {
  if (rule.required <= 1 || !rule.of.length) return "Every owner acts alone.";
  const what = rule.of.map((a) => ACTIONS[a] || a).join(", ");
  const above = rule.issue_above && rule.of.includes("issue") ? ` (pay-outs above ${rule.issue_above})` : "";
  return `${rule.required} owners must agree to: ${what}${above}. Changing this rule takes ${rule.required} owners too.`;
}

/** Wires the approvals card and the log for the business `business()`; `reload()` refreshes
 *  the rest of the console once an approved action ran. */
export function wireGovernance(business, reload) {
  const path = () => `/api/v1/businesses/${encodeURIComponent(business())}`;
  const me = Scrip.me && Scrip.me.handle;

  async function loadRule() {
    try {
      const rule = await get(path() + "/approvals");
      document.getElementById("approvals-rule").textContent = describeRule(rule);
      const form = document.getElementById("approvals-form");
      form.elements.required.value = rule.required;
      for (const action of Object.keys(ACTIONS)) form.elements["of." + action].checked = rule.of.includes(action);
      form.elements.issue_above.value = rule.issue_above || "";
    } catch (_) { /* shown empty */ }
  }

  function proposalItem(p) {
    const waiting = p.required - p.approvals.length;
    const decided = p.approvals.includes(me) || p.rejections.includes(me);
    const item = el("li", { class: "proposal", "data-id": p.id },
      el("strong", {}, p.summary), el("br"),
      el("span", { class: "muted" }, `proposed by ${p.proposed_by} ${when(p.created_at)} · approved by ${p.approvals.join(", ")}` +
        (p.rejections.length ? ` · rejected by ${p.rejections.join(", ")}` : "") +
        ` · needs ${waiting} more · expires ${when(p.expires_at)}`));
    if (!decided) {
      const actions = el("div", { class: "actions" });
      for (const [verb, label, style] of [["approve", "Approve", ""], ["reject", "Reject", "secondary"]]) {
        const button = el("button", { type: "button", class: style, "data-verb": verb }, label);
        button.addEventListener("click", () => decide(p, verb, button));
        actions.append(button);
      }
      item.append(actions);
    }
    return item;
  }

  async function decide(p, verb, button) {
    button.disabled = true;
    const r = await api("POST", `/api/v1/proposals/${encodeURIComponent(p.id)}/${verb}`, {});
    if (!r.ok) { button.disabled = false; toast(r.data.detail || "The decision could not be recorded."); return; }
    const done = r.data;
    toast(done.status === "executed" ? `Done: ${done.summary}.`
      : done.status === "rejected" ? `Rejected: ${done.summary}.`
      : `Your decision is counted; ${done.required - done.approvals.length} more needed.`);
    await Promise.all([loadProposals(), loadLog(), loadRule()]);
    if (done.status === "executed") await reload();
  }

  async function loadProposals() {
    const list = document.getElementById("proposals-list");
    try {
      const { items } = await get(path() + "/proposals?status=open&limit=50");
      list.replaceChildren(...(items.length ? items.map(proposalItem)
        : [el("li", { class: "muted" }, "Nothing waits for approval.")]));
    } catch (problem) { list.replaceChildren(el("li", { class: "muted" }, problem.detail || "")); }
  }

  async function loadLog() {
    const tbody = document.querySelector("#business-log tbody");
    try {
      const { items } = await get(path() + "/log?limit=50");
      rows(tbody, items, (e) => el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.actor), el("td", {}, e.detail)),
        "No change yet.");
    } catch (problem) { rows(tbody, [], null, problem.detail); }
  }

  const form = document.getElementById("approvals-form");
  onSubmit(form, async (data) => {
    const body = { required: Number(data.required || 0), of: Object.keys(ACTIONS).filter((a) => data["of." + a]) };
    if (data.issue_above) body.issue_above = data.issue_above;
    const r = await api("PUT", path() + "/approvals", body);
    if (!r.ok) return showProblem(form, r.data, "required");
    if (!Scrip.proposed(r)) toast(describeRule(r.data));
    document.getElementById("approvals-change").open = false;
    await Promise.all([loadRule(), loadProposals(), loadLog()]);
  });
  // Any guarded action of the console that became a proposal shows up here at once.
  document.addEventListener("scrip:proposed", () => { loadProposals(); loadLog(); });

  return () => Promise.all([loadRule(), loadProposals(), loadLog()]);
}
