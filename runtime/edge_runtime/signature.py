"""Ed25519 signatures of bundles, kept in `signature.json` beside `manifest.json`.

What is signed is the bundle digest (digest.py), so one signature covers every file. The
signature file lives inside the bundle folder so that it travels with it (copies, .zip/.tar.gz
archives, the phone's assets) as one unit; it is the only file the manifest cannot list (it is
made after the manifest, over its bytes), so it is exempt from the listing by its exact name and
read strictly: it holds signatures and nothing else, and nothing in it reaches the model.
Adding a signature does not change the digest, so a digest pin and a signature can be used
together.

Keys are PEM files: PKCS#8 private, SubjectPublicKeyInfo public, as `edge-sdk keygen` or
`openssl genpkey -algorithm ed25519` write them. The crypto is the `cryptography` package, an
optional extra (`pip install 'edge-sdk-runtime[signing]'`), so the slim install stays slim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .digest import digest_of
from .errors import InputError, SignatureError, SigningUnavailableError
from .manifest import SIGNATURE_FILE, read_manifest_bytes, read_small

INSTALL = "pip install 'edge-sdk-runtime[signing]'"
ALGORITHM = "ed25519"
# Domain separation: a signature made here verifies only as a signature of an edge-sdk bundle digest.
CONTEXT = b"edge-sdk bundle signature v1\n"
MAX_FILE_BYTES = 64 << 10
MAX_SIGNATURES = 16
MAX_KEY_BYTES = 16 << 10


@dataclass(frozen=True)
class Signature:
    key_id: str  # first 16 hex digits of the sha256 of the raw 32-byte public key
    signature: bytes  # 64 bytes


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SigningUnavailableError(f"bundle signatures need the cryptography package: {INSTALL}") from None
    return ed25519, serialization, InvalidSignature


def message(digest: str) -> bytes:
    return CONTEXT + digest.encode("ascii")


def generate_keypair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new Ed25519 key."""
    ed25519, serialization, _ = _crypto()
    private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    return private_pem, public_pem(private.public_key())


def public_pem(public_key) -> bytes:
    _, serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key) -> str:
    _, serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(key: str | os.PathLike | bytes):
    """A public key from PEM bytes or text, or from a path to a PEM file."""
    ed25519, serialization, _ = _crypto()
    pem, where = _pem(key, "public key")
    try:
        loaded = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where} is not a PEM public key ({_first_line(exc)})") from None
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        raise InputError(f"{where} is a {type(loaded).__name__}, not an Ed25519 public key")
    return loaded


def load_private_key(key: str | os.PathLike | bytes):
    ed25519, serialization, _ = _crypto()
    pem, where = _pem(key, "private key")
    try:
        loaded = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise InputError(f"{where} is encrypted; sign with an unencrypted key file (kept mode 0600)") from None
    except ValueError as exc:
        raise InputError(f"{where} is not a PEM private key ({_first_line(exc)})") from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise InputError(f"{where} is a {type(loaded).__name__}, not an Ed25519 private key")
    return loaded


def sign_bundle(bundle_dir: str | Path, private_key: str | os.PathLike | bytes) -> tuple[str, str]:
    """Sign a bundle folder's digest; add the signature to its signature.json (replacing an older
    one by the same key). Returns (digest, key id)."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise InputError(f"{root} is not a bundle folder: sign the folder, then pack it")
    key = load_private_key(private_key)
    digest = digest_of(read_manifest_bytes(root))
    kid = key_id(key.public_key())
    kept = [s for s in read_signatures(root) if s.key_id != kid] if (root / SIGNATURE_FILE).exists() else []
    if len(kept) >= MAX_SIGNATURES:
        raise InputError(f"{root / SIGNATURE_FILE} already holds {len(kept)} signatures, the most a bundle may carry")
    signatures = kept + [Signature(kid, key.sign(message(digest)))]
    text = json.dumps({"signatures": [{"key_id": s.key_id, "algorithm": ALGORITHM,
                                       "signature": base64.b64encode(s.signature).decode("ascii")}
                                      for s in signatures]}, indent=2) + "\n"
    tmp = root / f".{SIGNATURE_FILE}.tmp"
    try:
        tmp.write_text(text, encoding="ascii")
        os.replace(tmp, root / SIGNATURE_FILE)  # never half a signature file
    finally:
        tmp.unlink(missing_ok=True)  # an unlisted file left behind would make the bundle refused
    return digest, kid


def read_signatures(root: Path) -> tuple[Signature, ...]:
    """The signatures in `root`/signature.json, every field checked; a SignatureError if malformed."""
    path = Path(root) / SIGNATURE_FILE
    if path.is_symlink() or not path.is_file():
        raise SignatureError(f"{SIGNATURE_FILE} is not a regular file")
    raw = read_small(path, MAX_FILE_BYTES, SignatureError, SIGNATURE_FILE)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SignatureError(f"{SIGNATURE_FILE} is not valid JSON") from None
    entries = data.get("signatures") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_SIGNATURES or set(data) != {"signatures"}:
        raise SignatureError(f"{SIGNATURE_FILE} must hold exactly {{\"signatures\": [1 to {MAX_SIGNATURES} entries]}}")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"key_id", "algorithm", "signature"}:
            raise SignatureError(f"{SIGNATURE_FILE} signatures[{i}] must have key_id, algorithm and signature only")
        kid, algorithm, value = entry["key_id"], entry["algorithm"], entry["signature"]
        if algorithm != ALGORITHM:
            raise SignatureError(f"{SIGNATURE_FILE} signatures[{i}]: algorithm {str(algorithm)[:20]!r} "
                                 f"is not {ALGORITHM}")
        if not (isinstance(kid, str) and len(kid) == 16 and all(c in "0123456789abcdef" for c in kid)):
            raise SignatureError(f"{SIGNATURE_FILE} signatures[{i}]: key_id is not 16 hex digits")
        try:
            raw_signature = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except binascii.Error:
            raw_signature = b""
        if len(raw_signature) != 64:
            raise SignatureError(f"{SIGNATURE_FILE} signatures[{i}]: signature is not 64 bytes of base64")
        out.append(Signature(kid, raw_signature))
    return tuple(out)


def verify_signature(root: Path, digest: str, public_key: str | os.PathLike | bytes) -> str:
    """Check that `root` carries a valid signature of `digest` by `public_key`; returns its key id."""
    key = load_public_key(public_key)
    _, _, invalid = _crypto()
    kid = key_id(key)
    if not (Path(root) / SIGNATURE_FILE).exists():
        raise SignatureError(f"bundle is not signed (no {SIGNATURE_FILE}) and a public key was given")
    signatures = read_signatures(root)
    mine = [s for s in signatures if s.key_id == kid]
    if not mine:
        others = ", ".join(s.key_id for s in signatures)
        raise SignatureError(f"bundle is not signed by key {kid} (it carries signatures by {others})")
    for entry in mine:  # any one valid signature by this key will do
        try:
            key.verify(entry.signature, message(digest))
            return kid
        except invalid:
            continue
    raise SignatureError(f"the signature by key {kid} does not match this bundle: manifest.json changed after "
                         "signing, or the signature was forged")


def _pem(key, what: str) -> tuple[bytes, str]:
    if isinstance(key, bytes):
        return key, f"the {what} given"
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        return key.encode("ascii", "replace"), f"the {what} given"
    try:
        path = Path(key)
    except TypeError:
        raise InputError(f"a {what} is PEM bytes or a path to a PEM file, not {type(key).__name__}") from None
    return read_small(path, MAX_KEY_BYTES, InputError, f"{what} {path}"), f"{what} {path}"


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]
