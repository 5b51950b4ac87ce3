"""Putting a built bundle into the mobile demo app's assets (`edge-sdk mobile-install`).

    edge-sdk build --target web-wasm --out build
    edge-sdk mobile-install build/web-wasm              # -> android_demo/www/bundle/

The bundle is opened and verified with the device runtime's own code (checksums, schema), checked
for what the app can run (ONNX models only, the BERT WordPiece tokenizer its JS tokenizer
implements), then copied into a hidden folder beside the destination, verified again there and
renamed into place: the app sees the old bundle or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.bundle import Bundle, open_bundle
from edge_runtime.errors import BundleError
from edge_runtime.manifest import MANIFEST_FILE

from ..errors import MobileAppError, UnsupportedBundleError
from ..files import atomic_dir

APP_DIR = "android_demo"
BUNDLE_DIR = "bundle"  # the app loads <webDir>/bundle/manifest.json
WEB_TARGET = "web-wasm"
# onnxruntime-web's wasm backend: float kernels, dynamic int8 (DynamicQuantizeLinear,
# MatMulInteger) and 4-bit weights (MatMulNBits, GatherBlockQuantized: recipes int4 and tiny, checked
# by make mobile-test); fp16 models have no CPU kernels for most ops there.
WEB_PRECISIONS = ("fp32", "int8", "int4")
# What www/js/tokenizer.js implements; anything else would give different ids than Python.
TOKENIZER_PARTS = {
    "model": ("WordPiece",),
    "normalizer": ("BertNormalizer", None),
    "pre_tokenizer": ("BertPreTokenizer",),
    "post_processor": ("TemplateProcessing", "BertProcessing", None),
}


@dataclass(frozen=True)
class Installed:
    app: Path
    destination: Path
    model_file: str
    model_bytes: int
    bundle_bytes: int
    target: str | None
    warnings: tuple[str, ...]


def find_app(app: str | Path | None) -> tuple[Path, Path]:
    """The app folder and its web assets folder (Capacitor's webDir, default www)."""
    if app is None:
        candidates = [Path.cwd() / APP_DIR, Path(__file__).resolve().parents[2] / APP_DIR]
        found = next((c for c in candidates if c.is_dir()), None)
        if found is None:
            raise MobileAppError(f"no {APP_DIR}/ here; run from the edge-sdk checkout or pass --app PATH")
        app = found
    app = Path(app)
    config = app / "capacitor.config.json"
    web_dir = "www"
    if config.is_file():
        try:
            web_dir = json.loads(config.read_text(encoding="utf-8")).get("webDir", web_dir)
        except (OSError, ValueError) as exc:
            raise MobileAppError(f"{config} is not valid JSON: {exc}") from None
    web = app / web_dir
    if not (web / "index.html").is_file():
        raise MobileAppError(f"{app} is not the mobile demo app: {web / 'index.html'} is missing")
    return app, web


def check_web_bundle(bundle: Bundle) -> list[str]:
    """Raise UnsupportedBundleError if the app cannot run the bundle; return warnings otherwise."""
    manifest = bundle.manifest
    others = [f"{m.file} ({m.backend})" for m in manifest.models if m.backend != "onnx"]
    if others:
        raise UnsupportedBundleError(
            f"the mobile demo runs ONNX models only (onnxruntime-web), and this bundle ships {', '.join(others)}; "
            f"build one for it with: edge-sdk build --target {WEB_TARGET}")
    for model in manifest.models:
        if model.precision not in WEB_PRECISIONS:
            raise UnsupportedBundleError(
                f"{model.file} is {model.precision}; onnxruntime-web's wasm backend runs "
                f"{' and '.join(WEB_PRECISIONS)} models: build with --target {WEB_TARGET}")
    try:
        spec = json.loads(bundle.path(manifest.tokenizer_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {manifest.tokenizer_file}: {exc}") from None
    for part, allowed in TOKENIZER_PARTS.items():
        kind = (spec.get(part) or {}).get("type")
        if kind not in allowed:
            names = ", ".join(a for a in allowed if a)
            raise UnsupportedBundleError(
                f"{manifest.tokenizer_file}: {part} {kind!r} is not what the app's JS tokenizer implements ({names}); "
                "the demo runs BERT WordPiece models (MiniLM, BERT, DistilBERT uncased)")
    warnings = []
    target = (manifest.target or {}).get("name")
    if target != WEB_TARGET:
        warnings.append(f"this bundle was built for target {target!r}, not {WEB_TARGET!r}: it may be larger or slower "
                        f"on a phone, or use operators onnxruntime-web lacks (the app says so when it loads)")
    if manifest.fixtures_file is None:
        warnings.append("this bundle has no parity fixtures: the app's self-test will have nothing to replay")
    return warnings


def install_bundle(bundle_path: str | Path, app: str | Path | None = None) -> Installed:
    """Verify `bundle_path` (folder, .zip or .tar.gz) and publish it atomically as <app>/<webDir>/bundle."""
    bundle = open_bundle(bundle_path)  # checksums and schema, as on the device
    warnings = check_web_bundle(bundle)
    app_dir, web = find_app(app)
    destination = web / BUNDLE_DIR
    names = [MANIFEST_FILE, *bundle.manifest.files]
    with atomic_dir(destination) as tmp:
        for name in names:
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle.path(name), target)
        open_bundle(tmp)  # the copy, verified before it replaces anything
    first = bundle.manifest.models[0]
    return Installed(
        app=app_dir,
        destination=destination,
        model_file=first.file,
        model_bytes=(destination / first.file).stat().st_size,
        bundle_bytes=sum((destination / n).stat().st_size for n in names),
        target=(bundle.manifest.target or {}).get("name"),
        warnings=tuple(warnings),
    )
