"""Portfolio states (simulators.portfolio): exact truth under a state against a Monte Carlo of the
world, the holdout bias (control case and factorial fix) and validation; the suite's rows."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from estimators.heads import ONE_NET_HEADS
from experiments.suites import portfolio as suite
from simulators import WorldConfig, default_params, sample_outcomes, sample_users
from simulators import portfolio as pf

CFG = WorldConfig()
PARAMS = default_params(CFG)
OFFER = 2


def _states():
    return suite.states(suite.PortfolioSuiteConfig(), PARAMS)


@pytest.fixture(scope="module")
def users():
    return sample_users(jax.random.key(11), PARAMS, CFG, 200_000)


@pytest.fixture(scope="module")
def joint(users):
    return pf.joint_outcomes(PARAMS, users)


def test_marginal_truth_matches_monte_carlo(users, joint):
    """Draw o under the targeted state B, our action uniformly, outcomes from the world: per
    action, the mean residual against the marginalised truth is zero within its s.e."""
    _, state_b = _states()
    k_o, k_a, k_y = jax.random.split(jax.random.key(5), 3)
    drawn = pf.sample_other_actions(k_o, PARAMS, state_b, users)
    n = users.x.shape[0]
    action = jax.random.randint(k_a, (n,), 0, CFG.n_actions)
    value, _, cost, _ = sample_outcomes(k_y, PARAMS, drawn, action)
    truth = pf.portfolio_truth(PARAMS, state_b, users, joint)
    a = np.asarray(action)
    rows = np.arange(n)
    for y, mu in ((np.asarray(value), np.asarray(truth.mu_value)),
                  (np.asarray(cost), np.asarray(truth.mu_cost))):
        r = y - mu[rows, a]
        for k in range(CFG.n_actions):
            rk = r[a == k]
            assert abs(rk.mean()) <= 4 * rk.std() / np.sqrt(rk.size) + 1e-12, (k, rk.mean())
    # the state's law: realised reach equals the mean propensity
    pi = np.asarray(pf.program_propensity(PARAMS, state_b, users))
    o = np.asarray(drawn.other_actions)
    se = np.sqrt(pi.mean(0) * (1 - pi.mean(0)) / n)
    np.testing.assert_array_less(np.abs(o.mean(0) - pi.mean(0)), 4 * se)
    # the logged propensities are the state's: their product is the probability of the logged
    # joint assignment (row j of assignments() has the binary digits of j)
    lp = np.asarray(pf.logged_propensity(PARAMS, state_b, drawn))
    cell = o @ (2 ** np.arange(o.shape[1])[::-1])
    joint = np.asarray(pf.assignment_probabilities(PARAMS, state_b, drawn))
    np.testing.assert_allclose(np.prod(lp, axis=1), joint[np.arange(n), cell], rtol=1e-12)


def test_joint_truth_pieces_and_mixture(users, joint):
    """Joint truth: assignment 0 is the world with nobody else on; the mixture weights sum to 1;
    the world's own law as a state reproduces program_prob by segment."""
    j = pf.assignments(2)
    assert j.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    w = np.asarray(pf.assignment_probabilities(PARAMS, _states()[1], users))
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
    state = pf.world_state(PARAMS)
    pi = np.asarray(pf.program_propensity(PARAMS, state, users))
    seg = np.asarray(users.segment)
    for s in range(3):
        np.testing.assert_allclose(pi[seg == s].mean(0), np.asarray(PARAMS.program_prob)[:, s],
                                   atol=1e-9)
    mv = np.asarray(joint.mu_value)
    assert mv.shape == (users.x.shape[0], 4, CFG.n_actions)
    # sub-additivity: our offer's value lift is smaller with both programs on, on average
    lift = mv[:, :, OFFER] - mv[:, :, 0]
    assert lift[:, 3].mean() < lift[:, 0].mean()


def test_control_bias_vanishes(users, joint):
    """Untargeted programs and A = B: exact bias is zero and the holdout's bias is within its
    s.e. over fixed seeds."""
    state = pf.PortfolioState.untargeted((0.2, 0.1))
    truth = pf.portfolio_truth(PARAMS, state, users, joint)
    true = pf.true_lift(truth, users, OFFER)
    z = []
    for seed in range(3):
        est = pf.holdout_lift(jax.random.key(100 + seed), PARAMS, state, users, OFFER)
        z += [(est.value - true[0]) / est.value_se, (est.cost - true[1]) / est.cost_se]
    assert np.all(np.abs(z) < 3.5), z
    assert abs(np.mean(z)) < 3.5 / np.sqrt(len(z) / 2), z  # pooled (value and cost correlate)


def test_holdout_biased_and_factorial_fixes_it(users, joint):
    """Under the suite's default states the A holdout over-states B's lift by ~20 % (Holtz et al.
    order); the factorial and conditional designs' estimates for B are unbiased within their CI
    over fixed seeds; the partitioned design is not."""
    state_a, state_b = _states()
    true_b = pf.true_lift(pf.portfolio_truth(PARAMS, state_b, users, joint), users, OFFER)
    true_a = pf.true_lift(pf.portfolio_truth(PARAMS, state_a, users, joint), users, OFFER)
    rel = (true_a[0] - true_b[0]) / true_a[0]
    assert 0.15 < rel < 0.35, rel
    est = pf.design_lift(jax.random.key(7), PARAMS, "independent", users, OFFER,
                         state_a=state_a, state_b=state_b)
    assert (est.value - true_b[0]) / est.value_se > 2.5
    assert (est.cost - true_b[1]) / est.cost_se > 5
    for design in ("factorial", "conditional"):  # both read B's lift: unbiased within CI
        z = []
        for seed in range(3):
            f = pf.design_lift(jax.random.key(200 + seed), PARAMS, design, users, OFFER,
                               state_a=state_a, state_b=state_b)
            z += [(f.value - true_b[0]) / f.value_se, (f.cost - true_b[1]) / f.cost_se]
        assert np.all(np.abs(z) < 3.5), (design, z)
    # partitioning reads the standalone lift (others off): still biased for B
    part = pf.design_lift(jax.random.key(9), PARAMS, "partitioned", users, OFFER,
                          state_a=state_a, state_b=state_b)
    assert (part.cost - true_b[1]) / part.cost_se > 5


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(intercept=(0.0, float("nan"))), "PortfolioState.intercept"),
    (dict(intercept=("a", 0.0)), "PortfolioState.intercept"),
    (dict(intercept=(0.0, 0.0), score_coef=(1.0,)), "PortfolioState.score_coef"),
    (dict(intercept=(0.0, 0.0), feature_coef=((1.0,),)), "PortfolioState.feature_coef"),
    (dict(intercept=(0.0, 0.0), segment_offset=((0.0, 0.0), (0.0, 0.0))),
     "PortfolioState.segment_offset"),
])
def test_bad_state_raises_naming_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        pf.PortfolioState(**kwargs)


def test_state_checked_against_world(users):
    with pytest.raises(ValueError, match=r"PortfolioState\.intercept"):
        pf.program_propensity(PARAMS, pf.PortfolioState(intercept=(0.0,)), users)
    with pytest.raises(ValueError, match=r"PortfolioState\.feature_coef"):
        pf.program_propensity(PARAMS, pf.PortfolioState(intercept=(0.0, 0.0),
                                                        feature_coef=((0.0,), (0.0,))), users)
    with pytest.raises(ValueError, match=r"PortfolioState\.intercept"):
        pf.PortfolioState.untargeted((0.2, 1.5))
    state = pf.PortfolioState.untargeted((0.2, 0.1))
    with pytest.raises(ValueError, match="design"):
        pf.design_lift(jax.random.key(0), PARAMS, "nope", users, OFFER, state_a=state,
                       state_b=state)
    with pytest.raises(ValueError, match="offer"):
        pf.holdout_lift(jax.random.key(0), PARAMS, state, users, 0)


def test_suite_rows_small():
    cfg = suite.PortfolioSuiteConfig(sweep_reach=(0.5,), sweep_sub_additivity=(0.4,),
                                     n_train=4_000, n_eval=2_000, n_learn=5_000,
                                     learner=ONE_NET_HEADS)  # one net: about the suite
    rows = suite.SUITE.rows(cfg, seeds=[0], progress=False)
    assert set(rows.section) == {"default", "control", "allocation", "learned", "coordinated",
                                 "sweep_reach", "sweep_sub_additivity"}
    assert np.isfinite(rows.value).all()
    alloc = rows[(rows.section == "allocation") & (rows.metric == "regret")]
    assert (alloc.value >= -1e-9).all()
    with pytest.raises(ValueError, match="reach_a"):
        suite.PortfolioSuiteConfig(reach_a=(0.2, 1.5))
    with pytest.raises(ValueError, match="changed"):
        suite.PortfolioSuiteConfig(changed=2)
    # a world.n_programs sweep needs no other change: per-program values follow the world
    one = suite.PortfolioSuiteConfig(world=dataclasses.replace(cfg.world, n_programs=1))
    assert one.per_program("reach_a") == (0.2,) and one.changed_program == 0
    three = suite.PortfolioSuiteConfig(world=dataclasses.replace(cfg.world, n_programs=3))
    assert three.per_program("program_cost") == (0.5, 0.5, 0.5) and three.changed_program == 2


@pytest.mark.parametrize(("ours", "programs", "cost"), [
    (1.0, (0.1, 0.1), (0.5, 0.5)), (0.3, (0.0, 0.2), (0.2, 1.0)), (3.0, (0.5, 0.5), (0.5, 0.5))])
def test_joint_allocation_never_worse_on_truth(users, joint, ours, programs, cost):
    """The joint allocator at the independent policy's true cost contains it as a feasible point:
    its true value is never lower (exact truth, no sampling)."""
    n = 20_000
    sub = type(users)(*(f[:n] for f in users))
    sub_joint = type(joint)(*(m[:n] for m in joint))
    r = pf.coordinated_allocation(PARAMS, _states()[0], sub, sub_joint, budget_ours=ours,
                                  budget_programs=programs, program_cost=cost)
    assert r["joint_matched"].value >= r["independent"].value - 1e-9
    assert r["joint_matched"].cost <= r["independent"].cost * (1 + 1e-9) + 1e-12
    # the product policy is a distribution over joint actions
    dist = pf.product_policy(np.full((3, CFG.n_actions), 1 / CFG.n_actions), [[0.2, 0.5]] * 3)
    np.testing.assert_allclose(dist.sum(1), 1.0)
    with pytest.raises(ValueError, match="program_cost"):
        pf.joint_action_effects(sub_joint, sub.eligible, (0.5,))


def test_simulate_under_state_logs_propensities():
    from simulators import LoggingConfig

    _, state_b = _states()
    log, prop = pf.simulate_under_state(jax.random.key(3), PARAMS, CFG, 5_000, LoggingConfig(),
                                        state_b)
    o = np.asarray(log.other_actions)
    assert o.shape == (5_000, 2) and set(np.unique(o)) <= {0, 1}
    assert np.asarray(prop).shape == (5_000, 2) and np.all(np.asarray(prop) > 0)
    # program 1 targets under B: it reaches more than state A's 10 %
    assert o[:, 1].mean() > 0.4
