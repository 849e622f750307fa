"""The default benchmark (issue 2's main job), end to end on the embedded synthetic world.

default world -> uniform randomised training log -> the value and cost heads of
``learner`` (default ``HeadsConfig()``: five TARNets for value and the stable-proxy cost head, both
weighted by the logged propensities) -> budgeted allocation on the
estimated incremental value and cost (optionally at a budget recalibrated on a held-out part of
the training log, ``spend_holdout_fraction``) ->
IPS and DR estimates (95% CIs) of that policy's value and cost on an independent evaluation log ->
beside the oracle's exact value and cost of the same policy and the value of the oracle policy
(the optimal budgeted policy on the true uplift).

Training and evaluation logs are independent draws, so the evaluated policy does not depend on the
outcomes it is evaluated on (otherwise IPS/DR would be optimistic). Every number in the table comes
from the stage that claims it.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from estimators.heads import make_heads
from estimators.ope import Estimate, estimate_batch, paired_difference_batch
from experiments.configs import HeadsConfig, OPEConfig, PolicyConfig
from experiments.store import OMIT_AT_DEFAULT, atomic_write
from experiments.suites._plotting import figure_legend, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from policies.spend import SpendCalibration, calibrate_budget
from simulators import (
    LoggingConfig,
    WorldConfig,
    default_params,
    optimal_policy,
    policy_truth,
    simulate_batch,
)

__all__ = ["SUITE", "MainSuiteConfig", "plot", "run", "run_batch", "summary_table",
           "write_outputs"]


@dataclasses.dataclass(frozen=True)
class MainSuiteConfig:
    """Knobs of the default benchmark: the shared configs (``world``, ``logging``, ``learner`` =
    the value and cost heads, ``policy`` = the budget per evaluated user, ``ope`` = estimators
    and CI level), each set by its global Hydra group, and the two log sizes.

    ``spend_holdout_fraction`` (0: off): the share of the training log held out from the heads'
    fit to recalibrate the spend (:func:`policies.spend.calibrate_budget`): the learned policy is
    allocated at the internal budget per user whose doubly robust holdout estimate of *true*
    incremental cost equals ``policy.budget_per_user`` (the cost head's ``mu`` as ``q_hat``),
    instead of at the nominal budget, which the heads' own cost estimates meet but the truth
    exceeds at small budgets (winner's curse of the cost head). The heads are fitted on the other
    rows; the rows gain ``internal_budget_per_user``, ``spend_holdout_estimate``,
    ``spend_holdout_stderr``, ``spend_nominal_estimate`` (the holdout estimate at the nominal
    budget), ``spend_converged`` and ``spend_capped`` (the estimate stayed below the target up to
    4x the nominal budget, or even the zero budget overspends; a warning is printed). Needs a
    logging policy with a no-offer arm on every row (every kind with propensities has one)."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    policy: PolicyConfig = PolicyConfig()
    ope: OPEConfig = OPEConfig()
    n_train: int = 20_000
    n_eval: int = 20_000
    spend_holdout_fraction: float = dataclasses.field(default=0.0, metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        if self.n_train < 100 or self.n_eval < 100:
            raise ValueError("MainSuiteConfig.n_train/n_eval: need at least 100 rows each. "
                             "Fix: raise them (default 20000).")
        for name, cls in (("world", WorldConfig), ("logging", LoggingConfig),
                          ("learner", HeadsConfig), ("policy", PolicyConfig), ("ope", OPEConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"MainSuiteConfig.{name}: expected a {cls.__name__}, got "
                                 f"{getattr(self, name)!r}. Fix: e.g. {name}={cls.__name__}().")
        if self.logging.kind == "confounded":
            raise ValueError("MainSuiteConfig.logging: the confounded logger records no "
                             "propensities, so IPS/DR cannot run. Fix: uniform, holdout, "
                             "warm_start or epsilon_greedy.")
        f = self.spend_holdout_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 <= f <= 0.8:
            raise ValueError(f"MainSuiteConfig.spend_holdout_fraction: must be a number in "
                             f"[0, 0.8], got {f!r}. Fix: 0 (off) or e.g. 0.5.")
        if f > 0 and self.policy.budget_per_user <= 0:
            raise ValueError("MainSuiteConfig.spend_holdout_fraction: recalibrating the spend "
                             "needs policy.budget_per_user > 0. Fix: set a positive budget or "
                             "spend_holdout_fraction=0.")
        if f > 0 and min(self.n_spend_holdout, self.n_train - self.n_spend_holdout) < 100:
            raise ValueError(f"MainSuiteConfig.spend_holdout_fraction: {f} of n_train="
                             f"{self.n_train} leaves fewer than 100 rows for the fit or the "
                             "holdout. Fix: raise n_train or change the fraction.")
        # the logger validates its offer against the world's K here, at start-up
        self.logging.check_offer(self.world.n_offers)

    @property
    def n_spend_holdout(self) -> int:
        """Rows of each training log held out for the spend calibration (the last ones)."""
        return round(self.spend_holdout_fraction * self.n_train)

    @classmethod
    def compact(cls) -> MainSuiteConfig:
        return cls(n_train=10_000, n_eval=10_000)


def _one_hot(action: np.ndarray, n_actions: int) -> np.ndarray:
    return np.eye(n_actions)[action]


def run(cfg: MainSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Run the pipeline once. Tidy rows ``(seed, policy, metric, estimator, value, stderr, ci_low,
    ci_high, ess)``: ``metric`` is ``policy_value``/``policy_cost`` (per-user level) or
    ``incremental_value``/``incremental_cost`` (against no-offer on the same log, a paired
    difference); ``estimator`` is one of ``cfg.ope.estimators`` or ``truth`` (the oracle's exact
    value). Streams: ``stream(seed, "train")`` and ``stream(seed, "eval")``. The batch of one
    seed: :func:`run_batch` is the one implementation."""
    return run_batch(cfg, seeds=[seed], progress=progress)


def run_batch(cfg: MainSuiteConfig, *, seeds: list[int], progress: bool = True) -> pd.DataFrame:
    """The pipeline for several seeds in one job: every seed's training and evaluation logs are
    simulated in one ``vmap``-ed call each, every seed's heads are fitted on its own log in one
    seed-batched call (:meth:`estimators.heads.UpliftHeads.fit_batch`), each seed's allocations
    are computed from its own predictions, and every off-policy estimate (all seeds x policies,
    per outcome and estimator) is one ``vmap``-ed call (:func:`estimators.ope.estimate_batch`,
    :func:`estimators.ope.paired_difference_batch`). Same rows as seed by seed."""
    params = default_params(cfg.world)
    bar = _progress(len(seeds), progress)
    train = simulate_batch(jnp.stack([stream(s, "train") for s in seeds]), params, cfg.world,
                           cfg.n_train, cfg.logging)
    evaluation = simulate_batch(jnp.stack([stream(s, "eval") for s in seeds]), params, cfg.world,
                                cfg.n_eval, cfg.logging)
    train, evaluation = jax.device_get((train, evaluation))  # host copies: cheap per-seed slices
    bar.update(1)
    logs = [evaluation.seed(i) for i in range(len(seeds))]  # validated once per seed
    fits = [train.seed(i) for i in range(len(seeds))]
    holdouts: list = [None] * len(seeds)
    if cfg.spend_holdout_fraction > 0:  # iid rows: the last ones are a random holdout
        n_fit = cfg.n_train - cfg.n_spend_holdout
        holdouts = [t.subset(np.arange(n_fit, cfg.n_train)) for t in fits]
        fits = [t.subset(np.arange(n_fit)) for t in fits]
    heads = make_heads(cfg.learner).fit_batch(
        [t.x for t in fits], [t.action for t in fits], value=[t.value for t in fits],
        cost=[t.cost for t in fits], action_prob=[t.action_prob for t in fits],
        n_actions=cfg.world.n_actions)  # every seed's base fits in one compiled call per model
    fitted = [_fit_and_allocate(cfg, heads[i], logs[i], seed, bar, holdouts[i])
              for i, seed in enumerate(seeds)]
    df = _score(cfg, evaluation, logs, fitted, seeds)
    bar.update(len(seeds))
    bar.close()
    return df


class _Fitted(NamedTuple):
    """One seed's learned pieces: outcome predictions per head and the evaluated policies."""

    mu_hat: dict[str, np.ndarray]
    policies: dict[str, np.ndarray]
    supported: np.ndarray
    spend: SpendCalibration | None = None


POLICIES = ("cost_aware_uplift", "oracle", "no_offer", "logging")


def _fit_and_allocate(cfg: MainSuiteConfig, heads, evaluation, seed: int, bar,
                      holdout=None) -> _Fitted:
    """Predictions and allocation of one seed from its fitted heads. Only the actions the
    training log supports are scored (a holdout log supports no-offer and its one campaign
    offer): the learned policy chooses among them; the oracle among every eligible action.
    With a spend ``holdout`` (part of the training log the heads did not see) the learned
    policy's budget is the recalibrated one; the oracle keeps the nominal budget."""
    supported = np.asarray(heads.supported_actions_)
    k1 = cfg.world.n_actions
    if len(supported) < k1:
        print(f"[main] seed {seed}: the training log supports actions {supported.tolist()} only "
              f"(logging={cfg.logging.kind}); the learned policy is fitted and scored on those, "
              "the oracle on every eligible action", file=sys.stderr)
    mu_hat = {name: _columns(np.asarray(m), supported, k1)
              for name, m in zip(("value", "cost"), heads.predict_mu(evaluation.x, supported),
                                 strict=True)}
    tau_v, tau_c = (_columns(np.asarray(t), supported, k1)
                    for t in heads.predict_tau(evaluation.x, supported))
    bar.update(1)
    budget = cfg.policy.budget_per_user * cfg.n_eval
    eligible = np.asarray(evaluation.eligible)
    is_supported = np.isin(np.arange(k1), supported)[None, :]
    spend = None if holdout is None else _calibrate_spend(cfg, heads, holdout, supported,
                                                          is_supported, seed)
    learned_budget = budget if spend is None else spend.internal_budget_per_user * cfg.n_eval
    learned = allocate(tau_v, tau_c, budget=learned_budget, eligible=eligible & is_supported)
    oracle = optimal_policy(evaluation.truth, budget, eligible=evaluation.eligible)
    bar.update(1)
    policies = {"cost_aware_uplift": np.asarray(learned.action_dist),
                "oracle": np.asarray(oracle.action_dist),
                "no_offer": _one_hot(np.zeros(cfg.n_eval, int), k1),
                "logging": np.asarray(evaluation.action_prob)}
    return _Fitted(mu_hat, policies, supported, spend)


def _calibrate_spend(cfg: MainSuiteConfig, heads, holdout, supported: np.ndarray,
                     is_supported: np.ndarray, seed: int) -> SpendCalibration:
    """The internal budget whose holdout DR estimate of true incremental cost meets the nominal
    budget per user (:func:`policies.spend.calibrate_budget`), on the heads' holdout
    predictions restricted to the supported, eligible, logged actions; a calibration that hits
    its bound is reported on stderr."""
    k1 = cfg.world.n_actions
    tau_v, tau_c = (_columns(np.asarray(t), supported, k1)
                    for t in heads.predict_tau(holdout.x, supported))
    _, mu_cost = heads.predict_mu(holdout.x, supported)
    spend = calibrate_budget(
        tau_v, tau_c, budget_per_user=cfg.policy.budget_per_user, action=holdout.action,
        cost=holdout.cost, action_prob=holdout.action_prob,
        eligible=np.asarray(holdout.eligible) & is_supported,
        q_hat=_columns(np.asarray(mu_cost), supported, k1))
    if spend.capped:
        print(f"[main] seed {seed}: the spend calibration hit its bound (internal budget "
              f"{spend.internal_budget_per_user:.4g} per user against the nominal "
              f"{cfg.policy.budget_per_user:.4g}; holdout estimate "
              f"{spend.estimated_cost_per_user:.4g} ± {spend.stderr:.2g}): the holdout is too "
              "small or noisy to calibrate this budget", file=sys.stderr)
    return spend


def _score(cfg: MainSuiteConfig, evaluation, logs: list, fitted: list[_Fitted],
           seeds: list[int]) -> pd.DataFrame:
    """Truth and OPE rows of every seed and policy; the estimates of all (seed, policy) pairs of
    one outcome and estimator are one batched call."""
    n_pol = len(POLICIES)
    dist = np.stack([np.stack([f.policies[p] for p in POLICIES]) for f in fitted])  # (S, P, n, A)
    flat = dist.reshape(-1, *dist.shape[2:])

    def rep(a) -> np.ndarray:  # (S, ...) -> (S * P, ...), each seed's array once per policy
        return np.repeat(np.asarray(a), n_pol, axis=0)

    base = dict(action=rep(evaluation.action), pscore=rep(evaluation.pscore), alpha=cfg.ope.alpha)
    no_offer = rep(np.stack([f.policies["no_offer"] for f in fitted]))
    ests: dict[tuple[str, str, str], Estimate] = {}
    for target, reward in (("value", evaluation.value), ("cost", evaluation.cost)):
        q_hat = rep(np.stack([f.mu_hat[target] for f in fitted]))
        for name in cfg.ope.estimators:
            kw = dict(base, reward=rep(reward), action_dist=flat, q_hat=q_hat,
                      lambda_=cfg.ope.lambda_for(name))
            ests[target, "policy", name] = estimate_batch(name, **kw)
            ests[target, "incremental", name] = paired_difference_batch(
                name, baseline_dist=no_offer, **kw)
    rows = []
    for i, seed in enumerate(seeds):
        truth_log, eligible = logs[i].truth, logs[i].eligible
        for j, name in enumerate(POLICIES):
            t = policy_truth(truth_log, dist[i, j], eligible=eligible)
            for target, level, incremental in (("value", t.value, t.incremental_value),
                                               ("cost", t.cost, t.incremental_cost)):
                for est_name in cfg.ope.estimators:
                    for kind in ("policy", "incremental"):
                        e = ests[target, kind, est_name]
                        k = i * n_pol + j
                        rows.append(dict(seed=seed, policy=name, metric=f"{kind}_{target}",
                                         estimator=est_name, value=float(e.value[k]),
                                         stderr=float(e.stderr[k]), ci_low=float(e.ci_low[k]),
                                         ci_high=float(e.ci_high[k]), ess=float(e.ess[k])))
                for kind, true_value in (("policy", level), ("incremental", incremental)):
                    rows.append(dict(seed=seed, policy=name, metric=f"{kind}_{target}",
                                     estimator="truth", value=true_value, stderr=0.0,
                                     ci_low=true_value, ci_high=true_value, ess=np.nan))
    df = pd.DataFrame(rows)
    df["budget_per_user"] = cfg.policy.budget_per_user
    df["n_eval"] = cfg.n_eval
    supported = {s: ",".join(map(str, f.supported.tolist())) for s, f in zip(seeds, fitted,
                                                                              strict=True)}
    df["supported_actions"] = df["seed"].map(supported)
    if fitted[0].spend is not None:  # columns only when the spend is recalibrated
        for column, field in (("internal_budget_per_user", "internal_budget_per_user"),
                              ("spend_holdout_estimate", "estimated_cost_per_user"),
                              ("spend_holdout_stderr", "stderr"),
                              ("spend_nominal_estimate", "nominal_estimate"),
                              ("spend_converged", "converged"), ("spend_capped", "capped")):
            by_seed = {s: getattr(f.spend, field) for s, f in zip(seeds, fitted, strict=True)}
            df[column] = df["seed"].map(by_seed)
    return df


def _columns(pred: np.ndarray, supported: np.ndarray, n_actions: int) -> np.ndarray:
    """Predictions for the ``supported`` actions as ``(n, K+1)``, zero in the other columns
    (which the allocator is told are not eligible and OPE never reads for the learned policy)."""
    if len(supported) == n_actions:
        return pred
    out = np.zeros((pred.shape[0], n_actions))
    out[:, supported] = pred
    return out


def _progress(n_seeds: int, enabled: bool):
    """One bar over the stages: simulate (all seeds), then fit / allocate / evaluate per seed."""
    from tqdm.auto import tqdm

    return tqdm(total=1 + 3 * n_seeds, desc="main benchmark", disable=quiet_bar(enabled),
                leave=False)


def _estimators(df: pd.DataFrame) -> list[str]:
    """The OPE estimators present in the rows, in the order they were run."""
    return [e for e in dict.fromkeys(df["estimator"]) if e != "truth"]


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, metric) of the first seed: truth, IPS and DR estimates with their CIs;
    with several seeds, also the share of seeds whose interval covers the truth."""
    wide = []
    first = df[df["seed"] == df["seed"].min()] if "seed" in df else df
    for (policy, metric), g in first.groupby(["policy", "metric"], sort=False):
        row = {"policy": policy, "metric": metric}
        g = g.set_index("estimator")
        row["truth"] = g.loc["truth", "value"]
        for est in _estimators(df):
            row[est] = g.loc[est, "value"]
            row[f"{est}_ci"] = f"[{g.loc[est, 'ci_low']:.3f}, {g.loc[est, 'ci_high']:.3f}]"
            low, high = g.loc[est, "ci_low"], g.loc[est, "ci_high"]
            row[f"{est}_covers"] = bool(low <= row["truth"] <= high)
        if "seed" in df and df["seed"].nunique() > 1:
            every = df[(df["policy"] == policy) & (df["metric"] == metric)]
            truth = every[every["estimator"] == "truth"].set_index("seed")["value"]
            for est in _estimators(df):
                e = every[every["estimator"] == est].set_index("seed")
                covered = (e["ci_low"] <= truth[e.index]) & (truth[e.index] <= e["ci_high"])
                row[f"{est}_coverage_{len(e)}_seeds"] = float(covered.mean())
        wide.append(row)
    return pd.DataFrame(wide)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """IPS and DR estimates with CIs beside the oracle truth, per policy, for value and cost."""
    plt = pyplot()
    seed0 = df[df["seed"] == df["seed"].min()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("incremental_value", "incremental_cost"), strict=True):
        sub = seed0[seed0["metric"] == metric]
        names = list(dict.fromkeys(sub["policy"]))
        ests = _estimators(df)
        for j, est in enumerate(ests):
            e = sub[sub["estimator"] == est].set_index("policy").loc[names]
            pos = np.arange(len(names)) + (j - (len(ests) - 1) / 2) * 0.5 / len(ests)
            ax.errorbar(pos, e["value"], yerr=[e["value"] - e["ci_low"], e["ci_high"] - e["value"]],
                        ls="none", capsize=3, label=f"{est.upper()} (95% CI)",
                        **series_style(est))
        t = sub[sub["estimator"] == "truth"].set_index("policy").loc[names]
        ax.scatter(np.arange(len(names)), t["value"], marker="_", s=600,
                   color=series_style("truth")["color"], label="truth")
        ax.set_xticks(np.arange(len(names)), names, rotation=20)
        ax.set_xlabel("policy")
        ax.set_ylabel(f"{metric.replace('_', ' ')} per user")
        ax.set_title(f"{metric.replace('_', ' ')} per user")
        ax.grid(alpha=0.3)
    figure_legend(fig, axes)
    return [save(fig, out_dir, "main_benchmark.png")]


def write_outputs(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``main_benchmark.csv`` and the figure under ``out_dir``."""
    out_dir = Path(out_dir)
    csv = out_dir / "main_benchmark.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    return [csv, *plot(df, out_dir)]


SUITE = Suite(name="main", config_class=MainSuiteConfig, run=run, run_batch=run_batch, plot=plot,
              write=write_outputs, summary=summary_table,
              key_columns=("policy", "metric", "estimator"),
              default_preset="full",  # the default benchmark's headline job runs at full size
              result_seeds=(0, 1, 2, 3, 4))

