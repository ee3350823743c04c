// The built edge worker in workerd (Miniflare) in front of a real origin on loopback.
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { ALGS, betaHeaders, generateKeys, mint, startOrigin, startWorker } from "./helpers.mjs";

const HOST = "https://api.example.com";
let origin, mf, keys;

before(async () => {
  keys = generateKeys();
  origin = await startOrigin("main");
  mf = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks), TOKEN_COOKIE: "session" });
});
after(async () => {
  await mf?.dispose();
  await origin?.close();
});

/** Sends a request through the worker; returns the response and what the origin received. */
async function send(path = "/", init = {}) {
  const before = origin.seen.length;
  const res = await mf.dispatchFetch(HOST + path, init);
  const body = await res.arrayBuffer();
  assert.equal(origin.seen.length, before + 1, `the origin got the request for ${path}`);
  return { res, body: Buffer.from(body), got: origin.last() };
}

const bearer = (t) => ({ authorization: `Bearer ${t}` });
const beta = (token) => mint(keys.keys.ES256.priv, ...(token ?? ["--beta"]));

describe("routing header", () => {
  test("beta token: exactly one X-RiksTV-Beta: true at the origin", async () => {
    const { res, got } = await send("/", { headers: bearer(beta()) });
    assert.equal(res.status, 200);
    assert.deepEqual(betaHeaders(got.rawHeaders), ["true"]);
  });

  test("regular token: no header", async () => {
    const { got } = await send("/", { headers: bearer(mint(keys.keys.ES256.priv)) });
    assert.deepEqual(betaHeaders(got.rawHeaders), []);
  });

  test("no token, header forged in several letter cases and with underscores: none reaches the origin", async () => {
    const forged = ["X-RiksTV-Beta", "x-rikstv-beta", "X-RIKSTV-BETA", "x_rikstv_beta", "X_RiksTV-Beta"];
    for (const name of forged) {
      const { got } = await send("/", { headers: { [name]: "true" } });
      assert.deepEqual(betaHeaders(got.rawHeaders), [], name);
    }
    const { got } = await send("/", { headers: [["x-rikstv-beta", "true"], ["X_RIKSTV_BETA", "true"], ["x-rikstv_beta", "1"]] });
    assert.deepEqual(betaHeaders(got.rawHeaders), []);
  });

  test("forged header plus beta token: exactly one true", async () => {
    const { got } = await send("/", {
      headers: [["authorization", `Bearer ${beta()}`], ["x-rikstv-beta", "false"], ["X_RiksTV_Beta", "yes"]],
    });
    assert.deepEqual(betaHeaders(got.rawHeaders), ["true"]);
  });

  test("forged header plus regular token: none", async () => {
    const { got } = await send("/", { headers: { ...bearer(mint(keys.keys.ES256.priv)), "X-RiksTV-Beta": "true" } });
    assert.deepEqual(betaHeaders(got.rawHeaders), []);
  });
});

describe("rejected tokens go on as main, never an error", () => {
  const es = () => keys.keys.ES256;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const cases = {
    expired: () => mint(es().priv, "--beta", "--exp", "-2h"),
    "not yet valid": () => mint(es().priv, "--beta", "--nbf", "1h"),
    "missing exp": () => mint(es().priv, "--beta", "--no-exp"),
    "bad signature": () => {
      const t = beta().split(".");
      const sig = Buffer.from(t[2], "base64url");
      sig[10] ^= 1;
      return `${t[0]}.${t[1]}.${sig.toString("base64url")}`;
    },
    "tampered payload": () => {
      const t = mint(es().priv).split(".");
      return `${t[0]}.${b64({ sub: "dev", exp: 9e9, beta: true })}.${t[2]}`;
    },
    "alg none": () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ beta: true, exp: 9e9 })}.`,
    "HS256 signed with the RSA public key": () => {
      const jwk = keys.keys.RS256.jwks.keys[0];
      const input = `${b64({ alg: "HS256", kid: jwk.kid })}.${b64({ beta: true, exp: 9e9 })}`;
      return `${input}.${hmac(JSON.stringify(jwk), input)}`;
    },
    "HS256 keyed with the RSA modulus, no kid": () => {
      const jwk = keys.keys.RS256.jwks.keys[0];
      const input = `${b64({ alg: "HS256" })}.${b64({ beta: true, exp: 9e9 })}`;
      return `${input}.${hmac(Buffer.from(jwk.n, "base64url"), input)}`;
    },
    "unknown kid": () => mint(es().priv, "--beta", "--kid", "nobody"),
    "garbage": () => "not-a-jwt",
    "huge token": () => mint(es().priv, "--beta", "--claim", `pad=${"x".repeat(10000)}`),
  };
  for (const [name, make] of Object.entries(cases)) {
    test(name, async () => {
      const { res, got } = await send("/", { headers: { ...bearer(make()), "x-rikstv-beta": "true" } });
      assert.equal(res.status, 200);
      assert.deepEqual(betaHeaders(got.rawHeaders), [], name);
    });
  }
});

function hmac(secret, input) {
  return createHmac("sha256", secret).update(input).digest("base64url");
}

describe("issuer and audience", () => {
  let strict;
  before(async () => {
    strict = await startWorker({
      ORIGIN_URL: origin.url,
      JWT_KEYS: JSON.stringify(keys.jwks),
      JWT_ISSUER: "https://auth.example.com",
      JWT_AUDIENCE: "api",
    });
  });
  after(() => strict?.dispose());
  const through = async (token) => {
    await (await strict.dispatchFetch(HOST + "/", { headers: bearer(token) })).arrayBuffer();
    return betaHeaders(origin.last().rawHeaders);
  };
  const p = () => keys.keys.ES256.priv;
  test("right issuer and audience: beta", async () => {
    assert.deepEqual(await through(mint(p(), "--beta", "--iss", "https://auth.example.com", "--aud", "api")), ["true"]);
    assert.deepEqual(
      await through(mint(p(), "--beta", "--iss", "https://auth.example.com", "--claim", 'aud=["web","api"]')),
      ["true"],
    );
  });
  test("wrong issuer: main", async () => {
    assert.deepEqual(await through(mint(p(), "--beta", "--iss", "https://evil.example.com", "--aud", "api")), []);
  });
  test("wrong audience: main", async () => {
    assert.deepEqual(await through(mint(p(), "--beta", "--iss", "https://auth.example.com", "--aud", "web")), []);
  });
});

describe("every algorithm, several keys selected by kid", () => {
  for (const alg of ALGS) {
    test(alg, async () => {
      const k = keys.keys[alg];
      const { got } = await send("/", { headers: bearer(mint(k.priv, "--beta")) });
      assert.deepEqual(betaHeaders(got.rawHeaders), ["true"], `${alg} beta`);
      const regular = await send("/", { headers: bearer(mint(k.priv)) });
      assert.deepEqual(betaHeaders(regular.got.rawHeaders), [], `${alg} regular`);
      // The same token claiming another key's kid must fail.
      const other = alg === "ES256" ? keys.keys.EdDSA.kid : keys.keys.ES256.kid;
      const wrong = await send("/", { headers: bearer(mint(k.priv, "--beta", "--kid", other)) });
      assert.deepEqual(betaHeaders(wrong.got.rawHeaders), [], `${alg} under kid ${other}`);
    });
  }
});

describe("token sources", () => {
  test("cookie token", async () => {
    const { got } = await send("/", { headers: { cookie: `theme=dark; session=${beta()}; x=1` } });
    assert.deepEqual(betaHeaders(got.rawHeaders), ["true"]);
  });
  test("a cookie with another name is ignored", async () => {
    const { got } = await send("/", { headers: { cookie: `token=${beta()}` } });
    assert.deepEqual(betaHeaders(got.rawHeaders), []);
  });
  test("two Authorization credentials are not trusted", async () => {
    const { res, got } = await send("/", { headers: [["authorization", `Bearer ${beta()}`], ["authorization", `Bearer ${beta()}`]] });
    assert.equal(res.status, 200);
    assert.deepEqual(betaHeaders(got.rawHeaders), []);
  });
});

describe("forwarding", () => {
  test("1 MiB POST body arrives intact", async () => {
    const body = randomBytes(1024 * 1024);
    const { res, got } = await send("/upload", { method: "POST", body, headers: { "content-type": "application/octet-stream", ...bearer(beta()) } });
    assert.equal(res.status, 200);
    assert.equal(got.method, "POST");
    assert.equal(got.bodySize, body.length);
    assert.equal(got.bodySha256, createHash("sha256").update(body).digest("hex"));
    assert.deepEqual(betaHeaders(got.rawHeaders), ["true"]);
  });

  test("percent-encoded path and query arrive byte for byte", async () => {
    const p = "/a%2Fb/%E2%9C%93/sp%20ace?q=%20x%26y&list=a,b&empty=&%C3%A5=%F0%9F%90%88";
    const { got } = await send(p);
    assert.equal(got.url, p);
  });

  test("origin status 418 and its headers and body come back", async () => {
    const { res, body } = await send("/status/418");
    assert.equal(res.status, 418);
    assert.equal(res.headers.get("x-origin-custom"), "teapot");
    assert.equal(res.headers.get("set-cookie"), "a=1");
    assert.equal(body.toString(), "short and stout\n");
  });

  test("redirects are passed back, not followed", async () => {
    const { res } = await send("/redirect", { redirect: "manual" });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/elsewhere");
  });

  test("client-sent X-Forwarded-Host and -Proto are overwritten, not passed on", async () => {
    const { got } = await send("/", { headers: { "X-Forwarded-Host": "evil.example.com", "X-Forwarded-Proto": "gopher" } });
    const values = (name) => got.rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1].toLowerCase() === name);
    assert.deepEqual(values("x-forwarded-host"), ["api.example.com"]);
    assert.deepEqual(values("x-forwarded-proto"), ["https"]);
  });

  test("methods and other headers are forwarded", async () => {
    const { got } = await send("/thing", { method: "PUT", body: "x", headers: { "x-custom": "kept", accept: "text/plain" } });
    assert.equal(got.method, "PUT");
    const h = Object.fromEntries(got.rawHeaders.reduce((a, v, i, arr) => (i % 2 ? a : [...a, [v.toLowerCase(), arr[i + 1]]]), []));
    assert.equal(h["x-custom"], "kept");
    assert.equal(h["x-forwarded-host"], "api.example.com");
    assert.equal(h["x-forwarded-proto"], "https");
  });
});

describe("broken configuration never breaks traffic", () => {
  for (const [name, JWT_KEYS] of [
    ["malformed JWT_KEYS", "{not json"],
    ["JWT_KEYS with only unusable keys", JSON.stringify({ keys: [{ kty: "oct", k: "c2hvcnQ" }] })],
  ]) {
    test(name, async () => {
      const broken = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS });
      try {
        const res = await broken.dispatchFetch(HOST + "/x", { headers: { ...bearer(beta()), "x-rikstv-beta": "true" } });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        assert.equal(origin.last().url, "/x");
        assert.deepEqual(betaHeaders(origin.last().rawHeaders), []);
        const d = await (await broken.dispatchFetch(HOST + "/_betaroute/api/decision", { headers: bearer(beta()) })).json();
        assert.equal(d.reason, "config_error");
        assert.ok(d.config_problems.length > 0);
      } finally {
        await broken.dispose();
      }
    });
  }

  test("JWT_KEYS unset", async () => {
    const none = await startWorker({ ORIGIN_URL: origin.url });
    try {
      const res = await none.dispatchFetch(HOST + "/y", { headers: bearer(beta()) });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.deepEqual(betaHeaders(origin.last().rawHeaders), []);
    } finally {
      await none.dispose();
    }
  });

  test("origin down: 502, not a crash", async () => {
    const dead = await startOrigin("dead");
    const url = dead.url;
    await dead.close();
    const w = await startWorker({ ORIGIN_URL: url, JWT_KEYS: JSON.stringify(keys.jwks) });
    try {
      const res = await w.dispatchFetch(HOST + "/", { headers: bearer(beta()) });
      assert.equal(res.status, 502);
      await res.arrayBuffer();
    } finally {
      await w.dispose();
    }
  });
});

describe("reserved prefix", () => {
  test("the decision endpoint explains the verdict and never echoes the token", async () => {
    const token = beta();
    const res = await mf.dispatchFetch(HOST + "/_betaroute/api/decision", { headers: bearer(token) });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(!text.includes(token.split(".")[2]));
    const d = JSON.parse(text);
    assert.equal(d.cohort, "beta");
    assert.equal(d.reason, "beta_claim");
    assert.equal(d.alg, "ES256");
    assert.equal(d.kid, keys.keys.ES256.kid);
  });

  test("the page is served under the prefix only; the same path elsewhere reaches the origin", async () => {
    const before = origin.seen.length;
    const page = await mf.dispatchFetch(HOST + "/_betaroute/");
    assert.equal(page.status, 200);
    assert.match(await page.text(), /betaroute is routing this host/);
    assert.equal(origin.seen.length, before, "betaroute's own page never reaches the origin");
    const { got } = await send("/index.html");
    assert.equal(got.url, "/index.html");
    const root = await send("/");
    assert.equal(root.got.url, "/");
  });
});
