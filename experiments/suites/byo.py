"""Bring-your-own-estimator suite: benchmark a plug-in learner (and optionally a plug-in OPE
estimator) against allocbench's own on the world's truth.

``learner`` and ``ope`` are Hydra ``_target_`` specs, so the plug-ins may live in any importable
module. Per learner (the plug-in and the reference ridge T-learner) the suite reports PEHE of the
value and cost heads, the true incremental value and cost of the budgeted policy it induces and its
regret against the oracle; per OPE estimator (the plug-in and allocbench's DR) the estimate of the
plug-in policy's value and its error against the oracle truth.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.heads import HeadConfig, make_learner
from estimators.metrics import pehe
from estimators.ope import dr, ips
from experiments.configs import LoggingConfig, PolicyConfig, WorldConfig
from experiments.plugins import as_learner, as_ope, instantiate, predict_effects
from experiments.suites._plotting import pyplot, save
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators import default_params, policy_truth, simulate

__all__ = ["SUITE", "ByoSuiteConfig", "plot", "run"]

# the reference: allocbench's default head (a T-learner on ridge, estimators.heads.HeadConfig())
REFERENCE = HeadConfig()


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

    @classmethod
    def compact(cls) -> ByoSuiteConfig:
        return cls(n_train=4_000, n_eval=4_000)


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
    for label in (train.value, train.cost):
        learner = make_learner(REFERENCE) if spec is None else as_learner(instantiate(dict(spec)))
        learner.fit(train.x, train.action, label, action_prob=train.action_prob,
                    n_actions=train.n_actions)
        heads.append(learner)
    return heads[0], heads[1]


def run(cfg: ByoSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams ``stream(seed, "train")`` and ``stream(seed, "eval")``."""
    world = cfg.world
    params = default_params(world)
    train = simulate(stream(seed, "train"), params, world, cfg.n_train, cfg.logging)
    evaluation = simulate(stream(seed, "eval"), params, world, cfg.n_eval, cfg.logging)
    truth = evaluation.truth
    budget = cfg.policy.budget_per_user * evaluation.n
    elig = evaluation.eligible
    oracle = policy_truth(truth, np.asarray(allocate(truth.tau_value, truth.tau_cost,
                                                     budget=budget, eligible=elig).action_dist),
                          eligible=elig)
    rows, plugin_dist = [], None
    learners = {"plugin": cfg.learner, "reference_t_ridge": None}
    for name, spec in tqdm(learners.items(), desc="byo", disable=quiet_bar(progress), leave=False):
        head_v, head_c = _fit_heads(spec, train)
        tau_v = predict_effects(head_v, evaluation.x, evaluation.n_actions, "value")
        tau_c = predict_effects(head_c, evaluation.x, evaluation.n_actions, "cost")
        dist = np.asarray(allocate(tau_v, tau_c, budget=budget,
                                   eligible=evaluation.eligible).action_dist)
        plugin_dist = dist if name == "plugin" else plugin_dist
        t = policy_truth(truth, dist, eligible=elig)
        target = "estimators.heads.HeadConfig()" if spec is None else str(spec["_target_"])
        common = dict(seed=seed, learner=name, target=target)
        rows += [
            dict(common, metric="pehe_value", value=pehe(tau_v, truth.tau_value,
                                                         evaluation.eligible)),
            dict(common, metric="pehe_cost", value=pehe(tau_c, truth.tau_cost,
                                                        evaluation.eligible)),
            dict(common, metric="true_incremental_value", value=t.incremental_value),
            dict(common, metric="true_incremental_cost", value=t.incremental_cost),
            dict(common, metric="regret", value=oracle.incremental_value - t.incremental_value),
        ]
    if cfg.ope:
        q_hat = np.asarray(make_learner(REFERENCE).fit(
            train.x, train.action, train.value, n_actions=train.n_actions).predict_mu(evaluation.x))
        true_value = policy_truth(truth, plugin_dist, eligible=elig).value
        kw = dict(reward=evaluation.value, action=evaluation.action, pscore=evaluation.pscore,
                  action_dist=plugin_dist, q_hat=q_hat)
        for name, fn in (("plugin", as_ope(instantiate(dict(cfg.ope)))), ("reference_ips", ips),
                         ("reference_dr", dr)):
            est = fn(**kw)
            common = dict(seed=seed, learner="plugin", estimator=name)
            rows += [dict(common, metric="ope_estimate", value=float(est.value)),
                     dict(common, metric="ope_error", value=float(est.value) - true_value)]
    df = pd.DataFrame(rows)
    df["estimator"] = df["estimator"].fillna("") if "estimator" in df else ""
    return df


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    plt = pyplot()
    metrics = ("pehe_value", "pehe_cost", "regret")
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 3.5))
    for ax, metric in zip(axes, metrics, strict=True):
        sub = df[df["metric"] == metric].groupby("learner")["value"].agg(["mean", "sem"])
        ax.bar(sub.index, sub["mean"], yerr=sub["sem"].fillna(0), capsize=3)
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3, axis="y")
    return [save(fig, out_dir, "byo.png")]


SUITE = Suite(name="byo", config_class=ByoSuiteConfig, run=run, plot=plot,
              key_columns=("learner", "estimator"),
              in_default=False)  # needs a plug-in to be meaningful
