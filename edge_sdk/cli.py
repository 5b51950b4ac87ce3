"""`edge-sdk`: the host-side command line. Each command lives beside the step it drives;
this module only assembles the group, so `edge-sdk --help` stays fast (no torch import)."""

from __future__ import annotations

import sys

import click

from .errors import friendly_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edge-sdk")
def cli():
    """Compress a Transformer text classifier into verified bundles per hardware target.

    \b
    Typical use:
      edge-sdk targets                          # what each hardware profile is for
      edge-sdk build --target arm64             # MiniLM on the embedded dataset -> build/arm64
      edge-sdk build --target x86-avx512-vnni --data ../shared/data/clinc150
      edge-sdk verify build/arm64
    """


@cli.command()
def targets():
    """List the hardware target profiles with one line of why for each."""
    from .profiles import available_targets, load_target

    for name in available_targets():
        profile = load_target(name)
        formats = ", ".join(f"{m.format} {m.precision}" for m in profile.models)
        click.echo(f"{name:<18} {profile.why}  [{formats}]")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=str))
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads for the replay.")
def verify(bundle, threads):
    """Check a bundle: checksums, schema, then its parity fixtures replayed here."""
    from edge_runtime.cli import main as runtime_main

    args = ["verify", bundle] + (["--threads", str(threads)] if threads else [])
    sys.exit(runtime_main(args))


def _register():
    from .build.command import build
    from .mobile import mobile_install

    for command in (build, mobile_install):
        cli.add_command(command)
    from .benchmark.command import benchmark
    cli.add_command(benchmark)
    from .distill.command import distill
    cli.add_command(distill)
    from .sign import keygen, sign
    cli.add_command(keygen)
    cli.add_command(sign)


_register()


def main():
    with friendly_errors():
        cli()
