"""Every error the SDK raises on purpose, in one hierarchy rooted in `EdgeSdkError`.

Each is a user-facing problem with a one-line message that says what to change; the commands
print that line and exit 1 (`edge_sdk.command`). Anything else is a bug and keeps its traceback.
This module imports nothing from the package, so any module can raise these.
"""

from __future__ import annotations


class EdgeSdkError(Exception):
    """Base of the errors the SDK raises on purpose (bad input, a budget exceeded)."""


class ConfigError(EdgeSdkError):
    """A target profile or recipe that does not exist, does not parse, or sets a key wrongly."""


class DataError(EdgeSdkError):
    """The data cannot be used as given; the message says what to fix."""


class ModelError(EdgeSdkError):
    """A model that cannot be found, fetched or loaded."""


class MissingDependencyError(EdgeSdkError):
    """An optional extra a step needs is not installed; the message names the install command."""


class ExportValidationError(EdgeSdkError):
    """The exported graph does not compute what the PyTorch model computes; the build stops."""


class MissingOutputError(ExportValidationError):
    pass


class OutputShapeError(ExportValidationError):
    pass


class OutputValueError(ExportValidationError):
    pass


class AccuracyBudgetError(EdgeSdkError):
    """A shipped model loses more accuracy than the target profile allows; nothing is shipped."""


class BundleCheckError(EdgeSdkError):
    """An assembled bundle failed its own check through edge_runtime; nothing is published."""


class DistillError(EdgeSdkError):
    """Distillation cannot run as asked (bad layers, teacher without a head, unreachable storage)."""


class PruneError(EdgeSdkError):
    """A pruning request that cannot be honoured (every head of a layer, zero neurons, no such layer)."""


class TrimError(EdgeSdkError):
    """Vocabulary trimming cannot run as asked (no tokenizer, no texts, an unsupported tokenizer)."""


class MobileAppError(EdgeSdkError):
    """The mobile demo app folder is missing or is not the app."""


class UnsupportedBundleError(EdgeSdkError):
    """A valid bundle the mobile demo cannot run (backend, precision, tokenizer); says what to build."""
