"""skmlp estimators in scikit-learn's machinery (pipelines, model selection,
cloning), serialisation, user-assigned weights, feature names, the estimator
API surface and error behaviour -- compared with sklearn where that is
deterministic."""

import copy
import inspect
import io
import pickle
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

import skmlp

from _helpers import assert_same_optimizer_state, read_only, run_child as _run_child

CLF = "MLPClassifier"
REG = "MLPRegressor"


@lru_cache(maxsize=None)
def _data(est_name):
    if est_name == CLF:
        X, y = make_classification(
            n_samples=200, n_features=12, n_informative=6, n_classes=3,
            random_state=0,
        )
    else:
        X, y = make_regression(
            n_samples=200, n_features=12, n_informative=8, noise=1.0, random_state=0
        )
        y = y / y.std()
    # shifted and scaled features, so that StandardScaler matters
    X = X * np.linspace(0.5, 20, X.shape[1]) + np.linspace(-5, 5, X.shape[1])
    # shared between tests: read-only, so that no estimator writes into it
    return read_only(X, y)


def _scaled(X):
    return StandardScaler().fit_transform(X)


BASE = dict(hidden_layer_sizes=(10, 6), random_state=0)
STOCHASTIC = dict(BASE, solver="adam", learning_rate_init=0.01, max_iter=5)


def _pair(est_name, **params):
    return getattr(sknn, est_name)(**params), getattr(skmlp, est_name)(**params)


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


# ---------------------------------------------------------------------------
# Pipelines and model selection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_pipeline_with_scaler_matches_sklearn(est_name, solver):
    X, y = _data(est_name)
    params = dict(STOCHASTIC, solver=solver)
    if solver == "lbfgs":
        params["max_iter"] = 10
    ref, ours = _pair(est_name, **params)
    pipe_ref = Pipeline([("scale", StandardScaler()), ("mlp", ref)]).fit(X, y)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", ours)]).fit(X, y)
    assert pipe.named_steps["mlp"] is ours
    check_is_fitted(ours)
    tol = dict(rtol=1e-5, atol=1e-8) if solver == "lbfgs" else dict(rtol=1e-6, atol=1e-10)
    assert_allclose(_output(pipe, X), _output(pipe_ref, X), **tol)
    if est_name == CLF:
        assert_array_equal(pipe.predict(X), pipe_ref.predict(X))
    assert_allclose(pipe.score(X, y), pipe_ref.score(X, y), rtol=1e-6)
    # the scaler matters: the MLP alone on raw data is a different model
    raw = getattr(skmlp, est_name)(**params).fit(X, y)
    assert not np.allclose(_output(raw, X), _output(pipe, X), rtol=1e-3)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_grid_search_matches_sklearn(est_name):
    X, y = _data(est_name)
    X = _scaled(X)
    grid = {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(5,), (8, 4)]}
    scoring = "neg_log_loss" if est_name == CLF else "r2"
    ref, ours = _pair(est_name, **STOCHASTIC)
    gs_ref = GridSearchCV(ref, grid, cv=3, scoring=scoring).fit(X, y)
    gs = GridSearchCV(ours, grid, cv=3, scoring=scoring).fit(X, y)
    assert isinstance(gs.best_estimator_, getattr(skmlp, est_name))
    assert gs.best_params_ == gs_ref.best_params_
    for key in ["mean_test_score", "std_test_score"] + [f"split{i}_test_score" for i in range(3)]:
        assert_allclose(gs.cv_results_[key], gs_ref.cv_results_[key], rtol=1e-6, atol=1e-10)
    assert_allclose(_output(gs, X), _output(gs_ref, X), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize(
    "est_name, cv, scoring",
    [
        (CLF, "kfold", None),
        (CLF, "kfold", "neg_log_loss"),
        (CLF, "stratified", None),
        (CLF, "stratified", "neg_log_loss"),
        (REG, "kfold", None),
        (REG, "kfold", "neg_mean_squared_error"),
    ],
)
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_cross_val_score_matches_sklearn(est_name, cv, scoring, solver):
    X, y = _data(est_name)
    X = _scaled(X)
    splitter = (
        KFold(n_splits=4, shuffle=True, random_state=1)
        if cv == "kfold"
        else StratifiedKFold(n_splits=4, shuffle=True, random_state=1)
    )
    params = dict(STOCHASTIC, solver=solver)
    if solver == "lbfgs":
        params["max_iter"] = 10
    ref, ours = _pair(est_name, **params)
    scores_ref = cross_val_score(ref, X, y, cv=splitter, scoring=scoring)
    scores = cross_val_score(ours, X, y, cv=splitter, scoring=scoring)
    assert scores.shape == (4,)
    assert np.isfinite(scores).all()
    rtol = 1e-5 if solver == "lbfgs" else 1e-6
    assert_allclose(scores, scores_ref, rtol=rtol, atol=1e-10)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_clone(est_name):
    X, y = _data(est_name)
    X = _scaled(X)
    est = getattr(skmlp, est_name)(**dict(STOCHASTIC, alpha=0.3, momentum=0.5)).fit(X, y)
    cloned = clone(est)
    assert type(cloned) is type(est)
    assert cloned.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    for attr in ("coefs_", "intercepts_", "_theta", "_optimizer", "loss_curve_"):
        assert not hasattr(cloned, attr)
    cloned.fit(X, y)
    # same seed, same data: bitwise the same model
    assert_array_equal(cloned._theta, est._theta)
    assert_array_equal(_output(cloned, X), _output(est, X))
    assert not np.shares_memory(cloned._theta, est._theta)


# ---------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------


def _round_trip(est, how):
    if how == "pickle":
        return pickle.loads(pickle.dumps(est))
    if how == "joblib":
        buf = io.BytesIO()
        joblib.dump(est, buf)
        buf.seek(0)
        return joblib.load(buf)
    if how == "deepcopy":
        return copy.deepcopy(est)
    raise KeyError(how)


def _assert_views_of_theta(est):
    theta = est._theta
    assert len(est.coefs_) == len(est.intercepts_) == est.n_layers_ - 1
    for arr in list(est.coefs_) + list(est.intercepts_):
        assert isinstance(arr, np.ndarray)
        assert np.shares_memory(arr, theta)
    # together they cover the whole vector, [W0, b0, W1, b1, ...]
    flat = np.concatenate(
        [a.ravel() for pair in zip(est.coefs_, est.intercepts_) for a in pair]
    )
    assert_array_equal(flat, theta)


def _assert_same_state(a, b):
    """Bitwise equality of everything training produced."""
    assert_array_equal(a._theta, b._theta)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(x, y)
    assert_same_optimizer_state(a, b)
    for attr in ("n_iter_", "t_", "loss_", "loss_curve_", "validation_scores_",
                 "best_validation_score_", "best_loss_"):
        if hasattr(a, attr):
            assert getattr(a, attr) == getattr(b, attr), attr


STAGES = ["unfitted", "fitted", "fitted_lbfgs", "partial_fit_1", "partial_fit_3",
          "early_stopped"]


def _staged(est_name, stage, random_state):
    X, y = _data(est_name)
    X = _scaled(X)
    Est = getattr(skmlp, est_name)
    params = dict(STOCHASTIC, random_state=random_state)
    pf_kw = dict(classes=np.unique(y)) if est_name == CLF else {}
    if stage == "unfitted":
        est = Est(**params)
    elif stage == "fitted":
        est = Est(**dict(params, solver="sgd")).fit(X, y)
    elif stage == "fitted_lbfgs":
        est = Est(**dict(params, solver="lbfgs", max_iter=5)).fit(X, y)
    elif stage.startswith("partial_fit"):
        est = Est(**params)
        for i in range(int(stage[-1])):
            est.partial_fit(X[i * 30 : i * 30 + 120], y[i * 30 : i * 30 + 120],
                            **(pf_kw if i == 0 else {}))
    elif stage == "early_stopped":
        est = Est(**dict(params, solver="sgd", learning_rate_init=0.1,
                         early_stopping=True, n_iter_no_change=2, tol=0.0,
                         max_iter=100)).fit(X, y)
        assert est.n_iter_ < 100
    return est, X, y


def _continue(est, stage, X, y):
    """Continue training the way the stage allows."""
    if stage == "unfitted":
        return est.fit(X, y)
    if stage in ("fitted_lbfgs", "early_stopped"):
        return est.set_params(warm_start=True, max_iter=3).fit(X[:150], y[:150])
    est.partial_fit(X[10:160], y[10:160])
    return est.partial_fit(X[40:], y[40:])


@pytest.mark.parametrize("how", ["pickle", "joblib", "deepcopy"])
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_round_trip(est_name, stage, how):
    est, X, y = _staged(est_name, stage, random_state=0)
    restored = _round_trip(est, how)
    assert type(restored) is type(est)
    assert restored.get_params() == est.get_params()
    if stage == "unfitted":
        with pytest.raises(NotFittedError):
            check_is_fitted(restored)
    else:
        assert not np.shares_memory(restored._theta, est._theta)
        _assert_views_of_theta(restored)
        _assert_same_state(restored, est)
        assert_array_equal(restored.predict(X), est.predict(X))
        assert_array_equal(_output(restored, X), _output(est, X))
    # continuing training gives bitwise the same model as on the original
    _continue(est, stage, X, y)
    _continue(restored, stage, X, y)
    _assert_views_of_theta(restored)
    _assert_views_of_theta(est)
    _assert_same_state(restored, est)
    assert_array_equal(_output(restored, X), _output(est, X))


@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_round_trip_with_random_state_instance(est_name, how):
    """With a RandomState instance the shuffling stream continues across
    partial_fit calls; the copy carries the generator's state along."""
    est, X, y = _staged(est_name, "partial_fit_3", np.random.RandomState(3))
    restored = _round_trip(est, how)
    assert restored._random_state is restored.random_state
    _continue(est, "partial_fit_3", X, y)
    _continue(restored, "partial_fit_3", X, y)
    _assert_same_state(restored, est)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_joblib_memory_mapped_model_predicts(est_name, tmp_path):
    est, X, _ = _staged(est_name, "fitted", random_state=0)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    loaded = joblib.load(path, mmap_mode="r")
    _assert_views_of_theta(loaded)
    assert_array_equal(_output(loaded, X), _output(est, X))


# ---------------------------------------------------------------------------
# Assigned weights
# ---------------------------------------------------------------------------

_HIDDEN = {
    "identity": lambda z: z,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_OUT = {"identity": lambda z: z, "logistic": expit, "softmax": _softmax, "exp": np.exp}


def numpy_forward(est, X, coefs, intercepts):
    """What predict_proba (classifier) / predict (regressor) must return for
    a network with these weights."""
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ W + b
        a = _OUT[est.out_activation_](z) if i == len(coefs) - 1 else _HIDDEN[est.activation](z)
    if hasattr(est, "predict_proba"):
        return np.hstack([1 - a, a]) if a.shape[1] == 1 else a
    return a.ravel() if a.shape[1] == 1 else a


def _fitted(est_name, task="default", activation="relu"):
    X, y = _data(est_name)
    X = _scaled(X)
    if task == "binary":
        y = (y > 0).astype(int)
    elif task == "poisson":
        y = np.exp(y / 2)
    params = dict(STOCHASTIC, activation=activation)
    if task == "poisson":
        params["loss"] = "poisson"
    ref, ours = _pair(est_name, **params)
    return ref.fit(X, y), ours.fit(X, y), X, y


CASES = [
    (CLF, "default", "relu"),
    (CLF, "binary", "tanh"),
    (REG, "default", "logistic"),
    (REG, "poisson", "identity"),
]


def _assign(est, mode, rng_seed=0):
    """Replace weights on ``est``; return the (coefs, intercepts) it should use."""
    rng = np.random.RandomState(rng_seed)
    coefs = [np.array(c) for c in est.coefs_]
    intercepts = [np.array(b) for b in est.intercepts_]
    if mode == "scale_coefs_list":
        coefs = [1.5 * c for c in coefs]
        est.coefs_ = [c.copy() for c in coefs]
    elif mode == "replace_coef_element":
        coefs[0] = rng.normal(scale=0.3, size=coefs[0].shape)
        est.coefs_[0] = coefs[0].copy()
    elif mode == "replace_intercepts":
        intercepts = [b + rng.normal(scale=0.2, size=b.shape) for b in intercepts]
        est.intercepts_ = [b.copy() for b in intercepts]
    elif mode == "fortran_order_element":
        coefs[-1] = -coefs[-1]
        est.coefs_[-1] = np.asfortranarray(coefs[-1])
    elif mode == "in_place":
        coefs[1] = coefs[1] * 0.5
        est.coefs_[1] *= 0.5
    else:
        raise KeyError(mode)
    return coefs, intercepts


ASSIGN_MODES = ["scale_coefs_list", "replace_coef_element", "replace_intercepts",
                "fortran_order_element", "in_place"]


@pytest.mark.parametrize("mode", ASSIGN_MODES)
@pytest.mark.parametrize("est_name, task, activation", CASES)
def test_assigned_weights_change_predictions(est_name, task, activation, mode):
    ref, ours, X, _ = _fitted(est_name, task, activation)
    before = _output(ours, X)
    coefs, intercepts = _assign(ours, mode)
    _assign(ref, mode)
    expected = numpy_forward(ours, X, coefs, intercepts)
    got = _output(ours, X)
    assert not np.allclose(got, before)
    assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # sklearn, given the same weights, predicts the same
    assert_allclose(got, _output(ref, X), rtol=1e-6, atol=1e-10)
    if est_name == CLF:
        assert_array_equal(ours.predict(X), ref.predict(X))
    # the views are re-established
    _assert_views_of_theta(ours)
    for c, w in zip(ours.coefs_, coefs):
        assert_array_equal(c, w)


@pytest.mark.parametrize("mode", ["scale_coefs_list", "replace_coef_element",
                                  "replace_intercepts"])
@pytest.mark.parametrize("est_name, task, activation", CASES)
def test_training_continues_from_assigned_weights(est_name, task, activation, mode):
    ref, ours, X, y = _fitted(est_name, task, activation)
    _assign(ref, mode)
    _assign(ours, mode)
    ref.partial_fit(X, y)
    ours.partial_fit(X, y)
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        assert_allclose(b, a, rtol=1e-6, atol=1e-10)
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("mode", ["scale_coefs_list", "replace_coef_element"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_assigned_weights_survive_pickle(est_name, mode):
    _, ours, X, _ = _fitted(est_name)
    coefs, intercepts = _assign(ours, mode)
    restored = pickle.loads(pickle.dumps(ours))  # no predict before pickling
    _assert_views_of_theta(restored)
    assert_allclose(_output(restored, X), numpy_forward(ours, X, coefs, intercepts),
                    rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# pandas input and feature names
# ---------------------------------------------------------------------------


def _normalise_sets(msg):
    """Sort the items of ``{...}`` in a message: set order varies with the
    per-process string hash seed."""
    return re.sub(
        r"\{([^{}]*)\}",
        lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
        msg,
    )


def _outcome(func):
    """('error', type, message) or ('ok', [(warning category, message)])."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - compared with sklearn's
            return ("error", type(exc), _normalise_sets(str(exc)))
    relevant = [(w.category, str(w.message)) for w in rec
                if not issubclass(w.category, ConvergenceWarning)]
    return ("ok", relevant)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_feature_names(est_name):
    X, y = _data(est_name)
    X = _scaled(X)
    cols = [f"feat_{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    ref, ours = _pair(est_name, **STOCHASTIC)
    ref.fit(df, pd.Series(y, name="target"))
    ours.fit(df, pd.Series(y, name="target"))
    assert_array_equal(ours.feature_names_in_, ref.feature_names_in_)
    assert_array_equal(ours.feature_names_in_, np.array(cols, dtype=object))
    assert ours.n_features_in_ == X.shape[1]
    assert_allclose(_output(ours, df), _output(ref, df), rtol=1e-6, atol=1e-10)

    renamed = df.rename(columns={"feat_3": "other"})
    reordered = df[cols[::-1]]
    variants = {
        "same": df,
        "renamed": renamed,
        "reordered": reordered,
        "numpy": X,
        "fewer_columns": df.iloc[:, :-1],
    }
    methods = ["predict", "score"] + (["predict_proba"] if est_name == CLF else [])
    for key, data in variants.items():
        for method in methods:
            args = (data, y) if method == "score" else (data,)
            out_ref = _outcome(lambda: getattr(ref, method)(*args))
            out = _outcome(lambda: getattr(ours, method)(*args))
            assert out == out_ref, (key, method)
    # the cases behave as sklearn documents them (so the comparison is not vacuous)
    assert _outcome(lambda: ours.predict(df)) == ("ok", [])
    assert _outcome(lambda: ours.predict(renamed))[0] == "error"
    assert _outcome(lambda: ours.predict(reordered))[0] == "error"
    kind, warns = _outcome(lambda: ours.predict(X))
    assert kind == "ok" and any("feature names" in m for _, m in warns)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_fitted_without_names_predicted_with_dataframe(est_name):
    X, y = _data(est_name)
    X = _scaled(X)
    ref, ours = _pair(est_name, **STOCHASTIC)
    ref.fit(X, y)
    ours.fit(X, y)
    assert not hasattr(ours, "feature_names_in_")
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    out_ref = _outcome(lambda: ref.predict(df))
    out = _outcome(lambda: ours.predict(df))
    assert out == out_ref
    assert out[0] == "ok" and len(out[1]) == 1


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_dataframe_input_same_model_as_numpy(est_name, solver):
    X, y = _data(est_name)
    X = _scaled(X)
    params = dict(STOCHASTIC, solver=solver)
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    a = getattr(skmlp, est_name)(**params).fit(df, pd.Series(y))
    b = getattr(skmlp, est_name)(**params).fit(X, y)
    assert_array_equal(a._theta, b._theta)


# ---------------------------------------------------------------------------
# Estimator API surface
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_constructor_signature_matches_sklearn(est_name):
    sig_ref = inspect.signature(getattr(sknn, est_name).__init__)
    sig = inspect.signature(getattr(skmlp, est_name).__init__)
    params_ref = list(sig_ref.parameters.values())
    params = list(sig.parameters.values())
    # scikit-learn's parameters first, in its order, kinds and defaults ...
    assert [p.name for p in params[: len(params_ref)]] == [p.name for p in params_ref]
    for p, q in zip(params, params_ref):
        assert p.kind == q.kind, p.name
        assert p.default == q.default, p.name
        assert type(p.default) is type(q.default), p.name
    # ... then skmlp's own, keyword-only (so no positional call changes meaning)
    for p in params[len(params_ref):]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p.name


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_get_set_params_match_sklearn(est_name):
    ref, ours = _pair(est_name)
    # skmlp's own parameters come on top of scikit-learn's
    extra = set(ours.get_params()) - set(ref.get_params())
    assert extra == set(ours.get_params()) - set(
        inspect.signature(getattr(sknn, est_name).__init__).parameters
    )
    shared = lambda params: {k: v for k, v in params.items() if k not in extra}  # noqa: E731
    assert shared(ours.get_params()) == ref.get_params()
    assert shared(ours.get_params(deep=False)) == ref.get_params(deep=False)
    new = dict(hidden_layer_sizes=(7, 3), activation="tanh", solver="sgd", alpha=0.01,
               batch_size=16, learning_rate="adaptive", momentum=0.5,
               early_stopping=True, n_iter_no_change=4, max_fun=100)
    assert ours.set_params(**new) is ours
    ref.set_params(**new)
    assert shared(ours.get_params()) == ref.get_params()
    for key, value in new.items():
        assert getattr(ours, key) == value
    assert repr(ours) == repr(ref)
    with pytest.raises(ValueError) as exc_ref:
        ref.set_params(no_such_parameter=1)
    with pytest.raises(ValueError) as exc:
        ours.set_params(no_such_parameter=1)
    assert type(exc.value) is type(exc_ref.value)


@pytest.mark.parametrize(
    "bad",
    [
        dict(solver="newton"),
        dict(activation="softmax"),
        dict(alpha=-1.0),
        dict(momentum=1.5),
        dict(learning_rate_init=0.0),
        dict(n_iter_no_change=0),
        dict(batch_size=0),
        dict(validation_fraction=1.0),
        dict(beta_1=1.0),
        dict(hidden_layer_sizes=(5, 0)),
        dict(max_iter=0),
    ],
    ids=lambda d: next(iter(d)),
)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_invalid_parameters_rejected_like_sklearn(est_name, bad):
    X, y = _data(est_name)
    ref, ours = _pair(est_name, **bad)
    out_ref = _outcome(lambda: ref.fit(X[:50], y[:50]))
    out = _outcome(lambda: ours.fit(X[:50], y[:50]))
    assert out_ref[0] == "error"
    assert out[0] == "error"
    assert out[1] is out_ref[1]
    (name, value), = bad.items()
    if name in ("solver", "activation"):
        # skmlp offers more options, so the list of valid ones differs
        assert f"'{name}' parameter" in out[2] and repr(value) in out[2], out[2]
    else:
        assert out[2] == out_ref[2]


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_partial_fit_availability_classifier(solver):
    ref, ours = _pair(CLF, solver=solver)
    assert hasattr(ours, "partial_fit") == hasattr(ref, "partial_fit")
    assert hasattr(ours, "partial_fit") == (solver != "lbfgs")
    if solver == "lbfgs":
        with pytest.raises(AttributeError) as exc_ref:
            ref.partial_fit
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as exc:
            ours.partial_fit
        assert str(exc.value) == str(exc_ref.value)
        # becomes available when the solver changes
        ours.set_params(solver="sgd")
        assert hasattr(ours, "partial_fit")


def test_partial_fit_classifier_needs_classes_like_sklearn():
    X, y = _data(CLF)
    ref, ours = _pair(CLF, **STOCHASTIC)
    out_ref = _outcome(lambda: ref.partial_fit(X, y))
    out = _outcome(lambda: ours.partial_fit(X, y))
    assert out_ref[0] == "error"
    assert out == out_ref


@pytest.mark.parametrize("est_name, scale", [(REG, 1e10), (CLF, 1e100)])
def test_non_finite_weights_raise_like_sklearn(est_name, scale):
    X, y = make_regression(n_samples=100, n_features=5, random_state=0)
    X = X * scale
    y = y * scale if est_name == REG else (y > 0).astype(int)
    params = dict(solver="sgd", learning_rate_init=10.0, max_iter=5,
                  hidden_layer_sizes=(5,), random_state=0)
    ref, ours = _pair(est_name, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow in sklearn
        with pytest.raises(ValueError) as exc_ref:
            ref.fit(X, y)
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights") as exc:
            ours.fit(X, y)
    assert str(exc.value) == str(exc_ref.value)


def test_estimator_tags_match_sklearn():
    for name in (CLF, REG):
        ref, ours = _pair(name)
        t_ref, t = ref.__sklearn_tags__(), ours.__sklearn_tags__()
        assert t.estimator_type == t_ref.estimator_type
        assert t.input_tags.sparse == t_ref.input_tags.sparse
        assert t.target_tags.multi_output == t_ref.target_tags.multi_output
        if name == CLF:
            assert t.classifier_tags.multi_label == t_ref.classifier_tags.multi_label


# ---------------------------------------------------------------------------
# Robustness: states sklearn rejects with an exception must not reach the
# compiled kernels. These run in a child interpreter, so that a crash of the
# kernels (a segmentation fault) fails the test instead of the test session.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_in, sparse_input",
    [(5, False), (200000, False), (5, True)],
    ids=["narrower-dense", "huge-dense", "narrower-csr"],
)
def test_assigned_coefs_with_wrong_input_size_rejected_like_sklearn(n_in, sparse_input):
    """X has 12 features; coefs_[0] assigned with n_in rows. sklearn's forward
    pass raises ValueError (matmul shape mismatch); skmlp must not compute
    with (or read beyond) the data it was given."""
    result = _run_child(f"""
        X, y = make_classification(n_samples=60, n_features=12, random_state=0)
        Xp = sp.csr_matrix(X) if {sparse_input} else X
        out = {{}}
        for name, mod in (("sklearn", sknn), ("skmlp", skmlp)):
            est = mod.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                                    random_state=0).fit(X, y)
            est.coefs_[0] = np.full(({n_in}, 8), 0.01)
            out[name] = outcome(lambda: est.predict_proba(Xp))
        print(json.dumps(out))
    """)
    assert result["sklearn"][0] == "error"
    assert result["skmlp"][0] == "error", (
        "skmlp returned predictions for a network whose first layer does not "
        f"match the 12 input features; sklearn raises {result['sklearn'][1]}"
    )
    assert result["skmlp"] == result["sklearn"]


@pytest.mark.parametrize("est_name", [CLF])
def test_partial_fit_after_switching_sgd_to_adam(est_name):
    """sklearn keeps the optimizer of the first partial_fit call (SGD) when
    the solver parameter is changed to 'adam' between partial_fit calls."""
    result = _run_child(f"""
        X, y = make_classification(n_samples=120, n_features=8, random_state=0)
        kw = dict(classes=[0, 1]) if "{est_name}" == "MLPClassifier" else {{}}
        out = {{}}
        for name, mod in (("sklearn", sknn), ("skmlp", skmlp)):
            est = getattr(mod, "{est_name}")(hidden_layer_sizes=(6,), solver="sgd",
                                             random_state=0, learning_rate_init=0.05)
            est.partial_fit(X, y, **kw)
            est.set_params(solver="adam")
            def cont():
                est.partial_fit(X, y)
                est.partial_fit(X, y)
                return np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])
            out[name] = outcome(cont)
        print(json.dumps(out))
    """)
    assert result["skmlp"][0] == result["sklearn"][0]
    if result["sklearn"][0] == "ok":
        assert_allclose(result["skmlp"][1], result["sklearn"][1], rtol=1e-6, atol=1e-10)


# ---------------------------------------------------------------------------
# The kernels release the GIL: concurrent use from threads is safe
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_concurrent_predict_and_fit_in_threads(est_name):
    X, y = _data(est_name)
    X = _scaled(X)
    Xs = sp.csr_matrix(X * (np.abs(X) > 0.5))
    est = getattr(skmlp, est_name)(**STOCHASTIC).fit(X, y)
    serial = [_output(est, X), _output(est, Xs)]
    seeds = [0, 1, 2, 3]
    fits_serial = [getattr(skmlp, est_name)(**dict(STOCHASTIC, random_state=s)).fit(X, y)._theta
                   for s in seeds]

    def predict_job(i):
        return _output(est, X if i % 2 == 0 else Xs)

    def fit_job(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return getattr(skmlp, est_name)(**dict(STOCHASTIC, random_state=seed)).fit(X, y)._theta

    with ThreadPoolExecutor(max_workers=4) as pool:
        preds = list(pool.map(predict_job, range(16)))
        fits = list(pool.map(fit_job, seeds))
    for i, p in enumerate(preds):
        assert_array_equal(p, serial[i % 2])
    for a, b in zip(fits, fits_serial):
        assert_array_equal(a, b)
