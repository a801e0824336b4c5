"""The training kernels flush subnormal numbers to zero, and only they do.

Subnormal arithmetic is microcoded on x86 (about 100x slower); float32
training meets it constantly (confident softmax outputs give output errors
around 1e-40 that the backward pass multiplies through every layer), which made
the deep-narrow Adam benchmark 2.4x slower in float32 than with flushing. So
``_train_epoch`` and the gradient evaluations of ``_loss_grad`` switch the
calling thread to flush-to-zero / denormals-are-zero and restore its previous
mode on return. These tests pin the three halves of that contract: training
flushes, prediction does not, and the caller's mode is restored.
"""
import platform

import numpy as np
import pytest

from skmlp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"),
    reason="flush-to-zero is only switched on x86-64 and AArch64",
)

DTYPES = [np.float32, np.float64]
SOLVERS = ["sgd", "adam", "lbfgs"]


def _subnormal(dtype):
    return np.finfo(dtype).smallest_normal / 8


def _subnormals_survive(dtype):
    """Does NumPy arithmetic in this thread keep subnormal numbers?"""
    tiny = _subnormal(dtype)
    x = np.array([tiny, tiny], dtype=dtype)
    return bool((x * dtype(1))[0] == tiny and (x + x)[1] == 2 * tiny)


def _one_unit_model(dtype, learning_rate_init=0.001):
    """1-1-1 identity regressor with W0 = W1 = 1 and zero biases."""
    X = np.array([[0.5], [1.0]], dtype=dtype)
    est = MLPRegressor(hidden_layer_sizes=(1,), activation="identity",
                       solver="sgd", alpha=0.0, max_iter=1, random_state=0,
                       learning_rate_init=learning_rate_init)
    with pytest.warns(Warning):
        est.fit(X, X.ravel())
    est.coefs_[0][:] = 1
    est.coefs_[1][:] = 1
    est.intercepts_[0][:] = 0
    est.intercepts_[1][:] = 0
    return est


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_restores_the_callers_floating_point_mode(dtype, solver):
    assert _subnormals_survive(dtype)
    X = np.random.RandomState(0).rand(40, 3).astype(dtype)
    y = (X[:, 0] > 0.5).astype(int)
    MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=3,
                  random_state=0).fit(X, y)
    assert _subnormals_survive(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_evaluation_flushes_subnormal_products(dtype):
    est = _one_unit_model(dtype)
    tiny = _subnormal(dtype)
    X = np.array([[tiny]], dtype=dtype)
    Y = np.array([[1.0]], dtype=dtype)
    # dL/dW0 = x * (pred - y) * W1 = tiny * (-1): subnormal, so flushed to 0,
    # while dL/db0 = (pred - y) * W1 = -1 is unaffected.
    _, grad = est._loss_grad_function(X, Y, None)(est._theta)
    assert grad[0] == 0
    assert grad[1] == pytest.approx(-1)
    assert _subnormals_survive(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_epoch_flushes_subnormal_products(dtype):
    tiny = _subnormal(dtype)
    # The optimizer (created by the first fit) steps with lr = tiny, so the
    # step lr * g of the bias, whose gradient is pred - y = -1, is subnormal.
    est = _one_unit_model(dtype, learning_rate_init=float(tiny))
    X = np.array([[tiny]], dtype=dtype)
    w0 = est.coefs_[0][0, 0]
    est.partial_fit(X, np.array([1.0], dtype=dtype))
    # Without flushing, W0 would move by lr * tiny (0 in any case) and b0 by
    # lr * 1 = tiny; with flushing the subnormal step lr * g is 0.
    assert est.coefs_[0][0, 0] == w0
    assert est.intercepts_[0][0] == 0
    assert _subnormals_survive(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prediction_keeps_subnormal_values(dtype):
    est = _one_unit_model(dtype)
    tiny = _subnormal(dtype)
    out = est.predict(np.array([[tiny], [-tiny]], dtype=dtype))
    assert out[0] == tiny and out[1] == -tiny
