"""The BENCHMARKS.md rows of issue 17, in one run: post-training static vs QAT for each integer format,
and int4 vs int8 weights, on CLINC150 with the reference rows of `edge-sdk benchmark`.

    python benchmarks/qat_lowbit.py --teacher /root/models/teachers/minilm-clinc \
        --data ../shared/data/clinc150 --out build/qat-lowbit            # --dry-run: print the commands
        # --builds qat: remake only that build; the bundles already in --out are measured with it

Builds (each its own `edge-sdk build`, so a variant that fails validation does not stop the others;
the teacher has its head, so nothing is fine-tuned but the QAT step):
  ptq        gpu-tensorrt (onnxruntime static QDQ, float islands as the profile keeps them) and
             x86-avx512-vnni (dynamic int8): today's bundles
  ptq-full   gpu-tensorrt and android-npu with post-training scales on every GEMM: onnxruntime static
             QDQ without exclusions, and the full-integer TFLite from calibrated scales (full-int8)
  qat        gpu-tensorrt and android-npu with --recipe qat: the same formats, scales from training
  qat-tensorrt  gpu-tensorrt with --recipe qat-tensorrt: QAT of the GEMM inputs only (scope "gemm")
  int4       x86-avx512-vnni with --recipe int4 (4-bit MatMul and embedding weights)
then `edge-sdk benchmark` over every bundle that was built (1 thread, accuracy at batch 1, 500 timed
queries), and the argmax agreement of every shipped file with the FP32 teacher on the whole test
split (the issue's >= 98% bound), written to OUT/agreement.json. A build that fails prints its
one-line error. The post-training full-integer TFLite is expected to fail validation (argmax
agreement ~76% on 600 test texts, below the build's 90%), so it is also made here outside the build
(the same calibrate + export_int8_tflite the build calls) and measured on the whole test split
(accuracy, agreement, size, batch-1 p50 at 1 thread), with an int8 and an int16 residual stream:
the "unshipped" rows of agreement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
PTQ_FULL = '''name = "ptq-full"
why = "post-training static int8 on every GEMM (no float islands), for comparison with qat"
[onnx_quantization]             # onnxruntime static QDQ as gpu-tensorrt, but nothing excluded
method = "static"
calibration = "minmax"
calibration_samples = 256
weight_type = "int8"
activation_type = "int8"
symmetric_activations = true
per_channel = true
op_types = ["MatMul", "Gemm"]
[tflite_quantization]           # the full-integer TFLite of android-npu, scales calibrated instead of trained
method = "full-int8"
calibration_samples = 256
'''
BUILDS = {  # name: (targets, recipe or None for the default)
    "ptq": (["gpu-tensorrt", "x86-avx512-vnni"], None),
    "ptq-full": (["gpu-tensorrt", "android-npu"], "ptq-full"),
    "qat": (["gpu-tensorrt", "android-npu"], "qat"),
    "qat-tensorrt": (["gpu-tensorrt"], "qat-tensorrt"),
    "int4": (["x86-avx512-vnni"], "int4"),
}


def run(command: list, dry_run: bool) -> int:
    print("$", shlex.join(map(str, command)), flush=True)
    return 0 if dry_run else subprocess.run(list(map(str, command))).returncode


def build(name: str, targets: list[str], recipe: str | None, args, recipes: Path) -> int:
    command = [BIN / "edge-sdk", "build", *sum((["--target", t] for t in targets), []), "--model", args.teacher,
               "--data", args.data, "--out", args.out / name]
    if recipe:
        command += ["--recipe", recipes / f"{recipe}.toml" if (recipes / f"{recipe}.toml").is_file() else recipe]
    if name == "ptq-full":
        command += ["--max-accuracy-drop", "100"]  # measure what post-training scales lose; do not stop at the budget
    return run(command, args.dry_run)


def agreement(bundles: list[Path], args) -> dict:
    """Argmax agreement of every model file with the FP32 teacher on the whole test split (batch 1)."""
    import numpy as np
    from transformers import AutoTokenizer

    from edge_runtime import Manifest, Pipeline
    from edge_sdk.data import load_data
    from edge_sdk.distill.logits import predict_logits
    from edge_sdk.models import load_classifier

    data = load_data(str(args.data))
    texts = list(data.test.texts)
    teacher = predict_logits(load_classifier(args.teacher), AutoTokenizer.from_pretrained(str(args.teacher)),
                             texts, 128).argmax(-1)
    labels = np.asarray(data.test.labels)
    rows = {"teacher": {"accuracy": float((teacher == labels).mean())}}
    for bundle in bundles:
        for model in Manifest.read(bundle).models:
            pipe = Pipeline.load(bundle, model=model.file, providers=("CPUExecutionProvider",))
            names = [p["label"] for p in pipe(texts, batch_size=1)]
            predicted = np.asarray([data.labels.index(n) for n in names])
            key = f"{bundle.parent.name}/{bundle.name}/{model.file}"
            rows[key] = {"accuracy": float((predicted == labels).mean()),
                         "agreement_with_teacher": float((predicted == teacher).mean()),
                         "size_mb": (bundle / model.file).stat().st_size / 1e6,
                         "integer": model.metrics.get("integer")}
            print(f"{key}: accuracy {rows[key]['accuracy']:.4f}, argmax agreement with the teacher "
                  f"{rows[key]['agreement_with_teacher']:.2%}", flush=True)
    return rows


def unshipped_full_int8(args, residual_widths=(8, 16)) -> dict:
    """The post-training full-integer TFLite the ptq-full build refuses, made and measured directly,
    once per residual-stream width (the data, model and FP32 predictions loaded once for all)."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from edge_runtime.backends.tflite import TFLiteBackend
    from edge_runtime.bench import batch1_latency
    from edge_runtime.tokenize import TextEncoder
    from edge_sdk.builder.formats import Calibration
    from edge_sdk.data import load_data
    from edge_sdk.distill.logits import predict_logits
    from edge_sdk.export.tflite import export_int8_tflite, integer_summary
    from edge_sdk.models import EXPORTABLE, load_classifier, model_input_names
    from edge_sdk.qat.program import calibrate

    torch.set_num_threads(1)
    data = load_data(str(args.data))
    model = load_classifier(args.teacher, attn=EXPORTABLE)
    names = model_input_names(model)
    encoder = TextEncoder(args.teacher / "tokenizer.json", 128)
    batches = Calibration(data, encoder, names, 0).batches(256)  # as the build does
    texts, labels = list(data.test.texts), np.asarray(data.test.labels)
    ids = encoder.ids(texts)
    teacher = predict_logits(load_classifier(args.teacher), AutoTokenizer.from_pretrained(str(args.teacher)),
                             texts, 128).argmax(-1)
    rows = {}
    for bits in residual_widths:
        path = args.out / "unshipped" / f"ptq-full-int8-residual{bits}.tflite"
        program = calibrate(model, batches, names, residual_bits=bits)
        export_int8_tflite(program, path, sequence_length=128, input_names=names, num_labels=model.config.num_labels)
        backend = TFLiteBackend(str(path), threads=1, input_names=names, sequence_length=128)
        predicted = np.concatenate([backend.run(encoder.feeds(ids[i:i + 1], names))
                                    for i in range(len(ids))]).argmax(-1)
        latency = batch1_latency(lambda batch, run=backend.run: run(encoder.feeds(encoder.ids(batch), names)),
                                 texts[:500])
        row = {"accuracy": float((predicted == labels).mean()),
               "agreement_with_teacher": float((predicted == teacher).mean()), "size_mb": path.stat().st_size / 1e6,
               "p50_ms": latency["p50_ms"], "threads": 1, "integer": integer_summary(path)}
        name = f"ptq-full/android-npu/model.int8.tflite, residual stream int{bits} (made outside the build)"
        print(f"unshipped {name}: accuracy {row['accuracy']:.4f}, agreement {row['agreement_with_teacher']:.2%}, "
              f"{row['size_mb']:.1f} MB, p50 {row['p50_ms']:.2f} ms", flush=True)
        rows[name] = row
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True, help="fine-tuned FP32 teacher folder")
    parser.add_argument("--data", type=Path, required=True, help="CLINC150 folder")
    parser.add_argument("--out", type=Path, default=Path("build/qat-lowbit"))
    parser.add_argument("--builds", default=",".join(BUILDS),
                        help="builds to (re)make, comma-separated; bundles already in OUT are measured too")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()
    chosen = args.builds.split(",")
    unknown = set(chosen) - set(BUILDS)
    if unknown:
        parser.error(f"unknown build(s) {', '.join(sorted(unknown))}; choose from {', '.join(BUILDS)}")
    recipes = args.out / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    (recipes / "ptq-full.toml").write_text(PTQ_FULL)
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    failed = [name for name, (targets, recipe) in BUILDS.items()
              if name in chosen and build(name, targets, recipe, args, recipes)]
    bundles = [args.out / name / t for name, (targets, _) in BUILDS.items() for t in targets
               if (args.out / name / t / "manifest.json").is_file()]
    run([BIN / "edge-sdk", "benchmark", *bundles, "--data", args.data, "--teacher", args.teacher, "--threads", "1",
         "--queries", "500", "--accuracy-batch", "1", "--json", args.out / "qat-lowbit.json",
         "--plot", args.out / "qat-lowbit.png", "--markdown", args.out / "qat-lowbit.md"], args.dry_run)
    if not args.dry_run:
        rows = agreement(bundles, args)
        if not (args.out / "ptq-full" / "android-npu" / "manifest.json").is_file():
            rows["unshipped"] = unshipped_full_int8(args)
        (args.out / "agreement.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"load average at the end: {os.getloadavg()}; builds that failed: {failed or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
