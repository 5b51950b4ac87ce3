"""`edge_sdk.distill(...)`: the Python entry point of `edge-sdk distill`."""

from __future__ import annotations

from pathlib import Path

from ..data import load_data
from ..quiet import quiet_libraries
from .config import DistillConfig


def distill(teacher: str | Path, *, data: str, out: str | Path = "build/distill", config: DistillConfig | None = None,
            trials: int = 0, space=None, storage: str | None = None, study: str = "distill",
            text_column: str | None = None, label_column: str | None = None):
    """Distil a fine-tuned `teacher` folder into a smaller student.

    trials=0: train one student with `config` (default: DistillConfig()) into `out/student` and
    return that folder. trials >= 1: an Optuna study of that size starting from `config`, over
    `space` (a `SearchSpace`), on `storage` (default: SQLite in `out`); returns the SearchResult
    (best student in `out/student`, its recipe in `out/recipe.toml`). Raises EdgeSdkError
    subclasses for bad input.
    """
    quiet_libraries()
    config = config or DistillConfig()
    dataset = load_data(data, text_column=text_column, label_column=label_column, seed=config.seed)
    out = Path(out)
    if trials == 0:
        from .train import distill as train_one

        return train_one(teacher, dataset, out / "student", config, work_dir=out / "work")
    from .tune import SearchSpace, search

    return search(teacher, dataset, out, trials=trials, base=config, space=space or SearchSpace(), storage=storage,
                  study_name=study)
