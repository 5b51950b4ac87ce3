// Chromium on an Android phone profile, and the load-time / latency measurement, shared by the
// end-to-end test (tests/app.test.mjs) and scripts/measure.mjs (any installed bundle).
import { chromium, devices } from 'playwright-core';

export const PHONE = 'Pixel 7';
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Debian's chromium, headless, nothing reaching out to the network. Playwright gives every
// launch a fresh temporary --user-data-dir of its own.
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// A fresh incognito-like context: service workers blocked so every load is a cold one.
export function phone(browser) {
  return browser.newContext({ ...devices[PHONE], serviceWorkers: 'block' });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const round = (x) => Math.round(x * 1000) / 1000;

/**
 * Cold load of `url` (CDP CPU throttling at `rate` from before navigation), then each text
 * classified `rounds` times, one query at a time as a user sends them. The whole loop is timed
 * too: throttling pauses the page in slices, which a sub-millisecond run may or may not hit.
 */
export async function measure(browser, url, texts, { rate = 1, rounds = 3 } = {}) {
  const context = await phone(browser);
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate });
    await page.goto(url);
    const m = await page.evaluate(() => window.edgeDemo.ready);
    const { runs, wallMs } = await page.evaluate(async ({ texts, rounds }) => {
      const out = [];
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) {
        for (const t of texts) {
          const res = await window.edgeDemo.classify(t);
          out.push([res.latency.totalMs, res.latency.modelMs, res.ids.length]);
        }
      }
      return { runs: out, wallMs: performance.now() - t0 };
    }, { texts, rounds });
    const total = runs.map((r) => r[0]);
    return {
      cpu_throttling: rate,
      load_ms: round(m.loadMs), fetch_ms: round(m.fetchMs), verify_ms: round(m.verifyMs),
      session_ms: round(m.sessionMs), warmup_ms: round(m.warmupMs), threads: m.threads, runs: runs.length,
      median_latency_ms: round(median(total)), p90_latency_ms: round(quantile(total, 0.9)),
      median_model_ms: round(median(runs.map((r) => r[1]))), mean_back_to_back_ms: round(wallMs / runs.length),
      mean_tokens: round(runs.reduce((a, r) => a + r[2], 0) / runs.length),
    };
  } finally {
    await context.close();
  }
}
