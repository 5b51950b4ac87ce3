// Loading an edge-sdk bundle from the app's assets and verifying it against its manifest, as
// edge_runtime.bundle.open_bundle does: schema version, required fields, and the sha256 of every
// file listed (WebCrypto). A mismatch refuses the whole bundle with an error naming the file.
// What a browser cannot do: list a folder, so files the manifest does not name go unnoticed.

export const SCHEMA_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BundleError';
  }
}

export class ChecksumError extends BundleError {
  constructor(message) {
    super(message);
    this.name = 'ChecksumError';
  }
}

const REQUIRED = ['labels', 'models', 'files', 'max_length'];

export function checkManifest(data) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new BundleError('manifest.json does not hold a JSON object');
  }
  if (data.schema_version !== SCHEMA_VERSION) {
    throw new BundleError(`bundle schema version ${JSON.stringify(data.schema_version)} is not supported by this app ` +
      `(it reads version ${SCHEMA_VERSION}); rebuild the bundle or update the app`);
  }
  const missing = REQUIRED.filter((k) => !(k in data));
  if (missing.length) throw new BundleError(`manifest.json lacks required field(s): ${missing.join(', ')}`);
  const m = {
    tokenizer_file: 'tokenizer.json',
    fixtures_file: 'fixtures.json',
    oos_label: null,
    oos_threshold: null,
    target: {},
    execution: {},
    ...data,
  };
  if (!Array.isArray(m.models) || m.models.length === 0) throw new BundleError('manifest.json lists no model');
  if (!Array.isArray(m.labels) || m.labels.length < 2) {
    throw new BundleError(`manifest.json lists ${m.labels?.length ?? 0} label(s); a classifier needs two or more`);
  }
  if (!Number.isInteger(m.max_length) || m.max_length < 3) throw new BundleError(`manifest.json: bad max_length ${m.max_length}`);
  for (const name of Object.keys(m.files)) {
    if (name.startsWith('/') || name.includes('\\') || name.split('/').includes('..') || /^[a-z]+:/i.test(name)) {
      throw new BundleError(`manifest.json lists a file outside the bundle: ${JSON.stringify(name)}`);
    }
  }
  for (const model of m.models) {
    if (!(model.file in m.files)) throw new BundleError(`model ${model.file} has no checksum in manifest.json 'files'`);
  }
  for (const name of [m.tokenizer_file, m.fixtures_file]) {
    if (name != null && !(name in m.files)) throw new BundleError(`${name} has no checksum in manifest.json 'files'`);
  }
  if (m.oos_threshold != null && !(m.oos_threshold >= 0 && m.oos_threshold <= 1)) {
    throw new BundleError(`oos_threshold ${m.oos_threshold} is not a probability in [0, 1]`);
  }
  return m;
}

export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new BundleError('WebCrypto is unavailable (the page is not a secure context): cannot verify the bundle');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function fetchBytes(url, what) {
  let res;
  try {
    res = await fetch(url, { cache: 'no-cache' });
  } catch (err) {
    throw new BundleError(`cannot fetch ${what}: ${err.message}`);
  }
  if (!res.ok) throw new BundleError(`cannot fetch ${what}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

/**
 * Fetch manifest.json and every file it lists from `baseUrl`, verifying each sha256.
 * Returns {manifest, files: Map(name -> ArrayBuffer), bytes, fetchMs, verifyMs}.
 */
export async function loadBundle(baseUrl) {
  const base = new URL(baseUrl, globalThis.location?.href);
  const t0 = performance.now();
  let text;
  try {
    const res = await fetch(new URL(MANIFEST_FILE, base), { cache: 'no-cache' });
    if (res.status === 404) {
      throw new BundleError(`no bundle installed at ${base.pathname} (no manifest.json); ` +
        'put one there with: edge-sdk mobile-install BUNDLE');
    }
    if (!res.ok) throw new BundleError(`cannot fetch manifest.json: HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(`cannot fetch manifest.json: ${err.message}`);
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new BundleError(`manifest.json is not valid JSON: ${err.message}`);
  }
  const manifest = checkManifest(data);
  const names = Object.keys(manifest.files);
  const buffers = await Promise.all(names.map((name) => fetchBytes(new URL(name, base), name)));
  const t1 = performance.now();
  const files = new Map();
  let bytes = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const expected = manifest.files[name];
    const actual = await sha256Hex(buffers[i]);
    if (actual !== expected) {
      throw new ChecksumError(`checksum mismatch for ${name}: manifest says ${expected.slice(0, 12)}…, ` +
        `file is ${actual.slice(0, 12)}… (the file was modified or corrupted); the bundle is refused`);
    }
    files.set(name, buffers[i]);
    bytes += buffers[i].byteLength;
  }
  return { manifest, files, bytes, base: base.href, fetchMs: t1 - t0, verifyMs: performance.now() - t1 };
}

export function textOf(buffer) {
  return new TextDecoder('utf-8').decode(buffer);
}
