"""Learner benchmark suite: uplift learners x worlds x n, several seeds, value and cost heads.

Per (world, n, seed): a training log under the world's logging policy and an independent uniform
evaluation log of ``n_eval`` rows. Every learner fits a value head and a cost head (different
ridge penalties: value is sparse and heavy-tailed, cost dense) and is scored on the evaluation
users against the world's exact truth: PEHE of each head, the Qini coefficient of its best-offer
ranking (exact, from true uplift) relative to the oracle's, incremental calibration error on the
evaluation log (Hajek bins, mean over offers), and fit time. Two baselines sit in the same table:
a zero-effect predictor and a constant-effect predictor (per-offer ATE, propensity-weighted
difference in means on the training log).

The compared meta-learners share the base model and penalty of each head's config (``learner``:
value head ridge alpha 100, cost head ridge alpha 1 by default; the global ``learner`` group sets
them). Run ``python -m experiments.run experiment=learners`` (``experiment.compact=true``: fast).
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

from estimators.calibration import incremental_calibration
from estimators.heads import HeadConfig, make_learner
from estimators.metrics import best_offer, pehe, qini_coefficient, truth_gain
from experiments.configs import HeadsConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import pyplot, save
from experiments.suites.base import Suite, stream
from simulators import default_params, simulate

__all__ = ["SUITE", "LearnersSuiteConfig", "plot", "run", "write_results"]

# compared learner -> its estimators.heads.HeadConfig fields over the head's config (base model
# and penalty); zero and ate are the constant-effect baselines
LEARNER_HEADS: dict[str, dict[str, Any]] = {
    "s": {"learner": "s", "interactions": True}, "t": {"learner": "t"}, "x": {"learner": "x"},
    "dr": {"learner": "dr"}, "r": {"learner": "r"},
    "t_mlp": {"learner": "t", "base": "mlp", "mlp_hidden": (64, 64), "mlp_max_epochs": 40,
              "mlp_batch_size": 512},
}
LEARNERS = ("zero", "ate", *LEARNER_HEADS)


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
    learners: tuple[str, ...] = LEARNERS
    ns: tuple[int, ...] = (2_000, 8_000, 32_000)
    n_eval: int = 20_000
    n_calibration_bins: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.learners) - set(LEARNERS)
        if unknown:
            raise ValueError(f"LearnersSuiteConfig.learners: unknown {sorted(unknown)}; choose "
                             f"from {LEARNERS}.")
        if min(self.ns) < 500 or self.n_eval < 2000:
            raise ValueError("LearnersSuiteConfig: need every n >= 500 and n_eval >= 2000.")

    @classmethod
    def compact(cls) -> LearnersSuiteConfig:
        return cls(worlds=(("uniform_k4", "uniform", 4), ("skewed_k4", "epsilon_greedy", 4)),
                   learners=("zero", "ate", "t", "dr", "r"), ns=(2_000, 8_000), n_eval=4_000)


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


def _make(name: str, head: HeadConfig) -> Any:
    """The compared learner ``name`` on the head's base model and penalty."""
    if name in ("zero", "ate"):
        return _ConstantEffect(zero=name == "zero")
    return make_learner(dataclasses.replace(head, **LEARNER_HEADS[name]))


def _calibration_error(tau: np.ndarray, log: Any, label: np.ndarray, n_bins: int) -> float:
    errs = []
    for a in range(1, tau.shape[1]):
        errs.append(incremental_calibration(tau[:, a], log.action, label, log.action_prob, a,
                                            n_bins=n_bins).error)
    return float(np.mean(errs))


def run(cfg: LearnersSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(world, logging, n, seed, learner, head, metric, value)``; metrics ``pehe``,
    ``qini_ratio`` (Qini coefficient / the true uplift's), ``calibration_error``, ``fit_seconds``
    (fit + predict wall time, including JIT compilation the first time a shape is seen).
    Streams ``stream(seed, "train", world, n)`` and ``stream(seed, "eval", world, n)``.
    """
    rows: list[dict[str, Any]] = []
    jobs = [(w, n) for w in cfg.worlds for n in cfg.ns]
    for (world_name, kind, n_offers), n in tqdm(jobs, desc="learners suite",
                                                disable=not progress, leave=False):
        world = dataclasses.replace(cfg.world, n_offers=n_offers)
        params = default_params(world)
        logging = dataclasses.replace(cfg.logging, kind=kind)
        train = simulate(stream(seed, "train", world_name, n), params, world, n, logging)
        evaluation = simulate(stream(seed, "eval", world_name, n), params, world, cfg.n_eval,
                              LoggingConfig(kind="uniform"))
        for head, label_train, label_eval, truth, head_cfg in (
            ("value", train.value, evaluation.value, evaluation.truth.tau_value,
             cfg.learner.value),
            ("cost", train.cost, evaluation.cost, evaluation.truth.tau_cost, cfg.learner.cost),
        ):
            truth = np.asarray(truth)
            chosen, score = best_offer(truth, evaluation.eligible)
            oracle_qini = qini_coefficient(score, truth_gain(truth, chosen))
            for learner_name in cfg.learners:
                learner = _make(learner_name, head_cfg)
                t0 = time.perf_counter()
                learner.fit(train.x, train.action, label_train, train.action_prob,
                            world.n_actions)
                tau = np.asarray(jax.block_until_ready(learner.predict_tau(evaluation.x)))
                fit_seconds = time.perf_counter() - t0
                chosen, score = best_offer(tau, evaluation.eligible)
                metrics = {
                    "pehe": pehe(tau, truth, evaluation.eligible),
                    "qini_ratio": qini_coefficient(score, truth_gain(truth, chosen))
                    / oracle_qini,
                    "calibration_error": _calibration_error(tau, evaluation, label_eval,
                                                            cfg.n_calibration_bins),
                    "fit_seconds": fit_seconds,
                }
                for metric, value in metrics.items():
                    rows.append(dict(world=world_name, logging=kind, n=n, seed=seed,
                                     learner=learner_name, head=head, metric=metric,
                                     value=float(value)))
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
                style = "--" if learner in ("zero", "ate") else "-"
                ax.errorbar(g.n, g["mean"], yerr=g.se, label=learner, ls=style, marker="o",
                            ms=3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ns = sorted(part.n.unique())
            ax.minorticks_off()
            ax.set_xticks(ns, [f"{n:,}" for n in ns])
            ax.set_title(f"{w}: {head} head")
            ax.set_xlabel("n (training rows)")
            ax.set_ylabel("PEHE")
    axes[0, -1].legend(fontsize=7)
    p1 = save(fig, out_dir, "pehe_vs_n.png")

    nmax = s.n.max()
    part = s[(s.n == nmax) & (s.metric == "qini_ratio")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, head in zip(axes, ("value", "cost"), strict=True):
        t = part[part["head"] == head].pivot(index="learner", columns="world", values="mean")
        t.plot.bar(ax=ax)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(f"Qini / oracle Qini, {head} head, n={nmax}")
    p2 = save(fig, out_dir, "qini_ratio.png")
    return [p1, p2]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table (mean ± s.e. over seeds) at the largest n, figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "learners.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    nmax = s.n.max()
    lines = [f"Learners at n = {nmax} training rows (mean ± s.e. over seeds); the zero-effect "
             "and constant-effect (ATE) baselines are the `zero` and `ate` rows.", ""]
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
    md = out_dir / "learners.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="learners", config_class=LearnersSuiteConfig, run=run, plot=plot,
              write=write_results, key_columns=("world", "logging", "n", "learner", "head"))
