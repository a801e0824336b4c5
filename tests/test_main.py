"""The main job, ``python -m skmlp``, and its IDX reader."""

import gzip
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from skmlp.__main__ import (
    FASHION_MNIST_FILES,
    IDXFormatError,
    fashion_mnist_available,
    load_fashion_mnist,
    main,
    read_idx,
)

# An epoch row: epoch, train loss, train accuracy, test accuracy, seconds.
ROW = re.compile(r"^\s*(\d+)\s+([-+.\deE]+)\s+([.\d]+)\s+([.\d]+)\s+([.\d]+)\s*$")


def _run(*args, cwd):
    # cwd away from the repository: `python -m` puts the working directory first
    # on sys.path, and the source tree's skmlp/ has no compiled kernels.
    return subprocess.run(
        [sys.executable, "-m", "skmlp", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_main_job_on_digits(tmp_path):
    proc = _run("--data", "digits", "--epochs", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [ROW.match(line) for line in proc.stdout.splitlines()]
    rows = [m for m in rows if m]
    assert [int(m.group(1)) for m in rows] == [1, 2, 3], proc.stdout
    for m in rows:
        loss, train_acc, test_acc, seconds = map(float, m.group(2, 3, 4, 5))
        assert np.isfinite(loss) and loss > 0
        assert 0 <= train_acc <= 1 and 0 <= test_acc <= 1
        assert seconds >= 0
    assert float(rows[-1].group(4)) > 0.8, proc.stdout
    # The loss goes down over the three epochs.
    losses = [float(m.group(2)) for m in rows]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--epochs", "-1"],
        ["--epochs", "0"],
        ["--epochs", "two"],
        ["--data", "nope"],
        ["--lr", "0"],
        ["--batch-size", "0"],
        ["--seed", "-3"],
        ["--no-such-option"],
    ],
)
def test_bad_arguments_exit_2_with_usage(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error:" in err


def test_bad_argument_subprocess(tmp_path):
    proc = _run("--epochs", "-1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert proc.stdout == ""


def test_help(tmp_path):
    proc = _run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for option in ("--epochs", "--hidden", "--lr", "--batch-size", "--seed", "--data"):
        assert option in proc.stdout


# --- IDX reader ----------------------------------------------------------------


def _idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_ubyte(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = _write(tmp_path / "images", _idx_bytes(images), compress)
    out = read_idx(path, expected_ndim=3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(
    "dtype, code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D),
                    (np.float64, 0x0E), (np.int8, 0x09)],
)
def test_read_idx_other_types_big_endian(tmp_path, dtype, code):
    data = np.array([[-1, 2, 300 if np.dtype(dtype).itemsize > 1 else 3]], dtype=dtype)
    path = _write(tmp_path / "x.idx", _idx_bytes(data, code))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_bad_magic_names_file(tmp_path, compress):
    payload = bytearray(_idx_bytes(np.zeros(5, dtype=np.uint8)))
    payload[0] = 0x12
    path = _write(tmp_path / "bad-labels-idx1-ubyte", bytes(payload), compress)
    with pytest.raises(IDXFormatError, match="bad-labels-idx1-ubyte.*magic"):
        read_idx(path)
    # An IDXFormatError is a ValueError.
    with pytest.raises(ValueError):
        read_idx(path)


def test_read_idx_unknown_type_code(tmp_path):
    payload = bytearray(_idx_bytes(np.zeros(5, dtype=np.uint8)))
    payload[2] = 0x42
    path = _write(tmp_path / "odd", bytes(payload))
    with pytest.raises(IDXFormatError, match="odd.*magic number 0x00004201"):
        read_idx(path)


def test_read_idx_wrong_ndim(tmp_path):
    path = _write(tmp_path / "labels", _idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match="labels.*1 dimensions, expected 3"):
        read_idx(path, expected_ndim=3)


@pytest.mark.parametrize("cut", [1, 10])
def test_read_idx_truncated(tmp_path, cut):
    payload = _idx_bytes(np.zeros((4, 3), dtype=np.uint8))
    path = _write(tmp_path / "short", payload[:-cut])
    with pytest.raises(IDXFormatError, match="short.*truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    payload = _idx_bytes(np.zeros((4, 3), dtype=np.uint8)) + b"\0"
    path = _write(tmp_path / "long", payload)
    with pytest.raises(IDXFormatError, match="long.*trailing"):
        read_idx(path)


def test_read_idx_tiny_and_corrupt_gzip(tmp_path):
    with pytest.raises(IDXFormatError, match="tiny"):
        read_idx(_write(tmp_path / "tiny", b"\0\0"))
    good = gzip.compress(_idx_bytes(np.zeros(100, dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match="broken.gz.*gzip"):
        read_idx(_write(tmp_path / "broken.gz", good[:-8]))


def _fake_fashion_mnist(directory, n_train=12, n_test=5, compress=True):
    rng = np.random.RandomState(0)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, name in FASHION_MNIST_FILES.items():
        fname = name + (".gz" if compress else "")
        _write(directory / fname, _idx_bytes(arrays[key]), compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_load_fashion_mnist_from_folder(tmp_path, compress):
    assert not fashion_mnist_available(tmp_path)
    arrays = _fake_fashion_mnist(tmp_path, compress=compress)
    assert fashion_mnist_available(tmp_path)
    X_train, X_test, y_train, y_test = load_fashion_mnist(tmp_path)
    assert X_train.shape == (12, 784) and X_test.shape == (5, 784)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert 0 <= X_train.min() and X_train.max() <= 1
    np.testing.assert_allclose(
        X_train, arrays["train_images"].reshape(12, -1) / 255, rtol=1e-6
    )
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_load_fashion_mnist_mismatched_counts(tmp_path):
    _fake_fashion_mnist(tmp_path)
    name = FASHION_MNIST_FILES["test_labels"] + ".gz"
    _write(tmp_path / name, _idx_bytes(np.zeros(4, dtype=np.uint8)), compress=True)
    with pytest.raises(IDXFormatError, match="5 images but .*4 labels"):
        load_fashion_mnist(tmp_path)


def test_main_job_on_fashion_mnist_folder(tmp_path, capsys):
    _fake_fashion_mnist(tmp_path, n_train=40, n_test=10)
    assert main(["--data-dir", str(tmp_path), "--epochs", "2",
                 "--hidden", "8", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "data: fashion-mnist, 40 train / 10 test" in out
    assert len([line for line in out.splitlines() if ROW.match(line)]) == 2


def test_main_job_reports_corrupt_file(tmp_path, capsys):
    _fake_fashion_mnist(tmp_path)
    name = FASHION_MNIST_FILES["train_labels"] + ".gz"
    _write(tmp_path / name, b"\x08\x08\x08\x08" + bytes(12), compress=True)
    assert main(["--data", "fashion-mnist", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert name in err and "magic" in err


def test_main_job_missing_fashion_mnist(tmp_path, capsys):
    assert main(["--data", "fashion-mnist", "--data-dir", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
