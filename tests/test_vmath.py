"""The kernels' own exp and tanh (src_cython/skmlp/_vmath.h).

The activations logistic, tanh, softmax and exp are computed by straight-line
arithmetic that the compiler vectorises, instead of calls to the C library.
These tests hold them to their accuracy against a reference of higher
precision (x86-64's 80-bit long double for float64, float64 for float32), to
the special values of the functions they replace, and to the same bits in
every build of the kernels. They go through ``_py_bias_activation``, the
kernels' bias-and-activation loop itself (with a zero bias).
"""

import importlib

import numpy as np
import pytest

from skmlp import _mlp_fast

from _helpers import WIDE_BUILDS, needs_avx2, needs_avx512

LOGISTIC, TANH, SOFTMAX, EXP = 1, 2, 4, 5

# long double has a 64-bit significand on x86-64 Linux; elsewhere it may be
# double itself, and the float64 reference is then NumPy's own function,
# accurate to < 1 ulp, which adds one ulp to the bound
EXTENDED = np.finfo(np.longdouble).nmant >= 63


def _apply(act, z, module=_mlp_fast):
    out = np.array(z, order="C", copy=True)
    if out.ndim == 1:
        out = out.reshape(1, -1)
    with np.errstate(all="ignore"):
        module._py_bias_activation(act, out, np.zeros(out.shape[1], out.dtype))
    return out.reshape(np.shape(z))


def _reference(act, z):
    if z.dtype == np.float32:
        w = z.astype(np.float64)
    else:
        w = z.astype(np.longdouble) if EXTENDED else z
    with np.errstate(all="ignore"):
        if act == EXP:
            return np.exp(w)
        if act == TANH:
            return np.tanh(w)
        return 1 / (1 + np.exp(-w))


def _max_ulp(got, ref, dtype):
    """Largest |got - ref| in units of the last place of ref rounded to dtype,
    over the entries whose reference is finite and non-zero in dtype."""
    with np.errstate(all="ignore"):
        ref_t = ref.astype(dtype)
    ok = np.isfinite(ref_t) & (ref_t != 0)
    assert ok.sum() > 0.9 * ref.size
    ulp = np.spacing(np.abs(ref_t[ok])).astype(np.longdouble)
    return float(np.max(np.abs(got[ok].astype(np.longdouble) - ref[ok]) / ulp))


# (activation, input range, bound in ulp); numpy's own functions measured on
# the same inputs: exp 0.70 (float64) and 2.4 (float32), tanh 1.2 and 1.4,
# 1 / (1 + exp(-x)) 2.5 and 3.5; the kernels measured 0.96 / 0.99, 2.3 / 2.3,
# 2.4 / 1.5
ACCURACY = [
    (EXP, "whole range", 1.0),
    (EXP, (-2.0, 2.0), 1.0),
    (TANH, (-25.0, 25.0), 2.5),
    (TANH, (-0.7, 0.7), 2.5),        # the polynomial, and where it hands over
    (TANH, (-1e-6, 1e-6), 2.5),
    (LOGISTIC, (-40.0, 40.0), 3.0),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act, span, bound", ACCURACY)
def test_accuracy(dtype, act, span, bound):
    if span == "whole range":
        # where exp is a normal number, and into the subnormals
        span = (-745.0, 709.7) if dtype == np.float64 else (-103.0, 88.7)
    z = np.random.RandomState(0).uniform(*span, (400, 500)).astype(dtype)
    got = _apply(act, z)
    slack = 1.0 if dtype == np.float64 and not EXTENDED else 0.0
    assert _max_ulp(got, _reference(act, z), dtype) <= bound + slack


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_special_values(dtype):
    big, tiny = (709.78, -745.0) if dtype == np.float64 else (88.72, -103.9)
    sub = np.finfo(dtype).smallest_subnormal * 1000
    z = np.array([0.0, np.inf, -np.inf, np.nan, sub, -sub, big, tiny,
                  big + 1, tiny - 1, 1e30, -1e30], dtype=dtype)
    with np.errstate(all="ignore"):
        expected = {EXP: np.exp(z), TANH: np.tanh(z), LOGISTIC: 1 / (1 + np.exp(-z))}
    for act, want in expected.items():
        got = _apply(act, z)
        assert np.array_equal(np.isnan(got), np.isnan(want)), act
        ok = ~np.isnan(want)
        # inf, 0, +-1 and 1/2 exactly; the rest (exp near its limits, tiny
        # tanh) to within rounding
        np.testing.assert_allclose(got[ok], want[ok], rtol=4 * np.finfo(dtype).eps,
                                   atol=0)
    # exp overflows to inf and underflows to 0 where the true value does
    got = _apply(EXP, np.array([big + 1, tiny - 1], dtype=dtype))
    assert got[0] == np.inf and got[1] == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_rows(dtype):
    rng = np.random.RandomState(1)
    z = (rng.standard_normal((300, 10)) * rng.choice([1, 30, 300], (300, 1))).astype(dtype)
    z[0, :] = [1000, -1000, 0, 0, 0, 0, 0, 0, 0, 0]    # exp underflows, no NaN
    got = _apply(SOFTMAX, z)
    # z - max(z) rounded in z's dtype, as the kernel (and NumPy) forms it
    w = (z - z.max(axis=1, keepdims=True)).astype(np.float64)
    want = np.exp(w) / np.exp(w).sum(axis=1, keepdims=True)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=8 * np.finfo(dtype).eps,
                               atol=np.finfo(dtype).tiny)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=4 * np.finfo(dtype).eps * 10)


@pytest.mark.parametrize("build", WIDE_BUILDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_builds_compute_the_same_bits(dtype, build):
    """The AVX2 build vectorises these loops 4 or 8 wide, the AVX-512 one up to
    8 or 16 wide, the generic one 2 or 4 wide: the same operations on each
    value, so the same bits."""
    rng = np.random.RandomState(2)
    z = np.concatenate([
        rng.uniform(-800, 800, 3000), rng.uniform(-3, 3, 3000),
        rng.standard_normal(3000) * 1e-5,
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 0.55, -0.55, 40.0, 80.0],
    ]).astype(dtype)
    z = np.resize(z, (len(z) // 7 + 1) * 7).reshape(-1, 7)    # rows of 7: loop tails
    generic = importlib.import_module("skmlp._mlp_fast_generic")
    wide = importlib.import_module(f"skmlp._mlp_fast_{build}")
    for act in (LOGISTIC, TANH, SOFTMAX, EXP):
        a, b = _apply(act, z, generic), _apply(act, z, wide)
        # NaN where NaN (which NaN, its sign or payload, may follow the
        # order of an operation's operands); every other value bit for bit
        nan = np.isnan(a)
        assert np.array_equal(nan, np.isnan(b)), act
        assert a[~nan].tobytes() == b[~nan].tobytes(), act


# ---------------------------------------------------------------------------
# The division of the gradient by the batch's weight (skmlp_div, skmlp_divf)
# ---------------------------------------------------------------------------

FIN_DIVIDE, FIN_MULTIPLY, FIN_RECIPROCAL = 0, 1, 2
BUILDS = [
    "skmlp._mlp_fast_generic",
    pytest.param("skmlp._mlp_fast_avx2", marks=needs_avx2),
    pytest.param("skmlp._mlp_fast_avx512", marks=needs_avx512),
]


def _finish(module, grad, theta, alpha, divisor, penalised):
    out = grad.copy()
    how = module._py_finish(out, theta, alpha, divisor, penalised)
    return out, how


def _spread(rng, n, dtype, lowest):
    """n values of random sign, significand and exponent from 2^lowest up to
    near the dtype's largest."""
    top = np.finfo(dtype).maxexp - 2
    exponents = rng.randint(lowest, top, n)
    significands = rng.uniform(1, 2, n) * rng.choice([-1.0, 1.0], n)
    return np.ldexp(significands, exponents).astype(dtype)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_division_by_the_batch_weight_is_the_division(build, dtype):
    """The optimizers divide each raw gradient sum by the batch's weight
    through its reciprocal (_vmath.h: Markstein's correction with FMA in
    float64, a product in double for float32), which must give the
    division's bits: for batch sizes that are not powers of two, for sums
    of sample weights, with and without the L2 term, and for zeros of
    either sign, infinities, NaN and overflow. (Quotients stay in the
    normal range: the kernels flush subnormal results to zero, NumPy does
    not.)"""
    module = importlib.import_module(build)
    rng = np.random.RandomState(7)
    # float64 from 2^-968 up: below it _vmath.h allows one ulp (see there)
    lowest = -968 + 16 if dtype == np.float64 else -126 + 16
    n = 20000
    grad = _spread(rng, n, dtype, lowest)
    theta = _spread(rng, n, dtype, lowest + 16)    # (alpha * theta normal too)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan,
                         np.finfo(dtype).max, -np.finfo(dtype).max], dtype=dtype)
    grad[:len(specials)] = specials
    theta[:len(specials)] = 0
    for divisor in (200.0, 37.0, 1437.0, 3.0, 1000.0, 0.3, 1e-3, 123.456789,
                    float(rng.uniform(1, 5000)), 64.0, 1.0):
        for penalised, alpha in ((False, 0.0), (True, 1e-4), (True, 0.37)):
            got, how = _finish(module, grad, theta, alpha, divisor, penalised)
            expected = (grad + dtype(alpha) * theta) if penalised else grad.copy()
            with np.errstate(all="ignore"):
                expected = expected / dtype(divisor)
            pow2 = np.frexp(divisor)[0] == 0.5
            assert how == (FIN_MULTIPLY if pow2 else FIN_RECIPROCAL)
            nan = np.isnan(expected)
            assert np.array_equal(np.isnan(got), nan), (divisor, alpha)
            assert got[~nan].tobytes() == expected[~nan].tobytes(), (
                divisor, alpha,
                np.flatnonzero(got[~nan] != expected[~nan])[:5])
            # the sign of zero too (tobytes compares it; made explicit here)
            assert np.signbit(got[1]) == np.signbit(expected[1])
            # a quotient that overflows is infinite, not NaN
            if divisor < 1:
                assert np.isinf(got[5]) and np.isinf(got[6])


@pytest.mark.parametrize("build", BUILDS)
def test_division_outside_the_reciprocal_range(build):
    """Divisors out of skmlp_div's range (2^-1000 < |b| < 2^1000) fall back
    to the division itself."""
    module = importlib.import_module(build)
    rng = np.random.RandomState(8)
    grad = rng.standard_normal(1000) * 1e-290
    theta = rng.standard_normal(1000)
    for divisor in (1e-302, 3e-305, 1e302):
        got, how = _finish(module, grad, theta, 0.0, divisor, False)
        assert how == FIN_DIVIDE
        with np.errstate(all="ignore"):
            assert got.tobytes() == (grad / divisor).tobytes()
