"""The bundle contract: manifest round trip, checksums, schema, archives and their safety."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import tarfile
import zipfile

import pytest

from edge_runtime import (
    BundleError,
    ChecksumError,
    Manifest,
    Pipeline,
    SchemaVersionError,
    UnsafeArchiveError,
    open_bundle,
)
from edge_runtime.manifest import MANIFEST_FILE, sha256_file


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    return shutil.copytree(bundle_dir, tmp_path / "bundle")


def _rewrite_manifest(bundle, **changes):
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    data.update(changes)
    (bundle / MANIFEST_FILE).write_text(json.dumps(data))


def test_manifest_round_trips_and_records_the_contract(bundle_dir):
    manifest = Manifest.read(bundle_dir)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.backend == "onnx" and manifest.model_file == "model.onnx"
    assert manifest.tokenizer_file in manifest.files and manifest.fixtures_file in manifest.files
    assert set(manifest.files) == {"model.onnx", "model.int8.onnx", "tokenizer.json", "fixtures.json"}
    for name, digest in manifest.files.items():
        assert sha256_file(bundle_dir / name) == digest
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.labels = ()  # frozen


def test_tampered_model_is_refused(bundle_copy):
    with open(bundle_copy / "model.int8.onnx", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ChecksumError, match="model.int8.onnx"):
        Pipeline.load(bundle_copy)


def test_missing_file_and_missing_bundle(bundle_copy, tmp_path):
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="missing: tokenizer.json"):
        open_bundle(bundle_copy)
    with pytest.raises(BundleError, match="not found"):
        Pipeline.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no manifest.json"):
        Pipeline.load(tmp_path / "empty")


def test_unlisted_model_file_is_refused(bundle_copy):
    shutil.copyfile(bundle_copy / "model.onnx", bundle_copy / "extra.onnx")
    with pytest.raises(BundleError, match="does not list: extra.onnx"):
        open_bundle(bundle_copy)


def test_unknown_schema_version_and_corrupt_manifest(bundle_copy):
    _rewrite_manifest(bundle_copy, schema_version=99)
    with pytest.raises(SchemaVersionError, match="99"):
        open_bundle(bundle_copy)
    (bundle_copy / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        open_bundle(bundle_copy)
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(BundleError, match="lacks required field"):
        open_bundle(bundle_copy)


def test_label_count_must_match_model_width(bundle_copy):
    labels = json.loads((bundle_copy / MANIFEST_FILE).read_text())["labels"]
    _rewrite_manifest(bundle_copy, labels=labels + ["extra"])
    with pytest.raises(BundleError, match="outputs 5 logits but the manifest lists 6 labels"):
        Pipeline.load(bundle_copy)


def test_zip_and_tar_archives_load(bundle_dir, tmp_path):
    from edge_sdk.builder.bundle import pack

    tgz = pack(bundle_dir, tmp_path / "b.tar.gz")
    zpath = tmp_path / "b.zip"
    with zipfile.ZipFile(zpath, "w") as zf:  # files inside one folder, as zipping a directory gives
        for f in bundle_dir.iterdir():
            zf.write(f, f"tiny/{f.name}")
    expected = Pipeline.load(bundle_dir)("wake me up at 6am")
    assert Pipeline.load(tgz)("wake me up at 6am") == expected
    assert Pipeline.load(zpath)("wake me up at 6am") == expected


def _tar_with(tmp_path, name, *, symlink=False):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        if symlink:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            data = b"x"
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name, symlink, match", [
    ("/etc/evil", False, "absolute path"),
    ("../evil", False, "'..'"),
    ("a/../../evil", False, "'..'"),
    ("manifest.json", True, "link"),
])
def test_unsafe_tar_members_are_refused(tmp_path, name, symlink, match):
    with pytest.raises(UnsafeArchiveError, match=match):
        open_bundle(_tar_with(tmp_path, name, symlink=symlink))
    assert not (tmp_path.parent / "evil").exists()


def test_unsafe_zip_members_are_refused(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../evil", "x")
    with pytest.raises(UnsafeArchiveError, match="'..'"):
        open_bundle(path)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("manifest.json")
        info.external_attr = (0o120777 << 16)  # a symlink entry
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="link"):
        open_bundle(link)


def test_corrupt_archive_and_unknown_file_type(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="cannot unpack"):
        open_bundle(bad)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(BundleError, match="neither a bundle directory"):
        open_bundle(other)
