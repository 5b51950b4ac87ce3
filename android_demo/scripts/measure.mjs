// Measure any bundle in the app on the emulated phone: parity replay, load time, median latency
// (unthrottled and with 4x CPU throttling). Prints JSON; the bundle is served, not installed.
//
//   node scripts/measure.mjs ../build/web-wasm [--rounds 3] [--out metrics.json]
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { PHONE, launch, measure, phone } from '../tests/phone.mjs';
import { startServer } from './serve.mjs';

const args = process.argv.slice(2);
const bundle = resolve(args[0] ?? '');
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
let manifest;
try {
  manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
} catch (err) {
  console.error(`usage: node scripts/measure.mjs BUNDLE_DIR [--rounds N] [--out FILE] (${err.message})`);
  process.exit(2);
}
const fixtures = JSON.parse(readFileSync(join(bundle, manifest.fixtures_file ?? 'fixtures.json'), 'utf8'));
const texts = fixtures.texts.filter((t) => t.trim());
const server = await startServer({ mounts: { '/bundle/': bundle } });
const browser = await launch();
try {
  const context = await phone(browser);
  const page = await context.newPage();
  await page.goto(`${server.url}index.html`);
  await page.evaluate(() => window.edgeDemo.ready);
  const parity = await page.evaluate(() => window.edgeDemo.replayFixtures().then(({ rows, ...r }) => r));
  await context.close();
  const url = `${server.url}index.html`;
  const rounds = Number(opt('--rounds', 3));
  const model = manifest.models.find((m) => m.backend === 'onnx');
  const result = {
    bundle, phone: PHONE, chromium: browser.version(), model_file: model.file,
    model_bytes: statSync(join(bundle, model.file)).size,
    bundle_bytes: Object.keys(manifest.files).reduce((a, f) => a + statSync(join(bundle, f)).size, 0),
    parity,
    unthrottled: await measure(browser, url, texts, { rate: 1, rounds }),
    throttled_4x: await measure(browser, url, texts, { rate: 4, rounds }),
  };
  const text = JSON.stringify(result, null, 2) + '\n';
  if (opt('--out')) writeFileSync(opt('--out'), text);
  process.stdout.write(text);
  process.exitCode = parity.ok ? 0 : 1;
} finally {
  await browser.close();
  await server.close();
}
