"""Logging policies: how the historical data was collected.

Each policy maps users to the full logging distribution ``action_prob (n, K+1)`` (rows sum to one,
zero on ineligible actions); the simulator then samples the logged action from it. The confounded
historical rule is deterministic and records no propensities, to show what goes wrong without them.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Literal

import jax
import jax.numpy as jnp

from estimators.checks import fail
from estimators.precision import float64
from simulators.world import Users, WorldParams

__all__ = [
    "LoggingConfig",
    "epsilon_greedy",
    "lifecycle_rule",
    "logging_distribution",
    "softmax_warm_start",
    "treatment_holdout",
    "uniform",
]

LoggingKind = Literal["uniform", "holdout", "warm_start", "epsilon_greedy", "confounded"]
KINDS = ("uniform", "holdout", "warm_start", "epsilon_greedy", "confounded")


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Which logging policy produced the log, and its knobs (hashable; a jit static argument).

    - ``uniform``: uniform over eligible actions.
    - ``holdout``: one campaign (``offer``) vs no-offer with ``treat_prob``.
    - ``warm_start``: softmax of a noisy prior score of each action at ``temperature``.
    - ``epsilon_greedy``: the lifecycle rule with prob ``1 - epsilon``, else uniform over eligible.
    - ``confounded``: a deterministic targeting rule on purchase intent; no propensities logged.
    """

    kind: LoggingKind = "uniform"
    offer: int = 1
    treat_prob: float = 0.5
    temperature: float = 0.5
    prior_noise: float = 1.0
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            fail("LoggingConfig.kind", f"unknown {self.kind!r}", f"one of {KINDS}")
        if not 0.0 < self.treat_prob < 1.0:
            fail("LoggingConfig.treat_prob", f"must lie in (0, 1) so both arms have support, got "
                 f"{self.treat_prob}", "e.g. 0.5")
        if self.temperature <= 0:
            fail("LoggingConfig.temperature", f"must be > 0, got {self.temperature}", "e.g. 0.5")
        if not 0.0 < self.epsilon <= 1.0:
            fail("LoggingConfig.epsilon", f"must lie in (0, 1], got {self.epsilon}; 0 leaves "
                 "actions without support", "e.g. 0.1")
        if isinstance(self.offer, bool) or not isinstance(self.offer, numbers.Integral):
            fail("LoggingConfig.offer", f"must be an int offer index, got {self.offer!r}",
                 "e.g. offer=1")
        if self.offer < 1:
            fail("LoggingConfig.offer", "the campaign offer must be >= 1 (0 is no-offer)",
                 "pick an offer in 1..K")

    def check_offer(self, n_offers: int) -> None:
        """Raise ``ValueError`` if a ``holdout`` log's ``offer`` is not one of the world's
        ``n_offers`` offers (1..K). Without this JAX would silently clamp the out-of-range index
        and log no treatment at all. Other kinds ignore ``offer``."""
        if self.kind == "holdout" and not 1 <= self.offer <= n_offers:
            fail("LoggingConfig.offer", f"{self.offer} is not an offer of this world "
                 f"(1..{n_offers})", f"pick an offer in 1..{n_offers}, or raise "
                 "WorldConfig.n_offers")


@float64
def uniform(eligible: jax.Array) -> jax.Array:
    """Uniform over eligible actions."""
    e = eligible.astype(jnp.float64)
    return e / e.sum(axis=1, keepdims=True)


@float64
def treatment_holdout(eligible: jax.Array, offer: int, treat_prob: float) -> jax.Array:
    """Offer ``offer`` with ``treat_prob`` to users eligible for it; the rest are held out."""
    n, n_act = eligible.shape
    can = eligible[:, offer]
    p = jnp.zeros((n, n_act)).at[:, offer].set(jnp.where(can, treat_prob, 0.0))
    return p.at[:, 0].set(1.0 - p[:, offer])


@float64
def softmax_warm_start(score: jax.Array, eligible: jax.Array, temperature: float) -> jax.Array:
    """``softmax(score / temperature)`` over eligible actions (skewed exploration)."""
    logits = jnp.where(eligible, score / temperature, -jnp.inf)
    return jax.nn.softmax(logits, axis=1)


@float64
def lifecycle_rule(segment: jax.Array, eligible: jax.Array) -> jax.Array:
    """A classic heuristic: new users get the smallest offer, active users nothing, lapsed users
    the deepest offer they are eligible for. Returns the rule's action (n,)."""
    n_act = eligible.shape[1]
    deepest = n_act - 1 - jnp.argmax(eligible[:, ::-1], axis=1)
    smallest = jnp.where(eligible[:, 1], 1, 0)
    return jnp.select([segment == 0, segment == 1], [smallest, jnp.zeros_like(segment)], deepest)


@float64
def epsilon_greedy(rule_action: jax.Array, eligible: jax.Array, epsilon: float) -> jax.Array:
    """``(1 - epsilon) * onehot(rule) + epsilon * uniform(eligible)``."""
    onehot = jax.nn.one_hot(rule_action, eligible.shape[1])
    return (1.0 - epsilon) * onehot + epsilon * uniform(eligible)


@float64
def logging_distribution(
    key: jax.Array, params: WorldParams, users: Users, tau_value: jax.Array,
    tau_cost: jax.Array, config: LoggingConfig,
) -> jax.Array:
    """The logging distribution ``(n, K+1)`` of ``config`` for ``users``.

    ``tau_value``/``tau_cost`` (true uplift) feed the warm-start prior score, which is a noisy
    version of the net incremental profit standardised per log: a previous model, not the truth.
    """
    if config.kind == "uniform":
        return uniform(users.eligible)
    if config.kind == "holdout":
        config.check_offer(users.eligible.shape[1] - 1)  # static shape: safe under tracing
        return treatment_holdout(users.eligible, config.offer, config.treat_prob)
    if config.kind == "warm_start":
        net = tau_value - tau_cost
        scale = jnp.std(net) + 1e-12
        noisy = net / scale + config.prior_noise * jax.random.normal(key, net.shape)
        return softmax_warm_start(noisy.at[:, 0].set(0.0), users.eligible, config.temperature)
    if config.kind == "epsilon_greedy":
        return epsilon_greedy(lifecycle_rule(users.segment, users.eligible), users.eligible,
                              config.epsilon)
    # confounded: treat the users with the highest baseline purchase intent with the deepest
    # eligible offer ("reward our best customers"); deterministic, so no usable propensities.
    n_act = users.eligible.shape[1]
    intent = users.x @ params.purchase_coef + params.segment_logit[users.segment]
    target = intent > jnp.quantile(intent, 0.6)
    deepest = n_act - 1 - jnp.argmax(users.eligible[:, ::-1], axis=1)
    return jax.nn.one_hot(jnp.where(target, deepest, 0), n_act)
