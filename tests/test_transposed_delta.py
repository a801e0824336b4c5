"""The output delta stored transposed, for OpenBLAS's small-matrix kernels.

A hidden layer's delta comes from the layer above, D_h = D @ W.T. With D and W
row-major, BLAS sees that product as op(A) = A^T, op(B) = B ("TN"), a form
OpenBLAS's small-matrix kernels take only for tiny outputs. Where the network's
spec says BLAS has those kernels and runs one thread (``small_kernels``), a
batch's output delta is stored transposed when ``_output_delta_transposed``
says so, and the hidden delta and the output layer's gradient are computed
from D.T. These tests check the rule, and that fits which take this path equal
fits which do not (forced with ``_threads._small_matrix_blas``), for every
loss, with and without sample weights, for the fused SGD step, the other
optimizers, ``partial_fit`` and L-BFGS (whose gradient adds up blocks of rows);
the path is forced on and off so that they test it on any machine.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skmlp import MLPClassifier, MLPRegressor, _mlp_fast

from _helpers import off_and_on_small_kernels


def _spec(units, small_kernels=True):
    units = np.asarray(units, dtype=np.intp)
    zeros = np.zeros(len(units), dtype=np.intp)
    spec = _mlp_fast.NetSpec(units, zeros, zeros, zeros,
                             np.zeros(len(units), dtype=np.float64),
                             3, 4, 2, 0.01, 1.0)
    spec.small_kernels = small_kernels
    return spec


@pytest.mark.parametrize(
    "units, rows, float64, float32",
    [
        ([64, 100, 10], 32, True, True),       # the benchmark's case 2
        ([64, 100, 10], 200, True, False),     # case 6: 20,000 outputs
        ([64] * 7 + [10], 64, True, True),     # case 3's last layers
        ([784, 256, 10], 256, False, False),   # case 1: 65,536 outputs
        ([100, 1000, 1000], 1, True, True),    # 1e6 multiply-adds: small kernels
        ([100, 1000, 1000], 2, False, False),  # past them
        ([64, 10], 32, False, False),          # no hidden layer: no D @ W.T
    ],
)
def test_rule(units, rows, float64, float32):
    spec = _spec(units)
    assert spec.output_delta_transposed(rows, False) is float64
    assert spec.output_delta_transposed(rows, True) is float32
    # never without the small kernels (another BLAS, or several threads)
    spec.small_kernels = False
    assert not spec.output_delta_transposed(rows, False)
    assert not spec.output_delta_transposed(rows, True)


def _fit_both(make, X, y, sample_weight=None):
    def run():
        est = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_weight=sample_weight)
        return est

    return off_and_on_small_kernels(run)


def _assert_same_fit(a, b, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(b._theta, a._theta, rtol=tol, atol=tol)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=tol)
    if hasattr(a._optimizer, "state_1"):
        np.testing.assert_allclose(b._optimizer.state_1, a._optimizer.state_1,
                                   rtol=tol, atol=tol)


SOLVERS = {
    "sgd-fused": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, learning_rate_init=0.05),
    "adam": dict(solver="adam"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("hidden", [(32,), (32, 16)])
def test_classifier_fits_agree(dtype, solver, weighted, hidden):
    X, y = load_digits(return_X_y=True)
    X = (X[:700] / 16).astype(dtype)
    y = y[:700]
    sw = np.random.RandomState(1).uniform(0.2, 2.0, len(y)) if weighted else None
    # batches of 32 rows (and a last one of 28): the output delta of each is
    # stored transposed where the small kernels are on
    assert _spec([64, *hidden, 10]).output_delta_transposed(32, dtype == np.float32)
    assert _spec([64, *hidden, 10]).output_delta_transposed(28, dtype == np.float32)
    off, on = _fit_both(
        lambda: MLPClassifier(hidden_layer_sizes=hidden, batch_size=32, max_iter=4,
                              alpha=1e-3, random_state=0, **SOLVERS[solver]),
        X, y, sw)
    _assert_same_fit(off, on, dtype)
    np.testing.assert_allclose(on.predict_proba(X), off.predict_proba(X),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation",
                         ["identity", "logistic", "tanh", "leaky_relu", "prelu"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_hidden_activations_and_dropout_agree(dtype, activation, dropout):
    """The hidden layer's error computed from the transposed output error then
    goes through every activation's derivative, PReLU's slope gradient and
    the dropout mask as before."""
    X, y = load_digits(return_X_y=True)
    X = (X[:500] / 16).astype(dtype)
    off, on = _fit_both(
        lambda: MLPClassifier(hidden_layer_sizes=(32, 16), activation=activation,
                              dropout=dropout, batch_size=32, max_iter=3,
                              solver="adam", random_state=0),
        X, y[:500])
    _assert_same_fit(off, on, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "poisson"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_regressor_fits_agree(dtype, loss, weighted):
    """Several outputs, every loss (each writes D its own way)."""
    X, y = load_digits(return_X_y=True)
    X = (X[:500] / 16).astype(dtype)
    Y = np.c_[y[:500] / 9.0, (y[:500] % 3) / 2.0, np.sqrt(y[:500] / 9.0)].astype(dtype)
    sw = np.random.RandomState(2).uniform(0.2, 2.0, len(Y)) if weighted else None
    assert _spec([64, 24, 3]).output_delta_transposed(25, dtype == np.float32)
    off, on = _fit_both(
        lambda: MLPRegressor(hidden_layer_sizes=(24,), loss=loss, batch_size=25,
                             max_iter=4, learning_rate_init=1e-2, random_state=0),
        X, Y, sw)
    _assert_same_fit(off, on, dtype)


def test_partial_fit_agrees():
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16

    def run():
        est = MLPClassifier(hidden_layer_sizes=(20,), batch_size=40, random_state=0,
                            solver="sgd", momentum=0.9)
        for _ in range(3):
            est.partial_fit(X, y[:400], classes=np.arange(10))
        return est

    off, on = off_and_on_small_kernels(run)
    _assert_same_fit(off, on, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_lbfgs_fits_agree(dtype, estimator):
    """L-BFGS sums each gradient over blocks of 1,024 rows: in float64 the
    output error of every block is stored transposed (a last hidden layer of
    20 units), and the second block's bias sums add to the first's; float32
    keeps the row-major form at these sizes."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(dtype)          # 1,797 rows: blocks of 1,024 and 773
    if estimator == "regressor":
        cls, y = MLPRegressor, (y / 9.0).astype(dtype)
    else:
        cls = MLPClassifier
    n_out = 10 if estimator == "classifier" else 1
    for rows in (1024, 773):
        assert _spec([64, 20, n_out]).output_delta_transposed(rows, dtype == np.float32) \
            is (dtype == np.float64 or rows * 20 <= 8192)
    off, on = _fit_both(
        lambda: cls(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=15,
                    alpha=1e-3, random_state=0), X, y)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(on._theta, off._theta, rtol=tol, atol=tol)
    assert on.n_iter_ == off.n_iter_
    np.testing.assert_allclose(on.loss_, off.loss_, rtol=tol)
