"""The cubic sparsity schedule of Zhu & Gupta 2017 ("To prune, or not to prune")."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PruneError


@dataclass(frozen=True)
class CubicSchedule:
    """s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))**3 for t = t0, t0 + dt, ..., t0 + n * dt.

    Sparsity is 0 before t0 (dense training), changes only on those update steps (between them it
    stays at the last update's value) and stays at s_f after the last one. Pruning fast at first and
    slowly near the end is the paper's point: the network recovers while few weights remain.
    """

    final: float  # s_f, the sparsity reached (fraction of zeros in each pruned matrix)
    updates: int  # n, the number of pruning steps after the first
    frequency: int = 1  # dt, training steps between pruning steps
    start: int = 0  # t0, the step of the first pruning
    initial: float = 0.0  # s_i, the sparsity at t0

    def __post_init__(self):
        if not 0 <= self.initial <= self.final < 1:
            raise PruneError(f"sparsity must go from initial {self.initial} up to final {self.final}, within [0, 1)")
        if self.updates < 1 or self.frequency < 1 or self.start < 0:
            raise PruneError(f"updates ({self.updates}) and frequency ({self.frequency}) must be at least 1, "
                             f"start ({self.start}) at least 0")

    @classmethod
    def over(cls, total_steps: int, final: float, *, begin: float = 0.0, end: float = 0.7, frequency: int = 10,
             initial: float = 0.0) -> CubicSchedule:
        """Prune from `begin` to `end` (fractions of `total_steps`) every `frequency` steps; the rest of
        training recovers at the final sparsity (Sanh et al. 2020 also keep a cool-down at the end)."""
        start = int(begin * total_steps)
        span = max(1, int(end * total_steps) - start)
        frequency = min(frequency, span)  # a short run still reaches `final` by `end`
        return cls(final, max(1, span // frequency), frequency, start, initial)

    @property
    def end(self) -> int:
        return self.start + self.updates * self.frequency

    def is_update(self, step: int) -> bool:
        return self.start <= step <= self.end and (step - self.start) % self.frequency == 0

    def __call__(self, step: int) -> float:
        if step < self.start:
            return 0.0
        last = self.start + min((step - self.start) // self.frequency, self.updates) * self.frequency
        progress = (last - self.start) / (self.updates * self.frequency)
        return self.final + (self.initial - self.final) * (1 - progress) ** 3
