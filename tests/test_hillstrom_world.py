"""The semi-synthetic Hillstrom world: its population arm means reproduce the real experiment's
within standard errors, draws follow the truth (Monte Carlo within derived standard errors), the
log validates with the documented fields, draws are reproducible from the key (also under
``vmap``), effects are heterogeneous with the real signs, and bad inputs name the field."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import pytest

from simulators.data import LoggedData
from simulators.hillstrom import load_hillstrom
from simulators.hillstrom_world import (
    REFERENCE,
    HillstromWorldConfig,
    HillstromWorldSurfaces,
    hillstrom_world_arrays,
    hillstrom_world_logged_data,
    hillstrom_world_surfaces,
    n_actions,
)

N_MC = 200_000  # rows of the Monte Carlo log
Z = 4.0  # Monte Carlo z-limit: two-sided 6e-5 per check, ~20 checks at a fixed seed
# The world's arm mean is a fit to the very rows whose mean it is compared with: unpenalised
# intercepts make each fitted arm match its own arm's mean through the score equations, so the
# gap is the covariate imbalance between one arm and all 64,000 rows plus the small bias of the
# log-normal back-transformation, not outcome noise; 2 s.e. of the real mean is a generous bound
# (measured: at most 0.45 s.e.).
Z_REAL = 2.0
CFG = HillstromWorldConfig()


@pytest.fixture(scope="module")
def surfaces() -> HillstromWorldSurfaces:
    return hillstrom_world_surfaces(CFG)


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    spend = load_hillstrom(outcome="spend")
    return {"action": spend.action, "spend": spend.value,
            "visit": load_hillstrom(outcome="visit").value,
            "conversion": load_hillstrom(outcome="conversion").value}


@pytest.fixture(scope="module")
def big_log() -> LoggedData:
    return hillstrom_world_logged_data(jax.random.key(20080320), CFG, N_MC)


@pytest.fixture(scope="module")
def big_draw():
    return hillstrom_world_arrays(jax.random.key(20080320), CFG, N_MC)


# ------------------------------------------------------------------------ 1. real arm means
@pytest.mark.parametrize("outcome", ["spend", "visit", "conversion"])
def test_population_arm_means_match_the_real_experiment(surfaces, real, outcome):
    world = {"spend": surfaces.mu_value, "visit": surfaces.p_visit,
             "conversion": surfaces.p_conversion}[outcome].mean(axis=0)
    for a in range(3):
        y = real[outcome][real["action"] == a]
        se = y.std(ddof=1) / math.sqrt(y.size)
        assert abs(world[a] - y.mean()) < Z_REAL * se, (outcome, a, world[a], y.mean(), se)
    if outcome == "spend":  # the published numbers (Hillstrom 2008)
        np.testing.assert_allclose([real["spend"][real["action"] == a].mean() for a in range(3)],
                                   [0.6528, 1.4226, 1.0772], atol=5e-5)


def test_reference_quotes_the_measured_means(surfaces):
    for v in surfaces.mu_value.mean(axis=0):
        assert f"{v:.3f}" in REFERENCE
    for v in surfaces.p_visit.mean(axis=0):
        assert f"{v:.3f}" in REFERENCE
    for v in surfaces.p_conversion.mean(axis=0):
        assert f"{v:.4f}" in REFERENCE
    assert "Hillstrom" in REFERENCE and "MineThatData" in REFERENCE


def test_surfaces_follow_the_documented_formulas(surfaces):
    s, fit = surfaces, surfaces.fit
    assert s.mu_value.shape == (64_000, 3) and s.mu_value.dtype == np.float64
    np.testing.assert_allclose(s.p_conversion, s.p_visit * s.p_conversion_given_visit)
    np.testing.assert_allclose(s.spend_given_conversion,
                               np.exp(s.log_spend_mean + fit.spend_sd**2 / 2))
    np.testing.assert_allclose(s.mu_value, s.p_conversion * s.spend_given_conversion)
    np.testing.assert_array_equal(s.mu_cost[:, 0], 0.0)
    np.testing.assert_allclose(s.mu_cost[:, 1:], CFG.cost_per_email + CFG.discount
                               * s.mu_value[:, 1:])
    # Shared spend slopes, per-arm intercept; pooled conversion written per arm.
    np.testing.assert_array_equal(fit.log_spend_coef[1:, 1:], fit.log_spend_coef[:1, 1:]
                                  .repeat(2, axis=0))
    assert fit.visit_coef.shape == fit.conversion_coef.shape == (3, 10)
    assert 0.5 < fit.spend_sd < 1.2
    assert np.all((s.p_visit > 0) & (s.p_visit < 1) & (s.p_conversion_given_visit > 0)
                  & (s.p_conversion_given_visit < 1))
    assert hillstrom_world_surfaces(CFG) is surfaces  # fitted once per process


# --------------------------------------------------------------------- 2. truth vs Monte Carlo
def _z(sample: np.ndarray, truth: np.ndarray) -> float:
    d = sample - truth
    return float(d.mean() / (d.std(ddof=1) / math.sqrt(d.size)))


def test_value_and_cost_labels_match_the_truth(big_log):
    log = big_log
    for a in range(3):
        rows = log.action == a
        assert rows.sum() > 60_000
        z_v = _z(log.value[rows], log.truth.mu_value[rows, a])
        assert abs(z_v) < Z, (a, z_v)
        if a == 0:
            np.testing.assert_array_equal(log.cost[rows], 0.0)
            np.testing.assert_array_equal(log.truth.mu_cost[rows, 0], 0.0)
        else:
            z_c = _z(log.cost[rows], log.truth.mu_cost[rows, a])
            assert abs(z_c) < Z, (a, z_c)


def test_visit_conversion_and_spend_laws(big_draw, surfaces):
    d = big_draw
    row, action = np.asarray(d.row), np.asarray(d.action)
    visit, conv, spend = np.asarray(d.visit), np.asarray(d.conversion), np.asarray(d.spend)
    assert not (conv & ~visit).any()  # conversion needs a visit
    assert np.all(spend[conv] > 0) and np.all(spend[~conv] == 0)
    for a in range(3):
        rows = action == a
        r = row[rows]
        assert abs(_z(visit[rows].astype(float), surfaces.p_visit[r, a])) < Z
        assert abs(_z(conv[rows].astype(float), surfaces.p_conversion[r, a])) < Z
    # log spend | conversion ~ N(m, s^2): standardised residual mean 0, variance 1.
    eps = (np.log(spend[conv]) - surfaces.log_spend_mean[row[conv], action[conv]]) \
        / surfaces.fit.spend_sd
    m = eps.size
    assert m > 1500  # about 200,000 x 0.009
    assert abs(eps.mean()) < Z / math.sqrt(m)
    assert abs(eps.var(ddof=1) - 1.0) < Z * math.sqrt(2 / (m - 1))
    # Actions uniform on {0, 1, 2}: each count within Z binomial s.e. of n/3.
    counts = np.bincount(action, minlength=3)
    assert np.all(np.abs(counts - N_MC / 3) < Z * math.sqrt(N_MC * (1 / 3) * (2 / 3)))
    # Rows resampled uniformly: the resampled mean of recency within Z s.e. of the real mean.
    rec = surfaces.x[:, 0]
    assert abs(rec[row].mean() - rec.mean()) < Z * rec.std() / math.sqrt(N_MC)


def test_logged_data_fields(big_log, big_draw, surfaces):
    log, d = big_log, big_draw
    row, n = np.asarray(d.row), N_MC
    assert log.n == n and log.n_actions == n_actions(CFG) == 3 and log.truth is not None
    np.testing.assert_array_equal(log.x, surfaces.x[row])
    np.testing.assert_array_equal(log.segment, surfaces.segment[row])
    np.testing.assert_array_equal(log.truth.mu_value, surfaces.mu_value[row])
    np.testing.assert_allclose(log.truth.mu_cost, surfaces.mu_cost[row], rtol=1e-14)
    np.testing.assert_array_equal(log.truth.mu_value_accounting, log.truth.mu_value)
    np.testing.assert_array_equal(log.value_accounting, log.value)
    np.testing.assert_array_equal(log.value, np.asarray(d.spend))
    emailed = log.action > 0
    np.testing.assert_allclose(log.cost, np.where(emailed, CFG.cost_per_email
                                                  + CFG.discount * log.value, 0.0), rtol=1e-14)
    np.testing.assert_array_equal(log.redemption_lag,
                                  np.where(emailed & (log.value > 0), 0, -1))
    np.testing.assert_array_equal(log.action_prob, 1 / 3)
    assert log.eligible.all() and (log.period == 0).all() and log.other_actions.shape == (n, 0)
    np.testing.assert_array_equal(log.face_value, [0.0, 0.1, 0.1])
    best = log.truth.tau_value[:, 1:].max(axis=1)
    np.testing.assert_array_equal(log.truth.response_type, np.where(best > 0, 1, 3))
    assert log.x.dtype == log.value.dtype == np.float64 and isinstance(log.value, np.ndarray)
    # Without a coupon nothing is redeemed and the cost is the constant sending cost.
    free = HillstromWorldConfig(discount=0.0)
    plain = hillstrom_world_logged_data(jax.random.key(1), free, 5000)
    assert (plain.redemption_lag == -1).all()
    np.testing.assert_array_equal(plain.cost, np.where(plain.action > 0, 0.1, 0.0))


# ------------------------------------------------------------------ 3. keys and bad inputs
def test_reproducible_from_the_key():
    a = hillstrom_world_logged_data(jax.random.key(7), CFG, 3000)
    b = hillstrom_world_logged_data(jax.random.key(7), CFG, 3000)
    c = hillstrom_world_logged_data(jax.random.key(8), CFG, 3000)
    for name in ("x", "action", "value", "cost", "redemption_lag"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.truth.mu_value, b.truth.mu_value)
    assert not np.array_equal(a.action, c.action) and not np.array_equal(a.x, c.x)
    native = hillstrom_world_logged_data(jax.random.key(7), CFG, 3000, logging="native")
    uniform = hillstrom_world_logged_data(jax.random.key(7), CFG, 3000, logging="uniform")
    np.testing.assert_array_equal(native.value, uniform.value)  # the same design


def test_vmap_over_keys_gives_the_single_draws():
    keys = jax.random.split(jax.random.key(3), 3)
    with jax.enable_x64(True):
        batch = jax.vmap(lambda k: hillstrom_world_arrays(k, CFG, 500))(keys)
    assert batch.spend.shape == (3, 500) and batch.mu_value.shape == (3, 500, 3)
    for i in range(3):
        one = hillstrom_world_arrays(keys[i], CFG, 500)
        for name in ("row", "action", "conversion", "spend", "cost", "mu_value"):
            np.testing.assert_allclose(np.asarray(getattr(batch, name)[i]),
                                       np.asarray(getattr(one, name)), rtol=1e-12,
                                       err_msg=name)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"cost_per_email": -0.1}, "cost_per_email"),
    ({"cost_per_email": float("nan")}, "cost_per_email"),
    ({"cost_per_email": float("inf")}, "cost_per_email"),
    ({"cost_per_email": "0.1"}, "cost_per_email"),
    ({"cost_per_email": True}, "cost_per_email"),
    ({"discount": 1.0}, "discount"),
    ({"discount": -0.01}, "discount"),
    ({"discount": float("nan")}, "discount"),
    ({"prior_sd": 0.0}, "prior_sd"),
    ({"interaction_prior_sd": float("nan")}, "interaction_prior_sd"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"HillstromWorldConfig.{field}"):
        HillstromWorldConfig(**kwargs)


def test_bad_arguments_name_the_field():
    key = jax.random.key(0)
    for logging in ("holdout", "Native", None):
        with pytest.raises(ValueError, match="^logging"):
            hillstrom_world_logged_data(key, CFG, 10, logging=logging)
    for n in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="^n"):
            hillstrom_world_logged_data(key, CFG, n)
    with pytest.raises(ValueError, match="^config"):
        hillstrom_world_logged_data(key, object(), 10)
    with pytest.raises(ValueError, match="^config"):
        n_actions(None)
    assert HillstromWorldConfig(cost_per_email=0, discount=0.0).cost_per_email == 0


# ---------------------------------------------------------- 4. heterogeneity and real signs
def test_effects_are_heterogeneous_with_the_real_signs(surfaces, real):
    tau = surfaces.tau_value[:, 1:]
    tau_visit = surfaces.p_visit[:, 1:] - surfaces.p_visit[:, :1]
    for a in range(2):
        assert tau[:, a].mean() > 0 and tau_visit[:, a].mean() > 0  # both e-mails help
        # A non-trivial spread: sd at least a quarter of the mean effect (measured 0.4 / 0.9).
        assert tau[:, a].std() > 0.25 * tau[:, a].mean()
        # The world's average effect agrees with the real difference in means (2 s.e.).
        y0 = real["spend"][real["action"] == 0]
        y1 = real["spend"][real["action"] == a + 1]
        se = math.sqrt(y0.var(ddof=1) / y0.size + y1.var(ddof=1) / y1.size)
        assert abs(tau[:, a].mean() - (y1.mean() - y0.mean())) < Z_REAL * se
    # Which e-mail is best varies between users (the men's for about 70 %).
    share_mens = float((tau[:, 0] > tau[:, 1]).mean())
    assert 0.1 < share_mens < 0.9
    # The targeting pattern of the real test: the men's e-mail works for buyers of men's
    # merchandise only, the women's e-mail for buyers of women's merchandise only.
    x = surfaces.x
    mens_only, womens_only = (x[:, 2] == 1) & (x[:, 3] == 0), (x[:, 3] == 1) & (x[:, 2] == 0)
    assert tau[mens_only, 0].mean() > tau[mens_only, 1].mean()
    assert tau[womens_only, 1].mean() > tau[womens_only, 0].mean()
    # The default costs leave a budgeted problem: e-mailing pays on average, not for everyone.
    net = tau - (surfaces.mu_cost[:, 1:] - surfaces.mu_cost[:, :1])
    assert (net.mean(axis=0) > 0).all()
    assert 0.0 < float((net.max(axis=1) < 0).mean()) < 0.1
