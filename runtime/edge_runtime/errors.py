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
    """An archive member would land outside the bundle (absolute path, '..', link), is listed twice,
    or the archive unpacks past the size or member-count limit."""


class DigestMismatchError(BundleError):
    """The bundle's digest (sha256 of manifest.json) is not the one the caller pinned."""


class SignatureError(BundleError):
    """The bundle carries no valid Ed25519 signature by the public key the caller trusts."""


class SigningUnavailableError(EdgeRuntimeError):
    """Checking or making a signature needs the `cryptography` package (the `signing` extra)."""


class LimitError(EdgeRuntimeError, ValueError):
    """A requested resource (threads, ...) is past the runtime's hard cap; says how to stay within it."""


class InputError(EdgeRuntimeError, ValueError):
    """An argument is not usable: texts that are not a non-empty string or list of strings (or one
    past the character limit), a malformed digest, an unreadable or wrong key file."""


class BackendUnavailableError(EdgeRuntimeError):
    """The backend or execution provider a bundle needs is not installed; says what to install."""


class ParityError(EdgeRuntimeError):
    """Replaying the bundle's parity fixtures gave outputs past the manifest's tolerance."""
