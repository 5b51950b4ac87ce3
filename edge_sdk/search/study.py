"""An Optuna study that one machine or many workers grow to a size, and resume.

`trials` is the size the study should reach, counted over every worker (finished, pruned and
running trials), so rerunning the same command resumes an interrupted study and several workers
on one storage URL share the work. A killed worker's RUNNING trial turns FAIL once its heartbeat
is stale (storage.py), so it is neither waited for nor counted.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable


def open_study(storage: str, study_name: str, *, directions: tuple[str, ...] = ("maximize",), pruner=None):
    """Create or load (resume) the study on `storage` (a URL, see storage.open_storage)."""
    import optuna

    from .storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.create_study(study_name=study_name, storage=open_storage(storage), directions=list(directions),
                                   load_if_exists=True, pruner=pruner)


def live_trials(study) -> int:
    """Trials that count towards the study's size: complete, pruned, or running on a live worker."""
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                        TrialState.RUNNING)))


def grow(study, trials: int, objective, on_trial: Callable | None = None) -> None:
    """Run `objective` until the study holds `trials` trials (over every worker), then wait for the
    trials still running elsewhere, so every worker reports the whole study."""
    def after(study_, frozen):
        if on_trial is not None:
            on_trial(frozen)

    while live_trials(study) < trials:
        study.optimize(objective, n_trials=1, callbacks=[after], gc_after_trial=True)
    wait_for_other_workers(study)


def wait_for_other_workers(study, poll_s: float = 2.0) -> None:
    from optuna.trial import TrialState

    while True:
        live_trials(study)
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return
        time.sleep(poll_s)
