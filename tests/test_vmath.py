"""The kernels' own exp and tanh (src_cython/skmlp/_vmath.h).

The activations logistic, tanh, softmax and exp are computed by straight-line
arithmetic that the compiler vectorises, instead of calls to the C library.
These tests hold them to their accuracy against a reference of higher
precision (x86-64's 80-bit long double for float64, float64 for float32), to
the special values of the functions they replace, and to the same bits in
every build of the kernels. They go through ``_py_bias_activation``, the
kernels' bias-and-activation loop itself (with a zero bias).
"""

import functools
import importlib

import numpy as np
import pytest

from skmlp import _mlp_fast

from _helpers import AVX2_RUNS, AVX512_RUNS, WIDE_BUILDS, needs_avx2, needs_avx512

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


# ---------------------------------------------------------------------------
# The optimizers' float64 division without the divider (_steps_avx512.h)
# ---------------------------------------------------------------------------

GENERIC = importlib.import_module("skmlp._mlp_fast_generic")


def _quotients(module, a, b):
    out = np.array(a, dtype=np.float64)
    module._py_quotients(out, np.ascontiguousarray(b, dtype=np.float64))
    return out


def _assert_the_division(module, a, b):
    """module's quotients are the generic build's, which divides (both under
    the kernels' flush-to-zero mode), and NumPy's where nothing is subnormal."""
    got = _quotients(module, a, b)
    ref = _quotients(GENERIC, a, b)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    wrong = np.flatnonzero(got[~nan].view(np.int64) != ref[~nan].view(np.int64))
    assert wrong.size == 0, (a[~nan][wrong[:3]], b[~nan][wrong[:3]])
    with np.errstate(all="ignore"):
        direct = a / b
    tiny = np.finfo(np.float64).tiny
    subnormal = [(np.abs(x) < tiny) & (x != 0) for x in (a, b, direct)]
    normal = ~(subnormal[0] | subnormal[1] | subnormal[2] | nan)
    assert ref[normal].tobytes() == direct[normal].tobytes()


@functools.lru_cache(maxsize=None)
def _near_midpoints(seed, n, below_one):
    """n pairs (a, b) of significands in [1, 2) whose quotient lies within
    3 2^-53 ulp of a midpoint between two doubles (the hard cases for
    rounding). A midpoint in [1/2, 1) is M = N 2^-54 with N odd; for
    b = B 2^-52, a = b M - t 2^-106 is a double when B N = t (mod 2^54), so
    B = t / N (mod 2^54) for a small t, and a / b lies |t| 2^-106 / b from
    M: about the closest a quotient of two doubles comes to a midpoint.
    Twice that a is next to the midpoint 2M in [1, 2)."""
    rng = np.random.RandomState(seed)
    a, b = [], []
    mod = 2**54
    while len(a) < n:
        big_n = int(rng.randint(2**52, 2**53, dtype=np.int64)) * 2 + 1
        t = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        big_b = t * pow(big_n, -1, mod) % mod
        if not 2**52 <= big_b < 2**53 or t == 0:
            continue
        big_a = (big_b * big_n - t) // mod
        # a = big_a 2^-52 lies in [1/2, 2): kept where it is in [1, 2) (a / b
        # next to M), or doubled where that is (a / b next to 2M)
        if below_one:
            if big_a >= 2**52 and big_a < big_b:
                a.append(big_a * 2.0**-52)
                b.append(big_b * 2.0**-52)
        elif big_a < 2**52 and 2 * big_a >= big_b:
            a.append(big_a * 2.0**-51)
            b.append(big_b * 2.0**-52)
    return np.array(a), np.array(b)


def _scaled(rng, a, b, a_exp, b_exp):
    """a and b times random powers of two in the given ranges, random signs of a."""
    n = a.size
    sign = rng.choice([-1.0, 1.0], n)
    return (np.ldexp(a, rng.randint(*a_exp, n)) * sign, np.ldexp(b, rng.randint(*b_exp, n)))


@pytest.mark.skipif(not EXTENDED, reason="the hard cases are built in long double")
@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("below_one", [False, True])
def test_adam_quotient_next_to_midpoints(build, below_one):
    """Quotients within a hair of a midpoint between two doubles, where an
    approximate reciprocal would round the wrong way: the AVX-512 build's
    reciprocal-based quotient must round them as the division does."""
    module = importlib.import_module(build)
    rng = np.random.RandomState(11 + below_one)
    a, b = _near_midpoints(11, 60_000, below_one)
    # that they are the hard cases (long double has 11 bits more than double)
    exact = a.astype(np.longdouble) / b.astype(np.longdouble)
    ulp = np.spacing(a / b).astype(np.longdouble)
    assert np.all(np.abs(np.abs(exact - a / b) / ulp - 0.5) < 2.0**-9)
    assert np.all((a / b < 1) == below_one)
    _assert_the_division(module, a, b)
    _assert_the_division(module, *_scaled(rng, a, b, (-500, 500), (-60, 50)))


@pytest.mark.parametrize("build", BUILDS)
def test_adam_quotient_random_and_all_ones_divisors(build):
    """Random quotients across the fast path's range and around its edges,
    divisors with a significand of all ones (where the reciprocal's last
    Newton step can stop one ulp short; with a power-of-two numerator the
    quotient is that reciprocal), and the pairs the proof in _steps_avx512.h
    leaves to be checked directly."""
    module = importlib.import_module(build)
    rng = np.random.RandomState(12)
    n = 400_000
    a = rng.uniform(1, 2, n)
    b = rng.uniform(1, 2, n)
    # inside the fast path's range (2^-60 <= b < 2^50, 2^-968 <= |a| < 2^960),
    # at its edges, and just outside them, each set in whole vectors
    for a_exp, b_exp in (((-968, 960), (-60, 50)), ((-968, -900), (-60, 0)),
                         ((900, 960), (-60, 50)), ((-1022, -968), (-60, 0)),
                         ((960, 1024), (-60, 50)), ((-50, 50), (-100, -60)),
                         ((-50, 50), (50, 100)), ((-1021, 1023), (-1021, 1023))):
        _assert_the_division(module, *_scaled(rng, a, b, a_exp, b_exp))
    ones = np.full(n, 2 - 2.0**-52)
    _assert_the_division(module, *_scaled(rng, a, ones, (-500, 500), (-60, 50)))
    _assert_the_division(module, *_scaled(rng, np.ones(n), ones, (-500, 500), (-60, 50)))
    # 1 / (2 - k 2^-52) = 2^-1 + k 2^-54 + k^2 2^-107 + ...: for odd k, just
    # above a midpoint, where a reciprocal short of the last Newton step
    # rounds the wrong way; a power-of-two numerator makes it the quotient
    odd_k = 2.0 * rng.randint(0, 2**15, n) + 1
    _assert_the_division(module, *_scaled(rng, np.ones(n), 2 - odd_k * 2.0**-52,
                                          (-500, 500), (-60, 50)))
    _assert_the_division(module, *_scaled(rng, a, 2 - odd_k * 2.0**-52,
                                          (-500, 500), (-60, 50)))
    # a = 2 - k 2^-52 (k = 2, 3, 4) over every b between a and 2
    edge = [(2 - k * 2.0**-52, 2 - j * 2.0**-52) for k in (2, 3, 4) for j in range(1, k)]
    edge_a, edge_b = np.array(edge).T
    assert len(edge) == 6 and np.all(edge_a < edge_b)
    _assert_the_division(module, *_scaled(rng, np.tile(edge_a, 1000),
                                          np.tile(edge_b, 1000), (-500, 500), (-60, 50)))
    _assert_the_division(module, edge_a, edge_b)


@pytest.mark.parametrize("build", BUILDS)
def test_adam_reciprocal_is_correctly_rounded(build):
    """The quotient's proof needs y = RN(1/b) exactly: random divisors over
    the fast path's range (with rcp14's start, two Newton steps leave about
    one in a thousand one ulp off), divisors just below a power of two
    (2 - k 2^-52, whose reciprocals lie just above midpoints) and all-ones
    significands (Markstein's exception, fixed by setting the last bit)."""
    module = importlib.import_module(build)
    rng = np.random.RandomState(14)
    n = 1_000_000
    b = np.concatenate([
        np.ldexp(rng.uniform(1, 2, n), rng.randint(-60, 50, n)),
        np.ldexp(2 - (2.0 * rng.randint(0, 2**20, n // 4) + 1) * 2.0**-52,
                 rng.randint(-60, 50, n // 4)),
        np.ldexp(np.full(64, 2 - 2.0**-52), np.arange(-60, 4)),
    ])
    got = b.copy()
    module._py_reciprocals(got)
    assert got.tobytes() == (1 / b).tobytes(), b[got != 1 / b][:3]


@pytest.mark.parametrize("build", BUILDS)
def test_adam_quotient_outside_the_fast_range(build):
    """Every lane the fast path does not cover (zero, NaN or infinite
    operands, divisors below 2^-60 or from 2^50, numerators from 2^960 or
    below 2^-968, subnormals) sends its vector of 8 to the division, placed
    at each lane of a vector among ordinary ones; zeros keep their sign;
    lengths that are not a multiple of 8 end in the division too."""
    module = importlib.import_module(build)
    rng = np.random.RandomState(13)
    odd_a = [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**960, -(2.0**960),
             np.nextafter(2.0**960, 0), 2.0**-968, np.nextafter(2.0**-968, 0),
             1e-310, -1e-320, np.finfo(np.float64).max, 1.0, -3.0]
    odd_b = [1e-8, 2.0**-60, np.nextafter(2.0**-60, 0), 2.0**50,
             np.nextafter(2.0**50, 0), 0.0, np.inf, np.nan, 1e-300, 1e300,
             1e-310, 2.0**-1000, 3.0, -2.0, -0.0]
    # groups of 24 (three vectors), the odd value at one lane of the middle
    # one: in the numerator and divisor together, then each alone
    groups_a, groups_b = [], []
    for av in odd_a:
        for bv in odd_b:
            for lane in range(8):
                for where in ("both", "a", "b"):
                    a = rng.uniform(-2, 2, 24)
                    b = rng.uniform(0.5, 2, 24)
                    if where != "b":
                        a[8 + lane] = av
                    if where != "a":
                        b[8 + lane] = bv
                    groups_a.append(a)
                    groups_b.append(b)
    _assert_the_division(module, np.concatenate(groups_a), np.concatenate(groups_b))
    for n in range(1, 20):
        _assert_the_division(module, rng.uniform(-2, 2, n), rng.uniform(0.5, 2, n))
    # zeros of either sign over ordinary divisors: the zero of the numerator's sign
    z = np.array([0.0, -0.0] * 8)
    got = _quotients(module, z, rng.uniform(1e-8, 1e6, 16))
    assert np.array_equal(np.signbit(got), np.signbit(z)) and not got.any()


def test_steps_divide_without_the_divider_in_the_avx512_build_only():
    """The AVX-512 build takes the reciprocal-based path for the float64
    steps of Adam, AdaGrad, RMSProp and AdamW (otherwise the tests above and
    the builds' comparisons would pass without testing it); the others
    divide."""
    assert not GENERIC.STEPS_WITHOUT_DIVIDER
    if AVX2_RUNS:
        assert not importlib.import_module("skmlp._mlp_fast_avx2").STEPS_WITHOUT_DIVIDER
    if AVX512_RUNS:
        assert importlib.import_module("skmlp._mlp_fast_avx512").STEPS_WITHOUT_DIVIDER


def test_quotient_hooks_check_their_input():
    with pytest.raises(ValueError, match="same length"):
        _mlp_fast._py_quotients(np.ones(3), np.ones(4))
    empty = np.zeros(0)
    _mlp_fast._py_quotients(empty, empty)
    _mlp_fast._py_reciprocals(empty)
