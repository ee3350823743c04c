// One corpus of tokens, every algorithm, valid and tampered, through both verification paths:
// the native CLI (pure-Rust jwt-compact) and the built worker in workerd (WebCrypto for RSA, ECDSA
// and EdDSA). The verdicts must be identical, reason for reason.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ALGS, cli, generateKeys, mint, startOrigin, startWorker } from "./helpers.mjs";

// P-256 group order, for the high-S twin of an ECDSA signature.
const P256_N = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

const b64 = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
const parts = (t) => t.split(".");
const withSig = (t, sig) => `${parts(t)[0]}.${parts(t)[1]}.${Buffer.from(sig).toString("base64url")}`;
const sigOf = (t) => Buffer.from(parts(t)[2], "base64url");

function corpus(keys, impostor) {
  const out = [];
  for (const alg of ALGS) {
    const k = keys.keys[alg];
    const beta = mint(k.priv, "--beta");
    const add = (name, token) => out.push({ name: `${alg} ${name}`, token });
    add("valid beta", beta);
    add("valid regular", mint(k.priv));
    add("valid, beta claim \"false\"", mint(k.priv, "--claim", "beta=\"false\""));
    add("expired", mint(k.priv, "--beta", "--exp", "-1h"));
    add("not yet valid", mint(k.priv, "--beta", "--nbf", "2h"));
    add("no kid", mint(k.priv, "--beta", "--kid", ""));
    add("tampered payload", `${parts(beta)[0]}.${b64({ sub: "eve", beta: true, exp: 9e9 })}.${parts(beta)[2]}`);
    for (const at of [0, 5, -1]) {
      const s = sigOf(beta);
      s[(s.length + at) % s.length] ^= 0x40;
      add(`signature bit flipped at ${at}`, withSig(beta, s));
    }
    add("signature truncated", withSig(beta, sigOf(beta).subarray(0, sigOf(beta).length - 1)));
    add("signature empty", withSig(beta, Buffer.alloc(0)));
    add("signature doubled", withSig(beta, Buffer.concat([sigOf(beta), sigOf(beta)])));
    add("signed by another key under the same kid", mint(impostor.keys[alg].priv, "--beta"));
    const h = JSON.parse(Buffer.from(parts(beta)[0], "base64url"));
    add("header alg swapped", `${b64({ ...h, alg: alg === "RS256" ? "PS256" : "RS256" })}.${parts(beta)[1]}.${parts(beta)[2]}`);
    if (alg === "ES256") {
      const s = sigOf(beta);
      const r = s.subarray(0, 32);
      const sv = BigInt("0x" + s.subarray(32).toString("hex"));
      const high = Buffer.from((P256_N - sv).toString(16).padStart(64, "0"), "hex");
      add("high-S twin of a valid signature", withSig(beta, Buffer.concat([r, high])));
      add("zero signature", withSig(beta, Buffer.alloc(64)));
    }
  }
  out.push({ name: "alg none", token: `${b64({ alg: "none" })}.${b64({ beta: true, exp: 9e9 })}.` });
  out.push({ name: "crit header", token: `${b64({ alg: "HS256", crit: ["exp"] })}.${b64({ beta: true, exp: 9e9 })}.AAAA` });
  return out;
}

let origin, mf, keys, impostor;
before(async () => {
  keys = generateKeys();
  impostor = generateKeys(ALGS, "k"); // same kids, different keys
  origin = await startOrigin();
  mf = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(keys.jwks) });
});
after(async () => {
  await mf?.dispose();
  await origin?.close();
});

function nativeVerdict(token) {
  const r = cli(["token", "verify", "--keys", keys.combinedPath, token], { allowFail: true });
  assert.ok(r.code === 0 || r.code === 1, `verify exit ${r.code}: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.equal(out.valid, r.code === 0);
  if (out.valid) return Object.keys(out.inject).length ? "beta_claim" : "no_beta_claim";
  return out.error.split(":")[0];
}

async function edgeVerdict(token) {
  const res = await mf.dispatchFetch("https://api.example.com/_betaroute/api/decision", {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).reason;
}

test("native and WebCrypto paths agree on every token of the corpus", async () => {
  const rows = corpus(keys, impostor);
  const mismatches = [];
  const counts = {};
  for (const { name, token } of rows) {
    const [n, e] = [nativeVerdict(token), await edgeVerdict(token)];
    counts[n] = (counts[n] ?? 0) + 1;
    if (n !== e) mismatches.push(`${name}: native ${n}, edge ${e}`);
  }
  assert.deepEqual(mismatches, []);
  // The corpus must exercise both outcomes on every algorithm, not agree on trivia.
  // Every algorithm's "valid beta" and "no kid" tokens, plus the ECDSA high-S twin (see below).
  assert.equal(counts.beta_claim, ALGS.length * 2 + 1, JSON.stringify(counts));
  assert.ok(counts.bad_signature >= ALGS.length * 7, JSON.stringify(counts));
  console.log(`parity: ${rows.length} tokens, verdicts ${JSON.stringify(counts)}`);
});

test("expected verdicts for the attacks", async () => {
  for (const { name, token } of corpus(keys, impostor)) {
    const v = await edgeVerdict(token);
    // A high-S ECDSA signature is valid for JWS (RFC 7518 3.4 does not require low S; Wycheproof's
    // P-256 vectors count it valid). Both paths accept it: tokens are not replay-unique anyway.
    if (/valid beta$|no kid$|high-S/.test(name)) assert.equal(v, "beta_claim", name);
    else if (/tampered|flipped|truncated|empty|doubled|another key|zero signature/.test(name)) assert.equal(v, "bad_signature", name);
    else if (name === "alg none") assert.equal(v, "unsupported_alg");
    else if (name === "crit header") assert.equal(v, "malformed");
  }
});

// RFC 8017 8.2.2 step 1 / RSAVP1 step 1: a signature whose integer value is not below the modulus
// is invalid, even when it is a valid signature plus n (the same value modulo n). Node signs with a
// key whose modulus leaves room for s + n in the same number of bytes, so the forged value keeps
// the modulus's length and only the range check can refuse it.
test("an RSA signature plus the modulus is refused on both paths (RS256 and PS256)", async () => {
  const { generateKeyPairSync, createSign, constants } = await import("node:crypto");
  const { writeFileSync, mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  let pair, n;
  do {
    pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    n = BigInt("0x" + Buffer.from(pair.publicKey.export({ format: "jwk" }).n, "base64url").toString("hex"));
  } while (n >= (3n << 2046n)); // below 0.75 * 2^2048: s + n fits in 256 bytes for a third of s or more
  const jwks = { keys: ["RS256", "PS256"].map((alg) => ({ ...pair.publicKey.export({ format: "jwk" }), alg, kid: alg, use: "sig" })) };
  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-rsa-"));
  const keysPath = path.join(dir, "jwks.json");
  writeFileSync(keysPath, JSON.stringify(jwks));
  const worker = await startWorker({ ORIGIN_URL: origin.url, JWT_KEYS: JSON.stringify(jwks) });
  try {
    for (const alg of ["RS256", "PS256"]) {
      let checked = 0;
      for (let i = 0; checked < 3 && i < 200; i++) {
        const input = `${b64({ alg, kid: alg, typ: "JWT" })}.${b64({ sub: `u${i}`, beta: true, exp: 9e9 })}`;
        const opts = alg === "PS256"
          ? { key: pair.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
          : pair.privateKey;
        const s = BigInt("0x" + createSign("sha256").update(input).sign(opts).toString("hex"));
        const forged = (s + n).toString(16).padStart(512, "0");
        if (forged.length !== 512) continue; // s + n needs a 257th byte: try another signature
        const valid = `${input}.${Buffer.from(s.toString(16).padStart(512, "0"), "hex").toString("base64url")}`;
        const token = `${input}.${Buffer.from(forged, "hex").toString("base64url")}`;
        const verdicts = async (t) => {
          const r = cli(["token", "verify", "--keys", keysPath, t], { allowFail: true });
          const native = JSON.parse(r.stdout);
          const res = await worker.dispatchFetch("https://api.example.com/_betaroute/api/decision", {
            headers: { authorization: `Bearer ${t}` },
          });
          return [native.valid ? "beta_claim" : native.error.split(":")[0], (await res.json()).reason];
        };
        assert.deepEqual(await verdicts(valid), ["beta_claim", "beta_claim"], `${alg} valid signature`);
        assert.deepEqual(await verdicts(token), ["bad_signature", "bad_signature"], `${alg} signature + n`);
        checked++;
      }
      assert.equal(checked, 3, `${alg}: three signatures checked`);
    }
  } finally {
    await worker.dispose();
  }
});
