"""The `edge-sdk mobile-install` command.

    edge-sdk build --target web-wasm --out build
    edge-sdk mobile-install build/web-wasm              # -> android_demo/www/bundle/
"""

from __future__ import annotations

from pathlib import Path

import click

from ..command import command
from .install import APP_DIR, install_bundle


@command("mobile-install")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--app", type=click.Path(path_type=Path), default=None,
              help=f"the mobile demo app folder (default: ./{APP_DIR})")
def mobile_install(bundle: Path, app: Path | None) -> None:
    """Verify BUNDLE (folder, .zip or .tar.gz) and copy it into the mobile demo app's assets."""
    done = install_bundle(bundle, app)
    for line in done.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"installed {bundle} into {done.destination} (app loads {done.model_file}, "
               f"{done.model_bytes / 1e6:.2f} MB; bundle {done.bundle_bytes / 1e6:.2f} MB; target {done.target})")
    click.echo(f"try it: cd {done.app} && npm install && npm run serve   (then open http://127.0.0.1:8080/)")
    click.echo(f"android: cd {done.app} && npx cap add android && npx cap sync android   (needs the Android SDK)")
