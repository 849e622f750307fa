"""The world against its own truth: Monte Carlo means of sampled outcomes match the exact means,
response types appear in their configured shares, logging policies log what they sample, and the
simulator is reproducible and ``vmap``-consistent.

Tolerances: a mean of n i.i.d. draws has standard error sd/sqrt(n); every comparison below allows
4 standard errors (two-sided false-alarm probability 6e-5 per comparison, seeds fixed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulators import (
    LoggingConfig,
    WorldConfig,
    default_params,
    expected_outcomes,
    policy_truth,
    population_policy_truth,
    sample_outcomes,
    sample_users,
    simulate,
    simulate_batch,
)
from simulators.numpy_reference import numpy_truth
from simulators.world import _components, type_probabilities

Z = 4.0
N_MC = 100_000


def _assert_mean_zero(diff: np.ndarray, what: str) -> None:
    diff = np.asarray(diff, dtype=np.float64)
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert abs(diff.mean()) < Z * se + 1e-12, f"{what}: mean {diff.mean():.4g}, se {se:.3g}"


@pytest.fixture(scope="module")
def mc_world(world_params, world_config):
    """Users at period 2 (drift active), with every action forced in turn."""
    users = sample_users(jax.random.key(11), world_params, world_config, N_MC, period=2)
    truth = expected_outcomes(world_params, users)
    actions = jnp.broadcast_to(jnp.arange(world_config.n_actions)[:, None],
                               (world_config.n_actions, N_MC))
    keys = jax.random.split(jax.random.key(12), world_config.n_actions)
    sample = jax.vmap(lambda k, a: sample_outcomes(k, world_params, users, a))
    draws = jax.jit(sample)(keys, actions)
    return users, [np.asarray(t) for t in truth], [np.asarray(d) for d in draws]


def test_sampled_outcomes_match_exact_truth_per_action_and_segment(mc_world, world_config):
    users, (mu_v, mu_c, mu_a), (value, value_acc, cost, _lag) = mc_world
    segment = np.asarray(users.segment)
    for a in range(world_config.n_actions):
        for s in range(3):
            m = segment == s
            _assert_mean_zero(value[a][m] - mu_v[m, a], f"value a={a} s={s}")
            _assert_mean_zero(value_acc[a][m] - mu_a[m, a], f"value_accounting a={a} s={s}")
            if a > 0:
                _assert_mean_zero(cost[a][m] - mu_c[m, a], f"cost a={a} s={s}")
        assert np.all(cost[0] == 0.0) and np.all(mu_c[:, 0] == 0.0)


def test_truth_is_conditional_on_x_not_only_on_averages(mc_world, world_config):
    """Within quartiles of the true uplift, sampled uplift matches the truth: catches a truth that
    is right on average but wrong in the heterogeneity the learners must find."""
    _users, (mu_v, _mu_c, _mu_a), (value, *_rest) = mc_world
    k = world_config.n_actions - 1
    tau = mu_v[:, k] - mu_v[:, 0]
    bins = np.quantile(tau, [0.25, 0.5, 0.75])
    which = np.digitize(tau, bins)
    for b in range(4):
        m = which == b
        _assert_mean_zero((value[k][m] - value[0][m]) - tau[m], f"uplift quartile {b}")


def test_latent_types_match_their_probabilities_and_shares(world_params, world_config):
    users = sample_users(jax.random.key(3), world_params, world_config, N_MC, period=0)
    onehot = np.asarray(jax.nn.one_hot(users.response_type, 4))
    prob = np.asarray(type_probabilities(world_params, users))
    segment = np.asarray(users.segment)
    shares = np.asarray(world_params.type_shares)
    for t in range(4):
        _assert_mean_zero(onehot[:, t] - prob[:, t], f"type {t} vs P(type|x)")
        for s in range(3):
            m = segment == s
            p = shares[s, t]
            se = np.sqrt(p * (1 - p) / m.sum())
            assert abs(onehot[m, t].mean() - p) < Z * se, (s, t, onehot[m, t].mean(), p)


def test_four_response_types_behave_as_named(world_params, world_config):
    users = sample_users(jax.random.key(4), world_params, world_config, 20_000)
    p1 = np.asarray(_components(world_params, users).p1)  # (n, type, action)
    uplift = p1[:, :, 1:] - p1[:, :, :1]
    assert p1[:, 0, 0].mean() > 0.6 and np.abs(uplift[:, 0]).mean() < 0.05  # sure things
    assert (uplift[:, 1] > 0).all() and uplift[:, 1, -1].mean() > 0.15  # persuadables
    assert p1[:, 2].max() < 0.3 and np.abs(uplift[:, 2]).mean() < 0.01  # lost causes
    assert (uplift[:, 3] < 0).all()  # sleeping dogs: offers reduce purchase


def test_interference_is_sub_additive_and_cannibalises_redemption(world_params, world_config):
    users = sample_users(jax.random.key(5), world_params, world_config, 20_000)
    none = users._replace(other_actions=jnp.zeros_like(users.other_actions))
    both = users._replace(other_actions=jnp.ones_like(users.other_actions))
    mv0, _, _ = (np.asarray(a) for a in expected_outcomes(world_params, none))
    mv1, _, _ = (np.asarray(a) for a in expected_outcomes(world_params, both))
    k = world_config.n_actions - 1
    ours, theirs, joint = mv0[:, k] - mv0[:, 0], mv1[:, 0] - mv0[:, 0], mv1[:, k] - mv0[:, 0]
    assert joint.mean() < ours.mean() + theirs.mean()
    rho0 = np.asarray(_components(world_params, none).rho)
    rho1 = np.asarray(_components(world_params, both).rho)
    assert (rho1[:, 1:] < rho0[:, 1:]).all()


def test_pull_forward_lowers_accounting_uplift_exactly(world_params, world_config):
    users = sample_users(jax.random.key(6), world_params, world_config, 5_000)
    mv, _, ma = (np.asarray(a) for a in expected_outcomes(world_params, users))
    no_pf = world_params._replace(pull_forward=jnp.asarray(0.0))
    mv2, _, ma2 = (np.asarray(a) for a in expected_outcomes(no_pf, users))
    np.testing.assert_allclose(ma2 - ma2[:, :1], mv2 - mv2[:, :1], atol=1e-9)
    tau_v, tau_a = mv - mv[:, :1], ma - ma[:, :1]
    # exact: tau_acc - tau_v = -phi * margin * B2 * sum_t P(t|x) q2_t (p1_t(a) - p1_t(0))
    comp = _components(world_params, users)
    w = np.asarray(type_probabilities(world_params, users))
    p1, q2 = np.asarray(comp.p1), np.asarray(comp.q2)
    pulled = np.einsum("nt,nta->na", w * q2, p1 - p1[:, :, :1])
    expected = (-float(world_params.pull_forward) * float(world_params.margin)
                * np.asarray(comp.basket2)[:, None] * pulled)
    np.testing.assert_allclose(tau_a - tau_v, expected, rtol=1e-9, atol=1e-12)
    assert (tau_a[:, -1].mean() < tau_v[:, -1].mean())


def test_drift_changes_covariates_effects_and_costs(world_params, world_config):
    key = jax.random.key(7)
    u0 = sample_users(key, world_params, world_config, 20_000, period=0)
    u4 = sample_users(key, world_params, world_config, 20_000, period=4)
    shift = np.asarray(u4.x - u0.x)[:, : world_config.n_continuous].mean(0)
    np.testing.assert_allclose(shift, 4 * np.asarray(world_params.covariate_shift), atol=1e-9)
    rho0 = np.asarray(_components(world_params, u0).rho)[:, 1:]
    rho4 = np.asarray(_components(world_params, u4._replace(x=u0.x)).rho)[:, 1:]
    assert (rho4 >= rho0).all() and (rho4 > rho0).any()


def test_redemption_lag_is_geometric_with_configured_mean(mc_world, world_params):
    *_, (_v, _va, cost, lag) = mc_world
    lags = lag[1:][cost[1:] > 0].astype(np.float64)
    _assert_mean_zero(lags - float(world_params.redemption_lag_mean), "redemption lag mean")
    assert (lag[0] == -1).all()


def test_numpy_reference_truth_equals_jax_truth(world_params, world_config):
    users = sample_users(jax.random.key(8), world_params, world_config, 2_000, period=3)
    jax_truth = expected_outcomes(world_params, users)
    np_truth = numpy_truth(world_params, *(np.asarray(a) for a in (
        users.x, users.segment, users.period, users.other_actions, users.type_score)))
    for j, n in zip(jax_truth, np_truth[:3], strict=True):
        np.testing.assert_allclose(np.asarray(j), n, rtol=1e-10)


@pytest.mark.parametrize("kind", ["uniform", "holdout", "warm_start", "epsilon_greedy"])
def test_logged_actions_follow_logged_propensities(world_params, world_config, kind):
    log = simulate(jax.random.key(9), world_params, world_config, 20_000, LoggingConfig(kind=kind))
    onehot = np.eye(world_config.n_actions)[log.action]
    for a in range(world_config.n_actions):
        _assert_mean_zero(onehot[:, a] - log.action_prob[:, a], f"{kind} action {a}")
    if kind == "holdout":
        assert set(np.unique(log.action)) == {0, 1}
    if kind == "epsilon_greedy":
        n_elig = log.eligible.sum(1)
        floor = 0.1 / n_elig
        assert (log.action_prob[log.eligible] >= np.repeat(floor, n_elig) - 1e-12).all()
    if kind == "warm_start":  # skewed towards the actions a prior model likes
        net = log.truth.tau_value - log.truth.tau_cost
        corr = np.corrcoef(net[log.eligible], log.action_prob[log.eligible])[0, 1]
        assert corr > 0.2


def test_confounded_history_biases_naive_uplift_but_randomisation_does_not(world_params,
                                                                           world_config):
    n = 40_000
    for kind, biased in (("confounded", True), ("uniform", False)):
        log = simulate(jax.random.key(10), world_params, world_config, n, LoggingConfig(kind=kind))
        treated = log.action > 0
        naive = log.value[treated].mean() - log.value[~treated].mean()
        se = np.sqrt(log.value[treated].var() / treated.sum()
                     + log.value[~treated].var() / (~treated).sum())
        # the estimand the naive contrast claims: E[tau | treated] with the treated actions
        tau = log.truth.tau_value[np.arange(n), log.action][treated].mean()
        if biased:
            assert log.action_prob is None
            assert naive - tau > 5 * se, (naive, tau, se)
        else:
            # under uniform logging the contrast compares randomised arms; its target is the
            # average effect of the offers over everyone, which equals E[tau | treated] in law.
            ate = (log.truth.tau_value * log.action_prob)[:, 1:].sum(1).mean() / (
                log.action_prob[:, 1:].sum(1).mean())
            assert abs(naive - ate) < Z * se, (naive, ate, se)


def test_same_seed_same_data_and_vmap_equals_loop(world_params, world_config):
    keys = jax.random.split(jax.random.key(42), 64)
    n = 300
    batch = simulate_batch(keys, world_params, world_config, n)
    leaves_b, _ = jax.tree_util.tree_flatten(batch)
    for i in range(64):
        one = simulate(keys[i], world_params, world_config, n)
        for lb, lo in zip(leaves_b, jax.tree_util.tree_flatten(one)[0], strict=True):
            np.testing.assert_allclose(np.asarray(lb)[i], lo, rtol=1e-12, atol=1e-12)
    again = simulate(keys[0], world_params, world_config, n)
    first = simulate(keys[0], world_params, world_config, n)
    for a, b in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(first),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    other = simulate(keys[1], world_params, world_config, n)
    assert not np.array_equal(other.value, first.value)
    assert batch.seed(5).n == n


def test_policy_truth_and_population_truth_agree(world_params, world_config, uniform_log):
    none = np.eye(world_config.n_actions)[np.zeros(uniform_log.n, int)]
    pt = policy_truth(uniform_log.truth, none)
    assert pt.incremental_value == 0.0 and pt.incremental_cost == 0.0
    pt_log = policy_truth(uniform_log.truth, uniform_log.action_prob)
    pop = population_policy_truth(
        jax.random.key(13), world_params, world_config,
        lambda u: u.eligible / u.eligible.sum(1, keepdims=True), n=1 << 17)
    sd_rows = np.std((uniform_log.action_prob * uniform_log.truth.mu_value).sum(1))
    se = np.hypot(sd_rows / np.sqrt(uniform_log.n), pop.stderr_value)
    assert abs(pt_log.value - pop.value) < Z * se
    with pytest.raises(ValueError, match="action_dist"):
        policy_truth(uniform_log.truth, none[:, :2])


def test_world_config_and_logging_config_reject_bad_values():
    with pytest.raises(ValueError, match="WorldConfig.n_offers"):
        WorldConfig(n_offers=0)
    with pytest.raises(ValueError, match="LoggingConfig.kind"):
        LoggingConfig(kind="unifrom")
    with pytest.raises(ValueError, match="LoggingConfig.epsilon"):
        LoggingConfig(kind="epsilon_greedy", epsilon=0.0)
    assert default_params(WorldConfig(n_offers=2, n_programs=0)).face_value.shape == (3,)
