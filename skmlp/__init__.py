"""skmlp: scikit-learn's multilayer perceptrons, trained by compiled kernels over BLAS."""

from ._multilayer_perceptron import MLPClassifier, MLPRegressor
from ._parallel import parallel_config
from ._persistence import InconsistentVersionWarning, PickleFormatError

__version__ = "0.1.0"

__all__ = [
    "InconsistentVersionWarning",
    "MLPClassifier",
    "MLPRegressor",
    "PickleFormatError",
    "__version__",
    "parallel_config",
]

_SUBMODULES = ("datasets", "plotting")


def __getattr__(name):
    # skmlp.datasets / skmlp.plotting after a plain `import skmlp`, imported
    # only when first used (plotting's matplotlib is imported later still).
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
