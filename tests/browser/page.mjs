// Headless Chromium (Debian's, through playwright-core from $SENTIMENT_LAKE_BROWSER) with one page whose
// console errors, failed responses and requests to other origins than `base` are collected.
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SENTIMENT_LAKE_BROWSER}/`);
const { chromium } = require("playwright-core");

export async function openPage(base) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const consoleErrors = [];
  const outside = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("response", (r) => r.status() >= 400 && consoleErrors.push(`${r.status()} ${r.url()}`));
  page.on("request", (r) => !r.url().startsWith(base) && outside.push(r.url()));
  return { browser, page, consoleErrors, outside };
}
