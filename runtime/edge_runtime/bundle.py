"""Opening a bundle (a directory, a .zip or a .tar.gz) and verifying it against its manifest.

Order matters: the digest pin and the signature are checked on manifest.json's bytes before the
manifest is parsed; then every file against its listed sha256, nothing unlisted beside them (dot
files included), and every ONNX model's external data against the listing.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .archive import SUFFIXES as ARCHIVE_SUFFIXES
from .archive import unpack
from .digest import check_pinned, digest_of
from .errors import BundleError, ChecksumError
from .limits import DEFAULT_LIMITS, Limits
from .manifest import MANIFEST_FILE, SIGNATURE_FILE, Manifest, read_manifest_bytes, sha256_file
from .onnx_graph import GraphInfo, scan


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest
    digest: str = ""  # "sha256:..." of manifest.json: covers every file (digest.py)
    signed_by: str | None = None  # key id of the signature checked at open, if a public key was given
    graphs: Mapping[str, GraphInfo] = field(default_factory=dict)  # ONNX model file -> what it runs
    # Holds an archive's unpacked folder alive; it is removed when the Bundle is collected.
    unpacked: tempfile.TemporaryDirectory | None = field(default=None, repr=False, compare=False)

    def path(self, name: str) -> Path:
        return self.root / name


def open_bundle(path: str | os.PathLike, verify: bool = True, *, digest: str | None = None,
                public_key: str | os.PathLike | bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """Read a bundle's manifest (unpacking an archive first, once) and, by default, verify its files.

    digest: the bundle digest ("sha256:...") the caller trusts; anything else is refused.
    public_key: an Ed25519 public key (PEM bytes or file); the bundle must carry its signature.
    """
    from .tempdirs import temporary_folder

    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path}")
    unpacked = None
    if path.is_dir():
        root = path
    elif path.name.endswith(ARCHIVE_SUFFIXES):
        unpacked = temporary_folder()
        unpack(path, Path(unpacked.name), limits)
        root = _bundle_root(Path(unpacked.name))
    else:
        raise BundleError(f"{path} is neither a bundle directory nor a .zip/.tar.gz archive")
    raw = read_manifest_bytes(root)
    actual = digest_of(raw)
    if digest is not None:
        check_pinned(actual, digest)
    signed_by = None
    if public_key is not None:
        from .signature import verify_signature

        signed_by = verify_signature(root, actual, public_key)
    manifest = Manifest.from_json(raw)
    graphs: dict[str, GraphInfo] = {}
    if verify:
        verify_files(root, manifest)
        graphs = check_onnx_models(root, manifest)
    return Bundle(root, manifest, actual, signed_by, graphs, unpacked)


def verify_files(root: Path, manifest: Manifest) -> None:
    """Nothing in the folder but the listed files, the manifest and the signature file (dot files
    and folders included: an unlisted `.w.bin` once supplied a model's weights); then every
    listed file present with its sha256."""
    listed = set(manifest.files)
    folders = set()  # every folder above a listed file
    for name in listed:
        parent = posixpath.dirname(name)
        while parent:
            folders.add(parent)
            parent = posixpath.dirname(parent)
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable, followlinks=False):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = Path(full).relative_to(root).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise BundleError(f"bundle contains a link, which is not allowed: {_printable(rel)}")
            if stat.S_ISDIR(mode):
                if rel not in folders:
                    raise BundleError(f"bundle contains a folder the manifest does not list: {_printable(rel)}")
            elif not stat.S_ISREG(mode):
                raise BundleError(f"bundle contains something that is not a regular file: {_printable(rel)}")
            elif rel not in listed and rel not in (MANIFEST_FILE, SIGNATURE_FILE):
                raise BundleError(f"bundle contains a file the manifest does not list: {_printable(rel)}")
    if (root / SIGNATURE_FILE).exists():  # present: it must be a signature file and nothing else
        from .signature import read_signatures

        read_signatures(root)
    for name, expected in manifest.files.items():
        file = root / name
        if not file.is_file():
            raise BundleError(f"bundle file missing: {name}")
        actual = sha256_file(file)
        if actual != expected:
            raise ChecksumError(
                f"checksum mismatch for {name}: manifest says {expected[:12]}…, file is {actual[:12]}… "
                "(the file was modified or corrupted)"
            )


def check_onnx_models(root: Path, manifest: Manifest) -> dict[str, GraphInfo]:
    """Scan each ONNX model; refuse external data that is not a listed file of this bundle."""
    graphs = {}
    for model in manifest.models:
        if model.backend != "onnx":
            continue
        info = scan(root / model.file)
        for ref in info.external:
            target = _external_target(model.file, ref.location)
            if target is None or target not in manifest.files:
                raise BundleError(f"{model.file}: tensor {ref.tensor[:60]!r} reads external data from "
                                  f"{ref.location[:80]!r}, which is not a file this bundle lists; refused")
            size = (root / target).stat().st_size
            if ref.offset + (ref.length or 0) > size:
                raise BundleError(f"{model.file}: tensor {ref.tensor[:60]!r} reads bytes {ref.offset}.."
                                  f"{ref.offset + (ref.length or 0)} of {target}, which has {size}")
        graphs[model.file] = info
    return graphs


def _external_target(model_file: str, location: str) -> str | None:
    """The listed name `location` means (relative to the model's folder, as onnxruntime resolves
    it), or None if it is not a plain relative path."""
    if not location or "\\" in location or "\x00" in location or location.startswith("/") or ":" in location:
        return None
    parts = location.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return posixpath.join(posixpath.dirname(model_file), location)


def _printable(name: str) -> str:
    """A name as is, or escaped when it holds a newline, a control character or undecodable bytes."""
    return name if name.isprintable() else repr(name)


def _unreadable(error: OSError) -> None:
    raise BundleError(f"cannot list {error.filename}: {error.strerror}")


def _bundle_root(dest: Path) -> Path:
    """Archives hold the files at top level or inside one folder, and nothing beside it."""
    if (dest / MANIFEST_FILE).is_file():
        return dest
    entries = list(dest.iterdir())
    if len(entries) == 1 and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    if any((e / MANIFEST_FILE).is_file() for e in entries):
        others = ", ".join(repr(e.name) for e in entries if not (e / MANIFEST_FILE).is_file())
        raise BundleError(f"archive holds {others} beside the bundle folder; a bundle archive holds one bundle only")
    raise BundleError(f"archive holds no {MANIFEST_FILE} at its top level")
