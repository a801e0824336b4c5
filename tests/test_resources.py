"""Resources: memory over many fits, file handles of the loaders, Ctrl-C.

* 500 fit/predict cycles over every solver and the options that allocate
  something of their own (dropout, early stopping, sparse input, float32,
  eval sets, pickling) grow the resident memory by less than 20 MB after a
  warm-up (read from /proc/self/statm).
* No file handle stays open after many loads through skmlp.datasets, the
  failing ones included (truncated and corrupt IDX files, plain and gzip,
  corrupt gzip streams, missing files, a folder in place of a file).
* A KeyboardInterrupt (SIGINT) during a stochastic fit stops training at the
  end of the epoch that was running, with scikit-learn's warning "Training
  interrupted by user."; the model is then exactly the model of an
  uninterrupted fit of as many epochs (bitwise), with n_iter_, t_, the
  optimizer's step count, loss_curve_, validation_scores_ and history_ in
  step and, under early stopping, the best weights restored.
"""

import _thread
import gc
import gzip
import os
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from skmlp import MLPClassifier, MLPRegressor
from skmlp import _multilayer_perceptron as mlp_module
from skmlp.datasets import IDX_FILES, IDXFormatError, load_fashion_mnist, load_idx

from _helpers import idx_bytes, write_payload

linux_only = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"), reason="reads /proc (Linux)"
)


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------


def _rss_bytes():
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _cycle_configs():
    rng = np.random.RandomState(0)
    X = rng.rand(120, 40)
    y_clf = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.5)
    y_reg = X[:, :3].sum(axis=1)
    X32 = X.astype(np.float32)
    Xs = sp.random(120, 40, density=0.2, format="csr", random_state=0)
    common = dict(hidden_layer_sizes=(32,), max_iter=4, random_state=0)
    return [
        (MLPClassifier(solver="sgd", **common), X, y_clf, {}),
        (MLPClassifier(solver="adam", dropout=0.2, **common), X32, y_clf, {}),
        (MLPClassifier(solver="rmsprop", early_stopping=True, **common), X, y_clf, {}),
        (MLPClassifier(solver="lbfgs", activation="prelu", **common), X, y_clf, {}),
        (MLPRegressor(solver="adagrad", **common), Xs, y_reg, {}),
        (MLPRegressor(solver="adamw", track_train_score=True, **common), X32, y_reg,
         dict(eval_set=[(X[:30], y_reg[:30])])),
    ]


def _cycle(configs, i):
    est, X, y, fit_params = configs[i % len(configs)]
    est.fit(X, y, **fit_params)
    est.predict(X)
    if i % 5 == 0:
        pickle.loads(pickle.dumps(est)).predict(X)
    if isinstance(est, MLPClassifier) and est.solver != "lbfgs" and not est.early_stopping:
        est.partial_fit(X, y)


def _rss_growth_mb(warmup, cycles):
    """Resident memory growth (MB) over ``cycles`` fit/predict cycles, after
    ``warmup`` cycles (caches, allocator pools, imports)."""
    configs = _cycle_configs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(warmup):
            _cycle(configs, i)
        gc.collect()
        before = _rss_bytes()
        for i in range(cycles):
            _cycle(configs, i)
        gc.collect()
        after = _rss_bytes()
    return (after - before) / 2**20


@linux_only
def test_many_fit_predict_cycles_do_not_grow_memory():
    growth = _rss_growth_mb(60, 500)
    assert growth < 20, f"resident memory grew by {growth:.1f} MB over 500 cycles"


# ---------------------------------------------------------------------------
# File handles
# ---------------------------------------------------------------------------


def _open_fds():
    return sorted(os.listdir("/proc/self/fd"))


def _write_set(folder, compress):
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.randint(0, 256, (6, 28, 28)).astype(np.uint8),
        "train_labels": rng.randint(0, 10, 6).astype(np.uint8),
        "test_images": rng.randint(0, 256, (3, 28, 28)).astype(np.uint8),
        "test_labels": rng.randint(0, 10, 3).astype(np.uint8),
    }
    for key, array in arrays.items():
        name = IDX_FILES[key] + (".gz" if compress else "")
        write_payload(folder / name, idx_bytes(array), compress=compress)
    return arrays


def _broken_inputs(tmp_path):
    """[(path or folder, how it is loaded)] that all fail."""
    good = idx_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10))
    gz = gzip.compress(good)
    files = {
        "truncated.idx": good[:-7],
        "header_only.idx": good[:6],
        "bad_magic.idx": b"\x01\x02\x03\x04" + good[4:],
        "trailing.idx": good + b"\0\0",
        "truncated.idx.gz": gz[: len(gz) // 2],
        "corrupt_crc.idx.gz": gz[:-8] + bytes(8),
        "garbage.gz": b"\x1f\x8b" + os.urandom(64),
        "empty.idx": b"",
    }
    cases = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        path = tmp_path / name
        path.write_bytes(payload)
        cases.append((path, "idx"))
    cases.append((tmp_path / "missing.idx", "idx"))
    (tmp_path / "a_folder.idx").mkdir()
    cases.append((tmp_path / "a_folder.idx", "idx"))
    # whole data sets with one broken member
    for i, key in enumerate(IDX_FILES):
        folder = tmp_path / f"set_{key}"
        _write_set(folder, compress=bool(i % 2))
        target = folder / (IDX_FILES[key] + (".gz" if i % 2 else ""))
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        cases.append((folder, "set"))
    return cases


@linux_only
def test_loaders_leak_no_file_handles(tmp_path):
    _write_set(tmp_path / "plain", compress=False)
    _write_set(tmp_path / "gz", compress=True)
    broken = _broken_inputs(tmp_path / "broken")
    # load once so that lazily opened module-level handles (none expected)
    # are not counted as leaks
    load_fashion_mnist(tmp_path / "plain")
    gc.collect()
    before = _open_fds()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a handle must be closed when the call ends, not by a later GC
    failures = 0
    try:
        for _ in range(40):
            load_fashion_mnist(tmp_path / "plain")
            load_fashion_mnist(tmp_path / "gz", as_frame=True)
            for path, how in broken:
                try:
                    if how == "idx":
                        load_idx(path)
                    else:
                        load_fashion_mnist(path)
                except (IDXFormatError, OSError):
                    failures += 1
                else:
                    raise AssertionError(f"{path} loaded without an error")
    finally:
        if gc_was_enabled:
            gc.enable()
    assert failures == 40 * len(broken)
    assert _open_fds() == before


# ---------------------------------------------------------------------------
# KeyboardInterrupt
# ---------------------------------------------------------------------------


def _interrupt_data():
    rng = np.random.RandomState(0)
    X = rng.rand(400, 20)
    y = (X[:, :5].sum(axis=1) > 2.5).astype(int) + (X[:, 5] > 0.5)
    return X, y


def _params(solver, early_stopping, max_iter):
    return dict(
        solver=solver, hidden_layer_sizes=(32,), batch_size=50, max_iter=max_iter,
        random_state=0, tol=0.0, n_iter_no_change=10**6, learning_rate_init=0.01,
        early_stopping=early_stopping, dropout=0.1,
    )


def _assert_consistent(est, n_samples, batch_size=50):
    k = est.n_iter_
    assert k >= 1
    assert len(est.loss_curve_) == k
    assert est.t_ == k * n_samples
    assert est._optimizer.t == k * -(-n_samples // batch_size)
    assert len(est.history_["epoch"]) == len(est.history_["train_loss"]) == k
    assert est.history_["train_loss"] == est.loss_curve_
    assert np.isfinite(est._theta).all()
    if est.early_stopping:
        assert len(est.validation_scores_) == k
        assert est.best_validation_score_ == max(est.validation_scores_)
        assert_array_equal(est._theta, est._best_theta)


def _assert_equals_uninterrupted(est, X, y, solver, early_stopping):
    """The interrupted model is the model of a fit of n_iter_ epochs."""
    ref = MLPClassifier(**_params(solver, early_stopping, est.n_iter_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
    assert ref.n_iter_ == est.n_iter_
    assert_array_equal(est._theta, ref._theta)
    assert_array_equal(est._optimizer.state_1, ref._optimizer.state_1)
    assert est.loss_curve_ == ref.loss_curve_
    if early_stopping:
        assert est.validation_scores_ == ref.validation_scores_
    assert_array_equal(est.predict_proba(X), ref.predict_proba(X))


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_interrupt_right_after_an_epoch_keeps_that_epoch(solver, early_stopping,
                                                        monkeypatch):
    """The likeliest moment: SIGINT arrives while the compiled epoch runs
    without the GIL, so Python acts on it as soon as the epoch returns. The
    wrapper below makes that happen after epoch 3 every time."""
    X, y = _interrupt_data()
    real = mlp_module._mlp_fast._train_epoch
    calls = []

    def epoch_then_sigint(*args):
        result = real(*args)
        calls.append(1)
        if len(calls) == 3:
            _thread.interrupt_main()  # as if SIGINT came during the epoch
        return result

    monkeypatch.setattr(mlp_module._mlp_fast, "_train_epoch", epoch_then_sigint)
    est = MLPClassifier(**_params(solver, early_stopping, 1000))
    handler = signal.getsignal(signal.SIGINT)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is handler
    assert len(calls) == 3
    assert est.n_iter_ == 3
    _assert_consistent(est, X.shape[0] - (40 if early_stopping else 0))
    monkeypatch.undo()
    _assert_equals_uninterrupted(est, X, y, solver, early_stopping)


def _fit_with_sigint_after(est, X, y, delay):
    """Fit on the main thread while a timer thread sends it a real SIGINT
    ``delay`` seconds after training started; expects sklearn's warning."""
    main_id = threading.main_thread().ident
    started = threading.Event()
    real_fit_stochastic = est._fit_stochastic

    def fit_stochastic(*args):
        started.set()
        return real_fit_stochastic(*args)

    def send():
        started.wait()
        time.sleep(delay)
        signal.pthread_kill(main_id, signal.SIGINT)

    est._fit_stochastic = fit_stochastic
    timer = threading.Thread(target=send)
    timer.start()
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user."):
            est.fit(X, y)
    finally:
        timer.join()
        del est._fit_stochastic


@pytest.mark.parametrize("early_stopping", [False, True])
def test_sigint_from_another_thread_stops_at_an_epoch_end(early_stopping):
    """A real SIGINT, sent to the main thread by a timer while it fits."""
    X, y = _interrupt_data()
    est = MLPClassifier(**_params("adam", early_stopping, 10**6))
    _fit_with_sigint_after(est, X, y, 0.3)
    assert 1 <= est.n_iter_ < 10**6
    _assert_consistent(est, X.shape[0] - (40 if early_stopping else 0))
    assert est.predict(X).shape == y.shape
    _assert_equals_uninterrupted(est, X, y, "adam", early_stopping)


def test_only_a_fit_in_the_main_thread_defers_sigint(monkeypatch):
    """Signals go to the main thread only: a fit in another thread leaves the
    process's SIGINT handler as it is; one in the main thread replaces it while
    it runs (the probe can tell) and puts it back."""
    X, y = _interrupt_data()
    handler = signal.getsignal(signal.SIGINT)
    real = mlp_module._mlp_fast._train_epoch
    seen = []

    def probe(*args):
        seen.append(signal.getsignal(signal.SIGINT))
        return real(*args)

    monkeypatch.setattr(mlp_module._mlp_fast, "_train_epoch", probe)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPClassifier(**_params("sgd", False, 3)).fit(X, y)

    t = threading.Thread(target=fit)
    t.start()
    t.join()
    assert len(seen) == 3 and all(h is handler for h in seen)
    seen.clear()
    fit()
    assert len(seen) == 3 and all(h is not handler for h in seen)
    assert signal.getsignal(signal.SIGINT) is handler


# ---------------------------------------------------------------------------
# Slow versions (deselected by default; `pytest -m slow` runs them)
# ---------------------------------------------------------------------------


@pytest.mark.slow
@linux_only
def test_soak_5000_fit_predict_cycles_do_not_grow_memory():
    growth = _rss_growth_mb(100, 5000)
    assert growth < 20, f"resident memory grew by {growth:.1f} MB over 5000 cycles"


@pytest.mark.slow
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
def test_sigint_at_random_moments(solver, early_stopping):
    """SIGINT at 12 random moments of a fit (in the epoch, in its bookkeeping,
    in the early-stopping scoring): each time a consistent model, equal to an
    uninterrupted fit of as many epochs."""
    X, y = _interrupt_data()
    delays = np.random.RandomState(0).uniform(0.0, 0.25, size=12)
    for delay in delays:
        est = MLPClassifier(**_params(solver, early_stopping, 10**6))
        _fit_with_sigint_after(est, X, y, delay)
        _assert_consistent(est, X.shape[0] - (40 if early_stopping else 0))
        _assert_equals_uninterrupted(est, X, y, solver, early_stopping)
