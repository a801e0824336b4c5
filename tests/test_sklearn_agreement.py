"""skmlp reproduces scikit-learn's MLPs: same random_state + same parameters
give the same model (to float64 rounding), the same training history and the
same warnings.

Every test fits ``sklearn.neural_network.<Est>`` and ``skmlp.<Est>`` with
identical parameters on identical data and compares the results; no expected
number is hard-coded.
"""

import warnings
from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning

import skmlp

from _helpers import fit_quietly, read_only

RTOL = 1e-6
ATOL = 1e-10

CLF = "MLPClassifier"
REG = "MLPRegressor"


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _task(name):
    """(estimator name, X, y) of a small seeded problem; 300 rows, 15 features.

    The arrays are shared between tests and read-only: neither estimator may
    write into its input (read-only input is what joblib's memory mapping
    hands to estimators in parallel model selection)."""
    est_name, X, y = _make_task(name)
    return est_name, X, y


@lru_cache(maxsize=None)
def _make_task(name):
    est_name, X, y = _build_task(name)
    X, y = read_only(np.asarray(X, dtype=np.float64), np.asarray(y))
    return est_name, X, y


def _build_task(name):
    if name == "binary":
        X, y = make_classification(
            n_samples=300, n_features=15, n_informative=6, random_state=0
        )
        return CLF, X, y
    if name == "multiclass":
        X, y = make_classification(
            n_samples=300, n_features=15, n_informative=8, n_classes=3,
            random_state=1,
        )
        return CLF, X, y
    if name == "multilabel":
        X, Y = make_multilabel_classification(
            n_samples=300, n_features=15, n_classes=4, random_state=2
        )
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return CLF, X, Y
    if name == "regression":
        X, y = make_regression(
            n_samples=300, n_features=15, n_informative=10, noise=1.0,
            random_state=3,
        )
        return REG, X, y / y.std()
    if name == "multioutput":
        X, Y = make_regression(
            n_samples=300, n_features=15, n_informative=10, n_targets=3,
            noise=1.0, random_state=4,
        )
        return REG, X, Y / Y.std(axis=0)
    if name == "poisson":
        rng = np.random.RandomState(5)
        X = rng.normal(size=(300, 15))
        w = rng.normal(scale=0.25, size=15)
        y = rng.poisson(np.exp(X @ w)).astype(np.float64)
        assert y.min() >= 0 and (y == 0).any() and (y > 0).any()
        return REG, X, y
    raise KeyError(name)


TASKS = ["binary", "multiclass", "multilabel", "regression", "multioutput", "poisson"]


def _est_params(task):
    params = dict(hidden_layer_sizes=(12, 8), random_state=42)
    if task == "poisson":
        params["loss"] = "poisson"
    return params


def _sample_weight(n, seed=7):
    return np.random.RandomState(seed).uniform(0.1, 3.0, size=n)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _make_pair(est_name, **params):
    return getattr(sknn, est_name)(**params), getattr(skmlp, est_name)(**params)


def _fit_pair(est_name, X, y, fit_params=None, **params):
    ref, ours = _make_pair(est_name, **params)
    fit_params = fit_params or {}
    fit_quietly(ref, X, y, **fit_params)
    fit_quietly(ours, X, y, **fit_params)
    return ref, ours


def assert_params_agree(ref, ours, rtol=RTOL, atol=ATOL):
    """coefs_ and intercepts_ of skmlp equal sklearn's (shapes, dtypes, values)."""
    assert len(ours.coefs_) == len(ref.coefs_)
    assert len(ours.intercepts_) == len(ref.intercepts_)
    for i, (a, b) in enumerate(zip(ref.coefs_, ours.coefs_)):
        assert b.shape == a.shape, f"coefs_[{i}]"
        assert b.dtype == a.dtype, f"coefs_[{i}]"
        assert np.isfinite(b).all(), f"coefs_[{i}] not finite"
        assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"coefs_[{i}]")
    for i, (a, b) in enumerate(zip(ref.intercepts_, ours.intercepts_)):
        assert b.shape == a.shape, f"intercepts_[{i}]"
        assert b.dtype == a.dtype, f"intercepts_[{i}]"
        assert np.isfinite(b).all(), f"intercepts_[{i}] not finite"
        assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"intercepts_[{i}]")


def _assert_optional_close(actual, desired, name, rtol=RTOL):
    if desired is None:
        assert actual is None, name
    else:
        assert actual is not None, name
        assert_allclose(actual, desired, rtol=rtol, atol=ATOL, err_msg=name)


def assert_history_agrees(ref, ours, rtol=RTOL):
    """The training history of a stochastic solver equals sklearn's."""
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    assert len(ours.loss_curve_) == len(ref.loss_curve_)
    assert np.isfinite(ours.loss_curve_).all()
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol, err_msg="loss_curve_")
    assert_allclose(ours.loss_, ref.loss_, rtol=rtol, err_msg="loss_")
    _assert_optional_close(ours.best_loss_, ref.best_loss_, "best_loss_", rtol)
    _assert_optional_close(
        ours.validation_scores_, ref.validation_scores_, "validation_scores_", rtol
    )
    if ref.validation_scores_ is not None:
        assert len(ours.validation_scores_) == len(ref.validation_scores_)
    _assert_optional_close(
        ours.best_validation_score_, ref.best_validation_score_,
        "best_validation_score_", rtol,
    )


def assert_predictions_agree(ref, ours, X, rtol=RTOL, atol=ATOL):
    if hasattr(ref, "predict_proba"):
        assert_array_equal(ours.classes_, ref.classes_)
        proba_ref = ref.predict_proba(X)
        proba = ours.predict_proba(X)
        assert proba.shape == proba_ref.shape
        assert_allclose(proba, proba_ref, rtol=rtol, atol=atol)
        assert_array_equal(ours.predict(X), ref.predict(X))
    else:
        pred_ref = ref.predict(X)
        pred = ours.predict(X)
        assert pred.shape == pred_ref.shape
        assert_allclose(pred, pred_ref, rtol=rtol, atol=atol)


def _unflatten(ours, vec):
    """Split a vector laid out like ``_theta`` ([W0, b0, W1, b1, ...]) into
    sklearn's optimizer layout ([W0, W1, ..., b0, b1, ...])."""
    coefs, intercepts = [], []
    pos = 0
    for c in ours.coefs_:
        coefs.append(vec[pos : pos + c.size].reshape(c.shape))
        pos += c.size
        intercepts.append(vec[pos : pos + c.shape[1]])
        pos += c.shape[1]
    assert pos == vec.shape[0]
    return coefs + intercepts


def assert_optimizer_state_agrees(ref, ours, rtol=RTOL):
    opt_ref, opt = ref._optimizer, ours._optimizer
    if ref.solver == "sgd":
        pairs = [(opt.state_1, opt_ref.velocities, "velocity")]
    else:
        assert opt.t == opt_ref.t
        pairs = [(opt.state_1, opt_ref.ms, "adam m"), (opt.state_2, opt_ref.vs, "adam v")]
    for flat, ref_list, name in pairs:
        parts = _unflatten(ours, flat)
        assert len(parts) == len(ref_list)
        for i, (a, b) in enumerate(zip(ref_list, parts)):
            assert_allclose(b, a, rtol=rtol, atol=ATOL, err_msg=f"{name}[{i}]")


# ---------------------------------------------------------------------------
# Stochastic solvers: parameters and history after 5 epochs
# ---------------------------------------------------------------------------

SOLVER_VARIANTS = {
    "sgd-plain": dict(solver="sgd", momentum=0.0),
    "sgd-momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
}


def _lr(variant, task):
    if variant == "adam":
        return 0.01
    return 0.01 if task == "poisson" else 0.05


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", list(SOLVER_VARIANTS))
def test_stochastic_solvers_agree(variant, task):
    est_name, X, y = _task(task)
    params = dict(
        _est_params(task), max_iter=5, learning_rate_init=_lr(variant, task),
        **SOLVER_VARIANTS[variant],
    )
    ref, ours = _fit_pair(est_name, X, y, **params)
    assert ref.n_iter_ == 5
    # training did something
    assert ref.loss_curve_[-1] < ref.loss_curve_[0]
    assert ours.out_activation_ == ref.out_activation_
    assert ours.n_outputs_ == ref.n_outputs_
    assert ours.n_layers_ == ref.n_layers_
    assert_params_agree(ref, ours)
    assert_history_agrees(ref, ours)
    assert_optimizer_state_agrees(ref, ours)
    assert_predictions_agree(ref, ours, X)


# ---------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_iter", [15, 500])
@pytest.mark.parametrize("task", TASKS)
def test_lbfgs_agrees(task, max_iter):
    est_name, X, y = _task(task)
    params = dict(_est_params(task), solver="lbfgs", max_iter=max_iter)
    if max_iter == 500:
        # a gradient tolerance loose enough for L-BFGS to converge before
        # max_iter (n_iter_ is then decided by the tolerance) while the two
        # trajectories are still equal: over hundreds of iterations L-BFGS
        # amplifies rounding differences (of order 1e-16) exponentially
        params.update(tol=0.02 if task in ("binary", "regression", "multioutput") else 0.05)
    ref, ours = _fit_pair(est_name, X, y, **params)
    if max_iter == 500:
        assert ref.n_iter_ < max_iter
    else:
        assert ref.n_iter_ == max_iter
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-5)
    assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)


def _encoded_target(ref, y):
    """y as the loss functions see it (label-binarized for classifiers)."""
    if hasattr(ref, "_label_binarizer"):
        Y = ref._label_binarizer.transform(y).astype(bool)
    else:
        Y = np.asarray(y)
    return Y.reshape(Y.shape[0], -1) if Y.ndim == 1 else Y


def _sklearn_layout_to_theta(ours, packed):
    """sklearn's packed vector [W0, W1, ..., b0, b1, ...] in skmlp's layout."""
    n_coef = sum(c.size for c in ours.coefs_)
    parts, pos_w, pos_b = [], 0, n_coef
    for c in ours.coefs_:
        parts.append(packed[pos_w : pos_w + c.size])
        pos_w += c.size
        parts.append(packed[pos_b : pos_b + c.shape[1]])
        pos_b += c.shape[1]
    return np.concatenate(parts)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", TASKS)
def test_lbfgs_objective_agrees(task, weighted):
    """The function L-BFGS minimises (loss and gradient) equals sklearn's at
    several points, independently of the optimizer's trajectory."""
    est_name, X, y = _task(task)
    sw = _sample_weight(X.shape[0]) if weighted else None
    params = dict(_est_params(task), solver="lbfgs", max_iter=1, alpha=0.3)
    ref, ours = _fit_pair(est_name, X, y, fit_params=dict(sample_weight=sw), **params)
    Y = _encoded_target(ref, y)
    loss_grad = ours._loss_grad_function(X, Y, sw)
    rng = np.random.RandomState(0)
    start = np.hstack([a.ravel() for a in ref.coefs_ + ref.intercepts_])
    for scale in [0.0, 0.1, 0.5]:
        packed = start + scale * rng.normal(size=start.shape)
        n_layers = ref.n_layers_
        loss_ref, grad_ref = ref._loss_grad_lbfgs(
            packed.copy(), X, Y, sw, [X] + [None] * (n_layers - 1),
            [None] * (n_layers - 1),
            [np.empty_like(c) for c in ref.coefs_],
            [np.empty_like(b) for b in ref.intercepts_],
        )
        loss, grad = loss_grad(_sklearn_layout_to_theta(ours, packed))
        assert np.isfinite(loss) and np.isfinite(grad).all()
        assert_allclose(loss, loss_ref, rtol=1e-10)
        assert_allclose(
            grad, _sklearn_layout_to_theta(ours, grad_ref), rtol=1e-8, atol=1e-12
        )


# ---------------------------------------------------------------------------
# Further agreement cases
# ---------------------------------------------------------------------------


def _stochastic_case(task, solver, **extra):
    params = dict(
        _est_params(task), solver=solver, max_iter=5,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
    )
    params.update(extra)
    return params


def _check_stochastic_agreement(ref, ours, X):
    assert_params_agree(ref, ours)
    assert_history_agrees(ref, ours)
    assert_predictions_agree(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_activation_agrees(activation, task, solver):
    est_name, X, y = _task(task)
    params = _stochastic_case(task, solver, activation=activation)
    if activation == "identity" and solver == "sgd":
        params["learning_rate_init"] = 0.01
    ref, ours = _fit_pair(est_name, X, y, **params)
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_activation_agrees_lbfgs(activation, task):
    est_name, X, y = _task(task)
    ref, ours = _fit_pair(
        est_name, X, y, **_est_params(task), solver="lbfgs", max_iter=15,
        activation=activation,
    )
    assert ours.n_iter_ == ref.n_iter_
    assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression",
                                  "multioutput", "poisson"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sample_weight_agrees(solver, task):
    est_name, X, y = _task(task)
    sw = _sample_weight(X.shape[0])
    if solver == "lbfgs":
        params = dict(_est_params(task), solver="lbfgs", max_iter=15)
    else:
        params = _stochastic_case(task, solver)
        if task == "poisson":
            params["learning_rate_init"] = 0.01
    ref, ours = _fit_pair(est_name, X, y, fit_params=dict(sample_weight=sw), **params)
    # the weights matter: the unweighted model is different
    _, unweighted = _fit_pair(est_name, X, y, **params)
    assert not np.allclose(unweighted.coefs_[0], ref.coefs_[0], rtol=1e-4)
    if solver == "lbfgs":
        assert ours.n_iter_ == ref.n_iter_
        assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)
    else:
        _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_huge_sample_weights_agree(solver, task):
    """Sample weights near 1e300: every batch's weight is beyond 2^1000,
    where the kernels divide the gradient by it in a pass of its own
    (Fin.how == FIN_DIVIDE) instead of through its reciprocal, and the
    update loops then run as if by 1. The model still agrees."""
    est_name, X, y = _task(task)
    sw = _sample_weight(X.shape[0]) * 1e300
    # (batches of 200 and 100 rows: even the 100 smallest weights sum past it)
    assert np.sort(sw)[:100].sum() > 2.0 ** 1000
    if solver == "lbfgs":
        params = dict(_est_params(task), solver="lbfgs", max_iter=15)
    else:
        params = _stochastic_case(task, solver)
    ref, ours = _fit_pair(est_name, X, y, fit_params=dict(sample_weight=sw), **params)
    if solver == "lbfgs":
        assert ours.n_iter_ == ref.n_iter_
        assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)
    else:
        _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 5.0])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_alpha_agrees(alpha, task, solver):
    est_name, X, y = _task(task)
    ref, ours = _fit_pair(est_name, X, y, **_stochastic_case(task, solver, alpha=alpha))
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", [(12, 8), (300,)])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_momentum_step_sums_the_penalty(task, nesterov, hidden, dtype):
    # SGD with momentum and a power-of-two batch sums the L2 penalty of each
    # batch's loss in the update's own pass (_steps_summing.h), in an order
    # of its own: blocks of eight with a remainder ((12, 8): 15 x 12 and
    # 12 x 8 coefficients), two chunks of the step ((300,): 15 x 300 > 4096).
    # With alpha=5 the penalty is a good part of every batch's loss.
    est_name, X, y = _task(task)
    X = X.astype(dtype)
    if est_name == REG:
        y = y.astype(dtype)
    params = _stochastic_case(task, "sgd", batch_size=32, alpha=5.0, momentum=0.9,
                              nesterovs_momentum=nesterov, hidden_layer_sizes=hidden,
                              max_iter=3)
    ref, ours = _fit_pair(est_name, X, y, **params)
    penalty = 0.5 * 5.0 * sum(float((W.astype(np.float64) ** 2).sum())
                              for W in ours.coefs_) / 32
    assert penalty > 0.05 * ours.loss_
    if dtype == np.float64:
        _check_stochastic_agreement(ref, ours, X)
    else:
        assert_params_agree(ref, ours, rtol=1e-4, atol=1e-6)
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 5.0])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_alpha_agrees_lbfgs(alpha, task):
    est_name, X, y = _task(task)
    ref, ours = _fit_pair(
        est_name, X, y, **_est_params(task), solver="lbfgs", max_iter=15, alpha=alpha
    )
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-5)
    assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("power_t", [0.5, 0.25])
def test_invscaling_agrees(task, power_t):
    est_name, X, y = _task(task)
    params = _stochastic_case(
        task, "sgd", learning_rate="invscaling", power_t=power_t,
        learning_rate_init=0.5,
    )
    ref, ours = _fit_pair(est_name, X, y, **params)
    assert ref._optimizer.learning_rate < params["learning_rate_init"]
    assert_allclose(ours._optimizer.learning_rate, ref._optimizer.learning_rate, rtol=1e-12)
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize(
    "setting",
    [
        # the rate is divided by 5 several times, max_iter is reached
        dict(learning_rate_init=0.05, max_iter=12),
        # the rate falls below 1e-6 and training stops before max_iter
        dict(learning_rate_init=1e-4, max_iter=60),
    ],
    ids=["drops", "stops"],
)
def test_adaptive_learning_rate_agrees(task, setting):
    est_name, X, y = _task(task)
    # tol larger than any per-epoch improvement: every epoch but the first
    # counts as "no improvement", so the rate drops every other epoch
    params = _stochastic_case(
        task, "sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1, **setting
    )
    ref, ours = _fit_pair(est_name, X, y, **params)
    assert ref._optimizer.learning_rate < params["learning_rate_init"] / 5
    if setting["max_iter"] == 60:
        assert ref.n_iter_ < setting["max_iter"]
    assert ours._optimizer.learning_rate == pytest.approx(
        ref._optimizer.learning_rate, rel=1e-12
    )
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "multioutput"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_no_shuffle_agrees(solver, task):
    est_name, X, y = _task(task)
    ref, ours = _fit_pair(est_name, X, y, **_stochastic_case(task, solver, shuffle=False))
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 37, 299])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_batch_size_agrees(solver, task, batch_size, shuffle):
    est_name, X, y = _task(task)
    assert X.shape[0] % batch_size != 0 or batch_size == 1
    params = _stochastic_case(task, solver, batch_size=batch_size, shuffle=shuffle)
    if batch_size == 1:
        params.update(max_iter=2, learning_rate_init=0.001)
    ref, ours = _fit_pair(est_name, X, y, **params)
    _check_stochastic_agreement(ref, ours, X)
    if ours.solver == "adam":
        n_batches = -(-X.shape[0] // batch_size)
        assert ours._optimizer.t == ref._optimizer.t == n_batches * ours.n_iter_


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_batch_size_larger_than_n_samples_agrees(est_name):
    task = "multiclass" if est_name == CLF else "regression"
    _, X, y = _task(task)
    params = _stochastic_case(task, "sgd", batch_size=1000)
    ref, ours = _make_pair(est_name, **params)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        fit_quietly(ref, X, y)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        fit_quietly(ours, X, y)
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression",
                                  "multioutput"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_early_stopping_agrees(solver, task, weighted):
    est_name, X, y = _task(task)
    params = _stochastic_case(
        task, solver, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=2, max_iter=100, tol=0.0,
        learning_rate_init=0.2 if solver == "sgd" else 0.05,
    )
    fit_params = dict(sample_weight=_sample_weight(X.shape[0])) if weighted else {}
    ref, ours = _fit_pair(est_name, X, y, fit_params=fit_params, **params)
    # the run did stop early, and its last epoch is not its best one, so the
    # restored weights are not the last weights
    assert ref.n_iter_ < params["max_iter"]
    assert np.argmax(ref.validation_scores_) < len(ref.validation_scores_) - 1
    assert ours.best_loss_ is None
    assert ours.best_validation_score_ == pytest.approx(max(ours.validation_scores_))
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression", "poisson"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_agrees(solver, task):
    est_name, X, y = _task(task)
    if solver == "lbfgs":
        params = dict(_est_params(task), solver="lbfgs", max_iter=8)
    else:
        params = _stochastic_case(task, solver, max_iter=3)
        if task == "poisson":
            params["learning_rate_init"] = 0.01
    params["warm_start"] = True
    ref, ours = _fit_pair(est_name, X, y, **params)
    first_coef = ours.coefs_[0].copy()
    # second fit continues from the first solution, on a different subset
    X2, y2 = X[::2], y[::2]
    fit_quietly(ref, X2, y2)
    fit_quietly(ours, X2, y2)
    assert not np.allclose(ours.coefs_[0], first_coef)
    if solver == "lbfgs":
        assert ours.n_iter_ == ref.n_iter_
        assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)
    else:
        assert len(ref.loss_curve_) == 6
        _check_stochastic_agreement(ref, ours, X)
        assert_optimizer_state_agrees(ref, ours)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression",
                                  "multioutput", "poisson"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_sequence_agrees(solver, task):
    est_name, X, y = _task(task)
    params = _stochastic_case(task, solver)
    params.pop("max_iter")
    if task == "poisson":
        params["learning_rate_init"] = 0.01
    ref, ours = _make_pair(est_name, **params)
    fit_kw = {}
    if est_name == CLF:
        fit_kw["classes"] = np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)
    sw = _sample_weight(X.shape[0])
    # chunks of different sizes, one of them weighted, the first one
    # leaving out rows, a repeated full pass at the end
    chunks = [slice(0, 120), slice(120, 300), slice(0, 300), slice(50, 250)]
    for i, chunk in enumerate(chunks):
        extra = dict(sample_weight=sw[chunk]) if i == 2 else {}
        kw = dict(fit_kw) if i == 0 else {}
        ref.partial_fit(X[chunk], y[chunk], **kw, **extra)
        ours.partial_fit(X[chunk], y[chunk], **kw, **extra)
        assert_params_agree(ref, ours)
        assert_history_agrees(ref, ours)
        assert_optimizer_state_agrees(ref, ours)
    # like sklearn, n_iter_ counts the epochs of the last call only
    assert ours.n_iter_ == 1
    assert len(ours.loss_curve_) == len(chunks)
    assert ours.t_ == sum(c.stop - c.start for c in chunks)
    assert_predictions_agree(ref, ours, X)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression", "multioutput"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sparse_input_agrees(solver, task, fmt):
    est_name, X, y = _task(task)
    rng = np.random.RandomState(0)
    Xs = X * (rng.uniform(size=X.shape) < 0.3)  # ~70% zeros
    Xs = sp.csr_matrix(Xs) if fmt == "csr" else sp.csc_matrix(Xs)
    if solver == "lbfgs":
        params = dict(_est_params(task), solver="lbfgs", max_iter=15)
    else:
        params = _stochastic_case(task, solver)
    ref, ours = _fit_pair(est_name, Xs, y, **params)
    if solver == "lbfgs":
        assert ours.n_iter_ == ref.n_iter_
        assert_predictions_agree(ref, ours, Xs, rtol=1e-5, atol=1e-8)
    else:
        _check_stochastic_agreement(ref, ours, Xs)
        assert_predictions_agree(ref, ours, Xs.toarray())


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_tol_early_stop_agrees(solver, task):
    est_name, X, y = _task(task)
    params = _stochastic_case(
        task, solver, tol=1e-2, n_iter_no_change=3, max_iter=300,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
    )
    ref, ours = _make_pair(est_name, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref.fit(X, y)
        ours.fit(X, y)  # no ConvergenceWarning: it stopped on tol
    assert ref.n_iter_ < params["max_iter"]
    assert ours._no_improvement_count == ref._no_improvement_count
    _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_convergence_warning_agrees(solver, task):
    est_name, X, y = _task(task)
    max_iter = 3
    params = dict(_est_params(task), solver=solver, max_iter=max_iter, tol=0.0)
    ref, ours = _make_pair(est_name, **params)
    with pytest.warns(ConvergenceWarning) as rec_ref:
        ref.fit(X, y)
    with pytest.warns(ConvergenceWarning) as rec_ours:
        ours.fit(X, y)
    msgs_ref = [str(w.message) for w in rec_ref if w.category is ConvergenceWarning]
    msgs = [str(w.message) for w in rec_ours if w.category is ConvergenceWarning]
    assert msgs == msgs_ref
    assert len(msgs) == 1
    assert f"{max_iter}" in msgs[0]
    assert ours.n_iter_ == ref.n_iter_ == max_iter


# ---------------------------------------------------------------------------
# partial_fit after set_params: sklearn's optimizer keeps the hyperparameters
# it was created with until the next fit (it is created on the first
# partial_fit call); skmlp must continue the same way.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "solver, change",
    [
        ("sgd", dict(momentum=0.2)),
        ("sgd", dict(nesterovs_momentum=False)),
        ("sgd", dict(learning_rate_init=0.5)),
        ("sgd", dict(alpha=0.5)),
        ("sgd", dict(batch_size=32)),
        ("adam", dict(beta_1=0.5)),
        ("adam", dict(beta_2=0.9)),
        ("adam", dict(epsilon=1e-3)),
        ("adam", dict(learning_rate_init=0.1)),
        ("adam", dict(solver="sgd")),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()),
)
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_partial_fit_after_set_params_agrees(task, solver, change):
    est_name, X, y = _task(task)
    params = _stochastic_case(task, solver)
    params.pop("max_iter")
    ref, ours = _make_pair(est_name, **params)
    kw = dict(classes=np.unique(y)) if est_name == CLF else {}
    ref.partial_fit(X, y, **kw)
    ours.partial_fit(X, y, **kw)
    ref.set_params(**change)
    ours.set_params(**change)
    for _ in range(2):
        ref.partial_fit(X, y)
        ours.partial_fit(X, y)
    assert_params_agree(ref, ours)
    assert_history_agrees(ref, ours)
    assert_predictions_agree(ref, ours, X)


# ---------------------------------------------------------------------------
# More rows than one block of the compiled predict / L-BFGS loops (1024)
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _large(est_name):
    if est_name == CLF:
        X, y = make_classification(
            n_samples=2500, n_features=8, n_informative=5, n_classes=3, random_state=9
        )
    else:
        X, y = make_regression(n_samples=2500, n_features=8, noise=1.0, random_state=9)
        y = y / y.std()
    return X, y


@pytest.mark.parametrize("sparse_input", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_many_rows_agree(est_name, solver, sparse_input):
    X, y = _large(est_name)
    if sparse_input:
        X = sp.csr_matrix(X * (np.random.RandomState(0).uniform(size=X.shape) < 0.5))
    params = dict(hidden_layer_sizes=(6,), random_state=0, solver=solver)
    if solver == "lbfgs":
        params["max_iter"] = 10
    else:
        # batches larger than a block, and a validation split larger than one
        params.update(max_iter=2, batch_size=1300, early_stopping=True,
                      validation_fraction=0.45, learning_rate_init=0.01)
    ref, ours = _fit_pair(est_name, X, y, **params)
    if solver == "lbfgs":
        assert ours.n_iter_ == ref.n_iter_
        assert_allclose(ours.loss_, ref.loss_, rtol=1e-6)
        assert_predictions_agree(ref, ours, X, rtol=1e-5, atol=1e-8)
    else:
        _check_stochastic_agreement(ref, ours, X)


@pytest.mark.parametrize(
    "solver, extra",
    [
        ("sgd", dict(learning_rate="adaptive", n_iter_no_change=1, tol=10.0)),
        ("adam", dict(early_stopping=True, n_iter_no_change=2, tol=0.0)),
        ("adam", dict(n_iter_no_change=2, tol=0.05)),
    ],
    ids=["sgd-adaptive", "adam-early-stopping", "adam-tol"],
)
def test_verbose_output_agrees(solver, extra, capsys):
    est_name, X, y = _task("multiclass")
    params = _stochastic_case("multiclass", solver, max_iter=12, verbose=True, **extra)
    ref, ours = _make_pair(est_name, **params)
    fit_quietly(ref, X, y)
    out_ref = capsys.readouterr().out
    fit_quietly(ours, X, y)
    out = capsys.readouterr().out
    assert out_ref.count("Iteration") == ref.n_iter_ > 0
    assert out == out_ref


# ---------------------------------------------------------------------------
# The label binarizer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("y", [
    np.array([3, 1, 2, 1, 0, 9, 3], dtype=np.int64),
    np.array([-5, 7, -5, 7], dtype=np.int8),
    np.array([200, 3, 200, 17], dtype=np.uint8),
    np.array([4, 4, 4], dtype=np.int32),                   # one class
    np.array([0, 1, 1, 0], dtype=np.uint64),
    np.array([True, False, True]),
    np.array([1.0, 2.0, 3.0, 2.0]),                        # floats: the regular path
    np.array(["b", "a", "c", "a"]),
    np.array(["x", "y", "x"], dtype=object),
    np.array([[1, 0, 1], [0, 1, 1]]),                      # multilabel
], ids=lambda y: f"{y.dtype}-{y.ndim}d-{len(np.unique(y))}")
def test_label_binarizer_fast_path(y):
    """_fit_label_binarizer sets what LabelBinarizer.fit sets, the same
    attributes with the same values and dtypes (the fast path for integer
    labels would miss an attribute a newer scikit-learn adds), and the two
    encode and decode alike."""
    from sklearn.preprocessing import LabelBinarizer
    from skmlp._multilayer_perceptron import _fit_label_binarizer

    ours, ref = _fit_label_binarizer(y), LabelBinarizer().fit(y)
    assert sorted(vars(ours)) == sorted(vars(ref))
    for name, value in vars(ref).items():
        mine = getattr(ours, name)
        if isinstance(value, np.ndarray):
            assert mine.dtype == value.dtype, name
            assert_array_equal(mine, value)
        else:
            assert mine == value and type(mine) is type(value), name
    assert_array_equal(ours.transform(y), ref.transform(y))
    assert_array_equal(ours.inverse_transform(ref.transform(y)),
                       ref.inverse_transform(ref.transform(y)))


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, bool])
def test_integer_labels_agree(dtype):
    """Integer and boolean labels of any width train the same model and give
    the same classes_ as scikit-learn."""
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4,
                               n_classes=2 if dtype is bool else 3,
                               random_state=0)
    y = y.astype(dtype)
    kw = dict(hidden_layer_sizes=(7,), max_iter=5, random_state=0)
    ours = fit_quietly(skmlp.MLPClassifier(**kw), X, y)
    ref = fit_quietly(sknn.MLPClassifier(**kw), X, y)
    assert ours.classes_.dtype == ref.classes_.dtype
    assert_array_equal(ours.classes_, ref.classes_)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert_array_equal(ours.predict(X), ref.predict(X))


def test_score_is_accuracy_score(monkeypatch):
    """MLPClassifier.score equals scikit-learn's ClassifierMixin.score,
    ``accuracy_score(y, predict(X), sample_weight)``, for every kind of
    target; 1-D integer and boolean labels without weights take the direct
    mean (no call to accuracy_score), the others accuracy_score itself."""
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score

    import skmlp._multilayer_perceptron as mlp_module

    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return accuracy_score(*args, **kwargs)

    monkeypatch.setattr(mlp_module, "accuracy_score", spy)
    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    y = y[:300]
    rs = np.random.RandomState(0)
    w = rs.uniform(0.5, 2, 300)
    cases = []  # (model's labels, scoring labels, sample_weight, direct?)
    for dtype in (np.int64, np.int32, np.uint8):
        cases.append((y, y.astype(dtype), None, True))
    shifted = y.copy()
    shifted[:40] = 11                      # labels the model never predicts
    cases += [(y, shifted, None, True), (y, y, w, False), (y, list(y), None, False),
              (y, pd.Series(y), None, False), (y, y.astype(float), None, False)]
    yb = y > 4
    cases += [(yb, yb, None, True), (yb, yb.astype(int), None, True),
              (yb, yb, w, False)]
    ys = np.array(["c%d" % v for v in y], dtype=object)
    cases += [(ys, ys, None, False)]
    ym = np.stack([y > 4, y % 2 == 0], axis=1).astype(int)
    cases += [(ym, ym, None, False)]
    for fit_y, score_y, sw, direct in cases:
        clf = fit_quietly(skmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5,
                                              random_state=0), X, fit_y)
        calls.clear()
        got = clf.score(X, score_y, sample_weight=sw)
        assert len(calls) == (0 if direct else 1), (type(score_y), sw is None)
        expected = accuracy_score(score_y, clf.predict(X), sample_weight=sw)
        assert type(got) is float
        assert got == expected
    # a target of the wrong length: accuracy_score's error
    clf = fit_quietly(skmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5,
                                          random_state=0), X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X, y[:-1])
    # and a column vector: accuracy_score's value
    calls.clear()
    assert clf.score(X, y[:, None]) == accuracy_score(y[:, None], clf.predict(X))
    assert len(calls) == 1
