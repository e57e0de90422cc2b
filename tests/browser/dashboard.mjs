// Drives the dashboard in headless Chromium (Debian's, through playwright-core) against a running server.
// Usage: node dashboard.mjs <base url> <screenshot path>
// Protocol with the Rust test: prints {"phase":"shown",...} once the page has drawn, then waits for a line on
// stdin (the test stages more rows meanwhile, not committed), waits for the page to show them, and prints
// {"phase":"done",...}. Exits non-zero when the plotted values differ from the API's.
import { createInterface } from "node:readline";
import { openPage } from "./page.mjs";

const [base, screenshot] = process.argv.slice(2);
const query = "ticker=AAPL&interval=hour&days=3";

const { browser, page, consoleErrors, outside } = await openPage(base);
const failures = [];
try {
  await page.goto(`${base}/api/dashboard/?${query}&poll=300`);
  await page.waitForFunction(() => window.dashboardState && window.dashboardState.ready, null, { timeout: 20000 });

  async function compare(label) {
    const shown = await page.evaluate(() => ({ snapshotId: window.dashboardState.snapshotId, series: window.dashboardState.series, text: document.getElementById("snapshot").textContent }));
    const api = await (await fetch(`${base}/api/sentiment/timeseries?${query}`)).text();
    const apiSnapshot = /"snapshot_id":(-?\d+)/.exec(api)[1];
    const points = JSON.parse(api).data;
    const expected = { bucket_start: points.map((p) => p.bucket_start), average_score: points.map((p) => p.average_score), message_count: points.map((p) => p.message_count) };
    if (JSON.stringify(shown.series) !== JSON.stringify(expected)) failures.push(`${label}: plotted ${JSON.stringify(shown.series)} but the API says ${JSON.stringify(expected)}`);
    if (shown.snapshotId !== apiSnapshot) failures.push(`${label}: the page shows snapshot ${shown.snapshotId}, the API ${apiSnapshot}`);
    if (!shown.text.includes(apiSnapshot)) failures.push(`${label}: the snapshot line "${shown.text}" does not name ${apiSnapshot}`);
    return { snapshot: shown.snapshotId, points: points.length, messages: expected.message_count.reduce((a, b) => a + b, 0) };
  }

  const before = await compare("first load");
  const drawn = await page.locator("#chart canvas").count();
  if (drawn === 0) failures.push("no chart canvas");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ phase: "shown", ...before }));

  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once("line", resolve));
  const beforeKey = await page.evaluate(() => window.dashboardState.dataKey);
  await page.waitForFunction((old) => window.dashboardState.dataKey !== old, beforeKey, { timeout: 20000 });
  await page.waitForFunction((old) => window.dashboardState.loads >= 2, null, { timeout: 20000 });
  const after = await compare("after staging");
  const line = await page.evaluate(() => document.getElementById("snapshot").textContent);
  if (!line.includes("staged events not yet committed")) failures.push(`the snapshot line does not mention the staged events: ${line}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-after.png"), fullPage: true });
  // A phone: the layout folds to one column and nothing overflows sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => {
    const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest("section"));
    return { by: document.documentElement.scrollWidth - window.innerWidth, elements: wide.slice(0, 5).map((e) => e.tagName + (e.id ? "#" + e.id : "")) };
  });
  if (overflow.by > 1) failures.push(`on a 390 px screen the page is ${overflow.by} px too wide (${overflow.elements.join(", ")})`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: false });
  // A past snapshot on request: the page reads every panel at it.
  await page.selectOption("#as_of", before.snapshot);
  await page.waitForFunction((old) => window.dashboardState.snapshotId === old && window.dashboardState.loads >= 3, before.snapshot, { timeout: 20000 });
  const past = await page.evaluate(() => ({ series: window.dashboardState.series, text: document.getElementById("snapshot").textContent }));
  const pastApi = JSON.parse(await (await fetch(`${base}/api/sentiment/timeseries?${query}&as_of=${before.snapshot}`)).text()).data;
  if (JSON.stringify(past.series.message_count) !== JSON.stringify(pastApi.map((p) => p.message_count))) failures.push("the past snapshot's plot differs from the API's answer at it");
  if (!past.text.includes("a past snapshot")) failures.push(`the snapshot line does not say it is past: ${past.text}`);
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors.join(" | ")}`);
  if (outside.length) failures.push(`requests to other origins: ${outside.join(", ")}`);
  console.log(JSON.stringify({ phase: "done", before, after, past: past.series.message_count.reduce((a, b) => a + b, 0), failures }));
} finally {
  await browser.close();
}
process.exit(failures.length ? 1 : 0);
