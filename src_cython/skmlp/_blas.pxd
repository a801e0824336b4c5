# Fused-type wrappers over the BLAS routines that SciPy exports to Cython
# (scipy.linalg.cython_blas). Every caller passes ordinary C-ordered (row-major)
# arrays; the column-major convention of BLAS is hidden inside these functions.
from cython cimport floating

cpdef enum BLAS_Trans:
    NoTrans = 110  # ord('n')
    Trans = 116    # ord('t')

cdef void _gemm(BLAS_Trans ta, BLAS_Trans tb, int m, int n, int k,
                floating alpha, const floating *A, int lda,
                const floating *B, int ldb,
                floating beta, floating *C, int ldc) noexcept nogil

cdef void _axpy(int n, floating alpha, const floating *x, int incx,
                floating *y, int incy) noexcept nogil

cdef floating _dot(int n, const floating *x, int incx,
                   const floating *y, int incy) noexcept nogil
