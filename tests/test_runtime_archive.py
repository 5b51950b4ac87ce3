"""Bundle archives: size and member limits checked before writing, duplicate members refused,
the unpacked copy removed on SIGTERM too, and `verify` unpacking once."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from edge_runtime import BundleError, Pipeline, UnsafeArchiveError, open_bundle
from edge_runtime.limits import Limits


def zip_of(path: Path, members: dict[str, bytes], *, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(prefix + name, data)
    return path


def bundle_files(bundle_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(bundle_dir.iterdir())}


def test_declared_sizes_past_the_limit_are_refused_before_writing(tmp_path, monkeypatch):
    """A zip bomb: 64 MB of zeros in a 64 kB archive, against a 16 MB limit; nothing is written."""
    bomb = zip_of(tmp_path / "bomb.zip", {"manifest.json": b"{}", "zeros.bin": b"\x00" * (64 << 20)})
    assert bomb.stat().st_size < 100_000
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(UnsafeArchiveError, match="more than 16 MiB"):
        open_bundle(bomb, limits=Limits(max_unpacked_bytes=16 << 20))
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary folder is gone, nothing was unpacked


def test_default_limit_refuses_a_header_claiming_gigabytes(tmp_path):
    """Two members whose central-directory sizes claim 3 GiB each (the data is 1 byte): refused by
    the default 4 GiB limit from the headers alone, in milliseconds."""
    path = zip_of(tmp_path / "liar.zip", {"a.bin": b"x", "b.bin": b"y"})
    raw = bytearray(path.read_bytes())
    start = 0
    while (start := raw.find(b"PK\x01\x02", start)) != -1:  # central directory entries
        struct.pack_into("<I", raw, start + 24, 3 << 30)  # uncompressed size
        start += 4
    path.write_bytes(bytes(raw))
    started = time.perf_counter()
    with pytest.raises(UnsafeArchiveError, match="more than 4096 MiB"):
        open_bundle(path)
    assert time.perf_counter() - started < 1


def test_a_member_inflating_past_its_header_is_cut_off(tmp_path):
    path = zip_of(tmp_path / "grows.zip", {"manifest.json": b"{" + b" " * 10_000 + b"}"})
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # both headers say 10 bytes
        at = raw.find(signature)
        struct.pack_into("<I", raw, at + offset, 10)
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="cannot unpack|more than the 10 bytes"):
        open_bundle(path)


def test_member_count_limit(tmp_path):
    many = tmp_path / "many.tar.gz"
    with tarfile.open(many, "w:gz") as tf:
        for i in range(1_001):
            info = tarfile.TarInfo(f"f{i}")
            tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(UnsafeArchiveError, match="more than 1000 members"):
        open_bundle(many)
    with pytest.raises(UnsafeArchiveError, match="more than 10 members"):
        open_bundle(many, limits=Limits(max_members=10))


@pytest.mark.parametrize("names", [("manifest.json", "manifest.json"), ("a/manifest.json", "a//manifest.json"),
                                   ("manifest.json", "./manifest.json"), ("Model.onnx", "model.onnx")])
def test_duplicate_members_are_refused(bundle_dir, tmp_path, names):
    """In a zip the last of two manifest.json silently won; an archive must hold one of each."""
    path = tmp_path / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names when writing them
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(names[0], (bundle_dir / "manifest.json").read_bytes())
            zf.writestr(names[1], b'{"labels": ["evil", "labels"]}')
    with pytest.raises(UnsafeArchiveError, match="twice"):
        open_bundle(path)


def test_duplicate_tar_members_and_file_folder_conflicts(tmp_path):
    path = tmp_path / "dup.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for data in (b"first", b"second"):
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeArchiveError, match="twice"):
        open_bundle(path)
    conflict = zip_of(tmp_path / "conflict.zip", {"x": b"file", "x/y": b"under a file"})
    with pytest.raises(UnsafeArchiveError, match="under a file"):
        open_bundle(conflict)


def test_encrypted_and_unsupported_members_are_one_line(tmp_path):
    path = zip_of(tmp_path / "enc.zip", {"manifest.json": b"{}"})
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag bit
        at = raw.find(signature)
        struct.pack_into("<H", raw, at + offset, struct.unpack_from("<H", raw, at + offset)[0] | 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError, match="encrypted"):
        open_bundle(path)


def test_an_archive_holds_one_bundle_and_nothing_beside_it(bundle_dir, tmp_path):
    files = bundle_files(bundle_dir)
    beside = zip_of(tmp_path / "beside.zip", {**{f"tiny/{k}": v for k, v in files.items()}, ".w.bin": b"\x00"})
    with pytest.raises(BundleError, match="'.w.bin' beside the bundle folder"):
        Pipeline.load(beside)
    inside = zip_of(tmp_path / "inside.zip", {**files, ".w.bin": b"\x00"})
    with pytest.raises(BundleError, match="does not list: .w.bin"):
        Pipeline.load(inside)


def test_verify_unpacks_an_archive_once(bundle_dir, tmp_path, monkeypatch, capsys):
    from edge_runtime.cli import main
    from edge_sdk.builder.bundle import pack

    archive = pack(bundle_dir, tmp_path / "b.tar.gz")
    opened = []
    real = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out.count(": OK") == 2  # both models replayed...
    assert len(opened) == 1  # ...from one unpacked copy (it was three)


SLEEPER = """
import sys, time
from edge_runtime import Pipeline
pipe = Pipeline.load(sys.argv[1])
print(pipe.bundle.root, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_unpacked_copy_is_removed_on_sigterm(bundle_dir, tmp_path, signum):
    from edge_sdk.builder.bundle import pack

    archive = pack(bundle_dir, tmp_path / "b.tar.gz")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # The child starts with the signal's default action: under nohup SIGHUP is inherited as ignored,
    # and the runtime rightly leaves an ignored signal alone.
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, str(archive)], stdout=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL))
    root = Path(proc.stdout.readline().strip())
    assert root.is_dir() and root.name.startswith("edge-bundle-")
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == -signum  # still dies of the signal, as its parent expects
    assert not root.exists()


def test_cli_removes_the_unpacked_copy_on_sigterm(bundle_dir, tmp_path):
    from edge_sdk.builder.bundle import pack

    archive = pack(bundle_dir, tmp_path / "b.tar.gz")
    work = tmp_path / "tmp"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "edge_runtime.cli", "predict", str(archive), "--jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(work)})
    proc.stdin.write(json.dumps({"text": "wake me up"}) + "\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["line"] == 1  # loaded, unpacked, waiting for more lines
    unpacked = list(work.glob("edge-bundle-*"))
    assert len(unpacked) == 1 and unpacked[0].is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert not unpacked[0].exists()


def test_an_application_handler_is_left_alone(bundle_dir, tmp_path):
    from edge_sdk.builder.bundle import pack

    archive = pack(bundle_dir, tmp_path / "b.tar.gz")
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n" + SLEEPER.split("\n", 2)[2])
    proc = subprocess.Popen([sys.executable, "-c", code, str(archive)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    root = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 3  # the application's own exit...
    assert not root.exists()  # ...and a normal exit removes the folder
