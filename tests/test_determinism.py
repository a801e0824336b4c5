"""Determinism: the same random_state gives bitwise the same model, serially,
in concurrent threads and in another process; concurrent predictions agree.

tests/test_threads.py checks BLAS thread counts and four joblib-threaded fits
of one configuration; tests/test_gil.py that the kernels release the GIL. Here:

* repeated fits with one random_state give bitwise-identical parameters,
  optimizer state, loss curves, validation scores and history, for every
  solver, with dropout and early stopping, sparse input and float32; and so
  do repeated partial_fit sequences;
* a fresh interpreter fits the same models bitwise (nothing depends on the
  process's history: allocation addresses, caches, earlier fits);
* eight different fits running at once in a ThreadPoolExecutor give bitwise
  the models of the same fits run one after another;
* many threads predicting with one fitted model (also one whose coefs_ were
  assigned, which rebuilds the parameter vector on first use) give bitwise
  the serial predictions.

Fits compared across threads run with one BLAS thread (threadpoolctl), the
setting docs recommend for parallel fits: a BLAS may split a product
differently with more threads, which rounds differently.
"""

import hashlib
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skmlp import MLPClassifier, MLPRegressor

from _helpers import run_python

SOLVERS = ["lbfgs", "sgd", "adam", "adagrad", "rmsprop", "adamw"]
VARIANTS = ["plain", "dropout_early_stopping", "sparse", "float32"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(variant, est_name="clf", n=160, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 10)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.7)
    if est_name == "reg":
        y = X[:, :3] @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(n)
    if variant == "sparse":
        X[np.abs(X) < 0.9] = 0
        X = sp.csr_matrix(X)
    elif variant == "float32":
        X = X.astype(np.float32)
    return X, y


def _estimator(solver, variant, est_name="clf", seed=0):
    Est = MLPClassifier if est_name == "clf" else MLPRegressor
    params = dict(solver=solver, hidden_layer_sizes=(16, 8), max_iter=15,
                  random_state=seed, learning_rate_init=0.01, batch_size=32)
    if variant == "dropout_early_stopping":
        params.update(early_stopping=True, n_iter_no_change=3, tol=0.0,
                      validation_fraction=0.2)
        if solver != "lbfgs":
            params.update(dropout=0.25)
    return Est(**params)


def _fingerprint(est):
    """Everything a fit produces that must be reproducible, as exact values."""
    parts = {"theta": est._theta.tobytes().hex(), "dtype": str(est._theta.dtype),
             "n_iter": est.n_iter_, "loss": repr(est.loss_)}
    if hasattr(est, "loss_curve_"):
        parts["loss_curve"] = repr(est.loss_curve_)
        parts["state_1"] = est._optimizer.state_1.tobytes().hex()
        parts["state_2"] = est._optimizer.state_2.tobytes().hex()
        parts["t"] = est._optimizer.t
    if getattr(est, "validation_scores_", None) is not None:
        parts["val"] = repr(est.validation_scores_)
    if getattr(est, "_dropout_rng", None) is not None:
        parts["rng"] = est._dropout_rng.tobytes().hex()
    parts["history"] = repr({k: v for k, v in est.history_.items() if k != "time"})
    return parts


def _fit(solver, variant, est_name="clf", seed=0):
    X, y = _data(variant, est_name)
    return _estimator(solver, variant, est_name, seed).fit(X, y)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_repeated_fits_are_bitwise_identical(solver, variant):
    first = _fit(solver, variant)
    assert first.n_iter_ >= 2
    if variant == "dropout_early_stopping" and solver != "lbfgs":
        assert first._dropout_rng is not None and first.validation_scores_
    for _ in range(2):
        again = _fit(solver, variant)
        assert _fingerprint(again) == _fingerprint(first)
    # a different seed gives a different model (the comparison can fail)
    other = _fit(solver, variant, seed=1)
    assert _fingerprint(other)["theta"] != _fingerprint(first)["theta"]


@pytest.mark.parametrize("solver", SOLVERS[1:])
def test_repeated_partial_fit_sequences_are_bitwise_identical(solver):
    X, y = _data("plain")

    def run():
        est = MLPClassifier(solver=solver, hidden_layer_sizes=(16,), random_state=3,
                            dropout=0.1, batch_size=20)
        for i in range(5):
            part = slice(i * 30, i * 30 + 60)
            est.partial_fit(X[part], y[part], classes=[0, 1, 2])
        return _fingerprint(est)

    assert run() == run()


_CHILD = r"""
import hashlib, json, sys, warnings
sys.path.insert(0, sys.argv[1])
import test_determinism as td
warnings.simplefilter("ignore")
out = {}
for solver, variant in json.loads(sys.argv[2]):
    fp = td._fingerprint(td._fit(solver, variant))
    out[f"{solver}/{variant}"] = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()
print(json.dumps(out))
"""


def test_a_fresh_process_fits_the_same_models():
    cases = [("adam", "dropout_early_stopping"), ("sgd", "sparse"),
             ("lbfgs", "float32"), ("rmsprop", "plain")]
    here = {
        f"{s}/{v}": hashlib.sha256(
            json.dumps(_fingerprint(_fit(s, v)), sort_keys=True).encode()
        ).hexdigest()
        for s, v in cases
    }
    proc = run_python(_CHILD, os.path.dirname(__file__), json.dumps(cases))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


# Eight different fits: both estimators, every solver, dropout, early
# stopping, sparse and float32 input, each with its own seed.
CONCURRENT = [
    ("sgd", "plain", "clf", 0),
    ("adam", "dropout_early_stopping", "clf", 1),
    ("adagrad", "sparse", "clf", 2),
    ("rmsprop", "float32", "clf", 3),
    ("adamw", "dropout_early_stopping", "reg", 4),
    ("lbfgs", "plain", "reg", 5),
    ("adam", "sparse", "reg", 6),
    ("sgd", "float32", "reg", 7),
]


def test_eight_concurrent_fits_equal_serial_fits():
    def fit(case):
        solver, variant, est_name, seed = case
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return _fingerprint(_fit(solver, variant, est_name, seed))

    with threadpool_limits(limits=1, user_api="blas"):
        serial = [fit(c) for c in CONCURRENT]
        barrier = threading.Barrier(len(CONCURRENT))

        def fit_together(case):
            barrier.wait()  # all eight start at once
            return fit(case)

        for _ in range(2):
            with ThreadPoolExecutor(max_workers=8) as pool:
                parallel = list(pool.map(fit_together, CONCURRENT))
            for case, a, b in zip(CONCURRENT, serial, parallel):
                assert a == b, case
    assert len({fp["theta"] for fp in serial}) == len(CONCURRENT)


@pytest.mark.parametrize("variant", ["plain", "sparse", "float32", "assigned_coefs"])
def test_threads_predicting_with_one_model_agree_with_serial(variant):
    data_variant = "plain" if variant == "assigned_coefs" else variant
    X, y = _data(data_variant, n=2000)
    est = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=5, random_state=0,
                        activation="prelu").fit(X, y)
    chunks = [slice(i * 250, (i + 1) * 250) for i in range(8)] + [slice(None)]
    # serial references of the very same calls: a BLAS product of another
    # number of rows may round an edge row differently, so predict(X[part])
    # is compared with predict(X[part]), not with predict(X)[part]
    serial = {
        (part.start, part.stop): (est.predict_proba(X[part]), est.predict(X[part]))
        for part in chunks
    }
    if variant == "assigned_coefs":
        # replaced views: the first predict in any thread rebuilds _theta
        est.coefs_ = [c.copy() for c in est.coefs_]
        est.intercepts_ = [b.copy() for b in est.intercepts_]
    barrier = threading.Barrier(16)

    def work(i):
        barrier.wait()
        out = []
        for r in range(6):
            part = chunks[(i + r) % len(chunks)]
            out.append((part, est.predict_proba(X[part]), est.predict(X[part])))
        return out

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(16)))
    for out in results:
        for part, proba, pred in out:
            ref_proba, ref_pred = serial[(part.start, part.stop)]
            assert_array_equal(proba, ref_proba)
            assert_array_equal(pred, ref_pred)
