"""A plain NumPy implementation of the same world sampler, as the reference for
``tests/perf/test_simulator.py`` (speed) and a cross-check of the JAX truth (exactness).

It draws from the same distributions as :func:`simulators.simulate.simulate_arrays` with NumPy's
generator (so the draws differ, the laws do not) and computes the truth with the same formulas
written independently in NumPy/SciPy. Uniform logging only.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr, ndtri

from simulators.world import N_TYPES, PERSUADABLE, WorldConfig, WorldParams

__all__ = ["numpy_simulate", "numpy_truth"]


def _p(params: WorldParams) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in params._asdict().items()}


def numpy_truth(params: WorldParams, x, segment, period, other, type_score):
    """``(mu_value, mu_cost, mu_value_accounting, type_prob, p1, basket, rho, q2, basket2)``."""
    p = _p(params)
    s = p["type_noise"]
    cuts = ndtri(np.clip(np.cumsum(p["type_shares"], axis=1)[:, :-1], 1e-12, 1 - 1e-12))[segment]
    mean = np.sqrt(1 - s**2) * type_score
    cdf = np.concatenate([np.zeros((len(x), 1)), ndtr((cuts - mean[:, None]) / s),
                          np.ones((len(x), 1))], axis=1)
    w = np.diff(cdf, axis=1)
    depth = p["face_value"] / p["face_value"].max()
    t = period.astype(np.float64)
    other = other.astype(np.float64)
    season = p["season_amplitude"] * np.sin(2 * np.pi * t / p["season_length"])
    base = p["base_logit"][None, :] + (p["segment_logit"][segment] + x @ p["purchase_coef"]
                                       + season)[:, None]
    base[:, PERSUADABLE] += other @ p["program_lift"]
    dampen = np.prod(1 - p["sub_additivity"][None, :] * other, axis=1)
    unit = (p["segment_effect"][segment] * np.exp(x @ p["het_coef"])
            * (1 + p["effect_drift"] * t) * dampen)
    logit = base[:, :, None] + (p["effect_scale"][None, :, None] * unit[:, None, None]
                                * (depth ** p["effect_curvature"])[None, None, :])
    p1 = expit(logit)
    basket0 = np.exp(p["log_basket"] + x @ p["basket_coef"] + p["segment_basket"][segment])
    basket = basket0[:, None] * (1 + p["basket_lift"] * depth[None, :])
    rho = (np.minimum(1.0, p["redeem_prob"][None, :] * (1 + p["cost_drift"] * t[:, None]))
           * np.prod(1 - p["cannibalisation"][None, :] * other, axis=1)[:, None])
    q2 = expit(base + p["window2_logit"])
    basket2 = basket0 * p["window2_basket"]
    buy = np.einsum("nt,nta->na", w, p1)
    mu_value = buy * basket * p["margin"]
    mu_cost = buy * rho * p["face_value"][None, :]
    second = np.einsum("nt,nta->na", w, q2[:, :, None] * (1 - p["pull_forward"] * p1))
    mu_acc = mu_value + second * basket2[:, None] * p["margin"]
    return mu_value, mu_cost, mu_acc, w, p1, basket, rho, q2, basket2


def numpy_simulate(rng: np.random.Generator, params: WorldParams, config: WorldConfig, n: int,
                   period: int = 0) -> dict[str, np.ndarray]:
    """Users, truth, uniform logging over eligible actions, logged action and outcomes."""
    p = _p(params)
    period_arr = np.full(n, period, dtype=np.int32)
    segment = rng.choice(len(p["segment_probs"]), size=n, p=p["segment_probs"])
    x_c = (p["segment_mean"][segment] + rng.standard_normal((n, config.n_continuous))
           + period * p["covariate_shift"])
    x_b = (rng.random((n, config.n_binary)) < p["binary_prob"]).astype(np.float64)
    x = np.concatenate([x_c, x_b], axis=1)
    u = (x_c - p["segment_mean"][segment]) @ p["type_direction"]
    s = p["type_noise"]
    z = np.sqrt(1 - s**2) * u + s * rng.standard_normal(n)
    cuts = ndtri(np.clip(np.cumsum(p["type_shares"], axis=1)[:, :-1], 1e-12, 1 - 1e-12))
    rtype = (z[:, None] > cuts[segment]).sum(axis=1)
    eligible = rng.random((n, config.n_actions)) < p["eligibility_prob"][segment]
    eligible[:, 0] = True
    other = (rng.random((n, config.n_programs)) < p["program_prob"].T[segment]).astype(np.int32)
    mu_v, mu_c, mu_a, _, p1, basket, rho, q2, basket2 = numpy_truth(
        params, x, segment, period_arr, other, u)
    prob = eligible / eligible.sum(axis=1, keepdims=True)
    cum = np.cumsum(prob, axis=1)
    action = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), config.n_actions - 1)
    rows = np.arange(n)
    buy = rng.random(n) < p1[rows, rtype, action]
    sig = p["basket_sigma"]
    bask = basket[rows, action] * np.exp(sig * rng.standard_normal(n) - 0.5 * sig**2)
    value = np.where(buy, bask * p["margin"], 0.0)
    redeem = buy & (rng.random(n) < rho[rows, action]) & (action > 0)
    cost = np.where(redeem, p["face_value"][action], 0.0)
    q = p["redemption_lag_mean"] / (1 + p["redemption_lag_mean"])
    lag = np.where(redeem, np.floor(np.log(rng.random(n) + 1e-300) / np.log(q)), -1)
    buy2 = rng.random(n) < q2[rows, rtype] * (1 - p["pull_forward"] * buy)
    sig2 = p["window2_sigma"]
    bask2 = basket2 * np.exp(sig2 * rng.standard_normal(n) - 0.5 * sig2**2)
    value_acc = value + np.where(buy2, bask2 * p["margin"], 0.0)
    assert N_TYPES == p1.shape[1]
    return dict(x=x, segment=segment, period=period_arr, eligible=eligible, action=action,
                action_prob=prob, value=value, value_accounting=value_acc, cost=cost,
                redemption_lag=lag.astype(np.int32), other_actions=other, mu_value=mu_v,
                mu_cost=mu_c, mu_value_accounting=mu_a, response_type=rtype)
