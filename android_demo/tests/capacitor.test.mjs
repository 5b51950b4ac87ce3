// Capacitor: `cap add android` turns the app into an Android project with www/ (and an installed
// bundle) as its assets. Only the project generation and the asset copy are checked: building the
// APK needs the Android SDK and Gradle's repositories, which this machine does not have.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { APP, OUT } from './common.mjs';

test('npx cap add android wraps www/ and the bundle into an Android project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-demo-cap-'));
  try {
    for (const name of ['capacitor.config.json', 'package.json']) cpSync(join(APP, name), join(dir, name));
    cpSync(join(APP, 'www'), join(dir, 'www'), { recursive: true, filter: (src) => !src.startsWith(join(APP, 'www', 'bundle')) });
    cpSync(join(OUT, 'bundle'), join(dir, 'www', 'bundle'), { recursive: true }); // as mobile-install puts it
    symlinkSync(join(APP, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const cli = join(APP, 'node_modules', '@capacitor', 'cli', 'bin', 'capacitor');
    execFileSync(process.execPath, [cli, 'add', 'android'], { cwd: dir, env: { ...process.env, CI: '1' }, stdio: 'pipe' });
    const assets = join(dir, 'android', 'app', 'src', 'main', 'assets');
    for (const file of ['public/index.html', 'public/js/tokenizer.js', 'public/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm',
      'public/bundle/manifest.json', 'capacitor.config.json']) {
      assert.ok(existsSync(join(assets, file)), `${file} in the Android assets`);
    }
    const config = JSON.parse(readFileSync(join(assets, 'capacitor.config.json'), 'utf8'));
    assert.equal(config.appId, 'dev.edgesdk.demo');
    const gradle = readFileSync(join(dir, 'android', 'app', 'build.gradle'), 'utf8');
    assert.match(gradle, /applicationId "dev\.edgesdk\.demo"/);
    execFileSync(process.execPath, [cli, 'sync', 'android'], { cwd: dir, env: { ...process.env, CI: '1' }, stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
