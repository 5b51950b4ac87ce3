"""Graph fusion with onnxruntime's transformer optimizer (Attention, SkipLayerNorm, GELU)."""

from __future__ import annotations

from pathlib import Path


def fuse_transformer(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Write a fused copy of `src` to `dst`; returns the optimizer's fused-operator counts.

    opt_level=0 applies only the transformer fusions, not onnxruntime's own graph rewrites, so the
    file stays portable across execution providers (each applies its own at load time).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           opt_level=0, use_gpu=False)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    model.save_model_to_file(str(dst))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
