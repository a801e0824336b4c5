"""skmlp on Dask: model selection on a dask.distributed cluster, out-of-core training.

One ``LocalCluster`` of worker processes on the loopback interface serves the
whole module. Each result computed on the cluster is compared with the same
computation run locally, one fit at a time, with the same seeds: the same
cross-validation scores, best parameters and predictions, bit for bit (every
fit runs with one BLAS thread on both sides: skmlp's small-network rule in
this process, Dask's nanny environment in the workers). The task stream shows
that the fits did run on the workers.

The distributed pieces are the optional extra ``skmlp[distributed]``. Without
it these tests are skipped, unless ``SKMLP_REQUIRE_DISTRIBUTED=1`` (set by
.ci/run, which installs the extra): then a missing package is an error, so a
skip can never pass for a success in CI.

Time: the cluster starts in a few seconds and every problem is small; a
watchdog (``faulthandler``) ends the run with a traceback if the module takes
longer than ``_WATCHDOG_S``, and the fixture checks that the worker processes
are gone after the cluster is closed.
"""

import faulthandler
import importlib
import os
import re
import time
import warnings

import joblib
import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skmlp
from skmlp import MLPClassifier, MLPRegressor


def _require(name):
    if os.environ.get("SKMLP_REQUIRE_DISTRIBUTED") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)


dask = _require("dask")
distributed = _require("distributed")
da = _require("dask.array")
dask_ml_wrappers = _require("dask_ml.wrappers")

_WATCHDOG_S = 240
_N_WORKERS = 2


@pytest.fixture(scope="module")
def client():
    faulthandler.dump_traceback_later(_WATCHDOG_S, exit=True)
    cluster = distributed.LocalCluster(
        n_workers=_N_WORKERS, processes=True, threads_per_worker=1,
        host="127.0.0.1", dashboard_address=None, silence_logs=40,
    )
    client = distributed.Client(cluster, timeout="60s")
    pids = {}
    try:
        client.wait_for_workers(_N_WORKERS, timeout=60)
        pids = client.run(os.getpid)
        # The workers run the skmlp this session tests.
        files = client.run(lambda: importlib.import_module("skmlp").__file__)
        assert set(files.values()) == {skmlp.__file__}, files
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)
        faulthandler.cancel_dump_traceback_later()
    deadline = time.monotonic() + 30
    alive = [p for p in pids.values() if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if _alive(p)]
    assert not alive, f"worker processes still running after close: {alive}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited; only its parent (the nanny, gone too) would reap it
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _on_cluster(client, func):
    """func() under joblib's Dask backend; returns (result, tasks run by workers)."""
    with distributed.get_task_stream(client) as ts:
        with joblib.parallel_config(backend="dask"):
            result = func()
    return result, ts.data


def _joblib_calls_on_workers(tasks, client):
    """How many joblib calls (fits) the workers ran, from the task stream.

    joblib's Dask backend names each task after its batch of calls
    (``batch_of__fit_and_score_2_calls-<id>``)."""
    workers = set(client.scheduler_info()["workers"])
    assert tasks and {t["worker"] for t in tasks} <= workers
    calls = [re.search(r"_(\d+)_calls-", t["key"]) for t in tasks]
    assert all(calls), [t["key"] for t in tasks]
    return sum(int(m.group(1)) for m in calls)


def _partial_fits_on_workers(tasks, client):
    """How many partial_fit calls the workers ran: dask-ml's Incremental makes
    one task per block, keyed ``("fit-<token>", block)`` (block -1 holds the
    initial estimator)."""
    workers = set(client.scheduler_info()["workers"])
    assert tasks and {t["worker"] for t in tasks} <= workers
    return sum(1 for t in tasks if isinstance(t["key"], tuple)
               and str(t["key"][0]).startswith("fit-") and t["key"][1] >= 0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:900], y[:900]


def _quiet(func):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func()


def _assert_same_search(local, dist, X):
    for key in local.cv_results_:
        if "time" in key:
            continue
        a, b = local.cv_results_[key], dist.cv_results_[key]
        if key.startswith(("split", "mean_test", "std_test", "rank")):
            np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            assert list(a) == list(b), key
    assert local.best_params_ == dist.best_params_
    assert local.best_score_ == dist.best_score_
    np.testing.assert_array_equal(local.predict(X), dist.predict(X))
    np.testing.assert_array_equal(local.predict_proba(X), dist.predict_proba(X))


def test_grid_search_on_cluster_equals_local(client, digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, random_state=0),
    )
    grid = {"mlpclassifier__alpha": [1e-4, 1e-1],
            "mlpclassifier__learning_rate_init": [1e-3, 1e-2]}

    def search():
        return _quiet(lambda: GridSearchCV(pipe, grid, cv=3).fit(X, y))

    local = search()
    dist, tasks = _on_cluster(client, search)
    assert _joblib_calls_on_workers(tasks, client) == 4 * 3
    _assert_same_search(local, dist, X)
    # the search is not trivial: the candidates score differently
    assert len(set(local.cv_results_["mean_test_score"])) > 1


def test_randomized_search_on_cluster_equals_local(client, digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", max_iter=10,
                        random_state=0)
    dists = {"alpha": loguniform(1e-5, 1e-1), "learning_rate_init": loguniform(1e-4, 1e-1),
             "batch_size": [32, 64, 128]}

    def search():
        return _quiet(lambda: RandomizedSearchCV(
            est, dists, n_iter=5, cv=3, random_state=0).fit(X / 16, y))

    local = search()
    dist, tasks = _on_cluster(client, search)
    assert _joblib_calls_on_workers(tasks, client) == 5 * 3
    _assert_same_search(local, dist, X / 16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_val_score_on_cluster_equals_local(client, dtype):
    X, y = make_regression(n_samples=600, n_features=20, noise=5.0, random_state=0)
    X, y = X.astype(dtype), (y / y.std()).astype(dtype)
    est = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=20,
                       random_state=0)
    cv = KFold(5, shuffle=True, random_state=0)

    def scores():
        return _quiet(lambda: cross_val_score(est, X, y, cv=cv))

    local = scores()
    dist, tasks = _on_cluster(client, scores)
    assert _joblib_calls_on_workers(tasks, client) == 5
    np.testing.assert_array_equal(local, dist)
    assert np.all(local > 0.5), local  # the folds learned something


# ---------------------------------------------------------------------------
# Out-of-core training: dask-ml's Incremental drives partial_fit block by block
# ---------------------------------------------------------------------------

_CHUNK = 60  # digits' 1797 rows -> 30 blocks


def _manual_passes(est, X, y, passes, **fit_kwargs):
    for _ in range(passes):
        for start in range(0, X.shape[0], _CHUNK):
            est.partial_fit(X[start:start + _CHUNK], y[start:start + _CHUNK],
                            **fit_kwargs)
    return est


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_incremental_equals_partial_fit_over_the_same_chunks(client, dtype):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(dtype)
    classes = np.unique(y)
    Xd = da.from_array(X, chunks=(_CHUNK, X.shape[1]))
    yd = da.from_array(y, chunks=_CHUNK)
    assert Xd.numblocks[0] == 30

    def make():
        return MLPClassifier(hidden_layer_sizes=(32,), solver="adam",
                             learning_rate_init=1e-2, random_state=0)

    inc = dask_ml_wrappers.Incremental(make(), shuffle_blocks=False)
    with distributed.get_task_stream(client) as ts:
        inc.fit(Xd, yd, classes=classes)           # pass 1
        inc.partial_fit(Xd, yd, classes=classes)   # pass 2 continues from pass 1
    assert _partial_fits_on_workers(ts.data, client) == 2 * 30

    ref = _manual_passes(make(), X, y, passes=2, classes=classes)
    got = inc.estimator_
    assert got._theta.dtype == dtype
    np.testing.assert_array_equal(got._theta, ref._theta)
    for a, b in zip(got.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)
    assert got.loss_curve_ == ref.loss_curve_ and got.t_ == ref.t_
    np.testing.assert_array_equal(inc.predict(Xd).compute(), ref.predict(X))
    np.testing.assert_array_equal(inc.predict_proba(Xd).compute(), ref.predict_proba(X))
    assert ref.score(X, y) > 0.8  # two passes learn the digits


def test_incremental_regressor_equals_partial_fit(client):
    X, y = make_regression(n_samples=1500, n_features=10, noise=1.0, random_state=0)
    y = y / y.std()
    Xd = da.from_array(X, chunks=(_CHUNK, 10))
    yd = da.from_array(y, chunks=_CHUNK)

    def make():
        return MLPRegressor(hidden_layer_sizes=(16,), solver="sgd",
                            learning_rate_init=1e-2, random_state=0)

    inc = dask_ml_wrappers.Incremental(make(), shuffle_blocks=False)
    with distributed.get_task_stream(client) as ts:
        inc.fit(Xd, yd)
    assert _partial_fits_on_workers(ts.data, client) == 25
    ref = _manual_passes(make(), X, y, passes=1)
    np.testing.assert_array_equal(inc.estimator_._theta, ref._theta)
    np.testing.assert_array_equal(inc.predict(Xd).compute(), ref.predict(X))
