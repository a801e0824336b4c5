"""Helpers shared by several test modules: ``from _helpers import ...``.

Under pytest's ``--import-mode=importlib`` (set in pyproject.toml) the tests
folder is not on ``sys.path``; tests/conftest.py puts it there, so that this
module imports the same way under ``pytest`` and ``python -m pytest``.

Only what several test modules use in the very same form lives here; helpers
that look alike but differ in substance (tolerances, data, semantics) stay in
their test modules.
"""

import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import skmlp
from skmlp import MLPClassifier
from skmlp._cpu import runs_x86_64_v3, runs_x86_64_v4

# ---------------------------------------------------------------------------
# The builds of the kernels
# ---------------------------------------------------------------------------

# Is the x86-64-v3 (AVX2) build of the kernels installed, and does this CPU
# run it? Tests that compare it with the generic build need both.
AVX2_RUNS = (importlib.util.find_spec("skmlp._mlp_fast_avx2") is not None
             and runs_x86_64_v3())
needs_avx2 = pytest.mark.skipif(
    not AVX2_RUNS, reason="no x86-64-v3 build, or this CPU does not run it")
# The same for the x86-64-v4 (AVX-512) build.
AVX512_RUNS = (importlib.util.find_spec("skmlp._mlp_fast_avx512") is not None
               and runs_x86_64_v4())
needs_avx512 = pytest.mark.skipif(
    not AVX512_RUNS, reason="no x86-64-v4 build, or this CPU does not run it")
# The build skmlp._mlp_fast loads here by default (the newest the CPU runs), and
# the builds besides the generic one, as parameters of tests that compare each
# with it.
DEFAULT_BUILD = "avx512" if AVX512_RUNS else "avx2" if AVX2_RUNS else "generic"
WIDE_BUILDS = [pytest.param("avx2", marks=needs_avx2),
               pytest.param("avx512", marks=needs_avx512)]

# ---------------------------------------------------------------------------
# Fitting and targets
# ---------------------------------------------------------------------------


def off_and_on_small_kernels(run):
    """[run() with OpenBLAS's small-matrix-kernel paths off, run() with them on]:
    skmlp's detection of those kernels (``_threads._small_matrix_blas``) is
    forced each way and restored afterwards, so the paths run on any machine."""
    from skmlp import _threads

    saved = _threads._small_matrix_blas
    results = []
    try:
        for flag in (False, True):
            _threads._small_matrix_blas = flag
            results.append(run())
    finally:
        _threads._small_matrix_blas = saved
    return results


def fit_quietly(est, X, y, **fit_params):
    """``est.fit(X, y, **fit_params)`` with ConvergenceWarning silenced; returns
    what ``fit`` returns (the estimator)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


def encode_targets(est, y):
    """y as the 2-D target matrix the compiled loss-and-gradient takes: the
    classifier's label-binarised classes, the regressor's targets as float64
    columns."""
    if isinstance(est, MLPClassifier):
        return est._label_binarizer.transform(y)
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def read_only(*arrays):
    """Mark arrays shared between tests read-only (so that no estimator writes
    into its input); returns them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


# ---------------------------------------------------------------------------
# Independent NumPy reference of the network (float64)
# ---------------------------------------------------------------------------


def hidden_activation(name, z, slope=None):
    """Hidden activation ``name`` of the pre-activation z; ``slope`` is the
    negative slope of 'leaky_relu' (a scalar) or 'prelu' (one per unit)."""
    if name == "identity":
        return z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name in ("leaky_relu", "prelu"):
        return np.maximum(z, 0.0) + slope * np.minimum(z, 0.0)
    raise ValueError(name)


def hidden_activation_derivative(name, z, slope=None):
    """d hidden_activation(name, z, slope) / dz, elementwise."""
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name in ("leaky_relu", "prelu"):
        return np.where(z > 0, 1.0, slope * np.ones_like(z))
    raise ValueError(name)


def output_activation(name, z):
    """Output activation ``name`` of the output pre-activation z (rows are samples)."""
    if name == "identity":
        return z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def unpack(theta, units, prelu=False):
    """The parameter vector [W_0, b_0, W_1, b_1, ..., a_1, a_2, ...] as float64
    (Ws, bs, slopes): W row-major (fan_in, fan_out), then (PReLU only) one slope
    vector per hidden layer."""
    theta = np.asarray(theta, dtype=np.float64)
    Ws, bs, slopes, pos = [], [], [], 0
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        Ws.append(theta[pos : pos + fan_in * fan_out].reshape(fan_in, fan_out))
        pos += fan_in * fan_out
        bs.append(theta[pos : pos + fan_out])
        pos += fan_out
    if prelu:
        for u in units[1:-1]:
            slopes.append(theta[pos : pos + u])
            pos += u
    assert pos == theta.shape[0]
    return Ws, bs, slopes


def reference_forward(theta, units, X, hidden, out, negative_slope=None, masks=None):
    """Forward pass in float64: (pre-activations Z_1..Z_L, activations A_0..A_L
    (after dropout), weight matrices, PReLU slopes).

    'prelu' takes its slopes from theta, 'leaky_relu' ``negative_slope``;
    ``masks[l]`` (if given and not None) multiplies hidden layer l+1."""
    prelu = hidden == "prelu"
    Ws, bs, slopes = unpack(theta, units, prelu)
    A = [np.asarray(X, dtype=np.float64)]
    Z = []
    n_layers = len(Ws)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = A[-1] @ W + b
        Z.append(z)
        if i == n_layers - 1:
            A.append(output_activation(out, z))
        else:
            slope = slopes[i] if prelu else negative_slope
            a = hidden_activation(hidden, z, slope)
            if masks is not None and masks[i] is not None:
                a = a * masks[i]
            A.append(a)
    return Z, A, Ws, slopes


# ---------------------------------------------------------------------------
# Gradient checks
# ---------------------------------------------------------------------------


def central_differences(f, theta, step):
    """Central differences (f(theta + step e_j)[0] - f(theta - step e_j)[0]) / (2 step)
    of the loss returned by ``f(theta) -> (loss, grad)``, every coordinate, in float64."""
    theta = np.asarray(theta, dtype=np.float64)
    fd = np.empty_like(theta)
    for j in range(theta.shape[0]):
        tp = theta.copy()
        tm = theta.copy()
        tp[j] += step
        tm[j] -= step
        fd[j] = (f(tp)[0] - f(tm)[0]) / (2 * step)
    return fd


def assert_grad_close(grad, expected, rtol, atol_frac, label):
    """|grad - expected| <= rtol * |expected| + atol_frac * max|expected|."""
    grad = np.asarray(grad, dtype=np.float64)
    atol = atol_frac * np.max(np.abs(expected))
    bad = np.abs(grad - expected) > rtol * np.abs(expected) + atol
    if bad.any():
        idx = np.flatnonzero(bad)
        ratio = grad[idx] / np.where(expected[idx] == 0, np.nan, expected[idx])
        raise AssertionError(
            f"{label}: {bad.sum()} of {grad.size} coordinates differ "
            f"(rtol={rtol}, atol={atol:.3g})\n"
            f"index   : {idx[:12]}\n"
            f"kernel  : {grad[idx][:12]}\n"
            f"expected: {expected[idx][:12]}\n"
            f"ratio   : {ratio[:12]}"
        )


# ---------------------------------------------------------------------------
# IDX files (the (Fashion-)MNIST format)
# ---------------------------------------------------------------------------


def idx_bytes(array, type_code=0x08):
    """An IDX file's bytes: magic (type code, ndim), big-endian sizes, then the
    data big-endian in the array's own dtype (uint8 for type code 0x08)."""
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_payload(path, payload, compress=False):
    """Write bytes to ``path`` (a pathlib.Path), gzip-compressed if asked; returns path."""
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


# ---------------------------------------------------------------------------
# Child interpreters (for cases that could crash the process)
# ---------------------------------------------------------------------------

CHILD_PRELUDE = """
import json, sys, warnings
import numpy as np
import scipy.sparse as sp
import sklearn.neural_network as sknn
import skmlp
from sklearn.datasets import make_classification, make_regression
warnings.simplefilter("ignore")

def outcome(func):
    try:
        value = func()
    except Exception as exc:
        return ["error", type(exc).__name__]
    return ["ok", np.asarray(value, dtype=float).tolist()]
"""


def child_env(**extra):
    """The environment for a child process that must import the skmlp under
    test (installed, or the build this session imports), never a source folder
    in its working directory: that package's parent folder first on PYTHONPATH."""
    parent = os.path.dirname(os.path.dirname(os.path.abspath(skmlp.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [parent] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def run_python(code, *args, timeout=300):
    """``python -c code args...`` in a fresh interpreter (``child_env()``, an
    empty temporary working directory); the CompletedProcess, output as text."""
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, env=child_env())


def run_child(body):
    """Run ``CHILD_PRELUDE + body`` in a child interpreter; the JSON its last
    stdout line holds. A crash of the kernels (a segmentation fault) fails the
    calling test (a negative return code) instead of killing the test session."""
    proc = run_python(CHILD_PRELUDE + textwrap.dedent(body), timeout=120)
    assert proc.returncode == 0, (
        f"child interpreter died with return code {proc.returncode} "
        f"(negative: killed by signal {-proc.returncode})\n{proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_same_optimizer_state(a, b):
    """Bitwise equality of two estimators' optimizer state, when they have one."""
    if hasattr(a, "_optimizer"):
        np.testing.assert_array_equal(a._optimizer.state_1, b._optimizer.state_1)
        np.testing.assert_array_equal(a._optimizer.state_2, b._optimizer.state_2)
        assert a._optimizer.t == b._optimizer.t
        assert a._optimizer.learning_rate == b._optimizer.learning_rate
