"""The command line: ``python -m skmlp`` / ``skmlp`` with train, cv and predict.

``train`` (the default when no subcommand is named) trains one model an epoch
at a time and prints a row per epoch; ``cv`` cross-validates; ``predict``
applies a saved model to a CSV or IDX file. See ``build_parser`` for the
options and the README for examples.

Design notes for the next reader:

* Training is one ``partial_fit`` call per epoch on an estimator whose
  ``random_state`` is a ``numpy.random.RandomState(seed)`` *instance*, shared by
  all calls, so every epoch draws a new shuffle from where the last one stopped
  (an integer seed would restart the generator on each call and repeat the same
  order). Between calls the metrics are computed and the row is printed and
  flushed, so rows appear as training goes. (``fit(eval_set=...)`` records the
  same numbers in ``history_`` but only returns at the end.)
* The loss of a held-out set is computed the way ``history_`` computes its
  'val_loss' / 'eval_<i>_loss' (the training objective: mean loss plus the L2
  term), by the estimator's compiled loss function.
* Progress inside an epoch: the kernel runs a whole epoch with the GIL released
  and no Python in the batch loop, so it cannot report batches done. When
  stderr is a terminal a background thread shows the running epoch's elapsed
  time and an estimate of its fraction from the previous epoch's duration.
"""

import argparse
import os
import pickle
import sys
import threading
import time
import warnings

import numpy as np

from . import datasets

_IMAGE_DATA = ("fashion-mnist", "mnist")
_DATA_NAMES = ("auto", "fashion-mnist", "mnist", "digits")
_STOCHASTIC_SOLVERS = ("sgd", "adam", "adagrad", "rmsprop", "adamw")
_ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "leaky_relu", "prelu")
_WEIGHT_INITS = (
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform", "normal",
)
# The hold-out split of a data set without a test set of its own.
_DEFAULT_SPLIT = (75.0, 25.0)


class CLIError(Exception):
    """An error to report on one line of stderr, exit status 1."""


# ---------------------------------------------------------------------------
# Argument types (bad values are usage errors: exit status 2)
# ---------------------------------------------------------------------------


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _folds(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {value}")
    return value


def _float_in(low, high, low_open, high_open, what):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not np.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


_positive_float = _float_in(0, np.inf, True, True, "a positive number")
_non_negative_float = _float_in(0, np.inf, False, True, "a number >= 0")
_unit_float = _float_in(0, 1, False, False, "in [0, 1]")
_dropout_rate = _float_in(0, 1, False, True, "in [0, 1)")


def _threads(text):
    return "auto" if text == "auto" else _positive_int(text)


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def _layer_sizes(text):
    """'256' or '256,128' -> (256,) or (256, 128)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes like 256 or 256,128, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _dropout(text):
    """'0.2' or '0.2,0.1' (one rate per hidden layer)."""
    rates = tuple(_dropout_rate(p.strip()) for p in text.split(","))
    return rates[0] if len(rates) == 1 else rates


def _split(text):
    """'80:20' (train:test) or '70:15:15' (train:validation:test) -> proportions."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"expected TRAIN:TEST or TRAIN:VALIDATION:TEST, e.g. 80:20 or 70:15:15, "
            f"got {text!r}"
        )
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"split parts must be numbers, got {text!r}") from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"split parts must be positive, got {text!r}")
    return values


# ---------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------


class _VersionAction(argparse.Action):
    """argparse's "version" action without its line wrapping (an installation
    path is often longer than the terminal): prints the line as it is."""

    def __init__(self, option_strings, version, dest=argparse.SUPPRESS,
                 default=argparse.SUPPRESS, help="show the version and exit"):
        super().__init__(option_strings=option_strings, dest=dest,
                         default=default, nargs=0, help=help)
        self.version = version

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(self.version + "\n")
        parser.exit()


def _prog():
    return "python -m skmlp" if os.path.basename(sys.argv[0]) == "__main__.py" else "skmlp"


def _data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument(
        "data", nargs="?", default=None, metavar="DATA",
        help="fashion-mnist, mnist, digits (scikit-learn's bundled 8x8 digits), "
             "a CSV file with a header row, or auto: Fashion-MNIST if its files "
             "are found, else digits (default: auto)",
    )
    group.add_argument("--data", dest="data_option", default=None, metavar="DATA",
                       help="the same as the positional DATA")
    group.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="folder searched first for the (Fashion-)MNIST IDX files, before "
             f"${datasets.DATA_ENV} and /usr/share/datasets/<name>",
    )
    group.add_argument(
        "--target", default=None, metavar="NAME",
        help="target column of a CSV file (default: the column named 'target' "
             "if there is one, else the last column)",
    )
    group.add_argument(
        "--task", choices=("auto", "classification", "regression"), default="auto",
        help="MLPClassifier or MLPRegressor; auto: classification for the image "
             "data sets and for CSV targets that are labels (strings, booleans, "
             "integers), regression for real-valued targets (default: %(default)s)",
    )
    group.add_argument(
        "--scale", choices=("auto", "none", "standard"), default="auto",
        help="feature scaling, fitted on the training part and saved with the "
             "model; auto: none for the image data sets (pixels are already in "
             "[0, 1]), standard for CSV files (default: %(default)s)",
    )
    group.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="training dtype (default: %(default)s)")


def _model_options(parser):
    group = parser.add_argument_group("model (MLPClassifier / MLPRegressor parameters)")
    group.add_argument("--hidden", type=_layer_sizes, default=(256,), metavar="SIZES",
                       help="hidden layer sizes, e.g. 256 or 512,256 "
                            "(hidden_layer_sizes; default: 256)")
    group.add_argument("--activation", choices=_ACTIVATIONS, default="relu",
                       help="hidden activation (default: %(default)s)")
    group.add_argument("--solver", choices=_STOCHASTIC_SOLVERS, default="sgd",
                       help="optimizer (default: %(default)s; 'lbfgs' is not "
                            "offered: it has no epochs)")
    group.add_argument("--lr", type=_positive_float, default=0.1, metavar="RATE",
                       help="learning_rate_init (default: %(default)s)")
    group.add_argument("--schedule", choices=("constant", "invscaling", "adaptive"),
                       default="constant",
                       help="learning_rate schedule (default: %(default)s)")
    group.add_argument("--batch-size", type=_positive_int, default=256, metavar="N",
                       help="mini-batch size (default: %(default)s)")
    group.add_argument("--epochs", "--max-iter", dest="epochs", type=_positive_int,
                       default=10, metavar="N",
                       help="epochs (max_iter; default: %(default)s)")
    group.add_argument("--alpha", type=_non_negative_float, default=1e-4,
                       help="L2 penalty (default: %(default)s)")
    group.add_argument("--momentum", type=_unit_float, default=0.0,
                       help="SGD momentum, in [0, 1] (default: %(default)s)")
    group.add_argument("--nesterov", action=argparse.BooleanOptionalAction,
                       default=True,
                       help="Nesterov's momentum (nesterovs_momentum; default: on)")
    group.add_argument("--dropout", type=_dropout, default=0.0, metavar="RATE",
                       help="dropout rate of the hidden layers, one rate or one per "
                            "layer, e.g. 0.2 or 0.3,0.1 (default: 0)")
    group.add_argument("--weight-init", choices=_WEIGHT_INITS, default="glorot_uniform",
                       help="weight initialisation (default: %(default)s)")
    group.add_argument("--seed", type=_seed, default=0,
                       help="seed of the weights, the shuffles, the dropout masks and "
                            "the splits (default: %(default)s)")
    group.add_argument("--threads", type=_threads, default="auto", metavar="N",
                       help="BLAS threads, or auto: 1 on a machine with at most two "
                            "CPUs, else as BLAS is configured (skmlp itself uses one "
                            "for small networks) (default: %(default)s)")


def build_parser(prog=None):
    prog = prog or _prog()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Train, cross-validate and apply skmlp's multilayer perceptrons. "
            f"Without a subcommand, '{prog}' runs 'train': the classic "
            "784-256-10 network (one hidden ReLU layer of 256 units, plain SGD, "
            "learning rate 0.1, batches of 256, 10 epochs) on Fashion-MNIST when "
            "its files are installed, else on scikit-learn's digits."
        ),
        epilog=f"'{prog} COMMAND --help' shows the options of a command. "
               "Nothing is ever downloaded.",
    )
    from . import __version__, _mlp_fast

    parser.add_argument(
        "--version", action=_VersionAction,
        version=f"skmlp {__version__} ({os.path.dirname(os.path.abspath(__file__))}; "
                f"kernels: {_mlp_fast.variant} build)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train one model, printing a row per epoch (the default)",
        description=(
            "Train one model, one partial_fit call per epoch, printing after every "
            "epoch the training loss (the epoch's running mean), the training "
            "accuracy or R², the loss and accuracy/R² of the validation and test "
            "parts, and the epoch's training seconds."
        ),
    )
    _data_options(train)
    _model_options(train)
    group = train.add_argument_group("evaluation and output")
    group.add_argument(
        "--split", type=_split, default=None, metavar="PARTS",
        help="hold-out split of all the data set's samples, TRAIN:TEST (e.g. "
             "80:20) or TRAIN:VALIDATION:TEST (e.g. 70:15:15), stratified for "
             "classification; default: the data set's own train/test split "
             "(Fashion-MNIST, MNIST), else 75:25",
    )
    group.add_argument("--plot", metavar="FILE.png", default=None,
                       help="write the training curves to this image (needs "
                            "matplotlib: pip install 'skmlp[plot]')")
    group.add_argument("--save", metavar="FILE", default=None,
                       help="save the fitted model (with its feature scaling) with "
                            "joblib, for the predict command")
    group.add_argument("--progress", choices=("auto", "always", "never"),
                       default="auto",
                       help="show the running epoch's elapsed time on stderr; auto: "
                            "when stderr is a terminal (default: %(default)s)")
    train.set_defaults(handler=run_train, subparser=train)

    cv = sub.add_parser(
        "cv", help="K-fold cross-validation",
        description=(
            "K-fold cross-validation with sklearn.model_selection.cross_validate "
            "(stratified folds for classification), on the training part of a "
            "data set with its own test set (Fashion-MNIST, MNIST: the test set "
            "stays unseen), on all samples otherwise."
        ),
    )
    _data_options(cv)
    _model_options(cv)
    group = cv.add_argument_group("cross-validation")
    group.add_argument("--folds", type=_folds, default=5, metavar="K",
                       help="number of folds, at least 2 (default: %(default)s)")
    group.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                       help="folds fitted in parallel (n_jobs; default: %(default)s)")
    cv.set_defaults(handler=run_cv, subparser=cv)

    predict = sub.add_parser(
        "predict", help="apply a saved model to a CSV or IDX file",
        description=(
            "Load a model saved by 'train --save' (or any joblib file of a fitted "
            "scikit-learn estimator; loading runs code from the file, so load only "
            "files you trust) and write its predictions as CSV."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="the saved model")
    predict.add_argument(
        "input", metavar="INPUT",
        help="a CSV file with a header row (the model's feature columns are "
             "picked by name when it knows them; the target column, if any, is "
             "ignored), or an IDX file of images (pixels of uint8 files scaled "
             "to [0, 1], like the loaders do)",
    )
    predict.add_argument("--format", dest="input_format",
                         choices=("auto", "csv", "idx"), default="auto",
                         help="format of INPUT; auto: csv for *.csv[.gz], idx "
                              "otherwise (default: %(default)s)")
    predict.add_argument("--target", default=None, metavar="NAME",
                         help="a CSV column to leave out (default: the model's "
                              "features when it knows their names, else every "
                              "column but one named 'target')")
    predict.add_argument("--proba", action="store_true",
                         help="also write the class probabilities (classifiers)")
    predict.add_argument("--output", "-o", default=None, metavar="FILE",
                         help="CSV file to write (default: standard output)")
    predict.set_defaults(handler=run_predict, subparser=predict)
    return parser


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


class _Data:
    """A loaded data set: X, y and, for data sets that have one, a test set."""

    def __init__(self, name, X, y, X_test=None, y_test=None, classification=None,
                 columns=None):
        self.name = name
        self.X, self.y, self.X_test, self.y_test = X, y, X_test, y_test
        self.classification = classification  # None: decided from y
        self.columns = columns  # feature names of a CSV file


def _resolve_data_name(args, parser):
    name = args.data
    if args.data_option is not None:
        if name is not None and name != args.data_option:
            parser.error(f"two data sets named: {name!r} and --data {args.data_option!r}")
        name = args.data_option
    name = name or "auto"
    if name in _DATA_NAMES:
        return name
    looks_like_file = (
        os.sep in name or name.lower().endswith((".csv", ".csv.gz", ".txt"))
        or os.path.exists(name)
    )
    if not looks_like_file:
        parser.error(
            f"unknown data set {name!r} (choose from {', '.join(_DATA_NAMES)}, "
            f"or give a CSV file; commands: {', '.join(_COMMANDS)})"
        )
    return name


def _load_data(name, args, dtype):
    if name == "auto":
        name = "fashion-mnist" if datasets.fashion_mnist_available(args.data_dir) else "digits"
    if name in _IMAGE_DATA:
        loader = datasets.load_fashion_mnist if name == "fashion-mnist" else datasets.load_mnist
        X, y, X_test, y_test = loader(args.data_dir, return_X_y=True, dtype=dtype)
        return _Data(name, X, y, X_test, y_test, classification=True)
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return _Data(name, (X / 16.0).astype(dtype), y, classification=True)
    return _load_csv(name, args.target)


def _read_csv(path):
    """pd.read_csv(path), its failures (empty, ragged, not text) as CLIError naming the file."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path}: not a readable CSV file ({_one_line(exc)})") from exc


def _check_features(path, frame):
    """Data rows, numeric columns and no missing values, or a CLIError naming the file."""
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: no data rows (only a header)")
    other = frame.select_dtypes(exclude=["number", "bool"]).columns
    if len(other):
        raise CLIError(f"{path}: non-numeric feature columns {', '.join(map(str, other))} "
                       "(encode them as numbers, or drop them)")
    missing = frame.columns[frame.isna().any()]
    if len(missing):
        raise CLIError(f"{path}: missing values in {', '.join(map(str, missing))}")


def _load_csv(path, target):
    if not os.path.isfile(path):
        raise CLIError(f"no such data file: {path}")
    frame = _read_csv(path)
    if frame.shape[1] < 2:
        raise CLIError(f"{path}: needs a header row and at least two columns "
                       "(features and a target)")
    if target is None:
        target = "target" if "target" in frame.columns else frame.columns[-1]
    elif target not in frame.columns:
        raise CLIError(f"{path}: no column {target!r} (columns: "
                       f"{', '.join(map(str, frame.columns))})")
    y = frame.pop(target)
    if y.isna().any():
        raise CLIError(f"{path}: the target column {target!r} has missing values")
    _check_features(path, frame)
    frame = frame.astype(np.float64)
    return _Data(os.path.basename(path), frame, y.to_numpy(), columns=list(frame.columns))


def _is_classification(data, task):
    if task != "auto":
        return task == "classification"
    if data.classification is not None:
        return data.classification
    from sklearn.utils.multiclass import type_of_target

    y = data.y
    if y.dtype.kind in "OSUb":
        return True
    return type_of_target(y) in ("binary", "multiclass")


def _train_test_parts(X, y, split, classification, seed):
    """Split X, y into [(X_train, y_train), (X_val, y_val) or None, (X_test, y_test)]."""
    from sklearn.model_selection import train_test_split

    total = float(sum(split))
    test_fraction = split[-1] / total
    stratify = y if classification else None
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=test_fraction, stratify=stratify, random_state=seed
        )
        val = None
        if len(split) == 3:
            val_fraction = split[1] / (split[0] + split[1])
            X_train, X_val, y_train, y_val = train_test_split(
                X_rest, y_rest, test_size=val_fraction,
                stratify=y_rest if classification else None, random_state=seed,
            )
            val = (X_val, y_val)
        else:
            X_train, y_train = X_rest, y_rest
    except ValueError as exc:
        raise CLIError(f"cannot split {len(y)} samples as "
                       f"{':'.join(f'{v:g}' for v in split)}: {exc}") from exc
    return (X_train, y_train), val, (X_test, y_test)


def _concat(a, b):
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([a, b])


def _preprocessor(data, scale):
    """A transformer fitted on the training part, or None (the model alone)."""
    if scale == "auto":
        scale = "standard" if data.columns is not None else "none"
    if scale == "standard":
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()
    if data.columns is not None:
        # Keeps the CSV's column names with the model (for predict) and hands
        # the estimator an array, as it was trained on.
        from sklearn.preprocessing import FunctionTransformer

        return FunctionTransformer(np.asarray, feature_names_out="one-to-one")
    return None


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def _estimator_params(args):
    return dict(
        hidden_layer_sizes=tuple(args.hidden),
        activation=args.activation,
        solver=args.solver,
        alpha=args.alpha,
        batch_size=args.batch_size,
        learning_rate=args.schedule,
        learning_rate_init=args.lr,
        max_iter=args.epochs,
        momentum=args.momentum,
        nesterovs_momentum=args.nesterov,
        dropout=args.dropout,
        weight_init=args.weight_init,
    )


def _make_estimator(args, classification, random_state):
    from . import MLPClassifier, MLPRegressor

    cls = MLPClassifier if classification else MLPRegressor
    return cls(random_state=random_state, **_estimator_params(args))


def _describe_model(est, args):
    params = ", ".join(f"{k}={v!r}" for k, v in _estimator_params(args).items())
    threads = _resolve_threads(args.threads)
    return (f"{type(est).__name__}({params}), seed {args.seed}, "
            f"BLAS threads: {'default' if threads is None else threads}")


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _resolve_threads(threads):
    """BLAS threads for --threads: an int, or None to leave BLAS as it is.

    'auto' is one thread on a machine with at most two CPUs. There a second
    OpenBLAS thread can at best halve an epoch, while on a busy machine its
    spin-waiting made an epoch of the classic configuration ten times slower
    (1.4 s with one thread, 8-22 s with two, at a load average of 7).
    """
    if threads == "auto":
        return 1 if _usable_cpus() <= 2 else None
    return threads


def _blas_limit(threads):
    import contextlib

    threads = _resolve_threads(threads)
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def _heldout_loss(est, X, y):
    """The training objective (mean loss + L2 term) on (X, y), as history_ has it."""
    X = est._kernel_ready(X)
    Y = est._encode_target(np.asarray(y))
    return float(est._loss_grad_function(X, Y, None, with_grad=False)(est._theta)[0])


class _EpochProgress:
    """Shows the running epoch's elapsed time on a terminal line, from a thread.

    The kernel releases the GIL for the whole epoch, so the thread runs while
    it trains; what it cannot know is how many batches are done, so the
    fraction shown is an estimate from the previous epoch's duration.
    """

    def __init__(self, stream, epoch, previous_seconds=None, interval=0.5, delay=1.0):
        self.stream = stream
        self.epoch = epoch
        self.previous = previous_seconds
        self.interval = interval
        self.delay = delay
        self._stop = threading.Event()
        self._thread = None
        self._shown = False

    def _run(self):
        start = time.perf_counter()
        if self._stop.wait(self.delay):
            return
        while True:
            elapsed = time.perf_counter() - start
            text = f"epoch {self.epoch}: {elapsed:.1f} s"
            if self.previous:
                text += f" (~{min(99, int(100 * elapsed / self.previous))}% est.)"
            self.stream.write("\r" + text + "\033[K")
            self.stream.flush()
            self._shown = True
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
        return False


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def _check_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError("--plot needs matplotlib: pip install 'skmlp[plot]'") from None


def _n_classes_text(data, classification):
    if not classification:
        return "regression"
    n = np.unique(np.concatenate([np.asarray(data.y)] + (
        [np.asarray(data.y_test)] if data.y_test is not None else []))).size
    return f"{n} classes"


def run_train(args, parser, out):
    name = _resolve_data_name(args, parser)
    if args.plot is not None:
        _check_matplotlib()
    dtype = np.dtype(args.dtype)
    data = _load_data(name, args, dtype)
    classification = _is_classification(data, args.task)

    if args.split is None and data.X_test is not None:
        train, val, test = (data.X, data.y), None, (data.X_test, data.y_test)
        split_text = "the data set's own split"
    else:
        split = args.split or _DEFAULT_SPLIT
        if data.X_test is not None:
            X_all, y_all = _concat(data.X, data.X_test), _concat(data.y, data.y_test)
        else:
            X_all, y_all = data.X, data.y
        train, val, test = _train_test_parts(X_all, y_all, split, classification,
                                             args.seed)
        split_text = f"split {':'.join(f'{v:g}' for v in split)}"

    prep = _preprocessor(data, args.scale)

    def as_model_input(X, fit=False):
        if prep is not None:
            X = prep.fit_transform(X) if fit else prep.transform(X)
        return np.ascontiguousarray(X, dtype=dtype)

    if len(train[1]) == 0:
        raise CLIError(f"{data.name}: no training samples")
    X_train, y_train = as_model_input(train[0], fit=True), np.asarray(train[1])
    parts = [("val", val), ("test", test)]
    heldout = [(p, as_model_input(s[0]), np.asarray(s[1])) for p, s in parts if s is not None]

    if args.batch_size > X_train.shape[0]:
        # (the estimator would clip it too, with a warning every epoch)
        print(f"note: batch size {args.batch_size} clipped to the {X_train.shape[0]} "
              "training samples", file=out)
        args.batch_size = X_train.shape[0]
    est = _make_estimator(args, classification, np.random.RandomState(args.seed))
    metric = "acc" if classification else "r2"
    sizes = " / ".join(f"{len(s[1])} {p}" for p, s in
                       [("train", train), ("validation", val), ("test", test)]
                       if s is not None)
    print(f"data: {data.name}, {sizes} samples ({split_text}), {X_train.shape[1]} "
          f"features, {_n_classes_text(data, classification)}, {dtype}"
          + (f", scaling: {type(prep).__name__}" if prep is not None
             and type(prep).__name__ != "FunctionTransformer" else ""), file=out)
    print(f"model: {_describe_model(est, args)}", file=out)

    columns = ["epoch", "train_loss", f"train_{metric}"]
    for prefix, _, _ in heldout:
        columns += [f"{prefix}_loss", f"{prefix}_{metric}"]
    columns.append("seconds")
    widths = [max(len(c), 7) for c in columns]
    widths[0] = 5
    print("  ".join(f"{c:>{w}}" for c, w in zip(columns, widths)), file=out, flush=True)

    progress = args.progress == "always" or (
        args.progress == "auto" and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    )
    classes = np.unique(np.concatenate([y_train] + [y for _, _, y in heldout])) \
        if classification else None
    history = {"epoch": [], "train_loss": [], "train_score": []}
    for prefix, _, _ in heldout:
        history[f"{prefix}_loss"], history[f"{prefix}_score"] = [], []
    history["time"] = []

    fit_kwargs = {"classes": classes} if classification else {}
    previous = None
    total = 0.0
    interrupted = False
    epochs_run = 0
    with _blas_limit(args.threads):
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            if progress:
                with _EpochProgress(sys.stderr, epoch, previous):
                    interrupted = _partial_fit(est, X_train, y_train, fit_kwargs)
            else:
                interrupted = _partial_fit(est, X_train, y_train, fit_kwargs)
            epochs_run = epoch
            seconds = previous = time.perf_counter() - start
            total += seconds
            row = [epoch, est.loss_, est.score(X_train, y_train)]
            history["epoch"].append(epoch)
            history["train_loss"].append(float(est.loss_))
            history["train_score"].append(float(row[2]))
            for prefix, X_h, y_h in heldout:
                loss, score = _heldout_loss(est, X_h, y_h), est.score(X_h, y_h)
                history[f"{prefix}_loss"].append(loss)
                history[f"{prefix}_score"].append(float(score))
                row += [loss, score]
            row.append(seconds)
            history["time"].append(total)
            cells = [f"{row[0]:>{widths[0]}d}"] + [
                f"{v:>{w}.4f}" for v, w in zip(row[1:-1], widths[1:-1])
            ] + [f"{row[-1]:>{widths[-1]}.3f}"]
            print("  ".join(cells), file=out, flush=True)
            if interrupted:
                print(f"interrupted: training stopped after epoch {epoch} "
                      "(Ctrl-C); the model is complete up to it", file=out,
                      flush=True)
                break

    final = ", ".join(
        f"{p} {metric} {history[f'{p}_score'][-1]:.4f}" for p, _, _ in heldout
    )
    print(f"done: {epochs_run} epochs in {total:.1f} s of training"
          + (f"; {final}" if final else ""), file=out)

    if args.plot is not None:
        _write_plot(history, args.plot, type(est).__name__, data.name,
                    "accuracy" if classification else "R²")
        print(f"plot: {args.plot}", file=out)
    if args.save is not None:
        import joblib

        model = est
        if prep is not None:
            from sklearn.pipeline import Pipeline

            model = Pipeline([("preprocess", prep), ("mlp", est)])
        joblib.dump(model, args.save)
        print(f"model saved: {args.save}", file=out)
    return 0


_INTERRUPTED = "Training interrupted by user."


def _partial_fit(est, X, y, fit_kwargs):
    """One epoch of ``est.partial_fit``; True if Ctrl-C interrupted it.

    A SIGINT during an epoch is held until the epoch is complete, then
    partial_fit (like scikit-learn's) stops and reports it as a warning instead
    of raising. The command line stops training there, keeping the epoch, and
    goes on to its summary, plot and saved model. Other warnings pass on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_fit(X, y, **fit_kwargs)
    interrupted = False
    for w in caught:
        if str(w.message) == _INTERRUPTED:
            interrupted = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return interrupted


def _write_plot(history, path, estimator_name, data_name, score_name):
    from matplotlib.figure import Figure

    from .plotting import TrainingCurveDisplay

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    TrainingCurveDisplay.from_history(
        history, ax=ax, score_name=score_name,
        title=f"{estimator_name} on {data_name}",
    )
    fig.savefig(path, dpi=100)


def run_cv(args, parser, out):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline

    name = _resolve_data_name(args, parser)
    dtype = np.dtype(args.dtype)
    data = _load_data(name, args, dtype)
    classification = _is_classification(data, args.task)
    X, y = data.X, np.asarray(data.y)
    if data.columns is None:
        X = np.ascontiguousarray(X, dtype=dtype)

    if len(y) < args.folds:
        raise CLIError(f"{data.name}: {len(y)} samples cannot make {args.folds} folds")
    smallest_fold = len(y) - -(-len(y) // args.folds)  # training samples of a fold
    if args.batch_size > smallest_fold:
        print(f"note: batch size {args.batch_size} clipped to the {smallest_fold} "
              "training samples of a fold", file=out)
        args.batch_size = smallest_fold
    est = _make_estimator(args, classification, args.seed)
    prep = _preprocessor(data, args.scale)
    model = est if prep is None else make_pipeline(prep, est)
    if data.columns is not None:
        # the CSV's float64 frame, cast to the training dtype after scaling
        from sklearn.preprocessing import FunctionTransformer

        model = make_pipeline(
            prep, FunctionTransformer(np.asarray, kw_args={"dtype": dtype}), est
        )
    if classification:
        folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        scoring, metric = "accuracy", "acc"
    else:
        folds = KFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        scoring, metric = "r2", "r2"

    print(f"data: {data.name}, {len(y)} samples"
          + (" (the training part)" if data.X_test is not None else "")
          + f", {X.shape[1]} features, {_n_classes_text(data, classification)}, "
            f"{dtype}", file=out)
    print(f"model: {_describe_model(est, args)}", file=out)
    print(f"{args.folds}-fold {'stratified ' if classification else ''}"
          "cross-validation", file=out, flush=True)
    with _blas_limit(args.threads), warnings.catch_warnings():
        # A fixed number of epochs is the point here, not convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            result = cross_validate(
                model, X, y, cv=folds, scoring=scoring, return_train_score=True,
                n_jobs=args.jobs, error_score="raise",
            )
        except ValueError as exc:
            raise CLIError(f"cross-validation failed: {exc}") from exc

    columns = ["fold", f"train_{metric}", f"test_{metric}", "fit_seconds"]
    print(f"{columns[0]:>5}  {columns[1]:>9}  {columns[2]:>9}  {columns[3]:>11}", file=out)
    for k in range(args.folds):
        print(f"{k + 1:>5}  {result['train_score'][k]:>9.4f}  "
              f"{result['test_score'][k]:>9.4f}  {result['fit_time'][k]:>11.3f}", file=out)
    print(
        f"mean ± std: train_{metric} {np.mean(result['train_score']):.4f} ± "
        f"{np.std(result['train_score']):.4f}, test_{metric} "
        f"{np.mean(result['test_score']):.4f} ± {np.std(result['test_score']):.4f}, "
        f"fit_seconds {np.mean(result['fit_time']):.3f} ± "
        f"{np.std(result['fit_time']):.3f}", file=out,
    )
    return 0


def _read_predict_input(path, fmt, model, target):
    if not os.path.isfile(path):
        raise CLIError(f"no such input file: {path}")
    if fmt == "auto":
        fmt = "csv" if path.lower().endswith((".csv", ".csv.gz")) else "idx"
    if fmt == "idx":
        arr = datasets.load_idx(path)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        X = arr.reshape(arr.shape[0], -1)
        if X.dtype == np.uint8:
            X = X.astype(np.float32) / np.float32(255)
        return X.astype(np.float64) if X.dtype.kind != "f" else X

    frame = _read_csv(path)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise CLIError(f"{path}: lacks the model's feature columns "
                           f"{', '.join(map(str, missing[:10]))}"
                           + (" ..." if len(missing) > 10 else ""))
        frame = frame[list(names)]
        _check_features(path, frame)
        return frame
    drop = target if target is not None else ("target" if "target" in frame.columns
                                             else None)
    if drop is not None:
        if drop not in frame.columns:
            raise CLIError(f"{path}: no column {drop!r}")
        frame = frame.drop(columns=[drop])
    _check_features(path, frame)
    return frame.to_numpy(dtype=np.float64)


def run_predict(args, parser, out):
    import joblib
    import pandas as pd

    if not os.path.isfile(args.model):
        raise CLIError(f"no such model file: {args.model}")
    try:
        model = joblib.load(args.model)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, ImportError) as exc:
        raise CLIError(f"{args.model}: not a model saved with joblib ({exc})") from exc
    if not hasattr(model, "predict"):
        raise CLIError(f"{args.model}: holds a {type(model).__name__}, not a model")
    X = _read_predict_input(args.input, args.input_format, model, args.target)
    y_pred = np.asarray(model.predict(X))
    if y_pred.ndim == 1:
        frame = pd.DataFrame({"prediction": y_pred})
    else:
        frame = pd.DataFrame(y_pred, columns=[f"prediction_{k}" for k in
                                              range(y_pred.shape[1])])
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CLIError("--proba needs a classifier")
        proba = model.predict_proba(X)
        classes = getattr(model, "classes_", range(proba.shape[1]))
        for k, c in enumerate(classes):
            frame[f"proba_{c}"] = proba[:, k]
    if args.output is None:
        frame.to_csv(out, index=False)
    else:
        frame.to_csv(args.output, index=False)
    return 0


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

_COMMANDS = ("train", "cv", "predict")


def _with_default_command(argv):
    """Insert 'train' when no subcommand is named: ``skmlp digits --epochs 3``."""
    if not argv or argv[0] not in (*_COMMANDS, "-h", "--help", "--version"):
        return ["train", *argv]
    return argv


def _one_line(exc):
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv=None, *, out=None):
    """Run the command line; returns the exit status (argparse exits with 2 itself)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if out is None else out
    parser = build_parser()
    args = parser.parse_args(_with_default_command(argv))
    prog = parser.prog
    try:
        return args.handler(args, args.subparser, out)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CLIError, OSError, ValueError, LookupError, EOFError,
            pickle.UnpicklingError, ImportError, MemoryError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
