"""`edge-sdk build`: recipes composed into cached steps, one verified bundle per hardware target.

    steps.py        the teacher and the recipe's model steps (distill, ...), each a plain function
    formats.py      each target's model files: ONNX export, fusion, quantization, TFLite
    graph_choice.py fused or plain graph, by measured latency
    guard.py        the accuracy budgets every shipped file must meet
    bundle.py       writing a bundle atomically, with parity fixtures and checksums
    run.py          `build()`: the composition;  command.py: the CLI
"""


def __getattr__(name):  # torch and transformers load only when a build runs
    if name in ("build", "TargetResult"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module 'edge_sdk.builder' has no attribute {name!r}")


__all__ = ["TargetResult", "build"]
