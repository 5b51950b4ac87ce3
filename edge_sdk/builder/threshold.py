"""The out-of-scope threshold step: fitted on the validation split (never test) for the file a
bundle ships first, written into the manifest, applied by every runtime (Python, JS, TFLite).

Below the threshold, the top label's probability is too low to trust and the answer becomes the
out-of-scope label: CLINC150's students lose mostly out-of-scope recall (BENCHMARKS.md), and a
threshold fitted per model gives each the same chance (the benchmark fits one for every row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.manifest import ModelFile

from ..data import LabelledData
from .measure import HOST_PROVIDERS


def fit_threshold(model_path: Path, entry: ModelFile, tokenizer_path: Path, max_length: int,
                  data: LabelledData) -> float:
    """The threshold on the top probability that maximises validation accuracy, texts run one by one
    as the guard runs them."""
    from edge_runtime.backends import load_backend
    from edge_runtime.pipeline import softmax
    from edge_runtime.tokenize import TextEncoder

    from ..metrics import fit_oos_threshold

    backend = load_backend(model_path, entry, threads=None, providers=HOST_PROVIDERS)
    encoder = TextEncoder(tokenizer_path, min(max_length, backend.static_length or max_length))
    rows = [backend.run(encoder.feeds([ids], backend.input_names))[0]
            for ids in encoder.ids(list(data.validation.texts))]
    return fit_oos_threshold(softmax(np.asarray(rows)), np.asarray(data.validation.labels), data.oos_id)
