// Clearing dashboard: the debt graph as a picture (cycles, which clearing can set off, in
// amber), every run's gross before/after and cleared over time, run details, dry run and run
// buttons for operators, and system health read from /metrics.
import { Scrip } from "/assets/app.js";
(() => {
  const { api, get, getAll, Dec, el, svg, rows, toast, when } = Scrip;
  const unitInput = document.getElementById("unit");
  const unit = () => (unitInput && unitInput.value) || "EUR";

  /** The unit picker offers the units currencies are valued in (a run in any other would
   *  clear nothing, and the server refuses it). */
  async function loadUnits() {
    if (!unitInput) return;
    let items;
    try { items = await getAll("/api/v1/currencies"); } catch (_) { return; }
    const units = [...new Set(items.map((c) => c.unit))].sort();
    if (!units.length) return;
    const chosen = units.includes(unit()) ? unit() : units[0];
    unitInput.replaceChildren(...units.map((u) => el("option", { value: u }, u)));
    unitInput.value = chosen;
  }

  function showError(message) {
    const p = document.getElementById("clearing-error");
    p.textContent = message || "";
    p.hidden = !message;
  }

  /** Strongly connected components (Tarjan): an edge can carry set-off only inside one. */
  function components(nodes, edges) {
    const out = new Map(nodes.map((n) => [n, []]));
    for (const e of edges) out.get(e.debtor)?.push(e.creditor);
    const index = new Map(), low = new Map(), onStack = new Set(), stack = [], comp = new Map();
    let counter = 0, id = 0;
    function visit(v) {
      index.set(v, counter); low.set(v, counter); counter++;
      stack.push(v); onStack.add(v);
      for (const w of out.get(v) || []) {
        if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
      }
      if (low.get(v) === index.get(v)) {
        let w;
        do { w = stack.pop(); onStack.delete(w); comp.set(w, id); } while (w !== v);
        id++;
      }
    }
    for (const n of nodes) if (!index.has(n)) visit(n);
    return comp;
  }

  async function loadGraph() {
    const chart = document.getElementById("graph");
    let graph;
    try { graph = await get("/api/v1/clearing/graph?unit=" + encodeURIComponent(unit())); }
    catch (problem) { showError(problem.detail || "The debt graph cannot be loaded."); return; }
    const names = graph.nodes.map((n) => n.handle);
    const comp = components(names, graph.edges);
    const size = new Map();
    for (const c of comp.values()) size.set(c, (size.get(c) || 0) + 1);
    const onCycle = (e) => comp.get(e.debtor) === comp.get(e.creditor) && size.get(comp.get(e.debtor)) > 1;
    const gross = Dec.sum(graph.edges.map((e) => e.amount));
    const cyclic = graph.edges.filter(onCycle).length;
    // Debts between businesses with a common owner are one person's say-so: shown apart.
    const related = graph.edges.filter((e) => e.related);
    const relatedNote = related.length
      ? ` · of which ${Dec.pretty(Dec.sum(related.map((e) => e.amount)))} ${graph.unit} between businesses with a common owner`
      : "";
    document.getElementById("graph-summary").textContent =
      `${names.length} businesses · ${graph.edges.length} debts · gross ${Dec.pretty(gross)} ${graph.unit} · ${cyclic} on cycles${relatedNote}`;
    rows(document.querySelector("#edges tbody"), graph.edges, (e) => el("tr", {},
      el("td", {}, e.debtor), el("td", {}, e.creditor), el("td", {}, `${Dec.pretty(e.amount)} ${graph.unit}`), el("td", {}, e.related ? `${e.source} (common owner)` : e.source)),
      "No debts between businesses.");
    const W = 640, H = 420, R = Math.min(W, H) / 2 - 60;
    if (!names.length) {
      chart.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No business owes another anything in " + graph.unit));
      return;
    }
    const pos = new Map(names.map((n, i) => {
      const a = -Math.PI / 2 + i * 2 * Math.PI / names.length;
      return [n, { x: W / 2 + R * Math.cos(a), y: H / 2 + R * Math.sin(a) }];
    }));
    // Line widths scale with amounts (pixels are floats; the amounts are not).
    const max = graph.edges.reduce((m, e) => (Dec.compare(e.amount, m) > 0 ? e.amount : m), "0");
    const arrows = graph.edges.map((e) => {
      const a = pos.get(e.debtor), b = pos.get(e.creditor);
      if (!a || !b) return null;
      // Bend each arrow a little so that A->B and B->A do not overlap.
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2, dx = b.x - a.x, dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const cx = mx - dy / len * 30, cy = my + dx / len * 30;
      // Stop short of the target node's circle.
      const ex = b.x - (b.x - cx) / Math.hypot(b.x - cx, b.y - cy) * 24, ey = b.y - (b.y - cy) / Math.hypot(b.x - cx, b.y - cy) * 24;
      const cls = onCycle(e) ? "cycle" : "acyclic";
      const colour = cls === "cycle" ? "#d97706" : "#94a3b8";
      return svg("g", { class: "edge " + cls },
        svg("title", {}, `${e.debtor} owes ${e.creditor} ${e.amount} ${graph.unit} (${e.source})`),
        svg("path", { d: `M${a.x} ${a.y} Q${cx} ${cy} ${ex} ${ey}`, fill: "none", stroke: colour,
          "stroke-width": 1.5 + 4 * Dec.ratio(e.amount, max), "marker-end": `url(#arrow-${cls})`, "stroke-dasharray": e.source === "obligation" ? "6 4" : "none" }),
        svg("text", { x: cx, y: cy, "text-anchor": "middle" }, Dec.pretty(e.amount)));
    });
    const marker = (name, colour) => svg("marker", { id: "arrow-" + name, viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
      svg("path", { d: "M0 0 L10 5 L0 10 z", fill: colour }));
    const circles = graph.nodes.map((n) => {
      const p = pos.get(n.handle);
      return svg("g", { class: "node" },
        svg("title", {}, `${n.handle}: net ${n.net} ${graph.unit}`),
        svg("circle", { cx: p.x, cy: p.y, r: 22, fill: "#fff", stroke: "#0f766e", "stroke-width": 2 }),
        svg("text", { x: p.x, y: p.y - 28, "text-anchor": "middle", class: "node" }, n.handle),
        svg("text", { x: p.x, y: p.y + 4, "text-anchor": "middle" }, Dec.pretty(n.net)));
    });
    chart.replaceChildren(svg("defs", {}, marker("cycle", "#d97706"), marker("acyclic", "#94a3b8")), ...arrows, ...circles);
  }

  async function loadRuns() {
    let runs;
    try { ({ items: runs } = await get("/api/v1/clearing/runs?limit=50")); }
    catch (problem) { showError(problem.detail || "Runs cannot be loaded."); return; }
    rows(document.querySelector("#runs tbody"), runs, (r) => el("tr", { dataset: { run: r.id }, tabindex: "0", class: "clickable",
      onclick: () => showRun(r.id), onkeydown: (ev) => { if (ev.key === "Enter") showRun(r.id); } },
      el("th", { scope: "row" }, el("a", { href: "#run-" + r.id, onclick: (ev) => { ev.preventDefault(); showRun(r.id); } }, "#" + r.id)),
      el("td", {}, when(r.started_at)), el("td", {}, kind(r)),
      el("td", {}, r.unit), el("td", {}, r.started_by),
      el("td", {}, String(r.participants)),
      el("td", {}, Dec.pretty(r.gross_before)), el("td", { class: "cleared" }, Dec.pretty(r.cleared)),
      el("td", {}, Dec.pretty(r.gross_after)), el("td", {}, String(r.cycles))), "No runs yet.");
    // Runs of other units would share no scale with these: the chart shows the page's unit.
    drawRuns(runs.filter((r) => r.unit === unit()).slice(0, 20).reverse());
  }

  function drawRuns(runs) {
    const chart = document.getElementById("runs-chart");
    const W = 640, H = 200, pad = 28;
    if (!runs.length) { chart.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no runs yet")); return; }
    // One scale for the runs shown: they are all of the unit the page shows (bar heights are
    // pixels; the amounts stay exact).
    const max = runs.reduce((m, r) => (Dec.compare(r.gross_before, m) > 0 ? r.gross_before : m), "0");
    const slot = (W - 2 * pad) / Math.max(runs.length, 8);
    const bar = (i, k, value, colour, label) => {
      const h = Dec.ratio(value, max) * (H - 2 * pad);
      return svg("rect", { x: pad + i * slot + k * slot * 0.28 + slot * 0.08, y: H - pad - h, width: slot * 0.26, height: Math.max(h, 0.5), fill: colour },
        svg("title", {}, `${label}: ${value}`));
    };
    chart.replaceChildren(
      svg("line", { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: "#cbd5e1" }),
      svg("text", { x: 2, y: pad }, Dec.pretty(max)),
      ...runs.flatMap((r, i) => [
        bar(i, 0, r.gross_before, "#94a3b8", `run #${r.id} gross before`),
        bar(i, 1, r.gross_after, "#0f766e", `run #${r.id} gross after`),
        bar(i, 2, r.cleared, "#d97706", `run #${r.id} cleared`),
        svg("text", { x: pad + (i + 0.45) * slot, y: H - 10, "text-anchor": "middle" }, "#" + r.id + (r.dry_run ? "*" : "")),
      ]));
  }

  /** A run's kind in words: a run that cleared nothing applied nothing. */
  function kind(r) {
    if (r.dry_run) return "dry run";
    return Dec.isZero(r.cleared) ? "nothing to clear" : "applied";
  }

  async function showRun(id) {
    let run;
    try { run = await get("/api/v1/clearing/runs/" + encodeURIComponent(id)); }
    catch (problem) { showError(problem.detail); return; }
    document.getElementById("run-detail-title").textContent =
      `Run #${run.id} (${kind(run)}, ${run.unit}, started by ${run.started_by}): cleared ${Dec.pretty(run.cleared)} of ${Dec.pretty(run.gross_before)}`;
    rows(document.querySelector("#settlements tbody"), run.settlements, (s) => el("tr", {},
      el("td", {}, s.debtor), el("td", {}, s.creditor), el("td", {}, `${Dec.pretty(s.amount)} ${run.unit}`), el("td", {}, s.source)),
      "Nothing to set off: no cycle of debts.");
    rows(document.querySelector("#ring-trades tbody"), run.ring_trades || [], (t) => el("tr", {},
      el("td", {}, t.holder), el("td", {}, `${Dec.pretty(t.gave)} ${t.give}`), el("td", {}, `${Dec.pretty(t.received)} ${t.want}`)),
      "No ring of standing swaps closed in this run.");
    show("run-detail");
    document.getElementById("run-detail").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
  function show(id) { document.getElementById(id).hidden = false; }

  /** Posts a run (`body`: dry_run or apply); returns it, or shows why not and returns the
   *  problem's code. */
  async function post(body) {
    showError("");
    const r = await api("POST", "/api/v1/clearing/runs", { unit: unit(), ...body });
    if (!r.ok) { showError((r.data && r.data.detail) || "The run failed."); return (r.data && r.data.code) || "failed"; }
    return r.data;
  }
  function summary(run) {
    const saved = Dec.isZero(run.gross_before) ? "" : ` (${(100 * Dec.ratio(run.cleared, run.gross_before)).toFixed(1)} % less)`;
    const rings = (run.ring_trades || []).length;
    return `cleared ${Dec.pretty(run.cleared)} ${run.unit}; gross debt ${Dec.pretty(run.gross_before)} → ${Dec.pretty(run.gross_after)}${saved} ` +
      `over ${run.cycles} ${run.cycles === 1 ? "cycle" : "cycles"} among ${run.participants} participants` +
      (rings ? `, with ${rings} standing ${rings === 1 ? "swap" : "swaps"} settled in ring trades.` : ".");
  }
  function report(text) {
    const result = document.getElementById("clearing-result");
    result.textContent = text;
    result.hidden = false;
    toast(text);
  }
  async function refresh(id) {
    await Promise.all([loadGraph(), loadRuns()]);
    if (id) showRun(id);
  }

  // A dry run changes nothing; "Run clearing" first shows the dry run's plan and applies only
  // once the operator confirms it.
  async function dryRun() {
    const preview = await post({ dry_run: true });
    if (typeof preview === "string") return;
    report(`Dry run #${preview.id}: ${summary(preview)} Nothing was changed.`);
    await refresh(preview.id);
  }
  /** Before and after per business, as the preview plans it. */
  function showPositions(run) {
    rows(document.querySelector("#confirm-positions tbody"), run.positions, (p) => el("tr", {},
      el("td", {}, p.business),
      el("td", {}, `${Dec.pretty(p.owes_before)} → ${Dec.pretty(p.owes_after)}`),
      el("td", {}, `${Dec.pretty(p.owed_before)} → ${Dec.pretty(p.owed_after)}`),
      el("td", {}, `${Dec.pretty(p.net)} ${run.unit}`)),
      "No business's debts change.");
  }
  let planned = null;
  async function proposeRun(why) {
    const preview = await post({ dry_run: true });
    if (typeof preview === "string") return;
    // Not scrolled to the run's details: the confirmation is what to look at now.
    await refresh();
    const confirm = document.getElementById("confirm-run");
    if (Dec.isZero(preview.cleared)) {
      planned = null;
      confirm.hidden = true;
      report(`Nothing to clear in ${preview.unit}: no cycle of debts, so nothing would change. Nothing was applied.`);
      return;
    }
    planned = preview;
    document.getElementById("confirm-summary").textContent =
      `${typeof why === "string" ? why + " " : ""}Preview #${preview.id}: ${summary(preview)}`;
    showPositions(preview);
    confirm.hidden = false;
    confirm.scrollIntoView({ block: "center" });
    document.getElementById("confirm-apply").focus({ preventScroll: true });
  }
  async function applyRun() {
    const confirm = document.getElementById("confirm-run");
    if (!planned) return;
    confirm.hidden = true;
    const applied = await post({ apply: planned.preview_id });
    if (applied === "graph_changed") {
      // The plan applies exactly as shown or not at all: show the plan for the debts as they are now.
      showError("");
      return proposeRun(`The debts changed since preview #${planned.preview_id}, so nothing was applied. Here is the plan for them now.`);
    }
    if (typeof applied === "string") return;
    planned = null;
    report(`Run #${applied.id} applied preview #${applied.preview_of}: ${summary(applied)} Every business's net position is unchanged.`);
    await refresh(applied.id);
  }
  document.getElementById("run")?.addEventListener("click", proposeRun);
  document.getElementById("dry-run")?.addEventListener("click", dryRun);
  document.getElementById("confirm-apply")?.addEventListener("click", applyRun);
  document.getElementById("confirm-cancel")?.addEventListener("click", () => {
    planned = null;
    document.getElementById("confirm-run").hidden = true;
    report("Nothing was applied.");
  });
  unitInput?.addEventListener("change", () => { document.getElementById("confirm-run").hidden = true; loadGraph(); loadRuns(); });

  // Health: the audit and the counters (GET /api/v1/system/health), turned into rates
  // between two reads. Rates are counts per second, not amounts.
  let previous = null;
  async function loadHealth() {
    let health;
    try { health = await get("/api/v1/system/health"); } catch (_) { return; }
    const auditCell = document.getElementById("health-audit");
    auditCell.textContent = { clean: "clean", failing: "FAILING", not_run: "not yet run" }[health.audit] || health.audit;
    auditCell.className = health.audit === "clean" ? "ok" : health.audit === "failing" ? "bad" : "";
    const now = { t: performance.now(), ...health.counters };
    if (previous) {
      const dt = (now.t - previous.t) / 1000;
      for (const key of ["requests", "orders", "trades", "transfers"]) {
        const cell = document.getElementById("health-" + key);
        cell.textContent = now[key] === null || previous[key] === null ? "–" : ((now[key] - previous[key]) / dt).toFixed(1);
      }
    }
    previous = now;
  }

  // Only operators see the web of debts and the runs (the page has no such cards for others).
  if (document.getElementById("graph")) {
    loadUnits().then(() => { loadGraph(); loadRuns(); });
  }
  // Two quick reads give the first rates; then every five seconds.
  loadHealth().then(() => setTimeout(loadHealth, 1000));
  setInterval(() => { if (!document.hidden) loadHealth(); }, 5000);
})();
