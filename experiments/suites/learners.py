"""Learner benchmark suite: uplift learners x worlds x n, several seeds, value and cost heads,
and the budgeted policy each learner induces.

Per (world, n, seed): a training log under the world's logging policy and an independent uniform
evaluation log of ``n_eval`` rows. Every learner fits a value head and a cost head and is scored
on the evaluation users against the world's exact truth: PEHE of each head, the Qini coefficient
of its best-offer ranking (exact, from true uplift) relative to the oracle's, incremental
calibration error on the evaluation log (Hajek bins, mean over offers), and fit time; then the
policy: the exact budgeted allocation (:func:`policies.allocation.allocate`) on the two heads'
predictions at each budget per user of ``budgets``, scored by truth: ``regret`` = 1 - its true
incremental value / the oracle's (the same allocator on the true effects), and ``cost_ratio`` =
its true incremental cost / the budget (1 is on budget; above 1 overspends). Two baselines sit
in the same table: a zero-effect predictor and a constant-effect predictor (per-offer ATE,
propensity-weighted difference in means on the training log).

Ranking diagnostics (issue 16), beside the Qini ratio, for every learner and both baselines:

* ``uplift_ratio@k`` (head value / cost): the mean true uplift of the top ``k`` share of
  evaluation users ranked by the head's best-offer score (each user given its best predicted
  offer, as for the Qini), over the oracle's (users ranked by their true best uplift): 1 is the
  oracle, the population mean over the oracle's is random targeting.
* value-vs-cost curve (head ``value_cost``): each user gets its best predicted *value* offer;
  users are taken in descending predicted efficiency ``tau_v / tau_c``
  (:func:`estimators.metrics.value_cost_curve`), only those with positive predicted value
  uplift; ``value@c`` is the true incremental value per user reached when the true incremental
  cost per user first reaches ``c`` (linear between the two rows bracketing it; the whole
  ranking's value when it never costs ``c``), ``ratio@c`` that over the oracle's (the same rule on
  the true effects, stored as learner ``oracle``). The oracle's rule is greedy, not the LP of
  ``policy@``: a learner may exceed 1.
* rank monotonicity (head value / cost): the evaluation users with an eligible offer in
  ``n_rank_bins`` equal-count bins of increasing best-offer score; the observed uplift per bin
  is the Hajek difference in means of the logged label between the rows that drew their chosen
  offer and the no-offer rows of the bin (what a practitioner can compute from a randomised
  log); ``rank_spearman`` and ``rank_inversion_share`` (inverted bin pairs / all pairs) from
  :func:`estimators.metrics.rank_monotonicity`; ``rank_spearman_truth`` the same on the bins'
  mean true uplift.
* split stability (head value / cost; at ``n <= stability_max_n`` only, since it refits every
  learner twice): the learner refitted on the first and the second half of the training log,
  :func:`estimators.metrics.split_stability` of the two fits' best-offer scores on the
  evaluation users: ``split_rank_corr`` (Spearman) and ``split_noise_to_signal``.

**Ties** (the baselines rank by a few constants, a tree model by piecewise constants): uplift@k
and the value-cost curve take the expectation over a uniformly random order of tied users (the
tied block at the top-k boundary contributes its mean gain; the curve runs straight across a tied
block), so a constant score is exactly random targeting. Rank-monotonicity bins break ties by
evaluation-row order (the binning of :func:`estimators.calibration.incremental_calibration`): the
rows are iid, so a tied block is spread over its bins at random and its bins carry no order,
reproducibly from the seed. A score that is constant across users has no ranking to compare
across fits: the zero baseline's split stability is NaN (``n/a`` in the table, explained there),
as is any fit's that is constant across users. Split stability is not accuracy: the ATE
baseline's few-level ranking (by which offers a user may get) is often perfectly stable; read it
beside uplift@k.

``noiseless``: learners also fitted on the noiseless labels (the true means ``mu(x_i, a_i)`` of
the logged actions in place of the sampled value and cost), reported as ``<name>@noiseless``:
the ceiling of that learner when label noise is removed, beside its regret-vs-n curve (not
meaningful for ``hurdle``, whose occurrence part needs zero labels: every mean is positive).
``t_bart`` (BART T-learner) is available but not in the default list: on the value head it costs
~2 minutes per fit at n = 2,000-8,000 on 2 cores and its PEHE was 2-3x the ridge T-learner's
(11.1 vs 4.2 at n = 2,000; 7.7 vs 3.3 at 8,000; seed 0), so it is benchmarked on IHDP instead.

**Literature worlds** (``world=nie_wager_a``, ``world=hillstrom_semi``, ``world=obp``, ...: a
``source`` of :mod:`simulators.sources`): the one registered world replaces ``worlds``, its
training log under ``source.logging`` and a uniform evaluation log of the same law. On a world
without incentive cost (Nie & Wager, OBP, IHDP) only the value head is fitted and scored, and
there is no budgeted policy (nothing to spend; ``uplift_ratio@k`` is the capacity view); learners
of :data:`NONNEGATIVE_LABELS` (the hurdle) are not run where a value label is negative; the Qini
ratio is NaN where the true effect is constant (Nie & Wager C: nothing to rank).

The compared learners (:data:`LEARNER_HEADS`) are :class:`~estimators.heads.HeadConfig` changes
over each head's config (``learner``: value head ridge alpha 100, cost head ridge alpha 1 by
default; the global ``learner`` group sets them); ``hurdle`` is the stable-proxy head pair (value:
purchase probability x log-basket model; cost: redemption probability x face value); ``default``
is the library default heads (``HeadsConfig()``: TARNet value head with inverse-propensity row
weights, the weighted hurdle cost head), whatever the suite's head config. Learners in
:data:`SLOW_LEARNERS` are skipped above ``slow_max_n`` rows. Run ``python -m experiments.run
experiment=learners`` (``experiment.compact=true``: fast).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators.bart import BART
from estimators.base import MLP
from estimators.calibration import incremental_calibration
from estimators.heads import DEFAULT_COST_HEAD, DEFAULT_VALUE_HEAD, HeadConfig, make_learner
from estimators.metrics import (
    best_offer,
    pehe,
    qini_coefficient,
    rank_monotonicity,
    split_stability,
    truth_gain,
    uplift_at_k,
    value_at_costs,
)
from estimators.tarnet import COST_CONFIG, VALUE_CONFIG
from experiments.configs import HeadsConfig, LoggingConfig, SourceConfig, WorldConfig
from experiments.store import OMIT_AT_DEFAULT, atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators import policy_truth
from simulators.oracle import optimal_policy
from simulators.sources import draw_log

__all__ = ["SUITE", "LearnersSuiteConfig", "plot", "run", "write_results"]

# compared learner -> its estimators.heads.HeadConfig changes over the head's config (base model
# and penalty); a "value" / "cost" key holds changes for that head only. zero and ate are the
# constant-effect baselines.
LEARNER_HEADS: dict[str, dict[str, Any]] = {
    "s": {"learner": "s", "interactions": True}, "t": {"learner": "t"}, "x": {"learner": "x"},
    "dr": {"learner": "dr"}, "r": {"learner": "r"},
    "hurdle": {"learner": "hurdle", "alpha": 1.0, "value": {"hurdle_amount": "log"},
               "cost": {"hurdle_amount": "constant"}},
    "t_mlp": {"learner": "t", "base": "mlp",
              "mlp": MLP(hidden=(64, 64), max_epochs=40, batch_size=512)},
    # TARNet: Huber value head, squared-error cost head, inverse-propensity row weights (no-op
    # under uniform logging; removes the confounding of skewed logs, estimators.tarnet)
    "tarnet": {"learner": "tarnet",
               "value": {"tarnet": dataclasses.replace(VALUE_CONFIG, weight_by_propensity=True)},
               "cost": {"tarnet": dataclasses.replace(COST_CONFIG, weight_by_propensity=True)}},
    "t_bart": {"learner": "t", "base": "bart", "bart": BART(n_trees=100, n_burn=100,
                                                            n_draws=200)},
    "t_lgbm": {"learner": "t", "base": "lightgbm"},
    # the library default heads (HeadsConfig()): every field of DEFAULT_VALUE_HEAD /
    # DEFAULT_COST_HEAD but the seed, which stays the suite's
    "default": {which: {f.name: getattr(head, f.name) for f in dataclasses.fields(head)
                        if f.name != "seed"}
                for which, head in (("value", DEFAULT_VALUE_HEAD), ("cost", DEFAULT_COST_HEAD))},
}
LEARNERS = ("zero", "ate", *LEARNER_HEADS)
SLOW_LEARNERS = ("t_bart", "tarnet")
# learners that need a non-negative value label (skipped on worlds whose labels go below 0)
NONNEGATIVE_LABELS = ("hurdle",)
OPTIONAL = {"t_lgbm": "lightgbm"}  # learner -> the optional package it needs


def _missing_packages(learners: tuple[str, ...]) -> list[str]:
    import importlib.util

    return sorted({OPTIONAL[name] for name in learners if name in OPTIONAL
                   and importlib.util.find_spec(OPTIONAL[name]) is None})


@dataclasses.dataclass(frozen=True)
class LearnersSuiteConfig:
    """``worlds``: (name, logging kind, n_offers) over the base ``world`` and ``logging``;
    ``learners`` from :data:`LEARNERS`; ``learner``: the base model and penalty of each head."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig(epsilon=0.2)
    learner: HeadsConfig = HeadsConfig(value=HeadConfig(alpha=100.0), cost=HeadConfig(alpha=1.0))
    # a literature world (world=nie_wager_a ...) in place of ``worlds``; added after results
    # were published, so left out of the config hash while synthetic
    source: SourceConfig = dataclasses.field(default=SourceConfig(), metadata=OMIT_AT_DEFAULT)

    worlds: tuple[tuple[str, str, int], ...] = (
        ("uniform_k4", "uniform", 4),
        ("skewed_k4", "epsilon_greedy", 4),
        ("uniform_k2", "uniform", 2),
    )
    learners: tuple[str, ...] = ("zero", "ate", "s", "t", "x", "dr", "r", "hurdle", "t_mlp",
                                 "tarnet", "t_lgbm", "default")
    noiseless: tuple[str, ...] = ("t", "t_lgbm")
    ns: tuple[int, ...] = (2_000, 8_000, 32_000)
    n_eval: int = 20_000
    n_calibration_bins: int = 5
    budgets: tuple[float, ...] = (0.05, 0.25, 1.0)
    slow_max_n: int = 8_000
    # ranking diagnostics (module docstring): top-k shares of uplift@k, cost levels per user of
    # the value-vs-cost curve, bins of rank monotonicity, and the largest n at which split
    # stability refits every learner on the two halves of the training log (0: never)
    uplift_fractions: tuple[float, ...] = (0.1, 0.3)
    curve_costs: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0, 2.0, 4.0)
    n_rank_bins: int = 10
    stability_max_n: int = 2_000

    def __post_init__(self) -> None:
        unknown = sorted((set(self.learners) | set(self.noiseless)) - set(LEARNERS))
        if unknown:
            raise ValueError(f"LearnersSuiteConfig.learners: unknown {unknown}; choose "
                             f"from {LEARNERS}.")
        bad = sorted(set(self.noiseless) - set(LEARNER_HEADS))
        if bad:
            raise ValueError(f"LearnersSuiteConfig.noiseless: {bad} are baselines, not "
                             f"learners. Fix: choose from {list(LEARNER_HEADS)}.")
        if min(self.ns) < 500 or self.n_eval < 2000:
            raise ValueError("LearnersSuiteConfig: need every n >= 500 and n_eval >= 2000.")
        if not self.budgets or min(self.budgets) <= 0:
            raise ValueError(f"LearnersSuiteConfig.budgets: need budgets per user > 0, got "
                             f"{self.budgets}. Fix: e.g. budgets=[0.05, 1.0].")
        if not self.uplift_fractions or not all(0 < f <= 1 for f in self.uplift_fractions):
            raise ValueError(f"LearnersSuiteConfig.uplift_fractions: need shares of users in "
                             f"(0, 1], got {self.uplift_fractions}. Fix: e.g. "
                             "uplift_fractions=[0.1, 0.3].")
        if not self.curve_costs or min(self.curve_costs) <= 0:
            raise ValueError(f"LearnersSuiteConfig.curve_costs: need cost levels per user > 0, "
                             f"got {self.curve_costs}. Fix: e.g. curve_costs=[0.25, 1.0].")
        if not 2 <= self.n_rank_bins <= self.n_eval // 100:
            raise ValueError(f"LearnersSuiteConfig.n_rank_bins: need 2 <= n_rank_bins <= "
                             f"n_eval // 100 = {self.n_eval // 100} (>= 100 evaluation rows per "
                             f"bin), got {self.n_rank_bins}. Fix: e.g. n_rank_bins=10, or a "
                             "larger n_eval.")
        if self.stability_max_n < 0:
            raise ValueError(f"LearnersSuiteConfig.stability_max_n: need >= 0 (0 turns split "
                             f"stability off), got {self.stability_max_n}. Fix: e.g. "
                             "stability_max_n=2000 (the smallest n).")

    def hashed_references(self) -> dict[str, Any]:
        """What the listed learner names stand for (:func:`experiments.store.config_hash`):
        their :data:`LEARNER_HEADS` entries, so that a job's hash moves with a definition, e.g.
        the ``default`` learner's when the library default heads change."""
        return {name: LEARNER_HEADS[name] for name in (*self.learners, *self.noiseless)
                if name in LEARNER_HEADS}

    @classmethod
    def compact(cls) -> LearnersSuiteConfig:
        return cls(worlds=(("uniform_k4", "uniform", 4), ("skewed_k4", "epsilon_greedy", 4)),
                   learners=("zero", "ate", "t", "dr", "hurdle"), noiseless=(),
                   ns=(2_000, 8_000), n_eval=4_000, budgets=(0.05, 1.0))


def unavailable(cfg: LearnersSuiteConfig) -> str | None:
    """Why the suite cannot run here: an optional package a requested learner needs."""
    missing = _missing_packages(tuple(cfg.learners) + tuple(cfg.noiseless))
    if missing:
        return (f"learners {[n for n in cfg.learners if OPTIONAL.get(n) in missing]} need "
                f"{missing}: pip install 'allocbench[gbm]', or drop them from "
                f"experiment.params.learners")
    return None


class _ConstantEffect:
    """Baselines: ``tau(x, a) = c_a`` (``c = 0`` for the zero-effect predictor; the per-offer
    propensity-weighted difference in means for the ATE predictor)."""

    def __init__(self, zero: bool) -> None:
        self.zero = zero
        self.c: np.ndarray | None = None

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any = None,
            n_actions: int | None = None) -> _ConstantEffect:
        k1 = int(n_actions)
        self.c = np.zeros(k1)
        if not self.zero:
            e = np.asarray(action_prob)[np.arange(len(action)), action]
            w = 1.0 / e
            means = np.array([np.sum((w * reward)[action == a]) / np.sum(w[action == a])
                              for a in range(k1)])
            self.c = means - means[0]
        return self

    def predict_tau(self, x: Any) -> np.ndarray:
        return np.broadcast_to(self.c, (len(x), len(self.c))).copy()


def _make(name: str, head: HeadConfig, which: str) -> Any:
    """The compared learner ``name`` on the head's config (``which``: ``"value"``/``"cost"``)."""
    if name in ("zero", "ate"):
        return _ConstantEffect(zero=name == "zero")
    changes = {k: v for k, v in LEARNER_HEADS[name].items() if k not in ("value", "cost")}
    changes.update(LEARNER_HEADS[name].get(which, {}))
    return make_learner(dataclasses.replace(head, **changes))


def _calibration_error(tau: np.ndarray, log: Any, label: np.ndarray, n_bins: int) -> float:
    errs = []
    for a in range(1, tau.shape[1]):
        errs.append(incremental_calibration(tau[:, a], log.action, label, log.action_prob, a,
                                            n_bins=n_bins).error)
    return float(np.mean(errs))


def _noiseless_labels(log: Any) -> tuple[np.ndarray, np.ndarray]:
    """The true means of the logged actions: ``mu_value(x_i, a_i)``, ``mu_cost(x_i, a_i)``."""
    rows = np.arange(log.n)
    return (np.asarray(log.truth.mu_value)[rows, log.action],
            np.asarray(log.truth.mu_cost)[rows, log.action])


def _curve(tv: np.ndarray, tc: np.ndarray, truths: dict[str, np.ndarray], eligible: Any,
           costs: tuple[float, ...]) -> np.ndarray:
    """:func:`value_at_costs` of predictions ``tv``, ``tc`` (n, K+1): each user's best predicted
    value offer, its predicted and true value and cost uplift."""
    chosen, _ = best_offer(tv, eligible)
    rows = np.arange(len(chosen))
    return value_at_costs(tv[rows, chosen], tc[rows, chosen],
                          truth_gain(truths["value"], chosen), truth_gain(truths["cost"], chosen),
                          costs)


def _split_stability(name: str, cfg: LearnersSuiteConfig, head: str, train: Any,
                     label: np.ndarray, n_actions: int, evaluation: Any) -> dict[str, float]:
    """``split_rank_corr`` and ``split_noise_to_signal`` (:func:`estimators.metrics.
    split_stability`) of the evaluation users' best-offer scores of ``name`` fitted on the
    first and on the second half of the training log (NaN for a score constant across users)."""
    half = train.n // 2
    scores = []
    for part in (slice(0, half), slice(half, 2 * half)):
        learner = _make(name, getattr(cfg.learner, head), head)
        learner.fit(train.x[part], train.action[part], label[part], train.action_prob[part],
                    n_actions)
        tau = np.asarray(jax.block_until_ready(learner.predict_tau(evaluation.x)))
        scores.append(best_offer(tau, evaluation.eligible)[1])
    stab = split_stability(np.stack(scores))
    return {"split_rank_corr": stab["rank_corr"],
            "split_noise_to_signal": stab["noise_to_signal"]}


def rank_bins(score: np.ndarray, chosen: np.ndarray, log: Any, label: np.ndarray,
              true_gain: np.ndarray, n_bins: int) -> dict[str, float]:
    """Rank monotonicity of ``score`` on the randomised evaluation ``log`` over its rows with an
    eligible offer (``chosen >= 1``): ``n_bins`` equal-count bins of increasing score (ties by
    row order); per bin the observed uplift of the chosen offers, the Hajek difference in means
    ``sum_T y / e_c / sum_T 1 / e_c - sum_C y / e_0 / sum_C 1 / e_0`` over the rows that drew
    their chosen offer (``T``) and the no-offer rows (``C``), consistent for the bin's mean
    ``tau(x, chosen)`` under the logging propensities ``e``. Returns ``rank_spearman``,
    ``rank_inversion_share`` (inverted pairs / all pairs) and ``rank_spearman_truth`` (the bins'
    mean ``true_gain``)."""
    rows = np.flatnonzero(np.asarray(chosen) > 0)
    s, c = np.asarray(score)[rows], np.asarray(chosen)[rows]
    action, y = np.asarray(log.action)[rows], np.asarray(label, np.float64)[rows]
    e = np.asarray(log.action_prob, np.float64)[rows]
    e_c, e_0 = e[np.arange(len(rows)), c], e[:, 0]
    treated, control = action == c, action == 0
    ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable")
    bin_id = ranks * n_bins // len(s)
    observed, truth = np.zeros(n_bins), np.zeros(n_bins)
    for b in range(n_bins):  # loop over bins, not rows
        m = bin_id == b
        t, k = m & treated, m & control
        if t.sum() < 2 or k.sum() < 2:
            raise ValueError(f"LearnersSuiteConfig.n_rank_bins: bin {b} of {n_bins} has fewer "
                             "than 2 rows that drew their chosen offer or 2 no-offer rows. Fix: "
                             "fewer bins or a larger n_eval.")
        observed[b] = (np.sum(y[t] / e_c[t]) / np.sum(1 / e_c[t])
                       - np.sum(y[k] / e_0[k]) / np.sum(1 / e_0[k]))
        truth[b] = np.asarray(true_gain)[rows][m].mean()
    mono = rank_monotonicity(observed)
    return {"rank_spearman": mono.spearman,
            "rank_inversion_share": mono.inversions / mono.max_inversions,
            "rank_spearman_truth": rank_monotonicity(truth).spearman}


def _worlds(cfg: LearnersSuiteConfig) -> tuple[tuple[str, str, int], ...]:
    """The (name, logging, n_offers) worlds of the run: ``cfg.worlds`` on the synthetic world;
    the one registered world of ``cfg.source`` under ``source.logging`` otherwise."""
    if cfg.source.synthetic:
        return cfg.worlds
    return ((cfg.source.label, cfg.source.logging, cfg.source.n_actions - 1),)


def _logs(cfg: LearnersSuiteConfig, seed: int, world_name: str, kind: str, n_offers: int,
          n: int) -> tuple[Any, Any]:
    """The training log (``n`` rows under logging ``kind``) and the uniform evaluation log
    (``n_eval`` rows) of one world, from ``stream(seed, "train" / "eval", world_name, n)``."""
    k_train, k_eval = (stream(seed, part, world_name, n) for part in ("train", "eval"))
    world = dataclasses.replace(cfg.world, n_offers=n_offers)
    logging = dataclasses.replace(cfg.logging, kind=kind) if cfg.source.synthetic else cfg.logging
    return (draw_log(k_train, cfg.source, world, n, logging),
            draw_log(k_eval, cfg.source, world, cfg.n_eval, logging, uniform=True))


def run(cfg: LearnersSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(world, logging, n, seed, learner, head, metric, value)``. Heads ``value`` and
    ``cost``: metrics ``pehe``, ``qini_ratio`` (Qini coefficient / the true uplift's),
    ``calibration_error``, ``fit_seconds`` (fit + predict wall time, including JIT compilation
    the first time a shape is seen), ``uplift_ratio@<k>``, ``rank_spearman``,
    ``rank_inversion_share``, ``rank_spearman_truth`` and, at ``n <= stability_max_n``,
    ``split_rank_corr``, ``split_noise_to_signal``. Head ``policy@<budget>``: ``regret``,
    ``cost_ratio``. Head ``value_cost``: ``value@<c>``, ``ratio@<c>`` (module docstring). Learner
    ``oracle``: the denominators, ``uplift@<k>`` (heads value / cost) and ``value@<c>``.
    Streams ``stream(seed, "train", world, n)`` and ``stream(seed, "eval", world, n)``; the
    split-stability halves are the training log's first and second ``n // 2`` rows (iid rows:
    no extra stream).
    """
    why = unavailable(cfg)
    if why:
        raise ValueError(f"experiment.params.learners: {why}.")
    rows: list[dict[str, Any]] = []
    jobs = [(w, n) for w in _worlds(cfg) for n in cfg.ns]
    for (world_name, kind, n_offers), n in tqdm(jobs, desc="learners suite",
                                                disable=quiet_bar(progress), leave=False):
        train, evaluation = _logs(cfg, seed, world_name, kind, n_offers, n)
        n_actions = n_offers + 1
        # a world without incentive cost (Nie & Wager: cost 0) has no cost head to score:
        # its cost effects are zero, the allocation is by value alone
        heads = ("value", "cost") if np.any(np.asarray(evaluation.truth.mu_cost)) else ("value",)
        truths = {"value": np.asarray(evaluation.truth.tau_value),
                  "cost": np.asarray(evaluation.truth.tau_cost)}
        labels_eval = {"value": evaluation.value, "cost": evaluation.cost}
        oracle_qini, oracle_uplift = {}, {}
        oracle_base = dict(world=world_name, logging=kind, n=n, seed=seed, learner="oracle")
        for head in heads:
            truth = truths[head]
            chosen, score = best_offer(truth, evaluation.eligible)
            gain = truth_gain(truth, chosen)
            oracle_qini[head] = qini_coefficient(score, gain)
            oracle_uplift[head] = {f: uplift_at_k(score, gain, f)
                                   for f in cfg.uplift_fractions}
            rows += [dict(oracle_base, head=head, metric=f"uplift@{f:g}", value=float(v))
                     for f, v in oracle_uplift[head].items()]
        oracle_curve: Any = []
        if "cost" in heads:
            oracle_curve = _curve(truths["value"], truths["cost"], truths, evaluation.eligible,
                                  cfg.curve_costs)
            rows += [dict(oracle_base, head="value_cost", metric=f"value@{c:g}", value=float(v))
                     for c, v in zip(cfg.curve_costs, oracle_curve, strict=True)]
        oracle = {b: policy_truth(evaluation.truth, np.asarray(optimal_policy(
            evaluation.truth, b * evaluation.n, eligible=evaluation.eligible).action_dist),
            eligible=evaluation.eligible) for b in (cfg.budgets if "cost" in heads else ())}
        noisy = {"value": train.value, "cost": train.cost}
        clean = dict(zip(("value", "cost"), _noiseless_labels(train), strict=True))
        fits = [(name, name, noisy) for name in cfg.learners]
        fits += [(f"{name}@noiseless", name, clean) for name in cfg.noiseless]
        for label_name, learner_name, labels in fits:
            if learner_name in SLOW_LEARNERS and n > cfg.slow_max_n:
                continue
            if learner_name in NONNEGATIVE_LABELS and np.min(train.value) < 0:
                continue  # the hurdle splits a non-negative label into occurrence x amount
            base = dict(world=world_name, logging=kind, n=n, seed=seed, learner=label_name)
            taus = {"cost": np.zeros_like(truths["cost"])}
            for head in heads:
                learner = _make(learner_name, getattr(cfg.learner, head), head)
                t0 = time.perf_counter()
                learner.fit(train.x, train.action, labels[head], train.action_prob,
                            n_actions)
                tau = np.asarray(jax.block_until_ready(learner.predict_tau(evaluation.x)))
                fit_seconds = time.perf_counter() - t0
                taus[head] = tau
                chosen, score = best_offer(tau, evaluation.eligible)
                gain = truth_gain(truths[head], chosen)
                metrics = {
                    "pehe": pehe(tau, truths[head], evaluation.eligible),
                    # NaN where truth has nothing to rank (Nie & Wager C: constant effect)
                    "qini_ratio": (qini_coefficient(score, gain) / oracle_qini[head]
                                   if oracle_qini[head] != 0 else float("nan")),
                    "calibration_error": _calibration_error(tau, evaluation, labels_eval[head],
                                                            cfg.n_calibration_bins),
                    "fit_seconds": fit_seconds,
                }
                metrics.update({f"uplift_ratio@{f:g}": uplift_at_k(score, gain, f) / v
                                for f, v in oracle_uplift[head].items()})
                metrics.update(rank_bins(score, chosen, evaluation, labels_eval[head], gain,
                                         cfg.n_rank_bins))
                if n <= cfg.stability_max_n:
                    metrics.update(_split_stability(learner_name, cfg, head, train,
                                                    labels[head], n_actions, evaluation))
                rows += [dict(base, head=head, metric=m, value=float(v))
                         for m, v in metrics.items()]
            curve = (_curve(taus["value"], taus["cost"], truths, evaluation.eligible,
                            cfg.curve_costs) if "cost" in heads else [])
            for c, v, o in zip(cfg.curve_costs[:len(curve)], curve, oracle_curve[:len(curve)],
                               strict=True):
                rows += [dict(base, head="value_cost", metric=f"value@{c:g}", value=float(v)),
                         dict(base, head="value_cost", metric=f"ratio@{c:g}",
                              value=float(v / o))]
            for b in cfg.budgets if "cost" in heads else ():  # no cost: no budget to spend
                alloc = allocate(taus["value"], taus["cost"], budget=b * evaluation.n,
                                 eligible=evaluation.eligible)
                t = policy_truth(evaluation.truth, np.asarray(alloc.action_dist),
                                 eligible=evaluation.eligible)
                regret = 1.0 - t.incremental_value / oracle[b].incremental_value
                rows.append(dict(base, head=f"policy@{b:g}", metric="regret",
                                 value=float(regret)))
                if "cost" in heads:
                    rows.append(dict(base, head=f"policy@{b:g}", metric="cost_ratio",
                                     value=float(t.incremental_cost / b)))
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (world, n, learner, head, metric); an undefined
    (NaN) metric stays NaN (mean and se)."""
    g = df.groupby(["world", "n", "learner", "head", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", sd="std", count="count").reset_index()
    out["se"] = out["sd"].fillna(0.0) / np.sqrt(out["count"].where(out["count"] > 0))
    return out


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PEHE of each head against n per learner (log-log), one panel per (world, head); and the
    Qini ratio at the largest n."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = summary(df)
    worlds = list(dict.fromkeys(s.world))
    heads = _heads(s)
    fig, axes = plt.subplots(len(heads), len(worlds), figsize=(4.5 * len(worlds),
                                                               3.5 * len(heads)), squeeze=False)
    for j, w in enumerate(worlds):
        for i, head in enumerate(heads):
            ax = axes[i, j]
            part = s[(s.world == w) & (s["head"] == head) & (s.metric == "pehe")]
            for learner, g in part.groupby("learner", sort=False):
                dash = "--" if learner in ("zero", "ate") else ":" if "@" in learner else "-"
                ax.errorbar(g.n, g["mean"], yerr=g.se, label=learner, ls=dash, ms=3,
                            **series_style(learner))
            log_axis(ax, "x", sorted(part.n.unique()))
            log_axis(ax, "y")
            ax.set_title(f"{w}: {head} head")
            ax.set_xlabel("n (training rows)")
            ax.set_ylabel("PEHE")
            ax.grid(alpha=0.3, which="both")
    figure_legend(fig, axes, fontsize=8)
    p1 = save(fig, out_dir, "pehe_vs_n.png")

    nmax = s.n.max()
    part = s[(s.n == nmax) & (s.metric == "qini_ratio")]
    fig, axes = plt.subplots(1, len(heads), figsize=(5 * len(heads), 3.5), squeeze=False)
    for ax, head in zip(axes[0], heads, strict=True):
        t = part[part["head"] == head].pivot(index="learner", columns="world", values="mean")
        t.plot.bar(ax=ax)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(f"Qini / oracle Qini, {head} head, n={nmax}")
        ax.set_xlabel("learner")
        ax.set_ylabel("Qini ratio")
    figure_legend(fig, axes, title="world")
    p2 = save(fig, out_dir, "qini_ratio.png")
    diagnostics = _plot_diagnostics(s, out_dir)
    return [p for p in (p1, p2, _plot_regret(s, out_dir), diagnostics) if p is not None]


def _levels(s: pd.DataFrame, head: str, prefix: str) -> list[float]:
    """The levels ``x`` of the metrics ``<prefix>@<x>`` of ``head`` in the summary, sorted."""
    names = s.loc[(s["head"] == head) & s.metric.str.startswith(f"{prefix}@"), "metric"]
    return sorted({float(m.split("@")[1]) for m in names})


def _bars(ax: Any, part: pd.DataFrame, metric: str, learners: list[str]) -> None:
    """One bar per learner (its series colour, mean ± s.e.); ``n/a`` over an undefined one."""
    for i, learner in enumerate(learners):
        r = part[(part.learner == learner) & (part.metric == metric)]
        if r.empty:
            continue
        mean, se = float(r["mean"].iloc[0]), float(r["se"].iloc[0])
        if np.isnan(mean):
            ax.text(i, 0.05, "n/a", ha="center", va="bottom", fontsize=9)
            continue
        ax.bar(i, mean, yerr=se if np.isfinite(se) else 0.0, capsize=2, label=learner,
               color=series_style(learner)["color"], hatch="//" if learner in ("zero", "ate")
               else None, alpha=0.6 if "@" in learner else 1.0)
    ax.set_xlim(-0.6, len(learners) - 0.4)
    ax.set_xticks(range(len(learners)))
    ax.set_xticklabels(learners, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("learner")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.grid(alpha=0.3, axis="y")


def _plot_diagnostics(s: pd.DataFrame, out_dir: Path) -> Path | None:
    """``learners_diagnostics.png`` for the first world at the largest n (split stability at the
    smallest n where it ran): uplift@k / the oracle's against k per head; the value-vs-cost curve
    (true value against true cost per user, oracle in black) and its ratio to the oracle's; rank
    monotonicity per learner and head (observed Hajek bins; truth-based bins as black ticks);
    split rank correlation per learner and head. ``None`` for rows without the diagnostics
    (results stored before they existed)."""
    if "rank_spearman" not in set(s.metric):
        return None
    plt = pyplot()
    world = next(iter(dict.fromkeys(s.world)))
    sw = s[s.world == world]
    nmax = sw.n.max()
    at = sw[sw.n == nmax]
    learners = [x for x in dict.fromkeys(at.learner) if x != "oracle"]
    fig, axes = plt.subplots(2, 4, figsize=(19, 8), squeeze=False)
    for j, head in enumerate(("value", "cost")):
        ax = axes[0, j]
        ks = _levels(at, head, "uplift_ratio")
        for learner in learners:
            part = at[(at.learner == learner) & (at["head"] == head)]
            rows = [part[part.metric == f"uplift_ratio@{k:g}"] for k in ks]
            if any(r.empty for r in rows):
                continue
            ax.errorbar(ks, [float(r["mean"].iloc[0]) for r in rows],
                        yerr=[float(r["se"].iloc[0]) for r in rows], label=learner, ms=4,
                        capsize=2, ls="--" if learner in ("zero", "ate") else ":" if "@" in
                        learner else "-", **series_style(learner))
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(ks)
        ax.set_xlabel("k (top share of users by best-offer score)")
        ax.set_ylabel("uplift@k / oracle's")
        ax.set_title(f"{world}, n={nmax}: uplift@k, {head} head")
        ax.grid(alpha=0.3)
    costs = _levels(at, "value_cost", "value")
    for learner in [*learners, "oracle"]:
        part = at[(at.learner == learner) & (at["head"] == "value_cost")]
        rows = [part[part.metric == f"value@{c:g}"] for c in costs]
        if any(r.empty for r in rows):
            continue
        axes[0, 2].errorbar([0.0, *costs], [0.0, *(float(r["mean"].iloc[0]) for r in rows)],
                            yerr=[0.0, *(float(r["se"].iloc[0]) for r in rows)], ms=4,
                            capsize=2, label=learner, ls=":" if "@" in learner else "-",
                            **series_style(learner))
        if learner != "oracle":
            ratio = [part[part.metric == f"ratio@{c:g}"] for c in costs]
            axes[0, 3].errorbar(costs, [float(r["mean"].iloc[0]) for r in ratio],
                                yerr=[float(r["se"].iloc[0]) for r in ratio], ms=4, capsize=2,
                                label=learner, ls=":" if "@" in learner else "-",
                                **series_style(learner))
    axes[0, 2].set_xlabel("true incremental cost per user")
    axes[0, 2].set_ylabel("true incremental value per user")
    axes[0, 2].set_title(f"value vs cost (best value offer, by predicted ratio), n={nmax}")
    axes[0, 2].grid(alpha=0.3)
    log_axis(axes[0, 3], "x", costs)
    axes[0, 3].axhline(1.0, color="k", lw=0.8)
    axes[0, 3].set_xlabel("true incremental cost per user")
    axes[0, 3].set_ylabel("value / oracle's value at that cost")
    axes[0, 3].set_title("value-vs-cost curve / the oracle's")
    axes[0, 3].grid(alpha=0.3)
    stable = sw[sw.metric == "split_rank_corr"]
    n_stab = stable.n.min() if len(stable) else None
    for j, head in enumerate(("value", "cost")):
        ax = axes[1, j]
        part = at[at["head"] == head]
        _bars(ax, part, "rank_spearman", learners)
        for i, learner in enumerate(learners):
            r = part[(part.learner == learner) & (part.metric == "rank_spearman_truth")]
            if len(r):
                ax.plot(i, float(r["mean"].iloc[0]), "k_", ms=12, mew=2,
                        label="truth-based bins")
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("Spearman(bin, observed uplift)")
        ax.set_title(f"rank monotonicity, {head} head, n={nmax}")
        ax = axes[1, 2 + j]
        if n_stab is not None:
            part = stable[(stable.n == n_stab) & (stable["head"] == head)]
            _bars(ax, part, "split_rank_corr", list(dict.fromkeys(part.learner)))
            ax.set_title(f"split stability, {head} head, n={n_stab} (2 halves)")
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("learner")
        ax.set_ylabel("Spearman of the two halves' scores")
    if "cost" not in _heads(sw):  # a world without cost: the value head's panels only
        for ax in (axes[0, 1], axes[0, 2], axes[0, 3], axes[1, 1], axes[1, 3]):
            fig.delaxes(ax)
    figure_legend(fig, axes, fontsize=8)
    return save(fig, out_dir, "learners_diagnostics.png")


def _heads(s: pd.DataFrame) -> list[str]:
    """The learner heads present in the rows (``value``, and ``cost`` on a world with cost)."""
    return [h for h in ("value", "cost") if h in set(s["head"])]


def _plot_regret(s: pd.DataFrame, out_dir: Path) -> Path | None:
    """True regret of each learner's policy against n, one panel per (world, budget); the
    noiseless-label ceilings (``@noiseless``) dotted in the colour of their learner."""
    plt = pyplot()
    policy = s[s["head"].str.startswith("policy@") & (s.metric == "regret")]
    if policy.empty:  # worlds without cost: no budgeted policy
        return None
    worlds = list(dict.fromkeys(policy.world))
    heads = sorted(dict.fromkeys(policy["head"]), key=lambda h: float(h.split("@")[1]))
    fig, axes = plt.subplots(len(heads), len(worlds), figsize=(4.5 * len(worlds),
                                                                3.2 * len(heads)),
                             squeeze=False)
    for i, head in enumerate(heads):
        for j, w in enumerate(worlds):
            ax = axes[i, j]
            part = policy[(policy.world == w) & (policy["head"] == head)]
            for learner, g in part.groupby("learner", sort=False):
                ax.errorbar(g.n, 100 * g["mean"], yerr=100 * g.se, label=learner,
                            ls=":" if "@" in learner else "-", ms=3, **series_style(learner))
            log_axis(ax, "x", sorted(part.n.unique()))
            ax.axhline(0.0, color="k", lw=0.6)
            ax.set_title(f"{w}: budget {head.split('@')[1]} per user")
            ax.set_xlabel("n (training rows)")
            ax.set_ylabel("true regret, % of oracle")
            ax.grid(alpha=0.3)
    figure_legend(fig, axes, fontsize=8)
    return save(fig, out_dir, "regret_vs_n.png")


NA_NOTE = ("n/a: undefined, not missing: the learner's score is the same constant for every "
           "user in each fit (the zero baseline), so it ranks no one: there is no rank "
           "correlation between the two halves and no signal across users to compare their "
           "spread with (its predictions are trivially identical).")


def _cell(part: pd.DataFrame, learner: str, metric: str, digits: int = 3) -> str:
    """``mean ± se`` of one summary row; ``n/a`` where the metric is undefined (NaN), ``—``
    where the learner has no such row."""
    r = part[(part.learner == learner) & (part.metric == metric)]
    if r.empty:
        return "—"
    mean, se = float(r["mean"].iloc[0]), float(r["se"].iloc[0])
    return "n/a" if np.isnan(mean) else f"{mean:.{digits}g} ± {se:.2g}"


def _diagnostics_tables(s: pd.DataFrame, world: str) -> list[str]:
    """Markdown sections of one world's ranking diagnostics (none for rows stored before they
    existed): uplift@k and rank monotonicity per head and the value-vs-cost curve at the largest
    n, split stability at the smallest n where it ran."""
    if "rank_spearman" not in set(s.metric):
        return []
    nmax = s.n.max()
    at = s[s.n == nmax]
    lines: list[str] = []
    for head in _heads(at):
        part = at[at["head"] == head]
        ks = _levels(part, head, "uplift_ratio")
        metrics = [f"uplift_ratio@{k:g}" for k in ks] + ["rank_spearman", "rank_inversion_share",
                                                         "rank_spearman_truth"]
        lines += [f"### {world}, {head} head: uplift@k / the oracle's and rank monotonicity "
                  f"(observed Hajek uplift by bin of the score on the evaluation log; "
                  f"`rank_spearman_truth` on true uplift), n = {nmax}", "",
                  "| learner | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for learner in dict.fromkeys(part[part.metric == "rank_spearman"].learner):
            lines.append(f"| {learner} | "
                         + " | ".join(_cell(part, learner, m) for m in metrics) + " |")
        lines.append("")
    part = at[at["head"] == "value_cost"]
    costs = _levels(part, "value_cost", "value")
    if costs:  # a world without cost has no value-vs-cost curve
        oracle = " · ".join(f"{c:g}: {_cell(part, 'oracle', f'value@{c:g}')}" for c in costs)
        lines += [f"### {world}, value-vs-cost curve, n = {nmax}: true incremental value / the "
                  "oracle's at true incremental cost c per user (each user its best predicted "
                  "value offer, in descending predicted value/cost); oracle value per user at "
                  f"c = {oracle}",
                  "", "| learner | " + " | ".join(f"c = {c:g}" for c in costs) + " |",
                  "|---|" + "---|" * len(costs)]
        for learner in dict.fromkeys(part[part.metric.str.startswith("ratio@")].learner):
            lines.append(f"| {learner} | " + " | ".join(_cell(part, learner, f"ratio@{c:g}")
                                                       for c in costs) + " |")
        lines.append("")
    stable = s[s.metric.isin(("split_rank_corr", "split_noise_to_signal"))]
    if len(stable):
        n_stab = stable.n.min()
        part = stable[stable.n == n_stab]
        cols = [(h, m) for h in _heads(part)
                for m in ("split_rank_corr", "split_noise_to_signal")]
        lines += [f"### {world}, split stability, n = {n_stab}: refits on the two halves of the "
                  "training log, their best-offer scores on the evaluation users", "",
                  "| learner | " + " | ".join(f"{h}: {m}" for h, m in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        cells = {learner: [_cell(part[part["head"] == h], learner, m) for h, m in cols]
                 for learner in dict.fromkeys(part.learner)}
        lines += [f"| {learner} | " + " | ".join(c) + " |" for learner, c in cells.items()]
        if any("n/a" in c for row in cells.values() for c in row):
            lines += ["", NA_NOTE]
        lines.append("")
    return lines


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, markdown tables (mean ± s.e. over seeds) at the largest n (split
    stability at the smallest n where it ran), figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "learners.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    nmax = s.n.max()
    lines = [f"Learners at n = {nmax} training rows (mean ± s.e. over seeds); the zero-effect "
             "and constant-effect (ATE) baselines are the `zero` and `ate` rows; "
             "`<learner>@noiseless` is that learner fitted on the true means of the logged "
             f"actions (the label-noise ceiling). Learners {list(SLOW_LEARNERS)} run only up "
             "to the suite's slow_max_n rows: their curves are in the figures and the CSV.", ""]
    metrics = ("pehe", "qini_ratio", "calibration_error", "fit_seconds")
    for w in dict.fromkeys(s.world):
        for head in _heads(s[s.world == w]):
            part = s[(s.world == w) & (s["head"] == head) & (s.n == nmax)]
            lines += [f"### {w}, {head} head", "", "| learner | " + " | ".join(metrics) + " |",
                      "|---|" + "---|" * len(metrics)]
            for learner in dict.fromkeys(part[part.metric == "pehe"].learner):
                cells = []
                for m in metrics:
                    r = part[(part.learner == learner) & (part.metric == m)].iloc[0]
                    cells.append(f"{r['mean']:.4g} ± {r['se']:.2g}")
                lines.append(f"| {learner} | " + " | ".join(cells) + " |")
            lines.append("")
        policy = s[(s.world == w) & (s.n == nmax) & s["head"].str.startswith("policy@")]
        heads = sorted(dict.fromkeys(policy["head"]), key=lambda h: float(h.split("@")[1]))
        if not heads:  # a world without cost: no budget (uplift@k is the capacity view)
            lines += _diagnostics_tables(s[s.world == w], w)
            continue
        lines += [f"### {w}, policy: true regret (% of the oracle's incremental value) and "
                  "true incremental cost / budget", "",
                  "| learner | " + " | ".join(f"regret @{h.split('@')[1]} | cost/budget "
                                              f"@{h.split('@')[1]}" for h in heads) + " |",
                  "|---|" + "---|---|" * len(heads)]
        for learner in dict.fromkeys(policy.learner):
            cells = []
            for h in heads:
                for m, scale in (("regret", 100.0), ("cost_ratio", 1.0)):
                    r = policy[(policy.learner == learner) & (policy["head"] == h)
                               & (policy.metric == m)].iloc[0]
                    cells.append(f"{scale * r['mean']:.3g} ± {scale * r['se']:.2g}")
            lines.append(f"| {learner} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += _diagnostics_tables(s[s.world == w], w)
    md = out_dir / "learners.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


# the published jobs on the registered worlds (conf/world/) -> their training sizes: Nie &
# Wager from the paper's n = 500; Hillstrom (about 1 % of users convert: 500 rows hold ~5
# purchases, too few for the hurdle's halves) and OBP (10 arms, the behaviour policy logs some
# arms at ~0.5 %: cross-fitting needs every arm in each fold) from 2,000. The learners that fit
# in about a minute per seed and world, TARNet up to ``slow_max_n`` and the default heads at every
# size (no MLP / BART; the hurdle only where labels are non-negative).
WORLD_VARIANTS: dict[str, str] = {
    "nie_wager_a": "[500,2000,8000]", "nie_wager_b": "[500,2000,8000]",
    "nie_wager_c": "[500,2000,8000]", "nie_wager_d": "[500,2000,8000]",
    "hillstrom_semi": "[2000,8000,32000]", "obp": "[2000,8000,32000]"}
_WORLD_PARAMS = ("experiment.params.learners=[zero,ate,s,t,x,dr,r,hurdle,tarnet,t_lgbm,default]",
                 "experiment.params.noiseless=[]")

SUITE = Suite(name="learners", config_class=LearnersSuiteConfig, run=run, plot=plot,
              write=write_results, unavailable=unavailable,
              key_columns=("world", "logging", "n", "learner", "head"),
              result_variants=tuple((f"world={w}", f"experiment.params.ns={ns}", *_WORLD_PARAMS)
                                    for w, ns in WORLD_VARIANTS.items()))
