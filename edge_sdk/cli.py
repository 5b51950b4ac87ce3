"""`edge-sdk`: the host-side command line. Each command lives beside the step it drives; this
module only assembles the group, so `edge-sdk --help` stays fast (no torch import)."""

from __future__ import annotations

import sys

import click

from .command import Group, command


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


@command()
@click.argument("bundle", type=click.Path(path_type=str))
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads for the replay.")
@click.option("--digest", metavar="SHA256", help="Refuse the bundle unless its digest is this one.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False), help="Refuse it unless signed by this key.")
@click.option("--allow-unchecked", is_flag=True, help="Exit 0 even when a model could not be checked here.")
def verify(bundle, threads, digest, public_key, allow_unchecked):
    """Check a bundle as `edge-runtime verify` does: digest and signature when asked, checksums,
    schema, then its parity fixtures replayed here."""
    from edge_runtime.cli import main as runtime_main

    args = ["verify", bundle] + (["--threads", str(threads)] if threads else []) + (
        ["--digest", digest] if digest else []) + (["--public-key", public_key] if public_key else []) + (
        ["--allow-unchecked"] if allow_unchecked else [])
    sys.exit(runtime_main(args))


def _register() -> None:
    from .benchmark.command import benchmark
    from .builder.command import build
    from .distill.command import distill
    from .mobile.command import mobile_install
    from .search.command import autotune, latency, prune
    from .sign import keygen, sign

    for each in (verify, build, benchmark, distill, prune, autotune, latency, mobile_install, keygen, sign):
        cli.add_command(each)


_register()


def main():
    cli()
