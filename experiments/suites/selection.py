"""Selection suite: pick each head by the design notes' criteria or by holdout MSE, and
recalibrate the spend of the cost head, all scored by the true regret of the induced policy.

Per seed and world: a training log (``logging``, randomised with propensities) fits every
candidate learner (:data:`CANDIDATES`) on the value head and on the cost head, and again on the
two halves of the log (split stability); an independent **holdout** log (uniform over eligible
actions, so with a no-offer arm) scores them (:func:`estimators.selection.score_candidates`:
incremental calibration error, rank monotonicity in holdout bins, split stability, holdout MSE of
the factual outcome); fresh **evaluation** users with exact truth score the policies. Rules that
pick a (value head, cost head) pair, each head independently:

* ``criteria``: the design notes' rank-sum rule (:func:`estimators.selection.pick`);
* ``mse``: the smallest holdout MSE of the factual outcome (raw predictive fit);
* ``pehe``: the smallest true PEHE on the evaluation users (the oracle pick, simulated worlds
  only);
* ``default``: the library default heads (``HeadsConfig()``: the TARNet value head with
  inverse-propensity row weights and the weighted hurdle cost head; candidate ``default``), for
  reference;
* ``ridge_pair``: the ridge T-learner pair (value alpha 100, cost alpha 1: the default before the
  hurdle heads, whose overspend at small budgets the issue reports), when ``ridge_t`` is a
  candidate;
* ``best_pair``: among the candidate pairs whose true incremental cost is within 5 % of the budget
  (:data:`BEST_PAIR_SLACK`; the pair of least true cost when none is), the one with the smallest
  true regret at that budget (spend ``none`` only): about the best a head-selection rule over
  these candidates can do without buying value with overspend.

Each pair is allocated on the evaluation users by :func:`policies.allocation.allocate` at every
budget per user of ``budgets`` and scored by truth: ``regret`` = 1 - its true incremental value /
the oracle's (the same allocator on the true effects at the same nominal budget), ``cost_ratio``
= its true incremental cost / the budget. **Spend recalibration** (``spend``): ``none`` (the
allocation as is), ``isotonic`` (the cost head mapped by
:class:`estimators.calibration.IsotonicRecalibration` fitted on the holdout), ``holdout_budget``
(:func:`policies.spend.calibrate_budget`: the internal budget per user at which the allocation of
the holdout users' predictions has a doubly robust holdout estimate of true incremental cost equal
to the budget, with the cost head's ``mu`` as ``q_hat``; deployed at that per-user budget on the
evaluation users), ``holdout_ucb`` (the same with the one-sided upper confidence bound ``C_hat +
z se`` at level ``spend_confidence`` set to the budget: the spend is bounded by the budget with
about that probability, at the price of underspending by about ``z se`` on average),
``isotonic_budget`` (both: the isotonic cost head, then the holdout budget on its predictions; the
isotonic map is fitted on the same holdout, so the spend estimate is no longer on outcomes
independent of the allocation, a small effect for a monotone one-dimensional map per offer).
Extra rows of the three budget variants: ``internal_budget_ratio`` (internal / nominal budget),
``holdout_cost_ratio`` (the holdout estimate at the internal budget / budget),
``holdout_cost_se_ratio`` (its s.e. / budget), ``nominal_holdout_cost_ratio`` (the estimate at
the nominal budget / budget).

Worlds (``worlds``): ``default`` (the embedded world) and ``nonlinear`` (its feature-driven effect
heterogeneity ``het_coef`` scaled by ``nonlinear_het_scale``, so the logit effect multiplier
``exp(het . x)`` is far from linear, and a heavier-tailed basket, log-normal ``basket_sigma =
nonlinear_basket_sigma``). Streams: ``stream(seed, "train" / "holdout" / "eval", world)``.
Run ``python -m experiments.run experiment=selection``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators.calibration import IsotonicRecalibration
from estimators.heads import (
    DEFAULT_COST_HEAD,
    DEFAULT_VALUE_HEAD,
    HURDLE_COST_HEAD,
    HURDLE_VALUE_HEAD,
    make_learner,
)
from estimators.metrics import pehe
from estimators.selection import pick, pick_by_pehe, score_candidates
from estimators.tarnet import COST_CONFIG, VALUE_CONFIG
from experiments.configs import HeadConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import (
    MARKERS,
    PALETTE,
    figure_legend,
    log_axis,
    pyplot,
    save,
    series_style,
)
from experiments.suites.allocation import features
from experiments.suites.base import Suite, mean_se, quiet_bar, stream
from policies.allocation import allocate
from policies.spend import calibrate_budget
from simulators import LoggedData, WorldParams, default_params, policy_truth, simulate

__all__ = ["CANDIDATES", "SUITE", "SelectionSuiteConfig", "plot", "run", "summary",
           "world_params", "write_results"]

# candidate -> (value head, cost head); None: the constant-effect (ATE) candidate
CANDIDATES: dict[str, tuple[HeadConfig, HeadConfig] | None] = {
    "ate": None,
    "ridge_t": (HeadConfig(alpha=100.0), HeadConfig(alpha=1.0)),
    "hurdle": (HURDLE_VALUE_HEAD, HURDLE_COST_HEAD),
    "dr_ridge": (HeadConfig(learner="dr", alpha=100.0), HeadConfig(learner="dr", alpha=1.0)),
    "t_lgbm": (HeadConfig(base="lightgbm"), HeadConfig(base="lightgbm")),
    "tarnet": (HeadConfig(learner="tarnet", tarnet=VALUE_CONFIG),
               HeadConfig(learner="tarnet", tarnet=COST_CONFIG)),
    # the library default heads, HeadsConfig(): TARNet value head with inverse-propensity row
    # weights, hurdle cost head weighted by 1 / e_a(x)
    "default": (DEFAULT_VALUE_HEAD, DEFAULT_COST_HEAD),
}
OPTIONAL = {"t_lgbm": "lightgbm"}
DEFAULT_PAIR = "default"  # HeadsConfig(): the library default heads
WORLDS = ("default", "nonlinear")
SPEND = ("none", "isotonic", "holdout_budget", "holdout_ucb", "isotonic_budget")
RULES = ("criteria", "mse", "pehe", "default", "ridge_pair", "best_pair")
FIXED_RULES = {"default": DEFAULT_PAIR, "ridge_pair": "ridge_t"}  # rule -> its fixed pair
HEADS = ("value", "cost")
POLICY_METRICS = ("regret", "cost_ratio", "incremental_value", "incremental_cost")
NA = "-"
BEST_PAIR_SLACK = 0.05  # best_pair: the pairs whose true cost is within 5 % of the budget


@dataclasses.dataclass(frozen=True)
class SelectionSuiteConfig:
    """``candidates`` from :data:`CANDIDATES` (``t_lgbm`` is skipped, with a note in the rows'
    absence, when lightgbm is not importable); ``budgets`` per evaluation user; ``spend`` from
    :data:`SPEND`; ``split_stability``: refit every candidate on the two halves of the training
    log (3 fits per candidate and head instead of 1)."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    worlds: tuple[str, ...] = WORLDS
    nonlinear_het_scale: float = 3.0
    nonlinear_basket_sigma: float = 1.2
    candidates: tuple[str, ...] = ("ate", "ridge_t", "hurdle", "dr_ridge", "t_lgbm", "tarnet",
                                   "default")
    n_train: int = 20_000
    n_holdout: int = 40_000
    n_eval: int = 20_000
    budgets: tuple[float, ...] = (0.05, 0.25, 1.0)
    spend: tuple[str, ...] = SPEND
    spend_confidence: float = 0.9
    n_bins: int = 10
    split_stability: bool = True

    def hashed_references(self) -> dict[str, Any]:
        """What the candidate names stand for (:func:`experiments.store.config_hash`): their
        :data:`CANDIDATES` head pairs, so that a job's hash moves with a definition, e.g. the
        ``default`` candidate's when the library default heads change."""
        return {name: CANDIDATES[name] for name in self.candidates}

    @classmethod
    def compact(cls) -> SelectionSuiteConfig:
        # one log size: the simulator and every fit compile one shape (a cold run is mostly
        # compilation)
        return cls(candidates=("ate", "ridge_t", "default"), n_train=4_000, n_holdout=4_000,
                   n_eval=4_000, budgets=(0.05, 1.0), n_bins=5)

    def __post_init__(self) -> None:
        bad = sorted(set(self.candidates) - set(CANDIDATES))
        if bad or len(self.candidates) < 2:
            raise ValueError(f"SelectionSuiteConfig.candidates: need >= 2 of {list(CANDIDATES)}"
                             f", got {list(self.candidates)}"
                             + (f" (unknown {bad})" if bad else "")
                             + ". Fix: e.g. candidates=[ridge_t,hurdle,default].")
        if DEFAULT_PAIR not in self.candidates:
            raise ValueError(f"SelectionSuiteConfig.candidates: must include {DEFAULT_PAIR!r} "
                             "(the library default, rule 'default'). Fix: add it.")
        bad = sorted(set(self.worlds) - set(WORLDS))
        if bad or not self.worlds:
            raise ValueError(f"SelectionSuiteConfig.worlds: non-empty subset of {WORLDS}, got "
                             f"{list(self.worlds)}. Fix: e.g. worlds=[default,nonlinear].")
        bad = sorted(set(self.spend) - set(SPEND))
        if bad or not self.spend or "none" not in self.spend:
            raise ValueError(f"SelectionSuiteConfig.spend: a subset of {SPEND} including 'none',"
                             f" got {list(self.spend)}. Fix: e.g. spend=[none,holdout_budget].")
        if not self.budgets or min(self.budgets) <= 0:
            raise ValueError(f"SelectionSuiteConfig.budgets: non-empty, every budget per user "
                             f"> 0, got {self.budgets!r}. Fix: e.g. budgets=[0.05, 1.0].")
        if min(self.n_train, self.n_holdout) < 1000 or self.n_eval < 500:
            raise ValueError(f"SelectionSuiteConfig: n_train, n_holdout >= 1000 and n_eval >= "
                             f"500, got {self.n_train}, {self.n_holdout}, {self.n_eval}. Fix: "
                             "raise them.")
        if self.n_bins < 2:
            raise ValueError(f"SelectionSuiteConfig.n_bins: >= 2, got {self.n_bins}. Fix: e.g. "
                             "n_bins=10.")
        if not 0.5 <= self.spend_confidence < 1:
            raise ValueError(f"SelectionSuiteConfig.spend_confidence: in [0.5, 1), got "
                             f"{self.spend_confidence}. Fix: e.g. 0.9.")
        if self.nonlinear_het_scale <= 0 or self.nonlinear_basket_sigma <= 0:
            raise ValueError("SelectionSuiteConfig.nonlinear_het_scale / nonlinear_basket_sigma:"
                             " must be > 0. Fix: e.g. 3.0 and 1.2.")
        if self.logging.kind == "confounded":
            raise ValueError("SelectionSuiteConfig.logging: the confounded logger records no "
                             "propensities (the DR candidate and the holdout criteria need "
                             "them). Fix: use a randomised logging kind.")


def _candidates(cfg: SelectionSuiteConfig) -> tuple[str, ...]:
    return tuple(c for c in cfg.candidates
                 if c not in OPTIONAL or importlib.util.find_spec(OPTIONAL[c]) is not None)


def world_params(cfg: SelectionSuiteConfig, name: str) -> WorldParams:
    """The parameters of world ``name`` (module docstring)."""
    params = default_params(cfg.world)
    if name == "nonlinear":
        params = params._replace(
            het_coef=params.het_coef * cfg.nonlinear_het_scale,
            basket_sigma=jnp.full_like(params.basket_sigma, cfg.nonlinear_basket_sigma))
    return params


class _ConstantEffect:
    """``mu(x, a) = m_a``: the propensity-weighted (Hajek) arm means of the training log, so
    ``tau(x, a) = m_a - m_0`` for every user (the ATE candidate)."""

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any = None,
            n_actions: int | None = None) -> _ConstantEffect:
        action, reward = np.asarray(action), np.asarray(reward, dtype=np.float64)
        w = 1.0 / np.asarray(action_prob, dtype=np.float64)[np.arange(len(action)), action]
        self.m = np.array([np.sum((w * reward)[action == a]) / np.sum(w[action == a])
                           for a in range(int(n_actions))])
        return self

    def predict_mu(self, x: Any) -> np.ndarray:
        return np.broadcast_to(self.m, (len(x), len(self.m))).copy()

    def predict_tau(self, x: Any) -> np.ndarray:
        mu = self.predict_mu(x)
        return mu - mu[:, :1]


def _make(name: str, head: str) -> Any:
    spec = CANDIDATES[name]
    if spec is None:
        return _ConstantEffect()
    return make_learner(spec[HEADS.index(head)])


class _Fit:
    """One candidate head's predictions: ``tau`` / ``mu`` on the holdout, ``tau`` on the
    evaluation users, the two half-fits' ``tau`` on the holdout, fit seconds."""

    def __init__(self, name: str, head: str, f_train: np.ndarray, train: LoggedData,
                 f_hold: np.ndarray, f_eval: np.ndarray, halves: bool) -> None:
        label = np.asarray(train.value if head == "value" else train.cost)
        k1 = train.n_actions
        t0 = time.perf_counter()
        learner = _make(name, head).fit(f_train, train.action, label, train.action_prob, k1)
        self.tau_hold = np.asarray(jax.block_until_ready(learner.predict_tau(f_hold)),
                                   dtype=np.float64)
        self.mu_hold = np.asarray(learner.predict_mu(f_hold), dtype=np.float64)
        self.tau_eval = np.asarray(learner.predict_tau(f_eval), dtype=np.float64)
        self.seconds = time.perf_counter() - t0
        self.split = None
        if halves:
            half = train.n // 2
            parts = []
            for part in (slice(0, half), slice(half, 2 * half)):
                fit = _make(name, head).fit(f_train[part], train.action[part], label[part],
                                            train.action_prob[part], k1)
                parts.append(np.asarray(fit.predict_tau(f_hold), dtype=np.float64))
            self.split = np.stack(parts)


def _score(ev: LoggedData, dist: np.ndarray, best: float, level: float) -> dict[str, float]:
    t = policy_truth(ev.truth, dist, eligible=ev.eligible)
    return {"regret": 1.0 - t.incremental_value / best if best > 0 else float("nan"),
            "cost_ratio": t.incremental_cost / level,
            "incremental_value": t.incremental_value, "incremental_cost": t.incremental_cost}


def _with_zero(offers: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((offers.shape[0], 1)), offers], axis=1)


def _world_rows(cfg: SelectionSuiteConfig, seed: int, world_name: str) -> list[dict]:
    world = cfg.world
    params = world_params(cfg, world_name)
    uniform = LoggingConfig(kind="uniform")
    train = simulate(stream(seed, "train", world_name), params, world, cfg.n_train, cfg.logging)
    hold = simulate(stream(seed, "holdout", world_name), params, world, cfg.n_holdout, uniform)
    ev = simulate(stream(seed, "eval", world_name), params, world, cfg.n_eval, uniform)
    f_train, f_hold, f_eval = (features(d.x, d.segment) for d in (train, hold, ev))
    names = _candidates(cfg)
    labels = {"value": np.asarray(hold.value), "cost": np.asarray(hold.cost)}
    truth = {"value": np.asarray(ev.truth.tau_value, dtype=np.float64),
             "cost": np.asarray(ev.truth.tau_cost, dtype=np.float64)}
    rows: list[dict] = []
    base = dict(world=world_name, seed=seed)

    def cand_row(head: str, cand: str, metric: str, value: float) -> None:
        rows.append(dict(base, section="candidates", rule=NA, spend=NA, budget_per_user=0.0,
                         head=head, candidate=cand, metric=metric, value=float(value)))

    fits: dict[str, dict[str, _Fit]] = {}
    fixed = {r: c for r, c in FIXED_RULES.items() if c in names}
    picks: dict[str, dict[str, str]] = {r: {} for r in ("criteria", "mse", "pehe", *fixed)}
    for head in HEADS:
        fits[head] = {c: _Fit(c, head, f_train, train, f_hold, f_eval, cfg.split_stability)
                      for c in names}
        scores = score_candidates(
            names, [fits[head][c].tau_hold for c in names], action=hold.action,
            reward=labels[head], action_prob=hold.action_prob,
            split_tau=[fits[head][c].split for c in names] if cfg.split_stability else None,
            mu_hat=[fits[head][c].mu_hold for c in names], n_bins=cfg.n_bins)
        picks["criteria"][head] = pick(scores, "criteria").name
        picks["mse"][head] = pick(scores, "mse").name
        picks["pehe"][head] = pick_by_pehe(names, [fits[head][c].tau_eval for c in names],
                                           truth[head], ev.eligible).name
        for r, c in fixed.items():
            picks[r][head] = c
        for i, c in enumerate(names):
            metrics = {"calibration_error": scores.calibration_error[i],
                       "calibration_chi2": scores.calibration_chi2[i],
                       "rank_spearman": scores.rank_spearman[i],
                       "split_rank_corr": scores.split_rank_corr[i],
                       "holdout_mse": scores.holdout_mse[i], "rank_sum": scores.rank_sum[i],
                       "pehe": pehe(fits[head][c].tau_eval, truth[head], ev.eligible),
                       "fit_seconds": fits[head][c].seconds}
            metrics.update({f"picked_{r}": float(picks[r][head] == c)
                            for r in ("criteria", "mse", "pehe")})
            for m, v in metrics.items():
                cand_row(head, c, m, v)

    # spend variants of a cost candidate's evaluation predictions
    iso: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # (holdout, evaluation) predictions
    if {"isotonic", "isotonic_budget"} & set(cfg.spend):
        for c in names:
            f = fits["cost"][c]
            recal = IsotonicRecalibration().fit(f.tau_hold[:, 1:], hold.action, labels["cost"],
                                                hold.action_prob)
            iso[c] = (_with_zero(recal.transform(f.tau_hold[:, 1:])),
                      _with_zero(recal.transform(f.tau_eval[:, 1:])))
    oracle = {b: policy_truth(ev.truth, allocate(truth["value"], truth["cost"],
                                                 budget=b * ev.n, eligible=ev.eligible)
                              .action_dist, eligible=ev.eligible).incremental_value
              for b in cfg.budgets}

    cache: dict[tuple[str, str, str, float], dict[str, float]] = {}

    def evaluate(pair: tuple[str, str], spend: str, b: float) -> dict[str, float]:
        key = (*pair, spend, b)
        if key in cache:
            return cache[key]
        fv, fc = fits["value"][pair[0]], fits["cost"][pair[1]]
        tc_hold, tc_eval, internal, extra = fc.tau_hold, fc.tau_eval, b, {}
        if spend in ("isotonic", "isotonic_budget"):
            tc_hold, tc_eval = iso[pair[1]]
        if spend in ("holdout_budget", "holdout_ucb", "isotonic_budget"):
            cal = calibrate_budget(fv.tau_hold, tc_hold, budget_per_user=b,
                                   action=hold.action, cost=labels["cost"],
                                   action_prob=hold.action_prob, q_hat=fc.mu_hold,
                                   confidence=(cfg.spend_confidence if spend == "holdout_ucb"
                                               else None))
            internal = cal.internal_budget_per_user
            extra = {"internal_budget_ratio": internal / b,
                     "holdout_cost_ratio": cal.estimated_cost_per_user / b,
                     "holdout_cost_se_ratio": cal.stderr / b,
                     "nominal_holdout_cost_ratio": cal.nominal_estimate / b}
        alloc = allocate(fv.tau_eval, tc_eval, budget=internal * ev.n, eligible=ev.eligible)
        cache[key] = _score(ev, np.asarray(alloc.action_dist), oracle[b], b) | extra
        return cache[key]

    def emit(rule: str, spend: str, b: float, metrics: dict[str, float]) -> None:
        rows.extend(dict(base, section="policy", rule=rule, spend=spend, budget_per_user=b,
                         head=NA, candidate=NA, metric=m, value=float(v))
                    for m, v in metrics.items())

    for b in cfg.budgets:
        for rule, chosen in picks.items():
            pair = (chosen["value"], chosen["cost"])
            for spend in cfg.spend:
                emit(rule, spend, b, evaluate(pair, spend, b))
        scored = {(v, c): evaluate((v, c), "none", b) for v in names for c in names}
        feasible = [p for p in scored if scored[p]["cost_ratio"] <= 1.0 + BEST_PAIR_SLACK]
        best = (min(feasible, key=lambda p: scored[p]["regret"]) if feasible
                else min(scored, key=lambda p: scored[p]["cost_ratio"]))
        emit("best_pair", "none", b, scored[best])
    return rows


def run(cfg: SelectionSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(world, section, rule, spend, budget_per_user, head, candidate, seed, metric,
    value)``. Section ``policy`` (``head = candidate = "-"``): per rule, spend variant and budget
    the metrics ``regret``, ``cost_ratio``, ``incremental_value``, ``incremental_cost`` (per
    evaluation user) and, for ``holdout_budget``, the calibration's rows (module docstring).
    Section ``candidates`` (``rule = spend = "-"``, budget 0): per head and candidate the holdout
    scores (``calibration_error``, ``calibration_chi2``, ``rank_spearman``, ``split_rank_corr``,
    ``holdout_mse``, ``rank_sum``), the true ``pehe``, ``fit_seconds`` and ``picked_<rule>``
    (1 if that rule picked it)."""
    rows: list[dict] = []
    for world_name in tqdm(cfg.worlds, desc="selection suite", disable=quiet_bar(progress),
                           leave=False):
        rows += _world_rows(cfg, seed, world_name)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds of every metric per key."""
    return mean_se(df, ["world", "section", "rule", "spend", "budget_per_user", "head",
                        "candidate", "metric"])


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Per world, rule, spend and budget: regret (% of the oracle's value) and cost / budget,
    mean over seeds."""
    s = summary(df[(df.section == "policy") & df.metric.isin(("regret", "cost_ratio"))])
    s = s.assign(mean=np.where(s.metric == "regret", 100 * s["mean"], s["mean"]))
    return s.pivot_table(index=["world", "rule", "spend"], columns=["metric", "budget_per_user"],
                         values="mean").reset_index()


RULE_STYLE = {r: {"color": PALETTE[i], "marker": MARKERS[i]} for i, r in enumerate(RULES)}
RULE_STYLE["default"] = series_style("default")  # the library default heads, as in every figure
SPEND_STYLE = {s: {"color": PALETTE[10 + i], "marker": MARKERS[i]} for i, s in enumerate(SPEND)}
SPEND_LINE = {"none": "-", "isotonic": ":", "holdout_budget": "--", "holdout_ucb": "-.",
              "isotonic_budget": (0, (5, 1, 1, 1, 1, 1))}


def _policy_axes(ax, part: pd.DataFrame, metric: str) -> None:
    if metric == "cost_ratio":
        ax.axhspan(0.95, 1.05, color="0.88", zorder=0)
        ax.axhline(1.0, color="k", lw=0.8)
    log_axis(ax, "x", sorted(part.budget_per_user.unique()))
    ax.set_xlabel("budget per user")
    ax.grid(alpha=0.3)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Mean +- 1 s.e. over seeds, one column per world. ``selection_policy.png``: true regret (%
    of the oracle's value) and true cost / budget against the budget per user, one colour per
    rule, solid without spend recalibration, dashed with the holdout budget.
    ``selection_spend.png``: true cost / budget of every spend variant (one colour each), for the
    ``criteria`` and ``default`` rules (solid, dashed); the grey band is +- 5 %."""
    plt = pyplot()
    s = summary(df[df.section == "policy"])
    worlds = list(dict.fromkeys(s.world))
    if not worlds:
        return []
    paths = []
    fig, axes = plt.subplots(2, len(worlds), figsize=(5.4 * len(worlds), 8), squeeze=False)
    for j, w in enumerate(worlds):
        for i, (metric, scale, label) in enumerate((("regret", 100.0, "true regret, % of oracle"),
                                                    ("cost_ratio", 1.0,
                                                     "true incremental cost / budget"))):
            ax = axes[i, j]
            part = s[(s.world == w) & (s.metric == metric)]
            for rule in RULES:
                for spend in ("none", "holdout_budget"):
                    g = part[(part.rule == rule) & (part.spend == spend)]
                    if g.empty:
                        continue
                    g = g.sort_values("budget_per_user")
                    ax.errorbar(g.budget_per_user, scale * g["mean"], yerr=scale * g.se,
                                capsize=3, ls=SPEND_LINE[spend], ms=4,
                                label=f"{rule} (spend {spend})", **RULE_STYLE[rule])
            _policy_axes(ax, part, metric)
            ax.set_ylabel(label)
            ax.set_title(f"{w}: {label}", fontsize=10)
    figure_legend(fig, axes, fontsize=8)
    paths.append(save(fig, out_dir, "selection_policy.png"))
    fig, axes = plt.subplots(1, len(worlds), figsize=(5.4 * len(worlds), 4.3), squeeze=False)
    for j, w in enumerate(worlds):
        ax = axes[0, j]
        part = s[(s.world == w) & (s.metric == "cost_ratio")]
        for rule, ls in (("criteria", "-"), ("default", "--")):
            for spend in SPEND:
                g = part[(part.rule == rule) & (part.spend == spend)].sort_values(
                    "budget_per_user")
                if g.empty:
                    continue
                ax.errorbar(g.budget_per_user, g["mean"], yerr=g.se, capsize=3, ls=ls, ms=4,
                            label=f"spend {spend} (rule {rule})", **SPEND_STYLE[spend])
        _policy_axes(ax, part, "cost_ratio")
        ax.set_ylabel("true incremental cost / budget")
        ax.set_title(f"{w}: spend recalibration", fontsize=10)
    figure_legend(fig, axes, fontsize=8)
    paths.append(save(fig, out_dir, "selection_spend.png"))
    return paths


def _cell(s: pd.DataFrame, scale: float = 1.0, digits: int = 3) -> str:
    if s.empty:
        return "—"
    m, se = scale * float(s["mean"].iloc[0]), scale * float(s["se"].iloc[0])
    return "n/a" if np.isnan(m) else f"{m:.{digits}g} ± {se:.2g}"


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``selection.csv`` (all rows), ``selection.md`` (policy table per world; candidate scores
    and pick counts per world and head), the figure."""
    out_dir = Path(out_dir)
    csv = out_dir / "selection.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    n_seeds = df.seed.nunique()
    lines = [f"## Selection and spend recalibration ({n_seeds} seeds, mean ± s.e.)", ""]
    pol = s[s.section == "policy"]
    for w in dict.fromkeys(pol.world):
        p = pol[pol.world == w]
        budgets = sorted(p.budget_per_user.unique())
        lines += [f"### {w}: true regret (% of the oracle's value) / true cost ÷ budget", "",
                  "| rule | spend | " + " | ".join(f"regret @{b:g} | cost/budget @{b:g}"
                                                   for b in budgets) + " |",
                  "|---|---|" + "---|---|" * len(budgets)]
        for (rule, spend), g in p.groupby(["rule", "spend"], sort=False):
            cells = []
            for b in budgets:
                at = g[g.budget_per_user == b]
                cells += [_cell(at[at.metric == "regret"], 100.0),
                          _cell(at[at.metric == "cost_ratio"])]
            lines.append(f"| {rule} | {spend} | " + " | ".join(cells) + " |")
        lines.append("")
    cand = s[s.section == "candidates"]
    metrics = ("calibration_error", "rank_spearman", "split_rank_corr", "holdout_mse", "pehe",
               "picked_criteria", "picked_mse", "picked_pehe")
    for w in dict.fromkeys(cand.world):
        for head in HEADS:
            c = cand[(cand.world == w) & (cand["head"] == head)]
            if c.empty:
                continue
            lines += [f"### {w}, {head} head: holdout scores, true PEHE, share of seeds picked",
                      "", "| candidate | " + " | ".join(metrics) + " |",
                      "|---|" + "---|" * len(metrics)]
            for name in dict.fromkeys(c.candidate):
                at = c[c.candidate == name]
                lines.append(f"| {name} | " + " | ".join(_cell(at[at.metric == m])
                                                         for m in metrics) + " |")
            lines.append("")
    md = out_dir / "selection.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="selection", config_class=SelectionSuiteConfig, run=run, plot=plot,
              write=write_results, summary=headline,
              key_columns=("world", "section", "rule", "spend", "budget_per_user", "head",
                           "candidate"),
              in_default=False, published=True)
