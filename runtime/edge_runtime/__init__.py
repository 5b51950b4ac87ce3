"""edge-sdk-runtime: load an edge-sdk bundle on a device and classify text.

    from edge_runtime import Pipeline
    pipe = Pipeline.load("build/arm64")
    pipe("I'd like to rent a car in Paris")

Importing this package is cheap: onnxruntime and tokenizers load when a bundle is loaded.
"""

from importlib import import_module

from .errors import (
    BackendUnavailableError,
    BundleError,
    ChecksumError,
    DigestMismatchError,
    EdgeRuntimeError,
    InputError,
    LimitError,
    ParityError,
    SchemaVersionError,
    SignatureError,
    SigningUnavailableError,
    UnsafeArchiveError,
)
from .manifest import MANIFEST_FILE, SCHEMA_VERSION, Manifest, ModelFile

__version__ = "0.1.0"

_LAZY = {"Pipeline": ".pipeline", "open_bundle": ".bundle", "Bundle": ".bundle", "Limits": ".limits",
         "bundle_digest": ".digest"}


def __getattr__(name):  # PEP 562: keep numpy/onnxruntime/tokenizers out of `import edge_runtime`
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'edge_runtime' has no attribute {name!r}")


__all__ = ["Pipeline", "Bundle", "open_bundle", "bundle_digest", "Limits", "Manifest", "ModelFile", "MANIFEST_FILE",
           "SCHEMA_VERSION", "EdgeRuntimeError", "BundleError", "ChecksumError", "SchemaVersionError",
           "UnsafeArchiveError", "DigestMismatchError", "SignatureError", "SigningUnavailableError", "InputError",
           "LimitError", "BackendUnavailableError", "ParityError"]
