"""The main job: ``python -m skmlp``.

Trains the reference experiment, an MLP with one hidden layer of 256 ReLU units
trained by plain mini-batch SGD (``momentum=0``, ``learning_rate_init=0.1``,
``batch_size=256``), for 10 epochs, and prints one row per epoch: epoch, train
loss, train accuracy, test accuracy and the seconds the epoch's training took.

Data (``--data``):

* ``fashion-mnist``: the four IDX files of Fashion-MNIST in ``--data-dir``
  (default ``/usr/share/datasets/fashion-mnist``, where Debian's
  ``dataset-fashion-mnist`` package puts them), plain or gzip-compressed;
  pixels scaled to [0, 1] as float32; the data set's own 60000/10000 split.
* ``digits``: scikit-learn's bundled ``load_digits`` (pixels / 16 as float32),
  split 75/25, stratified, with ``--seed``.
* ``auto`` (default): Fashion-MNIST if all four files are in ``--data-dir``,
  digits otherwise.

Nothing is ever downloaded.

Each epoch is one ``partial_fit`` call. The estimator's ``random_state`` is a
``numpy.random.RandomState(seed)`` *instance*, shared by all calls, so every
epoch draws a new shuffle from where the last one stopped (an integer seed
would restart the generator on every call and repeat the same order).
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX element types: the third byte of the magic number -> big-endian dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file."""


def read_idx(path, expected_ndim=None):
    """Read an IDX file (plain or gzip-compressed) into a NumPy array.

    The format (as used by MNIST and Fashion-MNIST): a 4-byte magic number
    ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 dimensions,
    then the elements in C order, big-endian. Compression is detected from the
    content (gzip's magic bytes), not from the file name.

    Parameters
    ----------
    path : str or path-like
        The file.
    expected_ndim : int, default=None
        If given, the number of dimensions the file must have.

    Returns
    -------
    ndarray of shape given by the header, in native byte order.

    Raises
    ------
    IDXFormatError
        The file is not a well-formed IDX file (bad magic number, unknown
        element type, unexpected number of dimensions, truncated or with
        trailing bytes, corrupt gzip stream). The message names the file.
    OSError
        The file cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise IDXFormatError(f"{path}: corrupt gzip data ({exc})") from exc

    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: not an IDX file (only {len(raw)} bytes, no magic number)"
        )
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_DTYPES:
        raise IDXFormatError(
            f"{path}: not an IDX file (bad magic number 0x{magic:08x})"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXFormatError(
            f"{path}: bad magic number 0x{magic:08x}: {ndim} dimensions, "
            f"expected {expected_ndim}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated IDX header")
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        raise IDXFormatError(
            f"{path}: shape {shape} needs {expected} bytes of data, "
            f"found {found} ({'truncated' if found < expected else 'trailing bytes'})"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(directory, name):
    """The path of IDX file ``name`` in ``directory``, plain or ``.gz``; or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def fashion_mnist_available(directory=FASHION_MNIST_DIR):
    """True if all four Fashion-MNIST IDX files are in ``directory``."""
    return all(_find_idx(directory, n) is not None for n in FASHION_MNIST_FILES.values())


def load_fashion_mnist(directory=FASHION_MNIST_DIR):
    """Fashion-MNIST from its four IDX files in ``directory``.

    Returns ``X_train, X_test, y_train, y_test``: images flattened to
    (n, 784) float32 in [0, 1], labels int64.
    """
    paths = {}
    for key, name in FASHION_MNIST_FILES.items():
        path = _find_idx(directory, name)
        if path is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {name}(.gz) not found in {directory} "
                "(Debian: apt-get install dataset-fashion-mnist)"
            )
        paths[key] = path

    def images(key):
        path = paths[key]
        arr = read_idx(path, expected_ndim=3)
        if arr.dtype != np.uint8 or arr.shape[1:] != (28, 28):
            raise IDXFormatError(
                f"{path}: expected uint8 images of 28x28 pixels, "
                f"got {arr.dtype} of shape {arr.shape}"
            )
        X = arr.reshape(arr.shape[0], -1).astype(np.float32)
        X /= np.float32(255)
        return X

    def labels(key):
        path = paths[key]
        arr = read_idx(path, expected_ndim=1)
        if arr.dtype != np.uint8 or (arr.size and arr.max() > 9):
            raise IDXFormatError(f"{path}: expected uint8 labels in 0..9")
        return arr.astype(np.int64)

    X_train, y_train = images("train_images"), labels("train_labels")
    X_test, y_test = images("test_images"), labels("test_labels")
    for X, y, a, b in (
        (X_train, y_train, "train_images", "train_labels"),
        (X_test, y_test, "test_images", "test_labels"),
    ):
        if X.shape[0] != y.shape[0]:
            raise IDXFormatError(
                f"{paths[a]} has {X.shape[0]} images but {paths[b]} has "
                f"{y.shape[0]} labels"
            )
    return X_train, X_test, y_train, y_test


def load_digits_split(seed):
    """scikit-learn's bundled digits: pixels / 16 as float32, stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m skmlp",
        description=(
            "Train the reference MLP (one hidden ReLU layer, plain mini-batch "
            "SGD) one epoch at a time with partial_fit and print train loss, "
            "train accuracy and test accuracy after every epoch."
        ),
    )
    parser.add_argument("--epochs", type=_positive_int, default=10,
                        help="number of epochs (default: %(default)s)")
    parser.add_argument("--hidden", type=_positive_int, default=256,
                        help="units in the hidden layer (default: %(default)s)")
    parser.add_argument("--lr", type=_positive_float, default=0.1,
                        help="SGD learning rate, learning_rate_init (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=256,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the weights, the shuffles and the digits "
                             "split (default: %(default)s)")
    parser.add_argument("--data", choices=("auto", "fashion-mnist", "digits"),
                        default="auto",
                        help="data set; auto = Fashion-MNIST if its IDX files are in "
                             "--data-dir, else scikit-learn's digits (default: %(default)s)")
    parser.add_argument("--data-dir", default=FASHION_MNIST_DIR, metavar="DIR",
                        help="folder of the Fashion-MNIST IDX files (default: %(default)s)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    name = args.data
    if name == "auto":
        name = "fashion-mnist" if fashion_mnist_available(args.data_dir) else "digits"
    try:
        if name == "fashion-mnist":
            X_train, X_test, y_train, y_test = load_fashion_mnist(args.data_dir)
        else:
            X_train, X_test, y_train, y_test = load_digits_split(args.seed)
    except (OSError, ValueError) as exc:
        print(f"python -m skmlp: error: {exc}", file=sys.stderr)
        return 1

    from . import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        solver="sgd",
        momentum=0.0,
        learning_rate_init=args.lr,
        batch_size=args.batch_size,
        random_state=np.random.RandomState(args.seed),
    )
    classes = np.unique(y_train)

    print(
        f"data: {name}, {X_train.shape[0]} train / {X_test.shape[0]} test samples, "
        f"{X_train.shape[1]} features, {classes.size} classes, {X_train.dtype}"
    )
    print(
        f"model: MLPClassifier(hidden_layer_sizes=({args.hidden},), solver='sgd', "
        f"momentum=0, learning_rate_init={args.lr}, batch_size={args.batch_size}), "
        f"seed {args.seed}"
    )
    print(f"{'epoch':>5}  {'train_loss':>10}  {'train_acc':>9}  {'test_acc':>8}  "
          f"{'seconds':>7}")
    sys.stdout.flush()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        clf.partial_fit(X_train, y_train, classes=classes)
        seconds = time.perf_counter() - start
        train_acc = clf.score(X_train, y_train)
        test_acc = clf.score(X_test, y_test)
        print(f"{epoch:>5}  {clf.loss_:>10.6f}  {train_acc:>9.4f}  {test_acc:>8.4f}  "
              f"{seconds:>7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
