"""Data loading: formats, column detection, carving splits, and clear errors."""

from __future__ import annotations

import json

import pytest

from edge_sdk.data import DataError, load_data
from edge_sdk.data.loaders import carve


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows(n_per_label=10, labels=("a", "b", "c")):
    return [{"text": f"{label} text {i}", "label": label} for label in labels for i in range(n_per_label)]


def test_clinc150_plus(clinc_dir):
    data = load_data(clinc_dir)
    assert len(data.labels) == 151 and data.oos_label == "oos"
    assert (len(data.train), len(data.validation), len(data.test)) == (15250, 3100, 5500)
    assert sum(1 for y in data.test.labels if y == data.oos_id) == 1000


def test_embedded_dataset():
    data = load_data(None)
    assert len(data.labels) >= 13 and data.oos_label == "oos"
    assert len(data.test) > 0 and len(data.validation) > 0
    per_label = {label: data.train.labels.count(i) + data.validation.labels.count(i)
                 for i, label in enumerate(data.labels)}
    assert min(per_label.values()) >= 40
    assert not set(data.train.texts) & set(data.test.texts)


def test_csv_with_common_column_names_and_carved_splits(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("query,intent\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows(20)))
    data = load_data(path, seed=1)
    assert data.labels == ("a", "b", "c")
    assert len(data.train) + len(data.validation) + len(data.test) == 60
    # stratified: every label in every split
    for split in (data.train, data.validation, data.test):
        assert set(split.labels) == {0, 1, 2}
    assert load_data(path, seed=1).fingerprint == data.fingerprint
    assert load_data(path, seed=2).fingerprint != data.fingerprint


def test_jsonl_named_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"utt": r["text"], "y": r["label"]} for r in rows()])
    data = load_data(path, text_column="utt", label_column="y")
    assert data.labels == ("a", "b", "c")
    with pytest.raises(DataError, match="no column 'nope'"):
        load_data(path, text_column="nope", label_column="y")
    with pytest.raises(DataError, match="no text column found"):
        load_data(path)


def test_folder_of_splits(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(10))
    write_jsonl(tmp_path / "dev.jsonl", rows(2))
    write_jsonl(tmp_path / "test.jsonl", rows(3))
    data = load_data(tmp_path)
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 6, 9)


def test_carve_is_stratified_and_seeded():
    keep, held = carve([(f"t{i}", "a" if i % 2 else "b") for i in range(100)], 0.1, seed=3)
    assert len(held) == 10 and {y for _, y in held} == {"a", "b"}
    assert carve([(f"t{i}", "a") for i in range(100)], 0.1, seed=3) == carve([(f"t{i}", "a") for i in range(100)],
                                                                             0.1, seed=3)


@pytest.mark.parametrize("content, match", [
    ([{"text": "", "label": "a"}] + rows(), "line 1: empty text"),
    (rows(10, labels=("only",)), "needs two or more"),
])
def test_bad_rows(tmp_path, content, match):
    with pytest.raises(DataError, match=match):
        load_data(write_jsonl(tmp_path / "d.jsonl", content))


def test_unseen_test_labels_and_missing_paths(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(10))
    write_jsonl(tmp_path / "test.jsonl", rows(2, labels=("a", "zzz")))
    with pytest.raises(DataError, match="test labels never seen in training: zzz"):
        load_data(tmp_path)
    with pytest.raises(DataError, match="data not found"):
        load_data(tmp_path / "missing.csv")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="line 1: not valid JSON"):
        load_data(tmp_path / "bad.jsonl")
