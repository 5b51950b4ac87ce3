// The bundle's model on onnxruntime-web, answering as edge_runtime.Pipeline does: batch 1 with no
// padding, token_type_ids all zero, softmax, top-k by stable sort, and below the manifest's
// oos_threshold the top label becomes oos_label.

import { BundleError, textOf } from './bundle.js';
import { BertWordPieceTokenizer } from './tokenizer.js';

export function selectModel(manifest, file) {
  const candidates = manifest.models.filter((m) => m.backend === 'onnx' && (!file || m.file === file));
  if (candidates.length === 0) {
    const have = manifest.models.map((m) => `${m.file} (${m.backend})`).join(', ');
    throw new BundleError(file
      ? `bundle has no ONNX model ${file}; it has ${have}`
      : `bundle has no ONNX model (it has ${have}); this app runs ONNX only: build with --target web-wasm`);
  }
  return candidates[0];
}

export function softmax(logits) {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const exp = Array.from(logits, (x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((x) => x / sum);
}

/** Python's Pipeline._top: [{label, score}], with the out-of-scope fallback. */
export function topK(probs, manifest, k) {
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a]); // stable
  let items = order.slice(0, k).map((i) => ({ label: manifest.labels[i], score: probs[i] }));
  const best = items[0];
  const oos = manifest.oos_threshold != null && best.score < manifest.oos_threshold;
  if (oos) {
    items = [{ label: manifest.oos_label, score: best.score }, ...items.slice(1).filter((it) => it.label !== manifest.oos_label)];
  }
  return { items, oos, bestGuess: best };
}

export class Classifier {
  static async create(ort, bundle, { model: file, threads } = {}) {
    const manifest = bundle.manifest;
    const entry = selectModel(manifest, file);
    const maxLength = Math.min(manifest.max_length, entry.sequence_length ?? manifest.max_length);
    const tokenizer = BertWordPieceTokenizer.fromJSON(textOf(bundle.files.get(manifest.tokenizer_file)), { maxLength });
    ort.env.wasm.numThreads = threads;
    const t0 = performance.now();
    let session;
    try {
      session = await ort.InferenceSession.create(new Uint8Array(bundle.files.get(entry.file)), {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      });
    } catch (err) {
      throw new BundleError(`onnxruntime-web cannot load ${entry.file}: ${String(err.message ?? err).split('\n')[0]}`);
    }
    const missing = session.inputNames.filter((n) => !entry.input_names.includes(n));
    if (missing.length) throw new BundleError(`${entry.file} takes input(s) ${missing.join(', ')} that the manifest does not name`);
    return new Classifier(ort, session, tokenizer, manifest, entry, performance.now() - t0);
  }

  constructor(ort, session, tokenizer, manifest, entry, sessionMs) {
    Object.assign(this, { ort, session, tokenizer, manifest, entry, sessionMs });
    this.outputName = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  }

  async logitsForIds(ids) {
    const n = ids.length;
    const shape = [1, n];
    const all = {
      input_ids: new this.ort.Tensor('int64', BigInt64Array.from(ids, BigInt), shape),
      attention_mask: new this.ort.Tensor('int64', new BigInt64Array(n).fill(1n), shape),
      token_type_ids: new this.ort.Tensor('int64', new BigInt64Array(n), shape),
    };
    const feeds = {};
    for (const name of this.session.inputNames) feeds[name] = all[name];
    const out = await this.session.run(feeds);
    const logits = Array.from(out[this.outputName].data);
    for (const t of Object.values(out)) t.dispose?.();
    if (logits.length !== this.manifest.labels.length) {
      throw new BundleError(`${this.entry.file} outputs ${logits.length} logits but the manifest lists ${this.manifest.labels.length} labels`);
    }
    return logits;
  }

  async classify(text, k = 3) {
    const t0 = performance.now();
    const ids = this.tokenizer.encode(text);
    const t1 = performance.now();
    const logits = await this.logitsForIds(ids);
    const probs = softmax(logits);
    const { items, oos, bestGuess } = topK(probs, this.manifest, Math.min(k, this.manifest.labels.length));
    const t2 = performance.now();
    return {
      text, ids, logits, items, oos, bestGuess,
      label: items[0].label, score: items[0].score,
      latency: { tokenizeMs: t1 - t0, modelMs: t2 - t1, totalMs: t2 - t0 },
    };
  }

  /** Replay the bundle's parity fixtures here, as edge_runtime.parity.replay does. */
  async replayFixtures(fixtures) {
    const want = fixtures.logits[this.entry.file];
    if (!want) throw new BundleError(`parity fixtures hold no logits for ${this.entry.file}`);
    const rows = [];
    let idsEqual = 0;
    let argmaxAgree = 0;
    let maxAbsDiff = 0;
    for (let i = 0; i < fixtures.texts.length; i++) {
      const ids = this.tokenizer.encode(fixtures.texts[i]);
      const same = ids.length === fixtures.input_ids[i].length && ids.every((x, j) => x === fixtures.input_ids[i][j]);
      // Recorded ids, so a tokenizer difference cannot hide a model difference.
      const got = await this.logitsForIds(fixtures.input_ids[i]);
      const diff = Math.max(...got.map((x, j) => Math.abs(x - want[i][j])));
      const agree = argmax(got) === argmax(want[i]);
      idsEqual += same ? 1 : 0;
      argmaxAgree += agree ? 1 : 0;
      maxAbsDiff = Math.max(maxAbsDiff, diff);
      rows.push({ text: fixtures.texts[i], ids, idsEqual: same, logits: got, maxAbsDiff: diff, argmaxAgree: agree });
    }
    const n = fixtures.texts.length;
    const tolerance = this.entry.tolerance ?? 1e-4;
    return {
      model: this.entry.file, n, idsEqual, argmaxAgree, maxAbsDiff, tolerance, rows,
      ok: idsEqual === n && argmaxAgree === n && maxAbsDiff <= tolerance,
    };
  }
}

function argmax(xs) {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
