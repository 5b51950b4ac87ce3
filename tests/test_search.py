"""`edge-sdk prune`, `edge-sdk autotune` and `edge-sdk latency fit` on the tiny model of test_build:
a few trials end to end through the CLI, resume, the budget rules, and a latency model refit."""

from __future__ import annotations

import json

import pytest
from test_build import built, edge_sdk, tiny_data, tiny_model_dir  # noqa: F401  (fixtures)

from edge_runtime import Manifest

TARGET = "x86-avx512-vnni"


def search(command, tmp_path, built, *args):  # noqa: F811
    out = tmp_path / command
    result = edge_sdk(command, "--target", TARGET, "--model", built["model"], "--data", built["data"],
                      "--cache-dir", built["cache"], "--out", out, "--max-accuracy-drop", "100", *args)
    return out, result


def test_prune_search_writes_the_front_and_builds_the_pick(tmp_path, built):  # noqa: F811
    out, result = search("prune", tmp_path, built, "--trials", "3", "--epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials["rows"]) == 3 and trials["rows"][0]["summary"] == "the teacher as it is"
    assert all(r["state"] == "COMPLETE" for r in trials["rows"])
    assert set(trials["front"]) <= {r["number"] for r in trials["rows"]} and trials["chosen"] in trials["front"]
    # every point within the budget, fastest first (the default objective), on the front or not
    p50 = {r["number"]: r["p50_ms"] for r in trials["rows"]}
    assert sorted(trials["candidates"]) == [0, 1, 2]  # budget 100 points: all of them
    assert [p50[n] for n in trials["candidates"]] == sorted(p50.values())
    table = (out / "front.md").read_text()
    assert "**chosen**" in table and "| trial | state |" in table
    assert (out / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "chosen: trial" in result.stdout and "recipe.toml" in result.stdout
    # the pick, built through the normal build: its guard ran on the test split
    manifest = Manifest.read(out / TARGET)
    assert manifest.recipe["max_accuracy_drop"] == 100.0 and "accuracy_drop_points" in manifest.models[0].metrics
    # resume: the same command with more trials adds only the missing ones
    _, again = search("prune", tmp_path, built, "--trials", "4", "--epochs", "1", "--no-build")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(json.loads((out / "trials.json").read_text())["rows"]) == 4
    assert "trial 3:" in again.stderr and "trial 0:" not in again.stderr  # only the new trial ran


def test_autotune_searches_depth_and_trimming(tmp_path, built):  # noqa: F811
    out, result = search("autotune", tmp_path, built, "--trials", "4", "--depths", "1,2", "--keep-heads", "1:1",
                         "--keep-neurons", "1:1", "--embedding-ranks", "8", "--precisions", "int8,int4",
                         "--objective", "size", "--no-build")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = json.loads((out / "trials.json").read_text())
    rows = trials["rows"]
    assert len(rows) == 4 and rows[0]["summary"] == "the teacher as it is"
    # the first trials: the uncompressed model, then the built-in recipes these knobs can make
    # (int4 and trimmed; distilled wants 3 layers of this 2-layer teacher, pruned a pruning the knobs fix off)
    assert [r["start"] for r in rows[:3]] == ["uncompressed", "int4", "trimmed"] and rows[3]["start"] is None
    assert rows[1]["summary"] == "int4 weights" and rows[2]["summary"] == "trimmed vocabulary"
    assert "| 1 | complete | int4 weights (recipe int4) |" in (out / "front.md").read_text()
    parts = {part for r in rows for part in r["summary"].split(", ")}
    assert parts <= {"the teacher as it is", "1 of 2 layers", "trimmed vocabulary", "embedding rank 8",
                     "int4 weights"}, parts
    smallest = min((r for r in rows if r["number"] in trials["front"]), key=lambda r: r["size_mb"])
    assert trials["chosen"] == smallest["number"]  # --objective size: the smallest front point within the budget
    assert not (out / TARGET).exists()  # --no-build


def test_named_starts_replace_the_built_in_ones(tmp_path, built):  # noqa: F811
    recipe = tmp_path / "mine.toml"
    recipe.write_text('name = "mine"\nwhy = "trimmed, 4-bit"\n[[steps]]\nstep = "trim"\nshared_rows = 256\n'
                      '[onnx_quantization]\nmethod = "weight-only"\nbits = 4\nblock_size = 64\naccuracy_level = 4\n'
                      'embeddings = true\n')
    out, result = search("autotune", tmp_path, built, "--trials", "2", "--precisions", "int8,int4", "--start", "none",
                         "--start", recipe, "--no-build")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((out / "trials.json").read_text())["rows"]
    assert [(r["start"], r["summary"]) for r in rows] == [("uncompressed", "the teacher as it is"),
                                                          ("mine", "trimmed vocabulary, int4 weights")]


def test_a_start_the_search_cannot_make_is_refused(tmp_path, built):  # noqa: F811
    recipe = tmp_path / "sparse.toml"
    recipe.write_text('name = "sparse"\nwhy = "unstructured"\n[[steps]]\nstep = "sparsify"\nsparsity = 0.5\n')
    out, result = search("autotune", tmp_path, built, "--trials", "2", "--start", recipe, "--no-build")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--start {recipe} is not a point of this search: a search does not make its sparsify step" in result.stderr
    assert not (out / "trials.json").exists()


def test_impossible_budget_names_the_closest_point(tmp_path, built, monkeypatch):  # noqa: F811
    """Every candidate 5 points below the teacher: a 1-point budget cannot be met."""
    import edge_sdk.search.evaluate as evaluate
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.search.autotune import autotune
    from edge_sdk.search.space import Knobs

    def worse(recipe, profile, teacher_dir, context, work, latency, latency_queries=200):
        from edge_sdk.builder.run import measure_reference

        teacher = measure_reference(teacher_dir, "FP32 teacher", context, 10, split="validation")
        return evaluate.Measured(teacher["accuracy"] - 0.05 - 0.01 * len(recipe.steps), 1.0, 1.0, 2.0, None, "x")

    monkeypatch.setattr(evaluate, "evaluate", worse)
    with pytest.raises(EdgeSdkError, match=r"no candidate loses at most 1.0 points \(2 trials\); the closest is "
                                           r"trial 0: validation accuracy .*, 5.00 points below the teacher"):
        autotune(TARGET, data=str(built["data"]), model=str(built["model"]), knobs=Knobs(trim=(False,)), trials=2,
                 max_accuracy_drop=1.0, out=tmp_path / "out", cache_dir=built["cache"])
    assert "| 0 | complete |" in (tmp_path / "out" / "front.md").read_text()


def test_latency_model_refit_from_bench_lines(tmp_path, built):  # noqa: F811
    """Bench lines of four bundles with p50 = 0.5 + 2 x GFLOP + 0.1 x MB: the fit recovers them."""
    from edge_sdk.search.latency import LatencyModel, bundle_features

    lines = []
    for target in ("x86-avx512-vnni", "x86-avx2", "arm64", "web-wasm", "gpu-tensorrt"):
        bundle = built["out"] / target
        model = Manifest.read(bundle).models[0].file
        f = bundle_features(bundle, model)
        lines.append(json.dumps({"bundle": str(bundle), "model": model,
                                 "batch1": {"p50_ms": 0.5 + 2.0 * f.gflop + 0.1 * f.mb}}))
    bench = tmp_path / "bench.jsonl"
    bench.write_text("\n".join(lines) + "\n")
    result = edge_sdk("latency", "fit", bench, "--target", "arm64", "--out", tmp_path / "arm64.json")
    assert result.returncode == 0, result.stderr
    model = LatencyModel.read(tmp_path / "arm64.json")
    assert model.points == 5 and model.error is not None and model.error < 0.01
    assert "leave-one-out error" in result.stdout
    bench.write_text('{"bundle": "x"}\n')
    bad = edge_sdk("latency", "fit", bench, "--target", "arm64", "--out", tmp_path / "bad.json")
    assert bad.returncode == 1 and "line 1: not an `edge-runtime bench --json` result" in bad.stderr
