"""skmlp.plotting.TrainingCurveDisplay, drawn with matplotlib's Agg backend."""

import sys

import numpy as np
import pytest
from sklearn.datasets import make_regression

import matplotlib  # the test extra installs it

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from skmlp import MLPClassifier, MLPRegressor  # noqa: E402
from skmlp.plotting import TrainingCurveDisplay  # noqa: E402

from _helpers import fit_quietly  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_texts(disp):
    return [t.get_text() for t in disp.legend_.get_texts()]


def test_from_estimator_with_eval_sets(digits):
    X, y = digits
    clf = fit_quietly(
        MLPClassifier(hidden_layer_sizes=(16,), max_iter=6, random_state=0,
                      track_train_score=True),
        X[:1000], y[:1000], eval_set=[(X[1000:1400], y[1000:1400]), (X[1400:], y[1400:])],
    )
    h = clf.history_
    disp = TrainingCurveDisplay.from_estimator(clf)

    assert set(disp.lines_) == {
        "train loss", "train score", "eval set 0 loss", "eval set 0 score",
        "eval set 1 loss", "eval set 1 score",
    }
    for name, key in [("train loss", "train_loss"), ("train score", "train_score"),
                      ("eval set 0 loss", "eval_0_loss"),
                      ("eval set 1 score", "eval_1_score")]:
        x, values = disp.lines_[name].get_data()
        np.testing.assert_array_equal(x, h["epoch"])
        np.testing.assert_allclose(values, h[key])
    # losses on ax_, scores on its twin
    assert disp.lines_["train loss"].axes is disp.ax_
    assert disp.lines_["eval set 0 score"].axes is disp.score_ax_
    assert disp.score_ax_ is not disp.ax_
    assert disp.ax_.get_xlabel() == "epoch"
    assert disp.ax_.get_ylabel() == "loss"
    assert disp.score_ax_.get_ylabel() == "accuracy"
    assert disp.figure_ is disp.ax_.figure
    assert "MLPClassifier" in disp.ax_.get_title()
    assert _legend_texts(disp) == [
        "train loss", "train accuracy", "eval set 0 loss", "eval set 0 accuracy",
        "eval set 1 loss", "eval set 1 accuracy",
    ]
    # one colour per data set, losses solid and scores dashed
    assert disp.lines_["train loss"].get_color() == disp.lines_["train score"].get_color()
    assert disp.lines_["train loss"].get_color() != disp.lines_["eval set 0 loss"].get_color()
    assert disp.lines_["train loss"].get_linestyle() == "-"
    assert disp.lines_["train score"].get_linestyle() == "--"


def test_from_estimator_early_stopping_regressor():
    X, y = make_regression(n_samples=300, n_features=5, noise=1, random_state=0)
    y = y / y.std()
    reg = fit_quietly(MLPRegressor(hidden_layer_sizes=(8,), max_iter=15, early_stopping=True,
                                   random_state=0), X, y)
    h = reg.history_
    disp = TrainingCurveDisplay.from_estimator(reg)
    assert set(disp.lines_) == {"train loss", "validation loss", "validation score"}
    np.testing.assert_allclose(disp.lines_["validation loss"].get_ydata(), h["val_loss"])
    np.testing.assert_allclose(disp.lines_["validation score"].get_ydata(), h["val_score"])
    np.testing.assert_allclose(disp.lines_["validation score"].get_ydata(),
                               reg.validation_scores_)
    assert disp.score_ax_.get_ylabel() == "R²"
    assert _legend_texts(disp) == ["train loss", "validation loss", "validation R²"]


def test_plot_on_given_axes_and_returns_self(digits):
    X, y = digits
    clf = fit_quietly(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
                      X, y)
    fig, (ax0, ax1) = plt.subplots(1, 2)
    disp = TrainingCurveDisplay.from_estimator(clf, ax=ax1)
    assert disp.ax_ is ax1 and disp.figure_ is fig
    assert disp.lines_["train loss"] in ax1.get_lines()
    assert ax0.get_lines() == []
    # no scores recorded: no twin axes
    assert disp.score_ax_ is None and set(disp.lines_) == {"train loss"}

    # the Display holds the data; plot(ax=...) draws it again elsewhere
    fig2, ax2 = plt.subplots()
    assert disp.plot(ax=ax2) is disp
    assert disp.ax_ is ax2 and disp.figure_ is fig2
    np.testing.assert_allclose(disp.lines_["train loss"].get_ydata(), clf.history_["train_loss"])


def test_constructor_holds_data_and_show_scores():
    disp = TrainingCurveDisplay(
        epochs=[1, 2, 3], losses={"train": [3.0, 2.0, 1.0]},
        scores={"train": [0.1, 0.5, 0.9]}, score_name="accuracy",
    )
    assert not hasattr(disp, "ax_")  # nothing drawn yet
    disp.plot(show_scores=False)
    assert disp.score_ax_ is None and set(disp.lines_) == {"train loss"}
    disp.plot()
    np.testing.assert_allclose(disp.lines_["train score"].get_ydata(), [0.1, 0.5, 0.9])
    bad = TrainingCurveDisplay(epochs=[1, 2], losses={"train": [1.0]})
    with pytest.raises(ValueError, match="train loss curve has 1 values for 2 epochs"):
        bad.plot()


def test_from_history_any_prefix_and_epochs():
    history = {
        "epoch": [1, 2, 3], "train_loss": [1.0, 0.8, 0.7], "train_score": [0.5, 0.6, 0.7],
        "test_loss": [1.1, 0.9, 0.85], "test_score": [0.4, 0.55, 0.6],
        "learning_rate": [0.1, 0.1, 0.1], "time": [0.1, 0.2, 0.3],
    }
    disp = TrainingCurveDisplay.from_history(history, score_name="accuracy")
    assert set(disp.lines_) == {"train loss", "train score", "test loss", "test score"}
    np.testing.assert_allclose(disp.lines_["test loss"].get_ydata(), history["test_loss"])
    # A history_ grown by partial_fit numbers every call's epoch 1: x is 1, 2, ...
    grown = {"epoch": [1, 1, 1], "train_loss": [1.0, 0.8, 0.7]}
    disp = TrainingCurveDisplay.from_history(grown)
    np.testing.assert_array_equal(disp.lines_["train loss"].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="no '<name>_loss'"):
        TrainingCurveDisplay.from_history({"epoch": [1], "time": [0.1]})


def test_from_estimator_needs_a_fitted_estimator():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(MLPClassifier())


def test_saved_png(digits, tmp_path):
    X, y = digits
    clf = fit_quietly(
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=25, random_state=0,
                      early_stopping=True, track_train_score=True, n_iter_no_change=50),
        X[:1500], y[:1500], eval_set=[(X[1500:], y[1500:])],
    )
    disp = TrainingCurveDisplay.from_estimator(clf)
    path = tmp_path / "curves.png"
    disp.figure_.savefig(path, dpi=80)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (400, 640)  # figsize (8, 5) inches at 80 dpi
    assert image[..., :3].std() > 0.05  # not blank
    # lines in several colours: many distinct pixel values
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50


def test_import_error_without_matplotlib(monkeypatch, digits):
    X, y = digits
    clf = fit_quietly(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0), X, y)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"requires matplotlib.*pip install \"skmlp\[plot\]\""):
        TrainingCurveDisplay.from_estimator(clf)
    with pytest.raises(ImportError, match="from_history requires matplotlib"):
        TrainingCurveDisplay.from_history(clf.history_)
    # building a Display needs no matplotlib; drawing does
    disp = TrainingCurveDisplay(epochs=[1], losses={"train": [1.0]})
    with pytest.raises(ImportError, match="plot requires matplotlib"):
        disp.plot()


def test_reachable_from_the_package():
    import skmlp

    assert skmlp.plotting.TrainingCurveDisplay is TrainingCurveDisplay
