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
from sklearn.utils import check_random_state, column_or_1d, shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _mlp_fast

_STOCHASTIC_SOLVERS = ("sgd", "adam")

_ACTIVATION_CODES = {
    "identity": int(_mlp_fast.Activation.IDENTITY),
    "logistic": int(_mlp_fast.Activation.LOGISTIC),
    "tanh": int(_mlp_fast.Activation.TANH),
    "relu": int(_mlp_fast.Activation.RELU),
    "softmax": int(_mlp_fast.Activation.SOFTMAX),
    "exp": int(_mlp_fast.Activation.EXP),
}

_LOSS_CODES = {
    "squared_error": int(_mlp_fast.Loss.SQUARED_ERROR),
    "poisson": int(_mlp_fast.Loss.POISSON),
    "log_loss": int(_mlp_fast.Loss.LOG_LOSS),
    "binary_log_loss": int(_mlp_fast.Loss.BINARY_LOG_LOSS),
}

_SOLVER_CODES = {"sgd": int(_mlp_fast.Solver.SGD), "adam": int(_mlp_fast.Solver.ADAM)}

# Rows per block when the kernels walk a whole data set (predict, L-BFGS).
_BLOCK_ROWS = 1024


def _layout(layer_units):
    """Offsets of each W_i and b_i in the parameter vector; returns (coef_off, bias_off, size)."""
    coef_off, bias_off = [], []
    pos = 0
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        coef_off.append(pos)
        pos += fan_in * fan_out
        bias_off.append(pos)
        pos += fan_out
    return (
        np.asarray(coef_off, dtype=np.intp),
        np.asarray(bias_off, dtype=np.intp),
        pos,
    )


def _workspace(layer_units, rows, dtype):
    """A flat buffer holding ``rows`` rows of every non-input layer, and the offsets."""
    act_off = np.zeros(len(layer_units), dtype=np.intp)
    pos = 0
    for layer, units in enumerate(layer_units[1:], start=1):
        act_off[layer] = pos
        pos += rows * units
    return np.empty(pos, dtype=dtype), act_off


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
        return np.full(n_samples, sample_weight, dtype=dtype)
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

    ``learning_rate`` is the current step size of SGD (changed between epochs
    by the 'invscaling' and 'adaptive' schedules) and the base step size of
    Adam; ``t`` counts Adam's updates for its bias correction.
    """

    def __init__(self, solver, n_params, dtype, learning_rate_init, lr_schedule,
                 power_t):
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule if solver == "sgd" else "constant"
        self.power_t = power_t
        self.t = 0
        self.state_1 = np.zeros(n_params, dtype=dtype)
        self.state_2 = np.zeros(n_params if solver == "adam" else 0, dtype=dtype)

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
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
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

    # ------------------------------------------------------------------
    # The parameter vector and its views
    # ------------------------------------------------------------------

    def _bind_views(self):
        """Make ``coefs_`` and ``intercepts_`` views of ``_theta``."""
        theta = self._theta
        units = self._layer_units
        self.coefs_ = [
            theta[c : c + fi * fo].reshape(fi, fo)
            for c, fi, fo in zip(self._coef_off, units[:-1], units[1:])
        ]
        self.intercepts_ = [
            theta[b : b + fo] for b, fo in zip(self._bias_off, units[1:])
        ]

    def _set_theta(self, theta, layer_units):
        self._layer_units = [int(u) for u in layer_units]
        self._coef_off, self._bias_off, size = _layout(self._layer_units)
        if theta.shape != (size,):
            raise ValueError(
                f"parameter vector has {theta.shape[0]} values, the layer sizes "
                f"{self._layer_units} need {size}"
            )
        self._theta = theta
        self._bind_views()

    def _views_intact(self):
        theta = getattr(self, "_theta", None)
        if theta is None:
            return False
        base = theta.__array_interface__["data"][0]
        size = theta.itemsize
        views = list(zip(self.coefs_, self._coef_off)) + list(
            zip(self.intercepts_, self._bias_off)
        )
        if len(self.coefs_) != len(self._coef_off) or len(self.intercepts_) != len(
            self._bias_off
        ):
            return False
        expected = [(fi, fo) for fi, fo in zip(self._layer_units[:-1], self._layer_units[1:])]
        expected += [(fo,) for fo in self._layer_units[1:]]
        for (arr, off), shape in zip(views, expected):
            if (
                not isinstance(arr, np.ndarray)
                or arr.dtype != theta.dtype
                or arr.shape != shape
                or not arr.flags.c_contiguous
                or arr.__array_interface__["data"][0] != base + off * size
            ):
                return False
        return True

    def _sync_params(self):
        """Make ``_theta`` hold what ``coefs_``/``intercepts_`` say.

        ``coefs_`` and ``intercepts_`` are views of ``_theta``; a user (or a
        test) may replace them or their elements with other arrays. Then the
        parameter vector is rebuilt from them.
        """
        if self._views_intact():
            return
        coefs = [np.asarray(c) for c in self.coefs_]
        intercepts = [np.asarray(b) for b in self.intercepts_]
        if len(coefs) == 0 or len(coefs) != len(intercepts):
            raise ValueError("coefs_ and intercepts_ must be lists of equal length")
        layer_units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            if c.ndim != 2 or c.shape[0] != layer_units[i] or b.shape != (c.shape[1],):
                raise ValueError(
                    f"coefs_[{i}] with shape {c.shape} and intercepts_[{i}] with "
                    f"shape {b.shape} do not form a layer of the network"
                )
        theta = getattr(self, "_theta", None)
        dtype = theta.dtype if theta is not None else np.result_type(*coefs, np.float32)
        if dtype not in (np.float32, np.float64):
            dtype = np.dtype(np.float64)
        coef_off, bias_off, size = _layout(layer_units)
        new = np.empty(size, dtype=dtype)
        for c, b, co, bo in zip(coefs, intercepts, coef_off, bias_off):
            new[co : co + c.size] = c.ravel()
            new[bo : bo + b.size] = b
        self._set_theta(new, layer_units)

    def __getstate__(self):
        if hasattr(self, "_theta") and hasattr(self, "coefs_"):
            self._sync_params()
        state = super().__getstate__()
        if "_theta" in state:
            # The views are rebuilt from the vector on unpickling.
            state = dict(state)
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_theta" in state:
            self._bind_views()

    # ------------------------------------------------------------------
    # Initialisation
    # ------------------------------------------------------------------

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

        _, _, size = _layout(layer_units)
        theta = np.empty(size, dtype=dtype)
        coef_off, bias_off, _ = _layout(layer_units)
        for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            coef_init, intercept_init = self._init_coef(fan_in, fan_out, dtype)
            theta[coef_off[i] : coef_off[i] + fan_in * fan_out] = coef_init.ravel()
            theta[bias_off[i] : bias_off[i] + fan_out] = intercept_init
        self._set_theta(theta, layer_units)
        self._best_theta = theta.copy()

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
        # Glorot et al.'s uniform scheme, as scikit-learn draws it: the weight
        # matrix first, then the biases, from U[-b, b] with
        # b = sqrt(factor / (fan_in + fan_out)), factor 2 for logistic, else 6.
        factor = 2.0 if self.activation == "logistic" else 6.0
        init_bound = np.sqrt(factor / (fan_in + fan_out))
        coef_init = self._random_state.uniform(-init_bound, init_bound, (fan_in, fan_out))
        intercept_init = self._random_state.uniform(-init_bound, init_bound, fan_out)
        return coef_init.astype(dtype, copy=False), intercept_init.astype(dtype, copy=False)

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if len(hidden_layer_sizes) and np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        if any(not isinstance(h, Integral | np.integer) for h in hidden_layer_sizes):
            raise ValueError(
                "hidden_layer_sizes must contain integers, got %s." % hidden_layer_sizes
            )

        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if first_pass:
            dtype = X.dtype
        else:
            self._sync_params()
            dtype = self._theta.dtype
        sample_weight = _check_sample_weight(sample_weight, n_samples, dtype)

        # Ensure y is 2D
        if y.ndim == 1:
            y = y.reshape((-1, 1))

        layer_units = [n_features] + [int(h) for h in hidden_layer_sizes] + [y.shape[1]]
        if not first_pass and layer_units != self._layer_units:
            raise ValueError(
                f"The network has layer sizes {self._layer_units}; this call needs "
                f"{layer_units}. Fit from scratch (warm_start=False) to change "
                "hidden_layer_sizes or the number of outputs."
            )
        self.n_outputs_ = y.shape[1]

        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, dtype)

        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, sample_weight, incremental)
        elif self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight)

        if not np.isfinite(self._theta).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _net_codes(self):
        loss = self.loss
        if loss == "log_loss" and self.out_activation_ == "logistic":
            loss = "binary_log_loss"
        return (
            _ACTIVATION_CODES[self.activation],
            _ACTIVATION_CODES[self.out_activation_],
            _LOSS_CODES[loss],
        )

    def _loss_grad_function(self, X, y, sample_weight):
        """The compiled loss-and-gradient over (X, y), as a function of theta.

        ``y`` is the encoded target (n_samples, n_outputs); the returned
        function maps a parameter vector (any float dtype, the model's layout)
        to ``(loss, gradient)`` with the gradient in the model's dtype. Used by
        L-BFGS and by the gradient checks of the test-suite.
        """
        dtype = self._theta.dtype
        X_parts = _kernel_input(X, dtype)
        Y = np.ascontiguousarray(np.asarray(y).reshape(X.shape[0], -1), dtype=dtype)
        sw = (
            np.ascontiguousarray(sample_weight, dtype=dtype)
            if sample_weight is not None
            else np.empty(0, dtype=dtype)
        )
        rows = max(1, min(X.shape[0], _BLOCK_ROWS))
        act, act_off = _workspace(self._layer_units, rows, dtype)
        delta = np.empty_like(act)
        hidden, out, loss = self._net_codes()
        units = np.asarray(self._layer_units, dtype=np.intp)

        def loss_grad(theta):
            theta = np.ascontiguousarray(theta, dtype=dtype)
            grad = np.empty_like(theta)
            value = _mlp_fast._loss_grad(
                *X_parts, Y, sw, theta, grad, units, self._coef_off,
                self._bias_off, act_off, hidden, out, loss, float(self.alpha),
                rows, act, delta,
            )
            return value, grad

        return loss_grad

    def _fit_lbfgs(self, X, y, sample_weight):
        loss_grad = self._loss_grad_function(X, y, sample_weight)
        opt_res = scipy.optimize.minimize(
            loss_grad,
            self._theta.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
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

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        dtype = self._theta.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Optimizer(
                self.solver, self._theta.shape[0], dtype, self.learning_rate_init,
                self.learning_rate, self.power_t,
            )
        opt = self._optimizer

        # early_stopping in partial_fit doesn't make sense
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
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
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            X_val = self._kernel_ready(X_val)
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
        Y = np.ascontiguousarray(y_train, dtype=dtype)
        sw = (
            np.ascontiguousarray(sample_weight_train, dtype=dtype)
            if sample_weight_train is not None
            else np.empty(0, dtype=dtype)
        )
        gather = bool(self.shuffle)
        act, act_off = _workspace(self._layer_units, batch_size, dtype)
        delta = np.empty_like(act)
        grad = np.empty_like(self._theta)
        X_buf = np.empty(
            (batch_size, X.shape[1]) if gather and not sparse else (0, 0), dtype=dtype
        )
        Y_buf = np.empty((batch_size if gather else 0, Y.shape[1]), dtype=dtype)
        sw_buf = np.empty(batch_size if gather and sw.shape[0] else 0, dtype=dtype)
        units = np.asarray(self._layer_units, dtype=np.intp)
        hidden, out, loss = self._net_codes()
        solver = _SOLVER_CODES[self.solver]

        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                if self.shuffle:
                    # Only the indices are shuffled; the kernel gathers the rows.
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                accumulated_loss, opt.t = _mlp_fast._train_epoch(
                    *X_parts, Y, sw, sample_idx, gather, batch_size,
                    self._theta, grad, units, self._coef_off, self._bias_off,
                    act_off, hidden, out, loss, float(self.alpha),
                    solver, opt.learning_rate, float(self.momentum),
                    bool(self.nesterovs_momentum), float(self.beta_1),
                    float(self.beta_2), float(self.epsilon), opt.t,
                    opt.state_1, opt.state_2, act, delta, X_buf, Y_buf, sw_buf,
                )

                self.n_iter_ += 1
                self.loss_ = accumulated_loss / X_train.shape[0]

                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                self._update_no_improvement_count(
                    early_stopping, X_val, y_val, sample_weight_val
                )
                # for learning rate that needs to be updated at iteration end
                opt.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    # not better than last `n_iter_no_change` iterations by tol
                    # stop or decrease learning rate
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
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            # restore best weights
            self._theta[:] = self._best_theta

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            # compute validation score (can be NaN), use that for stopping
            val_score = self._score(X, y, sample_weight=sample_weight)
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
    def fit(self, X, y, sample_weight=None):
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

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

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
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32),
                reset=False,
            )
        self._sync_params()
        dtype = self._theta.dtype
        n_samples = X.shape[0]
        rows = max(1, min(n_samples, _BLOCK_ROWS))
        act, act_off = _workspace(self._layer_units, rows, dtype)
        out = np.empty((n_samples, self._layer_units[-1]), dtype=dtype)
        hidden, out_act, _ = self._net_codes()
        if n_samples:
            _mlp_fast._predict(
                *_kernel_input(X, dtype), self._theta,
                np.asarray(self._layer_units, dtype=np.intp), self._coef_off,
                self._bias_off, act_off, hidden, out_act, rows, act, out,
            )
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

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers: ``x``, ``1 / (1 + exp(-x))``,
        ``tanh(x)`` or ``max(x, 0)``.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Optimizer of the weights: L-BFGS-B from SciPy over the parameter
        vector, mini-batch stochastic gradient descent, or Adam (Kingma & Ba).

    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2``, divided by the
        (weighted) number of samples in the batch like the data term.

    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is
        ``min(200, n_samples)``. Ignored by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step-size schedule of 'sgd': constant ``learning_rate_init``;
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
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
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
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

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
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
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
        """
        if self._check_partial_fit_first_call(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

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
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multilayer perceptron regressor trained by compiled kernels.

    Minimises the squared error (identity output) or the Poisson deviance
    (exponential output) with L-BFGS, SGD or Adam.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        ``0.5 * mean((y - p) ** 2)``, or half the Poisson deviance
        ``mean(y * log(y / p) - y + p)`` with ``p = exp(z)``.
"""
        + _COMMON_PARAMS
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
        "loss": [StrOptions({"squared_error", "poisson"})],
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
        )

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
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
