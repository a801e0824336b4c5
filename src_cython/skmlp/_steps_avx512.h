/* The float64 steps of Adam, AdaGrad, RMSProp and AdamW without the
 * divider, in the AVX-512 build.
 *
 * Why: a step such as Adam's theta += (-lr_t m) / (sqrt(v) + eps) costs a
 * square root and a division per parameter, and on x86 both run on the one
 * divider unit, which bounds the loop (1.39 ns per parameter here; 0.82
 * with the square root alone). The quotient is computed instead from the
 * reciprocal by fused multiply-adds, correctly rounded, so the step's bits
 * are the division's and every build still trains the same model.
 *
 * The quotient of a and b (b > 0), for one vector of 8:
 *   y0 = rcp14(b)                        relative error below 2^-14 (Intel)
 *   y  = y + y (1 - b y), twice          relative error about 2^-28, then
 *                                        within one ulp of 1/b (faithful)
 *   y  = y + y (1 - b y)                 RN(1/b), except below
 *   q  = RN(a y);  r = RN(a - b q);  quotient = RN(q + r y) = RN(a / b)
 * each line one rounding (fused multiply-add where it has two operations).
 *
 * Why the last reciprocal step rounds correctly (scale b into [1, 2); 1/b
 * then lies in (1/2, 1], where ulp = 2^-53): for a faithful y, 1 - b y is
 * exact and y + y (1 - b y) = 1/b - d^2 / b with d = b y - 1, |d| < 2^-52.
 * That rounds as 1/b unless 1/b lies above a midpoint M between two doubles
 * by at most d^2 / b. Now 1/b - M = (1 - b M) / b, where 1 - b M = N 2^-106
 * for an integer N > 0 (b M = B (2k + 1) 2^-106 for integers B and
 * 2k + 1 > 1). y is then M - 2^-54 or M + 2^-54, only the first can fail,
 * and for it d^2 = 2^-106 (b^2 / 4 + N b 2^-53 + N^2 2^-106), which reaches
 * N 2^-106 only for N = 1 and b = 2 - 2^-52: the significand of all ones
 * (Markstein's exception), where 1/b = 2^-1 (1 + 2^-53 + 2^-106 + ...)
 * rounds to 2^-1 (1 + 2^-52) but the step can stop at 2^-1 (a tie broken to
 * even). The result is one of those two, so setting its last bit gives
 * RN(1/b).
 *
 * Why the quotient rounds correctly (scale a and b into [1, 2); Q = a / b
 * then has ulp u = 2^-53 below 1, 2^-52 from 1 on): with y = RN(1/b),
 * e = b y - 1 has |e| <= b 2^-54, so a y = Q (1 + e) lies within a 2^-54
 * (at most u) of Q, and q within 2u. With rho the rounding of r,
 * q + r y = Q + (Q - q)(e + rho + e rho), within 2^-51 u of Q. Every
 * midpoint M lies at least 2^-53 u / b from Q (a - b M is a nonzero
 * multiple of u 2^-53), so if none is within 2^-51 u of Q the two round
 * alike. If one is, then |a y - M| < u, q is one of M - u/2 and M + u/2 (it
 * is faithful), so r = a - b q exactly (a multiple of u 2^-52 below 2u) and
 * q + r y = Q + (Q - q) e, within (u/2 + t) b 2^-54 of Q, t = |Q - M|: less
 * than t, since t >= 2^-53 u / b and b^2 + b 2^-52 < 4: q + r y lies on
 * Q's side of M. The step |a y - M| < u needs a 2^-54 + 2^-51 u < u: true
 * from 1 on (a 2^-54 < u/2); below 1 (a 2^-54 = a u / 2) unless
 * a = 2 - k 2^-52 with k <= 4 and b between a and 2: six pairs up to
 * scaling, which tests/test_vmath.py divides directly,
 * with quotients next to midpoints, reciprocals, all-ones divisors and
 * random ones.
 *
 * The scaling argument needs every intermediate normal. The fast path takes a
 * vector only if every lane has 2^-60 <= b < 2^50 and |a| = 0 or
 * 2^-968 <= |a| < 2^960: then Q lies in (2^-1018, 2^1020), and a remainder r
 * that matters is at least |a| 2^-54 >= 2^-1022 (a smaller one, flushed to
 * zero by the training kernels' flush-to-zero mode, leaves q = RN(Q)). A
 * zero a gives the zero of a's sign, as the division does (hence
 * -(-r y - q) rather than r y + q). Any other lane (NaN, infinities, zero or
 * huge v, tiny eps, a subnormal or vanishing m) sends its vector of 8 to the
 * division itself. With eps = 1e-8 and v < 2^100 every b is in range
 * (v: Adam's second moment, or AdaGrad's and RMSProp's sum).
 */
#ifndef SKMLP_STEPS_AVX512_H
#define SKMLP_STEPS_AVX512_H

#include <math.h>
#include <stddef.h>

/* How the loops below finish a raw gradient sum G, as _finished
 * (_mlp_fast.pxi) does: (G + alpha theta) if penalised, then times
 * ``reciprocal`` if ``by_pow2`` (an exact power of two), else divided by
 * ``divisor`` through skmlp_div. */
typedef struct {
    int penalised;
    int by_pow2;
    double alpha;
    double divisor;
    double reciprocal;
} skmlp_finish;

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define SKMLP_STEPS_WITHOUT_DIVIDER 1

/* RN(1/b) for 2^-60 <= b < 2^50 (see above) */
static inline __m512d skmlp_reciprocal8(__m512d b)
{
    const __m512i mant = _mm512_set1_epi64(0x000fffffffffffffLL);
    const __m512i one_bit = _mm512_set1_epi64(1);
    const __m512d one = _mm512_set1_pd(1.0);
    __m512d y = _mm512_rcp14_pd(b), e;
    __mmask8 all_ones;
    e = _mm512_fnmadd_pd(b, y, one);
    y = _mm512_fmadd_pd(e, y, y);
    e = _mm512_fnmadd_pd(b, y, one);
    y = _mm512_fmadd_pd(e, y, y);
    e = _mm512_fnmadd_pd(b, y, one);
    y = _mm512_fmadd_pd(e, y, y);
    /* all-ones significands: the last bit set */
    all_ones = _mm512_testn_epi64_mask(_mm512_andnot_si512(_mm512_castpd_si512(b), mant), mant);
    return _mm512_castsi512_pd(_mm512_mask_or_epi64(_mm512_castpd_si512(y), all_ones,
                                                    _mm512_castpd_si512(y), one_bit));
}

/* Is b in the fast path's range, and is a (in every lane)? */
static inline int skmlp_fast_range8(__m512d a, __m512d b)
{
    const __m512i b_lo = _mm512_set1_epi64(0x3c30000000000000LL);     /* 2^-60 */
    const __m512i b_span = _mm512_set1_epi64(0x4310000000000000LL     /* 2^50 */
                                             - 0x3c30000000000000LL);
    const __m512i a_lo = _mm512_set1_epi64(0x0370000000000000LL << 1);  /* 2^-968 */
    const __m512i a_span = _mm512_set1_epi64((0x7bf0000000000000LL  /* 2^960 */
                                              - 0x0370000000000000LL) << 1);
    __m512i a_mag = _mm512_slli_epi64(_mm512_castpd_si512(a), 1);   /* |a|'s bits, shifted */
    __mmask8 fast = _mm512_cmplt_epu64_mask(
            _mm512_sub_epi64(_mm512_castpd_si512(b), b_lo), b_span)
        & (_mm512_cmplt_epu64_mask(_mm512_sub_epi64(a_mag, a_lo), a_span)
           | _mm512_cmpeq_epi64_mask(a_mag, _mm512_setzero_si512()));
    return fast == 0xff;
}

/* a / b, correctly rounded (see above) */
static inline __m512d skmlp_quotient8(__m512d a, __m512d b)
{
    const __m512d neg_zero = _mm512_set1_pd(-0.0);
    __m512d y, q, r;
    if (!skmlp_fast_range8(a, b))
        return _mm512_div_pd(a, b);
    y = skmlp_reciprocal8(b);
    q = _mm512_mul_pd(a, y);
    r = _mm512_fnmadd_pd(q, b, a);
    return _mm512_xor_pd(_mm512_fnmadd_pd(r, y, _mm512_xor_pd(q, neg_zero)), neg_zero);
}

/* skmlp_div (_vmath.h) for 8 lanes: a / b from y = 1 / b */
static inline __m512d skmlp_div8(__m512d a, __m512d b, __m512d y)
{
    const __m512d neg_zero = _mm512_set1_pd(-0.0);
    const __m512d inf = _mm512_set1_pd(INFINITY);
    __m512d q = _mm512_mul_pd(a, y);
    __m512d r = _mm512_fnmadd_pd(q, b, a);
    __m512d c = _mm512_xor_pd(_mm512_fnmadd_pd(r, y, _mm512_xor_pd(q, neg_zero)), neg_zero);
    __mmask8 finite = _mm512_cmp_pd_mask(_mm512_abs_pd(q), inf, _CMP_LT_OQ);
    return _mm512_mask_blend_pd(finite, q, c);
}

/* The gradient of 8 parameters from their raw sums G (see skmlp_finish) */
static inline __m512d skmlp_finished8(__m512d G, __m512d w, const skmlp_finish *f)
{
    const __m512d inv = _mm512_set1_pd(f->reciprocal);
    if (f->penalised)
        G = _mm512_add_pd(G, _mm512_mul_pd(_mm512_set1_pd(f->alpha), w));
    return f->by_pow2 ? _mm512_mul_pd(G, inv)
                      : skmlp_div8(G, _mm512_set1_pd(f->divisor), inv);
}

/* Adam's and AdamW's moments of 8 parameters, updated in place:
 * m = b1 m + k1 g; v = b2 v + k2 (g g). Returns v, and m in *m_new. */
static inline __m512d skmlp_moments8(double *m, double *v, __m512d g,
                                     __m512d b1, __m512d k1, __m512d b2,
                                     __m512d k2, __m512d *m_new)
{
    __m512d mj = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_loadu_pd(m)),
                               _mm512_mul_pd(k1, g));
    __m512d vj = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_loadu_pd(v)),
                               _mm512_mul_pd(k2, _mm512_mul_pd(g, g)));
    _mm512_storeu_pd(m, mj);
    _mm512_storeu_pd(v, vj);
    *m_new = mj;
    return vj;
}

/* The optimizers' loops in float64 (_mlp_fast.pxi) over the first multiple
 * of 8 parameters, each operation as there; each returns how many it did
 * (the Cython loop does the rest). The gradient is finished as ``fin``
 * says. */

/* _adam_update: m = b1 m + c1 g; v = b2 v + c2 (g g);
 * theta = theta + (-lr_t m) / (sqrt(v) + eps) */
static inline ptrdiff_t skmlp_adam_f64_head(
    double *theta, const double *grad, double *m, double *v, ptrdiff_t n,
    skmlp_finish fin,
    double lr_t, double beta_1, double beta_2, double c1, double c2, double eps)
{
    const __m512d neg_lr = _mm512_set1_pd(-lr_t);
    const __m512d b1 = _mm512_set1_pd(beta_1), b2 = _mm512_set1_pd(beta_2);
    const __m512d k1 = _mm512_set1_pd(c1), k2 = _mm512_set1_pd(c2);
    const __m512d ep = _mm512_set1_pd(eps);
    ptrdiff_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m512d w = _mm512_loadu_pd(theta + j);
        __m512d g = skmlp_finished8(_mm512_loadu_pd(grad + j), w, &fin);
        __m512d mj, vj = skmlp_moments8(m + j, v + j, g, b1, k1, b2, k2, &mj);
        _mm512_storeu_pd(theta + j, _mm512_add_pd(w, skmlp_quotient8(
            _mm512_mul_pd(neg_lr, mj), _mm512_add_pd(_mm512_sqrt_pd(vj), ep))));
    }
    return j;
}

/* _adagrad_update (decay = 1, c = 1: acc = acc + g g) and _rmsprop_update
 * (acc = decay acc + c (g g)): theta = theta - (lr g) / (sqrt(acc) + eps) */
static inline ptrdiff_t skmlp_rms_f64_head(
    double *theta, const double *grad, double *acc, ptrdiff_t n,
    skmlp_finish fin,
    int adagrad, double lr, double decay, double c, double eps)
{
    const __m512d eta = _mm512_set1_pd(lr);
    const __m512d rho = _mm512_set1_pd(decay), k = _mm512_set1_pd(c);
    const __m512d ep = _mm512_set1_pd(eps);
    ptrdiff_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m512d w = _mm512_loadu_pd(theta + j), aj;
        __m512d g = skmlp_finished8(_mm512_loadu_pd(grad + j), w, &fin);
        if (adagrad)
            aj = _mm512_add_pd(_mm512_loadu_pd(acc + j), _mm512_mul_pd(g, g));
        else
            aj = _mm512_add_pd(_mm512_mul_pd(rho, _mm512_loadu_pd(acc + j)),
                               _mm512_mul_pd(k, _mm512_mul_pd(g, g)));
        _mm512_storeu_pd(acc + j, aj);
        _mm512_storeu_pd(theta + j, _mm512_sub_pd(w, skmlp_quotient8(
            _mm512_mul_pd(eta, g), _mm512_add_pd(_mm512_sqrt_pd(aj), ep))));
    }
    return j;
}

/* _adamw_update: theta = theta decay; m = b1 m + c1 g; v = b2 v + c2 (g g);
 * theta = theta - (step m) / (sqrt(v) / root_bc2 + eps), the division by
 * root_bc2 (in (0, 1]) as skmlp_div does it: the division's bits for every
 * sqrt(v) >= 2^-968, zero, infinite or NaN, which is every sqrt(v) under
 * flush-to-zero. */
static inline ptrdiff_t skmlp_adamw_f64_head(
    double *theta, const double *grad, double *m, double *v, ptrdiff_t n,
    skmlp_finish fin,
    double decay, double step, double root_bc2, double beta_1, double beta_2,
    double c1, double c2, double eps)
{
    const __m512d keep = _mm512_set1_pd(decay);
    const __m512d lr = _mm512_set1_pd(step), root = _mm512_set1_pd(root_bc2);
    const __m512d inv_root = _mm512_set1_pd(1.0 / root_bc2);
    const __m512d b1 = _mm512_set1_pd(beta_1), b2 = _mm512_set1_pd(beta_2);
    const __m512d k1 = _mm512_set1_pd(c1), k2 = _mm512_set1_pd(c2);
    const __m512d ep = _mm512_set1_pd(eps);
    ptrdiff_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m512d w = _mm512_loadu_pd(theta + j);
        __m512d g = skmlp_finished8(_mm512_loadu_pd(grad + j), w, &fin);
        __m512d mj, vj = skmlp_moments8(m + j, v + j, g, b1, k1, b2, k2, &mj);
        __m512d den = _mm512_add_pd(skmlp_div8(_mm512_sqrt_pd(vj), root, inv_root), ep);
        _mm512_storeu_pd(theta + j, _mm512_sub_pd(_mm512_mul_pd(w, keep),
                                                  skmlp_quotient8(_mm512_mul_pd(lr, mj), den)));
    }
    return j;
}

/* For the tests: a[k] = a[k] / b[k] as the step divides; b[k] = 1 / b[k]
 * as the step's reciprocal is (the division where b is out of range) */
static inline void skmlp_quotients(double *a, const double *b, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k + 8 <= n; k += 8)
        _mm512_storeu_pd(a + k, skmlp_quotient8(_mm512_loadu_pd(a + k),
                                                _mm512_loadu_pd(b + k)));
    for (; k < n; k++)
        a[k] = a[k] / b[k];
}

static inline void skmlp_reciprocals(double *b, ptrdiff_t n)
{
    const __m512d one = _mm512_set1_pd(1.0);
    ptrdiff_t k;
    for (k = 0; k + 8 <= n; k += 8) {
        __m512d bk = _mm512_loadu_pd(b + k);
        _mm512_storeu_pd(b + k, skmlp_fast_range8(one, bk) ? skmlp_reciprocal8(bk)
                                                           : _mm512_div_pd(one, bk));
    }
    for (; k < n; k++)
        b[k] = 1.0 / b[k];
}

#else
#define SKMLP_STEPS_WITHOUT_DIVIDER 0

/* Elsewhere the Cython loops do every parameter. */
#define skmlp_adam_f64_head(...) ((ptrdiff_t)0)
#define skmlp_rms_f64_head(...) ((ptrdiff_t)0)
#define skmlp_adamw_f64_head(...) ((ptrdiff_t)0)

static inline void skmlp_quotients(double *a, const double *b, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k < n; k++)
        a[k] = a[k] / b[k];
}

static inline void skmlp_reciprocals(double *b, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k < n; k++)
        b[k] = 1.0 / b[k];
}
#endif

#endif
