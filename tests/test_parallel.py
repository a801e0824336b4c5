"""Parallel fits on one machine: BLAS threads per fit, skmlp.parallel_config, no Dask needed."""

import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

import skmlp
import skmlp._multilayer_perceptron as mlp_module
from skmlp import MLPClassifier, parallel_config
from skmlp._threads import SINGLE_THREAD_WORK

from _helpers import child_env


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def digits600():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


@pytest.fixture
def blas_seen(monkeypatch):
    """BLAS thread counts seen at each epoch's kernel call, with the fit's hidden width."""
    seen = []
    kernel = mlp_module._mlp_fast._train_epoch

    def recording(spec, *args):
        seen.append(_blas_threads())
        return kernel(spec, *args)

    monkeypatch.setattr(mlp_module._mlp_fast, "_train_epoch", recording)
    return seen


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_small_fits_in_worker_threads_use_one_blas_thread(digits600, blas_seen):
    # Before: only fits in the main thread were limited, so each fit of
    # joblib's threading backend ran with all the process's BLAS threads.
    X, y = digits600
    with threadpool_limits(limits=2, user_api="blas"):
        threads = [
            threading.Thread(target=_fit, args=(MLPClassifier(max_iter=3, random_state=s), X, y))
            for s in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _blas_threads() == [2] * len(_blas_threads())
    assert len(blas_seen) == 9
    assert all(set(counts) == {1} for counts in blas_seen), blas_seen


def test_large_fit_in_worker_thread_keeps_blas_threads(blas_seen):
    rng = np.random.RandomState(0)
    n_features, hidden, batch = 100, 1000, 200
    assert batch * (n_features * hidden + hidden * 2) >= SINGLE_THREAD_WORK
    X, y = rng.rand(batch, n_features), np.arange(batch) % 2
    est = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=1, batch_size=batch)
    with threadpool_limits(limits=2, user_api="blas"):
        t = threading.Thread(target=_fit, args=(est, X, y))
        t.start()
        t.join()
    assert blas_seen and all(set(c) == {2} for c in blas_seen), blas_seen


def test_parallel_config_threading_sets_backend_and_blas_threads(monkeypatch):
    monkeypatch.setattr(joblib, "cpu_count", lambda *a, **k: 4)
    before = _blas_threads()
    with parallel_config(n_jobs=2) as per_fit:
        backend, n_jobs = joblib.parallel.get_active_backend()
        assert type(backend).__name__ == "ThreadingBackend" and n_jobs == 2
        assert per_fit == 2
        assert set(_blas_threads()) == {2}
    with parallel_config(n_jobs=-1) as per_fit:
        assert per_fit == 1 and set(_blas_threads()) == {1}
    with parallel_config(n_jobs=-3, threads_per_fit=3) as per_fit:
        assert per_fit == 3 and set(_blas_threads()) == {3}
    assert _blas_threads() == before


def test_parallel_config_loky_workers_get_the_limit():
    def worker_blas():
        from threadpoolctl import threadpool_info

        return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    import scipy.linalg  # noqa: F401  (the workers load the BLAS skmlp uses)

    with parallel_config("loky", n_jobs=2, threads_per_fit=1) as per_fit:
        seen = joblib.Parallel()(joblib.delayed(worker_blas)() for _ in range(2))
    assert per_fit == 1
    assert seen == [[1], [1]]


def test_parallel_config_rejects_bad_threads():
    with pytest.raises(ValueError, match="threads_per_fit"):
        with parallel_config(threads_per_fit=0):
            pass


def test_grid_search_under_parallel_config_equals_sequential(digits600):
    X, y = digits600
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]}
    est = MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with threadpool_limits(limits=1, user_api="blas"):
            serial = GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X, y)
        with parallel_config(n_jobs=2):
            parallel = GridSearchCV(est, grid, cv=3).fit(X, y)
    for k in ("mean_test_score", "split0_test_score", "split2_test_score", "rank_test_score"):
        np.testing.assert_array_equal(serial.cv_results_[k], parallel.cv_results_[k])
    assert serial.best_params_ == parallel.best_params_
    np.testing.assert_array_equal(serial.predict_proba(X), parallel.predict_proba(X))


# ---------------------------------------------------------------------------
# skmlp without the distributed extra
# ---------------------------------------------------------------------------

_WITHOUT_DASK = """
import sys

class Blocker:
    # what an environment without the extra looks like: these do not import
    blocked = ("dask", "distributed", "dask_ml")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
for name in ("dask", "distributed", "dask_ml"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the blocker let {name} import")

import warnings
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
import skmlp
from skmlp import MLPClassifier, MLPRegressor, parallel_config

warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
X = X / 16
clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0).fit(X, y)
assert clf.score(X, y) > 0.5
clf.partial_fit(X[:100], y[:100])
reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y.astype(float))
with parallel_config(n_jobs=2):
    gs = GridSearchCV(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
                      {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
assert gs.best_params_
loaded = sorted(m for m in sys.modules if m.split(".")[0] in Blocker.blocked)
assert not loaded, loaded
print("ok", skmlp.__file__)
"""


def test_skmlp_works_without_the_distributed_extra():
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_WITHOUT_DASK)],
            capture_output=True, text=True, timeout=300, cwd=cwd, env=child_env(),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["ok", skmlp.__file__]
