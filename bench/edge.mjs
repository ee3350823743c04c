// Edge benchmark: requests per second and latency through workerd (Miniflare's HTTP port, not
// wrangler dev, whose Node proxy caps throughput), driven by wrk, against a fast local origin.
// Peers in the same run: a pass-through JS worker (the floor: forwards with a fetch init, which
// measured faster in workerd than passing the incoming Request on) and a JS worker doing the same
// job with `jose`. Usage: node bench/edge.mjs ORIGIN_URL SECONDS
import { execFile, execFileSync } from "node:child_process";
import http from "node:http";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { Miniflare } from "miniflare";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const CLI = path.join(ROOT, "target", "release", "betaroute");
const [origin, seconds = "8"] = process.argv.slice(2);

const dir = mkdtempSync(path.join(tmpdir(), "betaroute-edge-bench-"));
const keys = {};
const all = [];
for (const alg of ["HS256", "RS256", "ES256", "EdDSA"]) {
  const priv = path.join(dir, `${alg}.json`);
  const pub = path.join(dir, `${alg}.jwks.json`);
  execFileSync(CLI, ["keys", "generate", "--alg", alg, "--kid", `k-${alg}`, "--private", priv, "--public", pub]);
  keys[alg] = execFileSync(CLI, ["token", "mint", "--key", priv, "--beta", "--exp", "2h"], { encoding: "utf8" }).trim();
  all.push(...JSON.parse(readFileSync(pub, "utf8")).keys);
}
const JWT_KEYS = JSON.stringify({ keys: all });

const joseBundle = path.join(dir, "jose-worker.mjs");
execFileSync(path.join(ROOT, "node_modules", ".bin", "esbuild"), [path.join(ROOT, "bench", "jose-worker.js"), "--bundle", "--format=esm", "--platform=neutral", "--minify", `--outfile=${joseBundle}`], { stdio: "ignore" });

const compatibilityDate = "2026-04-01";
const workers = {
  "pass-through JS": new Miniflare({ modules: true, compatibilityDate, bindings: { ORIGIN_URL: origin }, script: `export default { fetch(r, env) { const u = new URL(r.url); return fetch(env.ORIGIN_URL + u.pathname + u.search, { method: r.method, headers: r.headers, body: r.body, redirect: "manual" }); } }` }),
  "jose JS": new Miniflare({ modules: true, modulesRoot: dir, compatibilityDate, bindings: { ORIGIN_URL: origin, JWT_KEYS }, scriptPath: joseBundle }),
  betaroute: new Miniflare({
    modules: true,
    compatibilityDate,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    // Like the peers, no per-request log line (it is on by default; in Miniflare each line also
    // crosses a pipe into Node). "betaroute +log" below measures it on.
    bindings: { ORIGIN_URL: origin, JWT_KEYS, LOG_REQUESTS: "false" },
  }),
  "betaroute +log": new Miniflare({
    modules: true,
    compatibilityDate,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    bindings: { ORIGIN_URL: origin, JWT_KEYS },
  }),
};
// What a rollout policy and the flag service cost: the same worker with a policy in KV (read
// through the isolate's cache, POLICY_CACHE_SECONDS default), and with OFREP on a warm cache
// (one subject, answers kept an hour; the flag service is a local HTTP server answering true).
const ofrep = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ key: "beta", value: true, reason: "STATIC", variant: "on" }));
  });
});
await new Promise((r) => ofrep.listen(0, "127.0.0.1", r));
const POLICY = JSON.stringify({ percent: 50, holdback: 10, deny: ["someone"], rules: [{ name: "staff", claim: "groups", contains: "staff" }, { name: "mail", claim: "email", regex: "@example\\.com$" }], headers: { "org.tier": "X-Tier" } });
const betarouteWith = (bindings, extra = {}) =>
  new Miniflare({
    modules: true,
    compatibilityDate,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    bindings: { ORIGIN_URL: origin, JWT_KEYS, LOG_REQUESTS: "false", ...bindings },
    ...extra,
  });
workers["betaroute +KV policy"] = betarouteWith({}, { kvNamespaces: ["BETAROUTE_POLICY"] });
await (await workers["betaroute +KV policy"].getKVNamespace("BETAROUTE_POLICY")).put("policy", POLICY);
workers["betaroute +OFREP warm"] = betarouteWith({ OFREP_URL: `http://127.0.0.1:${ofrep.address().port}`, OFREP_CACHE_SECONDS: "3600" });

// The worker's per-request log lines would flood the terminal: keep only errors from workerd.
const urls = {};
for (const [name, mf] of Object.entries(workers)) urls[name] = (await mf.ready).toString();

// Asynchronous on purpose: a blocking exec would stop Node from draining workerd's log pipe, and
// betaroute logs one line per request, so workerd would stall once the pipe filled up.
async function wrk(url, token, duration = seconds) {
  const args = ["-c", "0", "wrk", "-t1", "-c16", `-d${duration}s`, "--latency", "-H", "Host: api.example.com"];
  if (token) args.push("-H", `Authorization: Bearer ${token}`);
  const { stdout: out } = await promisify(execFile)("taskset", [...args, url + "x"], { encoding: "utf8" });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const toMs = (s) => (s.endsWith("us") ? parseFloat(s) / 1000 : s.endsWith("ms") ? parseFloat(s) : parseFloat(s) * 1000);
  return { rps, p50: toMs(out.match(/ 50%\s+(\S+)/)[1]), p99: toMs(out.match(/ 99%\s+(\S+)/)[1]) };
}

// Warm every worker (JIT, wasm tiering, connection pools) before anything is measured.
for (const url of Object.values(urls)) await wrk(url, keys.RS256, "2");

// The machine's speed drifts by tens of percent over minutes (a shared VM): peers are run in
// interleaved rounds, and each ratio is the median of the ratios within rounds.
const ROUNDS = Number(process.env.EDGE_BENCH_ROUNDS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
const floor = [];
for (let r = 0; r < ROUNDS; r++) floor.push(await wrk(urls["pass-through JS"]));
rows.push(["pass-through JS", "none", floor, null]);
for (const alg of [null, "HS256", "RS256", "ES256", "EdDSA"]) {
  const token = alg && keys[alg];
  const runs = { jose: [], ours: [], log: [] };
  for (let r = 0; r < ROUNDS; r++) {
    runs.jose.push(await wrk(urls["jose JS"], token));
    runs.ours.push(await wrk(urls.betaroute, token));
    if (!alg || alg === "RS256") runs.log.push(await wrk(urls["betaroute +log"], token));
  }
  rows.push(["jose JS", alg ?? "none", runs.jose, null]);
  rows.push(["betaroute", alg ?? "none", runs.ours, runs.jose]);
  if (runs.log.length) rows.push(["betaroute +log", alg ?? "none", runs.log, runs.jose]);
}
console.log(`| worker | token | req/s | vs jose | p50 ms | p99 ms | p99 vs jose |\n|---|---|---|---|---|---|---|`);
for (const [name, alg, runs, peer] of rows) {
  const ratio = (k) => median(runs.map((x, i) => x[k] / peer[i][k]));
  const vs = peer ? `${ratio("rps").toFixed(2)}x` : "";
  const p99vs = peer ? `${ratio("p99").toFixed(2)}x` : "";
  const m = (k) => median(runs.map((x) => x[k]));
  console.log(`| ${name} | ${alg} | ${m("rps").toFixed(0)} | ${vs} | ${m("p50").toFixed(2)} | ${m("p99").toFixed(2)} | ${p99vs} |`);
}
console.log(`goals: RS256/ES256 at least the jose worker's req/s; HS256 faster (medians of ${ROUNDS} interleaved rounds; ratios are medians of per-round ratios)`);

console.log(`\n| worker | token | req/s | vs betaroute without | p50 ms | p99 ms | p99 vs without |\n|---|---|---|---|---|---|---|`);
for (const alg of ["HS256", "ES256"]) {
  const runs = { base: [], kv: [], ofrep: [] };
  for (let r = 0; r < ROUNDS; r++) {
    runs.base.push(await wrk(urls.betaroute, keys[alg]));
    runs.kv.push(await wrk(urls["betaroute +KV policy"], keys[alg]));
    runs.ofrep.push(await wrk(urls["betaroute +OFREP warm"], keys[alg]));
  }
  for (const [name, list, peer] of [["betaroute", runs.base, null], ["betaroute +KV policy", runs.kv, runs.base], ["betaroute +OFREP warm", runs.ofrep, runs.base]]) {
    const ratio = (k) => median(list.map((x, i) => x[k] / peer[i][k]));
    const m = (k) => median(list.map((x) => x[k]));
    console.log(`| ${name} | ${alg} | ${m("rps").toFixed(0)} | ${peer ? ratio("rps").toFixed(2) + "x" : ""} | ${m("p50").toFixed(2)} | ${m("p99").toFixed(2)} | ${peer ? ratio("p99").toFixed(2) + "x" : ""} |`);
  }
}
console.log(`goal: a policy lookup does not cost the edge (KV policy within noise of none); OFREP on a warm cache takes the async path`);
for (const mf of Object.values(workers)) await mf.dispose();
ofrep.close();
