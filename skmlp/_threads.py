"""How many BLAS threads a kernel call should use.

OpenBLAS's threads busy-wait between calls. For the small matrix products of a
small network (a mini-batch of a few hundred rows times a few thousand weights)
the hand-off costs more than the product, and on a loaded machine it can cost
ten times the whole fit. Below a work threshold the kernels therefore run with
one BLAS thread; above it BLAS keeps the thread count it was given (by the
user, threadpoolctl or the environment).

BLAS thread counts are process-wide, and changing them while another thread
is inside BLAS is not reliable (seen here: concurrent fits left OpenBLAS at one
thread for the rest of the process). So the limit is only set by fits running
in the main thread, and is counted (the first user sets it, the last restores
what was there). Fits in worker threads (joblib's threading backend) leave the
thread count to the caller: ``threadpoolctl.threadpool_limits`` around the
parallel call, as docs/scaling will show.
"""

import contextlib
import threading

from threadpoolctl import ThreadpoolController

# Multiply-adds of one mini-batch through all layers below which one thread
# is faster than two on the machines we measured (see benchmarks/).
SINGLE_THREAD_WORK = 2e7

_controller = None
_lock = threading.Lock()
_users = 0
_limiter = None


def _get_controller():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def _single_thread_blas():
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = _get_controller().limit(limits=1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None


def blas_threads_for(rows, layer_units):
    """Context manager limiting BLAS to one thread when the per-batch work is small."""
    work = rows * sum(a * b for a, b in zip(layer_units[:-1], layer_units[1:]))
    if work >= SINGLE_THREAD_WORK or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _single_thread_blas()
