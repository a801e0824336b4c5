"""Property-based fuzzing of the estimators with Hypothesis.

Over shapes (1..40 rows, 1..12 features), dtypes (float32, float64, int64),
dense or CSR input of random density, 1..3 hidden layers of 1..16 units,
every solver, hidden activation and regression loss, dropout, sample
weights (zeros included), class weights, and random finite data with
occasional huge magnitudes (up to 1e300 in float64, 3e38 in float32): every
fit either succeeds -- finite parameters, finite predictions, probabilities
that sum to 1 -- or raises a ValueError or TypeError with a message. Never
another exception, never non-finite parameters without an error. Where the
input is ordinary (unit-scale data, moderate step size, nothing the
estimator rejects by design), the fit must succeed.

The settings profile (tests/conftest.py) decides how many examples run:
"ci" (default, derandomized) or "thorough" (SKMLP_HYPOTHESIS_PROFILE=thorough).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from hypothesis import event, given, note
from hypothesis import strategies as st

from skmlp import MLPClassifier, MLPRegressor

SOLVERS = ["sgd", "adam", "adagrad", "rmsprop", "adamw", "lbfgs"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "prelu"]
LOSSES = ["squared_error", "absolute_error", "huber", "poisson"]
# magnitudes of the data: ordinary, large, and near each dtype's limit
SCALES = {
    np.float64: [1.0, 1e3, 1e10, 1e30, 1e150, 1e300],
    np.float32: [1.0, 1e3, 1e10, 1e30, 3e38],
    np.int64: [1.0, 1e3, 1e10, 1e15],
}


def _gist(exc):
    """The first words of an error message (for Hypothesis' statistics)."""
    return " ".join(str(exc).split()[:6])


def _accepted_error(exc):
    """A ValueError/TypeError that says something (anything else propagates)."""
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


@st.composite
def data_sets(draw, task, max_features=12):
    """(X, y, sample_weight, description) with numpy arrays from one seed."""
    n = draw(st.integers(1, 40), label="rows")
    p = draw(st.integers(1, max_features), label="features")
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]), label="dtype")
    scale = draw(st.sampled_from(SCALES[dtype]), label="scale")
    spike = draw(st.booleans(), label="one huge entry")
    density = draw(st.one_of(st.none(), st.floats(0.05, 1.0)), label="CSR density")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.RandomState(seed)

    X = rng.randn(n, p) * scale
    if spike:
        X[rng.randint(n), rng.randint(p)] = SCALES[dtype][-1] * rng.choice([-1, 1])
    if dtype == np.int64:
        X = np.round(X)
    else:  # finite in its dtype (3e38 * randn overflows float32)
        limit = np.finfo(dtype).max
        X = np.clip(X, -limit, limit)
    X = X.astype(dtype)
    if density is not None:
        X = sp.random(n, p, density=density, format="csr", random_state=rng,
                      data_rvs=lambda k: np.ones(k)).multiply(X).tocsr().astype(dtype)

    if task == "classifier":
        kind = draw(st.sampled_from(["labels", "strings", "multilabel"]), label="target")
        n_classes = draw(st.integers(1, 4), label="classes")
        labels = rng.randint(0, n_classes, n)
        if kind == "strings":
            y = np.array(["cat", "dog", "emu", "yak"])[labels]
        elif kind == "multilabel":
            y = rng.randint(0, 2, (n, max(n_classes, 2)))
        else:
            y = labels
    else:
        outputs = draw(st.integers(1, 2), label="outputs")
        target_scale = draw(st.sampled_from([1.0, 1e3, 1e30, 1e300]), label="target scale")
        y = rng.randn(n, outputs) * target_scale
        y = y.ravel() if outputs == 1 else y
        kind = "values"

    weighting = draw(st.sampled_from([None, "uniform", "with zeros"]), label="sample_weight")
    sw = None
    if weighting == "uniform":
        sw = rng.uniform(0.1, 3.0, n)
    elif weighting == "with zeros":
        sw = rng.uniform(0.0, 2.0, n) * (rng.rand(n) < 0.6)
    ordinary = scale == 1.0 and not spike and (task == "classifier" or target_scale == 1.0)
    return X, y, sw, dict(dtype=dtype, ordinary=ordinary, target=kind,
                          all_zero_weights=sw is not None and not sw.any())


@st.composite
def hyperparameters(draw, task):
    params = dict(
        hidden_layer_sizes=tuple(draw(st.lists(st.integers(1, 16), min_size=1, max_size=3),
                                      label="hidden")),
        solver=draw(st.sampled_from(SOLVERS), label="solver"),
        activation=draw(st.sampled_from(ACTIVATIONS), label="activation"),
        learning_rate_init=draw(st.sampled_from([1e-4, 1e-3, 1e-2, 0.1, 1.0]), label="lr"),
        learning_rate=draw(st.sampled_from(["constant", "invscaling", "adaptive"])),
        alpha=draw(st.sampled_from([0.0, 1e-4, 1.0]), label="alpha"),
        batch_size=draw(st.one_of(st.just("auto"), st.integers(1, 45)), label="batch_size"),
        max_iter=draw(st.integers(1, 4), label="max_iter"),
        dropout=draw(st.one_of(st.just(0.0), st.floats(0.05, 0.8)), label="dropout"),
        weight_init=draw(st.sampled_from(["glorot_uniform", "glorot_normal", "he_uniform",
                                          "he_normal", "uniform", "normal"])),
        early_stopping=draw(st.booleans(), label="early_stopping"),
        random_state=draw(st.integers(0, 1000), label="random_state"),
    )
    if task == "classifier":
        params["class_weight"] = draw(st.sampled_from([None, "balanced"]), label="class_weight")
    else:
        params["loss"] = draw(st.sampled_from(LOSSES), label="loss")
    return params


def _fit_and_check(est, X, y, sw, info, params):
    """The property: success with finite everything, or ValueError/TypeError."""
    note(f"X: {type(X).__name__} {X.shape} {X.dtype}; y: {np.asarray(y).shape}; "
         f"sample_weight: {None if sw is None else sw.round(2)}")
    expect_success = (
        info["ordinary"]
        and params["learning_rate_init"] <= 1e-2
        and not params["early_stopping"]  # the split may be impossible on few rows
        and not info["all_zero_weights"]
        and not (params.get("class_weight") and info["target"] == "multilabel")
        # exp() output: unit-scale data with a large initialisation can
        # overflow it within an epoch, a divergence (reported as such)
        and params.get("loss") != "poisson"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y, sample_weight=sw)
        except (ValueError, TypeError) as exc:
            note(f"{type(exc).__name__}: {exc}")
            event(f"fit raised {type(exc).__name__}: {_gist(exc)}")
            assert not expect_success, f"ordinary input rejected: {exc}"
            _accepted_error(exc)
            return
        event("fit succeeded")
        assert np.isfinite(est._theta).all(), "non-finite parameters without an error"
        assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
        assert est._theta.dtype == (np.float32 if info["dtype"] == np.float32 else np.float64)
        try:
            pred = est.predict(X)
            if isinstance(est, MLPClassifier):
                proba = est.predict_proba(X)
                assert np.isfinite(proba).all()
                tol = 1e-4 if proba.dtype == np.float32 else 1e-10
                if info["target"] == "multilabel":  # one probability per label
                    assert proba.shape == y.shape and ((proba >= 0) & (proba <= 1)).all()
                    assert pred.shape == y.shape and set(np.unique(pred)) <= {0, 1}
                else:
                    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=tol)
                    assert set(np.unique(pred)) <= set(est.classes_)
                    assert set(np.unique(y)) <= set(est.classes_)
            else:
                assert np.isfinite(pred).all()
                assert pred.shape == np.asarray(y).shape
        except ValueError as exc:
            # a forward pass that overflows says so (huge input only)
            note(f"predict: {exc}")
            event(f"predict raised: {_gist(exc)}")
            assert not expect_success, f"predict failed on ordinary input: {exc}"
            assert "not finite" in str(exc) or "too large" in str(exc), str(exc)


@given(data=data_sets("classifier"), params=hyperparameters("classifier"))
def test_fuzz_classifier_fit(data, params):
    X, y, sw, info = data
    _fit_and_check(MLPClassifier(**params), X, y, sw, info, params)


@given(data=data_sets("regressor"), params=hyperparameters("regressor"))
def test_fuzz_regressor_fit(data, params):
    X, y, sw, info = data
    if params["loss"] == "poisson":
        y = np.abs(y)  # Poisson targets are non-negative
    _fit_and_check(MLPRegressor(**params), X, y, sw, info, params)


_MODELS = {}


def _fitted_model(kind, dtype, activation):
    """A small model fitted on unit-scale data (one per kind, dtype, activation)."""
    key = (kind, dtype, activation)
    if key not in _MODELS:
        rng = np.random.RandomState(0)
        X = rng.randn(40, 5).astype(dtype)
        y = np.arange(40) % 3 if kind == "classifier" else rng.randn(40)
        cls = MLPClassifier if kind == "classifier" else MLPRegressor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _MODELS[key] = cls(hidden_layer_sizes=(6,), activation=activation, max_iter=20,
                               random_state=0).fit(X, y)
    return _MODELS[key]


@given(
    kind=st.sampled_from(["classifier", "regressor"]),
    model_dtype=st.sampled_from([np.float32, np.float64]),
    activation=st.sampled_from(ACTIVATIONS),
    data=data_sets("regressor", max_features=5),
)
def test_fuzz_predict(kind, model_dtype, activation, data):
    """Any finite input of the right width: finite predictions (probabilities
    summing to 1) or a ValueError saying the input is too large for the
    model's dtype / overflowed the forward pass; never NaN silently."""
    X, _, _, info = data
    if X.shape[1] < 5:  # widen to the model's 5 features
        pad = np.zeros((X.shape[0], 5 - X.shape[1]), dtype=X.dtype)
        X = sp.hstack([X, pad]).tocsr() if sp.issparse(X) else np.hstack([X, pad])
    est = _fitted_model(kind, model_dtype, activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if kind == "classifier":
                out = est.predict_proba(X)
                tol = 1e-4 if out.dtype == np.float32 else 1e-10
                np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=tol)
                assert np.isfinite(np.exp(est.predict_log_proba(X))).all()
            else:
                out = est.predict(X)
        except ValueError as exc:
            note(str(exc))
            event(f"predict raised: {_gist(exc)}")
            assert not info["ordinary"], f"ordinary input rejected: {exc}"
            assert "not finite" in str(exc) or "too large" in str(exc), str(exc)
            return
    assert np.isfinite(out).all()
    assert out.dtype == model_dtype


BATCHES = ["good", "good", "good", "nan X", "inf y", "wrong width", "negative weight",
           "short weight", "unseen label", "empty", "beyond float32", "1-D X"]


def _batch(kind, task, dtype, rng):
    """(X, y, sample_weight) of one partial_fit call of the given kind."""
    n = rng.randint(1, 25)
    X = rng.randn(n, 4).astype(dtype)
    y = rng.randint(0, 3, n) if task == "classifier" else rng.randn(n)
    sw = rng.uniform(0.5, 2.0, n) if rng.rand() < 0.5 else None
    if kind == "nan X":
        X[rng.randint(n), rng.randint(4)] = np.nan
    elif kind == "inf y":
        y = y.astype(float)
        y[rng.randint(n)] = np.inf
    elif kind == "wrong width":
        X = X[:, :3]
    elif kind == "negative weight":
        sw = -np.ones(n)
    elif kind == "short weight":
        sw = np.ones(n + 1)
    elif kind == "unseen label":
        y = np.full(n, 7) if task == "classifier" else y[:-1]
    elif kind == "empty":
        X, y, sw = X[:0], y[:0], None
    elif kind == "beyond float32":
        X = X.astype(np.float64) * 1e300  # the model is float32 (see below)
    elif kind == "1-D X":
        X = X[:, 0]
    return X, y, sw


@given(
    task=st.sampled_from(["classifier", "regressor"]),
    solver=st.sampled_from(SOLVERS[:-1]),
    activation=st.sampled_from(ACTIVATIONS),
    dropout=st.sampled_from([0.0, 0.3]),
    batches=st.lists(st.sampled_from(BATCHES), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_fuzz_partial_fit_sequences(task, solver, activation, dropout, batches, seed):
    """partial_fit over a random sequence of good and bad batches: each bad
    one raises (ValueError/TypeError) and leaves parameters, optimizer state
    and counters bit for bit as they were; the model ends where a twin that
    only saw the good batches ends."""
    rng = np.random.RandomState(seed)
    cls = MLPClassifier if task == "classifier" else MLPRegressor
    kw = dict(classes=[0, 1, 2]) if task == "classifier" else {}
    params = dict(hidden_layer_sizes=(5,), solver=solver, activation=activation,
                  dropout=dropout, random_state=seed % 1000, learning_rate_init=1e-3)
    est, twin = cls(**params), cls(**params)
    # The first batch is good and float32: it fixes the width (4) and the
    # training dtype, which the 'wrong width' and 'beyond float32' batches
    # (float64 data a float32 model cannot represent) then violate.
    for kind in ["good"] + batches:
        X, y, sw = _batch(kind, task, np.float32, rng)
        fitted = hasattr(est, "_theta")
        before = (est._theta.copy(), [s.copy() for s in (est._optimizer.state_1,
                  est._optimizer.state_2)], est._optimizer.t, est.t_,
                  list(est.loss_curve_)) if fitted else None
        assert fitted or kind == "good"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.partial_fit(X, y, sample_weight=sw, **kw)
            except (ValueError, TypeError) as exc:
                note(f"{kind}: {type(exc).__name__}: {exc}")
                assert kind != "good", f"a good batch failed: {exc}"
                _accepted_error(exc)
                if fitted:
                    theta, states, t, t_, curve = before
                    assert est._theta.tobytes() == theta.tobytes()
                    assert all(a.tobytes() == b.tobytes() for a, b in zip(
                        (est._optimizer.state_1, est._optimizer.state_2), states))
                    assert (est._optimizer.t, est.t_, est.loss_curve_) == (t, t_, curve)
                continue
            assert kind == "good", f"bad batch {kind!r} accepted"
            twin.partial_fit(X, y, sample_weight=sw, **kw)
        assert np.isfinite(est._theta).all()
        assert est._theta.tobytes() == twin._theta.tobytes()
