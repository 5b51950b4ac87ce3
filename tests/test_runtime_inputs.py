"""Inputs: every string Python can hold gets an answer (or an InputError past the length limit),
`predict --jsonl` streams and loses nothing, texts starting with '-' can be classified."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import LABELS

from edge_runtime import InputError, Pipeline
from edge_runtime.cli import main
from edge_runtime.limits import Limits


@pytest.fixture(scope="module")
def pipe(bundle_dir):
    return Pipeline.load(bundle_dir, threads=1)


def random_string(rng: random.Random) -> str:
    """Strings of every kind Python holds: any code point (lone surrogates and NUL included), bytes
    decoded with surrogateescape, lengths from 0 past the model's max length."""
    roll = rng.random()
    length = rng.choice((0, 1, 2, 5, 20, 80, 400))
    if roll < 0.35:  # random bytes as a program reading a file with errors="surrogateescape" sees them
        return bytes(rng.randrange(256) for _ in range(length)).decode("utf-8", "surrogateescape")
    if roll < 0.55:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(length))
    if roll < 0.7:
        return "".join(chr(rng.choice((0, 0xD800, 0xDFFF, 0xFFFD, 0xFEFF, 0x200B, 0x0301, 0x1F680, 10, 13, 9, 32)))
                       for _ in range(length))
    if roll < 0.85:
        return "".join(rng.choice(" \t\nabcdefghij.,!?'-0123456789ÀÉßπ漢字🙂") for _ in range(length))
    words = "book a flight to Paris what is my balance wake me up at 6am".split()
    return " ".join(rng.choice(words) for _ in range(length // 4 + 1))


def fuzz_inputs(pipe, n: int, seed: int) -> int:
    rng = random.Random(seed)
    texts = [random_string(rng) for _ in range(n)]
    results = pipe(texts, batch_size=64, top_k=2)
    assert len(results) == n
    for ranked in results:
        assert ranked[0]["label"] in LABELS and 0.0 < ranked[0]["score"] <= 1.0
    return sum(any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts)


@pytest.mark.parametrize("model", ["model.onnx", "model.int8.onnx"])
def test_fuzz_10000_strings_all_answered(bundle_dir, model):
    pipe = Pipeline.load(bundle_dir, threads=1, model=model)  # fp32 batched; int8 one text per call
    start = time.perf_counter()
    with_surrogates = fuzz_inputs(pipe, 10_000, seed=14)
    seconds = time.perf_counter() - start
    print(f"input fuzz {model}: 10000 strings ({with_surrogates} with lone surrogates) answered in {seconds:.1f} s")
    assert with_surrogates > 2000  # the case that raised a bare TypeError is well represented
    assert seconds < 30


@pytest.mark.slow
def test_fuzz_200000_strings_all_answered(pipe):
    print(f"input fuzz: 200000 strings, {fuzz_inputs(pipe, 200_000, seed=1414)} with lone surrogates: all answered")


def test_lone_surrogates_are_answered_like_replacement_characters(pipe):
    """Each lone surrogate reads as U+FFFD, which BERT's normalizer drops: the same answer as without it."""
    for text in ["\ud800", "ok \udcff\udcfe fine", b"caf\xe9 \xff".decode("utf-8", "surrogateescape")]:
        got = pipe.logits(text)
        assert np.array_equal(got, pipe.logits("".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)))
        assert np.array_equal(got, pipe.logits("".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)))


def test_only_the_length_limit_is_an_input_error(bundle_dir):
    pipe = Pipeline.load(bundle_dir, limits=Limits(max_text_chars=1000))
    assert pipe("x" * 1000)[0]["label"] in LABELS
    with pytest.raises(InputError, match="item 1 has 1,001 characters, past the limit of 1,000"):
        pipe(["ok", "x" * 1001])
    default = Pipeline.load(bundle_dir)
    with pytest.raises(InputError, match="past the limit of 100,000"):
        default("hello " * 20_000)


# --- predict --jsonl --------------------------------------------------------------------------

def predict_jsonl(bundle, stdin: bytes, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", "predict", str(bundle), "--jsonl", *extra],
                          input=stdin, capture_output=True, timeout=300)


def test_jsonl_loses_nothing(bundle_dir):
    """The issue: one bad line ended the run with a traceback and the good lines queued with it were
    never written. Now every good line is answered, with its line number, and each bad one reported."""
    lines = [json.dumps({"text": "move money to savings"}).encode(),
             json.dumps({"text": "bad \ud800 surrogate"}, ensure_ascii=True).encode(),  # valid JSON escape
             b"[" * 100_000 + b"]" * 100_000,  # RecursionError before
             b'{"text": "caf\xe9"}',  # not UTF-8
             b"",  # blank: skipped, not an error
             json.dumps({"text": "x" * 100_001}).encode(),
             json.dumps({"text": ["a list"]}).encode(),
             b'{"text": 1' + b"0" * 5000 + b"}",
             json.dumps({"text": "will it rain", "id": 7}).encode(),
             json.dumps({"text": "tail without newline"}).encode()]
    result = predict_jsonl(bundle_dir, b"\n".join(lines), "--batch-size", "4")
    assert result.returncode == 1
    out = [json.loads(line) for line in result.stdout.decode().split("\n") if line]
    assert [(r["line"], r["text"]) for r in out] == [(1, "move money to savings"), (2, "bad \ud800 surrogate"),
                                                      (9, "will it rain"), (10, "tail without newline")]
    err = result.stderr.decode()
    assert "Traceback" not in err
    for number, problem in [(3, "not valid JSON (nested too deeply)"), (4, "not UTF-8"),
                            (6, "text has 100,001 characters, past the limit"),
                            (7, 'expected an object with a string field "text"'), (8, "not valid JSON")]:
        assert f"line {number}: {problem}" in err, err
    assert "line 5" not in err
    assert err.strip().splitlines()[-1] == "error: 5 line(s) failed, 4 classified"


def test_jsonl_fuzz_every_line_accounted_for(bundle_dir):
    rng = random.Random(5)
    raw_lines, good = [], set()
    for number in range(1, 2001):
        roll = rng.random()
        if roll < 0.5:
            raw_lines.append(json.dumps({"text": random_string(rng)}).encode())
            good.add(number)
        elif roll < 0.7:
            raw_lines.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))).replace(b"\n", b" "))
        elif roll < 0.8:
            raw_lines.append(rng.choice([b"[" * 5000, b"{" * 3000, b'{"text": [[[[[[', b"null", b"1e999"]))
        else:
            raw_lines.append(json.dumps({"text": random_string(rng), "meta": {"n": number}}).encode())
            good.add(number)
    result = predict_jsonl(bundle_dir, b"\n".join(raw_lines) + b"\n", "--batch-size", "16")
    # JSON Lines split on "\n" only: U+2028 and friends may stand raw inside a string.
    answered = {json.loads(line)["line"] for line in result.stdout.decode().split("\n") if line}
    reported = {int(line.split(":")[0].split()[1]) for line in result.stderr.decode().splitlines()
                if line.startswith("line ")}
    blank = {i + 1 for i, line in enumerate(raw_lines) if not line.strip()}
    assert answered == good  # every good line answered...
    assert answered | reported | blank == set(range(1, 2001))  # ...and every other one reported (or blank)
    assert not answered & reported and "Traceback" not in result.stderr.decode()
    assert result.returncode == (1 if reported else 0)


def test_jsonl_answers_each_line_as_it_arrives(bundle_dir):
    """Streaming: an answer comes back before the next line is written (no waiting for a batch of 32)."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime.cli", "predict", str(bundle_dir), "--jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for number, text in enumerate(["wake me up", "what's my balance", "will it rain"], start=1):
            proc.stdin.write(json.dumps({"text": text}) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            assert answer["line"] == number and answer["text"] == text
        proc.stdin.write("not json\n")
        proc.stdin.flush()
        assert proc.stderr.readline().startswith("line 4: not valid JSON")
    finally:
        proc.stdin.close()
    assert proc.wait(timeout=60) == 1


def test_jsonl_in_process_with_a_byte_order_mark(bundle_dir, monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(b'\xef\xbb\xbf{"text": "first"}\r\n{"text": "second"}\r\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["predict", str(bundle_dir), "--jsonl"]) == 0
    assert [json.loads(x)["text"] for x in capsys.readouterr().out.splitlines()] == ["first", "second"]


# --- texts on the command line ----------------------------------------------------------------

def test_texts_starting_with_a_dash_after_double_dash(bundle_dir, capsys):
    assert main(["predict", str(bundle_dir), "--top-k", "2", "--", "-5 degrees?", "--help", "-x"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in out] == ["-5 degrees?", "--help", "-x"]
    assert all(len(r["top_k"]) == 2 for r in out)
    assert main(["predict", str(bundle_dir), "first", "--", "-second"]) == 0
    assert [json.loads(x)["text"] for x in capsys.readouterr().out.splitlines()] == ["first", "-second"]
    with pytest.raises(SystemExit):
        main(["predict", str(bundle_dir), "-x"])
    assert "goes after --" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", str(bundle_dir), "--", "text"])


def test_non_utf8_locale_output(bundle_dir):
    """JSON lines are UTF-8 whatever the locale says (latin-1 stdout could not print an emoji)."""
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "predict", str(bundle_dir), "rocket 🚀"],
                            capture_output=True, env={"PYTHONIOENCODING": "latin-1", "PATH": "/usr/bin:/bin",
                                                      "PYTHONPATH": ":".join(sys.path)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode("utf-8"))["text"] == "rocket 🚀"
