// End to end: the app served on 127.0.0.1, Debian's Chromium headless with an Android phone
// profile (Pixel 7: viewport, user agent, touch, device scale factor), the test bundle built by
// make_test_bundle.py. Writes test-output/mobile-metrics.json and screenshots.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium, devices } from 'playwright-core';

import { startServer } from '../scripts/serve.mjs';
import { APP, OUT, readJSON } from './common.mjs';
import { CHROMIUM, CHROMIUM_ARGS, PHONE, launch, measure, phone as phoneContext } from './phone.mjs';

const BUNDLE = join(OUT, 'bundle');
const TAMPERED = join(OUT, 'tampered-bundle');
const SHOTS = join(OUT, 'screenshots');
const manifest = JSON.parse(readFileSync(join(BUNDLE, 'manifest.json'), 'utf8'));
const expected = readJSON('expected.json');
const metrics = { phone: PHONE, bundle: BUNDLE, models: {} };
let server;
let browser;

before(async () => {
  // A copy of the bundle with one byte of the model changed, its manifest untouched.
  rmSync(TAMPERED, { recursive: true, force: true });
  cpSync(BUNDLE, TAMPERED, { recursive: true });
  const model = join(TAMPERED, manifest.models[0].file);
  const bytes = readFileSync(model);
  bytes[bytes.length >> 1] ^= 0x01;
  writeFileSync(model, bytes);
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer({ mounts: { '/bundle/': BUNDLE, '/tampered-bundle/': TAMPERED } });
  browser = await launch();
  metrics.chromium = browser.version();
  metrics.onnxruntime_web = JSON.parse(readFileSync(join(APP, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;
});

after(async () => {
  await browser?.close();
  await server?.close();
  writeFileSync(join(OUT, 'mobile-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
});

const phone = () => phoneContext(browser);

// A real profile in a fresh --user-data-dir (install checks refuse incognito), workers allowed.
async function installedPhone() {
  const dir = mkdtempSync(join(tmpdir(), 'edge-demo-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    ...devices[PHONE], executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, serviceWorkers: 'allow',
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return context;
}

async function open(context, query = '') {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}index.html${query}`);
  page.errors = errors;
  return page;
}

const ready = (page) => page.evaluate(() => window.edgeDemo.ready);

test('loads, verifies and starts the bundle on an Android phone profile', async () => {
  const context = await phone();
  const page = await open(context);
  const m = await ready(page);
  const env = await page.evaluate(() => ({
    ua: navigator.userAgent, width: innerWidth, dpr: devicePixelRatio, touch: navigator.maxTouchPoints,
    isolated: crossOriginIsolated, status: document.getElementById('status').dataset.kind,
  }));
  assert.match(env.ua, /Android/);
  assert.equal(env.width, devices[PHONE].viewport.width);
  assert.equal(env.dpr, devices[PHONE].deviceScaleFactor);
  assert.ok(env.touch > 0, 'touch emulated');
  assert.ok(env.isolated, 'COOP/COEP give cross-origin isolation');
  assert.equal(env.status, 'ok');
  assert.equal(m.modelFile, manifest.models[0].file, 'the first model of the manifest runs by default');
  assert.equal(await page.locator('#go').isDisabled(), false);
  assert.deepEqual(page.errors, []);
  metrics.user_agent = env.ua;
  metrics.viewport = { ...devices[PHONE].viewport, deviceScaleFactor: env.dpr };
  await context.close();
});

for (const entry of manifest.models) {
  test(`parity fixtures replayed in the page: ${entry.file} (${entry.precision})`, async () => {
    const context = await phone();
    const page = await open(context, `?model=${entry.file}`);
    await ready(page);
    const report = await page.evaluate(() => window.edgeDemo.replayFixtures());
    assert.equal(report.model, entry.file);
    assert.equal(report.n, expected.texts.length);
    for (const row of report.rows) assert.ok(row.idsEqual, `token ids differ for ${JSON.stringify(row.text)}`);
    assert.equal(report.idsEqual, report.n, 'token ids equal the fixtures');
    assert.equal(report.argmaxAgree, report.n, 'argmax identical');
    assert.ok(report.maxAbsDiff <= entry.tolerance, `max abs diff ${report.maxAbsDiff} within tolerance ${entry.tolerance}`);
    assert.ok(report.ok);
    metrics.models[entry.file] = { precision: entry.precision, bytes: statSync(join(BUNDLE, entry.file)).size,
      fixtures: report.n, max_abs_diff: report.maxAbsDiff, tolerance: entry.tolerance };

    // The user-facing answer: Python Pipeline's top 3 with the out-of-scope fallback.
    const answers = await page.evaluate(async (texts) => {
      const out = [];
      for (const t of texts) out.push((await window.edgeDemo.classify(t)).items);
      return out;
    }, expected.texts);
    const want = expected.pipeline[entry.file];
    // fp32 and dynamic int8 run the same arithmetic in the wasm build as in Python's onnxruntime; the
    // 4-bit MatMulNBits kernels do not (measured: scores 2e-4 apart), within the fixtures' logit
    // tolerance. The labels must be the same either way.
    const scoreTolerance = entry.precision === 'int4' ? 1e-2 : 1e-4;
    answers.forEach((items, i) => {
      assert.deepEqual(items.map((x) => x.label), want[i].map((x) => x.label), `labels for ${JSON.stringify(expected.texts[i])}`);
      items.forEach((x, j) => assert.ok(Math.abs(x.score - want[i][j].score) < scoreTolerance, `score ${x.score} vs ${want[i][j].score}`));
    });
    assert.ok(want.some((items) => items[0].label === manifest.oos_label), 'some fixture falls back to the oos label');
    await context.close();
  });
}

test('the tokenizer in the page matches tokenizers on the tricky strings', async () => {
  const context = await phone();
  const page = await open(context);
  await ready(page);
  const got = await page.evaluate(({ strings, cases }) => cases.map((c) => strings.map((s) => window.edgeDemo.tokenize(s, c.max_length))),
    expected.tricky);
  expected.tricky.cases.forEach((c, k) => c.ids.forEach((ids, i) => {
    assert.deepEqual(got[k][i], ids, `max_length ${c.max_length}: ${JSON.stringify(expected.tricky.strings[i])}`);
  }));
  await context.close();
});

test('a tampered model is refused with a visible error, and nothing runs', async () => {
  const context = await phone();
  const page = await open(context, '?bundle=tampered-bundle/');
  const error = await page.evaluate(() => window.edgeDemo.ready.then(() => null, (e) => ({ name: e.name, message: e.message })));
  assert.equal(error?.name, 'ChecksumError');
  assert.match(error.message, new RegExp(`checksum mismatch for ${manifest.models[0].file.replace('.', '\\.')}`));
  assert.ok(await page.locator('#error').isVisible(), 'error card shown');
  assert.match(await page.locator('#error-text').innerText(), /checksum mismatch/);
  assert.ok(await page.locator('#go').isDisabled(), 'classify stays disabled');
  await page.screenshot({ path: join(SHOTS, 'tampered.png') });
  await context.close();
});

test('runs without cross-origin isolation, as in the Capacitor WebView (no COOP/COEP: one thread)', async () => {
  const plain = await startServer({ isolate: false, mounts: { '/bundle/': BUNDLE } });
  const context = await phone();
  try {
    const page = await context.newPage();
    await page.goto(`${plain.url}index.html`);
    const m = await ready(page);
    assert.equal(m.crossOriginIsolated, false);
    assert.equal(m.threads, 1);
    const report = await page.evaluate(() => window.edgeDemo.replayFixtures());
    assert.ok(report.ok, `parity without isolation: max abs diff ${report.maxAbsDiff}`);
  } finally {
    await context.close();
    await plain.close();
  }
});

test('load time and median latency, unthrottled and with 4x CPU throttling', async (t) => {
  const url = `${server.url}index.html`;
  metrics.unthrottled = await measure(browser, url, expected.texts, { rate: 1 });
  metrics.throttled_4x = await measure(browser, url, expected.texts, { rate: 4 });
  metrics.model_file = manifest.models[0].file;
  metrics.model_bytes = statSync(join(BUNDLE, manifest.models[0].file)).size;
  metrics.bundle_bytes = Object.keys(manifest.files).reduce((a, f) => a + statSync(join(BUNDLE, f)).size, 0);
  metrics.ort_wasm_bytes = statSync(join(APP, 'www/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm')).size;
  t.diagnostic(`load ${metrics.unthrottled.load_ms} ms, median ${metrics.unthrottled.median_latency_ms} ms; ` +
    `4x throttled: load ${metrics.throttled_4x.load_ms} ms, median ${metrics.throttled_4x.median_latency_ms} ms`);
  assert.ok(metrics.throttled_4x.median_model_ms > metrics.unthrottled.median_model_ms, 'throttling took effect');
});

test('screenshots: an answer, and the out-of-scope fallback', async () => {
  const context = await phone();
  const page = await open(context);
  await ready(page);
  const inScope = expected.texts.findIndex((t, i) => t.length < 40 && expected.pipeline[manifest.models[0].file][i][0].label !== manifest.oos_label);
  await page.locator('#text').fill(expected.texts[inScope]);
  await page.locator('#go').tap();
  await page.locator('#result').waitFor();
  await page.locator('#selftest').tap();
  await page.locator('.selftest[data-ok="true"]').waitFor();
  await page.screenshot({ path: join(SHOTS, 'app.png') });
  await page.screenshot({ path: join(SHOTS, 'app-full.png'), fullPage: true });
  const oos = expected.pipeline[manifest.models[0].file].findIndex((items) => items[0].label === manifest.oos_label && items[0].score < manifest.oos_threshold);
  await page.locator('#text').fill(expected.texts[oos]);
  await page.locator('#go').tap();
  await page.locator('#oos').waitFor();
  assert.match(await page.locator('#oos').innerText(), /Out of scope/);
  await page.locator('#result').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'oos.png') });
  await context.close();
});

test('installable as a PWA: manifest and service worker pass Chromium\'s checks', async () => {
  const context = await installedPhone();
  const page = await open(context);
  await ready(page);
  assert.deepEqual(await page.evaluate(() => window.edgeDemo.offline), { ok: true, files: Object.keys(manifest.files).length + 1 });
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  assert.deepEqual(installabilityErrors, []);
  const { url, errors } = await cdp.send('Page.getAppManifest');
  assert.match(url, /manifest\.webmanifest$/);
  assert.deepEqual(errors, []);
  await context.close();
});

// Last: it stops the server.
test('works offline after the first visit (server stopped, page reloaded)', async () => {
  const context = await installedPhone();
  const page = await open(context);
  await ready(page);
  assert.ok((await page.evaluate(() => window.edgeDemo.offline)).ok, 'bundle cached');
  await server.close();
  server = null;
  await page.reload();
  await ready(page);
  const r = await page.evaluate(() => window.edgeDemo.classify(document.querySelector('.chip')?.textContent ?? 'hello'));
  assert.ok(r.label);
  assert.equal(await page.evaluate(() => document.getElementById('status').dataset.kind), 'ok');
  await context.close();
});
