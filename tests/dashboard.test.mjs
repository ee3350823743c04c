// The router dashboard in a real browser: Debian's chromium driven by playwright-core opens
// /dashboard on the admin address of the real router while real traffic flows through two
// comparisons' routers, and finds the verdict, both latency distributions, the history and the
// kill-switch state, with no console error.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { startOrigin, startRouter } from "./helpers.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
let main, beta, router;
before(async () => {
  [main, beta] = [await startOrigin("main"), await startOrigin("beta")];
  router = await startRouter(`
http:
  routers:
    api-main: {rule: "Host(\`api.example.com\`)", service: main}
    api-beta: {rule: "Host(\`api.example.com\`) && Header(\`X-RiksTV-Beta\`, \`true\`)", service: beta}
  services:
    main: {loadBalancer: {servers: [{url: "${main.url}"}]}}
    beta: {loadBalancer: {servers: [{url: "${beta.url}"}]}}
  comparisons:
    api:
      beta: api-beta
      interval: 500ms
      window: 5s
      minSamples: 50
`);
});
after(async () => {
  router?.stop();
  await main?.close();
  await beta?.close();
});

test("the dashboard shows the verdict, both distributions and the history", { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const send = (isBeta) =>
    fetch(`${router.web}/v1/items`, { headers: { "x-forwarded-host": "api.example.com", ...(isBeta ? { "x-rikstv-beta": "true" } : {}) } }).then((r) => r.arrayBuffer());
  for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 10 }, (_, j) => send(j % 2 === 0)));
  await new Promise((r) => setTimeout(r, 1200));

  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${router.admin}/dashboard`);
    await page.waitForSelector("section.cmp[data-name='api@file'] .verdict", { timeout: 10000 });
    const verdict = await page.textContent("section.cmp h2 .verdict");
    assert.match(verdict, /^(pass|marginal|fail|inconclusive)$/);
    assert.equal(verdict, "pass", "identical fast backends");
    assert.equal(await page.locator("polyline.dist-beta").count(), 1);
    assert.equal(await page.locator("polyline.dist-baseline").count(), 1);
    const points = await page.getAttribute("polyline.dist-beta", "points");
    assert.ok(points.split(" ").length >= 10, points);
    assert.ok((await page.locator("section.cmp tbody tr").count()) >= 1, "verdict history");
    assert.equal(await page.locator("polyline.errors-beta").count(), 1, "5xx rates over time");
    assert.equal(await page.textContent("#switch"), "on");
    assert.match(await page.textContent("section.cmp p.muted"), /against api-main@file \(the main router of beta's rule\)/);
    const dir = mkdtempSync(path.join(tmpdir(), "betaroute-dashboard-"));
    const shot = path.join(dir, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10000, "screenshot");
    console.log(`# dashboard screenshot: ${shot}`);
    assert.deepEqual(problems, [], "console errors");
  } finally {
    await browser.close();
  }
});
