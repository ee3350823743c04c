// Signed routing decisions across the real pieces: the built worker in workerd signs, the router
// verifies. A forged header sent straight to the router lands on main; the same request through
// the edge lands on beta; rotating the edge's key causes no failed request.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { generateKeys, mint, startOrigin, startRouter, startWorker } from "./helpers.mjs";

const oct = (kid) => ({ kty: "oct", kid, k: randomBytes(32).toString("base64url") });
const ROUTING_KEYS = { keys: [oct("r1"), oct("r2")] };

let main, beta, router, keys;
const workers = [];
before(async () => {
  keys = generateKeys(["ES256"]);
  [main, beta] = [await startOrigin("main"), await startOrigin("beta")];
  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-rk-"));
  writeFileSync(path.join(dir, "routing-keys.json"), JSON.stringify(ROUTING_KEYS));
  router = await startRouter(
    `
http:
  routers:
    api-main: {rule: "Host(\`api.example.com\`)", service: main}
    api-beta: {rule: "Host(\`api.example.com\`) && Header(\`X-RiksTV-Beta\`, \`true\`)", service: beta}
  services:
    main: {loadBalancer: {servers: [{url: "${main.url}"}]}}
    beta: {loadBalancer: {servers: [{url: "${beta.url}"}]}}
`,
    `[entryPoints.web.routingHeaders]\nkeysFile = "${path.join(dir, "routing-keys.json")}"\n`,
  );
});
after(async () => {
  for (const w of workers) await w.dispose();
  router?.stop();
  await main?.close();
  await beta?.close();
});

async function edge(kid) {
  const mf = await startWorker({
    ORIGIN_URL: router.web,
    JWT_KEYS: JSON.stringify(keys.jwks),
    ROUTING_SIGNING_KEYS: JSON.stringify(ROUTING_KEYS),
    ROUTING_SIGNING_KID: kid,
  });
  workers.push(mf);
  return mf;
}

/** A request straight to the router with a real Host header (fetch would drop it). */
function direct(pathname, headers) {
  const u = new URL(router.web);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path: pathname, headers }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, json: async () => JSON.parse(body) }));
      })
      .on("error", reject);
  });
}

async function server(res) {
  assert.equal(res.status, 200);
  const body = await res.json();
  return { server: body.server, headers: Object.fromEntries(body.rawHeaders.reduce((a, v, i, arr) => (i % 2 ? a : [...a, [v.toLowerCase(), arr[i + 1]]]), [])) };
}

test("through the edge a beta token lands on beta; the signature stops at the router", async () => {
  const mf = await edge("r1");
  const got = await server(await mf.dispatchFetch("https://api.example.com/v1", { headers: { authorization: `Bearer ${mint(keys.keys.ES256.priv, "--beta")}` } }));
  assert.equal(got.server, "beta");
  assert.equal(got.headers["x-rikstv-beta"], "true");
  assert.equal(got.headers["x-betaroute-signature"], undefined);
  const regular = await server(await mf.dispatchFetch("https://api.example.com/v1", { headers: { authorization: `Bearer ${mint(keys.keys.ES256.priv)}` } }));
  assert.equal(regular.server, "main");
});

test("a forged header sent straight to the router lands on main", async () => {
  const got = await server(await direct("/v1", { host: "api.example.com", "x-rikstv-beta": "true" }));
  assert.equal(got.server, "main");
  assert.equal(got.headers["x-rikstv-beta"], undefined);
  // A client cannot forge a signature header through the edge either: the edge strips it.
  const mf = await edge("r1");
  const viaEdge = await server(await mf.dispatchFetch("https://api.example.com/v1", { headers: { "X-BetaRoute-Signature": "v1; kid=r1; t=1; h=x-rikstv-beta; mac=AAAA", "X-RiksTV-Beta": "true" } }));
  assert.equal(viaEdge.server, "main");
});

test("rotating the edge's signing key causes no failed request", async () => {
  const token = mint(keys.keys.ES256.priv, "--beta");
  const [old, next] = [await edge("r1"), await edge("r2")];
  const landed = [];
  for (let i = 0; i < 40; i++) {
    const mf = i < 20 ? old : next; // the deploy switches keys half way
    landed.push((await server(await mf.dispatchFetch(`https://api.example.com/r/${i}`, { headers: { authorization: `Bearer ${token}` } }))).server);
  }
  assert.deepEqual([...new Set(landed)], ["beta"]);
  const m = await (await fetch(`${router.admin}/metrics`)).text();
  assert.doesNotMatch(m, /betaroute_signature_rejected_total\{entrypoint="web",reason="(bad_mac|unknown_kid|expired)"\}/);
  assert.match(m, /betaroute_signature_rejected_total\{entrypoint="web",reason="missing"\} [1-9]/);
});
