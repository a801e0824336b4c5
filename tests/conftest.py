"""Shared test set-up.

* The tests folder goes first on ``sys.path``, so that the test modules can
  ``from _helpers import ...``: with ``--import-mode=importlib`` (pyproject.toml)
  pytest puts no test folder on ``sys.path``, and plain ``pytest`` (as CI runs
  it) does not add the working directory either. Only this folder is added, not
  the repository root, so the tests still import the installed skmlp in CI.
* Fixtures used by more than one test module.
"""

import os
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skmlp import datasets

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """No $SKMLP_DATA, and system folders that hold nothing ('auto' means digits)."""
    monkeypatch.delenv("SKMLP_DATA", raising=False)
    empty = tmp_path / "system-empty"
    monkeypatch.setattr(datasets, "FASHION_MNIST_DEFAULT_DIR", str(empty))
    monkeypatch.setattr(datasets, "MNIST_DEFAULT_DIR", str(empty))
    return empty


@pytest.fixture(scope="module")
def digits():
    """The digits data set, scaled to [0, 1], as float32 (one load per module)."""
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y
