/* SGD with momentum over penalised coefficients, the L2 penalty's sum of
 * squares taken in the same pass.
 *
 * A batch's loss needs sum_i ||W_i||^2 of the coefficients before the step,
 * and the step reads every coefficient anyway: summing the squares there
 * saves a pass over them (BLAS's dot before the update). The sum then has an
 * order of skmlp's own, the same in every build (generic, AVX2, AVX-512), so
 * that each computes the same bits: eight lanes, lane l adding the squares of
 * coefficients 8 k + l for k = 0, 1, ... in turn; then ((l0 + l1) + (l2 +
 * l3)) + ((l4 + l5) + (l6 + l7)); then the last n % 8 squares in order.
 *
 * The lanes are a vector of eight (GCC's vector extensions): the compiler
 * lays them out in whatever registers the build has (one AVX-512 register of
 * doubles, two AVX2 ones, four SSE2 ones) and computes each lane with the
 * same IEEE operations; with -ffp-contract=off nothing is fused or
 * reordered. The update itself is _sgd_update's (_mlp_fast.pxi) for a
 * divisor that is a power of two (multiplied by its exact reciprocal),
 * operation for operation:
 *   g = (G + alpha w) r;  v = mu v - lr g;  w = w + (mu v - lr g)  (Nesterov)
 *                                          or w = w + v.
 */
#ifndef SKMLP_STEPS_SUMMING_H
#define SKMLP_STEPS_SUMMING_H

#include <stddef.h>
#include <string.h>

typedef double skmlp_v8d __attribute__((vector_size(64)));
typedef float skmlp_v8f __attribute__((vector_size(32)));

#define SKMLP_SGD_SUMMING(NAME, T, V)                                             \
static inline double NAME(T *theta, const T *grad, T *velocity, ptrdiff_t n,     \
                          T alpha, T reciprocal, T lr, T mu, int nesterov)        \
{                                                                                 \
    V lanes = {0, 0, 0, 0, 0, 0, 0, 0}, w, g, v;                                  \
    ptrdiff_t j, blocks = n - n % 8;                                              \
    T wj, gj, vj, tail = 0;                                                       \
    for (j = 0; j < blocks; j += 8) {                                             \
        memcpy(&w, theta + j, sizeof w);                                          \
        memcpy(&g, grad + j, sizeof g);                                           \
        memcpy(&v, velocity + j, sizeof v);                                       \
        lanes = lanes + w * w;                                                    \
        g = (g + alpha * w) * reciprocal;                                         \
        v = mu * v - lr * g;                                                      \
        memcpy(velocity + j, &v, sizeof v);                                       \
        w = nesterov ? w + (mu * v - lr * g) : w + v;                             \
        memcpy(theta + j, &w, sizeof w);                                          \
    }                                                                             \
    for (; j < n; j++) {                                                          \
        wj = theta[j];                                                            \
        tail = tail + wj * wj;                                                    \
        gj = (grad[j] + alpha * wj) * reciprocal;                                 \
        vj = mu * velocity[j] - lr * gj;                                          \
        velocity[j] = vj;                                                         \
        theta[j] = nesterov ? wj + (mu * vj - lr * gj) : wj + vj;                 \
    }                                                                             \
    return (double)(((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))               \
                    + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])))            \
           + (double)tail;                                                        \
}

SKMLP_SGD_SUMMING(skmlp_sgd_summing_f64, double, skmlp_v8d)
SKMLP_SGD_SUMMING(skmlp_sgd_summing_f32, float, skmlp_v8f)

#undef SKMLP_SGD_SUMMING

#endif
