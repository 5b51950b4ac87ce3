"""The book's plot_metrics: accuracy against p50 latency, point area proportional to size on disk.

Reference rows are drawn hollow with a dashed edge; the first reference (the FP32 teacher, every
ratio's baseline) also gets a star at its centre. Each point carries its name. matplotlib's Agg
backend writes the PNG, so no display is needed.
"""

from __future__ import annotations

import math
from pathlib import Path

MAX_AREA = 1600.0  # points², for the largest model; area stays proportional to size in MB


def _value(row: dict, *keys):
    value = row
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def plot_metrics(rows: list[dict], path: str | Path, title: str | None = None, threads: int | None = None,
                 split: str = "test") -> Path:
    """Scatter accuracy (%) on `split` against p50 latency (ms); rows lacking either are left out.

    Rows measured at several thread counts are plotted at one: `threads`, default the first
    row's (one picture compares models, not thread counts). A row with "chosen": True is ringed in
    black (a search's pick).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = [r for r in rows if _value(r, "accuracy") is not None and _value(r, "latency", "p50_ms") is not None]
    if len({r.get("threads") for r in points}) > 1:
        threads = points[0].get("threads") if threads is None else threads
        points = [r for r in points if r.get("threads") == threads]
    if threads is None and points:
        threads = points[0].get("threads")
    sizes = [_value(r, "size_mb") or 0.0 for r in points]
    scale = MAX_AREA / max(max(sizes, default=0.0), 1e-9)
    first_reference = next((r for r in points if r.get("kind") == "reference"), None)

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    if points:  # limits first: label placement works in display space
        xs = [_value(r, "latency", "p50_ms") for r in points]
        ys = [100 * _value(r, "accuracy") for r in points]
        ax.set_xlim(0, max(xs) * 1.25)
        pad = max(1.0, (max(ys) - min(ys)) * 0.25)
        ax.set_ylim(max(0.0, min(ys) - pad), min(100.5, max(ys) + pad))
    placed: list[tuple[float, float]] = []  # label anchors in points, to keep labels apart
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    right = ax.get_xlim()[1]
    for i, (row, size) in enumerate(zip(points, sizes)):
        x, y = _value(row, "latency", "p50_ms"), 100 * _value(row, "accuracy")
        area = max(size * scale, 12.0)
        color = colors[i % len(colors)]
        label = str(row.get("name", "?"))
        if row.get("kind") == "reference":
            ax.scatter([x], [y], s=area, facecolors="none", edgecolors=color, linewidths=1.8, linestyles="--",
                       label=f"{label} (reference)")
            if row is first_reference:
                ax.scatter([x], [y], s=140, marker="*", color=color, zorder=3)
                label += " [baseline of ratios]"
        else:
            ax.scatter([x], [y], s=area, color=color, alpha=0.55, edgecolors=color, label=label)
        if row.get("chosen"):
            ax.scatter([x], [y], s=area + 120, facecolors="none", edgecolors="black", linewidths=2.2, zorder=4)
            label += " [chosen]"
        size_text = f", {size:.1f} MB" if size else ""
        offset = 0.75 * math.sqrt(area / math.pi) + 3  # just outside the marker's edge
        left = x > 0.55 * right  # labels of the slowest points go to their left, inside the axes
        text = f"{label}{size_text}"
        dy = _free_offset(ax, (x, y), offset, placed, left, width=4.6 * len(text))
        # Text in the point's colour, tied to it by a thin leader line when it had to move away.
        ax.annotate(text, (x, y), xytext=(-offset if left else offset, dy), textcoords="offset points",
                    fontsize=8, ha="right" if left else "left", va="center", color=_darker(color),
                    fontweight="bold" if row is first_reference else "normal",
                    arrowprops=dict(arrowstyle="-", lw=0.6, color=color, shrinkA=1, shrinkB=2)
                    if abs(dy) > offset + 1 else None)
    if points:
        legend = ax.legend(loc="lower right", fontsize=8, markerscale=0.4, frameon=True)
        for handle in getattr(legend, "legend_handles", []):
            if hasattr(handle, "set_sizes"):
                handle.set_sizes([30])
    else:
        ax.text(0.5, 0.5, "no row has both accuracy and latency", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("p50 latency at batch 1 (ms)")
    ax.set_ylabel(f"accuracy on the {split} split (%)")
    at = f" at {threads} thread{'s' if threads != 1 else ''}" if isinstance(threads, int) else ""
    ax.set_title(title or f"Accuracy against batch-1 latency{at} (point area ∝ size on disk)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _free_offset(ax, xy: tuple[float, float], offset: float, placed: list[tuple[float, float, float]],
                 left: bool, width: float) -> float:
    """A vertical label offset (points) that keeps this label's box off the boxes already placed.

    Tries the natural spot, then alternately above and below in 11-point steps. Positions are in
    display space, so the axes limits are set before any label is placed.
    """
    px, py = ax.transData.transform(xy) * 72.0 / ax.figure.dpi
    x0 = px - offset - width if left else px + offset
    candidates = [offset * 0.6] + [offset * 0.6 + sign * 11 * k for k in range(1, 30) for sign in (1, -1)]
    for dy in candidates:
        if not any(x0 < qx + qw and qx < x0 + width and abs(py + dy - qy) < 10.5 for qx, qy, qw in placed):
            break
    placed.append((x0, py + dy, width))
    return dy


def _darker(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(0.7 * c for c in to_rgb(color))
