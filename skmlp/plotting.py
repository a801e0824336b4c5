"""Plots of a fitted model's training, following scikit-learn's Display API.

matplotlib is an optional dependency (``pip install "skmlp[plot]"``); it is
imported only when something is drawn, so this module imports without it.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

__all__ = ["TrainingCurveDisplay"]

_INSTALL_HINT = (
    'Install it with: pip install "skmlp[plot]" (or: pip install matplotlib).'
)


def _check_matplotlib(caller):
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. {_INSTALL_HINT}"
        ) from exc


def _source_label(prefix):
    """Legend label of a history prefix: train, validation, eval set i, other."""
    if prefix == "train":
        return "train"
    if prefix == "val":
        return "validation"
    if prefix.startswith("eval_") and prefix[5:].isdigit():
        return f"eval set {prefix[5:]}"
    return prefix.replace("_", " ")


class TrainingCurveDisplay:
    """Training curves: loss and score per epoch of each data set.

    Draws the per-epoch records of a model's ``history_`` (or any dict of the
    same form): the losses of the training data, the validation split
    (``early_stopping``) and every ``eval_set``, and their scores (accuracy
    for a classifier, R² for a regressor). **Losses go on the left y-axis of
    ``ax``, scores on a second y-axis on its right** (``ax.twinx()``), sharing
    the epoch axis; each data set keeps one colour, losses solid with round
    markers, scores dashed with square markers, and one legend below the axes
    lists all lines.

    Build it with :meth:`from_estimator` or :meth:`from_history`; the
    constructor only stores the data, :meth:`plot` draws (scikit-learn's
    Display convention). matplotlib is needed only to draw.

    Parameters
    ----------
    epochs : array-like of shape (n_epochs,)
        The x values.

    losses : dict of str to array-like of shape (n_epochs,)
        Loss curves, keyed by the name of their data set ('train',
        'validation', 'eval set 0', ...).

    scores : dict of str to array-like of shape (n_epochs,), default=None
        Score curves, keyed alike.

    score_name : str, default="score"
        Label of the score axis, e.g. 'accuracy' or 'R²'.

    loss_name : str, default="loss"
        Label of the loss axis.

    estimator_name : str, default=None
        Shown in the title when given.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes of the losses (the one passed to :meth:`plot`).

    score_ax_ : matplotlib Axes or None
        The twin axes of the scores; None when there are no scores to draw.

    figure_ : matplotlib Figure
        The figure of ``ax_``.

    lines_ : dict of str to matplotlib Line2D
        Every line drawn, keyed ``'<data set> loss'`` and
        ``'<data set> score'`` (e.g. ``'train loss'``, ``'eval set 0 score'``).

    legend_ : matplotlib Legend or None
        The legend of all lines, on ``ax_``, below the axes (one column per
        data set). Figures made by the Display use constrained layout, which
        makes room for it; with your own ``ax``, use
        ``layout="constrained"`` or ``savefig(bbox_inches="tight")``.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against the number
        of training samples.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skmlp import MLPClassifier
    >>> from skmlp.plotting import TrainingCurveDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=20, early_stopping=True, random_state=0,
    ...                     track_train_score=True).fit(X / 16, y)
    >>> disp = TrainingCurveDisplay.from_estimator(clf)
    >>> sorted(disp.lines_)
    ['train loss', 'train score', 'validation loss', 'validation score']
    """

    def __init__(self, *, epochs, losses, scores=None, score_name="score",
                 loss_name="loss", estimator_name=None):
        self.epochs = epochs
        self.losses = losses
        self.scores = scores
        self.score_name = score_name
        self.loss_name = loss_name
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, show_scores=True, title=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw the losses on (the scores go on its twin); a new
            figure and axes when None.

        show_scores : bool, default=True
            Also draw the scores on a second y-axis.

        title : str, default=None
            Title of the axes; by default the estimator's name, if known.

        Returns
        -------
        display : TrainingCurveDisplay
            Self, with ``ax_``, ``score_ax_``, ``figure_``, ``lines_`` and
            ``legend_`` set.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(8, 5), layout="constrained")

        epochs = np.asarray(self.epochs)
        losses = dict(self.losses)
        scores = dict(self.scores or {}) if show_scores else {}
        for kind, curves in (("loss", losses), ("score", scores)):
            for name, values in curves.items():
                if len(values) != len(epochs):
                    raise ValueError(
                        f"The {name} {kind} curve has {len(values)} values for "
                        f"{len(epochs)} epochs."
                    )

        # One colour per data set, shared by its loss and score.
        names = list(dict.fromkeys([*losses, *scores]))
        colors = {name: f"C{i % 10}" for i, name in enumerate(names)}

        self.lines_ = {}
        for name, values in losses.items():
            (self.lines_[f"{name} loss"],) = ax.plot(
                epochs, np.asarray(values, dtype=float), color=colors[name],
                linestyle="-", marker="o", markersize=3, label=f"{name} loss",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.loss_name)

        self.score_ax_ = None
        if scores:
            score_ax = ax.twinx()
            for name, values in scores.items():
                (self.lines_[f"{name} score"],) = score_ax.plot(
                    epochs, np.asarray(values, dtype=float), color=colors[name],
                    linestyle="--", marker="s", markersize=3,
                    label=f"{name} {self.score_name}",
                )
            score_ax.set_ylabel(self.score_name)
            self.score_ax_ = score_ax

        if len(epochs) and np.all(np.mod(epochs, 1) == 0):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))

        # The legend sits below the axes, outside the curves (a legend inside
        # would hide some line whatever its place: 'best' sees only the lines
        # of its own axes). One column per data set: its loss above its score.
        handles = []
        for name in names:
            handles += [self.lines_[f"{name} {kind}"] for kind in ("loss", "score")
                        if f"{name} {kind}" in self.lines_]
        self.legend_ = None
        if handles:
            self.legend_ = ax.legend(
                handles, [h.get_label() for h in handles], loc="upper center",
                bbox_to_anchor=(0.5, -0.12), ncol=len(names), fontsize="small",
                frameon=False,
            )
        if title is None and self.estimator_name:
            title = f"Training curves of {self.estimator_name}"
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)

        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_history(cls, history, *, ax=None, show_scores=True,
                     score_name="score", estimator_name=None, title=None):
        """Draw the curves of a ``history_`` dict.

        Every key ``'<prefix>_loss'`` is a loss curve and every
        ``'<prefix>_score'`` a score curve of the data set ``<prefix>``:
        'train', 'val' (drawn as 'validation'), 'eval_<i>' (drawn as
        'eval set <i>'), or any other name (e.g. a 'test_loss' recorded by
        hand). The x values are ``history['epoch']`` when they increase
        strictly, else 1, 2, ... (a ``history_`` grown by repeated
        ``partial_fit`` calls numbers every call's epoch 1).

        Parameters
        ----------
        history : dict of str to list
            Per-epoch records, e.g. an estimator's ``history_`` or
            ``pandas.DataFrame(history_)`` (anything with ``keys()`` and
            ``[key]``).

        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        show_scores : bool, default=True
            Also draw the scores on a second y-axis.

        score_name : str, default="score"
            Label of the score axis.

        estimator_name : str, default=None
            Name for the title.

        title : str, default=None
            Title; by default from ``estimator_name``.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_history")
        keys = list(history.keys())
        losses, scores = {}, {}
        for key in keys:
            for suffix, curves in (("_loss", losses), ("_score", scores)):
                if key.endswith(suffix) and len(key) > len(suffix):
                    prefix = key[: -len(suffix)]
                    curves[_source_label(prefix)] = np.asarray(history[key], dtype=float)
        if not losses and not scores:
            raise ValueError(
                "The history has no '<name>_loss' or '<name>_score' entry to plot; "
                f"its keys are {keys}."
            )
        n = len(next(iter((losses or scores).values())))
        epochs = np.arange(1, n + 1)
        if "epoch" in keys:
            recorded = np.asarray(history["epoch"])
            if len(recorded) == n and (n < 2 or np.all(np.diff(recorded) > 0)):
                epochs = recorded
        display = cls(
            epochs=epochs, losses=losses, scores=scores, score_name=score_name,
            estimator_name=estimator_name,
        )
        return display.plot(ax=ax, show_scores=show_scores, title=title)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, show_scores=True,
                       score_name=None, title=None):
        """Draw the curves of a fitted skmlp estimator's ``history_``.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            A fitted estimator (or anything with a ``history_`` dict).

        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        show_scores : bool, default=True
            Also draw the scores on a second y-axis. Scores are in the
            history for the training data with ``track_train_score=True``,
            for the validation split with ``early_stopping=True``, and for
            every ``eval_set`` passed to ``fit``.

        score_name : str, default=None
            Label of the score axis; 'accuracy' for a classifier, 'R²' for
            a regressor by default.

        title : str, default=None
            Title; by default names the estimator.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator, "history_")
        if score_name is None:
            score_name = "accuracy" if is_classifier(estimator) else "R²"
        return cls.from_history(
            estimator.history_, ax=ax, show_scores=show_scores,
            score_name=score_name, estimator_name=type(estimator).__name__,
            title=title,
        )
