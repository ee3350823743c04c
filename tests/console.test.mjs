// The edge's tester console at /_betaroute/ in a real browser: Debian's chromium driven by
// playwright-core opens the built worker in workerd (served on a real port), in front of the real
// router (with its opt-in X-BetaRoute-Served-By header) and a main and a beta backend. A pasted
// beta token says "beta, and why" and is never shown again; the compare panel's requests as the
// tester land on beta, the anonymous ones on main; the configured cookie works the same way.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { generateKeys, mint, startOrigin, startRouter, startWorker } from "./helpers.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const HOST = "api.example.com";
let main, beta, router, mf, keys, base, browser;

before(async () => {
  keys = generateKeys(["ES256"]);
  [main, beta] = [await startOrigin("main"), await startOrigin("beta")];
  router = await startRouter(
    `
http:
  routers:
    api-main: {rule: "Host(\`${HOST}\`)", service: main}
    api-beta: {rule: "Host(\`${HOST}\`) && Header(\`X-RiksTV-Beta\`, \`true\`)", service: beta}
  services:
    main: {loadBalancer: {servers: [{url: "${main.url}"}]}}
    beta: {loadBalancer: {servers: [{url: "${beta.url}"}]}}
`,
    '[cohort]\nservedByHeader = "X-BetaRoute-Served-By"',
  );
  mf = await startWorker(
    { ORIGIN_URL: router.web, JWT_KEYS: JSON.stringify(keys.jwks), CONSOLE_PATH: "/v1/items", TOKEN_COOKIE: "session" },
    { host: "127.0.0.1", port: 0 },
  );
  // The browser reaches the worker's port under the API's own name.
  base = `http://${HOST}:${(await mf.ready).port}`;
});
after(async () => {
  await browser?.close();
  await mf?.dispose();
  router?.stop();
  await main?.close();
  await beta?.close();
});

async function open(context) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${base}/_betaroute/`);
  await page.waitForFunction(() => !/checking/.test(document.getElementById("verdict").textContent));
  return { page, problems };
}

async function compare(page, n) {
  await page.fill("#count", String(n));
  await page.click("#run");
  await page.waitForFunction((n) => document.getElementById("compare-state").textContent === `${n} requests each`, n, { timeout: 20000 });
  const cells = async (who) => page.locator(`#pools tr[data-who='${who}'] td`).allTextContents();
  return { you: await cells("you"), anon: await cells("anonymous") };
}

test("the decision API tells the console what it needs, and refuses a bad compare path by name", async () => {
  const d = await (await mf.dispatchFetch(`https://${HOST}/_betaroute/api/decision`)).json();
  assert.deepEqual(d.console, { compare_path: "/v1/items", served_by_header: "X-BetaRoute-Served-By", token_cookie: "session" });
  const bad = await startWorker({ ORIGIN_URL: router.web, JWT_KEYS: JSON.stringify(keys.jwks), CONSOLE_PATH: "/_betaroute/x" });
  try {
    const d = await (await bad.dispatchFetch(`https://${HOST}/_betaroute/api/decision`)).json();
    assert.equal(d.console.compare_path, null);
    assert.ok(d.config_problems.some((p) => p.startsWith('CONSOLE_PATH "/_betaroute/x" ignored')), JSON.stringify(d.config_problems));
  } finally {
    await bad.dispose();
  }
});

test("a pasted beta token: beta and why, never shown; its requests land on beta, anonymous ones on main", { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", `--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  const context = await browser.newContext();
  const { page, problems } = await open(context);
  assert.match(await page.textContent("#verdict"), /^main: /);
  assert.match(await page.textContent("#details"), /no_token/);

  const token = mint(keys.keys.ES256.priv, "--beta", "--sub", "tester-1");
  await page.fill("#token", token);
  await page.click("#use-token");
  await page.waitForFunction(() => /^beta: /.test(document.getElementById("verdict").textContent));
  const details = await page.textContent("#details");
  assert.match(details, /beta_claim/);
  assert.match(details, /claimbeta/, "which claim made it beta");
  assert.match(details, /ES256/);
  assert.equal(await page.inputValue("#token"), "", "the textarea is emptied");
  assert.ok(!(await page.content()).includes(token.split(".")[2]), "the token is not in the page");
  assert.match(await page.textContent("#rollout"), /beta claim alone decides/);

  const { you, anon } = await compare(page, 8);
  assert.equal(you[1], "8");
  assert.equal(you[2], "beta@file \u00d7 8", you.join(" | "));
  assert.equal(anon[2], "main@file \u00d7 8", anon.join(" | "));
  assert.equal(you[5], "0");
  assert.equal(await page.locator("#dist-you rect.dist-you").count(), 20);
  assert.equal(await page.locator("#dist-anon rect.dist-anon").count(), 20);
  const heights = await page.locator("#dist-you rect").evaluateAll((rs) => rs.map((r) => Number(r.getAttribute("height"))));
  assert.ok(heights.some((h) => h > 0), "a distribution is drawn");
  // The backends saw the token's requests as beta only through the edge's own header.
  assert.equal(beta.seen.filter((r) => r.url === "/v1/items").length, 8);

  const dir = mkdtempSync(path.join(tmpdir(), "betaroute-console-"));
  const shot = path.join(dir, "console.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 10000, "screenshot");
  console.log(`# console screenshot: ${shot}`);

  // Forgotten: main again.
  await page.click("#forget-token");
  await page.waitForFunction(() => /^main: /.test(document.getElementById("verdict").textContent));
  assert.deepEqual(problems, [], "console errors");
  await context.close();
});

test("the configured cookie works without pasting; a forged cookie is main", { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const { chromium } = await import("playwright-core");
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", `--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  const token = mint(keys.keys.ES256.priv, "--beta", "--sub", "tester-2");
  const context = await browser.newContext();
  await context.addCookies([{ name: "session", value: token, url: base }]);
  const { page, problems } = await open(context);
  assert.match(await page.textContent("#verdict"), /^beta: /);
  assert.match(await page.textContent("#details"), /cookie session/);
  const { you, anon } = await compare(page, 4);
  assert.equal(you[2], "beta@file \u00d7 4");
  assert.equal(anon[2], "main@file \u00d7 4", "the anonymous requests carry no cookie");
  assert.deepEqual(problems, []);
  await context.close();

  const forged = await browser.newContext();
  await forged.addCookies([{ name: "session", value: token.slice(0, -4) + "AAAA", url: base }]);
  const f = await open(forged);
  assert.match(await f.page.textContent("#verdict"), /^main: /);
  assert.match(await f.page.textContent("#details"), /bad_signature|malformed/);
  await forged.close();
});
