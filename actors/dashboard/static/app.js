// v7 dashboard: renders the DashboardView the server streams (Server-Sent Events, /api/events).
// No build step: plain browser JavaScript; uPlot is vendored under /static/vendor/uplot.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function num(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pct(v, digits = 2) {
  return v === null || v === undefined ? "–" : num(v * 100, digits) + "%";
}

function dur(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return Math.round(s) + "s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function signed(v, digits = 2) {
  const text = num(v, digits);
  return v > 0 ? "+" + text : text;
}

function pnlClass(v) {
  return v > 0 ? "pos" : v < 0 ? "neg" : "";
}

function setAge(id, s) {
  $(id).textContent = s === null || s === undefined ? "no data yet" : "updated " + dur(s) + " ago";
}

function fillKv(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v, cls] of pairs) {
    dl.append(el("dt", {}, k), el("dd", { class: cls || "" }, v));
  }
}

function fillBody(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

// --- panels ----------------------------------------------------------------------------------

function renderHub(view) {
  const hub = view.hub;
  const pill = $("hub-pill");
  pill.className = "pill " + (hub.connected ? "ok" : "bad");
  pill.textContent = hub.connected ? "hub connected · seq " + hub.seq : "hub unreachable";
  const banner = $("hub-banner");
  banner.hidden = hub.connected;
  banner.textContent = hub.connected ? "" :
    "State writer unreachable: showing the last known state. " + (hub.detail || "") +
    (hub.last_seen_s !== null ? " (last heard " + dur(hub.last_seen_s) + " ago)" : "");
  $("updated").textContent = "view " + view.version + " at " + view.generated_at.replace("T", " ").slice(0, 19) + "Z";
}

function renderTrading(view) {
  const t = view.trading;
  const pill = $("scope-pill");
  pill.textContent = t.mode + " · " + t.network + " · " + t.account;
  pill.className = "pill " + (t.mode === "LIVE" ? "live" : "unknown");
  const halt = $("halt-banner");
  halt.hidden = !t.halted;
  halt.textContent = t.halted ? "New entries are halted: " + t.halt_detail : "";
  const guard = $("nav-guard-banner");
  guard.hidden = !t.nav_guard;
  guard.textContent = t.nav_guard || "";
}

function renderSummary(view) {
  const nav = view.nav;
  $("sum-nav").textContent = num(nav.nav_total);
  $("sum-peak").textContent = num(nav.peak_nav);
  $("sum-dd").textContent = pct(nav.dd_pct);
  const state = $("sum-ddstate");
  state.textContent = nav.dd_state || "–";
  state.className = "value " + (nav.dd_state === "NORMAL" ? "pos" : nav.dd_state ? "neg" : "");
  const pnl = view.pnl_today.total;
  $("sum-pnl").textContent = pnl === null ? "not reported" : signed(pnl);
  $("sum-pnl").className = "value " + pnlClass(pnl);
  $("sum-pnl-scope").textContent = view.pnl_today.active ? "(" + view.pnl_today.active + ")" : "";
  $("sum-upnl").textContent = signed(view.positions.unrealized_total);
  $("sum-upnl").className = "value " + pnlClass(view.positions.unrealized_total);
}

function renderPositions(view) {
  const panel = view.positions;
  setAge("positions-age", panel.updated_age_s);
  const rows = panel.rows.map((p) => el("tr", { "data-symbol": p.symbol },
    el("td", {}, p.symbol),
    el("td", { class: p.side === "LONG" ? "pos" : "neg" }, p.side),
    el("td", { class: "num" }, num(p.qty, 4)),
    el("td", { class: "num" }, num(p.entry_price)),
    el("td", { class: "num" }, num(p.mark_price)),
    el("td", { class: "num " + pnlClass(p.unrealized_pnl) }, signed(p.unrealized_pnl)),
    el("td", { class: "num" + (p.tp === null ? " warn" : "") }, p.tp === null ? "none" : num(p.tp)),
    el("td", { class: "num" + (p.sl === null ? " warn" : "") }, p.sl === null ? "none" : num(p.sl)),
    el("td", { class: "num" }, dur(p.age_s)),
  ));
  fillBody($("positions"), rows);
  $("positions-empty").hidden = rows.length > 0;
  const box = $("pnl-today");
  box.replaceChildren();
  if (!view.pnl_today.scopes.length) {
    box.append(el("p", { class: "muted" }, "Today's P&L: not reported yet."));
    return;
  }
  const active = view.pnl_today.active;
  const table = el("table", { id: "pnl-today-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Today"), el("th", { class: "num" }, "Realized gross"),
      el("th", { class: "num" }, "Fees"), el("th", { class: "num" }, "Realized net"),
      el("th", { class: "num" }, "Unrealized"), el("th", { class: "num" }, "Total"),
      el("th", { class: "num" }, "Closed trades"))),
    el("tbody", {}, ...view.pnl_today.scopes.map((s) => {
      const name = s.mode + "/" + s.account;
      return el("tr", { class: name === active ? "active-scope" : "" },
        el("td", {}, name + (name === active ? " (active)" : "")),
        el("td", { class: "num " + pnlClass(s.realized_gross) }, signed(s.realized_gross)),
        el("td", { class: "num" }, num(s.fees)),
        el("td", { class: "num " + pnlClass(s.realized_net) }, signed(s.realized_net)),
        el("td", { class: "num " + pnlClass(s.unrealized) }, signed(s.unrealized)),
        el("td", { class: "num " + pnlClass(s.total) }, signed(s.total)),
        el("td", { class: "num" }, s.closed_trades));
    })));
  box.append(table);
}

let navChart = null;
let navAnomalies = [];

function drawAnomalies(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#d33";
  ctx.fillStyle = "#d33";
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  for (const a of navAnomalies) {
    const t = Date.parse(a.ts) / 1000;
    if (t < u.scales.x.min || t > u.scales.x.max) continue;
    const x = u.valToPos(t, "x", true);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillText("anomaly " + num(a.nav, 0), x + 4, u.bbox.top + 12 * devicePixelRatio);
  }
  ctx.restore();
}

function chartWidth() {
  return Math.max(300, $("nav-card").clientWidth - 32);
}

function renderNav(view) {
  const nav = view.nav;
  setAge("nav-age", nav.updated_age_s);
  navAnomalies = nav.anomalies;
  const pts = nav.points;
  // A null value between two samples breaks the line: the group was not running then.
  const rows = [];
  for (const p of pts) {
    if (p.gap_before && rows.length) rows.push([p.t - 1e-3, null, null, null]);
    rows.push([p.t, p.nav, p.peak, p.dd_pct * 100]);
  }
  const data = [0, 1, 2, 3].map((k) => rows.map((r) => r[k]));
  const gaps = pts.filter((p) => p.gap_before).length;
  const holder = $("nav-chart");
  holder.dataset.points = String(pts.length);
  holder.dataset.gaps = String(gaps);
  $("nav-note").textContent = pts.length ? pts.length + " samples" + (gaps ? " · " + gaps + " gap" + (gaps > 1 ? "s" : "") + " (no NAV: group stopped)" : "") +
    (nav.sources_ok === false ? " · NAV sources degraded" : "") : "No NAV samples yet.";
  const list = $("nav-anomalies");
  list.replaceChildren(...nav.anomalies.slice(-5).map((a) => el("li", {},
    "NAV anomaly at " + a.ts.replace("T", " ").slice(0, 19) + ": " + num(a.nav) + " vs peak " +
    num(a.previous_peak) + " (" + a.reason + "), ignored for peak and drawdown")));
  if (typeof uPlot === "undefined") return;
  if (navChart === null) {
    navChart = new uPlot({
      width: chartWidth(),
      height: 260,
      series: [
        {},
        { label: "NAV", stroke: "#2a6fdb", width: 2, points: { show: pts.length < 50 } },
        { label: "Peak NAV", stroke: "#888", dash: [6, 4], width: 1 },
        { label: "Drawdown %", stroke: "#d33", fill: "rgba(221,51,51,0.12)", scale: "dd", width: 1 },
      ],
      axes: [{}, { label: "NAV" }, { side: 1, scale: "dd", label: "DD %", grid: { show: false } }],
      scales: { dd: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] } },
      hooks: { draw: [drawAnomalies] },
    }, data, holder);
  } else {
    navChart.setData(data);
  }
}

function renderKpis(view) {
  const panel = view.kpis;
  setAge("kpi-age", panel.updated_age_s);
  const k = panel.kpis;
  const r = panel.risk;
  const pairs = [];
  if (k) {
    pairs.push(["NAV", num(k.portfolio.nav)], ["Drawdown", pct(k.portfolio.dd_pct)],
      ["VaR % NAV", pct(k.portfolio.var_nav_pct)], ["CVaR % NAV", pct(k.portfolio.cvar_nav_pct)],
      ["Expectancy", num(k.performance.expectancy)], ["Sharpe state", k.performance.sharpe_state || "–"],
      ["Fee / PnL", num(k.risk.fee_pnl_ratio)]);
  }
  if (r) {
    pairs.push(["Risk state", r.dd_state, r.dd_state === "NORMAL" ? "pos" : "neg"],
      ["ATR regime", r.atr_regime || "–"], ["Exposure % NAV", pct(r.portfolio_exposure_nav_pct)]);
  }
  if (!pairs.length) pairs.push(["KPIs", "not reported yet"]);
  fillKv($("kpi-portfolio"), pairs);
  const rows = k ? Object.entries(k.per_symbol).map(([sym, s]) => el("tr", {},
    el("td", {}, sym), el("td", { class: "num " + pnlClass(s.pnl) }, signed(s.pnl)),
    el("td", { class: "num " + pnlClass(s.pnl_pct) }, pct(s.pnl_pct)),
    el("td", { class: "num" }, pct(s.exposure_nav_pct)))) : [];
  fillBody($("kpi-symbols"), rows);
}

function renderRouter(view) {
  setAge("router-age", view.router.updated_age_s);
  const r = view.router.router;
  fillKv($("router"), r ? [
    ["Policy quality", r.policy_quality || "–"],
    ["Maker first", r.maker_first ? "yes" : "no"],
    ["Maker fill share", pct(r.maker_fill_share)],
    ["Avg slippage", r.avg_slippage_bps === null ? "–" : num(r.avg_slippage_bps) + " bps"],
    ["Reject rate", pct(r.reject_rate), r.reject_rate > 0.1 ? "neg" : ""],
    ["Orders / fills / rejects", r.orders_total + " / " + r.fills_total + " / " + r.rejects_total],
    ["TWAP", r.twap.active_parents + " active, " + r.twap.slices_sent + " slices"],
  ] : [["Router", "not reported yet"]]);
}

function renderExit(view) {
  setAge("exit-age", view.exit_health.updated_age_s);
  const e = view.exit_health.exit_pipeline;
  fillKv($("exit-health"), e ? [
    ["TP/SL coverage", pct(e.tp_sl_coverage_pct, 0), e.tp_sl_coverage_pct < 1 && e.open_positions_count ? "neg" : "pos"],
    ["Ledger/registry mismatch", e.ledger_registry_mismatch ? "YES" : "no", e.ledger_registry_mismatch ? "neg" : "pos"],
    ["Underwater without TP/SL", String(e.underwater_without_tp_sl_count), e.underwater_without_tp_sl_count ? "neg" : ""],
    ["Open / registered / missing",
      e.open_positions_count + " / " + e.tp_sl_registered_count + " / " + e.tp_sl_missing_count],
    ["Missing TP/SL", e.missing_symbols.length ? e.missing_symbols.join(", ") : "–"],
    ["Last exit scan", e.last_exit_scan_ts ? e.last_exit_scan_ts.slice(0, 19).replace("T", " ") : "never"],
    ["Last exit trigger", e.last_exit_trigger_ts ? e.last_exit_trigger_ts.slice(0, 19).replace("T", " ") : "never"],
  ] : [["Exit pipeline", "not reported yet"]]);
}

function actorLabel(a) {
  if (!a.stale) return a.status === "degraded" ? "degraded" : "alive";
  if (a.crash_loop) return "crash loop";
  if (a.supervisor_state && a.supervisor_state !== "RUNNING") return a.supervisor_state.toLowerCase();
  if (a.last_heartbeat_ts === null) return "never seen";
  if (a.status === "stopping") return "stopped";
  return "silent";
}

const KIND_LABEL = { signals: "Signals", orders: "Orders", exits: "Exits", router: "Router" };

function renderLiveness(view) {
  const panel = view.liveness;
  $("liveness-age").textContent = panel.reported ? "reported " + dur(panel.diagnostics_age_s) + " ago" : "";
  const diagBanner = $("diag-banner");
  diagBanner.hidden = panel.reported && !panel.diagnostics_stale;
  diagBanner.textContent = !panel.reported ? "The diagnostics actor has not reported yet: liveness is unknown." :
    "The diagnostics actor last reported " + dur(panel.diagnostics_age_s) + " ago: liveness below may be out of date.";
  const good = (s) => (s === "healthy" ? "ok" : s === "disabled" || s === "unknown" ? "unknown" : "bad");
  fillBody($("liveness-kinds"), panel.kinds.map((k) => el("tr", { "data-kind": k.kind, "data-state": k.state },
    el("td", {}, KIND_LABEL[k.kind] || k.kind),
    el("td", {}, el("span", { class: "pill " + good(k.state) }, k.state.replace("_", " "))),
    el("td", {}, k.text))));
  fillBody($("liveness-actors"), panel.actors.map((a) => el("tr",
    { "data-actor": a.name, "data-stale": String(a.stale), title: a.reason || "" },
    el("td", {}, a.name),
    el("td", {}, el("span", { class: "pill " + (a.stale || a.status === "degraded" ? "bad" : "ok") }, actorLabel(a)),
      a.stale && a.reason ? el("div", { class: "reason" }, a.reason) : "",
      a.status === "degraded" && a.detail ? el("div", { class: "reason", "data-detail": "" }, a.detail) : ""),
    el("td", { class: "num" }, a.age_s === null ? "never" : dur(a.age_s) + " ago"),
    el("td", { class: a.crash_loop ? "neg" : "" }, a.supervisor_state || "unknown"))));
  const sup = panel.supervisor;
  $("supervisor-note").textContent = !sup ? "" : sup.reachable ? "" :
    "supervisord: " + (sup.detail || "unreachable") + " — program states unknown.";
}

function renderVetoes(view) {
  const h = view.vetoes;
  $("veto-totals").textContent = h.total_signals + " signals · " + h.total_orders + " orders · " +
    h.total_vetoes + " vetoes";
  const table = $("veto-heatmap");
  $("veto-empty").hidden = h.reasons.length > 0;
  table.tHead.replaceChildren(el("tr", {}, el("th", {}, "reason \\ symbol"),
    ...h.symbols.map((s) => el("th", { class: "num" }, s)), el("th", { class: "num" }, "total")));
  fillBody(table, h.reasons.map((reason, i) => el("tr", { "data-reason": reason },
    el("th", {}, reason),
    ...h.cells[i].map((c) => el("td", {
      class: "num cell",
      style: c ? "background: rgba(221,51,51," + (0.12 + 0.75 * c / Math.max(1, h.max)).toFixed(2) + ")" : "",
    }, c || "")),
    el("td", { class: "num" }, h.by_reason[reason] || 0))));
}

function renderReconciliation(view) {
  const r = view.reconciliation;
  const card = $("reconciliation-card");
  card.hidden = !r;
  if (!r) return;
  const box = $("reconciliation");
  const parts = [];
  if (!r.issues.length && !r.halted.length) {
    const checks = Object.entries(r.last_report_seq || {});
    card.classList.remove("alert");
    box.replaceChildren(
      el("p", { class: "pos" }, "Reconciled: the positions store and the exchange agree."),
      el("p", { class: "muted" }, "Policy: " + r.policy + ". " + (checks.length
        ? "Last exchange report: " + checks.map(([scope, seq]) => scope + " at seq " + seq).join(", ") + "."
        : "No exchange report received yet.")));
    return;
  }
  card.classList.add("alert");
  if (r.halted.length) {
    parts.push(el("p", { class: "neg" }, "Entries halted for " +
      r.halted.map((s) => s.mode + "/" + s.account).join(", ") + " (policy: halt)."));
  }
  parts.push(el("p", { class: "muted" }, "Policy: " + r.policy + ". Symbols listed take no new entries until " +
    "resolved (`v7 reconcile`)."));
  parts.push(el("table", { id: "reconciliation-issues" },
    el("thead", {}, el("tr", {}, ...["Scope", "Symbol", "Mismatch", "Store", "Exchange", "Since", "Detail"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, ...r.issues.map((i) => el("tr", { "data-symbol": i.symbol, "data-kind": i.kind },
      el("td", {}, i.mode + "/" + i.account),
      el("td", {}, i.symbol),
      el("td", { class: "neg" }, i.kind.replace("_", " ")),
      el("td", {}, i.store_side ? i.store_side + " " + num(i.store_qty, 4) : "flat"),
      el("td", {}, i.exchange_side ? i.exchange_side + " " + num(i.exchange_qty, 4) : "flat"),
      el("td", {}, i.opened_at.slice(0, 19).replace("T", " ")),
      el("td", {}, i.detail))))));
  box.replaceChildren(...parts);
}

function render(view) {
  for (const fn of [renderHub, renderTrading, renderSummary, renderPositions, renderNav, renderKpis, renderRouter, renderExit,
    renderLiveness, renderVetoes, renderReconciliation]) {
    try {
      fn(view);
    } catch (err) {
      console.error(fn.name, err);
    }
  }
  document.body.dataset.version = String(view.version);
}

// --- live updates ----------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("view", (ev) => {
    $("stream-banner").hidden = true;
    render(JSON.parse(ev.data));
  });
  source.addEventListener("open", () => { $("stream-banner").hidden = true; });
  // EventSource reconnects by itself (retry: 2000); only say so meanwhile.
  source.addEventListener("error", () => {
    $("stream-banner").hidden = false;
    $("hub-pill").className = "pill unknown";
    $("hub-pill").textContent = "dashboard offline";
  });
}

window.addEventListener("resize", () => {
  if (navChart) navChart.setSize({ width: chartWidth(), height: 260 });
});

connect();
