// The demo page: load and verify the bundle, start the model, classify what the user types.
// `window.edgeDemo` exposes the same steps to the end-to-end test (tests/app.test.mjs).

import { BundleError, loadBundle, textOf } from './bundle.js';
import { Classifier } from './classifier.js';
import { BertWordPieceTokenizer } from './tokenizer.js';

const ORT_DIR = new URL('../vendor/onnxruntime-web/', import.meta.url);
const params = new URLSearchParams(location.search);
// ?bundle=some/dir/ loads another bundle folder of the app (the tests use it); same origin only.
const bundlePath = /^[\w-]+(\/[\w-]+)*\/$/.test(params.get('bundle') ?? '') ? params.get('bundle') : 'bundle/';
const modelFile = params.get('model') || undefined;
const $ = (id) => document.getElementById(id);

const state = { classifier: null, bundle: null, fixtures: null, metrics: {} };

function pct(x) {
  return `${(100 * x).toFixed(x >= 0.995 || x < 0.001 ? 1 : 0)}%`;
}

function pretty(label) {
  if (label != null && label === state.bundle?.manifest.oos_label) return 'out of scope';
  return String(label).replace(/_/g, ' ');
}

function ms(x) {
  return x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x)} ms`;
}

function setStatus(text, kind = 'busy') {
  const box = $('status');
  box.dataset.kind = kind;
  $('status-text').textContent = text;
}

function showError(err) {
  const refused = err instanceof BundleError;
  $('error-title').textContent = refused ? 'Bundle refused' : 'Something went wrong';
  $('error-text').textContent = err.message ?? String(err);
  $('error').hidden = false;
  $('status').hidden = true;
  $('bundle-card').hidden = true;
  $('go').disabled = true;
  $('selftest').disabled = true;
}

function describe(bundle, classifier) {
  const m = bundle.manifest;
  const e = classifier.entry;
  const size = bundle.files.get(e.file).byteLength;
  const rows = [
    ['model', `${e.file} · ${e.precision}`],
    ['size', `${(size / 1e6).toFixed(2)} MB (bundle ${(bundle.bytes / 1e6).toFixed(2)} MB)`],
    ['target', m.target?.name ?? '—'],
    ['labels', `${m.labels.length}${m.oos_label ? ` · out of scope below ${pct(m.oos_threshold ?? 0)}` : ''}`],
    ['checksums', `sha256 ✓ ${Object.keys(m.files).length} files`],
    ['engine', `onnxruntime-web wasm · ${state.metrics.threads} thread${state.metrics.threads > 1 ? 's' : ''}`],
    ['ready in', `${ms(state.metrics.loadMs)} (verify ${ms(state.metrics.verifyMs)}, session ${ms(state.metrics.sessionMs)})`],
  ];
  const dl = $('model-info');
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dl.append(dt, dd);
  }
}

function showExamples(fixtures) {
  const box = $('examples');
  box.replaceChildren();
  const texts = (fixtures?.texts ?? []).filter((t) => t.trim() && t.length <= 36).slice(0, 4);
  for (const text of texts) {
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = 'chip';
    chip.textContent = text;
    chip.addEventListener('click', () => {
      $('text').value = text;
      classifyAndShow(text).then(reveal);
    });
    box.append(chip);
  }
}

function render(r) {
  $('result').hidden = false;
  $('result').dataset.oos = String(r.oos);
  $('label').textContent = pretty(r.label);
  $('label').title = r.label;
  $('score').textContent = pct(r.score);
  $('meter').style.width = `${Math.max(2, 100 * r.score)}%`;
  const oos = $('oos');
  oos.hidden = !r.oos;
  if (r.oos) {
    const threshold = state.bundle.manifest.oos_threshold;
    oos.textContent = `Out of scope: the best guess, ${pretty(r.bestGuess.label)} at ${pct(r.bestGuess.score)}, ` +
      `is below the ${pct(threshold)} threshold.`;
  }
  const top = $('top');
  top.replaceChildren();
  for (const item of r.items) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = pretty(item.label);
    const bar = document.createElement('span');
    bar.className = 'track';
    const fill = document.createElement('span');
    fill.style.width = `${Math.max(1, 100 * item.score)}%`;
    bar.append(fill);
    const val = document.createElement('span');
    val.className = 'val';
    val.textContent = pct(item.score);
    li.append(name, bar, val);
    top.append(li);
  }
  const l = r.latency;
  $('latency').textContent = `${ms(l.totalMs)} on this device · tokenize ${ms(l.tokenizeMs)} · model ${ms(l.modelMs)} · ${r.ids.length} tokens`;
}

let busy = Promise.resolve();
function classifyAndShow(text) {
  // One run at a time: onnxruntime-web sessions do not take concurrent runs.
  busy = busy.then(async () => {
    const r = await state.classifier.classify(text);
    render(r);
    return r;
  });
  return busy;
}

async function selfTest() {
  $('selftest').disabled = true;
  $('selftest-result').textContent = 'Replaying the parity fixtures…';
  try {
    const report = await replayFixtures();
    $('selftest-result').dataset.ok = String(report.ok);
    $('selftest-result').textContent = `${report.ok ? '✓' : '✗'} ${report.n} fixtures: token ids equal ${report.idsEqual}/${report.n}, ` +
      `argmax agree ${report.argmaxAgree}/${report.n}, max abs diff ${report.maxAbsDiff.toExponential(1)} ` +
      `(tolerance ${report.tolerance})`;
  } catch (err) {
    $('selftest-result').dataset.ok = 'false';
    $('selftest-result').textContent = err.message;
  } finally {
    $('selftest').disabled = false;
  }
}

async function replayFixtures() {
  if (!state.fixtures) throw new BundleError('this bundle has no parity fixtures');
  busy = busy.then(() => state.classifier.replayFixtures(state.fixtures));
  return busy;
}

function updateNet(offlineReady) {
  const pill = $('net');
  if (offlineReady !== undefined) pill.dataset.cached = String(offlineReady);
  const cached = pill.dataset.cached === 'true';
  pill.textContent = navigator.onLine ? (cached ? 'offline-ready' : 'online') : 'offline';
  pill.dataset.online = String(navigator.onLine);
}

async function registerServiceWorker() {
  // Inside the Capacitor app the assets are in the APK already: no worker needed.
  const native = globalThis.Capacitor?.isNativePlatform?.() ?? false;
  if (native || !('serviceWorker' in navigator) || params.get('sw') === '0') return false;
  try {
    await navigator.serviceWorker.register('sw.js');
    const reg = await navigator.serviceWorker.ready;
    // Ask the worker to cache the bundle now, so the app works offline from the first visit.
    const done = new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = (ev) => resolve(ev.data);
      reg.active.postMessage({ type: 'precache', bundle: bundlePath }, [channel.port2]);
    });
    const result = await done;
    updateNet(!!result?.ok);
    return result;
  } catch (err) {
    console.warn('service worker unavailable:', err);
    return false;
  }
}

async function start() {
  const metrics = state.metrics;
  updateNet();
  addEventListener('online', () => updateNet());
  addEventListener('offline', () => updateNet());
  let ort;
  try {
    ort = await import(new URL('ort.wasm.min.mjs', ORT_DIR).href);
  } catch (err) {
    throw new Error(`onnxruntime-web is missing from www/vendor (run npm install in android_demo): ${err.message}`);
  }
  ort.env.wasm.wasmPaths = ORT_DIR.href;
  ort.env.wasm.proxy = false;
  setStatus('Verifying the bundle (sha256)…');
  const bundle = await loadBundle(bundlePath);
  state.bundle = bundle;
  const m = bundle.manifest;
  const wanted = Number(m.execution?.threads ?? 1) || 1;
  metrics.threads = globalThis.crossOriginIsolated ? Math.min(wanted, navigator.hardwareConcurrency || 1) : 1;
  setStatus('Starting the model…');
  const classifier = await Classifier.create(ort, bundle, { model: modelFile, threads: metrics.threads });
  state.classifier = classifier;
  if (m.fixtures_file) state.fixtures = JSON.parse(textOf(bundle.files.get(m.fixtures_file)));
  const t = performance.now();
  await classifier.classify('warm up'); // first run allocates; keep it out of what the user sees
  Object.assign(metrics, {
    fetchMs: bundle.fetchMs, verifyMs: bundle.verifyMs, sessionMs: classifier.sessionMs,
    warmupMs: performance.now() - t, loadMs: performance.now(), bytes: bundle.bytes,
    modelFile: classifier.entry.file, modelBytes: bundle.files.get(classifier.entry.file).byteLength,
    crossOriginIsolated: !!globalThis.crossOriginIsolated,
  });
  describe(bundle, classifier);
  showExamples(state.fixtures);
  setStatus(`Ready in ${ms(metrics.loadMs)}: ${classifier.entry.file} verified and running on this device.`, 'ok');
  $('go').disabled = false;
  $('selftest').disabled = !state.fixtures;
  return metrics;
}

// After a tap, bring the answer on screen (a phone keyboard may hide half the page).
function reveal() {
  $('result').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

$('form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (state.classifier) classifyAndShow($('text').value).then(reveal);
});
$('text').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('form').requestSubmit();
  }
});
$('selftest').addEventListener('click', selfTest);

const ready = start().catch((err) => {
  showError(err);
  throw err;
});
ready.catch(() => {}); // shown on the page; the test reads it through edgeDemo.ready
const tokenizers = new Map(); // per max length, for edgeDemo.tokenize
const offline = ready.then(() => registerServiceWorker(), () => false);

window.edgeDemo = {
  ready,
  offline,
  get metrics() {
    return state.metrics;
  },
  get manifest() {
    return state.bundle?.manifest;
  },
  classify: (text) => classifyAndShow(text),
  replayFixtures,
  tokenize(text, maxLength) {
    const length = maxLength ?? state.classifier.tokenizer.maxLength;
    if (!tokenizers.has(length)) {
      const json = textOf(state.bundle.files.get(state.bundle.manifest.tokenizer_file));
      tokenizers.set(length, BertWordPieceTokenizer.fromJSON(json, { maxLength: length }));
    }
    return tokenizers.get(length).encode(text);
  },
};
