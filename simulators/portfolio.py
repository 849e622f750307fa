r"""Portfolio effects as structure: concurrent programs with targeting policies, exact truth under a
portfolio state, and the bias of a per-program holdout read under one state and deployed in another.

The world (:mod:`simulators.world`) draws the other programs' assignments as independent coin flips
by segment, ``o_p ~ Bernoulli(program_prob[p, s])``, and its truth ``mu(x, a)`` is conditional on
the logged ``o``. Here the programs have **targeting policies** and a **portfolio state** says which
policy each runs (:class:`PortfolioState`). The law, per user with features ``x``, segment ``s``
and latent-type score ``u = Users.type_score`` (a function of ``x`` and ``s``):

    ``logit pi_p(x) = intercept[p] + segment_offset[p, s] + feature_coef[p] . x + score_coef[p] u``
    ``o_p | x ~ Bernoulli(pi_p(x))``, independently across programs given ``(x, s)``;
    our action ``a`` is independent of ``o`` given ``x`` (our holdout randomises it).

``intercept`` sets a program's reach; ``feature_coef`` and ``score_coef`` its targeting. The world's
response model is unchanged: a treated user of program ``p`` gets ``program_lift[p]`` on the
persuadable type's purchase logit, our offer's effect is damped by ``prod_p (1 - sub_additivity[p]
o_p)`` and our redemption cannibalised by ``prod_p (1 - cannibalisation[p] o_p)``. So a program
whose targeting correlates with our uplift (``score_coef``, or ``feature_coef`` along the world's
``het_coef``) takes our offer's effect where it is largest.

Exact truth under a state (nothing here is Monte Carlo): the conditional pieces ``mu(x, a, o)`` are
:func:`simulators.world.expected_outcomes` with ``Users.other_actions`` set to each of the ``2^P``
joint assignments (:func:`joint_outcomes`); the truth of our actions under state ``S`` is their
mixture ``mu_S(x, a) = sum_o P_S(o | x) mu(x, a, o)`` (:func:`portfolio_truth`), which is also what
a learner that never sees ``o`` estimates from a log drawn under ``S``.

**The bias.** A holdout of our offer ``a*`` against no-offer, with ``o`` hidden, under state ``A``
estimates ``L_A = E[mu_A(x, a*) - mu_A(x, 0) | a* eligible]``; deployed under state ``B`` the lift
is ``L_B``; ``bias = L_A_hat - L_B`` (:func:`holdout_lift`, :func:`true_lift`). Designs that read
the lift for ``B`` (:func:`design_lift`): ``independent`` (today's holdout, ``o`` hidden),
``partitioned`` (our experiment on an audience partition no other program touches: reads the
standalone lift ``o = 0``), ``factorial`` (each program randomised ``o_p ~ Bernoulli(1/2)``
independently of ``x`` and of our action, logged: competing-treatment cells reweighted to ``B`` by
``P_B(o | x) / 2^-P``) and ``conditional`` (the log under ``A`` with ``o`` and its propensities
logged, reweighted to ``B`` by ``P_B(o | x) / P_A(o | x)``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import check_int, fail
from estimators.precision import float64
from policies.allocation import allocate
from simulators.data import LoggedData, Truth
from simulators.logging_policies import logging_distribution
from simulators.world import (
    N_SEGMENTS,
    Users,
    WorldConfig,
    WorldParams,
    expected_outcomes,
    sample_outcomes,
    sample_users,
    validate_params,
)

__all__ = [
    "DESIGNS",
    "Coordinated",
    "JointTruth",
    "LiftEstimate",
    "PortfolioState",
    "assignment_probabilities",
    "assignments",
    "coordinated_allocation",
    "design_lift",
    "holdout_lift",
    "joint_action_effects",
    "joint_outcomes",
    "logged_propensity",
    "portfolio_truth",
    "product_policy",
    "program_effect",
    "program_propensity",
    "sample_other_actions",
    "simulate_under_state",
    "true_lift",
    "world_state",
]

DESIGNS = ("independent", "partitioned", "factorial", "conditional")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _vector(name: str, value, length: int | None = None) -> tuple[float, ...]:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"PortfolioState.{name}", f"must be numbers, got {value!r}", "pass a tuple of floats")
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        want = "a 1-D sequence" if length is None else f"length {length} (one per program)"
        fail(f"PortfolioState.{name}", f"expected {want}, got shape {a.shape}",
             "give one number per program")
    if not np.all(np.isfinite(a)):
        fail(f"PortfolioState.{name}", "contains NaN or inf", "use finite values")
    return tuple(float(v) for v in a)


def _matrix(name: str, value, rows: int) -> tuple[tuple[float, ...], ...]:
    if value is None or (isinstance(value, tuple | list) and len(value) == 0):
        return ()
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"PortfolioState.{name}", f"must be numbers, got {value!r}",
             "pass one tuple of floats per program")
    if a.ndim != 2 or a.shape[0] != rows:
        fail(f"PortfolioState.{name}", f"expected shape ({rows}, ...) (one row per program), got "
             f"{a.shape}", "give one row per program, or () for none")
    if not np.all(np.isfinite(a)):
        fail(f"PortfolioState.{name}", "contains NaN or inf", "use finite values")
    return tuple(tuple(float(v) for v in row) for row in a)


@dataclasses.dataclass(frozen=True)
class PortfolioState:
    """Which targeting policy each of the ``P`` other programs runs (see the module docstring).

    ``intercept (P,)`` logit of a program's reach; ``score_coef (P,)`` targeting on the latent
    type score ``u`` (``()`` = untargeted); ``feature_coef (P, d)`` targeting on the features
    (``()`` = none); ``segment_offset (P, S)`` logit offsets per lifecycle segment (``()`` =
    none). Bad values raise ``ValueError`` naming the field."""

    intercept: tuple[float, ...]
    score_coef: tuple[float, ...] = ()
    feature_coef: tuple[tuple[float, ...], ...] = ()
    segment_offset: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        intercept = _vector("intercept", self.intercept)
        p = len(intercept)
        set_ = object.__setattr__
        set_(self, "intercept", intercept)
        score = () if len(tuple(np.ravel(self.score_coef))) == 0 else _vector(
            "score_coef", self.score_coef, p)
        set_(self, "score_coef", score)
        set_(self, "feature_coef", _matrix("feature_coef", self.feature_coef, p))
        seg = _matrix("segment_offset", self.segment_offset, p)
        if seg and len(seg[0]) != N_SEGMENTS:
            fail("PortfolioState.segment_offset", f"expected {N_SEGMENTS} columns (one per "
                 f"segment), got {len(seg[0])}", f"give ({p}, {N_SEGMENTS}) offsets")
        set_(self, "segment_offset", seg)

    @property
    def n_programs(self) -> int:
        return len(self.intercept)

    @classmethod
    def untargeted(cls, reach: tuple[float, ...]) -> PortfolioState:
        """Programs reaching a share ``reach[p]`` of every user at random (``0 < reach < 1``)."""
        r = _vector("intercept", reach)
        if not all(0.0 < v < 1.0 for v in r):
            fail("PortfolioState.intercept", f"reach must lie strictly inside (0, 1), got {r}",
                 "e.g. reach=(0.2, 0.1)")
        return cls(intercept=tuple(_logit(v) for v in r))

    def check(self, params: WorldParams, config: WorldConfig | None = None) -> None:
        """Raise ``ValueError`` naming the field whose size does not match the world."""
        p = int(np.shape(params.program_lift)[0])
        if self.n_programs != p:
            fail("PortfolioState.intercept", f"has {self.n_programs} programs, the world has {p}",
                 "give one entry per program (WorldConfig.n_programs)")
        d = int(np.shape(params.purchase_coef)[0]) if config is None else config.n_features
        if self.feature_coef and len(self.feature_coef[0]) != d:
            fail("PortfolioState.feature_coef", f"has {len(self.feature_coef[0])} columns, the "
                 f"world has {d} features", f"give ({p}, {d}) coefficients or ()")

    def arrays(self, params: WorldParams) -> tuple[jax.Array, ...]:
        """``(intercept (P,), score (P,), features (P, d), segment (P, S))`` with zeros filled."""
        self.check(params)
        p = self.n_programs
        d = int(np.shape(params.purchase_coef)[0])
        score = np.asarray(self.score_coef) if self.score_coef else np.zeros(p)
        feat = np.asarray(self.feature_coef) if self.feature_coef else np.zeros((p, d))
        seg = np.asarray(self.segment_offset) if self.segment_offset else np.zeros((p, N_SEGMENTS))
        return (jnp.asarray(self.intercept), jnp.asarray(score), jnp.asarray(feat),
                jnp.asarray(seg))


def world_state(params: WorldParams) -> PortfolioState:
    """The world's own law (segment coin flips, ``program_prob``) as a portfolio state."""
    prob = np.clip(np.asarray(params.program_prob, dtype=np.float64), 1e-9, 1 - 1e-9)
    return PortfolioState(intercept=tuple(np.zeros(prob.shape[0])),
                          segment_offset=tuple(map(tuple, np.log(prob / (1 - prob)))))


@float64
def program_propensity(params: WorldParams, state: PortfolioState, users: Users) -> jax.Array:
    """``pi_p(x) = P(o_p = 1 | x)`` of shape (n, P) under ``state``."""
    return _propensity(state.arrays(params), users)


def _propensity(arrays: tuple[jax.Array, ...], users: Users) -> jax.Array:
    b, score, feat, seg = arrays
    logit = b[None, :] + seg.T[users.segment] + users.x @ feat.T + users.type_score[:, None] * score
    return jax.nn.sigmoid(logit)


@float64
def sample_other_actions(key: jax.Array, params: WorldParams, state: PortfolioState,
                         users: Users) -> Users:
    """``users`` with ``other_actions`` redrawn under ``state`` (independent given ``x``)."""
    pi = program_propensity(params, state, users)
    o = jax.random.uniform(key, pi.shape, dtype=pi.dtype) < pi
    return users._replace(other_actions=o.astype(jnp.int32))


@float64
def logged_propensity(params: WorldParams, state: PortfolioState, users: Users) -> jax.Array:
    """``P(o_p = logged o_p | x)`` of shape (n, P): each program's logged propensity."""
    pi = program_propensity(params, state, users)
    return jnp.where(users.other_actions > 0, pi, 1.0 - pi)


def assignments(n_programs: int) -> np.ndarray:
    """The ``2^P`` joint on/off assignments of the other programs, (2^P, P) int, row ``j`` the
    binary digits of ``j`` (row 0 = none on)."""
    return np.asarray(list(itertools.product((0, 1), repeat=n_programs)),
                      dtype=np.int32).reshape(2 ** n_programs, n_programs)


@float64
def assignment_probabilities(params: WorldParams, state: PortfolioState,
                             users: Users) -> jax.Array:
    """``P_state(o = assignments[j] | x)`` of shape (n, 2^P); rows sum to 1."""
    pi = program_propensity(params, state, users)
    o = jnp.asarray(assignments(state.n_programs), dtype=pi.dtype)  # (J, P)
    return jnp.prod(o[None] * pi[:, None, :] + (1 - o[None]) * (1 - pi[:, None, :]), axis=2)


class JointTruth(NamedTuple):
    """Exact truth of joint actions: ``[i, j, a]`` is user ``i`` under the other programs'
    assignment ``assignments(P)[j]`` and our action ``a``; each (n, 2^P, K+1)."""

    mu_value: jax.Array
    mu_cost: jax.Array
    mu_value_accounting: jax.Array


@float64
def joint_outcomes(params: WorldParams, users: Users) -> JointTruth:
    """``mu(x, a, o)`` for every joint assignment ``o`` of the other programs (the world's
    :func:`simulators.world.expected_outcomes` with ``other_actions`` set to each; one compiled
    call)."""
    return _joint_outcomes(params, users)


@jax.jit
def _joint_outcomes(params: WorldParams, users: Users) -> JointTruth:
    p = int(np.shape(params.program_lift)[0])
    pieces = []
    for o in assignments(p):
        o_n = jnp.broadcast_to(jnp.asarray(o, dtype=jnp.int32), (users.x.shape[0], p))
        pieces.append(expected_outcomes(params, users._replace(other_actions=o_n)))
    return JointTruth(*(jnp.stack([piece[m] for piece in pieces], axis=1) for m in range(3)))


@float64
def portfolio_truth(params: WorldParams, state: PortfolioState, users: Users,
                    joint: JointTruth | None = None) -> Truth:
    """Our actions' exact truth under ``state``, marginalised over the other programs:
    ``mu_S(x, a) = sum_o P_S(o | x) mu(x, a, o)``, as a :class:`simulators.data.Truth` (so
    :func:`simulators.oracle.policy_truth` scores policies under the state)."""
    joint = joint_outcomes(params, users) if joint is None else joint
    w = assignment_probabilities(params, state, users)
    mix = [jnp.einsum("nj,nja->na", w, m) for m in joint]
    return Truth(*mix, users.response_type.astype(jnp.int32))


class LiftEstimate(NamedTuple):
    """A lift of our offer against no-offer (value and cost per eligible user) with standard
    errors; ``n`` users in the experiment."""

    value: float
    value_se: float
    cost: float
    cost_se: float
    n: int


def true_lift(truth: Truth, users: Users, offer: int) -> tuple[float, float]:
    """Exact ``(value, cost)`` lift of ``offer`` over no-offer, averaged over the users eligible for
    it (the finite-population estimand of a holdout on these users)."""
    e = np.asarray(users.eligible[:, offer])
    tv = np.asarray(truth.mu_value[:, offer] - truth.mu_value[:, 0])
    tc = np.asarray(truth.mu_cost[:, offer] - truth.mu_cost[:, 0])
    return float(tv[e].mean()), float(tc[e].mean())


def _hajek_diff(y: np.ndarray, treated: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted difference in means treated - control and its linearised standard error."""
    out, var = 0.0, 0.0
    for sign, arm in ((1.0, treated), (-1.0, ~treated)):
        ww, yy = w[arm], y[arm]
        m = float(np.sum(ww * yy) / np.sum(ww))
        out += sign * m
        var += float(np.sum(ww**2 * (yy - m) ** 2) / np.sum(ww) ** 2)
    return out, math.sqrt(var)


def _check_offer(params: WorldParams, offer: int) -> int:
    k = int(np.shape(params.face_value)[0]) - 1
    return check_int("offer", offer, "e.g. offer=2", low=1, high=k)


def _experiment(key: jax.Array, params: WorldParams, users: Users, offer: int,
                treat_share: float, o: np.ndarray):
    """Randomise ``offer`` vs no-offer among the users eligible for it, with the other programs'
    assignments ``o``; sample outcomes. Returns the eligible rows, treated mask, value, cost."""
    k_a, k_y = jax.random.split(key)
    e = np.asarray(users.eligible[:, offer])
    treated = np.asarray(jax.random.uniform(k_a, (users.x.shape[0],)) < treat_share)
    action = jnp.asarray(np.where(treated & e, offer, 0), dtype=jnp.int32)
    run_users = users._replace(other_actions=jnp.asarray(o, dtype=jnp.int32))
    value, _, cost, _ = sample_outcomes(k_y, params, run_users, action)
    return e, treated, np.asarray(value), np.asarray(cost)


@float64
def holdout_lift(key: jax.Array, params: WorldParams, state: PortfolioState, users: Users,
                 offer: int, treat_share: float = 0.5) -> LiftEstimate:
    """Our program's lift from its own randomised holdout under ``state`` with the other
    programs' assignments hidden (today's independent per-program holdout)."""
    return design_lift(key, params, "independent", users, offer, state_a=state, state_b=state,
                       treat_share=treat_share)


@float64
def design_lift(key: jax.Array, params: WorldParams, design: str, users: Users, offer: int, *,
                state_a: PortfolioState, state_b: PortfolioState,
                treat_share: float = 0.5) -> LiftEstimate:
    """The lift for deployment under ``state_b`` as read by an experiment ``design`` run while the
    portfolio is in ``state_a`` (see the module docstring; ``partitioned`` reads the standalone
    lift ``o = 0``, ``factorial`` randomises every program, ``conditional`` reweights the ``A`` log
    by ``P_B(o | x) / P_A(o | x)``). Standard errors are linearised (Hajek)."""
    offer = _check_offer(params, offer)
    if design not in DESIGNS:
        fail("design", f"expected one of {DESIGNS}, got {design!r}", "pick one of them")
    if not 0.0 < treat_share < 1.0:
        fail("treat_share", f"must lie in (0, 1), got {treat_share}", "e.g. 0.5")
    state_a.check(params)
    state_b.check(params)
    k_o, k_run = jax.random.split(key)
    n, p = users.x.shape[0], state_a.n_programs
    if design == "partitioned":
        o = np.zeros((n, p), dtype=np.int32)
    elif design == "factorial":
        o = np.asarray(jax.random.bernoulli(k_o, 0.5, (n, p)), dtype=np.int32)
    else:
        o = np.asarray(sample_other_actions(k_o, params, state_a, users).other_actions)
    e, treated, value, cost = _experiment(k_run, params, users, offer, treat_share, o)
    w = np.ones(n)
    if design in ("factorial", "conditional"):
        logged = users._replace(other_actions=jnp.asarray(o))
        p_b = np.prod(np.asarray(logged_propensity(params, state_b, logged)), axis=1)
        p_a = (0.5 ** p if design == "factorial"
               else np.prod(np.asarray(logged_propensity(params, state_a, logged)), axis=1))
        w = p_b / p_a
    t = treated[e]
    v, v_se = _hajek_diff(value[e], t, w[e])
    c, c_se = _hajek_diff(cost[e], t, w[e])
    return LiftEstimate(v, v_se, c, c_se, int(e.sum()))


# ------------------------------------------------------------------ coordinated allocation
def joint_action_effects(joint: JointTruth, eligible, program_cost) -> tuple[np.ndarray, ...]:
    """Effects of the joint actions ``(o, a)`` (column ``j * (K+1) + a``; column 0 = nobody
    treats) against column 0: ``tau_v = mu_v(x, a, o) - mu_v(x, 0, 0)``, ``tau_c = mu_c(x, a, o) -
    mu_c(x, 0, 0) + sum_p o_p program_cost[p]`` (program ``p`` pays ``program_cost[p]`` per treated
    user; our offer's cost is the world's redemption cost), and the eligibility ``(n, J (K+1))``
    (our eligibility, every assignment of the others allowed). Returns ``(tau_v, tau_c, eligible)``.
    """
    mv, mc = np.asarray(joint.mu_value), np.asarray(joint.mu_cost)
    n, n_j, n_a = mv.shape
    o = assignments(round(math.log2(n_j)))
    cost = np.asarray(program_cost, dtype=np.float64)
    if cost.shape != (o.shape[1],) or not np.all(np.isfinite(cost)) or np.any(cost < 0):
        fail("program_cost", f"expected {o.shape[1]} finite values >= 0, got {program_cost!r}",
             "give one cost per treated user per program")
    tv = mv - mv[:, :1, :1]
    tc = mc - mc[:, :1, :1] + (o @ cost)[None, :, None]
    elig = np.broadcast_to(np.asarray(eligible, dtype=bool)[:, None, :], (n, n_j, n_a))
    return tv.reshape(n, -1), tc.reshape(n, -1), elig.reshape(n, -1)


def product_policy(our_dist, program_on) -> np.ndarray:
    """The joint distribution ``(n, J (K+1))`` of independent per-program decisions: our action
    distribution ``(n, K+1)`` times each program's probability of treating ``(n, P)``."""
    our = np.asarray(our_dist, dtype=np.float64)
    on = np.asarray(program_on, dtype=np.float64)
    o = assignments(on.shape[1])
    w = np.prod(np.where(o[None] > 0, on[:, None, :], 1.0 - on[:, None, :]), axis=2)  # (n, J)
    return (w[:, :, None] * our[:, None, :]).reshape(our.shape[0], -1)


@float64
def program_effect(params: WorldParams, state: PortfolioState, users: Users, joint: JointTruth,
                   program: int) -> np.ndarray:
    """Program ``program``'s value effect (on vs off) on users our program leaves at no-offer,
    with the other programs marginalised under ``state`` (its own holdout's read), (n,)."""
    pi = np.asarray(program_propensity(params, state, users))
    o = assignments(state.n_programs)
    mv = np.asarray(joint.mu_value)[:, :, 0]
    others = np.delete(np.arange(state.n_programs), program)
    w = np.ones((pi.shape[0], o.shape[0]))
    for q in others:
        w = w * np.where(o[None, :, q] > 0, pi[:, q:q + 1], 1.0 - pi[:, q:q + 1])
    on = o[:, program] > 0
    return np.sum(w[:, on] * mv[:, on], axis=1) - np.sum(w[:, ~on] * mv[:, ~on], axis=1)


class Coordinated(NamedTuple):
    """True incremental value and cost per user (against nobody treating) of a joint policy."""

    value: float
    cost: float


@float64
def coordinated_allocation(params: WorldParams, state: PortfolioState, users: Users,
                           joint: JointTruth, *, budget_ours: float,
                           budget_programs, program_cost) -> dict[str, Coordinated]:
    """Independent per-program allocations against a joint allocation, on the joint truth.

    ``independent``: each program allocates its own budget (per user: ``budget_ours`` for us,
    ``budget_programs[p]``) through :func:`policies.allocation.allocate` on its own true effects
    read with the other programs in ``state`` (ours: :func:`portfolio_truth`; program ``p``:
    :func:`program_effect`, cost ``program_cost[p]``); their product is scored on the joint
    truth, where the decisions interact. ``joint_shared``: the joint action (our offer x each
    program on/off) through the same allocator under the shared budget (the sum).
    ``joint_matched``: the same at the independent policy's true cost (the independent policy is
    a feasible point of that problem, so its value is never higher)."""
    n = users.x.shape[0]
    elig = np.asarray(users.eligible)
    tv, tc, je = joint_action_effects(joint, elig, program_cost)
    cost = np.asarray(program_cost, dtype=np.float64)
    budgets = np.asarray(budget_programs, dtype=np.float64)
    if budgets.shape != cost.shape or np.any(budgets < 0):
        fail("budget_programs", f"expected {cost.shape[0]} budgets >= 0, got {budget_programs!r}",
             "give one budget per user per program")
    truth = portfolio_truth(params, state, users, joint)
    ours = allocate(np.asarray(truth.tau_value), np.asarray(truth.tau_cost),
                    budget=budget_ours * n, eligible=elig)
    on = np.zeros((n, cost.shape[0]))
    for p in range(cost.shape[0]):
        eff = program_effect(params, state, users, joint, p)
        v2 = np.stack([np.zeros(n), eff], axis=1)
        c2 = np.stack([np.zeros(n), np.full(n, cost[p])], axis=1)
        on[:, p] = np.asarray(allocate(v2, c2, budget=budgets[p] * n).action_dist)[:, 1]

    def score(dist) -> Coordinated:
        return Coordinated(float(np.mean(np.sum(dist * tv, 1))),
                           float(np.mean(np.sum(dist * tc, 1))))

    independent = score(product_policy(ours.action_dist, on))
    shared = budget_ours + float(budgets.sum())
    out = {"independent": independent}
    for name, b in (("joint_shared", shared), ("joint_matched", independent.cost)):
        out[name] = score(np.asarray(allocate(tv, tc, budget=max(b, 0.0) * n,
                                              eligible=je).action_dist))
    return out


# ------------------------------------------------------------------ logs under a state
@float64
def simulate_under_state(key: jax.Array, params: WorldParams, config: WorldConfig, n: int,
                         logging, state: PortfolioState) -> tuple[LoggedData, jax.Array]:
    """A :class:`simulators.data.LoggedData` of ``n`` users whose other programs' assignments
    are drawn under ``state`` (the world's own law otherwise: same users, logging policy and
    outcome model as :func:`simulators.simulate.simulate`), with the truth conditional on the
    logged ``o`` (the world's convention), and the other programs' logged propensities ``(n, P)``
    (:func:`logged_propensity`). Drop ``other_actions`` from the features to hide them."""
    validate_params(params, config)
    state.check(params, config)
    users, truth, prob, action, (value, value_acc, cost, lag) = _simulate_state(
        key, params, config, n, logging, state.arrays(params))
    log = LoggedData(
        x=users.x, segment=users.segment.astype(jnp.int32), period=users.period,
        eligible=users.eligible, action=action,
        action_prob=None if logging.kind == "confounded" else prob,
        value=value, value_accounting=value_acc, cost=cost, redemption_lag=lag,
        other_actions=users.other_actions, face_value=params.face_value, truth=truth)
    return log, logged_propensity(params, state, users)


@functools.partial(jax.jit, static_argnames=("config", "n", "logging"))
def _simulate_state(key, params, config, n, logging, state_arrays):
    k_users, k_o, k_log, k_act, k_out = jax.random.split(key, 5)
    users = sample_users(k_users, params, config, n)
    pi = _propensity(state_arrays, users)
    o = jax.random.uniform(k_o, pi.shape, dtype=pi.dtype) < pi
    users = users._replace(other_actions=o.astype(jnp.int32))
    mu_value, mu_cost, mu_acc = expected_outcomes(params, users)
    truth = Truth(mu_value, mu_cost, mu_acc, users.response_type.astype(jnp.int32))
    prob = logging_distribution(k_log, params, users, truth.tau_value, truth.tau_cost, logging)
    action = jax.random.categorical(k_act, jnp.log(prob), axis=1).astype(jnp.int32)
    return users, truth, prob, action, sample_outcomes(k_out, params, users, action)
