"""Persistence beyond tests/test_integration.py's round trips (which cover sgd,
adam and lbfgs at every stage: unfitted, fitted, mid-partial_fit, early-stopped).

* Round trips through pickle and joblib of every other solver and of the
  options with state of their own (dropout's generator, PReLU slopes, float32,
  sparse input, early stopping with dropout), at the fitted, mid-partial_fit
  and early-stopped stages: the same predictions bitwise, and continued
  training bitwise equal to the original's.
* The version marker: a pickle carries skmlp's version and pickle format; a
  pickle of another format raises PickleFormatError naming both versions; one
  of another version (or without the marker) loads with an
  InconsistentVersionWarning (a subclass of scikit-learn's).
* Tampered pickles (parameter vector missing, too short or long, of the wrong
  dtype or shape, non-finite; layer sizes, offsets, optimizer state,
  early-stopping copy or dropout generator inconsistent) raise a ValueError
  naming the attribute on loading; truncated bytes raise pickle's own error.
  These run in a child interpreter that also tries predict and partial_fit on
  whatever loaded, so a crash of the kernels fails the test and not the session.
"""

import io
import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import InconsistentVersionWarning as SklearnVersionWarning

import skmlp
from skmlp import (
    InconsistentVersionWarning,
    MLPClassifier,
    MLPRegressor,
    PickleFormatError,
)
from skmlp import _persistence

from _helpers import assert_same_optimizer_state, run_python


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(est_name, dtype=np.float64, sparse=False):
    rng = np.random.RandomState(0)
    X = rng.randn(150, 8).astype(dtype)
    if est_name == "clf":
        y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    else:
        y = X[:, :3].sum(axis=1) + 0.1 * rng.randn(150)
    if sparse:
        X[np.abs(X) < 0.8] = 0
        X = sp.csr_matrix(X)
    return X, y


CONFIGS = {
    "adagrad": ("clf", dict(solver="adagrad"), {}),
    "rmsprop": ("reg", dict(solver="rmsprop"), {}),
    "adamw": ("clf", dict(solver="adamw", weight_decay=0.01), {}),
    "sgd_nesterov_invscaling": ("reg", dict(solver="sgd", learning_rate="invscaling",
                                            momentum=0.9), {}),
    "dropout_adam": ("clf", dict(solver="adam", dropout=0.3), {}),
    "dropout_per_layer_sgd": ("reg", dict(solver="sgd", dropout=[0.2, 0.1]), {}),
    "prelu_rmsprop": ("clf", dict(solver="rmsprop", activation="prelu"), {}),
    "prelu_lbfgs": ("reg", dict(solver="lbfgs", activation="prelu"), {}),
    "float32_adamw": ("reg", dict(solver="adamw"), dict(dtype=np.float32)),
    "float32_dropout_prelu": ("clf", dict(solver="adam", activation="prelu",
                                          dropout=0.2), dict(dtype=np.float32)),
    "sparse_adagrad": ("reg", dict(solver="adagrad"), dict(sparse=True)),
    "history_eval": ("clf", dict(solver="adam", track_train_score=True), {}),
}


def _make(name):
    est_name, params, data_kw = CONFIGS[name]
    Est = MLPClassifier if est_name == "clf" else MLPRegressor
    params = dict(hidden_layer_sizes=(12, 7), random_state=0, max_iter=6,
                  learning_rate_init=0.01, **params)
    return Est(**params), _data(est_name, **data_kw)


def _round_trip(est, how):
    if how == "pickle":
        return pickle.loads(pickle.dumps(est))
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    return joblib.load(buf)


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _assert_same(a, b, X):
    assert_array_equal(a._theta, b._theta)
    assert a._theta.dtype == b._theta.dtype
    for name in ("coefs_", "intercepts_", "prelu_slopes_"):
        for u, v in zip(getattr(a, name, []), getattr(b, name, [])):
            assert_array_equal(u, v)
            assert np.shares_memory(u, a._theta) or np.shares_memory(v, b._theta)
    if getattr(a, "_dropout_rng", None) is not None:
        assert_array_equal(a._dropout_rng, b._dropout_rng)
    assert_same_optimizer_state(a, b)
    for attr in ("n_iter_", "t_", "loss_", "loss_curve_", "validation_scores_",
                 "best_validation_score_"):
        if hasattr(a, attr):
            assert repr(getattr(a, attr)) == repr(getattr(b, attr)), attr
    # the per-epoch history, but for its wall-clock times
    assert a.history_.keys() == b.history_.keys()
    for key in a.history_:
        if key != "time":
            assert repr(a.history_[key]) == repr(b.history_[key]), key
    assert_array_equal(_output(a, X), _output(b, X))
    assert_array_equal(a.predict(X), b.predict(X))


def _stage(est, X, y, stage):
    classes = dict(classes=np.unique(y)) if isinstance(est, MLPClassifier) else {}
    if stage == "fitted":
        return est.fit(X, y)
    if stage == "partial_fit":
        est.partial_fit(X[:100], y[:100], **classes)
        return est.partial_fit(X[50:], y[50:])
    # early-stopped
    est.set_params(early_stopping=True, n_iter_no_change=2, tol=0.0, max_iter=200,
                   learning_rate_init=0.05)
    return est.fit(X, y)


def _continue(est, X, y, stage):
    if stage == "partial_fit":
        est.partial_fit(X[20:], y[20:])
        return est.partial_fit(X[:90], y[:90])
    return est.set_params(warm_start=True, max_iter=3).fit(X[:120], y[:120])


# partial_fit and early stopping are for the stochastic solvers only
STAGED = [
    (config, stage)
    for config in sorted(CONFIGS)
    for stage in ("fitted", "partial_fit", "early_stopped")
    if stage == "fitted" or CONFIGS[config][1]["solver"] != "lbfgs"
]


@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize("config, stage", STAGED)
def test_round_trip_predicts_and_trains_on_identically(config, stage, how):
    est, (X, y) = _make(config)
    _stage(est, X, y, stage)
    restored = _round_trip(est, how)
    assert type(restored) is type(est)
    assert restored.get_params() == est.get_params()
    assert not np.shares_memory(restored._theta, est._theta)
    _assert_same(restored, est, X)
    _continue(est, X, y, stage)
    _continue(restored, X, y, stage)
    _assert_same(restored, est, X)


# ---------------------------------------------------------------------------
# Version marker
# ---------------------------------------------------------------------------


def _fitted_clf():
    X, y = _data("clf")
    return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y), X


@pytest.mark.parametrize("fitted", [False, True])
def test_pickle_carries_the_version_marker(fitted):
    est = _fitted_clf()[0] if fitted else MLPRegressor()
    state = est.__getstate__()
    assert state["_skmlp_version"] == skmlp.__version__
    assert state["_skmlp_pickle_format"] == _persistence.PICKLE_FORMAT
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version: no warning
        restored = pickle.loads(pickle.dumps(est))
    assert "_skmlp_version" not in vars(restored)
    assert "_skmlp_pickle_format" not in vars(restored)


def _dumps_as(est, monkeypatch, version=None, fmt=None):
    """The pickle another skmlp version/format would write."""
    with monkeypatch.context() as m:
        if version is not None:
            m.setattr(skmlp, "__version__", version)
        if fmt is not None:
            m.setattr(_persistence, "PICKLE_FORMAT", fmt)
        return pickle.dumps(est)


@pytest.mark.parametrize("fitted", [False, True])
def test_other_pickle_format_raises_naming_both_versions(fitted, monkeypatch):
    est = _fitted_clf()[0] if fitted else MLPClassifier()
    data = _dumps_as(est, monkeypatch, version="7.0.0", fmt=2)
    with pytest.raises(PickleFormatError) as exc:
        pickle.loads(data)
    msg = str(exc.value)
    assert "skmlp 7.0.0 in pickle format 2" in msg
    assert f"skmlp {skmlp.__version__} reads pickle format 1" in msg
    assert isinstance(exc.value, ValueError)


def test_other_version_same_format_warns_and_loads(monkeypatch):
    est, X = _fitted_clf()
    data = _dumps_as(est, monkeypatch, version="0.0.9")
    with pytest.warns(InconsistentVersionWarning) as rec:
        restored = pickle.loads(data)
    w = rec[0].message
    assert isinstance(w, SklearnVersionWarning)  # sklearn's filters apply too
    assert w.original_sklearn_version == "0.0.9"
    assert w.current_sklearn_version == skmlp.__version__
    assert (
        f"Trying to unpickle estimator MLPClassifier from skmlp version 0.0.9 when "
        f"using version {skmlp.__version__}" in str(w)
    )
    assert_array_equal(restored.predict_proba(X), est.predict_proba(X))


def _reduced(cls, state):
    """Pickle bytes that rebuild ``cls`` from exactly ``state``."""

    class Raw:
        def __reduce__(self):
            return (object.__new__, (cls,), state)

    return pickle.dumps(Raw())


def test_pickle_without_marker_warns_and_loads():
    est, X = _fitted_clf()
    state = est.__getstate__()
    del state["_skmlp_version"], state["_skmlp_pickle_format"]
    with pytest.warns(InconsistentVersionWarning, match="without skmlp's version marker"):
        restored = pickle.loads(_reduced(MLPClassifier, state))
    assert_array_equal(restored.predict_proba(X), est.predict_proba(X))


# ---------------------------------------------------------------------------
# Tampered and truncated pickles, in a child interpreter
# ---------------------------------------------------------------------------

_CHILD = r"""
import json, pickle, sys, warnings
import numpy as np
from skmlp import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore")

rng = np.random.RandomState(0)
X = rng.randn(80, 6)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
# an early-stopped model (it has _best_theta) and one trained by partial_fit
# (the optimizer state partial_fit continues from); both with dropout
early = MLPClassifier(hidden_layer_sizes=(7, 5), solver="adam", max_iter=3,
                      early_stopping=True, dropout=0.2, random_state=0).fit(X, y)
incremental = MLPClassifier(hidden_layer_sizes=(7, 5), solver="adam", dropout=0.2,
                            random_state=0).partial_fit(X, y, classes=[0, 1, 2])

def reduced(state):
    class Raw:
        def __reduce__(self):
            return (object.__new__, (MLPClassifier,), state)
    return pickle.dumps(Raw())

def theta(s, f):
    s["_theta"] = f(s["_theta"])

def opt(s, attr, value):
    s["_optimizer"].__dict__[attr] = value

CASES = {
    "no_theta": lambda s: s.pop("_theta"),
    "theta_short": lambda s: theta(s, lambda t: t[:-3]),
    "theta_long": lambda s: theta(s, lambda t: np.concatenate([t, np.ones(9)])),
    "theta_int64": lambda s: theta(s, lambda t: t.astype(np.int64)),
    "theta_float16": lambda s: theta(s, lambda t: t.astype(np.float16)),
    "theta_object": lambda s: theta(s, lambda t: t.astype(object)),
    "theta_2d": lambda s: theta(s, lambda t: t.reshape(-1, 1)),
    "theta_list": lambda s: theta(s, lambda t: t.tolist()),
    "theta_nan": lambda s: theta(s, lambda t: np.where(np.arange(t.size) == 5, np.nan, t)),
    "theta_strided": lambda s: theta(s, lambda t: np.repeat(t, 2)[::2]),
    "layer_units_bigger": lambda s: s["_layer_units"].__setitem__(1, 700),
    "layer_units_negative": lambda s: s["_layer_units"].__setitem__(1, -7),
    "layer_units_missing": lambda s: s.pop("_layer_units"),
    "coef_off_corrupt": lambda s: s.__setitem__("_coef_off", s["_coef_off"] + 10**6),
    "bias_off_missing": lambda s: s.pop("_bias_off"),
    "n_layers_wrong": lambda s: s.__setitem__("n_layers_", 7),
    "n_outputs_wrong": lambda s: s.__setitem__("n_outputs_", 30),
    "out_activation_unknown": lambda s: s.__setitem__("out_activation_", "softmaxx"),
    "best_theta_short": lambda s: s.__setitem__("_best_theta", s["_best_theta"][:4]),
    "dropout_rng_long": lambda s: s.__setitem__("_dropout_rng", np.zeros(4, np.uint64)),
    "optimizer_state_short": lambda s: opt(s, "state_1", s["_optimizer"].state_1[:10]),
    "optimizer_state_float32": lambda s: opt(s, "state_2", s["_optimizer"].state_2.astype(np.float32)),
    "optimizer_t_negative": lambda s: opt(s, "t", -5),
    "format_future": lambda s: s.__setitem__("_skmlp_pickle_format", 99),
    "optimizer_untouched": lambda s: None,
}

def outcome(func):
    try:
        value = func()
    except Exception as exc:
        return ["error", type(exc).__name__, str(exc)]
    return ["ok", None, None]

results = {}
for name in sys.argv[1:]:
    est = incremental if name.startswith("optimizer") else early
    if name.startswith("truncated"):
        data = pickle.dumps(est)
        data = data[: len(data) * int(name.split("_")[1]) // 100]
    else:
        state = pickle.loads(pickle.dumps(est)).__getstate__()
        CASES[name](state)
        data = reduced(state)
    box = []
    load = outcome(lambda: box.append(pickle.loads(data)))
    after = []
    if box:
        m = box[0]
        after.append(outcome(lambda: m.predict_proba(X)))
        if est is incremental:
            after.append(outcome(lambda: m.partial_fit(X, y)))
        else:
            after.append(outcome(lambda: m.set_params(warm_start=True, max_iter=2).fit(X, y)))
    results[name] = [load, after]
    print(json.dumps({name: results[name]}), flush=True)
"""

# case -> (error type on loading, text the message must contain)
TAMPERED = {
    "no_theta": ("ValueError", "no parameter vector _theta"),
    "theta_short": ("ValueError", "_theta has 104 values; the layer sizes [6, 7, 5, 3] need 107"),
    "theta_long": ("ValueError", "_theta has 116 values"),
    "theta_int64": ("ValueError", "_theta has dtype int64, expected float32 or float64"),
    "theta_float16": ("ValueError", "_theta has dtype float16"),
    "theta_object": ("ValueError", "_theta has dtype object"),
    "theta_2d": ("ValueError", "_theta has shape (107, 1), expected a 1-D vector"),
    "theta_list": ("ValueError", "_theta is a list, not a NumPy array"),
    "layer_units_bigger": ("ValueError", "the layer sizes [6, 700, 5, 3] need"),
    "layer_units_negative": ("ValueError", "_layer_units is [6, -7, 5, 3]"),
    "layer_units_missing": ("ValueError", "_layer_units is None"),
    "coef_off_corrupt": ("ValueError", "_coef_off does not match the layer sizes"),
    "bias_off_missing": ("ValueError", "_bias_off does not match the layer sizes"),
    "n_layers_wrong": ("ValueError", "n_layers_ is 7"),
    "n_outputs_wrong": ("ValueError", "n_outputs_ is 30"),
    "out_activation_unknown": ("ValueError", "out_activation_ is 'softmaxx'"),
    "best_theta_short": ("ValueError", "_best_theta has shape (4,), expected (107,)"),
    "dropout_rng_long": ("ValueError", "_dropout_rng has shape (4,), expected (1,)"),
    "optimizer_state_short": ("ValueError", "_optimizer.state_1 has shape (10,)"),
    "optimizer_state_float32": ("ValueError", "_optimizer.state_2 has dtype float32, expected float64"),
    "optimizer_t_negative": ("ValueError", "_optimizer.t is -5"),
    "format_future": ("PickleFormatError", "in pickle format 99"),
}


def _run_child(cases):
    proc = run_python(_CHILD, *cases)
    # a signal (segmentation fault, abort) gives a negative return code
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    results = {}
    for line in proc.stdout.splitlines():
        results.update(json.loads(line))
    assert sorted(results) == sorted(cases)
    return results


def test_tampered_pickles_fail_clearly_on_loading():
    results = _run_child(
        sorted(TAMPERED) + ["theta_strided", "theta_nan", "optimizer_untouched"]
    )
    for name, (err_type, text) in TAMPERED.items():
        (status, typ, msg), after = results[name]
        assert status == "error" and typ == err_type, (name, results[name])
        assert text in msg, (name, msg)
        if err_type == "ValueError":
            assert msg.startswith("Cannot unpickle this MLPClassifier: "), msg
        assert after == []
    # a non-contiguous (but otherwise right) vector is made contiguous and works
    # (the child's controls: the tampering itself leaves a loadable pickle)
    for name in ("theta_strided", "optimizer_untouched"):
        (status, _, _), after = results[name]
        assert status == "ok" and after == [["ok", None, None], ["ok", None, None]]
    # a vector with a NaN (a diverged fit's) loads, with a warning (below);
    # predicting with it raises a clear error, refitting works
    (status, _, _), after = results["theta_nan"]
    assert status == "ok"
    (p_status, p_type, p_msg), refit = after
    assert (p_status, p_type) == ("error", "ValueError")
    assert "parameters are not finite" in p_msg
    assert refit == ["ok", None, None]


def test_truncated_pickles_raise_pickles_error():
    cases = [f"truncated_{p}" for p in (10, 50, 90, 99)]
    results = _run_child(cases)
    for name in cases:
        (status, typ, _), after = results[name]
        assert status == "error", (name, results[name])
        assert typ in ("UnpicklingError", "EOFError", "ValueError"), (name, typ)
        assert after == []


def test_non_finite_parameters_load_with_a_warning():
    """What a diverged fit leaves behind can still be copied and inspected."""
    import copy

    est, X = _fitted_clf()
    est._theta[3] = np.nan
    with pytest.warns(UserWarning, match="non-finite values .* in its parameter vector"):
        restored = pickle.loads(pickle.dumps(est))
    with pytest.warns(UserWarning, match="cannot predict"):
        copy.deepcopy(est)
    assert np.isnan(restored._theta[3])
    # predicting with it fails clearly (tests/test_bad_input.py covers the
    # same for a model that diverged in memory)
    with pytest.raises(ValueError, match="parameters are not finite"):
        restored.predict_proba(X)
