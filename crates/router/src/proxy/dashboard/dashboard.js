// The router dashboard: every comparison of beta with its baseline, from /api/comparisons and
// /api/cohorts/beta on this admin address, redrawn every 2 s. No external assets.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(tag === "svg" || SVG_TAGS.has(tag) ? SVG : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const SVG_TAGS = new Set(["path", "line", "text", "g", "rect", "polyline"]);
const fmt = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(2) + "%");
const sci = (v) => (v === null || v === undefined ? "–" : v < 0.001 ? v.toExponential(1) : v.toFixed(3));

/** Overlaid latency distributions (densities over shared bins) of beta and the baseline. */
function distributions(beta, baseline) {
  const w = 420, h = 180, pad = 28;
  const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "latency distributions" });
  const all = [...beta, ...baseline].sort((a, b) => a - b);
  if (all.length === 0) {
    svg.append(el("text", { x: w / 2 - 50, y: h / 2 }, "no samples yet"));
    return svg;
  }
  const lo = all[0], hi = all[Math.min(all.length - 1, Math.floor(all.length * 0.995))] || lo + 1;
  const bins = 40, width = (hi - lo) / bins || 1;
  const density = (xs) => {
    const c = new Array(bins).fill(0);
    for (const x of xs) c[Math.min(bins - 1, Math.max(0, Math.floor((x - lo) / width)))]++;
    return c.map((n) => n / Math.max(1, xs.length));
  };
  const [db, dm] = [density(beta), density(baseline)];
  const top = Math.max(...db, ...dm, 1e-9);
  const x = (i) => pad + (i / bins) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  for (const [d, cls, color] of [[dm, "baseline", "#1d4ed8"], [db, "beta", "#c2410c"]]) {
    const pts = d.map((v, i) => `${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2, class: `dist-${cls}` }));
  }
  svg.append(el("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#99a" }));
  svg.append(el("text", { x: pad, y: h - 8 }, `${fmt(lo)} ms`));
  svg.append(el("text", { x: w - pad - 50, y: h - 8 }, `${fmt(hi)} ms`));
  svg.append(el("text", { x: pad, y: 14, class: "beta" }, `beta (${beta.length})`));
  svg.append(el("text", { x: pad + 90, y: 14, class: "baseline" }, `baseline (${baseline.length})`));
  return svg;
}

/** p50/p95/p99 of both sides over the verdict history. */
function overTime(history) {
  const w = 420, h = 180, pad = 28;
  const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "latency over time" });
  const series = [];
  for (const side of ["beta", "baseline"]) for (const q of ["p50_ms", "p95_ms", "p99_ms"]) series.push([side, q, history.map((e) => e[side][q])]);
  const values = series.flatMap(([, , v]) => v).filter((v) => v !== null);
  if (values.length === 0) {
    svg.append(el("text", { x: w / 2 - 50, y: h / 2 }, "no verdicts yet"));
    return svg;
  }
  const top = Math.max(...values) * 1.1;
  const x = (i) => pad + (i / Math.max(1, history.length - 1)) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  for (const [side, q, vs] of series) {
    const pts = vs.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(" ");
    const dash = q === "p50_ms" ? "" : q === "p95_ms" ? "4 2" : "1 2";
    svg.append(el("polyline", { points: pts, fill: "none", stroke: side === "beta" ? "#c2410c" : "#1d4ed8", "stroke-width": 1.5, "stroke-dasharray": dash }));
  }
  svg.append(el("text", { x: pad, y: 14 }, `p50 (solid), p95, p99 (dotted); top ${fmt(top, 1)} ms`));
  return svg;
}

/** 5xx rates of both sides over the verdict history. */
function errorsOverTime(history) {
  const w = 420, h = 180, pad = 28;
  const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "5xx rates over time" });
  const rates = (side) => history.map((e) => e[side].error_rate_5xx);
  const values = [...rates("beta"), ...rates("baseline")].filter((v) => v !== null);
  if (values.length === 0) {
    svg.append(el("text", { x: w / 2 - 50, y: h / 2 }, "no verdicts yet"));
    return svg;
  }
  const top = Math.max(0.01, ...values) * 1.1;
  const x = (i) => pad + (i / Math.max(1, history.length - 1)) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  for (const [side, color] of [["baseline", "#1d4ed8"], ["beta", "#c2410c"]]) {
    const pts = rates(side).map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(" ");
    svg.append(el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.5, class: `errors-${side}` }));
  }
  svg.append(el("text", { x: pad, y: 14 }, `5xx rate; top ${(100 * top).toFixed(2)}%`));
  return svg;
}

function section(c) {
  const s = document.createElement("section");
  s.className = "cmp";
  s.dataset.name = c.name;
  const latest = c.latest;
  const verdict = latest ? latest.verdict : "inconclusive";
  const h = document.createElement("h2");
  h.innerHTML = "";
  h.append(`${c.name}: `);
  const v = document.createElement("span");
  v.className = `verdict ${verdict}`;
  v.textContent = verdict;
  h.append(v);
  s.append(h);
  const p = document.createElement("p");
  p.className = "muted";
  const against = c.baseline == null ? "no baseline (none configured and no main router of beta's rule: see betaroute check)"
    : c.baseline_default ? `${c.baseline} (the main router of beta's rule${c.against === "holdback" ? ", judged against its holdback requests" : ""})`
    : c.baseline;
  p.textContent = `beta ${c.beta} against ${against}; a verdict every ${c.interval_ms} ms over ${c.window_ms} ms; ${c.consecutive_failures} consecutive failures of ${c.failure_threshold} to turn beta off`;
  s.append(p);
  if (c.tripped) {
    const t = document.createElement("p");
    t.className = "tripped";
    t.innerHTML = "";
    t.append(`Beta turned off by the judge at ${new Date(c.tripped.at * 1000).toLocaleTimeString()}: ${c.tripped.reason}`);
    s.append(t);
  }
  if (latest) {
    const why = document.createElement("p");
    why.className = "reasons";
    why.textContent = latest.reasons.join(" ");
    s.append(why);
  }
  const charts = document.createElement("div");
  charts.className = "charts";
  const f1 = document.createElement("figure");
  f1.append(distributions(c.samples.beta, c.samples.baseline));
  const cap1 = document.createElement("figcaption");
  cap1.textContent = "Latency distributions in the current window (beta orange, baseline blue)";
  f1.append(cap1);
  const f2 = document.createElement("figure");
  f2.append(overTime(c.history));
  const cap2 = document.createElement("figcaption");
  cap2.textContent = "Latency over the last verdicts";
  f2.append(cap2);
  const f3 = document.createElement("figure");
  f3.append(errorsOverTime(c.history));
  const cap3 = document.createElement("figcaption");
  cap3.textContent = "5xx rates over the last verdicts";
  f3.append(cap3);
  charts.append(f1, f2, f3);
  s.append(charts);
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>time</th><th>verdict</th><th>beta req</th><th>base req</th><th>beta p50</th><th>base p50</th><th>beta p99</th><th>base p99</th><th>shift ms</th><th>p latency</th><th>beta 5xx</th><th>base 5xx</th><th>p 5xx</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const e of [...c.history].reverse().slice(0, 15)) {
    const tr = document.createElement("tr");
    const cells = [new Date(e.at * 1000).toLocaleTimeString(), e.verdict, e.beta.requests, e.baseline.requests, fmt(e.beta.p50_ms), fmt(e.baseline.p50_ms), fmt(e.beta.p99_ms), fmt(e.baseline.p99_ms), fmt(e.shift_ms), sci(e.latency_p), pct(e.beta.error_rate_5xx), pct(e.baseline.error_rate_5xx), sci(e.error_p)];
    for (const [i, v] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = v;
      if (i === 1) td.className = `verdict ${v}`;
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  s.append(table);
  return s;
}

async function refresh() {
  try {
    const [cmp, sw] = await Promise.all([fetch("/api/comparisons").then((r) => r.json()), fetch("/api/cohorts/beta").then((r) => r.json())]);
    const badge = document.getElementById("switch");
    badge.textContent = sw.enabled ? "on" : `off (${sw.source})`;
    badge.className = `switch ${sw.enabled ? "on" : "off"}`;
    const root = document.getElementById("comparisons");
    root.replaceChildren(...(cmp.length ? cmp.map(section) : [Object.assign(document.createElement("p"), { className: "muted", textContent: "No comparisons configured (http.comparisons in the dynamic configuration)." })]));
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    document.getElementById("updated").textContent = `could not read the API: ${e}`;
  }
}

refresh();
setInterval(refresh, 2000);
