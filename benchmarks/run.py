#!/usr/bin/env python
"""Side-by-side benchmarks: skmlp against scikit-learn and PyTorch (CPU).

    python benchmarks/run.py [--cases 1,2,...] [--dtypes float32,float64]
                             [--repeats N] [--quick] [--no-torch] [--output DIR]

Every case runs skmlp and ``sklearn.neural_network`` on identical data with the
same architecture, hyper-parameters and ``random_state``, and PyTorch (when
importable) with the same architecture, optimizer, hyper-parameters, initial
weights and mini-batch order. Contenders alternate within a run (A B C A B C
...), each timed ``--repeats`` times. Peak memory is measured separately, one
fresh subprocess per (case, dtype, contender). Results go to
``<output>/latest.json`` (everything raw) and ``<output>/latest.md`` (a table).
benchmarks/README.md says how each number is measured.
"""

import argparse
import contextlib
import datetime
import gc
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
CONTENDERS = ("skmlp", "sklearn", "torch")
WORKER_TAG = "BENCH_MEMORY_RESULT "


# ---------------------------------------------------------------------------
# Which skmlp: the checkout's own in-place build, or the installed package
# ---------------------------------------------------------------------------

def _tree_has_kernels():
    pkg = os.path.join(REPO, "skmlp")
    return all(glob.glob(os.path.join(pkg, f"{m}*.so")) or
               glob.glob(os.path.join(pkg, f"{m}*.pyd"))
               for m in ("_mlp_fast", "_blas"))


def select_skmlp(mode):
    """Put the repository first on sys.path when its skmlp is to be measured.

    'auto': the checkout's skmlp/ if it holds compiled kernels (an in-place
    build, ``python setup.py build_ext --inplace``), otherwise the installed
    package. The choice is exported through PYTHONPATH so that the memory
    subprocesses and loky workers import the same skmlp.
    """
    if mode == "auto":
        mode = "tree" if _tree_has_kernels() else "installed"
    if mode == "tree":
        if not _tree_has_kernels():
            sys.exit(f"--skmlp tree: no compiled kernels in {REPO}/skmlp "
                     "(build in place first: python setup.py build_ext --inplace)")
        sys.path.insert(0, REPO)
        old = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = REPO + (os.pathsep + old if old else "")
    os.environ["SKMLP_BENCH_SOURCE"] = mode
    return mode


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark skmlp against scikit-learn and PyTorch.")
    p.add_argument("--cases", default="1,2,3,4,5,6,7,8,9",
                   help="comma-separated case numbers (default: all, 1-9), or 'scaling': "
                        "only the n_jobs scaling measurement of case 6, written to "
                        "<output>/scaling.json and scaling.md")
    p.add_argument("--dtypes", default="float32,float64",
                   help="comma-separated dtypes (default: float32,float64)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per contender (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke configuration (seconds, not minutes)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory subprocesses")
    p.add_argument("--no-scaling", action="store_true",
                   help="skip the n_jobs scaling rows of case 6")
    p.add_argument("--output", default=os.path.join(HERE, "results"),
                   help="directory for latest.json and latest.md "
                        "(default: benchmarks/results)")
    p.add_argument("--data-dir", default=FASHION_MNIST_DIR,
                   help="folder of the Fashion-MNIST IDX files "
                        f"(default {FASHION_MNIST_DIR})")
    p.add_argument("--threads", type=int, default=None,
                   help="limit the BLAS threads of every contender (default: the "
                        "BLAS's own default)")
    p.add_argument("--torch-threads", default="match",
                   help="torch.set_num_threads: 'match' (default) = per case, the BLAS "
                        "thread count skmlp's kernels run that case with; or a number")
    p.add_argument("--skmlp", choices=("auto", "tree", "installed"), default="auto",
                   help="which skmlp to measure (default auto: this checkout's "
                        "in-place build if present, else the installed one)")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="re-write the markdown (and the target checks) of an existing "
                        "latest.json into --output, without running anything")
    p.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.scaling_only = args.cases.strip() == "scaling"
    if args.scaling_only:
        args.cases = "6"
        if args.no_scaling:
            p.error("--cases scaling and --no-scaling contradict each other")
    try:
        args.case_ids = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    except ValueError:
        p.error(f"--cases: expected numbers like 1,2,5, got {args.cases!r}")
    bad = [c for c in args.case_ids if c not in range(1, 10)]
    if bad or not args.case_ids:
        p.error(f"--cases: cases are 1..9, got {args.cases!r}")
    args.dtype_names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not args.dtype_names or any(d not in ("float32", "float64")
                                   for d in args.dtype_names):
        p.error(f"--dtypes: float32 and/or float64, got {args.dtypes!r}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.torch_threads != "match":
        try:
            args.torch_threads = int(args.torch_threads)
            assert args.torch_threads >= 1
        except (ValueError, AssertionError):
            p.error("--torch-threads: 'match' or a positive number")
    return args


# The environment as this process found it (before torch's import adds KMP_*
# variables); memory subprocesses get this one too.
ENV_AT_START = dict(os.environ)
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS")

ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    select_skmlp(ARGS.skmlp)
elif os.environ.get("SKMLP_BENCH_SELECT"):
    # imported by another harness (perf_profile.py), which chose already
    select_skmlp(os.environ["SKMLP_BENCH_SELECT"])

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg  # noqa: E402  (loads SciPy's BLAS, which skmlp calls)
import scipy.linalg.blas as scipy_blas  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
import threadpoolctl  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import shuffle as sk_shuffle  # noqa: E402

import skmlp  # noqa: E402
from skmlp.datasets import DataNotFoundError, load_fashion_mnist  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)
warnings.filterwarnings("ignore", message=".*[Ss]parse.*(beta|invariant).*")

_torch = None


def get_torch():
    """torch, imported on first use (None when not importable)."""
    global _torch
    if _torch is None:
        try:
            import torch
        except ImportError:
            _torch = False
        else:
            _torch = torch
    return _torch or None


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

_DATA_CACHE = {}


def fashion_mnist(data_dir):
    """(X_train, X_test, y_train, y_test, source): float32 pixels in [0, 1].

    Fashion-MNIST through ``skmlp.datasets.load_fashion_mnist`` (``data_dir``
    first, then its usual places); otherwise random data of the same shape (60000 / 10000 rows
    of 784 uniform pixels) labelled by a random linear teacher, and ``source``
    says so.
    """
    key = ("fashion", data_dir)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    try:
        bunch = load_fashion_mnist(data_dir)
    except DataNotFoundError:
        bunch = None
    if bunch is not None:
        X_tr, X_te = bunch.data, bunch.data_test
        y_tr, y_te = bunch.target, bunch.target_test
        source = f"Fashion-MNIST ({os.path.dirname(bunch.filenames['train_images'])})"
    else:
        rs = np.random.RandomState(0)
        teacher = rs.normal(size=(784, 10)).astype(np.float32)

        def make(n):
            X = rs.uniform(0, 1, size=(n, 784)).astype(np.float32)
            return X, np.argmax(X @ teacher, axis=1).astype(np.int64)
        X_tr, y_tr = make(60000)
        X_te, y_te = make(10000)
        source = (f"RANDOM data of Fashion-MNIST's shape (Fashion-MNIST not found in "
                  f"{data_dir}; labels from a random linear teacher)")
    _DATA_CACHE[key] = (X_tr, X_te, y_tr, y_te, source)
    return _DATA_CACHE[key]


def digits_split():
    """scikit-learn's digits, pixels / 16, stratified 75/25 split (seed 0)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

class Spec:
    """One case at one dtype, with its data prepared (nothing here is timed)."""

    def __init__(self, **kw):
        self.kind = "fit"            # 'fit', 'predict' or 'gridsearch'
        self.task = "classification"
        self.torch = None            # None: not applicable, else 'dense' / 'sparse'
        self.torch_note = ""
        self.notes = []
        self.inner = 1               # calls per timing sample (predict)
        self.X_test = self.y_test = None
        self.__dict__.update(kw)

    @property
    def batch(self):
        b = self.params.get("batch_size", "auto")
        return min(200, self.X.shape[0]) if b == "auto" else min(b, self.X.shape[0])

    @property
    def epochs(self):
        return self.params["max_iter"]


def _stochastic(**kw):
    """Hyper-parameters that make every epoch run (no early stop on the loss)."""
    p = dict(activation="relu", alpha=1e-4, learning_rate="constant", shuffle=True,
             random_state=0, tol=0.0, early_stopping=False)
    p.update(kw)
    p["n_iter_no_change"] = p["max_iter"] + 1
    return p


def build_case(cid, dtype_name, quick, data_dir):
    """The Spec of case ``cid`` at ``dtype_name``, or None when not applicable."""
    dt = np.dtype(dtype_name)
    q = quick
    if cid in (1, 4, 5, 9):
        X_tr, X_te, y_tr, y_te, source = fashion_mnist(data_dir)
    if cid == 1:
        n, n_test = (2000, 500) if q else (60000, 10000)
        return Spec(
            id=1, name="fmnist-sgd", title="Fashion-MNIST 784-256-10, SGD",
            X=X_tr[:n].astype(dt), y=y_tr[:n], X_test=X_te[:n_test].astype(dt),
            y_test=y_te[:n_test], data=source, torch="dense",
            units=[784, 256, 10],
            params=_stochastic(hidden_layer_sizes=(256,), solver="sgd", momentum=0.0,
                               learning_rate_init=0.1, batch_size=256,
                               max_iter=2 if q else 10),
            notes=[f"{n} training rows, {n_test} test rows, all epochs run (tol=0)"])
    if cid == 2:
        X_a, X_b, y_a, y_b = digits_split()
        return Spec(
            id=2, name="digits-momentum", title="digits 64-100-10, SGD momentum 0.9",
            X=X_a.astype(dt), y=y_a, X_test=X_b.astype(dt), y_test=y_b,
            data="sklearn digits (pixels/16), 1347/450 stratified split",
            torch="dense", units=[64, 100, 10],
            params=_stochastic(hidden_layer_sizes=(100,), solver="sgd", momentum=0.9,
                               nesterovs_momentum=True, learning_rate_init=0.01,
                               batch_size=32, max_iter=3 if q else 100),
            notes=["Nesterov momentum (sklearn's default), lr 0.01"])
    if cid == 3:
        n = 800 if q else 4000
        X, y = make_classification(n_samples=n, n_features=64, n_informative=32,
                                   n_redundant=8, n_classes=10, n_clusters_per_class=1,
                                   class_sep=1.5, random_state=0)
        X_a, X_b, y_a, y_b = train_test_split(X, y, test_size=0.25, random_state=0)
        sc = StandardScaler().fit(X_a)
        return Spec(
            id=3, name="deep-narrow-adam", title="deep narrow 64-(64x6)-10, Adam",
            X=sc.transform(X_a).astype(dt), y=y_a, X_test=sc.transform(X_b).astype(dt),
            y_test=y_b, torch="dense", units=[64] + [64] * 6 + [10],
            data=f"synthetic make_classification, {n} rows x 64 features, 10 classes, "
                 "75/25 split, standardised",
            params=_stochastic(hidden_layer_sizes=(64,) * 6, solver="adam",
                               learning_rate_init=1e-3, batch_size=64,
                               max_iter=2 if q else 50))
    if cid == 4:
        n, n_test = (1000, 500) if q else (10000, 10000)
        epochs = 1 if q else 2
        return Spec(
            id=4, name="wide-sgd", title="wide 784-1024-1024-10, SGD",
            X=X_tr[:n].astype(dt), y=y_tr[:n], X_test=X_te[:n_test].astype(dt),
            y_test=y_te[:n_test], data=source, torch="dense",
            units=[784, 1024, 1024, 10],
            params=_stochastic(hidden_layer_sizes=(1024, 1024), solver="sgd",
                               momentum=0.0, learning_rate_init=0.05, batch_size=256,
                               max_iter=epochs),
            notes=[f"first {n} training rows, {epochs} epochs (to keep the run short), "
                   "lr 0.05, momentum 0"])
    if cid == 5:
        n_fit, n_pred = (1000, 1000) if q else (10000, 10000)
        return Spec(
            id=5, name="predict", title="predict_proba 784-256-10, 10,000 rows",
            kind="predict", X=X_tr[:n_fit].astype(dt), y=y_tr[:n_fit],
            X_test=X_te[:n_pred].astype(dt), y_test=y_te[:n_pred], data=source,
            torch="dense", units=[784, 256, 10], inner=1 if q else 5,
            params=_stochastic(hidden_layer_sizes=(256,), solver="sgd", momentum=0.0,
                               learning_rate_init=0.1, batch_size=256, max_iter=2),
            notes=[f"model fitted beforehand (2 epochs on {n_fit} rows; not timed); "
                   f"timed: predict_proba on {n_pred} test rows, "
                   f"{1 if q else 5} calls per sample, time per call"])
    if cid == 6:
        X, y = load_digits(return_X_y=True)
        grid = {"mlp__hidden_layer_sizes": [(50,), (100,)], "mlp__alpha": [1e-4, 1e-2],
                "mlp__learning_rate_init": [1e-3, 1e-2]}
        if q:
            grid = {"mlp__hidden_layer_sizes": [(20,)], "mlp__alpha": [1e-4, 1e-2]}
        return Spec(
            id=6, name="gridsearch", title="GridSearchCV 8 x 5-fold, digits, pipeline",
            kind="gridsearch", X=X.astype(dt), y=y, grid=grid, cv=2 if q else 5,
            data="sklearn digits (1797 x 64), raw pixels into StandardScaler",
            units=[64, 100, 10], torch=None, torch_note="not applicable",
            params=dict(solver="adam", max_iter=3 if q else 30, random_state=0),
            notes=["Pipeline(StandardScaler, MLPClassifier(solver='adam', max_iter="
                   f"{3 if q else 30}, random_state=0)), grid "
                   + ", ".join(f"{k.split('__')[1]}={v}" for k, v in grid.items())
                   + f", cv={2 if q else 5}, n_jobs=1, refit=True"])
    if cid == 7:
        n = 1000 if q else 20000
        X, y = make_regression(n_samples=n + n // 4, n_features=50, n_informative=30,
                               noise=10.0, random_state=0)
        X_a, X_b, y_a, y_b = train_test_split(X, y, test_size=n // 4, random_state=0)
        return Spec(
            id=7, name="lbfgs-regression", title="lbfgs regression 20000 x 50, 50-100-1",
            task="regression", X=X_a.astype(dt), y=y_a.astype(dt),
            X_test=X_b.astype(dt), y_test=y_b.astype(dt), units=[50, 100, 1],
            data=f"make_regression: {n} training + {n // 4} test rows, 50 features, "
                 "noise 10",
            torch=None, torch_note=(
                "skipped: torch.optim.LBFGS (history 100, optional strong-Wolfe "
                "search in torch) is a different algorithm from SciPy's L-BFGS-B "
                "(m=10, Moré-Thuente search) that both sklearn and skmlp use; "
                "iteration counts and costs would not be comparable"),
            params=dict(hidden_layer_sizes=(100,), solver="lbfgs", activation="relu",
                        alpha=1e-4, max_iter=5 if q else 100, tol=0.0, random_state=0),
            notes=["tol=0 so both run max_iter iterations unless L-BFGS-B stops itself"])
    if cid == 8:
        n, n_test, n_feat = (600, 200, 10000) if q else (10000, 2000, 10000)
        rs = np.random.RandomState(0)
        X = sp.random(n + n_test, n_feat, density=0.01, format="csr", random_state=rs,
                      dtype=np.float64, data_rvs=lambda size: rs.uniform(0, 1, size))
        teacher = rs.normal(size=(n_feat, 10))
        y = np.asarray(np.argmax(X @ teacher, axis=1)).ravel()
        X = X.astype(dt)
        return Spec(
            id=8, name="sparse-csr", title="sparse CSR 1 % of 10,000 features, Adam",
            X=X[:n], y=y[:n], X_test=X[n:], y_test=y[n:], torch="sparse",
            units=[n_feat, 100, 10],
            data=f"random CSR {n}+{n_test} rows x {n_feat} features, density 0.01, "
                 "labels from a random linear teacher",
            torch_note="torch.sparse: each shuffled batch gathered with SciPy and "
                       "wrapped as a CSR tensor; first layer torch.addmm(b, X_csr, W.T)",
            params=_stochastic(hidden_layer_sizes=(100,), solver="adam",
                               learning_rate_init=1e-3, batch_size=200,
                               max_iter=1 if q else 5))
    if cid == 9:
        # case 1 with tanh, whose element-wise cost is exp-like (the cases
        # above are all ReLU), and fewer epochs
        spec = build_case(1, dtype_name, quick, data_dir)
        epochs = 1 if q else 3
        spec.id, spec.name = 9, "fmnist-tanh"
        spec.title = "Fashion-MNIST 784-256-10, SGD, tanh"
        spec.params = _stochastic(**dict(spec.params, activation="tanh",
                                         max_iter=epochs))
        spec.notes = [f"{spec.X.shape[0]} training rows, {spec.X_test.shape[0]} test "
                      f"rows, {epochs} epochs (to keep the run short); case 1 with "
                      "activation='tanh' (not in the issue's list: its cases are all "
                      "ReLU)"]
        return spec
    raise ValueError(cid)


# ---------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------

def _estimator_class(contender, task):
    if contender == "skmlp":
        mod = skmlp
    else:
        import sklearn.neural_network as mod
    return mod.MLPClassifier if task == "classification" else mod.MLPRegressor


def sklearn_initial_weights(units, random_state, activation, dtype):
    """scikit-learn's initial (W, b) per layer, drawn in its order from its RNG.

    MLP._init_coef: W ~ U[-r, r] (fan_in, fan_out), then b ~ U[-r, r], with
    r = sqrt(factor / (fan_in + fan_out)), factor 2 for logistic, else 6; drawn
    in float64 and cast. Returns the RandomState positioned where sklearn's is
    after initialisation (the epoch shuffles come next).
    """
    rs = np.random.RandomState(random_state)
    out = []
    factor = 2.0 if activation == "logistic" else 6.0
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype)
        b = rs.uniform(-bound, bound, fan_out).astype(dtype)
        out.append((W, b))
    return out, rs


class TorchModel:
    """A trained torch network and how to run it on numpy / CSR input."""

    def __init__(self, layers, sparse_first, classes, task):
        self.layers, self.sparse_first = layers, sparse_first
        self.classes, self.task = classes, task

    def forward(self, X):
        torch = get_torch()
        if sp.issparse(X):
            x = _torch_csr(X)
            first = self.layers[0]
            h = torch.addmm(first.bias, x, first.weight.t())
            rest = self.layers[1:]
        else:
            h = torch.from_numpy(np.ascontiguousarray(X))
            rest = self.layers
        for layer in rest:
            h = layer(h)
        return h

    def predict_proba(self, X):
        torch = get_torch()
        with torch.inference_mode():
            return torch.softmax(self.forward(X), dim=1).numpy()

    def score(self, X, y):
        torch = get_torch()
        with torch.inference_mode():
            out = self.forward(X).numpy()
        if self.task == "classification":
            return float(np.mean(self.classes[np.argmax(out, axis=1)] == y))
        from sklearn.metrics import r2_score
        return float(r2_score(y, out.ravel()))


def _torch_csr(X):
    torch = get_torch()
    return torch.sparse_csr_tensor(
        torch.from_numpy(X.indptr.astype(np.int64, copy=False)),
        torch.from_numpy(X.indices.astype(np.int64, copy=False)),
        torch.from_numpy(X.data), size=X.shape)


def torch_build(spec, X_dtype):
    """Linear layers with sklearn's initial weights and the case's hidden
    activation (ReLU, tanh or logistic); also the positioned RNG."""
    torch = get_torch()
    tdt = torch.float32 if X_dtype == np.float32 else torch.float64
    p = spec.params
    init, rs = sklearn_initial_weights(spec.units, p["random_state"],
                                       p.get("activation", "relu"), X_dtype)
    layers = []
    for i, (W, b) in enumerate(init):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(init) - 1:
            layers.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                           "logistic": torch.nn.Sigmoid}[p.get("activation", "relu")]())
    return layers, rs


def torch_fit(spec, X, y):
    """Train like sklearn's stochastic solvers: same init, batch order, updates.

    * plain ``torch.nn.Sequential`` of Linear/ReLU (Tanh in case 9; the first Linear applied
      with ``torch.addmm`` on a CSR batch for sparse input),
    * CrossEntropyLoss (softmax + mean log-loss), the loss sklearn minimises,
    * ``torch.optim.SGD`` (momentum, Nesterov) or ``torch.optim.Adam`` with
      sklearn's lr / betas / epsilon; sklearn's L2 term alpha/(2 n_batch)
      ||W||^2 becomes weight_decay = alpha / batch_size on the weights only
      (exact for full batches; the last, shorter batch of an epoch differs),
    * every epoch ``sklearn.utils.shuffle`` of the previous order with the
      RandomState left after initialisation, exactly as sklearn does.
    """
    torch = get_torch()
    p = spec.params
    layers, rs = torch_build(spec, X.dtype)
    sparse = sp.issparse(X)
    classes, y_idx = np.unique(y, return_inverse=True)
    model = torch.nn.Sequential(*layers[1:] if sparse else layers)
    first = layers[0]
    weights = [m.weight for m in layers if isinstance(m, torch.nn.Linear)]
    biases = [m.bias for m in layers if isinstance(m, torch.nn.Linear)]
    n = X.shape[0]
    bs = spec.batch
    groups = [{"params": weights, "weight_decay": p["alpha"] / bs},
              {"params": biases, "weight_decay": 0.0}]
    if p["solver"] == "sgd":
        mom = p.get("momentum", 0.9)
        opt = torch.optim.SGD(groups, lr=p["learning_rate_init"], momentum=mom,
                              nesterov=bool(p.get("nesterovs_momentum", True) and mom > 0))
    elif p["solver"] == "adam":
        opt = torch.optim.Adam(groups, lr=p["learning_rate_init"],
                               betas=(p.get("beta_1", 0.9), p.get("beta_2", 0.999)),
                               eps=p.get("epsilon", 1e-8))
    else:
        raise ValueError(p["solver"])
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt = None if sparse else torch.from_numpy(X)
    yt = torch.from_numpy(y_idx.astype(np.int64))
    sample_idx = np.arange(n)
    for _ in range(p["max_iter"]):
        sample_idx = sk_shuffle(sample_idx, random_state=rs)
        idx_t = torch.from_numpy(sample_idx)
        for start in range(0, n, bs):
            if sparse:
                xb = _torch_csr(X[sample_idx[start:start + bs]])
                h = model(torch.addmm(first.bias, xb, first.weight.t()))
            else:
                h = model(Xt.index_select(0, idx_t[start:start + bs]))
            loss = loss_fn(h, yt[idx_t[start:start + bs]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return TorchModel(layers, sparse, classes, spec.task)


def warmup_spec(spec):
    """The same contender work on a tiny slice (first calls, thread pools, caches)."""
    w = Spec(**dict(spec.__dict__))
    if spec.kind == "gridsearch":
        w.X, w.y = spec.X[:200], spec.y[:200]
        w.grid = {k: v[:1] for k, v in spec.grid.items()}
        w.cv = 2
        w.params = dict(spec.params, max_iter=1)
        return w
    m = min(spec.X.shape[0], 2 * spec.batch if spec.params.get("solver") != "lbfgs"
            else 200)
    w.X, w.y = spec.X[:m], spec.y[:m]
    w.params = dict(spec.params, max_iter=1)
    if "n_iter_no_change" in w.params:
        w.params["n_iter_no_change"] = 2
    if spec.kind == "predict":
        w.X_test = spec.X_test[:100]
    return w


def tiny_spec(spec):
    """A tiny problem of the same kind (32 rows, batch 16, hidden width 8).

    The memory subprocess runs it before measuring so that one-time library
    initialisation (lazy imports, thread pools, BLAS buffers) is not charged to
    the fit, while the fit's own arrays, which are much larger, are not
    pre-allocated in the heap.
    """
    w = warmup_spec(spec)
    w.params = dict(w.params)
    if "hidden_layer_sizes" in w.params:
        w.params["hidden_layer_sizes"] = (8,) * len(w.params["hidden_layer_sizes"])
    if w.params.get("solver") != "lbfgs" and spec.kind != "gridsearch":
        w.params["batch_size"] = 16
    if spec.kind == "gridsearch":
        w.grid = {k: ([(8,)] if "hidden" in k else v[:1]) for k, v in spec.grid.items()}
        w.X, w.y = spec.X[:100], spec.y[:100]
    else:
        w.X, w.y = spec.X[:32], spec.y[:32]
    w.units = [spec.units[0]] + [8] * (len(spec.units) - 2) + [spec.units[-1]]
    if spec.kind == "predict":
        w.X_test = spec.X_test[:32]
    return w


def prepare(spec, contender):
    """Untimed preparation: for 'predict', the fitted model of the contender."""
    if spec.kind != "predict":
        return None
    if contender == "torch":
        ref = _estimator_class("sklearn", spec.task)(**spec.params).fit(spec.X, spec.y)
        torch = get_torch()
        layers, _ = torch_build(spec, spec.X.dtype)
        with torch.no_grad():
            lins = [m for m in layers if isinstance(m, torch.nn.Linear)]
            for lin, W, b in zip(lins, ref.coefs_, ref.intercepts_):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
        return TorchModel(layers, False, ref.classes_, spec.task)
    return _estimator_class(contender, spec.task)(**spec.params).fit(spec.X, spec.y)


def make_gridsearch(spec, contender, n_jobs=1):
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", _estimator_class(contender, spec.task)(**spec.params))])
    return GridSearchCV(pipe, spec.grid, cv=spec.cv, n_jobs=n_jobs)


def run_once(spec, contender, prepared=None, variant=None):
    """Time one run (the fit, or ``inner`` predict calls); return (seconds, model)."""
    if spec.kind == "predict":
        model = prepared
        t0 = time.perf_counter()
        for _ in range(spec.inner):
            model.predict_proba(spec.X_test)
        return (time.perf_counter() - t0) / spec.inner, model
    if spec.kind == "gridsearch":
        n_jobs, backend = (1, None) if variant is None else variant
        if backend == "skmlp":  # the search's n_jobs=None: taken from the context
            gs = make_gridsearch(spec, contender, None)
            ctx = skmlp.parallel_config(n_jobs=n_jobs)
        else:
            gs = make_gridsearch(spec, contender, n_jobs)
            ctx = (contextlib.nullcontext() if backend is None else
                   __import__("joblib").parallel_config(backend=backend))
        with ctx:
            t0 = time.perf_counter()
            gs.fit(spec.X, spec.y)
            return time.perf_counter() - t0, gs
    if contender == "torch":
        t0 = time.perf_counter()
        model = torch_fit(spec, spec.X, spec.y)
        return time.perf_counter() - t0, model
    est = _estimator_class(contender, spec.task)(**spec.params)
    t0 = time.perf_counter()
    est.fit(spec.X, spec.y)
    return time.perf_counter() - t0, est


def evaluate(spec, model):
    """Test accuracy / R^2 (gridsearch: the best mean cross-validated accuracy)."""
    if spec.kind == "gridsearch":
        return float(model.best_score_)
    return float(model.score(spec.X_test, spec.y_test))


def contenders_for(spec, with_torch):
    out = ["skmlp", "sklearn"]
    if spec.torch and with_torch:
        out.append("torch")
    return out


# ---------------------------------------------------------------------------
# FLOPs and the BLAS reference rate
# ---------------------------------------------------------------------------

def train_flops(spec):
    """Analytic FLOPs of the matrix products of all training steps.

    Per batch of n rows and layer (fan_in, fan_out): 2 n fan_in fan_out for the
    forward product, the same for the weight gradient, and the same for the
    delta of every hidden layer (layer index >= 1; no input-layer delta).
    """
    u = spec.units
    macs = [a * b for a, b in zip(u[:-1], u[1:])]
    per_row = 2 * (2 * sum(macs) + sum(macs[1:]))
    return float(spec.epochs * spec.X.shape[0] * per_row)


def predict_flops(spec):
    u = spec.units
    return float(2 * spec.X_test.shape[0] * sum(a * b for a, b in zip(u[:-1], u[1:])))


def gemm_calls(units, rows, training):
    """skmlp's BLAS calls for one batch, as column-major gemm shapes.

    Each entry (trans_a, trans_b, a_shape, b_shape, c_shape) is what
    skmlp._blas._gemm hands to ?gemm after its row-major swap:
    forward  Z = A @ W      -> gemm(N, N): W^T (fo x fi) @ A^T (fi x n)
    weights  G = A^T @ D    -> gemm(N, T): D^T (fo x n)  @ (A^T)^T (n x fi)
    delta   Dp = D @ W^T    -> gemm(T, N): (W^T)^T (fi x fo) @ D^T (fo x n)
    """
    calls = []
    pairs = list(zip(units[:-1], units[1:]))
    for fi, fo in pairs:
        calls.append((0, 0, (fo, fi), (fi, rows), (fo, rows)))
    if training:
        for i, (fi, fo) in enumerate(pairs):
            calls.append((0, 1, (fo, rows), (fi, rows), (fo, fi)))
            if i > 0:
                calls.append((1, 0, (fo, fi), (fo, rows), (fi, rows)))
    return calls


def _scipy_blas_entry(info):
    blas = [e for e in info if e.get("user_api") == "blas"]
    for e in blas:
        if "scipy" in os.path.basename(os.path.dirname(e.get("filepath", ""))):
            return e
    return blas[-1] if blas else {}


def skmlp_blas_threads(rows, units):
    """BLAS threads skmlp's kernels run with for this batch (its _threads rule)."""
    try:
        from skmlp._threads import blas_threads_for
    except ImportError:
        ctx = contextlib.nullcontext()
    else:
        ctx = blas_threads_for(rows, units)
    with ctx:
        return int(_scipy_blas_entry(threadpoolctl.threadpool_info()).get("num_threads", 1))


def case_rows(spec):
    """Rows per kernel call of skmlp in this case (what its thread rule sees)."""
    if spec.kind == "predict":
        return min(spec.X_test.shape[0], 1024)
    if spec.kind == "gridsearch":
        return min(200, spec.X.shape[0])
    if spec.params.get("solver") == "lbfgs":
        return min(spec.X.shape[0], 1024)
    return spec.batch


def timed_trials(run, budget, trials):
    """Seconds per unit of work of ``run(n)`` (which does n units), one value
    per trial, sorted: after a warm-up unit, n grows four-fold until a call
    takes budget / 8, then each trial runs about ``budget`` seconds of units."""
    def timed(n):
        t0 = time.perf_counter()
        run(n)
        return time.perf_counter() - t0
    timed(1)
    n = 1
    while True:
        dt = timed(n)
        if dt >= budget / 8:
            break
        n *= 4
    n = max(1, int(round(n * budget / dt)))
    return sorted(timed(n) / n for _ in range(trials))


def time_gemm(calls, dtype, threads, budget=0.25, trials=5):
    """GFLOP/s of SciPy's ?gemm over the given calls, at ``threads`` threads.

    One 'pass' is the whole list of calls once, on preallocated operands (no
    copies). The passes run in a compiled loop (``skmlp._blas._py_gemm_loop``:
    the wrapper the kernels call, over ``scipy.linalg.cython_blas``), so that
    no Python runs between two products: through ``scipy.linalg.blas`` each
    call costs about a microsecond of Python, which is a third of the time of
    a (32, 64, 100) float64 product and would make small shapes' reference
    rates (and the bounds computed from them) too low. Each trial runs passes
    for about ``budget`` seconds; returns the median and best rate over
    ``trials``.
    """
    from skmlp import _blas
    loop = getattr(_blas, "_py_gemm_loop", None)
    rs = np.random.RandomState(0)
    ops = []
    flops = 0.0
    for ta, tb, a_shape, b_shape, c_shape in calls:
        a = np.asfortranarray(rs.uniform(-1, 1, a_shape).astype(dtype))
        b = np.asfortranarray(rs.uniform(-1, 1, b_shape).astype(dtype))
        c = np.zeros(c_shape, dtype=dtype, order="F")
        k = a_shape[0] if ta else a_shape[1]
        flops += 2.0 * c_shape[0] * c_shape[1] * k
        ops.append((a, b, c, ta, tb))
    if loop is not None:
        # column-major c = op(a) @ op(b) is row-major c.T = op(b).T @ op(a).T
        row_major = [(tb, ta, b.T, a.T, c.T) for a, b, c, ta, tb in ops]

        def run_passes(n):
            loop(row_major, n)
        method = ("compiled loop (skmlp._blas._py_gemm_loop: no Python between "
                  "the products)")
    else:
        gemm = scipy_blas.sgemm if dtype == np.float32 else scipy_blas.dgemm

        def run_passes(n):
            for _ in range(n):
                for a, b, c, ta, tb in ops:
                    gemm(1.0, a, b, beta=0.0, c=c, trans_a=ta, trans_b=tb,
                         overwrite_c=1)
        method = "Python loop (scipy.linalg.blas; this skmlp has no _py_gemm_loop)"
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        rates = [flops / t / 1e9 for t in timed_trials(run_passes, budget, trials)]
    return {"gflops_median": float(np.median(rates)), "gflops_best": float(max(rates)),
            "gflops_trials": rates, "threads": threads, "flops_per_pass": flops,
            "method": method,
            "calls": [dict(trans_a=ta, trans_b=tb, a=list(a), b=list(b), c=list(c))
                      for ta, tb, a, b, c in calls]}


def _reference_method(rows):
    methods = sorted({r["blas_reference"].get("method", "Python loop")
                      for r in rows})
    return "; ".join(methods)


def dense_stochastic_fit(spec):
    """A timed fit with SGD or Adam on dense input: the cases whose training
    FLOPs, BLAS reference and floor are computed."""
    return (spec.kind == "fit" and spec.params.get("solver") in ("sgd", "adam")
            and not sp.issparse(spec.X))


def blas_reference(spec):
    """The rate SciPy's BLAS reaches on the case's own gemm shapes (or None)."""
    if dense_stochastic_fit(spec):
        rows = spec.batch
        threads = skmlp_blas_threads(rows, spec.units)
        ref = time_gemm(gemm_calls(spec.units, rows, True), spec.X.dtype, threads)
        ref["what"] = f"one training step, batch {rows}"
        return ref
    if spec.kind == "predict":
        rows = min(spec.X_test.shape[0], 1024)  # skmlp's prediction row block
        threads = skmlp_blas_threads(rows, spec.units)
        ref = time_gemm(gemm_calls(spec.units, rows, False), spec.X_test.dtype, threads)
        ref["what"] = f"forward pass, row block {rows}"
        return ref
    return None


def update_pass(spec):
    """Does skmlp's training step of this case run the optimizer's update as a
    pass of its own (Adam; SGD with momentum), not inside the weight-gradient
    products (momentum-0 SGD on dense input)?"""
    solver = spec.params.get("solver")
    return dense_stochastic_fit(spec) and (
        solver == "adam" or spec.params.get("momentum") != 0)


def time_update(spec, budget=0.25, trials=5):
    """Seconds per fit of skmlp's optimizer update alone: its compiled loop
    (``_mlp_fast._py_update_steps``, the loop a training step runs) over a
    parameter vector of the case's size, times the fit's number of steps.
    Adam's loop takes a square root and a division per parameter, which the
    divider bounds (both correctly rounded, as NumPy's in scikit-learn's
    update; the AVX-512 build's float64 loop divides without the divider)."""
    from skmlp import _mlp_fast
    from skmlp._multilayer_perceptron import _Optimizer
    est = skmlp.MLPClassifier(**spec.params)
    u = spec.units
    n = sum(a * b + b for a, b in zip(u[:-1], u[1:]))
    dtype = spec.X.dtype
    # the optimizer's settings and zeroed state, as a fit makes them
    opt = _Optimizer(est, n, dtype)
    rs = np.random.RandomState(0)
    theta = rs.uniform(-0.1, 0.1, n).astype(dtype)
    grad = (0.01 * rs.standard_normal(n)).astype(dtype)
    batch = min(spec.batch, spec.X.shape[0])
    steps_per_fit = spec.epochs * -(-spec.X.shape[0] // batch)

    def run(steps):
        _mlp_fast._py_update_steps(opt.kernel_params(), theta, grad, opt.state_1,
                                   opt.state_2, float(est.alpha), float(batch), 0,
                                   steps)
    per_step = timed_trials(run, budget, trials)
    med = float(np.median(per_step))
    return {"per_step_s": med, "per_step_best_s": per_step[0], "params": n,
            "steps_per_fit": steps_per_fit, "seconds": med * steps_per_fit,
            "what": f"{est.solver} update of {n} parameters, {steps_per_fit} steps"}


def gather_pass(spec):
    """Does skmlp's training of this case gather shuffled dense rows into a
    batch buffer (every dense SGD / Adam fit with shuffle=True)?"""
    return dense_stochastic_fit(spec) and spec.params.get("shuffle", True)


def time_gather(spec, budget=0.25, trials=5):
    """Seconds per fit of the gather of the shuffled rows alone: skmlp's
    gather loop (``_mlp_fast._py_gather_epoch``, the one training runs: a
    copy of each row, the row 8 places ahead asked for on the way) over one
    epoch of the case's training rows in a random order, into a batch
    buffer, times the fit's epochs. Every contender copies each epoch's rows
    once (scikit-learn's ``X[batch_slice]`` after its shuffle, PyTorch's
    indexing); this is the cost of reading them from memory."""
    from skmlp import _mlp_fast
    X = np.ascontiguousarray(spec.X)
    order = np.random.RandomState(0).permutation(X.shape[0]).astype(np.intp)
    buf = np.empty((min(spec.batch, X.shape[0]), X.shape[1]), dtype=X.dtype)

    def run(epochs):
        for _ in range(epochs):
            _mlp_fast._py_gather_epoch(X, order, buf)
    per_epoch = timed_trials(run, budget, trials)
    med = float(np.median(per_epoch))
    return {"per_epoch_s": med, "per_epoch_best_s": per_epoch[0],
            "epochs_per_fit": spec.epochs, "seconds": med * spec.epochs,
            "bytes_per_epoch": int(X.nbytes),
            "what": f"{X.shape[0]} rows of {X.shape[1]} {X.dtype} per epoch, "
                    f"batch {buf.shape[0]}, {spec.epochs} epochs"}


def time_input_check(spec, budget=0.25, trials=5):
    """Seconds per predict call of the input check alone: scikit-learn's
    ``check_array`` on the case's test rows, as ``validate_data`` runs it in
    skmlp's and scikit-learn's ``predict_proba`` (dtype, shape, and the
    finiteness of every value: a read of the whole input). skmlp, as a
    scikit-learn estimator, checks what it is given before it computes; this
    is the cost of that check."""
    from sklearn.utils import check_array
    X = spec.X_test

    def run(calls):
        for _ in range(calls):
            check_array(X, accept_sparse=["csr", "csc"])
    per_call = timed_trials(run, budget, trials)
    med = float(np.median(per_call))
    return {"per_call_s": med, "per_call_best_s": per_call[0], "seconds": med,
            "bytes": int(X.nbytes),
            "what": f"check_array on {X.shape[0]} x {X.shape[1]} {X.dtype}, per call"}


def case_flops(spec):
    if spec.kind == "predict":
        return predict_flops(spec)
    if dense_stochastic_fit(spec):
        return train_flops(spec)
    return None


# ---------------------------------------------------------------------------
# Peak memory: one fresh subprocess per (case, dtype, contender)
# ---------------------------------------------------------------------------

def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); True on success."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# glibc's allocator in the memory subprocess: a fixed mmap threshold (no dynamic
# raise after large frees) and a small trim threshold, so that freed memory goes
# back to the system and RSS follows the live allocations. Otherwise up to 64 MB
# freed while loading the data stays in the heap and the fit reuses it unseen.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072",
              "MALLOC_TOP_PAD_": "0"}


def _malloc_trim():
    try:
        import ctypes
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) >= 0)
    except (OSError, AttributeError):
        return False


def memory_worker(payload):
    """Body of the memory subprocess; prints one JSON line tagged WORKER_TAG."""
    job = json.loads(payload)
    if job.get("threads"):
        threadpoolctl.threadpool_limits(limits=job["threads"], user_api="blas")
    if job["contender"] == "torch":
        get_torch().set_num_threads(job["torch_threads"])
    spec = build_case(job["case"], job["dtype"], job["quick"], job["data_dir"])
    contender = job["contender"]
    # First calls (library initialisation, thread pools) on a tiny problem.
    w = tiny_spec(spec)
    run_once(w, contender, prepare(w, contender))
    del w
    prepared = prepare(spec, contender)
    gc.collect()
    trimmed = _malloc_trim()
    reset = _reset_peak_rss()
    base_kb = _status_kb("VmRSS")
    peak_before_kb = _status_kb("VmHWM")
    seconds, model = run_once(spec, contender, prepared)
    peak_kb = _status_kb("VmHWM")
    result = {
        "peak_mb": (peak_kb - base_kb) / 1024.0,
        "baseline_rss_mb": base_kb / 1024.0,
        "peak_rss_mb": peak_kb / 1024.0,
        "hwm_reset": reset,
        "malloc_trim": trimmed,
        "allocator_env": {k: os.environ.get(k) for k in MALLOC_ENV},
        "peak_before_mb": peak_before_kb / 1024.0,
        # ru_maxrss for reference only: it also holds the high-water mark of
        # the parent's address space that this process was forked from.
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "seconds": seconds,
        "skmlp_file": skmlp.__file__,
    }
    if not reset and peak_kb <= peak_before_kb:
        result["warning"] = ("RSS high-water mark could not be reset and the fit did "
                             "not exceed the data-loading peak: value is a lower bound")
    print(WORKER_TAG + json.dumps(result), flush=True)


def measure_memory(spec, contender, args, torch_threads):
    job = {"case": spec.id, "dtype": spec.X.dtype.name, "contender": contender,
           "quick": args.quick, "data_dir": args.data_dir, "threads": args.threads,
           "torch_threads": torch_threads}
    cmd = [sys.executable, os.path.abspath(__file__), "--skmlp",
           os.environ.get("SKMLP_BENCH_SOURCE", "auto"), "--memory-worker",
           json.dumps(job)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                              env=dict(ENV_AT_START,
                                       PYTHONPATH=os.environ.get("PYTHONPATH", ""),
                                       SKMLP_BENCH_SOURCE=os.environ.get(
                                           "SKMLP_BENCH_SOURCE", "auto"),
                                       **MALLOC_ENV))
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    for line in proc.stdout.splitlines():
        if line.startswith(WORKER_TAG):
            return json.loads(line[len(WORKER_TAG):])
    return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git(*cmd):
    try:
        return subprocess.run(["git", "-C", REPO, *cmd], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _blas_entries(info):
    keep = ("user_api", "internal_api", "prefix", "architecture", "num_threads",
            "version", "threading_layer", "filepath")
    return [{k: e.get(k) for k in keep} for e in info]


def _kernel_build():
    """Which build of skmlp's kernels runs (skmlp._mlp_fast.variant)."""
    try:
        from skmlp import _mlp_fast
    except ImportError:
        return None
    return getattr(_mlp_fast, "variant", "single build")


def environment(args, torch_threads, with_torch):
    env_vars = {k: v for k, v in sorted(ENV_AT_START.items())
                if k.startswith(("OPENBLAS", "OMP_", "MKL", "GOTO", "BLIS", "NVPL",
                                 "KMP_", "GOMP", "PYTHONPATH"))}
    info = threadpoolctl.threadpool_info()
    out = {
        "blas_env_vars": {k: ENV_AT_START.get(k) for k in BLAS_ENV_VARS},
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "command": [sys.executable] + sys.argv,
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "platform": platform.platform(),
        "python": sys.version.replace("\n", " "),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__,
                     "skmlp": getattr(skmlp, "__version__", "?"),
                     "threadpoolctl": threadpoolctl.__version__,
                     "joblib": __import__("joblib").__version__},
        "skmlp_source": os.environ.get("SKMLP_BENCH_SOURCE"),
        "skmlp_file": skmlp.__file__,
        "skmlp_kernels": _kernel_build(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "env_vars": env_vars,
        "blas": {
            "numpy_and_scipy": _blas_entries(info),
            "scipy_blas_used_by_skmlp": _blas_entries([_scipy_blas_entry(info)])[0],
        },
        "threads": {"blas_default": int(_scipy_blas_entry(info).get("num_threads", 1)),
                    "--threads": args.threads, "torch": torch_threads},
        "loadavg_start": os.getloadavg(),
    }
    torch = get_torch() if with_torch else None
    if torch is not None:
        cfg = torch.__config__.show()
        blas_info = [s.split("=", 1)[1] for s in cfg.replace(",", "\n").split()
                     if s.startswith("BLAS_INFO=")]
        out["versions"]["torch"] = torch.__version__
        out["blas"]["torch"] = {
            "blas_info": blas_info[0] if blas_info else None,
            "mkl_available": torch.backends.mkl.is_available(),
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "num_threads": torch.get_num_threads(),
            "parallel_info": torch.__config__.parallel_info(),
            "config": cfg,
            "threadpoolctl_after_import": _blas_entries(threadpoolctl.threadpool_info()),
            "note": ("torch's MKL is linked statically into libtorch_cpu, so "
                     "threadpoolctl cannot see it; blas_info / config name it"),
        }
    try:
        with open("/proc/meminfo") as f:
            out["mem_total"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------

# (case, dtype or None for every dtype) -> minimum values. vs_sklearn / vs_torch:
# ratio of medians competitor / skmlp; blas: skmlp's fraction of the BLAS rate.
# A bare "case N >= x" in the brief is read as against scikit-learn.
TARGETS = {
    (1, "float32"): {"vs_sklearn": 2.0, "vs_torch": 1.4, "blas": 0.70},
    (1, "float64"): {"vs_sklearn": 1.8},
    (2, None): {"vs_sklearn": 8.0, "vs_torch": 15.0},
    (3, None): {"vs_sklearn": 6.0, "vs_torch": 6.0},
    (4, "float32"): {"vs_sklearn": 1.5, "vs_torch": 1.2, "blas": 0.75},
    (5, None): {"vs_sklearn": 1.5},
    (6, None): {"vs_sklearn": 4.0},
    (7, None): {"vs_sklearn": 2.0},
    (8, None): {"vs_sklearn": 2.0},
}


def check_targets(row):
    t = dict(TARGETS.get((row["case"], None), {}))
    t.update(TARGETS.get((row["case"], row["dtype"]), {}))
    checks = {}
    for key, minimum in t.items():
        if key == "blas":
            value = row["contenders"]["skmlp"].get("blas_fraction")
        else:
            value = row["ratios"].get(key.split("_")[1])
        checks[key] = {"min": minimum, "value": value,
                       "met": None if value is None else bool(value >= minimum)}
    mem = {c: row["contenders"].get(c, {}).get("peak_mb") for c in ("skmlp", "sklearn")}
    bound = row.get("ratio_bound", {})
    bound_floor = row.get("ratio_bound_floor", {})
    for key, chk in checks.items():
        who = key.split("_")[-1]
        if key.startswith("vs_") and who in bound:
            chk["bound"] = bound[who]
            chk["reachable"] = bool(chk["bound"] >= chk["min"])
            if who in bound_floor:
                chk["bound_floor"] = bound_floor[who]
                chk["reachable"] = bool(chk["bound_floor"] >= chk["min"])
    if None not in mem.values():
        # 0.1 MB slack (25 pages) for page granularity; repeated runs agree
        # to about that.
        checks["memory"] = {"max": mem["sklearn"], "value": mem["skmlp"],
                            "met": bool(mem["skmlp"] <= mem["sklearn"] + 0.1)}
    return checks


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _summary(times):
    return {"times": times, "median": float(np.median(times)), "min": float(min(times))}


def run_case(spec, args, with_torch, blas_threads):
    names = contenders_for(spec, with_torch)
    skmlp_threads = skmlp_blas_threads(case_rows(spec), spec.units)
    torch_threads = None
    if "torch" in names:
        torch_threads = (skmlp_threads if args.torch_threads == "match"
                         else args.torch_threads)
        get_torch().set_num_threads(torch_threads)
    log(f"== case {spec.id} ({spec.name}) {spec.X.dtype.name}: "
        f"{', '.join(names)}; {args.repeats} repeats")
    row = {"case": spec.id, "name": spec.name, "title": spec.title,
           "dtype": spec.X.dtype.name, "kind": spec.kind, "task": spec.task,
           "data": spec.data, "notes": list(spec.notes),
           "params": {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in spec.params.items()},
           "units": spec.units, "n_train": int(spec.X.shape[0]),
           "torch": spec.torch_note or ("included" if spec.torch else "not applicable"),
           "threads": {"skmlp_blas": skmlp_threads, "sklearn_blas": blas_threads,
                       "torch": torch_threads},
           "loadavg_start": os.getloadavg(),
           "contenders": {}}
    if spec.kind == "gridsearch":
        row["grid"] = {k: [list(x) if isinstance(x, tuple) else x for x in v]
                       for k, v in spec.grid.items()}
    if spec.torch and not with_torch:
        row["torch"] = "disabled (--no-torch or torch not importable)"

    # The BLAS reference, measured in this run just before the contenders (and
    # again just after them, below).
    ref = blas_reference(spec)
    flops = case_flops(spec)
    row["flops"] = flops

    prepared = {}
    for c in names:  # untimed: fitted models for 'predict', and one warm-up run
        w = warmup_spec(spec)
        run_once(w, c, prepare(w, c))
        prepared[c] = prepare(spec, c)
    times = {c: [] for c in names}
    models = {}
    for r in range(args.repeats):
        for c in names:
            gc.collect()
            dt, model = run_once(spec, c, prepared[c])
            times[c].append(dt)
            models.setdefault(c, model)
        log("   repeat %d: %s" % (r + 1, "  ".join(f"{c} {times[c][-1]:.3f}s"
                                                   for c in names)))
    if ref:
        # A short burst of contention (another process taking a core) can spoil
        # one measurement; keep the better of before / after.
        after = blas_reference(spec)
        ref["before_after_gflops"] = [ref["gflops_median"], after["gflops_median"]]
        if after["gflops_median"] > ref["gflops_median"]:
            after["before_after_gflops"] = ref["before_after_gflops"]
            ref = after
    row["blas_reference"] = ref
    if ref and update_pass(spec):
        row["update_only"] = time_update(spec)
    if ref and gather_pass(spec):
        row["gather_only"] = time_gather(spec)
    if ref and spec.kind == "predict":
        row["input_check_only"] = time_input_check(spec)
    for c in names:
        res = _summary(times[c])
        res["score"] = evaluate(spec, models[c])
        res["score_name"] = ("best CV accuracy" if spec.kind == "gridsearch" else
                             "test accuracy" if spec.task == "classification" else
                             "test R2")
        m = models[c]
        if hasattr(m, "n_iter_"):
            res["n_iter"] = int(m.n_iter_)
        if flops:
            res["gflops"] = flops / res["median"] / 1e9
            if ref:
                res["blas_fraction"] = res["gflops"] / ref["gflops_median"]
        row["contenders"][c] = res
    sk = row["contenders"]["skmlp"]["median"]
    row["ratios"] = {c: row["contenders"][c]["median"] / sk for c in names if c != "skmlp"}
    if flops and ref:
        # The matrix products alone at the reference rate: no contender can go
        # below this, so competitor / gemm_ideal bounds the reachable ratio.
        row["gemm_ideal_s"] = flops / (ref["gflops_median"] * 1e9)
        row["ratio_bound"] = {c: row["contenders"][c]["median"] / row["gemm_ideal_s"]
                              for c in names if c != "skmlp"}
        # ... and the passes over memory skmlp makes besides them (the
        # optimizer's update where it runs as a pass of its own; the gather of
        # the shuffled rows: every contender makes them too; the check of
        # the input to predict, which scikit-learn makes too), at skmlp's
        # speed for them
        extra = [row[k]["seconds"] for k in ("update_only", "gather_only",
                                             "input_check_only") if k in row]
        if extra:
            row["floor_s"] = row["gemm_ideal_s"] + sum(extra)
            row["ratio_bound_floor"] = {
                c: row["contenders"][c]["median"] / row["floor_s"]
                for c in names if c != "skmlp"}

    if not args.no_memory:
        for c in names:
            mem = measure_memory(spec, c, args, torch_threads)
            row["contenders"][c]["memory"] = mem
            row["contenders"][c]["peak_mb"] = mem.get("peak_mb")
            log(f"   peak memory {c}: "
                + (f"{mem['peak_mb']:.1f} MB" if "peak_mb" in mem else mem.get("error")))
    row["targets"] = check_targets(row)
    row["loadavg_end"] = os.getloadavg()
    del prepared, models
    return row


def _cpu_jiffies():
    """(busy jiffies of the whole machine, jiffies of this process and its children).

    Children (loky's workers) are found through /proc by parent pid, alive or
    not yet reaped. Linux only; (None, None) elsewhere.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
        me = os.getpid()
        own = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(pid) == me or int(st[1]) == me:  # st[1]: ppid
                own += int(st[11]) + int(st[12])  # utime + stime
        return busy, own
    except (OSError, ValueError, IndexError):
        return None, None


def _others_cores(before, after, wall):
    """CPU cores used by other processes between two _cpu_jiffies() readings."""
    if before[0] is None or after[0] is None or wall <= 0:
        return None
    tck = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / tck / wall)


QUIET_OTHERS = 0.15  # cores used by other processes: below this a run counts as quiet

SCALING_VARIANTS = (
    # name, (n_jobs, joblib backend or "skmlp" for skmlp.parallel_config)
    ("n_jobs=1", (1, None)),
    ("n_jobs=2 threading", (2, "threading")),
    ("n_jobs=2 loky", (2, "loky")),
    ("n_jobs=2 skmlp.parallel_config", (2, "skmlp")),
)


def run_scaling(spec, args):
    """Case 6 for skmlp: n_jobs=1 against n_jobs=2 (threading, loky, skmlp.parallel_config).

    The same GridSearchCV (8 candidates x 5 folds, refit=True) each time; the
    variants alternate within every repeat, so that a burst of load from other
    processes hits all of them alike. Reported per variant: wall time (median
    and min), this process's CPU time (loky workers' CPU is not in it), and
    the search's own ``refit_time_`` (the final refit on all rows, which runs
    alone, after the parallel part: it is included in the wall time).
    """
    variants = list(SCALING_VARIANTS)
    log(f"== scaling: case 6 {spec.X.dtype.name}, skmlp, "
        + ", ".join(v for v, _ in variants) + f"; {args.repeats} repeats")
    probes = [contention_probe(threads=2)]
    w = warmup_spec(spec)
    for _, v in variants:
        run_once(w, "skmlp", None, v)
    times = {name: [] for name, _ in variants}
    cpu = {name: [] for name, _ in variants}
    refit = {name: [] for name, _ in variants}
    others = {name: [] for name, _ in variants}
    scores = {}
    loads = []
    for r in range(args.repeats):
        for name, v in variants:
            gc.collect()
            c0 = time.process_time()
            j0 = _cpu_jiffies()
            dt, gs = run_once(spec, "skmlp", None, v)
            others[name].append(_others_cores(j0, _cpu_jiffies(), dt))
            cpu[name].append(time.process_time() - c0)
            times[name].append(dt)
            refit[name].append(float(gs.refit_time_))
            scores.setdefault(name, float(gs.best_score_))
        loads.append(os.getloadavg()[0])
        log("   repeat %d (load %.2f): %s" % (r + 1, loads[-1], "  ".join(
            f"{n} {times[n][-1]:.3f}s (others {_f(others[n][-1], '{:.2f}')})"
            for n, _ in variants)))
    probes.append(contention_probe(threads=2))
    res = {name: dict(_summary(times[name]), score=scores[name], cpu_s=cpu[name],
                      refit_s=refit[name], others_cores=others[name])
           for name, _ in variants}
    base = res["n_jobs=1"]
    for name in res:
        res[name]["speedup_vs_n_jobs_1"] = base["median"] / res[name]["median"]
        res[name]["speedup_of_mins"] = base["min"] / res[name]["min"]
        res[name]["speedup_per_repeat"] = [a / b for a, b in zip(base["times"],
                                                                 res[name]["times"])]
        # Repeats in which other processes used less than QUIET_OTHERS cores
        # during both this variant's run and n_jobs=1's run of the same repeat.
        quiet = [i for i, (a, b) in enumerate(zip(base["others_cores"],
                                                  res[name]["others_cores"]))
                 if a is not None and b is not None and max(a, b) < QUIET_OTHERS]
        res[name]["quiet_repeats"] = quiet
        res[name]["speedup_quiet"] = (
            float(np.median([base["times"][i] for i in quiet]))
            / float(np.median([res[name]["times"][i] for i in quiet]))
            if quiet else None)
    blas_after = _scipy_blas_entry(threadpoolctl.threadpool_info()).get("num_threads")
    return {"case": 6, "dtype": spec.X.dtype.name, "variants": res,
            "scipy_blas_threads_after": blas_after, "loadavg_per_repeat": loads,
            "contention_probes": probes, "case_notes": list(spec.notes),
            "notes": "skmlp only; GridSearchCV(n_jobs=...) inside joblib.parallel_config"
                     "(backend=...), or inside skmlp.parallel_config(n_jobs=2) with the "
                     "search's n_jobs left at None; loky workers started by the warm-up; "
                     "refit=True (the refit's time is part of every total)"}


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

def _f(x, fmt="{:.3g}"):
    return "–" if x is None else fmt.format(x)


def _time_cell(res):
    if res is None:
        return "–"
    return f"{res['median']:.3g} ({res['min']:.3g})"


def write_markdown(path, report):
    env = report["environment"]
    lines = ["# skmlp benchmarks", ""]
    lines.append(f"Run {env['date_utc']} on {env['cpu_model']} ({env['cpu_count']} CPUs), "
                 f"{report['duration_s'] / 60:.1f} min, {report['args']['repeats']} "
                 f"repeats per contender{' (QUICK smoke configuration)' if report['args']['quick'] else ''}. "
                 "Produced by `python benchmarks/run.py`; raw numbers in `latest.json`, "
                 "method in `benchmarks/README.md`.")
    lines.append("")
    sb = env["blas"]["scipy_blas_used_by_skmlp"]
    lines.append(f"* skmlp {env['versions']['skmlp']} ({env['skmlp_source']}: "
                 f"`{env['skmlp_file']}`, commit {str(env['git_commit'])[:10]}"
                 f"{' + local changes' if env['git_dirty'] else ''}; "
                 f"kernels: {env.get('skmlp_kernels') or '?'} build), scikit-learn "
                 f"{env['versions']['scikit-learn']}, numpy {env['versions']['numpy']}, "
                 f"scipy {env['versions']['scipy']}"
                 + (f", torch {env['versions']['torch']}" if "torch" in env["versions"]
                    else ", torch not run"))
    for e in env["blas"]["numpy_and_scipy"]:
        if e["user_api"] != "blas":
            continue
        lines.append(f"* BLAS {e['internal_api']} {e['version']} ({e['architecture']}, "
                     f"{e['num_threads']} threads): `{os.path.basename(e['filepath'] or '')}`"
                     + (" ← SciPy's, used by skmlp" if e == sb else ""))
    if "torch" in env["blas"]:
        tb = env["blas"]["torch"]
        lines.append(f"* torch BLAS: {tb['blas_info']} (CPU capability "
                     f"{tb['cpu_capability']}); torch threads per case in the table")
    ev = env["env_vars"]
    lines.append("* BLAS environment: " + ", ".join(
        f"`{k}={v}`" if v is not None else f"`{k}` unset"
        for k, v in env.get("blas_env_vars", {}).items())
        + "; other: " + (", ".join(f"`{k}={v}`" for k, v in ev.items()
                                   if k != "PYTHONPATH" and k not in BLAS_ENV_VARS)
                         or "none"))
    hl = report.get("gemm_headline", {})
    if hl:
        lines.append("* SciPy BLAS dense GEMM (256×784)@(784×256): " + ", ".join(
            f"{k} {v['gflops_median']:.1f} GFLOP/s" for k, v in hl.items()))
    probes = report.get("contention_probes", [])
    if probes:
        keys = [k for k in probes[0] if k.isdigit()]
        n_cont = sum(p["contended"] for p in probes)
        lines.append("* Contention probe (SciPy sgemm 256×784×256 GFLOP/s at "
                     + " / ".join(f"{k} thread{'s' if k != '1' else ''}" for k in keys)
                     + ", before the first and after every case): "
                     + ", ".join(" / ".join(f"{p[k]:.0f}" for k in keys) for p in probes)
                     + (f" — **{n_cont} of {len(probes)} probes contended** "
                        "(multi-threaded rate below single-threaded: another process "
                        "holds a core)" if n_cont else ""))
    lines.append(f"* BLAS threads for this run: {report['environment']['threads']['run']} "
                 "(`--threads`; default: the BLAS's own default); loadavg "
                 f"{env['loadavg_start'][0]:.1f} at start, {env['loadavg_end'][0]:.1f} at end")
    lines.append("")
    lines.append("Times in seconds, median (min) of the repeats; ratio = competitor "
                 "median / skmlp median (>1: skmlp faster); score = test accuracy "
                 "(R² for case 7, best CV accuracy for case 6); peak = extra RSS of "
                 "one fit in a fresh process (MB); % BLAS = skmlp's matrix-product "
                 "FLOP rate over the rate SciPy's ?gemm reaches on the same shapes.")
    lines.append("")
    lines.append("| case | dtype | skmlp s | sklearn s | torch s | sklearn/skmlp | "
                 "torch/skmlp | score skmlp / sklearn / torch | peak MB skmlp / "
                 "sklearn / torch | skmlp GFLOP/s (% BLAS) | threads skmlp / sklearn / "
                 "torch | target met? |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in report["cases"]:
        c = row["contenders"]
        s = c["skmlp"]
        scores = " / ".join(_f(c.get(k, {}).get("score"), "{:.4f}") for k in CONTENDERS)
        peaks = " / ".join(_f(c.get(k, {}).get("peak_mb"), "{:.1f}") for k in CONTENDERS)
        rate = "–"
        if s.get("gflops") is not None:
            rate = f"{s['gflops']:.1f}" + (f" ({100 * s['blas_fraction']:.0f} %)"
                                            if s.get("blas_fraction") else "")
        tgt = []
        for key, chk in row["targets"].items():
            if chk["value"] is None:
                continue
            label = {"vs_sklearn": "sk", "vs_torch": "torch", "blas": "BLAS",
                     "memory": "mem"}[key]
            want = (f"≥{chk['min']:g}×" if key.startswith("vs") else
                    f"≥{100 * chk['min']:.0f}%" if key == "blas" else "≤sk")
            note = ""
            if chk.get("reachable") is False and not chk["met"]:
                note = (f" (floor bound {chk['bound_floor']:.2f}×)"
                        if "bound_floor" in chk else
                        f" (GEMM bound {chk['bound']:.2f}×)")
            tgt.append(f"{label} {want} {'✅' if chk['met'] else '❌'}{note}")
        th = row["threads"]
        torch_cell = _time_cell(c.get("torch"))
        if "torch" not in c:
            torch_cell = "n/a" if not str(row["torch"]).startswith("disabled") else "off"
        lines.append(
            f"| {row['case']} {row['title']} | {row['dtype']} | {_time_cell(s)} | "
            f"{_time_cell(c.get('sklearn'))} | {torch_cell} | "
            f"{_f(row['ratios'].get('sklearn'), '{:.2f}')} | "
            f"{_f(row['ratios'].get('torch'), '{:.2f}')} | {scores} | {peaks} | {rate} | "
            f"{th['skmlp_blas']} / {th['sklearn_blas']} / {_f(th['torch'], '{}')} | "
            f"{', '.join(tgt) or '–'} |")
    blas_rows = [r for r in report["cases"] if r.get("gemm_ideal_s")]
    if blas_rows:
        lines += ["", "## Matrix products (BLAS view)", "",
                  "FLOPs = the analytic count of the matrix products (forward, weight "
                  "gradients, hidden deltas; forward only for case 5). Reference = "
                  "SciPy's ?gemm on the same shapes, same threads, in this run, "
                  "timed in a " + _reference_method(blas_rows) + ". "
                  "GEMM-only s = FLOPs / reference rate: the time of the products "
                  "alone. Bound = competitor median / GEMM-only s, the largest ratio "
                  "skmlp could show if everything but the products were free. "
                  "Update-only s (where skmlp's step runs the optimizer's update as "
                  "a pass of its own: Adam, SGD with momentum) = skmlp's compiled "
                  "update loop alone over the case's parameters, times the fit's "
                  "steps; gather-only s (shuffled dense rows) = skmlp's gather loop "
                  "alone over an epoch's rows in random order, times the epochs; "
                  "check-only s (prediction) = scikit-learn's check_array alone on "
                  "the rows predicted, the input check skmlp's predict_proba and "
                  "scikit-learn's both run; floor bound = competitor median / "
                  "(GEMM-only s + update-only s + gather-only s + check-only s).", "",
                  "| case | dtype | GFLOP | reference GFLOP/s (threads) | GEMM-only s | "
                  "GFLOP/s skmlp / sklearn / torch | % of reference skmlp / sklearn / "
                  "torch | bound vs sklearn | bound vs torch | update-only s | "
                  "gather-only s | check-only s | floor bound vs sklearn / torch |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in blas_rows:
            c = row["contenders"]
            ref = row["blas_reference"]
            lines.append(
                f"| {row['case']} {row['name']} | {row['dtype']} | {row['flops'] / 1e9:.1f} | "
                f"{ref['gflops_median']:.1f} ({ref['threads']}) | {row['gemm_ideal_s']:.3g} | "
                + " / ".join(_f(c.get(k, {}).get("gflops"), "{:.1f}") for k in CONTENDERS)
                + " | " + " / ".join(_f(None if c.get(k, {}).get("blas_fraction") is None
                                        else 100 * c[k]["blas_fraction"], "{:.0f} %")
                                     for k in CONTENDERS)
                + f" | {_f(row['ratio_bound'].get('sklearn'), '{:.2f}')} | "
                f"{_f(row['ratio_bound'].get('torch'), '{:.2f}')} | "
                f"{_f(row.get('update_only', {}).get('seconds'), '{:.3g}')} | "
                f"{_f(row.get('gather_only', {}).get('seconds'), '{:.3g}')} | "
                f"{_f(row.get('input_check_only', {}).get('seconds'), '{:.3g}')} | "
                + " / ".join(_f(row.get("ratio_bound_floor", {}).get(k), "{:.2f}")
                             for k in ("sklearn", "torch")) + " |")
    if report.get("scaling"):
        lines += ["", "## Scaling (case 6, skmlp only)", ""] + scaling_table(report)
    lines += ["", "## Cases", ""]
    seen = set()
    for row in report["cases"]:
        if row["case"] in seen:
            continue
        seen.add(row["case"])
        notes = "; ".join(row["notes"])
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        lines.append(f"* **{row['case']} {row['title']}** — data: {row['data']}. "
                     f"Parameters: {params}. {notes + '. ' if notes else ''}"
                     f"PyTorch: {row['torch']}.")
    lines.append("")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(path + ".tmp", path)


def scaling_table(report):
    """Markdown rows of the scaling measurement(s) of a report."""
    names = [n for n, _ in SCALING_VARIANTS]
    lines = ["Wall time of the whole GridSearchCV (8 candidates x 5 folds + refit), "
             "median (min) s; speed-up = median n_jobs=1 / median variant "
             "(in brackets: the median of the per-repeat ratios).", "",
             "| dtype | " + " | ".join(f"{n} s" for n in names) + " | "
             + " | ".join(f"speed-up {n.split(' ', 1)[1]}" for n in names[1:])
             + " | refit s | load (1 min) | SciPy BLAS threads after |",
             "|" + "---|" * (2 * len(names) + 3)]
    quiet_lines = ["", "The same, over the quiet repeats only: those in which other "
                   f"processes used less than {QUIET_OTHERS} of a core (machine-wide CPU "
                   "time from /proc/stat minus this process's and its children's) during "
                   "both the n_jobs=1 run and the variant's run.", "",
                   "| dtype | " + " | ".join(f"speed-up {n.split(' ', 1)[1]} (quiet repeats)"
                                            for n in names[1:]) + " |",
                   "|" + "---|" * len(names)]
    for s in report["scaling"]:
        v = s["variants"]
        if any(n not in v for n in names):  # an older report's variants
            continue
        loads = s.get("loadavg_per_repeat") or [float("nan")]
        lines.append(
            f"| {s['dtype']} | " + " | ".join(_time_cell(v[n]) for n in names) + " | "
            + " | ".join(f"**{v[n]['speedup_vs_n_jobs_1']:.2f}** "
                         f"({np.median(v[n]['speedup_per_repeat']):.2f})" for n in names[1:])
            + f" | {np.median(v['n_jobs=1']['refit_s']):.3f} | "
            f"{min(loads):.1f}-{max(loads):.1f} | {s['scipy_blas_threads_after']} |")
        quiet_lines.append(f"| {s['dtype']} | " + " | ".join(
            (f"{v[n]['speedup_quiet']:.2f} ({len(v[n]['quiet_repeats'])} of "
             f"{len(v[n]['times'])})" if v[n].get("speedup_quiet") else
             f"– (0 of {len(v[n]['times'])})") for n in names[1:]) + " |")
    return lines + quiet_lines


def write_scaling_markdown(path, report):
    env = report["environment"]
    sb = env["blas"]["scipy_blas_used_by_skmlp"]
    probes = [p for s in report["scaling"] for p in s["contention_probes"]]
    lines = [
        "# skmlp: parallel model selection on one machine", "",
        f"Run {env['date_utc']} on {env['cpu_model']} ({env['cpu_count']} CPUs), "
        f"{report['duration_s'] / 60:.1f} min, {report['args']['repeats']} repeats "
        "of every variant, alternating. Produced by "
        f"`python benchmarks/run.py --cases scaling"
        f"{' --threads %d' % report['args']['threads'] if report['args']['threads'] else ''}"
        f" --repeats {report['args']['repeats']} --dtypes {report['args']['dtypes']}`; "
        "raw numbers in `scaling.json`.", "",
        f"* skmlp {env['versions']['skmlp']} (`{env['skmlp_file']}`, commit "
        f"{str(env['git_commit'])[:10]}{' + local changes' if env['git_dirty'] else ''}), "
        f"scikit-learn {env['versions']['scikit-learn']}, joblib "
        f"{env['versions'].get('joblib', '?')}, threadpoolctl {env['versions']['threadpoolctl']}",
        f"* SciPy's BLAS (skmlp's kernels): {sb['internal_api']} {sb['version']}, "
        f"{env['threads']['run']} thread(s) in this run (`--threads` "
        f"{env['threads']['--threads']}; BLAS default {env['threads']['blas_default']})",
        f"* load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in env['loadavg_start'])}, "
        f"at end {tuple(round(x, 2) for x in env['loadavg_end'])}; contention probes "
        f"(2-thread sgemm slower than 1-thread: another process holds a core): "
        f"{sum(p['contended'] for p in probes)} of {len(probes)}", "",
    ] + (["**QUICK smoke configuration: not the benchmark.**", ""]
         if report["args"]["quick"] else []) + scaling_table(report) + ["",
        "Case 6: " + "; ".join(report["scaling"][0]["case_notes"]) + ". Variants: "
        "`n_jobs=1`; `n_jobs=2` under `joblib.parallel_config(backend='threading')` and "
        "`'loky'` (joblib's default); and the search left at `n_jobs=None` inside "
        "`skmlp.parallel_config(n_jobs=2)` (threading, BLAS threads per fit = cores // 2).",
        "", "Regenerate: `python setup.py build_ext --inplace` then the command above "
        "(a few minutes; it writes only `scaling.json` and `scaling.md` in `--output`, "
        "default `benchmarks/results/`; `--render benchmarks/results/scaling.json` "
        "rewrites this page from the JSON). On a shared machine, more repeats give more "
        "quiet ones.", ""]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(path + ".tmp", path)


def write_json(path, report):
    with open(path + ".tmp", "w") as f:
        json.dump(report, f, indent=1, default=lambda o: o.tolist()
                  if hasattr(o, "tolist") else str(o))
    os.replace(path + ".tmp", path)


def restore_threads(threads):
    """Put every BLAS back to ``threads``; return what was found if it differed.

    (skmlp's per-fit thread limit is process-wide; concurrent fits under
    joblib's threading backend can leave it changed.)
    """
    found = {e["filepath"]: e["num_threads"] for e in threadpoolctl.threadpool_info()
             if e["user_api"] == "blas"}
    if all(n == threads for n in found.values()):
        return None
    threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    log(f"   !! BLAS thread counts changed to {found}; restored to {threads}")
    return found


def contention_probe(dtype=np.float32, threads=2):
    """SciPy sgemm (256x784)@(784x256) GFLOP/s at 1 thread and at ``threads``.

    On a shared machine another process on one core makes multi-threaded BLAS
    collapse (the threads wait for each other's time slices); a multi-threaded
    rate below the single-threaded one flags that.
    """
    call = [(0, 0, (256, 784), (784, 256), (256, 256))]
    one = time_gemm(call, dtype, 1, budget=0.1, trials=3)["gflops_median"]
    if threads == 1:
        return {"1": one, "contended": False, "loadavg": os.getloadavg()}
    many = time_gemm(call, dtype, threads, budget=0.1, trials=3)["gflops_median"]
    return {"1": one, str(threads): many, "contended": bool(many < one),
            "loadavg": os.getloadavg()}


def main(args):
    t_start = time.perf_counter()
    # (the scaling measurement is skmlp alone: no PyTorch import)
    with_torch = not args.no_torch and not args.scaling_only and get_torch() is not None
    info = threadpoolctl.threadpool_info()
    blas_default = int(_scipy_blas_entry(info).get("num_threads", 1))
    threads = args.threads or blas_default
    if args.threads:
        threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    env = environment(args, args.torch_threads if with_torch else None, with_torch)
    env["threads"]["run"] = threads
    log(f"skmlp from {skmlp.__file__} ({env['skmlp_source']}); BLAS threads {threads}; "
        f"torch {'on' if with_torch else 'off'}")
    report = {"schema": 1, "environment": env,
              "args": {k: v for k, v in vars(args).items() if k != "memory_worker"},
              "cases": [], "scaling": []}
    # Headline dense GEMM rate of SciPy's BLAS, per dtype, at the default threads.
    report["gemm_headline"] = {
        d: time_gemm([(0, 0, (256, 784), (784, 256), (256, 256))], np.dtype(d), threads,
                     budget=0.1 if args.quick else 0.25)
        for d in args.dtype_names}
    probe_threads = max(threads, blas_default, 2)
    report["contention_probes"] = [contention_probe(threads=probe_threads)]
    if args.scaling_only:
        for d in args.dtype_names:
            report["scaling"].append(run_scaling(build_case(6, d, args.quick, args.data_dir),
                                                 args))
            report["scaling"][-1]["blas_threads_leak"] = restore_threads(threads)
        env["loadavg_end"] = os.getloadavg()
        report["duration_s"] = time.perf_counter() - t_start
        os.makedirs(args.output, exist_ok=True)
        write_json(os.path.join(args.output, "scaling.json"), report)
        write_scaling_markdown(os.path.join(args.output, "scaling.md"), report)
        log(f"wrote {args.output}/scaling.json and scaling.md in "
            f"{report['duration_s']:.0f} s")
        return report
    for cid in args.case_ids:
        for d in args.dtype_names:
            spec = build_case(cid, d, args.quick, args.data_dir)
            if spec is None:
                continue
            report["cases"].append(run_case(spec, args, with_torch, threads))
            report["contention_probes"].append(
                dict(contention_probe(threads=probe_threads), after_case=cid, dtype=d))
            report["cases"][-1]["blas_threads_leak"] = restore_threads(threads)
            if cid == 6 and not args.no_scaling and d == args.dtype_names[-1]:
                report["scaling"].append(run_scaling(spec, args))
                report["scaling"][-1]["blas_threads_leak"] = restore_threads(threads)
            del spec
            gc.collect()
    env["loadavg_end"] = os.getloadavg()
    report["duration_s"] = time.perf_counter() - t_start
    os.makedirs(args.output, exist_ok=True)
    write_json(os.path.join(args.output, "latest.json"), report)
    write_markdown(os.path.join(args.output, "latest.md"), report)
    log(f"wrote {args.output}/latest.json and latest.md in {report['duration_s']:.0f} s")
    return report


def render(args):
    with open(args.render) as f:
        report = json.load(f)
    os.makedirs(args.output, exist_ok=True)
    if report["args"].get("scaling_only"):
        write_json(os.path.join(args.output, "scaling.json"), report)
        write_scaling_markdown(os.path.join(args.output, "scaling.md"), report)
        log(f"re-rendered {args.render} into {args.output}")
        return
    for row in report["cases"]:
        row["targets"] = check_targets(row)
    write_json(os.path.join(args.output, "latest.json"), report)
    write_markdown(os.path.join(args.output, "latest.md"), report)
    log(f"re-rendered {args.render} into {args.output}")


if __name__ == "__main__":
    if ARGS.render:
        render(ARGS)
    elif ARGS.memory_worker:
        memory_worker(ARGS.memory_worker)
    else:
        main(ARGS)
