"""skmlp.datasets: the IDX reader and the (Fashion-)MNIST loaders.

Every test but the last writes its own small IDX files; the last reads the
real Fashion-MNIST files when they are installed (CI installs them).
"""

import gzip
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import Bunch

from skmlp import datasets
from skmlp.datasets import (
    DataNotFoundError,
    IDX_FILES,
    IDXFormatError,
    fashion_mnist_available,
    find_fashion_mnist,
    load_fashion_mnist,
    load_idx,
    load_mnist,
)

from _helpers import idx_bytes, write_payload

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _fake_set(directory, n_train=12, n_test=5, compress=True, seed=0):
    """Write the four IDX files of a small (Fashion-)MNIST look-alike."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays["train_images"][0, 0, 0], arrays["train_images"][0, 0, 1] = 0, 255
    for key, name in IDX_FILES.items():
        fname = name + (".gz" if compress else "")
        write_payload(directory / fname, idx_bytes(arrays[key]), compress)
    return arrays


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


# --- load_idx ----------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_ubyte(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_payload(tmp_path / "images", idx_bytes(images), compress)
    out = load_idx(path, expected_ndim=3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)
    # str paths too
    np.testing.assert_array_equal(load_idx(str(path)), images)


@pytest.mark.parametrize(
    "dtype, code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D),
                    (np.float64, 0x0E), (np.int8, 0x09)],
)
def test_load_idx_other_types_big_endian(tmp_path, dtype, code):
    data = np.array([[-1, 2, 300 if np.dtype(dtype).itemsize > 1 else 3]], dtype=dtype)
    path = write_payload(tmp_path / "x.idx", idx_bytes(data, code))
    out = load_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_bad_magic_names_file(tmp_path, compress):
    payload = bytearray(idx_bytes(np.zeros(5, dtype=np.uint8)))
    payload[0] = 0x12
    path = write_payload(tmp_path / "bad-labels-idx1-ubyte", bytes(payload), compress)
    with pytest.raises(IDXFormatError, match="bad-labels-idx1-ubyte.*bad magic"):
        load_idx(path)
    # An IDXFormatError is a ValueError.
    with pytest.raises(ValueError):
        load_idx(path)


def test_load_idx_unknown_type_code(tmp_path):
    payload = bytearray(idx_bytes(np.zeros(5, dtype=np.uint8)))
    payload[2] = 0x42
    path = write_payload(tmp_path / "odd", bytes(payload))
    with pytest.raises(IDXFormatError, match="odd.*magic number 0x00004201"):
        load_idx(path)


def test_load_idx_wrong_ndim(tmp_path):
    path = write_payload(tmp_path / "labels", idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match="labels.*1 dimensions, expected 3"):
        load_idx(path, expected_ndim=3)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cut", [1, 10])
def test_load_idx_truncated_data(tmp_path, cut, compress):
    payload = idx_bytes(np.zeros((4, 3), dtype=np.uint8))
    path = write_payload(tmp_path / "short", payload[:-cut], compress)
    with pytest.raises(IDXFormatError, match="short.*truncated"):
        load_idx(path)


def test_load_idx_truncated_header_and_tiny_file(tmp_path):
    payload = idx_bytes(np.zeros((4, 3), dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="head.*truncated IDX header"):
        load_idx(write_payload(tmp_path / "head", payload[:9]))
    with pytest.raises(IDXFormatError, match="tiny.*no magic number"):
        load_idx(write_payload(tmp_path / "tiny", b"\0\0"))
    with pytest.raises(IDXFormatError, match="empty"):
        load_idx(write_payload(tmp_path / "empty", b""))


def test_load_idx_trailing_bytes(tmp_path):
    payload = idx_bytes(np.zeros((4, 3), dtype=np.uint8)) + b"\0"
    with pytest.raises(IDXFormatError, match="long.*trailing"):
        load_idx(write_payload(tmp_path / "long", payload))


def test_load_idx_truncated_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match="broken.gz.*gzip"):
        load_idx(write_payload(tmp_path / "broken.gz", good[:-8]))


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nothing")


def test_no_file_handle_leaks(tmp_path):
    _fake_set(tmp_path / "good", compress=True)
    _fake_set(tmp_path / "plain", compress=False)
    bad = tmp_path / "bad"
    _fake_set(bad)
    write_payload(bad / (IDX_FILES["test_labels"] + ".gz"), b"\x08\x08\x08\x08", compress=True)
    before = _open_fds()
    for _ in range(3):
        load_fashion_mnist(tmp_path / "good")
        load_fashion_mnist(tmp_path / "plain")
        with pytest.raises(IDXFormatError):
            load_fashion_mnist(bad)
    assert _open_fds() == before


# --- load_fashion_mnist: contents and return types ------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_load_fashion_mnist_from_folder(tmp_path, no_system_data, compress):
    arrays = _fake_set(tmp_path / "fm", compress=compress)
    bunch = load_fashion_mnist(tmp_path / "fm")
    assert isinstance(bunch, Bunch)
    assert bunch.data.shape == (12, 784) and bunch.data_test.shape == (5, 784)
    assert bunch.data.dtype == np.float32 and bunch.data_test.dtype == np.float32
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    np.testing.assert_allclose(
        bunch.data, arrays["train_images"].reshape(12, -1) / 255, rtol=1e-6
    )
    np.testing.assert_allclose(
        bunch.data_test, arrays["test_images"].reshape(5, -1) / 255, rtol=1e-6
    )
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, arrays["train_labels"])
    np.testing.assert_array_equal(bunch.target_test, arrays["test_labels"])
    assert bunch.target_names == FASHION_CLASSES
    assert bunch.feature_names[0] == "pixel_0_0" and bunch.feature_names[-1] == "pixel_27_27"
    assert len(bunch.feature_names) == 784
    assert "Fashion-MNIST" in bunch.DESCR
    assert bunch.frame is None and bunch.frame_test is None
    assert set(bunch.filenames) == set(IDX_FILES)
    assert all(str(tmp_path / "fm") in f for f in bunch.filenames.values())


def test_load_fashion_mnist_dtype(tmp_path, no_system_data):
    arrays = _fake_set(tmp_path)
    X, y, X_test, y_test = load_fashion_mnist(tmp_path, return_X_y=True, dtype=np.float64)
    assert X.dtype == np.float64 and X_test.dtype == np.float64
    np.testing.assert_array_equal(X, arrays["train_images"].reshape(12, -1) / 255.0)
    assert 0 <= X.min() and X.max() <= 1 and 0 <= X_test.min() and X_test.max() <= 1
    with pytest.raises(ValueError, match="floating-point"):
        load_fashion_mnist(tmp_path, dtype=np.uint8)


def test_load_fashion_mnist_return_X_y(tmp_path, no_system_data):
    arrays = _fake_set(tmp_path)
    result = load_fashion_mnist(tmp_path, return_X_y=True)
    assert isinstance(result, tuple) and len(result) == 4
    X, y, X_test, y_test = result
    assert X.shape == (12, 784) and y.shape == (12,)
    assert X_test.shape == (5, 784) and y_test.shape == (5,)
    np.testing.assert_array_equal(y, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_load_fashion_mnist_as_frame(tmp_path, no_system_data):
    arrays = _fake_set(tmp_path)
    bunch = load_fashion_mnist(tmp_path, as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and isinstance(bunch.target, pd.Series)
    assert isinstance(bunch.data_test, pd.DataFrame)
    assert isinstance(bunch.target_test, pd.Series)
    assert bunch.data.shape == (12, 784)
    assert list(bunch.data.columns) == bunch.feature_names
    assert (bunch.data.dtypes == np.float32).all()
    assert bunch.target.name == "target"
    np.testing.assert_array_equal(bunch.target.to_numpy(), arrays["train_labels"])
    assert bunch.frame.shape == (12, 785) and bunch.frame_test.shape == (5, 785)
    assert list(bunch.frame.columns)[-1] == "target"

    X, y, X_test, y_test = load_fashion_mnist(tmp_path, as_frame=True, return_X_y=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert isinstance(X_test, pd.DataFrame) and isinstance(y_test, pd.Series)
    np.testing.assert_array_equal(X.to_numpy(), bunch.data.to_numpy())


def test_load_mnist_same_format(tmp_path, no_system_data):
    arrays = _fake_set(tmp_path / "mnist", n_train=20, n_test=10)
    bunch = load_mnist(tmp_path)  # found in the subfolder mnist/
    assert bunch.target_names == [str(d) for d in range(10)]
    assert bunch.data.shape == (20, 784)
    np.testing.assert_array_equal(bunch.target_test, arrays["test_labels"])
    assert "MNIST" in bunch.DESCR


# --- corrupt data sets -------------------------------------------------------------


@pytest.mark.parametrize("which", ["train", "test"])
def test_image_label_count_mismatch(tmp_path, no_system_data, which):
    _fake_set(tmp_path)
    name = IDX_FILES[f"{which}_labels"] + ".gz"
    write_payload(tmp_path / name, idx_bytes(np.zeros(4, dtype=np.uint8)), compress=True)
    images = IDX_FILES[f"{which}_images"]
    with pytest.raises(IDXFormatError, match=f"{images}.gz has .* images but .*{name} has 4 labels"):
        load_fashion_mnist(tmp_path)


def test_bad_magic_in_a_data_set_names_the_file(tmp_path, no_system_data):
    _fake_set(tmp_path)
    name = IDX_FILES["train_labels"] + ".gz"
    write_payload(tmp_path / name, b"\x08\x08\x08\x08" + bytes(12), compress=True)
    with pytest.raises(IDXFormatError, match=f"{name}.*bad magic"):
        load_fashion_mnist(tmp_path)


def test_truncated_images_name_the_file(tmp_path, no_system_data):
    arrays = _fake_set(tmp_path, compress=False)
    name = IDX_FILES["test_images"]
    write_payload(tmp_path / name, idx_bytes(arrays["test_images"])[:-100])
    with pytest.raises(IDXFormatError, match=f"{name}.*truncated"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize(
    "key, array, message",
    [
        ("train_images", np.zeros((3, 27, 28), np.uint8), "28x28"),
        ("train_images", np.zeros((3, 784), np.uint8), "2 dimensions, expected 3"),
        ("test_labels", np.zeros((5, 1), np.uint8), "2 dimensions, expected 1"),
        ("test_images", np.zeros((5, 28, 28), np.int16), "uint8 images"),
        ("train_labels", np.full(12, 10, np.uint8), r"labels in 0\.\.9"),
    ],
)
def test_wrong_dimensions_or_values(tmp_path, no_system_data, key, array, message):
    _fake_set(tmp_path)
    code = 0x08 if array.dtype == np.uint8 else 0x0B
    write_payload(tmp_path / (IDX_FILES[key] + ".gz"), idx_bytes(array, code), compress=True)
    with pytest.raises(IDXFormatError, match=f"{IDX_FILES[key]}.gz.*{message}"):
        load_fashion_mnist(tmp_path)


# --- where the files are looked for ---------------------------------------------


def test_search_order(tmp_path, monkeypatch):
    home, env, system = tmp_path / "home", tmp_path / "env", tmp_path / "system"
    _fake_set(home, n_train=11)
    _fake_set(env / "fashion-mnist", n_train=13)  # the subfolder form
    _fake_set(system, n_train=17)
    monkeypatch.setattr(datasets, "FASHION_MNIST_DEFAULT_DIR", str(system))
    monkeypatch.setenv("SKMLP_DATA", str(env))

    assert load_fashion_mnist(home).data.shape[0] == 11          # data_home first
    assert load_fashion_mnist().data.shape[0] == 13              # then $SKMLP_DATA
    assert find_fashion_mnist() == str(env / "fashion-mnist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_fashion_mnist(empty).data.shape[0] == 13         # data_home empty
    monkeypatch.delenv("SKMLP_DATA")
    assert load_fashion_mnist().data.shape[0] == 17              # then the system folder
    assert load_fashion_mnist(empty).data.shape[0] == 17
    assert fashion_mnist_available()
    assert load_fashion_mnist(home).data.shape[0] == 11


def test_incomplete_folder_is_skipped_and_reported(tmp_path, no_system_data):
    partial = tmp_path / "partial"
    _fake_set(partial)
    os.remove(partial / (IDX_FILES["test_images"] + ".gz"))
    os.remove(partial / (IDX_FILES["test_labels"] + ".gz"))
    assert not fashion_mnist_available(partial)
    with pytest.raises(DataNotFoundError, match="only 2 of 4 files, missing "
                       "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"):
        load_fashion_mnist(partial)


def test_missing_data_error_lists_the_places(tmp_path, monkeypatch):
    system = tmp_path / "no-system"
    monkeypatch.setattr(datasets, "FASHION_MNIST_DEFAULT_DIR", str(system))
    home, env = tmp_path / "home", tmp_path / "env"
    home.mkdir()
    monkeypatch.setenv("SKMLP_DATA", str(env))
    assert find_fashion_mnist(home) is None
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(home)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    # every place, in search order
    places = [str(home / "fashion-mnist"), str(home), str(env / "fashion-mnist"),
              str(env), str(system)]
    positions = [message.index(p + " (") for p in places]
    assert positions == sorted(positions)
    assert "data_home" in message and "$SKMLP_DATA" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "never downloads" in message

    monkeypatch.delenv("SKMLP_DATA")
    with pytest.raises(DataNotFoundError, match=r"\$SKMLP_DATA \(not set\)"):
        load_fashion_mnist()


# --- the real files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_fashion_mnist():
    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return load_fashion_mnist()


def test_real_fashion_mnist(real_fashion_mnist):
    bunch = real_fashion_mnist
    assert bunch.data.shape == (60000, 784) and bunch.data_test.shape == (10000, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    np.testing.assert_array_equal(np.unique(bunch.target), np.arange(10))
    np.testing.assert_array_equal(np.unique(bunch.target_test), np.arange(10))
    # 6000 / 1000 images per class
    np.testing.assert_array_equal(np.bincount(bunch.target), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(bunch.target_test), np.full(10, 1000))
    assert bunch.target_names == FASHION_CLASSES


def test_reachable_from_the_package():
    import skmlp

    assert skmlp.datasets is datasets
    assert skmlp.datasets.load_fashion_mnist is load_fashion_mnist
