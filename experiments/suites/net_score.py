"""Net-score suite: lesson 3 ("cost and value need separate diagnostics") made visible.

One net-score model against separate value and cost heads, scored by the world's exact truth at
several budgets, on the default world and on a world where value and cost differ clearly in noise
and density.

**Worlds** (``worlds``). ``default``: :func:`simulators.default_params` of ``world``.
``sparse_value``: the same users and effects with three knobs turned (the noise and density
knobs are :class:`simulators.world.WorldParams` fields, replaced with ``_replace``;
:class:`simulators.WorldConfig` only holds sizes):

* ``basket_sigma = sparse_basket_sigma`` (1.4, default world 0.7): the log-normal basket noise
  of the value label. The basket is mean-preserving (``mean * exp(sigma Z - sigma^2 / 2)``), so
  ``mu_value`` is unchanged and only the tail gets heavier;
* ``redeem_prob[1:] = sparse_redeem_prob`` (1.0, default 0.85): every buyer who got an offer
  redeems it, so the cost label is the face value times the purchase indicator: dense and with no
  redemption noise (``mu_cost`` rises by ``1 / 0.85``, and the truth says so);
* value observed for a random share ``sparse_value_share`` (0.3) of the logged rows and scaled up
  by its inverse: ``y_v' = y_v B / q``, ``B ~ Bernoulli(q)`` independent of everything
  (``stream(seed, "thin")``), so ``E[y_v' | x, a] = mu_value(x, a)`` (the truth is unchanged)
  while the value label becomes sparser than the cost label and heavier-tailed (a conversion
  attributed for only part of the users). The cost label is untouched.

The ``labels`` section reports each world's label density (share of non-zero labels on the rows
logged with an offer) and coefficient of variation, value against cost, from the training log.

**Separate heads** (approach ``separate``; ``separate`` names): ``default`` is the nested
``learner`` (:class:`~experiments.configs.HeadsConfig`, the library default: TARNet value head
with inverse-propensity row weights, weighted hurdle cost head), ``hurdle`` the linear two-part
pair (the previous default, unweighted), ``ridge_t``
two ridge T-learners (``alpha = 1``), ``tarnet`` a TARNet pair (Huber value head, squared-error
cost head, :data:`estimators.tarnet.VALUE_CONFIG` / :data:`~estimators.tarnet.COST_CONFIG`, rows
weighted by ``1 / pscore``). Each pair's ``tau_v_hat, tau_c_hat`` on the evaluation users are
allocated at each budget by the exact allocator :func:`policies.allocation.allocate`; its budget
multiplier ``lambda`` is chosen by the budget (0 when the budget does not bind).

**Net-score head** (approach ``net``; ``net`` names). ONE learner of the same family fitted on
the per-row label ``y_v - lambda y_c`` for each ``lambda`` of the grid ``lambdas`` (ascending,
from 0): ``ridge_t`` a ridge T-learner (``alpha = 1``), ``tarnet`` one TARNet (the Huber value
configuration, since value noise dominates the net label, rows weighted by ``1 / pscore``),
``tarnet_mse`` the same with squared error. Its score ``s_lambda(x, a)`` estimates ``tau_v(x, a)
- lambda tau_c(x, a)``; per user the candidate is the best eligible offer ``a*(x) = argmax_{a >=
1} s_lambda(x, a)`` with score ``m(x) = s_lambda(x, a*)``, and the policy with threshold ``t``
gives ``a*`` to users with ``m > t`` and no offer to the rest. (A ridge T-learner is linear in its
label, so the ridge net score equals ``tau_v_hat - lambda tau_c_hat`` of the ridge T pair: for
ridge the two approaches differ only in how the budget is met.)

A net-score model fixes ``lambda`` before it is fitted and has no cost estimate per user, so to
meet a budget ``B`` (per user) it needs an outside cost meter. Here that is IPS on a holdout log
(``n_holdout`` more rows from the same ``logging`` policy, used by this approach only: extra
data the separate heads do not get). The incremental cost of a deterministic policy ``pi`` on
the holdout is ``C_hat(pi) = (1/n_h) sum_h [1{A_h = pi(x_h)} c_h / e_h(A_h) - 1{A_h = 0} c_h /
e_h(0)]`` (counting only users ``pi`` treats: an untreated user contributes the no-offer term
twice with opposite signs). **The rule** (:func:`select_net_policy`):

1. for each grid ``lambda`` the policy with ``t = 0`` (treat every positive net score) has
   holdout cost ``C0(lambda)``;
2. if ``C0(lambda_1) <= B`` the budget does not bind: ``lambda* = lambda_1``, ``t* = 0``;
3. else ``lambda*`` is the smallest grid ``lambda`` with ``C0(lambda) <= B`` and the budget left
   is *filled* by net-score rank: holdout users sorted by ``m`` (decreasing) are added while the
   holdout cost stays ``<= B`` (``t*`` = the score of the first user left out, at most 0);
4. if no grid ``lambda`` meets the budget, ``lambda*`` is the largest and the positive scores are
   *capped* by rank the same way (``t* >= 0``).

The evaluation users then get ``a*`` where ``m > t*`` under the ``lambda*`` model.

**Oracle lambda** (approach ``net_oracle_lambda``): the upper bound of the approach, a perfect
cost meter and free choice: over every grid ``lambda`` and every rank threshold, the policy with
the largest true incremental value whose true incremental cost is ``<= B`` on the evaluation
users. Any ``net`` policy that keeps to the budget in truth is one of its candidates, so the bound
holds for those.

**Metrics** per (world, approach, learner, budget), section ``budget``, all on the evaluation
users and per user: ``incremental_value`` (true), ``regret_pct`` ``100 (V* - V) / V*`` against
the exact truth oracle ``V*`` at that budget (:func:`policies.baselines.oracle`, approach
``oracle``), ``incremental_cost`` (true), ``cost_over_budget`` (true cost / ``B``),
``estimated_cost_over_budget`` (the approach's own estimate / ``B``: the cost head's for
``separate``, the holdout IPS for ``net``), ``treated_share``, ``lambda_used``, for ``net``
``filled`` / ``capped`` (1 when the rule took step 3 / step 4), and
``net_calibration``: the truth-binned calibration error (:func:`binned_calibration_error`) of the
score the decision used, ``tau_v_hat - lambda tau_c_hat`` at the allocator's ``lambda`` for
``separate``, ``s_lambda*`` for ``net``, against the true net effect ``tau_v - lambda tau_c`` at
the same ``lambda``. Section ``calibration`` (per grid ``lambda``): ``net_calibration`` of every
approach at that ``lambda`` (the separate heads' implied net score). Section ``heads``:
``value_calibration`` and ``cost_calibration`` of the separate heads, absolute and divided by the
standard deviation of the true effect (``*_rel``). Unused key columns are 0 (``budget_per_user``
outside ``budget``, ``lambda`` outside ``calibration``).

Streams: ``stream(seed, "train")``, ``stream(seed, "holdout")`` (both the ``logging`` policy),
``stream(seed, "eval")`` (uniform) and ``stream(seed, "thin")``; the worlds share them (common
random users). Run ``python -m experiments.run experiment=net_score``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators import metrics
from estimators.checks import fail
from estimators.heads import (
    HURDLE_HEADS,
    HeadConfig,
    HeadsConfig,
    make_heads,
    make_learner,
)
from estimators.tarnet import COST_CONFIG, VALUE_CONFIG
from experiments.configs import LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.allocation import features
from experiments.suites.base import Suite, mean_se, quiet_bar, stream
from policies import baselines
from policies.allocation import allocate
from simulators import LoggedData, WorldParams, default_params, policy_truth, simulate

__all__ = ["NET_LEARNERS", "SEPARATE_HEADS", "SUITE", "WORLDS", "NetChoice",
           "NetScoreSuiteConfig", "best_offer", "binned_calibration_error", "headline",
           "ips_cost_terms", "net_label", "net_policy", "oracle_lambda_policy", "plot", "run",
           "select_net_policy", "summary", "world_params", "write_results"]

WORLDS = ("default", "sparse_value")
_TARNET_V = dataclasses.replace(VALUE_CONFIG, weight_by_propensity=True)
_TARNET_C = dataclasses.replace(COST_CONFIG, weight_by_propensity=True)
# the separate pairs; "default" is the suite's nested ``learner``
SEPARATE_HEADS: dict[str, HeadsConfig | None] = {
    "default": None,
    "hurdle": HURDLE_HEADS,
    "ridge_t": HeadsConfig(value=HeadConfig(), cost=HeadConfig()),
    "tarnet": HeadsConfig(value=HeadConfig(learner="tarnet", tarnet=_TARNET_V),
                          cost=HeadConfig(learner="tarnet", tarnet=_TARNET_C)),
}
# the single net-score learners (same families as the separate pairs)
NET_LEARNERS: dict[str, HeadConfig] = {
    "ridge_t": HeadConfig(),
    "tarnet": HeadConfig(learner="tarnet", tarnet=_TARNET_V),
    "tarnet_mse": HeadConfig(learner="tarnet", tarnet=_TARNET_C),
}
# one colour per learner family in the figures (series_style names), one line style per approach
_STYLE_NAME = {"default": "default", "hurdle": "hurdle", "ridge_t": "t_ridge",
               "tarnet": "tarnet", "tarnet_mse": "t_mlp"}
_LINESTYLE = {"separate": "-", "net": "--", "net_oracle_lambda": ":", "oracle": "-"}
APPROACHES = ("oracle", "separate", "net", "net_oracle_lambda")


@dataclasses.dataclass(frozen=True)
class NetScoreSuiteConfig:
    """``worlds``: names of :data:`WORLDS`; ``separate`` / ``net``: names of
    :data:`SEPARATE_HEADS` / :data:`NET_LEARNERS`; ``lambdas``: the net-score grid (ascending,
    distinct, >= 0; starting at 0 lets an unbinding budget meet the value-only policy);
    ``budgets``: budgets per evaluation user (the default world's oracle stops spending at about
    5.2 per user, so 25 does not bind); ``n_holdout``: the net score's cost-meter log;
    ``n_bins``: calibration bins per offer; ``sparse_*``: the ``sparse_value`` world's knobs
    (module docstring). The full size takes about 70 s per seed on 2 shared CPU cores (3
    seeds: 5 minutes with the report); the compact preset about 25 s."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    worlds: tuple[str, ...] = WORLDS
    separate: tuple[str, ...] = ("default", "hurdle", "ridge_t", "tarnet")
    net: tuple[str, ...] = ("ridge_t", "tarnet")
    lambdas: tuple[float, ...] = (0.0, 0.3, 0.6, 1.0, 1.5, 2.5, 4.0)
    budgets: tuple[float, ...] = (0.25, 1.0, 3.0, 25.0)
    n_train: int = 30_000
    n_holdout: int = 10_000
    n_eval: int = 20_000
    n_bins: int = 10
    sparse_basket_sigma: float = 1.4
    sparse_redeem_prob: float = 1.0
    sparse_value_share: float = 0.3

    @classmethod
    def compact(cls) -> NetScoreSuiteConfig:
        return cls(separate=("default", "ridge_t"), net=("ridge_t",),
                   lambdas=(0.0, 0.5, 1.0, 2.0, 4.0), budgets=(0.5, 2.0, 25.0), n_train=6_000,
                   n_holdout=3_000, n_eval=4_000)

    def __post_init__(self) -> None:
        name = "NetScoreSuiteConfig"
        for field, known in (("worlds", WORLDS), ("separate", tuple(SEPARATE_HEADS)),
                             ("net", tuple(NET_LEARNERS))):
            values = tuple(getattr(self, field))
            bad = [v for v in values if v not in known]
            if not values or bad or len(set(values)) != len(values):
                fail(f"{name}.{field}", f"distinct names of {list(known)} (non-empty), got "
                     f"{values!r}", f"e.g. {field}={list(known[:2])}")
        lam = tuple(self.lambdas)
        if (not lam or not all(isinstance(v, int | float) and not isinstance(v, bool)
                               and math.isfinite(v) and v >= 0 for v in lam)
                or any(b <= a for a, b in itertools.pairwise(lam))):
            fail(f"{name}.lambdas", f"a non-empty strictly increasing grid of finite values >= 0,"
                 f" got {lam!r}", "e.g. lambdas=[0, 0.5, 1, 2, 4]")
        if not self.budgets or not all(isinstance(b, int | float) and not isinstance(b, bool)
                                       and math.isfinite(b) and b > 0 for b in self.budgets):
            fail(f"{name}.budgets", f"non-empty, every budget per user finite and > 0, got "
                 f"{self.budgets!r}", "e.g. budgets=[0.25, 1.0, 3.0]")
        for field, low in (("n_train", 200), ("n_holdout", 100), ("n_eval", 100), ("n_bins", 2)):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                fail(f"{name}.{field}", f"must be an int >= {low}, got {v!r}",
                     f"raise {field}")
        if self.n_eval < 2 * self.n_bins:
            fail(f"{name}.n_bins", f"at most n_eval / 2 = {self.n_eval // 2} bins, got "
                 f"{self.n_bins}", "use fewer bins or a larger n_eval")
        if not (math.isfinite(self.sparse_basket_sigma) and self.sparse_basket_sigma >= 0):
            fail(f"{name}.sparse_basket_sigma", f"must be finite and >= 0, got "
                 f"{self.sparse_basket_sigma!r}", "e.g. 1.4")
        if not 0.0 <= self.sparse_redeem_prob <= 1.0:
            fail(f"{name}.sparse_redeem_prob", f"must lie in [0, 1], got "
                 f"{self.sparse_redeem_prob!r}", "e.g. 1.0")
        if not 0.0 < self.sparse_value_share <= 1.0:
            fail(f"{name}.sparse_value_share", f"must lie in (0, 1], got "
                 f"{self.sparse_value_share!r}", "e.g. 0.3 (1 keeps every value label)")
        if self.logging.kind == "confounded":
            fail(f"{name}.logging", "the confounded logger records no propensities, so the "
                 "net score's IPS cost meter is not identified", "use a randomised logging kind")


# ------------------------------------------------------------------------------- the worlds


def world_params(cfg: NetScoreSuiteConfig, name: str) -> WorldParams:
    """The parameters of world ``name`` (module docstring)."""
    params = default_params(cfg.world)
    if name == "default":
        return params
    if name == "sparse_value":
        redeem = np.asarray(params.redeem_prob).copy()
        redeem[1:] = cfg.sparse_redeem_prob
        return params._replace(basket_sigma=jnp.asarray(float(cfg.sparse_basket_sigma)),
                               redeem_prob=jnp.asarray(redeem))
    fail("NetScoreSuiteConfig.worlds", f"unknown world {name!r}", f"one of {list(WORLDS)}")


def _value_label(cfg: NetScoreSuiteConfig, name: str, log: LoggedData, key: jax.Array
                 ) -> np.ndarray:
    """The logged value label: as simulated, or thinned to ``y B / q`` in ``sparse_value``."""
    y = np.asarray(log.value, dtype=np.float64)
    if name != "sparse_value" or cfg.sparse_value_share >= 1.0:
        return y
    q = float(cfg.sparse_value_share)
    keep = np.asarray(jax.random.bernoulli(key, q, (len(y),)))
    return np.where(keep, y / q, 0.0)


# --------------------------------------------------------------- the net-score protocol


def net_label(value: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """The net-score label of each logged row, ``y_v - lambda y_c``."""
    return np.asarray(value, dtype=np.float64) - float(lam) * np.asarray(cost, dtype=np.float64)


def best_offer(score: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user the best eligible offer ``a* = argmax_{a >= 1} score[:, a]`` (ties: the lower
    index) and its score ``m`` (:func:`estimators.metrics.best_offer`), with ``m = -inf`` for a
    user with no eligible offer (``a* = 0``), so that rank rules never reach them."""
    best, m = metrics.best_offer(np.asarray(score, dtype=np.float64), eligible)
    return best, np.where(best == 0, -np.inf, m)


def net_policy(score: np.ndarray, eligible: np.ndarray, threshold: float) -> np.ndarray:
    """The net-score policy ``(n, K+1)``: ``a*`` (:func:`best_offer`) to users with ``m >
    threshold``, no offer to the rest."""
    best, m = best_offer(score, eligible)
    treat = m > threshold
    dist = np.zeros(np.shape(score))
    dist[np.arange(len(m)), np.where(treat, best, 0)] = 1.0
    return dist


def ips_cost_terms(best: np.ndarray, action: np.ndarray, cost: np.ndarray,
                   action_prob: np.ndarray) -> np.ndarray:
    """Per holdout row, its term of the IPS incremental cost *if the policy treats it* with
    ``best``: ``1{A = best} c / e(A) - 1{A = 0} c / e(0)`` (an untreated row contributes 0).
    ``C_hat(pi) = mean over rows of the terms of the treated rows``."""
    a = np.asarray(action)
    c = np.asarray(cost, dtype=np.float64)
    e = np.asarray(action_prob, dtype=np.float64)
    p = e[np.arange(len(a)), a]
    return np.where(a == best, c / p, 0.0) - np.where(a == 0, c / p, 0.0)


class NetChoice(NamedTuple):
    """The net-score rule's choice at a budget: grid index and value of ``lambda*``, threshold
    ``t*``, the holdout IPS cost per user of the chosen policy, ``C0`` per grid ``lambda``, and
    ``mode``: ``"unbinding"``, ``"fill"`` or ``"cap"``."""

    index: int
    lam: float
    threshold: float
    estimated_cost: float
    cost_at_zero: np.ndarray
    mode: str


def _rank_threshold(m: np.ndarray, terms: np.ndarray, budget: float, fill: bool
                    ) -> tuple[float, float]:
    """Threshold and holdout cost of the fill (``fill``) or cap step of :func:`select_net_policy`
    for holdout scores ``m`` and IPS terms: users sorted by ``m`` (decreasing, finite only) are
    taken while the running cost ``sum terms / n_h`` stays ``<= budget``; the positive scores are
    always kept when filling and never exceeded when capping."""
    n_h = len(m)
    finite = np.isfinite(m)
    order = np.argsort(-m[finite], kind="stable")
    ms, ts = m[finite][order], terms[finite][order]
    cum = np.cumsum(ts) / n_h
    over = np.flatnonzero(cum > budget * (1.0 + 1e-12))
    first = int(over[0]) if len(over) else len(ms)  # leading prefix within the budget
    positive = int(np.sum(ms > 0))
    k = max(positive, first) if fill else min(positive, first)
    if k == positive:
        t = 0.0
    else:
        t = float(ms[k]) if k < len(ms) else -np.inf
    return t, float(cum[k - 1]) if k > 0 else 0.0


def select_net_policy(holdout_scores: Sequence[np.ndarray], lambdas: Sequence[float], *,
                      eligible: np.ndarray, action: np.ndarray, cost: np.ndarray,
                      action_prob: np.ndarray, budget_per_user: float) -> NetChoice:
    """The net-score rule at budget ``B = budget_per_user`` (module docstring, steps 1-4):
    ``holdout_scores[j]`` is the ``lambdas[j]`` model's score ``(n_h, K+1)`` on the holdout log
    (``eligible``, ``action``, ``cost``, ``action_prob``); the grid is ascending."""
    n_h = len(action)
    c0, parts = [], []
    for score in holdout_scores:
        best, m = best_offer(score, eligible)
        terms = ips_cost_terms(best, action, cost, action_prob)
        parts.append((m, terms))
        c0.append(float(np.sum(np.where(m > 0, terms, 0.0)) / n_h))
    c0 = np.asarray(c0)
    within = c0 <= budget_per_user * (1.0 + 1e-12)
    if within[0]:
        return NetChoice(0, float(lambdas[0]), 0.0, float(c0[0]), c0, "unbinding")
    if within.any():
        j, mode = int(np.argmax(within)), "fill"
    else:
        j, mode = len(c0) - 1, "cap"
    t, est = _rank_threshold(*parts[j], budget_per_user, fill=mode == "fill")
    return NetChoice(j, float(lambdas[j]), t, est, c0, mode)


def oracle_lambda_policy(eval_scores: Sequence[np.ndarray], *, eligible: np.ndarray,
                         tau_value: np.ndarray, tau_cost: np.ndarray, budget_per_user: float
                         ) -> tuple[int, np.ndarray]:
    """The net score's upper bound: over the grid models (``eval_scores[j]`` on the evaluation
    users) and every rank prefix of their ``m`` order, the policy with the largest true
    incremental value ``sum tau_v`` whose true incremental cost ``sum tau_c`` is ``<= B n``
    (the empty policy always qualifies). Returns the grid index and the policy ``(n, K+1)``."""
    n = len(tau_value)
    rows = np.arange(n)
    best_j, best_k, best_v, best_order = 0, 0, 0.0, None
    for j, score in enumerate(eval_scores):
        best, m = best_offer(score, eligible)
        finite = np.flatnonzero(np.isfinite(m))
        order = finite[np.argsort(-m[finite], kind="stable")]
        cv = np.concatenate([[0.0], np.cumsum(tau_value[order, best[order]])])
        cc = np.concatenate([[0.0], np.cumsum(tau_cost[order, best[order]])])
        ok = cc <= budget_per_user * n * (1.0 + 1e-12)
        k = int(np.argmax(np.where(ok, cv, -np.inf)))
        if cv[k] > best_v or best_order is None:
            best_j, best_k, best_v, best_order = j, k, float(cv[k]), (order, best)
    order, best = best_order
    dist = np.zeros(np.shape(tau_value))
    dist[rows, 0] = 1.0
    chosen = order[:best_k]
    dist[chosen, 0] = 0.0
    dist[chosen, best[chosen]] = 1.0
    return best_j, dist


def binned_calibration_error(pred: np.ndarray, true: np.ndarray, eligible: np.ndarray,
                             n_bins: int = 10) -> float:
    """Calibration against the known truth: per offer ``a >= 1``, the users eligible for it in
    ``n_bins`` equal-count bins by rank of ``pred[:, a]``; the error is the count-weighted mean
    over all (offer, bin) cells of ``|mean pred - mean true|`` (the binned reading of
    :func:`estimators.calibration.incremental_calibration`, with the true effect in place of the
    holdout's difference in means)."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    e = np.asarray(eligible, dtype=bool)
    total, count = 0.0, 0
    for a in range(1, pred.shape[1]):
        rows = np.flatnonzero(e[:, a])
        if len(rows) < n_bins:
            continue
        ranks = np.argsort(np.argsort(pred[rows, a], kind="stable"), kind="stable")
        bins = ranks * n_bins // len(rows)
        n_b = np.bincount(bins, minlength=n_bins)
        gap = (np.bincount(bins, pred[rows, a], n_bins)
               - np.bincount(bins, true[rows, a], n_bins)) / np.maximum(n_b, 1)
        total += float(np.sum(n_b * np.abs(gap)))
        count += len(rows)
    return total / count if count else float("nan")


def _true_sd(true: np.ndarray, eligible: np.ndarray) -> float:
    e = np.asarray(eligible, dtype=bool).copy()
    e[:, 0] = False
    return float(np.std(np.asarray(true)[e]))


# ------------------------------------------------------------------------------------ run


def _label_stats(value: np.ndarray, cost: np.ndarray, action: np.ndarray) -> dict[str, float]:
    """Density (share non-zero) and coefficient of variation of the value and cost labels on
    the rows logged with an offer."""
    out = {}
    for name, y in (("value", value), ("cost", cost)):
        y = np.asarray(y, dtype=np.float64)[np.asarray(action) > 0]
        out[f"{name}_nonzero_share"] = float(np.mean(y != 0))
        out[f"{name}_cv"] = float(np.std(y) / np.mean(y)) if np.mean(y) != 0 else float("nan")
    return out


def _score_policy(ev: LoggedData, dist: np.ndarray, *, lam: float, score: np.ndarray | None,
                  estimated_cost: float, budget_per_user: float, oracle_value: float,
                  n_bins: int) -> dict[str, float]:
    """The ``budget`` metrics of a policy ``dist`` on the evaluation users ``ev`` (module
    docstring); ``score`` is the net score the decision used at ``lam`` (``None``: no score)."""
    e = np.asarray(ev.eligible, dtype=bool)
    t = policy_truth(ev.truth, dist, eligible=e)
    out = {"incremental_value": t.incremental_value, "incremental_cost": t.incremental_cost,
           "regret_pct": 100.0 * (oracle_value - t.incremental_value) / oracle_value,
           "cost_over_budget": t.incremental_cost / budget_per_user,
           "estimated_cost_over_budget": estimated_cost / budget_per_user,
           "treated_share": float(np.mean(1.0 - dist[:, 0])), "lambda_used": lam}
    if score is not None:
        tv = np.asarray(ev.truth.tau_value, dtype=np.float64)
        tc = np.asarray(ev.truth.tau_cost, dtype=np.float64)
        out["net_calibration"] = binned_calibration_error(score, tv - lam * tc, e, n_bins)
    return out


def run(cfg: NetScoreSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: section (labels / heads / calibration / budget), world, approach, learner,
    budget_per_user, lambda, seed, metric, value (module docstring)."""
    rows: list[dict] = []

    def emit(section: str, world: str, approach: str, learner: str, metrics: dict[str, float],
             budget: float = 0.0, lam: float = 0.0) -> None:
        rows.extend({"section": section, "world": world, "approach": approach,
                     "learner": learner, "budget_per_user": float(budget), "lambda": float(lam),
                     "seed": seed, "metric": m, "value": float(v)} for m, v in metrics.items())

    lambdas = tuple(float(v) for v in cfg.lambdas)
    for world in tqdm(cfg.worlds, desc="net_score worlds", disable=quiet_bar(progress)):
        params = world_params(cfg, world)
        train = simulate(stream(seed, "train"), params, cfg.world, cfg.n_train, cfg.logging)
        hold = simulate(stream(seed, "holdout"), params, cfg.world, cfg.n_holdout, cfg.logging)
        ev = simulate(stream(seed, "eval"), params, cfg.world, cfg.n_eval,
                      LoggingConfig(kind="uniform"))
        y_v = _value_label(cfg, world, train, stream(seed, "thin"))
        y_c = np.asarray(train.cost, dtype=np.float64)
        emit("labels", world, "log", "log", _label_stats(y_v, y_c, train.action))
        f_tr, f_h, f_ev = (features(d.x, d.segment) for d in (train, hold, ev))
        fit_kw = {"action_prob": train.action_prob, "n_actions": train.n_actions}
        tv = np.asarray(ev.truth.tau_value, dtype=np.float64)
        tc = np.asarray(ev.truth.tau_cost, dtype=np.float64)
        e = np.asarray(ev.eligible, dtype=bool)
        e_h = np.asarray(hold.eligible, dtype=bool)
        n = cfg.n_eval

        sep: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in cfg.separate:
            heads = make_heads(SEPARATE_HEADS[name] or cfg.learner)
            heads.fit(f_tr, train.action, value=y_v, cost=y_c, **fit_kw)
            sep[name] = tuple(np.asarray(t, dtype=np.float64) for t in heads.predict_tau(f_ev))
            tvh, tch = sep[name]
            emit("heads", world, "separate", name, {
                "value_calibration": binned_calibration_error(tvh, tv, e, cfg.n_bins),
                "cost_calibration": binned_calibration_error(tch, tc, e, cfg.n_bins),
                "value_calibration_rel": binned_calibration_error(tvh, tv, e, cfg.n_bins)
                / _true_sd(tv, e),
                "cost_calibration_rel": binned_calibration_error(tch, tc, e, cfg.n_bins)
                / _true_sd(tc, e)})
        net: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for name in cfg.net:
            s_h, s_ev = [], []
            for lam in lambdas:
                model = make_learner(NET_LEARNERS[name])
                model.fit(f_tr, train.action, net_label(y_v, y_c, lam), **fit_kw)
                s_h.append(np.asarray(model.predict_tau(f_h), dtype=np.float64))
                s_ev.append(np.asarray(model.predict_tau(f_ev), dtype=np.float64))
            net[name] = (s_h, s_ev)
        for lam_i, lam in enumerate(lambdas):
            target = tv - lam * tc
            for name, (tvh, tch) in sep.items():
                emit("calibration", world, "separate", name, {"net_calibration":
                     binned_calibration_error(tvh - lam * tch, target, e, cfg.n_bins)}, lam=lam)
            for name, (_, s_ev) in net.items():
                emit("calibration", world, "net", name, {"net_calibration":
                     binned_calibration_error(s_ev[lam_i], target, e, cfg.n_bins)}, lam=lam)

        for level in cfg.budgets:
            oracle = baselines.oracle(tv, tc, budget=level * n, eligible=e)
            best = policy_truth(ev.truth, oracle.action_dist, eligible=e).incremental_value

            def scored(dist: np.ndarray, lam: float, score: np.ndarray | None,
                       estimated_cost: float, level: float = level, best: float = best,
                       ev: LoggedData = ev) -> dict[str, float]:
                return _score_policy(ev, dist, lam=lam, score=score,
                                     estimated_cost=estimated_cost, budget_per_user=level,
                                     oracle_value=best, n_bins=cfg.n_bins)

            lam_o = oracle.budget_multiplier if oracle.budget_binds else 0.0
            emit("budget", world, "oracle", "truth",
                 scored(np.asarray(oracle.action_dist), lam_o, None, oracle.expected_cost / n),
                 budget=level)
            for name, (tvh, tch) in sep.items():
                alloc = allocate(tvh, tch, budget=level * n, eligible=e)
                lam = alloc.budget_multiplier if alloc.budget_binds else 0.0
                emit("budget", world, "separate", name,
                     scored(np.asarray(alloc.action_dist), lam, tvh - lam * tch,
                            alloc.expected_cost / n), budget=level)
            for name, (s_h, s_ev) in net.items():
                choice = select_net_policy(s_h, lambdas, eligible=e_h, action=hold.action,
                                           cost=hold.cost, action_prob=hold.action_prob,
                                           budget_per_user=level)
                dist = net_policy(s_ev[choice.index], e, choice.threshold)
                emit("budget", world, "net", name,
                     scored(dist, choice.lam, s_ev[choice.index], choice.estimated_cost)
                     | {"filled": float(choice.mode == "fill"),
                        "capped": float(choice.mode == "cap")}, budget=level)
                j, dist = oracle_lambda_policy(s_ev, eligible=e, tau_value=tv, tau_cost=tc,
                                               budget_per_user=level)
                true_cost = float(np.sum(dist * tc) / n)
                emit("budget", world, "net_oracle_lambda", name,
                     scored(dist, lambdas[j], s_ev[j], true_cost), budget=level)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- tables and figures

_KEYS = ["section", "world", "approach", "learner", "budget_per_user", "lambda", "metric"]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per key and metric."""
    return mean_se(df, _KEYS)


def _series(approach: str, learner: str) -> tuple[str, dict]:
    label = "oracle" if approach == "oracle" else f"{approach}: {learner}"
    style = series_style("oracle" if approach == "oracle" else _STYLE_NAME.get(learner, learner))
    return label, style | {"linestyle": _LINESTYLE.get(approach, "-")}


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Two figures, mean +- 1 s.e. over seeds: ``net_score_budget.png`` (per world: true regret %
    and true cost / budget against the budget, separate heads solid, net score dashed, its oracle
    lambda dotted, one colour per learner family) and ``net_score_calibration.png`` (per world:
    net-score calibration error against ``lambda``, separate heads' implied net score against
    the single net-score model)."""
    plt = pyplot()
    s = summary(df)
    paths = []
    b = s[s.section == "budget"]
    worlds = [w for w in WORLDS if w in set(b.world)] + sorted(set(b.world) - set(WORLDS))
    if worlds:
        fig, axes = plt.subplots(len(worlds), 2, figsize=(10.5, 4.0 * len(worlds)),
                                 squeeze=False)
        for row, world in enumerate(worlds):
            for ax, (metric, title) in zip(axes[row], (("regret_pct", "true regret % of oracle"),
                                                       ("cost_over_budget",
                                                        "true cost / budget")), strict=True):
                d = b[(b.world == world) & (b.metric == metric)]
                for (approach, learner), g in d.groupby(["approach", "learner"], sort=False):
                    if approach == "oracle" and metric == "regret_pct":
                        continue
                    g = g.sort_values("budget_per_user")
                    label, style = _series(approach, learner)
                    ax.errorbar(g.budget_per_user, g["mean"], yerr=g.se, capsize=3, label=label,
                                **style)
                if metric == "cost_over_budget":
                    ax.axhline(1.0, color="0.45", lw=0.8)
                log_axis(ax, "x", np.sort(d.budget_per_user.unique()))
                ax.set_xlabel("budget per user")
                ax.set_ylabel(metric.replace("_", " "))
                ax.set_title(f"{world}: {title}", fontsize=10)
                ax.grid(alpha=0.3)
        figure_legend(fig, axes, fontsize=8)
        paths.append(save(fig, out_dir, "net_score_budget.png"))
    c = s[(s.section == "calibration") & (s.metric == "net_calibration")]
    worlds = [w for w in WORLDS if w in set(c.world)] + sorted(set(c.world) - set(WORLDS))
    if worlds:
        fig, axes = plt.subplots(1, len(worlds), figsize=(5.2 * len(worlds), 4.2), squeeze=False)
        for ax, world in zip(axes[0], worlds, strict=True):
            d = c[c.world == world]
            for (approach, learner), g in d.groupby(["approach", "learner"], sort=False):
                g = g.sort_values("lambda")
                label, style = _series(approach, learner)
                ax.errorbar(g["lambda"], g["mean"], yerr=g.se, capsize=3, label=label, **style)
            ax.set_xlabel("lambda (value per unit of cost)")
            ax.set_ylabel("binned |prediction - truth| of the net effect")
            ax.set_title(f"{world}: net-score calibration", fontsize=10)
            ax.grid(alpha=0.3)
        figure_legend(fig, axes[0], fontsize=8)
        paths.append(save(fig, out_dir, "net_score_calibration.png"))
    return paths


def _budget_table(s: pd.DataFrame, metric: str) -> list[str]:
    d = s[(s.section == "budget") & (s.metric == metric)]
    if d.empty:
        return []
    levels = sorted(d.budget_per_user.unique())
    lines = [f"### {metric} (mean ± s.e. over seeds)", "",
             "| world | approach | learner | " + " | ".join(f"B={b:g}" for b in levels) + " |",
             "|---|---|---|" + "---|" * len(levels)]
    for (world, approach, learner), g in d.groupby(["world", "approach", "learner"],
                                                   sort=False):
        g = g.set_index("budget_per_user")
        cells = [f"{g.loc[b, 'mean']:.3f} ± {g.loc[b, 'se']:.3f}" if b in g.index else ""
                 for b in levels]
        lines.append(f"| {world} | {approach} | {learner} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``net_score.csv`` (all rows), ``net_score.md`` (label statistics, head calibration, and a
    table per budget metric) and the figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "net_score.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    lines = ["## Lesson 3: separate value and cost heads against one net-score head", ""]
    for section in ("labels", "heads"):
        d = s[s.section == section]
        if d.empty:
            continue
        lines += [f"### {section} (mean ± s.e. over seeds)", "",
                  "| world | approach | learner | metric | value |", "|---|---|---|---|---|"]
        lines += [f"| {r.world} | {r.approach} | {r.learner} | {r.metric} | {r.mean:.4f} ± "
                  f"{r.se:.4f} |" for r in d.itertuples()]
        lines.append("")
    for metric in ("regret_pct", "cost_over_budget", "estimated_cost_over_budget",
                   "net_calibration", "lambda_used", "incremental_value", "treated_share"):
        lines += _budget_table(s, metric)
    md = out_dir / "net_score.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """True regret % and true cost / budget of every approach at every budget (means)."""
    s = summary(df)
    keep = s[(s.section == "budget") & s.metric.isin(["regret_pct", "cost_over_budget"])]
    return keep.pivot_table(index=["world", "metric", "approach", "learner"],
                            columns="budget_per_user", values="mean").reset_index()


SUITE = Suite(name="net_score", config_class=NetScoreSuiteConfig, run=run, plot=plot,
              write=write_results, summary=headline,
              key_columns=("section", "world", "approach", "learner", "budget_per_user",
                           "lambda"),
              in_default=False, published=True)
