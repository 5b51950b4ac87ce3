// The JS tokenizer against HF `tokenizers` (the Python runtime's), in Node: tricky strings at
// several max lengths, every Unicode code point, and the bundle's parity fixtures. Expected ids
// come from make_test_bundle.py (the venv's tokenizers); nothing is hard-coded here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { BertWordPieceTokenizer, TokenizerConfigError } from '../www/js/tokenizer.js';
import { OUT, readJSON } from './common.mjs';

const tokenizerJSON = JSON.parse(readFileSync(join(OUT, 'bundle', 'tokenizer.json'), 'utf8'));
const expected = readJSON('expected.json');

test('tricky strings give the ids tokenizers gives, at max length 8, 64 and 512', () => {
  const { strings, cases } = expected.tricky;
  assert.ok(strings.length >= 50, 'the tricky string set is there');
  for (const { max_length: maxLength, ids } of cases) {
    const tok = new BertWordPieceTokenizer(tokenizerJSON, { maxLength });
    strings.forEach((s, i) => {
      assert.deepEqual(tok.encode(s), ids[i], `max_length ${maxLength}, string ${i}: ${JSON.stringify(s)}`);
    });
  }
});

test('every Unicode code point (as "a<c>b") gives the ids tokenizers gives', () => {
  const tok = new BertWordPieceTokenizer(tokenizerJSON, { maxLength: 512 });
  const mismatches = [];
  let n = 0;
  for (const [first, last, ids] of readJSON('codepoints.json')) {
    for (let c = first; c <= last; c++) {
      n += 1;
      const got = tok.encodeWithoutSpecials(`a${String.fromCodePoint(c)}b`);
      if (got.length !== ids.length || got.some((x, i) => x !== ids[i])) mismatches.push({ c: c.toString(16), got, ids });
    }
  }
  assert.equal(n, 0x110000 - 0x800, 'all scalar values checked');
  assert.deepEqual(mismatches.slice(0, 10), [],
    `${mismatches.length} code points differ; after a tokenizers upgrade run android_demo/scripts/gen_unicode_tables.py`);
});

test("the bundle's parity fixtures tokenize to their recorded ids", () => {
  const manifest = JSON.parse(readFileSync(join(OUT, 'bundle', 'manifest.json'), 'utf8'));
  const fixtures = JSON.parse(readFileSync(join(OUT, 'bundle', 'fixtures.json'), 'utf8'));
  const tok = new BertWordPieceTokenizer(tokenizerJSON, { maxLength: manifest.max_length });
  fixtures.texts.forEach((text, i) => assert.deepEqual(tok.encode(text), fixtures.input_ids[i], JSON.stringify(text)));
});

test('a tokenizer.json the demo cannot honour is refused with a reason', () => {
  const bad = (patch) => () => new BertWordPieceTokenizer({ ...tokenizerJSON, ...patch }, { maxLength: 64 });
  assert.throws(bad({ model: { ...tokenizerJSON.model, type: 'BPE' } }), TokenizerConfigError);
  assert.throws(bad({ normalizer: { type: 'NFKC' } }), /normalizer NFKC is not supported/);
  assert.throws(bad({ pre_tokenizer: { type: 'Metaspace' } }), /pre_tokenizer Metaspace/);
  assert.throws(() => new BertWordPieceTokenizer(tokenizerJSON, { maxLength: 2 }), /no room/);
});
