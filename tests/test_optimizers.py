"""Reference tests of the stochastic solvers' update rules and schedules.

Every solver is run for a few steps by the estimator and, beside it, by a NumPy
implementation of the documented update rule written out below ('sgd' and
'adam' as scikit-learn writes them; 'adagrad', 'rmsprop' and 'adamw' as
PyTorch's ``torch.optim`` does). The reference takes its gradients from the
compiled loss-and-gradient (``est._loss_grad_function``, checked on its own in
tests/test_gradients*.py) over the very same mini-batches, so the comparison
isolates the update rule, the step counting, the batching and the learning-rate
schedule.

The reference's initial parameters are drawn here, by the documented
'glorot_uniform' scheme from ``np.random.RandomState(random_state)`` (W then b
per layer, U[-r, r], r = sqrt(6 / (fan_in + fan_out)); PReLU slopes 0.25), not
read from the estimator: this stays independent of the estimator's internals
and is itself checked against a fit whose only step is negligible
(``test_initial_parameters``).

Runs use ``shuffle=False`` (batches are consecutive rows), ``tol=0`` and
``n_iter_no_change=np.inf`` (no early stop), so that ``max_iter`` epochs run.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skmlp import MLPClassifier, MLPRegressor

from _helpers import encode_targets, fit_quietly

N_SAMPLES, N_FEATURES = 12, 3
SEED = 5
LR = 0.05

SOLVER_CASES = {
    # id: (solver, extra estimator parameters)
    "sgd": ("sgd", dict(momentum=0.0)),
    "sgd_momentum": ("sgd", dict(momentum=0.8, nesterovs_momentum=False)),
    "sgd_nesterov": ("sgd", dict(momentum=0.7, nesterovs_momentum=True)),
    "adam": ("adam", dict(beta_1=0.8, beta_2=0.95, epsilon=1e-7)),
    "adagrad": ("adagrad", dict(epsilon=1e-6)),
    "rmsprop": ("rmsprop", dict(rho=0.9, epsilon=1e-7)),
    "adamw": ("adamw", dict(beta_1=0.8, beta_2=0.95, epsilon=1e-7, weight_decay=0.3)),
}
ALL_SOLVERS = list(SOLVER_CASES)


def _data(seed=0, n=N_SAMPLES, classification=False):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, N_FEATURES))
    if classification:
        y = rng.randint(0, 3, n)
        y[:3] = [0, 1, 2]
    else:
        y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(n)
    return X, y


def _estimator(solver_case, activation="tanh", hidden=(4, 3), batch_size=N_SAMPLES,
               max_iter=4, classification=False, **extra):
    solver, params = SOLVER_CASES[solver_case]
    kw = dict(
        hidden_layer_sizes=hidden, activation=activation, solver=solver,
        batch_size=batch_size, max_iter=max_iter, shuffle=False, tol=0.0,
        n_iter_no_change=np.inf, random_state=SEED, learning_rate_init=LR,
        alpha=0.1,
    )
    kw.update(params)
    kw.update(extra)
    return MLPClassifier(**kw) if classification else MLPRegressor(**kw)


def initial_theta(units, activation, seed):
    """scikit-learn's Glorot-uniform draws, in the parameter vector's layout."""
    rs = np.random.RandomState(seed)
    factor = 2.0 if activation == "logistic" else 6.0
    parts = []
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        parts.append(rs.uniform(-bound, bound, (fan_in, fan_out)).ravel())
        parts.append(rs.uniform(-bound, bound, fan_out))
    if activation == "prelu":
        parts.append(np.full(sum(units[1:-1]), 0.25))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------
# The NumPy reference
# ---------------------------------------------------------------------------


class Reference:
    """One solver's update rule written out in NumPy (float64 by default)."""

    def __init__(self, est, n_params, dtype=np.float64):
        p = est.get_params()
        self.solver = p["solver"]
        self.p = p
        self.dtype = dtype
        self.t = 0
        self.s1 = np.zeros(n_params, dtype=dtype)  # velocity / sum / avg / m
        self.s2 = np.zeros(n_params, dtype=dtype)  # second moment (adam, adamw)

    def step(self, theta, g, lr):
        """Return the updated theta after one step with gradient g at rate lr."""
        p = self.p
        self.t += 1
        t = self.t
        eps = p["epsilon"]
        if self.solver == "sgd":
            # scikit-learn: v = momentum * v - lr * g; theta += v, or with
            # Nesterov theta += momentum * v - lr * g
            mu = p["momentum"]
            self.s1 = mu * self.s1 - lr * g
            if p["nesterovs_momentum"]:
                return theta + (mu * self.s1 - lr * g)
            return theta + self.s1
        if self.solver == "adam":
            # scikit-learn: bias correction folded into the step size
            b1, b2 = p["beta_1"], p["beta_2"]
            self.s1 = b1 * self.s1 + (1 - b1) * g
            self.s2 = b2 * self.s2 + (1 - b2) * g**2
            lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            return theta - lr_t * self.s1 / (np.sqrt(self.s2) + eps)
        if self.solver == "adagrad":
            # torch.optim.Adagrad (lr_decay=0, initial_accumulator_value=0):
            # state_sum += g^2; theta -= lr * g / (sqrt(state_sum) + eps)
            self.s1 = self.s1 + g * g
            return theta - lr * g / (np.sqrt(self.s1) + eps)
        if self.solver == "rmsprop":
            # torch.optim.RMSprop (momentum=0, centered=False), alpha = rho:
            # square_avg = alpha * square_avg + (1 - alpha) g^2
            # theta -= lr * g / (sqrt(square_avg) + eps)
            rho = p["rho"]
            self.s1 = rho * self.s1 + (1 - rho) * g * g
            return theta - lr * g / (np.sqrt(self.s1) + eps)
        if self.solver == "adamw":
            # torch.optim.AdamW (amsgrad=False): decoupled decay of every
            # parameter, then Adam with PyTorch's bias corrections
            b1, b2 = p["beta_1"], p["beta_2"]
            theta = theta * (1 - lr * p["weight_decay"])
            self.s1 = b1 * self.s1 + (1 - b1) * g
            self.s2 = b2 * self.s2 + (1 - b2) * g * g
            bias_correction1 = 1 - b1**t
            bias_correction2 = 1 - b2**t
            denom = np.sqrt(self.s2) / np.sqrt(bias_correction2) + eps
            return theta - (lr / bias_correction1) * self.s1 / denom
        raise ValueError(self.solver)


def reference_run(est, X, Y, sample_weight, theta0, n_epochs, batch_size,
                  schedule="constant", dtype=np.float64):
    """Epochs over consecutive mini-batches with the documented schedules.

    Returns (theta, reference, epoch losses, learning rate of each epoch).
    ``est`` only provides the compiled loss-and-gradient of each batch (its
    network description; the parameters are the reference's own).
    """
    n = X.shape[0]
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    fs = [
        est._loss_grad_function(
            X[a:b], Y[a:b], None if sample_weight is None else sample_weight[a:b]
        )
        for a, b in bounds
    ]
    ref = Reference(est, theta0.shape[0], dtype)
    theta = theta0.astype(dtype)
    p = est.get_params()
    lr = p["learning_rate_init"]
    losses, lrs = [], []
    best, no_improvement, samples_seen = np.inf, 0, 0
    for _ in range(n_epochs):
        lrs.append(lr)
        total = 0.0
        for (a, b), f in zip(bounds, fs):
            loss, g = f(theta)
            total += loss * (b - a)
            theta = ref.step(theta, np.asarray(g, dtype=dtype), lr).astype(dtype)
        losses.append(total / n)
        samples_seen += n
        # scikit-learn's bookkeeping after an epoch
        if losses[-1] > best - p["tol"]:
            no_improvement += 1
        else:
            no_improvement = 0
        best = min(best, losses[-1])
        if schedule == "invscaling":
            lr = p["learning_rate_init"] / (samples_seen + 1) ** p["power_t"]
        if no_improvement > p["n_iter_no_change"]:
            assert schedule == "adaptive"
            lr /= 5.0
            no_improvement = 0
    return theta, ref, losses, lrs


def _assert_theta_close(actual, expected, rtol, label, atol=None):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if atol is None:
        atol = rtol * np.max(np.abs(expected))
    bad = np.abs(actual - expected) > rtol * np.abs(expected) + atol
    if bad.any():
        idx = np.flatnonzero(bad)
        raise AssertionError(
            f"{label}: {bad.sum()} of {actual.size} entries differ (rtol={rtol})\n"
            f"index    : {idx[:10]}\n"
            f"estimator: {actual[idx][:10]}\n"
            f"reference: {expected[idx][:10]}"
        )


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "logistic", "prelu"])
def test_initial_parameters(activation):
    """The reference's initial vector is the estimator's: a step of 1e-300 does
    not move any (non-tiny) float64 parameter."""
    X, y = _data()
    est = fit_quietly(_estimator("sgd", activation=activation, max_iter=1,
                                 learning_rate_init=1e-300), X, y)
    theta0 = initial_theta(est._layer_units, activation, SEED)
    assert np.min(np.abs(theta0)) > 1e-200
    np.testing.assert_array_equal(est._theta, theta0)
    if activation == "prelu":
        assert all(np.all(a == 0.25) for a in est.prelu_slopes_)


@pytest.mark.parametrize("batch_size", [N_SAMPLES, 5], ids=["full_batch", "batch5"])
@pytest.mark.parametrize("solver_case", ALL_SOLVERS)
def test_update_rule_matches_reference(solver_case, batch_size):
    """k epochs (1 or 3 steps each, the last batch of 2 rows) equal the NumPy
    reference: parameters, optimizer state, step count and the epoch losses."""
    X, y = _data()
    n_epochs = 4
    est = fit_quietly(_estimator(solver_case, batch_size=batch_size, max_iter=n_epochs), X, y)
    Y = encode_targets(est, y)
    theta0 = initial_theta(est._layer_units, "tanh", SEED)
    theta, ref, losses, lrs = reference_run(est, X, Y, None, theta0, n_epochs, batch_size)

    steps = n_epochs * -(-N_SAMPLES // batch_size)
    assert est.n_iter_ == n_epochs
    assert est._optimizer.t == steps
    assert est.t_ == n_epochs * N_SAMPLES
    assert not np.allclose(theta, theta0, rtol=1e-3)  # the run does move
    _assert_theta_close(est._theta, theta, 1e-10, "theta")
    _assert_theta_close(est._optimizer.state_1, ref.s1, 1e-10, "state_1")
    if ref.solver in ("adam", "adamw"):
        _assert_theta_close(est._optimizer.state_2, ref.s2, 1e-10, "state_2")
    else:
        assert est._optimizer.state_2.shape == (0,)
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=1e-10)
    np.testing.assert_allclose(est.history_["train_loss"], losses, rtol=1e-10)
    assert est.history_["learning_rate"] == pytest.approx(lrs, rel=1e-15)
    assert lrs == [LR] * n_epochs


@pytest.mark.parametrize("solver_case", ALL_SOLVERS)
def test_update_rule_prelu_classifier_weighted(solver_case):
    """Same with PReLU slopes in the vector (updated, and decayed by AdamW, like
    every parameter), a softmax classifier and sample weights."""
    X, y = _data(1, classification=True)
    sw = np.random.RandomState(2).uniform(0.2, 2.0, N_SAMPLES)
    n_epochs, batch_size = 3, 5
    est = fit_quietly(_estimator(solver_case, activation="prelu", batch_size=batch_size,
                                 max_iter=n_epochs, classification=True), X, y,
                      sample_weight=sw)
    Y = encode_targets(est, y)
    assert Y.shape == (N_SAMPLES, 3)
    theta0 = initial_theta(est._layer_units, "prelu", SEED)
    theta, ref, losses, _ = reference_run(est, X, Y, sw, theta0, n_epochs, batch_size)
    slopes = np.concatenate(est.prelu_slopes_)
    assert not np.allclose(slopes, 0.25, rtol=1e-4, atol=0)  # slopes are trained
    _assert_theta_close(est._theta, theta, 1e-10, "theta")
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=1e-10)


@pytest.mark.parametrize("solver_case", ["adagrad", "rmsprop", "adamw", "sgd_nesterov"])
def test_invscaling_schedule(solver_case):
    """'invscaling' applies to every stochastic solver but 'adam': after each
    epoch the step size becomes learning_rate_init / (samples_seen + 1) ** power_t."""
    X, y = _data()
    n_epochs, batch_size, power_t = 4, 5, 0.4
    est = fit_quietly(_estimator(solver_case, batch_size=batch_size, max_iter=n_epochs,
                                 learning_rate="invscaling", power_t=power_t), X, y)
    expected_lrs = [LR / (e * N_SAMPLES + 1) ** power_t for e in range(n_epochs)]
    assert est.history_["learning_rate"] == pytest.approx(expected_lrs, rel=1e-14)
    assert est._optimizer.learning_rate == pytest.approx(
        LR / (n_epochs * N_SAMPLES + 1) ** power_t, rel=1e-14
    )
    Y = encode_targets(est, y)
    theta0 = initial_theta(est._layer_units, "tanh", SEED)
    theta, _, losses, lrs = reference_run(est, X, Y, None, theta0, n_epochs, batch_size,
                                          schedule="invscaling")
    assert lrs == pytest.approx(expected_lrs, rel=1e-15)
    _assert_theta_close(est._theta, theta, 1e-10, "theta")
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=1e-10)
    # and it is not the constant schedule's result
    const = fit_quietly(_estimator(solver_case, batch_size=batch_size, max_iter=n_epochs), X, y)
    assert not np.allclose(const._theta, est._theta, rtol=1e-6)


@pytest.mark.parametrize("solver_case", ["adagrad", "rmsprop", "adamw", "sgd"])
def test_adaptive_schedule(solver_case):
    """'adaptive' applies to every stochastic solver but 'adam': with tol so large that no
    epoch improves, n_iter_no_change=1 divides the step by 5 every other epoch
    (after the first, which improves on +inf), and training goes on."""
    X, y = _data()
    n_epochs, batch_size = 7, 6
    est = fit_quietly(_estimator(solver_case, batch_size=batch_size, max_iter=n_epochs,
                                 learning_rate="adaptive", tol=1e9, n_iter_no_change=1), X, y)
    assert est.n_iter_ == n_epochs
    expected_lrs = [LR, LR, LR, LR / 5, LR / 5, LR / 25, LR / 25]
    assert est.history_["learning_rate"] == pytest.approx(expected_lrs, rel=1e-14)
    Y = encode_targets(est, y)
    theta0 = initial_theta(est._layer_units, "tanh", SEED)
    theta, _, losses, lrs = reference_run(est, X, Y, None, theta0, n_epochs, batch_size,
                                          schedule="adaptive")
    assert lrs == pytest.approx(expected_lrs, rel=1e-15)
    _assert_theta_close(est._theta, theta, 1e-10, "theta")
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=1e-10)


def test_adam_ignores_schedules():
    """'adam' keeps scikit-learn's behaviour: 'invscaling' leaves its step size
    constant, and under 'adaptive' a stall stops training as with 'constant'."""
    X, y = _data()
    n_epochs, batch_size = 4, 5
    const = fit_quietly(_estimator("adam", batch_size=batch_size, max_iter=n_epochs), X, y)
    inv = fit_quietly(_estimator("adam", batch_size=batch_size, max_iter=n_epochs,
                                 learning_rate="invscaling", power_t=0.4), X, y)
    assert inv.history_["learning_rate"] == [LR] * n_epochs
    np.testing.assert_array_equal(inv._theta, const._theta)
    Y = encode_targets(inv, y)
    theta0 = initial_theta(inv._layer_units, "tanh", SEED)
    theta, _, losses, _ = reference_run(inv, X, Y, None, theta0, n_epochs, batch_size)
    _assert_theta_close(inv._theta, theta, 1e-10, "theta")

    stall = dict(tol=1e9, n_iter_no_change=1, max_iter=7, batch_size=batch_size)
    adaptive = fit_quietly(_estimator("adam", learning_rate="adaptive", **stall), X, y)
    constant = fit_quietly(_estimator("adam", learning_rate="constant", **stall), X, y)
    # epoch 1 improves on +inf; epochs 2 and 3 do not: 2 > n_iter_no_change
    assert adaptive.n_iter_ == constant.n_iter_ == 3
    assert adaptive.history_["learning_rate"] == [LR] * 3
    np.testing.assert_array_equal(adaptive._theta, constant._theta)


def test_adaptive_schedule_stops_when_step_tiny():
    """Below 1e-6 the adaptive schedule stops instead of dividing further."""
    X, y = _data()
    est = fit_quietly(_estimator("adagrad", batch_size=N_SAMPLES, max_iter=50,
                                 learning_rate="adaptive", tol=1e9, n_iter_no_change=1,
                                 learning_rate_init=1e-5), X, y)
    lrs = est.history_["learning_rate"]
    # 1e-5, 1e-5, 1e-5, 2e-6, 2e-6, 4e-7, 4e-7 then stop (4e-7 <= 1e-6)
    assert lrs == pytest.approx([1e-5] * 3 + [2e-6] * 2 + [4e-7] * 2, rel=1e-12)
    assert est.n_iter_ == 7


@pytest.mark.parametrize("nesterov", [False, True])
def test_prelu_slopes_not_penalised_in_the_step(nesterov):
    """With PReLU and alpha > 0, one plain SGD step moves the slopes by
    -lr * (data gradient only) and the weights by -lr * (data gradient +
    alpha * W / n); biases carry no penalty either."""
    X, y = _data(1)  # every hidden unit sees negative pre-activations
    alpha, lr = 3.0, 0.1
    extra = dict(momentum=0.0) if not nesterov else dict(momentum=0.5, nesterovs_momentum=True)
    est = fit_quietly(_estimator("sgd", activation="prelu", alpha=alpha, max_iter=1,
                                 learning_rate_init=lr, **extra), X, y)
    Y = encode_targets(est, y)
    theta0 = initial_theta(est._layer_units, "prelu", SEED)
    est.set_params(alpha=0.0)
    _, g_data = est._loss_grad_function(X, Y, None)(theta0)
    est.set_params(alpha=alpha)
    # first step: v = -lr g; theta += v (plain) or momentum * v - lr * g (Nesterov)
    factor = (1 + extra["momentum"]) if nesterov else 1.0
    units = est._layer_units
    n_wb = sum(fi * fo + fo for fi, fo in zip(units[:-1], units[1:]))
    coef = np.concatenate([
        np.arange(off, off + fi * fo)
        for off, fi, fo in zip(est._coef_off, units[:-1], units[1:])
    ])
    expected_step = -lr * factor * g_data
    expected_step[coef] -= lr * factor * alpha * theta0[coef] / N_SAMPLES
    step = est._theta - theta0
    slope_idx = np.arange(n_wb, est._theta.shape[0])
    assert slope_idx.shape == (sum(units[1:-1]),)
    assert np.all(g_data[slope_idx] != 0)
    np.testing.assert_allclose(step[slope_idx], expected_step[slope_idx], rtol=1e-10)
    np.testing.assert_allclose(step, expected_step, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        np.concatenate(est.prelu_slopes_) - 0.25, -lr * factor * g_data[slope_idx], rtol=1e-10
    )


@pytest.mark.parametrize("solver_case", ALL_SOLVERS)
def test_float32_state_and_agreement(solver_case):
    """float32 data trains in float32 (parameters, gradients' optimizer state)
    and follows the float64 run closely; the float32 run also equals the NumPy
    reference evaluated in float32 arithmetic."""
    X, y = _data(3)
    n_epochs, batch_size = 3, 5
    est32 = fit_quietly(_estimator(solver_case, activation="prelu", batch_size=batch_size,
                                   max_iter=n_epochs), X.astype(np.float32), y)
    est64 = fit_quietly(_estimator(solver_case, activation="prelu", batch_size=batch_size,
                                   max_iter=n_epochs), X, y)
    opt = est32._optimizer
    assert est32._theta.dtype == np.float32
    assert opt.state_1.dtype == np.float32 and opt.state_2.dtype == np.float32
    assert opt.state_1.shape == est32._theta.shape
    expected_state_2 = est32._theta.shape if SOLVER_CASES[solver_case][0] in ("adam", "adamw") else (0,)
    assert opt.state_2.shape == expected_state_2
    assert all(c.dtype == np.float32 for c in est32.coefs_ + est32.intercepts_)
    assert all(a.dtype == np.float32 for a in est32.prelu_slopes_)
    assert est32.predict(X.astype(np.float32)).dtype == np.float32
    assert est64._theta.dtype == np.float64 and est64._optimizer.state_1.dtype == np.float64

    moved = np.max(np.abs(est64._theta - initial_theta(est64._layer_units, "prelu", SEED)))
    assert moved > 1e-3
    _assert_theta_close(est32._theta, est64._theta, 1e-3, "float32 vs float64",
                        atol=1e-3 * moved)
    np.testing.assert_allclose(est32.loss_curve_, est64.loss_curve_, rtol=1e-4)

    # the same reference in float32 arithmetic, float32 compiled gradients
    Y = encode_targets(est32, y)
    theta0 = initial_theta(est32._layer_units, "prelu", SEED).astype(np.float32)
    theta, ref, _, _ = reference_run(est32, X.astype(np.float32), Y, None, theta0,
                                     n_epochs, batch_size, dtype=np.float32)
    assert theta.dtype == np.float32
    _assert_theta_close(est32._theta, theta, 1e-4, "float32 vs float32 reference",
                        atol=1e-4 * moved)


def test_partial_fit_continues_the_optimizer():
    """partial_fit keeps the solver's state and step count between calls: two
    calls equal two epochs of the reference (AdamW's bias correction sees t)."""
    X, y = _data()
    est = _estimator("adamw", batch_size=5, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.partial_fit(X, y)
        est.partial_fit(X, y)
    assert est._optimizer.t == 6
    Y = encode_targets(est, y)
    theta0 = initial_theta(est._layer_units, "tanh", SEED)
    theta, ref, _, _ = reference_run(est, X, Y, None, theta0, 2, 5)
    _assert_theta_close(est._theta, theta, 1e-10, "theta")
    _assert_theta_close(est._optimizer.state_2, ref.s2, 1e-10, "state_2")


@pytest.mark.parametrize("weighting", ["unweighted", "weighted", "last_batch_weight_0"])
@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_momentum_zero_velocity_is_the_last_step(weighting, how):
    """Momentum-0 SGD needs no velocity within an epoch: on dense input its
    coefficients take each step inside the backward pass (one product,
    W = (1 - lr * alpha / n) * W - lr / n * A.T @ D), and only the epoch's last
    step taken (with weights: the last batch whose weights do not sum to 0)
    goes through the optimizer loop that writes the velocity. The state left
    behind must be the velocity of that step, -lr * g, and the model the one
    of the plain formula: equal, to rounding, to a run whose momentum (1e-300)
    is too small to change any step but makes every step read and write the
    velocity in the optimizer loop. A velocity left from another step (or
    none) differs at the first digit."""
    X, y = _data(3, n=23)
    sw = {"unweighted": None,
          "weighted": np.random.RandomState(4).uniform(0.2, 2.0, 23),
          "last_batch_weight_0": np.r_[np.ones(20), np.zeros(3)]}[weighting]
    runs = []
    for momentum in (0.0, 1e-300):
        est = _estimator("sgd", batch_size=5, max_iter=3, momentum=momentum,
                         nesterovs_momentum=False)
        if how == "fit":
            fit_quietly(est, X, y, sample_weight=sw)
        else:
            for _ in range(3):
                est.partial_fit(X, y, sample_weight=sw)
        runs.append(est)
    plain, tiny = runs
    velocity = plain._optimizer.state_1
    assert np.all(velocity != 0)
    np.testing.assert_allclose(velocity, tiny._optimizer.state_1, rtol=1e-9,
                               atol=1e-15)
    np.testing.assert_allclose(plain._theta, tiny._theta, rtol=1e-12, atol=1e-15)
    # the loss of each batch includes the L2 term of the coefficients before
    # their step
    np.testing.assert_allclose(plain.loss_curve_, tiny.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("dtype, decay, rtol", [
    # float32: a decay of 1e-8 per step is below float32's resolution at 1
    # (1 - 1e-8 rounds to 1), so a decay factor rounded to float32 is lost
    (np.float32, 1e-8, 2e-7),
    (np.float64, 1e-8, 1e-13),
    # strong decays take the scale below MIN_COEF_SCALE (the kernel then
    # folds it into the product's beta) and a factor d = 1 - decay <= 0
    (np.float64, 0.01, 1e-12),
    (np.float64, 1.5, 1e-12),
])
def test_momentum_zero_weight_decay_is_exact(dtype, decay, rtol):
    """Momentum-0 SGD on dense input keeps the L2 decay of the coefficients,
    W = (1 - lr * alpha / n) * W per step, as a factor in double beside theta
    and folds it in at the end of the epoch (see _train_epoch). With the
    input all 0 the first layer's gradient is 0 and its weights only decay:
    after k steps they are W0 * (1 - lr * alpha / n) ** k. In float32 the
    epoch's last step (the optimizer loop's float32 formula) loses a decay of
    1e-8, as scikit-learn's does; the other steps must not."""
    n_rows, batch = 16 * 257, 16
    X = np.zeros((n_rows, N_FEATURES), dtype=dtype)
    y = np.random.RandomState(0).uniform(-0.1, 0.1, n_rows).astype(dtype)
    lr = 0.01
    est = _estimator("sgd", hidden=(4,), batch_size=batch, max_iter=1,
                     learning_rate_init=lr, alpha=decay * batch / lr)
    fit_quietly(est, X, y)
    W0 = initial_theta(est._layer_units, "tanh", SEED)[:N_FEATURES * 4]
    steps = 257 - (1 if dtype == np.float32 else 0)
    expected = W0.astype(dtype).astype(np.float64) * (1 - decay) ** steps
    assert est.coefs_[0].dtype == dtype
    got = est.coefs_[0].ravel().astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver_case", ALL_SOLVERS)
def test_update_steps_hook_is_the_update_rule(solver_case, dtype):
    """_mlp_fast._py_update_steps (the benchmarks' update-only time) makes the
    solver's steps: g = (G + alpha * theta) / sw_sum on every entry, then the
    rule, step after step from the same raw gradient sum G."""
    from skmlp import _mlp_fast
    from skmlp._multilayer_perceptron import _SOLVER_CODES

    solver, extra = SOLVER_CASES[solver_case]
    est = _estimator(solver_case)
    p = est.get_params()
    n, alpha, sw_sum, steps = 1000, 0.01, 37.0, 3
    rs = np.random.RandomState(0)
    theta0 = rs.uniform(-1, 1, n).astype(dtype)
    G = rs.standard_normal(n).astype(dtype)
    opt = (_SOLVER_CODES[solver], LR, p["momentum"], p["nesterovs_momentum"],
           p["beta_1"], p["beta_2"], p["epsilon"], p.get("rho", 0.9),
           p.get("weight_decay", 0.0))
    two = solver in ("adam", "adamw")
    theta = theta0.copy()
    s1 = np.zeros(n, dtype)
    s2 = np.zeros(n if two else 0, dtype)
    assert _mlp_fast._py_update_steps(opt, theta, G, s1, s2, alpha, sw_sum, 0,
                                      steps) == steps

    ref = Reference(est, n)
    expected = theta0.astype(np.float64)
    for _ in range(steps):
        g = (G.astype(np.float64) + alpha * expected) / sw_sum
        expected = ref.step(expected, g, LR)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(theta, expected, rtol=rtol, atol=rtol * 1e-2)
    assert not np.allclose(theta, theta0)


def test_update_steps_hook_rejects_bad_input():
    from skmlp import _mlp_fast
    from skmlp._multilayer_perceptron import _SOLVER_CODES

    adam = (_SOLVER_CODES["adam"], 0.001, 0.9, True, 0.9, 0.999, 1e-8, 0.9, 0.0)
    z = np.zeros(4)
    with pytest.raises(ValueError, match="theta's length"):
        _mlp_fast._py_update_steps(adam, np.zeros(4), z, z, np.zeros(0), 0.0, 1.0,
                                   0, 1)
    with pytest.raises(ValueError, match="steps must be"):
        _mlp_fast._py_update_steps(adam, np.zeros(4), z, z, z.copy(), 0.0, 1.0,
                                   0, -1)
    with pytest.raises(ValueError, match="sw_sum within"):
        _mlp_fast._py_update_steps(adam, np.zeros(4), z, z, z.copy(), 0.0, 1e305,
                                   0, 1)
