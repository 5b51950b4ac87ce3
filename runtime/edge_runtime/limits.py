"""Resource limits of the runtime: what a bundle, an archive or a caller may make it use.

Each default is sized from what a real bundle needs (a CLINC150 MiniLM bundle is 5 files and
under 150 MB unpacked; an MPNet-base one under 1 GB) with a wide margin, so only a hostile or
mistaken input reaches them. `Limits` is passed to `Pipeline.load` / `open_bundle` to change them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from .errors import LimitError

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    # Archives: the sum of the members' sizes, and how many members (folders included).
    max_unpacked_bytes: int = 4096 * MB
    max_members: int = 1000
    # A batch is cut into model calls of at most this many tokens (rows x padded length):
    # activation memory grows with it. 8192 = 32 rows of 256 tokens, so batch 32 is cut only for
    # longer texts; all 5,500 CLINC150 test texts in one call peaked at 298 MB RSS with MiniLM
    # int8 under it, 3.2 GB without (RELIABILITY.md).
    max_batch_tokens: int = 8192
    # Characters per text. Tokenizing is linear in length (1M chars: 0.5 s) while a model reads
    # only its first max_length tokens (512 tokens is about 3,000 characters of English).
    max_text_chars: int = 100_000
    # Intra-op threads above usable cores only cost; past this cap they are refused outright.
    max_threads_per_core: int = 4
    max_threads_floor: int = 16
    # TFLite interpreters kept for concurrent callers; None: as many as the cores can run at once
    # (cores // threads, at least 1). Each interpreter holds its own activations and arena.
    max_interpreters: int | None = None

    def __post_init__(self):
        for name in ("max_unpacked_bytes", "max_members", "max_batch_tokens", "max_text_chars",
                     "max_threads_per_core", "max_threads_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LimitError(f"Limits.{name} must be a positive integer, got {value!r}")
        if self.max_interpreters is not None and (isinstance(self.max_interpreters, bool)
                                                  or not isinstance(self.max_interpreters, int)
                                                  or self.max_interpreters < 1):
            raise LimitError(f"Limits.max_interpreters must be a positive integer or None, "
                             f"got {self.max_interpreters!r}")

    def max_threads(self) -> int:
        return max(self.max_threads_floor, self.max_threads_per_core * usable_cores())

    def interpreters(self, threads: int) -> int:
        if self.max_interpreters is not None:
            return self.max_interpreters
        return max(1, usable_cores() // max(1, threads))


DEFAULT_LIMITS = Limits()


class ThreadsWarning(RuntimeWarning):
    """More threads than usable cores: they compete for the same cores and slow each other down."""


def usable_cores() -> int:
    """Cores this process may run on (affinity and cpusets included), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None, limits: Limits = DEFAULT_LIMITS, *, source: str = "threads") -> int | None:
    """The thread count to use: None stays None (the backend's default); past the cores a warning,
    past the hard cap a LimitError naming it (a user's --threads 100000 once took 16 GB of stacks)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise LimitError(f"{source} must be a positive integer, got {threads!r}")
    cores, cap = usable_cores(), limits.max_threads()
    if threads > cap:
        raise LimitError(f"{source}={threads} is past the cap of {cap} threads on this machine "
                         f"({cores} usable cores); use at most {cores}")
    if threads > cores:
        warnings.warn(f"{source}={threads} is more than the {cores} usable cores: threads will compete for "
                      f"them; {cores} is usually fastest", ThreadsWarning, stacklevel=3)
    return threads
