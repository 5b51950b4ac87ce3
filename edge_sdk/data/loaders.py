"""Labelled text data: CLINC150 JSON, CSV, JSONL, a folder of split files, a hub dataset, or the
embedded assistant dataset. Everything becomes one `LabelledData` with train/validation/test."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import DataError

TEXT_COLUMNS = ("text", "sentence", "query", "utterance")
LABEL_COLUMNS = ("label", "intent", "category")
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"), "test": ("test",)}
SUFFIXES = (".jsonl", ".csv", ".json")
OOS = "oos"  # CLINC150's out-of-scope intent, also used by the embedded dataset


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: tuple[int, ...]  # ids into LabelledData.labels

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class LabelledData:
    name: str
    labels: tuple[str, ...]  # id order
    train: Split
    validation: Split
    test: Split
    oos_label: str | None
    fingerprint: str  # sha256 of the contents, for caching and the manifest

    @property
    def oos_id(self) -> int | None:
        return self.labels.index(self.oos_label) if self.oos_label in self.labels else None


Rows = list[tuple[str, str]]


def load_data(source: str | Path | None = None, *, text_column: str | None = None,
              label_column: str | None = None, seed: int = 0) -> LabelledData:
    """Load `source` (see module doc); None means the embedded assistant dataset."""
    if source is None:
        root = resources.files("edge_sdk.data.assistant")
        splits = {name: _read_jsonl(root / f"{name}.jsonl", name, text_column, label_column)
                  for name in ("train", "test")}
        return _assemble("assistant (embedded)", splits, seed)
    path = Path(source)
    if path.is_dir():
        clinc = path / "data_oos_plus.json"
        if clinc.is_file():
            return _assemble(f"clinc150 plus ({path})", _read_clinc(clinc), seed)
        return _assemble(str(path), _read_folder(path, text_column, label_column), seed)
    if path.is_file():
        if path.suffix == ".json" and _looks_like_clinc(path):
            return _assemble(f"clinc150 ({path.name})", _read_clinc(path), seed)
        return _assemble(str(path), {"train": _read_file(path, text_column, label_column)}, seed)
    if "/" in str(source) and not str(source).startswith((".", "/")) and not path.suffix:
        return _from_hub(str(source), seed)
    raise DataError(f"data not found: {source} (give a CLINC150 .json, a .csv/.jsonl file, "
                    "a folder with train/validation/test files, or a hub dataset id)")


def _from_hub(name: str, seed: int) -> LabelledData:
    """A Hugging Face dataset id, e.g. `clinc/clinc_oos:plus` (needs network access)."""
    dataset_id, _, config = name.partition(":")
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, config or None)
    except Exception as exc:  # offline, unknown id, ...
        raise DataError(f"cannot load dataset {name!r} from the hub: {str(exc).splitlines()[0]}") from None
    splits = {}
    for split_name, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            if alias in ds:
                table = ds[alias]
                text_col = _pick(list(table.column_names), TEXT_COLUMNS, None, "text", alias)
                label_col = _pick(list(table.column_names), LABEL_COLUMNS, None, "label", alias)
                feature = table.features[label_col]
                names = getattr(feature, "names", None)
                splits[split_name] = [(t, names[y] if names else str(y))
                                      for t, y in zip(table[text_col], table[label_col])]
                break
    return _assemble(name, splits, seed)


def _looks_like_clinc(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "train" in data and "test" in data


def _read_clinc(path: Path) -> dict[str, Rows]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    out = {}
    for split, key in (("train", "train"), ("validation", "val"), ("test", "test")):
        rows = list(data.get(key, [])) + list(data.get(f"oos_{key}", []))
        if rows:
            out[split] = [(str(t), str(y)) for t, y in rows]
    return out


def _read_folder(folder: Path, text_column, label_column) -> dict[str, Rows]:
    out = {}
    for split, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            found = [folder / f"{alias}{s}" for s in SUFFIXES if (folder / f"{alias}{s}").is_file()]
            if found:
                out[split] = _read_file(found[0], text_column, label_column)
                break
    if "train" not in out:
        raise DataError(f"{folder} holds no train.csv / train.jsonl / train.json")
    return out


def _read_file(path: Path, text_column, label_column) -> Rows:
    if path.suffix == ".csv":
        return _read_csv(path, text_column, label_column)
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path, path.name, text_column, label_column)
    raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv, .jsonl or CLINC150 .json)")


def _pick(columns: list[str], candidates, explicit: str | None, kind: str, where: str) -> str:
    if explicit:
        if explicit not in columns:
            raise DataError(f"{where}: no column {explicit!r} (columns: {', '.join(columns)})")
        return explicit
    lower = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lower:
            return lower[name]
    raise DataError(f"{where}: no {kind} column found among {', '.join(columns)} "
                    f"(expected one of {', '.join(candidates)}, or name it with --{kind}-column)")


def _read_csv(path: Path, text_column, label_column) -> Rows:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            t = _pick(columns, TEXT_COLUMNS, text_column, "text", path.name)
            y = _pick(columns, LABEL_COLUMNS, label_column, "label", path.name)
            return [_row(r.get(t), r.get(y), path.name, i + 2) for i, r in enumerate(reader)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _read_jsonl(path, where: str, text_column, label_column) -> Rows:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {where}: {exc}") from None
    rows, t, y = [], None, None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where} line {number}: expected a JSON object")
        if t is None:
            t = _pick(list(obj), TEXT_COLUMNS, text_column, "text", f"{where} line {number}")
            y = _pick(list(obj), LABEL_COLUMNS, label_column, "label", f"{where} line {number}")
        rows.append(_row(obj.get(t), obj.get(y), where, number))
    return rows


def _row(text, label, where: str, number: int) -> tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where} line {number}: empty text")
    if label is None or str(label).strip() == "":
        raise DataError(f"{where} line {number}: empty label")
    return text, str(label)


def carve(rows: Rows, fraction: float, seed: int) -> tuple[Rows, Rows]:
    """Stratified, seeded split: about `fraction` of each label's rows go to the second part."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    keep, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n = round(len(group) * fraction) if len(group) >= 3 else 0
        held += group[:n]
        keep += group[n:]
    return keep, held


def _assemble(name: str, splits: dict[str, Rows], seed: int) -> LabelledData:
    train = splits.get("train") or []
    if not train:
        raise DataError(f"{name}: the training split is empty")
    if "test" not in splits:
        train, splits["test"] = carve(train, 0.1, seed)
    if "validation" not in splits:
        train, splits["validation"] = carve(train, 0.1, seed + 1)
    labels = sorted({y for _, y in train})
    if len(labels) < 2:
        raise DataError(f"{name}: found {len(labels)} label(s) in training data; a classifier needs two or more")
    index = {label: i for i, label in enumerate(labels)}
    for split in ("validation", "test"):
        unseen = sorted({y for _, y in splits[split]} - set(index))
        if unseen:
            raise DataError(f"{name}: {split} labels never seen in training: {', '.join(unseen[:10])}")
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        for text, label in splits[split]:
            digest.update(f"{split}\t{label}\t{text}\n".encode())

    def make(rows: Rows) -> Split:
        return Split(tuple(t for t, _ in rows), tuple(index[y] for _, y in rows))

    return LabelledData(name=name, labels=tuple(labels), train=make(train), validation=make(splits["validation"]),
                        test=make(splits["test"]), oos_label=OOS if OOS in index else None,
                        fingerprint=digest.hexdigest())
