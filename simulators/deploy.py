"""Deploying a policy in a world: fresh users, the policy's own action distribution, outcomes.

:func:`simulators.simulate.simulate` logs a *built-in* logging policy. A closed loop deploys the
user's policy instead, so the two steps are separate here, as in Gymnax's ``reset`` / ``step``:

* :func:`draw_population` draws ``n`` users at a period with their exact truth (no action yet);
  the caller computes any action distribution from ``population.users.x`` and
  ``population.users.eligible``;
* :func:`deploy` samples each user's action from that distribution (the logged propensity is the
  distribution itself, so off-policy evaluation of the resulting log is exact) and the outcomes,
  returning a validated :class:`~simulators.data.LoggedData` with truth.

Both are jit-compiled once per shape and take explicit keys, so a round is reproducible from its
key. :func:`pre_period_value` draws the same users' no-offer value in an earlier period (the
pre-period covariate of CUPED-style variance reduction).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import check_probability_rows, check_support, fail
from estimators.precision import float64
from simulators.data import LoggedData, Truth
from simulators.logging_policies import LoggingConfig
from simulators.simulate import check_inputs, population_core
from simulators.world import (
    Users,
    WorldConfig,
    WorldParams,
    sample_outcomes,
)

__all__ = ["Population", "deploy", "draw_population", "pre_period_value"]


class Population(NamedTuple):
    """Users at one period with their exact truth (host NumPy arrays)."""

    users: Users
    truth: Truth

    @property
    def n(self) -> int:
        return int(self.users.x.shape[0])


@partial(jax.jit, static_argnames=("config", "n"))
def _draw(key, params, config, n, period):
    users, _, truth = population_core(key, params, config, n, period)
    return users, truth


@float64
def draw_population(key: jax.Array, params: WorldParams, config: WorldConfig, n: int,
                    period: int = 0) -> Population:
    """``n`` fresh users at ``period`` and their truth ``mu_value, mu_cost,
    mu_value_accounting`` (each ``(n, K+1)``). Inputs are validated as in ``simulate``."""
    check_inputs(params, config, n, LoggingConfig(), period)
    users, truth = jax.device_get(_draw(key, params, config, n, period))
    return Population(Users(*(np.asarray(a) for a in users)),
                      Truth(*(np.asarray(a) for a in truth)))


@jax.jit
def _deploy(key, params, users, action_dist):
    k_act, k_out = jax.random.split(key)
    action = jax.random.categorical(k_act, jnp.log(action_dist), axis=1).astype(jnp.int32)
    value, value_acc, cost, lag = sample_outcomes(k_out, params, users, action)
    return action, value, value_acc, cost, lag


@float64
def deploy(key: jax.Array, params: WorldParams, population: Population,
           action_dist: np.ndarray) -> LoggedData:
    """Sample ``a_i ~ action_dist[i]`` and the outcomes; the log's ``action_prob`` is
    ``action_dist`` (the exact propensity of the deployed, possibly randomised, policy).

    ``action_dist (n, K+1)``: rows summing to 1, zero on actions a user is not eligible for
    (``ValueError`` naming ``action_dist`` otherwise)."""
    users = population.users
    shape = np.shape(users.eligible)
    if np.shape(action_dist) != shape:
        fail("action_dist", f"expected shape {shape} (one row per user over K+1 actions), got "
             f"{np.shape(action_dist)}", "compute it on population.users")
    p = check_probability_rows("action_dist", action_dist,
                               fix="normalise the deployed distribution per user")
    check_support("action_dist", p, users.eligible,
                  fix="zero ineligible actions (allocate(..., eligible=users.eligible))")
    action, value, value_acc, cost, lag = (np.asarray(a) for a in jax.device_get(
        _deploy(key, params, users, jnp.asarray(p))))
    return LoggedData(
        x=users.x, segment=users.segment.astype(np.int32), period=users.period,
        eligible=users.eligible, action=action, action_prob=p, value=value,
        value_accounting=value_acc, cost=cost, redemption_lag=lag,
        other_actions=users.other_actions, face_value=np.asarray(params.face_value),
        truth=population.truth,
    )


@jax.jit
def _pre_value(key, params, users, lookback):
    earlier = users._replace(period=jnp.maximum(users.period - lookback, 0))
    value, _, _, _ = sample_outcomes(key, params, earlier, jnp.zeros_like(users.segment))
    return value


@float64
def pre_period_value(key: jax.Array, params: WorldParams, population: Population, *,
                     lookback: int = 1) -> np.ndarray:
    """The users' realised value without an offer ``lookback`` periods earlier (same users, an
    independent outcome draw): a pre-period covariate correlated with the outcome through the
    user's purchase propensity and basket, unaffected by the current assignment."""
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
        fail("lookback", f"must be an int >= 1, got {lookback!r}", "e.g. lookback=1")
    return np.asarray(_pre_value(key, params, population.users, lookback))
