// The edge streams bodies both ways: it never waits for a whole body before passing it on.
// Each test sends a second chunk only after the other side has received the first; an edge that
// buffered the body would deadlock, and the test would time out.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { startWorker } from "./helpers.mjs";

let server, mf, onChunk, releaseResponse;
before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === "/upload") {
      const chunks = [];
      req.on("data", (c) => {
        chunks.push(c.toString());
        onChunk?.(c.toString());
      });
      req.on("end", () => res.end(JSON.stringify(chunks)));
      return;
    }
    // /download: first chunk now, second only once the test says the client has the first.
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("first;");
    releaseResponse = () => res.end("second");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  mf = await startWorker({ ORIGIN_URL: `http://127.0.0.1:${server.address().port}` });
});
after(async () => {
  await mf?.dispose();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const within = (ms, p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} not within ${ms} ms: the body was buffered`)), ms))]);

// Real HTTP over a socket to workerd: Miniflare's dispatchFetch buffers response bodies itself.
async function request(path, method = "GET") {
  const base = new URL(await mf.ready);
  return http.request({ host: base.hostname, port: base.port, path, method, headers: { host: "api.example.com" } });
}

test("request body: the origin receives the first chunk before the client sends the second", { timeout: 20000 }, async () => {
  const firstArrived = new Promise((r) => (onChunk = (c) => c.includes("one") && r()));
  const req = await request("/upload", "POST");
  const response = new Promise((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
  });
  req.write("one;");
  await within(8000, firstArrived, "first request chunk at the origin");
  req.end("two");
  const res = await response;
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).join(""), "one;two");
});

test("response body: the client receives the first chunk before the origin sends the second", { timeout: 20000 }, async () => {
  const req = await request("/download");
  const res = await within(8000, new Promise((r) => req.on("response", r).end()), "response headers");
  assert.equal(res.statusCode, 200);
  let got = "";
  await within(8000, new Promise((r) => res.on("data", function first(d) {
    got += d;
    if (got.includes("first;")) {
      res.off("data", first);
      r();
    }
  })), "first response chunk at the client");
  releaseResponse();
  for await (const d of res) got += d;
  assert.equal(got, "first;second");
});
