"""The pickled state of skmlp's estimators: a version marker, and checks on loading.

``__getstate__`` adds two entries to the state: ``_skmlp_version`` (the
package version that wrote it) and ``_skmlp_pickle_format`` (an integer, raised
whenever the meaning of the pickled attributes changes). ``__setstate__``

* raises :class:`PickleFormatError` (a ``ValueError``) for another format,
  naming both package versions and formats;
* warns :class:`InconsistentVersionWarning` (a subclass of scikit-learn's, so
  filters for that one catch it too) for the same format written by another
  skmlp version, or a pickle without the marker (written before it existed);
* checks the fitted state the compiled kernels will trust: the parameter vector
  ``_theta`` (present, 1-D, float32/float64, exactly as long as the layer
  sizes need; non-finite values only warn, as a diverged fit leaves them), the layer sizes, the offsets of every layer in ``_theta``
  (recomputed from the layer sizes, never taken from the pickle), the
  early-stopping copy, the dropout generator and the optimizer state. A
  mismatch raises ``ValueError`` naming the attribute and what is wrong,
  instead of letting ``predict`` or ``partial_fit`` read or write out of bounds
  later.

The format number is 1 for the layout of DESIGN.md: one vector ``_theta``
``[W_0, b_0, W_1, b_1, ..., PReLU slopes]``, ``coefs_``/``intercepts_`` rebuilt
as views of it on loading.
"""

import warnings
from numbers import Integral

import numpy as np
from sklearn.exceptions import InconsistentVersionWarning as _SklearnVersionWarning

PICKLE_FORMAT = 1

# Attributes whose presence means the pickled estimator was fitted.
_FITTED_KEYS = ("_theta", "_layer_units", "n_layers_", "coefs_", "_optimizer")


class InconsistentVersionWarning(_SklearnVersionWarning):
    """An estimator is unpickled with another skmlp version than the one that
    pickled it (same pickle format).

    Subclass of scikit-learn's ``InconsistentVersionWarning``: its attributes
    ``estimator_name``, ``current_sklearn_version`` and
    ``original_sklearn_version`` hold the *skmlp* versions here.
    """

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from skmlp version "
            f"{self.original_sklearn_version} when using version "
            f"{self.current_sklearn_version}. This might lead to breaking code or "
            "invalid results. Use at your own risk."
        )


class PickleFormatError(ValueError):
    """A pickle of an skmlp estimator in a format this version cannot read."""


def _current_version():
    from . import __version__

    return __version__


def add_marker(state):
    """The state with the version and format marker (a new dict)."""
    return dict(
        state, _skmlp_version=_current_version(), _skmlp_pickle_format=PICKLE_FORMAT
    )


def check_marker(name, state):
    """Pop the marker from ``state``; raise or warn as the module says."""
    version = state.pop("_skmlp_version", None)
    fmt = state.pop("_skmlp_pickle_format", None)
    current = _current_version()
    if fmt is None and version is None:
        # written before the marker existed (format 1 then)
        version = "unknown (a pickle without skmlp's version marker)"
    elif fmt != PICKLE_FORMAT:
        raise PickleFormatError(
            f"This {name} was pickled by skmlp {version} in pickle format {fmt!r}; "
            f"skmlp {current} reads pickle format {PICKLE_FORMAT} only. Load it "
            f"with skmlp {version}, or fit the model again."
        )
    if version != current:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=name,
                current_sklearn_version=current,
                original_sklearn_version=version,
            ),
            stacklevel=3,
        )


def _fail(name, what):
    raise ValueError(
        f"Cannot unpickle this {name}: {what}. The pickle is corrupt, incomplete "
        "or was edited; fit the model again."
    )


def _check_vector(name, attr, value, size, dtype, allow_empty=False):
    if not isinstance(value, np.ndarray):
        _fail(name, f"{attr} is a {type(value).__name__}, not a NumPy array")
    if value.dtype != dtype:
        _fail(name, f"{attr} has dtype {value.dtype}, expected {dtype}")
    shapes = [(size,)] + ([(0,)] if allow_empty else [])
    if value.shape not in shapes:
        _fail(
            name,
            f"{attr} has shape {value.shape}, expected "
            + " or ".join(str(s) for s in shapes),
        )


def check_fitted_state(name, state):
    """Validate (and complete) the fitted part of a pickled state in place."""
    if not any(key in state for key in _FITTED_KEYS):
        return  # an unfitted estimator
    from ._multilayer_perceptron import _ACTIVATION_CODES, _layout

    if "_theta" not in state:
        _fail(name, "the fitted state has no parameter vector _theta")
    theta = state["_theta"]
    if not isinstance(theta, np.ndarray):
        _fail(name, f"_theta is a {type(theta).__name__}, not a NumPy array")
    if theta.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        _fail(name, f"_theta has dtype {theta.dtype}, expected float32 or float64")
    if theta.ndim != 1:
        _fail(name, f"_theta has shape {theta.shape}, expected a 1-D vector")

    units = state.get("_layer_units")
    if (
        not isinstance(units, list | tuple)
        or len(units) < 2
        or not all(isinstance(u, Integral) and not isinstance(u, bool) and u >= 1
                   for u in units)
    ):
        _fail(name, f"_layer_units is {units!r}, expected a list of at least two "
              "positive integers")
    units = [int(u) for u in units]
    prelu = state.get("_prelu", False)
    if not isinstance(prelu, bool | np.bool_):
        _fail(name, f"_prelu is {prelu!r}, expected True or False")
    coef_off, bias_off, slope_off, size = _layout(units, bool(prelu))
    if theta.shape[0] != size:
        _fail(name, f"_theta has {theta.shape[0]} values; the layer sizes {units}"
              f"{' with PReLU' if prelu else ''} need {size}")
    if not theta.flags.c_contiguous:
        theta = np.ascontiguousarray(theta)
    if not np.isfinite(theta).all():
        # not a danger to the kernels, and what a diverged fit leaves behind
        # (copy.deepcopy comes through here too): said, not refused
        warnings.warn(
            f"The unpickled {name} has non-finite values (NaN or infinity) in its "
            "parameter vector _theta: it cannot predict (predict raises) until refitted.",
            UserWarning,
            stacklevel=3,
        )
    for attr, expected in (("_coef_off", coef_off), ("_bias_off", bias_off),
                           ("_slope_off", slope_off)):
        stored = state.get(attr)
        if not (isinstance(stored, np.ndarray) and stored.shape == expected.shape
                and np.array_equal(stored, expected)):
            _fail(name, f"{attr} does not match the layer sizes {units}")
    n_layers = state.get("n_layers_")
    if n_layers != len(units):
        _fail(name, f"n_layers_ is {n_layers!r}, the layer sizes {units} have "
              f"{len(units)} layers")
    if state.get("n_outputs_") != units[-1]:
        _fail(name, f"n_outputs_ is {state.get('n_outputs_')!r}, the output layer "
              f"has {units[-1]} units")
    if "n_features_in_" in state and state["n_features_in_"] != units[0]:
        _fail(name, f"n_features_in_ is {state['n_features_in_']!r}, the input "
              f"layer has {units[0]} units")
    for attr in ("out_activation_", "_fitted_activation"):
        if attr in state and state[attr] not in _ACTIVATION_CODES:
            _fail(name, f"{attr} is {state[attr]!r}, not an activation skmlp knows")
    if "out_activation_" not in state:
        _fail(name, "the fitted state has no out_activation_")

    if state.get("_best_theta") is not None:
        _check_vector(name, "_best_theta", state["_best_theta"], size, theta.dtype)
    rng = state.get("_dropout_rng")
    if rng is not None:
        _check_vector(name, "_dropout_rng", rng, 1, np.dtype(np.uint64))
    opt = state.get("_optimizer")
    if opt is not None:
        ostate = getattr(opt, "__dict__", {})
        for attr in ("state_1", "state_2"):
            if attr not in ostate:
                _fail(name, f"the optimizer state has no {attr}")
        _check_vector(name, "_optimizer.state_1", ostate["state_1"], size,
                      theta.dtype, allow_empty=False)
        _check_vector(name, "_optimizer.state_2", ostate["state_2"], size,
                      theta.dtype, allow_empty=True)
        t = ostate.get("t")
        if not isinstance(t, Integral) or t < 0:
            _fail(name, f"_optimizer.t is {t!r}, expected a count of steps")

    # the kernels take these exactly as computed here
    state["_theta"] = theta
    state["_layer_units"] = units
    state["_coef_off"], state["_bias_off"], state["_slope_off"] = (
        coef_off, bias_off, slope_off,
    )
