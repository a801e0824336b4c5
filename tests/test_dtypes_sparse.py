"""dtype preservation (float32 trains and predicts in float32, float64 in
float64) and sparse input (CSR / CSC, with explicit zeros, unsorted or 64-bit
indices) giving the same model as dense input."""

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import skmlp

from _helpers import read_only

CLF = "MLPClassifier"
REG = "MLPRegressor"
SOLVERS = ["sgd", "adam", "lbfgs"]


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@lru_cache(maxsize=None)
def _dense(est_name):
    """float64 data with ~65% zeros (so that sparse input is natural)."""
    if est_name == CLF:
        X, y = make_classification(
            n_samples=240, n_features=14, n_informative=7, n_classes=3,
            random_state=0,
        )
    else:
        X, y = make_regression(
            n_samples=240, n_features=14, n_informative=9, n_targets=2,
            noise=1.0, random_state=0,
        )
        y = y / y.std(axis=0)
    mask = np.random.RandomState(1).uniform(size=X.shape) < 0.35
    X = X * mask
    X[5] = 0.0  # an all-zero row
    # shared between tests: read-only, so that no estimator writes into it
    return read_only(X, y)


def _sparse(X, fmt):
    """X as a sparse matrix of format ``fmt``, with explicit zeros stored."""
    rng = np.random.RandomState(2)
    rows, cols = np.nonzero(X)
    zr, zc = np.nonzero(X == 0)
    pick = rng.choice(len(zr), size=len(zr) // 10, replace=False)
    data = np.concatenate([X[rows, cols], np.zeros(len(pick))])
    coo = sp.coo_matrix(
        (data, (np.concatenate([rows, zr[pick]]), np.concatenate([cols, zc[pick]]))),
        shape=X.shape,
    )
    if fmt == "csc":
        S = coo.tocsc()
    else:
        S = coo.tocsr()
    if fmt == "csr_unsorted":
        S.sort_indices()
        for i in range(S.shape[0]):
            lo, hi = S.indptr[i], S.indptr[i + 1]
            S.indices[lo:hi] = S.indices[lo:hi][::-1].copy()
            S.data[lo:hi] = S.data[lo:hi][::-1].copy()
        S.has_sorted_indices = False
    if fmt == "csr_int64":
        # the constructor would downcast the index arrays; assign them
        S.indices = S.indices.astype(np.int64)
        S.indptr = S.indptr.astype(np.int64)
        assert S.indices.dtype == np.int64 and S.indptr.dtype == np.int64
    assert S.nnz > np.count_nonzero(S.data), "explicit zeros expected"
    assert_array_equal(S.toarray(), X)
    return S


def _params(solver, **extra):
    params = dict(hidden_layer_sizes=(10, 6), random_state=0, solver=solver)
    if solver == "lbfgs":
        params["max_iter"] = 10
    else:
        params.update(max_iter=4, learning_rate_init=0.05 if solver == "sgd" else 0.01)
    params.update(extra)
    return params


def _fit(est_name, X, y, **params):
    fit_params = params.pop("fit_params", {})
    return getattr(skmlp, est_name)(**params).fit(X, y, **fit_params)


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _as_input(X, fmt, dtype):
    X = X.astype(dtype)
    if fmt == "dense":
        return X
    return _sparse(X, fmt).astype(dtype)


# ---------------------------------------------------------------------------
# dtype preservation
# ---------------------------------------------------------------------------


def assert_model_dtype(est, dtype):
    assert est._theta.dtype == dtype
    for arr in list(est.coefs_) + list(est.intercepts_):
        assert arr.dtype == dtype
        assert np.shares_memory(arr, est._theta)
    if est.solver in ("sgd", "adam"):
        opt = est._optimizer
        assert opt.state_1.dtype == dtype
        assert opt.state_1.shape == est._theta.shape
        assert opt.state_2.dtype == dtype
        if est.solver == "adam":
            assert opt.state_2.shape == est._theta.shape
        # the state has been used, not just allocated
        assert np.any(opt.state_1 != 0)
    assert np.isfinite(est._theta).all()


def assert_output_dtype(est, X, dtype):
    if hasattr(est, "predict_proba"):
        proba = est.predict_proba(X)
        assert proba.dtype == dtype
        assert est.predict_log_proba(X).dtype == dtype
        assert_allclose(proba.sum(axis=1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12)
    else:
        assert est.predict(X).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_dtype_preserved(est_name, solver, fmt, dtype):
    X, y = _dense(est_name)
    Xin = _as_input(X, fmt, dtype)
    est = _fit(est_name, Xin, y, **_params(solver))
    assert_model_dtype(est, dtype)
    assert_output_dtype(est, Xin, dtype)
    if solver != "lbfgs":
        # sklearn's stochastic solvers keep the same dtype for their parameters
        # (its L-BFGS returns float64 parameters; skmlp stays in float32)
        ref = getattr(sknn, est_name)(**_params(solver)).fit(Xin, y)
        for a, b in zip(ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_):
            assert b.dtype == a.dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "setting",
    ["sample_weight", "early_stopping", "partial_fit", "warm_start", "batch_size"],
)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_dtype_preserved_in_training_variants(est_name, solver, setting, dtype):
    X, y = _dense(est_name)
    Xin = X.astype(dtype)
    Est = getattr(skmlp, est_name)
    if setting == "sample_weight":
        # float64 weights do not promote a float32 model
        sw = np.random.RandomState(0).uniform(0.5, 2, size=X.shape[0])
        est = Est(**_params(solver)).fit(Xin, y, sample_weight=sw)
    elif setting == "early_stopping":
        est = Est(**_params(solver, early_stopping=True, max_iter=8)).fit(Xin, y)
        assert len(est.validation_scores_) == est.n_iter_
    elif setting == "partial_fit":
        est = Est(**_params(solver))
        kw = dict(classes=np.unique(y)) if est_name == CLF else {}
        for i in range(3):
            est.partial_fit(Xin[i * 60 : i * 60 + 120], y[i * 60 : i * 60 + 120],
                            **(kw if i == 0 else {}))
            assert_model_dtype(est, dtype)
    elif setting == "warm_start":
        est = Est(**_params(solver, warm_start=True)).fit(Xin, y)
        est.fit(Xin[::2], y[::2])
    elif setting == "batch_size":
        est = Est(**_params(solver, batch_size=17, shuffle=False)).fit(Xin, y)
    assert_model_dtype(est, dtype)
    assert_output_dtype(est, Xin, dtype)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_float32_dataframe_gives_float32_model(est_name):
    X, y = _dense(est_name)
    df = pd.DataFrame(X.astype(np.float32), columns=[f"c{i}" for i in range(X.shape[1])])
    est = _fit(est_name, df, y, **_params("adam"))
    assert_model_dtype(est, np.float32)
    assert_output_dtype(est, df, np.float32)


@pytest.mark.parametrize("est_name", [CLF, REG])
def test_integer_input_gives_float64_model(est_name):
    X, y = _dense(est_name)
    Xi = np.round(X * 3).astype(np.int64)
    est = _fit(est_name, Xi, y, **_params("sgd"))
    assert_model_dtype(est, np.float64)
    assert_output_dtype(est, Xi, np.float64)
    ref = _fit(est_name, Xi.astype(np.float64), y, **_params("sgd"))
    assert_array_equal(est._theta, ref._theta)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_float32_model_close_to_float64_model(est_name, solver):
    X, y = _dense(est_name)
    params = _params(solver, max_iter=3 if solver != "lbfgs" else 5)
    m32 = _fit(est_name, X.astype(np.float32), y, **params)
    m64 = _fit(est_name, X, y, **params)
    assert m32._theta.dtype == np.float32 and m64._theta.dtype == np.float64
    # the float32 model really is computed in float32 (not a cast float64 model)
    assert not np.array_equal(m32._theta, m64._theta.astype(np.float32))
    for a, b in zip(m64.coefs_ + m64.intercepts_, m32.coefs_ + m32.intercepts_):
        assert_allclose(b, a, rtol=1e-3, atol=1e-4)
    assert_allclose(_output(m32, X.astype(np.float32)), _output(m64, X),
                    rtol=1e-3, atol=1e-4)
    if solver != "lbfgs":
        assert_allclose(m32.loss_curve_, m64.loss_curve_, rtol=1e-3)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_float32_model_close_to_sklearn_float32_model(est_name, solver):
    X, y = _dense(est_name)
    X32 = X.astype(np.float32)
    params = _params(solver, max_iter=3 if solver != "lbfgs" else 5)
    ours = _fit(est_name, X32, y, **params)
    ref = getattr(sknn, est_name)(**params).fit(X32, y)
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        assert b.dtype == np.float32
        assert_allclose(b, a, rtol=1e-3, atol=1e-4)
    assert_allclose(_output(ours, X32), _output(ref, X32), rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------
# Sparse input gives the model dense input gives
# ---------------------------------------------------------------------------

SPARSE_FORMATS = ["csr", "csc", "csr_unsorted", "csr_int64"]


def assert_same_model(a, b, rtol=1e-10, atol=1e-13):
    assert a._theta.shape == b._theta.shape
    assert np.isfinite(a._theta).all()
    assert_allclose(a._theta, b._theta, rtol=rtol, atol=atol)
    if hasattr(b, "loss_curve_") and b.loss_curve_ is not None:
        assert a.n_iter_ == b.n_iter_
        assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
    assert_allclose(a.loss_, b.loss_, rtol=rtol)


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_sparse_matches_dense(est_name, solver, fmt):
    X, y = _dense(est_name)
    S = _sparse(X, fmt)
    params = _params(solver)
    dense = _fit(est_name, X, y, **params)
    sparse = _fit(est_name, S, y, **params)
    assert sp.issparse(S)
    assert_same_model(sparse, dense)
    # predictions: sparse model on sparse input, dense model on dense input,
    # and each model on the other representation
    out = _output(dense, X)
    for model, data in [(sparse, S), (sparse, X), (dense, S)]:
        assert_allclose(_output(model, data), out, rtol=1e-10, atol=1e-13)
    if est_name == CLF:
        assert_array_equal(sparse.predict(S), dense.predict(X))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "setting", ["no_shuffle", "sample_weight", "early_stopping", "batch_size", "partial_fit"]
)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_sparse_matches_dense_training_variants(est_name, solver, setting, fmt):
    X, y = _dense(est_name)
    S = _sparse(X, fmt)
    sw = np.random.RandomState(0).uniform(0.5, 2, size=X.shape[0])
    Est = getattr(skmlp, est_name)
    models = []
    for data in (X, S):
        if setting == "no_shuffle":
            est = Est(**_params(solver, shuffle=False)).fit(data, y)
        elif setting == "sample_weight":
            est = Est(**_params(solver)).fit(data, y, sample_weight=sw)
        elif setting == "early_stopping":
            est = Est(**_params(solver, early_stopping=True, max_iter=8)).fit(data, y)
        elif setting == "batch_size":
            est = Est(**_params(solver, batch_size=23)).fit(data, y)
        elif setting == "partial_fit":
            est = Est(**_params(solver))
            kw = dict(classes=np.unique(y)) if est_name == CLF else {}
            for i in range(3):
                rows = slice(i * 50, i * 50 + 140)
                est.partial_fit(data[rows], y[rows], **(kw if i == 0 else {}))
        models.append(est)
    dense, sparse = models
    assert_same_model(sparse, dense)
    if setting == "early_stopping":
        assert_allclose(sparse.validation_scores_, dense.validation_scores_, rtol=1e-10)
    assert_allclose(_output(sparse, S), _output(dense, X), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_sparse_prediction_of_empty_rows(est_name, fmt, dtype):
    X, y = _dense(est_name)
    est = _fit(est_name, X.astype(dtype), y, **_params("adam"))
    mat = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    # a matrix with no stored entry at all, and one with only explicit zeros
    empty = mat((4, X.shape[1]), dtype=dtype)
    assert empty.nnz == 0
    only_zeros = mat((np.zeros(3, dtype=dtype), ([0, 2, 3], [1, 4, 7])),
                     shape=(4, X.shape[1]))
    assert only_zeros.nnz == 3
    zeros = np.zeros((4, X.shape[1]), dtype=dtype)
    expected = _output(est, zeros)
    assert_allclose(_output(est, empty), expected, rtol=1e-6, atol=0)
    assert_allclose(_output(est, only_zeros), expected, rtol=1e-6, atol=0)
    assert _output(est, empty).dtype == dtype


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("est_name", [CLF, REG])
def test_float32_sparse_close_to_float32_dense(est_name, solver):
    X, y = _dense(est_name)
    X32 = X.astype(np.float32)
    S32 = _sparse(X, "csr").astype(np.float32)
    params = _params(solver)
    dense = _fit(est_name, X32, y, **params)
    sparse = _fit(est_name, S32, y, **params)
    assert sparse._theta.dtype == np.float32
    assert_allclose(sparse._theta, dense._theta, rtol=1e-4, atol=1e-5)
    assert_allclose(_output(sparse, S32), _output(dense, X32), rtol=1e-4, atol=1e-5)
