"""Row-major BLAS wrappers, fused over float32 and float64.

The functions here are the only place where skmlp talks to BLAS. They call the
routines SciPy exports through ``scipy.linalg.cython_blas``, so the build links no
BLAS library of its own and runs on whichever BLAS SciPy ships.

``_gemm`` takes row-major operands. A row-major matrix is the transpose of the
same memory read column-major, so ``C = op(A) @ op(B)`` in row-major order is
computed as ``C.T = op(B).T @ op(A).T`` in column-major order: swap the operands
and their dimensions, keep the transpose flags.
"""
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
