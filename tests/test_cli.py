"""The command line, ``python -m skmlp`` (train, cv, predict).

End-to-end cases run ``python -m skmlp`` as a subprocess; the variations call
``main`` in-process (the same code, much faster).

The subprocess must import the skmlp under test, the one pytest imported: in CI
that is the installed package, locally it may be a source tree built in place.
So it gets that package's parent folder first on PYTHONPATH, and it runs in a
temporary folder, away from the repository root, whose ``skmlp/`` source folder
has no compiled kernels (``python -m`` puts the working directory first on
sys.path).
"""

import io
import os
import re
import subprocess
import sys
import time
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import train_test_split

import skmlp
from skmlp import MLPClassifier, datasets
from skmlp import _cli, _mlp_fast
from skmlp.__main__ import main
from skmlp.datasets import IDX_FILES

from _helpers import child_env, idx_bytes, write_payload



def _fake_set(directory, n_train=12, n_test=5):
    """The four gzip IDX files of a small Fashion-MNIST look-alike (as in test_datasets)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.randint(0, 256, (n_test, 28, 28)),
        "test_labels": np.arange(n_test) % 10,
    }
    for key, name in IDX_FILES.items():
        write_payload(directory / (name + ".gz"), idx_bytes(arrays[key].astype(np.uint8)),
                      compress=True)


def _env(**extra):
    env = child_env()
    env.pop("SKMLP_DATA", None)
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def _run(*args, cwd, **env):
    return subprocess.run(
        [sys.executable, "-m", "skmlp", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=_env(**env),
    )


def _table(stdout):
    """(columns, rows) of the per-epoch (or per-fold) table in the output."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] in (["epoch"], ["fold"]))
    columns = lines[start].split()
    rows = []
    for line in lines[start + 1:]:
        cells = line.split()
        try:
            values = [float(c) for c in cells]
        except ValueError:
            break
        if len(values) != len(columns):
            break
        rows.append(dict(zip(columns, values)))
    return columns, rows


def _main(argv):
    out = io.StringIO()
    status = main([str(a) for a in argv], out=out)
    return status, out.getvalue()


# --- subprocess: the package under test -------------------------------------


def test_subprocess_runs_the_package_under_test(tmp_path):
    # one line on stdout, however narrow the terminal (argparse would wrap it)
    proc = _run("--version", cwd=tmp_path, COLUMNS="20")
    assert proc.returncode == 0, proc.stderr
    version, folder, build = re.fullmatch(
        r"skmlp (\S+) \((.*); kernels: (\w+) build\)\n", proc.stdout).groups()
    assert version == skmlp.__version__
    assert os.path.realpath(folder) == os.path.realpath(os.path.dirname(skmlp.__file__))
    # the child inherits this session's environment (SKMLP_KERNELS included)
    assert build == _mlp_fast.variant


# --- train -------------------------------------------------------------------


def test_train_digits_rows_and_plot(tmp_path):
    proc = _run("train", "digits", "--epochs", 4, "--hidden", 32, "--plot", "curves.png",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "data: digits, 1347 train / 450 test samples" in proc.stdout
    columns, rows = _table(proc.stdout)
    assert columns == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4], proc.stdout
    for r in rows:
        assert 0 < r["train_loss"] and 0 < r["test_loss"]
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1
        assert r["seconds"] >= 0
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["test_acc"] > 0.5

    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "curves.png")
    assert image.shape[:2] == (500, 800)  # 8 x 5 inches at 100 dpi
    assert image[..., :3].std() > 0.05  # not blank
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50


def test_default_run_is_the_classic_configuration_on_digits(no_system_data):
    status, out = _main([])
    assert status == 0
    assert "data: digits" in out
    assert ("MLPClassifier(hidden_layer_sizes=(256,), activation='relu', solver='sgd', "
            "alpha=0.0001, batch_size=256, learning_rate='constant', "
            "learning_rate_init=0.1, max_iter=10, momentum=0.0") in out
    _, rows = _table(out)
    assert [r["epoch"] for r in rows] == list(range(1, 11))
    assert rows[-1]["test_acc"] > 0.85


def test_default_run_uses_fashion_mnist_when_installed(tmp_path, no_system_data):
    _fake_set(no_system_data, n_train=40, n_test=10)
    status, out = _main(["--epochs", 2, "--hidden", 8, "--batch-size", 16])
    assert status == 0
    assert "data: fashion-mnist, 40 train / 10 test samples (the data set's own split)" in out
    assert len(_table(out)[1]) == 2


def test_train_split_pools_all_samples(tmp_path, no_system_data):
    _fake_set(tmp_path / "fm", n_train=80, n_test=20)
    status, out = _main(["fashion-mnist", "--data-dir", tmp_path / "fm", "--split",
                         "60:20:20", "--epochs", 2, "--hidden", 8, "--threads", 1])
    assert status == 0
    assert "60 train / 20 validation / 20 test samples (split 60:20:20)" in out
    columns, rows = _table(out)
    assert columns == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                       "test_loss", "test_acc", "seconds"]
    assert len(rows) == 2


def test_rows_are_flushed_as_training_goes(monkeypatch, no_system_data):
    class Recorder(io.StringIO):
        flushed = ""

        def flush(self):
            self.flushed = self.getvalue()

    out = Recorder()
    seen = []
    real_partial_fit = MLPClassifier.partial_fit

    def partial_fit(self, *args, **kwargs):
        # rows of the finished epochs are out before the next epoch starts
        seen.append(len(_table(out.flushed)[1]) if "epoch" in out.flushed else None)
        return real_partial_fit(self, *args, **kwargs)

    monkeypatch.setattr(MLPClassifier, "partial_fit", partial_fit)
    assert main(["digits", "--epochs", "4", "--hidden", "8"], out=out) == 0
    assert seen == [0, 1, 2, 3]


def _assert_saved_model_is_partial_fits(path, digits, epochs):
    """The model `train digits --hidden 16 --seed 5 --save path` saved equals
    ``epochs`` plain partial_fit calls with the command line's settings."""
    saved = joblib.load(path)
    X, y = digits
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=5)
    replica = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0,
                            learning_rate_init=0.1, batch_size=256,
                            random_state=np.random.RandomState(5))
    for _ in range(epochs):
        replica.partial_fit(X_train, y_train, classes=np.arange(10))
    for a, b in zip(saved.coefs_ + saved.intercepts_, replica.coefs_ + replica.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_train_is_one_partial_fit_per_epoch_with_a_shared_random_state(tmp_path, digits):
    path = tmp_path / "model.joblib"
    status, _ = _main(["digits", "--epochs", 3, "--hidden", 16, "--seed", 5,
                       "--save", path])
    assert status == 0
    _assert_saved_model_is_partial_fits(path, digits, epochs=3)


def test_epoch_progress_line():
    class TTY(io.StringIO):
        def isatty(self):
            return True

    stream = TTY()
    with _cli._EpochProgress(stream, 3, previous_seconds=0.2, interval=0.01, delay=0):
        time.sleep(0.1)
    text = stream.getvalue()
    assert "\repoch 3: 0." in text and "% est.)" in text
    assert text.endswith("\r\033[K")  # the line is cleared afterwards

    quiet = TTY()
    with _cli._EpochProgress(quiet, 1, delay=10):
        pass  # an epoch shorter than the delay shows nothing
    assert quiet.getvalue() == ""


def test_blas_threads_auto(monkeypatch):
    monkeypatch.setattr(_cli, "_usable_cpus", lambda: 2)
    assert _cli._resolve_threads("auto") == 1
    monkeypatch.setattr(_cli, "_usable_cpus", lambda: 8)
    assert _cli._resolve_threads("auto") is None  # BLAS as configured
    assert _cli._resolve_threads(3) == 3
    from threadpoolctl import threadpool_info

    blas = [m for m in threadpool_info() if m["user_api"] == "blas"]
    with _cli._blas_limit(1):
        assert all(m["num_threads"] == 1 for m in threadpool_info()
                   if m["user_api"] == "blas")
    assert [m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"] == [
        m["num_threads"] for m in blas]


# --- CSV data sets ----------------------------------------------------------------


@pytest.fixture
def species_csv(tmp_path):
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3,
                               n_redundant=0, n_classes=3, random_state=0)
    frame = pd.DataFrame(X * 10 + 50, columns=["width", "height", "depth", "mass"])
    frame.insert(2, "species", np.array(["setosa", "versicolor", "virginica"])[y])
    path = tmp_path / "species.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_csv_classification_and_predict_by_column_name(tmp_path, species_csv):
    path, frame = species_csv
    proc = _run("train", path, "--target", "species", "--epochs", 15, "--hidden", 16,
                "--split", "70:15:15", "--save", "model.joblib", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "data: species.csv, 210 train / 45 validation / 45 test samples" in proc.stdout
    assert "4 features, 3 classes" in proc.stdout and "StandardScaler" in proc.stdout
    columns, rows = _table(proc.stdout)
    assert columns[2:7] == ["train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]
    assert len(rows) == 15 and rows[-1]["test_acc"] > 0.6

    model = joblib.load(tmp_path / "model.joblib")
    assert list(model.feature_names_in_) == ["width", "height", "depth", "mass"]
    # predict picks the model's columns by name, whatever else the file has
    shuffled = frame[["mass", "species", "depth", "width", "height"]]
    shuffled.to_csv(tmp_path / "new.csv", index=False)
    status, out = _main(["predict", tmp_path / "model.joblib", tmp_path / "new.csv"])
    assert status == 0
    predicted = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    expected = model.predict(frame[["width", "height", "depth", "mass"]])
    np.testing.assert_array_equal(predicted, expected)
    assert set(predicted) <= {"setosa", "versicolor", "virginica"}


def test_csv_without_scaling_keeps_column_names(tmp_path, species_csv):
    path, frame = species_csv
    model_path = tmp_path / "m.joblib"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "X has feature names, but ..."
        status, out = _main([path, "--target", "species", "--scale", "none",
                             "--epochs", 2, "--hidden", 8, "--save", model_path])
        assert status == 0 and "StandardScaler" not in out
        model = joblib.load(model_path)
        assert list(model.feature_names_in_) == ["width", "height", "depth", "mass"]
        status, out = _main(["predict", model_path, path])
    assert status == 0
    np.testing.assert_array_equal(
        pd.read_csv(io.StringIO(out))["prediction"],
        model.predict(frame[["width", "height", "depth", "mass"]]),
    )


def test_csv_regression_with_default_target(tmp_path):
    X, y = make_regression(n_samples=400, n_features=5, noise=5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["target"] = y / y.std()
    frame["x0"] = frame["x0"] * 1000  # scaled away by the default standard scaling
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    status, out = _main([path, "--epochs", 20, "--hidden", 32, "--batch-size", 32])
    assert status == 0
    assert "regression" in out and "MLPRegressor(" in out
    columns, rows = _table(out)
    assert columns == ["epoch", "train_loss", "train_r2", "test_loss", "test_r2", "seconds"]
    assert rows[-1]["test_r2"] > 0.9


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,b\n1,2\n", ["--target", "c"], "no column 'c'"),
        ("a,b,y\nx,2,1\nz,3,0\n", [], "non-numeric feature columns a"),
        ("a,y\n1,2\n,3\n", [], "missing values in a"),
    ],
)
def test_csv_errors(tmp_path, capsys, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main([str(path), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- cv ---------------------------------------------------------------------------


def test_cv_prints_folds_and_mean_std(tmp_path):
    proc = _run("cv", "digits", "--folds", 3, "--epochs", 3, "--hidden", 16, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3-fold stratified cross-validation" in proc.stdout
    columns, rows = _table(proc.stdout)
    assert columns == ["fold", "train_acc", "test_acc", "fit_seconds"]
    assert [r["fold"] for r in rows] == [1, 2, 3]
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("mean ± std"))
    match = re.search(r"test_acc (\d\.\d+) ± (\d\.\d+)", summary)
    scores = [r["test_acc"] for r in rows]
    assert float(match.group(1)) == pytest.approx(np.mean(scores), abs=1e-3)
    assert float(match.group(2)) == pytest.approx(np.std(scores), abs=1e-3)
    assert "train_acc" in summary and "fit_seconds" in summary


def test_cv_regression_csv_uses_plain_kfold(tmp_path):
    X, y = make_regression(n_samples=200, n_features=3, noise=1, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=y / y.std())
    frame.to_csv(tmp_path / "r.csv", index=False)
    status, out = _main(["cv", tmp_path / "r.csv", "--folds", 4, "--epochs", 20,
                         "--lr", 0.01, "--hidden", 16])
    assert status == 0
    assert "4-fold cross-validation" in out
    columns, rows = _table(out)
    assert columns == ["fold", "train_r2", "test_r2", "fit_seconds"] and len(rows) == 4
    assert "test_r2" in out.splitlines()[-1] and "±" in out.splitlines()[-1]


# --- predict --------------------------------------------------------------------


def test_predict_roundtrip_csv(tmp_path, digits):
    X, y = digits
    model_path = tmp_path / "digits.joblib"
    assert _main(["digits", "--epochs", 3, "--hidden", 16, "--save", model_path])[0] == 0
    rows = X[::7]
    pd.DataFrame(rows, columns=[f"p{i}" for i in range(64)]).to_csv(
        tmp_path / "x.csv", index=False)

    proc = _run("predict", model_path, "x.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model = joblib.load(model_path)
    predicted = pd.read_csv(io.StringIO(proc.stdout))
    assert list(predicted.columns) == ["prediction"]
    np.testing.assert_array_equal(predicted["prediction"], model.predict(rows))

    status, out = _main(["predict", model_path, tmp_path / "x.csv", "--proba",
                         "--output", tmp_path / "p.csv"])
    assert status == 0 and out == ""
    written = pd.read_csv(tmp_path / "p.csv")
    assert list(written.columns) == ["prediction"] + [f"proba_{c}" for c in range(10)]
    np.testing.assert_allclose(written.iloc[:, 1:].to_numpy(), model.predict_proba(rows),
                               rtol=1e-5, atol=1e-7)


def test_predict_idx_images(tmp_path, no_system_data):
    _fake_set(tmp_path / "fm", n_train=60, n_test=15)
    model_path = tmp_path / "fm.joblib"
    assert _main(["fashion-mnist", "--data-dir", tmp_path / "fm", "--epochs", 2,
                  "--hidden", 8, "--batch-size", 16, "--save", model_path])[0] == 0
    images = tmp_path / "fm" / (IDX_FILES["test_images"] + ".gz")
    status, out = _main(["predict", model_path, images])
    assert status == 0
    model = joblib.load(model_path)
    expected = model.predict(datasets.load_fashion_mnist(tmp_path / "fm").data_test)
    np.testing.assert_array_equal(pd.read_csv(io.StringIO(out))["prediction"], expected)


def test_predict_errors(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("a\n1\n")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    assert main(["predict", str(tmp_path / "none.joblib"), str(tmp_path / "x.csv")]) == 1
    assert "no such model file" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "junk.joblib"), str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert "junk.joblib" in err and len(err.strip().splitlines()) == 1


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--epochs", "-1"],
        ["--epochs", "0"],
        ["--epochs", "two"],
        ["nope"],
        ["--data", "nope"],
        ["digits", "--data", "mnist"],
        ["--lr", "0"],
        ["--batch-size", "0"],
        ["--seed", "-3"],
        ["--threads", "0"],
        ["--threads", "many"],
        ["--momentum", "1.5"],
        ["--dropout", "1"],
        ["--hidden", "0"],
        ["--hidden", "a,b"],
        ["--activation", "nope"],
        ["--solver", "lbfgs"],
        ["--task", "nope"],
        ["--split", "80"],
        ["--split", "80:-20"],
        ["--split", "a:b"],
        ["--split", "1:1:1:1"],
        ["--no-such-option"],
        ["cv", "--folds", "1"],
        ["predict"],
        ["predict", "model.joblib"],
    ],
)
def test_bad_arguments_exit_2_with_usage(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error:" in err


def test_bad_argument_subprocess(tmp_path):
    proc = _run("train", "--epochs", "-1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "--epochs" in proc.stderr
    assert proc.stdout == ""


def test_corrupt_data_is_one_line_without_traceback(tmp_path):
    _fake_set(tmp_path / "fm")
    name = IDX_FILES["train_labels"] + ".gz"
    write_payload(tmp_path / "fm" / name, b"\x08\x08\x08\x08" + bytes(12), compress=True)
    proc = _run("train", "fashion-mnist", "--data-dir", tmp_path / "fm", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "magic" in lines[0]
    assert lines[0].startswith("python -m skmlp: error: ")


def test_missing_data_is_one_line(tmp_path, capsys, no_system_data):
    assert main(["fashion-mnist", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Fashion-MNIST not found" in err and str(tmp_path) in err
    assert str(no_system_data) in err and "apt-get install dataset-fashion-mnist" in err


def test_plot_without_matplotlib_fails_before_training(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["digits", "--plot", "x.png"]) == 1
    err = capsys.readouterr().err
    assert "matplotlib" in err and "skmlp[plot]" in err
    assert capsys.readouterr().out == ""


def _help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_help(capsys):
    out = _help(["--help"], capsys)
    for command in ("train", "cv", "predict"):
        assert command in out
    out = _help(["train", "--help"], capsys)
    for option in ("--epochs", "--hidden", "--lr", "--batch-size", "--alpha", "--momentum",
                   "--dropout", "--weight-init", "--seed", "--activation", "--solver",
                   "--task", "--target", "--split", "--plot", "--save"):
        assert option in out
    assert "--folds" in _help(["cv", "--help"], capsys)
    assert "--output" in _help(["predict", "--help"], capsys)


def test_ctrl_c_stops_training_after_the_epoch_and_keeps_the_model(tmp_path, digits,
                                                                     monkeypatch):
    """Ctrl-C during an epoch: that epoch completes, is reported, and training
    stops there; the summary, and the saved model, cover the epochs run."""
    import signal

    from skmlp import _mlp_fast

    kernel = _mlp_fast._train_epoch
    calls = []

    def interrupted_second_epoch(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the epoch runs
        return kernel(*args)

    monkeypatch.setattr(_mlp_fast, "_train_epoch", interrupted_second_epoch)
    path = tmp_path / "model.joblib"
    status, text = _main(["digits", "--epochs", 5, "--hidden", 16, "--seed", 5,
                          "--save", path])
    assert status == 0, text
    assert len(calls) == 2
    _, rows = _table(text)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert "interrupted: training stopped after epoch 2" in text
    assert "done: 2 epochs" in text
    # the saved model is that of two complete epochs
    _assert_saved_model_is_partial_fits(path, digits, epochs=2)
