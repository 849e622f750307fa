"""Sampling logged data from a world: one jit-compiled pure function, ``vmap``-able over seeds."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from simulators.data import LoggedData, Truth
from simulators.logging_policies import LoggingConfig, logging_distribution
from simulators.world import (
    WorldConfig,
    WorldParams,
    _components,
    _truth_from,
    sample_outcomes,
    sample_users,
    type_probabilities,
)

__all__ = ["simulate", "simulate_arrays", "simulate_batch"]


def simulate_arrays(
    key: jax.Array, params: WorldParams, config: WorldConfig, n: int, logging: LoggingConfig,
    period: int | jax.Array = 0,
) -> LoggedData:
    """Pure core: users, truth, logging distribution, logged action and outcomes.

    Returns an unvalidated :class:`LoggedData` (safe under ``jit``/``vmap``). For the confounded
    logger, ``action_prob`` is ``None``.
    """
    k_users, k_log, k_act, k_out = jax.random.split(key, 4)
    users = sample_users(k_users, params, config, n, period)
    comp = _components(params, users)
    mu_value, mu_cost, mu_acc = _truth_from(params, comp, type_probabilities(params, users))
    tau_v = mu_value - mu_value[:, :1]
    tau_c = mu_cost - mu_cost[:, :1]
    prob = logging_distribution(k_log, params, users, tau_v, tau_c, logging)
    action = jax.random.categorical(k_act, jnp.log(prob), axis=1).astype(jnp.int32)
    value, value_acc, cost, lag = sample_outcomes(k_out, params, users, action, comp)
    truth = Truth(mu_value, mu_cost, mu_acc, users.response_type.astype(jnp.int32))
    return LoggedData(
        x=users.x, segment=users.segment.astype(jnp.int32), period=users.period,
        eligible=users.eligible, action=action,
        action_prob=None if logging.kind == "confounded" else prob,
        value=value, value_accounting=value_acc, cost=cost, redemption_lag=lag,
        other_actions=users.other_actions, face_value=params.face_value, truth=truth,
        validate=False,
    )


_simulate_jit = jax.jit(simulate_arrays, static_argnames=("config", "n", "logging"))


@partial(jax.jit, static_argnames=("config", "n", "logging"))
def _simulate_batch_jit(keys, params, config, n, logging, period):
    return jax.vmap(lambda k: simulate_arrays(k, params, config, n, logging, period))(keys)


def simulate(
    key: jax.Array, params: WorldParams, config: WorldConfig = WorldConfig(), n: int = 10_000,
    logging: LoggingConfig = LoggingConfig(), period: int = 0,
) -> LoggedData:
    """Simulate one validated log of ``n`` decisions (NumPy arrays)."""
    out = _simulate_jit(key, params, config, n, logging, period)
    return _to_numpy(out, validate=True)


def simulate_batch(
    keys: jax.Array, params: WorldParams, config: WorldConfig = WorldConfig(), n: int = 10_000,
    logging: LoggingConfig = LoggingConfig(), period: int = 0,
) -> LoggedData:
    """Simulate one log per key in a single ``vmap``-ed compilation; every leaf gains a leading
    seed axis. Use :meth:`LoggedData.seed` to take one validated log out."""
    return _simulate_batch_jit(keys, params, config, n, logging, period)


def _to_numpy(data: LoggedData, validate: bool) -> LoggedData:
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [np.asarray(a) for a in leaves]
    out = jax.tree_util.tree_unflatten(treedef, leaves)
    if validate:
        out._validate()
    return out
