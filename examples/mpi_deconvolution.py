"""
Distributed deconvolution over MPI ranks
========================================

Run with one thread per rank (needs the ``mpi`` extra)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        mpiexec -n 2 python examples/mpi_deconvolution.py

A 16 -> 16 channel layer with ``groups=2`` on 128x128 with reflect padding
has an explicit matrix of 225 MB; with a per-rank memory budget of 200 MB no
single rank may build it. Distributed over groups, each rank assembles and
holds half of it, and pylops-mpi's CGLS solves the deconvolution with no
communication in the products. The result is compared with the serial,
matrix-free solve.
"""

import time
import tracemalloc

import numpy as np
import pylops
import pylops_mpi
from mpi4py import MPI

import toeplitz_conv as tc
from toeplitz_conv.interop import distribute, scatter

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
weight = np.random.default_rng(0).standard_normal((16, 8, 3, 3)) / 8
layer = tc.Conv(
    weight, (16, 128, 128), padding=1, groups=2, padding_mode="reflect", engine="sparse"
)
budget = (
    200 * 10**6
)  # the local matrix and its assembly workspace fit, the whole layer not
tc.set_memory_budget(budget)
if rank == 0:
    print(
        f"{layer}\nexplicit matrix: {layer.nnz:,} nonzeros, "
        f"{layer.nbytes / 1e6:.0f} MB; "
        f"budget per rank {budget / 1e6:.0f} MB"
    )
    try:
        layer.tosparse()
    except tc.MatrixTooLargeError as error:
        print("one rank alone:", str(error).split(";")[0])

D = distribute(layer)
tracemalloc.start()
start = time.perf_counter()
local_matrix = D.local_operator.tosparse()
assembly = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()

truth = np.random.default_rng(1).standard_normal(layer.shape[1])
serial = tc.Conv(
    weight, (16, 128, 128), padding=1, groups=2, padding_mode="reflect", engine="direct"
)
data = serial.matvec(truth)
start = time.perf_counter()
x = pylops_mpi.optimization.basic.cgls(
    D,
    scatter(D, data, "output"),
    x0=scatter(D, np.zeros(layer.shape[1])),
    niter=25,
    tol=0,
)[0].asarray()
solve = time.perf_counter() - start
reports = comm.gather(
    (
        rank,
        D.local_operator.nnz,
        local_matrix.data.nbytes
        + local_matrix.indices.nbytes
        + local_matrix.indptr.nbytes,
        peak,
        assembly,
        solve,
    ),
    root=0,
)
if rank == 0:
    print(f"layout: {D.layout}, {size} ranks")
    for r, nnz, nbytes, peak_bytes, t_asm, t_solve in reports:
        print(
            f"  rank {r}: {nnz:,} nonzeros, matrix {nbytes / 1e6:.0f} MB, "
            f"assembly peak {peak_bytes / 1e6:.0f} MB in {t_asm:.2f} s; "
            f"25 CGLS iterations {t_solve:.2f} s"
        )
    reference = pylops.optimization.basic.cgls(
        serial, data, x0=np.zeros(layer.shape[1]), niter=25, tol=0
    )[0]
    print(
        f"distributed vs serial CGLS: max difference {np.abs(x - reference).max():.1e}"
    )
