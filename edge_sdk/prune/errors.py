"""Errors of the pruning and low-rank steps; each message says what to change."""

from __future__ import annotations

from ..errors import EdgeSdkError


class PruneError(EdgeSdkError):
    """A pruning request that cannot be honoured (every head of a layer, zero neurons, no such layer)."""
