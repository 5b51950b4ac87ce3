// Shared by the tests: where make_test_bundle.py wrote its output.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT = resolve(process.env.MOBILE_OUT ?? join(APP, 'test-output'));

if (!existsSync(join(OUT, 'bundle', 'manifest.json'))) {
  throw new Error(`${OUT}/bundle is missing: run \`make mobile-test\` from the repo root (it builds the test bundle), ` +
    'or .venv/bin/python android_demo/tests/make_test_bundle.py android_demo/test-output');
}

export function readJSON(name) {
  return JSON.parse(readFileSync(join(OUT, name), 'utf8'));
}
