"""Reports of benchmark rows: the table (Markdown and console), the plot, the environment.

A row is a plain dict: name, kind ("reference" or "bundle"), accuracy, in_scope_accuracy,
oos_recall (None without oos), size_mb, latency {mean_ms, std_ms, p50_ms, p95_ms, p99_ms, n},
batch32_qps, and optionally threads, peak_rss_mb, flops, gemm_fraction. Nothing here imports
torch, so `edge-sdk build` can write its report cheaply.
"""

from .environment import environment
from .markdown import markdown_table, write_report
from .plot import plot_metrics
from .table import with_ratios

__all__ = ["environment", "markdown_table", "plot_metrics", "with_ratios", "write_report"]
