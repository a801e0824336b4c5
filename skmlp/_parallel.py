"""One context for parallel model selection: joblib's backend and the BLAS threads per fit.

GridSearchCV, RandomizedSearchCV and cross_val_score run their fits through
joblib. skmlp's kernels release the GIL, so joblib's threading backend runs
them truly in parallel, in one process, without copying the data; the fits
then share the process's BLAS, whose thread count is process-wide. Several
fits at once, each with every core's worth of BLAS threads, oversubscribe the
machine (OpenBLAS threads spin while they wait for a core). The rule is
``fits at a time x BLAS threads per fit <= cores``: :func:`parallel_config`
sets both.
"""

import contextlib

import joblib
from threadpoolctl import threadpool_limits

__all__ = ["parallel_config"]


def _fits_at_a_time(n_jobs, cpus):
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return max(1, n_jobs)


@contextlib.contextmanager
def parallel_config(backend="threading", n_jobs=-1, *, threads_per_fit=None,
                    **joblib_params):
    """Run the model selection inside on all cores, with the right BLAS threads per fit.

    ``with skmlp.parallel_config(): GridSearchCV(...).fit(X, y)`` is
    ``joblib.parallel_config(backend, n_jobs=n_jobs)`` plus a limit on the
    BLAS (and OpenMP) threads of each fit, so that the fits running at once
    use the cores without oversubscribing them.

    Parameters
    ----------
    backend : str, default="threading"
        joblib backend. ``"threading"`` (recommended for skmlp on one machine:
        the kernels release the GIL and the data are not copied) limits the
        BLAS threads of this process for the duration of the block.
        ``"loky"`` (joblib's default, one process per worker) passes the limit
        to its workers (``inner_max_num_threads``). Any other backend, such as
        ``"dask"`` (see docs/scaling.md), is passed to joblib unchanged: a Dask
        worker's BLAS threads are set where the worker starts (``dask worker
        --nthreads``; Dask's nanny starts workers with ``OMP_NUM_THREADS``,
        ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1).
    n_jobs : int, default=-1
        Fits at a time, for estimators constructed with ``n_jobs=None`` (the
        default of GridSearchCV, RandomizedSearchCV and cross_val_score); -1
        means one per core (``joblib.cpu_count()``), -2 all cores but one.
    threads_per_fit : int, default=None
        BLAS threads per fit. Default: ``cores // fits at a time``, at least 1.
        skmlp already uses one BLAS thread for small networks (below 2e7
        multiply-adds per mini-batch, ``skmlp._threads``); the limit matters
        for larger ones and for other estimators in the same search.
    **joblib_params
        Passed to ``joblib.parallel_config`` (``verbose``, ``max_nbytes``,
        backend parameters, ...).

    Yields
    ------
    threads_per_fit : int or None
        The BLAS threads per fit that were set (None for backends other than
        threading and loky).

    Notes
    -----
    Under the threading backend the limit is process-wide for the duration
    of the block: it also applies to the final refit of a search, which runs
    alone in the calling thread. An estimator constructed with an explicit
    ``n_jobs`` keeps it; the BLAS limit is still computed from this
    function's ``n_jobs``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import cross_val_score
    >>> from skmlp import MLPClassifier, parallel_config
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0)
    >>> with parallel_config(n_jobs=2) as threads:
    ...     scores = cross_val_score(clf, X / 16, y, cv=4)
    >>> threads >= 1, scores.shape
    (True, (4,))
    """
    if threads_per_fit is not None and (
        not isinstance(threads_per_fit, int) or threads_per_fit < 1
    ):
        raise ValueError(f"threads_per_fit must be a positive int, got {threads_per_fit!r}")
    if backend in ("threading", "loky") and threads_per_fit is None:
        cpus = joblib.cpu_count()
        threads_per_fit = max(1, cpus // _fits_at_a_time(n_jobs, cpus))
    with contextlib.ExitStack() as stack:
        if backend == "threading":
            stack.enter_context(joblib.parallel_config(
                backend=backend, n_jobs=n_jobs, **joblib_params))
            stack.enter_context(threadpool_limits(limits=threads_per_fit))
        elif backend == "loky":
            stack.enter_context(joblib.parallel_config(
                backend=backend, n_jobs=n_jobs, inner_max_num_threads=threads_per_fit,
                **joblib_params))
        else:
            if threads_per_fit is not None:
                joblib_params["inner_max_num_threads"] = threads_per_fit
            stack.enter_context(joblib.parallel_config(
                backend=backend, n_jobs=n_jobs, **joblib_params))
        yield threads_per_fit
