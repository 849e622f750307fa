r"""The synthetic incentive world: parameters as a pytree, pure sampling functions, exact truth.

Generative story for one user (every expectation below is computed exactly, not by Monte Carlo):

1. Lifecycle segment ``s ~ Cat(segment_probs)`` (0 new, 1 active, 2 lapsed); period ``t``.
2. Features: continuous ``x_c = segment_mean[s] + t * covariate_shift + N(0, I)`` and binary
   ``x_b ~ Bernoulli(binary_prob)``; ``x = [x_c, x_b]``.
3. Latent response type: ``u = type_direction . (x_c - segment_mean[s])`` is N(0,1) at t = 0;
   ``z = sqrt(1 - type_noise^2) u + type_noise * eps``; the type is the bucket of ``z`` between the
   normal quantiles of ``type_shares[s]``, so at t = 0 the shares are exactly as configured and
   ``P(type | x)`` is a difference of normal CDFs (used for the truth).
   Types: 0 sure thing (buys anyway, little uplift), 1 persuadable (positive uplift growing with
   offer depth), 2 lost cause (rarely buys, no uplift), 3 sleeping dog (offers reduce purchase).
4. Concurrent programs: ``o_p ~ Bernoulli(program_prob[p, s])``.
5. Purchase in the learning window given action ``a``:
   ``logit p1 = base_logit[type] + segment_logit[s] + purchase_coef . x + season(t)
   + sum_p o_p program_lift[p] * (type == persuadable)
   + effect_scale[type] * segment_effect[s] * depth(a)**effect_curvature * exp(het_coef . x)
     * (1 + effect_drift * t) * prod_p (1 - sub_additivity[p] * o_p)``.
6. Basket ``B(x, a) = exp(log_basket + basket_coef . x + segment_basket[s]) * (1 + basket_lift *
   depth(a))`` with log-normal noise (mean preserved); value = purchase * basket * margin.
7. Cost as caused by the offer: a purchaser holding offer ``a`` redeems it with probability
   ``rho = min(1, redeem_prob[a] * (1 + cost_drift * t)) * prod_p (1 - cannibalisation[p] o_p)``,
   paying ``face_value[a]``. Sure things redeem too. Redemption lags ``Geometric`` periods
   (mean ``redemption_lag_mean``): issued liability = face value, expected liability = E[cost],
   realised spend by a date = redemptions up to that date.
8. Accounting horizon: a second window adds a purchase with probability
   ``q2 * (1 - pull_forward * purchase1)`` (an induced purchase pulls the next one forward) and a
   noisier basket; ``value_accounting = value + margin * purchase2 * basket2``.

``mu_value[i, a] = sum_type P(type|x_i) p1 B margin``;
``mu_cost = sum_type P(type|x) p1 rho face``;
``mu_value_accounting = mu_value + sum_type P(type|x) q2 (1 - pull_forward p1) B2 margin``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from estimators.checks import ROW_SUM_ATOL, fail
from estimators.precision import float64

__all__ = [
    "N_SEGMENTS",
    "N_TYPES",
    "SEGMENT_NAMES",
    "TYPE_NAMES",
    "Users",
    "WorldConfig",
    "WorldParams",
    "default_params",
    "expected_outcomes",
    "sample_outcomes",
    "sample_users",
    "type_probabilities",
    "validate_params",
]

SEGMENT_NAMES = ("new", "active", "lapsed")
TYPE_NAMES = ("sure_thing", "persuadable", "lost_cause", "sleeping_dog")
N_SEGMENTS = len(SEGMENT_NAMES)
N_TYPES = len(TYPE_NAMES)
PERSUADABLE = 1


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Static sizes of a world (hashable; a jit static argument)."""

    n_continuous: int = 6
    n_binary: int = 4
    n_offers: int = 4
    n_programs: int = 2

    def __post_init__(self) -> None:
        for name in ("n_continuous", "n_binary", "n_offers", "n_programs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                fail(f"WorldConfig.{name}", f"must be an integer, got {value!r} "
                     f"({type(value).__name__})", f"pass a whole number, e.g. {name}=4")
        for name in ("n_continuous", "n_offers"):
            if getattr(self, name) < 1:
                fail(f"WorldConfig.{name}", f"must be >= 1, got {getattr(self, name)}",
                     "use at least one")
        for name in ("n_binary", "n_programs"):
            if getattr(self, name) < 0:
                fail(f"WorldConfig.{name}", f"must be >= 0, got {getattr(self, name)}",
                     "use 0 or more")

    @property
    def n_features(self) -> int:
        return self.n_continuous + self.n_binary

    @property
    def n_actions(self) -> int:
        return self.n_offers + 1


class WorldParams(NamedTuple):
    """All numeric parameters of a world (a pytree: vmap or grad over any of them)."""

    face_value: jax.Array  # (K+1,) face value paid on redemption; 0 for no-offer
    eligibility_prob: jax.Array  # (S, K+1) P(offer eligible | segment); column 0 = 1
    segment_probs: jax.Array  # (S,)
    segment_mean: jax.Array  # (S, d_c)
    binary_prob: jax.Array  # (d_b,)
    type_shares: jax.Array  # (S, 4) response-type shares per segment at period 0
    type_direction: jax.Array  # (d_c,) unit vector
    type_noise: jax.Array  # () in (0, 1)
    base_logit: jax.Array  # (4,)
    segment_logit: jax.Array  # (S,)
    purchase_coef: jax.Array  # (d,)
    effect_scale: jax.Array  # (4,) logit effect of the deepest offer, per type
    segment_effect: jax.Array  # (S,)
    effect_curvature: jax.Array  # () diminishing returns in offer depth
    het_coef: jax.Array  # (d,) feature-driven effect heterogeneity
    log_basket: jax.Array  # ()
    basket_coef: jax.Array  # (d,)
    segment_basket: jax.Array  # (S,)
    basket_lift: jax.Array  # ()
    basket_sigma: jax.Array  # () log-normal noise of the basket
    margin: jax.Array  # ()
    redeem_prob: jax.Array  # (K+1,) P(redeem | purchase, offer); 0 for no-offer
    redemption_lag_mean: jax.Array  # () mean lag in periods (geometric)
    window2_logit: jax.Array  # () offset of second-window purchase logit
    window2_basket: jax.Array  # () basket multiplier in the second window
    window2_sigma: jax.Array  # () noisier basket in the second window
    pull_forward: jax.Array  # () share of next purchases pulled forward
    program_prob: jax.Array  # (P, S)
    program_lift: jax.Array  # (P,)
    sub_additivity: jax.Array  # (P,)
    cannibalisation: jax.Array  # (P,)
    covariate_shift: jax.Array  # (d_c,) per period
    effect_drift: jax.Array  # () relative change of effects per period
    cost_drift: jax.Array  # () relative change of redemption per period
    season_amplitude: jax.Array  # () on the purchase logit
    season_length: jax.Array  # () periods per cycle


@float64
def default_params(config: WorldConfig = WorldConfig(), *, seed: int = 0) -> WorldParams:
    """The embedded default world: moderate uplift, all four response types, real frictions.

    ``seed`` is the world's identity, not a source of hidden randomness: it draws the fixed
    coefficient vectors (``type_direction``, ``segment_mean``, ``binary_prob``,
    ``purchase_coef``, ``basket_coef``, ``program_prob``) once, deterministically, so
    ``default_params(config, seed=s)`` is the same world on every call and machine, and worlds of
    one config are a family indexed by ``seed`` (``seed=0`` is the embedded default world every
    suite and test uses). Users, logs and outcomes are drawn separately, from the explicit keys
    passed to :func:`sample_users` / :func:`simulators.simulate.simulate`. The leaves are float64.
    """
    rng = np.random.default_rng(seed)
    d_c, d_b, k, p = config.n_continuous, config.n_binary, config.n_offers, config.n_programs
    d = d_c + d_b
    face = np.concatenate([[0.0], np.linspace(5.0, 20.0, k)])
    elig = np.ones((N_SEGMENTS, k + 1))
    elig[:, 1:] = 0.9
    elig[0, -1] = 0.0  # new users never get the deepest offer
    direction = rng.normal(size=d_c)
    direction /= np.linalg.norm(direction)
    het = np.zeros(d)
    het[: min(2, d_c)] = [0.35, -0.25][: min(2, d_c)]
    f = np.float64
    return WorldParams(
        face_value=jnp.asarray(face),
        eligibility_prob=jnp.asarray(elig),
        segment_probs=jnp.asarray([0.25, 0.5, 0.25]),
        segment_mean=jnp.asarray(rng.normal(scale=0.5, size=(N_SEGMENTS, d_c))),
        binary_prob=jnp.asarray(rng.uniform(0.2, 0.6, size=d_b)),
        type_shares=jnp.asarray([
            [0.15, 0.45, 0.30, 0.10],  # new: many persuadables
            [0.40, 0.25, 0.15, 0.20],  # active: sure things and sleeping dogs
            [0.10, 0.35, 0.45, 0.10],  # lapsed: lost causes and persuadables
        ]),
        type_direction=jnp.asarray(direction),
        type_noise=jnp.asarray(f(0.6)),
        base_logit=jnp.asarray([1.2, -2.2, -3.5, -0.4]),
        segment_logit=jnp.asarray([0.0, 0.4, -0.6]),
        purchase_coef=jnp.asarray(rng.normal(scale=0.15, size=d)),
        effect_scale=jnp.asarray([0.15, 2.4, 0.05, -1.4]),
        segment_effect=jnp.asarray([1.25, 0.8, 1.1]),
        effect_curvature=jnp.asarray(f(0.6)),
        het_coef=jnp.asarray(het),
        log_basket=jnp.asarray(f(np.log(60.0))),
        basket_coef=jnp.asarray(rng.normal(scale=0.1, size=d)),
        segment_basket=jnp.asarray([-0.1, 0.15, 0.0]),
        basket_lift=jnp.asarray(f(0.1)),
        basket_sigma=jnp.asarray(f(0.7)),
        margin=jnp.asarray(f(0.35)),
        redeem_prob=jnp.asarray(np.concatenate([[0.0], np.full(k, 0.85)])),
        redemption_lag_mean=jnp.asarray(f(1.0)),
        window2_logit=jnp.asarray(f(-0.3)),
        window2_basket=jnp.asarray(f(1.0)),
        window2_sigma=jnp.asarray(f(1.1)),
        pull_forward=jnp.asarray(f(0.5)),
        program_prob=jnp.asarray(rng.uniform(0.1, 0.4, size=(p, N_SEGMENTS))),
        program_lift=jnp.asarray(np.full(p, 0.6)),
        sub_additivity=jnp.asarray(np.full(p, 0.4)),
        cannibalisation=jnp.asarray(np.full(p, 0.3)),
        covariate_shift=jnp.asarray(np.r_[0.15, np.zeros(d_c - 1)]),
        effect_drift=jnp.asarray(f(-0.05)),
        cost_drift=jnp.asarray(f(0.04)),
        season_amplitude=jnp.asarray(f(0.2)),
        season_length=jnp.asarray(f(12.0)),
    )


class Users(NamedTuple):
    """Sampled users and everything about them that does not depend on the action."""

    x: jax.Array  # (n, d)
    segment: jax.Array  # (n,) int
    period: jax.Array  # (n,) int
    eligible: jax.Array  # (n, K+1) bool
    other_actions: jax.Array  # (n, P) int
    type_score: jax.Array  # (n,) u, the observable part of the latent type score
    response_type: jax.Array  # (n,) int, the realised latent type


def _standardised_continuous(params: WorldParams, users_x_c, segment):
    return users_x_c - params.segment_mean[segment]


@float64
def sample_users(
    key: jax.Array, params: WorldParams, config: WorldConfig, n: int, period: jax.Array | int = 0
) -> Users:
    """Draw ``n`` users at ``period`` (an int, or an (n,) int array for mixed periods)."""
    k_seg, k_xc, k_xb, k_type, k_elig, k_prog = jax.random.split(key, 6)
    period = jnp.broadcast_to(jnp.asarray(period, dtype=jnp.int32), (n,))
    segment = jax.random.categorical(k_seg, jnp.log(params.segment_probs), shape=(n,))
    noise = jax.random.normal(k_xc, (n, config.n_continuous))
    x_c = params.segment_mean[segment] + noise + period[:, None] * params.covariate_shift
    x_b = jax.random.bernoulli(k_xb, params.binary_prob, (n, config.n_binary)).astype(x_c.dtype)
    x = jnp.concatenate([x_c, x_b], axis=1)
    u = _standardised_continuous(params, x_c, segment) @ params.type_direction
    s = params.type_noise
    z = jnp.sqrt(1.0 - s**2) * u + s * jax.random.normal(k_type, (n,))
    cuts = ndtri(jnp.clip(jnp.cumsum(params.type_shares, axis=1)[:, :-1], 1e-12, 1 - 1e-12))
    response_type = jnp.sum(z[:, None] > cuts[segment], axis=1)
    elig = jax.random.uniform(k_elig, (n, config.n_actions)) < params.eligibility_prob[segment]
    elig = elig.at[:, 0].set(True)
    other = jax.random.uniform(k_prog, (n, config.n_programs)) < params.program_prob.T[segment]
    return Users(x, segment, period, elig, other.astype(jnp.int32), u, response_type)


@float64
def type_probabilities(params: WorldParams, users: Users) -> jax.Array:
    """``P(type | x, segment)`` of shape (n, 4): differences of normal CDFs."""
    s = params.type_noise
    cuts = ndtri(jnp.clip(jnp.cumsum(params.type_shares, axis=1)[:, :-1], 1e-12, 1 - 1e-12))
    c = cuts[users.segment]  # (n, 3)
    mean = jnp.sqrt(1.0 - s**2) * users.type_score
    cdf = ndtr((c - mean[:, None]) / s)
    cdf = jnp.concatenate([jnp.zeros_like(mean)[:, None], cdf, jnp.ones_like(mean)[:, None]], 1)
    return jnp.diff(cdf, axis=1)


class _Components(NamedTuple):
    p1: jax.Array  # (n, 4, K+1) purchase probability per type and action
    basket: jax.Array  # (n, K+1) expected basket given purchase
    rho: jax.Array  # (n, K+1) redemption probability given purchase
    q2: jax.Array  # (n, 4) second-window purchase probability (without pull-forward)
    basket2: jax.Array  # (n,) expected second-window basket


def _components(params: WorldParams, users: Users) -> _Components:
    depth = params.face_value / jnp.max(params.face_value)
    t = users.period.astype(params.margin.dtype)
    other = users.other_actions.astype(params.margin.dtype)
    season = params.season_amplitude * jnp.sin(2 * jnp.pi * t / params.season_length)
    base = (params.base_logit[None, :] + (params.segment_logit[users.segment]
            + users.x @ params.purchase_coef + season)[:, None])  # (n, 4)
    persuadable = (jnp.arange(N_TYPES) == PERSUADABLE).astype(base.dtype)
    base = base + (other @ params.program_lift)[:, None] * persuadable[None, :]
    dampen = jnp.prod(1.0 - params.sub_additivity[None, :] * other, axis=1)  # (n,)
    unit_effect = (params.segment_effect[users.segment] * jnp.exp(users.x @ params.het_coef)
                   * (1.0 + params.effect_drift * t) * dampen)  # (n,)
    shape = depth ** params.effect_curvature  # (K+1,), 0 for no-offer
    logit = (base[:, :, None] + params.effect_scale[None, :, None]
             * unit_effect[:, None, None] * shape[None, None, :])
    p1 = jax.nn.sigmoid(logit)
    basket0 = jnp.exp(params.log_basket + users.x @ params.basket_coef
                      + params.segment_basket[users.segment])
    basket = basket0[:, None] * (1.0 + params.basket_lift * depth[None, :])
    cannibal = jnp.prod(1.0 - params.cannibalisation[None, :] * other, axis=1)
    rho = (jnp.minimum(1.0, params.redeem_prob[None, :] * (1.0 + params.cost_drift * t[:, None]))
           * cannibal[:, None])
    q2 = jax.nn.sigmoid(base + params.window2_logit)
    return _Components(p1, basket, rho, q2, basket0 * params.window2_basket)


def _truth_from(params: WorldParams, comp: _Components, w: jax.Array):
    p = jnp.einsum("nt,nta->na", w, comp.p1)
    mu_value = p * comp.basket * params.margin
    mu_cost = p * comp.rho * params.face_value[None, :]
    kept = comp.q2[:, :, None] * (1.0 - params.pull_forward * comp.p1)
    second = jnp.einsum("nt,nta->na", w, kept)
    mu_acc = mu_value + second * comp.basket2[:, None] * params.margin
    return mu_value, mu_cost, mu_acc


@float64
def expected_outcomes(params: WorldParams, users: Users):
    """Exact ``(mu_value, mu_cost, mu_value_accounting)``, each (n, K+1), given observables."""
    comp = _components(params, users)
    return _truth_from(params, comp, type_probabilities(params, users))


def _lognormal(key, mean, sigma):
    return mean * jnp.exp(sigma * jax.random.normal(key, mean.shape) - 0.5 * sigma**2)


@float64
def sample_outcomes(key: jax.Array, params: WorldParams, users: Users, action: jax.Array,
                    comp: _Components | None = None):
    """Sample ``(value, value_accounting, cost, redemption_lag)`` for the taken ``action``."""
    comp = _components(params, users) if comp is None else comp
    n = action.shape[0]
    rows = jnp.arange(n)
    k_buy, k_bask, k_red, k_lag, k_buy2, k_bask2 = jax.random.split(key, 6)
    p1 = comp.p1[rows, users.response_type, action]
    buy = jax.random.bernoulli(k_buy, p1)
    basket = _lognormal(k_bask, comp.basket[rows, action], params.basket_sigma)
    value = jnp.where(buy, basket * params.margin, 0.0)
    redeem = buy & jax.random.bernoulli(k_red, comp.rho[rows, action]) & (action > 0)
    cost = jnp.where(redeem, params.face_value[action], 0.0)
    lag_q = params.redemption_lag_mean / (1.0 + params.redemption_lag_mean)  # geometric on {0,1,..}
    lag = jnp.floor(jnp.log(jax.random.uniform(k_lag, (n,), minval=1e-12)) / jnp.log(lag_q))
    lag = jnp.where(redeem, lag, -1).astype(jnp.int32)
    q2 = comp.q2[rows, users.response_type] * (1.0 - params.pull_forward * buy)
    buy2 = jax.random.bernoulli(k_buy2, q2)
    basket2 = _lognormal(k_bask2, comp.basket2, params.window2_sigma)
    value_acc = value + jnp.where(buy2, basket2 * params.margin, 0.0)
    return value, value_acc, cost, lag


# --------------------------------------------------------------------------------- validation
# Value rules per field: "finite" (any finite number), "prob" ([0, 1]), "open_unit" ((0, 1)),
# "positive" (> 0), "nonneg" (>= 0). Shapes use S segments, T types, A = K+1 actions, d_c/d_b/d
# features and P programs.
_PARAM_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "face_value": (("A",), "nonneg"),
    "eligibility_prob": (("S", "A"), "prob"),
    "segment_probs": (("S",), "prob"),
    "segment_mean": (("S", "d_c"), "finite"),
    "binary_prob": (("d_b",), "prob"),
    "type_shares": (("S", "T"), "prob"),
    "type_direction": (("d_c",), "finite"),
    "type_noise": ((), "open_unit"),
    "base_logit": (("T",), "finite"),
    "segment_logit": (("S",), "finite"),
    "purchase_coef": (("d",), "finite"),
    "effect_scale": (("T",), "finite"),
    "segment_effect": (("S",), "finite"),
    "effect_curvature": ((), "positive"),
    "het_coef": (("d",), "finite"),
    "log_basket": ((), "finite"),
    "basket_coef": (("d",), "finite"),
    "segment_basket": (("S",), "finite"),
    "basket_lift": ((), "finite"),
    "basket_sigma": ((), "nonneg"),
    "margin": ((), "finite"),
    "redeem_prob": (("A",), "prob"),
    "redemption_lag_mean": ((), "nonneg"),
    "window2_logit": ((), "finite"),
    "window2_basket": ((), "nonneg"),
    "window2_sigma": ((), "nonneg"),
    "pull_forward": ((), "prob"),
    "program_prob": (("P", "S"), "prob"),
    "program_lift": (("P",), "finite"),
    "sub_additivity": (("P",), "prob"),
    "cannibalisation": (("P",), "prob"),
    "covariate_shift": (("d_c",), "finite"),
    "effect_drift": ((), "finite"),
    "cost_drift": ((), "finite"),
    "season_amplitude": ((), "finite"),
    "season_length": ((), "positive"),
}
_RULES = {  # rule -> (holds elementwise, problem, fix); "finite" needs nothing beyond finiteness
    "prob": (lambda a: (a >= 0) & (a <= 1), "must lie in [0, 1]", "use probabilities"),
    "open_unit": (lambda a: (a > 0) & (a < 1), "must lie strictly inside (0, 1)", "e.g. 0.5"),
    "positive": (lambda a: a > 0, "must be > 0", "use a positive value"),
    "nonneg": (lambda a: a >= 0, "must be >= 0", "use a non-negative value"),
}
_DIM_NAMES = {"S": "n_segments", "T": "n_types", "A": "n_offers+1", "d_c": "n_continuous",
              "d_b": "n_binary", "d": "n_features", "P": "n_programs"}
_UNIT_NORM_ATOL = 1e-6  # |norm(type_direction) - 1|: round-off of a normalised float64 vector


def _param_fail(name: str, problem: str, fix: str) -> NoReturn:
    fail(f"WorldParams.{name}", problem, fix)


def _dim(params: WorldParams, name: str, minimum: int, minus: int = 0) -> int:
    """``len(params.<name>) - minus``, read when no config is given (validated as it is read)."""
    shape = np.shape(getattr(params, name))
    if len(shape) != 1 or shape[0] < minimum:
        _param_fail(name, f"expected a 1-D array of length >= {minimum}, got shape {shape}",
                    "build the parameters with default_params(config) and replace fields")
    return int(shape[0]) - minus


def validate_params(params: WorldParams, config: WorldConfig | None = None) -> None:
    """Raise ``ValueError`` naming the first :class:`WorldParams` field that cannot define a world.

    Checks every field's shape against ``config`` (or, without one, against the sizes the params
    imply: ``K`` from ``face_value``, ``d_c`` from ``type_direction``, ``d_b`` from
    ``binary_prob``, ``P`` from ``program_lift``), that values are finite, that probabilities lie
    in [0, 1], that ``segment_probs`` and each row of ``type_shares`` sum to 1, that
    ``type_direction`` is a unit vector, that ``eligibility_prob[:, 0] == 1``, and that
    ``face_value[0] == 0`` with some offer of positive face value.

    Host-side and cheap (the arrays are tiny). Safe under ``jit``/``vmap``/``grad``: shapes are
    static and always checked, but the values of traced fields are skipped (only concrete arrays
    are inspected), so a caller that traces over the params is never forced to concretise them.
    """
    if not isinstance(params, WorldParams):
        fail("params", f"expected WorldParams, got {type(params).__name__}",
             "build them with default_params(config) and ._replace(...)")
    if config is None:
        config = WorldConfig(n_continuous=_dim(params, "type_direction", 1),
                             n_binary=_dim(params, "binary_prob", 0),
                             n_offers=_dim(params, "face_value", 2, minus=1),
                             n_programs=_dim(params, "program_lift", 0))
    sizes = {"S": N_SEGMENTS, "T": N_TYPES, "A": config.n_actions, "d_c": config.n_continuous,
             "d_b": config.n_binary, "d": config.n_features, "P": config.n_programs}
    values: dict[str, np.ndarray] = {}
    for name, (dims, rule) in _PARAM_RULES.items():
        leaf = getattr(params, name)
        want = tuple(sizes[d] for d in dims)
        if np.shape(leaf) != want:
            names = [_DIM_NAMES[d] for d in dims]
            label = f"({', '.join(names)}{',' * (len(names) == 1)})" if names else "a scalar"
            _param_fail(name, f"expected shape {want} = {label} for {config}, got "
                        f"{np.shape(leaf)}",
                        "make the parameters match the WorldConfig (default_params(config))")
        if isinstance(leaf, jax.core.Tracer):
            continue  # traced under jit/vmap/grad: no concrete values to check
        a = np.asarray(leaf)
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            _param_fail(name, f"dtype {a.dtype} is not numeric", "pass float arrays")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            _param_fail(name, "contains NaN or inf", "use finite values")
        if rule in _RULES:
            holds, problem, fix = _RULES[rule]
            if not holds(a).all():
                _param_fail(name, f"{problem}, got values in [{a.min():.6g}, {a.max():.6g}]", fix)
        values[name] = a
    _check_param_relations(values)


def _check_param_relations(v: dict[str, np.ndarray]) -> None:
    """Constraints across entries of one field (only the concrete fields in ``v``)."""
    if "segment_probs" in v and abs(v["segment_probs"].sum() - 1.0) > ROW_SUM_ATOL:
        _param_fail("segment_probs", f"must sum to 1, got {v['segment_probs'].sum():.6g}",
                    "normalise: segment_probs / segment_probs.sum()")
    if "type_shares" in v:
        sums = v["type_shares"].sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_ATOL)
        if bad.size:
            s = int(bad[0])
            _param_fail("type_shares", f"each segment's {N_TYPES} shares must sum to 1, segment "
                        f"{s} ({SEGMENT_NAMES[s]}) sums to {sums[s]:.6g}",
                        "normalise each row: type_shares / type_shares.sum(1, keepdims=True)")
    if ("type_direction" in v
            and abs(np.linalg.norm(v["type_direction"]) - 1.0) > _UNIT_NORM_ATOL):
        _param_fail("type_direction", f"must be a unit vector (norm 1), got norm "
                    f"{np.linalg.norm(v['type_direction']):.6g}; otherwise the configured "
                    "type_shares do not hold", "divide it by its norm")
    if "eligibility_prob" in v and not (v["eligibility_prob"][:, 0] == 1.0).all():
        _param_fail("eligibility_prob", "column 0 (no offer) must be 1 for every segment",
                    "no-offer is always available; set eligibility_prob[:, 0] = 1")
    if "face_value" in v:
        face = v["face_value"]
        if face[0] != 0.0:
            _param_fail("face_value", f"no-offer (index 0) must have face value 0, got {face[0]}",
                        "set face_value[0] = 0")
        if face.max() <= 0.0:
            _param_fail("face_value", "needs an offer with positive face value (offer depth is "
                        "face_value / max(face_value))", "give the offers positive face values")
