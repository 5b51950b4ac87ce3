"""k-means over embedding rows, for the rows a trimmed vocabulary shares (vocab.py, shared_rows).

Plain Lloyd iterations in torch, seeded: the host SDK has torch already, and this is one small
call on at most a few tens of thousands of rows (MiniLM: 22,668 x 384 into 256 in a few seconds).
"""

from __future__ import annotations


def kmeans(rows, k: int, *, iterations: int = 20, seed: int = 0):
    """(centroids [k, d], assignment [n]) of `rows` [n, d]; k is capped at n. Seeded k-means++
    (Arthur & Vassilvitskii 2007: each next start drawn with probability ~ squared distance to the
    nearest start so far), so separated groups each get a start; an empty cluster keeps its centroid."""
    import torch

    rows = rows.detach().float()
    k = min(k, len(rows))
    generator = torch.Generator().manual_seed(seed)
    starts = [int(torch.randint(len(rows), (1,), generator=generator))]
    nearest = torch.cdist(rows, rows[starts]).squeeze(1) ** 2
    while len(starts) < k:
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        starts.append(int(torch.multinomial(weights, 1, generator=generator)))
        nearest = torch.minimum(nearest, torch.cdist(rows, rows[starts[-1:]]).squeeze(1) ** 2)
    centroids = rows[starts].clone()
    assignment = torch.cdist(rows, centroids).argmin(1)
    for _ in range(iterations):
        _move_to_means(centroids, rows, assignment)
        moved = torch.cdist(rows, centroids).argmin(1)
        if torch.equal(moved, assignment):
            break
        assignment = moved
    _move_to_means(centroids, rows, assignment)  # each row of the result is its members' mean
    return centroids, assignment


def _move_to_means(centroids, rows, assignment) -> None:
    import torch

    counts = torch.bincount(assignment, minlength=len(centroids))
    sums = torch.zeros_like(centroids).index_add_(0, assignment, rows)
    filled = counts > 0
    centroids[filled] = sums[filled] / counts[filled, None]
