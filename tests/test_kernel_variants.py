"""The builds of the kernels behind ``skmlp._mlp_fast``.

``_mlp_fast_generic`` runs on any CPU; ``_mlp_fast_avx2`` and
``_mlp_fast_avx512`` are the same source compiled for x86-64-v3 (AVX2) and
x86-64-v4 (AVX-512), and the newest one the CPU runs loads by default. All round
every operation alike, so they must train bitwise the same models: the fits
below (every solver and optimizer, every hidden activation, the losses, float32
and float64, sample weights, dropout, sparse input, partial_fit, prediction)
run on the generic build and on each of the others, and compare parameters,
optimizer state, loss curves and outputs bit for bit. A build that vectorised a
loop into a different rounding (say, a contracted multiply-add or a
reassociated sum) fails them.

CI runs the whole suite on the default build (AVX-512 on its machines) and the
debug build's run on the generic one (``SKMLP_KERNELS=generic``).
"""

import importlib
import os
import platform
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

import skmlp._multilayer_perceptron as mlp_module
from skmlp import MLPClassifier, MLPRegressor, _cpu, _mlp_fast

from _helpers import (AVX2_RUNS, AVX512_RUNS, DEFAULT_BUILD, WIDE_BUILDS,
                      assert_same_optimizer_state, child_env)

RUNS = {"generic": True, "avx2": AVX2_RUNS, "avx512": AVX512_RUNS}


def test_the_default_is_the_widest_build_this_cpu_runs():
    requested = os.environ.get("SKMLP_KERNELS", "auto").strip().lower()
    expected = requested if requested not in ("", "auto") else DEFAULT_BUILD
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


@pytest.mark.parametrize("value",
                         [None, "auto", " AUTO ", "generic", "avx2", "AVX512"])
def test_environment_variable_picks_the_build(value):
    proc = _variant_in_child(value)
    wanted = (value or "auto").strip().lower()
    if wanted == "auto":
        wanted = DEFAULT_BUILD
    if not RUNS[wanted]:
        assert proc.returncode != 0
        assert f"SKMLP_KERNELS={wanted!r} cannot be loaded" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == wanted


@pytest.mark.parametrize("value", ["sse", "avx10", "avx-512", "1"])
def test_unknown_build_is_a_clear_error(value):
    proc = _variant_in_child(value)
    assert proc.returncode != 0
    assert f"SKMLP_KERNELS={value!r} is not a build of skmlp's kernels" in proc.stderr
    assert "generic, avx2, avx512 or auto" in proc.stderr


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


def _assert_both_builds_agree(monkeypatch, run, build):
    """run() -> (fitted estimators, their outputs), once on the generic build
    and once on ``build``: the estimators' state and the outputs must be
    bitwise the same."""
    models_a, outputs_a = _on_build(monkeypatch, "generic", run)
    models_b, outputs_b = _on_build(monkeypatch, build, run)
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


@pytest.mark.parametrize("build", WIDE_BUILDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", CLASSIFIER_CASES, ids=_case_id)
def test_builds_train_the_same_classifier(monkeypatch, digits, params, dtype,
                                          build):
    X, y = digits
    X = X.astype(dtype)
    kw = dict(hidden_layer_sizes=(20, 15), batch_size=32, max_iter=6,
              random_state=0)
    kw.update(params)

    def run():
        est = MLPClassifier(**kw).fit(X, y)
        return [est], [est.predict_proba(X)]

    _assert_both_builds_agree(monkeypatch, run, build)


REGRESSOR_CASES = [
    dict(loss="squared_error", solver="adam"),
    dict(loss="absolute_error", solver="sgd", momentum=0.9),
    dict(loss="huber", solver="rmsprop"),
    dict(loss="poisson", solver="adam", activation="tanh"),
    dict(loss="squared_error", solver="lbfgs", max_iter=15),
]


@pytest.mark.parametrize("build", WIDE_BUILDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", REGRESSOR_CASES, ids=_case_id)
def test_builds_train_the_same_regressor(monkeypatch, digits, params, dtype,
                                         build):
    X, _ = digits
    X = X.astype(dtype)
    Y = X[:, 20:23] + 0.1  # positive targets (Poisson)
    kw = dict(hidden_layer_sizes=(16,), batch_size=25, max_iter=6, random_state=0)
    kw.update(params)

    def run():
        est = MLPRegressor(**kw).fit(X, Y)
        return [est], [est.predict(X)]

    _assert_both_builds_agree(monkeypatch, run, build)


@pytest.mark.parametrize("build", WIDE_BUILDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_builds_agree_on_weights_sparse_input_and_partial_fit(monkeypatch, digits,
                                                               dtype, build):
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

    _assert_both_builds_agree(monkeypatch, run, build)


# A child that hides some builds (as on a machine where setup.py did not build
# them: not x86-64, or an older compiler), or tells skmlp._mlp_fast that the CPU
# does not run x86-64-v4 code, then imports it.
_HIDDEN = """
import importlib.machinery, importlib.util, os, sys
hidden = {hidden!r}
real = importlib.util.find_spec
if {no_v4!r}:
    # load skmlp._cpu on its own (importing skmlp would load the kernels) and
    # make its x86-64-v4 test say no
    folder = real("skmlp").submodule_search_locations[0]
    path = next(p for p in (os.path.join(folder, "_cpu" + suffix) for suffix
                            in importlib.machinery.EXTENSION_SUFFIXES)
                if os.path.exists(p))
    spec = importlib.util.spec_from_file_location("skmlp._cpu", path)
    cpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu)
    cpu.runs_x86_64_v4 = lambda: False
    sys.modules["skmlp._cpu"] = cpu
def find_spec(name, *args, **kwargs):
    return None if name in hidden else real(name, *args, **kwargs)
importlib.util.find_spec = find_spec
try:
    import skmlp._mlp_fast as m
except ImportError as exc:
    print("ImportError:", exc)
else:
    print(m.variant)
"""


def _in_child_without(kernels, hidden=(), no_v4=False):
    code = _HIDDEN.format(hidden={f"skmlp._mlp_fast_{h}" for h in hidden},
                          no_v4=no_v4)
    proc = _in_child(code, kernels)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _same_bits(x, y):
    """Bit for bit, except which NaN (its sign or payload may follow operand order)."""
    nan = np.isnan(x)
    return np.array_equal(nan, np.isnan(y)) and x[~nan].tobytes() == y[~nan].tobytes()


@pytest.mark.parametrize("build", WIDE_BUILDS)
@pytest.mark.parametrize("solver", ["adam", "adagrad", "rmsprop", "adamw"])
@pytest.mark.parametrize("penalised, sw_sum", [(True, 64.0), (True, 37.0), (False, 3.0)])
@pytest.mark.parametrize("epsilon", [1e-8, 1e-300, 1e60])
def test_builds_take_the_same_steps_at_the_edges(build, solver, penalised, sw_sum,
                                                 epsilon):
    """The float64 loops of Adam, AdaGrad, RMSProp and AdamW (which the
    AVX-512 build runs without the divider, in vectors of 8, sending any
    vector out of that path's range to the division) step by step against
    the generic build's: lengths with and without a tail; gradients with
    zeros, NaN, infinities, huge and tiny values; an ordinary, a tiny and a
    huge epsilon; then thousands of steps of zero gradient, through which
    the moments decay to subnormal and are flushed; batch weights that are a
    power of two or not, with and without the L2 term."""
    from skmlp._multilayer_perceptron import _SOLVER_CODES
    wide = importlib.import_module(f"skmlp._mlp_fast_{build}")
    generic = importlib.import_module("skmlp._mlp_fast_generic")
    adam = (_SOLVER_CODES[solver], 1e-3, 0.9, False, 0.9, 0.999, epsilon, 0.9,
            0.01 if solver == "adamw" else 0.0)
    two = solver in ("adam", "adamw")
    alpha = 1e-4 if penalised else 0.0
    rs = np.random.RandomState(3)
    odd = [np.nan, np.inf, -np.inf, 1e200, 1e-200, 1e-300, 1e150, 0.0, 0.0]
    for n in (5, 8, 61, 64, 200):
        theta = rs.uniform(-1, 1, n)
        grad = rs.standard_normal(n)
        grad[rs.rand(n) < 0.1] = 0.0
        # one odd value in about a third of the vectors of 8, the others ordinary
        for start in range(0, n, 8):
            if rs.rand() < 0.35:
                grad[start + rs.randint(min(8, n - start))] = odd[rs.randint(len(odd))]
        state = [[theta.copy(), np.zeros(n), np.zeros(n if two else 0)]
                 for _ in range(2)]
        t = 0
        # (with the L2 term the zero-gradient phase is short: over thousands
        # of steps RMSProp drives parameters below 2^-960, where the division
        # by a batch weight that is not a power of two may differ in the last
        # bit between builds, as _vmath.h's skmlp_div says)
        quiet = 300 if penalised else 7000
        for g, steps in ((grad, 5), (rs.standard_normal(n), 20), (np.zeros(n), quiet)):
            for module, (th, m, v) in zip((generic, wide), state):
                module._py_update_steps(adam, th, g, m, v, alpha, sw_sum, t, steps)
            t += steps
            for a, b in zip(*state):
                assert _same_bits(a, b), (n, t)
    # without the L2 term (which keeps the gradient from zero), most first
    # moments of Adam and AdamW did pass through the subnormal range to zero
    # (not those of the huge, infinite and NaN gradients)
    assert penalised or not two or np.mean(state[0][1] == 0) > 0.5


@pytest.mark.parametrize("value", ["auto", "generic", "avx2", "avx512"])
def test_without_the_wide_builds_the_generic_one_loads(value):
    out = _in_child_without(value, hidden=("avx2", "avx512"))
    if value in ("avx2", "avx512"):
        level = "x86-64-v3" if value == "avx2" else "x86-64-v4"
        assert out == (
            f"ImportError: SKMLP_KERNELS={value!r} cannot be loaded: skmlp was "
            f"built without it (it is built on x86-64, by a compiler that knows "
            f"-march={level})."), out
    else:
        assert out == "generic"


def test_without_the_generic_build_the_error_says_so():
    out = _in_child_without("generic", hidden=("generic",))
    assert out == ("ImportError: SKMLP_KERNELS='generic' cannot be loaded: it is "
                   "missing from this installation of skmlp (reinstall it)."), out
    # and with no build at all
    out = _in_child_without("auto", hidden=("generic", "avx2", "avx512"))
    assert out == ("ImportError: No build of skmlp's kernels can be loaded here "
                   "(the generic one: it is missing from this installation of "
                   "skmlp (reinstall it))."), out


# The CPU tests themselves, against what Linux reports of the CPU: a test that
# said no on a CPU that has the instructions would leave the wide builds unused
# (and their comparisons above skipped) without any other test failing.
# (x86-64-v2: cx16 lahf_lm popcnt pni=SSE3 sse4_1 sse4_2 ssse3; v3 adds these
# with abm = LZCNT; Linux's names)
_V3_FLAGS = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3",
             "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4_FLAGS = _V3_FLAGS | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def _cpuinfo_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


@pytest.mark.skipif(not (sys.platform.startswith("linux")
                         and platform.machine() in ("x86_64", "AMD64")
                         and _cpuinfo_flags() is not None),
                    reason="needs Linux on x86-64 (/proc/cpuinfo)")
def test_cpu_tests_agree_with_the_cpu_flags_linux_reports():
    # (Linux lists a flag only where the OS also saves the registers it needs)
    flags = _cpuinfo_flags()
    assert _cpu.runs_x86_64_v3() == _V3_FLAGS.issubset(flags)
    assert _cpu.runs_x86_64_v4() == _V4_FLAGS.issubset(flags)


@pytest.mark.parametrize("value", ["auto", "avx512"])
def test_without_the_avx512_build_the_avx2_one_loads(value):
    out = _in_child_without(value, hidden=("avx512",))
    if value == "avx512":
        assert out.startswith("ImportError: SKMLP_KERNELS='avx512' cannot be "
                              "loaded: skmlp was built without it"), out
    else:
        assert out == ("avx2" if AVX2_RUNS else "generic")


@pytest.mark.parametrize("value", ["auto", "avx512"])
def test_a_cpu_without_avx512_does_not_load_that_build(value):
    out = _in_child_without(value, no_v4=True)
    if value == "avx512":
        assert out == ("ImportError: SKMLP_KERNELS='avx512' cannot be loaded: this "
                       "CPU does not run x86-64-v4 (AVX-512) code."), out
    else:
        assert out == ("avx2" if AVX2_RUNS else "generic")
