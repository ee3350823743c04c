// WebSocket through the whole product: a real client (npm's `ws`) to the built worker in
// workerd, which forwards the handshake with its routing decision to `betaroute serve`, which
// routes it to a main or a beta `ws` echo backend. A beta token's WebSocket lands on beta, a
// forged header is removed, messages flow both ways, close codes come back.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, test } from "node:test";

import { WebSocket, WebSocketServer } from "ws";

import { generateKeys, mint, startRouter, startWorker } from "./helpers.mjs";

/** A WebSocket echo backend that greets with its name and the beta header it was sent. */
async function startEcho(name) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  wss.on("connection", (ws, req) => {
    ws.send(`${name} beta=${req.headers["x-rikstv-beta"] ?? ""}`);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return { wss, url: `http://127.0.0.1:${wss.address().port}` };
}

let main, beta, router, mf, edge, keys;
before(async () => {
  keys = generateKeys(["ES256"]);
  [main, beta] = [await startEcho("main"), await startEcho("beta")];
  router = await startRouter(`
http:
  routers:
    live-main:
      rule: "Host(\`api.example.com\`)"
      service: main
    live-beta:
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
  edge = new URL(await mf.ready);
});
after(async () => {
  await mf?.dispose();
  router?.stop();
  main?.wss.close();
  beta?.wss.close();
});

/** Opens a WebSocket to the worker as a client of api.example.com; resolves with it and its greeting. */
async function open(headers = {}) {
  const ws = new WebSocket(`ws://${edge.host}/v1/live`, { headers: { host: "api.example.com", ...headers } });
  const greeting = await new Promise((resolve, reject) => {
    ws.once("message", (d) => resolve(d.toString()));
    ws.once("error", reject);
    ws.once("unexpected-response", (_, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
  });
  return { ws, greeting };
}

function next(ws) {
  return new Promise((resolve) => ws.once("message", (data, isBinary) => resolve({ data, isBinary })));
}

test("a beta token's WebSocket lands on beta, and messages flow both ways", async () => {
  const { ws, greeting } = await open({ authorization: `Bearer ${mint(keys.keys.ES256.priv, "--beta")}` });
  assert.equal(greeting, "beta beta=true");
  const big = Buffer.alloc(1 << 20, 7);
  ws.send(big);
  const echoed = await next(ws);
  assert.equal(echoed.isBinary, true);
  assert.ok(Buffer.from(echoed.data).equals(big), "1 MiB back intact");
  ws.send("hello");
  assert.equal((await next(ws)).data.toString(), "hello");
  ws.close(4001, "bye");
  const [code, reason] = await once(ws, "close");
  assert.equal(code, 4001);
  assert.equal(reason.toString(), "bye");
});

test("a regular token's WebSocket, or a forged header, lands on main", async () => {
  for (const headers of [
    { authorization: `Bearer ${mint(keys.keys.ES256.priv)}` },
    { "X-RiksTV-Beta": "true" },
  ]) {
    const { ws, greeting } = await open(headers);
    assert.equal(greeting, "main beta=", JSON.stringify(headers));
    ws.close();
    await once(ws, "close");
  }
});

test("the router counts the upgraded connections by cohort", async () => {
  const m = await (await fetch(`${router.admin}/metrics`)).text();
  assert.match(m, /betaroute_upgraded_connections_total\{router="live-beta@file",cohort="beta"\} [1-9]/);
  assert.match(m, /betaroute_upgraded_connections_total\{router="live-main@file",cohort="main"\} [1-9]/);
});
