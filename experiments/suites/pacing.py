"""Pacing suite: one total budget spent over T periods under redemption lag and drift.

Each period the world draws fresh users at period t (covariate shift, effect and cost drift,
seasonality). The deployer's model is stale: the exact effects of the period-0 world applied to
today's users (``expected_outcomes`` with ``period = 0``), so drift makes its costs biased. Each
allocation is sampled (``policies.exploration.sample_actions``), outcomes come from
``sample_outcomes`` and redemptions are paid ``lag`` periods later (geometric, mean ``lag_mean``).

Controllers (same users and outcome keys for all: common random numbers):

* ``no_pacing``: the budget multiplier solved once on period 0 for ``B / T``, then held fixed;
* ``spend_only``: re-plan every period from realised spend only (ignores outstanding liability);
* ``liability``: re-plan from realised spend + drift-corrected outstanding expected liability
  (:func:`policies.pacing.pacing_step`).

Metrics per controller: eventual total spend / budget, overspend and underspend (fractions of the
budget), total true incremental value, and the committed-minus-plan path per period (committed =
realised payments so far + the true expected unpaid cost of offers issued so far).
Run ``python -m experiments.run experiment=pacing 'seeds=[0,1,2,3]'`` (``make results``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.configs import PolicyConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate, allocate_at_price
from policies.exploration import sample_actions
from policies.pacing import pacing_step
from simulators import default_params
from simulators.world import expected_outcomes, sample_outcomes, sample_users

__all__ = ["CONTROLLERS", "SUITE", "PacingSuiteConfig", "plot", "run", "simulate_pacing",
           "write_results"]

CONTROLLERS = ("no_pacing", "spend_only", "liability")


@dataclasses.dataclass(frozen=True)
class PacingSuiteConfig:
    """``policy.budget_per_user``: total budget = level x n_per_period x n_periods (incremental
    cost units); ``lag_mean`` / ``cost_drift``: override the world's redemption lag mean and cost
    drift (None keeps the default world's)."""

    world: WorldConfig = WorldConfig()
    policy: PolicyConfig = PolicyConfig(budget_per_user=0.3)
    n_periods: int = 12
    n_per_period: int = 10_000
    lag_mean: float | None = 2.0
    cost_drift: float | None = 0.06

    @classmethod
    def compact(cls) -> PacingSuiteConfig:
        return cls(n_periods=8, n_per_period=3_000)

    def __post_init__(self) -> None:
        if self.n_periods < 2 or self.n_per_period < 10:
            raise ValueError("PacingSuiteConfig: n_periods >= 2, n_per_period >= 10.")
        if self.policy.budget_per_user <= 0:
            raise ValueError("PacingSuiteConfig.policy.budget_per_user: must be > 0.")


def world_for(cfg: PacingSuiteConfig) -> tuple[WorldConfig, object]:
    world = cfg.world
    params = default_params(world)
    if cfg.lag_mean is not None:
        params = params._replace(redemption_lag_mean=jnp.asarray(float(cfg.lag_mean)))
    if cfg.cost_drift is not None:
        params = params._replace(cost_drift=jnp.asarray(float(cfg.cost_drift)))
    return world, params


def _effects(params, users):
    mv, mc, _ = (np.asarray(m, dtype=np.float64) for m in expected_outcomes(params, users))
    return mv - mv[:, :1], mc - mc[:, :1], mc


def simulate_pacing(cfg: PacingSuiteConfig, controller: str, seed: int) -> dict[str, np.ndarray]:
    """One run; returns per-period arrays and the outcome-level quantities used by the tests.
    Streams per period ``t``: ``stream(seed, "users", t)``, ``("actions", t)``, ``("outcomes", t)``
    (the same for every controller: common random numbers)."""
    if controller not in CONTROLLERS:
        raise ValueError(f"controller: expected one of {CONTROLLERS}, got {controller!r}.")
    world, params = world_for(cfg)
    lag_mean = float(params.redemption_lag_mean)
    q = lag_mean / (1.0 + lag_mean)
    T, n = cfg.n_periods, cfg.n_per_period
    budget = cfg.policy.budget_per_user * n * T
    face = np.asarray(params.face_value, dtype=np.float64)
    horizon = T + 400  # payments after the last period still count towards the total
    paid = np.zeros(horizon)  # by payment period
    paid_cohort = np.zeros((T, horizon))  # [issue period, payment period]
    issued_est = np.zeros(T)
    true_exp_cost = np.zeros(T)
    true_value = np.zeros(T)
    var_bound = np.zeros(T)  # sum_i face_i * E[cost_i] >= Var(cost of cohort t)
    price = None
    for t in range(T):
        k_users, k_act, k_out = (stream(seed, name, t) for name in ("users", "actions",
                                                                    "outcomes"))
        users = sample_users(k_users, params, world, n, t)
        tv, tc, mc = _effects(params, users)
        stale = users._replace(period=jnp.zeros_like(users.period))
        tv_hat, tc_hat, _ = _effects(params, stale)
        e = np.asarray(users.eligible)
        if controller == "no_pacing":
            if price is None:
                price = allocate(tv_hat, tc_hat, budget=budget / T, eligible=e).budget_multiplier
            alloc = allocate_at_price(tv_hat, tc_hat, price=price, eligible=e)
        else:
            known = paid_cohort[:t, :t].sum(axis=1)  # cohort payments observed so far
            dec = pacing_step(budget, T, issued_est[:t], known, lag_mean=lag_mean,
                              use_liability=controller == "liability")
            alloc = allocate(tv_hat, tc_hat, budget=dec.period_budget, eligible=e)
        a = sample_actions(k_act, alloc.action_dist).action
        rows = np.arange(n)
        _, _, cost, lag = (np.asarray(o) for o in sample_outcomes(k_out, params, users,
                                                                   jnp.asarray(a)))
        red = cost > 0
        when = np.minimum(t + lag[red], horizon - 1)
        np.add.at(paid, when, cost[red])
        np.add.at(paid_cohort[t], when, cost[red])
        issued_est[t] = tc_hat[rows, a].sum()
        true_exp_cost[t] = tc[rows, a].sum()
        true_value[t] = tv[rows, a].sum()
        var_bound[t] = np.sum(face[a] * mc[rows, a])
    cum_paid = np.cumsum(paid[:T])
    # committed at the end of period t: paid so far + true expected unpaid part of cohorts <= t
    unpaid = np.array([np.sum(true_exp_cost[: t + 1] * q ** (t - np.arange(t + 1) + 1))
                       for t in range(T)])
    return {"budget": np.float64(budget), "total_spend": np.float64(paid.sum()),
            "committed": cum_paid + unpaid, "plan": budget * np.arange(1, T + 1) / T,
            "true_value": true_value, "true_exp_cost": true_exp_cost, "var_bound": var_bound,
            "q": np.float64(q)}


def run(cfg: PacingSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: controller, seed, n, period (-1 for totals), metric, value."""
    rows: list[dict] = []
    for c in tqdm(CONTROLLERS, desc="pacing suite", disable=quiet_bar(progress), leave=False):
        r = simulate_pacing(cfg, c, seed)
        b = float(r["budget"])
        key = {"controller": c, "seed": seed, "n": cfg.n_per_period}
        totals = {"spend_over_budget": r["total_spend"] / b,
                  "overspend": max(r["total_spend"] - b, 0.0) / b,
                  "underspend": max(b - r["total_spend"], 0.0) / b,
                  "incremental_value": float(r["true_value"].sum()),
                  "value_per_budget": float(r["true_value"].sum()) / b,
                  "value_per_spend": float(r["true_value"].sum()) / float(r["total_spend"])}
        rows += [{**key, "period": -1, "metric": m, "value": float(v)} for m, v in totals.items()]
        rows += [{**key, "period": t, "metric": "committed_minus_plan_over_budget",
                  "value": float((r["committed"][t] - r["plan"][t]) / b)}
                 for t in range(cfg.n_periods)]
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Committed-minus-plan path per controller and the final spend / value bars."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    path = df[df.metric == "committed_minus_plan_over_budget"]
    for c in CONTROLLERS:
        g = path[path.controller == c].groupby("period")["value"]
        axes[0].errorbar(g.mean().index, g.mean(), yerr=g.std().fillna(0), capsize=3, label=c,
                         **series_style(c))
    axes[0].axhline(0, color="k", lw=1)
    axes[0].set_xlabel("period")
    axes[0].set_ylabel("(committed - plan) / budget")
    axes[0].set_title("(committed - plan) / budget")
    for ax, metric in zip(axes[1:], ("spend_over_budget", "value_per_budget", "value_per_spend"),
                          strict=True):
        g = df[(df.metric == metric)].groupby("controller")["value"]
        m = g.mean().reindex(list(CONTROLLERS))
        ax.bar(m.index, m.values, yerr=g.std().reindex(list(CONTROLLERS)).fillna(0).values,
               capsize=4, color=[series_style(c)["color"] for c in m.index])
        if metric == "spend_over_budget":
            ax.axhline(1.0, color="k", ls="--", lw=1)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("controller")
        ax.set_ylabel(metric.replace("_", " "))
    figure_legend(fig, axes)
    return [save(fig, out_dir, "pacing.png")]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    csv = out_dir / "pacing.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    tot = df[df.period == -1].groupby(["metric", "controller"])["value"].agg(["mean", "std"])
    lines = ["### pacing totals (mean ± sd over seeds)", "",
             "| controller | " + " | ".join(m for m in tot.index.levels[0]) + " |",
             "|---|" + "---|" * len(tot.index.levels[0])]
    for c in CONTROLLERS:
        cells = [f"{tot.loc[(m, c), 'mean']:.4f} ± {np.nan_to_num(tot.loc[(m, c), 'std']):.4f}"
                 for m in tot.index.levels[0]]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    md = out_dir / "pacing.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="pacing", config_class=PacingSuiteConfig, run=run, plot=plot,
              write=write_results, key_columns=("controller", "n", "period"),
              result_seeds=(0, 1, 2, 3))
