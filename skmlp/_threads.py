"""How many BLAS threads a kernel call should use.

OpenBLAS's threads busy-wait between calls. For the small matrix products of a
small network (a mini-batch of a few hundred rows times a few thousand weights)
the hand-off costs more than the product, and on a loaded machine it can cost
ten times the whole fit. Below a work threshold the kernels therefore run with
one BLAS thread; above it BLAS keeps the thread count it was given (by the
user, threadpoolctl, :func:`skmlp.parallel_config` or the environment).

BLAS thread counts are process-wide, so the limit is shared by every fit of
the process, in whatever thread it runs, and counted: the first small fit to
start sets one thread, the last one to end restores what it found. (An
uncounted limit per fit is wrong under concurrency: fit A saves 2 and sets 1,
fit B saves 1, A restores 2, B restores 1 and leaves the process at one
thread. An earlier version therefore limited only fits in the main thread;
then small fits in joblib's threading backend ran with every BLAS thread each,
2 fits x 2 OpenBLAS threads on 2 cores, and GridSearchCV(n_jobs=2) under the
threading backend was slower than n_jobs=1. Measured on benchmark case 6
with BLAS at its default of 2 threads, the old rule patched back in, runs
alternating: n_jobs=1 1.27 s; n_jobs=2 threading 1.95 s with the old rule
(38.5 s once while another process held one of the two cores), 0.77 s with
this one. tests/test_threads.py and tests/test_parallel.py
cover both.) threadpoolctl >= 3.8 adds a rule of its own for OpenBLAS's
process-wide pool: only one "controlling" thread may change it, see
``_as_any_thread``.

Large fits in several threads at once still share the process's BLAS threads;
for those, :func:`skmlp.parallel_config` (or ``threadpoolctl.threadpool_limits``
around the search) sets the number per fit. docs/scaling.md has the numbers.
"""

import contextlib
import threading

from threadpoolctl import ThreadpoolController

try:  # threadpoolctl >= 3.6 (documented in its README; not in __all__)
    from threadpoolctl import OpenBLASController as _OpenBLASController
except ImportError:  # pragma: no cover
    _OpenBLASController = None

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


def _as_any_thread(change):
    """Run a change of OpenBLAS's thread count from whichever thread we are in.

    threadpoolctl lets only one thread change a process-wide OpenBLAS pool,
    the first to try (its "controlling thread"); calls from other threads are
    silently ignored, and a ``limit()`` outside a ``with`` block keeps that
    control forever. Without this, the first fit in the main thread took
    control and every later fit in a worker thread silently kept all BLAS
    threads. So control is taken for the change and released right after.
    """
    clear = getattr(_OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    try:
        return change()
    finally:
        if clear is not None:
            clear()


@contextlib.contextmanager
def _single_thread_blas():
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = _as_any_thread(
                lambda: _get_controller().limit(limits=1, user_api="blas"))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _as_any_thread(_limiter.restore_original_limits)
                _limiter = None


def _batch_work(rows, layer_units):
    return rows * sum(a * b for a, b in zip(layer_units[:-1], layer_units[1:]))


def blas_threads_for(rows, layer_units):
    """Context manager limiting BLAS to one thread when the per-batch work is small."""
    if _batch_work(rows, layer_units) >= SINGLE_THREAD_WORK:
        return contextlib.nullcontext()
    return _single_thread_blas()


# OpenBLAS cores whose GEMM has the "small-matrix" kernels (no packing) that
# OpenBLAS uses for products of at most 1e6 multiply-adds (OpenBLAS >= 0.3.17,
# x86-64 builds with SMALL_MATRIX_OPT, as in the wheels of NumPy and SciPy).
_SMALL_MATRIX_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})

# None: detect on first use. Tests set True / False to force either path.
_small_matrix_blas = None


def _version(text):
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def small_matrix_blas():
    """Do all loaded BLAS libraries run OpenBLAS's small-matrix GEMM kernels?"""
    global _small_matrix_blas
    if _small_matrix_blas is None:
        libs = [lib for lib in _get_controller().info() if lib.get("user_api") == "blas"]
        _small_matrix_blas = bool(libs) and all(
            lib.get("internal_api") == "openblas"
            and str(lib.get("architecture") or "").lower() in _SMALL_MATRIX_CORES
            and _version(lib.get("version") or "0") >= (0, 3, 17)
            for lib in libs
        )
    return _small_matrix_blas


def small_kernels_for(rows, layer_units):
    """Should the kernels shape their products for OpenBLAS's small-matrix
    kernels: cut medium-size products into pieces (``_mlp_fast._product``) and
    store a small batch's output error transposed
    (``_mlp_fast._output_delta_transposed``)?

    Only where they exist and where BLAS runs one thread for this network
    (blas_threads_for): the small kernels are single-threaded, and with more
    threads the packed path divides the work instead.
    """
    return _batch_work(rows, layer_units) < SINGLE_THREAD_WORK and small_matrix_blas()

