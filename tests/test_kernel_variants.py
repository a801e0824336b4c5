"""The two builds of the kernels behind ``skmlp._mlp_fast``.

``_mlp_fast_generic`` runs on any CPU; ``_mlp_fast_avx2`` is the same source
compiled for x86-64-v3 (AVX2), loaded where the CPU runs it. Both round every
operation alike, so they must train bitwise the same models: the fits below
(every solver and optimizer, every hidden activation, the losses, float32 and
float64, sample weights, dropout, sparse input, partial_fit, prediction) run
once on each build and compare parameters, optimizer state, loss curves and
outputs bit for bit. A build that vectorised a loop into a different rounding
(say, a contracted multiply-add or a reassociated sum) fails them.

CI runs the whole suite on the default build (AVX2 on its machines) and the
debug build's run on the generic one (``SKMLP_KERNELS=generic``).
"""

import importlib
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

import skmlp._multilayer_perceptron as mlp_module
from skmlp import MLPClassifier, MLPRegressor, _mlp_fast

from _helpers import AVX2_RUNS, assert_same_optimizer_state, child_env, needs_avx2


def test_the_default_is_the_widest_build_this_cpu_runs():
    requested = os.environ.get("SKMLP_KERNELS", "auto").strip().lower()
    expected = (requested if requested not in ("", "auto")
                else "avx2" if AVX2_RUNS else "generic")
    assert _mlp_fast.variant == expected
    build = importlib.import_module(f"skmlp._mlp_fast_{expected}")
    # the estimators call the loaded build's functions and types
    for name in ("_train_epoch", "_loss_grad", "_predict", "NetSpec"):
        assert getattr(_mlp_fast, name) is getattr(build, name)
    assert mlp_module._mlp_fast is _mlp_fast


def _in_child(code, kernels):
    """Run code in a fresh interpreter with SKMLP_KERNELS=kernels (None: unset),
    from an empty folder (so that it imports the skmlp under test, not a source
    tree in the working directory); the CompletedProcess."""
    env = child_env()
    if kernels is None:
        env.pop("SKMLP_KERNELS", None)
    else:
        env["SKMLP_KERNELS"] = kernels
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=120)


def _variant_in_child(value):
    return _in_child("import skmlp._mlp_fast as m; print(m.variant)", value)


@pytest.mark.parametrize("value", [None, "auto", " AUTO ", "generic", "avx2"])
def test_environment_variable_picks_the_build(value):
    proc = _variant_in_child(value)
    wanted = (value or "auto").strip().lower()
    if wanted == "auto":
        wanted = "avx2" if AVX2_RUNS else "generic"
    if wanted == "avx2" and not AVX2_RUNS:
        assert proc.returncode != 0
        assert "SKMLP_KERNELS='avx2' cannot be loaded" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == wanted


@pytest.mark.parametrize("value", ["sse", "avx512", "1"])
def test_unknown_build_is_a_clear_error(value):
    proc = _variant_in_child(value)
    assert proc.returncode != 0
    assert f"SKMLP_KERNELS={value!r} is not a build of skmlp's kernels" in proc.stderr
    assert "generic, avx2 or auto" in proc.stderr


# ---------------------------------------------------------------------------
# Bitwise the same models
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def _on_build(monkeypatch, name, func):
    """func() with the estimators calling the given build's kernels."""
    with monkeypatch.context() as m:
        m.setattr(mlp_module, "_mlp_fast",
                  importlib.import_module(f"skmlp._mlp_fast_{name}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return func()


def _assert_both_builds_agree(monkeypatch, run):
    """run() -> (fitted estimators, their outputs), once on each build: the
    estimators' state and the outputs must be bitwise the same."""
    models_a, outputs_a = _on_build(monkeypatch, "generic", run)
    models_b, outputs_b = _on_build(monkeypatch, "avx2", run)
    for a, b in zip(models_a, models_b, strict=True):
        assert a._theta.dtype == b._theta.dtype
        np.testing.assert_array_equal(a._theta, b._theta)
        assert_same_optimizer_state(a, b)
        assert getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None)
        assert a.loss_ == b.loss_
        assert a.n_iter_ == b.n_iter_
    for x, y in zip(outputs_a, outputs_b, strict=True):
        np.testing.assert_array_equal(x, y)


SOLVERS = [
    dict(solver="sgd", momentum=0.0),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=False,
         learning_rate="invscaling"),
    dict(solver="adam"),
    dict(solver="adagrad", learning_rate_init=0.05),
    dict(solver="rmsprop"),
    dict(solver="adamw", weight_decay=0.01),
    dict(solver="lbfgs", max_iter=15),
]


def _case_id(params):
    return "-".join(f"{k}={v}" for k, v in params.items())


CLASSIFIER_CASES = (
    [dict(s, activation="relu") for s in SOLVERS]
    + [dict(solver="adam", activation=a)
       for a in ("tanh", "logistic", "identity", "leaky_relu", "prelu")]
    + [dict(solver="sgd", momentum=0.9, activation="relu", dropout=0.2),
       dict(solver="adam", activation="prelu", dropout=0.1, alpha=0.0),
       dict(solver="adam", activation="relu", batch_size=7),
       dict(solver="sgd", activation="tanh", weight_init="glorot_normal")]
)


@needs_avx2
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", CLASSIFIER_CASES, ids=_case_id)
def test_builds_train_the_same_classifier(monkeypatch, digits, params, dtype):
    X, y = digits
    X = X.astype(dtype)
    kw = dict(hidden_layer_sizes=(20, 15), batch_size=32, max_iter=6,
              random_state=0)
    kw.update(params)

    def run():
        est = MLPClassifier(**kw).fit(X, y)
        return [est], [est.predict_proba(X)]

    _assert_both_builds_agree(monkeypatch, run)


REGRESSOR_CASES = [
    dict(loss="squared_error", solver="adam"),
    dict(loss="absolute_error", solver="sgd", momentum=0.9),
    dict(loss="huber", solver="rmsprop"),
    dict(loss="poisson", solver="adam", activation="tanh"),
    dict(loss="squared_error", solver="lbfgs", max_iter=15),
]


@needs_avx2
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", REGRESSOR_CASES, ids=_case_id)
def test_builds_train_the_same_regressor(monkeypatch, digits, params, dtype):
    X, _ = digits
    X = X.astype(dtype)
    Y = X[:, 20:23] + 0.1  # positive targets (Poisson)
    kw = dict(hidden_layer_sizes=(16,), batch_size=25, max_iter=6, random_state=0)
    kw.update(params)

    def run():
        est = MLPRegressor(**kw).fit(X, Y)
        return [est], [est.predict(X)]

    _assert_both_builds_agree(monkeypatch, run)


@needs_avx2
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_builds_agree_on_weights_sparse_input_and_partial_fit(monkeypatch, digits,
                                                               dtype):
    X, y = digits
    X = X.astype(dtype)
    X_csr = sp.csr_matrix(X)
    sw = np.random.RandomState(0).uniform(0, 2, X.shape[0])
    classes = np.unique(y)

    def run():
        weighted = MLPClassifier(hidden_layer_sizes=(12,), solver="sgd",
                                 momentum=0.0, batch_size=20, max_iter=4,
                                 random_state=0).fit(X, y, sample_weight=sw)
        sparse = MLPClassifier(hidden_layer_sizes=(12,), solver="adam",
                               batch_size=20, max_iter=4,
                               random_state=0).fit(X_csr, y)
        incremental = MLPClassifier(hidden_layer_sizes=(12,), solver="adam",
                                    batch_size=50, random_state=0)
        for start in range(0, X.shape[0], 100):
            incremental.partial_fit(X[start:start + 100], y[start:start + 100],
                                    classes=classes)
        models = [weighted, sparse, incremental]
        return models, [m.predict_proba(X) for m in models]

    _assert_both_builds_agree(monkeypatch, run)


_WITHOUT_AVX2_BUILD = """
import importlib.util, sys
real = importlib.util.find_spec
def find_spec(name, *args, **kwargs):
    # as on a machine where setup.py built no AVX2 kernels (not x86-64, or an
    # older compiler)
    return None if name == "skmlp._mlp_fast_avx2" else real(name, *args, **kwargs)
importlib.util.find_spec = find_spec
try:
    import skmlp._mlp_fast as m
except ImportError as exc:
    print("ImportError:", exc)
else:
    print(m.variant)
"""


@pytest.mark.parametrize("value", ["auto", "generic", "avx2"])
def test_without_the_avx2_build_the_generic_one_loads(value):
    proc = _in_child(_WITHOUT_AVX2_BUILD, value)
    assert proc.returncode == 0, proc.stderr
    if value == "avx2":
        assert proc.stdout.startswith(
            "ImportError: SKMLP_KERNELS='avx2' cannot be loaded: skmlp was built "
            "without it"), proc.stdout
    else:
        assert proc.stdout.strip() == "generic"
