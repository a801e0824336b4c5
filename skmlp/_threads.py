"""How many BLAS threads a kernel call should use.

OpenBLAS's threads busy-wait between calls. For the small matrix products of a
small network (a mini-batch of a few hundred rows times a few thousand weights)
the hand-off costs more than the product, and on a loaded machine it can cost
ten times the whole fit. Below a work threshold the kernels therefore run with
one BLAS thread; above it BLAS keeps the thread count it was given (by the
user, threadpoolctl or the environment).
"""

import contextlib

from threadpoolctl import ThreadpoolController

# Multiply-adds of one mini-batch through all layers below which one thread
# is faster than two on the machines we measured (see benchmarks/).
SINGLE_THREAD_WORK = 2e7

_controller = None


def _get_controller():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def blas_threads_for(rows, layer_units):
    """Context manager limiting BLAS to one thread when the per-batch work is small."""
    work = rows * sum(a * b for a, b in zip(layer_units[:-1], layer_units[1:]))
    if work >= SINGLE_THREAD_WORK:
        return contextlib.nullcontext()
    return _get_controller().limit(limits=1, user_api="blas")
