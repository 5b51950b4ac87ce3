"""Errors of the distillation step; each message says what to change."""

from __future__ import annotations

from ..errors import EdgeSdkError


class DistillError(EdgeSdkError):
    """Distillation cannot run as asked (bad layers, teacher without a head, unreachable storage)."""
