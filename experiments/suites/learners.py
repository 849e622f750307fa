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

``noiseless``: learners also fitted on the noiseless labels (the true means ``mu(x_i, a_i)`` of
the logged actions in place of the sampled value and cost), reported as ``<name>@noiseless``:
the ceiling of that learner when label noise is removed, beside its regret-vs-n curve (not
meaningful for ``hurdle``, whose occurrence part needs zero labels: every mean is positive).
``t_bart`` (BART T-learner) is available but not in the default list: on the value head it costs
~2 minutes per fit at n = 2,000-8,000 on 2 cores and its PEHE was 2-3x the ridge T-learner's
(11.1 vs 4.2 at n = 2,000; 7.7 vs 3.3 at 8,000; seed 0), so it is benchmarked on IHDP instead.

The compared learners (:data:`LEARNER_HEADS`) are :class:`~estimators.heads.HeadConfig` changes
over each head's config (``learner``: value head ridge alpha 100, cost head ridge alpha 1 by
default; the global ``learner`` group sets them); ``hurdle`` is the stable-proxy head pair (value:
purchase probability x log-basket model; cost: redemption probability x face value). Learners in
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
from estimators.heads import HeadConfig, make_learner
from estimators.metrics import best_offer, pehe, qini_coefficient, truth_gain
from estimators.tarnet import COST_CONFIG, VALUE_CONFIG
from experiments.configs import HeadsConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators import default_params, policy_truth, simulate
from simulators.oracle import optimal_policy

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
}
LEARNERS = ("zero", "ate", *LEARNER_HEADS)
SLOW_LEARNERS = ("t_bart", "tarnet")
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

    worlds: tuple[tuple[str, str, int], ...] = (
        ("uniform_k4", "uniform", 4),
        ("skewed_k4", "epsilon_greedy", 4),
        ("uniform_k2", "uniform", 2),
    )
    learners: tuple[str, ...] = ("zero", "ate", "s", "t", "x", "dr", "r", "hurdle", "t_mlp",
                                 "tarnet", "t_lgbm")
    noiseless: tuple[str, ...] = ("t", "t_lgbm")
    ns: tuple[int, ...] = (2_000, 8_000, 32_000)
    n_eval: int = 20_000
    n_calibration_bins: int = 5
    budgets: tuple[float, ...] = (0.05, 0.25, 1.0)
    slow_max_n: int = 8_000

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


def run(cfg: LearnersSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(world, logging, n, seed, learner, head, metric, value)``. Heads ``value`` and
    ``cost``: metrics ``pehe``, ``qini_ratio`` (Qini coefficient / the true uplift's),
    ``calibration_error``, ``fit_seconds`` (fit + predict wall time, including JIT compilation
    the first time a shape is seen). Head ``policy@<budget>``: ``regret``, ``cost_ratio``.
    Streams ``stream(seed, "train", world, n)`` and ``stream(seed, "eval", world, n)``.
    """
    why = unavailable(cfg)
    if why:
        raise ValueError(f"experiment.params.learners: {why}.")
    rows: list[dict[str, Any]] = []
    jobs = [(w, n) for w in cfg.worlds for n in cfg.ns]
    for (world_name, kind, n_offers), n in tqdm(jobs, desc="learners suite",
                                                disable=quiet_bar(progress), leave=False):
        world = dataclasses.replace(cfg.world, n_offers=n_offers)
        params = default_params(world)
        logging = dataclasses.replace(cfg.logging, kind=kind)
        train = simulate(stream(seed, "train", world_name, n), params, world, n, logging)
        evaluation = simulate(stream(seed, "eval", world_name, n), params, world, cfg.n_eval,
                              LoggingConfig(kind="uniform"))
        truths = {"value": np.asarray(evaluation.truth.tau_value),
                  "cost": np.asarray(evaluation.truth.tau_cost)}
        labels_eval = {"value": evaluation.value, "cost": evaluation.cost}
        oracle_qini = {}
        for head, truth in truths.items():
            chosen, score = best_offer(truth, evaluation.eligible)
            oracle_qini[head] = qini_coefficient(score, truth_gain(truth, chosen))
        oracle = {b: policy_truth(evaluation.truth, np.asarray(optimal_policy(
            evaluation.truth, b * evaluation.n, eligible=evaluation.eligible).action_dist),
            eligible=evaluation.eligible) for b in cfg.budgets}
        noisy = {"value": train.value, "cost": train.cost}
        clean = dict(zip(("value", "cost"), _noiseless_labels(train), strict=True))
        fits = [(name, name, noisy) for name in cfg.learners]
        fits += [(f"{name}@noiseless", name, clean) for name in cfg.noiseless]
        for label_name, learner_name, labels in fits:
            if learner_name in SLOW_LEARNERS and n > cfg.slow_max_n:
                continue
            base = dict(world=world_name, logging=kind, n=n, seed=seed, learner=label_name)
            taus = {}
            for head in ("value", "cost"):
                learner = _make(learner_name, getattr(cfg.learner, head), head)
                t0 = time.perf_counter()
                learner.fit(train.x, train.action, labels[head], train.action_prob,
                            world.n_actions)
                tau = np.asarray(jax.block_until_ready(learner.predict_tau(evaluation.x)))
                fit_seconds = time.perf_counter() - t0
                taus[head] = tau
                chosen, score = best_offer(tau, evaluation.eligible)
                metrics = {
                    "pehe": pehe(tau, truths[head], evaluation.eligible),
                    "qini_ratio": qini_coefficient(score, truth_gain(truths[head], chosen))
                    / oracle_qini[head],
                    "calibration_error": _calibration_error(tau, evaluation, labels_eval[head],
                                                            cfg.n_calibration_bins),
                    "fit_seconds": fit_seconds,
                }
                rows += [dict(base, head=head, metric=m, value=float(v))
                         for m, v in metrics.items()]
            for b in cfg.budgets:
                alloc = allocate(taus["value"], taus["cost"], budget=b * evaluation.n,
                                 eligible=evaluation.eligible)
                t = policy_truth(evaluation.truth, np.asarray(alloc.action_dist),
                                 eligible=evaluation.eligible)
                regret = 1.0 - t.incremental_value / oracle[b].incremental_value
                rows += [dict(base, head=f"policy@{b:g}", metric="regret", value=float(regret)),
                         dict(base, head=f"policy@{b:g}", metric="cost_ratio",
                              value=float(t.incremental_cost / b))]
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (world, n, learner, head, metric)."""
    g = df.groupby(["world", "n", "learner", "head", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", sd="std", count="count").reset_index()
    out["se"] = out["sd"].fillna(0.0) / np.sqrt(out["count"])
    return out


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PEHE of each head against n per learner (log-log), one panel per (world, head); and the
    Qini ratio at the largest n."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = summary(df)
    worlds = list(dict.fromkeys(s.world))
    fig, axes = plt.subplots(2, len(worlds), figsize=(4.5 * len(worlds), 7), squeeze=False)
    for j, w in enumerate(worlds):
        for i, head in enumerate(("value", "cost")):
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, head in zip(axes, ("value", "cost"), strict=True):
        t = part[part["head"] == head].pivot(index="learner", columns="world", values="mean")
        t.plot.bar(ax=ax)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(f"Qini / oracle Qini, {head} head, n={nmax}")
        ax.set_xlabel("learner")
        ax.set_ylabel("Qini ratio")
    figure_legend(fig, axes, title="world")
    p2 = save(fig, out_dir, "qini_ratio.png")
    return [p1, p2, _plot_regret(s, out_dir)]


def _plot_regret(s: pd.DataFrame, out_dir: Path) -> Path:
    """True regret of each learner's policy against n, one panel per (world, budget); the
    noiseless-label ceilings (``@noiseless``) dotted in the colour of their learner."""
    plt = pyplot()
    policy = s[s["head"].str.startswith("policy@") & (s.metric == "regret")]
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


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table (mean ± s.e. over seeds) at the largest n, figures."""
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
        for head in ("value", "cost"):
            part = s[(s.world == w) & (s["head"] == head) & (s.n == nmax)]
            lines += [f"### {w}, {head} head", "", "| learner | " + " | ".join(metrics) + " |",
                      "|---|" + "---|" * len(metrics)]
            for learner in dict.fromkeys(part.learner):
                cells = []
                for m in metrics:
                    r = part[(part.learner == learner) & (part.metric == m)].iloc[0]
                    cells.append(f"{r['mean']:.4g} ± {r['se']:.2g}")
                lines.append(f"| {learner} | " + " | ".join(cells) + " |")
            lines.append("")
        policy = s[(s.world == w) & (s.n == nmax) & s["head"].str.startswith("policy@")]
        heads = sorted(dict.fromkeys(policy["head"]), key=lambda h: float(h.split("@")[1]))
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
    md = out_dir / "learners.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="learners", config_class=LearnersSuiteConfig, run=run, plot=plot,
              write=write_results, unavailable=unavailable,
              key_columns=("world", "logging", "n", "learner", "head"))
