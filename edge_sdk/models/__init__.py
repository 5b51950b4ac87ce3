"""Models: where a model named by the user comes from (a folder, the hub, or a packaged copy on
PyPI), and loading it as a sequence classifier."""

from .load import EXPORTABLE, FASTEST, has_head_for, load_classifier, load_config, model_input_names

__all__ = ["EXPORTABLE", "FASTEST", "has_head_for", "load_classifier", "load_config", "model_input_names"]
