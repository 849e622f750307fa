"""OPE benchmark suite: estimators x logging policies x n x target policies, many seeds (vmapped).

Per (logging, n): ``n_replicates`` evaluation logs from one ``simulate_batch`` call per chunk.
Replicates are the Monte Carlo axis of bias, RMSE and coverage *for one fixed target policy and
outcome model* (trained once per job on an independent log); the job ``seed`` is the outer axis
that redraws the training log, the models and the softmax target. Target policies (functions of
the user, so each has a population value):

* ``allocation``: the decision stage's policy. A ridge T-learner (value and cost heads) fitted on an
  independent uniform training log; ``policies.allocation.allocate`` on a reference population
  gives the budget multiplier (price) at ``budget_per_user``; the policy is the rule
  ``allocate_at_price`` at that price (row-wise, so applicable to any user);
* ``softmax``: softmax of a linear score of x over eligible actions (stochastic), its weights
  drawn once per job from ``stream(seed, "softmax_target")``;
* ``offer_1``: offer 1 to every eligible user (a one-hot incumbent).

q_hat: the T-learner's per-action outcome predictions (fitted on the independent training log, so
independent of the evaluated logs). Truth: each log's exact value ``mean_i sum_a pi(a|x_i)
mu(x_i, a)`` over its own users (exact ``mu``, no Monte Carlo error); errors and coverage are
measured against it. ``oracle``: the population value ``E_x[sum_a pi mu]`` averaged over
``n_reference`` fresh users, for reference, with its Monte Carlo stderr ``oracle_se``.
Metrics per (logging, n, target, outcome, estimator): ``bias``, ``rmse``, ``coverage`` of the
analytic 95% CI, ``ci_width`` (mean), ``bias_se`` (stderr of the bias over seeds), ``oracle``.

Run ``python -m experiments.run experiment=ope`` (``experiment.compact=true``: fast).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators import ope
from estimators.heads import make_heads
from experiments.configs import (
    HeadConfig,
    HeadsConfig,
    LoggingConfig,
    OPEConfig,
    PolicyConfig,
    SourceConfig,
    WorldConfig,
)
from experiments.store import OMIT_AT_DEFAULT, atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate, allocate_at_price
from simulators.sources import draw_log, draw_log_batch

__all__ = ["SUITE", "OPESuiteConfig", "plot", "run", "write_results"]

TARGETS = ("allocation", "softmax", "offer_1")
LOGGINGS = ("uniform", "warm_start", "epsilon_greedy")


@dataclasses.dataclass(frozen=True)
class OPESuiteConfig:
    """``loggings``: the logger kinds compared, each with the knobs of ``logging`` (``epsilon``:
    exploration of the near-deterministic epsilon-greedy logger); ``ope``: estimators, CI level,
    ``lambda_`` (threshold of clipped IPS / switch-DR / DR-os); ``policy.budget_per_user``: the
    allocation policy's expected incremental cost per user; ``learner``: the target policy's and
    ``q_hat``'s heads; ``n_replicates``: evaluation logs per (logging, n); ``chunk``: replicates
    per ``simulate_batch`` call."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig(epsilon=0.05)
    learner: HeadsConfig = HeadsConfig(value=HeadConfig(alpha=100.0), cost=HeadConfig(alpha=1.0))
    policy: PolicyConfig = PolicyConfig()
    ope: OPEConfig = OPEConfig(estimators=ope.ESTIMATORS)
    # a literature world (world=nie_wager_a, world=hillstrom_semi): its logs in place of the
    # synthetic world's, under source.logging (then ``loggings`` is not used); left out of the
    # config hash while synthetic
    source: SourceConfig = dataclasses.field(default=SourceConfig(), metadata=OMIT_AT_DEFAULT)
    loggings: tuple[str, ...] = LOGGINGS
    targets: tuple[str, ...] = TARGETS
    ns: tuple[int, ...] = (1_000, 4_000, 16_000)
    n_replicates: int = 500
    n_train: int = 20_000
    n_reference: int = 400_000
    chunk: int = 100

    def __post_init__(self) -> None:
        for field, allowed in (("loggings", LOGGINGS), ("targets", TARGETS)):
            unknown = set(getattr(self, field)) - set(allowed)
            if unknown:
                raise ValueError(f"OPESuiteConfig.{field}: unknown {sorted(unknown)}; choose "
                                 f"from {allowed}.")
        if self.n_replicates < 2 or min(self.ns) < 100 or self.chunk < 1:
            raise ValueError("OPESuiteConfig: need n_replicates >= 2, every n >= 100, "
                             "chunk >= 1.")

    @classmethod
    def compact(cls) -> OPESuiteConfig:
        return cls(ns=(1_000,), n_replicates=100, n_train=5_000, n_reference=50_000)


def _softmax_policy(key: jax.Array, n_features: int, n_actions: int
                    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The softmax target: ``pi(a|x) ~ exp(x . w_a)`` over eligible actions, ``w ~ N(0, 0.8^2)``
    drawn once from ``key``."""
    w = 0.8 * np.asarray(jax.random.normal(key, (n_features, n_actions)), dtype=np.float64)

    def policy(x: Any, eligible: Any) -> np.ndarray:
        score = np.where(eligible, x @ w, -np.inf)
        return np.asarray(jax.nn.softmax(jnp.asarray(score), axis=-1))

    return policy


def _offer_1(x: Any, eligible: Any) -> np.ndarray:
    pi = np.zeros(eligible.shape)
    pi[..., 1] = eligible[..., 1]
    pi[..., 0] = 1.0 - pi[..., 1]
    return pi


class _Models:
    """The T-learner fitted once on an independent uniform log; q_hat and the allocation rule."""

    def __init__(self, heads: HeadsConfig, train: Any, ref: Any, budget_per_user: float) -> None:
        fitted = make_heads(heads).fit(train.x, train.action, value=train.value, cost=train.cost,
                                       action_prob=train.action_prob, n_actions=train.n_actions)
        self.value, self.cost = fitted.value, fitted.cost
        tv, tc = self._tau(ref.x)
        self.price = float(allocate(tv, tc, budget=budget_per_user * len(tv),
                                    eligible=ref.eligible).budget_multiplier)

    def _tau(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.value.predict_tau(x)), np.asarray(self.cost.predict_tau(x)))

    def q_hat(self, x: np.ndarray, outcome: str) -> np.ndarray:
        model = self.value if outcome == "value" else self.cost
        flat = x.reshape(-1, x.shape[-1])
        return np.asarray(model.predict_mu(flat)).reshape(*x.shape[:-1], -1)

    def allocation(self, x: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        flat_x, flat_e = x.reshape(-1, x.shape[-1]), eligible.reshape(-1, eligible.shape[-1])
        tv, tc = self._tau(flat_x)
        alloc = allocate_at_price(tv, tc, price=self.price, eligible=flat_e)
        return np.asarray(alloc.action_dist).reshape(eligible.shape)


def _outcomes(value: Any, cost: Any, truth: Any, has_cost: bool, *,
              with_reward: bool = False) -> list[tuple]:
    """``(outcome, mu)`` pairs (``(outcome, reward, mu)`` ``with_reward``): value, and cost on a
    world with incentive cost."""
    pairs = [("value", value, truth.mu_value), ("cost", cost, truth.mu_cost)][:1 + has_cost]
    return pairs if with_reward else [(o, mu) for o, _, mu in pairs]


def run(cfg: OPESuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(logging, n, target, outcome, estimator, metric, value, seed, n_replicates)``.
    Streams: ``stream(seed, "train")``, ``("reference")``, ``("softmax_target")`` and
    ``stream(seed, "logs", logging, n)`` split into the replicates."""
    world, source = cfg.world, cfg.source
    train = draw_log(stream(seed, "train"), source, world, cfg.n_train, cfg.logging,
                     uniform=True)
    ref = draw_log(stream(seed, "reference"), source, world, cfg.n_reference, cfg.logging,
                   uniform=True)
    models = _Models(cfg.learner, train, ref, cfg.policy.budget_per_user)
    every = {"allocation": models.allocation,
             "softmax": _softmax_policy(stream(seed, "softmax_target"), ref.x.shape[1],
                                        ref.n_actions),
             "offer_1": _offer_1}
    policies = {t: every[t] for t in cfg.targets}
    # a world without incentive cost (Nie & Wager) has no cost outcome to estimate
    has_cost = bool(np.any(np.asarray(ref.truth.mu_cost)))
    oracle = {}
    for t, fn in policies.items():
        pi = fn(ref.x, ref.eligible)
        for outcome, mu in _outcomes(ref.value, ref.cost, ref.truth, has_cost):
            per_user = np.sum(pi * np.asarray(mu), axis=1)
            oracle[t, outcome] = (per_user.mean(), per_user.std(ddof=1) / np.sqrt(len(pi)))
    rows: list[dict[str, Any]] = []
    loggings = cfg.loggings if source.synthetic else (source.logging,)
    jobs = [(lg, n) for lg in loggings for n in cfg.ns]
    for lg, n in tqdm(jobs, desc="ope suite", disable=quiet_bar(progress), leave=False):
        # the synthetic world's logger of this kind; a registered world logs by its own design
        logging = dataclasses.replace(cfg.logging, kind=lg) if source.synthetic else cfg.logging
        keys = jax.random.split(stream(seed, "logs", lg, n), cfg.n_replicates)
        ests: dict[tuple[str, str, str], list[ope.Estimate]] = {}
        exact: dict[tuple[str, str], list[np.ndarray]] = {}
        for start in range(0, cfg.n_replicates, cfg.chunk):
            b = draw_log_batch(keys[start:start + cfg.chunk], source, world, n, logging)
            x, elig = np.asarray(b.x), np.asarray(b.eligible)
            base = dict(action=np.asarray(b.action), pscore=np.asarray(b.pscore))
            for outcome, reward, mu in _outcomes(b.value, b.cost, b.truth, has_cost,
                                                 with_reward=True):
                q = models.q_hat(x, outcome)
                for t, fn in policies.items():
                    pi = fn(x, elig)
                    # each log's exact value: sum_a pi(a|x_i) mu(x_i, a) averaged over its users
                    exact.setdefault((t, outcome), []).append(
                        np.sum(pi * np.asarray(mu), axis=-1).mean(axis=-1))
                    for name in cfg.ope.estimators:
                        est = ope.estimate_batch(name, reward=np.asarray(reward), action_dist=pi,
                                                 q_hat=q, lambda_=cfg.ope.lambda_for(name),
                                                 alpha=cfg.ope.alpha, **base)
                        ests.setdefault((t, outcome, name), []).append(est)
            del b
        for (t, outcome, name), parts in ests.items():
            value = np.concatenate([e.value for e in parts])
            low = np.concatenate([e.ci_low for e in parts])
            high = np.concatenate([e.ci_high for e in parts])
            ess = np.concatenate([e.ess for e in parts])
            max_w = np.concatenate([e.max_weight for e in parts])
            unsupported = np.concatenate([e.unsupported_mass for e in parts])
            truth = np.concatenate(exact[t, outcome])  # per log: exact, no Monte Carlo error
            population, population_se = oracle[t, outcome]
            err = value - truth
            metrics = {"bias": err.mean(), "bias_se": err.std(ddof=1) / np.sqrt(len(err)),
                       "rmse": np.sqrt(np.mean(err**2)),
                       "coverage": np.mean((low <= truth) & (truth <= high)),
                       "ci_width": np.mean(high - low), "oracle": population,
                       "oracle_se": population_se,
                       # overlap, known before any outcome is seen: the diagnostics that should
                       # flag the cells where the reweighting estimators under-cover
                       "ess_share": np.mean(ess) / n, "max_weight": np.mean(max_w),
                       "unsupported_mass": np.mean(unsupported)}
            for metric, v in metrics.items():
                rows.append(dict(logging=lg, n=n, target=t, outcome=outcome, estimator=name,
                                 metric=metric, value=float(v), seed=seed,
                                 n_replicates=cfg.n_replicates))
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """RMSE vs n and CI coverage vs n per estimator; one panel per (target, logging); value."""
    plt = pyplot()
    d = df[df.outcome == "value"]
    targets, loggings = list(dict.fromkeys(d.target)), list(dict.fromkeys(d.logging))
    paths = []
    for metric, log_y in (("rmse", True), ("coverage", False)):
        fig, axes = plt.subplots(len(targets), len(loggings), squeeze=False,
                                 figsize=(4 * len(loggings), 3 * len(targets)), sharex=True)
        for i, t in enumerate(targets):
            for j, lg in enumerate(loggings):
                ax = axes[i, j]
                part = d[(d.target == t) & (d.logging == lg) & (d.metric == metric)]
                for name, g in part.groupby("estimator", sort=False):
                    ax.plot(g.n, g.value, label=name, **series_style(name))
                log_axis(ax, "x", sorted(part.n.unique()))
                if log_y:
                    log_axis(ax, "y")
                else:
                    ax.axhline(0.95, color="k", lw=0.8, ls="--")
                ax.set_title(f"{t} | {lg}", fontsize=9)
                if i == len(targets) - 1:
                    ax.set_xlabel("n")
                if j == 0:
                    ax.set_ylabel(metric)
        figure_legend(fig, axes, fontsize=8)
        paths.append(save(fig, out_dir, f"ope_{metric}.png"))
    return paths


# the overlap rule checked against coverage: a cell is flagged before any outcome is seen when
# the importance weights' effective sample size is below this share of the log, or the target
# puts mass on actions the logger never takes
ESS_FLAG_SHARE = 0.1


def overlap_flags(df: pd.DataFrame, estimator: str = "ips") -> pd.DataFrame:
    """Per (outcome, target, logging, n) cell: ``estimator``'s coverage and its standard error
    over the replicate logs, the overlap diagnostics, ``flagged`` (ESS share below
    :data:`ESS_FLAG_SHARE` or unsupported mass above 0) and ``under_covers`` (coverage below
    ``1 - alpha`` by more than 2 standard errors, ``alpha`` = 0.05)."""
    d = df[(df.estimator == estimator) & df.metric.isin(
        ["coverage", "ess_share", "max_weight", "unsupported_mass"])]
    if d.empty or "ess_share" not in set(d.metric):
        return pd.DataFrame()
    keys = ["outcome", "target", "logging", "n"]
    wide = d.pivot_table(index=keys, columns="metric", values="value", sort=False).reset_index()
    reps = df.groupby(keys)["n_replicates"].first().reindex(
        pd.MultiIndex.from_frame(wide[keys])).to_numpy() * df.seed.nunique()
    wide["coverage_se"] = np.sqrt(0.95 * 0.05 / reps)
    wide["flagged"] = (wide.ess_share < ESS_FLAG_SHARE) | (wide.unsupported_mass > 1e-12)
    wide["under_covers"] = wide.coverage < 0.95 - 2 * wide.coverage_se
    return wide


def overlap_flags_table(df: pd.DataFrame) -> list[str]:
    """Markdown: do the overlap diagnostics flag, in advance, the cells where IPS under-covers?
    The confusion counts over cells, then the cells themselves."""
    w = overlap_flags(df)
    if w.empty:
        return []
    tp = int((w.flagged & w.under_covers).sum())
    fn = int((~w.flagged & w.under_covers).sum())
    fp = int((w.flagged & ~w.under_covers).sum())
    tn = int((~w.flagged & ~w.under_covers).sum())
    rho = w[["ess_share", "coverage"]].corr(method="spearman").iloc[0, 1]
    lines = [f"Overlap flags (IPS, every n): a cell is flagged when the weights' ESS is below "
             f"{ESS_FLAG_SHARE:g} of the log or the target has unsupported mass; it under-covers "
             f"when IPS coverage is below 0.95 by more than 2 s.e. Flagged and under-covering "
             f"{tp}, under-covering but not flagged {fn}, flagged but covering {fp}, neither "
             f"{tn}; Spearman correlation of ESS share with coverage {rho:.2f}.", "",
             "| outcome | target | logging | n | coverage | ess_share | max_weight | "
             "unsupported_mass | flagged | under_covers |", "|" + "---|" * 10]
    for r in w.itertuples(index=False):
        lines.append(f"| {r.outcome} | {r.target} | {r.logging} | {r.n} | {r.coverage:.3f} | "
                     f"{r.ess_share:.3g} | {r.max_weight:.3g} | {r.unsupported_mass:.3g} | "
                     f"{r.flagged} | {r.under_covers} |")
    return lines


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table at the largest n (value outcome), figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "ope.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    nmax = df.n.max()
    wide = df[df.n == nmax].pivot_table(index=["outcome", "target", "logging", "estimator"],
                                        columns="metric", values="value", sort=False)
    cols = [c for c in ("oracle", "oracle_se", "bias", "bias_se", "rmse", "coverage", "ci_width",
                        "ess_share", "max_weight", "unsupported_mass") if c in wide.columns]
    lines = [f"OPE at n = {nmax} rows per log, {int(df.n_replicates.iloc[0])} replicate logs per "
             f"job seed ({df.seed.nunique()} job seeds here). Errors and CI "
             "coverage are against each log's exact value (sum_a pi(a|x_i) mu(x_i, a) over its "
             "own users, no Monte Carlo error); oracle = the population value for reference "
             "(exact mu over fresh users, with its Monte Carlo se).", "",
             "| outcome | target | logging | estimator | " + " | ".join(cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for idx, r in wide.iterrows():
        lines.append("| " + " | ".join(map(str, idx)) + " | "
                     + " | ".join(f"{r[c]:.4g}" for c in cols) + " |")
    lines += ["", *overlap_flags_table(df)]
    md = out_dir / "ope.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="ope", config_class=OPESuiteConfig, run=run, plot=plot, write=write_results,
              key_columns=("logging", "n", "target", "outcome", "estimator"),
              result_seeds=(0,),
              # the registered worlds (conf/world/) under their native logging
              result_variants=tuple((f"world={w}", "experiment.params.n_replicates=200")
                                    for w in ("hillstrom_semi", "nie_wager_a", "obp")))
