"""Multilayer perceptrons trained by compiled kernels.

The estimators follow ``sklearn.neural_network`` (constructor, methods, fitted
attributes, warnings and the order in which random numbers are drawn), so that
the same ``random_state`` gives the same model. What differs is where the work
happens: the per-sample work runs in :mod:`skmlp._mlp_fast` with the GIL
released, one call per epoch (stochastic solvers) or per function evaluation
(L-BFGS).

All trainable parameters live in one vector ``_theta`` laid out as
``[W_0, b_0, W_1, b_1, ...]``; ``coefs_`` and ``intercepts_`` are views into it.
"""

# Design notes for the next reader:
# * ``Interval``/``StrOptions`` and ``_fit_context`` are how scikit-learn states
#   parameter domains; third-party estimators use them the same way. Everything
#   else comes from scikit-learn's public utilities.
# * The kernels trust their input: every array handed to them is validated,
#   C-contiguous and of the model's dtype (see ``_kernel_input``).

import math
import time
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, validate_data


from . import _mlp_fast
from . import _persistence
from ._interrupt import deferred_sigint
from ._threads import blas_threads_for, small_kernels_for

_STOCHASTIC_SOLVERS = ("sgd", "adam", "adagrad", "rmsprop", "adamw")

_ACTIVATION_CODES = {
    "identity": int(_mlp_fast.Activation.IDENTITY),
    "logistic": int(_mlp_fast.Activation.LOGISTIC),
    "tanh": int(_mlp_fast.Activation.TANH),
    "relu": int(_mlp_fast.Activation.RELU),
    "softmax": int(_mlp_fast.Activation.SOFTMAX),
    "exp": int(_mlp_fast.Activation.EXP),
    "leaky_relu": int(_mlp_fast.Activation.LEAKY_RELU),
    "prelu": int(_mlp_fast.Activation.PRELU),
}

_LOSS_CODES = {
    "squared_error": int(_mlp_fast.Loss.SQUARED_ERROR),
    "poisson": int(_mlp_fast.Loss.POISSON),
    "log_loss": int(_mlp_fast.Loss.LOG_LOSS),
    "binary_log_loss": int(_mlp_fast.Loss.BINARY_LOG_LOSS),
    "absolute_error": int(_mlp_fast.Loss.ABSOLUTE_ERROR),
    "huber": int(_mlp_fast.Loss.HUBER),
}

_SOLVER_CODES = {
    "sgd": int(_mlp_fast.Solver.SGD),
    "adam": int(_mlp_fast.Solver.ADAM),
    "adagrad": int(_mlp_fast.Solver.ADAGRAD),
    "rmsprop": int(_mlp_fast.Solver.RMSPROP),
    "adamw": int(_mlp_fast.Solver.ADAMW),
}

_WEIGHT_INITS = (
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform", "normal",
)

# Rows per block when the kernels walk a whole data set (predict, L-BFGS).
_BLOCK_ROWS = 1024

# Initial value of every PReLU slope (He et al., 2015).
_PRELU_INIT = 0.25

# scikit-learn's error for a fit that leaves non-finite weights.
_NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may"
    " contain large values and need to be preprocessed."
)


def _fit_label_binarizer(y):
    """``LabelBinarizer().fit(y)``, for validated targets ``y``.

    A 1-d array of integers or booleans is binary (at most two labels) or
    multiclass, and its classes are ``np.unique(y)``: the fitted attributes
    are set from those directly: about 30 microseconds, where
    ``LabelBinarizer.fit`` takes about 400 (its parameter validation,
    ``type_of_target``, and ``unique_labels``, which runs ``type_of_target``
    again), which counts in model selection's many short fits. Every other
    target goes through ``LabelBinarizer.fit`` itself.
    tests/test_sklearn_agreement.py compares the two.
    """
    lb = LabelBinarizer()
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.shape[0] > 0
            and y.dtype.kind in "biu"):
        return lb.fit(y)
    classes = np.unique(y)
    lb.y_type_ = "multiclass" if classes.shape[0] > 2 else "binary"
    lb.sparse_input_ = False
    lb.classes_ = classes
    return lb


def _accuracy(y_true, y_pred, sample_weight=None):
    """``accuracy_score(y_true, y_pred, sample_weight=sample_weight)``.

    Where its checks of the targets cannot fail and change nothing (1-D
    integer or boolean label arrays of one non-zero length, no weights), the
    mean of ``y_true == y_pred`` is computed directly, as accuracy_score
    computes it (``np.average`` of the same booleans): those checks (the
    targets' types, their unique values) take about 0.7 ms, twice the
    prediction of a few hundred rows, on every ``score`` of a
    cross-validation fold and every early-stopping epoch.
    """
    if (sample_weight is None
            and type(y_true) is np.ndarray and type(y_pred) is np.ndarray
            and y_true.ndim == 1 and y_true.shape == y_pred.shape
            and y_true.shape[0] > 0
            and y_true.dtype.kind in "biu" and y_pred.dtype.kind in "biu"):
        return float(np.average(y_true == y_pred))
    return accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _divergence(epoch_loss, params_finite):
    """What became non-finite in an epoch: 'parameters', 'training loss' or None."""
    if not params_finite:
        return "parameters"
    if not math.isfinite(epoch_loss):
        return "training loss"
    return None


def _layout(layer_units, prelu=False):
    """Offsets of each W_i, b_i and PReLU slope vector in the parameter vector.

    Returns (coef_off, bias_off, slope_off, size): ``coef_off[i]`` and
    ``bias_off[i]`` for layer i = 0 .. n_layers - 2, ``slope_off[l]`` for hidden
    layer l = 1 .. n_layers - 2 (0 elsewhere, and everywhere without PReLU).
    """
    coef_off, bias_off = [], []
    slope_off = np.zeros(len(layer_units), dtype=np.intp)
    pos = 0
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        coef_off.append(pos)
        pos += fan_in * fan_out
        bias_off.append(pos)
        pos += fan_out
    if prelu:
        for layer in range(1, len(layer_units) - 1):
            slope_off[layer] = pos
            pos += layer_units[layer]
    return (
        np.asarray(coef_off, dtype=np.intp),
        np.asarray(bias_off, dtype=np.intp),
        slope_off,
        pos,
    )


class _Workspace:
    """Buffers for ``rows`` rows of every non-input layer, allocated once.

    ``act`` and ``delta`` always; ``aux`` with PReLU or dropout (pre-activations
    or activations before dropout); ``mask`` with dropout.
    """

    def __init__(self, layer_units, rows, dtype, aux=False, mask=False):
        self.rows = rows
        self.act_off = np.zeros(len(layer_units), dtype=np.intp)
        pos = 0
        for layer, units in enumerate(layer_units[1:], start=1):
            self.act_off[layer] = pos
            pos += rows * units
        self.act = np.empty(pos, dtype=dtype)
        self.delta = np.empty(pos, dtype=dtype)
        self.aux = np.empty(pos if aux else 0, dtype=dtype)
        self.mask = np.empty(pos if mask else 0, dtype=dtype)


def _check_sparse_structure(X, name="X"):
    """X (dense: unchanged) as a CSR matrix in canonical form, its structure checked.

    The kernels index weights by the column indices and rows by ``indptr``, so
    a malformed matrix (an index out of range, a decreasing ``indptr``) would
    make them read outside the arrays: rejected here. Unsorted or duplicate
    indices and explicit zeros are valid but sum in a different order than
    the canonical matrix, so the model would differ in the last bits: they are
    canonicalised (in a copy; the caller's matrix is left alone).
    """
    if not sp.issparse(X):
        return X
    X = X.tocsr()
    try:
        X.check_format(full_check=True)
    except ValueError as exc:
        raise ValueError(f"{name} is a malformed sparse matrix: {exc}") from exc
    if not X.has_canonical_format or (X.data == 0).any():
        X = X.copy()
        X.sum_duplicates()
        X.eliminate_zeros()
    return X


def _check_fits_dtype(a, dtype, name):
    """Raise ValueError if a (finite, validated) holds values that overflow dtype.

    The model computes in one dtype: float32 parameters take float64 input
    cast to float32, where a value beyond float32's range would become inf.
    """
    dtype = np.dtype(dtype)
    data = a.data if sp.issparse(a) else np.asarray(a)
    if data.size == 0 or data.dtype.kind != "f" or data.dtype.itemsize <= dtype.itemsize:
        return
    limit = np.finfo(dtype).max
    largest = max(data.max(), -data.min())  # (no temporary copy of X)
    if largest > limit:
        raise ValueError(
            f"Input {name} contains a value too large for dtype('{dtype}') "
            f"(largest magnitude {largest:.6g}, the limit is {limit:.6g}), the "
            "dtype the model computes in. Scale the data, or fit the model on "
            "float64 data."
        )


def _check_finite_output(out, X, theta):
    """Raise ValueError if the network's outputs for X are not all finite.

    Used by the public prediction methods: an input far beyond the training
    data's scale can overflow the forward pass (inf - inf in a layer, NaN in
    softmax), which would otherwise come out as NaN probabilities or an
    arbitrary class. (Training-time scoring keeps scikit-learn's NaN score.)
    """
    bad = ~np.isfinite(out).all(axis=1)
    if not bad.any():
        return
    if not np.isfinite(theta).all():
        raise ValueError(
            "The model's parameters are not finite, so are its predictions; "
            "refit it (with scaled data or a smaller learning rate)."
        )
    data = X.data if sp.issparse(X) else X
    largest = np.max(np.abs(data)) if data.size else 0.0
    raise ValueError(
        f"The network's output is not finite for {int(bad.sum())} of {out.shape[0]} "
        f"samples of X: the forward pass overflowed dtype('{out.dtype}') (the "
        f"largest magnitude in X is {largest:.6g}). Scale X as the training data "
        "was scaled."
    )


def _kernel_input(X, dtype):
    """(X_dense, data, indices, indptr, is_sparse) as the kernels expect them."""
    empty_idx = np.empty(0, dtype=np.intp)
    if sp.issparse(X):
        X = X.tocsr()
        return (
            np.empty((0, 0), dtype=dtype),
            np.ascontiguousarray(X.data, dtype=dtype),
            np.ascontiguousarray(X.indices, dtype=np.intp),
            np.ascontiguousarray(X.indptr, dtype=np.intp),
            True,
        )
    return (
        np.ascontiguousarray(X, dtype=dtype),
        np.empty(0, dtype=dtype),
        empty_idx,
        empty_idx,
        False,
    )


def _check_sample_weight(sample_weight, n_samples, dtype):
    """Validated 1-D float sample weights of length n_samples, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Real):
        # (checked like an array: a scalar NaN, inf, 0 or negative weight is
        # as wrong as an array of them)
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    sample_weight = check_array(
        sample_weight,
        accept_sparse=False,
        ensure_2d=False,
        dtype=dtype,
        order="C",
        input_name="sample_weight",
    )
    if sample_weight.ndim != 1:
        raise ValueError(
            "Sample weights must be 1D array or scalar, got "
            f"{sample_weight.ndim}D array. Expected either a scalar value "
            f"or a 1D array of length {n_samples}."
        )
    if sample_weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape == {sample_weight.shape}, expected {(n_samples,)}!"
        )
    if np.any(sample_weight < 0):
        raise ValueError("Negative values in data passed to sample_weight.")
    if np.all(sample_weight == 0):
        raise ValueError(
            "Sample weights must contain at least one non-zero number."
        )
    return sample_weight


class _Optimizer:
    """State of a stochastic solver, in the parameter vector's layout.

    ``learning_rate`` is the current base step size, changed between epochs by
    the 'invscaling' and 'adaptive' schedules; ``t`` counts update steps.
    The schedules apply to every stochastic solver except 'adam', which keeps
    scikit-learn's behaviour (schedule ignored, 'adaptive' stops like
    'constant') so that existing scikit-learn configurations give the same
    model; 'adamw' with ``weight_decay=0`` is Adam with schedules.
    ``state_1`` is SGD's velocity, AdaGrad's sum of squared gradients,
    RMSProp's running average of squared gradients, or Adam's first moment;
    ``state_2`` is Adam's second moment.

    The solver and its hyperparameters are fixed when the optimizer is made
    (by ``fit``, or the first ``partial_fit``), as in scikit-learn:
    ``set_params`` between ``partial_fit`` calls does not change them.
    """

    def __init__(self, est, n_params, dtype):
        solver = self.solver = est.solver
        self.momentum = float(est.momentum)
        self.nesterov = bool(est.nesterovs_momentum)
        self.beta_1 = float(est.beta_1)
        self.beta_2 = float(est.beta_2)
        self.epsilon = float(est.epsilon)
        self.rho = float(est.rho)
        self.weight_decay = float(est.weight_decay)
        self.learning_rate_init = est.learning_rate_init
        self.learning_rate = float(est.learning_rate_init)
        self.lr_schedule = "constant" if solver == "adam" else est.learning_rate
        self.power_t = est.power_t
        self.t = 0
        self.state_1 = np.zeros(n_params, dtype=dtype)
        self.state_2 = np.zeros(
            n_params if solver in ("adam", "adamw") else 0, dtype=dtype
        )

    def kernel_params(self):
        """The optimizer tuple ``_mlp_fast._train_epoch`` takes."""
        return (
            _SOLVER_CODES[self.solver], self.learning_rate, self.momentum,
            self.nesterov, self.beta_1, self.beta_2, self.epsilon, self.rho,
            self.weight_decay,
        )

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        """Whether to stop; under 'adaptive', divide the step by 5 instead while it is > 1e-6."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class BaseMultilayerPerceptron(BaseEstimator, ABC):
    """Base class for MLP classification and regression.

    Warning: This class should not be used directly. Use derived classes instead.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [
            StrOptions({"identity", "logistic", "tanh", "relu", "leaky_relu", "prelu"})
        ],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adagrad", "rmsprop", "adamw"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "weight_init": [StrOptions(set(_WEIGHT_INITS))],
        "init_mean": [Interval(Real, None, None, closed="neither")],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "track_train_score": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        negative_slope,
        dropout,
        weight_init,
        init_mean,
        init_std,
        rho,
        weight_decay,
        track_train_score,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.weight_init = weight_init
        self.init_mean = init_mean
        self.init_std = init_std
        self.rho = rho
        self.weight_decay = weight_decay
        self.track_train_score = track_train_score

    # ------------------------------------------------------------------
    # The parameter vector and its views
    # ------------------------------------------------------------------

    def _has_prelu(self):
        return getattr(self, "_prelu", False)

    def __sklearn_is_fitted__(self):
        # Fitted means: has a network. (A fit that failed during validation
        # may have set ``classes_`` or ``n_features_in_``, which would make
        # check_is_fitted's default test pass; predict must still raise
        # NotFittedError then.)
        return getattr(self, "_theta", None) is not None or bool(
            getattr(self, "coefs_", None)
        )

    def _expected_views(self):
        """[(attribute, index, offset, shape)] of every view into ``_theta``."""
        units = self._layer_units
        views = []
        for i, (fi, fo) in enumerate(zip(units[:-1], units[1:])):
            views.append(("coefs_", i, self._coef_off[i], (fi, fo)))
            views.append(("intercepts_", i, self._bias_off[i], (fo,)))
        if self._has_prelu():
            for layer in range(1, len(units) - 1):
                views.append(
                    ("prelu_slopes_", layer - 1, self._slope_off[layer], (units[layer],))
                )
        return views

    def _bind_views(self):
        """Make ``coefs_``, ``intercepts_`` (and ``prelu_slopes_``) views of ``_theta``."""
        lists = {"coefs_": [], "intercepts_": []}
        if self._has_prelu():
            lists["prelu_slopes_"] = []
        for name, _, off, shape in self._expected_views():
            lists[name].append(self._theta[off : off + int(np.prod(shape))].reshape(shape))
        for name, value in lists.items():
            setattr(self, name, value)

    def _set_theta(self, theta, layer_units, prelu):
        self._layer_units = [int(u) for u in layer_units]
        self._prelu = bool(prelu)
        self._coef_off, self._bias_off, self._slope_off, size = _layout(
            self._layer_units, self._prelu
        )
        if theta.shape != (size,):
            raise ValueError(
                f"parameter vector has {theta.shape[0]} values, the layer sizes "
                f"{self._layer_units} need {size}"
            )
        self._theta = theta
        self._bind_views()

    def _check_n_features(self, X):
        """The kernels read X with the network's input width: make sure it is X's."""
        if X.shape[1] != self._layer_units[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the network's first layer "
                f"(coefs_[0] of shape {tuple(self.coefs_[0].shape)}) takes "
                f"{self._layer_units[0]}."
            )

    def _views_intact(self):
        theta = getattr(self, "_theta", None)
        if theta is None:
            return False
        base = theta.__array_interface__["data"][0]
        views = self._expected_views()
        names = {name for name, *_ in views}
        for name in names:
            if len(getattr(self, name, ())) != sum(v[0] == name for v in views):
                return False
        for name, index, off, shape in views:
            arr = getattr(self, name)[index]
            if (
                not isinstance(arr, np.ndarray)
                or arr.dtype != theta.dtype
                or arr.shape != shape
                or not arr.flags.c_contiguous
                or arr.__array_interface__["data"][0] != base + off * theta.itemsize
            ):
                return False
        return True

    def _sync_params(self):
        """Make ``_theta`` hold what ``coefs_``/``intercepts_`` (/``prelu_slopes_``) say.

        They are views of ``_theta``; a user (or a test) may replace them or
        their elements with other arrays. Then the parameter vector is rebuilt
        from them.
        """
        if self._views_intact():
            return
        coefs = [np.asarray(c) for c in self.coefs_]
        intercepts = [np.asarray(b) for b in self.intercepts_]
        if len(coefs) == 0 or len(coefs) != len(intercepts):
            raise ValueError("coefs_ and intercepts_ must be lists of equal length")
        for i, c in enumerate(coefs):
            if c.ndim != 2:
                raise ValueError(
                    f"coefs_[{i}] must be a 2-D array (fan_in, fan_out), got shape "
                    f"{c.shape}"
                )
        layer_units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            if c.ndim != 2 or c.shape[0] != layer_units[i] or b.shape != (c.shape[1],):
                raise ValueError(
                    f"coefs_[{i}] with shape {c.shape} and intercepts_[{i}] with "
                    f"shape {b.shape} do not form a layer of the network"
                )
        prelu = self._has_prelu()
        slopes = [np.asarray(a) for a in getattr(self, "prelu_slopes_", [])] if prelu else []
        if prelu and [a.shape for a in slopes] != [(u,) for u in layer_units[1:-1]]:
            raise ValueError(
                "prelu_slopes_ must hold one vector per hidden layer, of its size"
            )
        theta = getattr(self, "_theta", None)
        dtype = theta.dtype if theta is not None else np.result_type(*coefs, np.float32)
        if dtype not in (np.float32, np.float64):
            dtype = np.dtype(np.float64)
        coef_off, bias_off, slope_off, size = _layout(layer_units, prelu)
        new = np.empty(size, dtype=dtype)
        for c, b, co, bo in zip(coefs, intercepts, coef_off, bias_off):
            new[co : co + c.size] = c.ravel()
            new[bo : bo + b.size] = b
        for layer, a in enumerate(slopes, start=1):
            new[slope_off[layer] : slope_off[layer] + a.size] = a
        self._set_theta(new, layer_units, prelu)

    def __getstate__(self):
        if hasattr(self, "_theta") and hasattr(self, "coefs_"):
            self._sync_params()
        state = super().__getstate__()
        if "_theta" in state:
            # The views are rebuilt from the vector on unpickling.
            state = dict(state)
            for name in ("coefs_", "intercepts_", "prelu_slopes_"):
                state.pop(name, None)
        # skmlp's version and pickle format, checked by __setstate__
        return _persistence.add_marker(state)

    def __setstate__(self, state):
        # A pickle of another format raises, one of another skmlp version
        # warns, and a fitted state the kernels cannot trust (parameter vector
        # missing, of the wrong size or dtype, ...) raises ValueError here
        # rather than failing in predict.
        state = dict(state)
        name = type(self).__name__
        _persistence.check_marker(name, state)
        _persistence.check_fitted_state(name, state)
        super().__setstate__(state)
        if "_theta" in state:
            self._bind_views()

    # ------------------------------------------------------------------
    # Initialisation
    # ------------------------------------------------------------------

    def _dropout_rates(self, n_hidden):
        """Dropout rate of every layer (0 for the input and output layers)."""
        rates = np.zeros(n_hidden + 2, dtype=np.float64)
        dropout = self.dropout
        if np.ndim(dropout) == 0:
            rates[1:-1] = float(dropout)
        else:
            try:
                per_layer = np.asarray(dropout, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"dropout must be a rate or a sequence of rates, got {dropout!r}."
                ) from exc
            if per_layer.ndim != 1:
                raise ValueError(
                    "dropout must be one rate or a 1-D sequence of rates (one per "
                    f"hidden layer), got an array of shape {per_layer.shape}."
                )
            if per_layer.shape[0] != n_hidden:
                raise ValueError(
                    f"dropout has {per_layer.shape[0]} rates for {n_hidden} hidden "
                    "layers; give one rate, or one per hidden layer."
                )
            rates[1:-1] = per_layer
        if not np.all((rates >= 0) & (rates < 1)):
            raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout!r}.")
        return rates

    def _initialize(self, y, layer_units, dtype):
        # set all attributes, allocate weights etc. for first call
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)

        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        prelu = self.activation == "prelu"
        coef_off, bias_off, slope_off, size = _layout(layer_units, prelu)
        theta = np.empty(size, dtype=dtype)
        for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            coef_init, intercept_init = self._init_coef(fan_in, fan_out, dtype)
            theta[coef_off[i] : coef_off[i] + fan_in * fan_out] = coef_init.ravel()
            theta[bias_off[i] : bias_off[i] + fan_out] = intercept_init
        for layer in range(1, len(layer_units) - 1):
            if prelu:
                theta[slope_off[layer] : slope_off[layer] + layer_units[layer]] = (
                    _PRELU_INIT
                )
        self._set_theta(theta, layer_units, prelu)
        # the weights restored by early stopping (a copy only when needed)
        self._best_theta = theta.copy() if self.early_stopping else None
        # The dropout masks' generator, seeded from random_state only when
        # dropout is used (so the draws without dropout are scikit-learn's).
        self._dropout_rng = None
        self.history_ = {}

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in, fan_out, dtype):
        """Initial (W, b) of one layer, drawn from ``self._random_state``.

        * 'glorot_uniform' (scikit-learn's scheme): W and then b from
          U[-r, r], r = sqrt(factor / (fan_in + fan_out)), factor 2 for the
          logistic activation and 6 otherwise.
        * 'glorot_normal' (Xavier): W ~ N(0, 2 / (fan_in + fan_out)), b = 0.
        * 'he_uniform': W ~ U[-r, r], r = sqrt(6 / fan_in), b = 0.
        * 'he_normal': W ~ N(0, 2 / fan_in), b = 0.
        * 'uniform': W ~ U[-1, 1], b = 0.
        * 'normal': W ~ N(init_mean, init_std ** 2), b = 0.
        """
        rs = self._random_state
        scheme = self.weight_init
        shape = (fan_in, fan_out)
        intercept_init = np.zeros(fan_out)
        if scheme == "glorot_uniform":
            factor = 2.0 if self.activation == "logistic" else 6.0
            init_bound = np.sqrt(factor / (fan_in + fan_out))
            coef_init = rs.uniform(-init_bound, init_bound, shape)
            intercept_init = rs.uniform(-init_bound, init_bound, fan_out)
        elif scheme == "glorot_normal":
            coef_init = rs.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)
        elif scheme == "he_uniform":
            bound = np.sqrt(6.0 / fan_in)
            coef_init = rs.uniform(-bound, bound, shape)
        elif scheme == "he_normal":
            coef_init = rs.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif scheme == "uniform":
            coef_init = rs.uniform(-1.0, 1.0, shape)
        else:  # "normal"
            coef_init = rs.normal(self.init_mean, self.init_std, shape)
        return coef_init.astype(dtype, copy=False), intercept_init.astype(dtype, copy=False)

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    def _effective_sample_weight(self, y, sample_weight, incremental):
        """Sample weights the loss uses (the classifier folds in class weights)."""
        return sample_weight

    def _class_index(self, Y):
        """Class index per sample for single-output classification, else None."""
        return None

    def _fit(self, X, y, sample_weight=None, incremental=False, eval_set=None):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if any(
            not isinstance(h, Integral | np.integer) or isinstance(h, bool | np.bool_)
            for h in hidden_layer_sizes
        ):
            # (TypeError, as scikit-learn raises for these)
            raise TypeError(
                "hidden_layer_sizes must contain integers, got %s." % hidden_layer_sizes
            )
        if len(hidden_layer_sizes) and np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        dropout_rates = self._dropout_rates(len(hidden_layer_sizes))

        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )

        # Everything that can reject the call is checked before the model
        # changes: a failed partial_fit (or warm-started fit) leaves the
        # parameters, optimizer state and counters as they were.
        if self.early_stopping and incremental and self.solver in _STOCHASTIC_SOLVERS:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        X = _check_sparse_structure(X)
        n_samples, n_features = X.shape
        if first_pass:
            dtype = X.dtype
        else:
            self._sync_params()
            dtype = self._theta.dtype
        _check_fits_dtype(X, dtype, "X")
        if y.dtype.kind == "f":
            _check_fits_dtype(y, dtype, "y")
        sample_weight = _check_sample_weight(sample_weight, n_samples, dtype)
        eval_sets = self._validate_eval_set(eval_set, dtype)

        # Ensure y is 2D
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        sample_weight = self._effective_sample_weight(y, sample_weight, incremental)

        layer_units = [n_features] + [int(h) for h in hidden_layer_sizes] + [y.shape[1]]
        if not first_pass and (
            layer_units != self._layer_units
            or self._has_prelu() != (self.activation == "prelu")
        ):
            raise ValueError(
                f"The network has layer sizes {self._layer_units}"
                f"{' with PReLU' if self._has_prelu() else ''}; this call needs "
                f"{layer_units}{' with PReLU' if self.activation == 'prelu' else ''}. "
                "Fit from scratch (warm_start=False) to change hidden_layer_sizes, "
                "the activation between PReLU and others, or the number of outputs."
            )
        if self.early_stopping and self.solver in _STOCHASTIC_SOLVERS:
            self._check_validation_split(y)
        self.n_outputs_ = y.shape[1]

        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, dtype)
        if dropout_rates.any() and self._dropout_rng is None:
            self._dropout_rng = np.array(
                [self._random_state.randint(0, 2**63, dtype=np.int64)], dtype=np.uint64
            )
        if self.activation != "prelu":
            # (a warm start may switch between the activations without slopes)
            self._fitted_activation = self.activation

        if self.solver in _STOCHASTIC_SOLVERS:
            rows = 200 if self.batch_size == "auto" else self.batch_size
            with blas_threads_for(min(rows, n_samples), layer_units):
                self._fit_stochastic(
                    X, y, sample_weight, incremental, eval_sets, dropout_rates
                )
        elif self.solver == "lbfgs":
            with blas_threads_for(min(n_samples, _BLOCK_ROWS), layer_units):
                self._fit_lbfgs(X, y, sample_weight, eval_sets)

        if not np.isfinite(self._theta).all():
            raise ValueError(_NON_FINITE_WEIGHTS)
        return self

    def _check_validation_split(self, y):
        """Raise the error the early-stopping split would raise, before training.

        The split itself is drawn in ``_fit_stochastic`` (from the estimator's
        random state, in scikit-learn's order); this trial split, with its own
        generator, finds an impossible split (too few samples, a class with
        one member) while the model is still untouched.
        """
        stratify = y if is_classifier(self) and y.shape[1] == 1 else None
        _, idx_val = train_test_split(
            np.arange(y.shape[0]), test_size=self.validation_fraction,
            stratify=stratify, random_state=0,
        )
        if idx_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )

    def _validate_eval_set(self, eval_set, dtype=None):
        """[(X, Y, y_for_score, sample_weight=None)] in the model's terms."""
        if eval_set is None:
            return []
        if isinstance(eval_set, tuple) and len(eval_set) == 2:
            eval_set = [eval_set]
        result = []
        for i, pair in enumerate(eval_set):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise ValueError(
                    f"eval_set[{i}] must be a pair (X, y), got {type(pair).__name__}."
                )
            X_e, y_e = pair
            X_e = validate_data(
                self, X_e, accept_sparse=["csr", "csc"],
                dtype=(np.float64, np.float32), reset=False,
            )
            X_e = _check_sparse_structure(X_e, f"eval_set[{i}] X")
            if dtype is not None:
                _check_fits_dtype(X_e, dtype, f"eval_set[{i}] X")
            y_e = np.asarray(y_e) if not sp.issparse(y_e) else y_e.toarray()
            y_e = check_array(
                y_e, ensure_2d=False, dtype=None, ensure_min_samples=0,
                input_name=f"eval_set[{i}] y",
            )
            if y_e.shape[0] != X_e.shape[0]:
                raise ValueError(
                    f"eval_set[{i}]: X has {X_e.shape[0]} samples but y has "
                    f"{y_e.shape[0]}."
                )
            result.append((X_e, y_e))
        return result

    def _make_spec(self, dropout_rates=None, rows=None):
        """The kernels' description of the fitted network (dropout off by
        default), for kernel calls of up to ``rows`` rows (None: any)."""
        loss = self.loss
        if loss == "log_loss" and self.out_activation_ == "logistic":
            loss = "binary_log_loss"
        if dropout_rates is None:
            dropout_rates = np.zeros(len(self._layer_units))
        hidden = "prelu" if self._has_prelu() else getattr(
            self, "_fitted_activation", self.activation
        )
        spec = _mlp_fast.NetSpec(
            np.asarray(self._layer_units, dtype=np.intp),
            self._coef_off,
            self._bias_off,
            self._slope_off,
            np.ascontiguousarray(dropout_rates, dtype=np.float64),
            _ACTIVATION_CODES[hidden],
            _ACTIVATION_CODES[self.out_activation_],
            _LOSS_CODES[loss],
            float(self.negative_slope),
            float(getattr(self, "huber_delta", 1.0)),
        )
        if rows is not None:
            spec.small_kernels = small_kernels_for(rows, self._layer_units)
        return spec

    def _loss_grad_function(self, X, y, sample_weight, dropout_seed=None,
                            with_grad=True):
        """The compiled loss-and-gradient over (X, y), as a function of theta.

        ``y`` is the encoded target (n_samples, n_outputs); the returned
        function maps a parameter vector (any float dtype, the model's layout)
        to ``(loss, gradient)`` with the gradient in the model's dtype. Used by
        L-BFGS, for the loss of evaluation sets and by the gradient checks of
        the test-suite. With ``dropout_seed`` (an int) the dropout masks are
        drawn from that seed on every call: a fixed-mask objective.
        """
        self._check_n_features(X)
        dtype = self._theta.dtype
        X_parts = _kernel_input(X, dtype)
        Y = np.ascontiguousarray(np.asarray(y).reshape(X.shape[0], -1), dtype=dtype)
        if Y.shape[1] != self._layer_units[-1]:
            raise ValueError(
                f"y has {Y.shape[1]} outputs; the network has {self._layer_units[-1]}."
            )
        sw = (
            np.ascontiguousarray(sample_weight, dtype=dtype)
            if sample_weight is not None
            else np.empty(0, dtype=dtype)
        )
        rows = max(1, min(X.shape[0], _BLOCK_ROWS))
        dropout = dropout_seed is not None
        ws = _Workspace(
            self._layer_units, rows, dtype, aux=self._has_prelu() or dropout,
            mask=dropout,
        )
        if dropout:
            spec = self._make_spec(self._dropout_rates(len(self._layer_units) - 2),
                                   rows)
            rng = np.array([dropout_seed], dtype=np.uint64)
        else:
            spec = self._make_spec(rows=rows)
            rng = np.empty(0, dtype=np.uint64)
        alpha = float(self.alpha)

        def loss_grad(theta):
            theta = np.ascontiguousarray(theta, dtype=dtype)
            grad = np.empty_like(theta) if with_grad else np.empty(0, dtype=dtype)
            value = _mlp_fast._loss_grad(
                spec, alpha, *X_parts, Y, sw, theta, grad, rng, rows,
                ws.act_off, ws.act, ws.delta, ws.aux, ws.mask,
            )
            return value, grad

        return loss_grad

    # ------------------------------------------------------------------
    # Per-epoch history
    # ------------------------------------------------------------------

    def _history_sources(self, X_val, y_val, sw_val, eval_sets):
        """[(prefix, loss function, X, y for score, sample_weight)] to evaluate
        each epoch; the compiled loss functions (inputs converted, workspace
        allocated) are built once per fit."""
        sets = []
        if X_val is not None:
            sets.append(("val", X_val, y_val, sw_val))
        for i, (X_e, y_e) in enumerate(eval_sets):
            sets.append((f"eval_{i}", self._kernel_ready(X_e), y_e, None))
        return [
            (prefix, self._loss_grad_function(X_s, self._encode_target(y_s), sw_s,
                                              with_grad=False),
             X_s, y_s, sw_s)
            for prefix, X_s, y_s, sw_s in sets
        ]

    def _history_clock(self):
        """Start time for ``history_['time']``, continuing an earlier fit's clock."""
        times = (getattr(self, "history_", None) or {}).get("time")
        return time.perf_counter() - (times[-1] if times else 0.0)

    def _record_history(self, epoch_loss, learning_rate, start_time, X_train,
                        y_train_raw, sw_train, sources, val_score=None):
        if getattr(self, "history_", None) is None:
            self.history_ = {}
        h = self.history_
        # epochs and time count on across warm starts and partial_fit calls
        h.setdefault("epoch", []).append(h["epoch"][-1] + 1 if h["epoch"] else 1)
        h.setdefault("train_loss", []).append(float(epoch_loss))
        if self.track_train_score:
            h.setdefault("train_score", []).append(
                float(self._score(X_train, y_train_raw, sample_weight=sw_train))
            )
        for prefix, loss_fn, X_s, y_s, sw_s in sources:
            loss = loss_fn(self._theta)[0]
            h.setdefault(f"{prefix}_loss", []).append(float(loss))
            if prefix == "val" and val_score is not None:
                score = val_score
            else:
                score = self._score(X_s, y_s, sample_weight=sw_s)
            h.setdefault(f"{prefix}_score", []).append(float(score))
        h.setdefault("learning_rate", []).append(float(learning_rate))
        h.setdefault("time", []).append(time.perf_counter() - start_time)

    # ------------------------------------------------------------------
    # Solvers
    # ------------------------------------------------------------------

    def _fit_lbfgs(self, X, y, sample_weight, eval_sets):
        loss_grad = self._loss_grad_function(X, y, sample_weight)
        sources = self._history_sources(None, None, None, eval_sets)
        start_time = self._history_clock()
        y_raw = self._decode_target(y) if self.track_train_score else None
        X_k = self._kernel_ready(X) if self.track_train_score else None
        iteration = [0]

        def callback(intermediate_result):
            # history row per L-BFGS iteration, evaluated at its iterate
            iteration[0] += 1
            self._theta[:] = intermediate_result.x
            self.n_iter_ = iteration[0]
            self._record_history(
                intermediate_result.fun, np.nan, start_time, X_k, y_raw,
                sample_weight, sources,
            )

        opt_res = scipy.optimize.minimize(
            loss_grad,
            self._theta.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            callback=callback,
        )
        self.n_iter_ = min(opt_res.nit, self.max_iter)
        if opt_res.status != 0:
            msg = (
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status={opt_res.status}):\n{opt_res.message}\n"
            )
            if self.n_iter_ == self.max_iter:
                msg += (
                    "\nIncrease the number of iterations to improve the "
                    f"convergence (max_iter={self.max_iter})."
                )
            msg += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        self.loss_ = float(opt_res.fun)
        self._theta[:] = opt_res.x

    def _fit_stochastic(self, X, y, sample_weight, incremental, eval_sets,
                        dropout_rates):
        dtype = self._theta.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Optimizer(self, self._theta.shape[0], dtype)
        opt = self._optimizer

        # (partial_fit with early_stopping is rejected in _fit)
        early_stopping = self.early_stopping
        if early_stopping:
            # don't stratify in multilabel classification
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify,
                )
                sample_weight_train = sample_weight_val = None
            else:
                (X_train, X_val, y_train, y_val, sample_weight_train,
                 sample_weight_val) = train_test_split(
                    X, y, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify,
                )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            y_val = self._decode_target(y_val)
            X_val = self._kernel_ready(X_val)
            if getattr(self, "_best_theta", None) is None:
                # (a warm start that switched early stopping on)
                self._best_theta = self._theta.copy()
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)

        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        # Everything the epochs need, allocated once.
        X_parts = _kernel_input(X_train, dtype)
        sparse = X_parts[4]
        y_class = self._class_index(y_train)
        if y_class is None:
            Y = np.ascontiguousarray(y_train, dtype=dtype)
            y_class = np.empty(0, dtype=np.intp)
        else:
            # single-output classification: one index per sample, not a
            # dense one-hot matrix (the kernel writes each batch's rows)
            Y = np.empty((0, y_train.shape[1]), dtype=dtype)
        sw = (
            np.ascontiguousarray(sample_weight_train, dtype=dtype)
            if sample_weight_train is not None
            else np.empty(0, dtype=dtype)
        )
        gather = bool(self.shuffle)
        dropout = bool(dropout_rates.any())
        spec = self._make_spec(dropout_rates, batch_size)
        ws = _Workspace(
            self._layer_units, batch_size, dtype,
            aux=self._has_prelu() or dropout, mask=dropout,
        )
        grad = np.empty_like(self._theta)
        X_buf = np.empty(
            (batch_size, X.shape[1]) if gather and not sparse else (0, 0), dtype=dtype
        )
        Y_buf = np.empty(
            (batch_size if gather or y_class.shape[0] else 0, Y.shape[1]), dtype=dtype
        )
        sw_buf = np.empty(batch_size if gather and sw.shape[0] else 0, dtype=dtype)
        rng = self._dropout_rng if dropout else np.empty(0, dtype=np.uint64)
        alpha = float(self.alpha)

        # History bookkeeping (only what was asked for is computed).
        sources = self._history_sources(X_val, y_val, sample_weight_val, eval_sets)
        track_train = self.track_train_score
        X_train_k = self._kernel_ready(X_train) if track_train else None
        y_train_raw = self._decode_target(y_train) if track_train else None
        start_time = self._history_clock()

        diverged = None
        n_iter_before = self.n_iter_
        with deferred_sigint() as interrupt:
            try:
                self.n_iter_ = 0
                for it in range(self.max_iter):
                    if self.shuffle:
                        # Only the indices are shuffled; the kernel gathers the
                        # rows. (The same draws as sklearn.utils.shuffle,
                        # without its per-call validation.)
                        # (Shuffling sample_idx in place draws the same
                        # numbers and gives sample_idx[shuffled arange].)
                        self._random_state.shuffle(sample_idx)
                    if incremental:
                        # what the epoch changes, to undo it if it diverges
                        before = (self._theta.copy(), opt.state_1.copy(),
                                  opt.state_2.copy(), opt.t, rng.copy())
                    epoch_lr = opt.learning_rate
                    accumulated_loss, opt.t, params_finite = _mlp_fast._train_epoch(
                        spec, alpha, opt.kernel_params(), opt.t, *X_parts, Y,
                        y_class, sw, sample_idx, gather, batch_size, self._theta,
                        grad, opt.state_1, opt.state_2, rng, ws.act_off, ws.act,
                        ws.delta, ws.aux, ws.mask, X_buf, Y_buf, sw_buf,
                    )
                    diverged = _divergence(accumulated_loss, params_finite)
                    if diverged and incremental:
                        (self._theta[:], opt.state_1[:], opt.state_2[:], opt.t,
                         rng[:]) = before
                        self.n_iter_ = n_iter_before
                        self._raise_diverged(diverged, self.n_iter_ + 1, restored=True)

                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / X_train.shape[0]

                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                    self._update_no_improvement_count(
                        early_stopping, X_val, y_val, sample_weight_val
                    )
                    self._record_history(
                        self.loss_, epoch_lr, start_time, X_train_k, y_train_raw,
                        sample_weight_train, sources,
                        val_score=self.validation_scores_[-1] if early_stopping else None,
                    )
                    if diverged:
                        # Nothing is learnt from non-finite parameters:
                        # scikit-learn would run the remaining epochs on them.
                        break
                    # for learning rate that needs to be updated at iteration end
                    opt.iteration_ends(self.t_)

                    if self._no_improvement_count > self.n_iter_no_change:
                        # not better than last `n_iter_no_change` iterations by
                        # tol: stop or decrease learning rate
                        if early_stopping:
                            msg = (
                                "Validation score did not improve more than "
                                "tol=%f for %d consecutive epochs."
                                % (self.tol, self.n_iter_no_change)
                            )
                        else:
                            msg = (
                                "Training loss did not improve more than tol=%f"
                                " for %d consecutive epochs."
                                % (self.tol, self.n_iter_no_change)
                            )
                        if opt.trigger_stopping(msg, self.verbose):
                            break
                        self._no_improvement_count = 0

                    if incremental:
                        break

                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            "Stochastic Optimizer: Maximum iterations (%d) "
                            "reached and the optimization hasn't converged yet."
                            % self.max_iter,
                            ConvergenceWarning,
                        )
                    # a Ctrl-C during this epoch stops training here, with
                    # the epoch fully recorded
                    interrupt.deliver()
                interrupt.deliver()
            except KeyboardInterrupt:
                warnings.warn("Training interrupted by user.")

        if early_stopping:
            if diverged and not self.best_validation_score_ > -np.inf:
                # no epoch had a usable validation score: nothing to restore,
                # the non-finite parameters fail _fit's check (as in sklearn)
                return
            # restore best weights
            self._theta[:] = self._best_theta
            if diverged:
                warnings.warn(
                    f"Training diverged in epoch {self.n_iter_}: the {diverged} "
                    "became non-finite. Training stopped there; the weights "
                    "with the best validation score "
                    f"({self.best_validation_score_:.6g}) were restored. The "
                    "input data may contain large values and need to be "
                    "preprocessed.",
                    ConvergenceWarning,
                )
        elif diverged:
            self._raise_diverged(diverged, self.n_iter_)

    def _raise_diverged(self, what, epoch, restored=False):
        """scikit-learn's error for a fit that leaves non-finite weights.

        Also for an epoch whose loss overflowed while the parameters were still
        finite (scikit-learn would go on until they are not, or stop as
        'not improving' on an infinite loss): the message stays scikit-learn's,
        a note on the exception says what was non-finite.
        """
        err = ValueError(_NON_FINITE_WEIGHTS)
        if hasattr(err, "add_note"):  # Python >= 3.11
            err.add_note(
                f"The {what} became non-finite in epoch {epoch}; training "
                "stopped there."
            )
            if restored:
                err.add_note(
                    "partial_fit left the model as it was before this call "
                    "(parameters and optimizer state)."
                )
        raise err

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            # compute validation score (can be NaN), use that for stopping;
            # NaN for non-finite parameters (a classifier's predictions from
            # them would still give a meaningless accuracy)
            if np.isfinite(self._theta).all():
                val_score = self._score(X, y, sample_weight=sample_weight)
            else:
                val_score = np.nan
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_theta = self._theta.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        eval_set : list of (X, y) pairs, default=None
            Data sets whose loss and score are recorded in ``history_`` after
            every epoch (every iteration for 'lbfgs'); they do not influence
            training.

        Returns
        -------
        self : object
            Returns a trained MLP model.

        Raises
        ------
        ValueError
            If training leaves non-finite parameters (scikit-learn's "Solver
            produced non-finite parameter weights"). The stochastic solvers
            stop at the first epoch whose loss or parameters are non-finite;
            with ``early_stopping=True`` they restore the best weights instead
            and warn (ConvergenceWarning). See docs/reliability.md.
        """
        return self._fit(
            X, y, sample_weight=sample_weight, incremental=False, eval_set=eval_set
        )

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------

    def _kernel_ready(self, X):
        """X in the model's dtype (dense C-ordered or CSR), for the kernels."""
        dtype = self._theta.dtype
        if sp.issparse(X):
            X = X.tocsr()
            return X if X.dtype == dtype else X.astype(dtype)
        return np.ascontiguousarray(X, dtype=dtype)

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X, computed by the compiled forward pass."""
        if check_input:
            # dtype 'numeric' as in scikit-learn's predict: strings are rejected
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            X = _check_sparse_structure(X)
        self._sync_params()
        self._check_n_features(X)
        dtype = self._theta.dtype
        if check_input:
            _check_fits_dtype(X, dtype, "X")
        n_samples = X.shape[0]
        rows = max(1, min(n_samples, _BLOCK_ROWS))
        ws = _Workspace(self._layer_units, rows, dtype, aux=self._has_prelu())
        out = np.empty((n_samples, self._layer_units[-1]), dtype=dtype)
        if n_samples:
            with blas_threads_for(rows, self._layer_units):
                _mlp_fast._predict(
                    self._make_spec(rows=rows), *_kernel_input(X, dtype),
                    self._theta, rows, ws.act_off, ws.act, ws.aux, out,
                )
        if check_input:
            _check_finite_output(out, X, self._theta)
        return out

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Private score method without input validation."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_COMMON_PARAMS = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of units in each hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
            'prelu'}, default='relu'
        Activation of the hidden layers: ``x``, ``1 / (1 + exp(-x))``,
        ``tanh(x)``, ``max(x, 0)``, ``max(x, 0) + negative_slope * min(x, 0)``,
        or PReLU ``max(x, 0) + a * min(x, 0)`` with a slope ``a`` learned per
        hidden unit (initialised to 0.25, trained by the solver, not penalised
        by ``alpha``; see ``prelu_slopes_``).

    solver : {'lbfgs', 'sgd', 'adam', 'adagrad', 'rmsprop', 'adamw'}, \
            default='adam'
        Optimizer of the weights. With gradient ``g``, step size ``lr`` (the
        schedule's current value) and step count ``t``:

        - 'lbfgs': L-BFGS-B from SciPy over the whole parameter vector.
        - 'sgd': ``v = momentum * v - lr * g``; ``theta += v``, or with
          Nesterov's momentum ``theta += momentum * v - lr * g``.
        - 'adam' (scikit-learn's form): ``m = beta_1 m + (1 - beta_1) g``,
          ``s = beta_2 s + (1 - beta_2) g**2``,
          ``theta -= lr sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(s) + epsilon)``.
        - 'adagrad' (PyTorch's rule): ``s += g**2``;
          ``theta -= lr * g / (sqrt(s) + epsilon)``.
        - 'rmsprop' (PyTorch's rule, no momentum): ``s = rho s + (1 - rho) g**2``;
          ``theta -= lr * g / (sqrt(s) + epsilon)``.
        - 'adamw' (PyTorch's rule, decoupled weight decay):
          ``theta *= 1 - lr * weight_decay``; ``m``, ``s`` as Adam;
          ``theta -= lr / (1 - beta_1**t) * m / (sqrt(s) / sqrt(1 - beta_2**t) + epsilon)``.
          The decay applies to every parameter, as PyTorch's default does.

        PyTorch's defaults that differ from the shared parameters here:
        ``lr=0.01`` for AdaGrad and RMSProp (``learning_rate_init`` is 0.001)
        and ``eps=1e-10`` for AdaGrad (``epsilon`` is 1e-8).

    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2``, divided by the
        (weighted) number of samples in the batch like the data term.

    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is
        ``min(200, n_samples)``. Ignored by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step-size schedule of 'sgd', 'adagrad', 'rmsprop' and 'adamw' ('adam'
        ignores it, as in scikit-learn, so that scikit-learn's configurations
        give scikit-learn's model; use 'adamw' with ``weight_decay=0`` for Adam
        with a schedule): constant ``learning_rate_init``;
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, with ``t``
        the number of samples seen; or divided by 5 whenever
        ``n_iter_no_change`` epochs pass without improvement by ``tol``.

    learning_rate_init : float, default=0.001
        Initial step size of 'sgd' and 'adam'.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or iterations ('lbfgs').

    shuffle : bool, default=True
        Whether to shuffle the samples before each epoch.

    random_state : int, RandomState instance or None, default=None
        Source of the initial weights, the early-stopping split and the
        per-epoch shuffle, drawn in that order.

    tol : float, default=1e-4
        Improvement in training loss (or validation score) below which an
        epoch counts as no improvement; the gradient tolerance of 'lbfgs'.

    verbose : bool, default=False
        Print the loss after each epoch.

    warm_start : bool, default=False
        Start ``fit`` from the previous solution instead of a new one.

    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        single-output classification) and stop when its score has not improved
        by ``tol`` for ``n_iter_no_change`` epochs; the best weights are kept.

    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.

    beta_1 : float, default=0.9
        Decay rate of Adam's first-moment estimate, in [0, 1).

    beta_2 : float, default=0.999
        Decay rate of Adam's second-moment estimate, in [0, 1).

    epsilon : float, default=1e-8
        Adam's numerical-stability constant.

    n_iter_no_change : int or np.inf, default=10
        Epochs without improvement by ``tol`` before stopping.

    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.

    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs (PyTorch's default).

    dropout : float or array-like of shape (n_layers - 2,), default=0.0
        Dropout rate of the hidden layers (one rate, or one per hidden layer),
        in [0, 1). During training by a stochastic solver each hidden unit is
        zeroed with that probability and the kept ones are scaled by
        ``1 / (1 - rate)`` (inverted dropout); prediction uses every unit. The
        masks come from a generator seeded from ``random_state``, so a seeded
        fit is reproducible. 'lbfgs' ignores dropout.

    weight_init : {'glorot_uniform', 'glorot_normal', 'he_uniform', \
            'he_normal', 'uniform', 'normal'}, default='glorot_uniform'
        Initial weights of a layer with ``fan_in`` inputs and ``fan_out``
        outputs:

        - 'glorot_uniform' (scikit-learn's scheme): W and b from U[-r, r],
          ``r = sqrt(6 / (fan_in + fan_out))`` (``sqrt(2 / ...)`` for the
          logistic activation).
        - 'glorot_normal' (Xavier): W from N(0, 2 / (fan_in + fan_out)).
        - 'he_uniform': W from U[-r, r], ``r = sqrt(6 / fan_in)``.
        - 'he_normal': W from N(0, 2 / fan_in).
        - 'uniform': W from U[-1, 1].
        - 'normal': W from N(init_mean, init_std ** 2).

        Biases start at zero except with 'glorot_uniform'.

    init_mean : float, default=0.0
        Mean of the 'normal' initialisation.

    init_std : float, default=0.01
        Standard deviation of the 'normal' initialisation.

    rho : float, default=0.99
        RMSProp's decay of the squared-gradient average (PyTorch's ``alpha``).

    weight_decay : float, default=0.01
        AdamW's decoupled weight decay (PyTorch's default).

    track_train_score : bool, default=False
        Also record the score on the training data in ``history_`` after every
        epoch (one extra forward pass over the training data per epoch).
"""

_COMMON_ATTRIBUTES = """
    loss_ : float
        Loss after the last epoch (mean over the epoch's mini-batches) or at
        the L-BFGS solution.

    best_loss_ : float or None
        Minimum training loss reached by a stochastic solver; None under
        early stopping.

    loss_curve_ : list of shape (n_iter_,)
        Training loss of every epoch (stochastic solvers).

    validation_scores_ : list of shape (n_iter_,) or None
        Score on the held-out split after every epoch under early stopping,
        else None.

    best_validation_score_ : float or None
        Best of ``validation_scores_``, or None without early stopping.

    t_ : int
        Number of training samples seen by the solver.

    coefs_ : list of shape (n_layers - 1,)
        ``coefs_[i]`` is the weight matrix (units[i], units[i + 1]) of layer i;
        a view into the model's parameter vector.

    intercepts_ : list of shape (n_layers - 1,)
        ``intercepts_[i]`` is the bias vector of layer i + 1; a view into the
        model's parameter vector.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X had string column names.

    n_iter_ : int
        Number of epochs (or L-BFGS iterations) run.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Activation of the output layer.

    prelu_slopes_ : list of shape (n_layers - 2,)
        With ``activation='prelu'``: the learned slope of every hidden unit,
        one vector per hidden layer (views into the parameter vector).

    history_ : dict of lists
        One entry per epoch (per iteration for 'lbfgs'): 'epoch',
        'train_loss', 'train_score' (with ``track_train_score``), 'val_loss'
        and 'val_score' (the early-stopping split), 'eval_<i>_loss' and
        'eval_<i>_score' for every ``eval_set`` entry, 'learning_rate' and
        'time' (seconds of training). Epochs and time count on across warm
        starts and ``partial_fit`` calls. Losses include the L2 term,
        like ``loss_``. ``pandas.DataFrame(history_)`` makes a table of it.
"""

_NOTES = """
    Notes
    -----
    With the same ``random_state`` and parameters, skmlp computes the same
    model as ``sklearn.neural_network`` (to floating-point rounding): the same
    initial weights, shuffling order and update rules. The difference is where
    the work happens: forward pass, loss, backward pass and updates run in
    compiled kernels over BLAS, one call per epoch, with the GIL released.
    float32 input is trained and predicted in float32 throughout.

    References
    ----------
    Glorot, X. and Bengio, Y. (2010). Understanding the difficulty of training
    deep feedforward neural networks. AISTATS.

    Kingma, D. P. and Ba, J. (2014). Adam: A method for stochastic optimization.
    arXiv:1412.6980.
"""


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multilayer perceptron classifier trained by compiled kernels.

    Minimises the log-loss (softmax output for multiclass targets, logistic
    outputs for binary and multilabel targets) with L-BFGS, SGD or Adam.

    Parameters
    ----------"""
        + _COMMON_PARAMS
        + """
    class_weight : dict, 'balanced' or None, default=None
        Weight of each class in the loss, multiplied into ``sample_weight``:
        ``{label: weight}`` (classes not named weigh 1), or 'balanced' for
        ``n_samples / (n_classes * np.bincount(y))`` (counts weighted by
        ``sample_weight``). Single-output targets only. With 'balanced' the
        estimator has no ``partial_fit``: its batches need not show the class
        frequencies (compute the weights once with
        ``sklearn.utils.class_weight.compute_class_weight`` and pass a dict).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels.
"""
        + _COMMON_ATTRIBUTES
        + """
    See Also
    --------
    MLPRegressor : Multilayer perceptron regressor.
    sklearn.neural_network.MLPClassifier : The scikit-learn estimator this one
        reproduces.
"""
        + _NOTES
        + """
    Examples
    --------
    >>> from skmlp import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = make_classification(n_samples=100, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y,
    ...                                                     random_state=1)
    >>> clf = MLPClassifier(random_state=1, max_iter=300).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:1]).shape
    (1, 2)
    >>> clf.score(X_test, y_test) > 0.7
    True
"""
    )

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        negative_slope=0.01,
        dropout=0.0,
        weight_init="glorot_uniform",
        init_mean=0.0,
        init_std=0.01,
        rho=0.99,
        weight_decay=0.01,
        track_train_score=False,
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            negative_slope=negative_slope,
            dropout=dropout,
            weight_init=weight_init,
            init_mean=init_mean,
            init_std=init_std,
            rho=rho,
            weight_decay=weight_decay,
            track_train_score=track_train_score,
        )
        self.class_weight = class_weight

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def _encode_target(self, y):
        """Labels as the output layer's targets (n_samples, n_outputs)."""
        if self._label_binarizer.y_type_ != "multilabel-indicator":
            unseen = np.setdiff1d(unique_labels(y), self.classes_)
            if len(unseen):
                raise ValueError(
                    f"y has labels {unseen} that the model was not trained on; "
                    f"its classes are {self.classes_}."
                )
        Y = self._label_binarizer.transform(y)
        return Y.toarray() if sp.issparse(Y) else Y

    def _class_index(self, Y):
        """Each sample's output column (binary: its 0/1 target), or None if multilabel."""
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return None
        if Y.shape[1] == 1:
            return np.ascontiguousarray(Y[:, 0], dtype=np.intp)
        return np.ascontiguousarray(np.argmax(Y, axis=1), dtype=np.intp)

    def _decode_target(self, Y):
        """Output-layer targets back to labels."""
        if Y.shape[1] == 1:
            Y = Y.ravel()
        return self._label_binarizer.inverse_transform(Y)

    def _effective_sample_weight(self, y, sample_weight, incremental):
        """sample_weight times the weight of each sample's class."""
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets.")
        if isinstance(self.class_weight, dict):
            self._check_class_weight_dict()
        labels = self._decode_target(y)
        with np.errstate(divide="ignore"):
            weights = compute_class_weight(
                self.class_weight, classes=self.classes_, y=labels,
                sample_weight=sample_weight,
            )
        # a class whose samples all weigh 0 gets an infinite 'balanced' weight;
        # its samples keep weight 0
        weights = np.where(np.isfinite(weights), weights, 0.0)
        per_sample = weights[np.searchsorted(self.classes_, labels)]
        dtype = self._theta.dtype if hasattr(self, "_theta") else (
            sample_weight.dtype if sample_weight is not None else np.float64
        )
        if sample_weight is not None:
            dtype = sample_weight.dtype
            per_sample = sample_weight * per_sample
        if not np.any(per_sample):
            raise ValueError(
                "class_weight (with sample_weight) gives every sample weight 0: "
                f"class_weight={self.class_weight!r}, classes in y: "
                f"{unique_labels(labels)}."
            )
        return per_sample.astype(dtype)

    def _check_class_weight_dict(self):
        """A class_weight dict names known classes and gives finite weights >= 0."""
        unknown = [label for label in self.class_weight if label not in set(self.classes_)]
        if unknown:
            raise ValueError(
                f"class_weight has labels {unknown} that are not classes; the "
                f"classes are {self.classes_}."
            )
        for label, weight in self.class_weight.items():
            if (
                not isinstance(weight, Real)
                or isinstance(weight, bool | np.bool_)
                or not np.isfinite(weight)
                or weight < 0
            ):
                raise ValueError(
                    f"class_weight[{label!r}] must be a finite number >= 0, got "
                    f"{weight!r}."
                )

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # incremental  warm_start  classes_ defined  action
        #     0            0             0           define classes_
        #     0            1             0           define classes_
        #     0            0             1           redefine classes_
        #     0            1             1           check compatible (warm start)
        #     1            1             1           check compatible (warm start)
        #     1            0             1           check compatible (last fit)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = _fit_label_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )

        # bool keeps float32 training in float32 (converted in the kernel call)
        return X, self._binarize(y)

    def _binarize(self, y):
        """``self._label_binarizer.transform(y).astype(bool)``, for labels of ``classes_``.

        Single-label targets are encoded directly from each label's index in the
        sorted ``classes_`` (what ``label_binarize`` computes, in a few tens of
        microseconds instead of about a millisecond of validation that holds the
        GIL: it counted in parallel searches). Multilabel targets go through the
        LabelBinarizer.
        """
        lb = self._label_binarizer
        if lb.y_type_ not in ("binary", "multiclass") or lb.sparse_output:
            return lb.transform(y).astype(bool)
        index = np.searchsorted(self.classes_, y)
        if len(self.classes_) <= 2:
            # one column: the second class (all False with a single class)
            return (index == 1).reshape(-1, 1)
        Y = np.zeros((index.shape[0], len(self.classes_)), dtype=bool)
        Y[np.arange(index.shape[0]), index] = True
        return Y

    def predict(self, X):
        """Predict using the multilayer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if self._label_binarizer.y_type_ == "multiclass" and y_pred.ndim == 2:
            # LabelBinarizer.inverse_transform's multiclass case, without its checks
            return self.classes_.take(y_pred.argmax(axis=1), mode="clip")
        return self._label_binarizer.inverse_transform(y_pred)

    def score(self, X, y, sample_weight=None):
        """Return the mean accuracy on the given test data and labels.

        As scikit-learn's ``ClassifierMixin.score``: ``accuracy_score(y,
        self.predict(X), sample_weight=sample_weight)`` (subset accuracy for
        multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels for `X`.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean accuracy of ``self.predict(X)`` w.r.t. `y`.
        """
        return _accuracy(y, self.predict(X), sample_weight=sample_weight)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=_accuracy
        )

    def _check_partial_fit(self):
        self._check_solver()
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise AttributeError(
                "partial_fit is not available with class_weight='balanced': "
                "mini-batches need not show the class frequencies. Compute the "
                "weights once with sklearn.utils.class_weight.compute_class_weight "
                "and pass them as a dict."
            )
        return True

    @available_if(lambda est: est._check_partial_fit())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        classes : array of shape (n_classes,), default=None
            All classes the calls to partial_fit will see. Required on the
            first call, ignored afterwards if equal to ``classes_``.

        Returns
        -------
        self : object
            Trained MLP model.

        Raises
        ------
        ValueError
            If the epoch makes the loss or the parameters non-finite
            (scikit-learn's "Solver produced non-finite parameter weights");
            the model is then left as it was before the call.
        """
        first_call = self._check_partial_fit_first_call(classes)
        if first_call:
            self._label_binarizer = LabelBinarizer()
            try:
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            except BaseException:
                self._forget_classes()
                raise
        try:
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)
        except BaseException:
            if first_call and not hasattr(self, "coefs_"):
                # a failed first call leaves the estimator as unfitted as it was
                self._forget_classes()
            raise

    def _forget_classes(self):
        for name in ("classes_", "_label_binarizer"):
            if name in self.__dict__:
                delattr(self, name)

    def _check_partial_fit_first_call(self, classes):
        """Set ``classes_`` on the first call to partial_fit; True if it was the first."""
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    raise ValueError(
                        "`classes=%r` is not the same as on last call "
                        "to partial_fit, was: %r" % (classes, self.classes_)
                    )
            else:
                self.classes_ = unique_labels(classes)
                return True
        return False

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``np.log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class (column order of ``classes_``).
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # class weights are defined for single-output targets only
        tags.classifier_tags.multi_label = self.class_weight is None
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multilayer perceptron regressor trained by compiled kernels.

    Minimises the squared error (identity output) or the Poisson deviance
    (exponential output) with L-BFGS, SGD or Adam.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, \
            default='squared_error'
        Per sample, with ``r = p - y`` and the mean over outputs:
        ``0.5 * mean(r ** 2)``; half the Poisson deviance
        ``sum(y * log(y / p) - y + p)`` with ``p = exp(z)``; ``mean(|r|)``; or
        Huber's ``mean(h(r))`` with ``h(r) = r ** 2 / 2`` for
        ``|r| <= huber_delta`` and ``huber_delta * (|r| - huber_delta / 2)``
        beyond. As in scikit-learn, the training gradient of the regression
        losses is that of the sum over outputs.
"""
        + _COMMON_PARAMS
        + """
    huber_delta : float, default=1.0
        Threshold of the Huber loss (PyTorch's ``delta``).
"""
        + """
    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """
    See Also
    --------
    MLPClassifier : Multilayer perceptron classifier.
    sklearn.neural_network.MLPRegressor : The scikit-learn estimator this one
        reproduces.
"""
        + _NOTES
        + """
    Examples
    --------
    >>> from skmlp import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = make_regression(n_samples=200, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)
    >>> regr = MLPRegressor(random_state=1, max_iter=2000, tol=0.1)
    >>> regr = regr.fit(X_train, y_train)
    >>> regr.predict(X_test[:2]).shape
    (2,)
    >>> regr.score(X_test, y_test) > 0.9
    True
"""
    )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        negative_slope=0.01,
        dropout=0.0,
        weight_init="glorot_uniform",
        init_mean=0.0,
        init_std=0.01,
        rho=0.99,
        weight_decay=0.01,
        track_train_score=False,
        huber_delta=1.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            negative_slope=negative_slope,
            dropout=dropout,
            weight_init=weight_init,
            init_mean=init_mean,
            init_std=init_std,
            rho=rho,
            weight_decay=weight_decay,
            track_train_score=track_train_score,
        )
        self.huber_delta = huber_delta

    def predict(self, X):
        """Predict using the multilayer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    def _encode_target(self, y):
        """Targets as the output layer's (n_samples, n_outputs)."""
        y = np.asarray(y)
        return y.reshape(y.shape[0], -1)

    def _decode_target(self, Y):
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for "
                "Poisson regression."
            )
        return X, y

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.

        Raises
        ------
        ValueError
            If the epoch makes the loss or the parameters non-finite
            (scikit-learn's "Solver produced non-finite parameter weights");
            the model is then left as it was before the call.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
