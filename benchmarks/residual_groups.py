"""How many int8 scales the residual stream needs: a post-training probe for issue 17's all-int8 file.

Only the residual stream is fake-quantized (int8, asymmetric, ranges from 256 training texts):
every LayerNorm's input (the residual add, or the embeddings' sum) and output. Everything else
stays float, so the accuracy lost is the stream's alone. Each row splits the hidden dimensions of
every such tensor into an outlier group (the K dimensions with the widest calibrated range, chosen
per tensor) and the rest, each group with its own scale: what per-embedding-group quantization
(Bondarenko et al., EMNLP 2021) would give a LiteRT graph that carries the groups as separate int8
tensors (DESIGN.md, QAT). K = 0 is one scale per tensor, as the int8 file has today; "per dim" is
one scale per dimension, the bound no grouping beats. The last grouped row takes as its outlier
group, in every tensor, each dimension that is the widest of some tensor: the one permutation of
the hidden dimensions a LiteRT graph would need.

    python benchmarks/residual_groups.py TEACHER_DIR ../shared/data/clinc150 [--groups 0 1 2 4 8 16]

Prints one line per row: test accuracy and argmax agreement with the float model; the float row
also gives the largest widest-to-median range ratio over the stream's tensors and, per hidden
dimension, how many tensors have it as their widest.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def layer_norms(model):
    import torch

    return [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)]


def calibrate(model, batches) -> dict:
    """Per tensor (each LayerNorm's input and output), per hidden dimension: min and max."""
    import torch

    ranges: dict[str, list] = {}

    def record(key, x):
        flat = x.detach().reshape(-1, x.shape[-1])
        low, high = flat.min(0).values, flat.max(0).values
        if key in ranges:
            ranges[key] = [torch.minimum(ranges[key][0], low), torch.maximum(ranges[key][1], high)]
        else:
            ranges[key] = [low, high]

    hooks = []
    for name, module in layer_norms(model):
        hooks.append(module.register_forward_pre_hook(lambda m, args, name=name: record(name + ":in", args[0])))
        hooks.append(module.register_forward_hook(lambda m, args, out, name=name: record(name + ":out", out)))
    with torch.inference_mode():
        for batch in batches:
            model(**batch)
    for hook in hooks:
        hook.remove()
    return ranges


def group_scales(low, high, outliers):
    """(scale, zero point) per dimension for an int8 asymmetric grid: one per group. outliers=None:
    one per dimension; 0: one for the tensor; K: the K widest dimensions share one, the rest another;
    a list of dimensions: those share one (the same in every tensor), the rest another."""
    import torch

    if outliers is None:
        groups = [torch.tensor([d]) for d in range(len(low))]
    elif isinstance(outliers, list):
        chosen = torch.zeros(len(low), dtype=torch.bool)
        chosen[outliers] = True
        groups = [torch.nonzero(chosen).flatten(), torch.nonzero(~chosen).flatten()]
    else:
        order = torch.argsort(high - low, descending=True)
        groups = [order[:outliers], order[outliers:]] if outliers else [order]
    scale, zero = torch.empty_like(low), torch.empty_like(low)
    for dims in groups:
        if not len(dims):
            continue
        lo, hi = min(low[dims].min().item(), 0.0), max(high[dims].max().item(), 0.0)
        s = max(hi - lo, 1e-8) / 255.0
        scale[dims], zero[dims] = s, round(-128 - lo / s)
    return scale, zero


def fake_quantize(x, scale, zero):
    import torch

    return (torch.clamp(torch.round(x / scale) + zero, -128, 127) - zero) * scale


def predictions(model, batches, ranges=None, outliers=None) -> np.ndarray:
    import torch

    hooks = []
    if ranges is not None:
        grids = {key: group_scales(low, high, outliers) for key, (low, high) in ranges.items()}
        for name, module in layer_norms(model):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: (fake_quantize(args[0], *grids[name + ":in"]),)))
            hooks.append(module.register_forward_hook(
                lambda m, args, out, name=name: fake_quantize(out, *grids[name + ":out"])))
    out = []
    with torch.inference_mode():
        for batch in batches:
            out.append(model(**batch).logits.argmax(-1).numpy())
    for hook in hooks:
        hook.remove()
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher")
    parser.add_argument("data")
    parser.add_argument("--groups", type=int, nargs="+", default=[0, 1, 2, 4, 8, 16],
                        help="outlier-group sizes K to try (0: one scale per tensor)")
    parser.add_argument("--calibration", type=int, default=256, help="training texts for the ranges")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from edge_sdk.data import load_data
    from edge_sdk.models import load_classifier

    data = load_data(args.data)
    model, tokenizer = load_classifier(args.teacher).eval(), AutoTokenizer.from_pretrained(args.teacher)

    def batches(texts, size=64):
        return [tokenizer(list(texts[i:i + size]), padding=True, truncation=True, max_length=64, return_tensors="pt")
                for i in range(0, len(texts), size)]

    step = max(1, len(data.train) // args.calibration)
    ranges = calibrate(model, batches(list(data.train.texts)[::step][:args.calibration]))
    ratio = max(((high - low).max() / (high - low).median()).item() for low, high in ranges.values())
    widest = [int((high - low).argmax()) for low, high in ranges.values()]
    widest_dims = {d: widest.count(d) for d in sorted(set(widest), key=widest.count, reverse=True)}
    test, labels = batches(list(data.test.texts)), np.asarray(data.test.labels)
    reference = predictions(model, test)
    print(json.dumps({"row": "float", "test": round(float((reference == labels).mean()), 4),
                      "widest_to_median_range": round(ratio, 1), "tensors": len(ranges),
                      "widest_dim_counts": widest_dims}), flush=True)
    for outliers in [*args.groups, list(widest_dims), None]:
        predicted = predictions(model, test, ranges, outliers)
        row = "per dim" if outliers is None else f"K={outliers}" if isinstance(outliers, int) else \
            f"dims {outliers} in every tensor"
        print(json.dumps({"row": row,
                          "test": round(float((predicted == labels).mean()), 4),
                          "agreement": round(float((predicted == reference).mean()), 4)}), flush=True)


if __name__ == "__main__":
    main()
