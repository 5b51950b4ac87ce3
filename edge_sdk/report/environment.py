"""What a benchmark ran on: CPU, cores, ISA flags that matter for int8, library versions, threads.

Dependency-light on purpose (no torch import): versions come from package metadata, so
`edge-sdk build` can call this without paying for imports it does not need.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

LIBRARIES = ("onnxruntime", "torch", "transformers", "tokenizers", "numpy", "onnx", "edge-sdk", "edge-sdk-runtime")
# Flags that decide which int8 kernels run: VNNI doubles int8 dot-product throughput over AVX2.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_model() -> str:
    """The model name the kernel reports (e.g. 'AMD EPYC', 'Intel(R) Xeon(R) ...'), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                present = set(value.split())
                return [f for f in ISA_FLAGS if f in present]
    except OSError:
        pass
    return []


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(threads: int | list[int] | None = None, command: str | None = None) -> dict:
    """A plain dict for reports and JSON: cpu, cores, isa flags, load, versions, threads, command."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "isa": cpu_flags(),
        "load_average": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "versions": library_versions(),
        "threads": threads,
        "command": command if command is not None else " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
    }
