"""What the benchmarks run on: the BLAS library, its version and kernel, and a warning when
the environment forces a kernel (this workplace sets OPENBLAS_CORETYPE=Haswell, which
halves numpy's GEMM on an AVX-512 processor; a user's machine does not)."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["describe_environment"]

FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_DEBUG_CPU_TYPE", "MKL_CBWR")


def describe_environment() -> str:
    """Lines on the BLAS in use (threadpoolctl) and on any kernel the environment forces."""
    lines = [f"numpy {np.__version__}, {len(os.sched_getaffinity(0))} cores"]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("BLAS: (install threadpoolctl to see the library and kernel in use)")
        pools = []
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    for pool in pools:
        lines.append(
            f"BLAS: {pool.get('internal_api')} {pool.get('version')}, kernel "
            f"{pool.get('architecture')}, {pool.get('num_threads')} threads "
            f"({os.path.basename(pool.get('filepath', ''))})"
        )
    forced = {name: os.environ[name] for name in FORCING_VARIABLES if name in os.environ}
    if forced:
        settings = ", ".join(f"{k}={v}" for k, v in forced.items())
        lines.append(
            f"WARNING: the environment forces the BLAS kernel ({settings}); the timings are "
            "not a user's. Measure with: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
            "python benchmarks/<script>.py"
        )
    return "\n".join(lines)
