"""The LBCF world (Ai et al., WWW 2022) and its suite: R's generator and the published users are
reproduced exactly, the exact truth matches an independent transcription and Monte Carlo, the
log validates, the bisection allocator never beats the exact LP at equal budget and both hold
the budget, the paper's offline PMG matches its script's group-by, the compact suite run writes
its table and figures with a zero-regret oracle, and bad inputs name the field."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.stats import foldnorm

from experiments.suites.lbcf import (
    PUBLISHED_ITE,
    SUITE,
    LBCFSuiteConfig,
    lbcf_bisection,
    max_roi_greedy,
    pmg_rct,
    pmg_truth,
)
from policies.allocation import allocate
from simulators.data import LoggedData
from simulators.lbcf import (
    LBCFConfig,
    folded_normal_mean,
    lbcf_logged_data,
    lbcf_outcomes,
    lbcf_truth,
    published_users,
    published_weights,
    r_rnorm,
)

Z = 4.0  # z-score limit of the Monte Carlo checks (fixed keys)


# ------------------------------------------------------------------- R's generator, published
def test_r_generator_matches_r():
    # R: set.seed(1); rnorm(3) and set.seed(42); rnorm(3) (default Mersenne-Twister, Inversion)
    np.testing.assert_allclose(r_rnorm(1, 3), [-0.6264538107, 0.1836433242, -0.8356286124],
                               atol=1e-9)
    np.testing.assert_allclose(r_rnorm(42, 3), [1.3709584471, -0.5646981714, 0.3631284113],
                               atol=1e-9)


def test_published_weights_and_users_are_the_papers():
    # the training weights, recovered independently by regressing Value(A=1) - Value(A=0) on
    # H2^2, H3^2, H4^2 in the repository's Code/Model/CF_DT/data/MBCF_train_5uw_1.csv
    w = published_weights(1)
    np.testing.assert_allclose(w[:3], [0.585528818, -0.453497173, 2.63009855], atol=1e-8)
    assert published_weights(2).w1 != w.w1  # the test set uses the second draw
    train = published_users(5, "training")
    # the first five H1 of that CSV (every user's rows agree across arms)
    np.testing.assert_allclose(train.x[:5, 0], [0.663797063161775, -1.44444188204244,
                                                0.37028227683309, -1.26198713068825,
                                                1.35368791356439], atol=1e-12)
    np.testing.assert_allclose(train.value[:2, 1], [105.529620364104, 34.555899046975696],
                               rtol=1e-13)  # their Value under A = 1
    gain = train.value[:, 1] - train.value[:, 0]
    h = train.x
    np.testing.assert_allclose(gain, w.w1 * h[:, 1] ** 2 + w.w2 * h[:, 2] ** 2 + w.w3
                               * h[:, 3] ** 2, rtol=1e-9, atol=1e-9)  # common random numbers
    assert (train.cost[:, 0] == 0).all() and (train.cost[:, 1:] >= 0).all()


# ------------------------------------------------------------------------------ exact truth
def _reference_truth(x: np.ndarray, cfg: LBCFConfig) -> tuple[np.ndarray, np.ndarray]:
    """Independent transcription: scipy's folded normal for E|a h + U|, U ~ N(3, (1.5 uW)^2)."""
    w = published_weights(cfg.weight_set)
    g = w.w1 * x[:, 1] ** 2 + w.w2 * x[:, 2] ** 2 + w.w3 * x[:, 3] ** 2
    h = w.w4 * x[:, 2] ** 2 + w.w5 * x[:, 3]
    s = cfg.latent_scale * cfg.uncertainty
    arms = np.arange(cfg.n_actions)
    mu = arms[None, :] * h[:, None] + 3.0
    e_abs = foldnorm.mean(np.abs(mu) / s, scale=s)
    mu_c = arms[None, :] * (1 + 1 / cfg.uncertainty) / 2 * e_abs
    return 3.0 + arms[None, :] * g[:, None], mu_c


@pytest.fixture(scope="module")
def users():
    """Six fixed users (published test users of uW = 10) and one noise feature."""
    cfg = LBCFConfig(n=6, uncertainty=10.0, weight_set=1, n_noise_features=1)
    x = published_users(10, "test").x[:6]
    return cfg, np.column_stack([x, np.linspace(-1.0, 1.0, 6)])


def test_truth_matches_an_independent_transcription(users):
    cfg, x = users
    mu_v, mu_c = (np.asarray(t) for t in lbcf_truth(x, cfg))
    ref_v, ref_c = _reference_truth(x, cfg)
    np.testing.assert_allclose(mu_v, ref_v, rtol=1e-12)
    np.testing.assert_allclose(mu_c, ref_c, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(folded_normal_mean(np.array([-2.0, 0.0, 3.0]), 1.5)),
                               foldnorm.mean(np.array([2.0, 0.0, 3.0]) / 1.5, scale=1.5),
                               rtol=1e-12)


def test_truth_against_monte_carlo(users):
    """Each (user, arm) drawn R times with a fresh latent U.Y, value noise and cost uniform: the
    sample means of value and cost lie within 4 standard errors of the exact truth."""
    cfg, x = users
    reps = 20_000
    k1 = cfg.n_actions
    xr = np.repeat(np.repeat(x, k1, axis=0), reps, axis=0)
    arm = np.repeat(np.tile(np.arange(k1), x.shape[0]), reps)
    value, cost = (np.asarray(t).reshape(x.shape[0], k1, reps)
                   for t in lbcf_outcomes(jax.random.key(11), xr, arm, cfg))
    mu_v, mu_c = (np.asarray(t) for t in lbcf_truth(x, cfg))
    for y, mu in ((value, mu_v), (cost[:, 1:], mu_c[:, 1:])):
        se = y.std(axis=-1, ddof=1) / np.sqrt(reps)
        z = np.abs(y.mean(axis=-1) - mu) / se
        assert z.max() < Z, z
    assert (cost[:, 0] == 0).all()
    sd = np.sqrt((cfg.latent_scale * cfg.uncertainty) ** 2
                 + (cfg.value_noise_scale * cfg.uncertainty) ** 2)
    np.testing.assert_allclose(value.std(axis=-1), sd, rtol=0.05)


def test_log_is_a_valid_randomised_trial_and_reproducible():
    cfg = LBCFConfig(n=4_000, uncertainty=5.0, weight_set=2)  # the compact run's log shape
    log = lbcf_logged_data(jax.random.key(0), cfg)
    assert isinstance(log, LoggedData) and log.n_actions == 4
    np.testing.assert_allclose(log.action_prob, 0.25)
    counts = np.bincount(log.action, minlength=4)
    assert counts.min() > 850
    np.testing.assert_array_equal(np.asarray(log.truth.tau_cost)[:, 0], 0.0)
    assert (log.cost >= 0).all() and (log.cost[log.action == 0] == 0).all()
    again = lbcf_logged_data(jax.random.key(0), cfg)
    np.testing.assert_array_equal(log.value, again.value)
    other = lbcf_logged_data(jax.random.key(1), cfg)
    assert not np.array_equal(log.value, other.value)
    assert (np.asarray(log.truth.response_type) == 1).all()  # weight set 2: every g > 0


# ------------------------------------------------------------------------------- allocators
@pytest.fixture(scope="module")
def instance():
    rng = np.random.default_rng(0)
    n, k = 4_000, 3  # the compact run's evaluation size: the allocator compiles once
    c = np.cumsum(rng.gamma(2.0, 1.0, (n, k)), axis=1)
    v = np.cumsum(rng.gamma(2.0, 1.0, (n, k)) * rng.uniform(0.3, 1.0, (n, k)), axis=1)
    pad = np.zeros((n, 1))
    return np.hstack([pad, v]), np.hstack([pad, c])


@pytest.mark.parametrize("share", [0.05, 0.3, 0.7, 1.5, 3.0])
def test_bisection_never_beats_the_exact_lp_and_both_hold_the_budget(instance, share):
    v, c = instance
    budget = share * c[:, -1].sum() / 2
    ours, theirs = allocate(v, c, budget=budget), lbcf_bisection(v, c, budget=budget)
    assert theirs.expected_value <= ours.expected_value + 1e-9 * abs(ours.expected_value)
    for a in (ours, theirs):
        assert a.expected_cost <= budget * (1 + 1e-12)
    assert set(np.unique(theirs.action_dist)) <= {0.0, 1.0}  # one arm per user
    if ours.budget_binds:  # the bisection brackets the LP's multiplier
        assert abs(theirs.budget_multiplier - ours.budget_multiplier) < 1e-4
        assert ours.expected_value - theirs.expected_value <= ours.budget_multiplier * (
            budget - theirs.expected_cost) + 1e-9 * budget
    else:
        assert theirs.budget_multiplier == 0.0
        np.testing.assert_allclose(theirs.expected_value, ours.expected_value)


def test_bisection_cannot_split_tied_users():
    """4,000 identical users (tree-leaf predictions tie): the LP funds half of them, the bisection
    none (every user switches at the same multiplier)."""
    v = np.column_stack([np.zeros(4_000), np.ones(4_000)])
    ours, theirs = allocate(v, v, budget=2_000.5), lbcf_bisection(v, v, budget=2_000.5)
    np.testing.assert_allclose(ours.expected_value, 2_000.5)
    assert theirs.expected_value == 0.0 and theirs.expected_cost == 0.0


def test_max_roi_greedy_takes_the_best_ratio_arm_and_stops_there(instance):
    v, c = instance
    greedy = max_roi_greedy(v, c, budget=1e12)
    roi = v[:, 1:] / c[:, 1:]
    np.testing.assert_array_equal(greedy.action, 1 + np.argmax(roi, axis=1))
    assert greedy.expected_value < allocate(v, c, budget=1e12).expected_value


# ------------------------------------------------------------------------------------ metrics
def test_pmg_rct_is_the_scripts_group_by():
    """``Offline_test.py``: users whose randomised arm equals the recommended one, mean label per
    arm, weighted by how many users each arm is recommended to, against the control mean (the
    mismatch marker is -1 here; the script's sample data code it 0, clashing with no-offer)."""
    rng = np.random.default_rng(1)
    n = 3_000
    logged = rng.integers(0, 4, n)
    rec = rng.integers(0, 4, n)
    y = rng.normal(10.0 + logged, 2.0)
    df = pd.DataFrame({"label": y, "treatment": logged, "final": rec})
    df["tmp_label"] = np.where(df.treatment == df.final, df.treatment, -1)
    overlap = df.groupby("tmp_label").label.mean()
    counts = df.groupby("final").size()
    arms = [a for a in counts.index if a in overlap.index]
    avg = sum(overlap[a] * counts[a] for a in arms) / sum(counts[a] for a in arms)
    base = df[df.treatment == 0].label.mean()
    dist = np.eye(4)[rec]
    np.testing.assert_allclose(pmg_rct(dist, logged, y), (avg - base) / base, rtol=1e-12)
    tau = np.tile(np.arange(4.0), (n, 1))
    np.testing.assert_allclose(pmg_truth(dist, tau, np.full(n, 10.0)), rec.mean() / 10.0)


# ------------------------------------------------------------------------------- the suite run
@pytest.fixture(scope="module")
def rows():
    return SUITE.run(LBCFSuiteConfig.compact(), seed=0, progress=False)


def _metric(rows, section, metric, **keys):
    d = rows[(rows.section == section) & (rows.metric == metric)]
    for k, val in keys.items():
        d = d[d[k] == val]
    return d


def test_compact_run_writes_the_table_and_figures(rows, tmp_path):
    SUITE.check_rows(rows)
    paths = SUITE.outputs(rows, tmp_path)
    names = {p.name for p in paths}
    assert {"lbcf.csv", "lbcf.md", "lbcf_pmg.png", "lbcf_published.png"} <= names
    md = (tmp_path / "lbcf.md").read_text()
    assert "experiment=lbcf" in md and "LBCF (published)" in md and "pmg_truth" in md
    assert not SUITE.headline(rows).empty


def test_oracle_has_zero_regret_and_every_allocator_holds_its_budget(rows):
    assert np.abs(_metric(rows, "world", "regret", policy="oracle").value).max() < 1e-9
    truth = _metric(rows, "world", "cost_over_budget", learner="truth")
    assert truth.value.max() < 1e-9  # by truth, on true effects
    planned = _metric(rows, "world", "planned_cost_over_budget")
    assert planned[planned.policy != "random"].value.max() < 1e-9
    value = _metric(rows, "world", "incremental_value", learner="truth").pivot_table(
        index="budget_per_user", columns=["noise", "policy"], values="value")
    for uw in value.columns.get_level_values(0).unique():
        assert (value[(uw, "oracle")] >= value[(uw, "lbcf_bisection")] - 1e-9).all()
    pub = _metric(rows, "published", "ite")
    for uw, g in pub.groupby("noise"):
        oracle = g[g.policy == "oracle"].value.iloc[0]
        assert g.value.max() <= oracle + 1e-12  # same realised costs and budget for all
        assert PUBLISHED_ITE[uw]["LBCF"] < oracle  # the paper's LBCF sits below the exact bound
    assert _metric(rows, "published", "cost_over_budget").value.max() < 1e-9


# ----------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, field", [
    ({"uncertainty": 0.5}, "LBCFConfig.uncertainty"),
    ({"uncertainty": float("nan")}, "LBCFConfig.uncertainty"),
    ({"weight_set": 4}, "LBCFConfig.weight_set"),
    ({"n": 0}, "LBCFConfig.n"),
    ({"n_treatments": 1.5}, "LBCFConfig.n_treatments"),
    ({"latent_scale": 0.0}, "LBCFConfig.latent_scale"),
])
def test_bad_world_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"{field}.*Fix:"):
        LBCFConfig(**kwargs)


def test_bad_inputs_name_the_argument():
    cfg = LBCFConfig(n=3)
    x = published_users(5, "test").x[:3]
    with pytest.raises(ValueError, match="action.*Fix:"):
        lbcf_outcomes(jax.random.key(0), x, np.array([0, 1, 4]), cfg)
    with pytest.raises(ValueError, match="x.*Fix:"):
        lbcf_truth(x[:, :2], cfg)
    with pytest.raises(ValueError, match="split.*Fix:"):
        published_users(5, "validation")
    with pytest.raises(ValueError, match="budget.*Fix:"):
        lbcf_bisection(np.zeros((2, 2)), np.zeros((2, 2)), budget=-1.0)
    with pytest.raises(ValueError, match="learners.*Fix:"):
        LBCFSuiteConfig(learners=("nope",))
    with pytest.raises(ValueError, match="weight_set.*Fix:"):
        dataclasses.replace(LBCFSuiteConfig(), test_weight_set=0)
