// The whole product: the built worker in workerd in front of `betaroute serve` in front of a
// main and a beta backend. A beta token lands on beta; a regular token or a forged header on main.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { generateKeys, mint, startOrigin, startRouter, startWorker } from "./helpers.mjs";

let main, beta, router, mf, keys;
before(async () => {
  keys = generateKeys(["ES256", "RS256"]);
  [main, beta] = [await startOrigin("main"), await startOrigin("beta")];
  router = await startRouter(`
http:
  routers:
    api-main:
      rule: "Host(\`api.example.com\`)"
      service: main
    api-beta:
      rule: "Host(\`api.example.com\`) && Header(\`X-RiksTV-Beta\`, \`true\`)"
      service: beta
  services:
    main:
      loadBalancer:
        servers: [{url: "${main.url}"}]
    beta:
      loadBalancer:
        servers: [{url: "${beta.url}"}]
`);
  mf = await startWorker({ ORIGIN_URL: router.web, JWT_KEYS: JSON.stringify(keys.jwks) });
});
after(async () => {
  await mf?.dispose();
  router?.stop();
  await main?.close();
  await beta?.close();
});

async function through(headers) {
  const res = await mf.dispatchFetch("https://api.example.com/v1/items?page=2", { headers });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.url, "/v1/items?page=2");
  return body.server;
}

test("beta token lands on the beta backend", async () => {
  for (const alg of ["ES256", "RS256"]) {
    assert.equal(await through({ authorization: `Bearer ${mint(keys.keys[alg].priv, "--beta")}` }), "beta", alg);
  }
});

test("regular token lands on main", async () => {
  assert.equal(await through({ authorization: `Bearer ${mint(keys.keys.ES256.priv)}` }), "main");
});

test("a forged header, with or without a token, lands on main", async () => {
  assert.equal(await through({ "X-RiksTV-Beta": "true" }), "main");
  assert.equal(await through({ x_rikstv_beta: "true", authorization: `Bearer ${mint(keys.keys.ES256.priv)}` }), "main");
  assert.equal(await through({ "X-RiksTV-Beta": "true", authorization: `Bearer ${mint(keys.keys.ES256.priv, "--exp", "-1h", "--beta")}` }), "main");
});

test("the router's metrics count beta and main separately", async () => {
  const m = await (await fetch(`${router.admin}/metrics`)).text();
  assert.match(m, /betaroute_requests_total\{entrypoint="web",router="api-beta@file",service="beta@file",cohort="beta",code="2xx"\} [1-9]/);
  assert.match(m, /betaroute_requests_total\{entrypoint="web",router="api-main@file",service="main@file",cohort="main",code="2xx"\} [1-9]/);
});
