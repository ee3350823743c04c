// JWT_JWKS_URL in workerd against a real JWKS server on loopback.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import http from "node:http";
import { after, before, test } from "node:test";

import { betaHeaders, generateKeys, mint, startOrigin, startWorker } from "./helpers.mjs";

/** A JWKS endpoint whose answer the test controls; counts fetches. */
async function jwksServer() {
  const state = { body: "{}", mode: "ok", delayMs: 0, cacheControl: "max-age=600", fetches: 0 };
  const server = http.createServer((req, res) => {
    state.fetches++;
    const answer = () => {
      if (state.mode === "garbage") return res.end("{this is not json");
      if (state.mode === "error") {
        res.writeHead(500);
        return res.end("boom");
      }
      res.writeHead(200, { "content-type": "application/json", "cache-control": state.cacheControl });
      res.end(state.body);
    };
    if (state.delayMs) setTimeout(answer, state.delayMs);
    else answer();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    state,
    url: `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`,
    serve: (jwks) => (state.body = JSON.stringify(jwks)),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

let origin, a, b;
const cleanup = [];
before(async () => {
  origin = await startOrigin();
  [a, b] = [generateKeys(["ES256", "RS256"], "a"), generateKeys(["ES256"], "b")];
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await origin?.close();
});

async function setup(vars = {}) {
  const jwks = await jwksServer();
  cleanup.push(jwks.close);
  const mf = await startWorker({ ORIGIN_URL: origin.url, JWT_JWKS_URL: jwks.url, ...vars });
  cleanup.push(() => mf.dispose());
  return { jwks, mf };
}

async function decision(mf, token) {
  const res = await mf.dispatchFetch("https://api.example.com/_betaroute/api/decision", { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return (await res.json()).reason;
}

async function beta(mf, token) {
  const res = await mf.dispatchFetch("https://api.example.com/x", { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  return betaHeaders(origin.last().rawHeaders).length === 1;
}

test("keys come from the JWKS URL; rotation to a new kid is picked up at once", async () => {
  const { jwks, mf } = await setup();
  jwks.serve(a.jwks);
  assert.equal(await beta(mf, mint(a.keys.ES256.priv, "--beta")), true);
  assert.equal(await beta(mf, mint(a.keys.RS256.priv, "--beta")), true, "RS256 through WebCrypto with a remote key");
  assert.equal(jwks.state.fetches, 1, "one fetch, then the cache");
  jwks.serve(b.jwks); // the auth service rotated: only key b-ES256 now
  assert.equal(await beta(mf, mint(b.keys.ES256.priv, "--beta")), true, "unknown kid triggers a refresh");
  assert.equal(jwks.state.fetches, 2);
  assert.equal(await decision(mf, mint(a.keys.ES256.priv, "--beta")), "unknown_kid", "the retired key is gone");
});

test("endpoint down or broken: the keys already held keep working", async () => {
  const { jwks, mf } = await setup({ JWKS_CACHE_MIN_SECONDS: "1", JWKS_CACHE_MAX_SECONDS: "1", JWKS_REFRESH_INTERVAL_SECONDS: "0" });
  jwks.serve(a.jwks);
  const token = mint(a.keys.ES256.priv, "--beta");
  assert.equal(await beta(mf, token), true);
  for (const mode of ["error", "garbage"]) {
    jwks.state.mode = mode;
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s lifetime: a refresh is due
    const before = jwks.state.fetches;
    assert.equal(await beta(mf, token), true, `stale keys serve while the endpoint is ${mode}`);
    assert.ok(jwks.state.fetches > before, "a refresh was attempted");
  }
  await jwks.close();
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await beta(mf, token), true, "stale keys serve while the endpoint is down");
});

test("a slow endpoint is cut off by the timeout; the request still goes through", async () => {
  const { jwks, mf } = await setup({ JWKS_FETCH_TIMEOUT_MS: "300" });
  jwks.serve(a.jwks);
  jwks.state.delayMs = 4000;
  const started = Date.now();
  const res = await mf.dispatchFetch("https://api.example.com/slow", { headers: { authorization: `Bearer ${mint(a.keys.ES256.priv, "--beta")}` } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
  assert.deepEqual(betaHeaders(origin.last().rawHeaders), [], "no keys yet: main");
});

test("malformed JSON with no keys yet: main with config_error, then recovery", async () => {
  const { jwks, mf } = await setup({ JWKS_REFRESH_INTERVAL_SECONDS: "1" });
  jwks.state.mode = "garbage";
  const token = mint(a.keys.ES256.priv, "--beta");
  assert.equal(await decision(mf, token), "config_error");
  jwks.state.mode = "ok";
  jwks.serve(a.jwks);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await decision(mf, token), "beta_claim");
});

test("a flood of tokens with random kids causes at most one refresh per interval", async () => {
  // The first fetch, then a flood: the first unknown kid may refresh once; the other 49 may not.
  const { jwks, mf } = await setup({ JWKS_REFRESH_INTERVAL_SECONDS: "30" });
  jwks.serve(a.jwks);
  assert.equal(await beta(mf, mint(a.keys.ES256.priv, "--beta")), true);
  for (let i = 0; i < 50; i++) {
    assert.equal(await decision(mf, mint(b.keys.ES256.priv, "--beta", "--kid", randomUUID())), "unknown_kid");
  }
  assert.equal(jwks.state.fetches, 2, "one refresh for 50 unknown kids within 30 s");
});
