// The public invariant monitor: each check of the ledger audit, its result and when it ran
// (GET /api/v1/status), refreshed every 30 seconds.
import { Scrip } from "/assets/app.js";
(() => {
  const { get, el, rows, when } = Scrip;
  const words = { clean: "all checks pass", failing: "a check fails", not_run: "first check running" };
  async function load() {
    let s;
    try { s = await get("/api/v1/status"); } catch (problem) {
      document.getElementById("status-verdict").textContent = problem.detail || "unreachable";
      return;
    }
    const verdict = document.getElementById("status-verdict");
    verdict.textContent = words[s.audit] || s.audit;
    verdict.className = "badge " + (s.audit === "clean" ? "live" : s.audit === "failing" ? "down" : "");
    document.getElementById("status-when").textContent = s.ran_at
      ? `checked ${when(s.ran_at)} (${s.kind}, ${s.took_ms} ms)` : "";
    rows(document.querySelector("#checks tbody"), s.checks, (c) => el("tr", { class: c.result },
      el("th", { scope: "row" }, c.name.replace(/_/g, " ")),
      el("td", {}, c.about),
      el("td", {}, c.result === "pass" ? "✓ pass" : "✗ fail"),
      el("td", {}, c.violations ? `${c.violations} (operators: see scrip audit)` : "none")),
      "The first check is running: this page fills in within a minute.");
    document.getElementById("status-scope").textContent = s.ran_at
      ? `${s.accounts} accounts and ${s.journal_lines} journal lines; the whole journal was last read ${when(s.last_full_at)}.` : "";
  }
  load();
  setInterval(load, 30_000);
})();
