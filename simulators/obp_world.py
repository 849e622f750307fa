r"""Open Bandit Pipeline's synthetic bandit world (``obp.dataset.SyntheticBanditDataset``) as
:class:`LoggedData` with exact truth.

Saito, Y., Aihara, S., Matsutani, M. and Narita, Y. (2021), "Open Bandit Dataset and Pipeline:
Towards Realistic and Reproducible Off-Policy Evaluation", NeurIPS Datasets and Benchmarks.
Definitions from obp 0.5.7 (``obp/dataset/synthetic.py``; identical there to the repository's
last commit 8cbd5fa for the binary world): ``SyntheticBanditDataset(reward_type="binary",
reward_function=logistic_reward_function)`` with ``K = n_actions`` arms, one-hot action context
(OBP's default ``np.eye(n_actions)``) and ``x ~ N(0, I_d)`` (``obtain_batch_bandit_feedback``).

**Expected reward** (``logistic_reward_function`` -> ``_base_reward_function(degree=1)`` with
``sample_random_uniform_coefficients``). ``PolynomialFeatures(degree=1)`` prepends a constant:
``x~ = (1, x)`` (``d + 1``) and ``a~ = (1, e_a)`` (``K + 1``). With ``theta_x ~ U(-1, 1)^{d+1}``,
``theta_a ~ U(-1, 1)^{K+1}`` and ``M ~ U(-1, 1)^{(d+1) x (K+1)}`` (independent)

.. math:: f(x, a) = \theta_x^\top \tilde x + \theta_a^\top \tilde a + \tilde x^\top M \tilde a,
          \qquad q(x, a) = \sigma\big(f(x, a) - m_f / s_f\big),

where OBP's ``z_score=True`` computes ``expected_rewards - expected_rewards.mean() /
expected_rewards.std()`` over the batch of ``n x K`` logits: by operator precedence a *shift* by
``mean / std``, not a standardisation. Here ``m_f`` and ``s_f`` are the population mean and
standard deviation of ``f`` over ``x ~ N(0, I)`` and a uniform arm (the limit of OBP's batch
statistics; exact and batch-free, so ``q`` is one fixed function per world): with ``f(x, a) =
c_a + b_a^\top x``, ``m_f = mean_a c_a`` and ``s_f^2 = mean_a (c_a^2 + |b_a|^2) - m_f^2``.
``z_score=False`` drops the shift. The binary reward is ``r ~ Bernoulli(q(x, a))``.

**Behaviour policy** ``pi_b(. | x) = softmax(beta * g(x, .))``, ``beta`` the inverse temperature:

- ``behavior="reward"`` (OBP's default, ``behavior_policy_function=None``, the one
  ``examples/synthetic/evaluate_off_policy_estimators.py`` runs): ``g = q``, the expected reward
  itself (in (0, 1), not standardised). ``beta > 0`` favours good arms, ``beta < 0`` bad ones.
- ``behavior="linear"`` (``linear_behavior_policy`` ->
  ``_base_behavior_policy_function(degree=1)``): ``g(x, a) = (h(x, a) - m_h) / s_h`` with
  ``h = x~^T M_b a~ + theta_b^T a~``, ``M_b ~ U(0, 1)^{(d+1) x (K+1)}`` and
  ``theta_b ~ U(0, 1)^{K+1}`` (U(0, 1), as OBP), standardised (correct precedence there) by the
  population mean and sd of ``h``.

``beta = 0`` is the uniform policy. OBP's ``n_deficient_actions`` (zero-support arms) is not
offered (0). The examples' settings: ``examples/synthetic`` defaults ``n_actions=10``,
``dim_context=5``, ``beta=3``, ``n_rounds=10_000`` over 20 runs, and its README's published run
uses ``n_actions=30``, ``beta=-3`` (:data:`REFERENCE`). The paper's own benchmark (its Section 5)
is on the real Open Bandit Dataset, not on this world.

**Parameters and randomness.** All coefficients are fixed per world: drawn from
``jax.random.key(config.world_seed)`` (OBP draws them from ``RandomState(random_state)``, default
12345, on every call). We reproduce the functional family and the coefficient laws, not NumPy's
random stream; unlike OBP (whose behaviour coefficients reuse the reward function's seed, hence
its first uniforms), the behaviour coefficients are an independent stream. Contexts, actions and
rewards come from the caller's key only, so two logs of one config (an evaluation log and a
training log) come from the same world.

**The log** (:func:`obp_world_logged_data`): OBP's arms ``0..K-1`` are our actions ``0..K-1``.
:class:`LoggedData` reserves column 0 for "no offer" and requires it always eligible; in this
bandit world action 0 is an ordinary arm (OBP's arm 0), not an absence of treatment.
``action_prob`` is the full logging distribution (``logging="native"``: ``pi_b``;
``"uniform"``: ``1/K``), ``value = value_accounting = r``, ``cost = 0``, ``truth.mu_value =
truth.mu_value_accounting = q(x, .)`` (exact), ``truth.mu_cost = 0``, ``truth.response_type``
from the sign of ``max_{a >= 1} q(x, a) - q(x, 0)`` (1 persuadable if some arm beats arm 0, 3
sleeping dog if every arm is worse, 2 lost cause on a tie), all arms eligible, ``segment =
period = 0``, ``redemption_lag = -1``, no concurrent programs, ``face_value = 0``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import check_int, fail
from estimators.precision import float64
from simulators.data import LoggedData, Truth
from simulators.world import TYPE_NAMES

__all__ = [
    "BEHAVIORS",
    "LOGGINGS",
    "PUBLISHED_RELATIVE_EE",
    "REFERENCE",
    "OBPWorldConfig",
    "OBPWorldDraw",
    "OBPWorldParams",
    "OBPWorldSurfaces",
    "n_actions",
    "obp_world_arrays",
    "obp_world_logged_data",
    "obp_world_params",
    "obp_world_surfaces",
    "policy_value",
]

Behavior = Literal["reward", "linear"]
Logging = Literal["native", "uniform"]
BEHAVIORS: tuple[str, ...] = ("reward", "linear")
LOGGINGS: tuple[str, ...] = ("native", "uniform")
_PERSUADABLE = TYPE_NAMES.index("persuadable")
_LOST_CAUSE = TYPE_NAMES.index("lost_cause")
_SLEEPING_DOG = TYPE_NAMES.index("sleeping_dog")
_MAX_SEED = 2**31 - 1

# OBP's examples/synthetic/README.md (obp repository, commit 8cbd5fa): relative-ee |V^ - V| / V,
# mean and sd over 20 runs (world random_state = run index), n_rounds = 10_000, n_actions = 30,
# dim_context = 5, beta = -3, behaviour softmax(beta q), evaluation policy IPWLearner(logistic
# regression).predict_proba, q_hat = RegressionModel(logistic regression) 3-fold cross-fitted;
# Switch-DR and DR-os tuned by SLOPE over lambda in {10, 50, ..., 10_000, inf}.
PUBLISHED_RELATIVE_EE: dict[str, tuple[float, float]] = {
    "dm": (0.074390, 0.024525),
    "ipw": (0.009481, 0.006899),
    "snipw": (0.006665, 0.004541),
    "dr": (0.006175, 0.004245),
    "sndr": (0.006118, 0.003997),
    "switch-dr": (0.006175, 0.004245),
    "dr-os": (0.021951, 0.013337),
}

REFERENCE = """\
**OBP synthetic bandit world** (`simulators/obp_world.py`). Saito, Aihara, Matsutani and Narita,
"Open Bandit Dataset and Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation",
NeurIPS Datasets and Benchmarks 2021 (arXiv:2008.07146); the world is Open Bandit Pipeline's
`obp.dataset.SyntheticBanditDataset` (obp 0.5.7, `obp/dataset/synthetic.py`) with
`reward_type="binary"`, `reward_function=logistic_reward_function`, one-hot action context,
`x ~ N(0, I_5)`: `q(x, a) = sigmoid(theta_x'x~ + theta_a'a~ + x~'M a~ - m/s)` with `x~ = (1, x)`,
`a~ = (1, e_a)`, every coefficient `U(-1, 1)` and OBP's z-score shift `m/s` taken at its
population value; behaviour `softmax(beta q)` (OBP's default; `linear_behavior_policy` offered);
coefficients fixed per world (`world_seed`, OBP's `random_state`).

The paper benchmarks estimators on the real Open Bandit Dataset; it publishes no relative errors
for this synthetic world. The published synthetic figures are OBP's `examples/synthetic/README.md`
(20 runs, n = 10,000, 30 arms, d = 5, beta = -3, IPWLearner evaluation policy, logistic q_hat,
SLOPE-tuned Switch-DR / DR-os), relative-ee mean (sd):

| estimator | DM | IPW | SNIPW | DR | SNDR | Switch-DR | DR-os |
|---|---|---|---|---|---|---|---|
| relative-ee | 0.0744 (0.0245) | 0.0095 (0.0069) | 0.0067 (0.0045) | 0.0062 (0.0042) \
| 0.0061 (0.0040) | 0.0062 (0.0042) | 0.0220 (0.0133) |
"""


def _check_choice(value: Any, choices: tuple[str, ...], field: str, fix: str) -> str:
    if not isinstance(value, str) or value not in choices:
        fail(field, f"unknown value {value!r}", f"use one of {', '.join(choices)} ({fix})")
    return value


@dataclasses.dataclass(frozen=True)
class OBPWorldConfig:
    """One OBP synthetic world: ``n_actions >= 2`` arms, ``dim_context >= 1`` features, the
    behaviour inverse temperature ``beta`` (finite; OBP's examples run 3 and -3, 0 is uniform),
    ``behavior`` in :data:`BEHAVIORS` (``"reward"``: OBP's default ``softmax(beta q)``;
    ``"linear"``: ``linear_behavior_policy``), ``z_score`` (OBP's default shift of the reward
    logits, see the module docstring) and ``world_seed`` (OBP's ``random_state``: fixes every
    coefficient). No row count and no draw seed: those are :func:`obp_world_logged_data`'s."""

    n_actions: int = 10
    dim_context: int = 5
    beta: float = 3.0
    behavior: Behavior = "reward"
    z_score: bool = True
    world_seed: int = 12345

    def __post_init__(self) -> None:
        check_int("OBPWorldConfig.n_actions", self.n_actions,
                  "use an integer n_actions >= 2 (OBP's examples use 10 or 30)", low=2)
        check_int("OBPWorldConfig.dim_context", self.dim_context,
                  "use an integer dim_context >= 1 (OBP's examples use 5)", low=1)
        b = self.beta
        if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating) or (
                not math.isfinite(float(b))):
            fail("OBPWorldConfig.beta", f"the inverse temperature must be a finite number, got "
                 f"{b!r}", "use e.g. beta=3.0 (OBP's examples use 3 and -3; 0 is uniform)")
        _check_choice(self.behavior, BEHAVIORS, "OBPWorldConfig.behavior",
                      "'reward' is OBP's default softmax(beta q)")
        if not isinstance(self.z_score, bool | np.bool_):
            fail("OBPWorldConfig.z_score", f"must be a bool, got {self.z_score!r}",
                 "use z_score=True (OBP's default) or False")
        check_int("OBPWorldConfig.world_seed", self.world_seed,
                  "use an integer seed, e.g. 12345 (OBP's default random_state)", low=0,
                  high=_MAX_SEED)


def n_actions(config: OBPWorldConfig) -> int:
    """The number of arms ``K`` (= ``LoggedData.n_actions``: arm 0 is a column like the others)."""
    _check_config(config)
    return int(config.n_actions)


class OBPWorldParams(NamedTuple):
    """One world's coefficients (float64), OBP's names: reward ``context_coef (d+1,)``,
    ``action_coef (K+1,)``, ``context_action_coef (d+1, K+1)`` (all ``U(-1, 1)``), behaviour
    ``behavior_action_coef (K+1,)`` and ``behavior_context_action_coef (d+1, K+1)`` (``U(0, 1)``),
    and the population constants: ``reward_shift = m_f / s_f`` (0 without ``z_score``),
    ``behavior_mean = m_h`` and ``behavior_std = s_h``. A pytree: stack several to ``vmap``."""

    context_coef: jax.Array
    action_coef: jax.Array
    context_action_coef: jax.Array
    behavior_action_coef: jax.Array
    behavior_context_action_coef: jax.Array
    reward_shift: jax.Array
    behavior_mean: jax.Array
    behavior_std: jax.Array


class OBPWorldSurfaces(NamedTuple):
    """At each row: ``q (n, K)`` the exact expected reward, ``behavior_logits (n, K)`` the
    behaviour logits ``g`` (``q`` itself for ``behavior="reward"``) and ``behavior_prob (n, K)`` =
    ``softmax(beta * g)``."""

    q: jax.Array
    behavior_logits: jax.Array
    behavior_prob: jax.Array


class OBPWorldDraw(NamedTuple):
    """One raw draw: ``x (n, d)``, ``action (n,)`` int32, ``reward (n,)`` float64 in {0, 1},
    ``action_prob (n, K)`` the logging distribution and the :class:`OBPWorldSurfaces` at ``x``."""

    x: jax.Array
    action: jax.Array
    reward: jax.Array
    action_prob: jax.Array
    surfaces: OBPWorldSurfaces


def _check_config(config: Any) -> None:
    if not isinstance(config, OBPWorldConfig):
        fail("config", f"expected OBPWorldConfig, got {type(config).__name__}",
             "pass OBPWorldConfig(n_actions=..., dim_context=..., beta=...)")


def _action_design(k: int) -> jax.Array:
    """``PolynomialFeatures(degree=1)`` of the one-hot action context: rows ``(1, e_a)``."""
    return jnp.concatenate([jnp.ones((k, 1)), jnp.eye(k)], axis=1)


def _linear_form(ctx_coef: jax.Array, act_coef: jax.Array,
                 ctx_act_coef: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(c (K,), B (d, K))`` with ``theta_x'x~ + theta_a'a~ + x~'M a~ = c_a + B[:, a]'x``."""
    k = act_coef.shape[0] - 1
    design = _action_design(k)
    w = ctx_coef[:, None] + ctx_act_coef @ design.T  # (d+1, K): coefficient of x~ per arm
    return w[0] + design @ act_coef, w[1:]


def _population_moments(c: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and sd of ``c_a + b_a'x`` over ``x ~ N(0, I)`` and a uniform arm (ddof 0, as
    ``np.std``)."""
    mean = jnp.mean(c)
    var = jnp.mean(c**2) - mean**2 + jnp.mean(jnp.sum(b**2, axis=0))
    return mean, jnp.sqrt(var)


@functools.partial(jax.jit, static_argnames=("k", "d", "z_score"))
def _params(key: jax.Array, k: int, d: int, z_score: bool) -> OBPWorldParams:
    k_reward, k_behavior = jax.random.split(key)
    kr = jax.random.split(k_reward, 3)
    ctx = jax.random.uniform(kr[0], (d + 1,), jnp.float64, -1.0, 1.0)
    act = jax.random.uniform(kr[1], (k + 1,), jnp.float64, -1.0, 1.0)
    ctx_act = jax.random.uniform(kr[2], (d + 1, k + 1), jnp.float64, -1.0, 1.0)
    kb = jax.random.split(k_behavior, 2)
    b_act = jax.random.uniform(kb[0], (k + 1,), jnp.float64)
    b_ctx_act = jax.random.uniform(kb[1], (d + 1, k + 1), jnp.float64)
    m_f, s_f = _population_moments(*_linear_form(ctx, act, ctx_act))
    shift = m_f / s_f if z_score else jnp.zeros((), jnp.float64)
    m_h, s_h = _population_moments(*_linear_form(jnp.zeros(d + 1), b_act, b_ctx_act))
    return OBPWorldParams(ctx, act, ctx_act, b_act, b_ctx_act, shift, m_h, s_h)


@float64
def obp_world_params(config: OBPWorldConfig) -> OBPWorldParams:
    """The world's coefficients and population constants, from ``jax.random.key(world_seed)``
    (laws in :class:`OBPWorldParams` and the module docstring)."""
    _check_config(config)
    return _params(jax.random.key(config.world_seed), config.n_actions, config.dim_context,
                   bool(config.z_score))


def _reward_logits(p: OBPWorldParams, x: jax.Array) -> jax.Array:
    """OBP's ``_base_reward_function(degree=1)`` on ``x~ = (1, x)``, minus the z-score shift."""
    k = p.action_coef.shape[0] - 1
    xt = jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)
    design = _action_design(k)
    f = (xt @ p.context_coef)[:, None] + (design @ p.action_coef)[None, :]
    f = f + xt @ p.context_action_coef @ design.T
    return f - p.reward_shift  # degree = 1


def _surfaces(p: OBPWorldParams, x: jax.Array, beta: jax.Array,
              linear: bool) -> OBPWorldSurfaces:
    q = jax.nn.sigmoid(_reward_logits(p, x))
    if linear:
        k = p.behavior_action_coef.shape[0] - 1
        xt = jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)
        design = _action_design(k)
        h = xt @ p.behavior_context_action_coef @ design.T + design @ p.behavior_action_coef
        g = (h - p.behavior_mean) / p.behavior_std  # degree = 1
    else:
        g = q
    return OBPWorldSurfaces(q=q, behavior_logits=g, behavior_prob=jax.nn.softmax(beta * g, -1))


def _check_params(params: Any, config: OBPWorldConfig) -> OBPWorldParams:
    if params is None:
        return obp_world_params(config)
    if not isinstance(params, OBPWorldParams):
        fail("params", f"expected OBPWorldParams, got {type(params).__name__}",
             "pass obp_world_params(config) (or None for the config's own world)")
    want = (config.dim_context + 1, config.n_actions + 1)
    if tuple(np.shape(params.context_action_coef))[-2:] != want:
        fail("params", f"coefficients of shape {np.shape(params.context_action_coef)} do not "
             f"fit n_actions={config.n_actions}, dim_context={config.dim_context}",
             "derive params from the same config")
    return params


@float64
def obp_world_surfaces(config: OBPWorldConfig, x: Any,
                       params: OBPWorldParams | None = None) -> OBPWorldSurfaces:
    """``q(x, .)``, the behaviour logits and ``pi_b(. | x)`` at the rows of ``x (n, d)``
    (float64), for the world of ``config`` (or of ``params``, e.g. another ``world_seed``)."""
    _check_config(config)
    p = _check_params(params, config)
    xa = jnp.asarray(x, dtype=jnp.float64)
    if xa.ndim != 2 or xa.shape[1] != config.dim_context:
        fail("x", f"expected shape (n, {config.dim_context}), got {xa.shape}",
             f"pass dim_context={config.dim_context} feature columns")
    return _surfaces(p, xa, jnp.float64(config.beta), config.behavior == "linear")


@functools.partial(jax.jit, static_argnames=("n", "linear", "uniform"))
def _draw(key: jax.Array, p: OBPWorldParams, beta: jax.Array, n: int, linear: bool,
          uniform: bool) -> OBPWorldDraw:
    k_x, k_a, k_r = jax.random.split(key, 3)
    d = p.context_coef.shape[0] - 1
    x = jax.random.normal(k_x, (n, d), dtype=jnp.float64)
    s = _surfaces(p, x, beta, linear)
    prob = jnp.full_like(s.q, 1.0 / s.q.shape[1]) if uniform else s.behavior_prob
    action = jax.random.categorical(k_a, jnp.log(prob), axis=-1).astype(jnp.int32)
    q_taken = jnp.take_along_axis(s.q, action[:, None], axis=1)[:, 0]
    reward = (jax.random.uniform(k_r, (n,), dtype=jnp.float64) < q_taken).astype(jnp.float64)
    return OBPWorldDraw(x=x, action=action, reward=reward, action_prob=prob, surfaces=s)


def _check_n(n: Any) -> int:
    return check_int("n", n, "use an integer number of rows n >= 1 (OBP's examples: 10_000)",
                     low=1)


def _check_logging(logging: Any) -> str:
    return _check_choice(logging, LOGGINGS, "logging",
                         "'native' logs with the softmax behaviour policy, 'uniform' with 1/K")


@float64
def obp_world_arrays(key: jax.Array, config: OBPWorldConfig, n: int, *,
                     logging: Logging = "native",
                     params: OBPWorldParams | None = None) -> OBPWorldDraw:
    """The pure draw (``jit``-compiled; ``jax.vmap`` it over keys, and over stacked ``params``
    for several worlds, inside a float64 context): ``x ~ N(0, I_d)``, ``a ~ pi(. | x)`` (the
    behaviour policy, or uniform), ``r = 1{U < q(x, a)}`` with ``U ~ U(0, 1)``; the key is split
    into three streams (``x``, ``a``, ``r``). ``params`` defaults to the config's world."""
    _check_config(config)
    n = _check_n(n)
    uniform = _check_logging(logging) == "uniform"
    p = _check_params(params, config)
    return _draw(key, p, jnp.float64(config.beta), n, config.behavior == "linear", uniform)


@float64
def obp_world_logged_data(key: jax.Array, config: OBPWorldConfig, n: int, *,
                          logging: Logging = "native") -> LoggedData:
    """One validated :class:`LoggedData` (NumPy arrays) of ``n`` rows of the world of ``config``
    drawn from ``key``, with its exact truth; ``logging`` is ``"native"`` (``pi_b``, its full
    distribution in ``action_prob``) or ``"uniform"``. The field mapping is in the module
    docstring (action 0 is OBP's arm 0, an ordinary arm)."""
    _check_config(config)
    n = _check_n(n)
    _check_logging(logging)
    draw = jax.device_get(obp_world_arrays(key, config, n, logging=logging))
    q = np.asarray(draw.surfaces.q)
    k = q.shape[1]
    gain = q[:, 1:].max(axis=1) - q[:, 0]
    rtype = np.where(gain > 0, _PERSUADABLE, np.where(gain < 0, _SLEEPING_DOG, _LOST_CAUSE))
    r = np.asarray(draw.reward)
    truth = Truth(mu_value=q, mu_cost=np.zeros((n, k)), mu_value_accounting=q.copy(),
                  response_type=rtype.astype(np.int32))
    return LoggedData(
        x=np.asarray(draw.x), segment=np.zeros(n, np.int32), period=np.zeros(n, np.int32),
        eligible=np.ones((n, k), bool), action=np.asarray(draw.action),
        action_prob=np.asarray(draw.action_prob), value=r, value_accounting=r.copy(),
        cost=np.zeros(n), redemption_lag=np.full(n, -1, np.int32),
        other_actions=np.zeros((n, 0), np.int32), face_value=np.zeros(k), truth=truth,
    )


@float64
def policy_value(q: Any, action_dist: Any) -> jax.Array:
    """OBP's ``calc_ground_truth_policy_value``: ``mean_i sum_a pi(a | x_i) q(x_i, a)`` over the
    last two axes (``(..., n, K)`` inputs, e.g. a leading seed axis)."""
    q, pi = jnp.asarray(q, jnp.float64), jnp.asarray(action_dist, jnp.float64)
    if q.shape != pi.shape or q.ndim < 2:
        fail("action_dist", f"expected the shape of q (..., n, K), got {pi.shape} vs {q.shape}",
             "pass one distribution over the K arms per row")
    return jnp.mean(jnp.sum(q * pi, axis=-1), axis=-1)
