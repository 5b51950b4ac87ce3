"""Typed errors of the device runtime.

Every user mistake (bad bundle, bad input) raises a subclass of `EdgeRuntimeError` with a
one-line message; the CLI prints that line and exits non-zero, never a traceback.
"""


class EdgeRuntimeError(Exception):
    """Base of every error the runtime raises on purpose."""


class BundleError(EdgeRuntimeError):
    """The bundle is missing, unreadable, or its files do not match the manifest."""


class ChecksumError(BundleError):
    """A file's sha256 differs from the one recorded in the manifest (tampered or corrupt)."""


class SchemaVersionError(BundleError):
    """The manifest was written by an SDK whose bundle format this runtime does not know."""


class UnsafeArchiveError(BundleError):
    """An archive member would land outside the bundle (absolute path, '..', link)."""


class InputError(EdgeRuntimeError, ValueError):
    """The texts given to a pipeline are not a non-empty string or list of strings."""


class BackendUnavailableError(EdgeRuntimeError):
    """The backend or execution provider a bundle needs is not installed; says what to install."""


class ParityError(EdgeRuntimeError):
    """Replaying the bundle's parity fixtures gave outputs past the manifest's tolerance."""
