// Drives the dashboard's quality panel in headless Chromium (Debian's, through playwright-core) against a
// running server. Usage: node quality.mjs <base url> <screenshot path>
// Prints one line of JSON: {"failures": [...], "drifting": [producers shown as drifting], ...}; exits non-zero
// when the panel differs from /api/quality or the page logs errors.
import { openPage } from "./page.mjs";

const [base, screenshot] = process.argv.slice(2);
const query = "hours=1&bucket=60";

const { browser, page, consoleErrors, outside } = await openPage(base);
const failures = [];
let result = {};
try {
  await page.goto(`${base}/api/dashboard/?ticker=AAPL&days=1&quality_hours=1&quality_bucket=60&poll=600000`);
  await page.waitForFunction(() => window.dashboardState && window.dashboardState.ready && window.dashboardState.quality, null, { timeout: 20000 });
  const shown = await page.evaluate(() => ({
    quality: window.dashboardState.quality,
    driftRows: [...document.querySelectorAll("#drift tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)),
    fieldRows: [...document.querySelectorAll("#dead-fields tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)),
    charts: document.querySelectorAll("#quality-chart canvas").length + document.querySelectorAll("#scores-chart canvas").length,
  }));
  const api = await (await fetch(`${base}/api/quality?${query}`)).json();
  if (shown.quality.points !== api.data.points.length) failures.push(`the panel plots ${shown.quality.points} buckets, the API has ${api.data.points.length}`);
  const expectedDrift = api.drift.distributions.map((d) => [d.source_system, d.firing]);
  const shownDrift = shown.driftRows.map((r) => [r[0], r[4] === "drifting"]);
  if (JSON.stringify(shownDrift) !== JSON.stringify(expectedDrift)) failures.push(`drift table ${JSON.stringify(shown.driftRows)} but the API says ${JSON.stringify(expectedDrift)}`);
  const expectedFields = Object.entries(api.data.dead_letters_by_field).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([f, n]) => [f, String(n)]);
  if (JSON.stringify(shown.fieldRows) !== JSON.stringify(expectedFields)) failures.push(`dead letters by field ${JSON.stringify(shown.fieldRows)}, API ${JSON.stringify(expectedFields)}`);
  if (shown.charts < 2) failures.push(`${shown.charts} quality charts drawn`);
  const top = await page.locator("#quality").boundingBox();
  const bottom = await page.locator("#dead-fields").boundingBox();
  const scores = await page.locator("#scores-chart").boundingBox();
  const end = Math.max(bottom.y + bottom.height, scores.y + scores.height);
  await page.screenshot({ path: screenshot, fullPage: true, clip: { x: 0, y: top.y - 8, width: 1280, height: end - top.y + 16 } });
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors.join(" | ")}`);
  if (outside.length) failures.push(`requests to other origins: ${outside.join(", ")}`);
  result = { drifting: shown.driftRows.filter((r) => r[4] === "drifting").map((r) => r[0]), drift: shown.driftRows, fields: shown.fieldRows };
} catch (e) {
  failures.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ failures, ...result }));
process.exit(failures.length ? 1 : 0);
