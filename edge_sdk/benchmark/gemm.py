"""This machine's dense GEMM rate, measured in the same run as the models (same threads, same load).

fp32 through torch.matmul (oneDNN/MKL, the kernels the PyTorch rows use) and int8 through
torch._int_mm where this torch has it on CPU: with AVX-512 VNNI the int8 rate is several times
the fp32 one, so an int8 model's fraction of the fp32 rate can exceed what fp32 could reach.
"""

from __future__ import annotations

import time


def _best_rate(fn, flops: float, min_seconds: float, repeats: int) -> float:
    fn()  # warm-up: page in, pick kernels
    best = float("inf")
    deadline = time.perf_counter() + min_seconds
    done = 0
    while done < repeats or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        done += 1
        if done >= 50 * repeats:
            break
    return flops / best / 1e9


def gemm_rates(threads: int, size: int = 1024, min_seconds: float = 0.3, repeats: int = 3) -> dict:
    """GFLOP/s (fp32) and GOP/s (int8) of a size³ matrix product at `threads` threads (best of runs).

    The best run, not the mean: it is the rate this machine can reach, the denominator of
    "fraction of peak"; noise only ever makes a run slower.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator)
        b = torch.randn(size, size, generator=generator)
        flops = 2.0 * size ** 3
        out = {"size": size, "threads": threads,
               "fp32_gflops": _best_rate(lambda: torch.matmul(a, b), flops, min_seconds, repeats)}
        try:
            a8 = torch.randint(-128, 127, (size, size), dtype=torch.int8, generator=generator)
            b8 = torch.randint(-128, 127, (size, size), dtype=torch.int8, generator=generator)
            out["int8_gops"] = _best_rate(lambda: torch._int_mm(a8, b8), flops, min_seconds, repeats)
        except (RuntimeError, AttributeError, NotImplementedError):
            out["int8_gops"] = None  # no int8 GEMM on this torch/CPU
        return out
    finally:
        torch.set_num_threads(previous)
