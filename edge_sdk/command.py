"""The one place where errors become command-line messages.

Every `edge-sdk` command is a `Command`: library noise is silenced before it runs (quiet.py); an
`EdgeSdkError` or `EdgeRuntimeError` raised anywhere below it prints `Error: <one line>` and exits 1;
Ctrl-C exits 130 saying nothing was published; anything else is a bug and keeps its traceback.
Library code raises typed errors and never imports click.
"""

from __future__ import annotations

import click

from .errors import EdgeSdkError
from .quiet import quiet_libraries

INTERRUPTED = 130


class Command(click.Command):
    def invoke(self, ctx: click.Context):
        from edge_runtime.errors import EdgeRuntimeError

        quiet_libraries()  # before the command imports torch or transformers
        try:
            return super().invoke(ctx)
        except (EdgeSdkError, EdgeRuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was written at the output path", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


class Group(click.Group):
    command_class = Command  # its subcommands handle errors the same way


def command(name: str | None = None, **kwargs):
    """`click.command` for edge-sdk commands (user errors as one line, exit 1)."""
    return click.command(name, cls=Command, **kwargs)


def group(name: str | None = None, **kwargs):
    return click.group(name, cls=Group, **kwargs)
