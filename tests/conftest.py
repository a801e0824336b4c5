"""Shared test set-up.

* The tests folder goes first on ``sys.path``, so that the test modules can
  ``from _helpers import ...``: with ``--import-mode=importlib`` (pyproject.toml)
  pytest puts no test folder on ``sys.path``, and plain ``pytest`` (as CI runs
  it) does not add the working directory either. Only this folder is added, not
  the repository root, so the tests still import the installed skmlp in CI.
* Fixtures used by more than one test module.
* Hypothesis settings profiles (tests/test_fuzz.py): "ci", the default, runs a
  short, derandomized search (the same examples on every run, so CI is
  reproducible); "thorough" runs thousands of random examples per test.
  Choose with ``SKMLP_HYPOTHESIS_PROFILE=thorough``.
"""

import os
import signal
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skmlp import datasets

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # only tests/test_fuzz.py needs it (the "test" extra has it)
    settings = None
if settings is not None:
    _common = dict(
        deadline=None,  # a fit's time varies with the machine's load
        database=None,  # nothing written into the working tree
        print_blob=True,  # a failure prints the line that reproduces it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.register_profile("ci", max_examples=60, derandomize=True, **_common)
    settings.register_profile("thorough", max_examples=5000, **_common)
    settings.load_profile(os.environ.get("SKMLP_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def python_handles_sigint():
    """Python's own SIGINT handler for the session. A shell starts its
    background jobs (``command &``) with SIGINT ignored, and Python keeps it
    ignored; skmlp then leaves it alone (skmlp._interrupt), and the tests that
    interrupt a fit (test_resources.py, test_cli.py) could not interrupt it.
    (An AddressSanitizer run of the suite started in the background failed
    four of them and sat in the 10**6-epoch fit of another.)"""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)


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
