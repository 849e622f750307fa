"""Bring-your-own-estimator suite: benchmark a plug-in learner (and optionally a plug-in OPE
estimator) against allocbench's own on the world's truth.

``learner`` and ``ope`` are Hydra ``_target_`` specs, so the plug-ins may live in any importable
module. Comparisons are fair by construction:

* **Learners** (the plug-in and the reference, allocbench's default heads): PEHE of the value and
  cost heads; the budgeted policy each induces, scored by truth **at equal true spend**: as
  allocated (true incremental value and cost, ``overspend_per_user``, ``feasible``) and
  re-allocated on its own estimates to the budget in truth
  (:func:`experiments.suites._world_glue.score_at_true_budget`: ``value_at_budget``,
  ``regret_at_budget``, the ranking metric; an over-budget policy cannot look better by spending
  more). Rows ``learner = plugin_minus_reference`` hold the paired per-seed differences, so the
  report's t-interval across seeds is the CI of the difference.
* **OPE** (the plug-in and allocbench's IPS and DR, the DR with the reference T-learner's
  ``q_hat``): on ``n_replicates`` fresh evaluation logs under each logger of ``ope_loggings``, the
  plug-in learner's policy evaluated against its exact value on those users: ``bias``, ``rmse``,
  ``coverage`` of the estimator's CI (blank when it reports none) and ``ci_width``, as the
  built-in OPE suite reports them; plus ``ope_estimate``/``ope_error`` on the job's own log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.heads import HeadsConfig, make_learner
from estimators.metrics import pehe
from estimators.ope import dr, ips
from experiments.configs import LoggingConfig, PolicyConfig, WorldConfig
from experiments.plugins import as_learner, as_ope, instantiate, predict_effects
from experiments.suites._plotting import pyplot, save, series_style
from experiments.suites._world_glue import score_at_true_budget
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators import default_params, policy_truth, simulate, simulate_batch

__all__ = ["SUITE", "ByoSuiteConfig", "plot", "run"]

# the reference: allocbench's default heads (estimators.heads.HeadsConfig(): the hurdle pair)
REFERENCE = HeadsConfig()


@dataclasses.dataclass(frozen=True)
class ByoSuiteConfig:
    """``learner`` / ``ope``: the plug-ins' ``_target_`` specs (``experiment.params.learner``;
    not the global ``learner`` group, which configures allocbench's own heads)."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    policy: PolicyConfig = PolicyConfig()
    learner: dict | None = None  # a _target_ spec; None = the reference learner itself
    ope: dict | None = None  # a _target_ spec of an OPE function/object; None = none
    n_train: int = 10_000
    n_eval: int = 10_000
    ope_loggings: tuple[str, ...] = ("uniform", "warm_start", "epsilon_greedy")
    n_replicates: int = 20  # evaluation logs per logger for the OPE plug-in's bias and coverage

    def __post_init__(self) -> None:
        # checked at start-up (plan), not when the job reaches the plug-in
        for name in ("learner", "ope"):
            spec = getattr(self, name)
            if spec is None:
                continue
            if "_target_" not in spec:
                raise ValueError(f"ByoSuiteConfig.{name}: needs a '_target_'. Fix: "
                                 f"{name}={{'_target_': 'my_module.MyObject'}}.")
            _check_importable(f"ByoSuiteConfig.{name}._target_", spec["_target_"])
        for kind in self.ope_loggings:
            if kind == "confounded":
                raise ValueError("ByoSuiteConfig.ope_loggings: the confounded logger records no "
                                 "propensities, so no OPE estimator can run on it. Fix: uniform, "
                                 "holdout, warm_start or epsilon_greedy.")
            LoggingConfig(kind=kind)  # an unknown kind is a ValueError naming it
        if self.n_replicates < 2:
            raise ValueError(f"ByoSuiteConfig.n_replicates: need >= 2 replicate logs for an "
                             f"RMSE and a coverage, got {self.n_replicates}. Fix: e.g. 20.")

    @classmethod
    def compact(cls) -> ByoSuiteConfig:
        return cls(n_train=4_000, n_eval=4_000, n_replicates=8)


def _check_importable(field: str, target: str) -> None:
    """``target`` names an importable attribute (``package.module.Name``)."""
    from hydra.utils import get_object

    try:
        get_object(target)
    except Exception as err:
        raise ValueError(f"{field}: cannot import {target!r} ({err}). Fix: a dotted path to an "
                         "importable class or function, with its package installed.") from err


def _fit_heads(spec: dict | None, train) -> tuple[Any, Any]:
    """Two heads from a plug-in spec (or the reference head config when ``spec`` is None)."""
    heads = []
    for label, head in ((train.value, REFERENCE.value), (train.cost, REFERENCE.cost)):
        learner = make_learner(head) if spec is None else as_learner(instantiate(dict(spec)))
        learner.fit(train.x, train.action, label, action_prob=train.action_prob,
                    n_actions=train.n_actions)
        heads.append(learner)
    return heads[0], heads[1]


PAIRED = ("pehe_value", "pehe_cost", "value_at_budget", "regret_at_budget", "regret",
          "overspend_per_user")


def run(cfg: ByoSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams ``stream(seed, "train")``, ``stream(seed, "eval")`` and, for the OPE replicates,
    ``stream(seed, "ope", <logger>)`` split into ``n_replicates`` keys."""
    world = cfg.world
    params = default_params(world)
    train = simulate(stream(seed, "train"), params, world, cfg.n_train, cfg.logging)
    evaluation = simulate(stream(seed, "eval"), params, world, cfg.n_eval, cfg.logging)
    truth = evaluation.truth
    budget = cfg.policy.budget_per_user
    elig = evaluation.eligible
    oracle = policy_truth(truth, np.asarray(allocate(truth.tau_value, truth.tau_cost,
                                                     budget=budget * evaluation.n,
                                                     eligible=elig).action_dist), eligible=elig)
    rows, heads, metrics = [], {}, {}
    learners = {"plugin": cfg.learner, "reference": None}
    for name, spec in tqdm(learners.items(), desc="byo", disable=quiet_bar(progress), leave=False):
        head_v, head_c = heads[name] = _fit_heads(spec, train)
        tau_v = predict_effects(head_v, evaluation.x, evaluation.n_actions, "value")
        tau_c = predict_effects(head_c, evaluation.x, evaluation.n_actions, "cost")
        scored = score_at_true_budget(tau_v, tau_c, evaluation, budget)
        allocated, fair = scored.as_allocated, scored.at_budget
        metrics[name] = {
            "pehe_value": pehe(tau_v, truth.tau_value, elig),
            "pehe_cost": pehe(tau_c, truth.tau_cost, elig),
            "true_incremental_value": allocated.incremental_value,
            "true_incremental_cost": allocated.incremental_cost,
            "overspend_per_user": allocated.incremental_cost - budget,
            "feasible": float(scored.feasible),
            "regret": oracle.incremental_value - allocated.incremental_value,
            "value_at_budget": fair.incremental_value,
            "cost_at_budget": fair.incremental_cost,
            "regret_at_budget": oracle.incremental_value - fair.incremental_value,
            "nominal_budget_per_user": scored.nominal_budget,
        }
        target = "estimators.heads.HeadsConfig()" if spec is None else str(spec["_target_"])
        rows += [dict(seed=seed, learner=name, target=target, metric=m, value=v)
                 for m, v in metrics[name].items()]
    rows += [dict(seed=seed, learner="plugin_minus_reference", target="paired", metric=m,
                  value=metrics["plugin"][m] - metrics["reference"][m]) for m in PAIRED]
    if cfg.ope:
        rows += _ope_rows(cfg, seed, params, train, evaluation, heads["plugin"], budget)
    df = pd.DataFrame(rows)
    for col in ("estimator", "logging"):
        df[col] = df[col].fillna("") if col in df else ""
    return df


def _ope_rows(cfg: ByoSuiteConfig, seed: int, params, train, evaluation, plugin_heads,
              budget: float) -> list[dict]:
    """The OPE plug-in beside allocbench's IPS and DR: on the job's own evaluation log
    (``ope_estimate``, ``ope_error``) and over replicate logs per logger (``bias``, ``rmse``,
    ``coverage``, ``ci_width``), each against the plug-in policy's exact value on those users."""
    reference = make_learner(REFERENCE.value).fit(train.x, train.action, train.value,
                                                  action_prob=train.action_prob,
                                                  n_actions=train.n_actions)
    estimators = (("plugin", as_ope(instantiate(dict(cfg.ope)))), ("reference_ips", ips),
                  ("reference_dr", dr))

    def evaluate(log) -> tuple[float, dict[str, Any]]:
        tau_v = predict_effects(plugin_heads[0], log.x, log.n_actions, "value")
        tau_c = predict_effects(plugin_heads[1], log.x, log.n_actions, "cost")
        dist = np.asarray(allocate(tau_v, tau_c, budget=budget * log.n,
                                   eligible=log.eligible).action_dist)
        kw = dict(reward=log.value, action=log.action, pscore=log.pscore, action_dist=dist,
                  q_hat=np.asarray(reference.predict_mu(log.x)))
        return (policy_truth(log.truth, dist, eligible=log.eligible).value,
                {name: fn(**kw) for name, fn in estimators})

    rows = []
    true_value, ests = evaluate(evaluation)
    for name, est in ests.items():
        common = dict(seed=seed, learner="plugin", estimator=name, logging=cfg.logging.kind)
        rows += [dict(common, metric="ope_estimate", value=float(est.value)),
                 dict(common, metric="ope_error", value=float(est.value) - true_value)]
    for kind in cfg.ope_loggings:
        keys = jax.random.split(stream(seed, "ope", kind), cfg.n_replicates)
        logs = simulate_batch(keys, params, cfg.world, cfg.n_eval, LoggingConfig(kind=kind))
        logs = jax.device_get(logs)
        errors = {name: [] for name, _ in estimators}
        covered = {name: [] for name, _ in estimators}
        widths = {name: [] for name, _ in estimators}
        for r in range(cfg.n_replicates):
            truth_r, ests = evaluate(logs.seed(r))
            for name, est in ests.items():
                errors[name].append(float(est.value) - truth_r)
                lo, hi = float(est.ci_low), float(est.ci_high)
                has_ci = np.isfinite(lo) and np.isfinite(hi)
                covered[name].append(float(lo <= truth_r <= hi) if has_ci else np.nan)
                widths[name].append(hi - lo if has_ci else np.nan)
        for name, _ in estimators:
            e = np.asarray(errors[name])
            common = dict(seed=seed, learner="plugin", estimator=name, logging=kind)
            c, w = np.asarray(covered[name]), np.asarray(widths[name])
            rows += [dict(common, metric="bias", value=float(e.mean())),
                     dict(common, metric="rmse", value=float(np.sqrt(np.mean(e ** 2)))),
                     dict(common, metric="coverage",
                          value=float(np.nanmean(c)) if np.isfinite(c).any() else np.nan),
                     dict(common, metric="ci_width",
                          value=float(np.nanmean(w)) if np.isfinite(w).any() else np.nan)]
    return rows


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PEHE and regret at equal true spend per learner (mean +- s.e. over seeds), and the
    paired plug-in minus reference differences."""
    plt = pyplot()
    metrics = ("pehe_value", "pehe_cost", "regret_at_budget", "overspend_per_user")
    fig, axes = plt.subplots(1, len(metrics), figsize=(15, 3.6))
    for ax, metric in zip(axes, metrics, strict=True):
        sub = df[df["metric"] == metric].groupby("learner", sort=False)["value"].agg(
            ["mean", "sem"])
        ax.bar(sub.index, sub["mean"], yerr=sub["sem"].fillna(0), capsize=3,
               color=[series_style(lr)["color"] for lr in sub.index])
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("learner")
        ax.set_ylabel(metric.replace("_", " "))
        ax.tick_params(axis="x", rotation=15)
        ax.grid(alpha=0.3, axis="y")
    return [save(fig, out_dir, "byo.png")]


SUITE = Suite(name="byo", config_class=ByoSuiteConfig, run=run, plot=plot,
              key_columns=("learner", "estimator", "logging"),
              in_default=False)  # needs a plug-in to be meaningful
