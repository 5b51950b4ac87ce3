"""`edge-sdk mobile-install`: a verified bundle lands atomically in the mobile demo app's assets,
and bundles the app cannot run are refused with a reason. The app itself is tested in the
browser by `make mobile-test` (android_demo/tests/)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_runtime.bundle import open_bundle
from edge_runtime.manifest import Manifest, ModelFile, sha256_file
from edge_sdk.builder.bundle import pack
from edge_sdk.mobile import install_bundle
from edge_sdk.mobile.command import mobile_install


@pytest.fixture
def app(tmp_path) -> Path:
    """A skeleton of android_demo: Capacitor config naming the web folder, and its index.html."""
    root = tmp_path / "app"
    (root / "web").mkdir(parents=True)
    (root / "web" / "index.html").write_text("<!doctype html>", encoding="utf-8")
    (root / "capacitor.config.json").write_text(json.dumps({"appId": "x.y", "webDir": "web"}), encoding="utf-8")
    return root


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite(bundle: Path, **changes) -> None:
    """Change manifest fields and re-fingerprint every file, so the bundle stays self-consistent."""
    manifest = Manifest.read(bundle)
    files = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.name != "manifest.json"}
    dataclasses.replace(manifest, files=files, **changes).write(bundle)


def run(*args):
    return CliRunner().invoke(mobile_install, [str(a) for a in args], catch_exceptions=False)


def test_installs_a_verified_bundle_into_the_apps_web_folder(bundle_dir, app):
    result = run(bundle_dir, "--app", app)
    assert result.exit_code == 0, result.output
    dest = app / "web" / "bundle"
    assert "installed" in result.output and "model.onnx" in result.output
    installed = open_bundle(dest)  # every file there, checksums intact, nothing unlisted
    assert installed.manifest == Manifest.read(bundle_dir)
    assert sorted(p.name for p in dest.iterdir()) == sorted(["manifest.json", *installed.manifest.files])
    assert [p.name for p in (app / "web").iterdir() if p.name.startswith(".")] == []  # no temp folders left
    assert "warning: this bundle was built for target 'test'" in result.output  # not web-wasm: said, not refused


def test_reinstall_replaces_the_whole_previous_bundle(bundle_dir, app, tmp_path):
    assert run(bundle_dir, "--app", app).exit_code == 0
    stale = app / "web" / "bundle" / "stale.bin"
    stale.write_bytes(b"old")
    other = copy_bundle(bundle_dir, tmp_path / "other")
    rewrite(other, labels=("a", "b", "c", "d", "oos"))
    assert run(other, "--app", app).exit_code == 0
    assert not stale.exists()
    assert open_bundle(app / "web" / "bundle").manifest.labels == ("a", "b", "c", "d", "oos")


def test_an_archive_installs_too(bundle_dir, app, tmp_path):
    archive = pack(bundle_dir, tmp_path / "tiny.tar.gz")
    result = run(archive, "--app", app)
    assert result.exit_code == 0, result.output
    open_bundle(app / "web" / "bundle")


def test_a_tampered_bundle_is_refused_and_the_installed_one_kept(bundle_dir, app, tmp_path):
    assert run(bundle_dir, "--app", app).exit_code == 0
    before = sha256_file(app / "web" / "bundle" / "model.onnx")
    bad = copy_bundle(bundle_dir, tmp_path / "bad")
    data = bytearray((bad / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 1
    (bad / "model.onnx").write_bytes(bytes(data))
    result = run(bad, "--app", app)
    assert result.exit_code == 1
    assert "checksum mismatch for model.onnx" in result.output
    assert sha256_file(app / "web" / "bundle" / "model.onnx") == before


def test_a_bundle_with_a_tflite_model_is_refused_with_advice(bundle_dir, app, tmp_path):
    bundle = copy_bundle(bundle_dir, tmp_path / "tfl")
    (bundle / "model.tflite").write_bytes(b"TFL3 not really")
    manifest = Manifest.read(bundle)
    rewrite(bundle, models=(*manifest.models, ModelFile("model.tflite", "tflite", "int8", ("input_ids",), 64)))
    result = run(bundle, "--app", app)
    assert result.exit_code == 1
    assert "ONNX models only" in result.output and "model.tflite (tflite)" in result.output
    assert "--target web-wasm" in result.output
    assert not (app / "web" / "bundle").exists()


def test_an_fp16_model_is_refused(bundle_dir, app, tmp_path):
    bundle = copy_bundle(bundle_dir, tmp_path / "fp16")
    manifest = Manifest.read(bundle)
    rewrite(bundle, models=(dataclasses.replace(manifest.models[0], precision="fp16"), *manifest.models[1:]))
    result = run(bundle, "--app", app)
    assert result.exit_code == 1 and "is fp16" in result.output


def test_a_tokenizer_the_js_tokenizer_does_not_implement_is_refused(bundle_dir, app, tmp_path):
    bundle = copy_bundle(bundle_dir, tmp_path / "bpe")
    spec = json.loads((bundle / "tokenizer.json").read_text(encoding="utf-8"))
    spec["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    (bundle / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    rewrite(bundle)
    result = run(bundle, "--app", app)
    assert result.exit_code == 1
    assert "pre_tokenizer 'ByteLevel'" in result.output and "BertPreTokenizer" in result.output


def test_a_folder_that_is_not_the_app_is_refused(bundle_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(bundle_dir, "--app", tmp_path / "empty")
    assert result.exit_code == 1 and "is not the mobile demo app" in result.output


def test_default_app_is_android_demo_in_the_working_directory(bundle_dir, tmp_path, monkeypatch):
    (tmp_path / "android_demo" / "www").mkdir(parents=True)
    (tmp_path / "android_demo" / "www" / "index.html").write_text("<!doctype html>", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    installed = install_bundle(bundle_dir)
    assert installed.destination == tmp_path / "android_demo" / "www" / "bundle"
    assert installed.model_file == "model.onnx" and installed.model_bytes > 0


def test_the_real_app_declares_what_capacitor_needs():
    app = Path(__file__).resolve().parents[1] / "android_demo"
    config = json.loads((app / "capacitor.config.json").read_text(encoding="utf-8"))
    assert (app / config["webDir"] / "index.html").is_file()
    deps = json.loads((app / "package.json").read_text(encoding="utf-8"))["dependencies"]
    assert {"@capacitor/core", "@capacitor/cli", "@capacitor/android", "onnxruntime-web"} <= set(deps)
