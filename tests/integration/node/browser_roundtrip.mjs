// MQTT over WebSocket from a real browser: headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core, which never downloads a browser of its own) runs MQTT.js's browser bundle
// on browser_page.html, which connects with the browser's WebSocket, subscribes, publishes and
// receives its own message.
//
//   node browser_roundtrip.mjs <ws://... | wss://...> [--protocol-version 4|5]
//        [--timeout seconds] [--insecure] [--chromium /path/to/chromium]
//
// Prints one JSON line, {"ok":true,"payload":...,"qos":1,...} with exit 0, or
// {"ok":false,"error":"..."} with exit 1. The whole run is bounded (20 s by default); the
// browser and the static HTTP server are always closed.
//
// The page is served from a tiny HTTP server on 127.0.0.1 (ephemeral port); only
// browser_page.html (as /) and MQTT.js's browser bundle (as /mqtt.min.js) are served.
// --insecure starts Chromium with --ignore-certificate-errors (a wss:// broker whose CA the
// browser does not trust). Chromium always gets --no-sandbox (needed when running as root or
// in a container without user namespaces). $CHROMIUM overrides the browser path.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const opts = {
    protocolVersion: 5, timeout: 20, insecure: false,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  const valued = { '--protocol-version': 'protocolVersion', '--timeout': 'timeout',
                   '--chromium': 'chromium' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--insecure') opts.insecure = true;
    else if (a in valued && i + 1 < argv.length) opts[valued[a]] = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option or missing value: ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new Error('usage: node browser_roundtrip.mjs <ws url> [options]');
  opts.url = rest[0];
  opts.protocolVersion = Number(opts.protocolVersion);
  opts.timeout = Number(opts.timeout);
  return opts;
}

function bundlePath() {
  // MQTT.js 5.x ships its browser bundle as dist/mqtt.min.js (an IIFE defining `mqtt`).
  return join(dirname(require.resolve('mqtt/package.json')), 'dist', 'mqtt.min.js');
}

function startServer() {
  const files = {
    '/': ['text/html; charset=utf-8', readFileSync(join(here, 'browser_page.html'))],
    '/mqtt.min.js': ['text/javascript; charset=utf-8', readFileSync(bundlePath())],
  };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = files[path === '/browser_page.html' ? '/' : path];
    if (!file || req.method !== 'GET') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': file[0], 'Cache-Control': 'no-store' });
    res.end(file[1]);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let server = null;
  let browser = null;
  const logs = [];
  let timer = null;
  const cleanup = async () => {
    if (timer) clearTimeout(timer);
    if (browser) await browser.close().catch(() => {});
    browser = null;
    if (server) {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
    }
    server = null;
  };
  // Ctrl-C / a test's timeout: close the browser and the server before leaving.
  let stopSignal = null;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      stopSignal = sig;
      cleanup().finally(() => emit(1, { ok: false, error: `stopped by ${sig}` }));
    });
  }
  const work = (async () => {
    server = await startServer();
    const pageUrl = `http://127.0.0.1:${server.address().port}/?url=`
      + `${encodeURIComponent(opts.url)}&v=${opts.protocolVersion}`;
    const args = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic',
                  '--disable-sync', '--no-first-run', '--no-default-browser-check'];
    if (opts.insecure) args.push('--ignore-certificate-errors');
    browser = await chromium.launch({
      executablePath: opts.chromium, headless: true, args,
      handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
      timeout: opts.timeout * 1000,
    });
    const page = await browser.newPage();
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(pageUrl, { timeout: opts.timeout * 1000 });
    await page.waitForFunction(() => window.__result !== undefined, null,
                               { timeout: opts.timeout * 1000, polling: 50 });
    const result = await page.evaluate(() => window.__result);
    result.browserVersion = browser.version();
    return result;
  })();
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${opts.timeout}s`)),
                       opts.timeout * 1000);
  });
  let result;
  try {
    result = await Promise.race([work, deadline]);
  } catch (e) {
    result = { ok: false, error: (e && e.message ? e.message : String(e)).split('\n')[0] };
  }
  work.catch(() => {});
  if (stopSignal) result = { ok: false, error: `stopped by ${stopSignal}` };
  if (!result.ok && logs.length) result.log = logs.slice(-20);
  await cleanup();
  emit(result.ok ? 0 : 1, result);
}

let emitted = false;
function emit(code, result) {
  if (emitted) return;
  emitted = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

main().catch((e) => emit(1, { ok: false, error: e && e.message ? e.message : String(e) }));
