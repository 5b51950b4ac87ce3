"""The manifest checked completely at load: every wrong field a BundleError naming it, and a fuzzer
over manifests (types, sizes, nesting, bytes) that finds no other exception."""

from __future__ import annotations

import copy
import json
import random
import shutil
import time
import warnings

import pytest
from conftest import make_bundle

from edge_runtime import BundleError, EdgeRuntimeError, Manifest, Pipeline, SchemaVersionError
from edge_runtime.manifest import MANIFEST_FILE, ModelFile

NAMES = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, tokenizer_path, tiny_int8_onnx):
    """One int8 model only: cheap to hash and to load many times."""
    out = tmp_path_factory.mktemp("manifest") / "small"
    make_bundle(out, tokenizer_path, [(ModelFile("model.int8.onnx", "onnx", "int8", NAMES, tolerance=0.05),
                                       tiny_int8_onnx)], oos_threshold=0.2)
    return out


@pytest.fixture(scope="module")
def good(small_bundle) -> dict:
    return json.loads((small_bundle / MANIFEST_FILE).read_text())


def changed(data: dict, path: str, value=None, *, delete: bool = False) -> dict:
    """A deep copy of `data` with the field at dotted `path` (list indices as numbers) set or deleted."""
    data = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return data


# (field to change, value, text the error must contain: the field's name and the problem)
CASES = [
    ("oos_threshold", "abc", "oos_threshold: expected a finite number"),
    ("oos_threshold", 1.5, "oos_threshold: 1.5 is outside"),
    ("oos_threshold", True, "oos_threshold: expected a finite number"),
    ("execution", None, "execution: expected an object"),
    ("execution.threads", 0, "execution.threads: 0 is outside 1..1024"),
    ("execution.threads", "4", "execution.threads: expected an integer"),
    ("execution.providers", "CPUExecutionProvider", "execution.providers: expected a list"),
    ("execution.providers", [7], "execution.providers[0]: expected a string"),
    ("max_length", -1, "max_length: -1 is outside 3..65536"),
    ("max_length", 10**12, "max_length: 1000000000000 is outside"),
    ("max_length", 32.0, "max_length: expected an integer, got float"),
    ("max_length", True, "max_length: expected an integer, got bool"),
    ("tokenizer_file", ["tokenizer.json"], "tokenizer_file: expected a file name, got list"),
    ("tokenizer_file", "vocab.txt", "tokenizer_file: vocab.txt has no checksum"),
    ("fixtures_file", 3, "fixtures_file: expected a file name"),
    ("labels", "balance", "labels: expected a list"),
    ("labels", ["only"], "needs two or more"),
    ("labels.1", "balance", "labels[1]: 'balance' is already labels[0]"),
    ("labels.2", 3, "labels[2]: expected a string"),
    ("labels.2", "", "labels[2]: a string of 0 characters"),
    ("labels.2", "\ud800", "labels[2]: holds a lone surrogate"),
    ("oos_label", "nope", "oos_label: 'nope' is not one of the labels"),
    ("models", [], "models: 0 items"),
    ("models", {"file": "model.int8.onnx"}, "models: expected a list"),
    ("models.0", "model.int8.onnx", "models[0]: expected an object"),
    ("models.0.backend", "pytorch", "models[0].backend: 'pytorch' is not a known backend"),
    ("models.0.file", "../model.int8.onnx", "models[0].file: '../model.int8.onnx' is not an allowed"),
    ("models.0.file", ["model.int8.onnx"], "models[0].file: expected a file name, got list"),
    ("models.0.tolerance", -0.1, "models[0].tolerance: -0.1 is outside"),
    ("models.0.tolerance", "0.05", "models[0].tolerance: expected a finite number"),
    ("models.0.input_names", ["input_ids", "pixel_values"], "models[0].input_names[1]: 'pixel_values'"),
    ("models.0.input_names", ["attention_mask"], "lacks input_ids"),
    ("models.0.input_names", ["input_ids", "input_ids"], "names an input twice"),
    ("models.0.sequence_length", 0, "models[0].sequence_length: 0 is outside"),
    ("models.0.metrics", [], "models[0].metrics: expected an object"),
    ("models.0.disabled_optimizers", "SkipLayerNormFusion", "models[0].disabled_optimizers: expected a list"),
    ("models.0.disabled_optimizers", [""], "models[0].disabled_optimizers[0]: a string of 0 characters"),
    ("models.0.disabled_optimizers", ["x"] * 17, "models[0].disabled_optimizers: 17 items"),
    ("files", [], "files: expected an object"),
    ("files.tokenizer.json", "abc", "files['tokenizer.json']: expected 64 lowercase hex"),
    ("files..hidden", "0" * 64, "files: '.hidden' is not an allowed bundle file name"),
    ("files.manifest.json", "0" * 64, "files: manifest.json cannot be listed"),
    ("files.signature.json", "0" * 64, "files: signature.json cannot be listed"),
    ("files.a\\b", "0" * 64, "is not an allowed bundle file name"),
    ("files.Tokenizer.json", "0" * 64, "differ only in case"),
    ("files.model.int8.onnx/x", "0" * 64, "listed as a file and as the folder"),
    ("task", "token-classification", "task: 'token-classification' is not one this runtime runs"),
    ("target", "arm64", "target: expected an object"),
    ("target.name", 5, "target.name: expected a string"),
    ("sdk_version", 1, "sdk_version: expected a string"),
    ("metrics", {"a": json.loads("[" * 40 + "]" * 40)}, "nested more than 32"),
]


@pytest.mark.parametrize("field, value, message", CASES, ids=[f"{c[0]}={str(c[1])[:20]}" for c in CASES])
def test_each_wrong_field_is_a_bundle_error_naming_it(good, field, value, message):
    if field.startswith("files."):  # file names hold dots: set the key directly
        data = copy.deepcopy(good)
        data["files"][field[len("files."):]] = value
    else:
        data = changed(good, field, value)
    with pytest.raises(BundleError) as info:
        Manifest.from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field", ["labels", "models", "files", "max_length"])
def test_required_fields(good, field):
    with pytest.raises(BundleError, match=f"lacks required field.*{field}"):
        Manifest.from_dict(changed(good, field, delete=True))
    with pytest.raises(BundleError, match="lacks required field 'backend'"):
        Manifest.from_dict(changed(good, "models.0.backend", delete=True))


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "a": 2}', "key 'a' appears twice"),
    ('{"max_length": NaN}', "NaN is not a JSON number"),
    ('{"oos_threshold": 1e999}', "overflows a float"),
    ('{"x": ' + "9" * 5000 + "}", "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("[1, 2]", "does not hold a JSON object"),
    (b"\xff{}", "not UTF-8"),
])
def test_json_that_python_accepts_but_a_manifest_must_not(text, message):
    with pytest.raises(BundleError, match=message):
        Manifest.from_json(text)


def test_schema_version_and_unknown_fields(good):
    for version in (2, "1", 1.0, None, True):
        with pytest.raises(SchemaVersionError):
            Manifest.from_dict(changed(good, "schema_version", version))
    newer = changed(good, "added_by_a_newer_sdk", {"anything": [1, 2]})
    assert Manifest.from_dict(newer) == Manifest.from_dict(good)  # ignored, not fatal


def test_a_wrong_field_is_refused_at_load_not_at_predict(small_bundle, tmp_path):
    """The issue: `oos_threshold: "abc"` passed verify and failed at predict time."""
    from edge_runtime.cli import main

    bundle = shutil.copytree(small_bundle, tmp_path / "b")
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    data["oos_threshold"] = "abc"
    (bundle / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="oos_threshold"):
        Pipeline.load(bundle)
    assert main(["verify", str(bundle)]) == 1


# --- the fuzzer -------------------------------------------------------------------------------

NASTY = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**12, -(10**30), 0.5, -0.0, 1e308, 1e-308, "", "a",
         "x" * 5000, "\ud800", "\x00", "../../etc/passwd", "/etc/passwd", "C:\\x", "model.int8.onnx",
         "tokenizer.json", ".hidden", "a/b/c", "😀", "𝔘𝔫𝔦", [], {}, [[]], [None], ["a", "a"], {"": None},
         {"file": 1}, list(range(300)), {str(i): i for i in range(300)}]


def nasty(rng: random.Random):
    return copy.deepcopy(rng.choice(NASTY))  # a copy: later mutations must not change NASTY


def nested(rng: random.Random):
    node = nasty(rng) if rng.random() < 0.5 else rng.choice(NASTY[:20])
    for _ in range(rng.randrange(1, 60)):
        node = [node] if rng.random() < 0.5 else {"k": node}
    return node


def paths(value, prefix=()):
    """Every (path, value) in a JSON tree down to 8 levels, the root included."""
    yield prefix, value
    if len(prefix) >= 8:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, prefix + (i,))


def mutate(data: dict, rng: random.Random) -> str:
    """One random change to a good manifest, returned as the JSON text a file would hold."""
    data = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        where = [p for p, _ in paths(data) if p]
        path = rng.choice(where)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.45:
            parent[path[-1]] = nasty(rng)
        elif roll < 0.6:
            parent[path[-1]] = nested(rng)
        elif roll < 0.7 and isinstance(parent, dict):
            del parent[path[-1]]
        elif roll < 0.8 and isinstance(parent, dict):
            parent[rng.choice(["files", "extra", "oos_label", "x/../y", "tokenizer_file"])] = nasty(rng)
        elif roll < 0.9 and isinstance(parent[path[-1]], list):
            parent[path[-1]] = parent[path[-1]] * rng.randrange(2, 50)
        else:
            parent[path[-1]] = type(parent[path[-1]]).__name__
    text = json.dumps(data)
    if rng.random() < 0.15:  # damage the text itself
        raw = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(rng.randrange(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return raw.decode("utf-8", "surrogateescape")
    return text


def fuzz_manifests(good: dict, n: int, seed: int) -> dict:
    rng = random.Random(seed)
    outcome = {"ok": 0, "refused": 0}
    for _ in range(n):
        text = mutate(good, rng)
        try:
            Manifest.from_json(text.encode("utf-8", "surrogateescape"))
            outcome["ok"] += 1
        except BundleError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            message.encode("utf-8")  # printable: no lone surrogate leaks into a message
            outcome["refused"] += 1
    return outcome


def test_fuzz_10000_manifests_no_traceback(good):
    start = time.perf_counter()
    outcome = fuzz_manifests(good, 10_000, seed=14)
    seconds = time.perf_counter() - start
    print(f"manifest fuzz: 10000 cases, {outcome} in {seconds:.1f} s")
    assert outcome["refused"] > 8000 and outcome["ok"] > 100  # the mutations reach both sides
    assert seconds < 30


def consistent_mutant(good: dict, rng: random.Random) -> dict:
    """A manifest the schema accepts but that may not fit its files: other labels, another listed
    file as tokenizer, fixtures or model, a max_length past the model's positions, other inputs, a
    hash of another file, the ONNX model declared as TFLite, ..."""
    data = copy.deepcopy(good)
    model = data["models"][0]
    listed = sorted(data["files"])
    for _ in range(rng.randrange(1, 4)):
        roll = rng.randrange(10)
        if roll == 0:
            data["max_length"] = rng.choice((3, 4, 16, 512, 513, 4096, 65536))
        elif roll == 1:
            data["labels"] = rng.choice((data["labels"][:-1], data["labels"] + ["extra"], data["labels"][::-1],
                                         [f"l{i}" for i in range(rng.randrange(2, 300))]))
            data["oos_label"] = data["labels"][-1]
        elif roll == 2:
            data[rng.choice(("tokenizer_file", "fixtures_file"))] = rng.choice(listed)
        elif roll == 3:
            model["file"] = rng.choice(listed)
        elif roll == 4:
            model["input_names"] = ["input_ids"] + rng.sample(["attention_mask", "token_type_ids"], rng.randrange(3))
        elif roll == 5:
            model["backend"] = "tflite"
            model["sequence_length"] = rng.choice((None, 1, 32, 65536))
        elif roll == 6:
            name = rng.choice(listed)
            data["files"][name] = data["files"][rng.choice(listed)]
        elif roll == 7:
            data["oos_threshold"] = rng.random()
            data["oos_label"] = rng.choice(data["labels"])
        elif roll == 8:
            data["execution"] = {"threads": rng.randrange(1, 1025), "providers": rng.choice(
                ([], ["CUDAExecutionProvider"], ["CPUExecutionProvider"] * 3, ["NoSuchExecutionProvider"]))}
        else:
            model["tolerance"] = rng.choice((0.0, 1e-9, 1e6))
    return data


def test_fuzzed_manifests_through_pipeline_load(small_bundle, good, tmp_path):
    """Manifests the schema accepts but that do not fit their files still load and predict, or fail
    with a one-line EdgeRuntimeError (a checksum, the model's width, a tokenizer that is not one, a
    length past the model's positions...): never another exception, at load or at predict time."""
    bundle = shutil.copytree(small_bundle, tmp_path / "b")
    rng = random.Random(7)
    outcome = {"answered": 0, "refused": 0}
    texts = ["wake me up at 6am", "", "how much money do I have " * 120, "\ud800 x"]
    for _ in range(300):
        data = consistent_mutant(good, rng)
        Manifest.from_dict(data)  # the schema accepts it: what follows tests the rest of the runtime
        (bundle / MANIFEST_FILE).write_text(json.dumps(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # provider fallbacks, threads past the cores
                Pipeline.load(bundle)(texts, top_k=2)
            outcome["answered"] += 1
        except EdgeRuntimeError as exc:
            assert str(exc) and "\n" not in str(exc)
            outcome["refused"] += 1
    print(f"pipeline fuzz: 300 schema-valid, inconsistent manifests: {outcome}")
    assert outcome["answered"] > 10 and outcome["refused"] > 100


@pytest.mark.slow
def test_fuzz_200000_manifests(good):
    outcome = fuzz_manifests(good, 200_000, seed=1414)
    print(f"manifest fuzz: 200000 cases, {outcome}")
