"""Sampling logged data from a world: one jit-compiled pure function, ``vmap``-able over seeds."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import fail
from estimators.precision import float64
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
    validate_params,
)

__all__ = ["check_inputs", "simulate", "simulate_arrays", "simulate_batch"]


def population_core(key: jax.Array, params: WorldParams, config: WorldConfig, n: int,
                    period: int | jax.Array = 0):
    """Users, their response components and their exact :class:`Truth` (traceable): the part
    of a simulation that does not depend on any policy (shared with :mod:`simulators.deploy`)."""
    users = sample_users(key, params, config, n, period)
    comp = _components(params, users)
    mu_value, mu_cost, mu_acc = _truth_from(params, comp, type_probabilities(params, users))
    return users, comp, Truth(mu_value, mu_cost, mu_acc, users.response_type.astype(jnp.int32))


def _simulate_core(
    key: jax.Array, params: WorldParams, config: WorldConfig, n: int, logging: LoggingConfig,
    period: int | jax.Array = 0,
) -> LoggedData:
    k_users, k_log, k_act, k_out = jax.random.split(key, 4)
    users, comp, truth = population_core(k_users, params, config, n, period)
    mu_value, mu_cost = truth.mu_value, truth.mu_cost
    tau_v = mu_value - mu_value[:, :1]
    tau_c = mu_cost - mu_cost[:, :1]
    prob = logging_distribution(k_log, params, users, tau_v, tau_c, logging)
    action = jax.random.categorical(k_act, jnp.log(prob), axis=1).astype(jnp.int32)
    value, value_acc, cost, lag = sample_outcomes(k_out, params, users, action, comp)
    return LoggedData(
        x=users.x, segment=users.segment.astype(jnp.int32), period=users.period,
        eligible=users.eligible, action=action,
        action_prob=None if logging.kind == "confounded" else prob,
        value=value, value_accounting=value_acc, cost=cost, redemption_lag=lag,
        other_actions=users.other_actions, face_value=params.face_value, truth=truth,
        validate=False,
    )


@float64
def simulate_arrays(
    key: jax.Array, params: WorldParams, config: WorldConfig, n: int, logging: LoggingConfig,
    period: int | jax.Array = 0,
) -> LoggedData:
    """Pure core: users, truth, logging distribution, logged action and outcomes.

    Returns an unvalidated :class:`LoggedData` (safe under ``jit``/``vmap``; float64 leaves when
    called directly). For the confounded logger, ``action_prob`` is ``None``.
    """
    return _simulate_core(key, params, config, n, logging, period)


_simulate_jit = jax.jit(_simulate_core, static_argnames=("config", "n", "logging"))


@partial(jax.jit, static_argnames=("config", "n", "logging"))
def _simulate_batch_jit(keys, params, config, n, logging, period):
    return jax.vmap(lambda k: _simulate_core(k, params, config, n, logging, period))(keys)


def check_inputs(
    params: WorldParams, config: WorldConfig, n: int, logging: LoggingConfig,
    period: int | jax.Array = 0,
) -> None:
    """Host-side validation of a simulation request, before anything is traced or compiled.

    Raises ``ValueError`` naming the field: ``config``/``logging`` of the wrong type, ``n`` not a
    positive int, ``LoggingConfig.offer`` outside ``1..K`` for a holdout log, ``period`` negative,
    non-integer or of the wrong shape, and any :class:`WorldParams` field that cannot define a
    world (:func:`simulators.world.validate_params`). Traced ``params``/``period`` values (a caller
    ``vmap``-ing over them) are skipped; their shapes are still checked.
    """
    if not isinstance(config, WorldConfig):
        fail("config", f"expected WorldConfig, got {type(config).__name__}",
             "pass WorldConfig(...)")
    if not isinstance(logging, LoggingConfig):
        fail("logging", f"expected LoggingConfig, got {type(logging).__name__}",
             "pass LoggingConfig(kind=...)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        fail("n", f"the number of decisions must be a positive int, got {n!r}", "e.g. n=10_000")
    logging.check_offer(config.n_offers)
    if np.ndim(period) not in (0, 1) or (np.ndim(period) == 1 and np.shape(period) != (n,)):
        fail("period", f"expected an int or an ({n},) int array, got shape {np.shape(period)}",
             "one period for all users or one per user")
    if not isinstance(period, jax.core.Tracer):
        t = np.asarray(period)
        if not (np.issubdtype(t.dtype, np.number) and np.all(np.isfinite(t))
                and np.all(t == np.round(t))):
            fail("period", f"must be finite whole numbers, got dtype {t.dtype} with values in "
                 f"[{t.min()}, {t.max()}]", "pass integer periods")
        if (t < 0).any():
            bad = np.flatnonzero(np.reshape(t, -1) < 0)[0] if t.ndim else None
            fail("period", f"must be >= 0, got minimum {t.min()}", "count periods from 0",
                 row=None if bad is None else int(bad))
    validate_params(params, config)


@float64
def simulate(
    key: jax.Array, params: WorldParams, config: WorldConfig = WorldConfig(), n: int = 10_000,
    logging: LoggingConfig = LoggingConfig(), period: int = 0,
) -> LoggedData:
    """Simulate one validated log of ``n`` decisions (NumPy arrays).

    The inputs are validated on the host first (:func:`check_inputs`): bad parameters raise a
    ``ValueError`` naming the field instead of producing a NaN or silently wrong log."""
    check_inputs(params, config, n, logging, period)
    out = _simulate_jit(key, params, config, n, logging, period)
    return _to_numpy(out, validate=True)


@float64
def simulate_batch(
    keys: jax.Array, params: WorldParams, config: WorldConfig = WorldConfig(), n: int = 10_000,
    logging: LoggingConfig = LoggingConfig(), period: int = 0,
) -> LoggedData:
    """Simulate one log per key in a single ``vmap``-ed compilation; every leaf gains a leading
    seed axis. Use :meth:`LoggedData.seed` to take one validated log out. The inputs are
    validated on the host first, as in :func:`simulate`."""
    check_inputs(params, config, n, logging, period)
    return _simulate_batch_jit(keys, params, config, n, logging, period)


def _to_numpy(data: LoggedData, validate: bool) -> LoggedData:
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [np.asarray(a) for a in leaves]
    out = jax.tree_util.tree_unflatten(treedef, leaves)
    if validate:
        out._validate()
    return out
