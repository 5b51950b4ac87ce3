"""User-facing errors of the SDK and the one place that turns them into a one-line message."""

from __future__ import annotations

import sys
from contextlib import contextmanager


class EdgeSdkError(Exception):
    """Base of errors the SDK raises on purpose (bad input, a budget exceeded)."""


class AccuracyBudgetError(EdgeSdkError):
    """A shipped model loses more accuracy than the target profile allows; nothing is shipped."""


def user_error_types() -> tuple[type[BaseException], ...]:
    from edge_runtime.errors import EdgeRuntimeError

    from .data.loaders import DataError
    from .export.onnx import ExportValidationError
    from .profiles import ProfileError

    return (EdgeSdkError, EdgeRuntimeError, DataError, ProfileError, ExportValidationError)


@contextmanager
def friendly_errors():
    """Known failures print `error: ...` and exit 1; Ctrl-C exits 130; bugs keep their traceback."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted: nothing was written at the output path", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if isinstance(exc, user_error_types()):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        raise
