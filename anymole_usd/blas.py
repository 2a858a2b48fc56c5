"""BLAS on one thread for the small matrices of the motion graph, the library and the retarget solver.

Their matrices have hundreds of columns. A multi-threaded OpenBLAS on a
busy 2-core machine spins its threads against the other processes: a
186 x 186 eigenproblem took 0.38 s instead of 4 ms, a 600 x 600 one was 30x
slower. One thread is never slower at these sizes.
"""
from __future__ import annotations

import contextlib


def one_blas_thread():
    """A context running BLAS on one thread (threadpoolctl; a plain context when it is missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
