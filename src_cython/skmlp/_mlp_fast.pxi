"""Compiled core of skmlp's multilayer perceptrons.

(Included by ``_mlp_fast_generic.pyx``, ``_mlp_fast_avx2.pyx`` and
``_mlp_fast_avx512.pyx``: the same kernels built for any CPU, for x86-64-v3 and
for x86-64-v4; ``skmlp/_mlp_fast.py`` loads one.)

Everything that touches every sample lives here: the forward pass, the loss and
its output error, the backward pass, and the optimizer updates. The Python side
(skmlp/_multilayer_perceptron.py) validates input and allocates every buffer once
per fit; then it calls

* ``_train_epoch`` once per epoch for the stochastic solvers: it gathers each
  shuffled mini-batch, runs forward / loss / backward / update for every batch
  with the GIL released, and allocates nothing;
* ``_loss_grad`` once per function evaluation of L-BFGS (and for the loss of
  evaluation sets): loss and gradient over a whole data set, in row blocks;
* ``_predict`` for ``predict`` / ``predict_proba``: the forward pass in row blocks.

Parameters live in one flat vector ``theta`` laid out as
``[W_0, b_0, W_1, b_1, ..., a_1, a_2, ...]``; ``W_i`` is row-major with shape
(units[i], units[i + 1]); ``a_l`` are the PReLU slopes of hidden layer ``l``
(present only with ``activation='prelu'``). Gradients and optimizer state share
that layout, so every optimizer update is one loop over a vector.

Layer buffers (activations, deltas, and with PReLU or dropout the auxiliary
values and masks) are flat workspaces laid out alike: layer ``l``
(1 <= l < n_layers) starts at ``act_off[l]`` and holds up to ``cap`` rows of
``units[l]`` values.

Notation in the comments: ``A_l`` is the activation of layer ``l`` (``A_0`` is
the input batch), ``Z_l = A_{l-1} @ W_{l-1} + b_{l-1}``, ``D_l`` the gradient
of the summed, weighted loss with respect to ``Z_l``.
"""
from cython cimport floating
from libc.math cimport log, logf, sqrt, sqrtf, pow, fabs, frexp
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memset

from skmlp._blas cimport _gemm, _axpy, _dot, BLAS_Trans, NoTrans, Trans

ctypedef Py_ssize_t intp

cdef extern from "_prefetch.h" nogil:
    void skmlp_prefetch(const void *p)

cdef extern from "_vmath.h" nogil:
    double skmlp_exp(double x)
    float skmlp_expf(float x)
    double skmlp_tanh(double x)
    float skmlp_tanhf(float x)
    double skmlp_div(double a, double b, double y)
    float skmlp_divf(float a, double y)

cdef extern from "_steps_summing.h" nogil:
    # SGD with momentum over penalised coefficients, returning the sum of
    # their squares before the step, in one pass (every build)
    double skmlp_sgd_summing_f64(double *theta, const double *grad,
                                 double *velocity, intp n, double alpha,
                                 double reciprocal, double lr, double mu,
                                 int nesterov)
    double skmlp_sgd_summing_f32(float *theta, const float *grad,
                                 float *velocity, intp n, float alpha,
                                 float reciprocal, float lr, float mu,
                                 int nesterov)

cdef extern from "_steps_avx512.h" nogil:
    # The optimizers' float64 loops with the division done by the reciprocal
    # and fused multiply-adds, bit for bit (the AVX-512 build; elsewhere they
    # do nothing)
    const int SKMLP_STEPS_WITHOUT_DIVIDER
    ctypedef struct skmlp_finish:   # _finished's arguments (see _finish_of)
        int penalised
        int by_pow2
        double alpha
        double divisor
        double reciprocal
    intp skmlp_adam_f64_head(double *theta, const double *grad, double *m,
                             double *v, intp n, skmlp_finish fin, double lr_t,
                             double beta_1, double beta_2, double c1,
                             double c2, double eps)
    intp skmlp_rms_f64_head(double *theta, const double *grad, double *acc,
                            intp n, skmlp_finish fin, int adagrad, double lr,
                            double decay, double c, double eps)
    intp skmlp_adamw_f64_head(double *theta, const double *grad, double *m,
                              double *v, intp n, skmlp_finish fin, double decay,
                              double step, double root_bc2, double beta_1,
                              double beta_2, double c1, double c2, double eps)
    void skmlp_quotients(double *a, const double *b, intp n)
    void skmlp_reciprocals(double *b, intp n)

cdef extern from "_fpenv.h" nogil:
    # Flush subnormal results and inputs to zero in this thread while training
    # (see _fpenv.h: subnormal arithmetic is microcoded and ~100x slower).
    unsigned long skmlp_ftz_on()
    void skmlp_ftz_restore(unsigned long state)

cdef extern from *:
    """
    #ifndef SKMLP_DEBUG_BUILD  /* setup.py defines it as 1 in a debug build */
    #define SKMLP_DEBUG_BUILD 0
    #endif
    """
    const int SKMLP_DEBUG_BUILD

# Was this build made with SKMLP_DEBUG_BUILD=1 (setup.py: bounds, wraparound
# and initialisation checks on, -O0)? CI checks that its debug stage runs one.
DEBUG_BUILD = bool(SKMLP_DEBUG_BUILD)

# Do the float64 steps of Adam, AdaGrad, RMSProp and AdamW in this build
# divide without the divider (_steps_avx512.h)? True in the AVX-512 build;
# tests check it.
STEPS_WITHOUT_DIVIDER = bool(SKMLP_STEPS_WITHOUT_DIVIDER)


cpdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4
    EXP = 5
    LEAKY_RELU = 6
    PRELU = 7

cpdef enum Loss:
    SQUARED_ERROR = 0
    POISSON = 1
    LOG_LOSS = 2         # softmax output, categorical cross-entropy
    BINARY_LOG_LOSS = 3  # logistic output(s), binary cross-entropy per output
    ABSOLUTE_ERROR = 4
    HUBER = 5

cpdef enum Solver:
    SGD = 0
    ADAM = 1
    ADAGRAD = 2
    RMSPROP = 3
    ADAMW = 4


cdef struct Net:
    # Static description of a network; every pointer is borrowed.
    intp n_layers           # input, hidden..., output
    const intp *units       # units[l], l = 0 .. n_layers - 1
    const intp *coef_off    # offset of W_i in theta, i = 0 .. n_layers - 2
    const intp *bias_off    # offset of b_i in theta
    const intp *slope_off   # offset of the PReLU slopes of hidden layer l
    const intp *act_off     # offset of layer l in the layer workspaces
    const double *dropout   # dropout rate of layer l; NULL: no dropout
    uint64_t *rng           # state of the dropout mask generator
    int hidden_act
    int out_act
    int loss
    double negative_slope   # of leaky_relu
    double huber_delta
    bint small_kernels      # see _product and _output_delta_transposed
    # theta holds the coefficients divided by this factor (the weight decay
    # of the fused SGD step, applied lazily, see _train_epoch); 1 elsewhere.
    # Products with W multiply by it; biases and slopes are not scaled.
    double coef_scale


cdef struct Rows:
    # Where the rows of one batch come from. Dense input: ``n`` contiguous rows
    # starting at the pointer passed beside this struct. Sparse (CSR) input:
    # batch row r is CSR row ``ids[r]``, or ``start + r`` when ids is NULL.
    intp n
    bint sparse
    const intp *ids
    intp start
    const intp *indices
    const intp *indptr


# ---------------------------------------------------------------------------
# Element-wise helpers
# ---------------------------------------------------------------------------

cdef inline floating _exp(floating x) noexcept nogil:
    """np.exp(x), to about 1 ulp, in a form loops vectorise (_vmath.h)"""
    if floating is float:
        return skmlp_expf(x)
    else:
        return skmlp_exp(x)


cdef inline double _log_clipped(floating p, floating eps) noexcept nogil:
    """np.log(np.clip(p, eps, 1 - eps))"""
    cdef floating one_minus_eps = 1 - eps
    if p < eps:
        p = eps
    elif p > one_minus_eps:
        p = one_minus_eps
    if floating is float:
        return logf(p)
    else:
        return log(p)


cdef inline floating _logistic(floating x) noexcept nogil:
    """scipy.special.expit(x) == 1 / (1 + np.exp(-x))"""
    return 1 / (1 + _exp(-x))


cdef inline floating _tanh(floating x) noexcept nogil:
    """np.tanh(x), to a few ulp, in a form loops vectorise (_vmath.h)"""
    if floating is float:
        return skmlp_tanhf(x)
    else:
        return skmlp_tanh(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    """np.sqrt(x)"""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline double _uniform(uint64_t *state) noexcept nogil:
    """A uniform draw from [0, 1): SplitMix64, top 53 bits."""
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    z = z ^ (z >> 31)
    return (z >> 11) * (1.0 / 9007199254740992.0)


cdef void _prelu(floating *Z, const floating *a, intp n_rows,
                 intp n_cols) noexcept nogil:
    """Z = np.maximum(Z, 0) + a * np.minimum(Z, 0), a of shape (n_cols,)."""
    cdef intp i, j
    cdef floating *z
    for i in range(n_rows):
        z = Z + i * n_cols
        for j in range(n_cols):
            z[j] = a[j] * z[j] if z[j] < 0 else z[j]


cdef void _bias_activation(floating *Z, const floating *b, intp n_rows,
                           intp n_cols, int act,
                           double negative_slope) noexcept nogil:
    """Z += b; Z = act(Z) over Z (n_rows, n_cols); not PReLU."""
    cdef intp i, j, size = n_rows * n_cols
    cdef floating *z
    cdef floating zmax, total
    cdef floating ns = <floating>negative_slope
    # The ReLU-type branches are written as selects (no jumps), so that the
    # compiler turns them into vector blends: a data-dependent branch per
    # element costs a misprediction on half of them.
    cdef floating v
    if act == RELU or act == LEAKY_RELU:
        for i in range(n_rows):
            z = Z + i * n_cols
            if act == RELU:
                for j in range(n_cols):
                    v = z[j] + b[j]
                    z[j] = 0 if v < 0 else v
            else:
                for j in range(n_cols):
                    v = z[j] + b[j]
                    z[j] = ns * v if v < 0 else v
        return
    # The others in passes over the whole block: the bias (and the softmax's
    # max) row by row, then the function in one loop over all the values.
    # Output layers have few columns, and a vectorised loop per row of them
    # spends most of its time in its ends; the rows' short dependency chains
    # (max, sum) overlap when no branch separates them.
    for i in range(n_rows):
        z = Z + i * n_cols
        for j in range(n_cols):
            z[j] += b[j]
        if act == SOFTMAX:
            # z -= z.max()   (the max as a select: no mispredicted jumps)
            zmax = z[0]
            for j in range(1, n_cols):
                zmax = z[j] if z[j] > zmax else zmax
            for j in range(n_cols):
                z[j] = z[j] - zmax
    if act == LOGISTIC:
        for i in range(size):
            Z[i] = _logistic(Z[i])
    elif act == TANH:
        for i in range(size):
            Z[i] = _tanh(Z[i])
    elif act == EXP or act == SOFTMAX:
        for i in range(size):
            Z[i] = _exp(Z[i])
    if act == SOFTMAX:
        # z /= z.sum(), the sum in column order
        for i in range(n_rows):
            z = Z + i * n_cols
            total = 0
            for j in range(n_cols):
                total += z[j]
            for j in range(n_cols):
                z[j] /= total


cdef void _activation_derivative(const floating *A, floating *D, intp n,
                                 int act, double negative_slope) noexcept nogil:
    """D *= act'(Z), written with the activation A = act(Z) (not PReLU)."""
    cdef intp j
    cdef floating ns = <floating>negative_slope
    if act == RELU:
        # D[A == 0] = 0   (as a select, see _bias_activation)
        for j in range(n):
            D[j] = 0 if A[j] == 0 else D[j]
    elif act == LEAKY_RELU:
        # D[A <= 0] *= negative_slope   (A > 0 exactly where Z > 0)
        for j in range(n):
            D[j] = D[j] * ns if A[j] <= 0 else D[j]
    elif act == LOGISTIC:
        # D *= A; D *= 1 - A
        for j in range(n):
            D[j] = D[j] * A[j]
            D[j] = D[j] * (1 - A[j])
    elif act == TANH:
        # D *= 1 - A ** 2
        for j in range(n):
            D[j] = D[j] * (1 - A[j] * A[j])


# ---------------------------------------------------------------------------
# Forward pass, loss, backward pass
# ---------------------------------------------------------------------------

cdef void _sparse_matmul(const floating *data, Rows rows, const floating *W,
                         intp n_out, floating *Z) noexcept nogil:
    """Z = X[rows] @ W for CSR X; Z is (rows.n, n_out)."""
    cdef intp r, row, p
    for r in range(rows.n):
        row = rows.ids[r] if rows.ids != NULL else rows.start + r
        memset(Z + r * n_out, 0, n_out * sizeof(floating))
        for p in range(rows.indptr[row], rows.indptr[row + 1]):
            # Z[r] += X[row, col] * W[col]
            _axpy(<int>n_out, data[p], W + rows.indices[p] * n_out, 1,
                  Z + r * n_out, 1)


cdef void _sparse_grad(const floating *data, Rows rows, const floating *D,
                       intp n_out, floating *G) noexcept nogil:
    """G += X[rows].T @ D for CSR X; D is (rows.n, n_out)."""
    cdef intp r, row, p
    for r in range(rows.n):
        row = rows.ids[r] if rows.ids != NULL else rows.start + r
        for p in range(rows.indptr[row], rows.indptr[row + 1]):
            # G[col] += X[row, col] * D[r]
            _axpy(<int>n_out, data[p], D + r * n_out, 1,
                  G + rows.indices[p] * n_out, 1)


# OpenBLAS's SkylakeX-family kernels have a "small-matrix" GEMM path with no
# packing, which it takes only up to m * n * k = 1e6 multiply-adds (and for a
# first operand not transposed, column-major). Between that and a few times
# more, the packed path it takes instead is much slower: measured on this
# project's benchmark machine, one thread, (m, n, k) = (100, 200, 64) in
# float64 takes 51 us whole and 37 us as two products of 100 columns;
# (64, 256, 784) 497 us whole, 339 us in 16 pieces; float32 gains less and
# loses beyond about 4e6 ((256, 512, 100): 174 us whole, 210 us in 16 pieces).
# _product therefore cuts such products into pieces of at most 1e6, when the
# caller says the BLAS has those kernels and runs one thread.
cdef enum:
    SMALL_PRODUCT = 1000000        # OpenBLAS's limit for its small kernels
    SMALL_PRODUCT_MIN_ROWS = 16    # narrower pieces lose more than they gain

cdef intp _product_rows(int m, int n, int k, bint is_float) noexcept nogil:
    """Rows of C per piece for _product: 0 for one whole call."""
    cdef double work = <double>m * n * k
    cdef double limit = 4e6 if is_float else 16e6
    cdef intp rows, pieces
    if not SMALL_PRODUCT < work <= limit:
        return 0
    rows = <intp>(SMALL_PRODUCT // (<double>n * k))
    if rows < SMALL_PRODUCT_MIN_ROWS:
        return 0
    pieces = (m + rows - 1) // rows
    return (m + pieces - 1) // pieces


cdef intp _product(const Net *net, BLAS_Trans ta, int m, int n, int k,
                   const floating *A, int lda, const floating *B,
                   floating alpha, floating beta, floating *C) noexcept nogil:
    """C (m, n) = alpha * op(A) @ B + beta * C: _gemm, or several _gemm calls over
    blocks of C's rows when that lets OpenBLAS use its small-matrix kernels.
    Returns the number of calls.

    B is (k, n) not transposed and C is contiguous (ldc = n). Each row of C
    is computed by one call from the same operands, whole or in pieces.
    """
    cdef intp rows = _product_rows(m, n, k, floating is float) if net.small_kernels else 0
    cdef intp r0 = 0, rn, calls = 0
    if rows == 0:
        _gemm(ta, NoTrans, m, n, k, alpha, A, lda, B, n, beta, C, n)
        return 1
    while r0 < m:
        rn = rows if r0 + rows <= m else m - r0
        # rows r0.. of op(A): rows of A, or columns of A when transposed
        _gemm(ta, NoTrans, <int>rn, n, k, alpha,
              A + (r0 if ta == Trans else r0 * lda), lda, B, n, beta,
              C + r0 * n, n)
        r0 += rn
        calls += 1
    return calls


# The hidden layer below the output takes its delta from the output's,
# D_h = D_out @ W.T. With both stored row-major, the sum runs along the rows
# of both operands, which BLAS (column-major) sees as op(A) = A^T, op(B) = B
# ("TN"): OpenBLAS takes its small-matrix kernels for that form only for at
# most 1,200 outputs, and its packed path is slow at these sizes. Storing the
# output delta transposed, (n_out, n), makes the product TT, which the small
# kernels take, and the output layer's gradient A.T @ D TT as well. Measured on
# this project's benchmark machine (one thread, OpenBLAS 0.3.30 SkylakeX), the
# TT product over TN, (fan_in, rows, n_out): float64 (100, 32, 10) 0.68,
# (100, 200, 10) 0.72, (64, 64, 10) 0.70, and at most 1.0 up to fan_in * rows
# of 25,600; float32 0.5-0.75 up to fan_in * rows of 8,192, but up to 1.5 past
# it with 10 outputs, (256, 64, 10) 1.42; beyond 1e6 multiply-adds neither form
# has the small kernels and TT is a few percent slower.
cdef enum:
    TRANSPOSED_DELTA_OUTPUTS_F64 = 25600   # fan_in * rows
    TRANSPOSED_DELTA_OUTPUTS_F32 = 8192

cdef inline bint _output_delta_transposed(const Net *net, intp n,
                                          bint is_float) noexcept nogil:
    """Is the output delta of a batch of n rows stored transposed, (n_out, n)?"""
    cdef intp last = net.n_layers - 1
    cdef double outputs
    if not net.small_kernels or last < 2:  # no hidden layer: no D @ W.T
        return False
    outputs = <double>net.units[last - 1] * n
    if outputs * net.units[last] > SMALL_PRODUCT:
        return False
    return outputs <= (TRANSPOSED_DELTA_OUTPUTS_F32 if is_float
                       else TRANSPOSED_DELTA_OUTPUTS_F64)


cdef inline void _coef_product(const Net *net, int fan_in, int fan_out, int n,
                               const floating *A, const floating *D,
                               bint d_transposed, floating alpha, floating beta,
                               floating *C) noexcept nogil:
    """C (fan_in, fan_out) = alpha * A.T @ D + beta * C, for D stored (n, fan_out)
    or, when d_transposed, as D.T (fan_out, n)."""
    if d_transposed:
        _gemm(Trans, Trans, fan_in, fan_out, n, alpha, A, fan_in, D, n, beta,
              C, fan_out)
    else:
        _product(net, Trans, fan_in, fan_out, n, A, fan_in, D, alpha, beta, C)


def _py_product(bint split, bint trans_a, const floating[:, ::1] A,
                const floating[:, ::1] B, double beta, floating[:, ::1] C):
    """C = op(A) @ B + beta * C through _product (for the tests); returns the
    number of BLAS calls it made."""
    cdef Net net
    net.small_kernels = split
    cdef int m = A.shape[1] if trans_a else A.shape[0]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    if B.shape[0] != k or C.shape[0] != m or C.shape[1] != B.shape[1]:
        raise ValueError("shapes do not match")
    net.coef_scale = 1
    return _product(&net, Trans if trans_a else NoTrans, m, <int>B.shape[1], k,
                    &A[0, 0], <int>A.shape[1], &B[0, 0], <floating>1, <floating>beta,
                    &C[0, 0])


def _py_all_finite(const floating[::1] x):
    """_all_finite(x) (for the tests)."""
    return _all_finite(&x[0], x.shape[0]) if x.shape[0] > 0 else True


def _py_finish(floating[::1] grad, const floating[::1] theta, double alpha,
               double divisor, bint penalised):
    """grad = (grad + alpha * theta) / divisor (without alpha * theta unless
    ``penalised``) in place through _finish_part, under the training kernels'
    flush-to-zero mode (for the tests). Returns Fin.how: 0 the division,
    1 times a power-of-two reciprocal, 2 _div."""
    cdef Fin fin = _fin_for(alpha, divisor, penalised)
    cdef unsigned long fp_state
    if grad.shape[0] != theta.shape[0]:
        raise ValueError("grad and theta must have the same length")
    if grad.shape[0] > 0:
        with nogil:
            fp_state = skmlp_ftz_on()
            _finish_part(&grad[0], &theta[0], grad.shape[0], fin)
            skmlp_ftz_restore(fp_state)
    return fin.how


def _py_bias_activation(int act, floating[:, ::1] Z, const floating[::1] b):
    """Z = act(Z + b) in place through _bias_activation (for the tests)."""
    if b.shape[0] != Z.shape[1]:
        raise ValueError("b must have one entry per column of Z")
    if Z.shape[0] > 0 and Z.shape[1] > 0:
        _bias_activation(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1], act, 0.01)


cdef void _forward(const Net *net, const floating *theta, const floating *X,
                   Rows rows, floating *act, floating *aux,
                   floating *mask) noexcept nogil:
    """Fill every layer's activation for one batch of ``rows.n`` rows.

    With PReLU, ``aux`` keeps each hidden layer's pre-activation Z; with
    dropout (``net.dropout`` not NULL), ``aux`` keeps the activation before
    dropout and ``mask`` the factors (0 or 1 / (1 - p)) it was multiplied by.
    """
    cdef intp i, j, fan_in, fan_out, n = rows.n, size
    cdef const floating *W
    cdef const floating *A
    cdef floating *Z
    cdef int code
    cdef double p
    cdef floating scale
    cdef bint hidden
    for i in range(net.n_layers - 1):
        fan_in = net.units[i]
        fan_out = net.units[i + 1]
        size = n * fan_out
        W = theta + net.coef_off[i]
        Z = act + net.act_off[i + 1]
        if i == 0:
            if rows.sparse:
                # (coef_scale is 1: the fused step is for dense input only)
                _sparse_matmul(X, rows, W, fan_out, Z)
            else:
                # Z = X @ W
                _product(net, NoTrans, <int>n, <int>fan_out, <int>fan_in,
                         X, <int>fan_in, W, <floating>net.coef_scale,
                         <floating>0, Z)
        else:
            A = act + net.act_off[i]
            # Z = A @ W
            _product(net, NoTrans, <int>n, <int>fan_out, <int>fan_in,
                     A, <int>fan_in, W, <floating>net.coef_scale, <floating>0, Z)
        hidden = i < net.n_layers - 2
        code = net.hidden_act if hidden else net.out_act
        if hidden and code == PRELU:
            # Z += b; aux = Z; Z = max(Z, 0) + a * min(Z, 0)
            _bias_activation(Z, theta + net.bias_off[i], n, fan_out, IDENTITY, 0)
            if aux != NULL:
                memcpy(aux + net.act_off[i + 1], Z, size * sizeof(floating))
            _prelu(Z, theta + net.slope_off[i + 1], n, fan_out)
        else:
            _bias_activation(Z, theta + net.bias_off[i], n, fan_out, code,
                             net.negative_slope)
        if hidden and net.dropout != NULL and net.dropout[i + 1] > 0:
            p = net.dropout[i + 1]
            scale = <floating>(1.0 / (1.0 - p))
            if code != PRELU:
                memcpy(aux + net.act_off[i + 1], Z, size * sizeof(floating))
            for j in range(size):
                # inverted dropout: keep with probability 1 - p, scale by 1/(1-p)
                if _uniform(net.rng) < p:
                    mask[net.act_off[i + 1] + j] = 0
                    Z[j] = 0
                else:
                    mask[net.act_off[i + 1] + j] = scale
                    Z[j] = Z[j] * scale


cdef double _loss_output_delta(const Net *net, const floating *Y,
                               const floating *sw, intp n,
                               floating *act, floating *delta) noexcept nogil:
    """Weighted sum of per-sample losses; D_last = sw[:, None] * dloss/dZ_last.

    For the canonical output of each log-loss / squared error / Poisson, the
    output error is P - Y. Per-sample losses (mean over the n_out outputs for
    the regression losses, as scikit-learn reports its squared error):

    * squared error: 0.5 * mean_k (y_k - p_k) ** 2,           D = p - y
    * absolute error: mean_k |y_k - p_k|,                      D = sign(p - y)
    * Huber: mean_k h(p_k - y_k), h(r) = r**2 / 2 for |r| <= delta,
      delta * (|r| - delta / 2) beyond,                        D = clip(p - y, +-delta)
    * Poisson: sum_k xlogy(y_k, y_k / p_k) - y_k + p_k,         D = p - y
    * log-loss: -sum_k xlogy(y_k, clip(p_k)),                   D = p - y
    * binary log-loss: -sum_k xlogy(y_k, clip(p_k)) + xlogy(1 - y_k, 1 - clip(p_k))

    with clip(p) = np.clip(p, eps, 1 - eps), eps = np.finfo(dtype).eps. As in
    scikit-learn, D of the regression losses is the gradient of the sum (not
    the mean) over outputs.

    D is stored as D.T, (n_out, n), where _output_delta_transposed says so.
    """
    cdef intp last = net.n_layers - 1
    cdef intp n_out = net.units[last]
    cdef floating *P = act + net.act_off[last]
    cdef floating *D = delta + net.act_off[last]
    cdef intp i, k, j, jd
    cdef floating y, p, w, eps, r
    cdef floating hd = <floating>net.huber_delta
    cdef double row_loss, total = 0
    cdef bint transposed = _output_delta_transposed(net, n, floating is float)
    if floating is float:
        eps = 1.1920928955078125e-07
    else:
        eps = 2.220446049250313e-16
    for i in range(n):
        row_loss = 0
        for k in range(n_out):
            j = i * n_out + k
            jd = k * n + i if transposed else j
            y = Y[j]
            p = P[j]
            D[jd] = p - y
            if net.loss == SQUARED_ERROR:
                row_loss += (y - p) * (y - p)
            elif net.loss == ABSOLUTE_ERROR:
                r = p - y
                row_loss += fabs(r)
                D[jd] = 1 if r > 0 else (-1 if r < 0 else 0)
            elif net.loss == HUBER:
                r = p - y
                if fabs(r) <= hd:
                    row_loss += 0.5 * r * r
                else:
                    row_loss += hd * (fabs(r) - 0.5 * hd)
                    D[jd] = hd if r > 0 else -hd
            elif net.loss == POISSON:
                if y != 0:
                    row_loss += y * log(y / <double>p)
                row_loss += p - y
            elif net.loss == LOG_LOSS:
                if y != 0:
                    row_loss -= y * _log_clipped(p, eps)
            else:
                if y != 0:
                    row_loss -= y * _log_clipped(p, eps)
                if y != 1:
                    row_loss -= (1 - y) * _log_clipped(1 - p, eps)
        if net.loss == SQUARED_ERROR:
            row_loss *= 0.5 / n_out
        elif net.loss == ABSOLUTE_ERROR or net.loss == HUBER:
            row_loss /= n_out
        if sw != NULL:
            w = sw[i]
            row_loss *= w
            for k in range(n_out):
                D[k * n + i if transposed else i * n_out + k] *= w
        total += row_loss
    return total


cdef inline void _sum_columns(const floating *DT, intp n_cols, intp n_rows,
                              floating *g, bint accumulate) noexcept nogil:
    """g = DT.sum(axis=1) (+ g when accumulating) for DT (n_cols, n_rows): the
    column sums of D = DT.T, added in the order _sum_rows adds them."""
    cdef intp r, j
    cdef floating total
    for j in range(n_cols):
        total = g[j] if accumulate else 0
        for r in range(n_rows):
            total += DT[j * n_rows + r]
        g[j] = total


cdef inline void _sum_rows(const floating *D, intp n_rows, intp n_cols,
                           floating *g, bint accumulate) noexcept nogil:
    """g = D.sum(axis=0) (+ g when accumulating), summed row after row."""
    cdef intp r, j
    cdef const floating *d
    if not accumulate:
        memset(g, 0, n_cols * sizeof(floating))
    for r in range(n_rows):
        d = D + r * n_cols
        for j in range(n_cols):
            g[j] += d[j]


cdef void _backward(const Net *net, const floating *theta, const floating *X,
                    Rows rows, const floating *act, floating *delta,
                    const floating *aux, const floating *mask,
                    floating *grad, bint accumulate, floating *step_theta,
                    floating step_alpha, floating step_beta) noexcept nogil:
    """Unnormalised gradients: G_i (+)= A_i.T @ D_{i+1}, g_i (+)= D_{i+1}.sum(0),
    and for PReLU the slopes' gradient (+)= (dL/dA * min(Z, 0)).sum(0).

    ``delta`` must hold the output error, stored as _loss_output_delta stored
    it (transposed where _output_delta_transposed says so); deltas of the
    hidden layers are computed here, row-major. The delta of the input layer is
    never computed.

    With ``step_theta`` (theta itself, writable; dense input, no
    accumulation) the coefficients take their momentum-0 SGD step here
    instead of having G stored: V_i = step_beta * V_i + step_alpha * A_i.T @ D
    for the stored coefficients V_i (W_i / net.coef_scale), one product that
    also applies the step, right after W_i's last use (the delta of layer i).
    The caller chooses alpha and beta (see _train_epoch) and steps the biases
    and slopes afterwards.
    """
    cdef intp i, r, j, fan_in, fan_out, n = rows.n
    cdef const floating *A
    cdef floating *D
    cdef floating *Dp
    cdef floating *G
    cdef floating *g
    cdef const floating *Zp
    cdef const floating *a
    cdef floating *ga
    cdef bint dropped
    cdef bint summed = False  # g of this layer already summed (with act')
    cdef bint fused = step_theta != NULL
    # D of the layer above stored transposed (the output layer's only)
    cdef bint transposed = _output_delta_transposed(net, n, floating is float)
    for i in range(net.n_layers - 2, -1, -1):
        fan_in = net.units[i]
        fan_out = net.units[i + 1]
        D = delta + net.act_off[i + 1]
        G = grad + net.coef_off[i]
        g = grad + net.bias_off[i]
        if i == 0 and rows.sparse:
            if not accumulate:
                memset(G, 0, fan_in * fan_out * sizeof(floating))
            _sparse_grad(X, rows, D, fan_out, G)
        elif not fused:
            A = X if i == 0 else act + net.act_off[i]
            # G = A.T @ D  (+ G when accumulating)
            _coef_product(net, <int>fan_in, <int>fan_out, <int>n, A, D,
                          transposed, <floating>1,
                          <floating>(1 if accumulate else 0), G)
        if not summed:
            # g = D.sum(axis=0)  (+ g when accumulating)
            if transposed:
                _sum_columns(D, fan_out, n, g, accumulate)
            else:
                _sum_rows(D, n, fan_out, g, accumulate)
        summed = False
        Dp = delta + net.act_off[i]
        if i > 0:
            # Delta of hidden layer i: Dp = D @ W.T   (the gradient with
            # respect to A_i), the last use of W_i
            _gemm(Trans if transposed else NoTrans, Trans, <int>n, <int>fan_in,
                  <int>fan_out, <floating>net.coef_scale, D,
                  <int>(n if transposed else fan_out), theta + net.coef_off[i],
                  <int>fan_out, <floating>0, Dp, <int>fan_in)
        if fused:
            # V_i = beta * V_i + alpha * A_i.T @ D   (the step of W_i)
            _coef_product(net, <int>fan_in, <int>fan_out, <int>n,
                          X if i == 0 else act + net.act_off[i], D, transposed,
                          step_alpha, step_beta, step_theta + net.coef_off[i])
        transposed = False
        if i == 0:
            break
        dropped = net.dropout != NULL and net.dropout[i] > 0
        if dropped:
            # Dp *= mask   (the gradient with respect to A_i before dropout)
            for j in range(n * fan_in):
                Dp[j] = Dp[j] * mask[net.act_off[i] + j]
        if net.hidden_act == PRELU:
            # ga (+)= (Dp * min(Z, 0)).sum(0);  Dp *= where(Z > 0, 1, a)
            Zp = aux + net.act_off[i]
            a = theta + net.slope_off[i]
            ga = grad + net.slope_off[i]
            if not accumulate:
                memset(ga, 0, fan_in * sizeof(floating))
            for r in range(n):
                for j in range(fan_in):
                    if Zp[r * fan_in + j] < 0:
                        ga[j] += Dp[r * fan_in + j] * Zp[r * fan_in + j]
                        Dp[r * fan_in + j] = Dp[r * fan_in + j] * a[j]
        else:
            # Dp *= act'(Z_i), from the activation before dropout, and the
            # next layer's g = Dp.sum(axis=0), row by row while it is in L1
            A = (aux if dropped else act) + net.act_off[i]
            g = grad + net.bias_off[i - 1]
            if not accumulate:
                memset(g, 0, fan_in * sizeof(floating))
            for r in range(n):
                _activation_derivative(A + r * fan_in, Dp + r * fan_in, fan_in,
                                       net.hidden_act, net.negative_slope)
                _sum_rows(Dp + r * fan_in, 1, fan_in, g, True)
            summed = True


cdef bint _all_finite(const floating *x, intp n) noexcept nogil:
    """np.isfinite(x).all()"""
    cdef intp j
    cdef int finite = 1
    for j in range(n):
        # x - x is 0 for a finite x, NaN for an infinite or NaN one (an AND
        # over the comparisons, which the compiler vectorises)
        finite &= (x[j] - x[j]) == 0
    return finite


cdef inline bint _exact_reciprocal(double divisor) noexcept nogil:
    """Is x / divisor == x * (1 / divisor) for every x? True for powers of two."""
    cdef int exponent
    return frexp(divisor, &exponent) == 0.5


cdef double _penalty(const Net *net, const floating *theta) noexcept nogil:
    """sum_i ||W_i||^2 (the coefficients only)."""
    cdef intp i, size
    cdef double penalty = 0
    for i in range(net.n_layers - 1):
        size = net.units[i] * net.units[i + 1]
        # penalty += W.ravel() @ W.ravel()
        penalty += _dot(<int>size, theta + net.coef_off[i], 1,
                        theta + net.coef_off[i], 1)
    return penalty


cdef inline double _regularised_loss(double loss_sum, double alpha,
                                     double penalty, double sw_sum) noexcept nogil:
    """loss = loss_sum / sw_sum + 0.5 * alpha * sum_i ||W_i||^2 / sw_sum"""
    return loss_sum / sw_sum + (0.5 * alpha) * penalty / sw_sum


# ---------------------------------------------------------------------------
# Optimizer updates: one flat loop over the parameter vector
# ---------------------------------------------------------------------------

cdef struct Opt:
    int solver
    double lr             # current step size (after the schedule)
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double rho            # RMSProp's decay of the squared-gradient average
    double weight_decay   # AdamW's decoupled weight decay
    bint store_velocity   # momentum-0 SGD: write the velocity (see _sgd_update)


cdef Opt _make_opt(tuple opt_params, bint store_velocity) except *:
    """The Opt of the optimizer tuple Python passes (see _train_epoch)."""
    cdef Opt opt
    opt.solver, opt.lr, opt.momentum, opt.nesterov, opt.beta_1, opt.beta_2, \
        opt.epsilon, opt.rho, opt.weight_decay = opt_params
    opt.store_velocity = store_velocity
    return opt


cdef enum:
    # How a gradient sum is divided by the batch's weight (Fin.how)
    FIN_DIVIDE = 0       # the division
    FIN_MULTIPLY = 1     # times the reciprocal: a power of two, exact
    FIN_RECIPROCAL = 2   # _div: the division's bits from the reciprocal


cdef struct Fin:
    # How the raw gradient sum G of a part of the vector becomes the gradient
    # g: g = (G + alpha * theta) / divisor for coefficients (``penalised``),
    # g = G / divisor otherwise, the division as ``how`` says (each way gives
    # the division's bits).
    bint penalised
    int how
    double alpha
    double divisor


cdef inline Fin _fin_for(double alpha, double divisor, bint penalised) noexcept nogil:
    cdef Fin fin
    fin.penalised = penalised and alpha != 0
    fin.alpha = alpha
    fin.divisor = divisor
    if (_exact_reciprocal(divisor)
            and <double><float>divisor == divisor):  # exact in both dtypes
        fin.how = FIN_MULTIPLY
    elif 9.332636185032189e-302 < fabs(divisor) < 1.0715086071862673e+301:
        fin.how = FIN_RECIPROCAL   # (2^-1000 < |divisor| < 2^1000: skmlp_div's range)
    else:
        fin.how = FIN_DIVIDE
    return fin


cdef inline floating _div(floating a, floating b, double y) noexcept nogil:
    """a / b, bit for bit, from y = 1 / (double) b (see _vmath.h); under the
    training kernels' flush-to-zero mode, for 2^-1000 < |b| < 2^1000."""
    if floating is float:
        return skmlp_divf(a, y)
    else:
        return skmlp_div(a, b, y)


# The divisor of a step, as a type: each update loop is compiled once per kind
# (Cython makes one specialisation per type of a fused argument), so that no
# loop carries the arithmetic of both ways.
cdef struct Pow2Divisor:
    double reciprocal    # 1 / divisor, exact: a power of two (FIN_MULTIPLY)

cdef struct AnyDivisor:
    double divisor       # the divisor, rounded to the training dtype
    double reciprocal    # 1 / divisor (FIN_RECIPROCAL: see _div)

ctypedef fused Divisor:
    Pow2Divisor
    AnyDivisor


cdef inline floating _finished(floating G, floating w, floating a,
                               bint penalised, Divisor d) noexcept nogil:
    """The gradient of one parameter from its raw sum G (see Fin)."""
    if penalised:
        G = G + a * w
    if Divisor is Pow2Divisor:
        return G * <floating>d.reciprocal
    else:
        return _div(G, <floating>d.divisor, d.reciprocal)


cdef inline skmlp_finish _finish_of(Fin fin, Divisor d) noexcept nogil:
    """_finished's arguments for the float64 loops of _steps_avx512.h."""
    cdef skmlp_finish f
    f.penalised = fin.penalised
    f.alpha = fin.alpha
    f.reciprocal = d.reciprocal
    if Divisor is Pow2Divisor:
        f.by_pow2 = True
        f.divisor = 0
    else:
        f.by_pow2 = False
        f.divisor = d.divisor
    return f


cdef void _finish_loop(floating *grad, const floating *theta, intp n, Fin fin,
                       Divisor d) noexcept nogil:
    cdef intp j
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    for j in range(n):
        grad[j] = _finished(grad[j], theta[j], a, pen, d)


cdef void _finish_part(floating *grad, const floating *theta, intp n,
                       Fin fin) noexcept nogil:
    """grad = its finished value (see Fin), in place."""
    cdef intp j
    cdef floating a = <floating>fin.alpha
    cdef floating s = <floating>fin.divisor
    cdef Pow2Divisor by_pow2
    cdef AnyDivisor by_any
    if fin.how == FIN_MULTIPLY:
        by_pow2.reciprocal = 1 / fin.divisor
        _finish_loop(grad, theta, n, fin, by_pow2)
    elif fin.how == FIN_RECIPROCAL:
        by_any.divisor = <double>s
        by_any.reciprocal = 1 / by_any.divisor
        _finish_loop(grad, theta, n, fin, by_any)
    else:
        for j in range(n):
            grad[j] = (grad[j] + a * theta[j] if fin.penalised else grad[j]) / s


cdef void _finish(const Net *net, const floating *theta,
                  floating *grad, double alpha, double sw_sum) noexcept nogil:
    """Add the L2 term and normalise the whole gradient, in place (L-BFGS).

    grad_W = (G + alpha * W) / sw_sum;  grad_b = g / sw_sum;
    grad_a = ga / sw_sum (PReLU slopes carry no penalty). (A training step
    does the same inside the optimizer's loop, without storing the result.)
    """
    cdef intp i, begin
    cdef Fin weights = _fin_for(alpha, sw_sum, True)
    cdef Fin plain = _fin_for(alpha, sw_sum, False)
    for i in range(net.n_layers - 1):
        begin = net.coef_off[i]
        _finish_part(grad + begin, theta + begin, net.units[i] * net.units[i + 1],
                     weights)
        begin = net.bias_off[i]
        _finish_part(grad + begin, theta + begin, net.units[i + 1], plain)
        if net.hidden_act == PRELU and i > 0:
            begin = net.slope_off[i]
            _finish_part(grad + begin, theta + begin, net.units[i], plain)


# Each update below finishes the gradient as it goes (see Fin), so the step
# reads the raw gradient once and writes nothing but the parameters and the
# optimizer state. The divisor's kind is a type (Divisor) and ``pen`` a
# loop-invariant flag: one vectorised loop per combination.

cdef void _sgd_update(floating *theta, const floating *grad, floating *velocity,
                      intp n, Fin fin, Divisor d, double lr, double momentum,
                      bint nesterov, bint store_velocity) noexcept nogil:
    """v = momentum * v - lr * g; theta += momentum * v - lr * g (Nesterov) or v.

    With momentum 0 the old velocity is not read, and the new one
    (v = -lr * g) is written only when ``store_velocity``: no step reads it,
    so the epoch loop stores it at its last step, for whoever continues the
    training (scikit-learn keeps it as the optimizer's state).
    """
    cdef intp j
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    cdef floating mu = <floating>momentum
    cdef floating eta = <floating>lr
    cdef floating zero = 0    # (a literal 0 would make the subtraction double)
    cdef floating g, v
    if momentum == 0 and not store_velocity:
        for j in range(n):
            g = _finished(grad[j], theta[j], a, pen, d)
            v = zero - eta * g
            theta[j] += v
    elif momentum == 0:
        for j in range(n):
            g = _finished(grad[j], theta[j], a, pen, d)
            v = zero - eta * g
            velocity[j] = v
            theta[j] += v
    elif nesterov:
        for j in range(n):
            g = _finished(grad[j], theta[j], a, pen, d)
            v = mu * velocity[j] - eta * g
            velocity[j] = v
            theta[j] += mu * v - eta * g
    else:
        for j in range(n):
            g = _finished(grad[j], theta[j], a, pen, d)
            v = mu * velocity[j] - eta * g
            velocity[j] = v
            theta[j] += v


cdef void _adam_update(floating *theta, const floating *grad, floating *m,
                       floating *v, intp n, Fin fin, Divisor d, double lr_t,
                       double beta_1, double beta_2, double epsilon) noexcept nogil:
    """Adam as scikit-learn writes it, bias correction folded into lr_t:

    m = beta_1 * m + (1 - beta_1) * g;  v = beta_2 * v + (1 - beta_2) * g ** 2
    theta += -lr_t * m / (sqrt(v) + epsilon)
    The step is formed in float64 (as NumPy does with a float64 step size).
    In float64 the AVX-512 build does the first multiple of 8 parameters in
    _steps_avx512.h, the same operations with the division's bits from the
    reciprocal.
    """
    cdef intp j, done = 0
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    cdef floating b1 = <floating>beta_1
    cdef floating b2 = <floating>beta_2
    cdef floating c1 = <floating>(1 - beta_1)
    cdef floating c2 = <floating>(1 - beta_2)
    cdef floating eps = <floating>epsilon
    cdef floating g
    if floating is double:
        done = skmlp_adam_f64_head(theta, grad, m, v, n, _finish_of(fin, d), lr_t,
                                   b1, b2, c1, c2, eps)
    for j in range(done, n):
        g = _finished(grad[j], theta[j], a, pen, d)
        m[j] = b1 * m[j] + c1 * g
        v[j] = b2 * v[j] + c2 * (g * g)
        theta[j] = <floating>(<double>theta[j]
                              + (-lr_t * <double>m[j]) / <double>(_sqrt(v[j]) + eps))


cdef void _adagrad_update(floating *theta, const floating *grad, floating *acc,
                          intp n, Fin fin, Divisor d, double lr,
                          double epsilon) noexcept nogil:
    """AdaGrad (PyTorch's rule, no lr decay): s += g ** 2; theta -= lr * g / (sqrt(s) + eps).

    In float64 the AVX-512 build does the first multiple of 8 parameters in
    _steps_avx512.h (see _adam_update)."""
    cdef intp j, done = 0
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    cdef floating eta = <floating>lr
    cdef floating eps = <floating>epsilon
    cdef floating g
    if floating is double:
        done = skmlp_rms_f64_head(theta, grad, acc, n, _finish_of(fin, d), True,
                                  eta, 1.0, 1.0, eps)
    for j in range(done, n):
        g = _finished(grad[j], theta[j], a, pen, d)
        acc[j] += g * g
        theta[j] -= eta * g / (_sqrt(acc[j]) + eps)


cdef void _rmsprop_update(floating *theta, const floating *grad, floating *acc,
                          intp n, Fin fin, Divisor d, double lr, double rho,
                          double epsilon) noexcept nogil:
    """RMSProp (PyTorch's rule, no momentum, not centred):

    s = rho * s + (1 - rho) * g ** 2;  theta -= lr * g / (sqrt(s) + eps)
    In float64 the AVX-512 build does the first multiple of 8 parameters in
    _steps_avx512.h (see _adam_update).
    """
    cdef intp j, done = 0
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    cdef floating eta = <floating>lr
    cdef floating decay = <floating>rho
    cdef floating c = <floating>(1 - rho)
    cdef floating eps = <floating>epsilon
    cdef floating g
    if floating is double:
        done = skmlp_rms_f64_head(theta, grad, acc, n, _finish_of(fin, d), False,
                                  eta, decay, c, eps)
    for j in range(done, n):
        g = _finished(grad[j], theta[j], a, pen, d)
        acc[j] = decay * acc[j] + c * (g * g)
        theta[j] -= eta * g / (_sqrt(acc[j]) + eps)


cdef void _adamw_update(floating *theta, const floating *grad, floating *m,
                        floating *v, intp n, Fin fin, Divisor d, long long t, double lr,
                        double beta_1, double beta_2, double epsilon,
                        double weight_decay) noexcept nogil:
    """AdamW (PyTorch's rule; Loshchilov & Hutter's decoupled weight decay):

    theta *= 1 - lr * weight_decay
    m = beta_1 * m + (1 - beta_1) * g;  v = beta_2 * v + (1 - beta_2) * g ** 2
    theta -= lr / (1 - beta_1 ** t) * m / (sqrt(v) / sqrt(1 - beta_2 ** t) + eps)
    In float64 the AVX-512 build does the first multiple of 8 parameters in
    _steps_avx512.h (see _adam_update).
    """
    cdef intp j, done = 0
    cdef floating a = <floating>fin.alpha
    cdef bint pen = fin.penalised
    cdef floating b1 = <floating>beta_1
    cdef floating b2 = <floating>beta_2
    cdef floating c1 = <floating>(1 - beta_1)
    cdef floating c2 = <floating>(1 - beta_2)
    cdef floating eps = <floating>epsilon
    cdef floating decay = <floating>(1 - lr * weight_decay)
    cdef floating step = <floating>(lr / (1 - pow(beta_1, <double>t)))
    cdef floating root_bc2 = <floating>sqrt(1 - pow(beta_2, <double>t))
    cdef floating g
    if floating is double:
        done = skmlp_adamw_f64_head(theta, grad, m, v, n, _finish_of(fin, d),
                                    decay, step, root_bc2, b1, b2, c1, c2, eps)
    for j in range(done, n):
        g = _finished(grad[j], theta[j], a, pen, d)
        theta[j] = theta[j] * decay
        m[j] = b1 * m[j] + c1 * g
        v[j] = b2 * v[j] + c2 * (g * g)
        theta[j] -= step * m[j] / (_sqrt(v[j]) / root_bc2 + eps)


cdef void _update_by(const Opt *opt, floating *theta, const floating *grad,
                     floating *state_1, floating *state_2, intp n, Fin fin,
                     Divisor d, long long t) noexcept nogil:
    cdef double lr_t
    if opt.solver == SGD:
        _sgd_update(theta, grad, state_1, n, fin, d, opt.lr, opt.momentum,
                    opt.nesterov, opt.store_velocity)
    elif opt.solver == ADAM:
        lr_t = (opt.lr * sqrt(1 - pow(opt.beta_2, <double>t))
                / (1 - pow(opt.beta_1, <double>t)))
        _adam_update(theta, grad, state_1, state_2, n, fin, d, lr_t, opt.beta_1,
                     opt.beta_2, opt.epsilon)
    elif opt.solver == ADAGRAD:
        _adagrad_update(theta, grad, state_1, n, fin, d, opt.lr, opt.epsilon)
    elif opt.solver == RMSPROP:
        _rmsprop_update(theta, grad, state_1, n, fin, d, opt.lr, opt.rho,
                        opt.epsilon)
    else:
        _adamw_update(theta, grad, state_1, state_2, n, fin, d, t, opt.lr,
                      opt.beta_1, opt.beta_2, opt.epsilon, opt.weight_decay)


cdef void _update(const Opt *opt, floating *theta, const floating *grad,
                  floating *state_1, floating *state_2, intp n, Fin fin,
                  long long t) noexcept nogil:
    """Apply step number t (1, 2, ...) to n parameters (any range of the vector),
    from their raw gradient sums (finished as ``fin`` says)."""
    cdef Pow2Divisor by_pow2
    cdef AnyDivisor by_any
    if n <= 0:
        return
    if fin.how == FIN_DIVIDE:
        # A divisor outside _div's range: the division in a pass of its own
        # (over the workspace's gradient, which nothing reads after the step),
        # then the update as if by 1.
        _finish_part(<floating *>grad, theta, n, fin)
        fin = _fin_for(0, 1, False)
    if fin.how == FIN_MULTIPLY:
        by_pow2.reciprocal = 1 / fin.divisor
        _update_by(opt, theta, grad, state_1, state_2, n, fin, by_pow2, t)
    else:
        # (as _finish_part: the divisor rounded to the dtype, its reciprocal)
        by_any.divisor = <double><floating>fin.divisor
        by_any.reciprocal = 1 / by_any.divisor
        _update_by(opt, theta, grad, state_1, state_2, n, fin, by_any, t)


cdef inline bint _sums_in_update(const Opt *opt, Fin fin) noexcept nogil:
    """Does _update_summing step these coefficients: SGD with momentum,
    penalised, the batch weight a power of two (every batch of a power-of-two
    size without sample weights)?"""
    return (opt.solver == SGD and opt.momentum != 0 and fin.penalised
            and fin.how == FIN_MULTIPLY)


cdef inline double _update_summing(const Opt *opt, floating *theta,
                                   const floating *grad, floating *velocity,
                                   intp n, Fin fin) noexcept nogil:
    """_update of n coefficients where _sums_in_update says so, returning
    the sum of their squares before the step, summed in the same pass
    (_steps_summing.h)."""
    if floating is float:
        return skmlp_sgd_summing_f32(theta, grad, velocity, n, <float>fin.alpha,
                                     <float>(1 / fin.divisor), <float>opt.lr,
                                     <float>opt.momentum, opt.nesterov)
    else:
        return skmlp_sgd_summing_f64(theta, grad, velocity, n, fin.alpha,
                                     1 / fin.divisor, opt.lr, opt.momentum,
                                     opt.nesterov)


cdef inline void _update_part(const Opt *opt, floating *theta,
                              const floating *grad, floating *state_1,
                              floating *state_2, intp begin, intp end, Fin fin,
                              long long t) noexcept nogil:
    _update(opt, theta + begin, grad + begin, state_1 + begin,
            state_2 + begin if state_2 != NULL else NULL, end - begin, fin, t)


# A step updates the coefficients in chunks that fit in the L1 cache, each right
# after its part of the L2 penalty is summed (the penalty enters the batch's
# loss, computed before the step), so that the step reads them from memory
# once, not twice; SGD with momentum sums it in the update's own pass
# (_update_summing).
cdef enum:
    STEP_CHUNK = 4096


cdef double _step(const Net *net, const Opt *opt, floating *theta,
                  const floating *grad, floating *state_1, floating *state_2,
                  double alpha, double sw_sum, long long t,
                  bint coefs_done) noexcept nogil:
    """One optimizer step from the raw gradient sums of a batch: for each
    coefficient, bias and slope part of the vector, its finished gradient
    (with the L2 term on coefficients) and the update, in one pass.

    Returns sum_i ||W_i||^2 of the coefficients before the step when alpha
    != 0 (else 0), for the batch's loss. With ``coefs_done`` the coefficients
    have taken their step already (_backward's fused SGD step): only the
    biases and slopes are stepped, and 0 is returned.
    """
    cdef intp i, begin, end, lo, hi
    cdef double penalty = 0
    cdef Fin weights = _fin_for(alpha, sw_sum, True)
    cdef Fin plain = _fin_for(alpha, sw_sum, False)
    for i in range(net.n_layers - 1):
        begin = net.coef_off[i]
        end = begin + net.units[i] * net.units[i + 1]
        lo = end if coefs_done else begin
        while lo < end:
            hi = lo + STEP_CHUNK if lo + STEP_CHUNK < end else end
            if _sums_in_update(opt, weights):
                # the penalty summed by the update's own pass
                penalty += _update_summing(opt, theta + lo, grad + lo,
                                           state_1 + lo, hi - lo, weights)
            else:
                if alpha != 0:
                    penalty += _dot(<int>(hi - lo), theta + lo, 1, theta + lo, 1)
                _update_part(opt, theta, grad, state_1, state_2, lo, hi, weights, t)
            lo = hi
        begin = net.bias_off[i]
        _update_part(opt, theta, grad, state_1, state_2, begin,
                     begin + net.units[i + 1], plain, t)
        if net.hidden_act == PRELU and i > 0:
            begin = net.slope_off[i]
            _update_part(opt, theta, grad, state_1, state_2, begin,
                         begin + net.units[i], plain, t)
    return penalty


cdef double _step_penalty(const Net *net, const floating *theta) noexcept nogil:
    """sum_i ||W_i||^2 summed as _step sums it for momentum-0 SGD (BLAS's dot,
    chunk by chunk), for a step whose coefficients are updated elsewhere
    (the fused SGD step)."""
    cdef intp i, lo, hi, end
    cdef double penalty = 0
    for i in range(net.n_layers - 1):
        lo = net.coef_off[i]
        end = lo + net.units[i] * net.units[i + 1]
        while lo < end:
            hi = lo + STEP_CHUNK if lo + STEP_CHUNK < end else end
            penalty += _dot(<int>(hi - lo), theta + lo, 1, theta + lo, 1)
            lo = hi
    return penalty


def _py_quotients(double[::1] a, const double[::1] b):
    """a /= b in place as Adam's float64 step divides, under the training
    kernels' flush-to-zero mode (for the tests: the AVX-512 build divides
    without the divider, see _steps_avx512.h)."""
    cdef unsigned long fp_state
    if a.shape[0] != b.shape[0]:
        raise ValueError("a and b must have the same length")
    if a.shape[0] == 0:
        return
    with nogil:
        fp_state = skmlp_ftz_on()
        skmlp_quotients(&a[0], &b[0], a.shape[0])
        skmlp_ftz_restore(fp_state)


def _py_reciprocals(double[::1] b):
    """b = 1 / b in place as Adam's float64 step computes the reciprocal of
    its divisor (for the tests; see _py_quotients)."""
    cdef unsigned long fp_state
    if b.shape[0] == 0:
        return
    with nogil:
        fp_state = skmlp_ftz_on()
        skmlp_reciprocals(&b[0], b.shape[0])
        skmlp_ftz_restore(fp_state)


def _py_update_steps(tuple opt_params, floating[::1] theta,
                     const floating[::1] grad, floating[::1] state_1,
                     floating[::1] state_2, double alpha, double sw_sum,
                     long long t, long long steps):
    """``steps`` optimizer steps t + 1, ..., t + steps of the whole vector as
    coefficients (the L2 term on every entry), each from the same raw
    gradient sum ``grad``, through _update under the training kernels'
    flush-to-zero mode; returns t + steps. For the tests, and for the
    benchmarks' update-only time (benchmarks/run.py)."""
    cdef Opt opt = _make_opt(opt_params, True)
    cdef intp n = theta.shape[0]
    cdef long long s
    cdef unsigned long fp_state
    cdef Fin fin = _fin_for(alpha, sw_sum, True)
    cdef bint two = opt.solver == ADAM or opt.solver == ADAMW
    if (grad.shape[0] != n or state_1.shape[0] != n
            or state_2.shape[0] != (n if two else 0)):
        raise ValueError("grad and the optimizer state must have theta's length "
                         "(state_2: Adam and AdamW only)")
    if steps < 0 or fin.how == FIN_DIVIDE or sw_sum < 0:
        raise ValueError("steps must be >= 0 and sw_sum within 2^-1000..2^1000")
    if n == 0:
        return t + steps
    with nogil:
        fp_state = skmlp_ftz_on()
        for s in range(steps):
            _update(&opt, &theta[0], &grad[0], &state_1[0],
                    &state_2[0] if two else NULL, n, fin, t + s + 1)
        skmlp_ftz_restore(fp_state)
    return t + steps


# ---------------------------------------------------------------------------
# Entry points called from Python
# ---------------------------------------------------------------------------

cdef class NetSpec:
    """The static description of a network the kernels need (built once per fit).

    Parameters: intp arrays ``units``, ``coef_off``, ``bias_off``,
    ``slope_off`` (length n_layers; used with PReLU), a float64 array
    ``dropout`` (rate per layer, zeros for input and output), the activation
    and loss codes, ``negative_slope`` and ``huber_delta``.
    """
    cdef const intp[::1] units
    cdef const intp[::1] coef_off
    cdef const intp[::1] bias_off
    cdef const intp[::1] slope_off
    cdef const double[::1] dropout
    cdef bint has_dropout
    cdef public int hidden_act
    cdef public int out_act
    cdef public int loss
    cdef public double negative_slope
    cdef public double huber_delta
    # BLAS has OpenBLAS's small-matrix kernels and runs one thread for this
    # network (set by the caller): products take the forms that suit those
    # kernels (_product, _output_delta_transposed)
    cdef public bint small_kernels

    def __init__(self, units, coef_off, bias_off, slope_off, dropout,
                 int hidden_act, int out_act, int loss, double negative_slope,
                 double huber_delta):
        self.units = units
        self.coef_off = coef_off
        self.bias_off = bias_off
        self.slope_off = slope_off
        self.dropout = dropout
        self.has_dropout = any(r > 0 for r in dropout)
        self.hidden_act = hidden_act
        self.out_act = out_act
        self.loss = loss
        self.negative_slope = negative_slope
        self.huber_delta = huber_delta
        self.small_kernels = False

    cdef Net make(self, const intp[::1] act_off, bint training,
                  uint64_t *rng):
        cdef Net net
        net.n_layers = self.units.shape[0]
        net.units = &self.units[0]
        net.coef_off = &self.coef_off[0]
        net.bias_off = &self.bias_off[0]
        net.slope_off = &self.slope_off[0]
        net.act_off = &act_off[0]
        net.dropout = &self.dropout[0] if (training and self.has_dropout and rng != NULL) else NULL
        net.rng = rng
        net.hidden_act = self.hidden_act
        net.out_act = self.out_act
        net.loss = self.loss
        net.negative_slope = self.negative_slope
        net.huber_delta = self.huber_delta
        net.small_kernels = self.small_kernels
        net.coef_scale = 1
        return net

    def output_delta_transposed(self, intp rows, bint is_float):
        """Does a batch of ``rows`` rows store its output delta transposed
        (_output_delta_transposed)? For the tests."""
        cdef Net net = self.make(self.units, False, NULL)
        return _output_delta_transposed(&net, rows, is_float)


cdef inline const floating *_data_ptr(const floating[::1] data) noexcept nogil:
    """Start of an array, NULL when it holds no entry."""
    return &data[0] if data.shape[0] > 0 else NULL


cdef inline floating *_buf_ptr(floating[::1] data) noexcept nogil:
    """Start of a workspace, NULL when it is unused (empty)."""
    return &data[0] if data.shape[0] > 0 else NULL


cdef Rows _make_rows(bint sparse, const intp[::1] indices,
                     const intp[::1] indptr):
    cdef Rows rows
    rows.n = 0
    rows.sparse = sparse
    rows.ids = NULL
    rows.start = 0
    rows.indices = &indices[0] if indices.shape[0] > 0 else NULL
    rows.indptr = &indptr[0] if indptr.shape[0] > 0 else NULL
    return rows


# The gather of a batch's shuffled rows asks for the row it will copy
# GATHER_AHEAD rows later while it copies the current one, so that the copies
# wait less on memory (rows of Fashion-MNIST are 49 cache lines, at random
# places of a 188 MB array).
cdef enum:
    GATHER_AHEAD = 8
    CACHE_LINE = 64

cdef inline void _prefetch_row(const void *row, size_t nbytes) noexcept nogil:
    cdef size_t off = 0
    while off < nbytes:
        skmlp_prefetch(<const char *>row + off)
        off += CACHE_LINE


cdef inline void _gather_row(const floating *X, intp n_features,
                             const intp *order, intp pos, intp n_samples,
                             floating *dest) noexcept nogil:
    """dest = X[order[pos]] (a row of n_features), asking for
    X[order[pos + GATHER_AHEAD]] on the way."""
    if pos + GATHER_AHEAD < n_samples:
        _prefetch_row(X + order[pos + GATHER_AHEAD] * n_features,
                      n_features * sizeof(floating))
    memcpy(dest, X + order[pos] * n_features, n_features * sizeof(floating))


def _py_gather_epoch(const floating[:, ::1] X, const intp[::1] order,
                     floating[:, ::1] X_buf):
    """Gather the rows of X in ``order``, batch after batch of X_buf's rows,
    into X_buf, as an epoch of training does (the last batch may be short);
    returns the number of batches. For the tests and the benchmarks'
    gather-only time (benchmarks/run.py)."""
    cdef intp n_samples = order.shape[0], batch = X_buf.shape[0]
    cdef intp n_features = X.shape[1], start, r, n, batches = 0
    if X_buf.shape[1] != n_features or batch == 0 or n_features == 0:
        raise ValueError("X_buf must have X's columns and at least one row, "
                         "X at least one column")
    for r in range(n_samples):
        if not 0 <= order[r] < X.shape[0]:
            raise ValueError("order has an index outside X's rows")
    with nogil:
        start = 0
        while start < n_samples:
            n = batch if start + batch <= n_samples else n_samples - start
            for r in range(n):
                _gather_row(&X[0, 0], n_features, &order[0], start + r, n_samples,
                            &X_buf[r, 0])
            batches += 1
            start += n
    return batches


cdef intp _last_step_start(const intp[::1] order, intp batch_size,
                           const floating[::1] sample_weight) noexcept nogil:
    """Start of the epoch's last batch that takes a step: the last batch, or
    with sample weights the last one whose weights do not sum to 0."""
    cdef intp n = order.shape[0]
    cdef intp start = ((n - 1) // batch_size) * batch_size if n > 0 else 0
    cdef intp stop = n, r
    cdef double total
    if sample_weight.shape[0] == 0:
        return start
    while start >= 0:
        total = 0
        for r in range(start, stop):
            total += sample_weight[order[r]]
        if total != 0:
            return start
        stop = start
        start -= batch_size
    return -1


# The fused SGD step with L2 decays W to d * W, d = 1 - lr * alpha / n, at
# every step. As the product's beta that would cost a pass of the BLAS over W
# before each product (OpenBLAS scales C by beta separately unless beta is 1 or
# 0), and d would be rounded to float32 (below 6e-8, as with scikit-learn's
# float32 defaults, to 1: no decay at all). Instead theta holds V = W / c and
# the decay goes into the scalar c (net.coef_scale, a double): the step is
# V = V + (step / c') A.T @ D with c' = c * d and beta 1, and the products that
# read W multiply by c. c is folded back into theta (_fold_coef_scale) before
# a step that is not fused and at the end of the epoch; and a step that would
# take it below MIN_COEF_SCALE (a strong decay) uses beta = c * d and resets it
# to 1 instead, so that V never grows far beyond W.
cdef double MIN_COEF_SCALE = 0.5


cdef void _fold_coef_scale(Net *net, floating *theta) noexcept nogil:
    """theta's coefficients *= net.coef_scale, which becomes 1."""
    cdef intp i, j, begin, end
    cdef double c = net.coef_scale
    if c == 1:
        return
    for i in range(net.n_layers - 1):
        begin = net.coef_off[i]
        end = begin + net.units[i] * net.units[i + 1]
        for j in range(begin, end):
            theta[j] = <floating>(theta[j] * c)
    net.coef_scale = 1


def _train_epoch(
    NetSpec spec,
    double alpha,
    # optimizer: code, step size, momentum, nesterov, beta_1, beta_2, epsilon,
    # rho, weight_decay (a tuple; unused entries are ignored)
    tuple opt_params,
    long long t,                          # optimizer steps taken so far
    # data: dense X (n, n_features), or CSR parts with X of shape (0, 0)
    const floating[:, ::1] X,
    const floating[::1] X_data,
    const intp[::1] X_indices,
    const intp[::1] X_indptr,
    bint sparse,
    const floating[:, ::1] Y,             # IN (n, n_outputs), or (0, n_outputs)
    const intp[::1] y_class,              # IN (n,) class of each sample, or empty
    const floating[::1] sample_weight,    # IN (n,) or empty for unweighted
    const intp[::1] order,                # IN sample order of this epoch
    bint gather,                          # order is not 0..n-1: gather rows
    intp batch_size,
    floating[::1] theta,                  # IN/OUT parameters
    floating[::1] grad,                   # OUT workspace, theta's layout
    floating[::1] state_1,                # IN/OUT optimizer state
    floating[::1] state_2,                # IN/OUT optimizer state (or empty)
    uint64_t[::1] rng_state,              # IN/OUT dropout generator (or empty)
    # workspace
    const intp[::1] act_off,
    floating[::1] act,                    # OUT (batch_size rows per layer)
    floating[::1] delta,                  # OUT
    floating[::1] aux,                    # OUT PReLU / dropout (or empty)
    floating[::1] mask,                   # OUT dropout (or empty)
    floating[:, ::1] X_buf,               # OUT (batch_size, n_features), dense
    floating[:, ::1] Y_buf,               # OUT (batch_size, n_outputs)
    floating[::1] sw_buf,                 # OUT (batch_size,) when weighted
):
    """One epoch of mini-batch training; returns (sum of batch_loss * batch_len,
    t, whether every parameter is finite after it).

    Targets come either as the dense output-layer matrix ``Y`` or, for
    single-output classification, as each sample's class index ``y_class``
    (one value per sample instead of n_outputs), from which each batch's
    one-hot rows (a 0/1 column for a binary problem) are written into
    ``Y_buf``.

    ``batch_loss`` is the mean (weighted) loss of a batch plus its L2 term, as
    scikit-learn reports it; the caller divides the sum by n_samples. A batch
    whose sample weights are all 0 is skipped (no step, loss 0; scikit-learn
    divides by its zero weight sum).

    The epoch runs with flush-to-zero on in the calling thread (restored on
    return): subnormal values (|x| < 1.2e-38 in float32) become 0. They arise
    in float32 from confident softmax outputs and would otherwise make every
    product they enter ~100x slower; as gradient contributions they are far
    below the rounding of any parameter update, so the model is unchanged in
    practice (scikit-learn's NumPy arithmetic keeps them).
    """
    cdef uint64_t *rng = &rng_state[0] if rng_state.shape[0] > 0 else NULL
    cdef Net net = spec.make(act_off, True, rng)
    cdef Opt opt = _make_opt(opt_params, False)
    cdef Rows rows = _make_rows(sparse, X_indices, X_indptr)
    cdef intp n_samples = order.shape[0]
    cdef intp n_features = net.units[0]
    cdef intp n_out = net.units[net.n_layers - 1]
    cdef intp n_params = theta.shape[0]
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef bint labels = y_class.shape[0] > 0
    cdef const floating *Xb
    cdef const floating *Yb
    cdef const floating *swb
    cdef intp start, stop, n, r, idx
    cdef double batch_loss, sw_sum, penalty, accumulated = 0
    cdef unsigned long fp_state
    cdef bint finite
    # Momentum-0 SGD on dense input steps the coefficients inside the
    # backward pass (see _backward), except at the epoch's last step, which
    # also stores the velocity. The two round differently, at the last bit.
    cdef bint fuse = (opt.solver == SGD and opt.momentum == 0 and not sparse)
    cdef bint fused
    cdef double scale_after, step_alpha = 0, step_beta = 0
    cdef intp last_start = _last_step_start(order, batch_size, sample_weight)

    with nogil:
        fp_state = skmlp_ftz_on()
        start = 0
        while start < n_samples:
            stop = start + batch_size
            if stop > n_samples:
                stop = n_samples
            n = stop - start
            rows.n = n
            rows.ids = &order[start]
            Xb = NULL
            swb = NULL
            if gather:
                for r in range(n):
                    idx = order[start + r]
                    if not sparse:
                        _gather_row(&X[0, 0], n_features, &order[0], start + r,
                                    n_samples, &X_buf[r, 0])
                    if not labels:
                        memcpy(&Y_buf[r, 0], &Y[idx, 0], n_out * sizeof(floating))
                    if weighted:
                        sw_buf[r] = sample_weight[idx]
                if not sparse:
                    Xb = &X_buf[0, 0]
                Yb = &Y_buf[0, 0]
                if weighted:
                    swb = &sw_buf[0]
            else:
                if not sparse:
                    Xb = &X[start, 0]
                Yb = &Y_buf[0, 0] if labels else &Y[start, 0]
                if weighted:
                    swb = &sample_weight[start]
            if labels:
                # Y_buf[r] = one-hot row of the sample's class (0/1 if binary)
                for r in range(n):
                    idx = order[start + r]
                    if n_out == 1:
                        Y_buf[r, 0] = <floating>y_class[idx]
                    else:
                        memset(&Y_buf[r, 0], 0, n_out * sizeof(floating))
                        Y_buf[r, y_class[idx]] = 1
            if sparse:
                Xb = _data_ptr(X_data)
            if weighted:
                sw_sum = 0
                for r in range(n):
                    sw_sum += swb[r]
            else:
                sw_sum = n
            if sw_sum == 0:
                # a batch of weight 0 carries nothing to learn (its mean loss
                # and gradient are 0 / 0): no step
                start = stop
                continue

            # the epoch's last step stores the velocity (see _sgd_update)
            opt.store_velocity = start == last_start
            fused = fuse and not opt.store_velocity
            if not fused:
                _fold_coef_scale(&net, &theta[0])
            _forward(&net, &theta[0], Xb, rows, &act[0], _buf_ptr(aux),
                     _buf_ptr(mask))
            batch_loss = _loss_output_delta(&net, Yb, swb, n, &act[0], &delta[0])
            penalty = 0
            if fused:
                if alpha != 0:
                    penalty = (net.coef_scale * net.coef_scale
                               * _step_penalty(&net, &theta[0]))
                # W = d * W - (lr / n) * A.T @ D with W = c * V (see
                # MIN_COEF_SCALE): V += (-lr / n / c') * A.T @ D, c' = c * d
                scale_after = net.coef_scale * (1 - opt.lr * alpha / sw_sum)
                if scale_after >= MIN_COEF_SCALE:
                    step_alpha = -opt.lr / sw_sum / scale_after
                    step_beta = 1
                else:
                    step_alpha = -opt.lr / sw_sum
                    step_beta = scale_after
                    scale_after = 1
            _backward(&net, &theta[0], Xb, rows, &act[0], &delta[0],
                      _buf_ptr(aux), _buf_ptr(mask), &grad[0], False,
                      &theta[0] if fused else NULL,
                      <floating>step_alpha, <floating>step_beta)
            if fused:
                net.coef_scale = scale_after
            t += 1
            penalty += _step(&net, &opt, &theta[0], &grad[0], &state_1[0],
                             &state_2[0] if state_2.shape[0] > 0 else NULL,
                             alpha, sw_sum, t, fused)
            accumulated += _regularised_loss(batch_loss, alpha, penalty, sw_sum) * n
            start = stop
        _fold_coef_scale(&net, &theta[0])
        finite = _all_finite(&theta[0], n_params)
        skmlp_ftz_restore(fp_state)
    return accumulated, t, finite


def _loss_grad(
    NetSpec spec,
    double alpha,
    const floating[:, ::1] X,
    const floating[::1] X_data,
    const intp[::1] X_indices,
    const intp[::1] X_indptr,
    bint sparse,
    const floating[:, ::1] Y,             # IN (n, n_outputs)
    const floating[::1] sample_weight,    # IN (n,) or empty
    const floating[::1] theta,            # IN
    floating[::1] grad,                   # OUT (or empty: loss only)
    uint64_t[::1] rng_state,              # IN dropout seed (or empty: none)
    intp cap,                             # rows per block of the workspaces
    const intp[::1] act_off,
    floating[::1] act,                    # OUT workspace
    floating[::1] delta,                  # OUT workspace
    floating[::1] aux,                    # OUT workspace (or empty)
    floating[::1] mask,                   # OUT workspace (or empty)
):
    """Loss and gradient over the whole data set; returns the loss.

    Rows are processed in blocks of ``cap``; gradients are summed over blocks
    and normalised once, which equals the full-batch gradient. With an empty
    ``grad`` only the loss is computed. With a non-empty ``rng_state`` the
    dropout masks are drawn from a copy of it, so repeated calls with the same
    state see the same masks (a fixed-mask objective, for gradient checks).
    Like ``_train_epoch``, a call that computes the gradient flushes subnormal
    numbers to zero; a loss-only call (evaluation sets) computes exactly.
    """
    cdef uint64_t seed = rng_state[0] if rng_state.shape[0] > 0 else 0
    cdef Net net = spec.make(act_off, rng_state.shape[0] > 0, &seed)
    cdef Rows rows = _make_rows(sparse, X_indices, X_indptr)
    cdef intp n_samples = Y.shape[0]
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef bint with_grad = grad.shape[0] > 0
    cdef intp start, stop, r
    cdef const floating *Xb
    cdef const floating *swb
    cdef double loss_sum = 0, sw_sum = 0, result, penalty = 0
    cdef unsigned long fp_state = 0

    with nogil:
        if with_grad:
            fp_state = skmlp_ftz_on()
        start = 0
        while start < n_samples:
            stop = start + cap
            if stop > n_samples:
                stop = n_samples
            rows.n = stop - start
            rows.start = start
            Xb = _data_ptr(X_data) if sparse else &X[start, 0]
            swb = &sample_weight[start] if weighted else NULL
            _forward(&net, &theta[0], Xb, rows, &act[0], _buf_ptr(aux),
                     _buf_ptr(mask))
            loss_sum += _loss_output_delta(&net, &Y[start, 0], swb, rows.n,
                                           &act[0], &delta[0])
            if with_grad:
                _backward(&net, &theta[0], Xb, rows, &act[0], &delta[0],
                          _buf_ptr(aux), _buf_ptr(mask), &grad[0], start > 0,
                          NULL, 0, 0)
            start = stop
        if weighted:
            for r in range(n_samples):
                sw_sum += sample_weight[r]
        else:
            sw_sum = n_samples
        if alpha != 0:
            penalty = _penalty(&net, &theta[0])
        result = _regularised_loss(loss_sum, alpha, penalty, sw_sum)
        if with_grad:
            _finish(&net, &theta[0], &grad[0], alpha, sw_sum)
        if with_grad:
            skmlp_ftz_restore(fp_state)
    return result


def _predict(
    NetSpec spec,
    const floating[:, ::1] X,
    const floating[::1] X_data,
    const intp[::1] X_indices,
    const intp[::1] X_indptr,
    bint sparse,
    const floating[::1] theta,            # IN
    intp cap,
    const intp[::1] act_off,
    floating[::1] act,                    # OUT workspace
    floating[::1] aux,                    # OUT workspace (or empty)
    floating[:, ::1] out,                 # OUT (n, n_outputs)
):
    """out = forward pass of X (no dropout), in row blocks of ``cap``."""
    cdef Net net = spec.make(act_off, False, NULL)
    cdef Rows rows = _make_rows(sparse, X_indices, X_indptr)
    cdef intp n_samples = out.shape[0]
    cdef intp n_out = out.shape[1]
    cdef intp last = net.n_layers - 1
    cdef intp start, stop
    cdef const floating *Xb
    with nogil:
        start = 0
        while start < n_samples:
            stop = start + cap
            if stop > n_samples:
                stop = n_samples
            rows.n = stop - start
            rows.start = start
            Xb = _data_ptr(X_data) if sparse else &X[start, 0]
            _forward(&net, &theta[0], Xb, rows, &act[0], _buf_ptr(aux), NULL)
            memcpy(&out[start, 0], &act[act_off[last]],
                   rows.n * n_out * sizeof(floating))
            start = stop
