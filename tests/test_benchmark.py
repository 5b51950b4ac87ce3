"""`edge-sdk benchmark` end to end on a tiny random BERT: one run, then its table, ratios, JSON,
plot and report are checked; bad arguments are checked without running anything heavy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import LABELS, REPO, tiny_bert

QUERIES = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
TEMPLATES = {
    "balance": "what is the balance of account {}",
    "transfer": "send {} dollars to my savings",
    "weather": "what is the weather in city {}",
    "alarm": "set an alarm for {} am",
    "oos": "tell me a story about dragon {}",
}


def write_tiny_clinc(path: Path, per_label: int = 8) -> Path:
    def rows(offset):
        return [[t.format(offset + i), label] for label, t in TEMPLATES.items() for i in range(per_label)]
    path.write_text(json.dumps({"train": rows(0), "val": rows(100), "test": rows(200)}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_clinc(tmp_path_factory.mktemp("data") / "tiny_clinc.json")


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory, minilm_dir) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "tiny-teacher"
    tiny_bert().save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (minilm_dir / name).is_file():
            shutil.copyfile(minilm_dir / name, out / name)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data, tiny_teacher, bundle_dir):
    """One full benchmark through the CLI: 3 reference rows + the bundle's 2 models, RSS included."""
    from edge_sdk.cli import cli

    out = tmp_path_factory.mktemp("bench")
    args = ["benchmark", str(bundle_dir), "--data", str(tiny_data), "--teacher", str(tiny_teacher),
            "--baseline", str(tiny_teacher),
            "--threads", "1", "--queries", str(QUERIES), "--round-size", "7",
            "--json", str(out / "bench.json"), "--markdown", str(out / "report.md")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"out": out, "output": result.output, "json": json.loads((out / "bench.json").read_text())}


def test_every_row_has_every_column(run):
    from edge_sdk.report.table import COLUMNS, DASH, table_cells

    rows = run["json"]["rows"]
    assert [r["name"] for r in rows] == ["teacher fp32 (torch)", "teacher int8 (torch dynamic)",
                                         "teacher int8 (ORT dynamic)", "tiny-teacher fp32 (torch)",
                                         "tiny [test]/model.onnx", "tiny [test]/model.int8.onnx"]
    assert rows[3]["kind"] == "baseline" and rows[3]["accuracy"] == rows[0]["accuracy"]  # the same model
    headers, cells = table_cells(rows)
    assert len(headers) == len(COLUMNS)
    for row, line in zip(rows, cells):
        assert row["test_n"] == 40 and row["threads"] == 1
        assert row["latency"]["n"] == QUERIES
        assert set(row["latency"]) == {"n", "mean_ms", "std_ms", "p50_ms", "p95_ms", "p99_ms"}
        assert row["oos_recall"] is not None and row["in_scope_accuracy"] is not None
        assert 0.0 <= row["oos_threshold"] <= 1.0 and row["accuracy_thr"] is not None  # fitted on validation
        assert row["size_mb"] > 0 and row["batch32_qps"] > 0 and row["peak_rss_mb"] > 0
        assert row["flops"] > 0 and 0 < row["gemm_fraction"]
        assert DASH not in line, f"{row['name']} has an empty cell: {line}"
    for header in headers:  # the console table shows every column (rich may wrap long headers)
        assert header.split()[0] in run["output"]
    assert "threads: [1]" in run["output"] and "versions: onnxruntime" in run["output"]


def test_reference_rows_share_the_teacher_and_bundles_never_import_torch(run):
    rows = {r["name"]: r for r in run["json"]["rows"]}
    teacher = rows["teacher fp32 (torch)"]
    # Same weights, same tokens: the three reference rows count the same FLOPs at the same length.
    assert {rows[n]["flops"] for n in rows if n.startswith("teacher")} == {teacher["flops"]}
    # The bundle's fp32 ONNX is the tiny model the teacher was saved from: same FLOPs, same predictions.
    assert rows["tiny [test]/model.onnx"]["flops"] == teacher["flops"]
    assert rows["tiny [test]/model.onnx"]["accuracy"] == pytest.approx(teacher["accuracy"])
    assert rows["teacher int8 (torch dynamic)"]["size_mb"] < teacher["size_mb"]
    for name, row in rows.items():
        assert row["rss_process_imported_torch"] == (row["runner"].startswith("torch")), name


def test_ratios_come_from_rows_of_the_same_run(run):
    rows = run["json"]["rows"]
    reference = rows[0]
    assert reference["kind"] == "reference"
    for row in rows:
        ratios = row["ratios"]
        assert ratios["reference"] == reference["name"]
        assert ratios["speedup_p50"] == pytest.approx(reference["latency"]["p50_ms"] / row["latency"]["p50_ms"])
        assert ratios["throughput"] == pytest.approx(row["batch32_qps"] / reference["batch32_qps"])
        assert ratios["size"] == pytest.approx(row["size_mb"] / reference["size_mb"])
        assert ratios["accuracy_delta"] == pytest.approx(row["accuracy"] - reference["accuracy"])
    assert rows[0]["ratios"]["speedup_p50"] == 1.0
    # The GEMM rate the fraction divides by was measured in this run.
    gemm = run["json"]["gemm"]["1"]["fp32_gflops"]
    for row in rows:
        achieved = row["flops"] / (row["latency"]["p50_ms"] / 1000) / 1e9
        assert row["gemm_fraction"] == pytest.approx(achieved / gemm)


def test_ratios_never_mix_thread_counts():
    from edge_sdk.report.table import with_ratios

    lat = lambda p50: {"p50_ms": p50, "mean_ms": p50}  # noqa: E731
    rows = [{"name": "ref", "kind": "reference", "threads": 1, "latency": lat(10.0)},
            {"name": "ref", "kind": "reference", "threads": 2, "latency": lat(6.0)},
            {"name": "b", "kind": "bundle", "threads": 1, "latency": lat(5.0)},
            {"name": "b", "kind": "bundle", "threads": 2, "latency": lat(2.0)}]
    out = with_ratios(rows)
    assert out[2]["ratios"]["speedup_p50"] == pytest.approx(2.0)
    assert out[3]["ratios"]["speedup_p50"] == pytest.approx(3.0)


def test_json_round_trips(run):
    from edge_sdk.report import markdown_table

    text = (run["out"] / "bench.json").read_text()
    loaded = json.loads(text)
    assert json.loads(json.dumps(loaded)) == loaded
    assert markdown_table(loaded["rows"]) == markdown_table(run["json"]["rows"])
    assert loaded["environment"]["threads"] == [1]
    assert loaded["settings"]["timed_queries"] == QUERIES
    assert any("smoke test" in note for note in loaded["notes"])  # fewer than 500 queries is said


def test_plot_is_a_real_png(run):
    import matplotlib.image as mpimg
    import numpy as np

    png = run["out"] / "report.png"
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 20_000  # axes, five labelled points, legend: not an empty canvas
    image = mpimg.imread(png)
    assert image.shape[0] >= 400 and image.shape[1] >= 600
    assert float(np.asarray(image[..., :3]).std()) > 0.02


def test_markdown_report_embeds_table_plot_and_machine(run):
    text = (run["out"] / "report.md").read_text()
    assert "| model | thr | acc % |" in text
    assert "![accuracy against p50 latency" in text and "(report.png)" in text
    for needle in ("CPU:", "threads: [1]", "onnxruntime", "dense GEMM rate", "peak RSS: each variant alone"):
        assert needle in text


def test_report_tolerates_missing_optional_keys(tmp_path):
    from edge_sdk.report import markdown_table, plot_metrics, write_report

    rows = [{"name": "teacher", "kind": "reference", "accuracy": 0.9, "latency": {"p50_ms": 10.0}},
            {"name": "bundle", "kind": "bundle", "accuracy": 0.88, "size_mb": 5.0, "latency": {"p50_ms": 2.0},
             "oos_recall": None},
            {"name": "no numbers", "kind": "bundle"}]
    table = markdown_table(rows)
    assert table.count("\n") == 5 and "5.00×" in table  # speedup of `bundle` against `teacher`
    png = plot_metrics(rows, tmp_path / "p.png")
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    report = write_report(tmp_path / "r.md", "t", rows, png, {"cpu": "x", "threads": 1})
    assert "(p.png)" in report.read_text()
    assert plot_metrics([], tmp_path / "empty.png").read_bytes()[:8] == PNG_SIGNATURE


def test_environment_names_the_machine():
    from edge_sdk.report import environment

    env = environment(threads=2, command="edge-sdk benchmark x")
    assert env["cpu"] and env["cores"] >= 1 and env["threads"] == 2
    assert env["versions"]["onnxruntime"] and env["versions"]["numpy"]


def test_report_modules_do_not_import_torch():
    code = ("import sys, edge_sdk.report as r; r.environment(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/dir"], "'--data': Path 'no/such/dir' does not exist"),
    (["no/such/bundle", "--data", "{data}"], "Path 'no/such/bundle' does not exist"),
    (["--data", "{data}", "--threads", "0"], "0 is not a thread count"),
    (["--data", "{data}", "--threads", "x"], "'x' is not an integer"),
    (["--data", "{data}", "--threads", "1,-2"], "-2 is not a thread count"),
    (["--data", "{data}", "--queries", "0"], "'--queries'"),
    (["--data", "{data}"], "no teacher for the reference rows: give --teacher PATH"),
])
def test_bad_arguments_give_one_clear_line(args, message, tiny_data):
    from edge_sdk.cli import cli

    args = [a.replace("{data}", str(tiny_data)) for a in args]
    result = CliRunner().invoke(cli, ["benchmark", *args])
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.output


def test_not_a_bundle_fails_before_any_work(tmp_path, tiny_data, tiny_teacher):
    from edge_sdk.cli import cli

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["benchmark", str(tmp_path / "empty"), "--data", str(tiny_data),
                                      "--teacher", str(tiny_teacher)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "is not a bundle: it has no manifest.json" in result.output
    assert "exporting" not in result.output  # failed before the teacher export


def test_teacher_without_tokenizer_is_refused(tmp_path, tiny_data):
    from edge_sdk.cli import cli

    result = CliRunner().invoke(cli, ["benchmark", "--data", str(tiny_data), "--teacher", str(tmp_path)])
    assert result.exit_code == 2 and "not a save_pretrained classifier folder" in result.output


def test_installed_command_reports_bad_threads_without_traceback(tiny_data):
    exe = Path(sys.executable).with_name("edge-sdk")  # installed by `make setup`
    done = subprocess.run([str(exe), "benchmark", "--data", str(tiny_data), "--threads", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "0 is not a thread count" in done.stderr


def test_help_says_500_is_a_default_not_a_floor():
    from edge_sdk.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["benchmark", "--help"]).output.split())
    assert "500" in text and "not a hard floor" in text


def test_bundle_for_an_absent_provider_runs_on_cpu_with_one_note(tmp_path, tokenizer_path, tiny_onnx):
    import warnings

    from conftest import TEXTS

    from edge_runtime.manifest import ModelFile
    from edge_sdk.benchmark.variants import VariantSpec, open_runner
    from edge_sdk.builder.bundle import write_bundle

    out = tmp_path / "gpu"
    write_bundle(out, tokenizer_path=tokenizer_path, fixture_texts=TEXTS, max_length=32, labels=LABELS,
                 models=[(ModelFile("model.onnx", "onnx", "fp32", ("input_ids", "attention_mask", "token_type_ids")),
                          tiny_onnx)],
                 oos_label="oos", execution={"providers": ["TensorrtExecutionProvider", "CPUExecutionProvider"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback is a note in the report, not a warning per session
        runner = open_runner(VariantSpec("gpu/model.onnx", "bundle", "bundle", str(out), model="model.onnx"), 1)
    assert runner.fallbacks == ("TensorrtExecutionProvider",)
    assert runner.providers == ("CPUExecutionProvider",)
    assert runner.predict(["wake me up at 6am"])[0] in LABELS


def test_bundles_sharing_a_folder_name_get_distinct_rows():
    from edge_sdk.benchmark.variants import bundle_labels

    labels = bundle_labels([Path("build/clinc/arm64"), Path("build/clinc-student/arm64"), Path("build/clinc/web-wasm")])
    assert labels == ["clinc/arm64", "clinc-student/arm64", "web-wasm"]
