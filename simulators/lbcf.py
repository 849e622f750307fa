r"""The LBCF world (Ai et al., "LBCF: A Large-Scale Budget-Constrained Causal Forest Algorithm",
WWW 2022, arXiv:2201.12585), Section 5.1's synthetic data, as multi-arm :class:`LoggedData`.

**Source.** The paper's supplementary repository (github.com/www2022paper/WWW-2022-PAPER-
SUPPLEMENTARY-MATERIALS), ``Code/Data_generation/generateSimulationData.R``: a ``simcausal`` DAG
with four heterogeneous variables ``H1..H4``, an unobserved variable ``U.Y``, a treatment ``A``
in {0, 1, 2, 3} set by four actions, and two outcomes, ``Value`` and ``Cost``. Verbatim (``pow =
2``, ``uW`` = ``uncertaintyW``, the noise level; ``N(m, s)`` has standard deviation ``s``)::

    H1 ~ N(0.5, 1)                 H2 ~ N(2 H1^2, 2.5)         H3 ~ N(2 H1 + 1.4 H2, 2)
    H4 ~ N(-0.5 + 0.7 H3 + 0.3 H2, 1)                          U.Y ~ N(3, 1.5 uW)   (latent)
    Value ~ N(U.Y + w1 A H2^pow + w2 A H3^pow + w3 A H4^pow, 0.5 uW)
    Cost  ~ Uniform(|w4 A H3^pow + U.Y + w5 A H4| A / uW,  |w4 A H3^pow + U.Y + w5 A H4| A)

with ``uW`` in {5, 10, 15, 20}, 20,000 users per set, and weights drawn once in R after
``set.seed(12345)``: ``w1, w2 ~ N(0, 1)``, ``w3, w4 ~ N(2, 1)``, ``w5 ~ N(4, 1)``, three draws each
(``w1List = c(rnorm(1), rnorm(1), rnorm(1))``, then ``w2List``...; ``w6List`` is drawn but never
used). The training set uses the first draw of each list and the *test set the second*
(``w1List[[1]]`` vs ``w1List[[2]]``): the published protocol evaluates on a world whose effect
weights differ from the training world's. :func:`published_weights` reproduces R's draws
exactly (R's Mersenne-Twister seeding and inversion normals, :func:`r_rnorm`); with them and
``set.seed(12345 * uW)`` :func:`published_users` regenerates the published users bit for bit
(checked against the repository's ``Code/Model/CF_DT/data/MBCF_train_5uw_1.csv``: ``H1..H4`` and
``Value`` to 1e-13, and ``Value(A=1) - Value(A=0) = w1 H2^2 + w2 H3^2 + w3 H4^2`` exactly). So
``simcausal`` reuses the same random numbers under every action: a user's ``U.Y``, value noise
and cost uniform are common to the four arms (its training CSV lists every user under every arm).

**The shared latent factor.** ``U.Y`` enters the value of every arm (a baseline, cancelling in
the value effect) and sits inside the cost's absolute value next to the arm-scaled ``w4 H3^2 +
w5 H4``: cost and value are correlated through it, and through ``H3``/``H4``, which drive both
effects. Its standard deviation ``1.5 uW`` and the value noise ``0.5 uW`` grow with the noise
level; the cost's lower bound is ``1 / uW`` of its upper bound.

**This module.** The same law, drawn from ``jax.random`` and the caller's key only (the config
carries no seed; one randomised log per key, not the published users). With ``g(x) = w1 H2^p +
w2 H3^p + w3 H4^p``, ``h(x) = w4 H3^p + w5 H4``, ``m = 3``, ``s = latent_scale * uW``, arm
``a in {0..K}`` (``K = n_treatments``; the DAG's arm is its integer treatment level):

.. math:: \mu_v(x, a) = m + a\,g(x), \qquad
          \mu_c(x, a) = a\,\frac{1 + 1/u_W}{2}\; E|a\,h(x) + U|, \quad U \sim N(m, s^2),

the folded-normal mean ``E|mu + s Z| = s sqrt(2/pi) exp(-mu^2 / 2 s^2) + mu (1 - 2 Phi(-mu/s))``
(:func:`lbcf_truth`); both exact given the observed ``x = (H1..H4)``, the latent ``U.Y``
integrated out. Outcomes: ``value = U + a g + value_noise_scale * uW * eps`` and ``cost = a |a h
+ U| (1/uW + (1 - 1/uW) V)``, ``eps ~ N(0, 1)``, ``V ~ U(0, 1)``, ``U`` drawn once per user.

**What is assumed, and where this departs from the published code.** (i) The log is a
randomised trial, uniform over the ``K + 1`` arms with propensities logged, one arm per user
(the published training file shows every user under every arm with common noise; the brief of
this benchmark asks for a randomised log). (ii) ``n_treatments`` generalises the DAG's integer
treatment levels ``A = 0..3`` (published: 3) and ``n_noise_features`` appends i.i.d. ``N(0, 1)``
columns that enter nothing (published: 0); ``latent_scale`` (1.5) and ``value_noise_scale``
(0.5) are the DAG's constants, exposed. (iii) Truth is conditional on ``x`` (``U.Y`` is latent),
so cost truth is an expectation; the published allocation used each test user's *realised* cost,
which contains ``U.Y`` (an unobserved variable) and the uniform noise.

Field mapping: ``x = [H1, H2, H3, H4, noise...]``, ``action`` in 0..K, ``action_prob = 1/(K+1)``,
``value = value_accounting = Value``, ``cost = Cost``, ``face_value = [0, 1, .., K]`` (the
treatment level), ``truth.mu_value = truth.mu_value_accounting = mu_v``, ``truth.mu_cost = mu_c``,
``response_type`` from the sign of ``g`` (every arm's effect is ``a g``; 1 persuadable, 2 lost
cause at ``g = 0``, 3 sleeping dog; the sign convention of :mod:`simulators.nie_wager`),
``segment = period = 0``, ``redemption_lag = 0`` for a treated row (cost paid on assignment),
``-1`` for the control arm, no concurrent programs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

from estimators.checks import check_int, fail
from estimators.precision import float64
from simulators.data import LoggedData, Truth
from simulators.world import TYPE_NAMES

__all__ = [
    "N_FEATURES",
    "PUBLISHED_NOISE_LEVELS",
    "PUBLISHED_SEED",
    "LBCFConfig",
    "LBCFDraw",
    "LBCFWeights",
    "PublishedUsers",
    "folded_normal_mean",
    "lbcf_arrays",
    "lbcf_logged_data",
    "lbcf_outcomes",
    "lbcf_truth",
    "published_users",
    "published_weights",
    "r_rnorm",
    "r_runif",
    "sample_covariates",
]

N_FEATURES = 4  # H1..H4
PUBLISHED_NOISE_LEVELS: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)  # uncertaintyWList
PUBLISHED_SEED = 12345  # set.seed(12345) before the weight draws; the DAGs use seed * uW (+ 1)
LATENT_MEAN = 3.0  # U.Y's mean
_PERSUADABLE = TYPE_NAMES.index("persuadable")
_LOST_CAUSE = TYPE_NAMES.index("lost_cause")
_SLEEPING_DOG = TYPE_NAMES.index("sleeping_dog")


# ----------------------------------------------------------------------------- R's generator
def _r_mt_state(seed: int) -> np.ndarray:
    """R's ``set.seed(seed)`` for the Mersenne-Twister (RNG.c ``RNG_Init``): the seed scrambled
    by 50 steps of the LCG ``s -> 69069 s + 1 (mod 2^32)``, then 625 further steps fill
    ``dummy[0..624]``; ``dummy[0]`` (the position) is reset to 624 and ``dummy[1..]`` is the
    MT state."""
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    out = np.empty(625, dtype=np.uint32)
    for j in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        out[j] = s
    return out[1:]


def r_runif(seed: int, n: int) -> np.ndarray:
    """The first ``n`` of R's ``unif_rand()`` after ``set.seed(seed)`` (default Mersenne-Twister):
    tempered 32-bit outputs times ``2^-32`` (never 0 for these seeds; R's ``fixup`` is a no-op)."""
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": _r_mt_state(seed), "pos": 624}}
    return bits.random_raw(int(n)).astype(np.float64) * 2.3283064365386963e-10


def _inversion_normals(u: np.ndarray) -> np.ndarray:
    """R's ``norm_rand()`` (INVERSION): two uniforms per normal, ``qnorm((floor(2^27 u1) + u2) /
    2^27)``."""
    big = 134217728.0
    return ndtri((np.floor(big * u[0::2]) + u[1::2]) / big)


def r_rnorm(seed: int, n: int) -> np.ndarray:
    """R's ``set.seed(seed); rnorm(n)`` (default generator and normal kind): e.g. seed 1 gives
    -0.6264538, 0.1836433, -0.8356286."""
    return _inversion_normals(r_runif(seed, 2 * int(n)))


class LBCFWeights(NamedTuple):
    """The DAG's effect weights: value ``g = w1 H2^p + w2 H3^p + w3 H4^p``, cost ``h = w4 H3^p +
    w5 H4``."""

    w1: float
    w2: float
    w3: float
    w4: float
    w5: float


@functools.cache
def published_weights(weight_set: int) -> LBCFWeights:
    """Draw ``weight_set`` (1 = the training set's, 2 = the test set's, 3 = unused) of the
    published weights: ``set.seed(12345)`` then 18 ``rnorm(1)`` calls in the script's order
    (``w1List`` three, ``w2List`` three, ...), means 0, 0, 2, 2, 4 (``w6List`` is unused)."""
    k = _check_weight_set(weight_set, "weight_set")
    z = r_rnorm(PUBLISHED_SEED, 18)
    means = (0.0, 0.0, 2.0, 2.0, 4.0)
    return LBCFWeights(*(float(mean + z[3 * j + k - 1]) for j, mean in enumerate(means)))


class PublishedUsers(NamedTuple):
    """One published set regenerated: ``x (n, 4)`` = ``H1..H4`` and the realised potential outcomes
    ``value``/``cost (n, K+1)`` of every arm (common random numbers across arms, as in the CSVs)."""

    x: np.ndarray
    value: np.ndarray
    cost: np.ndarray


def published_users(uncertainty: float, split: Literal["training", "test"] = "training",
                    n: int = 20_000, n_treatments: int = 3) -> PublishedUsers:
    """The published users of noise level ``uW = uncertainty`` and ``split``, regenerated exactly
    (only ``n = 20000`` gives the published users; another ``n`` shifts R's stream):
    ``set.seed(12345 * uW)`` (test: ``+ 1``), then ``simcausal``'s node order, ``n`` draws per
    node: normals for ``H1``, ``H2``, ``H3``, ``H4``, ``U.Y`` and the value noise, then ``n``
    uniforms for ``Cost`` (``runif(n, lo, hi) = lo + (hi - lo) u``); the same numbers under every
    arm. Weights: the training set's draw 1, the test set's draw 2 (:func:`published_weights`).
    ``H1..H4`` and the training ``Value`` are checked against the repository's CSVs; ``Cost`` is
    not in the repository (its CSVs are over GitHub's file-size limit), so it rests on the DAG."""
    if split not in ("training", "test"):
        fail("split", f"expected 'training' or 'test', got {split!r}", "use split='training'")
    _check_real("uncertainty", uncertainty, 1.0, False, "use one of 5, 10, 15, 20")
    _check_int("n", n, 1, "use n=20000 (the published set size)")
    _check_int("n_treatments", n_treatments, 1, "use n_treatments=3")
    uw, n = float(uncertainty), int(n)
    seed = int(PUBLISHED_SEED * uw) + (split == "test")  # set.seed truncates (asInteger)
    u = r_runif(seed, 13 * n)
    z = _inversion_normals(u[:12 * n]).reshape(6, n)
    h1 = 0.5 + z[0]
    h2 = 2.0 * h1**2 + 2.5 * z[1]
    h3 = 2.0 * h1 + 1.4 * h2 + 2.0 * z[2]
    h4 = -0.5 + 0.7 * h3 + 0.3 * h2 + z[3]
    latent = LATENT_MEAN + 1.5 * uw * z[4]
    w = published_weights(1 if split == "training" else 2)
    g = w.w1 * h2**2 + w.w2 * h3**2 + w.w3 * h4**2
    h = w.w4 * h3**2 + w.w5 * h4
    arms = np.arange(n_treatments + 1, dtype=np.float64)[None, :]
    value = latent[:, None] + arms * g[:, None] + 0.5 * uw * z[5][:, None]
    upper = arms * np.abs(arms * h[:, None] + latent[:, None])
    cost = upper / uw + (upper - upper / uw) * u[12 * n:][:, None]
    return PublishedUsers(np.column_stack([h1, h2, h3, h4]), value, cost)


# ------------------------------------------------------------------------------------ config
def _check_weight_set(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in (1, 2,
                                                                                           3):
        fail(field, f"must be 1, 2 or 3 (the published script draws three weight sets), got "
             f"{value!r}", "use 1 (the training set's weights) or 2 (the test set's)")
    return int(value)


def _check_int(field: str, value: Any, low: int, fix: str) -> None:
    check_int(field, value, fix, low=low)


def _check_real(field: str, value: Any, low: float, strict: bool, fix: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if not ok or not math.isfinite(float(value)) or (
            float(value) <= low if strict else float(value) < low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        fail(field, f"must be a finite number {bound}, got {value!r}", fix)


@dataclasses.dataclass(frozen=True)
class LBCFConfig:
    """One LBCF world: ``n >= 1`` users, ``n_treatments >= 1`` arms besides control (published:
    3), ``uncertainty >= 1`` the noise level ``uW`` (published: 5, 10, 15, 20; below 1 the cost's
    uniform bounds cross), ``weight_set`` which published weight draw (1 training, 2 test),
    ``power`` the DAG's ``pow`` (published: 2), ``latent_scale > 0`` and ``value_noise_scale >=
    0`` (the standard deviations of ``U.Y`` and of the value noise per unit of ``uW``; published:
    1.5 and 0.5), ``n_noise_features >= 0`` extra ``N(0, 1)`` columns (published: 0). No seed."""

    n: int = 20_000
    n_treatments: int = 3
    uncertainty: float = 5.0
    weight_set: int = 1
    power: int = 2
    latent_scale: float = 1.5
    value_noise_scale: float = 0.5
    n_noise_features: int = 0

    def __post_init__(self) -> None:
        _check_int("LBCFConfig.n", self.n, 1, "use e.g. n=20000 (the paper's set size)")
        _check_int("LBCFConfig.n_treatments", self.n_treatments, 1,
                   "use e.g. n_treatments=3 (the paper's A in 0..3)")
        _check_int("LBCFConfig.power", self.power, 1, "use power=2 (the paper's pow)")
        _check_int("LBCFConfig.n_noise_features", self.n_noise_features, 0,
                   "use n_noise_features=0 (the paper's four features only)")
        _check_real("LBCFConfig.uncertainty", self.uncertainty, 1.0, False,
                    "use a noise level >= 1, e.g. 5, 10, 15 or 20 (the paper's levels)")
        _check_real("LBCFConfig.latent_scale", self.latent_scale, 0.0, True,
                    "use latent_scale=1.5 (the paper's U.Y sd is 1.5 uW)")
        _check_real("LBCFConfig.value_noise_scale", self.value_noise_scale, 0.0, False,
                    "use value_noise_scale=0.5 (the paper's value sd is 0.5 uW)")
        _check_weight_set(self.weight_set, "LBCFConfig.weight_set")

    @property
    def n_actions(self) -> int:
        """``K + 1`` arms, control included."""
        return self.n_treatments + 1

    @property
    def n_features(self) -> int:
        return N_FEATURES + self.n_noise_features


def _check_config(config: Any) -> LBCFConfig:
    if not isinstance(config, LBCFConfig):
        fail("config", f"expected LBCFConfig, got {type(config).__name__}",
             "pass LBCFConfig(uncertainty=..., n=...)")
    return config


class _Params(NamedTuple):
    """The traced float parameters of one world (one compilation serves every noise level)."""

    w: jax.Array  # (5,) w1..w5
    uncertainty: jax.Array
    latent_scale: jax.Array
    value_noise_scale: jax.Array


def _params(config: LBCFConfig) -> _Params:
    return _Params(jnp.asarray(published_weights(config.weight_set), dtype=jnp.float64),
                   jnp.float64(config.uncertainty), jnp.float64(config.latent_scale),
                   jnp.float64(config.value_noise_scale))


# ------------------------------------------------------------------------------ pure functions
def _chain(z: jax.Array) -> jax.Array:
    """The DAG's ``H1..H4`` from standard normals ``z (n, 4 + noise)`` (noise columns kept)."""
    h1 = 0.5 + z[:, 0]
    h2 = 2.0 * h1**2 + 2.5 * z[:, 1]
    h3 = 2.0 * h1 + 1.4 * h2 + 2.0 * z[:, 2]
    h4 = -0.5 + 0.7 * h3 + 0.3 * h2 + z[:, 3]
    return jnp.concatenate([jnp.stack([h1, h2, h3, h4], axis=1), z[:, N_FEATURES:]], axis=1)


def _covariates(key: jax.Array, n: int, n_noise: int) -> jax.Array:
    return _chain(jax.random.normal(key, (n, N_FEATURES + n_noise), dtype=jnp.float64))


def _effects(x: jax.Array, w: jax.Array, power: int) -> tuple[jax.Array, jax.Array]:
    """``g = w1 H2^p + w2 H3^p + w3 H4^p`` (value per treatment level) and ``h = w4 H3^p + w5 H4``
    (cost per treatment level, before the latent factor)."""
    h2, h3, h4 = x[:, 1], x[:, 2], x[:, 3]
    g = w[0] * h2**power + w[1] * h3**power + w[2] * h4**power
    h = w[3] * h3**power + w[4] * h4
    return g, h


def folded_normal_mean(mu: Any, s: Any) -> jax.Array:
    """``E|mu + s Z|``, ``Z ~ N(0, 1)``: ``s sqrt(2/pi) exp(-mu^2 / (2 s^2)) + mu (1 - 2
    Phi(-mu / s))`` (``s > 0``)."""
    mu, s = jnp.asarray(mu), jnp.asarray(s)
    return (s * jnp.sqrt(2.0 / jnp.pi) * jnp.exp(-0.5 * (mu / s) ** 2)
            + mu * (1.0 - 2.0 * jax.scipy.stats.norm.cdf(-mu / s)))


def _truth(g: jax.Array, h: jax.Array, p: _Params, n_actions: int) -> tuple[jax.Array, jax.Array]:
    arms = jnp.arange(n_actions, dtype=jnp.float64)
    mu_v = LATENT_MEAN + arms[None, :] * g[:, None]
    s = p.latent_scale * p.uncertainty
    mean_share = 0.5 * (1.0 + 1.0 / p.uncertainty)  # E[U(1/uW, 1)]
    mu_c = arms[None, :] * mean_share * folded_normal_mean(
        arms[None, :] * h[:, None] + LATENT_MEAN, s)
    return mu_v, mu_c


def _outcomes(z_latent: jax.Array, z_value: jax.Array, u_cost: jax.Array, g: jax.Array,
              h: jax.Array, action: jax.Array, p: _Params) -> tuple[jax.Array, jax.Array]:
    """``(value, cost)`` per row at ``action`` from its standard draws: the latent ``U = m + s
    z_latent``, the value noise ``z_value`` and the cost uniform ``u_cost``."""
    u = LATENT_MEAN + p.latent_scale * p.uncertainty * z_latent
    a = action.astype(jnp.float64)
    value = u + a * g + p.value_noise_scale * p.uncertainty * z_value
    share = 1.0 / p.uncertainty + (1.0 - 1.0 / p.uncertainty) * u_cost
    return value, a * jnp.abs(a * h + u) * share


def _standard_draws(key: jax.Array, n: int, n_normal: int) -> tuple[jax.Array, jax.Array]:
    """``(n, n_normal)`` standard normals and ``(n, 2)`` uniforms on [0, 1), from the key's two
    streams (two random calls: one compilation each per shape)."""
    k_z, k_u = jax.random.split(key)
    return (jax.random.normal(k_z, (n, n_normal), dtype=jnp.float64),
            jax.random.uniform(k_u, (n, 2), dtype=jnp.float64))


@jax.jit
def _outcomes_from_key(key: jax.Array, g: jax.Array, h: jax.Array, action: jax.Array,
                       p: _Params) -> tuple[jax.Array, jax.Array]:
    z, u = _standard_draws(key, g.shape[0], 2)
    return _outcomes(z[:, 0], z[:, 1], u[:, 0], g, h, action, p)


class LBCFDraw(NamedTuple):
    """One raw draw: ``x (n, d)``, ``action (n,)`` int32 in 0..K, ``value``/``cost (n,)``, the
    exact ``mu_value``/``mu_cost (n, K+1)``, and ``g``/``h (n,)`` (value and cost per treatment
    level)."""

    x: jax.Array
    action: jax.Array
    value: jax.Array
    cost: jax.Array
    mu_value: jax.Array
    mu_cost: jax.Array
    g: jax.Array
    h: jax.Array


@functools.partial(jax.jit, static_argnames=("n", "n_noise", "n_actions", "power"))
def _draw(key: jax.Array, p: _Params, n: int, n_noise: int, n_actions: int,
          power: int) -> LBCFDraw:
    """Normals: the features' ``4 + n_noise`` columns, the latent ``U`` and the value noise;
    uniforms: the arm ``floor((K + 1) u)`` and the cost share."""
    z, u = _standard_draws(key, n, N_FEATURES + n_noise + 2)
    x = _chain(z[:, : N_FEATURES + n_noise])
    g, h = _effects(x, p.w, power)
    action = jnp.minimum(jnp.floor(n_actions * u[:, 0]), n_actions - 1).astype(jnp.int32)
    value, cost = _outcomes(z[:, -2], z[:, -1], u[:, 1], g, h, action, p)
    mu_v, mu_c = _truth(g, h, p, n_actions)
    return LBCFDraw(x, action, value, cost, mu_v, mu_c, g, h)


_effects_jit = jax.jit(_effects, static_argnames=("power",))
_truth_jit = jax.jit(_truth, static_argnames=("n_actions",))
_covariates_jit = jax.jit(_covariates, static_argnames=("n", "n_noise"))


def _check_x(x: Any, config: LBCFConfig) -> jax.Array:
    xa = jnp.asarray(x, dtype=jnp.float64)
    if xa.ndim != 2 or xa.shape[1] < N_FEATURES:
        fail("x", f"expected shape (n, d >= {N_FEATURES}) with columns H1..H4 first, got "
             f"{xa.shape}", "pass the world's features (lbcf_arrays(...).x)")
    return xa


@float64
def sample_covariates(key: jax.Array, config: LBCFConfig) -> jax.Array:
    """``x (n, 4 + n_noise_features)``: the DAG's ``H1..H4`` chain, then the noise columns."""
    config = _check_config(config)
    return _covariates_jit(key, config.n, config.n_noise_features)


@float64
def lbcf_truth(x: Any, config: LBCFConfig) -> tuple[jax.Array, jax.Array]:
    """Exact ``(mu_value, mu_cost)``, ``(n, K+1)`` float64 each, at the rows of ``x`` (formulas in
    the module docstring)."""
    config = _check_config(config)
    p = _params(config)
    g, h = _effects_jit(_check_x(x, config), p.w, power=config.power)
    return _truth_jit(g, h, p, n_actions=config.n_actions)


@float64
def lbcf_outcomes(key: jax.Array, x: Any, action: Any, config: LBCFConfig
                  ) -> tuple[jax.Array, jax.Array]:
    """One draw of ``(value, cost)`` for users ``x`` at arms ``action`` (fresh latent ``U.Y``,
    value noise and cost uniform per row): what a user of features ``x`` would show."""
    config = _check_config(config)
    xa = _check_x(x, config)
    act = np.asarray(action)
    if act.shape != (xa.shape[0],) or not np.issubdtype(act.dtype, np.integer) or (
            act.size and (act.min() < 0 or act.max() > config.n_treatments)):
        fail("action", f"expected ({xa.shape[0]},) integers in [0, {config.n_treatments}], got "
             f"shape {act.shape} dtype {act.dtype}", "one arm index per row")
    p = _params(config)
    g, h = _effects_jit(xa, p.w, power=config.power)
    return _outcomes_from_key(key, g, h, jnp.asarray(act), p)


@float64
def lbcf_arrays(key: jax.Array, config: LBCFConfig) -> LBCFDraw:
    """The pure draw (``jit``-compiled, one compilation per shape): covariates, a uniform arm per
    user, outcomes at it and the exact truth; the key is split into a normal stream (features,
    latent, value noise) and a uniform stream (arm, cost share)."""
    config = _check_config(config)
    return _draw(key, _params(config), config.n, config.n_noise_features, config.n_actions,
                 config.power)


@float64
def lbcf_logged_data(key: jax.Array, config: LBCFConfig) -> LoggedData:
    """One validated :class:`LoggedData` (NumPy arrays) of ``config`` drawn from ``key``: a
    uniform randomised log with its exact truth (field mapping in the module docstring)."""
    d = lbcf_arrays(key, config)
    n, k1 = config.n, config.n_actions
    mu_v, mu_c = np.asarray(d.mu_value), np.asarray(d.mu_cost)
    g = np.asarray(d.g)
    rtype = np.where(g > 0, _PERSUADABLE, np.where(g < 0, _SLEEPING_DOG, _LOST_CAUSE))
    action = np.asarray(d.action)
    value = np.asarray(d.value)
    truth = Truth(mu_value=mu_v, mu_cost=mu_c, mu_value_accounting=mu_v.copy(),
                  response_type=rtype.astype(np.int32))
    return LoggedData(
        x=np.asarray(d.x), segment=np.zeros(n, np.int32), period=np.zeros(n, np.int32),
        eligible=np.ones((n, k1), bool), action=action,
        action_prob=np.full((n, k1), 1.0 / k1), value=value, value_accounting=value.copy(),
        cost=np.asarray(d.cost), redemption_lag=np.where(action > 0, 0, -1).astype(np.int32),
        other_actions=np.zeros((n, 0), np.int32), face_value=np.arange(k1, dtype=np.float64),
        truth=truth,
    )
