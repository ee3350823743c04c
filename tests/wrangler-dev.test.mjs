// Smoke test of the real `wrangler dev` on the real wrangler.toml (its [build] runs worker-build,
// its [assets] serves www/): what a user gets from `npx wrangler dev`.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { betaHeaders, generateKeys, mint, spawnUntil, startOrigin } from "./helpers.mjs";

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

let origin, dev, base, keys;
before(async () => {
  keys = generateKeys(["RS256", "HS256"]);
  origin = await startOrigin("main");
  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-dev-"));
  const envFile = path.join(dir, ".env");
  writeFileSync(envFile, `JWT_KEYS='${JSON.stringify(keys.jwks)}'\n`);
  const [port, inspector] = [await freePort(), await freePort()];
  base = `http://127.0.0.1:${port}`;
  const args = [
    "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector),
    "--show-interactive-dev-session=false", "--env-file", envFile, "--var", `ORIGIN_URL:${origin.url}`,
    "--persist-to", path.join(dir, "state"),
  ];
  // scripts/env.sh puts the pinned tools where wrangler's [build] command (worker-build) finds them.
  dev = await spawnUntil("bash", ["-c", `source scripts/env.sh && exec wrangler ${args.map((a) => `'${a}'`).join(" ")}`], {
    ready: /Ready on http/,
    timeoutMs: 240000,
  });
});
after(async () => {
  if (dev) {
    try { process.kill(-dev.child.pid, "SIGTERM"); } catch {}
  }
  await origin?.close();
});

test("wrangler dev: beta token gets the header, a forged header is removed, pages are served", async () => {
  const token = mint(keys.keys.RS256.priv, "--beta");
  let res = await fetch(`${base}/hello?x=1`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, dev.output());
  assert.equal((await res.json()).url, "/hello?x=1");
  assert.deepEqual(betaHeaders(origin.last().rawHeaders), ["true"]);

  res = await fetch(`${base}/hello`, { headers: { "X-RiksTV-Beta": "true", "x_rikstv_beta": "true" } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.deepEqual(betaHeaders(origin.last().rawHeaders), []);

  res = await fetch(`${base}/hello`, { headers: { authorization: `Bearer ${mint(keys.keys.HS256.priv)}` } });
  await res.arrayBuffer();
  assert.deepEqual(betaHeaders(origin.last().rawHeaders), []);

  const seen = origin.seen.length;
  res = await fetch(`${base}/_betaroute/`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /betaroute is routing this host/);
  const d = await (await fetch(`${base}/_betaroute/api/decision`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.equal(d.cohort, "beta");
  assert.equal(origin.seen.length, seen, "betaroute's own paths never reach the origin");
  assert.match(dev.output(), /"betaroute":"request"/, "one JSON log line per request");
});
