"""Knowledge distillation: a student from chosen teacher layers, trained on cached teacher logits,
with an Optuna search over alpha, temperature, learning rate and epochs (one machine or many workers)."""

from ..errors import DistillError
from .config import DistillConfig
from .loss import distillation_loss
from .student import make_student, student_from_config

__all__ = ["DistillConfig", "DistillError", "SearchResult", "SearchSpace", "distill", "distillation_loss",
           "make_student", "search", "student_from_config"]


def __getattr__(name):  # transformers/optuna load only when training is asked for
    if name == "distill":
        from . import train

        return getattr(train, name)
    if name in ("SearchResult", "SearchSpace", "search"):
        from . import tune

        return getattr(tune, name)
    raise AttributeError(name)
