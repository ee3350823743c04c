// betaroute's tester console: "am I beta, and why" for the caller's own token, and a compare
// panel that sends the same requests as the caller and as an anonymous main user and shows
// which pool answered each and how fast. A pasted token lives in one variable of this page: it
// is never stored, never written into the page, and only sent to this host.
"use strict";

(() => {
  const prefix = location.pathname.replace(/[^/]*$/, "");
  const $ = (id) => document.getElementById(id);
  let token = null; // the pasted token, in memory only
  let config = null; // the edge's console settings, from the decision endpoint

  document.querySelectorAll(".prefix").forEach((e) => (e.textContent = prefix));

  function authHeaders() {
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  function row(dl, k, v) {
    if (v == null || v === "") return;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    dl.append(dt, dd);
  }

  const REASONS = {
    beta_claim: "your token carries the beta claim",
    rule: "a rule of the rollout policy matched your token",
    rollout_bucket: "your subject falls in the rollout percentage",
    allowed: "your subject is on the allow list",
    denied: "your subject is on the deny list",
    holdback: "you are eligible, and kept on main as the holdback group",
    kill_switch: "beta is switched off for everyone",
    flag_service: "the flag service decided",
    no_token: "no token came with the request",
    no_beta_claim: "your token is valid but does not carry the beta claim",
    expired: "your token has expired",
    bad_signature: "your token's signature does not verify",
    unknown_kid: "your token names a key the edge does not have",
  };

  async function ask() {
    const verdict = $("verdict");
    try {
      const r = await fetch(prefix + "api/decision", {
        headers: authHeaders(),
        credentials: token ? "omit" : "same-origin",
        cache: "no-store",
      });
      const d = await r.json();
      config = d.console || {};
      $("hdr").textContent = d.beta_header;
      const cohort = d.cohort || "main";
      verdict.className = cohort;
      verdict.textContent =
        cohort === "beta" ? "beta: your requests go to the beta pool"
        : cohort === "holdback" ? "holdback: your requests go to the main pool, as the control group"
        : "main: your requests go to the main pool";
      const dl = $("details");
      dl.replaceChildren();
      const reason = String(d.reason || "");
      const base = reason.split(":")[0];
      row(dl, "reason", REASONS[base] ? `${reason} (${REASONS[base]})` : reason);
      row(dl, "rule", d.rule);
      if (base === "beta_claim") row(dl, "claim", d.beta_claim);
      row(dl, "detail", d.detail);
      row(dl, "algorithm", d.alg);
      row(dl, "key id", d.kid);
      row(dl, "buckets", d.buckets);
      row(dl, "token from", token ? "the token pasted here" : config.token_cookie ? `the Authorization header or the cookie ${config.token_cookie}` : "the Authorization header");
      const ro = $("rollout");
      ro.replaceChildren();
      const p = d.policy;
      if (p) {
        row(ro, "beta", p.beta === "on" ? "on" : "off (kill switch)");
        row(ro, "rollout percent", p.percent);
        row(ro, "holdback percent", p.holdback);
        row(ro, "rules", (p.rules || []).join(", ") || "none");
        row(ro, "allow / deny", `${p.allow} / ${p.deny} subjects`);
        row(ro, "policy from", p.source);
      } else {
        row(ro, "policy", `none: the ${d.beta_claim} claim alone decides`);
      }
      for (const problem of d.config_problems || []) {
        const dd = document.createElement("p");
        dd.className = "problem";
        dd.textContent = "edge configuration problem: " + problem;
        ro.after(dd);
      }
      const path = config.compare_path;
      $("run").disabled = !path;
      if (path) {
        $("compare-what").textContent =
          `GET ${path} on this host, alternately as you and as an anonymous user (no token, no cookie). ` +
          `The router names the pool that answered in ${config.served_by_header} when its cohort.servedByHeader is set.`;
      }
    } catch (e) {
      verdict.className = "problem";
      verdict.textContent = "could not ask the edge: " + e;
    }
  }

  async function once(asYou) {
    const started = performance.now();
    try {
      const r = await fetch(config.compare_path, {
        headers: asYou ? authHeaders() : {},
        credentials: asYou && !token ? "same-origin" : "omit",
        cache: "no-store",
      });
      await r.arrayBuffer();
      return { ms: performance.now() - started, status: r.status, pool: r.headers.get(config.served_by_header) || "(not named)" };
    } catch (e) {
      return { ms: performance.now() - started, status: 0, pool: "(failed: " + e.message + ")" };
    }
  }

  function quantile(sorted, q) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  }

  function draw(svg, values, max, cls) {
    const NS = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const bins = 20, w = 300, h = 140, bottom = 120;
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v / max) * bins))]++;
    const top = Math.max(1, ...counts);
    counts.forEach((c, i) => {
      const r = document.createElementNS(NS, "rect");
      const bh = (c / top) * (bottom - 10);
      r.setAttribute("x", String((i * w) / bins + 1));
      r.setAttribute("y", String(bottom - bh));
      r.setAttribute("width", String(w / bins - 2));
      r.setAttribute("height", String(bh));
      r.setAttribute("class", cls);
      svg.append(r);
    });
    for (const [x, label] of [[2, "0"], [w - 2, `${max.toFixed(1)} ms`]]) {
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", String(x));
      t.setAttribute("y", "135");
      if (x > 2) t.setAttribute("text-anchor", "end");
      t.textContent = label;
      svg.append(t);
    }
  }

  async function run() {
    const n = Math.max(1, Math.min(200, Number($("count").value) || 20));
    $("run").disabled = true;
    const results = { you: [], anon: [] };
    for (let i = 0; i < n; i++) {
      $("compare-state").textContent = `${i + 1} of ${n}`;
      results.you.push(await once(true));
      results.anon.push(await once(false));
    }
    $("compare-state").textContent = `${n} requests each`;
    const body = $("pools").querySelector("tbody");
    body.replaceChildren();
    for (const [who, list] of [["you", results.you], ["anonymous", results.anon]]) {
      const pools = {};
      for (const r of list) pools[r.pool] = (pools[r.pool] || 0) + 1;
      const ms = list.map((r) => r.ms).sort((a, b) => a - b);
      const tr = document.createElement("tr");
      tr.dataset.who = who;
      for (const cell of [
        who,
        list.length,
        Object.entries(pools).map(([p, c]) => `${p} \u00d7 ${c}`).join(", "),
        quantile(ms, 0.5).toFixed(1),
        quantile(ms, 0.95).toFixed(1),
        list.filter((r) => r.status === 0 || r.status >= 500).length,
      ]) {
        const td = document.createElement("td");
        td.textContent = String(cell);
        tr.append(td);
      }
      body.append(tr);
    }
    const max = Math.max(1, ...results.you.map((r) => r.ms), ...results.anon.map((r) => r.ms)) * 1.05;
    draw($("dist-you"), results.you.map((r) => r.ms), max, "dist-you");
    draw($("dist-anon"), results.anon.map((r) => r.ms), max, "dist-anon");
    $("pools").hidden = false;
    $("dists").hidden = false;
    $("run").disabled = false;
  }

  $("use-token").addEventListener("click", () => {
    const t = $("token").value.trim().replace(/^Bearer\s+/i, "");
    $("token").value = ""; // out of the page at once
    token = t || null;
    $("token-state").textContent = token
      ? "Using the token you pasted (in this page's memory only; reload the page to drop it)."
      : "No token pasted: the console asks as this browser (its cookie, if the edge reads one).";
    ask();
  });
  $("forget-token").addEventListener("click", () => {
    token = null;
    $("token").value = "";
    $("token-state").textContent = "No token pasted: the console asks as this browser (its cookie, if the edge reads one).";
    ask();
  });
  $("run").addEventListener("click", run);
  ask();
})();
