"""edge-sdk: compress a Transformer text classifier into verified bundles per hardware target.

The Python API mirrors the command line:

    import edge_sdk
    results = edge_sdk.build(["arm64", "x86-avx512-vnni"], data="../shared/data/clinc150", out="build")
    student = edge_sdk.distill("build/teacher", data="../shared/data/clinc150", out="build/distill")

Both import torch and transformers only when called.
"""

from __future__ import annotations

__all__ = ["build", "distill"]


def __getattr__(name):  # PEP 562: `import edge_sdk` stays cheap
    if name == "build":
        from .builder.run import build

        return build
    if name == "distill":
        from .distill.api import distill

        return distill
    raise AttributeError(f"module 'edge_sdk' has no attribute {name!r}")
