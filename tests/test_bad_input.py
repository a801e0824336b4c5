"""Bad input to every public entry point gets a clear error before any kernel
runs; input scikit-learn accepts is handled, giving the model the canonical
input gives; a failed call leaves a fitted estimator exactly as it was.

Entry points: the estimators' fit, partial_fit, predict, predict_proba,
predict_log_proba and score; skmlp.datasets' loaders; the command line.
Where scikit-learn's MLPs see the same input, the exception type is compared
with theirs. Cases that could crash the interpreter if they reached the
kernels (malformed sparse matrices, memory-mapped input, values near the
float limits) run in a child interpreter, where a crash is a negative return
code instead of the end of the test session.
"""

import contextlib
import copy
import io
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skmlp
from skmlp import MLPClassifier, MLPRegressor, datasets
from skmlp._cli import main as cli_main
from skmlp.datasets import IDX_FILES, IDXFormatError

from _helpers import child_env, idx_bytes, run_child, write_payload

CLF, REG = "MLPClassifier", "MLPRegressor"
CLASSES = np.array([0, 1, 2])
SMALL = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)

_rng = np.random.RandomState(0)
X0 = _rng.randn(30, 4)
Y0 = {CLF: np.arange(30) % 3, REG: _rng.randn(30)}
for _a in (X0, *Y0.values()):
    _a.flags.writeable = False


def _make(name, lib=skmlp, **params):
    return getattr(lib, name)(**{**SMALL, **params})


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _train(est, method, X, y, **kw):
    """est.fit or est.partial_fit (the classifier's first call names the classes)."""
    with _quiet():
        if method == "fit":
            return est.fit(X, y, **kw)
        if est.__class__.__name__ == CLF and not hasattr(est, "classes_"):
            kw.setdefault("classes", CLASSES)
        return est.partial_fit(X, y, **kw)


def _raised(func):
    """The exception func raises (None if it returns)."""
    try:
        with _quiet():
            func()
    except Exception as exc:  # noqa: BLE001 - the caller compares it
        return exc
    return None


def _fitted(name, **params):
    return _train(_make(name, **params), "fit", X0, Y0[name])


# ---------------------------------------------------------------------------
# Bad X, y and sample_weight to fit and partial_fit
# ---------------------------------------------------------------------------


def _with(value, at=(0, 0), X=X0):
    X = X.copy()
    X[at] = value
    return X


BAD_X = {
    # name: (X, rows of y to use, message)
    "nan": (lambda: _with(np.nan), 30, r"Input X contains NaN"),
    "+inf": (lambda: _with(np.inf), 30, r"Input X contains infinity"),
    "-inf": (lambda: _with(-np.inf, at=(7, 3)), 30, r"Input X contains infinity"),
    "no rows": (lambda: X0[:0], 0, r"Found array with 0 sample\(s\)"),
    "no features": (lambda: X0[:, :0], 30, r"Found array with 0 feature\(s\)"),
    "1-D": (lambda: X0[:, 0], 30, r"Expected 2D array, got 1D array"),
    "3-D": (lambda: X0.reshape(30, 2, 2), 30, r"Found array with dim 3"),
    "complex": (lambda: X0 + 1j, 30, r"Complex data not supported"),
    "words": (lambda: np.full(X0.shape, "abc"), 30, r"could not convert string to float"),
    "object with None": (lambda: _with(None, X=X0.astype(object)), 30,
                         r"Input X contains NaN"),
}


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name", [CLF, REG])
def test_bad_X_rejected_like_sklearn(name, method, case):
    make_X, rows, message = BAD_X[case]
    X, y = make_X(), Y0[name][:rows]
    est = _make(name, solver="sgd")
    with pytest.raises(ValueError, match=message) as exc:
        _train(est, method, X, y)
    assert not hasattr(est, "coefs_") and not hasattr(est, "classes_")
    ref = _raised(lambda: _train(_make(name, sknn, solver="sgd"), method, X, y))
    assert type(exc.value) is type(ref), ref


BAD_Y = {
    # name: (estimator, y, message)
    "nan": (REG, lambda: _with(np.nan, at=3, X=Y0[REG]), r"Input y contains NaN"),
    "inf": (REG, lambda: _with(np.inf, at=3, X=Y0[REG]), r"Input y contains infinity"),
    "nan label": (CLF, lambda: _with(np.nan, at=3, X=Y0[CLF].astype(float)),
                  r"Input y contains NaN"),
    "short": (REG, lambda: Y0[REG][:29], r"inconsistent numbers of samples: \[30, 29\]"),
    "long labels": (CLF, lambda: np.r_[Y0[CLF], 0], r"inconsistent numbers of samples"),
    "3-D": (REG, lambda: Y0[REG].reshape(30, 1, 1), r"Found array with dim 3"),
    "complex": (REG, lambda: Y0[REG] + 1j, r"Complex data not supported"),
    "continuous labels": (CLF, lambda: Y0[REG], r"Unknown label type"),
    "object labels": (CLF, lambda: Y0[CLF].astype(object), r"Unknown label type"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
def test_bad_y_rejected_like_sklearn(case):
    name, make_y, message = BAD_Y[case]
    y = make_y()
    est = _make(name)
    with pytest.raises(ValueError, match=message) as exc:
        _train(est, "fit", X0, y)
    ref = _raised(lambda: _make(name, sknn).fit(X0, y))
    assert type(exc.value) is type(ref), ref


def test_mixed_type_labels_raise_type_error_like_sklearn():
    y = np.array([1, "a"] * 15, dtype=object)
    with pytest.raises(TypeError, match="not supported between instances"):
        _fitted(CLF).fit(X0, y)
    assert isinstance(_raised(lambda: _make(CLF, sknn).fit(X0, y)), TypeError)


def test_poisson_rejects_negative_targets():
    with pytest.raises(ValueError, match="negative.*Poisson"):
        _make(REG, loss="poisson").fit(X0, Y0[REG])


BAD_SW = {
    "nan": (lambda: _with(np.nan, at=2, X=np.ones(30)), r"Input sample_weight contains NaN"),
    "inf": (lambda: _with(np.inf, at=2, X=np.ones(30)),
            r"Input sample_weight contains infinity"),
    "negative": (lambda: _with(-1.0, at=2, X=np.ones(30)), r"Negative values.*sample_weight"),
    "short": (lambda: np.ones(29), r"sample_weight.shape == \(29,\), expected \(30,\)"),
    "2-D": (lambda: np.ones((30, 1)), r"Sample weights must be 1D"),
    "all zero": (lambda: np.zeros(30), r"at least one non-zero"),
    "words": (lambda: np.full(30, "w"), r"could not convert string to float"),
    "scalar nan": (lambda: np.nan, r"Input sample_weight contains NaN"),
    "scalar inf": (lambda: np.inf, r"Input sample_weight contains infinity"),
    "scalar negative": (lambda: -2.0, r"Negative values.*sample_weight"),
    "scalar zero": (lambda: 0.0, r"at least one non-zero"),
}


@pytest.mark.parametrize("case", list(BAD_SW))
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name", [CLF, REG])
def test_bad_sample_weight_rejected(name, method, case):
    make_sw, message = BAD_SW[case]
    est = _make(name, solver="sgd")
    with pytest.raises(ValueError, match=message):
        _train(est, method, X0, Y0[name], sample_weight=make_sw())
    assert not hasattr(est, "coefs_")


def test_zero_weight_batches_are_skipped():
    """A mini-batch whose weights are all 0 made the parameters NaN (0 / 0);
    it now carries no step: the same model as training on the weighted rows
    alone, with the zero-weight batch's rows left out."""
    sw = np.r_[np.zeros(10), np.ones(20)]
    kw = dict(shuffle=False, batch_size=10, solver="sgd", max_iter=4)
    for solver in ("sgd", "adam", "adagrad", "rmsprop", "adamw"):
        kw["solver"] = solver
        weighted = _train(_make(REG, **kw), "fit", X0, Y0[REG], sample_weight=sw)
        alone = _train(_make(REG, **kw), "fit", X0[10:], Y0[REG][10:])
        assert np.isfinite(weighted._theta).all()
        assert_array_equal(weighted._theta, alone._theta)
        # the skipped batch adds nothing to the summed loss of the epoch
        assert weighted.loss_curve_ == pytest.approx(
            [v * 20 / 30 for v in alone.loss_curve_], rel=1e-12
        )


# ---------------------------------------------------------------------------
# Input scikit-learn accepts: the same model as the canonical float array
# ---------------------------------------------------------------------------

ACCEPTED_X = {
    "int64": lambda X: np.round(X * 10).astype(np.int64),
    "int32": lambda X: np.round(X * 10).astype(np.int32),
    "bool": lambda X: X > 0,
    "object": lambda X: X.astype(object),
    "float16": lambda X: X.astype(np.float16),
    "list": lambda X: X.tolist(),
}


@pytest.mark.parametrize("kind", list(ACCEPTED_X))
@pytest.mark.parametrize("name", [CLF, REG])
def test_accepted_dtypes_give_the_float64_model(name, kind):
    X = ACCEPTED_X[kind](X0)
    canonical = np.asarray(X, dtype=np.float64)
    est = _train(_make(name), "fit", X, Y0[name])
    ref = _train(_make(name), "fit", canonical, Y0[name])
    assert est._theta.dtype == np.float64
    assert_array_equal(est._theta, ref._theta)
    assert_array_equal(est.predict(X), ref.predict(canonical))
    # and scikit-learn accepts it too
    assert _raised(lambda: _make(name, sknn).fit(X, Y0[name])) is None


@pytest.mark.parametrize("name", [CLF, REG])
def test_numeric_strings_fit_but_do_not_predict_like_sklearn(name):
    """scikit-learn's fit converts strings of numbers (it asks for float
    dtypes); its predict refuses strings (dtype 'numeric'). skmlp's predict
    converted them silently."""
    X = X0.astype(str)
    est = _train(_make(name), "fit", X, Y0[name])
    assert_array_equal(est._theta, _train(_make(name), "fit", X0, Y0[name])._theta)
    for method in ("predict", "score"):
        args = (X, Y0[name]) if method == "score" else (X,)
        with pytest.raises(ValueError, match="not compatible with arrays of bytes/strings"):
            getattr(est, method)(*args)
        ref = _train(_make(name, sknn), "fit", X, Y0[name])
        assert isinstance(_raised(lambda: getattr(ref, method)(*args)), ValueError)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [CLF, REG])
def test_strided_and_fortran_arrays_give_the_same_model(name, dtype, solver):
    wide = np.repeat(np.repeat(X0, 2, axis=0), 3, axis=1).astype(dtype)
    strided = wide[::2, ::3]  # == X0, a non-contiguous view
    fortran = np.asfortranarray(X0.astype(dtype))
    assert not strided.flags.c_contiguous and not fortran.flags.c_contiguous
    ref = _train(_make(name, solver=solver), "fit", X0.astype(dtype), Y0[name])
    for X in (strided, fortran):
        est = _train(_make(name, solver=solver), "fit", X, Y0[name])
        assert est._theta.dtype == dtype
        assert_array_equal(est._theta, ref._theta)
        assert_array_equal(est.predict(X), ref.predict(X0.astype(dtype)))
    if solver != "lbfgs":
        inc = _train(_make(name, solver=solver), "partial_fit", strided, Y0[name])
        inc_ref = _train(_make(name, solver=solver), "partial_fit", X0.astype(dtype), Y0[name])
        assert_array_equal(inc._theta, inc_ref._theta)


def test_read_only_memmaps_give_the_same_model(tmp_path):
    """Read-only np.memmap input (X, y, sample_weight) works and gives the
    model a normal array gives, for fit, partial_fit and predict; run in a
    child interpreter."""
    result = run_child(f"""
        import itertools
        d = {str(tmp_path)!r}
        rng = np.random.RandomState(0)
        X = rng.randn(40, 5); y_reg = rng.randn(40); y_clf = np.arange(40) % 3
        sw = rng.uniform(0.5, 2.0, 40)
        def memmap(name, a):
            path = f"{{d}}/{{name}}.dat"
            m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
            m[:] = a
            m.flush()
            del m
            return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
        out = []
        for dtype, name, solver in itertools.product(
                (np.float32, np.float64), ("MLPClassifier", "MLPRegressor"),
                ("sgd", "adam", "lbfgs")):
            y = y_clf if name == "MLPClassifier" else y_reg
            Xd = X.astype(dtype)
            Xm, ym, swm = memmap(f"X{{dtype.__name__}}", Xd), memmap(f"y{{name}}", y), memmap("sw", sw)
            assert not Xm.flags.writeable
            make = lambda: getattr(skmlp, name)(hidden_layer_sizes=(4,), max_iter=3,
                                                random_state=0, solver=solver)
            a = make().fit(Xm, ym, sample_weight=swm)
            b = make().fit(Xd, y, sample_weight=sw)
            same = bool(np.array_equal(a._theta, b._theta)
                        and np.array_equal(a.predict(Xm), b.predict(Xd)))
            if solver != "lbfgs":
                kw = dict(classes=[0, 1, 2]) if name == "MLPClassifier" else {{}}
                a, b = make(), make()
                for _ in range(2):
                    a.partial_fit(Xm, ym, sample_weight=swm, **kw)
                    b.partial_fit(Xd, y, sample_weight=sw, **kw)
                same = same and bool(np.array_equal(a._theta, b._theta))
            out.append([dtype.__name__, name, solver, same, str(a._theta.dtype)])
        print(json.dumps(out))
    """)
    assert len(result) == 12
    for dtype, name, solver, same, theta_dtype in result:
        assert same, (dtype, name, solver)
        assert theta_dtype == dtype


def _noncanonical(A):
    """A CSR matrix equal to A with unsorted indices, explicit zeros and a
    duplicate entry (two halves summing to the value)."""
    A = sp.csr_matrix(A)
    indptr, indices, data = [0], [], []
    for i in range(A.shape[0]):
        cols = list(A.indices[A.indptr[i]:A.indptr[i + 1]])
        vals = list(A.data[A.indptr[i]:A.indptr[i + 1]])
        zero_col = next((c for c in range(A.shape[1]) if c not in cols), None)
        if zero_col is not None:
            cols.append(zero_col)
            vals.append(0.0)
        if cols and i % 3 == 0:
            vals[0] /= 2
            cols.append(cols[0])
            vals.append(vals[0])
        indices += cols[::-1]
        data += vals[::-1]
        indptr.append(len(indices))
    B = sp.csr_matrix(
        (np.array(data, dtype=A.dtype), np.array(indices, dtype=np.int32),
         np.array(indptr, dtype=np.int32)),
        shape=A.shape,
    )
    assert not B.has_canonical_format
    assert (B.toarray() == A.toarray()).all()
    return B


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("name", [CLF, REG])
def test_noncanonical_sparse_gives_the_canonical_model(name, solver):
    dense = np.where(X0 > 0.2, X0, 0.0)
    A = sp.csr_matrix(dense)
    B = _noncanonical(A)
    B_before = (B.data.copy(), B.indices.copy(), B.indptr.copy())
    ref = _train(_make(name, solver=solver), "fit", A, Y0[name])
    for X in (B, sp.csc_matrix(B)):
        est = _train(_make(name, solver=solver), "fit", X, Y0[name])
        assert_array_equal(est._theta, ref._theta)
        assert_array_equal(est.predict(B), ref.predict(A))
    # the caller's matrix is not modified
    for before, after in zip(B_before, (B.data, B.indices, B.indptr)):
        assert_array_equal(before, after)


def test_malformed_sparse_rejected_before_the_kernels():
    """A CSR matrix whose column index is out of range, or whose indptr
    decreases, made the kernels read outside the weights; run in a child."""
    result = run_child("""
        rng = np.random.RandomState(0)
        X = sp.random(30, 4, density=0.5, format="csr", random_state=0)
        y = np.arange(30) % 2
        def bad_index():
            B = X.copy(); B.indices[3] = 4000000; return B
        def bad_indptr():
            B = X.copy(); B.indptr[5], B.indptr[6] = B.indptr[6], B.indptr[5]; return B
        out = {}
        for label, make in (("index", bad_index), ("indptr", bad_indptr)):
            est = skmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
            fitted = skmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2,
                                         random_state=0).fit(X, y)
            theta = fitted._theta.copy()
            calls = {"fit": lambda: est.fit(make(), y),
                     "predict": lambda: fitted.predict(make()),
                     "partial_fit": lambda: fitted.partial_fit(make(), y)}
            for call, f in calls.items():
                try:
                    f()
                    out[f"{label} {call}"] = "ok"
                except Exception as exc:
                    out[f"{label} {call}"] = f"{type(exc).__name__}: {exc}"
            out[f"{label} unchanged"] = bool(np.array_equal(fitted._theta, theta))
        print(json.dumps(out))
    """)
    assert len(result) == 8
    for key, outcome in result.items():
        if key.endswith("unchanged"):
            assert outcome is True, key
        else:
            assert outcome.startswith("ValueError: X is a malformed sparse matrix"), (key, outcome)


def test_assigned_weights_of_the_wrong_size_never_reach_the_kernels():
    """coefs_, intercepts_ and prelu_slopes_ replaced with arrays that do not
    form the network (scikit-learn's tests assign them): predict, partial_fit
    and a warm-started fit raise a ValueError naming the array, and the
    kernels never index with the wrong sizes. Run in a child interpreter."""
    result = run_child("""
        rng = np.random.RandomState(0)
        X = rng.randn(30, 4); y = np.arange(30) % 3
        changes = {
            "coefs_[0] rows": lambda e: e.coefs_.__setitem__(0, np.zeros((7, 5))),
            "coefs_[0] huge": lambda e: e.coefs_.__setitem__(0, np.zeros((200000, 5))),
            "coefs_[0] cols": lambda e: e.coefs_.__setitem__(0, np.zeros((4, 6))),
            "coefs_[1] shape": lambda e: e.coefs_.__setitem__(1, np.zeros((5, 2))),
            "coefs_[0] 1-D": lambda e: e.coefs_.__setitem__(0, np.zeros(20)),
            "intercepts_[0] length": lambda e: e.intercepts_.__setitem__(0, np.zeros(9)),
            "a layer fewer": lambda e: e.coefs_.pop(),
            "prelu_slopes_[0] length": lambda e: e.prelu_slopes_.__setitem__(0, np.zeros(3)),
        }
        out = {}
        for label, change in changes.items():
            for call in ("predict", "predict_proba", "partial_fit", "warm fit"):
                est = skmlp.MLPClassifier(
                    hidden_layer_sizes=(5,), max_iter=2, random_state=0, solver="sgd",
                    warm_start=call == "warm fit",
                    activation="prelu" if label.startswith("prelu") else "relu",
                ).fit(X, y)
                change(est)
                try:
                    if call == "partial_fit":
                        est.partial_fit(X, y)
                    elif call == "warm fit":
                        est.fit(X, y)
                    else:
                        getattr(est, call)(X)
                    out[f"{label} / {call}"] = "ok"
                except Exception as exc:
                    out[f"{label} / {call}"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
    """)
    assert len(result) == 32
    for key, outcome in result.items():
        assert outcome.startswith("ValueError: "), (key, outcome)
        assert re.search(r"coefs_|intercepts_|prelu_slopes_|layer sizes|first layer",
                         outcome), (key, outcome)


# ---------------------------------------------------------------------------
# One sample, one class
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("name", [CLF, REG])
def test_one_sample_fits_like_sklearn(name, solver):
    X, y = X0[:1], Y0[name][:1]
    est = _train(_make(name, solver=solver), "fit", X, y)
    ref = _train(_make(name, sknn, solver=solver), "fit", X, y)
    if name == CLF:
        assert_array_equal(est.predict(X0), ref.predict(X0))
    else:
        np.testing.assert_allclose(est.predict(X0), ref.predict(X0), rtol=1e-12)


@pytest.mark.parametrize("labels", [np.zeros(30, dtype=int), np.full(30, "only")])
def test_one_class_fits_and_predicts_it_like_sklearn(labels):
    """scikit-learn's MLPClassifier fits a single class (no error) and
    predicts it; its predict_proba then has two columns. Same here."""
    est = _train(_make(CLF), "fit", X0, labels)
    ref = _train(_make(CLF, sknn), "fit", X0, labels)
    assert_array_equal(est.classes_, ref.classes_)
    assert_array_equal(est.predict(X0), labels)
    proba, proba_ref = est.predict_proba(X0), ref.predict_proba(X0)
    assert proba.shape == proba_ref.shape
    np.testing.assert_allclose(proba, proba_ref, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# Prediction-time input
# ---------------------------------------------------------------------------

PREDICTORS = {
    CLF: ("predict", "predict_proba", "predict_log_proba", "score"),
    REG: ("predict", "score"),
}


def _predictor_calls(name):
    return [(name, m) for m in PREDICTORS[name]]


def _call_predictor(est, method, X):
    if method == "score":
        return est.score(X, Y0[est.__class__.__name__][: len(X)])
    return getattr(est, method)(X)


@pytest.mark.parametrize("name, method", _predictor_calls(CLF) + _predictor_calls(REG))
def test_unfitted_raises_not_fitted(name, method):
    est = _make(name)
    with pytest.raises(NotFittedError, match=f"This {name} instance is not fitted yet"):
        _call_predictor(est, method, X0)
    # also after a fit that failed in validation (it may have set classes_ or
    # n_features_in_, which check_is_fitted's default test would take as fitted)
    _raised(lambda: est.fit(X0, Y0[name], sample_weight=np.ones(3)))
    with pytest.raises(NotFittedError):
        _call_predictor(est, method, X0)


@pytest.mark.parametrize("case", ["nan", "+inf", "1-D", "3-D", "complex", "words", "no rows",
                                  "no features"])
@pytest.mark.parametrize("name, method", _predictor_calls(CLF) + _predictor_calls(REG))
def test_bad_X_at_predict_rejected_like_sklearn(name, method, case):
    make_X, _, message = BAD_X[case]
    if case == "no features":
        message = r"Found array with 0 feature\(s\)|X has 0 features"
    if case == "words":  # predict asks for dtype 'numeric', as scikit-learn's does
        message = r"dtype='numeric' is not compatible with arrays of bytes/strings"
    X = make_X()
    est = _fitted(name)
    ref = _train(_make(name, sknn), "fit", X0, Y0[name])
    with pytest.raises(ValueError, match=message) as exc:
        _call_predictor(est, method, X)
    assert type(exc.value) is type(_raised(lambda: _call_predictor(ref, method, X)))


@pytest.mark.parametrize("name", [CLF, REG])
def test_score_with_mismatched_y_or_sample_weight_like_sklearn(name):
    est, ref = _fitted(name), _fitted_sklearn(name)
    for kw, message in (
        (dict(y=Y0[name][:3]), r"inconsistent numbers of samples: \[3, 30\]"),
        (dict(y=Y0[name], sample_weight=np.ones(3)),
         r"inconsistent numbers of samples: \[30, 30, 3\]"),
    ):
        with pytest.raises(ValueError, match=message):
            est.score(X0, **kw)
        with pytest.raises(ValueError, match=message):
            ref.score(X0, **kw)


@pytest.mark.parametrize("n_features", [3, 5])
@pytest.mark.parametrize("name, method", _predictor_calls(CLF) + _predictor_calls(REG)
                         + [(CLF, "partial_fit"), (REG, "partial_fit")])
def test_wrong_number_of_features_names_the_counts(name, method, n_features):
    est = _fitted(name, solver="sgd")
    X = np.ones((6, n_features))
    if method == "partial_fit":
        call = lambda: est.partial_fit(X, Y0[name][:6])  # noqa: E731
    else:
        call = lambda: _call_predictor(est, method, X)  # noqa: E731
    with pytest.raises(
        ValueError,
        match=f"X has {n_features} features, but {name} is expecting 4 features as input",
    ):
        call()


@pytest.mark.parametrize("name", [CLF, REG])
def test_float32_model_rejects_float64_input_beyond_float32(name):
    """A float32 model cast float64 X to float32, turning 1e300 into inf: the
    predictions came out NaN without a word (scikit-learn computes in float64
    and returns finite ones). Now a ValueError names X, the value and the dtype."""
    est = _train(_make(name), "fit", X0.astype(np.float32), Y0[name])
    big = X0 * 1e300
    methods = PREDICTORS[name]
    for method in methods:
        with pytest.raises(ValueError, match=r"Input X contains a value too large for "
                                             r"dtype\('float32'\) \(largest magnitude "
                                             r"2.55299e\+300"):
            _call_predictor(est, method, big)
    # values inside float32's range predict as usual
    assert np.isfinite(est.predict(X0 * 1e30).astype(float)).all()


def test_float32_training_rejects_targets_beyond_float32():
    with pytest.raises(ValueError, match=r"Input y contains a value too large for "
                                         r"dtype\('float32'\)"):
        _make(REG).fit(X0.astype(np.float32), Y0[REG] * 1e300)
    with pytest.raises(ValueError, match=r"Input sample_weight contains infinity or a "
                                         r"value too large for dtype\('float32'\)"):
        _make(REG).fit(X0.astype(np.float32), Y0[REG], sample_weight=np.full(30, 1e300))


def test_values_near_the_float_limits_do_not_crash():
    """1e300 in float64 and 3e38 in float32 (X, y, sample_weight; every
    solver; predict on huge input): each call either returns finite
    parameters and predictions (probabilities summing to 1), or raises a
    ValueError that says why. Run in a child interpreter."""
    result = run_child("""
        import itertools
        rng = np.random.RandomState(0)
        X = rng.randn(40, 3); y_reg = rng.randn(40); y_clf = np.arange(40) % 3
        out = []
        cases = []
        for name, solver, act in itertools.product(
                ("MLPClassifier", "MLPRegressor"), ("sgd", "adam", "lbfgs"),
                ("relu", "tanh", "logistic")):
            y = y_clf if name == "MLPClassifier" else y_reg
            cases += [
                (name, solver, act, "X 1e300", X * 1e300, y, None),
                (name, solver, act, "X 1e-300", X * 1e-300, y, None),
                (name, solver, act, "X f32 3e38",
                 (np.sign(X) * 3e38).astype(np.float32), y, None),
                (name, solver, act, "X f32 max",
                 np.where(X > 0, np.finfo(np.float32).max, 1.0).astype(np.float32), y, None),
                (name, solver, act, "sw 1e300", X, y, np.full(40, 1e300)),
                (name, solver, act, "sw f32 3e38", X.astype(np.float32), y,
                 np.full(40, 3e38)),
            ]
            if name == "MLPRegressor":
                cases += [(name, solver, act, "y 1e300", X, y * 1e300, None),
                          (name, solver, act, "y f32 3e38", X.astype(np.float32),
                           y * 3e38, None)]
        for name, solver, act, label, Xc, yc, sw in cases:
            est = getattr(skmlp, name)(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                                       solver=solver, activation=act)
            try:
                est.fit(Xc, yc, sample_weight=sw)
                finite = bool(np.isfinite(est._theta).all())
                preds = [est.predict(Xc)]
                for Xp in (Xc, X, X * 1e300 if Xc.dtype == np.float64 else X * 3e38):
                    try:
                        if name == "MLPClassifier":
                            p = est.predict_proba(Xp)
                            finite = finite and bool(np.isfinite(p).all()
                                                     and np.allclose(p.sum(axis=1), 1))
                        else:
                            finite = finite and bool(np.isfinite(est.predict(Xp)).all())
                    except ValueError as exc:
                        out.append([name, solver, act, label + " predict", "error", str(exc)])
                out.append([name, solver, act, label, "ok", finite])
            except Exception as exc:
                out.append([name, solver, act, label, "error",
                            f"{type(exc).__name__}: {exc}"])
        print(json.dumps(out))
    """)
    assert len(result) >= 2 * 3 * 3 * 6
    for name, solver, act, label, kind, detail in result:
        where = (name, solver, act, label)
        if kind == "ok":
            assert detail is True, where
        else:
            assert isinstance(detail, str) and (
                detail.startswith("ValueError") or label.endswith("predict")
            ), (where, detail)
            assert any(word in detail for word in (
                "non-finite", "not finite", "overflow", "too large", "infinity", "diverg",
                "NaN", "nan",
            )), (where, detail)


@pytest.mark.parametrize("name", [CLF, REG])
def test_huge_input_predicts_like_sklearn_or_says_it_overflowed(name):
    """X * 1e300 into a float64 model: finite outputs, scikit-learn's. When
    the forward pass overflows (here: first-layer weights of 1e308, so that
    x * w exceeds float64), scikit-learn returns inf/NaN outputs (NaN
    probabilities, an arbitrary class); skmlp raises a ValueError saying so."""
    est, ref = _fitted(name), _fitted_sklearn(name)
    method = "predict_proba" if name == CLF else "predict"
    out, out_ref = getattr(est, method)(X0 * 1e300), getattr(ref, method)(X0 * 1e300)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, out_ref, rtol=1e-6, atol=1e-12)
    for model in (est, ref):
        model.coefs_[0][:] = 1e308
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(getattr(ref, method)(X0)).all()
    for m in PREDICTORS[name]:
        with pytest.raises(ValueError, match=r"output is not finite for \d+ of 30 samples of "
                                             r"X: the forward pass overflowed"):
            _call_predictor(est, m, X0)


def _fitted_sklearn(name):
    return _train(_make(name, sknn), "fit", X0, Y0[name])


# ---------------------------------------------------------------------------
# partial_fit: classes
# ---------------------------------------------------------------------------


def test_partial_fit_unseen_labels_rejected():
    est = _train(_make(CLF, solver="sgd"), "partial_fit", X0, Y0[CLF])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        est.partial_fit(X0, Y0[CLF] + 1)
    with pytest.raises(ValueError, match=r"classes=.* is not the same as on last call"):
        est.partial_fit(X0, Y0[CLF], classes=[0, 1, 2, 3])
    first = _make(CLF, solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        first.partial_fit(X0, Y0[CLF])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        first.partial_fit(X0, Y0[CLF], classes=[0, 1])


def test_failed_first_partial_fit_leaves_the_classifier_unfitted():
    """The first partial_fit sets classes_ before training; when the call
    then fails, classes_ went with it, so the next call must name its
    classes again and may name others."""
    est = _make(CLF, solver="sgd")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.partial_fit(_with(np.nan), Y0[CLF], classes=[0, 1, 2, 3])
    assert not hasattr(est, "classes_")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X0, Y0[CLF])
    with _quiet():
        est.partial_fit(X0, Y0[CLF], classes=[0, 1, 2])
    twin = _train(_make(CLF, solver="sgd"), "partial_fit", X0, Y0[CLF])
    assert_array_equal(est.classes_, [0, 1, 2])
    assert_array_equal(est._theta, twin._theta)


# ---------------------------------------------------------------------------
# Hyperparameters: every parameter of get_params(), with values out of its domain
# ---------------------------------------------------------------------------

BAD_PARAMS = {
    "activation": ["softmax", 1, None],
    "alpha": [-1.0, "x", np.nan, np.inf],
    "batch_size": [0, -1, 2.5, "big"],
    "beta_1": [1.0, -0.1, np.nan],
    "beta_2": [1.0, -0.1],
    "class_weight": ["x", [1, 2]],
    "dropout": [1.0, -0.1, np.nan, "x"],
    "early_stopping": ["x", 2],
    "epsilon": [0.0, -1.0, np.nan],
    "hidden_layer_sizes": [0, -3, "abc", None],
    "huber_delta": [0.0, -1.0, np.nan, np.inf],
    "init_mean": [np.nan, np.inf, "x"],
    "init_std": [-1.0, np.inf, np.nan],
    "learning_rate": ["fast", None],
    "learning_rate_init": [0.0, -1.0, np.nan, np.inf],
    "loss": ["hinge", "log_loss", None],
    "max_fun": [0, 1.5],
    "max_iter": [0, -1, 1.5],
    "momentum": [1.5, -0.1, np.nan],
    "n_iter_no_change": [0, 1.5],
    "negative_slope": [-0.1, np.nan, np.inf],
    "nesterovs_momentum": ["x"],
    "power_t": [-1.0, np.nan],
    "random_state": ["x", -1, 1.5],
    "rho": [1.0, -0.1],
    "shuffle": ["yes"],
    "solver": ["newton", None],
    "tol": [-1.0, np.nan],
    "track_train_score": ["x"],
    "validation_fraction": [1.0, -0.1],
    "verbose": ["x"],
    "warm_start": [2, "x"],
    "weight_decay": [-1.0, np.inf, np.nan],
    "weight_init": ["zeros", None],
}

# values the constraints let through, rejected when fit sees the network
BAD_PARAMS_LATE = {
    "hidden_layer_sizes": [
        ((5, -1), ValueError, r"hidden_layer_sizes must be > 0"),
        ((0,), ValueError, r"hidden_layer_sizes must be > 0, got \[0\]"),
        ((5.5,), TypeError, r"hidden_layer_sizes must contain integers"),
        ((True,), TypeError, r"hidden_layer_sizes must contain integers"),
        ([[5]], TypeError, r"hidden_layer_sizes must contain integers"),
    ],
    "dropout": [
        ((0.5, 0.5), ValueError, r"dropout has 2 rates for 1 hidden layers"),
        ((1.0,), ValueError, r"dropout rates must be in \[0, 1\)"),
        ((np.nan,), ValueError, r"dropout rates must be in \[0, 1\)"),
        ([[0.1]], ValueError, r"dropout must be one rate or a 1-D sequence"),
        ((), ValueError, r"dropout has 0 rates for 1 hidden layers"),
        (("a",), ValueError, r"dropout must be a rate or a sequence of rates"),
    ],
    "class_weight": [
        ({5: 2.0}, ValueError, r"class_weight has labels \[5\] that are not classes"),
        ({0: 1, 1: 1, 2: 1, 7: 3.0}, ValueError, r"class_weight has labels \[7\]"),
        ({0: -1.0}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
        ({0: np.nan}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
        ({0: np.inf}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
        ({0: "a"}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
        ({0: 0, 1: 0, 2: 0}, ValueError, r"class_weight .*gives every sample weight 0"),
    ],
}


def test_every_parameter_has_bad_values():
    params = set(MLPClassifier().get_params()) | set(MLPRegressor().get_params())
    assert params == set(BAD_PARAMS)


def _param_cases():
    for name in (CLF, REG):
        params = getattr(skmlp, name)().get_params()
        for param, values in BAD_PARAMS.items():
            if param in params:
                for value in values:
                    yield pytest.param(name, param, value, id=f"{name[3:6]}-{param}-{value!r}")


@pytest.mark.parametrize("name, param, value", list(_param_cases()))
def test_invalid_parameter_rejected_naming_it(name, param, value):
    est = _make(name).set_params(**{param: value})
    with pytest.raises((ValueError, TypeError), match=f"'{param}' parameter of {name}") as exc:
        est.fit(X0, Y0[name])
    assert not hasattr(est, "coefs_")
    if param in sknn.MLPClassifier().get_params() | sknn.MLPRegressor().get_params():
        ref = _make(name, sknn).set_params(**{param: value})
        assert type(exc.value) is type(_raised(lambda: ref.fit(X0, Y0[name])))


@pytest.mark.parametrize(
    "param, value, exc_type, message",
    [pytest.param(p, v, t, m, id=f"{p}-{v!r}")
     for p, cases in BAD_PARAMS_LATE.items() for v, t, m in cases],
)
def test_invalid_structure_rejected_at_fit(param, value, exc_type, message):
    est = _make(CLF).set_params(**{param: value})
    with pytest.raises(exc_type, match=message):
        est.fit(X0, Y0[CLF])
    assert not hasattr(est, "coefs_")
    if param == "hidden_layer_sizes":
        # scikit-learn raises the same exception type
        ref = _make(CLF, sknn).set_params(**{param: value})
        assert type(_raised(lambda: ref.fit(X0, Y0[CLF]))) is exc_type


@pytest.mark.parametrize("name", [CLF, REG])
def test_empty_hidden_layer_sizes_fits_like_sklearn(name):
    """hidden_layer_sizes=() is a network without hidden layers; scikit-learn
    fits it (a linear model with the output activation), so skmlp does."""
    est = _train(_make(name, hidden_layer_sizes=()), "fit", X0, Y0[name])
    ref = _train(_make(name, sknn, hidden_layer_sizes=()), "fit", X0, Y0[name])
    assert [c.shape for c in est.coefs_] == [c.shape for c in ref.coefs_]
    np.testing.assert_allclose(est.predict(X0).astype(float), ref.predict(X0).astype(float),
                               rtol=1e-10, atol=1e-12)


def test_unusable_early_stopping_split_rejected():
    # too few samples for a validation set of 2
    with pytest.raises(ValueError, match="validation set is too small"):
        _make(REG, early_stopping=True, validation_fraction=0.01).fit(X0, Y0[REG])
    # a class with a single member cannot be stratified
    y = np.r_[np.zeros(29, dtype=int), 1]
    with pytest.raises(ValueError, match="least populated class"):
        _make(CLF, early_stopping=True).fit(X0, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        _make(REG, early_stopping=True).partial_fit(X0, Y0[REG])


# ---------------------------------------------------------------------------
# A failed call leaves a fitted estimator unchanged
# ---------------------------------------------------------------------------

_STATE_ATTRS = (
    "coefs_", "intercepts_", "prelu_slopes_", "n_iter_", "t_", "loss_", "loss_curve_",
    "best_loss_", "_no_improvement_count", "classes_", "n_features_in_", "n_outputs_",
    "out_activation_", "_fitted_activation", "_dropout_rng", "validation_scores_",
    "best_validation_score_", "history_",
)


def _snapshot(est, with_time=True):
    """Everything training reads or writes, deep-copied: parameters, counters,
    curves, optimizer state, the random generator's state. (Without the
    training time of ``history_`` for comparing two models.)"""
    snap = {"theta": est._theta.copy(), "theta_dtype": est._theta.dtype}
    for attr in _STATE_ATTRS:
        if hasattr(est, attr):
            snap[attr] = copy.deepcopy(getattr(est, attr))
    if not with_time and "history_" in snap:
        snap["history_"].pop("time", None)
    if isinstance(est.random_state, np.random.RandomState):
        snap["random_state"] = est.random_state.get_state()
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        snap["optimizer"] = {k: copy.deepcopy(v) for k, v in vars(opt).items()}
    return snap


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        _assert_equal_values(a[key], b[key], key)


def _assert_equal_values(x, y, where):
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), where
        for k in x:
            _assert_equal_values(x[k], y[k], f"{where}[{k!r}]")
    elif isinstance(x, list | tuple):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            _assert_equal_values(u, v, f"{where}[{i}]")
    elif isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.dtype == y.dtype, where
        assert x.tobytes() == y.tobytes(), where
    elif isinstance(x, float) and np.isnan(x):
        assert isinstance(y, float) and np.isnan(y), where
    else:
        assert x == y, where


def _bad_calls(name, dtype, solver="sgd"):
    """(label, call(est)) for calls that must fail on a fitted estimator."""
    # (malformed sparse matrices, which could crash the process if they reached
    # the kernels, are tried in a child interpreter: see
    # test_malformed_sparse_rejected_before_the_kernels)
    X, y = X0.astype(dtype), Y0[name]
    calls = {
        "nan X": lambda e, m: m(_with(np.nan, X=X), y),
        "inf X": lambda e, m: m(_with(np.inf, X=X), y),
        "no rows": lambda e, m: m(X[:0], y[:0]),
        "1-D X": lambda e, m: m(X[:, 0], y),
        "wrong features": lambda e, m: m(X[:, :3], y),
        "complex X": lambda e, m: m(X + 1j, y),
        "string X": lambda e, m: m(np.full(X.shape, "a"), y),
        "y short": lambda e, m: m(X, y[:-1]),
        "sw nan": lambda e, m: m(X, y, sample_weight=_with(np.nan, at=1, X=np.ones(30))),
        "sw negative": lambda e, m: m(X, y, sample_weight=-np.ones(30)),
        "sw short": lambda e, m: m(X, y, sample_weight=np.ones(5)),
        "sw scalar nan": lambda e, m: m(X, y, sample_weight=np.nan),
        "sw all zero": lambda e, m: m(X, y, sample_weight=0.0),
        "more layers": lambda e, m: (e.set_params(hidden_layer_sizes=(5, 2)), m(X, y)),
        "bad dropout": lambda e, m: (e.set_params(dropout=(0.1, 0.1)), m(X, y)),
    }
    if solver != "lbfgs":  # (L-BFGS has no early stopping)
        calls["early stopping split"] = lambda e, m: (
            e.set_params(early_stopping=True, validation_fraction=0.01), m(X, y))
    if name == CLF:
        calls["unseen label"] = lambda e, m: m(X, y + 1)
        calls["nan label"] = lambda e, m: m(X, _with(np.nan, at=0, X=y.astype(float)))
        calls["bad class_weight"] = lambda e, m: (
            e.set_params(class_weight={0: np.nan}), m(X, y))
        calls["unknown class_weight"] = lambda e, m: (
            e.set_params(class_weight={9: 1.0}), m(X, y))
    else:
        calls["nan y"] = lambda e, m: m(X, _with(np.nan, at=0, X=y))
        calls["two outputs"] = lambda e, m: m(X, np.c_[y, y])
    if dtype == np.float32:
        calls["X beyond float32"] = lambda e, m: m(X0 * 1e300, y)
        if name == REG:
            calls["y beyond float32"] = lambda e, m: m(X, y * 1e300)
    return calls


_SOLVER_SETUPS = {
    "sgd": dict(solver="sgd"),
    "adam-dropout": dict(solver="adam", dropout=0.2),
    "adagrad-prelu": dict(solver="adagrad", activation="prelu"),
    "rmsprop": dict(solver="rmsprop"),
    "adamw-invscaling": dict(solver="adamw", learning_rate="invscaling"),
}


def _state_cases(solvers):
    for solver in solvers:
        for name in (CLF, REG):
            for dtype in (np.float64, np.float32):
                for label in _bad_calls(name, dtype, solver):
                    yield pytest.param(
                        solver, name, dtype, label,
                        id=f"{solver}-{name[3:6]}-{np.dtype(dtype).name}-{label}",
                    )


@pytest.mark.parametrize("setup, name, dtype, label", list(_state_cases(_SOLVER_SETUPS)))
def test_failed_partial_fit_changes_nothing(setup, name, dtype, label):
    params = dict(_SOLVER_SETUPS[setup], random_state=np.random.RandomState(7))
    twin_params = dict(_SOLVER_SETUPS[setup], random_state=np.random.RandomState(7))
    X, y = X0.astype(dtype), Y0[name]
    est = _make(name, **params)
    twin = _make(name, **twin_params)
    for model in (est, twin):
        _train(model, "partial_fit", X, y)
        _train(model, "partial_fit", X, y)
    before = _snapshot(est)
    pred_before = est.predict(X)
    good_params = est.get_params()

    call = _bad_calls(name, dtype)[label]
    with pytest.raises((ValueError, TypeError)):
        with _quiet():
            call(est, est.partial_fit)
    _assert_same_state(_snapshot(est), before)
    est.set_params(**{k: v for k, v in good_params.items() if k != "random_state"})
    assert_array_equal(est.predict(X), pred_before)

    # the next good call continues as if the failed one never happened
    _train(est, "partial_fit", X, y)
    _train(twin, "partial_fit", X, y)
    _assert_same_state(_snapshot(est, with_time=False), _snapshot(twin, with_time=False))


@pytest.mark.parametrize("solver, name, dtype, label",
                         list(_state_cases(["adam", "sgd", "lbfgs"])))
def test_failed_warm_start_fit_changes_nothing(solver, name, dtype, label):
    X, y = X0.astype(dtype), Y0[name]
    est = _make(name, solver=solver, warm_start=True, random_state=3)
    twin = _make(name, solver=solver, warm_start=True, random_state=3)
    for model in (est, twin):
        _train(model, "fit", X, y)
    before = _snapshot(est)
    pred_before = est.predict(X)
    good_params = est.get_params()

    call = _bad_calls(name, dtype, solver)[label]
    with pytest.raises((ValueError, TypeError)):
        with _quiet():
            call(est, est.fit)
    _assert_same_state(_snapshot(est), before)
    est.set_params(**good_params)
    assert_array_equal(est.predict(X), pred_before)

    _train(est, "fit", X, y)
    _train(twin, "fit", X, y)
    _assert_same_state(_snapshot(est, with_time=False), _snapshot(twin, with_time=False))


# ---------------------------------------------------------------------------
# Data loaders
# ---------------------------------------------------------------------------


def _header(type_code, dims):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", n) for n in dims)


BAD_IDX = {
    "empty": (b"", IDXFormatError, r"no magic number"),
    "bad magic": (b"\x01\x02\x08\x01" + bytes(8), IDXFormatError, r"bad magic number"),
    "unknown type": (_header(0x42, [2]) + bytes(2), IDXFormatError, r"bad magic number"),
    "truncated header": (_header(8, [3, 4])[:9], IDXFormatError, r"truncated IDX header"),
    "truncated data": (_header(8, [3, 4]) + bytes(5), IDXFormatError, r"truncated"),
    "trailing bytes": (_header(8, [2]) + bytes(7), IDXFormatError, r"trailing bytes"),
    # sizes whose product overflows int64 (it wrapped to 0 and reached reshape)
    "int64 overflow": (_header(8, [65536] * 4), IDXFormatError,
                       r"needs 18446744073709551616 bytes"),
    "huge sizes": (_header(8, [2**32 - 1] * 3) + bytes(10), IDXFormatError, r"truncated"),
    "corrupt gzip": (b"\x1f\x8b" + bytes(20), IDXFormatError, r"gzip"),
}


@pytest.mark.parametrize("case", list(BAD_IDX))
def test_load_idx_rejects_corrupt_files(tmp_path, case):
    payload, exc_type, message = BAD_IDX[case]
    path = write_payload(tmp_path / "file-idx", payload)
    with pytest.raises(exc_type, match=message):
        datasets.load_idx(path)


def test_load_idx_argument_types(tmp_path):
    path = write_payload(tmp_path / "ok-idx", idx_bytes(np.arange(3, dtype=np.uint8)))
    with pytest.raises(TypeError, match="expected_ndim must be an int or None, got 'x'"):
        datasets.load_idx(path, expected_ndim="x")
    with pytest.raises(TypeError, match="path must be a str or path-like, got NoneType"):
        datasets.load_idx(None)
    with pytest.raises(FileNotFoundError):
        datasets.load_idx(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        datasets.load_idx(tmp_path)


def _write_set(directory, n_train=4, n_test=2, images=None, labels=None):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    if images is not None:
        arrays["train_images"] = images
    if labels is not None:
        arrays["train_labels"] = labels
    for key, fname in IDX_FILES.items():
        write_payload(directory / fname, idx_bytes(arrays[key]))
    return directory


@pytest.mark.parametrize("loader", [datasets.load_fashion_mnist, datasets.load_mnist])
def test_loaders_reject_bad_arguments_and_contents(tmp_path, no_system_data, loader):
    good = _write_set(tmp_path / "good")
    with pytest.raises(ValueError, match="dtype must be a floating-point type, got int64"):
        loader(good, dtype=int)
    with pytest.raises(TypeError, match="dtype must be a floating-point type, got 'nonsense'"):
        loader(good, dtype="nonsense")
    with pytest.raises(TypeError, match="data_home must be a str or path-like, got int"):
        loader(5)
    labels = _write_set(tmp_path / "labels", labels=np.array([0, 1, 2, 10], dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"expected uint8 labels in 0\.\.9"):
        loader(labels)
    shape = _write_set(tmp_path / "shape", images=np.zeros((4, 27, 28), dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"images of shape \(27, 28\)"):
        loader(shape)
    count = _write_set(tmp_path / "count", labels=np.arange(3, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="has 4 images but .* has 3 labels"):
        loader(count)


def test_loader_with_no_images_returns_empty_arrays(tmp_path, no_system_data):
    """A set of 0 images is well-formed; it failed in reshape before."""
    empty = _write_set(tmp_path / "empty", n_train=0,
                       images=np.zeros((0, 28, 28), dtype=np.uint8),
                       labels=np.zeros(0, dtype=np.uint8))
    X, y, X_test, y_test = datasets.load_fashion_mnist(empty, return_X_y=True)
    assert X.shape == (0, 784) and y.shape == (0,) and X_test.shape == (2, 784)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def _cli(argv, capsys):
    """(exit status, stderr) of the command line run in-process."""
    out = io.StringIO()
    try:
        status = cli_main([str(a) for a in argv], out=out)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    return status, capsys.readouterr().err


def _csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _table_text(rows, header="a,b,target"):
    return header + "\n" + "\n".join(rows) + ("\n" if rows else "")


_R = np.random.RandomState(1)
_GOOD_ROWS = [f"{_R.randn():.3f},{_R.randn():.3f},{i % 2}" for i in range(40)]

BAD_CSV = {
    # name: (contents, message on stderr)
    "empty file": ("", r"empty_file.csv: not a readable CSV file"),
    "header only": (_table_text([]), r"header_only.csv: no data rows"),
    "ragged": ("a,b,target\n1,2\n3,4,5,6\n", r"ragged.csv: not a readable CSV file"),
    "not text": (None, r"not_text.csv: not a readable CSV file"),
    "one column": ("target\n1\n2\n", r"one_column.csv: needs a header row and at least two"),
    "words": (_table_text([f"x{i},1,{i % 2}" for i in range(40)]),
              r"words.csv: non-numeric feature columns a"),
    "missing": (_table_text([",1,0"] + _GOOD_ROWS), r"missing.csv: missing values in a"),
    "missing target": (_table_text(["1,1,"] + _GOOD_ROWS),
                       r"missing_target.csv: the target column 'target' has missing values"),
    "inf": (_table_text(["inf,1,0"] + _GOOD_ROWS), r"Input X contains infinity"),
    "huge for float32": (_table_text(["1e300,1,0"] + _GOOD_ROWS),
                         r"Input X contains infinity or a value too large for "
                         r"dtype\('float32'\)"),
    "one row": (_table_text(["1,2,0"]), r"cannot split 1 samples"),
}


@pytest.mark.parametrize("command", ["train", "cv"])
@pytest.mark.parametrize("case", list(BAD_CSV))
def test_cli_bad_csv_reports_one_line_and_exit_status_1(tmp_path, capsys, case, command):
    text, message = BAD_CSV[case]
    path = tmp_path / (case.replace(" ", "_") + ".csv")
    if text is None:
        path.write_bytes(b"\x00\x01\xff\xfe\x00")
    else:
        path.write_text(text)
    extra = ["--folds", "2"] if command == "cv" else []
    status, err = _cli([command, path, "--epochs", "1", "--hidden", "3"] + extra, capsys)
    if command == "cv" and case == "one row":
        message = r"1 samples cannot make 2 folds"
    assert status == 1
    assert re.match(r"(python -m )?skmlp: error: ", err) and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert "Traceback" not in err


def test_cli_no_training_samples(tmp_path, capsys, no_system_data):
    empty = _write_set(tmp_path / "fm", n_train=0, images=np.zeros((0, 28, 28), np.uint8),
                       labels=np.zeros(0, np.uint8))
    status, err = _cli(["train", "fashion-mnist", "--data-dir", empty, "--epochs", "1"], capsys)
    assert status == 1 and "fashion-mnist: no training samples" in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--hidden", "0"], "layer sizes must be positive"),
        (["--hidden", "4,-2"], "layer sizes must be positive"),
        (["--hidden", "a"], "expected layer sizes like 256"),
        (["--lr", "nan"], "--lr: must be a positive number"),
        (["--lr", "0"], "--lr: must be a positive number"),
        (["--dropout", "1"], r"--dropout: must be in \[0, 1\)"),
        (["--momentum", "2"], r"--momentum: must be in \[0, 1\]"),
        (["--alpha", "-1"], "--alpha: must be a number >= 0"),
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--epochs", "x"], "invalid int value: 'x'"),
        (["--split", "0:1"], "split parts must be positive"),
        (["--split", "1"], "expected TRAIN:TEST"),
        (["--seed", "-1"], r"must be in \[0, 2\*\*32\)"),
        (["--dtype", "int"], "invalid choice: 'int'"),
        (["--solver", "lbfgs"], "invalid choice: 'lbfgs'"),
    ],
)
def test_cli_bad_options_are_usage_errors(capsys, argv, message):
    status, err = _cli(["train", "digits", *argv], capsys)
    assert status == 2
    assert re.search(message, err), err


def test_cli_predict_bad_input(tmp_path, capsys):
    train = _csv(tmp_path, "train.csv", _table_text(_GOOD_ROWS))
    model = tmp_path / "m.joblib"
    status, err = _cli(["train", train, "--epochs", "1", "--hidden", "3", "--save", model],
                       capsys)
    assert status == 0, err
    idx = write_payload(tmp_path / "x-idx", _header(8, [3, 5]) + bytes(15))
    cases = {
        "wrong columns": (_csv(tmp_path, "w.csv", "x,y\n1,2\n"),
                          r"w.csv: lacks the model's feature columns a, b"),
        "words": (_csv(tmp_path, "s.csv", _table_text(["x,1,0"])),
                  r"s.csv: non-numeric feature columns a"),
        "missing": (_csv(tmp_path, "n.csv", _table_text([",1,0"])), r"n.csv: missing values in a"),
        "header only": (_csv(tmp_path, "h.csv", _table_text([])), r"h.csv: no data rows"),
        "empty": (_csv(tmp_path, "e.csv", ""), r"e.csv: not a readable CSV file"),
        "inf": (_csv(tmp_path, "i.csv", _table_text(["inf,1,0"])), r"Input X contains infinity"),
        "idx features": (idx, r"X has 5 features, but StandardScaler is expecting 2"),
        "missing file": (tmp_path / "nope.csv", r"no such input file"),
    }
    for label, (path, message) in cases.items():
        status, err = _cli(["predict", model, path], capsys)
        assert status == 1, label
        assert re.search(message, err) and "Traceback" not in err, (label, err)
    status, err = _cli(["predict", train, train], capsys)
    assert status == 1 and "not a model saved with joblib" in err, err


def test_cli_subprocess_bad_csv_exits_cleanly(tmp_path):
    """The installed entry point: a bad file gives status 1 and one line on
    stderr, no traceback (python -m skmlp in a child process)."""
    path = _csv(tmp_path, "bad.csv", _table_text(["nan,1,0"] + _GOOD_ROWS))
    proc = subprocess.run(
        [sys.executable, "-m", "skmlp", "train", str(path), "--epochs", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=child_env(),
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f": error: {path}: missing values in a"), lines
