"""What a build prints: each step with its duration, notes under it; rich keeps it readable in a
terminal and in CI logs (stderr, so stdout stays for results)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape


class Progress:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        start = time.perf_counter()
        self.console.print(f"[bold]→[/bold] {escape(message)}")
        yield
        self.console.print(f"  [dim]done in {time.perf_counter() - start:.1f} s[/dim]")

    def note(self, message: str) -> None:
        self.console.print(f"  {escape(message)}", highlight=False)

    def section(self, title: str) -> None:
        self.console.rule(title)

    def ok(self, message: str) -> None:
        self.console.print(f"[green]✓ {escape(message)}[/green]", highlight=False)

    def failed(self, message: str) -> None:
        self.console.print(f"[red]✗ {escape(message)}[/red]", highlight=False)
