"""skmlp's BLAS thread policy leaves the process's thread counts as it found them."""

import threading
import warnings

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

from skmlp import MLPClassifier


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def test_small_fit_in_main_thread_restores_thread_counts():
    X, y = _digits()
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPClassifier(max_iter=3, random_state=0).fit(X, y).predict(X)
        assert _blas_threads() == before


def test_concurrent_fits_leave_thread_counts_unchanged():
    X, y = _digits()
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()

        def work():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                for _ in range(3):
                    MLPClassifier(max_iter=3, random_state=0).fit(X, y)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with joblib.parallel_config(backend="threading"):
                GridSearchCV(
                    MLPClassifier(max_iter=3, random_state=0),
                    {"alpha": [1e-4, 1e-2]}, cv=3, n_jobs=2,
                ).fit(X, y)
            MLPClassifier(max_iter=3, random_state=0).fit(X, y)
        assert _blas_threads() == before


def test_concurrent_fits_equal_serial_fits():
    X, y = _digits()
    params = [dict(alpha=a, random_state=s) for a in (1e-4, 1e-2) for s in (0, 1)]

    def fit(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(max_iter=3, **p).fit(X, y)._theta

    # Same BLAS thread count for both (a BLAS may split a product differently,
    # and so round differently, with more threads): the recommended setting
    # for parallel fits, one BLAS thread per fit.
    with threadpool_limits(limits=1, user_api="blas"):
        serial = [fit(p) for p in params]
        parallel = joblib.Parallel(n_jobs=4, backend="threading")(
            joblib.delayed(fit)(p) for p in params
        )
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
