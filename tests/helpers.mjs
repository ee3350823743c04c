// Shared fixtures for the edge tests: a real origin server on loopback, the real native CLI for
// keys and tokens, and the built worker loaded into workerd through Miniflare.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CLI = process.env.BETAROUTE_BIN ?? path.join(ROOT, "target", "debug", "betaroute");
export const ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"];

if (!existsSync(path.join(ROOT, "build", "index.js"))) {
  throw new Error("build/index.js is missing: run scripts/build-worker.sh (scripts/test.sh does)");
}
if (!existsSync(CLI)) {
  throw new Error(`${CLI} is missing: run cargo build -p betaroute-router (scripts/test.sh does)`);
}

export function cli(args, { allowFail = false } = {}) {
  try {
    return { code: 0, stdout: execFileSync(CLI, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (e) {
    if (!allowFail) throw new Error(`betaroute ${args.join(" ")} failed (${e.status}): ${e.stderr}`);
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Generates one key per algorithm; returns { dir, keys: {ALG: {priv, jwks, kid}}, jwks: combined }. */
export function generateKeys(algs = ALGS, prefix = "k") {
  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-keys-"));
  const keys = {};
  const all = [];
  for (const alg of algs) {
    const kid = `${prefix}-${alg}`;
    const priv = path.join(dir, `${kid}.private.json`);
    const pub = path.join(dir, `${kid}.jwks.json`);
    cli(["keys", "generate", "--alg", alg, "--kid", kid, "--private", priv, "--public", pub]);
    const jwks = JSON.parse(readFileSync(pub, "utf8"));
    keys[alg] = { priv, pub, kid, jwks };
    all.push(...jwks.keys);
  }
  const combined = path.join(dir, "all.jwks.json");
  writeFileSync(combined, JSON.stringify({ keys: all }));
  return { dir, keys, jwks: { keys: all }, combinedPath: combined };
}

export function mint(privPath, ...args) {
  return cli(["token", "mint", "--key", privPath, ...args]).stdout.trim();
}

export function sha256(buf) {
  return createHash("sha256").update(buf).digest("hex");
}

/**
 * A real HTTP origin on 127.0.0.1: records each request (method, raw URL, raw headers, body hash)
 * and answers JSON naming itself. `/status/418` answers 418 with custom headers.
 */
export async function startOrigin(name = "origin") {
  const seen = [];
  const server = http.createServer((req, res) => {
    const hash = createHash("sha256");
    let size = 0;
    req.on("data", (c) => {
      hash.update(c);
      size += c.length;
    });
    req.on("end", () => {
      const record = { method: req.method, url: req.url, rawHeaders: req.rawHeaders, bodySha256: hash.digest("hex"), bodySize: size };
      seen.push(record);
      if (req.url.startsWith("/status/418")) {
        res.writeHead(418, { "content-type": "text/plain", "x-origin-custom": "teapot", "set-cookie": "a=1" });
        res.end("short and stout\n");
        return;
      }
      if (req.url.startsWith("/redirect")) {
        res.writeHead(302, { location: "/elsewhere" });
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "x-served-by": name });
      res.end(JSON.stringify({ server: name, ...record }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    last: () => seen[seen.length - 1],
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

/** Values of every header whose name is a variant of X-RiksTV-Beta (case, `_` for `-`). */
export function betaHeaders(rawHeaders, name = "x-rikstv-beta") {
  const want = name.toLowerCase().replace(/_/g, "-");
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase().replace(/_/g, "-") === want) out.push(rawHeaders[i + 1]);
  }
  return out;
}

/** The built worker in workerd, configured with the given bindings. */
export async function startWorker(bindings, extra = {}) {
  const { Miniflare } = await import("miniflare");
  // The edge takes a shorter path when it writes no request log: suites run both ways.
  if (process.env.BETAROUTE_TEST_LOG_REQUESTS) bindings = { LOG_REQUESTS: process.env.BETAROUTE_TEST_LOG_REQUESTS, ...bindings };
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    bindings,
    assets: {
      directory: path.join(ROOT, "www"),
      binding: "ASSETS",
      routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
    },
    ...extra,
  });
  await mf.ready;
  return mf;
}

/** Spawns a process and waits until its output matches `ready`; returns the child. */
export function spawnUntil(cmd, args, { ready, env, cwd = ROOT, timeoutMs = 60000 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (d) => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}:\n${out}`));
    });
  });
}

/**
 * Starts `betaroute serve` with the given dynamic configuration (YAML) behind an entry point
 * that trusts the local edge's X-Forwarded-* headers. Returns { web, admin, stop }.
 */
export async function startRouter(dynamicYaml, extraEntryPointToml = "") {
  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-router-"));
  writeFileSync(path.join(dir, "dynamic.yaml"), dynamicYaml);
  writeFileSync(
    path.join(dir, "betaroute.toml"),
    [
      "[entryPoints.web]",
      'address = "127.0.0.1:0"',
      "[entryPoints.web.forwardedHeaders]",
      'trustedIPs = ["127.0.0.1/32", "::1"]',
      "useForwardedHost = true",
      extraEntryPointToml,
      "[admin]",
      'address = "127.0.0.1:0"',
      "[providers.file]",
      'filename = "dynamic.yaml"',
      "",
    ].join("\n"),
  );
  const { child, output } = await spawnUntil(CLI, ["serve", "--config", path.join(dir, "betaroute.toml")], {
    ready: /"entrypoint":"admin"/,
    timeoutMs: 20000,
  });
  const addr = (ep) => output().match(new RegExp(`"entrypoint":"${ep}","address":"([^"]+)"`))[1];
  return {
    web: `http://${addr("web")}`,
    admin: `http://${addr("admin")}`,
    stop: () => { try { process.kill(-child.pid, "SIGKILL"); } catch {} },
  };
}
