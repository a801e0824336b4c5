"""Tests of the row-major BLAS wrappers in ``skmlp._blas`` against NumPy.

The wrappers are reached through their Python test hooks ``_py_gemm``,
``_py_axpy`` and ``_py_dot``. The numerical tests call the fused specialisation
of the array dtype explicitly (``hook["float"]`` / ``hook["double"]``) so that
they check the BLAS wrapper itself; ``test_plain_call_*`` check separately that
the plain call (``_py_gemm(False, False, 2.5, A, B, 0.0, C)``) reaches the right
specialisation for both dtypes.
"""

import numpy as np
import pytest

from skmlp import _blas

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]

# Relative tolerance of one dot product, scaled by the sum of the magnitudes of
# its terms (see ``_assert_close_scaled``).
TOL = {np.float32: 1e-5, np.float64: 1e-13}

ALPHA = -1.75


def _spec(hook, dtype):
    """The fused specialisation of a hook for ``dtype``."""
    return hook["float" if dtype == np.float32 else "double"]


def _assert_close_scaled(actual, expected, scale, tol):
    """|actual - expected| <= tol * scale elementwise (scale = sum of |terms|)."""
    actual = np.asarray(actual, dtype=np.float64)
    err = np.abs(actual - expected)
    bound = tol * (scale + 1e-30)
    worst = np.max(err / bound)
    assert np.all(err <= bound), (
        f"max error / allowed = {worst:.3g}\nactual=\n{actual}\nexpected=\n{expected}"
    )


def _operands(dtype, m, n, k, trans_a, trans_b, seed=0):
    """Logical op(A) (m, k), op(B) (k, n) and their stored (C-ordered) forms."""
    rng = np.random.RandomState(seed)
    A_log = rng.standard_normal((m, k)).astype(dtype)
    B_log = rng.standard_normal((k, n)).astype(dtype)
    A = np.ascontiguousarray(A_log.T if trans_a else A_log)
    B = np.ascontiguousarray(B_log.T if trans_b else B_log)
    C0 = rng.standard_normal((m, n)).astype(dtype)
    return A_log, B_log, A, B, C0


def _reference(alpha, A_log, B_log, beta, C0):
    """alpha * A @ B + beta * C0 in float64 from the (possibly float32) values,
    and the scale sum |alpha * a_ik * b_kj| + |beta * c_ij| for the tolerance."""
    A64 = A_log.astype(np.float64)
    B64 = B_log.astype(np.float64)
    C64 = C0.astype(np.float64)
    expected = alpha * (A64 @ B64) + beta * C64
    scale = abs(alpha) * (np.abs(A64) @ np.abs(B64)) + abs(beta) * np.abs(C64)
    return expected, scale


# ---------------------------------------------------------------------------
# gemm
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.75], ids=["beta0", "beta1", "beta-0.75"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize(
    "shape", [(5, 3, 7), (1, 4, 2), (3, 1, 1), (37, 21, 65)], ids=lambda s: "m%dn%dk%d" % s
)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_matches_numpy(dtype, shape, trans_a, trans_b, beta):
    m, n, k = shape
    A_log, B_log, A, B, C0 = _operands(dtype, m, n, k, trans_a, trans_b)
    A_before, B_before = A.copy(), B.copy()
    if beta == 0.0:
        # BLAS does not read C when beta == 0; the kernels rely on that for
        # their np.empty workspaces, so garbage (NaN) must not leak through.
        C = np.full((m, n), np.nan, dtype=dtype)
        expected, scale = _reference(ALPHA, A_log, B_log, 0.0, np.zeros((m, n)))
    else:
        C = C0.copy()
        expected, scale = _reference(ALPHA, A_log, B_log, beta, C0)

    out = _spec(_blas._py_gemm, dtype)(trans_a, trans_b, ALPHA, A, B, beta, C)

    assert out is C
    assert C.dtype == dtype
    assert C.shape == (m, n)
    assert np.all(np.isfinite(C))
    _assert_close_scaled(C, expected, scale, TOL[dtype])
    # operands are read only
    np.testing.assert_array_equal(A, A_before)
    np.testing.assert_array_equal(B, B_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_alpha_scales_and_beta_accumulates(dtype):
    """alpha and beta are really applied: compare against the same call with
    alpha=1, beta=0 (a transposed, non-square case)."""
    m, n, k = 5, 3, 7
    A_log, B_log, A, B, C0 = _operands(dtype, m, n, k, True, False, seed=3)
    gemm = _spec(_blas._py_gemm, dtype)
    plain = gemm(True, False, 1.0, A, B, 0.0, np.zeros((m, n), dtype=dtype))
    C = C0.copy()
    gemm(True, False, 2.5, A, B, 0.5, C)
    expected = 2.5 * plain.astype(np.float64) + 0.5 * C0.astype(np.float64)
    scale = 2.5 * np.abs(plain) + 0.5 * np.abs(C0) + 2.5 * (np.abs(A_log) @ np.abs(B_log))
    _assert_close_scaled(C, expected, scale, TOL[dtype])
    assert not np.allclose(C, plain)


@pytest.mark.parametrize("fortran", ["A", "B", "AB"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_fortran_ordered_operands_via_transpose_flag(dtype, fortran):
    """A Fortran-ordered logical matrix M is the C-ordered M.T in memory: pass
    that with the transpose flag set; the product equals the C-ordered route."""
    m, n, k = 5, 3, 7
    rng = np.random.RandomState(1)
    A_log = rng.standard_normal((m, k)).astype(dtype)
    B_log = rng.standard_normal((k, n)).astype(dtype)
    C0 = rng.standard_normal((m, n)).astype(dtype)
    gemm = _spec(_blas._py_gemm, dtype)
    beta = 0.5

    # Route 1: C-ordered logical matrices, no transposition.
    C_route = C0.copy()
    gemm(False, False, ALPHA, np.ascontiguousarray(A_log), np.ascontiguousarray(B_log),
         beta, C_route)

    # Route 2: Fortran-ordered logical matrices, passed as their C-ordered
    # transposes (a view of the same memory, no copy) with the flag set.
    A_arg, ta = np.ascontiguousarray(A_log), False
    B_arg, tb = np.ascontiguousarray(B_log), False
    if "A" in fortran:
        A_f = np.asfortranarray(A_log)
        A_arg, ta = A_f.T, True
        assert A_arg.flags.c_contiguous and np.shares_memory(A_arg, A_f)
    if "B" in fortran:
        B_f = np.asfortranarray(B_log)
        B_arg, tb = B_f.T, True
        assert B_arg.flags.c_contiguous and np.shares_memory(B_arg, B_f)
    C_fortran = C0.copy()
    gemm(ta, tb, ALPHA, A_arg, B_arg, beta, C_fortran)

    expected, scale = _reference(ALPHA, A_log, B_log, beta, C0)
    _assert_close_scaled(C_route, expected, scale, TOL[dtype])
    _assert_close_scaled(C_fortran, expected, scale, TOL[dtype])
    # both routes agree with each other to the dtype's rounding
    _assert_close_scaled(C_fortran, C_route.astype(np.float64), scale, 2 * TOL[dtype])


@pytest.mark.parametrize("which", ["A", "B", "C"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_rejects_non_c_contiguous(dtype, which):
    """A Fortran-ordered array is not silently read as row-major."""
    m, n, k = 5, 3, 7
    rng = np.random.RandomState(2)
    ops = {
        "A": rng.standard_normal((m, k)).astype(dtype),
        "B": rng.standard_normal((k, n)).astype(dtype),
        "C": np.zeros((m, n), dtype=dtype),
    }
    ops[which] = np.asfortranarray(ops[which])
    assert not ops[which].flags.c_contiguous
    C_before = np.array(ops["C"])
    with pytest.raises(ValueError):
        _spec(_blas._py_gemm, dtype)(False, False, 1.0, ops["A"], ops["B"], 0.0, ops["C"])
    np.testing.assert_array_equal(ops["C"], C_before)


@pytest.mark.parametrize(
    "trans_a, trans_b, a_shape, b_shape, c_shape",
    [
        (False, False, (5, 7), (6, 3), (5, 3)),  # inner dimensions differ
        (True, False, (5, 7), (7, 3), (5, 3)),  # op(A) is (7, 5): k=5 vs 7
        (False, True, (5, 7), (7, 3), (5, 3)),  # op(B) is (3, 7): k=7 vs 3
        (True, True, (7, 5), (6, 7), (5, 3)),  # op(B) is (7, 6): C cols
        (False, False, (5, 7), (7, 3), (4, 3)),  # C has the wrong rows
        (False, False, (5, 7), (7, 3), (5, 4)),  # C has the wrong columns
        (False, False, (5, 7), (7, 3), (3, 5)),  # C transposed
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_shape_mismatch_raises(dtype, trans_a, trans_b, a_shape, b_shape, c_shape):
    A = np.ones(a_shape, dtype=dtype)
    B = np.ones(b_shape, dtype=dtype)
    C = np.full(c_shape, 3.0, dtype=dtype)
    with pytest.raises(ValueError, match="shape mismatch"):
        _spec(_blas._py_gemm, dtype)(trans_a, trans_b, 1.0, A, B, 0.0, C)
    np.testing.assert_array_equal(C, 3.0)


def test_gemm_mixed_dtypes_rejected():
    A = np.ones((5, 7), dtype=np.float32)
    B = np.ones((7, 3), dtype=np.float64)
    C = np.zeros((5, 3), dtype=np.float64)
    with pytest.raises((TypeError, ValueError)):
        _blas._py_gemm(False, False, 1.0, A, B, 0.0, C)
    np.testing.assert_array_equal(C, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_accepts_read_only_operands(dtype):
    m, n, k = 5, 3, 7
    A_log, B_log, A, B, C0 = _operands(dtype, m, n, k, False, True, seed=4)
    A.flags.writeable = False
    B.flags.writeable = False
    C = C0.copy()
    _spec(_blas._py_gemm, dtype)(False, True, ALPHA, A, B, -0.5, C)
    expected, scale = _reference(ALPHA, A_log, B_log, -0.5, C0)
    _assert_close_scaled(C, expected, scale, TOL[dtype])


# ---------------------------------------------------------------------------
# the benchmarks' loop of products
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gemm_loop_computes_every_call(dtype):
    """_py_gemm_loop (benchmarks/run.py's reference rate) makes each of its
    products, C = op(A) @ op(B), with every transpose combination; C is
    overwritten (beta 0), so two passes give the same result as one."""
    shapes = [(5, 3, 7), (37, 21, 65), (1, 4, 2), (32, 100, 64)]
    calls, expected = [], []
    for i, (m, n, k) in enumerate(shapes):
        for ta in (False, True):
            for tb in (False, True):
                A_log, B_log, A, B, _ = _operands(dtype, m, n, k, ta, tb, seed=10 + i)
                C = np.full((m, n), np.nan, dtype=dtype)
                calls.append((ta, tb, A, B, C))
                expected.append(_reference(1.0, A_log, B_log, 0.0, np.zeros((m, n))))
    _blas._py_gemm_loop(calls, 2)
    for (ta, tb, A, B, C), (exp, scale) in zip(calls, expected):
        assert C.dtype == dtype
        _assert_close_scaled(C, exp, scale, TOL[dtype])
    for call in calls:
        call[4][...] = np.nan
    _blas._py_gemm_loop(calls, 0)
    assert all(np.isnan(call[4]).all() for call in calls)


def test_gemm_loop_rejects_bad_calls():
    f8, f4 = np.float64, np.float32
    ok = (False, False, np.ones((2, 3)), np.ones((3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="shape mismatch.*call 1"):
        _blas._py_gemm_loop([ok, (False, False, np.ones((2, 3)), np.ones((2, 4)),
                                  np.zeros((2, 4)))], 1)
    with pytest.raises(ValueError, match="shape mismatch.*call 0"):
        _blas._py_gemm_loop([(False, False, np.ones((2, 3)), np.ones((3, 4)),
                              np.zeros((4, 2)))], 1)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _blas._py_gemm_loop([ok, (False, False, np.ones((2, 3), f4),
                                  np.ones((3, 4), f4), np.zeros((2, 4), f4))], 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _blas._py_gemm_loop([(False, False, np.ones((3, 2), f8).T, np.ones((3, 4)),
                              np.zeros((2, 4)))], 1)
    with pytest.raises(ValueError, match="empty product"):
        _blas._py_gemm_loop([(False, False, np.ones((2, 0)), np.ones((0, 4)),
                              np.zeros((2, 4)))], 1)
    with pytest.raises(ValueError, match="at least one call"):
        _blas._py_gemm_loop([], 1)
    with pytest.raises(ValueError, match="at least one call"):
        _blas._py_gemm_loop([ok], -1)


# ---------------------------------------------------------------------------
# axpy and dot
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 257])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_axpy_matches_numpy(dtype, n):
    rng = np.random.RandomState(n)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    x_before, y0 = x.copy(), y.copy()
    ret = _spec(_blas._py_axpy, dtype)(ALPHA, x, y)
    assert ret is None
    assert y.dtype == dtype
    expected = y0.astype(np.float64) + ALPHA * x.astype(np.float64)
    scale = np.abs(y0) + abs(ALPHA) * np.abs(x)
    _assert_close_scaled(y, expected, scale, TOL[dtype])
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_axpy_alpha_zero_and_one(dtype):
    x = np.arange(1, 6, dtype=dtype)
    y = np.full(5, 0.25, dtype=dtype)
    axpy = _spec(_blas._py_axpy, dtype)
    axpy(0.0, x, y)
    np.testing.assert_array_equal(y, np.full(5, 0.25, dtype=dtype))
    axpy(1.0, x, y)
    np.testing.assert_array_equal(y, x + dtype(0.25))


@pytest.mark.parametrize("n", [1, 7, 257])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_dot_matches_numpy(dtype, n):
    rng = np.random.RandomState(100 + n)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    result = _spec(_blas._py_dot, dtype)(x, y)
    expected = x.astype(np.float64) @ y.astype(np.float64)
    scale = np.abs(x.astype(np.float64)) @ np.abs(y.astype(np.float64))
    _assert_close_scaled(result, expected, scale, TOL[dtype])
    if dtype == np.float32:
        # computed by sdot: the value is a float32 number
        assert float(np.float32(result)) == float(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_dot_accumulates_in_the_arrays_precision(dtype):
    """1 + 63 small terms of 2**-24: the exact sum 1 + 63 * 2**-24 is a float64
    number but not a float32 one, so a float32 dot must not return it (it would
    have been accumulated in double precision) while a float64 dot must."""
    n = 64
    x = np.full(n, 2.0**-24, dtype=dtype)
    x[0] = 1.0
    y = np.ones(n, dtype=dtype)
    result = _spec(_blas._py_dot, dtype)(x, y)
    exact = 1.0 + (n - 1) * 2.0**-24
    if dtype == np.float64:
        assert result == exact
    else:
        assert float(np.float32(exact)) != exact
        assert float(np.float32(result)) == float(result)
        assert abs(result - exact) <= n * 2.0**-23


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_axpy_dot_shape_mismatch_raises(dtype):
    x = np.ones(5, dtype=dtype)
    y = np.full(4, 2.0, dtype=dtype)
    with pytest.raises(ValueError, match="shape mismatch"):
        _spec(_blas._py_axpy, dtype)(1.0, x, y)
    np.testing.assert_array_equal(y, 2.0)
    with pytest.raises(ValueError, match="shape mismatch"):
        _spec(_blas._py_dot, dtype)(x, y)


# ---------------------------------------------------------------------------
# The plain (non-indexed) call dispatches on the arrays' dtype
# ---------------------------------------------------------------------------


def _scalar(kind, dtype, value):
    return float(value) if kind == "pyfloat" else dtype(value)


@pytest.mark.parametrize("scalar", ["pyfloat", "npscalar"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_plain_call_gemm(dtype, scalar):
    """``_py_gemm(ta, tb, alpha, A, B, beta, C)`` as documented, for both dtypes."""
    m, n, k = 5, 3, 7
    A_log, B_log, A, B, C0 = _operands(dtype, m, n, k, True, False, seed=5)
    C = C0.copy()
    out = _blas._py_gemm(True, False, _scalar(scalar, dtype, ALPHA), A, B,
                         _scalar(scalar, dtype, 0.5), C)
    assert out is C
    assert C.dtype == dtype
    expected, scale = _reference(ALPHA, A_log, B_log, 0.5, C0)
    _assert_close_scaled(C, expected, scale, TOL[dtype])


@pytest.mark.parametrize("scalar", ["pyfloat", "npscalar"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_plain_call_axpy(dtype, scalar):
    """``_py_axpy(alpha, x, y)`` as documented, for both dtypes."""
    x = np.arange(7, dtype=dtype)
    y = np.ones(7, dtype=dtype)
    _blas._py_axpy(_scalar(scalar, dtype, ALPHA), x, y)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, 1.0 + ALPHA * np.arange(7), rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_plain_call_dot(dtype):
    x = np.arange(7, dtype=dtype)
    y = np.full(7, 0.5, dtype=dtype)
    result = _blas._py_dot(x, y)
    assert result == pytest.approx(10.5, rel=TOL[dtype])
