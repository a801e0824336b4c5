"""Gradient checks of the compiled loss-and-gradient for the issue-3 features.

Covered: the 'leaky_relu' and 'prelu' hidden activations (PReLU slopes are
parameters at the end of the vector), the 'absolute_error' and 'huber'
regression losses, class weights of the classifier, and dropout with a fixed
mask (``dropout_seed``).

As in tests/test_gradients.py, the function returned by
``est._loss_grad_function`` is checked three ways: its gradient against central
finite differences of its own loss (every coordinate, slopes included), its
loss against an independent NumPy implementation of the documented formulas,
and its gradient against an independent NumPy backpropagation. float32 models
are checked against float64 arithmetic on the very same float32 values; the
finite differences are taken on a float64 twin model.

All kinks are kept out of reach of the finite-difference steps and of float32
rounding: no hidden pre-activation of a (leaky / parametric) ReLU within
``KINK_MARGIN`` of 0, no residual ``p - y`` of the absolute / Huber losses within
``KINK_MARGIN`` of 0 or (Huber) of ``+-huber_delta``.
"""

import functools
import warnings

import numpy as np
import pytest
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

N_SAMPLES, N_FEATURES = 30, 5
HIDDEN = (4, 3)
ALPHA_NONZERO = 0.7
HUBER_DELTA = 0.6  # not the default, so that a default silently used shows
FD_STEP = 1e-6
KINK_MARGIN = 1e-3

# tolerances: (rtol, atol as a fraction of the largest gradient coordinate),
# as in tests/test_gradients.py
GRAD_TOL = {np.float64: (1e-5, 1e-7), np.float32: (1e-4, 2e-6)}
BACKPROP_TOL = {np.float64: (1e-9, 1e-12), np.float32: (1e-4, 2e-6)}
LOSS_RTOL = {np.float64: 1e-10, np.float32: 1e-6}

# task -> (estimator, kernel loss, output activation, n_outputs)
TASK_INFO = {
    "squared_error": ("reg", "squared_error", "identity", 1),
    "squared_error_2out": ("reg", "squared_error", "identity", 2),
    "absolute_error": ("reg", "absolute_error", "identity", 1),
    "absolute_error_2out": ("reg", "absolute_error", "identity", 2),
    "huber": ("reg", "huber", "identity", 1),
    "huber_2out": ("reg", "huber", "identity", 2),
    "binary": ("clf", "binary_log_loss", "logistic", 1),
    "multiclass": ("clf", "log_loss", "softmax", 3),
    "multilabel": ("clf", "binary_log_loss", "logistic", 3),
}

# (task, hidden activation); 'leaky_relu_0.3' is leaky_relu with a
# non-default negative_slope
TASK_ACTIVATIONS = [
    ("squared_error", "leaky_relu"),
    ("squared_error", "leaky_relu_0.3"),
    ("squared_error", "prelu"),
    ("squared_error_2out", "prelu"),
    ("absolute_error", "tanh"),
    ("absolute_error", "leaky_relu"),
    ("absolute_error", "prelu"),
    ("absolute_error_2out", "tanh"),
    ("absolute_error_2out", "leaky_relu_0.3"),
    ("absolute_error_2out", "prelu"),
    ("huber", "tanh"),
    ("huber", "leaky_relu_0.3"),
    ("huber", "prelu"),
    ("huber_2out", "tanh"),
    ("huber_2out", "prelu"),
    ("binary", "prelu"),
    ("multiclass", "leaky_relu"),
    ("multiclass", "prelu"),
    ("multilabel", "leaky_relu_0.3"),
    ("multilabel", "prelu"),
]


def _activation_params(activation):
    """(activation, negative_slope) for the estimator."""
    if activation == "leaky_relu_0.3":
        return "leaky_relu", 0.3
    return activation, 0.01


# ---------------------------------------------------------------------------
# Independent NumPy reference
# ---------------------------------------------------------------------------


def _slope_index(units):
    """Indices of the PReLU slopes in the parameter vector."""
    n_wb = sum(fi * fo + fo for fi, fo in zip(units[:-1], units[1:]))
    return np.arange(n_wb, n_wb + sum(units[1:-1]))


def _coef_index(units):
    """Indices of the weight matrices' entries (the penalised coordinates)."""
    idx, pos = [], 0
    for fi, fo in zip(units[:-1], units[1:]):
        idx.extend(range(pos, pos + fi * fo))
        pos += fi * fo + fo
    return np.asarray(idx)


class Net:
    """The network as the NumPy reference sees it."""

    def __init__(self, units, hidden, negative_slope, out, loss, alpha, huber_delta):
        self.units = list(units)
        self.hidden = hidden
        self.negative_slope = negative_slope
        self.out = out
        self.loss = loss
        self.alpha = alpha
        self.huber_delta = huber_delta
        self.prelu = hidden == "prelu"

    def forward(self, theta, X, masks=None):
        """Pre-activations Z_1..Z_L, activations A_0..A_L (after dropout),
        and the unpacked parameters; ``masks[l]`` multiplies hidden layer l+1."""
        return reference_forward(
            theta, self.units, X, self.hidden, self.out, self.negative_slope, masks
        )

    def penalty(self, theta, S):
        Ws, _, _ = unpack(theta, self.units, self.prelu)
        return 0.5 * self.alpha * sum(np.sum(W**2) for W in Ws) / S

    def loss_value(self, theta, X, Y, sw, eps, masks=None):
        """The documented losses (mean over outputs for the regression ones)."""
        _, A, _, _ = self.forward(theta, X, masks)
        P = A[-1]
        Y = np.asarray(Y, dtype=np.float64)
        w = np.ones(Y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
        S = w.sum()

        def wavg(M):  # weighted average over samples, per output
            return (w[:, None] * M).sum(axis=0) / S

        R = P - Y
        d = self.huber_delta
        if self.loss == "squared_error":
            value = 0.5 * wavg(R**2).mean()
        elif self.loss == "absolute_error":
            value = wavg(np.abs(R)).mean()
        elif self.loss == "huber":
            h = np.where(np.abs(R) <= d, 0.5 * R**2, d * (np.abs(R) - 0.5 * d))
            value = wavg(h).mean()
        elif self.loss == "log_loss":
            Pc = np.clip(P, eps, 1 - eps)
            value = -wavg(xlogy(Y, Pc)).sum()
        elif self.loss == "binary_log_loss":
            Pc = np.clip(P, eps, 1 - eps)
            value = -wavg(xlogy(Y, Pc) + xlogy(1 - Y, 1 - Pc)).sum()
        else:
            raise ValueError(self.loss)
        return value + self.penalty(theta, S)

    def grad(self, theta, X, Y, sw, masks=None):
        """Backpropagation of the training objective (regression losses summed
        over outputs, as in scikit-learn), slopes included."""
        Z, A, Ws, slopes = self.forward(theta, X, masks)
        P = A[-1]
        Y = np.asarray(Y, dtype=np.float64)
        w = np.ones(Y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
        S = w.sum()
        R = P - Y
        if self.loss == "squared_error":
            dZ = R
        elif self.loss == "absolute_error":
            dZ = np.sign(R)
        elif self.loss == "huber":
            dZ = np.clip(R, -self.huber_delta, self.huber_delta)
        elif self.loss == "log_loss":
            dZ = P - Y * P.sum(axis=1, keepdims=True)
        elif self.loss == "binary_log_loss":
            dZ = P * (1 - Y) - Y * (1 - P)
        else:
            raise ValueError(self.loss)
        D = w[:, None] * dZ / S
        grads = [None] * len(Ws)
        slope_grads = [None] * len(slopes)
        for i in range(len(Ws) - 1, -1, -1):
            grads[i] = (A[i].T @ D + self.alpha * Ws[i] / S, D.sum(axis=0))
            if i > 0:
                dA = D @ Ws[i].T  # with respect to the (dropped-out) activation
                if masks is not None and masks[i - 1] is not None:
                    dA = dA * masks[i - 1]
                z = Z[i - 1]
                if self.prelu:
                    slope_grads[i - 1] = (dA * np.minimum(z, 0.0)).sum(axis=0)
                    D = dA * hidden_activation_derivative("prelu", z, slopes[i - 1])
                else:
                    D = dA * hidden_activation_derivative(self.hidden, z, self.negative_slope)
        parts = [np.concatenate([gW.ravel(), gb]) for gW, gb in grads]
        return np.concatenate(parts + slope_grads)


# ---------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------


def _data(task, seed):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    if task == "binary":
        y = np.where(rng.uniform(size=N_SAMPLES) < 0.5, 3, 7)
        y[:2] = [3, 7]
    elif task == "multiclass":
        y = rng.randint(0, 3, N_SAMPLES)
        y[:3] = [0, 1, 2]
    elif task == "multilabel":
        y = (rng.uniform(size=(N_SAMPLES, 3)) < 0.5).astype(int)
        y[0], y[1] = [1, 1, 1], [0, 0, 0]
    elif TASK_INFO[task][3] == 2:
        y = rng.standard_normal((N_SAMPLES, 2)) * [1.0, 3.0]
    else:
        y = 1.5 * rng.standard_normal(N_SAMPLES)
    sw = rng.uniform(0.2, 2.0, N_SAMPLES)
    sw[5] = 0.0  # a zero weight is allowed
    return X, y, sw


def _make(task, activation, alpha, seed, **extra):
    kind, loss, _, _ = TASK_INFO[task]
    act, negative_slope = _activation_params(activation)
    common = dict(
        hidden_layer_sizes=HIDDEN, activation=act, negative_slope=negative_slope,
        solver="sgd", max_iter=1, alpha=alpha, random_state=seed,
        learning_rate_init=1e-3,
    )
    common.update(extra)
    if kind == "clf":
        return MLPClassifier(**common)
    return MLPRegressor(loss=loss, huber_delta=HUBER_DELTA, **common)


def _reference_net(est, task, activation, alpha):
    _, loss, out, _ = TASK_INFO[task]
    act, negative_slope = _activation_params(activation)
    return Net(est._layer_units, act, negative_slope, out, loss, alpha, HUBER_DELTA)


def _kink_report(net, theta, X, Y, masks=None):
    """(closest hidden pre-activation to 0 (ReLU family), closest residual to a
    loss kink, whether every PReLU unit sees negative pre-activations,
    whether Huber sees both branches)."""
    Z, A, _, _ = net.forward(theta, X, masks)
    hidden_margin = np.inf
    every_unit_negative = True
    if net.hidden in ("leaky_relu", "prelu"):
        hidden_margin = min(np.min(np.abs(z)) for z in Z[:-1])
        # at least two negative pre-activations per unit (one sample weighs 0)
        every_unit_negative = all(np.all((z < 0).sum(axis=0) >= 2) for z in Z[:-1])
    R = np.abs(A[-1] - np.asarray(Y, dtype=np.float64))
    loss_margin = np.inf
    both_branches = True
    if net.loss == "absolute_error":
        loss_margin = np.min(R)
    elif net.loss == "huber":
        loss_margin = min(np.min(R), np.min(np.abs(R - net.huber_delta)))
        both_branches = bool(np.any(R < net.huber_delta) and np.any(R > net.huber_delta))
    return hidden_margin, loss_margin, every_unit_negative, both_branches


def _acceptable(report):
    hidden_margin, loss_margin, negatives, both = report
    return hidden_margin > KINK_MARGIN and loss_margin > KINK_MARGIN and negatives and both


def _evaluation_point(est, seed):
    """The fitted parameters with PReLU slopes set to distinct values, so that a
    slope read from the wrong unit or layer shows."""
    theta = est._theta.copy()
    if est._has_prelu():
        rng = np.random.RandomState(1000 + seed)
        idx = _slope_index(est._layer_units)
        theta[idx] = rng.uniform(0.05, 0.6, idx.shape[0]).astype(theta.dtype)
    return theta


class Problem:
    """One (task, activation, dtype, weighting, alpha) combination."""

    def __init__(self, task, activation, dtype, weighted, alpha):
        self.task = task
        self.dtype = dtype
        for seed in range(60):
            X64, y, sw = _data(task, seed)
            Xd = X64.astype(dtype)
            est = fit_quietly(_make(task, activation, alpha, seed), Xd, y)
            theta = _evaluation_point(est, seed)
            Y = encode_targets(est, y)
            net = _reference_net(est, task, activation, alpha)
            if _acceptable(_kink_report(net, theta.astype(np.float64), Xd, Y)):
                break
        else:  # pragma: no cover - the data generator failed
            raise RuntimeError(f"no seed keeps {task}/{activation} away from the kinks")
        self.seed, self.est, self.net = seed, est, net
        self.theta = theta
        self.theta64 = theta.astype(np.float64)
        self.units = list(est._layer_units)
        self.X, self.Y = Xd, Y
        self.sw = sw.astype(dtype) if weighted else None
        self.alpha = alpha
        self.n_outputs = TASK_INFO[task][3]
        self.f = est._loss_grad_function(Xd, Y, self.sw)
        if dtype == np.float32:
            twin = fit_quietly(_make(task, activation, alpha, seed), X64, y)
            assert twin._theta.dtype == np.float64
            assert twin._layer_units == est._layer_units
            sw64 = None if self.sw is None else self.sw.astype(np.float64)
            self.f64 = twin._loss_grad_function(Xd.astype(np.float64), Y, sw64)
        else:
            self.f64 = self.f

    def S(self):
        return N_SAMPLES if self.sw is None else float(np.sum(self.sw, dtype=np.float64))


@functools.lru_cache(maxsize=None)
def _problem(task, activation, dtype_name, weighted, alpha):
    return Problem(task, activation, np.dtype(dtype_name).type, weighted, alpha)


def training_objective(f, net, n_outputs, S):
    """The function whose gradient the kernel returns: the reported loss, except
    that the regression losses' data term is summed over outputs (scikit-learn
    trains on that gradient): J = n_outputs * (loss - penalty) + penalty."""
    if net.loss not in ("squared_error", "absolute_error", "huber") or n_outputs == 1:
        return f

    def objective(theta):
        loss, grad = f(theta)
        penalty = net.penalty(theta, S)
        return n_outputs * (loss - penalty) + penalty, grad

    return objective


def _combos(f):
    f = pytest.mark.parametrize(
        "task,activation", TASK_ACTIVATIONS,
        ids=[f"{t}-{a}" for t, a in TASK_ACTIVATIONS],
    )(f)
    f = pytest.mark.parametrize("dtype", ["float32", "float64"])(f)
    f = pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])(f)
    f = pytest.mark.parametrize("alpha", [0.0, ALPHA_NONZERO], ids=["alpha0", "alpha"])(f)
    return f


# ---------------------------------------------------------------------------
# Activations and losses: finite differences, NumPy loss, NumPy backprop
# ---------------------------------------------------------------------------


@_combos
def test_problem_setup(task, activation, dtype, weighted, alpha):
    """The estimator is configured as the test assumes, the point is away from
    every kink, and (PReLU) the slopes sit at the end of the vector."""
    p = _problem(task, activation, dtype, weighted, alpha)
    est = p.est
    kind, loss, out, n_out = TASK_INFO[task]
    act, negative_slope = _activation_params(activation)
    assert est._theta.dtype == p.dtype
    assert est.out_activation_ == out
    assert est.n_outputs_ == n_out
    assert est.negative_slope == negative_slope
    n_wb = sum(fi * fo + fo for fi, fo in zip(p.units[:-1], p.units[1:]))
    if act == "prelu":
        assert est._theta.shape == (n_wb + sum(HIDDEN),)
        # views of the end of the vector, initialised (then trained) near 0.25
        for layer, slopes in enumerate(est.prelu_slopes_):
            assert slopes.shape == (HIDDEN[layer],)
            assert np.shares_memory(slopes, est._theta)
        np.testing.assert_array_equal(
            np.concatenate(est.prelu_slopes_), est._theta[_slope_index(p.units)]
        )
    else:
        assert est._theta.shape == (n_wb,)
        assert not hasattr(est, "prelu_slopes_")
    assert _acceptable(_kink_report(p.net, p.theta64, p.X, p.Y))


@_combos
def test_gradient_matches_finite_differences(task, activation, dtype, weighted, alpha):
    p = _problem(task, activation, dtype, weighted, alpha)
    loss, grad = p.f(p.theta)
    assert grad.dtype == p.dtype
    assert grad.shape == p.theta.shape
    assert np.isfinite(loss) and np.all(np.isfinite(grad))

    objective = training_objective(p.f64, p.net, p.n_outputs, p.S())
    fd = central_differences(objective, p.theta64, FD_STEP)
    rtol, atol_frac = GRAD_TOL[p.dtype]
    assert_grad_close(grad, fd, rtol, atol_frac, "gradient vs finite differences")

    if p.net.prelu:
        # the slope coordinates are really exercised
        slope_fd = fd[_slope_index(p.units)]
        assert np.all(np.abs(slope_fd) > 1e-6 * np.max(np.abs(fd))), slope_fd
    if p.dtype == np.float32:
        loss64, grad64 = p.f64(p.theta64)
        assert grad64.dtype == np.float64
        assert loss == pytest.approx(loss64, rel=LOSS_RTOL[np.float32])


@_combos
def test_loss_matches_numpy_reference(task, activation, dtype, weighted, alpha):
    p = _problem(task, activation, dtype, weighted, alpha)
    eps = np.finfo(p.dtype).eps
    rng = np.random.RandomState(7)
    thetas = [p.theta, (p.theta + 0.05 * rng.standard_normal(p.theta.shape)).astype(p.dtype)]
    for theta in thetas:
        loss, _ = p.f(theta)
        expected = p.net.loss_value(theta.astype(np.float64), p.X, p.Y, p.sw, eps)
        assert loss == pytest.approx(expected, rel=LOSS_RTOL[p.dtype], abs=1e-12), (
            f"kernel loss {loss!r} vs NumPy {expected!r}"
        )


@_combos
def test_gradient_matches_numpy_backprop(task, activation, dtype, weighted, alpha):
    p = _problem(task, activation, dtype, weighted, alpha)
    _, grad = p.f(p.theta)
    expected = p.net.grad(p.theta64, p.X, p.Y, p.sw)
    rtol, atol_frac = BACKPROP_TOL[p.dtype]
    assert_grad_close(grad, expected, rtol, atol_frac, "gradient vs NumPy backprop")


@pytest.mark.parametrize("negative_slope", [0.0, 0.01, 0.3, 1.0])
def test_leaky_relu_negative_slope_is_used(negative_slope):
    """Loss and gradient follow negative_slope (0 is ReLU, 1 is the identity)."""
    X, y, _ = _data("squared_error", 3)
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=1, random_state=3,
              learning_rate_init=1e-3, alpha=0.0)
    leaky = fit_quietly(MLPRegressor(activation="leaky_relu", negative_slope=negative_slope, **kw),
                        X, y)
    Y = encode_targets(leaky, y)
    theta = leaky._theta.copy()
    net = Net(leaky._layer_units, "leaky_relu", negative_slope, "identity", "squared_error", 0.0, 1.0)
    Z, _, _, _ = net.forward(theta, X)
    assert np.any(Z[0] < 0) and np.min(np.abs(Z[0])) > KINK_MARGIN
    loss, grad = leaky._loss_grad_function(X, Y, None)(theta)
    assert loss == pytest.approx(net.loss_value(theta, X, Y, None, 0.0), rel=1e-12)
    assert_grad_close(grad, net.grad(theta, X, Y, None), 1e-9, 1e-12, "leaky backprop")
    # the limiting cases agree with relu / identity at the same parameters
    limit = {0.0: "relu", 1.0: "identity"}.get(negative_slope)
    if limit is not None:
        other = fit_quietly(MLPRegressor(activation=limit, **kw), X, y)
        loss_o, grad_o = other._loss_grad_function(X, Y, None)(theta)
        assert loss == pytest.approx(loss_o, rel=1e-12)
        np.testing.assert_allclose(grad, grad_o, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("huber_delta", [0.25, 1.0, 4.0])
def test_huber_delta_is_used(huber_delta):
    """Huber's loss is 0.5 r^2 inside delta and linear beyond; a delta above
    every residual gives the squared error, gradient included."""
    X, y, _ = _data("huber", 4)
    kw = dict(hidden_layer_sizes=(5,), activation="tanh", solver="sgd", max_iter=1,
              random_state=4, learning_rate_init=1e-3, alpha=0.0)
    est = fit_quietly(MLPRegressor(loss="huber", huber_delta=huber_delta, **kw), X, y)
    Y = encode_targets(est, y)
    theta = est._theta.copy()
    net = Net(est._layer_units, "tanh", 0.01, "identity", "huber", 0.0, huber_delta)
    loss, grad = est._loss_grad_function(X, Y, None)(theta)
    assert loss == pytest.approx(net.loss_value(theta, X, Y, None, 0.0), rel=1e-12)
    assert_grad_close(grad, net.grad(theta, X, Y, None), 1e-9, 1e-12, "huber backprop")
    _, A, _, _ = net.forward(theta, X)
    R = np.abs(A[-1] - Y)
    if R.max() < huber_delta:
        sq = fit_quietly(MLPRegressor(loss="squared_error", **kw), X, y)
        loss_sq, grad_sq = sq._loss_grad_function(X, Y, None)(theta)
        assert loss == pytest.approx(loss_sq, rel=1e-12)
        np.testing.assert_allclose(grad, grad_sq, rtol=1e-10, atol=1e-14)
    else:
        assert R.min() < huber_delta  # both branches at the smaller deltas


# ---------------------------------------------------------------------------
# PReLU slopes and the L2 penalty
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["squared_error", "multiclass"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prelu_slopes_carry_no_penalty(task, dtype):
    """Between alpha=0 and alpha=1, only the W entries of the gradient change
    (by alpha * W / S); biases and slopes are bitwise equal. The loss changes by
    0.5 * alpha * sum ||W||^2 / S, whatever the slopes."""
    p = _problem(task, "prelu", dtype, True, 0.0)
    est = p.est
    alpha = 1.0
    est.set_params(alpha=0.0)
    f0 = est._loss_grad_function(p.X, p.Y, p.sw)
    est.set_params(alpha=alpha)
    f1 = est._loss_grad_function(p.X, p.Y, p.sw)
    est.set_params(alpha=0.0)
    loss0, g0 = f0(p.theta)
    loss1, g1 = f1(p.theta)

    coef = _coef_index(p.units)
    other = np.setdiff1d(np.arange(p.theta.shape[0]), coef)
    slopes = _slope_index(p.units)
    assert np.isin(slopes, other).all()
    np.testing.assert_array_equal(g1[other], g0[other])
    S = p.S()
    rtol = 1e-12 if p.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(
        g1[coef] - g0[coef], alpha * p.theta64[coef] / S,
        rtol=rtol, atol=rtol * np.max(np.abs(g1)),
    )
    expected_penalty = 0.5 * alpha * np.sum(p.theta64[coef] ** 2) / S
    assert loss1 - loss0 == pytest.approx(expected_penalty, rel=rtol * 10)

    # large slopes change the data term but not the penalty
    theta = p.theta.copy()
    theta[slopes] = 5.0
    l0, _ = f0(theta)
    l1, _ = f1(theta)
    assert l0 != pytest.approx(loss0, rel=1e-3)
    assert l1 - l0 == pytest.approx(expected_penalty, rel=rtol * 10)


def test_prelu_slope_gradient_is_per_unit():
    """Moving one slope changes only samples with a negative pre-activation of
    that unit: its gradient is sum over those of dL/dA * Z (checked with
    the NumPy backprop), and the slope vector of hidden layer l is the l-th
    block after all weights and biases."""
    p = _problem("squared_error", "prelu", "float64", False, 0.0)
    _, grad = p.f(p.theta)
    idx = _slope_index(p.units)
    expected = p.net.grad(p.theta64, p.X, p.Y, None)
    np.testing.assert_allclose(grad[idx], expected[idx], rtol=1e-9)
    # swapping two slopes within layer 1 changes the loss (they are per unit)
    theta = p.theta.copy()
    theta[idx[0]], theta[idx[1]] = 0.05, 0.9
    swapped = theta.copy()
    swapped[idx[0]], swapped[idx[1]] = 0.9, 0.05
    assert p.f(theta)[0] != pytest.approx(p.f(swapped)[0], rel=1e-9)
    for t in (theta, swapped):
        assert p.f(t)[0] == pytest.approx(p.net.loss_value(t, p.X, p.Y, None, 0.0), rel=1e-12)


def test_prelu_with_unit_slopes_is_identity_network():
    """All slopes 1: PReLU is the identity; loss and W/b gradient equal those of
    an identity-activation network at the same W, b."""
    p = _problem("squared_error", "prelu", "float64", True, ALPHA_NONZERO)
    theta = p.theta.copy()
    idx = _slope_index(p.units)
    theta[idx] = 1.0
    loss, grad = p.f(theta)
    ident = fit_quietly(_make("squared_error", "identity", ALPHA_NONZERO, p.seed),
                        p.X, p.Y.ravel())
    n_wb = idx[0]
    loss_i, grad_i = ident._loss_grad_function(p.X, p.Y, p.sw)(theta[:n_wb])
    assert loss == pytest.approx(loss_i, rel=1e-12)
    np.testing.assert_allclose(grad[:n_wb], grad_i, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------------------
# Class weights
# ---------------------------------------------------------------------------

CLASS_WEIGHTS = {
    "binary": {3: 2.5},  # class 7 not named: weight 1
    "multiclass": {0: 2.0, 2: 0.4},
}


def _expected_class_weights(class_weight, y, sample_weight=None):
    """Per-sample class weights, computed here from the documented formulas:
    'balanced' is n_samples / (n_classes * count) with the counts weighted by
    sample_weight (total weight / (n_classes * weight of the class)); a class
    of total weight 0 gets weight 0."""
    classes = np.unique(y)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if class_weight == "balanced":
        counts = np.array([w[y == c].sum() for c in classes])
        with np.errstate(divide="ignore"):
            per_class = w.sum() / (len(classes) * counts)
        per_class[~np.isfinite(per_class)] = 0.0
        table = dict(zip(classes.tolist(), per_class))
    else:
        table = {c: class_weight.get(c, 1.0) for c in classes.tolist()}
    return np.array([table[v] for v in y.tolist()], dtype=np.float64)


def _class_weight_problem(task, class_weight, dtype, weighted):
    for seed in range(60):
        X, y, sw = _data(task, seed)
        X = X.astype(dtype)
        sw = sw.astype(dtype) if weighted else None
        cw = CLASS_WEIGHTS[task] if class_weight == "dict" else class_weight
        est = fit_quietly(_make(task, "prelu", ALPHA_NONZERO, seed, class_weight=cw), X, y,
                          sample_weight=sw)
        theta = _evaluation_point(est, seed)
        Y = encode_targets(est, y)
        net = _reference_net(est, task, "prelu", ALPHA_NONZERO)
        if _acceptable(_kink_report(net, theta.astype(np.float64), X, Y)):
            return seed, X, y, sw, cw, est, theta, Y, net
    raise RuntimeError("no seed away from the kinks")  # pragma: no cover


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("class_weight", ["dict", "balanced"])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_class_weight_gradient(task, class_weight, dtype, weighted):
    dtype = np.dtype(dtype).type
    seed, X, y, sw, cw, est, theta, Y, net = _class_weight_problem(
        task, class_weight, dtype, weighted
    )
    expected_w = _expected_class_weights(cw, y, sw)
    if sw is not None:
        expected_w = sw.astype(np.float64) * expected_w
    assert not np.allclose(expected_w, 1.0)

    ew = est._effective_sample_weight(Y, sw, False)
    assert ew.dtype == dtype
    np.testing.assert_allclose(ew, expected_w, rtol=1e-6 if dtype == np.float32 else 1e-14)

    f = est._loss_grad_function(X, Y, ew)
    loss, grad = f(theta)
    assert grad.dtype == dtype
    # the same as any model given those weights as sample weights
    plain = fit_quietly(_make(task, "prelu", ALPHA_NONZERO, seed), X, y)
    loss_p, grad_p = plain._loss_grad_function(X, Y, expected_w.astype(dtype))(theta)
    assert loss == pytest.approx(loss_p, rel=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(grad, grad_p, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 * np.max(np.abs(grad)))
    # and it differs from the unweighted (resp. only sample-weighted) gradient
    _, grad_u = plain._loss_grad_function(X, Y, sw)(theta)
    assert not np.allclose(grad, grad_u, rtol=1e-3)

    # finite differences (float64 twin for float32) and the NumPy reference
    if dtype == np.float32:
        twin = fit_quietly(_make(task, "prelu", ALPHA_NONZERO, seed, class_weight=cw),
                           X.astype(np.float64), y,
                           sample_weight=None if sw is None else sw.astype(np.float64))
        f64 = twin._loss_grad_function(X.astype(np.float64), Y, ew.astype(np.float64))
    else:
        f64 = f
    theta64 = theta.astype(np.float64)
    fd = central_differences(f64, theta64, FD_STEP)
    assert_grad_close(grad, fd, *GRAD_TOL[dtype], "class-weighted gradient vs FD")
    eps = np.finfo(dtype).eps
    assert loss == pytest.approx(
        net.loss_value(theta64, X, Y, ew, eps), rel=LOSS_RTOL[dtype]
    )
    assert_grad_close(grad, net.grad(theta64, X, Y, ew), *BACKPROP_TOL[dtype],
                      "class-weighted gradient vs NumPy backprop")


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("class_weight", ["dict", "balanced"])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_class_weight_reaches_training(task, class_weight, solver):
    """Training with class_weight equals training with sample_weight set to
    sample_weight * class weight (and differs from training without)."""
    X, y, sw = _data(task, 0)
    cw = CLASS_WEIGHTS[task] if class_weight == "dict" else class_weight
    weights = sw * _expected_class_weights(cw, y, sw)
    kw = dict(hidden_layer_sizes=(4,), activation="tanh", solver=solver, max_iter=3,
              random_state=0, learning_rate_init=0.05, alpha=0.01)
    a = fit_quietly(MLPClassifier(class_weight=cw, **kw), X, y, sample_weight=sw)
    b = fit_quietly(MLPClassifier(**kw), X, y, sample_weight=weights)
    c = fit_quietly(MLPClassifier(**kw), X, y, sample_weight=sw)
    np.testing.assert_allclose(a._theta, b._theta, rtol=1e-12, atol=1e-15)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-12)
    assert not np.allclose(a._theta, c._theta, rtol=1e-6)


def test_balanced_class_weight_counts_sample_weights():
    """'balanced' counts each class by its total sample weight; a class whose
    samples all weigh 0 keeps weight 0 (no inf / nan reaches the loss)."""
    X, y, sw = _data("multiclass", 0)
    sw = sw.copy()
    est = fit_quietly(_make("multiclass", "tanh", 0.0, 0, class_weight="balanced"), X, y,
                      sample_weight=sw)
    Y = encode_targets(est, y)
    ew = est._effective_sample_weight(Y, sw, False)
    total = sw.sum()
    for c in range(3):
        expected = total / (3 * sw[y == c].sum())
        np.testing.assert_allclose(ew[y == c], sw[y == c] * expected, rtol=1e-14)
    # unweighted counts would give other weights
    assert not np.allclose(ew, sw * _expected_class_weights("balanced", y), rtol=1e-3)

    sw[y == 1] = 0.0
    with warnings.catch_warnings():
        # scikit-learn's compute_class_weight divides by the zero total
        # (skmlp replaces the resulting inf by 0)
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        est = fit_quietly(_make("multiclass", "tanh", 0.0, 0, class_weight="balanced"), X, y,
                          sample_weight=sw)
        ew = est._effective_sample_weight(Y, sw, False)
    assert np.all(np.isfinite(ew))
    assert np.all(ew[y == 1] == 0)
    np.testing.assert_allclose(ew, sw * _expected_class_weights("balanced", y, sw), rtol=1e-14)
    loss, grad = est._loss_grad_function(X, Y, ew)(est._theta)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert np.all(np.isfinite(est._theta))


# ---------------------------------------------------------------------------
# Dropout with a fixed mask
# ---------------------------------------------------------------------------

SPLITMIX_GAMMA = 0x9E3779B97F4A7C15
U64 = (1 << 64) - 1


def _splitmix_uniforms(seed, count):
    """The kernel's documented mask generator (SplitMix64, top 53 bits)."""
    state = seed & U64
    out = np.empty(count)
    for k in range(count):
        state = (state + SPLITMIX_GAMMA) & U64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & U64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & U64
        z ^= z >> 31
        out[k] = (z >> 11) * (1.0 / 9007199254740992.0)
    return out


def _reference_masks(seed, rates, n_rows, hidden_units):
    """Inverted-dropout factors of every hidden layer, drawn in layer order,
    row-major within a layer (one block of rows)."""
    state_draws = []
    total = sum(n_rows * u for r, u in zip(rates, hidden_units) if r > 0)
    u_all = _splitmix_uniforms(seed, total)
    pos = 0
    for rate, units in zip(rates, hidden_units):
        if rate > 0:
            u = u_all[pos : pos + n_rows * units].reshape(n_rows, units)
            pos += n_rows * units
            state_draws.append(np.where(u < rate, 0.0, 1.0 / (1.0 - rate)))
        else:
            state_draws.append(None)
    return state_draws


# (task, activation, dropout): prelu/leaky with dropout on the last hidden
# layer only, so that no pre-activation depends on a mask (the kink margins are
# checked without the generator); tanh with dropout on every layer.
DROPOUT_CASES = [
    ("squared_error", "tanh", 0.3),
    ("squared_error_2out", "tanh", (0.5, 0.2)),
    ("multiclass", "tanh", (0.4, 0.0)),
    ("huber", "tanh", 0.25),
    ("absolute_error", "prelu", (0.0, 0.4)),
    ("squared_error", "prelu", (0.0, 0.3)),
    ("binary", "leaky_relu_0.3", (0.0, 0.5)),
]


def _rates(dropout):
    return [float(dropout)] * len(HIDDEN) if np.ndim(dropout) == 0 else list(dropout)


@functools.lru_cache(maxsize=None)
def _dropout_problem(task, activation, dropout, dtype_name):
    dtype = np.dtype(dtype_name).type
    for seed in range(60):
        X64, y, sw = _data(task, seed)
        X = X64.astype(dtype)
        est = fit_quietly(_make(task, activation, ALPHA_NONZERO, seed, dropout=dropout), X, y)
        theta = _evaluation_point(est, seed)
        Y = encode_targets(est, y)
        net = _reference_net(est, task, activation, ALPHA_NONZERO)
        report = list(_kink_report(net, theta.astype(np.float64), X, Y))
        if TASK_INFO[task][1] in ("absolute_error", "huber"):
            # residuals depend on the masks: check them with the masks of seed 123
            masks = _reference_masks(123, _rates(dropout), N_SAMPLES, HIDDEN)
            report[1] = _kink_report(net, theta.astype(np.float64), X, Y, masks)[1]
        if _acceptable(report):
            break
    else:  # pragma: no cover
        raise RuntimeError("no seed away from the kinks")
    sw = sw.astype(dtype)
    twin = None
    if dtype == np.float32:
        twin = fit_quietly(_make(task, activation, ALPHA_NONZERO, seed, dropout=dropout),
                           X64, y)
    return seed, X, y, sw, est, theta, Y, net, twin


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "task,activation,dropout", DROPOUT_CASES,
    ids=[f"{t}-{a}-{d}" for t, a, d in DROPOUT_CASES],
)
def test_dropout_fixed_mask_gradient(task, activation, dropout, dtype):
    seed, X, y, sw, est, theta, Y, net, twin = _dropout_problem(task, activation, dropout, dtype)
    dtype = np.dtype(dtype).type
    f = est._loss_grad_function(X, Y, sw, dropout_seed=123)
    loss1, g1 = f(theta)
    loss2, g2 = f(theta)
    # deterministic: the same masks on every call, bitwise
    assert loss1 == loss2
    np.testing.assert_array_equal(g1, g2)
    assert g1.dtype == dtype
    loss3, g3 = est._loss_grad_function(X, Y, sw, dropout_seed=123)(theta)
    assert loss3 == loss1
    np.testing.assert_array_equal(g3, g1)
    # another seed, other masks; no seed, no dropout
    loss_other, _ = est._loss_grad_function(X, Y, sw, dropout_seed=124)(theta)
    assert loss_other != pytest.approx(loss1, rel=1e-6)
    loss_plain, _ = est._loss_grad_function(X, Y, sw)(theta)
    assert loss_plain != pytest.approx(loss1, rel=1e-6)
    assert loss_plain == pytest.approx(
        net.loss_value(theta.astype(np.float64), X, Y, sw, np.finfo(dtype).eps),
        rel=LOSS_RTOL[dtype],
    )

    # finite differences of the fixed-mask objective (float64 twin, same seed)
    f64 = f if twin is None else twin._loss_grad_function(
        X.astype(np.float64), Y, sw.astype(np.float64), dropout_seed=123
    )
    S = float(np.sum(sw, dtype=np.float64))
    objective = training_objective(f64, net, TASK_INFO[task][3], S)
    fd = central_differences(objective, theta.astype(np.float64), FD_STEP)
    assert_grad_close(g1, fd, *GRAD_TOL[dtype], "dropout gradient vs finite differences")
    # dropped units have zero gradient through them, but not everything is zero
    assert np.count_nonzero(g1) > g1.size // 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "task,activation,dropout", DROPOUT_CASES,
    ids=[f"{t}-{a}-{d}" for t, a, d in DROPOUT_CASES],
)
def test_dropout_fixed_mask_matches_numpy(task, activation, dropout, dtype):
    """Loss and gradient of the fixed-mask objective equal the NumPy reference
    with masks drawn by the kernel's documented generator (SplitMix64 seeded
    with dropout_seed; one uniform per hidden unit and row, layer by layer;
    drop when u < rate, keep scaled by 1 / (1 - rate))."""
    seed, X, y, sw, est, theta, Y, net, twin = _dropout_problem(task, activation, dropout, dtype)
    dtype = np.dtype(dtype).type
    theta64 = theta.astype(np.float64)
    for dseed in (123, 2**40 + 7):
        masks = _reference_masks(dseed, _rates(dropout), N_SAMPLES, HIDDEN)
        loss, grad = est._loss_grad_function(X, Y, sw, dropout_seed=dseed)(theta)
        expected = net.loss_value(theta64, X, Y, sw, np.finfo(dtype).eps, masks)
        assert loss == pytest.approx(expected, rel=LOSS_RTOL[dtype])
        assert_grad_close(grad, net.grad(theta64, X, Y, sw, masks), *BACKPROP_TOL[dtype],
                          "dropout gradient vs NumPy backprop")
        # the drop fraction is about the rate
        for rate, m in zip(_rates(dropout), masks):
            if m is not None:
                assert abs(np.mean(m == 0) - rate) < 0.2


def test_dropout_inverted_scaling_in_expectation():
    """Inverted dropout keeps the expected activation: with an identity network
    the output is linear in the masks, so the output-bias gradient averaged over
    many fixed-mask seeds approaches the gradient without dropout.
    (Independent of the generator's details.)"""
    X, y, _ = _data("squared_error", 0)
    est = fit_quietly(MLPRegressor(hidden_layer_sizes=(8,), activation="identity", dropout=0.5,
                                   solver="sgd", max_iter=1, random_state=0, alpha=0.0,
                                   learning_rate_init=1e-3), X, y)
    Y = encode_targets(est, y)
    theta = est._theta
    _, g_plain = est._loss_grad_function(X, Y, None)(theta)
    n_seeds = 400
    mean = np.zeros_like(g_plain)
    for s in range(n_seeds):
        mean += est._loss_grad_function(X, Y, None, dropout_seed=s)(theta)[1]
    mean /= n_seeds
    # the last entry is the output bias: mean(P - Y), linear in the masks
    b_out = -1
    spread = np.std([est._loss_grad_function(X, Y, None, dropout_seed=s)(theta)[1][b_out]
                     for s in range(50)])
    assert spread > 0  # the masks do change it
    assert abs(mean[b_out] - g_plain[b_out]) < 4 * spread / np.sqrt(n_seeds)
    # without the 1 / (1 - p) scaling the expectation would be off by a lot
    Ws, bs, _ = unpack(theta, est._layer_units, False)
    unscaled = np.mean((0.5 * (X @ Ws[0] + bs[0])) @ Ws[1] + bs[1] - Y)
    assert abs(unscaled - g_plain[b_out]) > 8 * spread / np.sqrt(n_seeds)
