"""Bad simulator inputs fail with a ValueError naming the field, never a NaN or a silently wrong
log: world parameters, the logging policy's offer, simulation arguments and the oracle's
eligibility."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulators import (
    LoggingConfig,
    WorldConfig,
    default_params,
    optimal_policy,
    policy_truth,
    population_policy_truth,
    simulate,
    simulate_arrays,
    simulate_batch,
    validate_params,
)

N = 64  # the ValueErrors below fire before anything is compiled


# ---------------------------------------------------------------------- LoggingConfig.offer
@pytest.mark.parametrize("offer", [5, 9])
def test_holdout_offer_beyond_k_is_rejected_everywhere(world_params, world_config, offer):
    logging = LoggingConfig(kind="holdout", offer=offer)
    match = rf"LoggingConfig\.offer: {offer} is not an offer of this world \(1\.\.4\).*Fix:"
    with pytest.raises(ValueError, match=match):
        simulate(jax.random.key(0), world_params, world_config, N, logging)
    with pytest.raises(ValueError, match=match):
        simulate_batch(jax.random.split(jax.random.key(0), 2), world_params, world_config, N,
                       logging)
    with pytest.raises(ValueError, match=match):  # the pure core checks at trace time too
        jax.jit(simulate_arrays, static_argnames=("config", "n", "logging"))(
            jax.random.key(0), world_params, world_config, N, logging)


@pytest.mark.parametrize("offer", [1.0, True, "1", 0])
def test_logging_offer_must_be_a_positive_int(offer):
    with pytest.raises(ValueError, match=r"LoggingConfig\.offer"):
        LoggingConfig(kind="holdout", offer=offer)


def test_offer_is_only_checked_for_holdout_logs(world_config):
    LoggingConfig(kind="uniform", offer=9).check_offer(world_config.n_offers)  # ignored there
    LoggingConfig(kind="holdout", offer=4).check_offer(world_config.n_offers)  # offer K is fine


# ------------------------------------------------------------------------- WorldParams
def _scaled(name: str, factor: float):
    return lambda p: {name: getattr(p, name) * factor}


def _set(name: str, index, value):
    return lambda p: {name: jnp.asarray(getattr(p, name)).at[index].set(value)}


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("type_shares", _scaled("type_shares", 0.5)),  # rows sum to 0.5
        ("type_shares", _set("type_shares", (0, 0), -0.1)),
        ("type_shares", lambda p: {"type_shares": p.type_shares[:, :3]}),
        ("segment_probs", _scaled("segment_probs", 1.5)),  # sums to 1.5
        ("segment_probs", _set("segment_probs", 0, np.nan)),
        ("eligibility_prob", _set("eligibility_prob", (1, 2), 1.2)),
        ("eligibility_prob", _set("eligibility_prob", (1, 0), 0.5)),
        ("binary_prob", _set("binary_prob", 0, -0.1)),
        ("redeem_prob", _scaled("redeem_prob", 2.0)),
        ("program_prob", _scaled("program_prob", 10.0)),
        ("pull_forward", lambda p: {"pull_forward": jnp.asarray(1.5)}),
        ("sub_additivity", _scaled("sub_additivity", 3.0)),
        ("cannibalisation", _scaled("cannibalisation", -1.0)),
        ("type_noise", lambda p: {"type_noise": jnp.asarray(1.0)}),
        ("type_noise", lambda p: {"type_noise": jnp.asarray(0.0)}),
        ("type_direction", _scaled("type_direction", 2.0)),
        ("face_value", _set("face_value", 0, 1.0)),
        ("face_value", _scaled("face_value", 0.0)),
        ("face_value", lambda p: {"face_value": p.face_value[:-1]}),
        ("margin", lambda p: {"margin": jnp.asarray(np.inf)}),
        ("margin", lambda p: {"margin": jnp.ones(2)}),
        ("basket_sigma", lambda p: {"basket_sigma": jnp.asarray(-0.1)}),
        ("effect_curvature", lambda p: {"effect_curvature": jnp.asarray(0.0)}),
        ("season_length", lambda p: {"season_length": jnp.asarray(0.0)}),
        ("redemption_lag_mean", lambda p: {"redemption_lag_mean": jnp.asarray(-1.0)}),
        ("purchase_coef", lambda p: {"purchase_coef": p.purchase_coef[:-1]}),
        ("binary_prob", lambda p: {"binary_prob": np.array(["high"] * p.binary_prob.shape[0])}),
    ],
)
def test_bad_world_params_raise_naming_the_field(world_params, world_config, field, change):
    bad = world_params._replace(**change(world_params))
    match = rf"WorldParams\.{field}\b.*Fix:"
    with pytest.raises(ValueError, match=match):
        validate_params(bad, world_config)
    with pytest.raises(ValueError, match=match):
        simulate(jax.random.key(0), bad, world_config, N)
    with pytest.raises(ValueError, match=match):
        simulate_batch(jax.random.split(jax.random.key(0), 2), bad, world_config, N)


def test_every_world_param_has_a_validation_rule():
    from simulators.world import _PARAM_RULES, WorldParams

    assert list(_PARAM_RULES) == list(WorldParams._fields)


def test_default_params_are_valid_with_and_without_config():
    for cfg in (WorldConfig(), WorldConfig(n_offers=2, n_binary=0, n_programs=0),
                WorldConfig(n_continuous=1, n_offers=8)):
        params = default_params(cfg, seed=3)
        validate_params(params, cfg)
        validate_params(params)  # sizes inferred from the params themselves


def test_params_of_another_config_are_rejected(world_params):
    with pytest.raises(ValueError, match=r"WorldParams\.face_value: expected shape \(3,\)"):
        simulate(jax.random.key(0), world_params, WorldConfig(n_offers=2), N)
    with pytest.raises(ValueError, match=r"params: expected WorldParams"):
        validate_params(world_params._asdict())


@pytest.mark.slow  # compiles the world under jit and vmap (~15 s)
def test_validation_skips_traced_params_under_jit_and_vmap(world_params, world_config):
    """Users may vmap/jit over the params: traced values are not concretised (shapes are still
    checked), so validation never breaks tracing."""

    def checked(shares):
        params = world_params._replace(type_shares=shares)
        validate_params(params, world_config)
        return params.type_shares.sum()

    assert float(jax.jit(checked)(world_params.type_shares)) == pytest.approx(3.0)
    grads = jax.grad(checked)(world_params.type_shares)
    assert grads.shape == world_params.type_shares.shape

    def mean_value(shares):
        params = world_params._replace(type_shares=shares)
        return simulate_arrays(jax.random.key(0), params, world_config, N,
                               LoggingConfig()).truth.mu_value.mean()

    stacked = jnp.stack([world_params.type_shares, world_params.type_shares[::-1]])
    out = jax.vmap(mean_value)(stacked)
    assert out.shape == (2,) and np.all(np.isfinite(out))


# ------------------------------------------------------------------ simulate arguments
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n=0), r"^n: "),
        (dict(n=10.5), r"^n: "),
        (dict(period=-1), r"^period: must be >= 0"),
        (dict(period=1.5), r"^period: must be finite whole numbers"),
        (dict(period=np.zeros(N + 1, int)), r"^period: expected an int or an \(64,\)"),
        (dict(logging="uniform"), r"^logging: expected LoggingConfig"),
    ],
)
def test_bad_simulate_arguments_raise_naming_them(world_params, world_config, kwargs, match):
    args = dict(n=N, logging=LoggingConfig(), period=0) | kwargs
    with pytest.raises(ValueError, match=match):
        simulate(jax.random.key(0), world_params, world_config, **args)
    with pytest.raises(ValueError, match=match):
        simulate_batch(jax.random.split(jax.random.key(0), 2), world_params, world_config, **args)


# ------------------------------------------------------------------- oracle eligibility
def test_optimal_policy_requires_eligibility_and_respects_it(uniform_log):
    truth, eligible = uniform_log.truth, uniform_log.eligible
    budget = 2.0 * uniform_log.n
    with pytest.raises(TypeError, match="eligible"):
        optimal_policy(truth, budget)  # required keyword: no silent all-eligible default
    with pytest.raises(ValueError, match=r"^eligible: the oracle needs"):
        optimal_policy(truth, budget, eligible=None)
    with pytest.raises(ValueError, match=r"^eligible: expected shape"):
        optimal_policy(truth, budget, eligible=eligible[:, :2])
    alloc = optimal_policy(truth, budget, eligible=eligible)
    dist = np.asarray(alloc.action_dist)
    assert not dist[~eligible].any()
    unconstrained = np.asarray(optimal_policy(truth, budget, eligible=np.ones_like(eligible))
                               .action_dist)
    assert unconstrained[~eligible].any(), "the test needs the oracle to want ineligible offers"
    pt = policy_truth(truth, dist, eligible=eligible)
    assert pt.incremental_value > 0
    with pytest.raises(ValueError, match=r"^action_dist: puts probability .* ineligible.*Fix:"):
        policy_truth(truth, unconstrained, eligible=eligible)


def test_policy_truth_checks_the_eligibility_mask(uniform_log):
    truth, eligible = uniform_log.truth, uniform_log.eligible
    uniform = eligible / eligible.sum(1, keepdims=True)
    assert policy_truth(truth, uniform, eligible=eligible) == policy_truth(truth, uniform)
    with pytest.raises(ValueError, match=r"^eligible: expected shape"):
        policy_truth(truth, uniform, eligible=eligible[:10])
    no_offer_col = eligible.copy()
    no_offer_col[0, 0] = False
    with pytest.raises(ValueError, match=r"^eligible: column 0"):
        policy_truth(truth, uniform, eligible=no_offer_col)
    everything = np.full(eligible.shape, 1.0 / eligible.shape[1])
    with pytest.raises(ValueError, match=r"^action_dist: puts probability"):
        policy_truth(truth, everything, eligible=eligible)


def test_population_truth_rejects_policies_on_ineligible_actions(world_params, world_config):
    with pytest.raises(ValueError, match=r"^policy_fn: puts probability .*Fix:"):
        population_policy_truth(jax.random.key(0), world_params, world_config,
                                lambda u: jnp.full(u.eligible.shape, 1.0 / u.eligible.shape[1]),
                                n=1_000, chunks=1)
    bad = world_params._replace(segment_probs=world_params.segment_probs * 2)
    with pytest.raises(ValueError, match=r"WorldParams\.segment_probs"):
        population_policy_truth(jax.random.key(0), bad, world_config,
                                lambda u: u.eligible / u.eligible.sum(1, keepdims=True),
                                n=1_000, chunks=1)
