"""Nie & Wager (2021) setups A-D: the surfaces match an independent NumPy transcription of the
paper's formulas, the draw follows them (covariate law, W ~ Bernoulli(e(x)), E[y | x, w] = mu_w(x),
noise sd sigma) within derived standard errors, the log validates with its truth, draws are
reproducible from the key, and bad configs name the field."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from simulators.data import LoggedData
from simulators.nie_wager import (
    MIN_FEATURES,
    SETUPS,
    NieWagerConfig,
    nie_wager_arrays,
    nie_wager_logged_data,
    nie_wager_surfaces,
    sample_covariates,
)

N_STAT = 20_000  # rows per setup for the statistical checks
Z = 4.0  # z-score limit: two-sided 6e-5 per check; ~60 checks at fixed seeds


# --------------------------------------------------------------------------------------------
# independent NumPy transcription of Nie & Wager (2021), Section 6 (columns 0.. = X1..)
# --------------------------------------------------------------------------------------------


def _softplus(z):
    return np.log1p(np.exp(z))


def _reference(setup: str, x: np.ndarray) -> dict[str, np.ndarray]:
    X1, X2, X3 = x[:, 0], x[:, 1], x[:, 2]
    if setup == "A":
        X4, X5 = x[:, 3], x[:, 4]
        b = np.sin(np.pi * X1 * X2) + 2 * (X3 - 0.5) ** 2 + X4 + 0.5 * X5
        e = np.maximum(0.1, np.minimum(np.sin(np.pi * X1 * X2), 1 - 0.1))
        tau = (X1 + X2) / 2
    elif setup == "B":
        X4, X5 = x[:, 3], x[:, 4]
        b = np.maximum.reduce([X1 + X2, X3, np.zeros_like(X1)]) + np.maximum(X4 + X5, 0)
        e = np.full_like(X1, 0.5)
        tau = X1 + np.log(1 + np.exp(X2))
    elif setup == "C":
        b = 2 * np.log(1 + np.exp(X1 + X2 + X3))
        e = 1 / (1 + np.exp(X2 + X3))
        tau = np.ones_like(X1)
    else:
        X4, X5 = x[:, 3], x[:, 4]
        b = (np.maximum(X1 + X2 + X3, 0) + np.maximum(X4 + X5, 0)) / 2
        e = 1 / (1 + np.exp(-X1) + np.exp(-X2))
        tau = np.maximum(X1 + X2 + X3, 0) - np.maximum(X4 + X5, 0)
    return {"b": b, "e": e, "tau": tau, "mu0": b - tau / 2, "mu1": b + tau / 2}


def _fixed_x(setup: str, d: int = 6) -> np.ndarray:
    rng = np.random.default_rng(123)
    x = rng.uniform(size=(200, d)) if setup == "A" else rng.normal(scale=1.5, size=(200, d))
    return x


@pytest.mark.parametrize("setup", SETUPS)
def test_surfaces_match_the_papers_formulas(setup):
    x = _fixed_x(setup)
    s = nie_wager_surfaces(setup, x)
    ref = _reference(setup, x)
    for name in ("b", "e", "tau", "mu0", "mu1"):
        got = np.asarray(getattr(s, name))
        assert got.shape == (200,) and got.dtype == np.float64
        # Same formulas in float64; the stable forms (sigmoid, logaddexp) differ by round-off.
        np.testing.assert_allclose(got, ref[name], rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(np.asarray(s.e) + np.asarray(s.e_control), 1.0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(s.mu1) - np.asarray(s.mu0), ref["tau"], atol=1e-12)
    # Only X1..X_min enter: the noise features can change freely.
    x2 = x.copy()
    x2[:, MIN_FEATURES[setup]:] = 7.0
    s2 = nie_wager_surfaces(setup, x2)
    np.testing.assert_array_equal(np.asarray(s.mu1), np.asarray(s2.mu1))


def test_surfaces_at_hand_computed_points():
    # A at X1 = X2 = 1: sin(pi) = 0 -> e trimmed up to 0.1; at X1 = X2 = sqrt(1/2): e = 0.9.
    r = np.sqrt(0.5)
    a = nie_wager_surfaces("A", np.array([[1, 1, 0.5, 0, 0], [r, r, 0.5, 1, 1]], float))
    np.testing.assert_allclose(np.asarray(a.e), [0.1, 0.9], atol=1e-15)
    np.testing.assert_allclose(np.asarray(a.tau), [1.0, r], atol=1e-15)
    np.testing.assert_allclose(np.asarray(a.b), [0.0, 1.0 + 1.0 + 0.5], atol=1e-15)
    z = np.zeros((1, 5))
    b = nie_wager_surfaces("B", z)
    np.testing.assert_allclose([b.b[0], b.e[0], b.tau[0]], [0.0, 0.5, np.log(2)], atol=1e-15)
    c = nie_wager_surfaces("C", z[:, :3])
    np.testing.assert_allclose([c.b[0], c.e[0], c.tau[0]], [2 * np.log(2), 0.5, 1.0],
                               atol=1e-15)
    dd = nie_wager_surfaces("D", z)
    np.testing.assert_allclose([dd.b[0], dd.e[0], dd.tau[0]], [0.0, 1 / 3, 0.0], atol=1e-15)


@pytest.fixture(scope="module", params=SETUPS)
def big_log(request):
    cfg = NieWagerConfig(setup=request.param, n=N_STAT, d=6, sigma=1.5)
    return cfg, nie_wager_logged_data(jax.random.key(SETUPS.index(request.param)), cfg)


def test_covariate_law(big_log):
    cfg, log = big_log
    x = np.asarray(log.x)
    assert x.shape == (N_STAT, 6) and x.dtype == np.float64
    mean, var = (0.5, 1 / 12) if cfg.setup == "A" else (0.0, 1.0)
    fourth = 1 / 80 if cfg.setup == "A" else 3.0  # E[(X - mean)^4]
    if cfg.setup == "A":
        assert x.min() >= 0 and x.max() < 1
    se_mean = np.sqrt(var / N_STAT)
    se_var = np.sqrt((fourth - var**2) / N_STAT)
    assert np.all(np.abs(x.mean(axis=0) - mean) < Z * se_mean)
    assert np.all(np.abs(x.var(axis=0) - var) < Z * se_var)
    corr = np.corrcoef(x.T)[np.triu_indices(6, 1)]
    assert np.all(np.abs(corr) < Z / np.sqrt(N_STAT))  # independent columns


def test_outcomes_given_treatment_follow_mu_plus_w_tau(big_log):
    cfg, log = big_log
    ref = _reference(cfg.setup, np.asarray(log.x))
    mu = np.column_stack([ref["mu0"], ref["mu1"]])
    np.testing.assert_allclose(log.truth.mu_value, mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log.truth.tau_value[:, 1], ref["tau"], rtol=1e-12, atol=1e-12)
    y, w = np.asarray(log.value), np.asarray(log.action)
    for arm in (0, 1):
        rows = w == arm
        n_a = int(rows.sum())
        assert n_a > 1000
        resid = y[rows] - mu[rows, arm]  # = sigma * eps given (x, w): mean 0, var sigma^2
        assert abs(resid.mean()) < Z * cfg.sigma / np.sqrt(n_a), (arm, resid.mean())
        # Var of the sample variance of normals: 2 sigma^4 / (n - 1).
        assert abs(resid.var(ddof=1) - cfg.sigma**2) < Z * cfg.sigma**2 * np.sqrt(2 / (n_a - 1))
        # The arm's mean of y against E[mu_0 + w tau] over its rows.
        expect = np.mean(ref["mu0"][rows] + arm * ref["tau"][rows])
        assert abs(y[rows].mean() - expect) < Z * cfg.sigma / np.sqrt(n_a)


def test_actions_are_drawn_from_the_true_propensity(big_log):
    cfg, log = big_log
    e = _reference(cfg.setup, np.asarray(log.x))["e"]
    assert np.all((e > 0) & (e < 1))
    if cfg.setup == "A":
        assert e.min() >= 0.1 and e.max() <= 0.9
    np.testing.assert_allclose(log.action_prob[:, 1], e, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(log.action_prob.sum(axis=1), 1.0, atol=1e-15)
    w = np.asarray(log.action)
    assert set(np.unique(w)) == {0, 1}
    # Given x, w_i - e_i are independent with variance e_i (1 - e_i).
    se = np.sqrt(np.sum(e * (1 - e))) / N_STAT
    assert abs(w.mean() - e.mean()) < Z * se
    # The same within quintiles of e (where e varies): the draw follows e(x), not its average.
    if np.ptp(e) > 0:
        edges = np.quantile(e, [0.2, 0.4, 0.6, 0.8])
        bins = np.digitize(e, edges)
        for k in range(5):
            rows = bins == k
            se_k = np.sqrt(np.sum(e[rows] * (1 - e[rows]))) / rows.sum()
            assert abs(w[rows].mean() - e[rows].mean()) < Z * se_k, (k, w[rows].mean())


def test_logged_data_fields_follow_the_ihdp_convention(big_log):
    _, log = big_log
    assert isinstance(log, LoggedData) and log.n == N_STAT and log.n_actions == 2
    np.testing.assert_array_equal(log.value, log.value_accounting)
    assert np.all(log.cost == 0) and np.all(log.truth.mu_cost == 0)
    np.testing.assert_array_equal(log.truth.mu_value, log.truth.mu_value_accounting)
    assert log.eligible.all() and np.all(log.face_value == 0)
    assert np.all(log.segment == 0) and np.all(log.period == 0)
    assert np.all(log.redemption_lag == -1) and log.other_actions.shape == (N_STAT, 0)
    tau = log.truth.tau_value[:, 1]
    expect = np.where(tau > 0, 1, np.where(tau < 0, 3, 2))
    np.testing.assert_array_equal(log.truth.response_type, expect)
    np.testing.assert_allclose(log.pscore, np.where(log.action == 1, log.action_prob[:, 1],
                                                    log.action_prob[:, 0]))


def test_noiseless_draw_is_the_mean_surface():
    cfg = NieWagerConfig(setup="D", n=N_STAT, d=6, sigma=0.0)  # big_log's shape: no compile
    draw = nie_wager_arrays(jax.random.key(3), cfg)
    s = draw.surfaces
    np.testing.assert_allclose(np.asarray(draw.y),
                               np.asarray(s.b + (draw.w - 0.5) * s.tau), atol=1e-15)
    np.testing.assert_allclose(np.asarray(sample_covariates(jax.random.split(jax.random.key(3),
                                                                             3)[0], cfg)),
                               np.asarray(draw.x))


@pytest.mark.parametrize("setup", SETUPS)
def test_reproducible_from_key(setup):
    cfg = NieWagerConfig(setup=setup, n=N_STAT, d=6, sigma=1.5)  # shape of big_log: no compile
    a = nie_wager_logged_data(jax.random.key(42), cfg)
    b = nie_wager_logged_data(jax.random.key(42), cfg)
    c = nie_wager_logged_data(jax.random.key(43), cfg)
    for name in ("x", "action", "value", "action_prob"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x, c.x) and not np.array_equal(a.value, c.value)


def test_vmap_over_keys_gives_the_single_draws():
    cfg = NieWagerConfig(setup="B", n=N_STAT, d=6, sigma=1.0)  # single draws: no compile
    keys = jax.random.split(jax.random.key(7), 2)
    batch = jax.vmap(lambda k: nie_wager_arrays(k, cfg))(keys)
    for i in range(2):
        one = nie_wager_arrays(keys[i], cfg)
        np.testing.assert_array_equal(np.asarray(batch.x[i]), np.asarray(one.x))
        np.testing.assert_array_equal(np.asarray(batch.w[i]), np.asarray(one.w))
        # Same draws; the batched program may fuse the arithmetic differently (a few ulp).
        np.testing.assert_allclose(np.asarray(batch.y[i]), np.asarray(one.y), rtol=1e-14,
                                   atol=1e-15)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"setup": "E"}, "NieWagerConfig.setup"),
    ({"setup": "a"}, "NieWagerConfig.setup"),
    ({"setup": 1}, "NieWagerConfig.setup"),
    ({"setup": "A", "d": 4}, "NieWagerConfig.d"),
    ({"setup": "D", "d": 4}, "NieWagerConfig.d"),
    ({"setup": "C", "d": 2}, "NieWagerConfig.d"),
    ({"d": 6.0}, "NieWagerConfig.d"),
    ({"n": 0}, "NieWagerConfig.n"),
    ({"n": True}, "NieWagerConfig.n"),
    ({"sigma": -0.1}, "NieWagerConfig.sigma"),
    ({"sigma": float("nan")}, "NieWagerConfig.sigma"),
    ({"sigma": float("inf")}, "NieWagerConfig.sigma"),
    ({"sigma": "1"}, "NieWagerConfig.sigma"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: .*Fix:"):
        NieWagerConfig(**kwargs)


def test_minimum_d_is_enough_and_other_bad_inputs():
    assert NieWagerConfig(setup="C", d=3).d == 3  # C reads X1..X3 only
    with pytest.raises(ValueError, match="^config:"):
        nie_wager_logged_data(jax.random.key(0), {"setup": "A"})
    with pytest.raises(ValueError, match="^setup: unknown setup 'Z'"):
        nie_wager_surfaces("Z", np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"^x: setup A needs shape \(n, d >= 5\)"):
        nie_wager_surfaces("A", np.zeros((2, 4)))
