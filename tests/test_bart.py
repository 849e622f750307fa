"""BART base model (bartz) and BCF learner: recovery of known functions and effects, the draws,
the weight contract, reproducibility, errors, and the meta-learner paths (T, DR, Thompson).

Shapes are small and every BART in this file has the same MCMC settings and ``d = 3``, and every
fit keeps at most 256 rows, so bartz compiles its sampler once (fits are padded to the 256-row
bucket, ``estimators.bart.padded_rows``).

Tolerances. A piecewise-constant ``f`` on ``K`` axis-aligned cells is estimated by the oracle
that knows the cells (the cell means) with RMSE ``sigma sqrt(K / n)``; BART must find the cells
and their boundaries and shrinks its leaves, so we allow ``ORACLE_FACTOR = 5`` times that (the
measured ratio is about 3; a linear fit is about 10 times, a constant 14 times). For the DR
learner with a correctly specified linear final stage (``d + 1`` coefficients), the design-point
error of a least-squares fit satisfies ``n MSE / sigma_phi^2 ~ chi^2_{d+1}``; we use its 0.999
quantile with ``sigma_phi^2`` the empirical variance of the pseudo-outcome noise.

Slow (``-m slow``): the BCF learner (bartz compiles its BCF sampler, 40-80 s) and the IHDP
benchmark (10 replications, 200 trees).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from estimators.bart import BART, BARTParams, BCFLearner, padded_rows
from estimators.base import Ridge
from estimators.crossfit import HostFits
from estimators.heads import UpliftLearner
from estimators.uplift import DRLearner, TLearner
from policies.exploration import thompson_dist

D = 3
SIGMA = 0.5
ORACLE_FACTOR = 5.0
CFG = BART(n_trees=50, n_burn=200, n_draws=100, seed=0)


def f_step(x: np.ndarray) -> np.ndarray:
    """K = 4 cells: x0 > 0 and x1 > 0.4."""
    return 1.5 * (x[:, 0] > 0) - 1.0 * (x[:, 1] > 0.4)


def tau_step(x: np.ndarray) -> np.ndarray:
    """+1 / -1 on x2 > 0 / x2 <= 0: mu_1 = f_step + tau_step has K = 8 cells."""
    return 2.0 * (x[:, 2] > 0) - 1.0


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(0)
    n = 240
    x = rng.uniform(-1, 1, (n, D))
    y = f_step(x) + SIGMA * rng.normal(size=n)
    x_test = rng.uniform(-1, 1, (250, D))
    return x, y, x_test


@pytest.fixture(scope="module")
def reg_fit(reg_data):
    x, y, _ = reg_data
    return CFG.fit(x, y)


def test_padded_rows_buckets():
    assert padded_rows(1, 256) == 256 and padded_rows(256, 256) == 256
    assert padded_rows(257, 256) == 384 and padded_rows(384, 256) == 384
    assert padded_rows(385, 256) == 512 and padded_rows(513, 256) == 768
    for n in range(257, 5000, 37):  # padding is below 1/3 of the bucket
        b = padded_rows(n, 256)
        assert n <= b < 1.5 * n


def test_fit_recovers_step_function_and_beats_ridge(reg_data, reg_fit):
    x, y, x_test = reg_data
    assert isinstance(reg_fit, BARTParams) and reg_fit.model is not None
    pred = CFG.predict(reg_fit, x_test)
    assert pred.shape == (250,) and pred.dtype == np.float64
    err = rmse(pred, f_step(x_test))
    oracle = SIGMA * np.sqrt(4 / len(y))
    assert err <= ORACLE_FACTOR * oracle, (err, oracle)
    ridge = Ridge(alpha=1e-3)
    err_ridge = rmse(ridge.predict(ridge.fit(x, y), x_test), f_step(x_test))
    assert err < 0.7 * err_ridge, (err, err_ridge)  # measured: 0.22 against 0.49
    # sigma: sampling sd of an estimate from n residuals is sigma / sqrt(2n) (0.023 here);
    # BART absorbs part of the noise (about 5-15% low), so allow 4 sd plus 20%.
    sd = float(np.mean(CFG.error_sd(reg_fit)))
    assert abs(sd - SIGMA) <= 4 * SIGMA / np.sqrt(2 * len(y)) + 0.2 * SIGMA, sd


def test_draws_shape_and_mean_equals_predict(reg_data, reg_fit):
    _, _, x_test = reg_data
    draws = CFG.predict_draws(reg_fit, x_test)
    assert draws.shape == (CFG.n_draws, 250) and draws.dtype == np.float64
    np.testing.assert_allclose(np.mean(np.asarray(draws), axis=0),
                               np.asarray(CFG.predict(reg_fit, x_test)), rtol=0, atol=1e-12)
    assert float(np.min(np.std(np.asarray(draws), axis=0))) > 0  # a posterior, not a point


def test_predict_in_row_chunks_is_exact(reg_data, reg_fit, monkeypatch):
    """predict / predict_draws evaluate row chunks (memory); the chunking changes nothing."""
    import estimators.bart as bart_module

    _, _, x_test = reg_data
    whole_draws = np.asarray(CFG.predict_draws(reg_fit, x_test))
    whole_mean = np.asarray(CFG.predict(reg_fit, x_test))
    monkeypatch.setattr(bart_module, "_PREDICT_CHUNK", 100)  # 250 rows: chunks 100, 100, 50
    np.testing.assert_array_equal(np.asarray(CFG.predict_draws(reg_fit, x_test)), whole_draws)
    np.testing.assert_allclose(np.asarray(CFG.predict(reg_fit, x_test)), whole_mean,
                               rtol=0, atol=1e-12)


def test_zero_weight_rows_are_dropped_exactly(reg_data, reg_fit):
    x, y, x_test = reg_data
    w = (np.arange(len(y)) % 3 != 0).astype(float)
    sub = CFG.fit(x[w > 0], y[w > 0])
    masked = CFG.fit(x, y, w)
    assert masked.n_rows == int(w.sum())
    np.testing.assert_array_equal(np.asarray(CFG.predict_draws(masked, x_test)),
                                  np.asarray(CFG.predict_draws(sub, x_test)))
    # a constant positive weight is the unweighted fit (weights are rescaled to mean 1)
    np.testing.assert_array_equal(np.asarray(CFG.predict_draws(CFG.fit(x, y, 3.0 * w), x_test)),
                                  np.asarray(CFG.predict_draws(sub, x_test)))
    # and dropping rows changes the fit (the test can fail)
    assert not np.array_equal(np.asarray(CFG.predict(sub, x_test)),
                              np.asarray(CFG.predict(reg_fit, x_test)))


def test_reproducible_from_seed(reg_data, reg_fit):
    x, y, x_test = reg_data
    again = CFG.fit(x, y)
    np.testing.assert_array_equal(np.asarray(CFG.predict_draws(again, x_test)),
                                  np.asarray(CFG.predict_draws(reg_fit, x_test)))
    other = BART(n_trees=50, n_burn=200, n_draws=100, seed=1)
    p_other = np.asarray(other.predict(other.fit(x, y), x_test))
    p0 = np.asarray(CFG.predict(reg_fit, x_test))
    assert np.max(np.abs(p_other - p0)) > 1e-4
    # ... but both are draws of the same posterior: their means agree within a few posterior sd
    post_sd = np.asarray(CFG.predict_draws(reg_fit, x_test)).std(axis=0)
    assert np.mean(np.abs(p_other - p0)) < np.mean(post_sd)


def test_different_data_run_on_a_different_random_stream(reg_data, reg_fit):
    """The MCMC key is derived from the seed and the kept rows: per-arm / per-fold fits are
    independent chains. A change of one y far below float32 resolution leaves bartz' float32
    inputs bit-identical, so identical draws would mean a shared stream."""
    x, y, x_test = reg_data
    y2 = y.copy()
    y2[0] += 1e-12
    assert np.array_equal(y.astype(np.float32), y2.astype(np.float32))
    d0 = np.asarray(CFG.predict_draws(reg_fit, x_test))
    d1 = np.asarray(CFG.predict_draws(CFG.fit(x, y2), x_test))
    assert np.max(np.abs(d1 - d0)) > 1e-3


def test_heteroskedastic_weights_are_precision_weights():
    """y_i = f(x_i) + N(0, SIGMA^2 / w_i): with w as sample_weight, sigma (on the weights' scale)
    is SIGMA. Taking w as a variance multiplier instead would report sigma ~ 5x off."""
    rng = np.random.default_rng(3)
    n = 240
    x = rng.uniform(-1, 1, (n, D))
    w = np.where(rng.uniform(size=n) < 0.5, 0.25, 4.0)
    y = f_step(x) + SIGMA / np.sqrt(w) * rng.normal(size=n)
    p = CFG.fit(x, y, w)
    sd = float(np.mean(CFG.error_sd(p)))
    assert abs(sd - SIGMA) <= 4 * SIGMA / np.sqrt(2 * n) + 0.2 * SIGMA, sd
    # f is recovered within the oracle bound of precision-weighted cell means, whose variance
    # is SIGMA^2 / sum_{cell} w, i.e. RMSE SIGMA sqrt(K / (n mean(w)))
    x_test = rng.uniform(-1, 1, (250, D))
    oracle = SIGMA * np.sqrt(4 / (n * w.mean()))
    assert rmse(CFG.predict(p, x_test), f_step(x_test)) <= ORACLE_FACTOR * oracle


def test_constant_y_predicts_the_constant():
    x = np.random.default_rng(0).normal(size=(20, D))
    p = CFG.fit(x, np.full(20, 2.5))
    assert p.model is None
    np.testing.assert_array_equal(np.asarray(CFG.predict(p, x[:5])), np.full(5, 2.5))
    assert CFG.predict_draws(p, x[:5]).shape == (CFG.n_draws, 5)


@pytest.mark.parametrize("kwargs, field", [
    ({"n_trees": 0}, "BART.n_trees"), ({"n_trees": 2.5}, "BART.n_trees"),
    ({"n_burn": -1}, "BART.n_burn"), ({"n_draws": 0}, "BART.n_draws"),
    ({"keep_every": 0}, "BART.keep_every"), ({"seed": -1}, "BART.seed"),
    ({"n_chains": 3, "n_draws": 100}, "BART.n_draws"), ({"k": -1.0}, "BART.k"),
    ({"k": float("nan")}, "BART.k"), ({"sigma_df": 0.0}, "BART.sigma_df"),
    ({"sigma_quantile": 1.0}, "BART.sigma_quantile"), ({"base": 0.0}, "BART.base"),
    ({"power": -2.0}, "BART.power"), ({"max_cutpoints": 0}, "BART.max_cutpoints"),
    ({"min_rows": True}, "BART.min_rows"),
])
def test_bad_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.") + r".*Fix"):
        BART(**kwargs)


def test_bad_inputs_raise(reg_data, reg_fit):
    x, y, _ = reg_data
    for w in (-np.ones(len(y)), np.full(len(y), np.nan), np.zeros(len(y)), np.ones(3)):
        with pytest.raises(ValueError, match="sample_weight"):
            CFG.fit(x, y, w)
    with pytest.raises(ValueError, match="x must be 2-D"):
        CFG.fit(x[:, 0], y)
    with pytest.raises(ValueError, match="y contains NaN"):
        CFG.fit(x, np.where(np.arange(len(y)) == 0, np.nan, y))
    with pytest.raises(ValueError, match=r"BART\.predict: x: must have shape"):
        CFG.predict(reg_fit, x[:, :2])
    with pytest.raises(ValueError, match=r"BART\.predict_draws: x: contains NaN"):
        CFG.predict_draws(reg_fit, np.full((2, D), np.nan))
    with pytest.raises(ValueError, match="params"):
        CFG.predict(Ridge().fit(x, y), x)


def test_hashable_config_and_traceable_flag():
    assert BART.traceable is False and hash(CFG) == hash(BART(n_trees=50, n_burn=200,
                                                              n_draws=100, seed=0))


# ---------------------------------------------------------------------------------------------
# meta-learners
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uplift_data():
    """n = 480, exactly 240 rows per arm (a random permutation), e = 1/2 logged."""
    rng = np.random.default_rng(1)
    n = 480
    x = rng.uniform(-1, 1, (n, D))
    action = rng.permutation(np.repeat([0, 1], n // 2)).astype(np.int64)
    reward = f_step(x) + action * tau_step(x) + SIGMA * rng.normal(size=n)
    x_test = rng.uniform(-1, 1, (200, D))
    return x, action, reward, x_test


@pytest.fixture(scope="module")
def tlearner(uplift_data):
    x, action, reward, _ = uplift_data
    return TLearner(base=CFG).fit(x, action, reward)


def _t_bound(n0: int, n1: int) -> float:
    """Oracle RMSE of tau = mu_1 - mu_0 from independent cell means (K0 = 4, K1 = 8)."""
    return ORACLE_FACTOR * SIGMA * np.sqrt(4 / n0 + 8 / n1)


def test_tlearner_with_bart_recovers_known_tau(uplift_data, tlearner):
    _, action, _, x_test = uplift_data
    assert isinstance(tlearner.params_, HostFits) and len(tlearner.params_) == 2
    tau = np.asarray(tlearner.predict_tau(x_test))
    assert tau.shape == (200, 2) and np.all(tau[:, 0] == 0)
    err = rmse(tau[:, 1], tau_step(x_test))
    bound = _t_bound(int((action == 0).sum()), int((action == 1).sum()))
    assert err <= bound, (err, bound)
    assert bound < 1.0  # the bound excludes the best constant (tau = +-1 equally often)


def test_predict_tau_draws(uplift_data, tlearner):
    _, _, _, x_test = uplift_data
    draws = np.asarray(tlearner.predict_tau_draws(x_test))
    assert draws.shape == (CFG.n_draws, 200, 2) and draws.dtype == np.float64
    assert np.all(draws[:, :, 0] == 0)
    np.testing.assert_allclose(draws.mean(axis=0), np.asarray(tlearner.predict_tau(x_test)),
                               rtol=0, atol=1e-10)
    one = np.asarray(tlearner.predict_tau_draws(x_test, actions=np.array([1])))
    np.testing.assert_array_equal(one[..., 0], draws[..., 1])
    with pytest.raises(ValueError, match="actions"):
        tlearner.predict_tau_draws(x_test, actions=np.array([2]))
    x, action, reward, _ = uplift_data
    ridge_t = TLearner(base=Ridge()).fit(x, action, reward)
    with pytest.raises(ValueError, match=r"^base: .*predict_draws"):
        ridge_t.predict_tau_draws(x_test)


def test_thompson_dist_accepts_tau_draws(uplift_data, tlearner):
    _, _, _, x_test = uplift_data
    tv = np.asarray(tlearner.predict_tau_draws(x_test[:40]))[:50]  # 50 draws, 40 users
    tc = np.broadcast_to(np.array([0.0, 1.0]), tv.shape)  # offer costs 1, no-offer 0
    budget = 10.0
    dist = thompson_dist(tv, tc, budget=budget)
    assert dist.shape == (40, 2)
    assert np.all(dist >= -1e-12) and np.all(dist <= 1 + 1e-12)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    assert float((dist * tc[0]).sum()) <= budget + 1e-9  # every draw's allocation meets it
    assert 0 < dist[:, 1].sum()  # some users are treated


def test_drlearner_with_bart_base_recovers_linear_tau():
    rng = np.random.default_rng(2)
    n = 256
    x = rng.uniform(-1, 1, (n, D))
    action = rng.permutation(np.repeat([0, 1], n // 2)).astype(np.int64)
    tau = 1.0 + x[:, 0] - 0.5 * x[:, 1]
    reward = np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + action * tau + SIGMA * rng.normal(size=n)
    prob = np.full((n, 2), 0.5)
    dr = DRLearner(base=CFG, final=Ridge(alpha=1e-6), n_folds=2, seed=0)
    dr.fit(x, action, reward, action_prob=prob)
    assert isinstance(dr.outcome_params_, HostFits) and len(dr.outcome_params_) == 4
    tau_hat = np.asarray(dr.predict_tau(x))
    assert tau_hat.shape == (n, 2) and np.all(tau_hat[:, 0] == 0)
    phi, _ = dr.pseudo_outcomes(x, action, reward, prob)  # the same folds: the same phi
    s2 = float(np.mean((phi[:, 0] - tau) ** 2))
    bound = np.sqrt(chi2.ppf(0.999, D + 1) * s2 / n)
    err = rmse(tau_hat[:, 1], tau)
    assert err <= bound, (err, bound)
    assert bound < np.std(tau)  # the bound excludes the best constant (the ATE alone)


# ---------------------------------------------------------------------------------------------
# BCF
# ---------------------------------------------------------------------------------------------

BCF_CFG = {"n_trees_mu": 50, "n_trees_tau": 20, "n_burn": 200, "n_draws": 200, "seed": 0}


@pytest.fixture(scope="module")
def holdout_log():
    """Binary holdout design with 3 actions, offer 2 never used; the offer propensity depends on
    x0, which also drives mu_0 (confounding that the logged propensity corrects)."""
    rng = np.random.default_rng(4)
    n = 480
    x = rng.uniform(-1, 1, (n, D))
    e1 = 0.3 + 0.4 * (x[:, 0] > 0)
    action = (rng.uniform(size=n) < e1).astype(np.int64)
    reward = f_step(x) + action * tau_step(x) + SIGMA * rng.normal(size=n)
    prob = np.column_stack([1 - e1, e1, np.zeros(n)])
    return x, action, reward, prob, rng.uniform(-1, 1, (200, D))


@pytest.mark.slow  # bartz compiles its BCF sampler: about 40-80 s on 2 CPU cores
def test_bcf_learner_binary_design(holdout_log):
    x, action, reward, prob, x_test = holdout_log
    bcf = BCFLearner(**BCF_CFG).fit(x, action, reward, action_prob=prob)
    np.testing.assert_array_equal(bcf.supported_actions_, [0, 1])
    assert bcf.n_actions_ == 3
    with pytest.raises(ValueError, match=r"actions \[2\] were never logged"):
        bcf.predict_tau(x_test)
    tau = np.asarray(bcf.predict_tau(x_test, actions=bcf.supported_actions_))
    assert tau.shape == (200, 2) and np.all(tau[:, 0] == 0)
    err = rmse(tau[:, 1], tau_step(x_test))
    bound = _t_bound(int((action == 0).sum()), int((action == 1).sum()))
    assert err <= bound, (err, bound)
    mu = np.asarray(bcf.predict_mu(x_test, actions=np.array([0, 1])))
    np.testing.assert_allclose(mu[:, 1] - mu[:, 0], tau[:, 1], atol=1e-6)
    draws = np.asarray(bcf.predict_tau_draws(x_test, actions=np.array([0, 1])))
    assert draws.shape == (BCF_CFG["n_draws"], 200, 2) and np.all(draws[..., 0] == 0)
    np.testing.assert_allclose(draws.mean(axis=0), tau, atol=1e-6)
    # the same seed refits identically
    again = BCFLearner(**BCF_CFG).fit(x, action, reward, action_prob=prob)
    np.testing.assert_array_equal(np.asarray(again.predict_tau(x_test, actions=[0, 1])), tau)


def test_bcf_learner_rejects_multi_offer_logs_and_bad_config(holdout_log):
    x, action, reward, _, _ = holdout_log
    assert isinstance(BCFLearner(), UpliftLearner)
    three = np.where(np.arange(len(action)) % 5 == 0, 2, action)
    with pytest.raises(ValueError, match=r"^action: .*binary holdout design"):
        BCFLearner(**BCF_CFG).fit(x, three, reward)
    with pytest.raises(ValueError, match=r"BCFLearner\.n_trees_tau"):
        BCFLearner(n_trees_tau=0)
    with pytest.raises(ValueError, match=r"BCFLearner\.n_draws"):
        BCFLearner(n_draws=10, n_chains=3)
    with pytest.raises(ValueError, match=r"BCFLearner\.propensity"):
        BCFLearner(propensity=Ridge())


# ---------------------------------------------------------------------------------------------
# IHDP (slow)
# ---------------------------------------------------------------------------------------------

IHDP_REFERENCE = 1.12  # out-of-sample sqrt-PEHE reported for a bartz T-learner, 200 trees


@pytest.mark.slow  # 20 BART fits of 200 trees x 1200 iterations: about 5-10 min on 2 CPU cores
def test_ihdp_tlearner_bart_out_of_sample_pehe():
    """The IHDP protocol of experiments.suites.ihdp (replication r split 90/10 by
    default_rng(r)): the mean out-of-sample sqrt-PEHE over the 10 replications is not worse
    than the reference by more than 3 standard errors of that mean (the replication spread)."""
    from experiments.suites.ihdp import split
    from simulators.ihdp import N_REPLICATIONS, load_ihdp

    base = BART(n_trees=200)
    pehe_out = []
    for r in range(1, N_REPLICATIONS + 1):
        d = load_ihdp(r)
        tr, te = split(r, len(d.treatment), 0.1)
        learner = TLearner(base=base).fit(d.x[tr], d.treatment[tr], d.y_factual[tr],
                                          n_actions=2)
        pehe_out.append(rmse(np.asarray(learner.predict_tau(d.x[te]))[:, 1], d.tau[te]))
    pehe_out = np.asarray(pehe_out)
    se = pehe_out.std(ddof=1) / np.sqrt(len(pehe_out))
    assert pehe_out.mean() <= IHDP_REFERENCE + 3 * se, (pehe_out.mean(), se)
