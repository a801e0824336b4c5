"""Matrix products cut into pieces for OpenBLAS's small-matrix kernels.

``_mlp_fast._product`` computes C = op(A) @ B either with one BLAS call or, when
the network's spec says so (``split_products``), over blocks of C's rows, so
that each call stays within OpenBLAS's small-matrix limit (1e6 multiply-adds).
The spec says so only where BLAS has those kernels and runs one thread
(``_threads.small_kernels_for``). These tests check the rule, the numbers
(against NumPy, and whole against split fits), and the thread condition; the
path is forced on and off (``_threads._small_matrix_blas``) so that they test it
on any machine.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skmlp import MLPClassifier, MLPRegressor, _mlp_fast, _threads

from _helpers import off_and_on_small_kernels

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-13}


@pytest.fixture
def small_matrix_blas(request):
    """Force the detection result; restored afterwards."""
    saved = _threads._small_matrix_blas
    _threads._small_matrix_blas = request.param
    yield request.param
    _threads._small_matrix_blas = saved


def _operands(m, n, k, trans_a, dtype, seed=0):
    rng = np.random.RandomState(seed)
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    return A, B, C


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "A.T"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize(
    "m, n, k, pieces64, pieces32",
    [
        (200, 100, 64, 2, 2),      # the benchmark's digits network, batch 200
        (203, 100, 64, 2, 2),      # rows not divisible: pieces of 102 and 101
        (256, 64, 784, 14, 1),     # float32 gains nothing past 4e6
        (100, 100, 100, 1, 1),     # at the limit: one call
        (50, 100, 64, 1, 1),       # small: one call
        (256, 256, 784, 1, 1),     # pieces would be narrower than 16 rows
        (2000, 100, 100, 1, 1),    # past float64's 16e6
    ],
)
def test_product_pieces_and_numbers(dtype, trans_a, beta, m, n, k, pieces64, pieces32):
    A, B, C = _operands(m, n, k, trans_a, dtype)
    op_a = A.T if trans_a else A
    expected = op_a.astype(np.float64) @ B.astype(np.float64) + beta * C
    scale = np.abs(op_a).astype(np.float64) @ np.abs(B).astype(np.float64) + np.abs(C)
    for split in (False, True):
        out = C.copy()
        calls = _mlp_fast._py_product(split, trans_a, A, B, beta, out)
        want = (pieces32 if dtype == np.float32 else pieces64) if split else 1
        assert calls == want
        err = np.abs(out - expected) / scale
        assert err.max() < RTOL[dtype] * 10, err.max()


def test_product_rejects_mismatched_shapes():
    A, B, C = _operands(4, 3, 2, False, np.float64)
    with pytest.raises(ValueError, match="shapes"):
        _mlp_fast._py_product(True, False, A, B[:1], 0.0, C)


@pytest.mark.parametrize("small_matrix_blas", [True], indirect=True)
def test_split_only_where_blas_runs_one_thread(small_matrix_blas):
    units = [64, 100, 10]
    assert _threads.small_kernels_for(200, units)
    # per-batch work past SINGLE_THREAD_WORK: BLAS keeps its threads, and the
    # (single-threaded) small kernels would lose them
    rows = int(_threads.SINGLE_THREAD_WORK // (64 * 100 + 100 * 10)) + 1
    assert not _threads.small_kernels_for(rows, units)


@pytest.mark.parametrize("small_matrix_blas", [False], indirect=True)
def test_no_split_without_small_matrix_kernels(small_matrix_blas):
    assert not _threads.small_kernels_for(200, [64, 100, 10])


def test_detection_reads_the_loaded_blas():
    """The detection is a bool computed from threadpoolctl's view of BLAS."""
    saved = _threads._small_matrix_blas
    try:
        _threads._small_matrix_blas = None
        found = _threads.small_matrix_blas()
        assert isinstance(found, bool)
        libs = [lib for lib in _threads._get_controller().info()
                if lib.get("user_api") == "blas"]
        if found:
            assert all(str(lib["architecture"]).lower() in _threads._SMALL_MATRIX_CORES
                       for lib in libs)
    finally:
        _threads._small_matrix_blas = saved


def test_version_parsing():
    assert _threads._version("0.3.30") == (0, 3, 30)
    assert _threads._version("0.3.31.188.0") == (0, 3, 31)
    assert _threads._version("0.3.17.dev") == (0, 3, 17)
    assert _threads._version("0") == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_fits_with_split_products_equal_whole_products(dtype, estimator):
    """A fit whose products are cut (batch 200, 64-100-10: 1.28e6 each) equals
    the same fit with whole products to rounding, predictions included."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(dtype)
    if estimator == "regressor":
        cls, y = MLPRegressor, (y / 9.0).astype(dtype)
    else:
        cls = MLPClassifier
    def run():
        est = cls(hidden_layer_sizes=(100,), batch_size=200, max_iter=3,
                  random_state=0, shuffle=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        pred = est.predict_proba(X) if estimator == "classifier" else est.predict(X)
        return est._theta.copy(), np.asarray(est.loss_curve_), pred

    (t0, l0, p0), (t1, l1, p1) = off_and_on_small_kernels(run)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(t1, t0, rtol=tol, atol=tol)
    np.testing.assert_allclose(l1, l0, rtol=tol)
    np.testing.assert_allclose(p1, p0, rtol=tol, atol=tol)
