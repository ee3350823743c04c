// Hostile input at the edge: whatever a client sends, the request goes on (never a 5xx, never a
// crash of the isolate) and never gets the routing header it did not earn.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import net from "node:net";
import { after, before, test } from "node:test";

import { betaHeaders, generateKeys, mint, startOrigin, startWorker } from "./helpers.mjs";

let origin, mf, keys;
before(async () => {
  keys = generateKeys(["HS256", "ES256"]);
  origin = await startOrigin();
  mf = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), TOKEN_COOKIE: "session" });
});
after(async () => {
  await mf?.dispose();
  await origin?.close();
});

const b64 = (s) => Buffer.from(s).toString("base64url");
/** An HS256 token with exactly this payload text, validly signed with the configured key. */
function hs256(payloadText) {
  const jwk = keys.keys.HS256.jwks.keys[0];
  const input = `${b64(JSON.stringify({ alg: "HS256", kid: jwk.kid }))}.${b64(payloadText)}`;
  return `${input}.${createHmac("sha256", Buffer.from(jwk.k, "base64url")).update(input).digest("base64url")}`;
}

async function through(init) {
  const before = origin.seen.length;
  const res = await mf.dispatchFetch("https://api.example.com/h", init);
  assert.equal(res.status, 200, `status ${res.status}`);
  await res.arrayBuffer();
  assert.equal(origin.seen.length, before + 1, "the request reached the origin");
  return betaHeaders(origin.last().rawHeaders);
}

test("deeply nested and very wide claims under a valid signature: main, no crash", async () => {
  const deep = `{"exp":9e9,"beta":true,"x":${"[".repeat(2500)}${"]".repeat(2500)}}`;
  assert.deepEqual(await through({ headers: { authorization: `Bearer ${hs256(deep)}` } }), []);
  const wide = `{"exp":9e9,"beta":true,${Array.from({ length: 300 }, (_, i) => `"k${i}":${i}`).join(",")}}`;
  assert.deepEqual(await through({ headers: { authorization: `Bearer ${hs256(wide)}` } }), ["true"], "a wide but valid payload is fine");
  // The isolate is still healthy.
  assert.deepEqual(await through({ headers: { authorization: `Bearer ${mint(keys.keys.ES256.priv, "--beta")}` } }), ["true"]);
});

test("a thousand cookies: the session cookie is still found, nothing breaks", async () => {
  // workerd (like Cloudflare) refuses oversized header sections itself with 431, before any worker
  // code runs; 1000 cookies stay under that limit.
  const huge = Array.from({ length: 3000 }, (_, i) => `c${i}=v${i}`).join("; ");
  const refused = await mf.dispatchFetch("https://api.example.com/h", { headers: { cookie: huge } });
  assert.equal(refused.status, 431);
  await refused.arrayBuffer();
  const many = Array.from({ length: 1000 }, (_, i) => `c${i}=v${i}`).join("; ");
  assert.deepEqual(await through({ headers: { cookie: `${many}; session=${mint(keys.keys.ES256.priv, "--beta")}` } }), ["true"]);
  assert.deepEqual(await through({ headers: { cookie: `${many}; session=garbage` } }), []);
});

test("many Authorization headers are not trusted", async () => {
  const token = mint(keys.keys.ES256.priv, "--beta");
  const headers = Array.from({ length: 50 }, () => ["authorization", `Bearer ${token}`]);
  assert.deepEqual(await through({ headers }), []);
});

test("non-UTF-8 bytes in headers over a raw socket: forwarded, no routing header", async () => {
  const url = new URL(await mf.ready);
  const token = mint(keys.keys.ES256.priv, "--beta");
  const raw = Buffer.concat([
    Buffer.from(`GET /raw HTTP/1.1\r\nHost: api.example.com\r\nX-Junk: `),
    Buffer.from([0xff, 0xfe, 0x80, 0xc3]),
    Buffer.from(`\r\nAuthorization: Bearer ${token.slice(0, 20)}`),
    Buffer.from([0xff]),
    Buffer.from(`${token.slice(20)}\r\nX-RiksTV-Beta: true\r\nConnection: close\r\n\r\n`),
  ]);
  const answer = await new Promise((resolve, reject) => {
    const s = net.connect(Number(url.port), url.hostname, () => s.write(raw));
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
  const status = Number(answer.split(" ")[1]);
  assert.ok(status < 500, answer.split("\r\n")[0]);
  if (status === 200) assert.deepEqual(betaHeaders(origin.last().rawHeaders), []);
});
