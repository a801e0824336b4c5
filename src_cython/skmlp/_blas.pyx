"""Row-major BLAS wrappers, fused over float32 and float64.

The functions here are the only place where skmlp talks to BLAS. They call the
routines SciPy exports through ``scipy.linalg.cython_blas``, so the build links no
BLAS library of its own and runs on whichever BLAS SciPy ships.

``_gemm`` takes row-major operands. A row-major matrix is the transpose of the
same memory read column-major, so ``C = op(A) @ op(B)`` in row-major order is
computed as ``C.T = op(B).T @ op(A).T`` in column-major order: swap the operands
and their dimensions, keep the transpose flags.
"""
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy, sdot, ddot


cdef void _gemm(BLAS_Trans ta, BLAS_Trans tb, int m, int n, int k,
                floating alpha, const floating *A, int lda,
                const floating *B, int ldb,
                floating beta, floating *C, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, all row-major.

    op(A) is (m, k), op(B) is (k, n), C is (m, n).
    """
    cdef char ta_c = <char>ta
    cdef char tb_c = <char>tb
    # Column-major view: C.T (n, m) = op(B).T (n, k) @ op(A).T (k, m)
    if floating is float:
        sgemm(&tb_c, &ta_c, &n, &m, &k, &alpha, <float *>B, &ldb,
              <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb_c, &ta_c, &n, &m, &k, &alpha, <double *>B, &ldb,
              <double *>A, &lda, &beta, C, &ldc)


cdef void _axpy(int n, floating alpha, const floating *x, int incx,
                floating *y, int incy) noexcept nogil:
    """y += alpha * x"""
    if floating is float:
        saxpy(&n, &alpha, <float *>x, &incx, y, &incy)
    else:
        daxpy(&n, &alpha, <double *>x, &incx, y, &incy)


cdef floating _dot(int n, const floating *x, int incx,
                   const floating *y, int incy) noexcept nogil:
    """return x @ y"""
    if floating is float:
        return sdot(&n, <float *>x, &incx, <float *>y, &incy)
    else:
        return ddot(&n, <double *>x, &incx, <double *>y, &incy)


# Python entry points used only by the test-suite to check the wrappers against
# NumPy over dtype x transpose. They take the operands as stored (C-ordered) and
# the transpose flags as booleans.

def _py_gemm(bint trans_a, bint trans_b, double alpha,
             const floating[:, ::1] A, const floating[:, ::1] B,
             double beta, floating[:, ::1] C):
    """C = alpha * op(A) @ op(B) + beta * C (in place); returns C."""
    cdef int m = A.shape[1] if trans_a else A.shape[0]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    cdef int kb = B.shape[1] if trans_b else B.shape[0]
    cdef int n = B.shape[0] if trans_b else B.shape[1]
    if k != kb or C.shape[0] != m or C.shape[1] != n:
        raise ValueError("shape mismatch in _py_gemm")
    with nogil:
        _gemm(Trans if trans_a else NoTrans, Trans if trans_b else NoTrans,
              m, n, k, <floating>alpha, &A[0, 0], <int>A.shape[1], &B[0, 0],
              <int>B.shape[1], <floating>beta, &C[0, 0], <int>C.shape[1])
    return C.base


def _py_axpy(double alpha, const floating[::1] x, floating[::1] y):
    """y += alpha * x (in place)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError("shape mismatch in _py_axpy")
    _axpy(<int>x.shape[0], <floating>alpha, &x[0], 1, &y[0], 1)


def _py_dot(const floating[::1] x, const floating[::1] y):
    """return x @ y"""
    if x.shape[0] != y.shape[0]:
        raise ValueError("shape mismatch in _py_dot")
    return _dot(<int>x.shape[0], &x[0], 1, &y[0], 1)


# The benchmarks' reference rate (benchmarks/run.py): the same products the
# kernels make, through the same wrapper, with no Python between the calls.
# Through scipy.linalg.blas each call costs about a microsecond of Python, a
# third of a (32, 64, 100) float64 product: timed that way, a small shape's
# rate is not the BLAS's.

cdef struct _GemmCall:
    BLAS_Trans ta, tb
    int m, n, k, lda, ldb, ldc
    const void *A
    const void *B
    void *C


cdef int _describe_call(_GemmCall *c, Py_ssize_t i, bint ta, bint tb,
                        const floating[:, ::1] A, const floating[:, ::1] B,
                        floating[:, ::1] C) except -1:
    """Fill c with the row-major product C = op(A) @ op(B) (call number i)."""
    c.ta = Trans if ta else NoTrans
    c.tb = Trans if tb else NoTrans
    c.m = <int>(A.shape[1] if ta else A.shape[0])
    c.k = <int>(A.shape[0] if ta else A.shape[1])
    c.n = <int>(B.shape[0] if tb else B.shape[1])
    if ((B.shape[1] if tb else B.shape[0]) != c.k or C.shape[0] != c.m
            or C.shape[1] != c.n):
        raise ValueError(f"shape mismatch in _py_gemm_loop (call {i})")
    if c.m == 0 or c.n == 0 or c.k == 0:
        raise ValueError(f"empty product in _py_gemm_loop (call {i})")
    c.lda, c.ldb, c.ldc = <int>A.shape[1], <int>B.shape[1], <int>C.shape[1]
    c.A, c.B, c.C = &A[0, 0], &B[0, 0], &C[0, 0]
    return 0


cdef void _run_calls(const _GemmCall *todo, Py_ssize_t n_calls, Py_ssize_t passes,
                     floating one) noexcept nogil:
    """The products of todo, in order, ``passes`` times (``one`` = 1 picks
    the dtype)."""
    cdef Py_ssize_t i, p
    cdef const _GemmCall *c
    for p in range(passes):
        for i in range(n_calls):
            c = &todo[i]
            _gemm(c.ta, c.tb, c.m, c.n, c.k, one, <const floating *>c.A, c.lda,
                  <const floating *>c.B, c.ldb, one - one, <floating *>c.C, c.ldc)


def _py_gemm_loop(list calls, Py_ssize_t passes):
    """Run the products ``C = op(A) @ op(B)`` of ``calls`` (tuples ``(trans_a,
    trans_b, A, B, C)`` of C-ordered operands of one dtype, as ``_py_gemm``
    takes them) in order, ``passes`` times, without the GIL; returns None.
    """
    cdef Py_ssize_t n_calls = len(calls), i
    cdef bint single
    if n_calls == 0 or passes < 0:
        raise ValueError("_py_gemm_loop needs at least one call and passes >= 0")
    single = memoryview(calls[0][4]).format == "f"
    # (the operands stay alive: ``calls`` holds them while the loop runs)
    cdef _GemmCall *todo = <_GemmCall *>PyMem_Malloc(n_calls * sizeof(_GemmCall))
    if todo == NULL:
        raise MemoryError()
    try:
        for i in range(n_calls):
            ta, tb, A, B, C = calls[i]
            if single:
                _describe_call[float](&todo[i], i, ta, tb, A, B, C)
            else:
                _describe_call[double](&todo[i], i, ta, tb, A, B, C)
        with nogil:
            if single:
                _run_calls(todo, n_calls, passes, <float>1)
            else:
                _run_calls(todo, n_calls, passes, <double>1)
    finally:
        PyMem_Free(todo)
