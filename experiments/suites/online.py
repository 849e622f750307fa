"""The closed loop on truth (design notes, "The closed loop"): exploration, gates, drift, horizons,
monitoring, each a set of loop variants run on the same seed.

Every variant is one :class:`~experiments.loop.ClosedLoop` over ``loop.rounds`` rounds from the
same pilot (so the variants of one seed differ only by the knob named):

=================  ==============================================================================
``explore_none``   retrain every round, deterministic deployment (no exploration)
``explore_floor``  retrain every round, the loop's exploration (default: a 5 % propensity floor)
``explore_epsilon``retrain every round, epsilon-greedy with the same exploration mass
``gated``          OPE gate, then the always-valid online test, then promote / roll back / keep
``gated_ope_only`` OPE gate alone: a candidate that passes is promoted at once
``skew``           ``gated`` with the candidate's serving features broken (``serving_skew``)
``skew_ope_only``  the same with the OPE gate alone: offline looks fine, online it is not
``static``         the pilot's policy forever (drift erodes it)
``recalibrate``    the pilot's heads, linearly recalibrated on the newest matured cohort
``no_drift``       ``static`` in a world without drift: the monitors' false alarms
``drift_onset``    ``static`` with drift starting at round ``rounds // 2``: detection delays
=================  ==============================================================================

Not in the default list (``experiment.params.variants=[...]``): ``portfolio`` /
``portfolio_ope_only`` (``gated`` / ``gated_ope_only`` with the other programs reaching
``portfolio_reach`` times their audience from round ``rounds // 2``: offline and online disagree
because the portfolio changed), ``explore_thompson`` (retrain, Thompson exploration from a
bootstrap ensemble of the heads: ``n_draws`` extra fits per round), ``cost_skew`` /
``cost_skew_no_guardrail`` (the candidate's cost predictions multiplied by ``serving_cost_scale``
at serving, a cost-pipeline bug the offline gate cannot see; the gate is open, no value bar and no
cost bar, so every candidate is tested online; with and without the online test's cost
guardrail) and ``paced`` / ``static_paced`` (``explore_floor`` / ``static`` with one total budget
paced over the rounds against paid cost and outstanding liability, ``LoopConfig.pacing``).

Rows: key columns ``variant`` and ``round``; the metrics are every numeric field of the loop's
round records (truth: ``incumbent_regret``, ``incumbent_overspend``, ``gate_value_covered``,
``promotion_right``...; monitoring: ``psi_max``, ``srm_p_value``...). Per variant one more row set
with ``round = -1``: the run's detector summary (:func:`estimators.monitoring.alarm_metrics`):
``false_alarm_<detector>`` on ``no_drift`` (every alert is false) and on the pre-onset rounds of
``drift_onset``, ``delay_<detector>`` (rounds from the onset to the first alert; NaN if none, or
if the detector was already alerting in the round before the onset: ``quiet_before_onset_*``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.heads import ONE_NET_HEADS
from estimators.monitoring import alarm_metrics
from experiments.configs import HeadsConfig, PolicyConfig, WorldConfig
from experiments.loop import ClosedLoop, ExplorationConfig, LoopConfig
from experiments.store import OMIT_AT_DEFAULT, atomic_write
from experiments.suites._plotting import (
    figure_legend,
    metric_panels,
    pyplot,
    save,
    series_style,
)
from experiments.suites.base import Suite, quiet_bar

__all__ = ["SUITE", "VARIANTS", "OnlineSuiteConfig", "loop_config", "plot", "run", "summary"]

VARIANTS = ("explore_none", "explore_floor", "explore_epsilon", "gated", "gated_ope_only", "skew",
            "skew_ope_only", "static", "recalibrate", "no_drift", "drift_onset")
OPTIONAL_VARIANTS = ("portfolio", "portfolio_ope_only", "explore_thompson", "cost_skew",
                     "cost_skew_no_guardrail", "paced", "static_paced")
DETECTORS = ("drift_alert", "dataset_drift_alert", "psi_alert", "srm_alert", "arm_srm_alert",
             "cost_alert", "calibration_alert", "rank_alert", "propensity_alert", "overlap_alert")


@dataclasses.dataclass(frozen=True)
class OnlineSuiteConfig:
    """The loop (``loop``; its ``world``, ``learner`` and ``policy`` come from the global groups,
    set them there), the variants to run and the broken serving pipeline of the skew
    variants."""

    world: WorldConfig = WorldConfig()
    # one TARNet, not the default's five (estimators.heads.ONE_NET_HEADS): every variant refits
    # its heads every round, and five nets would take the published jobs from about half an hour
    # to several hours on 2 cores (README, "The closed loop")
    learner: HeadsConfig = ONE_NET_HEADS
    policy: PolicyConfig = PolicyConfig()
    loop: LoopConfig = LoopConfig()
    variants: tuple[str, ...] = VARIANTS
    serving_skew: float = 1.0
    portfolio_reach: float = 2.5
    serving_cost_scale: float = dataclasses.field(default=0.5, metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS + OPTIONAL_VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"experiment.params.variants: {bad or 'empty'} not known. Fix: a "
                             f"non-empty subset of {list(VARIANTS + OPTIONAL_VARIANTS)}.")
        for group in ("world", "learner", "policy"):
            if getattr(self.loop, group) != getattr(LoopConfig(), group):
                raise ValueError(f"experiment.params.loop.{group}: set through the global group "
                                 f"instead ({group}.<field>=...), so every suite sees it. Fix: "
                                 f"drop the loop.{group} override.")
        if not 0.0 < self.serving_cost_scale < float("inf"):
            raise ValueError(f"experiment.params.serving_cost_scale: must be a finite number > "
                             f"0, got {self.serving_cost_scale}. Fix: e.g. 0.5 (cost predictions "
                             "halved at serving).")
        if not 0.0 <= self.serving_skew <= 1.0:
            raise ValueError(f"experiment.params.serving_skew: must lie in [0, 1], got "
                             f"{self.serving_skew}. Fix: e.g. 1.0 (sign-flipped features).")

    @classmethod
    def compact(cls) -> OnlineSuiteConfig:
        return cls(loop=LoopConfig(rounds=5, users_per_round=4_000, pilot_users=1_000),
                   variants=("explore_none", "gated", "static"))


def loop_config(cfg: OnlineSuiteConfig, variant: str) -> LoopConfig:
    """The loop of one variant (see the module docstring)."""
    base = dataclasses.replace(cfg.loop, world=cfg.world, learner=cfg.learner, policy=cfg.policy)
    explore = base.exploration
    mass = min(explore.floor * base.world.n_actions, 1.0)  # the floor's uniform mixing weight
    no_test = dataclasses.replace(base.online_test, enabled=False)
    no_guardrail = dataclasses.replace(base.online_test, cost_guardrail=False)
    # the cost-skew variants send every candidate to the online test (an open gate: no value
    # bar, no cost bar), so each run holds several tests and the test alone guards the budget
    every_candidate = dataclasses.replace(base.gate, min_value_gain=float("-inf"),
                                          cost_tolerance=float("inf"))
    changes: dict[str, Any] = {
        "explore_none": dict(update="retrain", exploration=ExplorationConfig(kind="none")),
        "explore_floor": dict(update="retrain"),
        "explore_epsilon": dict(update="retrain",
                                exploration=ExplorationConfig(kind="epsilon", epsilon=mass)),
        "gated": dict(update="gated"),
        "gated_ope_only": dict(update="gated", online_test=no_test),
        "skew": dict(update="gated", serving_skew=cfg.serving_skew),
        "skew_ope_only": dict(update="gated", serving_skew=cfg.serving_skew,
                              online_test=no_test),
        "static": dict(update="static"),
        "recalibrate": dict(update="recalibrate"),
        "no_drift": dict(update="static", drift=False),
        "drift_onset": dict(update="static", drift_onset=max(1, base.rounds // 2)),
        "portfolio": dict(update="gated", portfolio_reach=cfg.portfolio_reach,
                          portfolio_change_round=base.rounds // 2),
        "portfolio_ope_only": dict(update="gated", online_test=no_test,
                                   portfolio_reach=cfg.portfolio_reach,
                                   portfolio_change_round=base.rounds // 2),
        "explore_thompson": dict(update="retrain", exploration=dataclasses.replace(
            explore, kind="thompson")),
        "cost_skew": dict(update="gated", gate=every_candidate,
                          serving_cost_scale=cfg.serving_cost_scale),
        "cost_skew_no_guardrail": dict(update="gated", gate=every_candidate,
                                       serving_cost_scale=cfg.serving_cost_scale,
                                       online_test=no_guardrail),
        "paced": dict(update="retrain", pacing="liability"),
        "static_paced": dict(update="static", pacing="liability"),
    }[variant]
    return dataclasses.replace(base, **changes)


def _tidy(records: list[dict[str, Any]], variant: str, seed: int) -> pd.DataFrame:
    wide = pd.DataFrame(records)
    keep = [c for c in wide.columns if c != "round"
            and (pd.api.types.is_numeric_dtype(wide[c]) or pd.api.types.is_bool_dtype(wide[c])
                 or wide[c].map(lambda v: v is None or isinstance(v, bool | float | int)).all())]
    numeric = wide[keep].apply(lambda col: pd.to_numeric(col.map(
        lambda v: np.nan if v is None else float(v)), errors="coerce"))
    numeric["round"] = wide["round"]
    long = numeric.melt(id_vars="round", var_name="metric", value_name="value").dropna()
    return long.assign(variant=variant, seed=seed)


def _detector_rows(records: list[dict[str, Any]], lc: LoopConfig, variant: str,
                   seed: int) -> list[dict[str, Any]]:
    onset = None if not lc.drift else (lc.drift_onset if lc.drift_onset > 0 else None)
    if variant not in ("no_drift", "drift_onset"):
        return []
    rows = []
    for det in DETECTORS:
        alerts = np.array([[bool(r.get(det, False)) for r in records]])
        m = alarm_metrics(alerts, onset=onset)
        rows.append(dict(metric=f"false_alarm_{det}", value=m.false_alarm_rate))
        if onset is not None:
            # a delay means something only if the detector was quiet just before the onset
            quiet = not alerts[0, onset - 1]
            rows.append(dict(metric=f"quiet_before_onset_{det}", value=float(quiet)))
            rows.append(dict(metric=f"delay_{det}", value=float(m.delays[0]) if quiet
                             else np.nan))
    return [dict(r, variant=variant, round=-1, seed=seed) for r in rows]


def run(cfg: OnlineSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """One closed loop per variant, all from job ``seed`` (the loop's streams)."""
    frames = []
    for variant in tqdm(cfg.variants, desc="online variants", disable=quiet_bar(progress),
                        leave=False):
        lc = loop_config(cfg, variant)
        records = ClosedLoop(lc, seed=seed).run(progress=progress)
        frames.append(_tidy(records, variant, seed))
        det = _detector_rows(records, lc, variant, seed)
        if det:
            frames.append(pd.DataFrame(det))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------- outputs
def _per_round(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["round"] >= 0]


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``exploration.png``, ``gate.png``, ``drift.png``, ``horizons.png`` and one monitoring
    dashboard per variant of the lowest seed (``dashboard_<variant>.png``)."""
    out_dir = Path(out_dir)
    rounds = _per_round(df)
    paths = []
    explore = rounds[rounds["variant"].str.startswith("explore_")]
    if not explore.empty:
        paths.append(metric_panels(
            explore, ("min_propensity", "overlap_ess_share", "gate_unsupported_mass",
                      "gate_value_covered", "incumbent_regret", "incumbent_target_regret"),
            series="variant", x="round", xlabel="round", out_dir=out_dir, name="exploration.png"))
    drift = rounds[rounds["variant"].isin(("static", "recalibrate", "explore_floor", "gated"))]
    if not drift.empty:
        paths.append(metric_panels(drift, ("incumbent_regret", "incumbent_overspend",
                                           "cost_calibration"),
                                   series="variant", x="round", xlabel="round", out_dir=out_dir,
                                   name="drift.png", zero_line=True))
    guard = rounds[rounds["variant"].isin(("gated", "cost_skew", "cost_skew_no_guardrail"))]
    if guard["variant"].str.startswith("cost_skew").any():
        paths.append(metric_panels(guard, ("incumbent_cost", "incumbent_value",
                                           "test_cost_estimate"),
                                   series="variant", x="round", xlabel="round", out_dir=out_dir,
                                   name="guardrail.png", zero_line=True))
    paced = rounds[rounds["variant"].isin(("explore_floor", "paced", "static", "static_paced"))]
    if paced["variant"].str.endswith("paced").any():
        paths.append(metric_panels(paced, ("incumbent_cost", "pacing_budget_per_user",
                                           "incumbent_regret"),
                                   series="variant", x="round", xlabel="round", out_dir=out_dir,
                                   name="pacing.png"))
    gate = _gate_table(df)
    if not gate.empty:
        paths.append(_gate_figure(gate, out_dir))
    if "horizon_estimate" in set(rounds["metric"]):
        paths.append(_horizon_figure(rounds, out_dir))
    seed0 = rounds[rounds["seed"] == rounds["seed"].min()]
    for variant, g in seed0.groupby("variant", sort=False):
        paths.append(_dashboard(g, variant, out_dir))
    return paths


def _gate_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant (gated ones): promotions per run, wrong promotions, gate passes."""
    rows = []
    for (variant, seed), g in _per_round(df).groupby(["variant", "seed"]):
        if not str(variant).startswith(("gated", "skew", "portfolio", "cost_skew")):
            continue
        m = g.pivot_table(index="round", columns="metric", values="value")
        promoted = m.get("promoted", pd.Series(dtype=float)).fillna(0).sum()
        right = m.get("promotion_right", pd.Series(dtype=float)).dropna()
        rows.append(dict(variant=variant, seed=seed, promotions=promoted,
                         wrong_promotions=float((right == 0).sum()),
                         gate_passes=m.get("gate_passed", pd.Series(dtype=float)).sum(),
                         mean_regret=m["incumbent_regret"].mean()))
    return pd.DataFrame(rows)


def _gate_figure(gate: pd.DataFrame, out_dir: Path) -> Path:
    plt = pyplot()
    stats = gate.groupby("variant", sort=False)[["promotions", "wrong_promotions",
                                                 "mean_regret"]].agg(["mean", "sem"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, col in zip(axes, ("promotions", "wrong_promotions", "mean_regret"), strict=True):
        ax.bar(stats.index, stats[(col, "mean")], yerr=stats[(col, "sem")].fillna(0.0),
               capsize=3, color=[series_style(v)["color"] for v in stats.index])
        ax.set_title(col.replace("_", " ") + (" per run" if col != "mean_regret" else ""))
        ax.set_xlabel("variant")
        ax.set_ylabel(col.replace("_", " "))
        ax.tick_params(axis="x", rotation=20)
        ax.grid(alpha=0.3, axis="y")
    return save(fig, out_dir, "gate.png")


def _horizon_figure(rounds: pd.DataFrame, out_dir: Path) -> Path:
    plt = pyplot()
    h = rounds[rounds["metric"].isin(("horizon_estimate", "horizon_low", "horizon_high",
                                      "horizon_truth"))]
    variants = [v for v in ("gated", "explore_floor", "explore_none") if v in set(h["variant"])]
    fig, axes = plt.subplots(1, max(len(variants), 1), figsize=(4.5 * max(len(variants), 1), 4),
                             squeeze=False)
    for ax, v in zip(axes[0], variants, strict=False):
        g = h[(h["variant"] == v) & (h["seed"] == h["seed"].min())]
        m = g.pivot_table(index="round", columns="metric", values="value")
        ax.fill_between(m.index, m["horizon_low"], m["horizon_high"], alpha=0.3,
                        label="DR 1 - alpha CI")
        ax.plot(m.index, m["horizon_estimate"], "-", label="DR estimate", **series_style("dr"))
        ax.plot(m.index, m["horizon_truth"], "--", label="truth", **series_style("truth"))
        ax.set_title(f"{v}: accounting-horizon value")
        ax.set_xlabel("round")
        ax.set_ylabel("value per user")
        ax.grid(alpha=0.3)
    figure_legend(fig, axes)
    return save(fig, out_dir, "horizons.png")


_DASHBOARD = (
    ("assignment volume", ("volume_offered", "no_offer_rate")),
    ("spend per user", ("spend_plan", "spend_paid", "incumbent_cost")),
    ("realised / predicted cost", ("cost_calibration",)),
    ("value lift vs holdout", ("value_lift_observed", "value_lift_predicted",
                               "incumbent_value")),
    ("rank monotonicity", ("rank_spearman",)),
    ("feature drift", ("psi_max", "wasserstein_max", "drift_share")),
    ("propensities", ("min_propensity", "overlap_ess_share", "overlap_unsupported")),
    ("SRM p-value", ("srm_p_value", "arm_srm_p_value")),
    ("online test (value diff)", ("test_estimate", "test_low", "test_high", "test_true_diff")),
    ("regret (truth)", ("incumbent_regret", "incumbent_target_regret")),
)


def _dashboard(g: pd.DataFrame, variant: str, out_dir: Path) -> Path:
    plt = pyplot()
    m = g.pivot_table(index="round", columns="metric", values="value")
    fig, axes = plt.subplots(2, 5, figsize=(20, 7.5))
    for ax, (title, cols) in zip(axes.ravel(), _DASHBOARD, strict=True):
        for c in cols:
            if c in m:
                ax.plot(m.index, m[c], "o-", ms=3, label=c.replace("_", " "))
        if title == "SRM p-value":
            ax.axhline(0.001, color="r", lw=0.8, ls=":", label="alert 0.001")
            ax.set_yscale("log")
        if title == "feature drift":
            ax.axhline(0.1, color="r", lw=0.8, ls=":", label="PSI / W alert 0.1")
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.suptitle(f"closed-loop monitoring: {variant} (seed {int(g['seed'].min())})")
    return save(fig, out_dir, f"dashboard_{variant}.png")


_SUMMARY = ("incumbent_regret", "incumbent_overspend", "gate_value_covered", "horizon_covered",
            "promoted", "promotion_right", "test_right_guarded", "test_cost_breach",
            "test_candidate_lift_covered", "test_incumbent_lift_covered")


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: mean over rounds and seeds of the true regret and overspend, the
    gate's CI coverage of the true value difference, the horizon CI's coverage, promotions per
    run and the share of them that were right (on value; ``test_right_guarded``: on value and the
    cost guardrail's margin), cost rollbacks per run, the online holdout contrasts' coverage of
    the true lifts; then the detector summaries."""
    r = _per_round(rows)
    per = r[r["metric"].isin(_SUMMARY)].pivot_table(index=["variant", "seed", "round"],
                                                    columns="metric", values="value")
    out = per.groupby(level="variant", sort=False).mean()
    for metric, name in (("promoted", "promotions_per_run"),
                         ("test_cost_breach", "cost_rollbacks_per_run")):
        if metric in per:
            out[name] = (per[metric].fillna(0).groupby(level=["variant", "seed"]).sum()
                         .groupby(level="variant").mean())
    det = rows[rows["round"] < 0].pivot_table(index="variant", columns="metric", values="value")
    return out.join(det, how="outer").reset_index()


def write(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``online.csv`` (all rows, without the store's ``cfg.*`` columns: the config is in the
    store's ``config.json``), ``online_summary.csv`` and the figures."""
    out_dir = Path(out_dir)
    paths = []
    tidy = rows.loc[:, ~rows.columns.str.startswith("cfg.")]
    for name, table in (("online.csv", tidy), ("online_summary.csv", summary(rows))):
        path = out_dir / name
        atomic_write(path, lambda tmp, t=table: t.to_csv(tmp, index=False))
        paths.append(path)
    return paths + plot(rows, out_dir)


SUITE = Suite(name="online", config_class=OnlineSuiteConfig, run=run, plot=plot, write=write,
              summary=summary, key_columns=("variant", "round"),
              result_variants=(("experiment.params.variants=[portfolio,portfolio_ope_only]",),
                               ("experiment.params.variants=[cost_skew,cost_skew_no_guardrail,"
                                "paced,static_paced]",)))
