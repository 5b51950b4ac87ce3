// A tiny static server for the app: www/ on 127.0.0.1 with the cross-origin isolation headers
// (COOP/COEP) that onnxruntime-web's wasm threads need, and the right MIME types.
//
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--mount /bundle/=DIR ...] [--no-isolation]
//
// --mount serves another folder under a URL prefix (the tests serve their bundles this way, so
// a bundle installed in www/bundle/ is left alone).
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const APP = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

function resolveFile(mounts, pathname) {
  for (const [prefix, dir] of mounts) {
    if (!pathname.startsWith(prefix)) continue;
    const rel = pathname.slice(prefix.length);
    const file = resolve(dir, '.' + sep + rel);
    if (file !== dir && !file.startsWith(dir + sep)) return null; // no escaping the folder
    return file;
  }
  return null;
}

/** Start serving; resolves to {server, url, close()}. mounts: {'/bundle/': '/abs/dir', ...}. */
export function startServer({ root = join(APP, 'www'), mounts = {}, host = '127.0.0.1', port = 0, quiet = true, isolate = true } = {}) {
  // Longest prefix first, the app root last.
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : prefix + '/', resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length);
  table.push(['/', resolve(root)]);
  const server = createServer((req, res) => {
    const headers = {
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      ...(isolate ? {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
        'Cross-Origin-Resource-Policy': 'same-origin',
      } : {}),
    };
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400, headers).end('bad request');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, headers).end();
      return;
    }
    let file = resolveFile(table, pathname);
    let stat;
    try {
      stat = file && statSync(file);
      if (stat?.isDirectory()) {
        file = join(file, 'index.html');
        stat = statSync(file);
      }
    } catch {
      stat = null;
    }
    if (!stat || !stat.isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found');
      if (!quiet) console.log(`404 ${pathname}`);
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': stat.size,
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
    if (!quiet) console.log(`200 ${pathname}`);
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      ok({
        server,
        url: `http://${host}:${actual}/`,
        close: () => new Promise((done) => {
          for (const s of sockets) s.destroy(); // keep-alive connections would hold it open
          server.close(() => done());
        }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opts = { port: 8080, host: '127.0.0.1', mounts: {}, quiet: false };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') opts.port = Number(args[++i]);
    else if (args[i] === '--host') opts.host = args[++i];
    else if (args[i] === '--mount') {
      const [prefix, dir] = args[++i].split('=');
      opts.mounts[prefix] = dir;
    } else if (args[i] === '--no-isolation') {
      opts.isolate = false; // as Capacitor's Android WebView serves: no COOP/COEP, one thread
    } else {
      console.error(`unknown argument ${args[i]}; usage: serve.mjs [--port N] [--host H] [--mount /prefix/=DIR] [--no-isolation]`);
      process.exit(2);
    }
  }
  const { url } = await startServer(opts);
  console.log(`serving ${join(APP, 'www')} at ${url} (COOP/COEP on); Ctrl-C stops`);
}
