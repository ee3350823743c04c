// The beta flag from a flag service through OFREP (OpenFeature Remote Evaluation Protocol):
// the built worker in workerd asks a real HTTP server on loopback that implements the published
// API (POST /ofrep/v1/evaluate/flags/{key}: 200 with a value, 400/404 with an errorCode, 429 with
// Retry-After, 500), answering on time, slowly, not at all, or with garbage.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { betaHeaders, generateKeys, mint, startOrigin, startWorker } from "./helpers.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An OFREP server: flag `beta` is true for the subjects in `flagged`. `mode` changes how it answers. */
async function startOfrep() {
  const state = { mode: "ok", flagged: new Set(["ann"]), requests: [] };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const record = { method: req.method, url: req.url, headers: req.headers, body: body ? JSON.parse(body) : null };
      state.requests.push(record);
      const json = (status, v, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(v));
      };
      const m = req.url.match(/^\/ofrep\/v1\/evaluate\/flags\/([^/?]+)$/);
      if (req.method !== "POST" || !m) return json(404, { errorDetails: "no such route" });
      const key = decodeURIComponent(m[1]);
      switch (state.mode) {
        case "slow":
          await sleep(2000);
          break;
        case "garbage":
          res.writeHead(200, { "content-type": "application/json" });
          return res.end("<html>maintenance</html>");
        case "not-boolean":
          return json(200, { key, value: "yes", reason: "STATIC", variant: "on" });
        case "error":
          return json(500, { errorDetails: "database unavailable" });
        case "ratelimit":
          return json(429, { errorDetails: "slow down" }, { "retry-after": "1" });
      }
      if (key !== "beta") return json(404, { key, errorCode: "FLAG_NOT_FOUND", errorDetails: `flag ${key} not found` });
      const ctx = record.body?.context;
      if (!ctx || typeof ctx.targetingKey !== "string") return json(400, { key, errorCode: "TARGETING_KEY_MISSING" });
      const on = state.flagged.has(ctx.targetingKey) || (Array.isArray(ctx.groups) && ctx.groups.includes("staff"));
      return json(200, { key, value: on, reason: "TARGETING_MATCH", variant: on ? "on" : "off", metadata: {}, ...(state.uncacheable ? { cacheable: false } : {}) });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

let keys, origin, ofrep;
before(async () => {
  keys = generateKeys(["HS256", "ES256"]);
  origin = await startOrigin("origin");
  ofrep = await startOfrep();
});
after(async () => {
  await origin?.close();
  await ofrep?.close();
});

async function worker(vars = {}) {
  const logs = [];
  const collect = (s) => s.on("data", (d) => logs.push(...String(d).split("\n").filter(Boolean)));
  const mf = await startWorker(
    { ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), OFREP_URL: ofrep.url, OFREP_BEARER_TOKEN: "flag-secret-123", OFREP_RETRY_SECONDS: "1", ...vars },
    { handleRuntimeStdio: (out, err) => { collect(out); collect(err); } },
  );
  return { mf, logs };
}

async function through(mf, token) {
  const started = Date.now();
  const res = await mf.dispatchFetch("https://api.example.com/v1/items", { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.equal(res.status, 200, "a flag service problem never fails the request");
  await res.arrayBuffer();
  return { beta: betaHeaders(origin.last().rawHeaders).includes("true"), ms: Date.now() - started };
}

async function decision(mf, token) {
  const res = await mf.dispatchFetch("https://api.example.com/_betaroute/api/decision", { headers: { authorization: `Bearer ${token}` } });
  return res.json();
}

test("the flag service's answer decides, fresher than the token; answers are kept per subject", async () => {
  ofrep.state.mode = "ok";
  const { mf, logs } = await worker({ OFREP_CACHE_SECONDS: "30" });
  try {
    ofrep.state.requests.length = 0;
    const ann = mint(keys.keys.ES256.priv, "--sub", "ann");
    assert.equal((await through(mf, ann)).beta, true, "flagged in the service, no beta claim in the token");
    const req = ofrep.state.requests.at(-1);
    assert.equal(req.url, "/ofrep/v1/evaluate/flags/beta");
    assert.equal(req.headers.authorization, "Bearer flag-secret-123");
    assert.equal(req.headers["content-type"], "application/json");
    assert.equal(req.body.context.targetingKey, "ann");
    assert.equal(req.body.context.sub, "ann", "the verified claims are the evaluation context");
    assert.equal((await decision(mf, ann)).reason, "flag_service");
    const bob = mint(keys.keys.HS256.priv, "--sub", "bob", "--beta");
    assert.equal((await through(mf, bob)).beta, false, "the service says no: a stale beta claim does not count");
    assert.equal((await decision(mf, bob)).reason, "no_beta_claim");
    const staff = mint(keys.keys.HS256.priv, "--sub", "carl", "--claim", 'groups=["staff"]');
    assert.equal((await through(mf, staff)).beta, true, "targeting on other claims");
    const asked = ofrep.state.requests.length;
    for (let i = 0; i < 5; i++) await through(mf, ann);
    assert.equal(ofrep.state.requests.length, asked, "a kept answer is not asked again");
    assert.ok(!logs.some((l) => l.includes("flag-secret-123")), "the credential was logged");
    // No token: nothing to ask.
    await through(mf, null);
    assert.equal(ofrep.state.requests.length, asked);
  } finally {
    await mf.dispose();
  }
});

test("an uncacheable answer is asked again; a changed flag takes effect after the cache time", async () => {
  ofrep.state.mode = "ok";
  const { mf } = await worker({ OFREP_CACHE_SECONDS: "1" });
  try {
    const dee = mint(keys.keys.HS256.priv, "--sub", "dee");
    assert.equal((await through(mf, dee)).beta, false);
    ofrep.state.flagged.add("dee");
    assert.equal((await through(mf, dee)).beta, false, "kept for the cache time");
    await sleep(1100);
    assert.equal((await through(mf, dee)).beta, true, "flag on: beta without a new token");
    ofrep.state.uncacheable = true;
    await sleep(1100); // the kept answer expires
    const n = ofrep.state.requests.length;
    await through(mf, dee);
    await through(mf, dee);
    await through(mf, dee);
    assert.equal(ofrep.state.requests.length, n + 3, "an answer with cacheable: false was kept");
  } finally {
    ofrep.state.uncacheable = false;
    ofrep.state.flagged.delete("dee");
    await mf.dispose();
  }
});

for (const [mode, what, logged] of [
  ["slow", "a slow service (past the timeout)", /no answer within 150 ms/],
  ["garbage", "an answer that is not JSON", /unusable answer: the body is not a JSON object/],
  ["not-boolean", "a value that is not a boolean", /the flag's value is not a boolean/],
  ["error", "a 500", /answered 500/],
  ["ratelimit", "a 429", /answered 429/],
]) {
  test(`${what} falls back to the token and the policy, and is logged`, async () => {
    ofrep.state.mode = mode;
    const { mf, logs } = await worker({ OFREP_TIMEOUT_MS: "150" });
    try {
      const beta = mint(keys.keys.ES256.priv, "--sub", "erin", "--beta");
      const first = await through(mf, beta);
      assert.equal(first.beta, true, "the token's claim decides");
      assert.ok(first.ms < 1500, `took ${first.ms} ms`);
      assert.equal((await decision(mf, beta)).reason, "beta_claim");
      const asked = ofrep.state.requests.length;
      for (let i = 0; i < 5; i++) await through(mf, beta);
      assert.equal(ofrep.state.requests.length, asked, "a failing service is left alone for the retry interval");
      await sleep(300);
      assert.ok(logs.some((l) => l.includes('"betaroute":"ofrep"') && logged.test(l)), logs.filter((l) => l.includes("ofrep")).join("\n") || "no ofrep log line");
    } finally {
      await mf.dispose();
      ofrep.state.mode = "ok";
    }
  });
}

test("a service that is down, or a flag it does not know, falls back", async () => {
  const down = await worker({ OFREP_URL: "http://127.0.0.1:9" });
  try {
    const beta = mint(keys.keys.HS256.priv, "--sub", "fay", "--beta");
    assert.equal((await through(down.mf, beta)).beta, true);
    await sleep(200);
    assert.ok(down.logs.some((l) => l.includes('"betaroute":"ofrep"') && l.includes("request failed")), down.logs.join("\n"));
  } finally {
    await down.mf.dispose();
  }
  const unknown = await worker({ OFREP_FLAG: "no-such-flag" });
  try {
    const beta = mint(keys.keys.HS256.priv, "--sub", "gus", "--beta");
    assert.equal((await through(unknown.mf, beta)).beta, true);
    await sleep(200);
    assert.ok(unknown.logs.some((l) => l.includes("answered 404 (FLAG_NOT_FOUND)")), unknown.logs.join("\n"));
  } finally {
    await unknown.mf.dispose();
  }
});

test("the kill switch and deny still win over the flag service", async () => {
  ofrep.state.mode = "ok";
  const { mf } = await worker({ ROLLOUT_POLICY: JSON.stringify({ deny: ["ann"] }) });
  try {
    assert.equal((await decision(mf, mint(keys.keys.HS256.priv, "--sub", "ann"))).reason, "denied");
  } finally {
    await mf.dispose();
  }
  const off = await worker({ ROLLOUT_POLICY: JSON.stringify({ beta: "off" }) });
  try {
    assert.equal((await decision(off.mf, mint(keys.keys.HS256.priv, "--sub", "ann"))).reason, "kill_switch");
  } finally {
    await off.mf.dispose();
  }
});
