"""Unpacking a bundle archive (.zip, .tar.gz) safely.

Every member is checked before anything is written: its path stays inside the folder (no
absolute path, no '..', no link, nothing but files and folders), no path appears twice (in a
zip, the last of two `manifest.json` silently won), the member count and the sum of the sizes
the archive declares stay within `Limits`, and the disk has room for them. While writing, each
member is cut off at its declared size, so a member that inflates past its header is refused
rather than filling the disk (a 1.8 MB zip once expanded to 1 GB before anything said no).
"""

from __future__ import annotations

import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BundleError, UnsafeArchiveError
from .limits import Limits

SUFFIXES = (".zip", ".tar.gz", ".tgz")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    name: str  # as stored in the archive
    parts: tuple[str, ...]  # normalised relative path
    is_dir: bool
    size: int
    handle: object  # ZipInfo or TarInfo


def unpack(archive: Path, dest: Path, limits: Limits) -> None:
    """Unpack `archive` into the empty folder `dest`, or raise before writing anything unsafe."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _write(_checked(_zip_members(zf, limits), dest, limits), dest, zf.open, limits)
        else:
            with tarfile.open(archive, "r:*") as tf:
                _write(_checked(_tar_members(tf, limits), dest, limits), dest, tf.extractfile, limits)
    except BundleError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError, ValueError) as exc:
        # corrupt data, an unsupported compression method, a full disk, ...
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BundleError(f"cannot unpack {archive.name}: {reason}") from None


def _zip_members(zf: zipfile.ZipFile, limits: Limits) -> list[Member]:
    infos = zf.infolist()
    _count(len(infos), limits)
    members = []
    for info in infos:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"archive member is a link: {info.filename!r}")
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(f"archive member is encrypted: {info.filename!r}")
        members.append(Member(info.filename, _parts(info.filename), info.is_dir(), info.file_size, info))
    return members


def _tar_members(tf: tarfile.TarFile, limits: Limits) -> list[Member]:
    members: list[Member] = []
    for info in tf:  # headers one by one: a 100k-member archive is refused at member 1001
        _count(len(members) + 1, limits)
        if info.issym() or info.islnk():
            raise UnsafeArchiveError(f"archive member is a link: {info.name!r}")
        if not (info.isfile() or info.isdir()):
            raise UnsafeArchiveError(f"archive member is not a regular file: {info.name!r}")
        members.append(Member(info.name, _parts(info.name), info.isdir(), info.size, info))
    return members


def _count(n: int, limits: Limits) -> None:
    if n > limits.max_members:
        raise UnsafeArchiveError(f"archive holds more than {limits.max_members} members (Limits.max_members); "
                                 "a bundle has a handful")


def _parts(name: str) -> tuple[str, ...]:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive member has an absolute path: {name!r}")
    if "\x00" in name:
        raise UnsafeArchiveError(f"archive member name holds a NUL byte: {name!r}")
    parts = tuple(p for p in PurePosixPath(posix).parts if p != ".")
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member escapes the bundle with '..': {name!r}")
    return parts


def _checked(members: list[Member], dest: Path, limits: Limits) -> list[Member]:
    files: dict[str, str] = {}  # case-folded path -> name, of files
    folders: set[str] = set()
    total = 0
    for m in members:
        if not m.parts:
            if m.is_dir:  # "./" or "" as a folder entry: the root itself
                continue
            raise UnsafeArchiveError(f"archive member has no name: {m.name!r}")
        key = "/".join(m.parts).casefold()  # one file on a case-insensitive disk
        if m.is_dir:
            folders.add(key)
            continue
        if key in files:
            raise UnsafeArchiveError(f"archive holds {m.name!r} twice (also as {files[key]!r}); which one is the "
                                     "bundle would depend on the unpacker")
        files[key] = m.name
        total += m.size
        if total > limits.max_unpacked_bytes:
            raise UnsafeArchiveError(f"archive unpacks to more than {limits.max_unpacked_bytes >> 20} MiB "
                                     "(Limits.max_unpacked_bytes)")
    for key, name in files.items():
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise UnsafeArchiveError(f"archive member {name!r} sits under a file of the same name")
        if key in folders:
            raise UnsafeArchiveError(f"archive holds {name!r} both as a file and as a folder")
    free = shutil.disk_usage(dest).free
    if total > free:
        raise BundleError(f"archive unpacks to {total >> 20} MiB but {dest.parent} has {free >> 20} MiB free "
                          "(set TMPDIR to a larger disk)")
    return members


def _write(members: list[Member], dest: Path, open_member, limits: Limits) -> None:
    root = dest.resolve()
    for m in members:
        target = root.joinpath(*m.parts)
        if m.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(root):  # belt and braces: no link was written
            raise UnsafeArchiveError(f"archive member lands outside the bundle: {m.name!r}")
        src = open_member(m.handle)
        if src is None:
            raise UnsafeArchiveError(f"archive member cannot be read: {m.name!r}")
        with src, open(target, "xb") as out:
            left = m.size
            while block := src.read(min(CHUNK, left + 1)):
                left -= len(block)
                if left < 0:
                    raise UnsafeArchiveError(f"archive member {m.name!r} holds more than the {m.size} bytes "
                                             "its header declares")
                out.write(block)
