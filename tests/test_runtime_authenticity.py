"""Authentic bundles: digest pins, Ed25519 signatures, no unlisted file (dot files included), ONNX
external data only from listed files of the bundle. Each attack of issue 14 is built here and must
be refused through the public entry points (Pipeline.load, edge-runtime, edge-sdk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import LABELS, TEXTS, make_bundle

from edge_runtime import BundleError, Pipeline
from edge_runtime.cli import main
from edge_runtime.errors import DigestMismatchError, InputError, SignatureError, SigningUnavailableError
from edge_runtime.manifest import MANIFEST_FILE, SIGNATURE_FILE, ModelFile, sha256_file

NAMES = ("input_ids", "attention_mask", "token_type_ids")
EDGE_SDK = str(Path(sys.executable).parent / "edge-sdk")


@pytest.fixture(scope="module")
def signed_source(tmp_path_factory, tokenizer_path, tiny_int8_onnx):
    out = tmp_path_factory.mktemp("auth") / "bundle"
    make_bundle(out, tokenizer_path, [(ModelFile("model.int8.onnx", "onnx", "int8", NAMES, tolerance=0.05),
                                       tiny_int8_onnx)])
    return out


@pytest.fixture
def bundle(signed_source, tmp_path):
    return shutil.copytree(signed_source, tmp_path / "bundle")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    for name in ("release", "other"):
        result = subprocess.run([EDGE_SDK, "keygen", str(folder / name)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return folder


def digest_of(bundle: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "verify", str(bundle)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if ": digest sha256:" in x)
    return line.split("digest ", 1)[1].split()[0]


def relist(bundle: Path) -> None:
    """What an attacker with write access does: list every file with its new sha256."""
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"] = {p.relative_to(bundle).as_posix(): sha256_file(p) for p in sorted(bundle.rglob("*"))
                         if p.is_file() and p.name not in (MANIFEST_FILE, SIGNATURE_FILE)}
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def edit_label(bundle: Path) -> None:
    """The issue's one-byte edit: a label of the manifest, no file touched."""
    text = (bundle / MANIFEST_FILE).read_text()
    (bundle / MANIFEST_FILE).write_text(text.replace('"weather"', '"weathex"', 1))


def doctor_model(bundle: Path, tiny_onnx: Path) -> None:
    """Swap the model for another one, regenerate fixtures.json and every hash: verify stays OK."""
    from edge_runtime import Manifest
    from edge_sdk.builder.bundle import make_fixtures

    shutil.copyfile(tiny_onnx, bundle / "model.int8.onnx")
    manifest = Manifest.read(bundle)
    make_fixtures(bundle, list(manifest.models), list(TEXTS), manifest.max_length).write(bundle / "fixtures.json")
    relist(bundle)


# --- digest -----------------------------------------------------------------------------------

def test_digest_pins_the_whole_bundle(bundle, tiny_onnx, capsys):
    digest = digest_of(bundle)
    assert digest.startswith("sha256:") and len(digest) == 71
    assert Pipeline.load(bundle, digest=digest).bundle.digest == digest
    assert Pipeline.load(bundle, digest=digest.upper().replace("SHA256:", ""))("hi")  # bare hex, any case
    assert main(["verify", str(bundle), "--digest", digest]) == 0
    assert "(as pinned)" in capsys.readouterr().out

    edit_label(bundle)
    assert main(["verify", str(bundle)]) == 0  # unpinned, a label edit is a valid bundle...
    with pytest.raises(DigestMismatchError, match="not the pinned"):
        Pipeline.load(bundle, digest=digest)  # ...pinned, it is not the one the user trusted
    assert main(["verify", str(bundle), "--digest", digest]) == 1
    assert "not the pinned" in capsys.readouterr().err


def test_doctored_model_with_new_hashes_and_fixtures(bundle, tiny_onnx, capsys):
    digest = digest_of(bundle)
    doctor_model(bundle, tiny_onnx)
    assert main(["verify", str(bundle)]) == 0  # consistent: only a pin or a signature can tell
    with pytest.raises(DigestMismatchError):
        Pipeline.load(bundle, digest=digest)
    assert main(["predict", str(bundle), "--digest", digest, "hello"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: bundle digest is sha256:" in err


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "0" * 64, "", "z" * 64])
def test_malformed_digest_is_an_input_error(bundle, bad):
    with pytest.raises(InputError, match="not a bundle digest"):
        Pipeline.load(bundle, digest=bad)


# --- signatures -------------------------------------------------------------------------------

def sign(bundle: Path, key: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EDGE_SDK, "sign", str(bundle), "--key", str(key)], capture_output=True, text=True)


def test_sign_and_verify(bundle, keys, capsys):
    result = sign(bundle, keys / "release")
    assert result.returncode == 0, result.stderr
    assert "signed" in result.stdout and "key id" in result.stdout
    pipe = Pipeline.load(bundle, public_key=keys / "release.pub")
    assert pipe.bundle.signed_by and pipe("wake me up at 6am")[0]["label"] in LABELS
    pem = (keys / "release.pub").read_bytes()
    assert Pipeline.load(bundle, public_key=pem).bundle.signed_by == pipe.bundle.signed_by
    assert main(["verify", str(bundle), "--public-key", str(keys / "release.pub")]) == 0
    assert f"signed by key {pipe.bundle.signed_by}" in capsys.readouterr().out
    # Signing adds signature.json and leaves the digest alone: pin and signature work together.
    assert Pipeline.load(bundle, digest=pipe.bundle.digest, public_key=pem)
    assert main(["verify", str(bundle)]) == 0
    assert "signature.json present, not checked" in capsys.readouterr().out


def test_signature_refuses_edits_other_keys_and_unsigned_bundles(bundle, keys, tiny_onnx, signed_source):
    public = keys / "release.pub"
    with pytest.raises(SignatureError, match="not signed"):
        Pipeline.load(bundle, public_key=public)
    assert sign(bundle, keys / "other").returncode == 0
    with pytest.raises(SignatureError, match=r"not signed by key \w+ \(it carries signatures by \w+\)"):
        Pipeline.load(bundle, public_key=public)
    assert sign(bundle, keys / "release").returncode == 0  # a second signature, beside the first
    assert len(json.loads((bundle / SIGNATURE_FILE).read_text())["signatures"]) == 2
    Pipeline.load(bundle, public_key=public)
    Pipeline.load(bundle, public_key=keys / "other.pub")

    edit_label(bundle)
    with pytest.raises(SignatureError, match="does not match this bundle"):
        Pipeline.load(bundle, public_key=public)
    doctor_model(bundle, tiny_onnx)
    with pytest.raises(SignatureError, match="does not match this bundle"):
        Pipeline.load(bundle, public_key=public)


def test_signature_file_is_read_strictly_even_without_a_key(bundle, keys):
    assert sign(bundle, keys / "release").returncode == 0
    good = (bundle / SIGNATURE_FILE).read_text()
    for bad in ["not json", json.dumps({"signatures": []}), json.dumps({"signatures": [{}]}),
                good.replace('"ed25519"', '"rsa"'), json.dumps({"signatures": json.loads(good)["signatures"],
                                                                 "payload": "x" * 100})]:
        (bundle / SIGNATURE_FILE).write_text(bad)
        with pytest.raises(SignatureError, match=SIGNATURE_FILE):
            Pipeline.load(bundle)  # a file that is not a signature file is refused, key or no key
    (bundle / SIGNATURE_FILE).write_bytes(b"x" * (65 << 10))
    with pytest.raises(SignatureError, match="larger than"):
        Pipeline.load(bundle)


def test_a_forged_entry_cannot_hide_a_valid_signature(bundle, keys):
    import base64

    assert sign(bundle, keys / "release").returncode == 0
    data = json.loads((bundle / SIGNATURE_FILE).read_text())
    real = data["signatures"][0]
    forged = {**real, "signature": base64.b64encode(bytes(64)).decode()}
    (bundle / SIGNATURE_FILE).write_text(json.dumps({"signatures": [forged, real]}))
    assert Pipeline.load(bundle, public_key=keys / "release.pub").bundle.signed_by == real["key_id"]
    (bundle / SIGNATURE_FILE).write_text(json.dumps({"signatures": [forged]}))
    with pytest.raises(SignatureError, match="does not match this bundle"):
        Pipeline.load(bundle, public_key=keys / "release.pub")


def test_signing_refuses_a_bundle_that_does_not_verify_and_wrong_keys(bundle, keys, tmp_path):
    (bundle / "stray.txt").write_text("x")
    result = sign(bundle, keys / "release")
    assert result.returncode == 1 and "does not list: stray.txt" in result.stderr
    assert "Traceback" not in result.stderr and not (bundle / SIGNATURE_FILE).exists()
    (bundle / "stray.txt").unlink()
    result = sign(bundle, keys / "release.pub")
    assert result.returncode == 1 and "not a PEM private key" in result.stderr
    with pytest.raises(InputError, match="not a PEM public key"):
        Pipeline.load(bundle, public_key=keys / "release")
    with pytest.raises(InputError, match="cannot read public key"):
        Pipeline.load(bundle, public_key=tmp_path / "missing.pub")
    result = subprocess.run([EDGE_SDK, "keygen", str(keys / "release")], capture_output=True, text=True)
    assert result.returncode == 1 and "never overwrites" in result.stderr
    assert (keys / "release").stat().st_mode & 0o077 == 0  # the private key is the owner's alone


def test_missing_cryptography_names_the_extra(bundle, keys, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(SigningUnavailableError, match=r"pip install 'edge-sdk-runtime\[signing\]'"):
        Pipeline.load(bundle, public_key=keys / "release.pub")
    assert main(["verify", str(bundle), "--public-key", str(keys / "release.pub")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "edge-sdk-runtime[signing]" in err
    assert Pipeline.load(bundle)("hello")  # without a key, nothing needs the extra


# --- nothing unlisted -------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [".w.bin", ".git/config", "sub/.hidden", "empty_folder/", "notes.txt"])
def test_no_unlisted_file_or_folder_dot_files_included(bundle, extra, capsys):
    path = bundle / extra
    if extra.endswith("/"):
        path.mkdir()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00" * 16)
    with pytest.raises(BundleError, match="does not list"):
        Pipeline.load(bundle)
    assert main(["verify", str(bundle)]) == 1
    assert "does not list" in capsys.readouterr().err


def test_links_and_special_files_are_refused(bundle):
    os.mkfifo(bundle / "pipe")
    with pytest.raises(BundleError, match="not a regular file: pipe"):
        Pipeline.load(bundle)
    (bundle / "pipe").unlink()
    (bundle / "tokenizer.json").unlink()
    (bundle / "tokenizer.json").symlink_to("/etc/passwd")  # even in place of a listed file
    with pytest.raises(BundleError, match="contains a link, which is not allowed: tokenizer.json"):
        Pipeline.load(bundle)


# --- ONNX external data -----------------------------------------------------------------------

def classifier_with_external_weights(folder: Path, location: str, *, kind: str = "initializer",
                                     data: bytes | None = None) -> Path:
    """A small valid classifier (mean of per-token rows of a [vocab, 5] table) whose table lives in
    external data at `location`; `kind` puts the reference where onnxruntime once forgot to check."""
    from onnx import TensorProto, helper

    vocab, width = 30522, len(LABELS)
    table = np.random.default_rng(0).normal(size=(vocab, width)).astype(np.float32)
    raw = table.tobytes() if data is None else data

    def external(name: str, dims: list[int]) -> TensorProto:
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    tensor = external("table", [vocab, width])
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in NAMES]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", width])
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
             helper.make_node("ReduceMean", ["rows"], ["logits"], axes=[1], keepdims=0)]
    initializers, sparse = [tensor], []
    if kind == "constant":  # the table as a Constant node's tensor attribute
        nodes.insert(0, helper.make_node("Constant", [], ["table"], value=tensor))
        initializers = []
    elif kind == "sparse":  # the values of a sparse initializer (onnxruntime 1.26 read these from anywhere)
        indices = helper.make_tensor("extra_indices", TensorProto.INT64, [1], [0])
        sparse = [helper.make_sparse_tensor(external("extra", [1]), indices, [16])]
        initializers = [helper.make_tensor("table", TensorProto.FLOAT, [vocab, width], table.ravel())]
    elif kind == "subgraph":  # inside an If branch
        branch = helper.make_graph([helper.make_node("Identity", ["table"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, [vocab, width])],
                                   [tensor])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        nodes.insert(0, helper.make_node("If", ["cond"], ["table"], then_branch=branch, else_branch=branch))
        initializers = [cond]
    graph = helper.make_graph(nodes, "classifier", inputs, [out], initializers, sparse_initializer=sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def plain_bundle(tmp_path, tokenizer_path, tiny_onnx):
    out = tmp_path / "plain"
    make_bundle(out, tokenizer_path, [(ModelFile("model.onnx", "onnx", "fp32", NAMES), tiny_onnx)])
    return out


def test_listed_external_data_inside_the_bundle_loads(plain_bundle):
    classifier_with_external_weights(plain_bundle, "weights/table.bin")
    (plain_bundle / "weights").mkdir()
    table = np.random.default_rng(0).normal(size=(30522, len(LABELS))).astype(np.float32)
    (plain_bundle / "weights" / "table.bin").write_bytes(table.tobytes())
    relist(plain_bundle)
    pipe = Pipeline.load(plain_bundle)
    ids = pipe.encoder.ids(["wake me up"])[0]
    assert np.allclose(pipe.logits("wake me up")[0], table[ids].mean(axis=0), atol=1e-6)


def test_unlisted_dot_file_cannot_supply_weights(plain_bundle):
    classifier_with_external_weights(plain_bundle, ".w.bin")
    relist(plain_bundle)  # lists everything but the dot file, as before the fix
    (plain_bundle / ".w.bin").write_bytes(np.zeros((30522, 5), np.float32).tobytes())
    with pytest.raises(BundleError, match="does not list: .w.bin"):
        Pipeline.load(plain_bundle)


@pytest.mark.parametrize("kind", ["initializer", "constant", "sparse", "subgraph"])
@pytest.mark.parametrize("location", ["../../../../../../../../etc/passwd", "/etc/passwd", "weights/../../x.bin",
                                      "*/_ORT_MEM_ADDR_/*", "tokenizer.json/../../../etc/passwd"])
def test_external_data_outside_the_listing_is_refused(plain_bundle, kind, location):
    """Hash-consistent models (the attacker relisted them) whose tensors read from outside the bundle:
    refused before onnxruntime opens them, whatever its version, wherever the tensor sits."""
    classifier_with_external_weights(plain_bundle, location, kind=kind, data=b"\x00" * 64)
    relist(plain_bundle)
    with pytest.raises(BundleError, match="not a file this bundle lists; refused"):
        Pipeline.load(plain_bundle)
    assert main(["verify", str(plain_bundle)]) == 1


def test_external_data_reading_past_a_listed_file_is_refused(plain_bundle):
    classifier_with_external_weights(plain_bundle, "fixtures.json", data=b"\x00" * (10 << 20))
    relist(plain_bundle)
    with pytest.raises(BundleError, match="reads bytes 0..10485760 of fixtures.json"):
        Pipeline.load(plain_bundle)


@pytest.mark.parametrize("damage", [b"", b"\x0a\xff\xff\xff\xff\x0f", b"\x3a\x05\x0a\x03\x0a\x01", b"\x0b"])
def test_a_model_file_that_is_not_onnx_is_one_line(plain_bundle, damage):
    (plain_bundle / "model.onnx").write_bytes(damage)
    relist(plain_bundle)
    with pytest.raises(BundleError) as info:
        Pipeline.load(plain_bundle)
    assert "model.onnx" in str(info.value) and "\n" not in str(info.value)
