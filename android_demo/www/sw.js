// Offline support: the app shell and onnxruntime-web are cached when the worker installs, the
// bundle when the page asks (after it verified it). Requests go to the network first, so a newly
// installed bundle is picked up at once, and fall back to the cache when there is no network.
// A cached bundle is still verified by the page (sha256) before it runs.

const CACHE = 'edge-demo-v1';
const SHELL = [
  './',
  'index.html',
  'manifest.webmanifest',
  'css/app.css',
  'js/app.js',
  'js/bundle.js',
  'js/classifier.js',
  'js/tokenizer.js',
  'js/unicode-tables.js',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'icons/maskable-512.png',
  'vendor/onnxruntime-web/ort.wasm.min.mjs',
  'vendor/onnxruntime-web/ort-wasm-simd-threaded.mjs',
  'vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

async function precacheBundle(dir) {
  const cache = await caches.open(CACHE);
  const base = new URL(dir, self.registration.scope);
  const res = await fetch(new URL('manifest.json', base), { cache: 'no-cache' });
  if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status}`);
  const manifest = await res.clone().json();
  await cache.put(new URL('manifest.json', base), res);
  const names = Object.keys(manifest.files ?? {});
  await Promise.all(names.map(async (name) => {
    const file = await fetch(new URL(name, base), { cache: 'no-cache' });
    if (!file.ok) throw new Error(`${name}: HTTP ${file.status}`);
    await cache.put(new URL(name, base), file);
  }));
  return names.length + 1;
}

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'precache') return;
  const port = event.ports[0];
  event.waitUntil(precacheBundle(event.data.bundle)
    .then((files) => port?.postMessage({ ok: true, files }))
    .catch((err) => port?.postMessage({ ok: false, error: String(err.message ?? err) })));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok && response.status === 200) await cache.put(request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
      if (cached) return cached;
      if (request.mode === 'navigate') {
        const shell = await cache.match('index.html');
        if (shell) return shell;
      }
      throw err;
    }
  })());
});
