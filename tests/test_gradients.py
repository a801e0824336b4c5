"""Gradient checks of the compiled loss-and-gradient (``_mlp_fast._loss_grad``).

For every hidden activation x output/loss x dtype x input format x sample
weighting x L2 penalty, the function returned by ``est._loss_grad_function`` is
checked three ways:

* its gradient against central finite differences of its own loss, over every
  coordinate of the parameter vector;
* its loss against an independent NumPy implementation of scikit-learn's loss
  formulas;
* its gradient against an independent NumPy backpropagation of that loss.

float32 models are checked against float64 arithmetic on the very same float32
values (data, targets, weights and parameters cast up exactly): the finite
differences are taken on a float64 twin model, so they are accurate, and the
tolerance only has to absorb the float32 kernel's rounding.
"""

import functools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import xlogy

from skmlp import MLPClassifier, MLPRegressor

from _helpers import (
    assert_grad_close,
    central_differences,
    encode_targets,
    fit_quietly,
    hidden_activation_derivative,
    reference_forward,
    unpack,
)

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
TASKS = [
    "binary",  # logistic output, binary log-loss, 1 output
    "multiclass",  # softmax output, log-loss, 3 outputs
    "multilabel",  # logistic outputs, binary log-loss, 3 outputs
    "squared_error",  # identity output, 1 output
    "squared_error_multioutput",  # identity output, 2 outputs
    "poisson",  # exp output, 1 output
]
EXPECTED_OUTPUT = {
    "binary": ("logistic", "binary_log_loss", 1),
    "multiclass": ("softmax", "log_loss", 3),
    "multilabel": ("logistic", "binary_log_loss", 3),
    "squared_error": ("identity", "squared_error", 1),
    "squared_error_multioutput": ("identity", "squared_error", 2),
    "poisson": ("exp", "poisson", 1),
}
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]

N_SAMPLES, N_FEATURES = 30, 5
HIDDEN = (4, 3)
ALPHA_NONZERO = 0.7

# finite differences (always evaluated in float64)
FD_STEP = 1e-6
# relu: no hidden pre-activation closer to 0 than this, so that neither the
# finite-difference steps nor float32 rounding cross a kink
RELU_MARGIN = 1e-3


# ---------------------------------------------------------------------------
# Independent NumPy reference
# ---------------------------------------------------------------------------


def _weights(sw, n):
    return np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)


def np_loss(theta, units, X, Y, sw, hidden, out, loss, alpha, eps):
    """scikit-learn's loss formulas, written out."""
    _, A, Ws, _ = reference_forward(theta, units, X, hidden, out)
    P = A[-1]
    Y = np.asarray(Y, dtype=np.float64)
    w = _weights(sw, Y.shape[0])
    S = w.sum()

    def wavg(M):  # weighted average over samples, per output
        return (w[:, None] * M).sum(axis=0) / S

    if loss == "squared_error":
        value = 0.5 * wavg((Y - P) ** 2).mean()
    elif loss == "poisson":
        value = wavg(xlogy(Y, Y / P) - Y + P).sum()
    elif loss == "log_loss":
        Pc = np.clip(P, eps, 1 - eps)
        value = -wavg(xlogy(Y, Pc)).sum()
    elif loss == "binary_log_loss":
        Pc = np.clip(P, eps, 1 - eps)
        value = -wavg(xlogy(Y, Pc) + xlogy(1 - Y, 1 - Pc)).sum()
    else:
        raise ValueError(loss)
    penalty = 0.5 * alpha * sum(np.sum(W**2) for W in Ws) / S
    return value + penalty


def np_grad(theta, units, X, Y, sw, hidden, out, loss, alpha):
    """Backpropagation of ``np_loss`` (away from the clipping region)."""
    Z, A, Ws, _ = reference_forward(theta, units, X, hidden, out)
    P = A[-1]
    Y = np.asarray(Y, dtype=np.float64)
    w = _weights(sw, Y.shape[0])
    S = w.sum()
    # derivative of each sample's loss with respect to the output pre-activation
    if loss == "squared_error":
        # p = z. scikit-learn reports 0.5 * mean_k (y_k - p_k)^2 but trains on
        # the gradient of 0.5 * sum_k (y_k - p_k)^2 (scikit-learn issue 8349);
        # skmlp reproduces that, see ``training_objective``.
        dZ = P - Y
    elif loss == "poisson":
        # sum_k y_k log(y_k / p_k) - y_k + p_k with p = exp(z)
        dZ = P - Y
    elif loss == "log_loss":
        # softmax + cross-entropy, one-hot rows
        dZ = P - Y * P.sum(axis=1, keepdims=True)
    elif loss == "binary_log_loss":
        # logistic + binary cross-entropy per output: d/dz = p - y
        dZ = P * (1 - Y) - Y * (1 - P)
    else:
        raise ValueError(loss)
    D = w[:, None] * dZ / S
    grads = [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        gW = A[i].T @ D + alpha * Ws[i] / S
        gb = D.sum(axis=0)
        grads[i] = (gW, gb)
        if i > 0:
            D = (D @ Ws[i].T) * hidden_activation_derivative(hidden, Z[i - 1])
    return np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])


# ---------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------


def _data(task, seed):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    # about 40% zeros, so that the CSR input really is sparse; the dense input
    # holds the same values
    X[rng.uniform(size=X.shape) < 0.4] = 0.0
    if task == "binary":
        y = np.where(rng.uniform(size=N_SAMPLES) < 0.5, 3, 7)
        y[:2] = [3, 7]
    elif task == "multiclass":
        y = rng.randint(0, 3, N_SAMPLES)
        y[:3] = [0, 1, 2]
    elif task == "multilabel":
        y = (rng.uniform(size=(N_SAMPLES, 3)) < 0.5).astype(int)
        y[0], y[1] = [1, 1, 1], [0, 0, 0]
    elif task == "squared_error":
        y = rng.standard_normal(N_SAMPLES)
    elif task == "squared_error_multioutput":
        y = rng.standard_normal((N_SAMPLES, 2)) * [1.0, 3.0]
    elif task == "poisson":
        y = rng.poisson(1.5, N_SAMPLES).astype(np.float64)
        y[:2] = [0.0, 4.0]  # zero counts exercise xlogy(0, .) = 0
    else:
        raise ValueError(task)
    sw = rng.uniform(0.2, 2.0, N_SAMPLES)
    sw[5] = 0.0  # a zero weight is allowed
    return X, y, sw


def _fit(task, activation, X, y, alpha, seed):
    if task in ("binary", "multiclass", "multilabel"):
        est = MLPClassifier(
            hidden_layer_sizes=HIDDEN, activation=activation, solver="sgd",
            max_iter=1, alpha=alpha, random_state=seed,
        )
    else:
        est = MLPRegressor(
            loss="poisson" if task == "poisson" else "squared_error",
            hidden_layer_sizes=HIDDEN, activation=activation, solver="sgd",
            max_iter=1, alpha=alpha, random_state=seed, learning_rate_init=1e-3,
        )
    return fit_quietly(est, X, y)


def _relu_margin(theta, units, X):
    Z, _, _, _ = reference_forward(theta, units, X, "relu", "identity")
    return min(np.min(np.abs(z)) for z in Z[:-1])


class Problem:
    """Everything one combination needs; built once and cached."""

    def __init__(self, task, activation, dtype, sparse, weighted, alpha):
        self.task = task
        self.activation = activation
        self.dtype = dtype
        for seed in range(50):
            X64, y, sw = _data(task, seed)
            Xd = X64.astype(dtype)
            X_in = sp.csr_matrix(Xd) if sparse else Xd
            est = _fit(task, activation, X_in, y, alpha, seed)
            theta = est._theta.copy()
            if activation != "relu" or _relu_margin(theta, est._layer_units, Xd) > RELU_MARGIN:
                break
        else:  # pragma: no cover - the data generator failed
            raise RuntimeError("no seed without a relu pre-activation near 0")
        self.seed = seed
        self.est = est
        self.theta = theta
        self.units = list(est._layer_units)
        self.X = Xd  # the values the kernel sees, as a dense array
        self.X_in = X_in
        self.Y = encode_targets(est, y)
        self.sw = sw.astype(dtype) if weighted else None
        self.alpha = alpha
        self.f = est._loss_grad_function(X_in, self.Y, self.sw)
        self.out_act, self.loss, self.n_outputs = EXPECTED_OUTPUT[task]
        if dtype == np.float32:
            # float64 twin: same architecture and settings, fitted on the
            # float64 version of the data; its loss-gradient is evaluated at the
            # float32 model's parameters cast up.
            X64_in = sp.csr_matrix(X64) if sparse else X64
            self.twin = _fit(task, activation, X64_in, y, alpha, seed)
            assert self.twin._theta.dtype == np.float64
            assert self.twin._layer_units == est._layer_units
            sw64 = None if self.sw is None else self.sw.astype(np.float64)
            X_twin = sp.csr_matrix(Xd.astype(np.float64)) if sparse else Xd.astype(np.float64)
            self.f64 = self.twin._loss_grad_function(X_twin, self.Y, sw64)
        else:
            self.twin = est
            self.f64 = self.f
        self.theta64 = self.theta.astype(np.float64)

    def reference_loss(self, theta):
        return np_loss(
            theta, self.units, self.X, self.Y, self.sw, self.activation,
            self.out_act, self.loss, self.alpha, np.finfo(self.dtype).eps,
        )

    def reference_grad(self, theta):
        return np_grad(
            theta, self.units, self.X, self.Y, self.sw, self.activation,
            self.out_act, self.loss, self.alpha,
        )


@functools.lru_cache(maxsize=None)
def _problem(task, activation, dtype_name, sparse, weighted, alpha):
    return Problem(task, activation, np.dtype(dtype_name).type, sparse, weighted, alpha)


def training_objective(p, f):
    """The function whose gradient the kernel returns, given the loss function f.

    Equal to the reported loss except for multi-output squared error, whose
    data term is trained as a sum over outputs (not a mean), as in
    scikit-learn: J = n_outputs * (loss - penalty) + penalty.
    """
    if p.loss != "squared_error" or p.n_outputs == 1:
        return f
    units = p.units
    S = _weights(p.sw, p.Y.shape[0]).sum()

    def objective(theta):
        loss, grad = f(theta)
        Ws, _, _ = unpack(theta, units)
        penalty = 0.5 * p.alpha * sum(np.sum(W**2) for W in Ws) / S
        return p.n_outputs * (loss - penalty) + penalty, grad

    return objective


def _combos(f):
    # applied innermost first: ids read activation-task-dtype-input-weights-alpha
    f = pytest.mark.parametrize("activation", ACTIVATIONS)(f)
    f = pytest.mark.parametrize("task", TASKS)(f)
    f = pytest.mark.parametrize("dtype", ["float32", "float64"])(f)
    f = pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])(f)
    f = pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])(f)
    f = pytest.mark.parametrize("alpha", [0.0, ALPHA_NONZERO], ids=["alpha0", "alpha"])(f)
    return f


# tolerances: (rtol, atol as a fraction of the largest gradient coordinate)
# float64: finite differences with step 1e-6 are good to ~1e-7 relative.
# float32: the kernel's own rounding (measured < 1e-5 relative) with margin.
GRAD_TOL = {np.float64: (1e-5, 1e-7), np.float32: (1e-4, 2e-6)}
LOSS_RTOL = {np.float64: 1e-10, np.float32: 1e-6}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@_combos
def test_problem_setup(activation, task, dtype, sparse, weighted, alpha):
    """The estimator is configured as the test assumes (output, dtype, format)."""
    p = _problem(task, activation, dtype, sparse, weighted, alpha)
    est = p.est
    assert est._theta.dtype == p.dtype
    assert est.out_activation_ == p.out_act
    assert est.n_outputs_ == p.n_outputs
    assert p.Y.shape == (N_SAMPLES, p.n_outputs)
    assert est.activation == activation
    assert est.alpha == alpha
    assert sp.issparse(p.X_in) == sparse
    if activation == "relu":
        assert _relu_margin(p.theta, p.units, p.X) > RELU_MARGIN


@_combos
def test_gradient_matches_finite_differences(activation, task, dtype, sparse, weighted, alpha):
    p = _problem(task, activation, dtype, sparse, weighted, alpha)
    loss, grad = p.f(p.theta)
    assert grad.dtype == p.dtype  # the compiled kernel of the model's dtype
    assert grad.shape == p.theta.shape
    assert np.isfinite(loss) and np.all(np.isfinite(grad))

    # finite differences in float64 at the same point (the float64 twin for
    # float32 models)
    fd = central_differences(training_objective(p, p.f64), p.theta64, FD_STEP)
    rtol, atol_frac = GRAD_TOL[p.dtype]
    assert_grad_close(grad, fd, rtol, atol_frac, "gradient vs finite differences")

    if p.dtype == np.float32:
        # the float64 twin evaluates the same function at the same point
        loss64, grad64 = p.f64(p.theta64)
        assert grad64.dtype == np.float64
        assert loss == pytest.approx(loss64, rel=LOSS_RTOL[np.float32])


@_combos
def test_loss_matches_numpy_reference(activation, task, dtype, sparse, weighted, alpha):
    p = _problem(task, activation, dtype, sparse, weighted, alpha)
    # at the fitted parameters and at a perturbed point
    rng = np.random.RandomState(7)
    thetas = [p.theta, (p.theta + 0.05 * rng.standard_normal(p.theta.shape)).astype(p.dtype)]
    for theta in thetas:
        loss, _ = p.f(theta)
        expected = p.reference_loss(theta.astype(np.float64))
        assert loss == pytest.approx(expected, rel=LOSS_RTOL[p.dtype], abs=1e-12), (
            f"kernel loss {loss!r} vs NumPy {expected!r}"
        )


@_combos
def test_gradient_matches_numpy_backprop(activation, task, dtype, sparse, weighted, alpha):
    p = _problem(task, activation, dtype, sparse, weighted, alpha)
    loss, grad = p.f(p.theta)
    assert grad.dtype == p.dtype
    expected = p.reference_grad(p.theta64)
    rtol, atol_frac = GRAD_TOL[p.dtype]
    if p.dtype == np.float64:
        rtol, atol_frac = 1e-9, 1e-12
    assert_grad_close(grad, expected, rtol, atol_frac, "gradient vs NumPy backprop")


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("task", ["multiclass", "squared_error", "poisson"])
def test_loss_grad_over_several_row_blocks(task, sparse):
    """More rows than one kernel block (1024): gradients summed over blocks."""
    n = 2100
    rng = np.random.RandomState(11)
    X = rng.standard_normal((n, N_FEATURES))
    X[rng.uniform(size=X.shape) < 0.4] = 0.0
    if task == "multiclass":
        y = rng.randint(0, 3, n)
    elif task == "poisson":
        y = rng.poisson(1.0, n).astype(np.float64)
    else:
        y = rng.standard_normal(n)
    sw = rng.uniform(0.1, 2.0, n)
    X_in = sp.csr_matrix(X) if sparse else X
    est = _fit(task, "tanh", X_in, y, ALPHA_NONZERO, 0)
    Y = encode_targets(est, y)
    loss, grad = est._loss_grad_function(X_in, Y, sw)(est._theta)
    out_act, loss_name, _ = EXPECTED_OUTPUT[task]
    units = list(est._layer_units)
    args = (est._theta, units, X, Y, sw, "tanh", out_act, loss_name, ALPHA_NONZERO)
    assert loss == pytest.approx(np_loss(*args, np.finfo(np.float64).eps), rel=1e-10)
    assert_grad_close(grad, np_grad(*args), 1e-9, 1e-12, "blocked gradient vs NumPy")


@pytest.mark.parametrize("task", ["multiclass", "binary"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_huge_logits_stay_finite(dtype, task):
    """Output pre-activations of order 1e4: softmax / logistic must not overflow
    into NaN, probabilities stay in [0, 1], the (clipped) loss stays finite."""
    X, y, _ = _data(task, 0)
    X = X.astype(dtype)
    est = _fit(task, "tanh", X, y, 0.0, 0)
    theta = est._theta.copy()
    last = len(est.coefs_) - 1
    est.coefs_[last][...] *= 1e4  # views into _theta
    est.intercepts_[last][...] *= 1e4
    Z, _, _, _ = reference_forward(est._theta, est._layer_units, X, "tanh", "identity")
    assert np.max(np.abs(Z[-1])) > 1e3

    proba = est.predict_proba(X)
    assert proba.dtype == dtype
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # the most probable class of each row is the largest logit
    if task == "multiclass":
        np.testing.assert_array_equal(proba.argmax(axis=1), Z[-1].argmax(axis=1))
    assert np.any(proba.max(axis=1) > 1 - 1e-6)

    Y = encode_targets(est, y)
    loss, grad = est._loss_grad_function(X, Y, None)(est._theta)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    out_act, loss_name, _ = EXPECTED_OUTPUT[task]
    expected = np_loss(est._theta, est._layer_units, X, Y, None, "tanh", out_act,
                       loss_name, 0.0, np.finfo(dtype).eps)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert not np.array_equal(theta, est._theta)
