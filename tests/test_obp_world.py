"""OBP's synthetic bandit world: the surfaces match an independent NumPy transcription of
``obp.dataset.synthetic`` (``_base_reward_function``, ``_base_behavior_policy_function``) with the
world's coefficients, the population z-score constants are the limit of OBP's batch statistics,
the behaviour policy is exactly ``softmax(beta * logits)``, the draw follows the truth within
standard errors, the log validates with its truth, draws are reproducible from the key, and bad
inputs name the field."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from simulators.data import LoggedData
from simulators.obp_world import (
    OBPWorldConfig,
    n_actions,
    obp_world_arrays,
    obp_world_logged_data,
    obp_world_params,
    obp_world_surfaces,
    policy_value,
)

N_STAT = 20_000  # rows of the statistical checks
Z = 4.0  # z-score limit: two-sided 6e-5 per check, a few dozen checks at fixed seeds
CFG = OBPWorldConfig()  # 10 arms, d = 5, beta = 3, behaviour softmax(beta q), world 12345
CFG_LINEAR = OBPWorldConfig(behavior="linear", beta=1.0, world_seed=7)


# --------------------------------------------------------------------------------------------
# independent NumPy transcription of obp/dataset/synthetic.py (obp 0.5.7), coefficients given
# --------------------------------------------------------------------------------------------


def _poly1(a: np.ndarray) -> np.ndarray:
    """sklearn ``PolynomialFeatures(degree=1).fit_transform``: a constant column, then ``a``."""
    return np.c_[np.ones(len(a)), a]


def _obp_reward_logits(p, x: np.ndarray) -> np.ndarray:
    """``_base_reward_function(degree=1, z_score=False)`` with one-hot action context."""
    k = len(p.action_coef) - 1
    xt, at = _poly1(x), _poly1(np.eye(k))
    ctx, act, ctx_act = (np.asarray(v) for v in (p.context_coef, p.action_coef,
                                                 p.context_action_coef))
    return np.tile(xt @ ctx, (k, 1)).T + np.tile(act @ at.T, (len(x), 1)) + xt @ ctx_act @ at.T


def _obp_behavior_raw(p, x: np.ndarray) -> np.ndarray:
    """``_base_behavior_policy_function(degree=1)`` before its standardisation."""
    k = len(p.behavior_action_coef) - 1
    xt, at = _poly1(x), _poly1(np.eye(k))
    return (xt @ np.asarray(p.behavior_context_action_coef) @ at.T
            + np.asarray(p.behavior_action_coef) @ at.T)


def _population(logits_fn, p, d: int) -> tuple[float, float]:
    """Mean and sd of ``f(x, a)`` over ``x ~ N(0, I_d)``, uniform ``a``, from the linear form:
    ``f(x, a) = f(0, a) + sum_j x_j (f(e_j, a) - f(0, a))``."""
    c = logits_fn(p, np.zeros((1, d)))[0]
    b = logits_fn(p, np.eye(d)) - c  # (d, K)
    mean = c.mean()
    return mean, np.sqrt((c**2).mean() - mean**2 + (b**2).sum(axis=0).mean())


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _fixed_x(d: int = 5, n: int = 300) -> np.ndarray:
    return np.random.default_rng(5).normal(scale=1.5, size=(n, d))


# --------------------------------------------------------------------------------------------
# the surfaces
# --------------------------------------------------------------------------------------------


def test_coefficient_laws_and_shapes():
    p = obp_world_params(OBPWorldConfig(n_actions=30, world_seed=1))
    for name, shape, (lo, hi) in (("context_coef", (6,), (-1, 1)), ("action_coef", (31,), (-1, 1)),
                                  ("context_action_coef", (6, 31), (-1, 1)),
                                  ("behavior_action_coef", (31,), (0, 1)),
                                  ("behavior_context_action_coef", (6, 31), (0, 1))):
        v = np.asarray(getattr(p, name))
        assert v.shape == shape and v.dtype == np.float64, name
        assert v.min() >= lo and v.max() < hi, name
    both = np.concatenate([np.ravel(p.context_action_coef), np.ravel(p.action_coef)])
    assert abs(both.mean()) < Z * np.sqrt(1 / 3 / both.size)  # U(-1, 1): mean 0, var 1/3
    assert abs(both.var() - 1 / 3) < Z * np.sqrt((1 / 5 - 1 / 9) / both.size)


@pytest.mark.parametrize("z_score", [True, False])
def test_q_is_obps_logistic_reward_function(z_score):
    cfg = dataclasses.replace(CFG, z_score=z_score)
    p = obp_world_params(cfg)
    x = _fixed_x()
    f = _obp_reward_logits(p, x)
    m, s = _population(_obp_reward_logits, p, 5)
    shift = m / s if z_score else 0.0  # OBP: f - f.mean() / f.std() (precedence: a shift)
    np.testing.assert_allclose(float(p.reward_shift), shift, rtol=1e-12, atol=0)
    surf = obp_world_surfaces(cfg, x)
    q = np.asarray(surf.q)
    assert q.shape == (300, 10) and q.dtype == np.float64
    np.testing.assert_allclose(q, _sigmoid(f - shift), rtol=1e-12, atol=1e-15)
    # behavior="reward" (OBP's default): the logits are q itself
    np.testing.assert_array_equal(np.asarray(surf.behavior_logits), q)


def test_linear_behavior_is_obps_standardised_linear_policy():
    p = obp_world_params(CFG_LINEAR)
    x = _fixed_x()
    h = _obp_behavior_raw(p, x)
    m, s = _population(_obp_behavior_raw, p, 5)
    np.testing.assert_allclose([float(p.behavior_mean), float(p.behavior_std)], [m, s],
                               rtol=1e-12)
    surf = obp_world_surfaces(CFG_LINEAR, x)
    np.testing.assert_allclose(np.asarray(surf.behavior_logits), (h - m) / s, rtol=1e-11,
                               atol=1e-12)


@pytest.mark.parametrize("which", ["reward", "behavior"])
def test_population_constants_are_the_limit_of_obps_batch_statistics(which):
    """OBP standardises with the mean and sd of the n x K batch; ours are their limits."""
    cfg = CFG if which == "reward" else CFG_LINEAR
    p = obp_world_params(cfg)
    fn = _obp_reward_logits if which == "reward" else _obp_behavior_raw
    x = np.random.default_rng(11).normal(size=(100_000, 5))
    f = fn(p, x)
    m, s = _population(fn, p, 5)
    # Rows are i.i.d. (arms within a row are not): standard errors from per-row averages.
    row_mean = f.mean(axis=1)
    assert abs(f.mean() - m) < Z * row_mean.std() / np.sqrt(len(x))
    row_sq = ((f - m) ** 2).mean(axis=1)
    se_std = row_sq.std() / np.sqrt(len(x)) / (2 * s)
    assert abs(f.std() - s) < Z * se_std


def test_behavior_distribution_is_softmax_of_beta_logits():
    x = _fixed_x()
    for cfg in (CFG, CFG_LINEAR, dataclasses.replace(CFG, beta=-3.0)):
        surf = obp_world_surfaces(cfg, x)
        prob = np.asarray(surf.behavior_prob)
        np.testing.assert_allclose(prob, _softmax(cfg.beta * np.asarray(surf.behavior_logits)),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-14)
        assert prob.min() > 0
    # beta > 0 puts most mass on the best arm on average, beta < 0 on the worst
    q = np.asarray(obp_world_surfaces(CFG, x).q)
    up = np.asarray(obp_world_surfaces(CFG, x).behavior_prob)
    down = np.asarray(obp_world_surfaces(dataclasses.replace(CFG, beta=-3.0), x).behavior_prob)
    assert policy_value(q, up) > q.mean() > policy_value(q, down)


@pytest.mark.parametrize("behavior", ["reward", "linear"])
def test_beta_zero_is_uniform(behavior):
    cfg = OBPWorldConfig(beta=0.0, behavior=behavior)
    prob = np.asarray(obp_world_surfaces(cfg, _fixed_x()).behavior_prob)
    np.testing.assert_allclose(prob, 0.1, rtol=1e-14)


# --------------------------------------------------------------------------------------------
# the draw
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_log() -> LoggedData:
    return obp_world_logged_data(jax.random.key(0), CFG, N_STAT)


def test_covariate_law(big_log):
    x = np.asarray(big_log.x)
    assert x.shape == (N_STAT, 5) and x.dtype == np.float64
    assert np.all(np.abs(x.mean(axis=0)) < Z / np.sqrt(N_STAT))
    assert np.all(np.abs(x.var(axis=0) - 1) < Z * np.sqrt(2 / N_STAT))
    corr = np.corrcoef(x.T)[np.triu_indices(5, 1)]
    assert np.all(np.abs(corr) < Z / np.sqrt(N_STAT))


def test_truth_is_the_surfaces_and_rewards_follow_it(big_log):
    surf = obp_world_surfaces(CFG, big_log.x)
    q = np.asarray(surf.q)
    np.testing.assert_array_equal(big_log.truth.mu_value, q)
    np.testing.assert_allclose(big_log.action_prob, np.asarray(surf.behavior_prob), rtol=1e-14)
    r, a = np.asarray(big_log.value), np.asarray(big_log.action)
    assert set(np.unique(r)) == {0.0, 1.0}
    for arm in range(10):
        rows = a == arm
        n_a = int(rows.sum())
        assert n_a > 200, arm
        qa = q[rows, arm]
        # given (x, a) the rewards are independent Bernoulli(q): Var(sum) = sum q (1 - q)
        se = np.sqrt(np.sum(qa * (1 - qa))) / n_a
        assert abs(r[rows].mean() - qa.mean()) < Z * se, (arm, r[rows].mean(), qa.mean())
    # the logged action's q: overall mean reward matches
    q_taken = q[np.arange(N_STAT), a]
    assert abs(r.mean() - q_taken.mean()) < Z * np.sqrt(np.sum(q_taken * (1 - q_taken))) / N_STAT


def test_actions_are_drawn_from_the_logged_distribution(big_log):
    prob = np.asarray(big_log.action_prob)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-14)
    a = np.asarray(big_log.action)
    for arm in range(10):
        p = prob[:, arm]
        se = np.sqrt(np.sum(p * (1 - p))) / N_STAT
        assert abs(np.mean(a == arm) - p.mean()) < Z * se, arm
    np.testing.assert_allclose(big_log.pscore, prob[np.arange(N_STAT), a])


def test_uniform_logging():
    log = obp_world_logged_data(jax.random.key(1), CFG, N_STAT, logging="uniform")
    np.testing.assert_array_equal(log.action_prob, np.full((N_STAT, 10), 0.1))
    counts = np.bincount(log.action, minlength=10)
    se = np.sqrt(N_STAT * 0.1 * 0.9)
    assert np.all(np.abs(counts - N_STAT * 0.1) < Z * se)


def test_logged_data_fields(big_log):
    log = big_log
    assert isinstance(log, LoggedData) and log.n == N_STAT and log.n_actions == n_actions(CFG)
    np.testing.assert_array_equal(log.value, log.value_accounting)
    assert np.all(log.cost == 0) and np.all(log.truth.mu_cost == 0)
    np.testing.assert_array_equal(log.truth.mu_value, log.truth.mu_value_accounting)
    assert log.eligible.all() and np.all(log.face_value == 0)
    assert np.all(log.segment == 0) and np.all(log.period == 0)
    assert np.all(log.redemption_lag == -1) and log.other_actions.shape == (N_STAT, 0)
    q = log.truth.mu_value
    gain = q[:, 1:].max(axis=1) - q[:, 0]
    np.testing.assert_array_equal(log.truth.response_type,
                                  np.where(gain > 0, 1, np.where(gain < 0, 3, 2)))
    assert {1, 3} <= set(np.unique(log.truth.response_type))


def test_reproducible_from_key_and_world_fixed_by_config(big_log):
    same = obp_world_logged_data(jax.random.key(0), CFG, N_STAT)
    other = obp_world_logged_data(jax.random.key(2), CFG, N_STAT)
    for name in ("x", "action", "value", "action_prob"):
        np.testing.assert_array_equal(getattr(big_log, name), getattr(same, name))
        assert not np.array_equal(getattr(big_log, name), getattr(other, name))
    # the world (q as a function of x) is the config's, whatever the draw key
    np.testing.assert_array_equal(np.asarray(obp_world_surfaces(CFG, other.x).q),
                                  other.truth.mu_value)
    p0, p1 = obp_world_params(CFG), obp_world_params(dataclasses.replace(CFG, world_seed=1))
    np.testing.assert_array_equal(np.asarray(p0.context_coef),
                                  np.asarray(obp_world_params(CFG).context_coef))
    assert not np.array_equal(np.asarray(p0.context_coef), np.asarray(p1.context_coef))


def test_vmap_over_keys_and_worlds_matches_single_draws():
    keys = jax.random.split(jax.random.key(3), 3)
    params = [obp_world_params(dataclasses.replace(CFG, world_seed=s)) for s in range(3)]
    stacked = jax.tree_util.tree_map(lambda *v: np.stack(v), *params)
    with jax.enable_x64(True):
        batch = jax.vmap(lambda k, p: obp_world_arrays(k, CFG, 500, params=p))(keys, stacked)
    for i in range(3):
        one = obp_world_arrays(keys[i], CFG, 500, params=params[i])
        np.testing.assert_allclose(np.asarray(batch.surfaces.q[i]), np.asarray(one.surfaces.q),
                                   rtol=1e-13)
        np.testing.assert_array_equal(np.asarray(batch.action[i]), np.asarray(one.action))
        np.testing.assert_array_equal(np.asarray(batch.reward[i]), np.asarray(one.reward))


def test_policy_value_is_obps_ground_truth():
    q = np.random.default_rng(0).uniform(size=(2, 50, 4))
    pi = _softmax(q.reshape(-1, 4)).reshape(q.shape)
    np.testing.assert_allclose(np.asarray(policy_value(q, pi)), (q * pi).sum(-1).mean(-1),
                               rtol=1e-14)
    with pytest.raises(ValueError, match="action_dist"):
        policy_value(q, pi[..., :3])


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("n_actions", 1), ("n_actions", 2.5), ("n_actions", True), ("dim_context", 0),
    ("beta", float("nan")), ("beta", float("inf")), ("beta", "3"), ("beta", True),
    ("behavior", "softmax"), ("z_score", 1), ("world_seed", -1), ("world_seed", 2**31),
    ("world_seed", 1.0),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"OBPWorldConfig\.{field}"):
        OBPWorldConfig(**{field: value})


def test_bad_call_arguments_name_the_argument():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="^logging"):
        obp_world_logged_data(key, CFG, 10, logging="epsilon")
    with pytest.raises(ValueError, match="^n"):
        obp_world_logged_data(key, CFG, 0)
    with pytest.raises(ValueError, match="^config"):
        obp_world_logged_data(key, {"n_actions": 10}, 10)
    with pytest.raises(ValueError, match="^x"):
        obp_world_surfaces(CFG, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="^params"):
        obp_world_arrays(key, CFG, 10, params=obp_world_params(OBPWorldConfig(n_actions=3)))
    with pytest.raises(ValueError, match="^config"):
        n_actions(None)
