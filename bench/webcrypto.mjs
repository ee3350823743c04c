// WebCrypto verification per algorithm, for comparison with betaroute's own (native and wasm)
// verification: the edge hands RSA, ECDSA and EdDSA to WebCrypto. Node's WebCrypto, as workerd's,
// runs natively (OpenSSL here, BoringSSL there). Prints `webcrypto ALG NS` lines.
// Usage: node bench/webcrypto.mjs VECTORS_DIR
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const params = {
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS384: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS512: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, { name: "RSASSA-PKCS1-v1_5" }],
  PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};
const b64 = (s) => Buffer.from(s, "base64url");
for (const [alg, [importAlg, verifyAlg]] of Object.entries(params)) {
  const file = path.join(dir, `${alg}.jwks.json`);
  if (!existsSync(file)) continue;
  const jwk = JSON.parse(readFileSync(file, "utf8")).keys[0];
  const token = readFileSync(path.join(dir, `${alg}.token`), "utf8").trim();
  const [h, p, s] = token.split(".");
  const key = await crypto.subtle.importKey("jwk", jwk, importAlg, false, ["verify"]);
  const data = Buffer.from(`${h}.${p}`), sig = b64(s);
  if (!(await crypto.subtle.verify(verifyAlg, key, sig, data))) throw new Error(`${alg}: the vector must verify`);
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    let n = 0;
    while (n < 5 || process.hrtime.bigint() - start < 100_000_000n) {
      await crypto.subtle.verify(verifyAlg, key, sig, data);
      n++;
    }
    rounds.push(Number(process.hrtime.bigint() - start) / n);
  }
  console.log(`webcrypto ${alg} ${Math.round(rounds.sort((a, b) => a - b)[2])}`);
}
