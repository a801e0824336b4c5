"""The kernels release the GIL.

Each test calls one compiled entry point in thread A while thread B waits for
the GIL, with the interpreter's switch interval set far beyond the call's
length. Python then never takes the GIL from A by itself: B can run before A's
call returns only if the kernel released the GIL. B records whether A's call
was still running when B got to run. No timing is measured or asserted; the
call only has to last longer than a thread wake-up (it lasts tens of ms).
"""

import sys
import threading
import time

import numpy as np
import pytest

from skmlp import MLPClassifier
from skmlp import _mlp_fast
from skmlp._multilayer_perceptron import _kernel_input, _Workspace


def _ran_during(call):
    """Whether another thread got the GIL while ``call()`` ran in this one."""
    state = {"go": False, "running": False, "seen_running": None}
    started = threading.Event()

    def other():
        started.set()
        while not state["go"]:
            time.sleep(0)  # gives the GIL back to thread A until A says go
        # A set "go" just before the call, holding the GIL: we get here while
        # the call runs only if the call released the GIL
        state["seen_running"] = state["running"]

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=other)
        t.start()
        started.wait()
        state["running"] = True
        state["go"] = True
        call()
        state["running"] = False
        t.join()
    finally:
        sys.setswitchinterval(old)
    return state["seen_running"]


def test_probe_sees_a_call_that_holds_the_gil():
    # the probe itself: a pure-Python call keeps the GIL, so it reports False
    assert _ran_during(lambda: sum(range(2_000_000))) is False


@pytest.fixture(scope="module")
def problem():
    rng = np.random.RandomState(0)
    X = rng.rand(20000, 200)
    y = rng.randint(0, 10, X.shape[0])
    est = MLPClassifier(hidden_layer_sizes=(256,), solver="sgd", max_iter=1,
                        random_state=0)
    with pytest.warns(Warning):
        est.fit(X[:500], y[:500])
    Y = est._encode_target(y).astype(np.float64)
    return est, X, Y


def test_loss_grad_releases_gil(problem):
    est, X, Y = problem
    f = est._loss_grad_function(X, Y, None)
    theta = est._theta.copy()
    assert _ran_during(lambda: f(theta))


def test_predict_releases_gil(problem):
    est, X, _ = problem
    assert _ran_during(lambda: est._forward_pass_fast(X, check_input=False))


def test_train_epoch_releases_gil(problem):
    est, X, Y = problem
    n = X.shape[0]
    batch = 200
    ws = _Workspace(est._layer_units, batch, np.float64)
    theta = est._theta.copy()
    grad = np.empty_like(theta)
    state = np.zeros_like(theta)
    order = np.arange(n, dtype=np.intp)
    args = (
        est._make_spec(), 1e-4, (0, 0.01, 0.9, True, 0.9, 0.999, 1e-8, 0.99, 0.0), 0,
        *_kernel_input(X, np.float64), np.ascontiguousarray(Y),
        np.empty(0, dtype=np.intp), np.empty(0), order, False, batch, theta, grad, state, np.empty(0),
        np.empty(0, dtype=np.uint64), ws.act_off, ws.act, ws.delta, ws.aux, ws.mask,
        np.empty((0, 0)), np.empty((0, Y.shape[1])), np.empty(0),
    )
    assert _ran_during(lambda: _mlp_fast._train_epoch(*args))
