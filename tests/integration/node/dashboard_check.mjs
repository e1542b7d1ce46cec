// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) opens Starling's page at / on the HTTP port and checks what an operator
// sees while a load runs.
//
//   node dashboard_check.mjs <http://127.0.0.1:PORT/> [--token T] [--kick CLIENT_ID]
//        [--expect-read-only CLIENT_ID] [--screenshot PATH [--settle seconds]]
//        [--sections kafka,bridges,cluster] [--timeout seconds]
// --sections: those sections must show, each with at least one row.
//
// Prints one JSON line: {"ok":true,"messagesIn":[first,later],"rateIn":"...","kicked":...,
// "access":"admin|read-only","errors":[...]} with exit 0, or {"ok":false,"error":...} with
// exit 1. "errors" lists console errors, page errors and responses of 400 or more, which the
// page should never cause. The run is bounded (30 s by default); the browser is always closed.

import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const opts = { timeout: 30, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
  const valued = { '--token': 'token', '--kick': 'kick', '--expect-read-only': 'readOnly',
                   '--screenshot': 'screenshot', '--timeout': 'timeout', '--chromium': 'chromium',
                   '--settle': 'settle', '--sections': 'sections' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] in valued && i + 1 < argv.length) opts[valued[argv[i]]] = argv[++i];
    else if (argv[i].startsWith('--')) throw new Error(`unknown option: ${argv[i]}`);
    else rest.push(argv[i]);
  }
  if (rest.length !== 1) throw new Error('usage: node dashboard_check.mjs <url> [options]');
  opts.url = rest[0];
  opts.timeout = Number(opts.timeout);
  return opts;
}

async function check(browser, opts) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  const wait = { timeout: opts.timeout * 1000, polling: 100 };
  await page.goto(opts.url, { timeout: opts.timeout * 1000 });
  if (opts.token) {
    await page.fill('#token', opts.token);
    await page.click('#token-form button');
  }
  await page.waitForFunction(() => document.getElementById('status').textContent === 'live',
                             null, wait);
  const tile = '[data-name="messages in"] .value';
  await page.waitForSelector(tile, wait);
  const first = await page.textContent(tile);
  // Numbers update while the load runs: the count moves and the rate is above zero.
  await page.waitForFunction(([selector, before]) =>
    document.querySelector(selector).textContent !== before &&
    !['-', '0/s'].includes(document.getElementById('rate-in').textContent), [tile, first], wait);
  const result = {
    ok: true, messagesIn: [first, await page.textContent(tile)],
    rateIn: await page.textContent('#rate-in'),
    access: await page.textContent('#access'),
    latencyRows: await page.$$eval('#latency tbody tr', (rows) => rows.length),
  };
  if (opts.sections) {
    for (const name of opts.sections.split(',')) {
      await page.waitForFunction((n) => {
        const section = document.getElementById(n + '-section');
        return section && !section.hidden && section.querySelectorAll('tbody tr').length > 0;
      }, name, wait);
    }
    result.sections = await page.$$eval('section[id$="-section"]', (all) =>
      Object.fromEntries(all.map((s) => [s.id.replace('-section', ''),
        s.hidden ? null : Array.from(s.querySelectorAll('tbody tr')).map((r) => r.textContent)])));
  }
  const target = opts.kick || opts.readOnly;
  if (target) {
    await page.fill('#client-prefix', target);
    await page.click('#client-search button');
    const rowSelector = `#clients tr[data-client-id="${target}"]`;
    await page.waitForSelector(rowSelector, wait);
    result.kickButtons = await page.$$eval('#clients button.kick', (b) => b.length);
    if (opts.kick) {
      await page.click(`${rowSelector} button.kick`);
      // A clean session ends with its connection: the row goes (or says offline).
      await page.waitForFunction((selector) => {
        const row = document.querySelector(selector);
        return !row || row.textContent.includes('offline');
      }, rowSelector, wait);
      result.kicked = true;
    }
  }
  if (opts.screenshot) {
    // --settle S: let the chart fill for S seconds first (for the picture in the docs).
    if (opts.settle) await page.waitForTimeout(Number(opts.settle) * 1000);
    await page.screenshot({ path: opts.screenshot, fullPage: true });
  }
  result.errors = errors;
  return result;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let browser;
  let timer;
  const work = (async () => {
    browser = await chromium.launch({
      executablePath: opts.chromium, headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
      handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
      timeout: opts.timeout * 1000,
    });
    return check(browser, opts);
  })();
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${opts.timeout}s`)),
                       opts.timeout * 1000 + 5000);
  });
  let result;
  try {
    result = await Promise.race([work, deadline]);
  } catch (e) {
    result = { ok: false, error: (e && e.message ? e.message : String(e)).split('\n')[0] };
  }
  work.catch(() => {});
  clearTimeout(timer);
  if (browser) await browser.close().catch(() => {});
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(result.ok ? 0 : 1));
}

main();
