// Copy onnxruntime-web's wasm build from node_modules into www/vendor/ (run by `npm install`).
// The app imports these files as plain ES modules: there is no bundler and no build step.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(app, 'node_modules', 'onnxruntime-web', 'dist');
const out = join(app, 'www', 'vendor', 'onnxruntime-web');
// ort.wasm.min.mjs: the wasm-only entry; it loads the threaded-SIMD glue and binary beside it.
const FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

if (!existsSync(dist)) {
  console.error(`vendor-ort: ${dist} is missing; run npm install in android_demo first`);
  process.exit(1);
}
mkdirSync(out, { recursive: true });
for (const name of FILES) copyFileSync(join(dist, name), join(out, name));
const { version, license } = JSON.parse(readFileSync(join(dist, '..', 'package.json'), 'utf8'));
writeFileSync(join(out, 'VERSION'), `onnxruntime-web ${version} (${license} license, Microsoft), from npm\n`);
console.log(`vendor-ort: onnxruntime-web ${version} -> www/vendor/onnxruntime-web/`);
