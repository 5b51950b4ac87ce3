"""Library output a user cannot act on, silenced at its source; warnings that matter stay.

Each entry names what it silences and why. Environment settings the user made win (setdefault).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

# Loggers set to ERROR before their libraries import.
QUIET_LOGGERS = {
    # torchao (pulled in by litert-torch, imported by transformers when present) tries to load its
    # CUDA kernels on a CPU build and logs "Failed to load ..._C_mxfp8...so" for each.
    "torchao": logging.ERROR,
    # torchao registers Enums as pytree constants; torch logs a deprecation meant for torchao's authors.
    "torch.utils._pytree": logging.ERROR,
    # For heads pruned to the same count per layer the fusion is given the heads' width as hidden
    # size on purpose (fuse_graph: how it reads the head count); it warns that this is not the input's.
    "onnxruntime.transformers.fusion_attention": logging.ERROR,
    # The 4-bit quantizer sets the root logger to INFO when it is imported (logging.basicConfig) and
    # logs three lines per graph node ("start to quantize ...", "skip to quantize ...").
    # Its warnings say it raises the opset to 21 / IR to 10 for int4 and that the result "may not be a
    # valid model": the build loads, validates and measures every file it writes.
    "onnxruntime.quantization.matmul_nbits_quantizer": logging.ERROR,
}
QUIET_ENVIRONMENT = {
    # transformers' load report ("classifier.weight | MISSING": a new head is what fine-tuning
    # makes) and its advice lines; errors still show.
    "TRANSFORMERS_VERBOSITY": "error",
    # Per-file "Loading weights" and per-split "Map" bars of a few hundred milliseconds; the
    # Trainer's own epoch progress bar stays.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # "the current process just got forked" warnings from the Trainer
    "LITERT_TORCH_SHOW_PROGRESS": "n",  # the TFLite converter's per-pass progress lines
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow Lite's C++ INFO lines ("Created TensorFlow Lite XNNPACK delegate")
}


def quiet_libraries() -> None:
    """Call before torch / transformers are imported (the commands do, first thing)."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


@contextmanager
def quiet_root_logger():
    """onnxruntime's quantizer logs generic advice ("consider pre-processing") on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
