r"""A semi-synthetic Hillstrom world: the real e-mail test's customers, fitted responses, truth.

In the spirit of IHDP (Hill 2011): the covariates and their joint law are real, the response
surfaces are models fitted to the real outcomes, so every expectation is known exactly. The real
data are the MineThatData e-mail experiment (Hillstrom 2008; :mod:`simulators.hillstrom`):
``N = 64,000`` customers randomised 1/3 each to no e-mail (action 0), the men's e-mail (1) and the
women's e-mail (2), with the two-week outcomes visit, conversion and spend.

**Users.** A world user is a row of the vendored real file drawn uniformly with replacement
(``row ~ U{0..N-1}`` from ``jax.random``), carrying its features ``x`` (the loader's ``FEATURES``:
recency, log_history, mens, womens, newbie, zip_*, channel_*) and its lifecycle segment (the
loader's rule: 0 new if ``newbie``, 1 active if recency <= 6 months, 2 lapsed). So the covariate
law is the empirical joint law of the real customers.

**Design.** ``phi(x) = [1, (recency - m_r)/s_r, (log_history - m_h)/s_h, mens, womens, newbie,
zip_suburban, zip_urban, channel_web, channel_multichannel]`` (``p = 10``; the two continuous
features standardised by their real mean and sd; rural and phone are the reference levels, so the
one-hot blocks are not collinear with the intercept). Every fit below leaves its intercepts
unpenalised (so a fitted arm reproduces its real arm's mean through the score equations) and puts
a Gaussian prior ``N(0, prior_sd^2)`` on the other shared coefficients (``prior_sd = 10``: a light
L2 penalty that only keeps the optimum unique).

**Response surfaces** (``sigma(z) = 1 / (1 + e^{-z})``):

- Visit, a logistic regression per arm (separate coefficients: 2,262 / 3,894 / 3,238 visits per
  arm are ample for 10 parameters each, and the arms' coefficients differ, which is the
  heterogeneity): ``v(x, a) = P(visit | x, a) = sigma(phi(x) . theta_a)``, each ``theta_a`` the
  penalised MLE on the rows of arm ``a``.
- Conversion given a visit, one **pooled** logistic regression on the visitors:
  ``c(x, a) = P(conversion | visit, x, a) = sigma(phi(x) . beta + alpha_a + phi_-(x) . gamma_a)``
  with ``alpha_0 = gamma_0 = 0``, arm intercepts ``alpha_1, alpha_2`` (unpenalised) and arm x
  feature interactions ``gamma_a`` (``phi_-`` = ``phi`` without the intercept) under the tighter
  prior ``N(0, interaction_prior_sd^2)`` (0.5). Pooled rather than per arm because there are only
  578 conversions (122 / 267 / 189): ten free coefficients per arm would leave about 12 events per
  parameter in the control arm and fit noise into the effects; pooling lets the arms share the
  slopes and keeps only the heterogeneity the data support. Conversion needs a visit (the real
  file has no conversion without one), so ``P(conversion | x, a) = v c``.
- Spend given a conversion, log-normal with a per-arm intercept:
  ``log spend = phi(x) . b + delta_a + s eps``, ``eps ~ N(0, 1)``, ``delta_0 = 0``, fitted in
  closed form by ridge least squares on the 578 converters' log spend (prior ``N(0, (s
  prior_sd)^2)`` on the non-intercept slopes, i.e. ridge ``lambda = 1/prior_sd^2``), ``s^2`` the
  residual variance with ``n - q`` degrees of freedom (``q = 12`` coefficients). The arms share
  the slopes because spend per converter barely differs between them (114 / 114 / 122). Hence
  ``E[spend | conversion, x, a] = exp(m(x, a) + s^2/2)`` with ``m = phi . b + delta_a``; draws are
  positive, sampled from that law (the real spend, 29.99..499, is bounded; the log-normal is not).

**Truth.** ``mu_value(x, a) = E[spend | x, a] = v(x, a) c(x, a) exp(m(x, a) + s^2/2)``;
``value = value_accounting =`` the sampled spend (0 without a conversion; no longer horizon), so
``mu_value_accounting = mu_value``.

**Costs** (the real test had none; documented choice). Every e-mailed user costs
``cost_per_email``, and an e-mailed user who converts redeems a coupon worth ``discount`` times
his spend: ``cost = 1{a > 0} (cost_per_email + discount * spend)``, so
``mu_cost(x, a) = 1{a > 0} (cost_per_email + discount * mu_value(x, a))``, ``mu_cost(x, 0) = 0``.
Defaults ``cost_per_email = 0.1`` (the sending cost the real suite
:mod:`experiments.suites.hillstrom` prices its budget with; a seventh of the men's e-mail's mean
spend lift of about 0.70) and ``discount = 0.1`` (a 10 % coupon). With them nearly every user is
worth an e-mail on average (about 1.6 % are not), so the problem is the budget: whom to e-mail and
with which e-mail when only a share can be. The coupon makes the cost heterogeneous and
correlated with the value (a sure spender is expensive: the coupon pays on spend he would have
made anyway), so the cost-aware ranking differs from the uplift ranking and a cost head has
something to learn; ``discount = 0`` gives the constant-cost variant.

**Log fields.** ``action`` uniform on {0, 1, 2} (the real design; ``logging="native"`` and
``"uniform"`` are the same), ``action_prob = 1/3``; ``eligible`` all True; ``period = 0``;
``redemption_lag = 0`` for an e-mailed converter when ``discount > 0`` (the coupon is redeemed in
the window), else -1; ``other_actions`` shape ``(n, 0)``; ``face_value = [0, cost_per_email,
cost_per_email]`` (the liability issued per e-mail; the coupon's worth is unknown until spent);
``truth.response_type`` from the sign of the best e-mail's effect ``max_{a>0} (mu_value(x, a) -
mu_value(x, 0))``: 1 persuadable if > 0, 3 sleeping dog if < 0, 2 lost cause if 0.

The fit is deterministic (SciPy L-BFGS-B on the penalised log-likelihoods, closed form for the
spend), from the vendored checksum-verified file (not ``$ALLOCBENCH_HILLSTROM``), once per process
and penalty setting. The draw (:func:`hillstrom_world_arrays`) is a ``jit``-compiled gather of
the precomputed per-row surfaces plus outcome draws from ``jax.random`` and the caller's key only
(the config carries no seed); ``jax.vmap`` it over keys for a batch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from estimators.checks import check_int, check_real, fail
from estimators.precision import float64
from simulators.data import LoggedData, Truth
from simulators.hillstrom import _DATASETS, FEATURES, load_hillstrom
from simulators.world import TYPE_NAMES

__all__ = [
    "DESIGN",
    "LOGGINGS",
    "REFERENCE",
    "HillstromFit",
    "HillstromWorldConfig",
    "HillstromWorldDraw",
    "HillstromWorldSurfaces",
    "hillstrom_fit",
    "hillstrom_world_arrays",
    "hillstrom_world_logged_data",
    "hillstrom_world_surfaces",
    "n_actions",
]

N_ACTIONS = 3
LOGGINGS: tuple[str, ...] = ("native", "uniform")
# Columns of phi(x): intercept, the two standardised continuous features, then the binary ones
# (rural zip and phone channel are the reference levels).
DESIGN: tuple[str, ...] = ("intercept", "recency_std", "log_history_std", "mens", "womens",
                           "newbie", "zip_suburban", "zip_urban", "channel_web",
                           "channel_multichannel")
_CONTINUOUS = (FEATURES.index("recency"), FEATURES.index("log_history"))
_BINARY = tuple(FEATURES.index(f) for f in DESIGN[3:])
_P = len(DESIGN)
_PERSUADABLE = TYPE_NAMES.index("persuadable")
_LOST_CAUSE = TYPE_NAMES.index("lost_cause")
_SLEEPING_DOG = TYPE_NAMES.index("sleeping_dog")
_VENDORED = _DATASETS / "hillstrom.csv.gz"


def _check_number(name: str, value: Any, *, low: float, high: float | None = None,
                  low_open: bool = False, fix: str) -> None:
    """``value`` must be a finite real (not a bool) in ``[low, high)`` (``(low, ..`` when
    ``low_open``); else a ``ValueError`` naming ``HillstromWorldConfig.<name>``."""
    check_real(f"HillstromWorldConfig.{name}", value, fix, low=low,
               high=math.inf if high is None else high, low_open=low_open,
               high_open=high is not None)


@dataclasses.dataclass(frozen=True)
class HillstromWorldConfig:
    """The world's cost model and fit penalties (no ``n``, no seed: the size and the key are
    passed to :func:`hillstrom_world_logged_data`).

    ``cost_per_email >= 0``: cost of every e-mail sent (spend units); ``discount`` in ``[0, 1)``:
    coupon share of spend paid when an e-mailed user converts; ``prior_sd > 0``: prior sd of the
    shared non-intercept coefficients (light L2); ``interaction_prior_sd > 0``: prior sd of the
    conversion model's arm x feature interactions. Formulas in the module docstring."""

    cost_per_email: float = 0.1
    discount: float = 0.1
    prior_sd: float = 10.0
    interaction_prior_sd: float = 0.5

    def __post_init__(self) -> None:
        _check_number("cost_per_email", self.cost_per_email, low=0.0,
                      fix="use a finite cost >= 0 per e-mail, e.g. 0.1")
        _check_number("discount", self.discount, low=0.0, high=1.0,
                      fix="use a coupon share of spend in [0, 1), e.g. 0.1 (0: no coupon)")
        _check_number("prior_sd", self.prior_sd, low=0.0, low_open=True,
                      fix="use a finite prior sd > 0, e.g. 10.0 (a light penalty)")
        _check_number("interaction_prior_sd", self.interaction_prior_sd, low=0.0, low_open=True,
                      fix="use a finite prior sd > 0, e.g. 0.5")


def _check_config(config: Any) -> HillstromWorldConfig:
    if not isinstance(config, HillstromWorldConfig):
        fail("config", f"expected HillstromWorldConfig, got {type(config).__name__}",
             "pass HillstromWorldConfig(cost_per_email=..., discount=...)")
    return config


def n_actions(config: HillstromWorldConfig) -> int:
    """``K + 1 = 3``: no e-mail, the men's e-mail, the women's e-mail."""
    _check_config(config)
    return N_ACTIONS


# ----------------------------------------------------------------------------------- the fit
class HillstromFit(NamedTuple):
    """The fitted model (NumPy float64). ``center``/``scale (2,)`` standardise recency and
    log_history; per-arm coefficient rows over :data:`DESIGN`, ``(3, p)`` each:
    ``visit_coef[a] = theta_a``; ``conversion_coef[a] = beta + [alpha_a, gamma_a]`` (the pooled
    fit written per arm); ``log_spend_coef[a] = b + [delta_a, 0..]``; ``spend_sd = s``."""

    center: np.ndarray
    scale: np.ndarray
    visit_coef: np.ndarray
    conversion_coef: np.ndarray
    log_spend_coef: np.ndarray
    spend_sd: float


class _Real(NamedTuple):
    x: np.ndarray
    segment: np.ndarray
    action: np.ndarray
    visit: np.ndarray
    spend: np.ndarray


@functools.cache
def _real() -> _Real:
    """The vendored real file (checksum-verified), loaded once per process."""
    spend = load_hillstrom(_VENDORED, outcome="spend")
    visit = load_hillstrom(_VENDORED, outcome="visit")
    return _Real(x=spend.x, segment=spend.segment, action=spend.action,
                 visit=visit.value, spend=spend.value)


def _design(x: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``phi(x)`` of the module docstring, ``(n, p)``."""
    cont = (x[:, list(_CONTINUOUS)] - center) / scale
    return np.column_stack([np.ones(len(x)), cont, x[:, list(_BINARY)]])


def _logistic_map(design: np.ndarray, y: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Argmin of ``sum softplus(eta) - y eta + 1/2 sum precision theta^2`` (``eta = design
    theta``), by L-BFGS-B from zero with the analytic gradient (a convex, deterministic fit)."""

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ theta
        value = np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(precision * theta**2)
        grad = design.T @ (0.5 * (1.0 + np.tanh(0.5 * eta)) - y) + precision * theta
        return float(value), grad

    res = minimize(objective, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-9, "ftol": 1e-15})
    if not res.success:  # pragma: no cover - the problems are convex and well conditioned
        fail("hillstrom_fit", f"L-BFGS-B did not converge ({res.message})",
             "report this; the penalised logistic fits should always converge")
    return res.x


def _arm_indicators(action: np.ndarray) -> np.ndarray:
    """``(n, 2)`` indicators of the men's and the women's e-mail."""
    return np.column_stack([action == 1, action == 2]).astype(np.float64)


@functools.cache
def _fit(prior_sd: float, interaction_prior_sd: float) -> HillstromFit:
    real = _real()
    cont = real.x[:, list(_CONTINUOUS)]
    center, scale = cont.mean(axis=0), cont.std(axis=0)
    phi = _design(real.x, center, scale)
    light = 1.0 / prior_sd**2
    shared = np.r_[0.0, np.full(_P - 1, light)]  # intercept unpenalised
    # Visit: one logistic regression per arm.
    visit_coef = np.stack([_logistic_map(phi[real.action == a], real.visit[real.action == a],
                                         shared) for a in range(N_ACTIONS)])
    # Conversion | visit: pooled, arm intercepts and penalised arm x feature interactions.
    visitors = real.visit > 0
    arm = _arm_indicators(real.action)
    pooled = np.column_stack([phi, arm, arm[:, :1] * phi[:, 1:], arm[:, 1:] * phi[:, 1:]])
    precision = np.r_[shared, 0.0, 0.0,
                      np.full(2 * (_P - 1), 1.0 / interaction_prior_sd**2)]
    coef = _logistic_map(pooled[visitors], (real.spend[visitors] > 0).astype(np.float64),
                         precision)
    beta, alpha, gamma = coef[:_P], coef[_P:_P + 2], coef[_P + 2:].reshape(2, _P - 1)
    conversion_coef = np.tile(beta, (N_ACTIONS, 1))
    conversion_coef[1:, 0] += alpha
    conversion_coef[1:, 1:] += gamma
    # Spend | conversion: log-normal, shared slopes, per-arm intercept; ridge in closed form.
    buyers = real.spend > 0
    design = np.column_stack([phi, arm])[buyers]
    target = np.log(real.spend[buyers])
    ridge = np.diag(np.r_[shared, 0.0, 0.0])
    b = np.linalg.solve(design.T @ design + ridge, design.T @ target)
    resid = target - design @ b
    spend_sd = float(np.sqrt(resid @ resid / (len(target) - len(b))))
    log_spend_coef = np.tile(b[:_P], (N_ACTIONS, 1))
    log_spend_coef[1:, 0] += b[_P:]
    return HillstromFit(center=center, scale=scale, visit_coef=visit_coef,
                        conversion_coef=conversion_coef, log_spend_coef=log_spend_coef,
                        spend_sd=spend_sd)


def hillstrom_fit(config: HillstromWorldConfig) -> HillstromFit:
    """The fitted response model of ``config``'s penalties (cached per process)."""
    _check_config(config)
    return _fit(float(config.prior_sd), float(config.interaction_prior_sd))


# ------------------------------------------------------------------------------ the surfaces
class HillstromWorldSurfaces(NamedTuple):
    """The world's exact means at the ``N = 64,000`` real rows (NumPy float64; ``(N, 3)`` per
    arm unless noted). A world user is one of these rows, so the population mean of any column
    is its plain mean over the rows.

    ``x (N, 11)`` real features; ``segment (N,)``; ``real_action (N,)`` the arm the real customer
    got (for comparisons with the real outcomes); ``p_visit = v``; ``p_conversion_given_visit =
    c``; ``p_conversion = v c``; ``log_spend_mean = m``; ``spend_given_conversion = exp(m +
    s^2/2)``; ``mu_value``; ``mu_cost``; ``tau_value = mu_value - mu_value[:, :1]``; ``fit``."""

    x: np.ndarray
    segment: np.ndarray
    real_action: np.ndarray
    p_visit: np.ndarray
    p_conversion_given_visit: np.ndarray
    p_conversion: np.ndarray
    log_spend_mean: np.ndarray
    spend_given_conversion: np.ndarray
    mu_value: np.ndarray
    mu_cost: np.ndarray
    tau_value: np.ndarray
    fit: HillstromFit


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _mu_cost(mu_value: Any, cost_per_email: Any, discount: Any) -> Any:
    """``1{a > 0} (cost_per_email + discount * mu_value)`` for a ``(..., 3)`` table (NumPy or
    JAX)."""
    emailed = (np.arange(N_ACTIONS) > 0).astype(np.float64)
    return emailed * (cost_per_email + discount * mu_value)


@functools.cache
def _surfaces(config: HillstromWorldConfig) -> HillstromWorldSurfaces:
    real = _real()
    fit = hillstrom_fit(config)
    phi = _design(real.x, fit.center, fit.scale)
    p_visit = _sigmoid(phi @ fit.visit_coef.T)
    p_cv = _sigmoid(phi @ fit.conversion_coef.T)
    m = phi @ fit.log_spend_coef.T
    spend_conv = np.exp(m + 0.5 * fit.spend_sd**2)
    mu_value = p_visit * p_cv * spend_conv
    mu_cost = _mu_cost(mu_value, config.cost_per_email, config.discount)
    out = HillstromWorldSurfaces(
        x=real.x, segment=real.segment, real_action=real.action, p_visit=p_visit,
        p_conversion_given_visit=p_cv, p_conversion=p_visit * p_cv, log_spend_mean=m,
        spend_given_conversion=spend_conv, mu_value=mu_value, mu_cost=mu_cost,
        tau_value=mu_value - mu_value[:, :1], fit=fit)
    for a in out:  # the cached tables are shared: keep them read-only
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    return out


def hillstrom_world_surfaces(config: HillstromWorldConfig) -> HillstromWorldSurfaces:
    """The fitted model and the exact per-row means on the real rows (cached per config)."""
    return _surfaces(_check_config(config))


# ---------------------------------------------------------------------------------- the draw
class HillstromWorldDraw(NamedTuple):
    """One raw draw of ``n`` users (JAX arrays): ``row (n,)`` the resampled real row, ``x (n,
    11)``, ``segment (n,)``, ``action (n,)`` int32 uniform on {0, 1, 2}, ``visit``/
    ``conversion (n,)`` bool, ``spend (n,)`` (0 without a conversion), ``cost (n,)``, and the
    truth of each user ``mu_value``/``mu_cost (n, 3)``."""

    row: jax.Array
    x: jax.Array
    segment: jax.Array
    action: jax.Array
    visit: jax.Array
    conversion: jax.Array
    spend: jax.Array
    cost: jax.Array
    mu_value: jax.Array
    mu_cost: jax.Array


class _Tables(NamedTuple):
    x: Any
    segment: Any
    p_visit: Any
    p_conversion_given_visit: Any
    log_spend_mean: Any
    mu_value: Any


@functools.partial(jax.jit, static_argnames=("n",))
def _draw(key: jax.Array, tables: _Tables, spend_sd: jax.Array, cost_per_email: jax.Array,
          discount: jax.Array, n: int) -> HillstromWorldDraw:
    """Rows ``~ U{0..N-1}``, actions ``~ U{0, 1, 2}``, ``visit = 1{U < v}``, ``conversion =
    visit 1{U' < c}``, ``spend = conversion exp(m + s eps)``; five key streams."""
    k_row, k_action, k_visit, k_conv, k_spend = jax.random.split(key, 5)
    n_rows = tables.x.shape[0]
    row = jax.random.randint(k_row, (n,), 0, n_rows, dtype=jnp.int32)
    action = jax.random.randint(k_action, (n,), 0, N_ACTIONS, dtype=jnp.int32)
    dtype = tables.mu_value.dtype
    v = tables.p_visit[row, action]
    c = tables.p_conversion_given_visit[row, action]
    visit = jax.random.uniform(k_visit, (n,), dtype=dtype) < v
    conversion = visit & (jax.random.uniform(k_conv, (n,), dtype=dtype) < c)
    eps = jax.random.normal(k_spend, (n,), dtype=dtype)
    spend = jnp.where(conversion, jnp.exp(tables.log_spend_mean[row, action] + spend_sd * eps),
                      0.0)
    cost = jnp.where(action > 0, cost_per_email + discount * spend, 0.0)
    mu_value = tables.mu_value[row]
    return HillstromWorldDraw(row=row, x=tables.x[row], segment=tables.segment[row],
                              action=action, visit=visit, conversion=conversion, spend=spend,
                              cost=cost, mu_value=mu_value,
                              mu_cost=_mu_cost(mu_value, cost_per_email, discount))


def _check_n(n: Any) -> int:
    return check_int("n", n, "pass the number of users to draw, an integer >= 1", low=1)


def _check_logging(logging: Any) -> str:
    if not isinstance(logging, str) or logging not in LOGGINGS:
        fail("logging", f"{logging!r} is not a logging design of the Hillstrom world",
             "use 'native' (the real test's uniform 1/3 per arm) or 'uniform' (the same here)")
    return logging


@float64
def hillstrom_world_arrays(key: jax.Array, config: HillstromWorldConfig,
                           n: int) -> HillstromWorldDraw:
    """The pure draw of ``n`` users from ``key`` (``jit``-compiled per ``n``; ``vmap`` it over
    keys for a batch: ``jax.vmap(lambda k: hillstrom_world_arrays(k, config, n))(keys)``)."""
    s = hillstrom_world_surfaces(config)
    n = _check_n(n)
    tables = _Tables(x=jnp.asarray(s.x), segment=jnp.asarray(s.segment),
                     p_visit=jnp.asarray(s.p_visit),
                     p_conversion_given_visit=jnp.asarray(s.p_conversion_given_visit),
                     log_spend_mean=jnp.asarray(s.log_spend_mean),
                     mu_value=jnp.asarray(s.mu_value))
    dtype = tables.mu_value.dtype
    return _draw(key, tables, jnp.asarray(s.fit.spend_sd, dtype),
                 jnp.asarray(config.cost_per_email, dtype), jnp.asarray(config.discount, dtype),
                 n=n)


@float64
def hillstrom_world_logged_data(key: jax.Array, config: HillstromWorldConfig, n: int, *,
                                logging: Literal["native", "uniform"] | str = "native",
                                ) -> LoggedData:
    """A validated :class:`LoggedData` (NumPy arrays) of ``n`` users drawn from ``key`` with its
    full :class:`Truth`; the field mapping is in the module docstring."""
    _check_config(config)
    _check_logging(logging)
    n = _check_n(n)
    d = hillstrom_world_arrays(key, config, n)
    mu_value = np.asarray(d.mu_value)
    best = (mu_value[:, 1:] - mu_value[:, :1]).max(axis=1)
    rtype = np.where(best > 0, _PERSUADABLE, np.where(best < 0, _SLEEPING_DOG, _LOST_CAUSE))
    action = np.asarray(d.action)
    spend = np.asarray(d.spend)
    redeemed = (action > 0) & np.asarray(d.conversion) & (config.discount > 0)
    truth = Truth(mu_value=mu_value, mu_cost=np.asarray(d.mu_cost),
                  mu_value_accounting=mu_value.copy(), response_type=rtype.astype(np.int32))
    face = np.array([0.0, config.cost_per_email, config.cost_per_email], dtype=np.float64)
    return LoggedData(
        x=np.asarray(d.x), segment=np.asarray(d.segment), period=np.zeros(n, np.int32),
        eligible=np.ones((n, N_ACTIONS), bool), action=action,
        action_prob=np.full((n, N_ACTIONS), 1.0 / N_ACTIONS), value=spend,
        value_accounting=spend.copy(), cost=np.asarray(d.cost),
        redemption_lag=np.where(redeemed, 0, -1).astype(np.int32),
        other_actions=np.zeros((n, 0), np.int32), face_value=face, truth=truth,
    )


REFERENCE = (
    "**Hillstrom semi-synthetic world** (`simulators/hillstrom_world.py`). The customers of the "
    "MineThatData e-mail experiment (Hillstrom, K. (2008), *The MineThatData E-Mail Analytics "
    "And Data Mining Challenge*, MineThatData blog; 64,000 customers randomised 1/3 each to no "
    "e-mail, the men's and the women's e-mail) are resampled with replacement, keeping the real "
    "joint law of their features, and their two-week outcomes are drawn from response surfaces "
    "fitted to the real outcomes, so the truth is exact (in the spirit of IHDP, Hill 2011): "
    "P(visit) a logistic regression per arm; P(conversion | visit) one logistic regression "
    "pooled over the arms (578 conversions) with arm intercepts and L2-penalised arm x feature "
    "interactions; spend | conversion log-normal with shared slopes and a per-arm intercept, "
    "E[spend | x, a] = P(visit) P(conv | visit) exp(m + s^2/2). With the default fit the "
    "world's arm means reproduce the real ones within a standard error: spend 0.675 / 1.371 / "
    "1.097 (real 0.653 / 1.423 / 1.077, s.e. 0.08 / 0.12 / 0.10), visit 0.106 / 0.182 / 0.152 "
    "(real 0.106 / 0.183 / 0.151), conversion 0.0057 / 0.0125 / 0.0089 (real 0.0057 / 0.0125 / "
    "0.0088), for no e-mail / men's / women's. Costs are the world's own (the real test had "
    "none): cost_per_email (default 0.1) per e-mail plus a coupon of discount (default 10 %) of "
    "the spend of an e-mailed converter."
)
