/* exp and tanh written as straight-line arithmetic (no calls, no branches),
 * so that the compiler vectorises the loops that apply them: the library's
 * exp and tanh are scalar calls (glibc's tanh costs about 14 ns per value in
 * float32), and NumPy, which scikit-learn's MLP uses, applies vectorised
 * versions. Every operation is an IEEE operation the C compiler may not
 * reorder or contract (the kernels are built with -ffp-contract=off), so
 * every build of the kernels (SSE2, AVX2, AVX-512) computes the same bits, and so
 * does a scalar loop.
 *
 * exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split in
 * two (Cody and Waite; the high part has few enough bits that n * ln2_hi is
 * exact), exp(r) by its Taylor polynomial on |r| <= ln 2 / 2 (degree 13 in
 * float64, 7 in float32, whose truncation error is below half an ulp), and
 * 2^n applied as two exact powers of two built from n's bits, so that
 * results that overflow or are subnormal round once. n comes from the
 * rounding trick t = n + 1.5 * 2^52: the low bits of t hold n.
 * Error at most about 1 ulp (NumPy's vectorised exp: < 1 ulp).
 *
 * tanh(|x|) = e / (e + 2) with e = expm1(2 |x|): by its Taylor polynomial
 * (degree 18 in float64, 12 in float32) for |x| < 0.55, where exp(2|x|) - 1
 * would cancel, and as exp(2 |x|) - 1 above (no cancellation: exp >= 3);
 * 2|x| capped at 80 (where the quotient is 1 and e does not overflow); the
 * sign copied from x. Error at most a few ulp. */
#ifndef SKMLP_VMATH_H
#define SKMLP_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline double skmlp_bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t skmlp_double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline float skmlp_bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t skmlp_float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline double skmlp_exp(double x)
{
    const double shift = 0x1.8p52;
    const double log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42feep-1;            /* 33 significant bits */
    const double ln2_lo = 0x1.a39ef35793c76p-33;      /* ln 2 - ln2_hi */
    double t, n, r, p, y, n1d;
    int64_t ni, n1, n2;
    /* exp(x) is 0 below -746 and inf above 710 (from n = 1025 and r > 0
     * below). A NaN passes both tests. (One select on x and one on n: two
     * selects on x would let the compiler turn them into branches.) */
    x = x < -746.0 ? -746.0 : x;
    n = (x * log2e + shift) - shift;
    n = n > 1025.0 ? 1025.0 : n;
    t = n + shift;
    r = x - n * ln2_hi;
    r = r - n * ln2_lo;
    p = 1.0 / 6227020800.0;                           /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    y = 1.0 + (r + (r * r) * p);
    /* n in [-1077, 1025] as an integer; 2^n = 2^n1 * 2^n2, each a normal */
    ni = (int64_t)(skmlp_double_to_bits(t) - skmlp_double_to_bits(shift));
    n1d = n * 0.5 + shift;
    n1 = (int64_t)(skmlp_double_to_bits(n1d) - skmlp_double_to_bits(shift));
    n2 = ni - n1;
    y = y * skmlp_bits_to_double((uint64_t)(n1 + 1023) << 52);
    return y * skmlp_bits_to_double((uint64_t)(n2 + 1023) << 52);
}

static inline float skmlp_expf(float x)
{
    const float shift = 0x1.8p23f;
    const float log2e = 0x1.715476p0f;
    const float ln2_hi = 0x1.62ep-1f;                  /* 13 significant bits */
    const float ln2_lo = 0x1.0bfbe8p-15f;              /* ln 2 - ln2_hi */
    float t, n, r, p, y, n1f;
    int32_t ni, n1, n2;
    /* 0 below -104, inf above 89 (as in skmlp_exp) */
    x = x < -104.0f ? -104.0f : x;
    n = (x * log2e + shift) - shift;
    n = n > 129.0f ? 129.0f : n;
    t = n + shift;
    r = x - n * ln2_hi;
    r = r - n * ln2_lo;
    p = 1.0f / 5040.0f;                                /* 1/7! */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    y = 1.0f + (r + (r * r) * p);
    /* n in [-150, 129]; 2^n = 2^n1 * 2^n2, each a normal */
    ni = (int32_t)(skmlp_float_to_bits(t) - skmlp_float_to_bits(shift));
    n1f = n * 0.5f + shift;
    n1 = (int32_t)(skmlp_float_to_bits(n1f) - skmlp_float_to_bits(shift));
    n2 = ni - n1;
    y = y * skmlp_bits_to_float((uint32_t)(n1 + 127) << 23);
    return y * skmlp_bits_to_float((uint32_t)(n2 + 127) << 23);
}

static inline double skmlp_tanh(double x)
{
    double a = fabs(x), y = 2.0 * a, p, e, small, big, t;
    /* from 2|x| = 80 on, e / (e + 2) is 1: no overflow (and one select on
     * y, one on a, see skmlp_exp) */
    double yb = y > 80.0 ? 80.0 : y;
    p = 1.0 / 6402373705728000.0;                     /* 1/18! */
    p = p * y + 1.0 / 355687428096000.0;
    p = p * y + 1.0 / 20922789888000.0;
    p = p * y + 1.0 / 1307674368000.0;
    p = p * y + 1.0 / 87178291200.0;
    p = p * y + 1.0 / 6227020800.0;
    p = p * y + 1.0 / 479001600.0;
    p = p * y + 1.0 / 39916800.0;
    p = p * y + 1.0 / 3628800.0;
    p = p * y + 1.0 / 362880.0;
    p = p * y + 1.0 / 40320.0;
    p = p * y + 1.0 / 5040.0;
    p = p * y + 1.0 / 720.0;
    p = p * y + 1.0 / 120.0;
    p = p * y + 1.0 / 24.0;
    p = p * y + 1.0 / 6.0;
    p = p * y + 0.5;
    small = y + (y * y) * p;
    big = skmlp_exp(yb) - 1.0;
    e = a < 0.55 ? small : big;
    t = e / (e + 2.0);
    return copysign(t, x);
}

static inline float skmlp_tanhf(float x)
{
    float a = fabsf(x), y = 2.0f * a, p, e, small, big, t;
    float yb = y > 80.0f ? 80.0f : y;
    p = 1.0f / 479001600.0f;                           /* 1/12! */
    p = p * y + 1.0f / 39916800.0f;
    p = p * y + 1.0f / 3628800.0f;
    p = p * y + 1.0f / 362880.0f;
    p = p * y + 1.0f / 40320.0f;
    p = p * y + 1.0f / 5040.0f;
    p = p * y + 1.0f / 720.0f;
    p = p * y + 1.0f / 120.0f;
    p = p * y + 1.0f / 24.0f;
    p = p * y + 1.0f / 6.0f;
    p = p * y + 0.5f;
    small = y + (y * y) * p;
    big = skmlp_expf(yb) - 1.0f;
    e = a < 0.55f ? small : big;
    t = e / (e + 2.0f);
    return copysignf(t, x);
}

/* a / b, rounded as the division rounds it, without the divider where the
 * CPU has fused multiply-add. The caller computes y = 1 / b (correctly
 * rounded) once; then q = a * y is within one ulp of a / b, the remainder
 * r = a - b q is exact as one fused operation, and q + r y, rounded once, is
 * the correctly rounded quotient (Markstein's theorem: Muller et al.,
 * Handbook of Floating-Point Arithmetic, chapter on division with an FMA).
 * It is computed as -fma(-r, y, -q), which is the same number but keeps the
 * sign of a zero quotient (fma(r, y, q) would turn -0 into +0); an infinite
 * q (a / b overflows, or a is infinite) is returned as it is, not turned
 * into NaN by r. The theorem needs r not to underflow: under the training
 * kernels' flush-to-zero mode the result is the division's bit for bit for
 * every |a| >= 2^-968 (about 4e-292) and 2^-1000 < |b| < 2^1000, and for
 * zeros, infinities and NaN; below that a may differ from the division by
 * one unit in the last place (scaling tiny a up and back costs as much as
 * the division saves). tests/test_vmath.py compares it with the division.
 * Without FMA (the SSE2 build) it is the division itself.
 * Why: Adam's step divides twice per parameter (by the batch's weight and
 * by sqrt(v) + eps), and the divider, not the arithmetic, bounds its loop:
 * one division fewer makes the loop about a quarter faster at batch 200. */
static inline double skmlp_div(double a, double b, double y)
{
#if defined(__FMA__)
    double q = a * y;
    double r = fma(-q, b, a);
    double c = -fma(-r, y, -q);
    return fabs(q) < INFINITY ? c : q;
#else
    (void)y;
    return a / b;
#endif
}

/* a / b for float a and b, from y = 1 / (double) b: the product in double is
 * within 2^-52 (relative) of a / b, while a quotient of two floats is either
 * a float or at least 2^-49 (relative) away from every midpoint between two
 * floats (and never on one: for b = B 2^k with B odd and not 1, a midpoint
 * times b would need more than 24 significant bits), so rounding the product
 * to float rounds a / b correctly. Under flush-to-zero, as the training
 * kernels run (a result that would be subnormal may differ otherwise). The
 * same bits in every build, no FMA needed. */
static inline float skmlp_divf(float a, double y)
{
    return (float)((double)a * y);
}

#endif
