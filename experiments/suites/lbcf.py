r"""LBCF suite: the world of Ai et al. (WWW 2022) with exact truth, the paper's bisection-on-lambda
allocator beside ours, and its evaluation metrics (the world: :mod:`simulators.lbcf`).

**Two sections.** ``published`` replays the paper's Section 5.1 protocol on its own users,
regenerated bit for bit (:func:`simulators.lbcf.published_users`): per noise level ``uW``, a value
model is fitted on the published training set (20,000 users, each under all four arms; training
weights), the 20,000 published test users (test weights) are allocated a budget of 1,500,000
(75 per user) on *realised* costs, as the published ``*_budget_allocation.py`` scripts do, and
scored by the published metric (``Code/Evaluation/Simulation_analysis.py``)

.. math:: \mathrm{ITE} = \frac{\sum_i (V_i(\pi_i) - V_i(0))}{\sum_i V_i(0)},

the realised value of the chosen arm (an expectation over ``pi`` for a fractional user) against
the user's control value. The published bars (:data:`PUBLISHED_ITE`) sit beside ours. ``world``
draws fresh users per seed from the same law (:func:`simulators.lbcf.lbcf_logged_data`): a
uniform randomised training log fits value *and* cost heads (:data:`LBCF_LEARNERS`), a fresh
uniform randomised evaluation log (the "RCT test set") is allocated at several budgets per user,
and every policy is scored by the exact truth and by the paper's offline estimator.

**Policies.** ``cost_aware_uplift`` (ours: :func:`policies.allocation.allocate`, the exact LP of
the multiple-choice knapsack, one fractional user); ``lbcf_bisection`` (the paper's Dual Gradient
Bisection, :func:`lbcf_bisection`); ``max_roi_greedy`` (the allocation the paper runs for its
uplift-forest baselines Chi/ED/CTS, :func:`max_roi_greedy`), each on learned effects (learner
column: the learner) and on the true effects (learner ``truth``; ``oracle`` is ours on truth);
``random`` (a random arm, random order) and ``uniform_offer`` (arm ``uniform_offer_arm`` for
everyone, random order), learner ``none``, filled to the budget on the true costs (a rule with no
model, costs known as in the paper's protocol).

**Metrics** (``world``, per evaluation user unless said): ``incremental_value`` ``= sum_i sum_a
pi_ia tau_v[i, a] / n`` and ``incremental_cost`` (the same with ``tau_c``) by truth;
``cost_over_budget = incremental_cost - budget_per_user`` (``<= 0``: within budget);
``planned_cost_over_budget`` the same under the effects the policy was given; ``regret`` the
oracle's ``incremental_value`` minus the policy's; ``pmg_truth = sum_i sum_a pi_ia tau_v[i, a] /
sum_i mu_v[i, 0]`` (the percentage mean gain, as a ratio, by truth: the expectation of the
published ITE); ``pmg_rct`` the paper's offline estimator (:func:`pmg_rct`) on the evaluation
log's randomised arms and outcomes; ``budget_multiplier`` the lambda of the LP and of the
bisection. ``published`` rows: ``ite``, ``value_per_user`` and ``cost_over_budget`` (realised).

Run ``python -m experiments.run experiment=lbcf 'seeds=[0,1,2,3,4]'``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from estimators.heads import HeadConfig, HeadsConfig, make_heads, make_learner
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, stream, stream_id
from policies import baselines
from policies._validation import check_effects, check_eligible, check_nonneg_scalar
from policies.allocation import Allocation, allocate
from simulators.lbcf import (
    PUBLISHED_NOISE_LEVELS,
    LBCFConfig,
    lbcf_logged_data,
    published_users,
)

__all__ = ["LBCF_LEARNERS", "PUBLISHED_BUDGET_PER_USER", "PUBLISHED_ITE", "SUITE",
           "LBCFSuiteConfig", "lbcf_bisection", "max_roi_greedy", "plot", "pmg_rct", "pmg_truth",
           "run", "summary", "write_results"]

# learner name -> value and cost heads (a T-learner per arm; gradient-boosted trees are the
# closest cheap relative of the paper's causal forests). HeadsConfig() (hurdle heads) rejects this
# world's signed value labels, so it is not offered.
LBCF_LEARNERS: dict[str, HeadsConfig] = {
    "t_lgbm": HeadsConfig(value=HeadConfig(learner="t", base="lightgbm"),
                          cost=HeadConfig(learner="t", base="lightgbm")),
    "t_ridge": HeadsConfig(value=HeadConfig(learner="t", base="ridge"),
                           cost=HeadConfig(learner="t", base="ridge")),
}
PUBLISHED_BUDGET_PER_USER = 1_500_000 / 20_000  # budget = 1500000 over the 20,000 test users
# The published Section 5.1 figure (the repository's Images/ITE.png, drawn by
# Code/Evaluation/Simulation_analysis.py): ITE per noise level uW and method, digitised from its
# bar tops (y ticks 0..60 at pixel rows 328..17, 5.18 px per unit; +-0.2, one pixel).
PUBLISHED_ITE: dict[float, dict[str, float]] = {
    5.0: {"Chi": 40.90, "ED": 40.90, "CTS": 40.90, "CF.DT": 47.27, "CT.ST": 46.50, "LBCF": 47.46},
    10.0: {"Chi": 44.95, "ED": 44.95, "CTS": 45.14, "CF.DT": 52.28, "CT.ST": 52.48, "LBCF": 53.63},
    15.0: {"Chi": 47.65, "ED": 47.85, "CTS": 47.85, "CF.DT": 56.53, "CT.ST": 58.07, "LBCF": 59.04},
    20.0: {"Chi": 37.43, "ED": 37.23, "CTS": 37.62, "CF.DT": 44.95, "CT.ST": 47.07, "LBCF": 48.04},
}
LEARNED_POLICIES = ("cost_aware_uplift", "lbcf_bisection", "max_roi_greedy")
TRUTH_POLICIES = ("oracle", "lbcf_bisection", "max_roi_greedy")
FREE_POLICIES = ("random", "uniform_offer")
_LINESTYLE = {"truth": "--", "none": ":", "t_lgbm": "-", "t_ridge": "-."}
_HATCH = ("", "..", "xx", "\\\\", "++", "oo")


@dataclasses.dataclass(frozen=True)
class LBCFSuiteConfig:
    """``noise_levels``: the swept ``uW`` (the paper's 5, 10, 15, 20); ``n_train`` training rows
    (the paper's training file has 20,000 users x 4 arms = 80,000 rows) and ``n_eval`` evaluation
    users (its test set: 20,000); ``budgets_per_user`` (the paper's 1,500,000 / 20,000 = 75 among
    them); ``learners`` from :data:`LBCF_LEARNERS`; ``n_treatments`` arms besides control (the
    paper's 3; the published section always has 3); ``train_weight_set`` / ``test_weight_set`` the
    published weight draws of the two logs of ``world`` (the published protocol trains on 1 and
    tests on 2; default 1 and 1, one world); ``uniform_offer_arm`` the arm of ``uniform_offer``;
    ``bisection_tol`` the bisection's stopping width (published: 1e-4); ``published_section``
    whether to replay the published protocol, with learner ``published_learner`` fitted on the
    first ``published_train_users`` of the 20,000 published training users (all of them by
    default; the test set is always the 20,000 published test users)."""

    noise_levels: tuple[float, ...] = PUBLISHED_NOISE_LEVELS
    n_train: int = 80_000
    n_eval: int = 20_000
    budgets_per_user: tuple[float, ...] = (25.0, 50.0, 75.0, 150.0, 300.0)
    learners: tuple[str, ...] = ("t_lgbm", "t_ridge")
    n_treatments: int = 3
    train_weight_set: int = 1
    test_weight_set: int = 1
    uniform_offer_arm: int = 1
    bisection_tol: float = 1e-4
    published_section: bool = True
    published_learner: str = "t_lgbm"
    published_train_users: int = 20_000

    @classmethod
    def compact(cls) -> LBCFSuiteConfig:
        # one log shape (one compilation of the draw) for both logs
        return cls(noise_levels=(5.0, 20.0), n_train=4_000, n_eval=4_000,
                   budgets_per_user=(25.0, 75.0, 300.0), learners=("t_lgbm",),
                   published_train_users=2_000)

    def __post_init__(self) -> None:
        if not self.noise_levels or min(self.noise_levels) < 1:
            raise ValueError(f"LBCFSuiteConfig.noise_levels: non-empty, each >= 1, got "
                             f"{self.noise_levels!r}. Fix: e.g. (5, 10, 15, 20), the paper's.")
        if self.n_train < 100 or self.n_eval < 10:
            raise ValueError(f"LBCFSuiteConfig: n_train >= 100 and n_eval >= 10, got n_train="
                             f"{self.n_train}, n_eval={self.n_eval}. Fix: raise them.")
        if not self.budgets_per_user or min(self.budgets_per_user) <= 0:
            raise ValueError(f"LBCFSuiteConfig.budgets_per_user: non-empty, each > 0, got "
                             f"{self.budgets_per_user!r}. Fix: e.g. (25, 75, 300).")
        unknown = sorted((set(self.learners) | {self.published_learner}) - set(LBCF_LEARNERS))
        if unknown or not self.learners:
            raise ValueError(f"LBCFSuiteConfig.learners / published_learner: unknown or empty "
                             f"{unknown}. Fix: choose from {list(LBCF_LEARNERS)}.")
        if not 1 <= self.uniform_offer_arm <= self.n_treatments:
            raise ValueError(f"LBCFSuiteConfig.uniform_offer_arm: must lie in [1, "
                             f"{self.n_treatments}], got {self.uniform_offer_arm}. Fix: e.g. 1.")
        if not self.bisection_tol > 0:
            raise ValueError(f"LBCFSuiteConfig.bisection_tol: must be > 0, got "
                             f"{self.bisection_tol}. Fix: 1e-4 (the published value).")
        if not 1 <= self.published_train_users <= 20_000:
            raise ValueError(f"LBCFSuiteConfig.published_train_users: must lie in [1, 20000] "
                             f"(the published training set), got {self.published_train_users}. "
                             "Fix: 20000 (all of them).")
        for name in ("train_weight_set", "test_weight_set"):  # the world's own checks
            LBCFConfig(n=1, n_treatments=self.n_treatments, weight_set=getattr(self, name))


# --------------------------------------------------------------------------------- allocators
def _allocation(dist: np.ndarray, v: np.ndarray, c: np.ndarray, lam: float, binds: bool,
                method: str) -> Allocation:
    k = v.shape[1]
    return Allocation(np.argmax(dist, axis=1), dist, float(np.sum(dist * v)),
                      float(np.sum(dist * c)), lam, 0.0, np.zeros(k), binds, False,
                      np.zeros(k, dtype=bool), int(np.sum(dist.max(axis=1) < 1.0)), method)


def _choice(v: np.ndarray, c: np.ndarray, keep: np.ndarray, lam: float) -> np.ndarray:
    """Each user's arm at multiplier ``lam``: ``argmax_{a >= 1} v - lam c`` over kept pairs if that
    maximum is ``> 0``, else control (ties: the lower arm)."""
    net = np.where(keep, v - lam * c, -np.inf)
    net[:, 0] = -np.inf
    best = np.argmax(net, axis=1)
    return np.where(net[np.arange(len(best)), best] > 0, best, 0)


def lbcf_bisection(tau_value: np.ndarray, tau_cost: np.ndarray, *, budget: float,
                   eligible: np.ndarray | None = None, tol: float = 1e-4,
                   max_iter: int = 100) -> Allocation:
    """The paper's Dual Gradient Bisection (``Code/Model/*/DGB.py``): the Lagrangian dual ``L(lam)
    = lam B + sum_i max(0, max_a v_ia - lam c_ia)`` is minimised by bisection on its gradient
    ``B - spend(lam)`` over ``[0, lam_max]``, ``lam_max = max v / c`` over pairs with ``c > 0``,
    every user taking ``argmax_a v - lam c`` (control when no arm's net value is positive); it
    stops when the bracket is narrower than ``tol`` (absolute) or after ``max_iter`` halvings.
    Deterministic: one arm per user, no fractional user. Returns the decisions at the bracket's
    feasible end (``spend <= B``; the published code returns its last midpoint, which can
    overspend) and ``lam = 0`` when everything affordable fits. As in our allocator, pairs with
    ``v <= 0`` are never offered (with non-negative costs the published rule never offers them
    either)."""
    v, c = check_effects(tau_value, tau_cost)
    v, c = v.astype(np.float64), c.astype(np.float64)
    keep = check_eligible(eligible, v.shape) & (v > 0)
    b = check_nonneg_scalar("budget", budget)
    rows = np.arange(v.shape[0])

    def spend(lam: float) -> tuple[np.ndarray, float]:
        a = _choice(v, c, keep, lam)
        return a, float(np.sum(c[rows, a]))

    a, cost = spend(0.0)
    lo, hi = 0.0, 0.0
    if cost > b:
        pos = keep & (c > 0)
        hi = float(np.max(np.where(pos, v / np.where(pos, c, 1.0), 0.0)))
        for _ in range(int(max_iter)):
            if hi - lo < tol:
                break
            mid = 0.5 * (lo + hi)
            if spend(mid)[1] <= b:  # gradient > 0 (budget left): lower the multiplier
                hi = mid
            else:
                lo = mid
        a, cost = spend(hi)
    dist = np.zeros(v.shape)
    dist[rows, a] = 1.0
    return _allocation(dist, v, c, hi, hi > 0.0, "lbcf_bisection")


def max_roi_greedy(tau_value: np.ndarray, tau_cost: np.ndarray, *, budget: float,
                   eligible: np.ndarray | None = None) -> Allocation:
    """The paper's allocation for its uplift-forest baselines (``Chi_ED_CTS_budget_allocation.py``):
    each user's arm is the one of largest ROI ``v / c`` (none if no arm has ``v > 0``), users are
    taken in decreasing ROI while the cumulative cost fits (:func:`policies.baselines.fill_budget`:
    the first that does not fit gets the remaining fraction; the script stops before it). A pair
    with ``v > 0`` and ``c <= 0`` ranks first."""
    v, c = check_effects(tau_value, tau_cost)
    keep = check_eligible(eligible, v.shape) & (v > 0)
    keep[:, 0] = False
    roi = np.where(keep, v / np.where(c > 0, c, 1.0), -np.inf)
    roi = np.where(keep & (c <= 0), np.finfo(np.float64).max, roi)
    best = np.argmax(roi, axis=1)
    has = keep.any(axis=1)
    proposed = np.where(has, best, 0)
    priority = np.where(has, roi[np.arange(len(best)), best], 0.0)
    out = baselines.fill_budget(proposed, priority, v, c, budget=budget, eligible=eligible,
                                method="max_roi_greedy")
    return out


def uniform_offer(key: jax.Array, tau_value: np.ndarray, tau_cost: np.ndarray, *, arm: int,
                  budget: float) -> Allocation:
    """Arm ``arm`` for every user, users in random order while the budget lasts."""
    n = tau_value.shape[0]
    priority = np.asarray(jax.random.uniform(key, (n,)))
    return baselines.fill_budget(np.full(n, arm), priority, tau_value, tau_cost, budget=budget,
                                 method="uniform_offer")


# ------------------------------------------------------------------------------------ metrics
def pmg_truth(dist: np.ndarray, tau_value: np.ndarray, mu_value_control: np.ndarray) -> float:
    """Percentage mean gain by truth (a ratio): ``sum_i sum_a pi_ia tau_v[i, a] / sum_i
    mu_v[i, 0]``, the policy's mean incremental value over the mean control value."""
    return float(np.sum(dist * tau_value) / np.sum(mu_value_control))


def pmg_rct(dist: np.ndarray, action: np.ndarray, outcome: np.ndarray) -> float:
    """The paper's offline percentage mean gain on a randomised test log (``Offline_test.py``):
    per arm ``t``, ``N_t = sum_i pi_it`` users are assigned ``t``, and ``M_t`` is the mean outcome
    of the assigned users whose randomised arm was ``t`` (weights ``pi_it``); the policy's mean is
    ``sum_t N_t M_t / sum_t N_t`` over the arms with matched users, and ``PMG = (that - Y0) /
    Y0`` with ``Y0`` the mean outcome of the log's control group. For a deterministic policy this
    is the script's group-by of matched users; it is the stratified (per-arm self-normalised)
    estimate of ``E[Y(pi)] / E[Y(0)] - 1`` under a uniform trial."""
    onehot = action[:, None] == np.arange(dist.shape[1])[None, :]
    n_t = dist.sum(axis=0)
    w = np.where(onehot, dist, 0.0)
    matched = w.sum(axis=0)
    ok = matched > 0
    m_t = np.where(ok, (w * outcome[:, None]).sum(axis=0) / np.where(ok, matched, 1.0), 0.0)
    base = float(outcome[action == 0].mean())
    return float((np.sum(n_t[ok] * m_t[ok]) / np.sum(n_t[ok]) - base) / base)


# --------------------------------------------------------------------------------- the sections
def _key(seed: int, *names: str) -> jax.Array:
    """``stream(seed, *names)``, computed as ``stream(seed)`` folded in with each name's id: the
    same key, with one compilation for every stream instead of one per tuple of names."""
    key = stream(seed)
    for name in names:
        key = jax.random.fold_in(key, stream_id(name))
    return key


def _learned(name: str, train, x_eval: np.ndarray, n_actions: int) -> tuple[np.ndarray, ...]:
    heads = make_heads(LBCF_LEARNERS[name]).fit(train.x, train.action, value=train.value,
                                                cost=train.cost, action_prob=train.action_prob,
                                                n_actions=n_actions)
    return tuple(np.asarray(t, dtype=np.float64) for t in heads.predict_tau(x_eval))


def _world_allocations(cfg: LBCFSuiteConfig, seed: int, uw: float, level: float, tv: np.ndarray,
                       tc: np.ndarray, est: dict[str, tuple[np.ndarray, np.ndarray]]) -> list:
    """``(learner, policy, allocation, effects it was given)`` at one budget."""
    budget = level * tv.shape[0]
    bis = functools.partial(lbcf_bisection, budget=budget, tol=cfg.bisection_tol)
    out = [("truth", "oracle", allocate(tv, tc, budget=budget), (tv, tc)),
           ("truth", "lbcf_bisection", bis(tv, tc), (tv, tc)),
           ("truth", "max_roi_greedy", max_roi_greedy(tv, tc, budget=budget), (tv, tc)),
           ("none", "random", baselines.random_allocation(
               _key(seed, "random", f"{uw:g}", f"{level:g}"), tv, tc, budget=budget), (tv, tc)),
           ("none", "uniform_offer", uniform_offer(
               _key(seed, "uniform_offer", f"{uw:g}", f"{level:g}"), tv, tc,
               arm=cfg.uniform_offer_arm, budget=budget), (tv, tc))]
    for name, (v, c) in est.items():
        out += [(name, "cost_aware_uplift", allocate(v, c, budget=budget), (v, c)),
                (name, "lbcf_bisection", bis(v, c), (v, c)),
                (name, "max_roi_greedy", max_roi_greedy(v, c, budget=budget), (v, c))]
    return out


def _world_rows(cfg: LBCFSuiteConfig, seed: int, uw: float) -> list[dict]:
    """One noise level of the ``world`` section (streams ``train``/``eval`` + the level)."""
    world = dict(n_treatments=cfg.n_treatments, uncertainty=uw)
    train = lbcf_logged_data(_key(seed, "train", f"{uw:g}"),
                             LBCFConfig(n=cfg.n_train, weight_set=cfg.train_weight_set, **world))
    ev = lbcf_logged_data(_key(seed, "eval", f"{uw:g}"),
                          LBCFConfig(n=cfg.n_eval, weight_set=cfg.test_weight_set, **world))
    est = {name: _learned(name, train, ev.x, cfg.n_treatments + 1) for name in cfg.learners}
    tv, tc = (np.asarray(t, dtype=np.float64) for t in (ev.truth.tau_value, ev.truth.tau_cost))
    mu0 = np.asarray(ev.truth.mu_value, dtype=np.float64)[:, 0]
    action, value = np.asarray(ev.action), np.asarray(ev.value, dtype=np.float64)
    n = cfg.n_eval
    rows = []
    for level in cfg.budgets_per_user:
        allocs = _world_allocations(cfg, seed, uw, level, tv, tc, est)
        best = float(np.sum(allocs[0][2].action_dist * tv)) / n
        for learner, policy, a, (_, c) in allocs:
            d = a.action_dist
            value_pu, cost_pu = float(np.sum(d * tv)) / n, float(np.sum(d * tc)) / n
            metrics = {"incremental_value": value_pu, "incremental_cost": cost_pu,
                       "cost_over_budget": cost_pu - level,
                       "planned_cost_over_budget": float(np.sum(d * c)) / n - level,
                       "regret": best - value_pu, "pmg_truth": pmg_truth(d, tv, mu0),
                       "pmg_rct": pmg_rct(d, action, value)}
            if policy in ("oracle", "cost_aware_uplift", "lbcf_bisection"):
                metrics["budget_multiplier"] = a.budget_multiplier
            rows += [{"section": "world", "noise": float(uw), "learner": learner,
                      "policy": policy, "budget_per_user": float(level), "n": n, "metric": m,
                      "value": float(x)} for m, x in metrics.items()]
    return rows


@functools.lru_cache(maxsize=8)
def _published_rows(uw: float, learner: str, tol: float, n_fit: int) -> tuple[dict, ...]:
    """The ``published`` section at noise level ``uw`` (deterministic: the published users; cached
    so a job's seeds share one computation): value model of ``learner`` (its value head) fitted on
    every (user, arm) row of the first ``n_fit`` training users, allocation on the test set's
    realised costs at 75 per user, scored by the realised ITE."""
    train, test = published_users(uw, "training"), published_users(uw, "test")
    train = train._replace(x=train.x[:n_fit], value=train.value[:n_fit], cost=train.cost[:n_fit])
    n, k1 = test.x.shape[0], test.value.shape[1]
    model = make_learner(LBCF_LEARNERS[learner].value)
    model.fit(np.repeat(train.x, k1, axis=0), np.tile(np.arange(k1), train.x.shape[0]),
              train.value.ravel(), action_prob=np.full((train.value.size, k1), 1.0 / k1),
              n_actions=k1)
    v_hat = np.asarray(model.predict_tau(test.x), dtype=np.float64)
    dv, dc = test.value - test.value[:, :1], test.cost - test.cost[:, :1]
    budget = PUBLISHED_BUDGET_PER_USER * n
    bis = functools.partial(lbcf_bisection, budget=budget, tol=tol)
    allocs = [("truth", "oracle", allocate(dv, dc, budget=budget)),
              ("truth", "lbcf_bisection", bis(dv, dc)),
              ("truth", "max_roi_greedy", max_roi_greedy(dv, dc, budget=budget)),
              (learner, "cost_aware_uplift", allocate(v_hat, dc, budget=budget)),
              (learner, "lbcf_bisection", bis(v_hat, dc)),
              (learner, "max_roi_greedy", max_roi_greedy(v_hat, dc, budget=budget))]
    rows = []
    for who, policy, a in allocs:
        gain = float(np.sum(a.action_dist * dv))
        metrics = {"ite": gain / float(test.value[:, 0].sum()), "value_per_user": gain / n,
                   "cost_over_budget": float(np.sum(a.action_dist * dc)) / n
                   - PUBLISHED_BUDGET_PER_USER}
        rows += [{"section": "published", "noise": float(uw), "learner": who, "policy": policy,
                  "budget_per_user": PUBLISHED_BUDGET_PER_USER, "n": n, "metric": m,
                  "value": float(x)} for m, x in metrics.items()]
    return tuple(rows)


def run(cfg: LBCFSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: section, noise, learner, policy, budget_per_user, n, metric, value. Streams:
    ``stream(seed, "train", uW)`` / ``stream(seed, "eval", uW)`` (the two logs of a noise level),
    ``stream(seed, "random" | "uniform_offer", uW, budget)`` (the baselines' orders)."""
    rows: list[dict] = []
    for uw in cfg.noise_levels:
        rows += _world_rows(cfg, seed, float(uw))
        if cfg.published_section:
            rows += list(_published_rows(float(uw), cfg.published_learner, cfg.bisection_tol,
                                         cfg.published_train_users))
    return pd.DataFrame(rows).assign(seed=seed)


# --------------------------------------------------------------------------- tables and figures
def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (section, noise, learner, policy, budget, metric)."""
    keys = ["section", "metric", "noise", "learner", "policy", "budget_per_user"]
    out = df.groupby(keys)["value"].agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out.drop(columns="std")


def allocator_gap(df: pd.DataFrame) -> pd.DataFrame:
    """Per (noise, learner, budget): ours minus the bisection in true incremental value per user
    (ours is ``oracle`` under learner ``truth``), mean and s.e. over seeds."""
    w = df[(df.section == "world") & (df.metric == "incremental_value")
           & df.policy.isin(("oracle", "cost_aware_uplift", "lbcf_bisection"))]
    wide = w.assign(policy=np.where(w.policy == "lbcf_bisection", "bisection", "ours")).pivot_table(
        index=["noise", "learner", "budget_per_user", "seed"], columns="policy", values="value")
    gap = (wide["ours"] - wide["bisection"]).rename("value").reset_index()
    out = gap.groupby(["noise", "learner", "budget_per_user"])["value"].agg(
        ["mean", "std", "count"]).reset_index()
    out["se"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out.drop(columns="std")


def _fmt(mean: float, se: float) -> str:
    return f"{mean:.3f} ± {se:.3f}"


def _world_table(s: pd.DataFrame, metric: str) -> list[str]:
    d = s[(s.section == "world") & (s.metric == metric)]
    if d.empty:
        return []
    budgets = sorted(d.budget_per_user.unique())
    lines = [f"### world: {metric} (mean ± s.e. over seeds)", "",
             "| noise | learner | policy | " + " | ".join(f"B={b:g}" for b in budgets) + " |",
             "|---|---|---|" + "---|" * len(budgets)]
    for (uw, learner, policy), g in d.groupby(["noise", "learner", "policy"], sort=True):
        cells = {r.budget_per_user: _fmt(r["mean"], r.se) for _, r in g.iterrows()}
        lines.append(f"| {uw:g} | {learner} | {policy} | "
                     + " | ".join(cells.get(b, "") for b in budgets) + " |")
    return [*lines, ""]


def _published_table(s: pd.DataFrame) -> list[str]:
    d = s[(s.section == "published") & (s.metric == "ite")]
    if d.empty:
        return []
    ours = _published_series(d)
    methods = list(next(iter(PUBLISHED_ITE.values())))
    lines = ["### published protocol: ITE = sum(V(pi) - V(0)) / sum V(0) at 75 per user", "",
             "Published: digitised from the paper's Section 5.1 figure (the repository's "
             "Images/ITE.png, ±0.2). Ours: the same 20,000 test users, regenerated exactly.", "",
             "| noise | " + " | ".join(f"{m} (published)" for m in methods) + " | "
             + " | ".join(f"{p}@{lr}" for lr, p in ours) + " |",
             "|---|" + "---|" * (len(methods) + len(ours))]
    for uw, g in d.groupby("noise"):
        pub = PUBLISHED_ITE.get(float(uw), {})
        vals = {(r.learner, r.policy): r["mean"] for _, r in g.iterrows()}
        lines.append(f"| {uw:g} | " + " | ".join(f"{pub[m]:.2f}" if m in pub else "" for m in
                                                 methods)
                     + " | " + " | ".join(f"{vals[k]:.2f}" if k in vals else "" for k in ours)
                     + " |")
    return [*lines, ""]


def _published_series(d: pd.DataFrame) -> list[tuple[str, str]]:
    """``(learner, policy)`` of the published section: truth first, then the learner's."""
    present = {(r.learner, r.policy) for _, r in d.iterrows()}
    learners = sorted({lr for lr, _ in present} - {"truth"})
    order = [("truth", p) for p in TRUTH_POLICIES] + [(lr, p) for lr in learners
                                                       for p in LEARNED_POLICIES]
    return [t for t in order if t in present]


def _gap_table(df: pd.DataFrame) -> list[str]:
    g = allocator_gap(df)
    if g.empty:
        return []
    budgets = sorted(g.budget_per_user.unique())
    lines = ["### ours (exact LP) minus the LBCF bisection: true incremental value per user", "",
             "| noise | learner | " + " | ".join(f"B={b:g}" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    for (uw, learner), d in g.groupby(["noise", "learner"]):
        cells = {r.budget_per_user: f"{r['mean']:.4f} ± {r.se:.4f}" for _, r in d.iterrows()}
        lines.append(f"| {uw:g} | {learner} | " + " | ".join(cells.get(b, "") for b in budgets)
                     + " |")
    return [*lines, ""]


def _series(s: pd.DataFrame) -> list[tuple[str, str]]:
    d = s[s.section == "world"]
    order = {"truth": 0, "none": 2}
    return sorted({(r.learner, r.policy) for _, r in d.iterrows()},
                  key=lambda t: (order.get(t[0], 1), t[0], t[1]))


def _world_figure(s: pd.DataFrame, out_dir: Path) -> Path | None:
    d = s[s.section == "world"]
    if d.empty:
        return None
    plt = pyplot()
    levels = sorted(d.noise.unique())
    panels = (("pmg_truth", "PMG by truth (ratio)"), ("pmg_rct", "PMG, RCT estimator (ratio)"),
              ("regret", "regret vs oracle per user"))
    fig, axes = plt.subplots(len(panels), len(levels), figsize=(4.2 * len(levels), 3.3 * 3),
                             squeeze=False, sharex=True)
    budgets = sorted(d.budget_per_user.unique())
    for col, uw in enumerate(levels):
        for row, (metric, title) in enumerate(panels):
            ax = axes[row, col]
            for learner, policy in _series(s):
                g = d[(d.noise == uw) & (d.metric == metric) & (d.learner == learner)
                      & (d.policy == policy)].sort_values("budget_per_user")
                if g.empty:
                    continue
                label = "oracle" if policy == "oracle" else f"{policy}@{learner}"
                ax.errorbar(g.budget_per_user, g["mean"], yerr=g.se, capsize=2, label=label,
                            linestyle=_LINESTYLE.get(learner, "-"), **series_style(policy))
            log_axis(ax, "x", budgets)
            ax.set_title(f"uW = {uw:g}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
            if row == len(panels) - 1:
                ax.set_xlabel("budget per user")
    figure_legend(fig, axes, fontsize=8)
    return save(fig, out_dir, "lbcf_pmg.png")


def _published_figure(s: pd.DataFrame, out_dir: Path) -> Path | None:
    d = s[(s.section == "published") & (s.metric == "ite")]
    if d.empty:
        return None
    plt = pyplot()
    levels = sorted(d.noise.unique())
    ours = _published_series(d)
    methods = list(next(iter(PUBLISHED_ITE.values())))
    width = 0.8 / (len(methods) + len(ours))
    fig, ax = plt.subplots(figsize=(10, 4.3))
    for j, m in enumerate(methods):
        ys = [PUBLISHED_ITE.get(float(uw), {}).get(m, np.nan) for uw in levels]
        ax.bar(np.arange(len(levels)) + j * width, ys, width, color="0.92", edgecolor="0.3",
               hatch=_HATCH[j % len(_HATCH)], label=f"{m} (published)")
    for j, (learner, policy) in enumerate(ours, start=len(methods)):
        ys = [d[(d.noise == uw) & (d.learner == learner) & (d.policy == policy)]["mean"].mean()
              for uw in levels]
        label = "oracle" if policy == "oracle" else f"{policy}@{learner}"
        ax.bar(np.arange(len(levels)) + j * width, ys, width, label=label,
               color=series_style(policy)["color"], edgecolor="black",
               alpha=0.55 if learner == "truth" and policy != "oracle" else 1.0)
    ax.set_xticks(np.arange(len(levels)) + 0.4 - width / 2, [f"{uw:g}" for uw in levels])
    low = np.nanmin([PUBLISHED_ITE.get(float(uw), {}).get(m, np.nan) for uw in levels
                     for m in methods] + list(d["mean"]))
    ax.set_ylim(bottom=0.8 * low)  # a cut axis: the differences are a few units of ~50
    ax.set_xlabel("noise level uW")
    ax.set_ylabel("ITE (ratio)")
    ax.set_title("published protocol at 75 per user: the paper's bars (hatched) and ours "
                 "(pale: on true effects)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    figure_legend(fig, [ax], fontsize=8)
    return save(fig, out_dir, "lbcf_published.png")


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``lbcf_pmg.png`` (PMG by truth, PMG by the RCT estimator and regret against the budget,
    one column per noise level, mean ± s.e. over seeds) and ``lbcf_published.png`` (the published
    bars beside ours on the published users)."""
    s = summary(df)
    return [p for p in (_world_figure(s, Path(out_dir)), _published_figure(s, Path(out_dir)))
            if p is not None]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``lbcf.csv`` (all rows), ``lbcf.md`` (tables and the reproducing command), figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "lbcf.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    seeds = sorted(df.seed.unique().tolist()) if "seed" in df else []
    lines = ["## LBCF (Ai et al., WWW 2022): published protocol and fresh draws", "",
             "Reproduce: `python -m experiments.run experiment=lbcf "
             f"'seeds=[{','.join(str(x) for x in seeds)}]'`", "", *_published_table(s),
             *_gap_table(df)]
    for metric in ("pmg_truth", "pmg_rct", "regret", "cost_over_budget",
                   "planned_cost_over_budget", "incremental_value", "budget_multiplier"):
        lines += _world_table(s, metric)
    md = out_dir / "lbcf.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """PMG by truth of every world policy per noise level and budget; the published ITE."""
    s = summary(df)
    keep = s[((s.section == "world") & (s.metric == "pmg_truth"))
             | ((s.section == "published") & (s.metric == "ite"))]
    return keep.pivot_table(index=["section", "noise", "learner", "policy"],
                            columns="budget_per_user", values="mean").reset_index()


SUITE = Suite(name="lbcf", config_class=LBCFSuiteConfig, run=run, plot=plot,
              write=write_results, summary=headline,
              key_columns=("section", "noise", "learner", "policy", "budget_per_user", "n"),
              result_seeds=(0, 1, 2, 3, 4))
