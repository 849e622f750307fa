"""Real data: the MineThatData (Hillstrom) e-mail experiment.

No ground truth here, so the suite does what a practitioner does before production: with 2-fold
cross-fitting (fit the uplift heads on one half, evaluate on the other, swap), it estimates with
IPS and DR (known propensities 1/3) the spend per customer of simple policies (nobody, everyone the
men's e-mail, everyone the women's e-mail) and of a cost-aware uplift policy that e-mails a budgeted
share of customers with the e-mail of largest predicted uplift, and their incremental spend against
no e-mail (paired on the same rows). SNIPS of an "everyone gets arm a" policy is exactly that arm's
mean, which ties the estimates back to the published arm means (0.6528 / 1.4226 / 1.0772).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.crossfit import fold_ids
from estimators.heads import make_learner
from estimators.ope import estimate, paired_difference
from experiments.configs import HeadsConfig
from experiments.suites._plotting import figure_legend, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators.hillstrom import default_path, load_hillstrom

__all__ = ["SUITE", "HillstromSuiteConfig", "plot", "run", "unavailable"]


@dataclasses.dataclass(frozen=True)
class HillstromSuiteConfig:
    """``emailed_share``: share of customers the uplift policy may e-mail (the budget is
    ``emailed_share * n * cost_per_email``); ``cost_per_email`` the sending cost (spend units);
    ``learner.value``: the spend head (the cost of an e-mail is known, no cost head is fitted);
    ``path``: another copy of the data (default: the vendored, checksum-verified file)."""

    learner: HeadsConfig = HeadsConfig()
    path: str | None = None
    emailed_share: float = 0.5
    cost_per_email: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.emailed_share <= 1.0:
            raise ValueError("HillstromSuiteConfig.emailed_share: must lie in (0, 1].")
        if self.cost_per_email <= 0:
            raise ValueError("HillstromSuiteConfig.cost_per_email: must be > 0 (it prices the "
                             "budget). Fix: e.g. 0.1.")

    @classmethod
    def compact(cls) -> HillstromSuiteConfig:
        return cls()


def unavailable(cfg: HillstromSuiteConfig) -> str | None:
    """Why this suite cannot run here (the real data are missing), or None. The default
    benchmark skips the suite with this note; ``experiment=hillstrom`` still fails loudly."""
    path = Path(cfg.path) if cfg.path else default_path()
    if path.is_file():
        return None
    return (f"Hillstrom CSV not found at {path} (the project vendors it as "
            "simulators/datasets/hillstrom.csv.gz: restore it from git, or point "
            "ALLOCBENCH_HILLSTROM / experiment.params.path at a copy of the MineThatData file)")


def run(cfg: HillstromSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Rows per (policy, metric, estimator). Stream: ``stream(seed, "folds")`` (the 2 folds)."""
    log = load_hillstrom(cfg.path, cost_per_email=cfg.cost_per_email)
    n, k1 = log.n, log.n_actions
    fold = np.asarray(fold_ids(n, 2, stream(seed, "folds")))
    tau_v = np.zeros((n, k1))
    mu_v = np.zeros((n, k1))
    for f in tqdm((0, 1), desc="hillstrom folds", disable=quiet_bar(progress), leave=False):
        train, test = fold != f, fold == f
        learner = make_learner(cfg.learner.value)
        learner.fit(log.x[train], log.action[train], log.value[train],
                    action_prob=log.action_prob[train], n_actions=k1)
        mu_v[test] = np.asarray(learner.predict_mu(log.x[test]))
        tau_v[test] = mu_v[test] - mu_v[test, :1]
    tau_c = np.broadcast_to(log.face_value, (n, k1)).astype(np.float64)
    budget = cfg.emailed_share * n * cfg.cost_per_email
    uplift = np.asarray(allocate(tau_v, tau_c, budget=budget, eligible=log.eligible).action_dist)
    eye = np.eye(k1)
    policies = {"no_email": eye[np.zeros(n, int)], "all_mens": eye[np.ones(n, int)],
                "all_womens": eye[np.full(n, 2)], "uplift_budgeted": uplift}
    rows = []
    for name, dist in policies.items():
        common = dict(reward=log.value, action=log.action, pscore=log.pscore, action_dist=dist)
        for est_name in ("ips", "snips", "dr"):
            q_hat = mu_v if est_name == "dr" else None
            for metric, est in (
                ("spend_per_customer", estimate(est_name, q_hat=q_hat, **common)),
                ("incremental_spend", paired_difference(est_name, baseline_dist=policies[
                    "no_email"], q_hat=q_hat, **common)),
            ):
                rows.append(dict(seed=seed, policy=name, metric=metric, estimator=est_name,
                                 value=est.value, stderr=est.stderr, ci_low=est.ci_low,
                                 ci_high=est.ci_high))
        rows.append(dict(seed=seed, policy=name, metric="emailed_share", estimator="policy",
                         value=float(dist[:, 1:].sum(1).mean()), stderr=0.0, ci_low=np.nan,
                         ci_high=np.nan))
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    plt = pyplot()
    sub = df[(df["metric"] == "incremental_spend") & (df["seed"] == df["seed"].min())]
    names = [p for p in dict.fromkeys(sub["policy"]) if p != "no_email"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, est in enumerate(("ips", "snips", "dr")):
        e = sub[sub["estimator"] == est].set_index("policy").loc[names]
        pos = np.arange(len(names)) + (j - 1) * 0.2
        ax.errorbar(pos, e["value"], yerr=[e["value"] - e["ci_low"], e["ci_high"] - e["value"]],
                    ls="none", capsize=3, label=f"{est.upper()} (95% CI)", **series_style(est))
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("incremental spend per customer vs no e-mail")
    ax.set_title("Hillstrom e-mail experiment (2-fold cross-fitted)")
    ax.set_xlabel("policy")
    figure_legend(fig, [ax])
    ax.grid(alpha=0.3)
    return [save(fig, out_dir, "hillstrom.png")]


SUITE = Suite(name="hillstrom", config_class=HillstromSuiteConfig, run=run, plot=plot,
              unavailable=unavailable, key_columns=("policy", "metric", "estimator"))
