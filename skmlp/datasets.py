"""Data sets from local IDX files: Fashion-MNIST, MNIST, and any IDX file.

Nothing here downloads. The loaders read the four standard IDX files of a data
set from the first folder that holds all of them, searched in this order:

1. ``data_home`` (the argument), if given;
2. the folder named by the environment variable ``SKMLP_DATA``, if set;
3. the system folder: ``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST,
   where Debian's ``dataset-fashion-mnist`` package installs it
   (``apt-get install dataset-fashion-mnist``); ``/usr/share/datasets/mnist``
   for MNIST.

In 1 and 2 the files may sit in the folder itself or in a subfolder named
after the data set (``fashion-mnist/`` or ``mnist/``; the subfolder is tried
first), so one ``SKMLP_DATA`` folder can hold both data sets. Each file may be
plain or gzip-compressed (``name`` or ``name.gz``; compression is recognised
from the content).

When no folder has all four files, :class:`DataNotFoundError` says where the
loader looked and how to install the data. A truncated or corrupt file (bad
magic number, wrong dimensions, wrong size, image and label counts that
disagree) raises :class:`IDXFormatError` naming the file.
"""

import gzip
import os

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "DataNotFoundError",
    "IDXFormatError",
    "fashion_mnist_available",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "load_idx",
    "load_mnist",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files. Read at
#: call time (the tests replace it).
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

#: The system folder searched last by :func:`load_mnist`.
MNIST_DEFAULT_DIR = "/usr/share/datasets/mnist"

#: The environment variable naming a data folder, searched after ``data_home``.
DATA_ENV = "SKMLP_DATA"

#: The four IDX files of (Fashion-)MNIST, without the optional ``.gz``.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

MNIST_CLASSES = tuple(str(d) for d in range(10))

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

_FASHION_MNIST_DESCR = """\
Fashion-MNIST
=============

Zalando's article images: 70,000 grey-scale images of 28 x 28 pixels, split
into 60,000 training and 10,000 test images, each labelled with one of ten
classes (7,000 images per class):

    0 T-shirt/top   1 Trouser   2 Pullover   3 Dress   4 Coat
    5 Sandal        6 Shirt     7 Sneaker    8 Bag     9 Ankle boot

A drop-in replacement for MNIST (same image size, same split sizes, same IDX
file format), harder to classify.

Loaded by skmlp.datasets.load_fashion_mnist from local IDX files; pixels are
scaled from 0..255 to [0, 1]. Feature ``pixel_<row>_<col>``.

Source: Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a novel
image dataset for benchmarking machine learning algorithms. arXiv:1708.07747.
MIT licence.
"""

_MNIST_DESCR = """\
MNIST
=====

Handwritten digits: 70,000 grey-scale images of 28 x 28 pixels, split into
60,000 training and 10,000 test images, labelled 0..9.

Loaded by skmlp.datasets.load_mnist from local IDX files; pixels are scaled
from 0..255 to [0, 1]. Feature ``pixel_<row>_<col>``.

Source: LeCun, Y., Cortes, C. and Burges, C. J. C. The MNIST database of
handwritten digits.
"""


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file, or does not fit its data set."""


class DataNotFoundError(FileNotFoundError):
    """A data set's files are in none of the places searched."""


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------


def load_idx(path, *, expected_ndim=None):
    """Read an IDX file (plain or gzip-compressed) into a NumPy array.

    The format (MNIST's and Fashion-MNIST's): a 4-byte magic number
    ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 dimensions,
    then the elements in C order, big-endian. The type byte is 0x08 (uint8),
    0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E
    (float64). Compression is recognised from the content (gzip's magic
    bytes), not from the file name.

    Parameters
    ----------
    path : str or path-like
        The file.

    expected_ndim : int, default=None
        If given, the number of dimensions the file must have (3 for a file
        of images, 1 for a file of labels).

    Returns
    -------
    array : ndarray
        Of the shape the header gives, in native byte order.

    Raises
    ------
    IDXFormatError
        The file is not a well-formed IDX file: bad magic number, unknown
        element type, unexpected number of dimensions, truncated or with
        trailing bytes, or a corrupt gzip stream. The message names the file.
    OSError
        The file cannot be opened.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from skmlp.datasets import load_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(gzip.compress(b"\\0\\0\\x08\\x01\\0\\0\\0\\x03\\x07\\x02\\x01"))
    >>> load_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    if expected_ndim is not None and (
        not isinstance(expected_ndim, int | np.integer) or isinstance(expected_ndim, bool)
    ):
        raise TypeError(f"expected_ndim must be an int or None, got {expected_ndim!r}")
    path = _as_path(path, "path")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise IDXFormatError(
                f"{path}: corrupt or truncated gzip data ({exc})"
            ) from exc

    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: not an IDX file (only {len(raw)} bytes, no magic number)"
        )
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_DTYPES:
        raise IDXFormatError(f"{path}: not an IDX file (bad magic number 0x{magic:08x})")
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXFormatError(
            f"{path}: magic number 0x{magic:08x} says {ndim} dimensions, "
            f"expected {expected_ndim}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    # (Python integers: a header's sizes may multiply beyond int64)
    expected = dtype.itemsize
    for n in shape:
        expected *= n
    found = len(raw) - header
    if found != expected:
        raise IDXFormatError(
            f"{path}: shape {shape} needs {expected} bytes of data, found {found} "
            f"({'truncated' if found < expected else 'trailing bytes'})"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _as_path(value, name):
    """os.fspath(value), with a TypeError that names the argument."""
    try:
        return os.fspath(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a str or path-like, got {type(value).__name__}: {value!r}"
        ) from None


def _find_file(directory, name):
    """The path of IDX file ``name`` in ``directory``, plain or ``.gz``; or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _candidates(data_home, subfolder, default_dir):
    """[(folder or None, how it was named)] in search order (None: not set)."""
    places = []
    if data_home is not None:
        home = _as_path(data_home, "data_home")
        places += [(os.path.join(home, subfolder), "data_home"), (home, "data_home")]
    env = os.environ.get(DATA_ENV)
    if env:
        places += [(os.path.join(env, subfolder), f"${DATA_ENV}"), (env, f"${DATA_ENV}")]
    else:
        places.append((None, f"${DATA_ENV}"))
    places.append((default_dir, "system folder"))
    return places


def _locate(data_home, subfolder, default_dir):
    """Paths of the four IDX files from the first complete folder, or None.

    Returns ``(paths, report)``: ``paths`` maps the keys of ``IDX_FILES`` to
    files (None when no folder has all four), ``report`` lists each place
    searched with what was found there.
    """
    report = []
    for directory, how in _candidates(data_home, subfolder, default_dir):
        if directory is None:
            report.append(f"{how} (not set)")
            continue
        found = {key: _find_file(directory, name) for key, name in IDX_FILES.items()}
        if all(found.values()):
            return found, report
        n_found = sum(p is not None for p in found.values())
        if not os.path.isdir(directory):
            what = "no such folder"
        elif n_found == 0:
            what = "no IDX files"
        else:
            missing = [IDX_FILES[k] for k, p in found.items() if p is None]
            what = f"only {n_found} of 4 files, missing {', '.join(missing)}"
        report.append(f"{directory} ({how}: {what})")
    return None, report


def find_fashion_mnist(data_home=None):
    """The folder :func:`load_fashion_mnist` would read, or None if there is none."""
    paths, _ = _locate(data_home, "fashion-mnist", FASHION_MNIST_DEFAULT_DIR)
    return None if paths is None else os.path.dirname(paths["train_images"])


def fashion_mnist_available(data_home=None):
    """True if :func:`load_fashion_mnist` finds all four Fashion-MNIST files."""
    return find_fashion_mnist(data_home) is not None


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------


def _read_images(path, dtype):
    arr = load_idx(path, expected_ndim=3)
    if arr.dtype != np.uint8 or arr.shape[1:] != (28, 28):
        raise IDXFormatError(
            f"{path}: expected uint8 images of 28x28 pixels, got {arr.dtype} "
            f"images of shape {arr.shape[1:]}"
        )
    X = arr.reshape(arr.shape[0], 28 * 28).astype(dtype)
    X /= dtype.type(255)
    return X


def _read_labels(path, n_classes):
    arr = load_idx(path, expected_ndim=1)
    if arr.dtype != np.uint8 or (arr.size and arr.max() >= n_classes):
        raise IDXFormatError(f"{path}: expected uint8 labels in 0..{n_classes - 1}")
    return arr.astype(np.int64)


def _load_idx_dataset(title, subfolder, default_dir, install_hint, class_names,
                      descr, data_home, return_X_y, as_frame, dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"dtype must be a floating-point type, got {dtype!r}"
        ) from None
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    paths, report = _locate(data_home, subfolder, default_dir)
    if paths is None:
        names = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
        hint = f"{install_hint} Or put" if install_hint else "Put"
        raise DataNotFoundError(
            f"{title} not found; looked in: {'; '.join(report)}. {hint} "
            f"its four IDX files ({names}) in a folder and pass "
            f"data_home=FOLDER or set ${DATA_ENV}=FOLDER. skmlp never downloads."
        )

    X_train = _read_images(paths["train_images"], dtype)
    y_train = _read_labels(paths["train_labels"], len(class_names))
    X_test = _read_images(paths["test_images"], dtype)
    y_test = _read_labels(paths["test_labels"], len(class_names))
    for X, y, images, labels in (
        (X_train, y_train, "train_images", "train_labels"),
        (X_test, y_test, "test_images", "test_labels"),
    ):
        if X.shape[0] != y.shape[0]:
            raise IDXFormatError(
                f"{paths[images]} has {X.shape[0]} images but {paths[labels]} has "
                f"{y.shape[0]} labels"
            )

    feature_names = [f"pixel_{r}_{c}" for r in range(28) for c in range(28)]
    frame = frame_test = None
    if as_frame:
        import pandas as pd

        def to_frame(X, y):
            data = pd.DataFrame(X, columns=feature_names, copy=False)
            target = pd.Series(y, name="target")
            return data, target, pd.concat([data, target], axis=1)

        X_train, y_train, frame = to_frame(X_train, y_train)
        X_test, y_test, frame_test = to_frame(X_test, y_test)

    if return_X_y:
        return X_train, y_train, X_test, y_test
    return Bunch(
        data=X_train,
        target=y_train,
        data_test=X_test,
        target_test=y_test,
        frame=frame,
        frame_test=frame_test,
        target_names=list(class_names),
        feature_names=feature_names,
        filenames=dict(paths),
        DESCR=descr,
    )


_LOADER_DOC = """
    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to look in first (the files directly in it, or in its
        subfolder ``{sub}/``). Then ``$SKMLP_DATA`` (likewise), then
        ``{default}``.

    return_X_y : bool, default=False
        Return ``(X_train, y_train, X_test, y_test)`` instead of a Bunch.
        (Four values, not scikit-learn's usual ``(X, y)``, because the data set
        comes with its own train/test split, which results are reported on;
        ``np.concatenate`` the parts to pool them.)

    as_frame : bool, default=False
        Data as pandas DataFrames (columns ``pixel_<row>_<col>``) and targets
        as Series named ``target``; the Bunch then also holds ``frame`` and
        ``frame_test``, data and target side by side.

    dtype : floating dtype, default=np.float32
        dtype of the pixel values (float32 or float64), scaled to [0, 1].

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``return_X_y=False``, a dictionary-like object with attributes:

        data : ndarray or DataFrame of shape (60000, 784)
            Training images, one flattened 28 x 28 image per row, in [0, 1].
        target : ndarray or Series of shape (60000,)
            Training labels, int64 in 0..9.
        data_test : ndarray or DataFrame of shape (10000, 784)
            Test images.
        target_test : ndarray or Series of shape (10000,)
            Test labels.
        frame, frame_test : DataFrame or None
            With ``as_frame=True``: data and target in one frame.
        target_names : list of str
            The class of each label, ``target_names[label]``.
        feature_names : list of str
            ``pixel_<row>_<col>`` for every column.
        filenames : dict
            The four files read.
        DESCR : str
            Description of the data set.

    (X_train, y_train, X_test, y_test) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    DataNotFoundError
        No folder searched has all four files (a FileNotFoundError). The
        message lists every place searched and how to install the data.
    IDXFormatError
        A file is truncated or corrupt, has the wrong dimensions, or image
        and label counts differ (a ValueError). The message names the file.
"""


def load_fashion_mnist(data_home=None, *, return_X_y=False, as_frame=False,
                       dtype=np.float32):
    return _load_idx_dataset(
        "Fashion-MNIST", "fashion-mnist", FASHION_MNIST_DEFAULT_DIR,
        "On Debian or Ubuntu install it with: apt-get install dataset-fashion-mnist.",
        FASHION_MNIST_CLASSES, _FASHION_MNIST_DESCR, data_home, return_X_y,
        as_frame, dtype,
    )


load_fashion_mnist.__doc__ = (
    """Load Fashion-MNIST (train and test sets) from its local IDX files.

    Searches ``data_home``, then ``$SKMLP_DATA``, then
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``
    package), and reads the first folder that holds all four files; never
    downloads. 60,000 training and 10,000 test images of ten classes of
    clothing: ``target_names`` are 'T-shirt/top', 'Trouser', 'Pullover',
    'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'.
"""
    + _LOADER_DOC.format(sub="fashion-mnist", default=FASHION_MNIST_DEFAULT_DIR)
    + """
    See Also
    --------
    load_mnist : The same for MNIST's handwritten digits.
    load_idx : Read one IDX file.

    Examples
    --------
    >>> from skmlp.datasets import load_fashion_mnist
    >>> X_train, y_train, X_test, y_test = load_fashion_mnist(
    ...     return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape, X_train.dtype  # doctest: +SKIP
    ((60000, 784), dtype('float32'))
"""
)


def load_mnist(data_home=None, *, return_X_y=False, as_frame=False, dtype=np.float32):
    return _load_idx_dataset(
        "MNIST", "mnist", MNIST_DEFAULT_DIR, "",
        MNIST_CLASSES, _MNIST_DESCR, data_home, return_X_y, as_frame, dtype,
    )


load_mnist.__doc__ = (
    """Load MNIST (train and test sets) from its local IDX files.

    The same as :func:`load_fashion_mnist` (the files have the same names and
    format) for the handwritten digits; ``target_names`` are '0'..'9'.
    Searches ``data_home``, then ``$SKMLP_DATA``, then
    ``/usr/share/datasets/mnist``; never downloads.
"""
    + _LOADER_DOC.format(sub="mnist", default=MNIST_DEFAULT_DIR)
)
