"""`edge-sdk keygen` and `edge-sdk sign`: Ed25519 signatures for bundles.

The signature format and the crypto live in the runtime (edge_runtime/signature.py), which checks
them on the device; these commands only make keys and signatures on the build host.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from .command import command


@command()
@click.argument("key", type=click.Path(dir_okay=False, path_type=Path))
def keygen(key: Path):
    """Make an Ed25519 key pair: KEY (private, mode 0600, keep it secret) and KEY.pub (give it to devices).

    \b
    Equivalent to: openssl genpkey -algorithm ed25519 -out KEY && openssl pkey -in KEY -pubout -out KEY.pub
    """
    from edge_runtime.errors import InputError
    from edge_runtime.signature import generate_keypair, key_id, load_public_key

    public = key.with_name(key.name + ".pub")
    for path in (key, public):
        if path.exists():
            raise InputError(f"{path} exists; keygen never overwrites a key")
    private_pem, public_pem = generate_keypair()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, even briefly
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public.write_bytes(public_pem)
    click.echo(f"private key {key} (keep secret), public key {public} (key id {key_id(load_public_key(public_pem))})")


@command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", "key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM), as `edge-sdk keygen` writes it.")
def sign(bundle: Path, key: Path):
    """Sign BUNDLE (a folder) with an Ed25519 key: writes BUNDLE/signature.json.

    The signature covers the bundle digest (sha256 of manifest.json, which lists every file's
    sha256). Sign the folder, then pack it; devices check with
    `edge-runtime verify BUNDLE --public-key KEY.pub` or `Pipeline.load(BUNDLE, public_key=...)`.
    """
    from edge_runtime.bundle import open_bundle
    from edge_runtime.signature import sign_bundle

    open_bundle(bundle)  # never sign a bundle that does not verify
    digest, kid = sign_bundle(bundle, key)
    click.echo(f"signed {bundle}: digest {digest}, key id {kid}")
