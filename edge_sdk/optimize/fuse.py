"""Graph fusion with onnxruntime's transformer optimizer (Attention, SkipLayerNorm, GELU)."""

from __future__ import annotations

from pathlib import Path


def fuse_transformer(src: Path, dst: Path, *, num_heads: int, hidden_size: int,
                     skip_layer_norm: bool = True) -> dict[str, int]:
    """Write a fused copy of `src` to `dst`; returns the optimizer's fused-operator counts.

    opt_level=0 applies only the transformer fusions, not onnxruntime's own graph rewrites, so the
    file stays portable across execution providers (each applies its own at load time).
    skip_layer_norm=False leaves each residual Add and its LayerNormalization apart (see
    builder/graph_choice.py for why that can be faster).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = skip_layer_norm
    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           opt_level=0, use_gpu=False, optimization_options=options)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    model.save_model_to_file(str(dst))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
