"""Menu-size suite (lesson 2): large action menus fail without support; the design notes' remedy,
"start compact, then expand around promising regions".

**Sweep.** At a fixed number of training users ``n_train``, the menu size ``K`` (offers, face
values ``linspace(5, 20, K)``: ordered by depth, so "next to" means adjacent depth) is swept over
``menu_sizes`` under each logger of ``loggings`` (``uniform``; ``warm_start``, the skewed softmax
of a noisy prior score; ``epsilon_greedy``). Per (K, logging, seed): ``n_fits`` independent
training logs (streams ``stream(seed, "train", K, logging)`` split in ``n_fits``) each fit
T-learner ridge heads (``learner``), scored on one uniform evaluation population of ``n_eval``
users (``stream(seed, "eval")``: the same users' features and segments at every K) against the
world's exact truth. Metrics (each the mean over the ``n_fits`` fits of one seed, except the two
variance metrics, which are computed across them):

* support: ``rows_min`` / ``rows_median`` (logged rows of the least-logged / median offer,
  ``a >= 1``), ``support_ratio_min`` (``rows_min`` over an even split ``n_train / (K+1)``),
  ``pscore_min`` (the smallest logged propensity ``pi_0(a_i | x_i)``);
* ``tau_variance``: the sampling variance of the value head's effect estimates,
  ``mean_{i, a>=1 eligible} var_r tau_hat_r(x_i, a)`` over the ``n_fits`` fits (``ddof=1``),
  i.e. a within-seed Monte Carlo of the estimator's variance at each (user, offer), averaged;
  ``tau_bias2``: ``mean_{i,a} (mean_r tau_hat_r - tau)^2 - tau_variance / n_fits`` (unbiased
  squared bias), so ``mean_r pehe_r^2 = tau_bias2 + tau_variance`` exactly;
  ``variance_share = tau_variance / mean_r pehe_r^2``;
* ``pehe_value`` / ``pehe_cost``: PEHE of each head over the eligible offers
  (:func:`estimators.metrics.pehe`; an offer the fit could not use, fewer than 2 logged rows,
  counts with effect 0);
* ``regret``: ``1 -`` the true incremental value of the budgeted allocation
  (:func:`policies.allocation.allocate` on the heads' estimates, ``policy.budget_per_user``
  per user) / the oracle's (the same allocator on the true effects, every offer); ``cost_ratio``:
  the policy's true incremental cost / the budget (above 1: it overspends, and more spend buys
  more value, which flatters ``regret``); ``regret_at_budget``: the same, for the policy
  re-allocated on its own estimates until its true cost keeps to the budget (the rule
  ``argmax_a tau_v - p tau_c`` at the lowest price found by bisection whose true spend is within
  the budget; the as-allocated policy when it already is): the comparison at equal true spend,
  and the headline regret;
* OPE (the first fit's policy): the allocation rule at the price found on the evaluation users
  (``allocate_at_price``, applicable to any user) is evaluated on ``n_ope_logs`` fresh logs of
  ``n_ope`` rows under the same logger (``stream(seed, "ope", K, logging)``) by each estimator
  of ``ope.estimators`` (IPS, DR with the heads' ``mu`` as ``q_hat``; analytic CIs at
  ``ope.ci_level``): ``coverage_<est>`` = the share of logs whose CI covers the log's exact
  policy value ``mean_i sum_a pi(a|x_i) mu_value(x_i, a)``; ``ci_width_<est>`` (mean);
  ``ess_share`` = mean ESS of the importance weights / ``n_ope``.

**Remedy** (at ``K = max(menu_sizes)``, uniform logging, the same ``n_train`` users in total):

* ``full_menu``: every user uniform over all K offers;
* ``coarse_then_expand``: phase 1 spends ``phase1_share`` of the users uniformly on a coarse menu
  of ``coarse_size`` evenly spaced depths (:func:`coarse_offers`); its heads are allocated at the
  budget on the phase-1 users; the ``n_winners`` coarse offers with the most allocated mass win;
  phase 2 logs the other users uniformly over the winners and their neighbours within
  ``expand_radius`` depth steps (:func:`expand_offers`). Heads are fitted on the union of the two
  logs, each row with its own phase's propensities; the policy is allocated over the explored
  offers through the ``eligible`` mask (``eval.eligible & explored``), never by dropping columns;
* ``coarse_only``: every user uniform on the coarse menu (the "never expand" reference).

A phase's menu is imposed on its logger as availability: the offers off the menu get eligibility
probability 0 in the world's parameters, so the users, their truth and their eligibility on the
menu are exactly the world's, and the logged ``action_prob`` is the phase's true propensity.
Metrics per design: ``regret_at_budget``, ``regret``, ``cost_ratio`` (as above, against the
full-menu oracle), ``restricted_oracle_regret`` (the oracle allocating only the explored offers:
what the menu itself costs), ``pehe_value`` (on the design's explored eligible offers),
``pehe_full_menu_heads`` (the ``full_menu`` heads of the same fit index on the same offers: a
paired comparison), ``n_explored`` offers, ``rows_per_explored_offer`` (median logged rows per
explored offer).

**Simulation.** Every log is drawn in blocks of ``block_logs`` logs of ``n_ope`` rows (one
``simulate_batch`` shape per (K, logging), so each compiles once and serves the training,
evaluation, OPE and remedy logs); a longer log concatenates blocks and is truncated (users are
independent). The warm-start logger standardises its prior score per simulated log, i.e. per
block of ``n_ope`` users; the logged propensities are the ones it used.

Measured (full size, seeds 0-4, budget 0.4 per user, n_train = 20,000): under uniform logging
the median offer's rows fall from 5,849 (K = 2) to 607 (K = 32), the variance of the value
effects rises 1.5 -> 9.9, value PEHE 2.41 -> 4.05, the true regret at the budget 27 % -> 55 %,
and the as-allocated policy overspends by 45 % at K = 32 (the allocator picks the offers whose
cost it under-estimates); IPS keeps 95 % coverage under uniform logging but covers 75-83 %
under warm-start logging at every K. At K = 32, coarse-then-expand cuts the regret at the budget
from 50.9 % to 39.9 % (paired -11.0 +- 1.0 points), but never expanding (coarse only) does
better still (35.6 %): the coarse menu costs the oracle only 1.8 % of its value, less than the
estimation error the extra offers bring (README, "Lesson 2").

Run ``python -m experiments.run experiment=menu_size 'seeds=[0,1,2,3,4]'``
(``experiment.compact=true``: fast).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators import ope
from estimators.heads import UpliftHeads, make_heads
from estimators.metrics import pehe
from experiments.configs import HeadConfig, HeadsConfig, LoggingConfig, OPEConfig, PolicyConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream, stream_id
from policies.allocation import allocate, allocate_at_price
from simulators import (
    Truth,
    WorldConfig,
    WorldParams,
    default_params,
    optimal_policy,
    policy_truth,
    simulate_batch,
)

__all__ = ["DESIGNS", "LOGGINGS", "SUITE", "MenuSizeSuiteConfig", "aggregate", "coarse_offers",
           "expand_offers", "plot", "run", "summary", "write_results"]

LOGGINGS = ("uniform", "warm_start", "epsilon_greedy")  # loggers with full support
DESIGNS = ("full_menu", "coarse_then_expand", "coarse_only")
SWEEP = "sweep"  # the design label of the sweep's rows
MIN_ARM_ROWS = 2  # an offer logged fewer times is left out of the fit (TLearner needs 2)
AT_BUDGET_TOL = 1e-3  # relative overspend tolerated by regret_at_budget
SWEEP_METRICS = ("rows_min", "rows_median", "support_ratio_min", "pscore_min", "tau_variance",
                 "tau_bias2", "variance_share", "pehe_value", "pehe_cost", "regret_at_budget",
                 "regret", "cost_ratio")
REMEDY_METRICS = ("regret_at_budget", "regret", "cost_ratio", "restricted_oracle_regret",
                  "pehe_value", "pehe_full_menu_heads", "n_explored", "rows_per_explored_offer")


def _fail(field: str, problem: str, fix: str) -> None:
    raise ValueError(f"MenuSizeSuiteConfig.{field}: {problem}. Fix: {fix}.")


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class MenuSizeSuiteConfig:
    """``menu_sizes``: the swept K (increasing); ``loggings``: logger kinds of :data:`LOGGINGS`,
    each with the knobs of ``logging`` (``temperature``, ``prior_noise``, ``epsilon``);
    ``learner``: the T-learner ridge heads (value alpha 100, cost alpha 1, as in the learners
    and OPE suites); ``policy.budget_per_user``: the allocator's budget per evaluation user;
    ``ope``: estimators and CI level of the coverage check; ``n_train``: training users per fit
    (fixed across K); ``n_fits``: independent training logs per (K, logging, seed), the axis of
    ``tau_variance``; ``n_ope`` rows per OPE log, ``n_ope_logs`` logs per cell. Every log is drawn
    in blocks of ``block_logs`` logs of ``n_ope`` rows (one compiled simulation per (K, logging)
    serves the training, evaluation, OPE and remedy logs; a longer log is the concatenation of
    blocks, truncated). Remedy (at the largest K; ``remedy=False`` skips it): ``coarse_size``
    evenly spaced offers in phase 1, which gets ``phase1_share`` of the users; ``n_winners`` and
    ``expand_radius`` define phase 2's menu."""

    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig(value=HeadConfig(alpha=100.0), cost=HeadConfig(alpha=1.0))
    policy: PolicyConfig = PolicyConfig(budget_per_user=0.4)
    ope: OPEConfig = OPEConfig(estimators=("ips", "dr"))
    menu_sizes: tuple[int, ...] = (2, 4, 8, 16, 32)
    loggings: tuple[str, ...] = ("uniform", "warm_start")
    n_train: int = 20_000
    n_eval: int = 10_000
    n_fits: int = 4
    n_ope: int = 5_000
    n_ope_logs: int = 40
    block_logs: int = 4
    remedy: bool = True
    coarse_size: int = 4
    phase1_share: float = 0.5
    n_winners: int = 2
    expand_radius: int = 2

    @classmethod
    def compact(cls) -> MenuSizeSuiteConfig:
        return cls(menu_sizes=(2, 16), n_train=4_000, n_eval=4_000, n_fits=3, n_ope=2_000,
                   n_ope_logs=40, block_logs=2, coarse_size=4, n_winners=1, expand_radius=1)

    def __post_init__(self) -> None:
        ks = self.menu_sizes
        if not ks or not all(_is_int(k) for k in ks):
            _fail("menu_sizes", f"expected a non-empty list of ints, got {ks!r}",
                  "e.g. menu_sizes=[2,4,8,16,32]")
        if min(ks) < 1:
            _fail("menu_sizes", f"every menu size must be >= 1 offer, got {min(ks)}",
                  "use sizes of at least one offer, e.g. [2,4,8]")
        if list(ks) != sorted(set(ks)):
            _fail("menu_sizes", f"must be distinct and increasing, got {list(ks)}",
                  f"use {sorted(set(ks))}")
        unknown = sorted(set(self.loggings) - set(LOGGINGS))
        if not self.loggings or unknown:
            _fail("loggings", f"unknown or empty {unknown or list(self.loggings)}",
                  f"a non-empty subset of {list(LOGGINGS)} (loggers that support every offer)")
        for name, low in (("n_train", 100), ("n_eval", 100), ("n_fits", 2), ("n_ope", 100),
                          ("n_ope_logs", 2), ("block_logs", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                _fail(name, f"must be an int >= {low}, got {value!r}", f"e.g. {name}={low * 2}")
        if not self.policy.budget_per_user > 0:
            _fail("policy.budget_per_user", f"must be > 0, got {self.policy.budget_per_user}",
                  "e.g. policy.budget_per_user=0.4 (regret and cost ratio need a budget)")
        if self.remedy:
            self._check_remedy(max(ks))

    def _check_remedy(self, k: int) -> None:
        if not _is_int(self.coarse_size) or not 1 <= self.coarse_size < k:
            _fail("coarse_size", f"the coarse menu must have 1 to K-1 = {k - 1} offers of the "
                  f"largest menu (K = {k}), got {self.coarse_size!r}",
                  f"use a coarse_size below {k} (e.g. {max(1, min(4, k - 1))}), add a larger "
                  "menu size, or set remedy=false")
        if not 0.0 < self.phase1_share < 1.0:
            _fail("phase1_share", f"must lie in (0, 1), got {self.phase1_share}",
                  "e.g. 0.5 (half the users on the coarse menu)")
        if not _is_int(self.n_winners) or not 1 <= self.n_winners <= self.coarse_size:
            _fail("n_winners", f"must be an int in [1, coarse_size = {self.coarse_size}], got "
                  f"{self.n_winners!r}", "e.g. n_winners=1")
        if not _is_int(self.expand_radius) or self.expand_radius < 0:
            _fail("expand_radius", f"must be an int >= 0, got {self.expand_radius!r}",
                  "e.g. expand_radius=1 (each winner's adjacent depths)")
        n1 = round(self.phase1_share * self.n_train)
        if min(n1, self.n_train - n1) < 50:
            _fail("phase1_share", f"leaves {min(n1, self.n_train - n1)} users to a phase",
                  "raise n_train or move phase1_share towards 0.5")


# ---------------------------------------------------------------------------------------------
# menus
# ---------------------------------------------------------------------------------------------

def coarse_offers(n_offers: int, size: int) -> np.ndarray:
    """``size`` evenly spaced offers (1-based, by depth) of a K-offer menu, the shallowest and
    the deepest included: ``round(linspace(1, K, size))`` (halves rounded up)."""
    if not 1 <= size <= n_offers:
        _fail("coarse_size", f"a coarse menu of {size} offers does not fit a menu of {n_offers}",
              f"use 1 to {n_offers} offers")
    if size == 1:
        return np.array([(n_offers + 1) // 2])
    return np.unique(np.floor(np.linspace(1, n_offers, size) + 0.5).astype(int))


def expand_offers(winners: np.ndarray, n_offers: int, radius: int) -> np.ndarray:
    """The winners and every offer within ``radius`` depth steps of one (1-based, sorted)."""
    offers = np.arange(1, n_offers + 1)
    near = np.abs(offers[:, None] - np.asarray(winners)[None, :]) <= radius
    return offers[near.any(axis=1)]


def _mask(offers: np.ndarray, n_offers: int) -> np.ndarray:
    """``(K+1,)`` bool: no-offer and ``offers``."""
    m = np.zeros(n_offers + 1, dtype=bool)
    m[0] = True
    m[np.asarray(offers)] = True
    return m


def _menu_params(params: WorldParams, menu: np.ndarray) -> WorldParams:
    """The world with the offers off ``menu`` (a ``(K+1,)`` mask) unavailable to the logger:
    eligibility probability 0, everything else (users, truth, eligibility draws) unchanged."""
    return params._replace(eligibility_prob=params.eligibility_prob * menu[None, :])


# ---------------------------------------------------------------------------------------------
# fitting and scoring
# ---------------------------------------------------------------------------------------------

def _features(x: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Features of the heads: ``x`` and the one-hot lifecycle segment (any leading axes)."""
    return np.concatenate([x, np.eye(3)[segment]], axis=-1)


class _Log(NamedTuple):
    """A simulated log as NumPy arrays (a leading log axis for a block of OPE logs)."""

    x: np.ndarray
    segment: np.ndarray
    eligible: np.ndarray
    action: np.ndarray
    prob: np.ndarray  # the logger's full distribution (n, K+1)
    value: np.ndarray
    cost: np.ndarray
    truth: Truth

    @property
    def pscore(self) -> np.ndarray:
        return np.take_along_axis(self.prob, self.action[..., None], axis=-1)[..., 0]

    @property
    def features(self) -> np.ndarray:
        return _features(self.x, self.segment)


def _block(cfg: MenuSizeSuiteConfig, key: jax.Array, params: WorldParams, world: WorldConfig,
           logging: LoggingConfig) -> _Log:
    """One simulation call: ``block_logs`` logs of ``n_ope`` rows (leading log axis); the one
    compiled shape of a (K, logging)."""
    b = simulate_batch(jax.random.split(key, cfg.block_logs), params, world, cfg.n_ope, logging)
    t = b.truth
    return _Log(*(np.asarray(a) for a in (b.x, b.segment, b.eligible, b.action, b.action_prob,
                                          b.value, b.cost)),
                Truth(*(np.asarray(a) for a in (t.mu_value, t.mu_cost, t.mu_value_accounting,
                                                t.response_type))))


def _draw(cfg: MenuSizeSuiteConfig, key: jax.Array, params: WorldParams, world: WorldConfig,
          logging: LoggingConfig, n: int) -> _Log:
    """A log of ``n`` users: blocks from ``key`` (split per block) concatenated, truncated to
    ``n`` rows (users are independent, so any ``n`` of them are a sample of the logger)."""
    per_call = cfg.block_logs * cfg.n_ope
    blocks = [_block(cfg, k, params, world, logging)
              for k in jax.random.split(key, -(-n // per_call))]

    def cat(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate([p.reshape(-1, *p.shape[2:]) for p in parts])

    return _first(jax.tree_util.tree_map(cat, *blocks), n)


def _first(log: _Log, m: int) -> _Log:
    """The first ``m`` entries of every leaf (logs of a block, or rows of a log)."""
    return jax.tree_util.tree_map(lambda a: a[:m], log)


def _union(a: _Log, b: _Log) -> _Log:
    """The rows of two logs of one world, each row keeping its own logger's propensities."""
    return jax.tree_util.tree_map(lambda u, v: np.concatenate([u, v]), a, b)


class _Fit:
    """Heads fitted on one log, and their predictions on the evaluation users: ``tau_v``,
    ``tau_c`` ``(n_eval, K+1)`` with 0 on the offers the fit did not use; ``explored`` ``(K+1,)``
    the actions the fit identified (no-offer included); ``counts`` logged rows per action."""

    def __init__(self, heads: UpliftHeads, counts: np.ndarray, f_eval: np.ndarray) -> None:
        self.heads, self.counts = heads, counts
        self.sup = np.asarray(heads.supported_actions_)
        self.explored = np.zeros(len(counts), dtype=bool)
        self.explored[self.sup] = True
        self.tau_v, self.tau_c = self.predict_tau(f_eval)

    def _fill(self, cols: Any, n: int) -> np.ndarray:
        out = np.zeros((n, len(self.explored)))
        out[:, self.sup] = np.asarray(cols)
        return out

    def predict_tau(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(tau_v, tau_c)`` ``(n, K+1)``: the fitted offers' columns, 0 elsewhere."""
        tv, tc = self.heads.predict_tau(f, actions=self.sup)
        return self._fill(tv, len(f)), self._fill(tc, len(f))

    def predict_mu_value(self, f: np.ndarray) -> np.ndarray:
        """The value head's ``mu`` ``(n, K+1)`` (``q_hat`` of DR), 0 off the fitted offers."""
        return self._fill(self.heads.predict_mu(f, actions=self.sup)[0], len(f))


def _fit_logs(cfg: MenuSizeSuiteConfig, logs: list[_Log], f_eval: np.ndarray) -> list[_Fit]:
    """The ``learner`` heads fitted on each log (one :meth:`UpliftHeads.fit_batch` call: the
    per-arm fits of logs of one shape share a compiled call), each row with its own logged
    propensities. An offer the logger uses but logged fewer than 2 times cannot be fitted: its
    rows are left out and that log is fitted without propensities (support = the offers still
    logged), so the offer counts as unexplored."""
    args: dict[str, list[Any]] = {f: [] for f in ("x", "action", "value", "cost", "action_prob")}
    counts = []
    for log in logs:
        k1 = log.prob.shape[1]
        c = np.bincount(log.action, minlength=k1)
        counts.append(c)
        thin = np.flatnonzero((c < MIN_ARM_ROWS) & (log.prob > 0).any(axis=0))
        keep = ~np.isin(log.action, thin)
        for f, a in zip(args, (log.features, log.action, log.value, log.cost, log.prob),
                        strict=True):
            args[f].append(a[keep])
        if thin.size:
            args["action_prob"][-1] = None
    if any(p is None for p in args["action_prob"]):  # fit_batch takes propensities for all or none
        heads = [make_heads(cfg.learner).fit(*(args[f][i] for f in ("x", "action")),
                                             value=args["value"][i], cost=args["cost"][i],
                                             action_prob=args["action_prob"][i],
                                             n_actions=len(counts[i])) for i in range(len(logs))]
    else:
        heads = make_heads(cfg.learner).fit_batch(args["x"], args["action"], args["value"],
                                                  args["cost"], args["action_prob"],
                                                  n_actions=len(counts[0]))
    return [_Fit(h, c, f_eval) for h, c in zip(heads, counts, strict=True)]


def _key(seed: int, *names: str | int) -> jax.Array:
    """``stream(seed, *names)`` exactly (``stream`` folds the names in one at a time), with the
    names after the first folded in here, so each new name tuple costs no compilation."""
    key = stream(seed, names[0])
    for name in names[1:]:
        key = jax.random.fold_in(key, stream_id(name))
    return key


class _Eval:
    """The world of one K and its evaluation population (uniform logger, ``stream(seed,
    "eval")``): features, eligibility, truth, the budget and the oracle's true value."""

    def __init__(self, cfg: MenuSizeSuiteConfig, seed: int, k: int) -> None:
        self.world = WorldConfig(n_offers=k)
        self.params = default_params(self.world)
        self.log = _draw(cfg, _key(seed, "eval"), self.params, self.world,
                         LoggingConfig(kind="uniform"), cfg.n_eval)
        self.f = self.log.features
        self.eligible = self.log.eligible
        self.truth = self.log.truth
        self.budget_per_user = cfg.policy.budget_per_user
        self.budget = self.budget_per_user * cfg.n_eval
        self.oracle_value = self.oracle(self.eligible)

    def value_of(self, action_dist: np.ndarray) -> float:
        """True incremental value per user of a policy on the evaluation users."""
        return policy_truth(self.truth, action_dist, eligible=self.eligible).incremental_value

    def oracle(self, eligible: np.ndarray) -> float:
        """True value of the allocator on the true effects over ``eligible``."""
        return self.value_of(np.asarray(optimal_policy(self.truth, self.budget,
                                                       eligible=eligible).action_dist))

    def score(self, fit: _Fit) -> tuple[dict[str, float], Any]:
        """The budgeted allocation on the fit's estimates over its explored offers (the
        ``eligible`` mask ``eval.eligible & explored``), scored by truth: ``regret`` and
        ``cost_ratio`` as allocated; ``regret_at_budget`` of the same policy kept to the budget
        in truth (:meth:`at_true_budget`); and the allocation."""
        e = self.eligible & fit.explored[None, :]
        alloc = allocate(fit.tau_v, fit.tau_c, budget=self.budget, eligible=e)
        t = policy_truth(self.truth, np.asarray(alloc.action_dist), eligible=self.eligible)
        value = t.incremental_value
        if t.incremental_cost > self.budget_per_user * (1 + AT_BUDGET_TOL):
            value = self.at_true_budget(fit, e, float(alloc.budget_multiplier))
        return {"regret": 1.0 - t.incremental_value / self.oracle_value,
                "cost_ratio": t.incremental_cost / self.budget_per_user,
                "regret_at_budget": 1.0 - value / self.oracle_value}, alloc

    def at_true_budget(self, fit: _Fit, eligible: np.ndarray, price: float) -> float:
        """True incremental value per user of an overspending policy re-allocated on its own
        estimates until its true cost keeps to the budget (within ``AT_BUDGET_TOL``): the rule
        ``argmax_a tau_v - p tau_c`` (:func:`policies.allocation.allocate_at_price`, the
        allocator's own form at its budget multiplier ``price``) at the lowest price ``p >=
        price`` found by bisection whose true spend is within the budget. The idea of
        :func:`experiments.suites._world_glue.score_at_true_budget` (the budget a deployment
        reaches by pacing on realised cost), searched over the price, which needs no knapsack
        solve per step."""
        tv, tc = np.asarray(self.truth.tau_value), np.asarray(self.truth.tau_cost)
        rows = np.arange(len(tv))
        cap = self.budget_per_user * (1 + AT_BUDGET_TOL)

        def spent(p: float) -> tuple[float, float]:
            a = allocate_at_price(fit.tau_v, fit.tau_c, price=p, eligible=eligible).action
            return float(tv[rows, a].mean()), float(tc[rows, a].mean())

        lo, hi = price, max(2.0 * price, 1e-3)
        for _ in range(60):  # a price high enough that the rule keeps to the budget
            best = spent(hi)
            if best[1] <= cap:
                break
            lo, hi = hi, 2.0 * hi
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            v, c = spent(mid)
            if c <= cap:
                hi, best = mid, (v, c)
            else:
                lo = mid
            if hi - lo <= AT_BUDGET_TOL * hi:
                break
        return best[0]


# ---------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------

def _sweep_cell(cfg: MenuSizeSuiteConfig, seed: int, k: int, kind: str, ev: _Eval
                ) -> dict[str, float]:
    """The metrics of one (K, logging) cell of one seed (module docstring)."""
    logging = dataclasses.replace(cfg.logging, kind=kind)
    keys = jax.random.split(_key(seed, "train", k, kind), cfg.n_fits)
    tau_v, tau_c = ev.truth.tau_value, ev.truth.tau_cost
    per_fit: list[dict[str, float]] = []
    estimates, fits = [], []
    logs = [_draw(cfg, key, ev.params, ev.world, logging, cfg.n_train) for key in keys]
    for log, fit in zip(logs, _fit_logs(cfg, logs, ev.f), strict=True):
        offers = fit.counts[1:]
        scored, alloc = ev.score(fit)
        per_fit.append({
            "rows_min": float(offers.min()), "rows_median": float(np.median(offers)),
            "support_ratio_min": float(offers.min() / (cfg.n_train / (k + 1))),
            "pscore_min": float(log.pscore.min()),
            "pehe_value": pehe(fit.tau_v, tau_v, ev.eligible),
            "pehe_cost": pehe(fit.tau_c, tau_c, ev.eligible), **scored})
        estimates.append(fit.tau_v[:, 1:])
        fits.append((fit, alloc))
    out = {m: float(np.mean([p[m] for p in per_fit])) for m in per_fit[0]}
    stack = np.stack(estimates)  # (n_fits, n_eval, K)
    mask = ev.eligible[:, 1:]
    variance = float(stack.var(axis=0, ddof=1)[mask].mean())
    mse = float(np.mean([p["pehe_value"] ** 2 for p in per_fit]))
    out["tau_variance"] = variance
    out["tau_bias2"] = float(((stack.mean(axis=0) - tau_v[:, 1:]) ** 2)[mask].mean()
                             - variance / cfg.n_fits)
    out["variance_share"] = variance / mse if mse > 0 else np.nan
    fit0, alloc0 = fits[0]
    out.update(_coverage(cfg, seed, k, kind, logging, ev, fit0, float(alloc0.budget_multiplier)))
    return out


def _coverage(cfg: MenuSizeSuiteConfig, seed: int, k: int, kind: str, logging: LoggingConfig,
              ev: _Eval, fit: _Fit, price: float) -> dict[str, float]:
    """OPE of the fitted policy (the allocation rule at ``price``) on fresh logs of the same
    logger: coverage and mean width of each estimator's CI, ESS share of the weights."""
    n_calls = -(-cfg.n_ope_logs // cfg.block_logs)
    covered: dict[str, list[np.ndarray]] = {name: [] for name in cfg.ope.estimators}
    width: dict[str, list[np.ndarray]] = {name: [] for name in cfg.ope.estimators}
    ess: list[np.ndarray] = []
    weighted = [name for name in cfg.ope.estimators if name != "dm"]  # ESS of the weights
    left = cfg.n_ope_logs
    for key in jax.random.split(_key(seed, "ope", k, kind), n_calls):
        b = _first(_block(cfg, key, ev.params, ev.world, logging), min(left, cfg.block_logs))
        left -= len(b.action)
        s, n, k1 = b.eligible.shape
        flat = b.features.reshape(s * n, -1)
        tv, tc = fit.predict_tau(flat)
        elig = b.eligible.reshape(s * n, k1) & fit.explored[None, :]
        pi = np.asarray(allocate_at_price(tv, tc, price=price, eligible=elig).action_dist)
        pi = pi.reshape(s, n, k1)
        q = fit.predict_mu_value(flat).reshape(s, n, k1)
        truth = np.sum(pi * b.truth.mu_value, axis=-1).mean(axis=-1)  # each log's exact value
        args = dict(reward=b.value, action=b.action, pscore=b.pscore, action_dist=pi, q_hat=q,
                    alpha=cfg.ope.alpha)
        for name in cfg.ope.estimators:
            est = ope.estimate_batch(name, lambda_=cfg.ope.lambda_for(name), **args)
            covered[name].append((est.ci_low <= truth) & (truth <= est.ci_high))
            width[name].append(est.ci_high - est.ci_low)
            if weighted and name == weighted[0]:
                ess.append(est.ess / cfg.n_ope)
    out = {}
    for name in cfg.ope.estimators:
        out[f"coverage_{name}"] = float(np.concatenate(covered[name]).mean())
        out[f"ci_width_{name}"] = float(np.concatenate(width[name]).mean())
    if ess:
        out["ess_share"] = float(np.concatenate(ess).mean())
    return out


# ---------------------------------------------------------------------------------------------
# the remedy
# ---------------------------------------------------------------------------------------------

def _winners(cfg: MenuSizeSuiteConfig, phase1: _Log, fit: _Fit, coarse: np.ndarray
             ) -> np.ndarray:
    """The ``n_winners`` coarse offers with the most mass in the budgeted allocation of the
    phase-1 heads on the phase-1 users (ties: the larger mean estimated net effect
    ``tau_v - tau_c``, then the shallower offer)."""
    tv, tc = fit.predict_tau(phase1.features)
    e = phase1.eligible & fit.explored[None, :]
    alloc = allocate(tv, tc, budget=cfg.policy.budget_per_user * len(tv), eligible=e)
    mass = np.asarray(alloc.action_dist).sum(axis=0)[coarse]
    net = (tv - tc).mean(axis=0)[coarse]
    order = np.lexsort((coarse, -net, -mass))  # the last key is the primary one
    return np.sort(coarse[order[:cfg.n_winners]])


def _remedy(cfg: MenuSizeSuiteConfig, seed: int, ev: _Eval) -> list[dict[str, Any]]:
    """Rows of the three designs at the largest K (module docstring), ``n_fits`` fits each;
    streams ``stream(seed, "remedy", design or phase, fit index)``."""
    k = ev.world.n_offers
    uniform = LoggingConfig(kind="uniform")
    coarse = coarse_offers(k, cfg.coarse_size)
    coarse_params = _menu_params(ev.params, _mask(coarse, k))
    n1 = round(cfg.phase1_share * cfg.n_train)
    per: dict[str, list[dict[str, float]]] = {d: [] for d in DESIGNS}
    tau = ev.truth.tau_value

    def draw(name: str, r: int, params: WorldParams, n: int) -> _Log:
        return _draw(cfg, _key(seed, "remedy", name, r), params, ev.world, uniform, n)

    fits_r = range(cfg.n_fits)
    phase1 = [draw("phase1", r, coarse_params, n1) for r in fits_r]
    phase2 = []
    for log, fit in zip(phase1, _fit_logs(cfg, phase1, ev.f), strict=True):
        menu2 = expand_offers(_winners(cfg, log, fit, coarse), k, cfg.expand_radius)
        phase2.append(draw("phase2", len(phase2), _menu_params(ev.params, _mask(menu2, k)),
                           cfg.n_train - n1))
    logs = {"full_menu": [draw("full_menu", r, ev.params, cfg.n_train) for r in fits_r],
            "coarse_then_expand": [_union(a, b) for a, b in zip(phase1, phase2, strict=True)],
            "coarse_only": [draw("coarse_only", r, coarse_params, cfg.n_train) for r in fits_r]}
    fitted = _fit_logs(cfg, [log for d in DESIGNS for log in logs[d]], ev.f)
    fits = {d: fitted[i * cfg.n_fits:(i + 1) * cfg.n_fits] for i, d in enumerate(DESIGNS)}
    for r in fits_r:
        full = fits["full_menu"][r]
        for design in DESIGNS:
            fit = fits[design][r]
            e = ev.eligible & fit.explored[None, :]
            scored, _ = ev.score(fit)
            per[design].append({
                **scored, "restricted_oracle_regret": 1.0 - ev.oracle(e) / ev.oracle_value,
                "pehe_value": pehe(fit.tau_v, tau, e),
                "pehe_full_menu_heads": pehe(full.tau_v, tau, e),
                "n_explored": float(fit.explored[1:].sum()),
                "rows_per_explored_offer": float(np.median(fit.counts[1:][fit.explored[1:]]))})
    rows = []
    for design, metrics in per.items():
        for m in metrics[0]:
            rows.append(dict(design=design, logging="uniform", n_offers=k, metric=m,
                             value=float(np.mean([p[m] for p in metrics]))))
    return rows


# run, tables, figures
# ---------------------------------------------------------------------------------------------

def run(cfg: MenuSizeSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(design, logging, n_offers, metric, value, seed, n_train)``: design
    ``"sweep"`` for the menu-size sweep, one of :data:`DESIGNS` for the remedy (module docstring
    for every metric and stream)."""
    rows: list[dict[str, Any]] = []
    evals: dict[int, _Eval] = {}
    jobs = [(k, kind) for k in cfg.menu_sizes for kind in cfg.loggings]
    for k, kind in tqdm(jobs, desc="menu_size suite", disable=quiet_bar(progress), leave=False):
        if k not in evals:
            evals[k] = _Eval(cfg, seed, k)
        for metric, value in _sweep_cell(cfg, seed, k, kind, evals[k]).items():
            rows.append(dict(design=SWEEP, logging=kind, n_offers=k, metric=metric,
                             value=float(value)))
    if cfg.remedy:
        k = max(cfg.menu_sizes)
        rows += _remedy(cfg, seed, evals.get(k) or _Eval(cfg, seed, k))
    out = pd.DataFrame(rows)
    out["seed"] = seed
    out["n_train"] = cfg.n_train
    return out


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error over seeds (``sd / sqrt(seeds)``) and seed count per (design,
    logging, n_offers, metric)."""
    g = df.groupby(["design", "logging", "n_offers", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", sd="std", count="count").reset_index()
    out["se"] = out["sd"].fillna(0.0) / np.sqrt(out["count"])
    return out.drop(columns="sd")


def paired_gap(df: pd.DataFrame, metric: str, design: str, baseline: str = "full_menu",
               baseline_metric: str | None = None) -> tuple[float, float, int]:
    """Mean over seeds of ``metric(design) - baseline_metric(baseline)`` (remedy rows, paired
    by seed; ``baseline_metric`` defaults to ``metric``), its standard error (seed-to-seed sd of
    the gap / sqrt(seeds)) and the number of seeds."""
    a = df[(df.design == design) & (df.metric == metric)].set_index("seed")["value"]
    b = df[(df.design == baseline) & (df.metric == (baseline_metric or metric))]
    gap = (a - b.set_index("seed")["value"]).dropna()
    se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
    return float(gap.mean()), se, len(gap)


def _cell(mean: float, se: float, fmt: str) -> str:
    return f"{mean:{fmt}} ± {se:{fmt}}"


HEADLINE = ("rows_median", "pscore_min", "tau_variance", "pehe_value", "regret_at_budget",
            "cost_ratio", "coverage_ips", "coverage_dr")


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """The headline table: one row per (design, logging, K), mean ± s.e. over seeds of the
    sweep's support, variance, PEHE, regret and coverage, and the remedy's regret and PEHE."""
    s = aggregate(df)
    metrics = [m for m in HEADLINE if m in set(s.metric)]
    metrics += [m for m in ("restricted_oracle_regret", "n_explored") if m in set(s.metric)]
    s = s[s.metric.isin(metrics)]
    s = s.assign(cell=[_cell(m, e, ".4g") for m, e in zip(s["mean"], s["se"], strict=True)])
    wide = s.pivot_table(index=["design", "logging", "n_offers"], columns="metric",
                         values="cell", aggfunc="first", sort=False)
    return wide.reindex(columns=[m for m in metrics if m in wide.columns]).fillna("").reset_index()


def _sweep(s: pd.DataFrame) -> pd.DataFrame:
    return s[s.design == SWEEP]


PANELS = (("rows_median", "logged rows per offer (median)", True),
          ("pscore_min", "smallest logged propensity", True),
          ("tau_variance", "variance of tau_hat (value)", True),
          ("pehe_value", "PEHE, value head", True),
          ("regret_at_budget", "true regret at the budget, % of oracle", False),
          ("cost_ratio", "true cost / budget, as allocated", False),
          ("coverage_ips", "IPS 95% CI coverage", False),
          ("coverage_dr", "DR 95% CI coverage", False))


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``menu_size_sweep.png``: each quantity against K (log2 axis), one line per logger,
    mean ± s.e. over seeds; ``menu_size_remedy.png``: the remedy's designs side by side."""
    plt = pyplot()
    out_dir = Path(out_dir)
    s = aggregate(df)
    sweep = _sweep(s)
    paths = []
    panels = [p for p in PANELS if p[0] in set(sweep.metric)]
    if panels:
        cols = 4
        rows_n = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(4.5 * cols, 3.6 * rows_n), squeeze=False)
        ks = sorted(sweep.n_offers.unique())
        for ax, (metric, title, log_y) in zip(axes.flat, panels, strict=False):
            part = sweep[sweep.metric == metric]
            scale = 100.0 if metric.startswith("regret") else 1.0
            for kind, g in part.groupby("logging", sort=False):
                g = g.sort_values("n_offers")
                ax.errorbar(g.n_offers, scale * g["mean"], yerr=scale * g.se, capsize=3,
                            label=kind, **series_style(kind))
            log_axis(ax, "x", ks)
            if log_y:
                log_axis(ax, "y")
            if metric.startswith("coverage"):
                ax.axhline(0.95, color="k", lw=0.8, ls="--")
            if metric.startswith("regret"):
                ax.axhline(0.0, color="k", lw=0.6)
            if metric == "cost_ratio":
                ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_xlabel("K (offers on the menu)")
            ax.set_ylabel(metric.replace("_", " "))
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3, which="both")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        figure_legend(fig, axes, title="logging", fontsize=8)
        paths.append(save(fig, out_dir, "menu_size_sweep.png"))
    remedy = s[s.design.isin(DESIGNS)]
    if not remedy.empty:
        paths.append(_plot_remedy(remedy, out_dir))
    return paths


def _plot_remedy(remedy: pd.DataFrame, out_dir: Path) -> Path:
    plt = pyplot()
    designs = [d for d in DESIGNS if d in set(remedy.design)]
    k = int(remedy.n_offers.iloc[0])
    panels = (("regret_at_budget", "true regret at the budget, % of oracle", 100.0),
              ("restricted_oracle_regret", "regret of the oracle on the explored menu, %",
               100.0),
              ("pehe_value", "PEHE on the explored offers", 1.0),
              ("rows_per_explored_offer", "logged rows per explored offer", 1.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (metric, title, scale) in zip(axes[0], panels, strict=True):
        part = remedy[remedy.metric == metric].set_index("design").reindex(designs)
        for i, d in enumerate(designs):
            ax.bar(i, scale * part.loc[d, "mean"], yerr=scale * part.loc[d, "se"], capsize=3,
                   color=series_style(d)["color"], label=d)
        if metric == "pehe_value":
            ref = remedy[remedy.metric == "pehe_full_menu_heads"].set_index("design").reindex(
                designs)
            ax.scatter(range(len(designs)), ref["mean"], marker="_", s=400, color="k", zorder=3,
                       label="full_menu heads, same offers")
        ax.set_xticks(range(len(designs)))
        ax.set_xticklabels([d.replace("_", "\n") for d in designs], fontsize=8)
        ax.set_xlabel(f"design (K = {k}, same users)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    figure_legend(fig, axes, fontsize=8)
    return save(fig, out_dir, "menu_size_remedy.png")


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``menu_size.csv`` (every row), ``menu_size.md`` (mean ± s.e. over seeds: the sweep per
    logger and K, the remedy per design with the paired gaps to the full menu) and the
    figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "menu_size.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = aggregate(df)
    n_seeds = df.seed.nunique()
    n_train = int(df.n_train.iloc[0]) if "n_train" in df else None
    lines = [f"Menu size at n_train = {n_train} training users per fit; mean ± s.e. over "
             f"{n_seeds} seed(s). Regret: % of the oracle's true incremental value; coverage: "
             "share of fresh logs whose 95% CI covers the policy's exact value.", ""]
    sweep = _sweep(s)
    metrics = [m for m in (*SWEEP_METRICS, "coverage_ips", "coverage_dr", "ci_width_ips",
                           "ci_width_dr", "ess_share") if m in set(sweep.metric)]
    for kind in dict.fromkeys(sweep.logging):
        part = sweep[sweep.logging == kind]
        lines += [f"### Sweep, {kind} logging", "", "| K | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for k in sorted(part.n_offers.unique()):
            cells = []
            for m in metrics:
                r = part[(part.n_offers == k) & (part.metric == m)]
                scale = 100.0 if m.startswith("regret") else 1.0
                cells.append(_cell(scale * r["mean"].iloc[0], scale * r["se"].iloc[0], ".3g")
                             if len(r) else "")
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("")
    remedy = s[s.design.isin(DESIGNS)]
    if not remedy.empty:
        k = int(remedy.n_offers.iloc[0])
        rm = [m for m in REMEDY_METRICS if m in set(remedy.metric)]
        lines += [f"### Remedy at K = {k} (uniform logging, the same users in total)", "",
                  "| design | " + " | ".join(rm) + " |", "|---|" + "---|" * len(rm)]
        for d in [d for d in DESIGNS if d in set(remedy.design)]:
            cells = []
            for m in rm:
                r = remedy[(remedy.design == d) & (remedy.metric == m)]
                scale = 100.0 if "regret" in m else 1.0
                cells.append(_cell(scale * r["mean"].iloc[0], scale * r["se"].iloc[0], ".3g"))
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
        lines.append("")
        for d in ("coarse_then_expand", "coarse_only"):
            if d in set(remedy.design) and "full_menu" in set(remedy.design):
                g, se, n = paired_gap(df, "regret_at_budget", d)
                lines.append(f"- regret_at_budget of {d} minus full_menu (paired by seed, {n} "
                             f"seeds): {100 * g:.3g} ± {100 * se:.2g} percentage points.")
                g, se, n = paired_gap(df, "pehe_value", d, baseline=d,
                                      baseline_metric="pehe_full_menu_heads")
                lines.append(f"- PEHE of {d} minus the full_menu heads' on the same offers "
                             f"(paired by seed, {n} seeds): {g:.3g} ± {se:.2g}.")
        lines.append("")
    md = out_dir / "menu_size.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="menu_size", config_class=MenuSizeSuiteConfig, run=run, plot=plot,
              write=write_results, summary=summary,
              key_columns=("design", "logging", "n_offers"), result_seeds=(0, 1, 2, 3, 4))
