"""Numerical faults: huge logits, diverging fits, float32 on unscaled data.

* Output-layer logits of +-1e4 (set directly, and reached by training on data
  scaled up) give a finite loss, equal to a NumPy reference with scikit-learn's
  clipping, and predict_proba rows that are finite and sum to 1, for the
  logistic (binary, multilabel) and softmax (multiclass) outputs, float32 and
  float64.
* A diverging fit stops at the first epoch whose loss or parameters are
  non-finite (scikit-learn runs on to max_iter with NaN weights) and raises
  scikit-learn's ValueError with its message; the number of compiled epochs
  run, ``n_iter_`` and ``len(loss_curve_)`` all equal that epoch. Under
  early_stopping the diverged epoch's validation score is NaN (as in
  scikit-learn) and the best weights are restored with a ConvergenceWarning.
  partial_fit restores the model as it was before the diverging call.
* L-BFGS on overflowing data behaves as scikit-learn's: a ConvergenceWarning,
  finite (unchanged) weights, a NaN loss_.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sknn
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from skmlp import MLPClassifier, MLPRegressor
from skmlp import _multilayer_perceptron as mlp_module

SKLEARN_MSG = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)
STOCHASTIC = ("sgd", "adam", "adagrad", "rmsprop", "adamw")
DTYPES = (np.float32, np.float64)


def _problem(kind, dtype, n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, 4).astype(dtype)
    if kind == "binary":
        y = (X[:, 0] > 0.5).astype(int)
    elif kind == "multiclass":
        y = np.arange(n) % 3
    else:  # multilabel
        y = (rng.rand(n, 3) > 0.5).astype(int)
        y[0] = [1, 0, 1]
        y[1] = [0, 1, 0]
    return X, y


def _reference_log_loss(est, X, Y, P):
    """scikit-learn's objective from probabilities P: mean log-loss with
    probabilities clipped to [eps, 1 - eps] (eps of P's dtype) plus the L2
    term, in float64."""
    eps = np.finfo(P.dtype).eps
    P = np.clip(P.astype(np.float64), eps, 1 - eps)
    if est.out_activation_ == "softmax":
        loss = -np.sum(Y * np.log(P)) / X.shape[0]
    else:
        loss = -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P)) / X.shape[0]
    l2 = sum(np.sum(c.astype(np.float64) ** 2) for c in est.coefs_)
    return loss + 0.5 * est.alpha * l2 / X.shape[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_logits_of_1e4_give_finite_loss_and_probabilities(kind, dtype):
    X, y = _problem(kind, dtype)
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est._theta.dtype == dtype
    n_out = est.coefs_[-1].shape[1]
    # logits +1e4 / -1e4 alternating over the outputs, for every sample
    est.coefs_[-1][:] = 0
    est.intercepts_[-1][:] = np.where(np.arange(n_out) % 2 == 0, 1e4, -1e4)
    P = est.predict_proba(X)
    assert P.dtype == dtype
    assert np.isfinite(P).all()
    if kind == "multilabel":
        assert_array_equal(P, np.tile(np.arange(n_out) % 2 == 0, (X.shape[0], 1)))
    else:
        assert_array_equal(P.sum(axis=1), 1)
        assert ((P >= 0) & (P <= 1)).all()
    Y = est._label_binarizer.transform(y)
    loss, grad = est._loss_grad_function(X, Y, None)(est._theta)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    # the kernel's loss: scikit-learn's clipped log-loss of these probabilities
    P_out = est._forward_pass_fast(X)
    ref = _reference_log_loss(est, X, Y, P_out)
    np.testing.assert_allclose(loss, ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert np.isfinite(est.score(X, y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_training_to_huge_logits_keeps_loss_and_probabilities_finite(kind, dtype):
    """Unscaled inputs (1e4 per feature) and a large step drive the logits far
    beyond where exp over- or underflows; the loss and probabilities stay finite."""
    X, y = _problem(kind, dtype)
    X = X * dtype(1e4)
    est = MLPClassifier(hidden_layer_sizes=(8,), activation="identity", solver="sgd",
                        learning_rate_init=0.1, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # the logits of the trained net, from its parameters in NumPy
    A = X.astype(np.float64)
    for W, b in zip(est.coefs_, est.intercepts_):
        A = A @ W + b
    assert np.abs(A).max() > 1e3, "the logits did not get large: test set-up"
    assert np.isfinite(est.loss_curve_).all()
    P = est.predict_proba(X)
    assert P.dtype == dtype and np.isfinite(P).all()
    if kind != "multilabel":
        np.testing.assert_allclose(P.sum(axis=1), 1, rtol=0, atol=4 * np.finfo(dtype).eps)
    Y = est._label_binarizer.transform(y)
    loss = est._loss_grad_function(X, Y, None)(est._theta)[0]
    assert np.isfinite(loss)


# ---------------------------------------------------------------------------
# Diverging fits
# ---------------------------------------------------------------------------


def _unscaled(est_name, dtype=np.float64):
    rng = np.random.RandomState(0)
    X = (rng.rand(100, 5) * 1e4).astype(dtype)
    y = X.sum(axis=1) if est_name == "reg" else (X[:, 0] > 5e3).astype(int)
    return X, y


class _EpochCounter:
    """Wraps the compiled epoch; records the loss and parameter finiteness of
    every epoch it runs."""

    def __init__(self, monkeypatch):
        self.real = mlp_module._mlp_fast._train_epoch
        self.losses = []
        self.finite_params = []
        monkeypatch.setattr(mlp_module._mlp_fast, "_train_epoch", self)

    def __call__(self, *args):
        loss, t, finite = self.real(*args)
        theta = args[15]  # _train_epoch's parameter vector
        self.losses.append(loss)
        self.finite_params.append(bool(np.isfinite(theta).all()))
        assert finite == self.finite_params[-1]  # the kernel's own check
        return loss, t, finite

    def first_non_finite(self):
        """1-based epoch whose loss or resulting parameters are non-finite."""
        for i, (loss, ok) in enumerate(zip(self.losses, self.finite_params)):
            if not (np.isfinite(loss) and ok):
                return i + 1
        return None


# (estimator, solver, learning_rate_init, dtype): each diverges after >= 2 epochs
DIVERGING = [
    ("reg", "sgd", 1e3, np.float64),
    ("reg", "sgd", 1e3, np.float32),
    ("clf", "sgd", 1e30, np.float64),
    ("reg", "adam", 1e100, np.float64),
    ("reg", "adam", 1e10, np.float32),
    ("reg", "adagrad", 1e100, np.float64),
    ("clf", "adagrad", 1e30, np.float32),
    ("reg", "rmsprop", 1e100, np.float64),
    ("clf", "rmsprop", 1e30, np.float32),
    ("reg", "adamw", 1e30, np.float64),
    ("clf", "adamw", 1e10, np.float32),
]


def _diverging(est_name, solver, lr, **params):
    Est = MLPRegressor if est_name == "reg" else MLPClassifier
    return Est(solver=solver, learning_rate_init=lr, max_iter=30, random_state=0,
               hidden_layer_sizes=(8,), activation="identity", **params)


@pytest.mark.parametrize("est_name, solver, lr, dtype", DIVERGING)
def test_diverging_fit_stops_at_first_non_finite_epoch(est_name, solver, lr, dtype,
                                                      monkeypatch):
    X, y = _unscaled(est_name, dtype)
    counter = _EpochCounter(monkeypatch)
    est = _diverging(est_name, solver, lr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no max_iter warning
        with pytest.raises(ValueError) as exc:
            est.fit(X, y)
    assert str(exc.value) == SKLEARN_MSG
    first = counter.first_non_finite()
    assert first is not None and first >= 2, counter.losses
    # no epoch ran after the first non-finite one
    assert len(counter.losses) == first
    assert est.n_iter_ == first
    assert len(est.loss_curve_) == first
    assert np.isfinite(est.loss_curve_[:-1]).all()
    assert est.t_ == first * X.shape[0]
    assert len(est.history_["train_loss"]) == first
    # the note says what and where
    notes = " ".join(getattr(exc.value, "__notes__", []))
    if notes:
        assert f"epoch {first}" in notes


@pytest.mark.parametrize("est_name", ["reg", "clf"])
def test_diverging_fit_raises_sklearns_error(est_name):
    """Same configuration in scikit-learn: the same exception type and message
    (scikit-learn gets there after running all of max_iter on NaN weights)."""
    X, y = _unscaled(est_name)
    lr = 1e3 if est_name == "reg" else 1e30
    params = dict(solver="sgd", learning_rate_init=lr, max_iter=30, random_state=0,
                  hidden_layer_sizes=(8,), activation="identity")
    Ref = sknn.MLPRegressor if est_name == "reg" else sknn.MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as exc_ref:
            Ref(**params).fit(X, y)
    ours = _diverging(est_name, "sgd", lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError) as exc:
            ours.fit(X, y)
    assert type(exc.value) is type(exc_ref.value)
    assert str(exc.value) == str(exc_ref.value)
    assert ours.n_iter_ < 30


def test_loss_overflow_with_finite_parameters_stops_too(monkeypatch):
    """A float32 classifier whose L2 term overflows (weights ~1e20) while the
    weights are still finite: stopped there, with scikit-learn's message and a
    note naming the training loss."""
    X, y = _unscaled("clf", np.float32)
    counter = _EpochCounter(monkeypatch)
    est = _diverging("clf", "sgd", 1e3)
    with pytest.raises(ValueError, match=re.escape(SKLEARN_MSG)) as exc:
        est.fit(X, y)
    assert counter.finite_params[-1]
    assert not np.isfinite(counter.losses[-1])
    assert est.n_iter_ == len(counter.losses) == len(est.loss_curve_)
    if hasattr(exc.value, "__notes__"):
        assert "training loss became non-finite" in exc.value.__notes__[0]


@pytest.mark.parametrize("est_name", ["reg", "clf"])
def test_diverging_fit_with_early_stopping_restores_best_weights(est_name, monkeypatch):
    X, y = _unscaled(est_name)
    lr = 1e3 if est_name == "reg" else 1e100
    counter = _EpochCounter(monkeypatch)
    est = _diverging(est_name, "sgd", lr, early_stopping=True, n_iter_no_change=50)
    with pytest.warns(ConvergenceWarning, match="Training diverged in epoch") as rec:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est.fit(X, y)
    first = counter.first_non_finite()
    assert first >= 2 and not counter.finite_params[-1]
    assert len(counter.losses) == first == est.n_iter_
    assert len(est.validation_scores_) == len(est.loss_curve_) == first
    # as in scikit-learn: the diverged epoch's validation score is NaN ...
    assert np.isnan(est.validation_scores_[-1])
    # ... never the best; the best epoch's weights are back, finite
    finite_scores = [s for s in est.validation_scores_ if np.isfinite(s)]
    assert est.best_validation_score_ == max(finite_scores)
    assert np.isfinite(est._theta).all()
    assert_array_equal(est._theta, est._best_theta)
    assert np.isfinite(est.predict(X).astype(float)).all()
    assert f"({est.best_validation_score_:.6g})" in str(rec[0].message)


def test_diverging_first_epoch_with_early_stopping_raises():
    """No epoch with a usable validation score: nothing to restore, so the
    non-finite weights fail the final check (scikit-learn crashes here with an
    AttributeError on its missing best weights)."""
    X, y = _unscaled("reg")
    est = MLPRegressor(solver="sgd", learning_rate_init=1e300, max_iter=30,
                       random_state=0, hidden_layer_sizes=(8,), activation="identity",
                       early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=re.escape(SKLEARN_MSG)):
            est.fit(X, y)
    assert est.n_iter_ == 1
    assert np.isnan(est.validation_scores_[0])


@pytest.mark.parametrize("solver", STOCHASTIC)
def test_diverging_partial_fit_restores_the_model(solver, monkeypatch):
    X, y = _unscaled("reg")
    Xs = X / 1e4
    est = MLPRegressor(solver=solver, hidden_layer_sizes=(8,), activation="identity",
                       random_state=0, learning_rate_init=1e-3, dropout=0.1)
    for _ in range(3):
        est.partial_fit(Xs, y / 1e4)
    before = pickle.loads(pickle.dumps(est))
    # a diverging step: huge data and step size (the optimizer keeps the step
    # size it was made with, so the data does the diverging)
    big = X * 1e150
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=re.escape(SKLEARN_MSG)) as exc:
            est.partial_fit(big, y * 1e150)
    if hasattr(exc.value, "__notes__"):
        assert any("left the model as it was" in n for n in exc.value.__notes__)
    # everything as before the call: parameters, optimizer, counters, history
    assert_array_equal(est._theta, before._theta)
    assert_array_equal(est._optimizer.state_1, before._optimizer.state_1)
    assert_array_equal(est._optimizer.state_2, before._optimizer.state_2)
    assert est._optimizer.t == before._optimizer.t
    assert_array_equal(est._dropout_rng, before._dropout_rng)
    assert est.n_iter_ == before.n_iter_ and est.t_ == before.t_
    assert est.loss_curve_ == before.loss_curve_
    assert est.history_ == before.history_
    # and it trains on exactly as the copy does
    est.partial_fit(Xs, y / 1e4)
    before.partial_fit(Xs, y / 1e4)
    assert_array_equal(est._theta, before._theta)


def test_lbfgs_on_overflowing_data_behaves_like_sklearn():
    rng = np.random.RandomState(0)
    X = rng.rand(50, 4) * 1e100
    y = X.sum(axis=1)
    params = dict(solver="lbfgs", max_iter=30, random_state=0,
                  activation="identity", hidden_layer_sizes=(5,))
    outcomes = []
    for Est in (sknn.MLPRegressor, MLPRegressor):
        est = Est(**params)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            est.fit(X, y)
        conv = [w for w in rec if issubclass(w.category, ConvergenceWarning)]
        outcomes.append((est.n_iter_, np.isnan(est.loss_), len(conv),
                         all(np.isfinite(c).all() for c in est.coefs_)))
    assert outcomes[0] == outcomes[1] == (0, True, 1, True)


@pytest.mark.parametrize("solver", ["lbfgs", *STOCHASTIC])
@pytest.mark.parametrize("est_name", ["reg", "clf"])
def test_float32_on_unscaled_data_is_finite_or_fails_clearly(est_name, solver):
    """Features of 1e4 .. 1e6 in float32 with default settings: the model is
    finite everywhere, or fit raises scikit-learn's ValueError."""
    rng = np.random.RandomState(1)
    X = (10 ** rng.uniform(4, 6, size=(200, 6))).astype(np.float32)
    y = X @ rng.rand(6) if est_name == "reg" else (X[:, 0] > X[:, 1]).astype(int)
    Est = MLPRegressor if est_name == "reg" else MLPClassifier
    est = Est(solver=solver, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit(X, y)
        except ValueError as exc:
            assert str(exc) == SKLEARN_MSG
            return
    assert est._theta.dtype == np.float32
    assert np.isfinite(est._theta).all()
    out = est._forward_pass_fast(X)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    if solver != "lbfgs":
        assert np.isfinite(est.loss_curve_).all()
    assert np.isfinite(est.loss_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 8, 33, 7510])
def test_kernel_finiteness_check(dtype, size):
    """The epoch kernel says whether every parameter is finite
    (np.isfinite(theta).all()), wherever the bad value sits: first, last, in
    a vector's remainder; for inf, -inf and NaN, and not for the largest
    finite values or subnormals."""
    from skmlp import _mlp_fast
    x = np.random.RandomState(0).standard_normal(size).astype(dtype)
    assert _mlp_fast._py_all_finite(x) is True
    x[-1] = np.finfo(dtype).max
    x[0] = -np.finfo(dtype).max
    x[size // 2] = np.finfo(dtype).smallest_subnormal
    assert _mlp_fast._py_all_finite(x) is True
    for pos in sorted({0, size // 2, size - 1, max(size - 3, 0)}):
        for bad in (np.inf, -np.inf, np.nan):
            y = x.copy()
            y[pos] = bad
            assert _mlp_fast._py_all_finite(y) is False, (pos, bad)
