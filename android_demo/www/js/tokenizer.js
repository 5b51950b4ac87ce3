// A BERT WordPiece tokenizer that gives the ids the Python runtime gives (HF `tokenizers` with
// `no_padding()` and `enable_truncation(max_length)`), read from the bundle's tokenizer.json.
//
// Pipeline, as in tokenizers: split off added tokens ([CLS], [MASK], ...) found in the raw text;
// BertNormalizer (drop control characters, whitespace to ' ', spaces around CJK ideographs,
// NFD + drop nonspacing marks, lowercase per code point); BertPreTokenizer (split on whitespace,
// isolate punctuation); WordPiece (greedy longest match, '##' continuation, [UNK] for a word it
// cannot cover or longer than max_input_chars_per_word); truncate to max_length minus the
// special tokens; the post-processor's template ([CLS] A [SEP]).
//
// Character classes come from unicode-tables.js, generated from the installed `tokenizers`: its
// Unicode tables are older than the browser's, and the ids must be the Python ones.
// Plain ES module with no DOM use: it runs in the page, in a worker and in Node (for tests).

import * as tables from './unicode-tables.js';

export class TokenizerConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TokenizerConfigError';
  }
}

class CharClass {
  constructor(flat) {
    this.ranges = Uint32Array.from(flat);
    this.ascii = new Uint8Array(128);
    for (let c = 0; c < 128; c++) this.ascii[c] = this.#search(c) ? 1 : 0;
  }

  has(cp) {
    return cp < 128 ? this.ascii[cp] === 1 : this.#search(cp);
  }

  #search(cp) {
    const r = this.ranges;
    let lo = 0;
    let hi = (r.length >> 1) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cp < r[2 * mid]) hi = mid - 1;
      else if (cp > r[2 * mid + 1]) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

const REMOVED = new CharClass(tables.CLEAN_REMOVED);
const CLEAN_WHITESPACE = new CharClass(tables.CLEAN_WHITESPACE);
const CHINESE = new CharClass(tables.CHINESE);
const NONSPACING_MARK = new CharClass(tables.NONSPACING_MARK);
const WHITESPACE = new CharClass(tables.SPLIT_WHITESPACE);
const PUNCTUATION = new CharClass(tables.PUNCTUATION);
const SPACE = 0x20;
const CAPITAL_SIGMA = 'Σ';

// Code points of a JS string; a lone surrogate (which no Rust string can hold) becomes U+FFFD,
// which the normalizer then drops.
function codePoints(text) {
  const out = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    out.push(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
  }
  return out;
}

function fromCodePoints(cps) {
  let s = '';
  for (let i = 0; i < cps.length; i += 4096) s += String.fromCodePoint(...cps.slice(i, i + 4096));
  return s;
}

function lowercase(text) {
  // Rust lowercases character by character; JS's toLowerCase differs from that only for the
  // context-dependent final sigma, so that one case goes code point by code point.
  if (!text.includes(CAPITAL_SIGMA)) return text.toLowerCase();
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

function parseNormalizer(spec) {
  if (spec == null) return null;
  if (spec.type !== 'BertNormalizer') {
    throw new TokenizerConfigError(`tokenizer.json: normalizer ${spec.type} is not supported (the demo reads BertNormalizer)`);
  }
  const lowercase = spec.lowercase ?? true;
  return {
    cleanText: spec.clean_text ?? true,
    chinese: spec.handle_chinese_chars ?? true,
    stripAccents: spec.strip_accents ?? lowercase, // tokenizers: None follows lowercase
    lowercase,
  };
}

function parseAddedTokens(list, vocab) {
  const raw = [];
  const normalized = [];
  for (const t of list ?? []) {
    if (t.single_word) {
      throw new TokenizerConfigError(`tokenizer.json: added token ${t.content} is single_word, which the demo does not support`);
    }
    const token = { content: t.content, id: t.id, lstrip: !!t.lstrip, rstrip: !!t.rstrip };
    (t.normalized ? normalized : raw).push(token);
    vocab.set(t.content, t.id);
  }
  // Leftmost-longest matching, as tokenizers' aho-corasick does: try longer contents first.
  for (const group of [raw, normalized]) group.sort((a, b) => b.content.length - a.content.length);
  return { raw, normalized };
}

function parsePostProcessor(spec, vocab) {
  if (spec == null) return { before: [], after: [] };
  if (spec.type === 'BertProcessing') {
    return { before: [spec.cls[1]], after: [spec.sep[1]] };
  }
  if (spec.type === 'TemplateProcessing') {
    const before = [];
    const after = [];
    let seen = false;
    for (const piece of spec.single) {
      if (piece.Sequence) {
        if (seen || piece.Sequence.id !== 'A') {
          throw new TokenizerConfigError('tokenizer.json: the single-sequence template must hold sequence A once');
        }
        seen = true;
      } else if (piece.SpecialToken) {
        const special = spec.special_tokens?.[piece.SpecialToken.id];
        const ids = special ? special.ids : [vocab.get(piece.SpecialToken.id)];
        if (ids.some((id) => id === undefined)) {
          throw new TokenizerConfigError(`tokenizer.json: template token ${piece.SpecialToken.id} has no id`);
        }
        (seen ? after : before).push(...ids);
      }
    }
    if (!seen) throw new TokenizerConfigError('tokenizer.json: the single-sequence template has no sequence A');
    return { before, after };
  }
  throw new TokenizerConfigError(`tokenizer.json: post_processor ${spec.type} is not supported (the demo reads TemplateProcessing and BertProcessing)`);
}

export class BertWordPieceTokenizer {
  /**
   * @param {object} json tokenizer.json, parsed
   * @param {{maxLength: number}} options truncation length, special tokens included (the manifest's max_length)
   */
  constructor(json, { maxLength }) {
    const model = json.model ?? {};
    if (model.type !== 'WordPiece') {
      throw new TokenizerConfigError(`tokenizer.json: model ${model.type} is not supported (the demo reads WordPiece)`);
    }
    if (json.pre_tokenizer?.type !== 'BertPreTokenizer') {
      throw new TokenizerConfigError(`tokenizer.json: pre_tokenizer ${json.pre_tokenizer?.type} is not supported (the demo reads BertPreTokenizer)`);
    }
    this.vocab = new Map(Object.entries(model.vocab));
    this.unkToken = model.unk_token ?? '[UNK]';
    this.unkId = this.vocab.get(this.unkToken);
    if (this.unkId === undefined) throw new TokenizerConfigError(`tokenizer.json: unk token ${this.unkToken} is not in the vocabulary`);
    this.prefix = model.continuing_subword_prefix ?? '##';
    this.maxInputChars = model.max_input_chars_per_word ?? 100;
    this.normalizer = parseNormalizer(json.normalizer);
    this.added = parseAddedTokens(json.added_tokens, this.vocab);
    this.template = parsePostProcessor(json.post_processor, this.vocab);
    const specials = this.template.before.length + this.template.after.length;
    if (!Number.isInteger(maxLength) || maxLength <= specials) {
      throw new TokenizerConfigError(`max_length ${maxLength} leaves no room beside ${specials} special tokens`);
    }
    this.maxLength = maxLength;
  }

  static fromJSON(text, options) {
    return new BertWordPieceTokenizer(typeof text === 'string' ? JSON.parse(text) : text, options);
  }

  /** Token ids with the special tokens, truncated to maxLength: what the model is fed. */
  encode(text) {
    const ids = this.encodeWithoutSpecials(String(text));
    const room = this.maxLength - this.template.before.length - this.template.after.length;
    return [...this.template.before, ...ids.slice(0, room), ...this.template.after];
  }

  encodeWithoutSpecials(text) {
    const ids = [];
    for (const piece of splitAdded(text, this.added.raw)) {
      if (piece.id !== undefined) {
        ids.push(piece.id);
        continue;
      }
      const normalized = this.normalize(piece.text);
      for (const inner of splitAdded(normalized, this.added.normalized)) {
        if (inner.id !== undefined) ids.push(inner.id);
        else for (const word of preTokenize(inner.text)) this.wordPiece(word, ids);
      }
    }
    return ids;
  }

  normalize(text) {
    const n = this.normalizer;
    if (!n) return text;
    let cps = codePoints(text);
    if (n.cleanText) {
      const kept = [];
      for (const cp of cps) {
        if (REMOVED.has(cp)) continue;
        kept.push(CLEAN_WHITESPACE.has(cp) ? SPACE : cp);
      }
      cps = kept;
    }
    if (n.chinese) {
      const spaced = [];
      for (const cp of cps) {
        if (CHINESE.has(cp)) spaced.push(SPACE, cp, SPACE);
        else spaced.push(cp);
      }
      cps = spaced;
    }
    let s = fromCodePoints(cps);
    if (n.stripAccents) {
      let out = '';
      for (const ch of s.normalize('NFD')) if (!NONSPACING_MARK.has(ch.codePointAt(0))) out += ch;
      s = out;
    }
    return n.lowercase ? lowercase(s) : s;
  }

  wordPiece(word, ids) {
    const chars = Array.from(word);
    if (chars.length > this.maxInputChars) {
      ids.push(this.unkId);
      return;
    }
    const pieces = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found;
      while (start < end) {
        const sub = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
        found = this.vocab.get(sub);
        if (found !== undefined) break;
        end -= 1;
      }
      if (found === undefined) {
        ids.push(this.unkId);
        return;
      }
      pieces.push(found);
      start = end;
    }
    ids.push(...pieces);
  }
}

// Split `text` around added tokens: [{text} | {id}], leftmost-longest, honouring lstrip/rstrip.
function splitAdded(text, tokens) {
  if (tokens.length === 0 || text.length === 0) return [{ text }];
  const out = [];
  let from = 0; // start of the pending plain text
  let i = 0;
  while (i < text.length) {
    const hit = tokens.find((t) => text.startsWith(t.content, i));
    if (!hit) {
      i += 1;
      continue;
    }
    let start = i;
    let end = i + hit.content.length;
    if (hit.lstrip) while (start > from && isSpace(text, start - 1)) start -= 1;
    if (hit.rstrip) while (end < text.length && isSpace(text, end)) end += 1;
    if (start > from) out.push({ text: text.slice(from, start) });
    out.push({ id: hit.id });
    from = end;
    i = end;
  }
  if (from < text.length) out.push({ text: text.slice(from) });
  return out;
}

function isSpace(text, index) {
  return WHITESPACE.has(text.charCodeAt(index));
}

// BertPreTokenizer: whitespace separates words and is dropped; each punctuation mark is a word.
function preTokenize(text) {
  const words = [];
  let current = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (WHITESPACE.has(cp)) {
      if (current) words.push(current);
      current = '';
    } else if (PUNCTUATION.has(cp)) {
      if (current) words.push(current);
      words.push(ch);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current) words.push(current);
  return words;
}
