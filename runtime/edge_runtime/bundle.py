"""Opening a bundle (a directory, a .zip or a .tar.gz) and verifying it against its manifest."""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import BundleError, ChecksumError, UnsafeArchiveError
from .manifest import MANIFEST_FILE, Manifest, sha256_file

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest
    # Holds an archive's unpacked folder alive; it is removed when the Bundle is collected.
    unpacked: tempfile.TemporaryDirectory | None = field(default=None, repr=False, compare=False)

    def path(self, name: str) -> Path:
        return self.root / name


def open_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle's manifest (unpacking an archive first) and, by default, verify its files."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path}")
    unpacked = None
    if path.is_dir():
        root = path
    elif path.name.endswith(ARCHIVE_SUFFIXES):
        unpacked = tempfile.TemporaryDirectory(prefix="edge-bundle-")
        root = _unpack(path, Path(unpacked.name))
    else:
        raise BundleError(f"{path} is neither a bundle directory nor a .zip/.tar.gz archive")
    bundle = Bundle(root, Manifest.read(root), unpacked)
    if verify:
        verify_files(bundle)
    return bundle


def verify_files(bundle: Bundle) -> None:
    """Every listed file present with its sha256, and nothing unlisted beside them."""
    root, manifest = bundle.root, bundle.manifest
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
    listed = set(manifest.files) | {MANIFEST_FILE}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if file.is_symlink():
            raise BundleError(f"bundle contains a link, which is not allowed: {rel}")
        if file.is_file() and rel not in listed and not rel.startswith("."):
            raise BundleError(f"bundle contains a file the manifest does not list: {rel}")


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack into `dest`, checking every member before writing any; returns the bundle root."""
    try:
        if archive.name.endswith(".zip"):
            _unpack_zip(archive, dest)
        else:
            _unpack_tar(archive, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"cannot unpack {archive}: {exc}") from None
    return _bundle_root(dest)


def _bundle_root(dest: Path) -> Path:
    """Archives may hold the files at top level or inside one folder."""
    if (dest / MANIFEST_FILE).is_file():
        return dest
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    raise BundleError(f"archive holds no {MANIFEST_FILE} at its top level")


def _safe_member(name: str, dest: Path) -> Path:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive member has an absolute path: {name!r}")
    if ".." in posix.parts:
        raise UnsafeArchiveError(f"archive member escapes the bundle with '..': {name!r}")
    target = (dest / Path(*posix.parts)).resolve() if posix.parts else dest.resolve()
    if not target.is_relative_to(dest.resolve()):
        raise UnsafeArchiveError(f"archive member lands outside the bundle: {name!r}")
    return target


def _unpack_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:  # check everything before writing anything
            _safe_member(info.filename, dest)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member is a link: {info.filename!r}")
        for info in members:
            target = _safe_member(info.filename, dest)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _unpack_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for member in members:
            _safe_member(member.name, dest)
            if member.issym() or member.islnk():
                raise UnsafeArchiveError(f"archive member is a link: {member.name!r}")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"archive member is not a regular file: {member.name!r}")
        for member in members:
            target = _safe_member(member.name, dest)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                raise UnsafeArchiveError(f"archive member cannot be read: {member.name!r}")
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
