r"""The Nie & Wager (2021) simulation setups A-D as binary-action :class:`LoggedData`.

Nie, X. and Wager, S. (2021), "Quasi-oracle estimation of heterogeneous treatment effects",
Biometrika 108(2), 299-319, Section 6 (also CausalML's ``causalml.dataset.regression``:
``simulate_nuisance_and_easy_treatment`` = A, ``simulate_randomized_trial`` = B,
``simulate_easy_propensity_difficult_baseline`` = C, ``simulate_unrelated_treatment_control`` =
D). Every setup draws ``X_i`` i.i.d. with ``d`` features, a treatment ``W_i | X_i ~
Bernoulli(e(X_i))`` and

.. math:: Y_i = b(X_i) + (W_i - 1/2)\,\tau(X_i) + \sigma \varepsilon_i,
          \qquad \varepsilon_i \sim N(0, 1),

so the potential-outcome means are ``mu0 = b - tau/2`` and ``mu1 = b + tau/2`` and
``tau = mu1 - mu0``. With ``(z)_+ = max(z, 0)``, ``softplus(z) = log(1 + e^z)`` and features
``X_1..X_d`` (1-based, as in the paper):

- **A** (difficult nuisance, easy effect): ``X ~ U(0, 1)^d``,
  ``b = sin(pi X1 X2) + 2 (X3 - 1/2)^2 + X4 + X5 / 2``,
  ``e = max(0.1, min(sin(pi X1 X2), 0.9))`` (trimmed at ``eta = 0.1``), ``tau = (X1 + X2) / 2``.
- **B** (randomised trial): ``X ~ N(0, I_d)``, ``b = max(X1 + X2, X3, 0) + (X4 + X5)_+``,
  ``e = 1/2``, ``tau = X1 + softplus(X2)``.
- **C** (easy propensity, difficult baseline, constant effect): ``X ~ N(0, I_d)``,
  ``b = 2 softplus(X1 + X2 + X3)``, ``e = 1 / (1 + exp(X2 + X3))``, ``tau = 1``.
- **D** (unrelated treatment and control arms): ``X ~ N(0, I_d)``,
  ``b = ((X1 + X2 + X3)_+ + (X4 + X5)_+) / 2``, ``e = 1 / (1 + exp(-X1) + exp(-X2))``,
  ``tau = (X1 + X2 + X3)_+ - (X4 + X5)_+``.

Setups A, B and D use ``X1..X5`` (``d >= 5``), C uses ``X1..X3`` (``d >= 3``); the remaining
features are noise. The paper runs ``d`` in {6, 12}, ``n`` in {500, 1000}, ``sigma`` in
{0.5, 1, 2, 4}. CausalML's extra propensity shift ``adj`` is not part of the paper and is not
offered. Every propensity lies strictly inside (0, 1) (A in [0.1, 0.9], B = 1/2, C and D are
logistic-type functions of Gaussian features), so both arms have overlap everywhere.

The log (:func:`nie_wager_logged_data`), as :func:`simulators.ihdp.ihdp_logged_data` does for
IHDP: action ``W`` in {0, 1} (0 control, 1 treated), ``action_prob = [1 - e(x), e(x)]`` (the
true propensity: unlike IHDP this log's propensities are the logging policy, so IPS/DR are
valid), ``value = value_accounting = Y``, ``cost = 0``, ``truth.mu_value =
truth.mu_value_accounting = [mu0, mu1]``, ``truth.mu_cost = 0``, ``truth.response_type`` derived
from the sign of ``tau`` (1 persuadable, 2 lost cause at ``tau = 0``, 3 sleeping dog);
``segment = period = 0``, ``face_value = 0``, ``redemption_lag = -1``, no concurrent programs.
Draws come from ``jax.random`` and the caller's key only (the config carries no seed).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import fail
from estimators.precision import float64
from simulators.data import LoggedData, Truth
from simulators.world import TYPE_NAMES

__all__ = [
    "LOGGINGS",
    "MIN_FEATURES",
    "SETUPS",
    "NieWagerConfig",
    "NieWagerDraw",
    "NieWagerSurfaces",
    "nie_wager_arrays",
    "nie_wager_logged_data",
    "nie_wager_surfaces",
    "sample_covariates",
]

Setup = Literal["A", "B", "C", "D"]
SETUPS: tuple[str, ...] = ("A", "B", "C", "D")
# Features the setup's formulas read (X1..X5, or X1..X3 for C).
MIN_FEATURES: dict[str, int] = {"A": 5, "B": 5, "C": 3, "D": 5}
_TRIM = 0.1  # setup A's propensity trimming eta
_PERSUADABLE = TYPE_NAMES.index("persuadable")
_LOST_CAUSE = TYPE_NAMES.index("lost_cause")
_SLEEPING_DOG = TYPE_NAMES.index("sleeping_dog")


def _check_setup(setup: Any, field: str) -> str:
    if not isinstance(setup, str) or setup not in SETUPS:
        fail(field, f"unknown setup {setup!r}", f"use one of {', '.join(SETUPS)} (Nie & Wager "
             f"2021, Section 6)")
    return setup


@dataclasses.dataclass(frozen=True)
class NieWagerConfig:
    """One Nie & Wager setup: ``setup`` in A-D, ``n >= 1`` rows, ``d >= MIN_FEATURES[setup]``
    features, noise standard deviation ``sigma >= 0`` (finite; 0 gives noiseless outcomes).
    No seed: the draw's randomness is the key passed to :func:`nie_wager_logged_data`."""

    setup: Setup = "A"
    n: int = 1000
    d: int = 6
    sigma: float = 1.0

    def __post_init__(self) -> None:
        _check_setup(self.setup, "NieWagerConfig.setup")
        for name, low in (("n", 1), ("d", MIN_FEATURES[self.setup])):
            value = getattr(self, name)
            try:
                if isinstance(value, bool):
                    raise TypeError
                v = operator.index(value)
            except TypeError:
                fail(f"NieWagerConfig.{name}", f"must be an integer, got {value!r}",
                     "use e.g. n=1000" if name == "n" else f"use an integer d >= {low}")
            if v < low:
                why = ("the number of rows" if name == "n" else
                       f"setup {self.setup} reads features X1..X{low}")
                fail(f"NieWagerConfig.{name}", f"must be >= {low} ({why}), got {v}",
                     f"use {name} >= {low}" + (" (the paper uses d = 6 or 12)"
                                               if name == "d" else ""))
        s = self.sigma
        if isinstance(s, bool) or not isinstance(s, int | float | np.integer | np.floating) or (
                not math.isfinite(float(s)) or float(s) < 0):
            fail("NieWagerConfig.sigma", f"the noise standard deviation must be a finite number "
                 f">= 0, got {s!r}", "use e.g. sigma=1.0 (the paper uses 0.5, 1, 2, 4)")


class NieWagerSurfaces(NamedTuple):
    """The setup's functions at each row, ``(n,)`` float64 each: baseline ``b``, effect ``tau``,
    propensity ``e = P(W = 1 | x)`` and ``e_control = 1 - e`` (computed in a cancellation-free
    form), potential-outcome means ``mu0 = b - tau/2`` and ``mu1 = b + tau/2``."""

    b: jax.Array
    tau: jax.Array
    e: jax.Array
    e_control: jax.Array
    mu0: jax.Array
    mu1: jax.Array


class NieWagerDraw(NamedTuple):
    """One raw draw: features ``x (n, d)``, treatment ``w (n,)`` int32 in {0, 1}, outcome
    ``y (n,)`` and the :class:`NieWagerSurfaces` at ``x``."""

    x: jax.Array
    w: jax.Array
    y: jax.Array
    surfaces: NieWagerSurfaces


def _relu(z: jax.Array) -> jax.Array:
    return jnp.maximum(z, 0.0)


def _surfaces(setup: str, x: jax.Array) -> NieWagerSurfaces:
    """The formulas of the module docstring; ``x[:, j]`` is the paper's ``X_{j+1}``."""
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    if setup == "A":
        x4, x5 = x[:, 3], x[:, 4]
        s = jnp.sin(jnp.pi * x1 * x2)
        b = s + 2.0 * (x3 - 0.5) ** 2 + x4 + 0.5 * x5
        e = jnp.clip(s, _TRIM, 1.0 - _TRIM)
        e_control = 1.0 - e  # e in [0.1, 0.9]: no cancellation
        tau = 0.5 * (x1 + x2)
    elif setup == "B":
        x4, x5 = x[:, 3], x[:, 4]
        b = jnp.maximum(jnp.maximum(x1 + x2, x3), 0.0) + _relu(x4 + x5)
        e = jnp.full_like(x1, 0.5)
        e_control = e
        tau = x1 + jax.nn.softplus(x2)
    elif setup == "C":
        b = 2.0 * jax.nn.softplus(x1 + x2 + x3)
        e = jax.nn.sigmoid(-(x2 + x3))  # 1 / (1 + exp(X2 + X3))
        e_control = jax.nn.sigmoid(x2 + x3)
        tau = jnp.ones_like(x1)
    else:  # "D"
        x4, x5 = x[:, 3], x[:, 4]
        b = 0.5 * (_relu(x1 + x2 + x3) + _relu(x4 + x5))
        log_u = jnp.logaddexp(-x1, -x2)  # u = exp(-X1) + exp(-X2), e = 1 / (1 + u)
        e = jax.nn.sigmoid(-log_u)
        e_control = jax.nn.sigmoid(log_u)
        tau = _relu(x1 + x2 + x3) - _relu(x4 + x5)
    return NieWagerSurfaces(b=b, tau=tau, e=e, e_control=e_control, mu0=b - 0.5 * tau,
                            mu1=b + 0.5 * tau)


@float64
def nie_wager_surfaces(setup: Setup, x: Any) -> NieWagerSurfaces:
    """``b, tau, e, 1 - e, mu0, mu1`` of ``setup`` at the rows of ``x (n, d)`` (float64)."""
    _check_setup(setup, "setup")
    xa = jnp.asarray(x, dtype=jnp.float64)
    if xa.ndim != 2 or xa.shape[1] < MIN_FEATURES[setup]:
        fail("x", f"setup {setup} needs shape (n, d >= {MIN_FEATURES[setup]}), got {xa.shape}",
             f"pass at least {MIN_FEATURES[setup]} feature columns")
    return _surfaces(setup, xa)


def _covariates(key: jax.Array, setup_index: jax.Array, n: int, d: int) -> jax.Array:
    """``U(0, 1)`` entries for setup A (index 0), ``N(0, 1)`` for the others."""
    return jax.lax.cond(setup_index == 0,
                        lambda k: jax.random.uniform(k, (n, d), dtype=jnp.float64),
                        lambda k: jax.random.normal(k, (n, d), dtype=jnp.float64), key)


_covariates_jit = jax.jit(_covariates, static_argnames=("n", "d"))


@float64
def sample_covariates(key: jax.Array, config: NieWagerConfig) -> jax.Array:
    """``X (n, d)``: ``U(0, 1)^d`` rows for setup A, ``N(0, I_d)`` rows for B, C and D."""
    _check_config(config)
    return _covariates_jit(key, jnp.int32(SETUPS.index(config.setup)), config.n, config.d)


def _unreachable(x: jax.Array) -> NieWagerSurfaces:
    """Placeholder branch for a setup that needs more than ``d`` features (never selected: the
    config requires ``d >= MIN_FEATURES[setup]``)."""
    z = jnp.full(x.shape[:1], jnp.nan, dtype=x.dtype)
    return NieWagerSurfaces(z, z, z, z, z, z)


@functools.partial(jax.jit, static_argnames=("n", "d", "uniform"))
def _draw(key: jax.Array, setup_index: jax.Array, n: int, d: int,
          sigma: jax.Array, uniform: bool = False) -> NieWagerDraw:
    """One compilation per ``(n, d)`` serves all four setups: the setup is a traced index
    selecting the covariate law (``lax.cond``) and the surfaces (``lax.switch``). ``uniform``:
    treatment with probability 1/2 (a randomised re-logging of the same world) in place of
    ``e(x)``; the surfaces' ``e`` and ``e_control`` are then 1/2."""
    k_x, k_w, k_eps = jax.random.split(key, 3)
    x = _covariates(k_x, setup_index, n, d)
    branches = [functools.partial(_surfaces, st) if d >= MIN_FEATURES[st] else _unreachable
                for st in SETUPS]
    s = jax.lax.switch(setup_index, branches, x)
    if uniform:
        half = jnp.full_like(s.e, 0.5)
        s = s._replace(e=half, e_control=half)
    w = (jax.random.uniform(k_w, (n,), dtype=jnp.float64) < s.e).astype(jnp.int32)
    eps = jax.random.normal(k_eps, (n,), dtype=jnp.float64)
    y = s.b + (w - 0.5) * s.tau + sigma * eps
    return NieWagerDraw(x=x, w=w, y=y, surfaces=s)


def _check_config(config: Any) -> None:
    if not isinstance(config, NieWagerConfig):
        fail("config", f"expected NieWagerConfig, got {type(config).__name__}",
             "pass NieWagerConfig(setup=..., n=..., d=..., sigma=...)")


LOGGINGS: tuple[str, ...] = ("native", "uniform")


def _check_logging(logging: Any) -> bool:
    """Whether ``logging`` asks for the uniform re-logging (``ValueError`` if unknown)."""
    if logging not in LOGGINGS:
        fail("logging", f"unknown {logging!r}", "use 'native' (the setup's propensity e(x)) or "
             "'uniform' (treatment with probability 1/2)")
    return logging == "uniform"


@float64
def nie_wager_arrays(key: jax.Array, config: NieWagerConfig, *,
                     logging: str = "native") -> NieWagerDraw:
    """The pure draw (``jit``-compiled; ``vmap`` it over keys for a batch): ``X`` from
    :func:`sample_covariates`' law, ``W = 1{U < e(X)}`` with ``U ~ U(0, 1)`` (so
    ``P(W = 1 | X) = e(X)``), ``Y = b + (W - 1/2) tau + sigma eps``; the key is split into three
    streams (``x``, ``w``, ``eps``)."""
    _check_config(config)
    return _draw(key, jnp.int32(SETUPS.index(config.setup)), config.n, config.d,
                 jnp.float64(config.sigma), _check_logging(logging))


@float64
def nie_wager_logged_data(key: jax.Array, config: NieWagerConfig, *,
                          logging: str = "native") -> LoggedData:
    """One validated binary-action :class:`LoggedData` (NumPy arrays) of ``config`` drawn from
    ``key``, with its truth; the field mapping is in the module docstring. ``logging``:
    ``"native"`` (the setup's propensity ``e(x)``) or ``"uniform"`` (probability 1/2 each: the
    same users and outcome surfaces, re-logged by a randomised trial)."""
    draw = nie_wager_arrays(key, config, logging=logging)
    s = draw.surfaces
    n = config.n
    mu = np.column_stack([np.asarray(s.mu0), np.asarray(s.mu1)])
    tau = np.asarray(s.tau)
    rtype = np.where(tau > 0, _PERSUADABLE, np.where(tau < 0, _SLEEPING_DOG, _LOST_CAUSE))
    y = np.asarray(draw.y)
    truth = Truth(mu_value=mu, mu_cost=np.zeros((n, 2)), mu_value_accounting=mu.copy(),
                  response_type=rtype.astype(np.int32))
    return LoggedData(
        x=np.asarray(draw.x), segment=np.zeros(n, np.int32), period=np.zeros(n, np.int32),
        eligible=np.ones((n, 2), bool), action=np.asarray(draw.w),
        action_prob=np.column_stack([np.asarray(s.e_control), np.asarray(s.e)]),
        value=y, value_accounting=y.copy(), cost=np.zeros(n),
        redemption_lag=np.full(n, -1, np.int32), other_actions=np.zeros((n, 0), np.int32),
        face_value=np.zeros(2), truth=truth,
    )
