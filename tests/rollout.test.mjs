// Rollout controls at the edge: the built worker in workerd (Miniflare) with a real KV namespace
// holding the policy, a real origin, the real router for signed mapped headers. The published
// vectors (crates/core/src/rollout/vectors.json) must decide the same here, in wasm with the
// runtime's RegExp, as natively (`betaroute token verify --policy`).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ROOT, betaHeaders, cli, generateKeys, mint, startOrigin, startRouter, startWorker } from "./helpers.mjs";

const VECTORS = JSON.parse(readFileSync(path.join(ROOT, "crates/core/src/rollout/vectors.json"), "utf8"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let keys, origin, dir;
before(async () => {
  keys = generateKeys(["HS256", "ES256"]);
  origin = await startOrigin("origin");
  dir = mkdtempSync(path.join(tmpdir(), "betaroute-rollout-"));
});
after(async () => {
  await origin?.close();
});

/** A token whose claims are exactly `claims` (plus iat and exp). */
function tokenWith(claims, alg = "HS256") {
  const args = ["--sub", ""];
  for (const [k, v] of Object.entries(claims)) args.push("--claim", `${k}=${JSON.stringify(v)}`);
  return mint(keys.keys[alg].priv, ...args);
}

/** The worker with a KV namespace for the policy; logs collected from workerd's output. */
async function workerWithKv(vars = {}) {
  const logs = [];
  const collect = (stream) => stream.on("data", (d) => logs.push(...String(d).split("\n").filter(Boolean)));
  const mf = await startWorker(
    { ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), ...vars },
    { kvNamespaces: ["BETAROUTE_POLICY"], handleRuntimeStdio: (out, err) => { collect(out); collect(err); } },
  );
  const kv = await mf.getKVNamespace("BETAROUTE_POLICY");
  return { mf, kv, logs };
}

async function decision(mf, token, extraHeaders = {}) {
  const headers = { ...extraHeaders };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await mf.dispatchFetch("https://api.example.com/_betaroute/api/decision", { headers });
  assert.equal(res.status, 200);
  return res.json();
}

/** What the origin saw for one request through the edge. */
async function forwarded(mf, headers) {
  const res = await mf.dispatchFetch("https://api.example.com/v1/items", { headers });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  return origin.last();
}

function header(record, name) {
  return betaHeaders(record.rawHeaders, name);
}

describe("the published vectors", () => {
  let w;
  before(async () => {
    w = await workerWithKv({ POLICY_CACHE_SECONDS: "0" });
  });
  after(async () => w?.mf.dispose());

  test("decisions: the same in the worker (wasm, RegExp) as natively (regex-lite)", async () => {
    for (const v of VECTORS.decisions) {
      await w.kv.put("policy", JSON.stringify(v.policy));
      const token = tokenWith(v.claims);
      const got = await decision(w.mf, token);
      assert.equal(got.cohort, v.cohort, `${v.name}: ${JSON.stringify(got)}`);
      assert.equal(got.reason, v.reason, `${v.name}: ${JSON.stringify(got)}`);
      assert.deepEqual(got.inject, v.inject, v.name);
      assert.equal(got.policy.source, "kv", v.name);
      const file = path.join(dir, "vector.json");
      writeFileSync(file, JSON.stringify(v.policy));
      const native = JSON.parse(cli(["token", "verify", "--keys", keys.keys.HS256.pub, "--policy", file, token]).stdout);
      assert.equal(native.decision.reason, v.reason, v.name);
      assert.deepEqual(native.inject, v.inject, v.name);
    }
  });

  test("buckets: the same in the worker as published", async () => {
    for (const b of VECTORS.buckets) {
      await w.kv.put("policy", JSON.stringify({ salt: b.salt }));
      const got = await decision(w.mf, tokenWith({ sub: b.subject }));
      const which = b.prefix === "betaroute-rollout-v1" ? "rollout" : "holdback";
      assert.equal(got.buckets[which], b.bucket, JSON.stringify(b));
      const native = cli(["rollout", "--file", path.join(dir, "none.json"), "bucket", "--salt", b.salt, ...(which === "holdback" ? ["--holdback"] : []), b.subject]);
      assert.equal(Number(native.stdout.trim()), b.bucket, JSON.stringify(b));
    }
  });

  test("regex rules: RE2 syntax means the same under the runtime's RegExp as under regex-lite", async () => {
    const cases = [
      ["^a.b$", ["axb", "a\nb", "ab"]],
      ["(?s)^a.b$", ["a\nb"]],
      ["\\s", ["\u00a0", " ", "x"]],
      ["^[[:alpha:]]+\\d{2,3}$", ["abc12", "abc1", "ab1234", "é12"]],
      ["(?i)^STAFF@", ["staff@x", "Staff@x", "xstaff@"]],
      ["\\Qa+b\\E", ["a+b", "aab"]],
      ["x{", ["x{"]],
      ["^\\w+$", ["straße", "abc_1"]],
      ["\\x{1F680}", ["go 🚀", "go"]],
      ["(?i)^k", ["K", "k", "\u212a"]],
      ["(?i)[w-y]", ["X", "z"]],
      ["[~~&&]", ["~", "&", "a"]],
      ["[[:]", ["[", ":", "a"]],
    ];
    for (const [re, inputs] of cases) {
      const policy = { rules: [{ name: "r", claim: "email", regex: re }] };
      await w.kv.put("policy", JSON.stringify(policy));
      const file = path.join(dir, "regex.json");
      writeFileSync(file, JSON.stringify(policy));
      for (const input of inputs) {
        const token = tokenWith({ sub: "s", email: input });
        const edge = (await decision(w.mf, token)).reason;
        const native = JSON.parse(cli(["token", "verify", "--keys", keys.keys.HS256.pub, "--policy", file, token]).stdout).decision.reason;
        assert.equal(edge, native, `${re} on ${JSON.stringify(input)}`);
      }
    }
  });
});

describe("the kill switch and the policy's life cycle in KV", () => {
  let w;
  before(async () => {
    w = await workerWithKv({ POLICY_CACHE_SECONDS: "1", ROLLOUT_POLICY: JSON.stringify({ percent: 0 }) });
  });
  after(async () => w?.mf.dispose());

  test("a KV write turns beta off within the cache time, and back on", async () => {
    const beta = { authorization: `Bearer ${mint(keys.keys.ES256.priv, "--beta")}` };
    assert.deepEqual(header(await forwarded(w.mf, beta), "x-rikstv-beta"), ["true"]);
    await w.kv.put("policy", JSON.stringify({ beta: "off" }));
    const started = Date.now();
    let seen;
    while (Date.now() - started < 5000) {
      seen = header(await forwarded(w.mf, beta), "x-rikstv-beta");
      if (seen.length === 0) break;
      await sleep(50);
    }
    const took = Date.now() - started;
    assert.deepEqual(seen, [], "beta still routed 5 s after the kill switch");
    console.log(`# kill switch in KV took effect after ${took} ms (POLICY_CACHE_SECONDS=1)`);
    const d = await decision(w.mf, beta.authorization.slice(7));
    assert.equal(d.reason, "kill_switch");
    assert.equal(d.policy.beta, "off");
    await w.kv.put("policy", JSON.stringify({ beta: "on" }));
    await sleep(1100);
    assert.deepEqual(header(await forwarded(w.mf, beta), "x-rikstv-beta"), ["true"]);
  });

  test("a broken KV value keeps the last good policy and is logged", async () => {
    await w.kv.put("policy", JSON.stringify({ beta: "off" }));
    await sleep(1100);
    const beta = mint(keys.keys.HS256.priv, "--beta");
    assert.equal((await decision(w.mf, beta)).reason, "kill_switch");
    await w.kv.put("policy", '{\n  "beta": "off",\n  "percnt": 5\n}');
    await sleep(1100);
    assert.equal((await decision(w.mf, beta)).reason, "kill_switch", "the last good policy stays");
    await sleep(200);
    const problem = w.logs.find((l) => l.includes('"betaroute":"policy"') && l.includes("percnt"));
    assert.ok(problem, `no log line names the problem: ${w.logs.slice(-5).join("\n")}`);
    assert.match(problem, /line 3 column 3: unknown field `percnt`/);
    assert.match(problem, /the last good policy stays in force/);
  });

  test("a deleted KV value falls back to ROLLOUT_POLICY", async () => {
    await w.kv.delete("policy");
    await sleep(1100);
    const d = await decision(w.mf, mint(keys.keys.HS256.priv, "--beta"));
    assert.equal(d.reason, "beta_claim");
    assert.equal(d.policy.source, "inline");
  });
});

describe("a KV namespace that cannot be read", () => {
  test("the read failure is logged and ROLLOUT_POLICY (else the claim alone) decides", async () => {
    const logs = [];
    const collect = (st) => st.on("data", (d) => logs.push(String(d)));
    // A binding named BETAROUTE_POLICY that is not a KV namespace: every read fails.
    const w = await startWorker(
      { ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), BETAROUTE_POLICY: { not: "a namespace" }, ROLLOUT_POLICY: JSON.stringify({ deny: ["dev"] }), POLICY_CACHE_SECONDS: "0" },
      { handleRuntimeStdio: (out, err) => { collect(out); collect(err); } },
    );
    try {
      const res = await w.dispatchFetch("https://api.example.com/v1/items", { headers: { authorization: `Bearer ${mint(keys.keys.HS256.priv, "--beta")}` } });
      assert.equal(res.status, 200, "a policy store that fails never fails the request");
      await res.arrayBuffer();
      assert.deepEqual(header(origin.last(), "x-rikstv-beta"), [], "the inline policy denies dev");
      const d = await decision(w, mint(keys.keys.HS256.priv, "--beta"));
      assert.equal(d.reason, "denied");
      assert.equal(d.policy.source, "inline");
      await sleep(200);
      assert.ok(logs.some((l) => l.includes("reading the rollout policy from KV failed")), logs.join(""));
    } finally {
      await w.dispose();
    }
  });
});

describe("without KV", () => {
  test("ROLLOUT_POLICY alone decides; a broken one leaves the claim alone and says why", async () => {
    const good = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), ROLLOUT_POLICY: JSON.stringify({ deny: ["dev"] }) });
    try {
      const d = await decision(good, mint(keys.keys.HS256.priv, "--beta"));
      assert.equal(d.reason, "denied");
      assert.equal(d.policy.source, "inline");
    } finally {
      await good.dispose();
    }
    const broken = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), ROLLOUT_POLICY: '{"deny": "dev"}' });
    try {
      const d = await decision(broken, mint(keys.keys.HS256.priv, "--beta"));
      assert.equal(d.reason, "beta_claim");
      assert.equal(d.policy, null);
      assert.ok(d.config_problems.some((p) => p.startsWith("ROLLOUT_POLICY: line 1 column 10: deny: must be a list")), JSON.stringify(d.config_problems));
    } finally {
      await broken.dispose();
    }
  });

  test("a token in TOKEN_QUERY_PARAM decides and is never logged", async () => {
    const logs = [];
    const collect = (s) => s.on("data", (d) => logs.push(String(d)));
    const w = await startWorker(
      { ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), TOKEN_QUERY_PARAM: "access_token", LOG_REQUESTS: "true" },
      { handleRuntimeStdio: (out, err) => { collect(out); collect(err); } },
    );
    try {
      const token = mint(keys.keys.ES256.priv, "--beta");
      const res = await w.dispatchFetch(`https://api.example.com/live?access_token=${token}&x=1`);
      await res.arrayBuffer();
      assert.deepEqual(header(origin.last(), "x-rikstv-beta"), ["true"]);
      const twice = await w.dispatchFetch(`https://api.example.com/live?access_token=${token}&access_token=other`);
      await twice.arrayBuffer();
      assert.deepEqual(header(origin.last(), "x-rikstv-beta"), [], "two different tokens are not trusted");
      await sleep(200);
      assert.ok(logs.some((l) => l.includes('"path":"/live"')), "request logged");
      assert.ok(!logs.some((l) => l.includes(token.split(".")[2])), "the token appears in a log line");
    } finally {
      await w.dispose();
    }
  });
});

describe("holdback and mapped headers", () => {
  test("a holdback subject is labelled, not beta; a forged label is stripped", async () => {
    const w = await startWorker({
      ORIGIN_URL: origin.url,
      JWT_KEYS: JSON.stringify(keys.jwks),
      ROLLOUT_POLICY: JSON.stringify({ percent: 10, holdback: 50 }),
    });
    try {
      // bob: rollout bucket 458 (< 1000), holdback bucket 3804 (< 5000): held back.
      const held = await forwarded(w, { authorization: `Bearer ${tokenWith({ sub: "bob" })}` });
      assert.deepEqual(header(held, "x-rikstv-beta"), []);
      assert.deepEqual(header(held, "x-betaroute-cohort"), ["holdback"]);
      // user-2: rollout bucket 621, holdback bucket 9321: beta.
      const beta = await forwarded(w, { authorization: `Bearer ${tokenWith({ sub: "user-2" })}` });
      assert.deepEqual(header(beta, "x-rikstv-beta"), ["true"]);
      assert.deepEqual(header(beta, "x-betaroute-cohort"), []);
      const forged = await forwarded(w, { "X-BetaRoute-Cohort": "holdback", x_betaroute_cohort: "holdback" });
      assert.deepEqual(header(forged, "x-betaroute-cohort"), []);
    } finally {
      await w.dispose();
    }
  });

  test("a mapped header is stripped when forged, set from the claim and signed; the router honours only the signed one", async () => {
    const [gold, other] = [await startOrigin("gold"), await startOrigin("other")];
    const routingKeys = path.join(dir, "routing.json");
    writeFileSync(routingKeys, JSON.stringify({ keys: [{ kty: "oct", kid: "r1", k: Buffer.alloc(32, 7).toString("base64url") }] }));
    const router = await startRouter(
      `
http:
  routers:
    api:
      rule: "Host(\`api.example.com\`)"
      service: other
    api-gold:
      rule: "Host(\`api.example.com\`) && Header(\`X-Tier\`, \`gold\`)"
      service: gold
  services:
    other: {loadBalancer: {servers: [{url: "${other.url}"}]}}
    gold: {loadBalancer: {servers: [{url: "${gold.url}"}]}}
`,
      `[entryPoints.web.routingHeaders]\nnames = ["X-RiksTV-Beta", "X-Tier"]\nkeysFile = "${routingKeys}"\n`,
    );
    const w = await startWorker({
      ORIGIN_URL: router.web,
      JWT_KEYS: JSON.stringify(keys.jwks),
      ROUTING_SIGNING_KEYS: readFileSync(routingKeys, "utf8"),
      // bob is in the rollout at 100 % and in the holdback bucket (3804 < 5000): held back.
      ROLLOUT_POLICY: JSON.stringify({ headers: { "org.tier": "X-Tier" }, percent: 100, holdback: 50 }),
    });
    const served = async (headers) => {
      const res = await w.dispatchFetch("https://api.example.com/v1/items", { headers });
      return (await res.json()).server;
    };
    try {
      assert.equal(await served({ authorization: `Bearer ${tokenWith({ sub: "a", org: { tier: "gold" } })}` }), "gold");
      const seen = gold.last();
      assert.deepEqual(header(seen, "x-tier"), ["gold"]);
      assert.equal(await served({ authorization: `Bearer ${tokenWith({ sub: "a", org: { tier: "silver" } })}` }), "other");
      assert.equal(await served({ "X-Tier": "gold" }), "other", "forged without a token");
      assert.equal(await served({ x_tier: "gold", authorization: `Bearer ${tokenWith({ sub: "a" })}` }), "other", "forged next to a token");
      assert.deepEqual(header(other.last(), "x-tier"), []);
      // Straight to the router, around the edge: not signed, so not believed.
      const direct = await new Promise((resolve, reject) => {
        http.get(`${router.web}/v1/items`, { headers: { host: "api.example.com", "x-tier": "gold" } }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve(JSON.parse(body)));
        }).on("error", reject);
      });
      assert.equal(direct.server, "other");
      // The edge's holdback label is signed too: the router counts bob as holdback, routed as main.
      assert.equal(await served({ authorization: `Bearer ${tokenWith({ sub: "bob" })}` }), "other");
      const metrics = await (await fetch(`${router.admin}/metrics`)).text();
      assert.match(metrics, /betaroute_requests_total\{entrypoint="web",router="api@file",service="other@file",cohort="holdback",code="2xx"\} 1/);
      // One refused signature: the direct request around the edge, none from the edge's requests.
      assert.match(metrics, /betaroute_signature_rejected_total\{entrypoint="web",reason="missing"\} 1\n/);
    } finally {
      await w.dispose();
      router.stop();
      await gold.close();
      await other.close();
    }
  });
});
