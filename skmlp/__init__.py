"""skmlp: scikit-learn's multilayer perceptrons, trained by compiled kernels over BLAS."""

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
