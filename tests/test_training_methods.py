"""Tests of the training methods skmlp adds to scikit-learn's MLPs.

* weight initialisers, checked statistically against their formulas;
* dropout: the masks drawn by the compiled kernel, reproducibility, prediction
  without dropout, validation of the rates, and its regularising effect;
* the new parameters at their defaults reproduce scikit-learn exactly;
* PReLU (learned slopes) and leaky ReLU;
* class weights, the absolute-error and Huber losses;
* the AdaGrad / RMSProp / AdamW update rules and the step-size schedules;
* ``eval_set`` and ``history_``;
* every new parameter with float32, CSR input, ``partial_fit``,
  ``warm_start``, pickling, ``clone`` and ``GridSearchCV``.
"""

import inspect
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.metrics import r2_score, recall_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight

from skmlp import MLPClassifier, MLPRegressor, _mlp_fast
from skmlp._multilayer_perceptron import _kernel_input, _Workspace
from skmlp._threads import blas_threads_for

from _helpers import central_differences, fit_quietly, hidden_activation, output_activation

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


# ---------------------------------------------------------------------------
# Data and helpers
# ---------------------------------------------------------------------------


def _clf_data(n_samples=120, n_features=8, n_classes=3, seed=0, sparsify=False):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=min(5, n_features),
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    X = StandardScaler().fit_transform(X)
    if sparsify:
        X[np.random.RandomState(seed).uniform(size=X.shape) < 0.4] = 0.0
    return X, y


def _reg_data(n_samples=120, n_features=8, n_targets=1, seed=0, sparsify=False):
    X, y = make_regression(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=min(5, n_features),
        n_targets=n_targets,
        noise=5.0,
        random_state=seed,
    )
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean(axis=0)) / y.std(axis=0)
    if sparsify:
        X[np.random.RandomState(seed).uniform(size=X.shape) < 0.4] = 0.0
    return X, y


def _hidden(name, z, est, layer):
    """Hidden activation ``name`` of pre-activation z (float64), with the
    estimator's negative slope (leaky_relu) or learned slopes of ``layer`` (prelu)."""
    slope = None
    if name == "leaky_relu":
        slope = est.negative_slope
    elif name == "prelu":
        slope = np.asarray(est.prelu_slopes_[layer], dtype=np.float64)
    return hidden_activation(name, z, slope)


def np_forward(est, X):
    """Output-layer activations of a fitted model, in float64, without dropout."""
    A = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    n_layers = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        Z = A @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        if i < n_layers - 1:
            A = _hidden(est.activation, Z, est, i)
        else:
            A = output_activation(est.out_activation_, Z)
    return A


def _np_proba(est, X):
    P = np_forward(est, X)
    if P.shape[1] == 1 and est.out_activation_ == "logistic":
        P = np.hstack([1 - P, P])
    return P


# ---------------------------------------------------------------------------
# Weight initialisers
# ---------------------------------------------------------------------------

FAN_IN, FAN_OUT = 400, 300
N_W = FAN_IN * FAN_OUT
R_GLOROT = np.sqrt(6.0 / (FAN_IN + FAN_OUT))
R_GLOROT_LOGISTIC = np.sqrt(2.0 / (FAN_IN + FAN_OUT))

# id: (weight_init, activation, extra params, distribution, location, scale)
# 'uniform': U[-scale, scale] (location 0); 'normal': N(location, scale ** 2)
INIT_CASES = {
    "glorot_uniform-relu": ("glorot_uniform", "relu", {}, "uniform", 0.0, R_GLOROT),
    "glorot_uniform-tanh": ("glorot_uniform", "tanh", {}, "uniform", 0.0, R_GLOROT),
    "glorot_uniform-logistic": (
        "glorot_uniform", "logistic", {}, "uniform", 0.0, R_GLOROT_LOGISTIC,
    ),
    "glorot_normal-relu": (
        "glorot_normal", "relu", {}, "normal", 0.0, np.sqrt(2.0 / (FAN_IN + FAN_OUT)),
    ),
    "glorot_normal-logistic": (
        "glorot_normal", "logistic", {}, "normal", 0.0,
        np.sqrt(2.0 / (FAN_IN + FAN_OUT)),
    ),
    "he_uniform-relu": ("he_uniform", "relu", {}, "uniform", 0.0, np.sqrt(6.0 / FAN_IN)),
    "he_uniform-logistic": (
        "he_uniform", "logistic", {}, "uniform", 0.0, np.sqrt(6.0 / FAN_IN),
    ),
    "he_normal-relu": ("he_normal", "relu", {}, "normal", 0.0, np.sqrt(2.0 / FAN_IN)),
    "he_normal-prelu": ("he_normal", "prelu", {}, "normal", 0.0, np.sqrt(2.0 / FAN_IN)),
    "uniform-relu": ("uniform", "relu", {}, "uniform", 0.0, 1.0),
    "uniform-logistic": ("uniform", "logistic", {}, "uniform", 0.0, 1.0),
    "normal-defaults": ("normal", "relu", {}, "normal", 0.0, 0.01),
    "normal-custom": (
        "normal", "relu", {"init_mean": 0.3, "init_std": 0.05}, "normal", 0.3, 0.05,
    ),
    "normal-negative-mean": (
        "normal", "tanh", {"init_mean": -2.0, "init_std": 1.5}, "normal", -2.0, 1.5,
    ),
}


def _draw_init(weight_init, activation, params, seed=0, dtype=np.float64,
               fan_in=FAN_IN, fan_out=FAN_OUT, cls=MLPClassifier):
    est = cls(weight_init=weight_init, activation=activation, **params)
    est._random_state = np.random.RandomState(seed)
    return est._init_coef(fan_in, fan_out, dtype)


@pytest.mark.parametrize("case", list(INIT_CASES))
def test_init_coef_statistics(case):
    scheme, activation, params, dist, loc, scale = INIT_CASES[case]
    W, b = _draw_init(scheme, activation, params, seed=42)
    assert W.shape == (FAN_IN, FAN_OUT) and W.dtype == np.float64
    assert b.shape == (FAN_OUT,) and b.dtype == np.float64
    w = W.ravel()

    if dist == "uniform":
        mean, var = 0.0, scale**2 / 3.0
        # Var of the sample variance of U[-r, r]: (E x^4 - (E x^2)^2) / n
        var_se = np.sqrt(scale**4 / 5.0 - scale**4 / 9.0) / np.sqrt(N_W)
        cdf = stats.uniform(loc=-scale, scale=2 * scale).cdf
        assert np.all(np.abs(w) <= scale)
        # 120000 draws reach within 0.1 % of both bounds
        assert w.max() > scale * (1 - 1e-3)
        assert w.min() < -scale * (1 - 1e-3)
    else:
        mean, var = loc, scale**2
        var_se = scale**2 * np.sqrt(2.0 / (N_W - 1))
        cdf = stats.norm(loc=loc, scale=scale).cdf
        # unbounded: the extremes of 120000 normal draws pass 3.5 sigma
        assert np.abs(w - loc).max() > 3.5 * scale
        within_1sd = np.mean(np.abs(w - loc) < scale)
        p1 = 0.6826894921370859
        assert abs(within_1sd - p1) < 5 * np.sqrt(p1 * (1 - p1) / N_W)

    mean_se = np.sqrt(var) / np.sqrt(N_W)
    assert abs(w.mean() - mean) < 5 * mean_se, (w.mean(), mean)
    assert abs(w.var() - var) < 5 * var_se, (w.var(), var)
    # the whole distribution (fixed seed: deterministic)
    assert stats.kstest(w, cdf).pvalue > 1e-4

    if scheme == "glorot_uniform":
        # biases from the same U[-r, r]
        assert np.all(np.abs(b) <= scale)
        assert np.unique(b).size == FAN_OUT
        assert abs(b.mean()) < 5 * scale / np.sqrt(3 * FAN_OUT)
        assert abs(b.var() - var) < 5 * scale**2 * np.sqrt(4.0 / 45.0 / FAN_OUT)
    else:
        assert_array_equal(b, np.zeros(FAN_OUT))


def test_glorot_uniform_logistic_factor():
    """factor 2 for logistic, 6 otherwise: bounds differ by sqrt(3), same draws."""
    W_log, b_log = _draw_init("glorot_uniform", "logistic", {}, seed=3)
    W_relu, b_relu = _draw_init("glorot_uniform", "relu", {}, seed=3)
    # (U[-r, r] is drawn as -r + 2 r u: rounding near 0 is absolute)
    assert_allclose(W_relu, W_log * np.sqrt(3.0), rtol=1e-12, atol=1e-16)
    assert_allclose(b_relu, b_log * np.sqrt(3.0), rtol=1e-12, atol=1e-16)
    assert np.abs(W_log).max() <= R_GLOROT_LOGISTIC
    assert np.abs(W_relu).max() > R_GLOROT_LOGISTIC * 1.5


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_glorot_uniform_is_sklearns_init(activation, cls):
    """The default scheme draws exactly what scikit-learn draws."""
    sk_cls = sknn.MLPClassifier if cls is MLPClassifier else sknn.MLPRegressor
    for fan_in, fan_out in [(400, 300), (7, 1), (1, 5)]:
        W, b = _draw_init("glorot_uniform", activation, {}, seed=5, fan_in=fan_in,
                          fan_out=fan_out, cls=cls)
        sk = sk_cls(activation=activation)
        sk._random_state = np.random.RandomState(5)
        W_sk, b_sk = sk._init_coef(fan_in, fan_out, np.float64)
        assert_array_equal(W, W_sk)
        assert_array_equal(b, b_sk)


@pytest.mark.parametrize("case", list(INIT_CASES))
def test_init_coef_seed_and_dtype(case):
    scheme, activation, params, *_ = INIT_CASES[case]
    W0, b0 = _draw_init(scheme, activation, params, seed=0, fan_in=50, fan_out=40)
    W0b, b0b = _draw_init(scheme, activation, params, seed=0, fan_in=50, fan_out=40)
    W1, _ = _draw_init(scheme, activation, params, seed=1, fan_in=50, fan_out=40)
    assert_array_equal(W0, W0b)
    assert_array_equal(b0, b0b)
    assert not np.array_equal(W0, W1)
    W32, b32 = _draw_init(scheme, activation, params, seed=0, dtype=np.float32,
                          fan_in=50, fan_out=40)
    assert W32.dtype == np.float32 and b32.dtype == np.float32
    assert_array_equal(W32, W0.astype(np.float32))
    assert_array_equal(b32, b0.astype(np.float32))


@pytest.mark.parametrize("case", list(INIT_CASES))
def test_init_through_fit_float32(case):
    """A fit starts from the scheme's draws, in float32 for float32 input.

    One SGD epoch with a negligible step leaves the initial weights in place.
    """
    scheme, activation, params, dist, loc, scale = INIT_CASES[case]
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20, FAN_IN)).astype(np.float32)
    y = rng.standard_normal(20).astype(np.float32)
    est = MLPRegressor(
        hidden_layer_sizes=(FAN_OUT,), weight_init=scheme, activation=activation,
        solver="sgd", learning_rate_init=1e-12, momentum=0.0, max_iter=1,
        shuffle=False, random_state=0, **params,
    )
    fit_quietly(est, X, y)
    assert est._theta.dtype == np.float32
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict(X).dtype == np.float32
    # the first layer is the first draw of RandomState(0)
    W_ref, b_ref = _draw_init(scheme, activation, params, seed=0, dtype=np.float32,
                              cls=MLPRegressor)
    assert_allclose(est.coefs_[0], W_ref, rtol=0, atol=1e-6 * max(1.0, abs(loc)))
    assert_allclose(est.intercepts_[0], b_ref, rtol=0, atol=1e-6)
    W = est.coefs_[0].astype(np.float64)
    sd = scale / np.sqrt(3.0) if dist == "uniform" else scale
    assert abs(W.std() - sd) < 0.02 * sd
    assert abs(W.mean() - loc) < 5 * sd / np.sqrt(N_W)
    if scheme != "glorot_uniform":
        assert np.abs(est.intercepts_[0]).max() < 1e-6


# ---------------------------------------------------------------------------
# Dropout: the masks drawn by the kernel
# ---------------------------------------------------------------------------

N_MASK_ROWS = 600


def _mask_model(dtype, hidden=(64, 32)):
    X, y = _clf_data(n_samples=N_MASK_ROWS, n_features=20, seed=1)
    X = X.astype(dtype)
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=hidden, max_iter=2, random_state=0), X, y)
    return est, X, y


def _kernel_masks(est, X, y, hidden_rates, seed):
    """Run ``_mlp_fast._loss_grad`` with dropout; return (loss, grad, ws, per-layer views)."""
    dtype = est._theta.dtype
    rates = np.array([0.0, *hidden_rates, 0.0])
    spec = est._make_spec(rates)
    rows = X.shape[0]
    ws = _Workspace(est._layer_units, rows, dtype, aux=True, mask=True)
    X_parts = _kernel_input(X, dtype)
    Y = np.ascontiguousarray(est._encode_target(y), dtype=dtype)
    sw = np.empty(0, dtype=dtype)
    grad = np.empty_like(est._theta)
    rng = np.array([seed], dtype=np.uint64)
    with blas_threads_for(rows, est._layer_units):  # as the estimator calls it
        loss = _mlp_fast._loss_grad(
            spec, float(est.alpha), *X_parts, Y, sw, est._theta, grad, rng, rows,
            ws.act_off, ws.act, ws.delta, ws.aux, ws.mask,
        )

    def view(buf, layer):
        units = est._layer_units[layer]
        off = ws.act_off[layer]
        return buf[off : off + rows * units].reshape(rows, units)

    layers = range(1, len(est._layer_units))
    views = {
        "act": {l: view(ws.act, l).copy() for l in layers},
        "aux": {l: view(ws.aux, l).copy() for l in layers},
        "mask": {l: view(ws.mask, l).copy() for l in layers},
    }
    return loss, grad, views


DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
MASK_RATES = [(0.5, 0.5), (0.2, 0.7), (0.05, 0.3)]


@pytest.mark.parametrize("rates", MASK_RATES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kernel_dropout_masks(dtype, rates):
    est, X, y = _mask_model(dtype)
    _, _, v = _kernel_masks(est, X, y, rates, seed=12345)
    for layer, p in enumerate(rates, start=1):
        mask = v["mask"][layer]
        n = mask.size
        dropped = mask == 0
        # kept fraction ~ 1 - p (binomial, 5 standard errors)
        assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n), (layer, p)
        # kept units scaled by exactly 1 / (1 - p) in the model's dtype
        kept = mask[~dropped]
        assert kept.dtype == dtype
        assert_array_equal(kept, np.full(kept.shape, dtype(1.0 / (1.0 - p)), dtype=dtype))
        # per unit and per row the rate holds too (independent draws, not one
        # mask shared by all rows or units)
        rows, units = mask.shape
        assert np.all(np.abs(dropped.mean(axis=0) - p) < 6 * np.sqrt(p * (1 - p) / rows))
        assert dropped.mean(axis=1).std() > 0
        assert len({r.tobytes() for r in dropped}) > rows // 2


@pytest.mark.parametrize("rates", [(0.5, 0.5), (0.3, 0.0), (0.0, 0.6)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kernel_dropout_forward(dtype, rates):
    """act = (activation before dropout) * mask, and the next layer sees act."""
    est, X, y = _mask_model(dtype)
    _, _, v = _kernel_masks(est, X, y, rates, seed=7)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    A_prev = X.astype(np.float64)
    for layer in range(1, len(est._layer_units)):
        W = est.coefs_[layer - 1].astype(np.float64)
        b = est.intercepts_[layer - 1].astype(np.float64)
        Z = A_prev @ W + b
        act = v["act"][layer]
        if layer == len(est._layer_units) - 1:
            assert_allclose(act, output_activation("softmax", Z), **tol)
            break
        p = rates[layer - 1]
        if p > 0:
            before = v["aux"][layer]
            assert_allclose(before, np.maximum(Z, 0), **tol)
            # exact: the kernel multiplies by the mask in the model's dtype
            assert_array_equal(act, before * v["mask"][layer])
            assert np.mean(act == 0) > np.mean(before == 0)
        else:
            assert_allclose(act, np.maximum(Z, 0), **tol)
        A_prev = act.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kernel_dropout_seeds(dtype):
    est, X, y = _mask_model(dtype)
    rates = (0.4, 0.4)
    loss_a, grad_a, va = _kernel_masks(est, X, y, rates, seed=99)
    loss_b, grad_b, vb = _kernel_masks(est, X, y, rates, seed=99)
    loss_c, grad_c, vc = _kernel_masks(est, X, y, rates, seed=100)
    for layer in (1, 2):
        assert_array_equal(va["mask"][layer], vb["mask"][layer])
        differ = (va["mask"][layer] == 0) != (vc["mask"][layer] == 0)
        # independent masks differ in a fraction 2 p (1 - p) of the entries
        assert abs(differ.mean() - 2 * 0.4 * 0.6) < 0.02
    assert loss_a == loss_b
    assert_array_equal(grad_a, grad_b)
    assert loss_a != loss_c
    assert not np.array_equal(grad_a, grad_c)
    # the two layers draw different masks
    assert not np.array_equal(va["mask"][1][:, :32], va["mask"][2])


def test_loss_grad_function_dropout_seed():
    """A fixed seed is a fixed-mask objective; no seed is the objective without dropout."""
    est, X, y = _mask_model(np.float64, hidden=(16, 8))
    Y = est._encode_target(y)
    plain = est._loss_grad_function(X, Y, None)(est._theta)
    est.set_params(dropout=0.5)
    f7 = est._loss_grad_function(X, Y, None, dropout_seed=7)
    f8 = est._loss_grad_function(X, Y, None, dropout_seed=8)
    first, again = f7(est._theta), f7(est._theta)
    assert first[0] == again[0]
    assert_array_equal(first[1], again[1])
    assert f8(est._theta)[0] != first[0]
    assert first[0] != plain[0]
    assert est._loss_grad_function(X, Y, None)(est._theta)[0] == plain[0]


# ---------------------------------------------------------------------------
# Gradient checks of the new activations, losses and dropout
# ---------------------------------------------------------------------------


def _fd_check(f, theta, rtol=1e-5, atol=1e-7, step=1e-6):
    loss, grad = f(theta)
    fd = central_differences(f, theta, step)
    assert_allclose(grad, fd, rtol=rtol, atol=atol)
    return grad


GRAD_CASES = {
    "clf-prelu": (MLPClassifier, dict(activation="prelu"), None),
    "clf-leaky_relu": (MLPClassifier, dict(activation="leaky_relu", negative_slope=0.2), None),
    "clf-tanh-dropout": (MLPClassifier, dict(activation="tanh", dropout=[0.3, 0.5]), 11),
    "clf-prelu-dropout": (MLPClassifier, dict(activation="prelu", dropout=0.4), 12),
    "clf-leaky-dropout": (MLPClassifier, dict(activation="leaky_relu", dropout=0.4), 13),
    "reg-huber": (MLPRegressor, dict(activation="tanh", loss="huber", huber_delta=0.3), None),
    "reg-huber-multi": (MLPRegressor, dict(activation="prelu", loss="huber", huber_delta=0.5), None),
    "reg-absolute": (MLPRegressor, dict(activation="tanh", loss="absolute_error"), None),
    "reg-prelu-dropout": (MLPRegressor, dict(activation="prelu", dropout=0.3), 14),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_gradient_new_features_finite_differences(case):
    cls, params, seed = GRAD_CASES[case]
    if cls is MLPClassifier:
        X, y = _clf_data(n_samples=25, n_features=4, seed=2)
        n_targets = 1
    else:
        n_targets = 2 if case.endswith("multi") else 1
        X, y = _reg_data(n_samples=25, n_features=4, n_targets=n_targets, seed=2)
    est = cls(hidden_layer_sizes=(5, 4), alpha=0.3, max_iter=3, random_state=0, **params)
    fit_quietly(est, X, y)
    if est._has_prelu():
        # slopes away from their start, different per unit
        est._theta[est._slope_off[1] :] = np.linspace(-0.4, 0.9, est._theta.size - est._slope_off[1])
    Y = est._encode_target(y)
    w = np.random.RandomState(0).uniform(0.5, 2.0, size=X.shape[0])
    f = est._loss_grad_function(X, Y, w, dropout_seed=seed)
    n_out = Y.shape[1]
    if cls is MLPRegressor and n_out > 1:
        # documented (as in scikit-learn): the loss is the mean over outputs,
        # the gradient that of the sum over outputs (the L2 term unscaled)
        def penalty(theta):
            est._theta[:] = theta
            return 0.5 * est.alpha * sum((c**2).sum() for c in est.coefs_) / w.sum()

        theta0 = est._theta.copy()

        def f_train(theta, f=f):
            loss, grad = f(theta)
            pen = penalty(theta)
            return n_out * (loss - pen) + pen, grad

        grad = _fd_check(f_train, theta0.copy())
        est._theta[:] = theta0
    else:
        grad = _fd_check(f, est._theta.copy())
    if est._has_prelu():
        # the slopes receive a gradient
        assert np.abs(grad[est._slope_off[1] :]).max() > 1e-6


# ---------------------------------------------------------------------------
# Dropout: public behaviour
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dropout_zero_is_default_and_sklearn(cls, solver):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    # mini-batches smaller than the data: the shuffling order matters
    kw = dict(hidden_layer_sizes=(16, 8), solver=solver, max_iter=5, random_state=0,
              batch_size=32)
    default = fit_quietly(cls(**kw), X, y)
    zero = fit_quietly(cls(dropout=0.0, **kw), X, y)
    zero_list = fit_quietly(cls(dropout=[0.0, 0.0], **kw), X, y)
    assert_array_equal(zero._theta, default._theta)
    assert_array_equal(zero_list._theta, default._theta)
    assert zero.loss_curve_ == default.loss_curve_
    sk_cls = sknn.MLPClassifier if cls is MLPClassifier else sknn.MLPRegressor
    sk = fit_quietly(sk_cls(**kw), X, y)
    for a, b in zip(zero.coefs_ + zero.intercepts_, sk.coefs_ + sk.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert_allclose(zero.loss_curve_, sk.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dropout_seeded_fit_reproducible(cls, solver):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    kw = dict(hidden_layer_sizes=(16, 8), solver=solver, max_iter=8, dropout=0.3,
              batch_size=32)
    a = fit_quietly(cls(random_state=0, **kw), X, y)
    b = fit_quietly(cls(random_state=0, **kw), X, y)
    c = fit_quietly(cls(random_state=1, **kw), X, y)
    none = fit_quietly(cls(random_state=0, **{**kw, "dropout": 0.0}), X, y)
    assert_array_equal(a._theta, b._theta)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a._theta, c._theta)
    assert not np.array_equal(a._theta, none._theta)
    # per-layer rates matter
    d = fit_quietly(cls(random_state=0, **{**kw, "dropout": [0.3, 0.0]}), X, y)
    assert not np.array_equal(a._theta, d._theta)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dropout_prediction_deterministic_and_without_dropout(cls):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    est = fit_quietly(cls(hidden_layer_sizes=(32, 16), dropout=0.5, max_iter=20, random_state=0),
                      X, y)
    if cls is MLPClassifier:
        p1, p2 = est.predict_proba(X), est.predict_proba(X)
        assert_array_equal(p1, p2)
        assert_allclose(p1, _np_proba(est, X), rtol=1e-10, atol=1e-12)
        assert_array_equal(est.predict(X), est.predict(X))
        assert_array_equal(est.predict(X), est.classes_[np.argmax(p1, axis=1)])
    else:
        p1, p2 = est.predict(X), est.predict(X)
        assert_array_equal(p1, p2)
        assert_allclose(p1, np_forward(est, X).ravel(), rtol=1e-10, atol=1e-12)
    # and the fitted dropout rates do not leak into scoring / history
    assert est.score(X, y) == est.score(X, y)


@pytest.mark.parametrize(
    "dropout, hidden, message",
    [
        (1.0, (8,), "dropout"),
        (1.5, (8,), "dropout"),
        (-0.1, (8,), "dropout"),
        (np.nan, (8,), "dropout"),
        ([0.2, 1.0], (8, 4), r"dropout rates must be in \[0, 1\)"),
        ([0.2, -0.5], (8, 4), r"dropout rates must be in \[0, 1\)"),
        ([np.nan, 0.1], (8, 4), r"dropout rates must be in \[0, 1\)"),
        ([0.2], (8, 4), "dropout has 1 rates for 2 hidden layers"),
        ([0.1, 0.2, 0.3], (8, 4), "dropout has 3 rates for 2 hidden layers"),
        ([0.1, 0.2], (8,), "dropout has 2 rates for 1 hidden layers"),
    ],
)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dropout_invalid_rates(cls, dropout, hidden, message):
    X, y = _clf_data(n_samples=30) if cls is MLPClassifier else _reg_data(n_samples=30)
    est = cls(hidden_layer_sizes=hidden, dropout=dropout, max_iter=2)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")
    if cls is MLPClassifier:
        with pytest.raises(ValueError, match=message):
            clone(est).partial_fit(X, y, classes=np.unique(y))
    else:
        with pytest.raises(ValueError, match=message):
            clone(est).partial_fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_lbfgs_ignores_dropout(cls):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    kw = dict(hidden_layer_sizes=(16, 8), solver="lbfgs", max_iter=15, random_state=0)
    plain = fit_quietly(cls(**kw), X, y)
    dropped = fit_quietly(cls(dropout=0.5, **kw), X, y)
    assert_array_equal(plain._theta, dropped._theta)
    assert plain.n_iter_ == dropped.n_iter_


def _noisy_digits(seed=0, n_train=300, noise=0.3):
    """Digits with 30 % of the training labels replaced at random: easy to over-fit."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, train_size=n_train, random_state=seed, stratify=y
    )
    rng = np.random.RandomState(seed)
    flip = rng.uniform(size=y_tr.shape[0]) < noise
    y_tr = y_tr.copy()
    y_tr[flip] = rng.randint(0, 10, flip.sum())
    return X_tr, X_te, y_tr, y_te


def _fashion_mnist_subset(seed, n=2000):
    from skmlp.datasets import load_fashion_mnist

    try:
        X_tr, y_tr, X_te, y_te = load_fashion_mnist(return_X_y=True)
    except OSError:
        return None
    rng = np.random.RandomState(seed)
    i_tr = rng.choice(len(X_tr), n, replace=False)
    i_te = rng.choice(len(X_te), n, replace=False)
    return X_tr[i_tr], X_te[i_te], y_tr[i_tr], y_te[i_te]


def test_dropout_reduces_overfitting_gap_on_fashion_mnist():
    """Fashion-MNIST (2,000 training images, when the data set is installed,
    as in CI) or, without it, the bundled digits with noisy labels below: a
    network that fits its training set almost perfectly generalises better,
    with a smaller train - test gap, under dropout=0.5. (Over seeds 0-3 the gap
    shrank by 0.035-0.05 and test accuracy rose.)"""
    data = _fashion_mnist_subset(seed=0)
    if data is None:
        return test_dropout_reduces_overfitting_gap()
    X_tr, X_te, y_tr, y_te = data
    gaps, test_acc = {}, {}
    for p in (0.0, 0.5):
        est = fit_quietly(
            MLPClassifier(
                hidden_layer_sizes=(256,), dropout=p, alpha=0.0, solver="adam",
                batch_size=64, max_iter=40, tol=0.0, n_iter_no_change=1000,
                random_state=0,
            ),
            X_tr, y_tr,
        )
        test_acc[p] = est.score(X_te, y_te)
        gaps[p] = est.score(X_tr, y_tr) - test_acc[p]
    assert gaps[0.0] > 0.12, gaps
    assert gaps[0.5] < gaps[0.0] - 0.02, gaps
    assert test_acc[0.5] > test_acc[0.0], test_acc


def test_dropout_reduces_overfitting_gap():
    """A wide network memorises noisy labels; dropout=0.5 narrows train - test
    (scikit-learn's bundled digits, 30 % of the training labels replaced)."""
    X_tr, X_te, y_tr, y_te = _noisy_digits()
    gaps, test_acc = {}, {}
    for p in (0.0, 0.5):
        est = fit_quietly(
            MLPClassifier(
                hidden_layer_sizes=(256, 256), dropout=p, alpha=0.0, batch_size=50,
                max_iter=100, tol=0.0, n_iter_no_change=1000, random_state=0,
            ),
            X_tr, y_tr,
        )
        assert est.n_iter_ == 100
        test_acc[p] = est.score(X_te, y_te)
        gaps[p] = est.score(X_tr, y_tr) - test_acc[p]
    # without dropout: memorised (gap ~0.26); with it: gap ~0.10
    assert gaps[0.0] > 0.2
    assert gaps[0.5] < gaps[0.0] - 0.1, gaps
    assert test_acc[0.5] > test_acc[0.0], test_acc


# ---------------------------------------------------------------------------
# The new parameters at their defaults reproduce scikit-learn
# ---------------------------------------------------------------------------

NEW_DEFAULTS = {
    "negative_slope": 0.01,
    "dropout": 0.0,
    "weight_init": "glorot_uniform",
    "init_mean": 0.0,
    "init_std": 0.01,
    "rho": 0.99,
    "weight_decay": 0.01,
    "track_train_score": False,
}
NEW_DEFAULTS_CLF = {**NEW_DEFAULTS, "class_weight": None}
NEW_DEFAULTS_REG = {**NEW_DEFAULTS, "huber_delta": 1.0}


@pytest.mark.parametrize(
    "cls, sk_cls, expected",
    [
        (MLPClassifier, sknn.MLPClassifier, NEW_DEFAULTS_CLF),
        (MLPRegressor, sknn.MLPRegressor, NEW_DEFAULTS_REG),
    ],
)
def test_new_parameters_and_defaults(cls, sk_cls, expected):
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(sk_cls).parameters
    new = {k: p.default for k, p in ours.items() if k not in theirs}
    assert new == expected
    # every scikit-learn parameter is kept, with its default
    for k, p in theirs.items():
        assert ours[k].default == p.default, k


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_explicit_defaults_reproduce_core(cls, solver):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    defaults = NEW_DEFAULTS_CLF if cls is MLPClassifier else NEW_DEFAULTS_REG
    # mini-batches smaller than the data: the shuffling order matters
    kw = dict(hidden_layer_sizes=(16, 8), solver=solver, max_iter=5, random_state=0,
              batch_size=32)
    implicit = fit_quietly(cls(**kw), X, y)
    explicit = fit_quietly(cls(**kw, **defaults), X, y)
    assert_array_equal(explicit._theta, implicit._theta)
    assert explicit.n_iter_ == implicit.n_iter_ == 5
    assert not hasattr(implicit, "prelu_slopes_")
    sk_cls = sknn.MLPClassifier if cls is MLPClassifier else sknn.MLPRegressor
    sk = fit_quietly(sk_cls(**kw), X, y)
    for a, b in zip(explicit.coefs_ + explicit.intercepts_, sk.coefs_ + sk.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert_allclose(explicit.loss_, sk.loss_, rtol=1e-6)
    if solver != "lbfgs":
        assert_allclose(explicit.loss_curve_, sk.loss_curve_, rtol=1e-6)
    Xt = X[:20]
    if cls is MLPClassifier:
        assert_allclose(explicit.predict_proba(Xt), sk.predict_proba(Xt), rtol=1e-6, atol=1e-12)
    else:
        assert_allclose(explicit.predict(Xt), sk.predict(Xt), rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------------------
# PReLU and leaky ReLU
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_prelu_slopes_start_at_quarter(dtype):
    X, y = _clf_data()
    est = MLPClassifier(
        hidden_layer_sizes=(7, 5, 3), activation="prelu", solver="sgd",
        learning_rate_init=1e-300, max_iter=1, random_state=0,
    )
    fit_quietly(est, X.astype(dtype), y)
    assert len(est.prelu_slopes_) == 3
    assert [a.shape for a in est.prelu_slopes_] == [(7,), (5,), (3,)]
    for a in est.prelu_slopes_:
        assert a.dtype == dtype
        assert_array_equal(a, np.full(a.shape, 0.25, dtype=dtype))
        assert np.shares_memory(a, est._theta)
    # the layer weights are still the default initialisation
    ref = fit_quietly(
        MLPClassifier(hidden_layer_sizes=(7, 5, 3), solver="sgd",
                      learning_rate_init=1e-300, max_iter=1, random_state=0),
        X.astype(dtype), y,
    )
    for a, b in zip(est.coefs_, ref.coefs_):
        assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "adamw"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_prelu_slopes_learned_and_views(cls, solver):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    est = fit_quietly(
        cls(hidden_layer_sizes=(12, 6), activation="prelu", solver=solver,
            learning_rate_init=0.01, max_iter=40, random_state=0),
        X, y,
    )
    assert len(est.prelu_slopes_) == 2
    assert [a.shape for a in est.prelu_slopes_] == [(12,), (6,)]
    for a in est.prelu_slopes_:
        assert np.shares_memory(a, est._theta)
        assert np.abs(a - 0.25).max() > 1e-3
        assert np.unique(a).size == a.size
    # the slopes are the tail of the parameter vector
    n_weights = sum(c.size + b.size for c, b in zip(est.coefs_, est.intercepts_))
    assert_array_equal(est._theta[n_weights:], np.concatenate(est.prelu_slopes_))
    # forward pass with the learned slopes
    if cls is MLPClassifier:
        assert_allclose(est.predict_proba(X), _np_proba(est, X), rtol=1e-10, atol=1e-12)
    else:
        assert_allclose(est.predict(X), np_forward(est, X).ravel(), rtol=1e-10, atol=1e-12)


def test_prelu_pickle_rebuilds_views():
    X, y = _clf_data()
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=(12, 6), activation="prelu", max_iter=20,
                                    random_state=0), X, y)
    copy = pickle.loads(pickle.dumps(est))
    assert_array_equal(copy._theta, est._theta)
    assert not np.shares_memory(copy._theta, est._theta)
    for a, b in zip(copy.prelu_slopes_, est.prelu_slopes_):
        assert_array_equal(a, b)
        assert np.shares_memory(a, copy._theta)
    for c in copy.coefs_ + copy.intercepts_:
        assert np.shares_memory(c, copy._theta)
    assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    # writing through the copy's views changes the copy only
    before = est.predict_proba(X)
    copy.prelu_slopes_[0][:] = -1.0
    assert copy._theta[copy._slope_off[1]] == -1.0
    assert not np.allclose(copy.predict_proba(X), before)
    assert_array_equal(est.predict_proba(X), before)
    assert_allclose(copy.predict_proba(X), _np_proba(copy, X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("how", ["in_place", "replace_list", "replace_element"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_prelu_assigning_slopes(cls, how):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    est = fit_quietly(cls(hidden_layer_sizes=(12, 6), activation="prelu", max_iter=20,
                          random_state=0), X, y)
    predict = est.predict_proba if cls is MLPClassifier else est.predict
    before = predict(X)
    new = [np.linspace(-0.5, 1.5, 12), np.linspace(2.0, -1.0, 6)]
    if how == "in_place":
        est.prelu_slopes_[0][:] = new[0]
        est.prelu_slopes_[1][:] = new[1]
    elif how == "replace_list":
        est.prelu_slopes_ = [a.copy() for a in new]
    else:
        est.prelu_slopes_[1] = new[1].copy()
        est.prelu_slopes_[0][:] = new[0]
    after = predict(X)
    assert not np.allclose(after, before)
    # the NumPy forward pass max(z, 0) + a * min(z, 0) with the new slopes
    ref = _np_proba(est, X) if cls is MLPClassifier else np_forward(est, X).ravel()
    assert_allclose(after, ref, rtol=1e-10, atol=1e-12)
    # views are bound again and hold the new slopes
    for a, b in zip(est.prelu_slopes_, new):
        assert_allclose(a, b)
        assert np.shares_memory(a, est._theta)
    # training continues from the new slopes
    est.set_params(warm_start=True, max_iter=1, learning_rate_init=1e-300)
    fit_quietly(est, X, y)
    for a, b in zip(est.prelu_slopes_, new):
        assert_allclose(a, b, rtol=1e-12)


def test_prelu_wrong_slope_shapes_raise():
    X, y = _clf_data()
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=(12, 6), activation="prelu", max_iter=5,
                                    random_state=0), X, y)
    est.prelu_slopes_ = [np.zeros(12)]
    with pytest.raises(ValueError, match="prelu_slopes_"):
        est.predict(X)


def test_warm_start_cannot_switch_prelu():
    X, y = _clf_data()
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=(8,), activation="prelu", max_iter=5,
                                    random_state=0, warm_start=True), X, y)
    est.set_params(activation="relu")
    with pytest.raises(ValueError, match="PReLU"):
        est.fit(X, y)
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=(8,), activation="relu", max_iter=5,
                                    random_state=0, warm_start=True), X, y)
    est.set_params(activation="leaky_relu")
    fit_quietly(est, X, y)  # between activations without slopes: allowed
    assert_allclose(est.predict_proba(X), _np_proba(est, X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("negative_slope", [0.01, 0.2, 0.7])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_leaky_relu_forward_matches_numpy(cls, negative_slope):
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    est = fit_quietly(cls(hidden_layer_sizes=(12, 6), activation="leaky_relu",
                          negative_slope=negative_slope, max_iter=20, random_state=0), X, y)
    # some hidden units are negative, so the slope matters
    Z = X @ est.coefs_[0] + est.intercepts_[0]
    assert (Z < 0).mean() > 0.2
    if cls is MLPClassifier:
        assert_allclose(est.predict_proba(X), _np_proba(est, X), rtol=1e-10, atol=1e-12)
    else:
        assert_allclose(est.predict(X), np_forward(est, X).ravel(), rtol=1e-10, atol=1e-12)
    other = fit_quietly(clone(est).set_params(negative_slope=negative_slope + 0.1), X, y)
    assert not np.allclose(other._theta, est._theta)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_leaky_relu_limits(solver):
    """negative_slope=0 trains relu's model; negative_slope=1 identity's."""
    X, y = _reg_data()
    kw = dict(hidden_layer_sizes=(12, 6), solver=solver, max_iter=10, random_state=0)
    leaky0 = fit_quietly(MLPRegressor(activation="leaky_relu", negative_slope=0.0, **kw), X, y)
    relu = fit_quietly(MLPRegressor(activation="relu", **kw), X, y)
    assert_allclose(leaky0._theta, relu._theta, rtol=1e-12, atol=1e-15)
    leaky1 = fit_quietly(MLPRegressor(activation="leaky_relu", negative_slope=1.0, **kw), X, y)
    ident = fit_quietly(MLPRegressor(activation="identity", **kw), X, y)
    assert_allclose(leaky1._theta, ident._theta, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# class_weight
# ---------------------------------------------------------------------------


def _per_sample(class_weight, y, sample_weight=None):
    classes = np.unique(y)
    w = compute_class_weight(class_weight, classes=classes, y=y,
                             sample_weight=sample_weight)
    return w[np.searchsorted(classes, y)]


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs", "rmsprop"])
@pytest.mark.parametrize(
    "class_weight", [{0: 2.0, 2: 0.5}, {0: 1.0, 1: 3.0, 2: 0.25}, "balanced"], ids=str
)
def test_class_weight_equals_sample_weight(class_weight, solver):
    X, y = _clf_data(n_samples=150, seed=3)
    keep = (y != 1) | (np.arange(y.size) % 3 == 0)  # unbalance class 1
    X, y = X[keep], y[keep]
    kw = dict(hidden_layer_sizes=(10,), solver=solver, max_iter=8, random_state=0,
              batch_size=32)
    weighted = fit_quietly(MLPClassifier(class_weight=class_weight, **kw), X, y)
    sw = _per_sample(class_weight, y)
    by_sw = fit_quietly(MLPClassifier(**kw), X, y, sample_weight=sw)
    assert_array_equal(weighted._theta, by_sw._theta)
    plain = fit_quietly(MLPClassifier(**kw), X, y)
    assert not np.array_equal(weighted._theta, plain._theta)
    # with sample_weight too: the product
    extra = np.random.RandomState(1).uniform(0.2, 3.0, size=y.size)
    both = fit_quietly(MLPClassifier(class_weight=class_weight, **kw), X, y, sample_weight=extra)
    # ('balanced' counts the classes with the sample weights, as
    # LogisticRegression does)
    sw_both = _per_sample(class_weight, y, sample_weight=extra)
    by_product = fit_quietly(MLPClassifier(**kw), X, y, sample_weight=extra * sw_both)
    assert_allclose(both._theta, by_product._theta, rtol=1e-12, atol=1e-14)


def test_class_weight_string_labels_and_partial_fit():
    X, y = _clf_data(n_samples=90, seed=4)
    labels = np.array(["ant", "bee", "cat"])[y]
    cw = {"ant": 3.0, "cat": 0.5}
    kw = dict(hidden_layer_sizes=(10,), max_iter=6, random_state=0)
    a = fit_quietly(MLPClassifier(class_weight=cw, **kw), X, labels)
    b = fit_quietly(MLPClassifier(**kw), X, labels, sample_weight=_per_sample(cw, labels))
    assert_array_equal(a._theta, b._theta)
    # partial_fit with a dict: the same as partial_fit with the weights
    pa = MLPClassifier(class_weight=cw, **kw)
    pb = MLPClassifier(**kw)
    for _ in range(3):
        pa.partial_fit(X, labels, classes=np.unique(labels))
        pb.partial_fit(X, labels, sample_weight=_per_sample(cw, labels),
                       classes=np.unique(labels))
    assert_array_equal(pa._theta, pb._theta)


def test_class_weight_balanced_has_no_partial_fit():
    # mini-batches need not show the class frequencies: like partial_fit for
    # 'lbfgs', the method is not available, with a message saying why
    X, y = _clf_data(n_samples=60)
    est = MLPClassifier(hidden_layer_sizes=(5,), class_weight="balanced")
    assert not hasattr(est, "partial_fit")
    # (available_if chains the reason to its generic AttributeError)
    with pytest.raises(AttributeError) as excinfo:
        est.partial_fit(X, y, classes=np.unique(y))
    assert "class_weight='balanced'" in str(excinfo.value.__cause__)
    # also after a fit
    fit_quietly(est, X, y)
    with pytest.raises(AttributeError) as excinfo:
        est.partial_fit(X, y)
    assert "compute_class_weight" in str(excinfo.value.__cause__)
    # a dict keeps partial_fit
    assert hasattr(MLPClassifier(class_weight={0: 2.0}), "partial_fit")


@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0}], ids=str)
def test_class_weight_multilabel_raises(class_weight):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 5))
    Y = (rng.uniform(size=(40, 3)) < 0.5).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(5,), class_weight=class_weight, max_iter=5)
    with pytest.raises(ValueError, match="multilabel"):
        est.fit(X, Y)


def test_class_weight_balanced_improves_minority_recall():
    X, y = make_classification(
        n_samples=1000, n_features=6, n_informative=3, n_redundant=0,
        weights=[0.92, 0.08], class_sep=0.5, flip_y=0, random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    recall = {}
    for cw in (None, "balanced"):
        est = fit_quietly(MLPClassifier(hidden_layer_sizes=(16,), class_weight=cw, max_iter=200,
                                        random_state=0), X_tr, y_tr)
        recall[cw] = recall_score(y_te, est.predict(X_te))
    # observed: 0.05 -> 0.70
    assert recall["balanced"] > recall[None] + 0.3, recall


# ---------------------------------------------------------------------------
# Absolute-error and Huber losses
# ---------------------------------------------------------------------------


def _smooth_problem(seed, n=400, outliers=0.0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, 3))
    f = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 - X[:, 2]
    y = f + 0.1 * rng.standard_normal(n)
    if outliers:
        y[rng.uniform(size=n) < outliers] += 20.0
    return X, y, f


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_losses_fit_well(loss):
    X, y, _ = _smooth_problem(0)
    X_te, _, f_te = _smooth_problem(1)
    est = fit_quietly(MLPRegressor(hidden_layer_sizes=(32,), loss=loss, learning_rate_init=0.01,
                                   max_iter=300, random_state=0), X, y)
    assert r2_score(f_te, est.predict(X_te)) > 0.95
    assert np.all(np.isfinite(est.loss_curve_))
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_robust_losses_resist_outliers():
    X, y, _ = _smooth_problem(0, outliers=0.1)
    X_te, _, f_te = _smooth_problem(1)
    mae = {}
    for loss in ("squared_error", "huber", "absolute_error"):
        est = fit_quietly(MLPRegressor(hidden_layer_sizes=(32,), loss=loss, learning_rate_init=0.01,
                                       max_iter=300, random_state=0), X, y)
        mae[loss] = np.mean(np.abs(est.predict(X_te) - f_te))
    # observed: squared ~2.0, huber ~0.17, absolute ~0.10
    assert mae["huber"] < 0.5 * mae["squared_error"], mae
    assert mae["absolute_error"] < 0.5 * mae["squared_error"], mae


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_huber_with_huge_delta_is_squared_error(solver, n_targets):
    X, y = _reg_data(n_targets=n_targets)
    kw = dict(hidden_layer_sizes=(16, 8), solver=solver, max_iter=15, random_state=0)
    sq = fit_quietly(MLPRegressor(loss="squared_error", **kw), X, y)
    hub = fit_quietly(MLPRegressor(loss="huber", huber_delta=1e6, **kw), X, y)
    assert_allclose(hub._theta, sq._theta, rtol=1e-10, atol=1e-13)
    assert_allclose(hub.loss_, sq.loss_, rtol=1e-10)
    small = fit_quietly(MLPRegressor(loss="huber", huber_delta=0.1, **kw), X, y)
    assert not np.allclose(small._theta, sq._theta)


@pytest.mark.parametrize("n_targets", [1, 2])
@pytest.mark.parametrize("loss", ["absolute_error", "huber", "squared_error"])
def test_regression_loss_values(loss, n_targets):
    """The reported loss: mean over outputs, weighted mean over samples, plus L2."""
    X, y = _reg_data(n_targets=n_targets)
    delta = 0.4
    est = fit_quietly(MLPRegressor(hidden_layer_sizes=(8,), loss=loss, huber_delta=delta,
                                   alpha=0.05, max_iter=10, random_state=0), X, y)
    Y = y.reshape(y.shape[0], -1)
    w = np.random.RandomState(0).uniform(0.1, 2.0, size=y.shape[0])
    r = np.asarray(est.predict(X)).reshape(Y.shape) - Y
    if loss == "absolute_error":
        per = np.abs(r)
    elif loss == "huber":
        per = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    else:
        per = 0.5 * r**2
    penalty = 0.5 * est.alpha * sum((c**2).sum() for c in est.coefs_)
    for sw in (None, w):
        ww = np.ones(Y.shape[0]) if sw is None else sw
        expected = (ww * per.mean(axis=1)).sum() / ww.sum() + penalty / ww.sum()
        got = est._loss_grad_function(X, Y, sw, with_grad=False)(est._theta)[0]
        assert_allclose(got, expected, rtol=1e-10)


# ---------------------------------------------------------------------------
# Solvers: update rules and schedules
# ---------------------------------------------------------------------------


def _np_step(solver, theta, g, state, t, p):
    lr, eps = p["learning_rate_init"], p["epsilon"]
    if solver == "adagrad":
        state["s"] = state.get("s", 0.0) + g**2
        return theta - lr * g / (np.sqrt(state["s"]) + eps)
    if solver == "rmsprop":
        rho = p["rho"]
        state["s"] = rho * state.get("s", 0.0) + (1 - rho) * g**2
        return theta - lr * g / (np.sqrt(state["s"]) + eps)
    if solver == "adamw":
        b1, b2, wd = p["beta_1"], p["beta_2"], p["weight_decay"]
        theta = theta * (1 - lr * wd)
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g**2
        return theta - lr / (1 - b1**t) * state["m"] / (
            np.sqrt(state["v"]) / np.sqrt(1 - b2**t) + eps
        )
    raise ValueError(solver)


SOLVER_PARAMS = {
    "adagrad": dict(learning_rate_init=0.05, epsilon=1e-10),
    "rmsprop": dict(learning_rate_init=0.01, rho=0.9, epsilon=1e-8),
    "adamw": dict(learning_rate_init=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-8,
                  weight_decay=0.3),
}


@pytest.mark.parametrize("solver", list(SOLVER_PARAMS))
@pytest.mark.parametrize("activation", ["tanh", "prelu"])
def test_new_solver_steps_match_formulas(solver, activation):
    """Four mini-batch steps (two epochs, state carried over) against NumPy."""
    X, y = _reg_data(n_samples=40, n_features=4)
    p = {**dict(beta_1=0.9, beta_2=0.999, rho=0.99, weight_decay=0.01), **SOLVER_PARAMS[solver]}
    est = MLPRegressor(hidden_layer_sizes=(5,), activation=activation, solver=solver,
                       batch_size=20, shuffle=False, alpha=0.01, max_iter=1,
                       warm_start=True, random_state=0, **SOLVER_PARAMS[solver])
    fit_quietly(est, X, y)  # a starting point away from the initialisation
    theta = est._theta.astype(np.float64).copy()
    est.set_params(max_iter=2, tol=0.0)
    fit_quietly(est, X, y)  # fresh optimizer state, 2 epochs of 2 batches
    assert est.n_iter_ == 2
    state, t = {}, 0
    Y = y.reshape(-1, 1)
    for _ in range(2):
        for rows in (slice(0, 20), slice(20, 40)):
            t += 1
            g = est._loss_grad_function(X[rows], Y[rows], None)(theta)[1]
            theta = _np_step(solver, theta, g, state, t, p)
    assert_allclose(est._theta, theta, rtol=1e-9, atol=1e-12)


def test_adamw_weight_decay_shrinks_weights():
    X, y = _reg_data()
    kw = dict(hidden_layer_sizes=(16,), solver="adamw", max_iter=30, random_state=0,
              learning_rate_init=0.01)
    norms = {}
    for wd in (0.0, 0.01, 2.0):
        est = fit_quietly(MLPRegressor(weight_decay=wd, **kw), X, y)
        norms[wd] = np.linalg.norm(est._theta)
    assert norms[2.0] < norms[0.01] < norms[0.0]
    # weight_decay=0 is Adam with PyTorch's placement of epsilon: close to 'adam'
    adam = fit_quietly(
        MLPRegressor(solver="adam", **{k: v for k, v in kw.items() if k != "solver"}), X, y
    )
    adamw0 = fit_quietly(MLPRegressor(weight_decay=0.0, **kw), X, y)
    assert_allclose(adamw0.predict(X), adam.predict(X), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_adam_with_sgd_schedules_is_sklearns_model(cls, learning_rate):
    """'learning_rate' is a scikit-learn parameter: scikit-learn's Adam ignores
    'invscaling' and 'adaptive', so the same parameters must give its model."""
    X, y = _clf_data() if cls is MLPClassifier else _reg_data()
    kw = dict(hidden_layer_sizes=(16, 8), solver="adam", learning_rate=learning_rate,
              max_iter=30, n_iter_no_change=2, tol=1e-2, random_state=0)
    ours = fit_quietly(cls(**kw), X, y)
    sk_cls = sknn.MLPClassifier if cls is MLPClassifier else sknn.MLPRegressor
    sk = fit_quietly(sk_cls(**kw), X, y)
    assert ours.n_iter_ == sk.n_iter_
    assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-6)
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "rmsprop", "adamw"])
def test_invscaling_schedule_for_every_solver(solver):
    X, y = _reg_data(n_samples=50)
    kw = dict(hidden_layer_sizes=(6,), solver=solver, learning_rate_init=0.01,
              power_t=0.5, max_iter=4, tol=0.0, random_state=0)
    inv = fit_quietly(MLPRegressor(learning_rate="invscaling", **kw), X, y)
    const = fit_quietly(MLPRegressor(learning_rate="constant", **kw), X, y)
    n = X.shape[0]
    expected = [0.01] + [0.01 / (n * k + 1) ** 0.5 for k in range(1, 4)]
    assert_allclose(inv.history_["learning_rate"], expected, rtol=1e-12)
    assert const.history_["learning_rate"] == [0.01] * 4
    assert inv._optimizer.learning_rate == pytest.approx(0.01 / (4 * n + 1) ** 0.5)
    assert not np.allclose(inv._theta, const._theta)


# ---------------------------------------------------------------------------
# eval_set and history_
# ---------------------------------------------------------------------------


def _eval_problem(cls):
    if cls is MLPClassifier:
        X, y = _clf_data(n_samples=160, seed=5)
    else:
        X, y = _reg_data(n_samples=160, seed=5)
    return X[:100], y[:100], X[100:130], y[100:130], X[130:], y[130:]


def _encoded(est, y):
    return est._encode_target(y)


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_history_with_eval_sets(cls, solver):
    X, y, X1, y1, X2, y2 = _eval_problem(cls)
    kw = dict(hidden_layer_sizes=(10,), solver=solver, max_iter=7, tol=0.0, random_state=0)
    est = fit_quietly(cls(**kw), X, y, eval_set=[(X1, y1), (X2, y2)])
    h = est.history_
    assert set(h) == {"epoch", "train_loss", "eval_0_loss", "eval_0_score",
                      "eval_1_loss", "eval_1_score", "learning_rate", "time"}
    assert all(len(v) == est.n_iter_ == 7 for v in h.values())
    assert h["epoch"] == list(range(1, 8))
    assert h["train_loss"] == est.loss_curve_
    assert h["learning_rate"] == [est.learning_rate_init] * 7
    assert np.all(np.diff(h["time"]) >= 0) and h["time"][0] >= 0
    for i, (Xe, ye) in enumerate([(X1, y1), (X2, y2)]):
        loss = est._loss_grad_function(Xe, _encoded(est, ye), None, with_grad=False)(est._theta)[0]
        assert h[f"eval_{i}_loss"][-1] == pytest.approx(loss, rel=1e-12)
        assert h[f"eval_{i}_score"][-1] == pytest.approx(est.score(Xe, ye), rel=1e-12)
        assert len(set(h[f"eval_{i}_loss"])) > 1
    # eval sets do not influence training
    plain = fit_quietly(cls(**kw), X, y)
    assert_array_equal(plain._theta, est._theta)
    assert plain.history_.keys() == {"epoch", "train_loss", "learning_rate", "time"}
    # a table
    df = pd.DataFrame(est.history_)
    assert df.shape == (7, 8)
    assert df["epoch"].tolist() == list(range(1, 8))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_history_single_pair_and_train_score(cls):
    X, y, X1, y1, _, _ = _eval_problem(cls)
    est = fit_quietly(cls(hidden_layer_sizes=(10,), max_iter=5, tol=0.0, random_state=0,
                          track_train_score=True), X, y, eval_set=(X1, y1))
    h = est.history_
    assert set(h) == {"epoch", "train_loss", "train_score", "eval_0_loss",
                      "eval_0_score", "learning_rate", "time"}
    assert len(h["train_score"]) == est.n_iter_ == 5
    assert h["train_score"][-1] == pytest.approx(est.score(X, y), rel=1e-12)
    assert all(isinstance(v, float) for v in h["train_score"] + h["eval_0_loss"])


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_history_with_early_stopping(cls):
    X, y, X1, y1, _, _ = _eval_problem(cls)
    est = fit_quietly(cls(hidden_layer_sizes=(10,), max_iter=60, early_stopping=True,
                          n_iter_no_change=3, random_state=0, track_train_score=True,
                          learning_rate_init=0.02), X, y, eval_set=[(X1, y1)])
    h = est.history_
    assert set(h) == {"epoch", "train_loss", "train_score", "val_loss", "val_score",
                      "eval_0_loss", "eval_0_score", "learning_rate", "time"}
    assert all(len(v) == est.n_iter_ for v in h.values())
    assert h["val_score"] == est.validation_scores_
    assert max(h["val_score"]) == est.best_validation_score_
    assert h["train_loss"] == est.loss_curve_
    # with early stopping, training stopped before max_iter here
    assert est.n_iter_ < 60


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_history_lbfgs(cls):
    X, y, X1, y1, _, _ = _eval_problem(cls)
    est = fit_quietly(cls(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=12, random_state=0,
                          track_train_score=True), X, y, eval_set=[(X1, y1)])
    h = est.history_
    assert set(h) == {"epoch", "train_loss", "train_score", "eval_0_loss",
                      "eval_0_score", "learning_rate", "time"}
    assert all(len(v) == est.n_iter_ for v in h.values())
    assert h["epoch"] == list(range(1, est.n_iter_ + 1))
    assert np.all(np.isnan(h["learning_rate"]))
    assert h["train_loss"][-1] == pytest.approx(est.loss_, rel=1e-10)
    assert h["train_score"][-1] == pytest.approx(est.score(X, y), rel=1e-10)
    assert h["eval_0_score"][-1] == pytest.approx(est.score(X1, y1), rel=1e-10)
    loss = est._loss_grad_function(X1, _encoded(est, y1), None, with_grad=False)(est._theta)[0]
    assert h["eval_0_loss"][-1] == pytest.approx(loss, rel=1e-10)
    # L-BFGS decreases the training loss
    assert np.all(np.diff(h["train_loss"]) <= 1e-12)
    plain = fit_quietly(cls(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=12, random_state=0),
                        X, y)
    assert_array_equal(plain._theta, est._theta)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_bad_eval_set_raises(cls):
    X, y, X1, y1, _, _ = _eval_problem(cls)
    est = cls(hidden_layer_sizes=(5,), max_iter=2)
    with pytest.raises(ValueError, match="features"):
        est.fit(X, y, eval_set=[(X1[:, :3], y1)])
    with pytest.raises(ValueError, match=r"eval_set\[0\]: X has 30 samples but y has 29"):
        est.fit(X, y, eval_set=[(X1, y1[:-1])])
    with pytest.raises(ValueError, match=r"eval_set\[1\] must be a pair"):
        est.fit(X, y, eval_set=[(X1, y1), (X1,)])
    with pytest.raises(ValueError, match=r"eval_set\[0\] must be a pair"):
        est.fit(X, y, eval_set=[X1])
    with pytest.raises(ValueError, match=r"eval_set\[0\] must be a pair"):
        est.fit(X, y, eval_set=[(X1, y1, y1)])


# ---------------------------------------------------------------------------
# Every new parameter with float32, CSR, partial_fit, warm_start, pickle, clone
# ---------------------------------------------------------------------------

CLF_CONFIGS = {
    "leaky_relu": dict(activation="leaky_relu", negative_slope=0.1),
    "prelu": dict(activation="prelu"),
    "dropout": dict(dropout=0.3),
    "dropout_per_layer": dict(dropout=[0.2, 0.4]),
    "adagrad": dict(solver="adagrad", learning_rate_init=0.01),
    "rmsprop": dict(solver="rmsprop", rho=0.9, learning_rate_init=0.005),
    "adamw": dict(solver="adamw", weight_decay=0.05),
    "he_normal": dict(weight_init="he_normal"),
    "normal": dict(weight_init="normal", init_mean=0.01, init_std=0.2),
    "class_weight_dict": dict(class_weight={0: 2.0, 2: 0.5}),
    "class_weight_balanced": dict(class_weight="balanced"),
    "track_train_score": dict(track_train_score=True),
    "combo": dict(activation="prelu", dropout=0.2, solver="rmsprop", weight_init="he_uniform",
                  class_weight="balanced", track_train_score=True),
}
REG_CONFIGS = {
    "leaky_relu": dict(activation="leaky_relu", negative_slope=0.2),
    "prelu": dict(activation="prelu"),
    "dropout_per_layer": dict(dropout=[0.1, 0.3]),
    "adagrad": dict(solver="adagrad", learning_rate_init=0.01),
    "rmsprop": dict(solver="rmsprop", rho=0.95, learning_rate_init=0.005),
    "adamw": dict(solver="adamw", weight_decay=0.1),
    "glorot_normal": dict(weight_init="glorot_normal"),
    "uniform": dict(weight_init="uniform"),
    "huber": dict(loss="huber", huber_delta=0.5),
    "absolute_error": dict(loss="absolute_error"),
    "track_train_score": dict(track_train_score=True),
    "combo": dict(loss="huber", activation="prelu", dropout=[0.1, 0.2], solver="adamw",
                  weight_init="he_normal", track_train_score=True),
}
CONFIGS = [(MLPClassifier, k) for k in CLF_CONFIGS] + [(MLPRegressor, k) for k in REG_CONFIGS]
CONFIG_IDS = [f"{'clf' if c is MLPClassifier else 'reg'}-{k}" for c, k in CONFIGS]


def _make(cls, name, **extra):
    params = (CLF_CONFIGS if cls is MLPClassifier else REG_CONFIGS)[name]
    kw = dict(hidden_layer_sizes=(12, 8), max_iter=10, random_state=0, batch_size=32)
    kw.update(params)
    kw.update(extra)
    return cls(**kw)


def _data_for(cls, sparsify=False):
    if cls is MLPClassifier:
        return _clf_data(n_samples=90, sparsify=sparsify)
    return _reg_data(n_samples=90, sparsify=sparsify)


def _output(est, X):
    return est.predict_proba(X) if is_clf(est) else est.predict(X)


def is_clf(est):
    return isinstance(est, MLPClassifier)


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_float32(cls, name):
    X, y = _data_for(cls)
    X32 = X.astype(np.float32)
    est = fit_quietly(_make(cls, name), X32, y, eval_set=[(X32[:30], y[:30])])
    assert est._theta.dtype == np.float32
    for arr in est.coefs_ + est.intercepts_ + list(getattr(est, "prelu_slopes_", [])):
        assert arr.dtype == np.float32
        assert np.shares_memory(arr, est._theta)
    out = _output(est, X32)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    if is_clf(est):
        assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    # float64 input to a float32 model is predicted in float32 too
    assert _output(est, X).dtype == np.float32
    assert all(np.isfinite(v).all() for v in est.history_.values())
    # close to the float64 model (same draws, same masks)
    est64 = fit_quietly(_make(cls, name), X, y)
    assert_allclose(out, _output(est64, X), atol=0.05)


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_sparse_equals_dense(cls, name):
    X, y = _data_for(cls, sparsify=True)
    dense = fit_quietly(_make(cls, name), X, y)
    sparse = fit_quietly(_make(cls, name), sp.csr_matrix(X), y)
    assert_allclose(sparse._theta, dense._theta, rtol=1e-7, atol=1e-10)
    assert_allclose(_output(sparse, sp.csr_matrix(X)), _output(dense, X), rtol=1e-7, atol=1e-10)
    assert_allclose(_output(dense, sp.csr_matrix(X)), _output(dense, X), rtol=1e-12, atol=1e-14)
    csc = fit_quietly(_make(cls, name), sp.csc_matrix(X), y)
    assert_allclose(csc._theta, sparse._theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_partial_fit_equals_fit(cls, name):
    """k partial_fit calls = fit(max_iter=k) without shuffling."""
    X, y = _data_for(cls)
    extra = dict(shuffle=False, tol=0.0)
    if name in ("class_weight_balanced", "combo") and cls is MLPClassifier:
        extra["class_weight"] = dict(zip(np.unique(y), compute_class_weight(
            "balanced", classes=np.unique(y), y=y)))
    fitted = fit_quietly(_make(cls, name, max_iter=3, **extra), X, y)
    inc = _make(cls, name, **extra)
    for _ in range(3):
        if cls is MLPClassifier:
            inc.partial_fit(X, y, classes=np.unique(y))
        else:
            inc.partial_fit(X, y)
    assert_array_equal(inc._theta, fitted._theta)
    # as in scikit-learn: n_iter_ counts the last call's epochs, t_ and the
    # curves accumulate
    assert inc.n_iter_ == 1 and inc.t_ == fitted.t_ == 3 * X.shape[0]
    assert inc.loss_curve_ == fitted.loss_curve_
    assert inc.history_["train_loss"] == fitted.history_["train_loss"]
    if inc.track_train_score:
        assert inc.history_["train_score"] == fitted.history_["train_score"]


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_warm_start(cls, name):
    X, y = _data_for(cls)
    est = fit_quietly(_make(cls, name, max_iter=5, warm_start=True), X, y)
    first_curve = list(est.loss_curve_)
    twin = pickle.loads(pickle.dumps(est))
    twin0 = pickle.loads(pickle.dumps(est))
    fit_quietly(est, X, y)
    fit_quietly(twin, X, y)
    assert_array_equal(est._theta, twin._theta)  # deterministic continuation
    assert not np.array_equal(est._theta, twin0._theta)
    # as in scikit-learn, the loss curve (and the history) go on
    assert est.n_iter_ == 5 and len(est.loss_curve_) == 10
    assert est.loss_curve_[:5] == first_curve
    assert est.history_["train_loss"] == est.loss_curve_
    # it starts from the first fit's parameters: a negligible step keeps them
    still = pickle.loads(pickle.dumps(twin0))
    still.set_params(max_iter=1, learning_rate_init=1e-300)
    fit_quietly(still, X, y)
    assert_array_equal(still._theta, twin0._theta)
    cold = fit_quietly(_make(cls, name, max_iter=5), X, y)
    assert not np.array_equal(cold._theta, est._theta)
    assert cold.loss_curve_ == first_curve


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_pickle(cls, name):
    X, y = _data_for(cls)
    est = fit_quietly(_make(cls, name), X, y)
    copy = pickle.loads(pickle.dumps(est))
    assert_array_equal(_output(copy, X), _output(est, X))
    assert_array_equal(copy.predict(X), est.predict(X))
    assert copy.get_params() == est.get_params()
    assert copy.history_ == est.history_
    for arr in copy.coefs_ + copy.intercepts_ + list(getattr(copy, "prelu_slopes_", [])):
        assert np.shares_memory(arr, copy._theta)
    # continued training is identical: warm start (fresh optimizer) ...
    a = pickle.loads(pickle.dumps(est))
    b = pickle.loads(pickle.dumps(copy))
    for m in (a, b):
        m.set_params(warm_start=True, max_iter=3)
        fit_quietly(m, X, y)
    assert_array_equal(a._theta, b._theta)
    # ... and partial_fit (optimizer state and dropout generator carried over)
    if not (cls is MLPClassifier and est.class_weight == "balanced"):
        est.partial_fit(X, y)
        copy.partial_fit(X, y)
        assert_array_equal(est._theta, copy._theta)
        assert est.loss_curve_ == copy.loss_curve_


@pytest.mark.parametrize("cls, name", CONFIGS, ids=CONFIG_IDS)
def test_config_clone(cls, name):
    X, y = _data_for(cls)
    est = _make(cls, name)
    est2 = clone(est)
    assert est2.get_params() == est.get_params()
    params = (CLF_CONFIGS if cls is MLPClassifier else REG_CONFIGS)[name]
    for k, v in params.items():
        assert est2.get_params()[k] == v
    fit_quietly(est, X, y)
    fitted_clone = clone(est)
    assert not hasattr(fitted_clone, "coefs_")
    fit_quietly(fitted_clone, X, y)
    fit_quietly(est2, X, y)
    assert_array_equal(fitted_clone._theta, est._theta)
    assert_array_equal(est2._theta, est._theta)


def test_grid_search_over_new_parameters_classifier():
    X, y = _clf_data(n_samples=120)
    grid = {
        "activation": ["leaky_relu", "prelu"],
        "solver": ["rmsprop", "adamw"],
        "dropout": [0.0, 0.3],
        "weight_init": ["he_normal"],
    }
    gs = GridSearchCV(MLPClassifier(hidden_layer_sizes=(10,), max_iter=20, random_state=0),
                      grid, cv=3, error_score="raise")
    fit_quietly(gs, X, y)
    assert len(gs.cv_results_["params"]) == 8
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))
    assert gs.best_params_ in gs.cv_results_["params"]
    best = gs.best_estimator_
    for k, v in gs.best_params_.items():
        assert getattr(best, k) == v
    assert best.score(X, y) > 0.6


def test_grid_search_over_new_parameters_regressor():
    X, y = _reg_data(n_samples=120)
    grid = {
        "loss": ["huber", "absolute_error", "squared_error"],
        "solver": ["adagrad", "adamw"],
        "huber_delta": [0.5],
        "dropout": [[0.1]],
    }
    gs = GridSearchCV(MLPRegressor(hidden_layer_sizes=(10,), max_iter=30, random_state=0,
                                   learning_rate_init=0.01),
                      grid, cv=3, error_score="raise")
    fit_quietly(gs, X, y)
    assert len(gs.cv_results_["params"]) == 6
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))
    assert gs.best_estimator_.dropout == [0.1]
