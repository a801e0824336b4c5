"""``python -m skmlp``: the command line (train, cv, predict); see skmlp._cli.

With no arguments it runs the main job: ``train`` with the classic
configuration (one hidden ReLU layer of 256 units, plain mini-batch SGD with
learning rate 0.1, no momentum, batches of 256, 10 epochs) on Fashion-MNIST
when its IDX files are installed, else on scikit-learn's digits, printing a row
per epoch. The same entry point is the ``skmlp`` console script.
"""

import sys

from skmlp._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
