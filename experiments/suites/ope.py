"""OPE benchmark suite: estimators x logging policies x n x target policies, many seeds (vmapped).

Per (logging, n): ``n_seeds`` logs from one ``simulate_batch`` call per chunk of seeds. Target
policies (functions of the user, so each has a population value):

* ``allocation``: the decision stage's policy. A ridge T-learner (value and cost heads) fitted on an
  independent uniform training log; ``policies.allocation.allocate`` on a reference population
  gives the budget multiplier (price) at ``budget_per_user``; the policy is the rule
  ``allocate_at_price`` at that price (row-wise, so applicable to any user);
* ``softmax``: softmax of a fixed linear score of x over eligible actions (stochastic);
* ``offer_1``: offer 1 to every eligible user (a one-hot incumbent).

q_hat: the T-learner's per-action outcome predictions (fitted on the independent training log, so
independent of the evaluated logs). Truth: each log's exact value ``mean_i sum_a pi(a|x_i)
mu(x_i, a)`` over its own users (exact ``mu``, no Monte Carlo error); errors and coverage are
measured against it. ``oracle``: the population value ``E_x[sum_a pi mu]`` averaged over
``n_reference`` fresh users, for reference, with its Monte Carlo stderr ``oracle_se``.
Metrics per (logging, n, target, outcome, estimator): ``bias``, ``rmse``, ``coverage`` of the
analytic 95% CI, ``ci_width`` (mean), ``bias_se`` (stderr of the bias over seeds), ``oracle``.

Run ``python -m experiments.suites.ope [--compact] [--out results/ope]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators import ope
from estimators.base import Ridge
from estimators.uplift import TLearner
from experiments.suites._cli import suite_main
from policies.allocation import allocate, allocate_at_price
from simulators import LoggingConfig, WorldConfig, default_params, simulate, simulate_batch

__all__ = ["OPESuiteConfig", "plot", "run", "write_results"]

TARGETS = ("allocation", "softmax", "offer_1")
LOGGINGS = ("uniform", "warm_start", "epsilon_greedy")


@dataclasses.dataclass(frozen=True)
class OPESuiteConfig:
    """``epsilon``: exploration of the near-deterministic epsilon-greedy logger; ``lambda_``:
    threshold of clipped IPS / switch-DR / DR-os; ``budget_per_user``: the allocation policy's
    expected incremental cost per user; ``chunk``: seeds per ``simulate_batch`` call."""

    estimators: tuple[str, ...] = ope.ESTIMATORS
    loggings: tuple[str, ...] = LOGGINGS
    targets: tuple[str, ...] = TARGETS
    ns: tuple[int, ...] = (1_000, 4_000, 16_000)
    n_seeds: int = 500
    epsilon: float = 0.05
    lambda_: float = 20.0
    budget_per_user: float = 1.0
    n_train: int = 20_000
    n_reference: int = 400_000
    alpha: float = 0.05
    chunk: int = 100

    def __post_init__(self) -> None:
        for field, allowed in (("estimators", ope.ESTIMATORS), ("loggings", LOGGINGS),
                               ("targets", TARGETS)):
            unknown = set(getattr(self, field)) - set(allowed)
            if unknown:
                raise ValueError(f"OPESuiteConfig.{field}: unknown {sorted(unknown)}; choose "
                                 f"from {allowed}.")
        if self.n_seeds < 2 or min(self.ns) < 100 or self.chunk < 1:
            raise ValueError("OPESuiteConfig: need n_seeds >= 2, every n >= 100, chunk >= 1.")

    @classmethod
    def compact(cls) -> OPESuiteConfig:
        return cls(ns=(1_000,), n_seeds=100, n_train=5_000, n_reference=50_000)


def _softmax_policy(x: Any, eligible: Any) -> np.ndarray:
    k1 = eligible.shape[-1]
    w = np.random.default_rng(11).normal(0, 0.8, size=(x.shape[-1], k1))
    score = np.where(eligible, x @ w, -np.inf)
    return np.asarray(jax.nn.softmax(jnp.asarray(score), axis=-1))


def _offer_1(x: Any, eligible: Any) -> np.ndarray:
    pi = np.zeros(eligible.shape)
    pi[..., 1] = eligible[..., 1]
    pi[..., 0] = 1.0 - pi[..., 1]
    return pi


class _Models:
    """The T-learner fitted once on an independent uniform log; q_hat and the allocation rule."""

    def __init__(self, train: Any, ref: Any, budget_per_user: float) -> None:
        self.value = TLearner(base=Ridge(alpha=100.0))
        self.cost = TLearner(base=Ridge(alpha=1.0))
        for learner, label in ((self.value, train.value), (self.cost, train.cost)):
            learner.fit(train.x, train.action, label, action_prob=train.action_prob,
                        n_actions=train.n_actions)
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


def _policies(models: _Models) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    return {"allocation": models.allocation, "softmax": _softmax_policy, "offer_1": _offer_1}


def run(cfg: OPESuiteConfig, *, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(logging, n, target, outcome, estimator, metric, value, seed, n_seeds)``."""
    world = WorldConfig()
    params = default_params(world)
    key = jax.random.key(seed)
    k_train, k_ref, k_logs = jax.random.split(key, 3)
    train = simulate(k_train, params, world, cfg.n_train, LoggingConfig(kind="uniform"))
    ref = simulate(k_ref, params, world, cfg.n_reference, LoggingConfig(kind="uniform"))
    models = _Models(train, ref, cfg.budget_per_user)
    policies = {t: _policies(models)[t] for t in cfg.targets}
    oracle = {}
    for t, fn in policies.items():
        pi = fn(ref.x, ref.eligible)
        for outcome, mu in (("value", ref.truth.mu_value), ("cost", ref.truth.mu_cost)):
            per_user = np.sum(pi * np.asarray(mu), axis=1)
            oracle[t, outcome] = (per_user.mean(), per_user.std(ddof=1) / np.sqrt(len(pi)))
    rows: list[dict[str, Any]] = []
    jobs = [(lg, n) for lg in cfg.loggings for n in cfg.ns]
    for job, (lg, n) in enumerate(tqdm(jobs, desc="ope suite", disable=not progress)):
        logging = LoggingConfig(kind=lg, epsilon=cfg.epsilon)
        keys = jax.random.split(jax.random.fold_in(k_logs, job), cfg.n_seeds)
        ests: dict[tuple[str, str, str], list[ope.Estimate]] = {}
        exact: dict[tuple[str, str], list[np.ndarray]] = {}
        for start in range(0, cfg.n_seeds, cfg.chunk):
            b = simulate_batch(keys[start:start + cfg.chunk], params, world, n, logging)
            x, elig = np.asarray(b.x), np.asarray(b.eligible)
            base = dict(action=np.asarray(b.action), pscore=np.asarray(b.pscore))
            for outcome, reward, mu in (("value", b.value, b.truth.mu_value),
                                        ("cost", b.cost, b.truth.mu_cost)):
                q = models.q_hat(x, outcome)
                for t, fn in policies.items():
                    pi = fn(x, elig)
                    # each log's exact value: sum_a pi(a|x_i) mu(x_i, a) averaged over its users
                    exact.setdefault((t, outcome), []).append(
                        np.sum(pi * np.asarray(mu), axis=-1).mean(axis=-1))
                    for name in cfg.estimators:
                        lam = cfg.lambda_ if name in ("clipped_ips", "switch_dr", "dr_os") else None
                        est = ope.estimate_batch(name, reward=np.asarray(reward), action_dist=pi,
                                                 q_hat=q, lambda_=lam, alpha=cfg.alpha, **base)
                        ests.setdefault((t, outcome, name), []).append(est)
            del b
        for (t, outcome, name), parts in ests.items():
            value = np.concatenate([e.value for e in parts])
            low = np.concatenate([e.ci_low for e in parts])
            high = np.concatenate([e.ci_high for e in parts])
            truth = np.concatenate(exact[t, outcome])  # per log: exact, no Monte Carlo error
            population, population_se = oracle[t, outcome]
            err = value - truth
            metrics = {"bias": err.mean(), "bias_se": err.std(ddof=1) / np.sqrt(len(err)),
                       "rmse": np.sqrt(np.mean(err**2)),
                       "coverage": np.mean((low <= truth) & (truth <= high)),
                       "ci_width": np.mean(high - low), "oracle": population,
                       "oracle_se": population_se}
            for metric, v in metrics.items():
                rows.append(dict(logging=lg, n=n, target=t, outcome=outcome, estimator=name,
                                 metric=metric, value=float(v), seed=seed,
                                 n_seeds=cfg.n_seeds))
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """RMSE vs n and CI coverage vs n per estimator; one panel per (target, logging); value."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
                    ax.plot(g.n, g.value, marker="o", label=name)
                ax.set_xscale("log")
                if log_y:
                    ax.set_yscale("log")
                else:
                    ax.axhline(0.95, color="k", lw=0.8, ls="--")
                ax.set_title(f"{t} | {lg}", fontsize=9)
                if i == len(targets) - 1:
                    ax.set_xlabel("n")
                if j == 0:
                    ax.set_ylabel(metric)
        axes[0, 0].legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / f"ope_{metric}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table at the largest n (value outcome), figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "ope.csv", index=False)
    nmax = df.n.max()
    wide = df[df.n == nmax].pivot_table(index=["outcome", "target", "logging", "estimator"],
                                        columns="metric", values="value", sort=False)
    cols = ["oracle", "oracle_se", "bias", "bias_se", "rmse", "coverage", "ci_width"]
    lines = [f"OPE at n = {nmax} rows per log, {int(df.n_seeds.iloc[0])} seeds. Errors and CI "
             "coverage are against each log's exact value (sum_a pi(a|x_i) mu(x_i, a) over its "
             "own users, no Monte Carlo error); oracle = the population value for reference "
             "(exact mu over fresh users, with its Monte Carlo se).", "",
             "| outcome | target | logging | estimator | " + " | ".join(cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for idx, r in wide.iterrows():
        lines.append("| " + " | ".join(map(str, idx)) + " | "
                     + " | ".join(f"{r[c]:.4g}" for c in cols) + " |")
    md = out_dir / "ope.md"
    md.write_text("\n".join(lines) + "\n")
    return [out_dir / "ope.csv", md, *plot(df, out_dir)]


def main() -> None:
    suite_main(__doc__, OPESuiteConfig, run, write_results, Path("results/ope"))


if __name__ == "__main__":
    main()
