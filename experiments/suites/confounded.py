"""Confounded-history suite: what "randomisation prevents confounding" means, in numbers.

Per seed, two training logs of the same size from the same world: the ``confounded`` historical
logger (a deterministic rule: the 40 % of users with the highest baseline purchase intent get the
deepest offer they are eligible for, everyone else nothing; no propensities recorded,
:mod:`simulators.logging_policies`) and the ``uniform`` randomised logger (uniform over eligible
actions, propensities logged); and one uniform evaluation population shared by both. Streams:
``stream(seed, "train", "confounded")``, ``stream(seed, "train", "uniform")``, ``stream(seed,
"eval")``. Every number is scored by the world's exact truth.

Rows (``logging``, ``estimator``, ``head``, ``offer``, ``budget_per_user``, ``metric``,
``value``; ``offer`` / ``budget_per_user`` are NaN where they do not apply):

* ``estimator="naive"``, head ``value`` / ``cost``, per offer ``a``: ``effect`` = the difference
  in means ``mean(y | A = a) - mean(y | A = 0, a eligible)`` on the training log (what an analyst
  reads off the history), ``se`` its within-log standard error, ``bias`` = ``effect`` - the true
  average effect of ``a`` on the users the contrast treats (the ATT ``mean_{i: A_i = a}
  tau_a(x_i)``: the contrast's selection bias), ``bias_ate`` = ``effect`` - the true average
  effect of ``a`` over all the log's users eligible for it. ``estimator="truth"``: ``effect`` (the
  ATT) and ``ate``. Under randomisation an eligible user gets ``a`` and no offer with the same
  probability, so the arms are exchangeable and ``bias`` is zero in expectation; under the rule
  it is ``E[mu_0 | A = a] - E[mu_0 | A = 0]`` (the targeted users buy more anyway). The cost
  contrast has no selection bias under either log (no offer costs nothing, for everyone), only
  the ATT-vs-ATE gap.
* ``estimator="log"``: ``rows`` per action (offer 0 = no offer) and ``identified`` per offer (1
  if the log holds at least ``min_offer_rows`` rows of it; default 2, the learners' own minimum).
  The rule starves the shallow offers (only targeted users ineligible for every deeper offer get
  them: about 10 rows of offer 1 and 80 of offer 2 in 20,000), and a learner fits what it is
  given, as a user would: an offer with fewer rows is left out of the fits (its rows dropped) and
  out of the policy. A cross-fitted learner (``dr``) also drops an offer without a row outside
  one of its folds.
* each learner of ``learners`` (``estimator`` = its name), fitted on each log with value and cost
  heads, scored on the evaluation users: head ``value`` / ``cost``: ``pehe`` = ``sqrt(mean
  (tau_hat - tau)^2)`` over eligible (user, identified offer) pairs (``offer`` NaN) and per offer
  (``offer`` = a), ``offers_identified``. Head ``policy``, per ``budget_per_user`` ``b``: the
  exact budgeted allocation (:func:`policies.allocation.allocate`) on the heads' predictions,
  scored by truth: ``regret`` = 1 - its true incremental value / the oracle's (the same allocator
  on the true effects at budget ``b``), ``cost_ratio`` = its true incremental cost / ``b`` (above
  1 overspends), ``regret_on_budget`` = the regret of the same policy stopped when its true spend
  reaches the budget (users dropped at random: value scaled by ``min(1, 1 / cost_ratio)``), which
  an overspending policy cannot buy down with money it was not given.

**Propensities.** The confounded log has ``action_prob = None``, and nothing here invents one.
``t``, ``s``, ``x`` and ``hurdle`` fit without propensities (``x`` then gates its two effect
models by the constant arm shares). ``dr`` needs them: on the randomised log it gets the logged
ones; on the confounded log it is fitted as a practitioner without logged propensities would fit
it, on *estimated* ones (:func:`estimated_propensities`: an L2 logistic regression per
identified action of ``1{A = a}`` on the features, restricted to eligible actions, floored at
``propensity_floor`` and renormalised). The rule is a deterministic function of those features,
so the estimates sit near 0 / 1 and the AIPW correction has no overlap to work with. The table
states which propensities each fit used.

Features: ``x`` and the one-hot segment. The rule's intent score is a linear function of both, so
the history is "unconfounded given x" in the letter but has no overlap: every arm's model is
fitted on one side of the intent threshold and extrapolated to the other.

Run ``python -m experiments.run experiment=confounded 'seeds=[0,1,2,3,4]'`` (full size),
``experiment.compact=true`` for the fast preset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

from estimators.base import Logistic
from estimators.checks import fail
from estimators.crossfit import fold_ids
from estimators.heads import HeadConfig, make_learner
from estimators.metrics import pehe
from experiments.configs import HeadsConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.allocation import features
from experiments.suites.base import Suite, quiet_bar, stream
from policies.allocation import allocate
from simulators import default_params, policy_truth, simulate
from simulators.oracle import optimal_policy

__all__ = ["LEARNER_HEADS", "LOGGINGS", "SUITE", "ConfoundedSuiteConfig", "plot", "run",
           "summary", "write_results"]

LOGGINGS = ("confounded", "uniform")  # the historical rule and the randomised log of its size
# compared learner -> its HeadConfig changes over the head's config (the same changes as the
# learners suite's LEARNER_HEADS for these names); a "value" / "cost" key holds one head's only
LEARNER_HEADS: dict[str, dict[str, Any]] = {
    "t": {"learner": "t"},
    "s": {"learner": "s", "interactions": True},
    "x": {"learner": "x"},
    "dr": {"learner": "dr"},
    "hurdle": {"learner": "hurdle", "alpha": 1.0, "value": {"hurdle_amount": "log"},
               "cost": {"hurdle_amount": "constant"}},
}
NEEDS_PROPENSITY = ("dr",)  # fitted on estimated propensities where the log has none
HEADS = ("value", "cost")
POLICY_METRICS = ("regret", "regret_on_budget", "cost_ratio")
KEYS = ("estimator", "head", "offer", "budget_per_user", "metric")  # a row besides logging, seed
NAIVE_COLOUR = {"confounded": "0.35", "uniform": "0.8"}  # grey: no learner's colour


@dataclasses.dataclass(frozen=True)
class ConfoundedSuiteConfig:
    """``n_train`` rows in each of the two training logs (confounded and uniform), ``n_eval``
    uniform evaluation users; ``budgets``: budget per evaluation user of the learners' policies;
    ``learners`` from :data:`LEARNER_HEADS` over the base heads ``learner`` (value head ridge alpha
    100, cost head ridge alpha 1, as the learners suite); ``min_offer_rows``: the fewest logged
    rows of an offer for a log to identify it; ``propensity_floor``: the floor of ``dr``'s
    estimated propensities on a log without logged ones."""

    world: WorldConfig = WorldConfig()
    learner: HeadsConfig = HeadsConfig(value=HeadConfig(alpha=100.0), cost=HeadConfig(alpha=1.0))
    n_train: int = 20_000
    n_eval: int = 10_000
    budgets: tuple[float, ...] = (0.1, 0.4, 1.0)
    learners: tuple[str, ...] = ("t", "s", "x", "dr", "hurdle")
    min_offer_rows: int = 2
    propensity_floor: float = 0.01

    @classmethod
    def compact(cls) -> ConfoundedSuiteConfig:
        return cls(n_train=10_000, n_eval=3_000, budgets=(0.1, 1.0), learners=("t", "x", "dr"))

    def __post_init__(self) -> None:
        where = "ConfoundedSuiteConfig"
        for name, low in (("n_train", 1_000), ("n_eval", 500), ("min_offer_rows", 2)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                fail(f"{where}.{name}", f"must be an int >= {low}, got {v!r}"
                     + (" (the randomised log needs rows of every offer; the confounded one "
                        "treats only 40 % of them)" if name == "n_train" else ""),
                     f"e.g. experiment.params.{name}={max(low, getattr(type(self)(), name))}")
        if not self.budgets or min(self.budgets) <= 0:
            fail(f"{where}.budgets", f"need budgets per user > 0, got {self.budgets}",
                 "e.g. experiment.params.budgets=[0.1,1.0]")
        unknown = sorted(set(self.learners) - set(LEARNER_HEADS))
        if unknown or not self.learners:
            fail(f"{where}.learners", f"unknown {unknown}" if unknown else "empty",
                 f"choose from {list(LEARNER_HEADS)}")
        if not 0.0 < self.propensity_floor < 0.5:
            fail(f"{where}.propensity_floor", f"must lie in (0, 0.5), got "
                 f"{self.propensity_floor}", "e.g. 0.01")


def _head_config(name: str, head: HeadConfig, which: str) -> HeadConfig:
    """The compared learner ``name``'s config on the head's (``which``: ``"value"``/``"cost"``)."""
    changes = {k: v for k, v in LEARNER_HEADS[name].items() if k not in HEADS}
    changes.update(LEARNER_HEADS[name].get(which, {}))
    return dataclasses.replace(head, **changes)


def naive_contrasts(log: Any) -> list[dict[str, Any]]:
    """Per head and offer ``a`` with >= 2 logged rows: the difference in means ``mean(y | A = a) -
    mean(y | A = 0, a eligible)`` (``effect``), its standard error ``se`` (unpooled), ``bias`` =
    ``effect`` - the true ATT ``mean_{A = a} tau_a``; and the truth rows: ``effect`` (the ATT)
    and ``ate`` (``mean`` of ``tau_a`` over the log's users eligible for ``a``)."""
    action, elig = np.asarray(log.action), np.asarray(log.eligible)
    rows = []
    for head in HEADS:
        y = np.asarray(getattr(log, head))
        tau = np.asarray(getattr(log.truth, f"tau_{head}"))
        for a in range(1, elig.shape[1]):
            treated, control = action == a, (action == 0) & elig[:, a]
            if treated.sum() < 2 or control.sum() < 2:
                continue
            effect = y[treated].mean() - y[control].mean()
            se = np.sqrt(y[treated].var(ddof=1) / treated.sum()
                         + y[control].var(ddof=1) / control.sum())
            att, ate = tau[treated, a].mean(), tau[elig[:, a], a].mean()
            base = dict(head=head, offer=float(a), budget_per_user=np.nan)
            rows += [dict(base, estimator="naive", metric="effect", value=effect),
                     dict(base, estimator="naive", metric="se", value=se),
                     dict(base, estimator="naive", metric="bias", value=effect - att),
                     dict(base, estimator="naive", metric="bias_ate", value=effect - ate),
                     dict(base, estimator="truth", metric="effect", value=att),
                     dict(base, estimator="truth", metric="ate", value=ate)]
    return rows


def estimated_propensities(f: np.ndarray, action: np.ndarray, eligible: np.ndarray,
                           actions: np.ndarray, floor: float) -> np.ndarray:
    """What a practitioner without logged propensities feeds a DR learner: per action in
    ``actions`` an L2 logistic regression (alpha 1) of ``1{A = a}`` on the features ``f``; zero on
    ineligible and unlisted actions, floored at ``floor`` elsewhere, rows renormalised to 1."""
    score = np.zeros(eligible.shape)
    model = Logistic(alpha=1.0)
    for a in actions:
        params = model.fit(f, (action == a).astype(np.float64))
        score[:, a] = np.asarray(model.predict(params, f))
    allowed = eligible & np.isin(np.arange(eligible.shape[1]), actions)[None, :]
    score = np.where(allowed, np.maximum(score, floor), 0.0)
    return score / score.sum(axis=1, keepdims=True)


def _identified(log: Any, min_rows: int) -> np.ndarray:
    """``(K+1,)`` bool: the actions with at least ``min_rows`` logged rows."""
    counts = np.bincount(np.asarray(log.action), minlength=log.n_actions)
    ok = counts >= min_rows
    if not ok[0]:
        fail("ConfoundedSuiteConfig.n_train", f"the log holds {counts[0]} no-offer rows, fewer "
             f"than min_offer_rows={min_rows}", "raise n_train")
    return ok


def _restrict(log: Any, ok: np.ndarray) -> Any:
    """The log without the rows of the actions ``~ok`` (itself when it has none: same shapes,
    so the compiled fits are reused across seeds and logs)."""
    keep = ok[np.asarray(log.action)]
    return log if keep.all() else log.subset(keep)


def _cross_fit_support(log: Any, ok: np.ndarray, configs: list[HeadConfig]) -> np.ndarray:
    """``ok`` less the offers a cross-fitted head (``dr``, ``r``) cannot fit on the log restricted
    to ``ok``: those without a row outside some fold (the learners' own folds,
    ``fold_ids(n, n_folds, key(seed))``, which change with ``n``, hence the loop)."""
    ok = ok.copy()
    for config in (c for c in configs if c.learner in ("dr", "r")):
        while True:  # each pass drops >= 1 offer, so at most K passes
            action = np.asarray(_restrict(log, ok).action)
            folds = np.asarray(fold_ids(len(action), config.n_folds, jax.random.key(config.seed)))
            counts = np.zeros((config.n_folds, len(ok)), dtype=int)
            np.add.at(counts, (folds, action), 1)
            short = ok & ((counts.sum(axis=0)[None, :] - counts) < 1).any(axis=0)
            if not short.any():
                break
            if short[0] or not (ok & ~short)[1:].any():
                fail("ConfoundedSuiteConfig.n_train", f"{config.learner}'s cross-fitting folds "
                     "leave no-offer or every offer without training rows", "raise n_train")
            ok &= ~short
    return ok


def run(cfg: ConfoundedSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(logging, estimator, head, offer, budget_per_user, seed, metric, value)`` of
    one seed (module docstring); streams ``stream(seed, "train", <logging>)`` and
    ``stream(seed, "eval")``."""
    world = cfg.world
    params = default_params(world)
    ev = simulate(stream(seed, "eval"), params, world, cfg.n_eval, LoggingConfig(kind="uniform"))
    elig_eval = np.asarray(ev.eligible)
    oracle = {b: policy_truth(ev.truth, np.asarray(optimal_policy(
        ev.truth, b * ev.n, eligible=elig_eval).action_dist), eligible=elig_eval)
        for b in cfg.budgets}
    rows: list[dict[str, Any]] = []
    jobs = [(kind, name) for kind in LOGGINGS for name in (None, *cfg.learners)]
    logs: dict[str, tuple[Any, np.ndarray]] = {}
    for kind, name in tqdm(jobs, desc="confounded suite", disable=quiet_bar(progress),
                           leave=False):
        if name is not None:
            rows += _learner_rows(cfg, kind, name, *logs[kind], ev, oracle)
            continue
        # the log itself: its naive contrasts and the offers it identifies
        log = simulate(stream(seed, "train", kind), params, world, cfg.n_train,
                       LoggingConfig(kind=kind))
        ok = _identified(log, cfg.min_offer_rows)
        if log.action_prob is not None and not ok.all():
            fail("ConfoundedSuiteConfig.n_train", f"the randomised log holds fewer than "
                 f"min_offer_rows={cfg.min_offer_rows} rows of offers "
                 f"{np.flatnonzero(~ok).tolist()}", "raise n_train")
        logs[kind] = (log, ok)
        counts = np.bincount(np.asarray(log.action), minlength=log.n_actions)
        nan = np.nan
        rows += [dict(r, logging=kind) for r in naive_contrasts(log)]
        rows += [dict(logging=kind, estimator="log", head="log", offer=float(a),
                      budget_per_user=nan, metric="rows", value=float(counts[a]))
                 for a in range(log.n_actions)]
        rows += [dict(logging=kind, estimator="log", head="log", offer=float(a),
                      budget_per_user=nan, metric="identified", value=float(ok[a]))
                 for a in range(1, log.n_actions)]
    out = pd.DataFrame(rows)
    out["seed"] = seed
    return out


def _learner_rows(cfg: ConfoundedSuiteConfig, kind: str, name: str, full_log: Any,
                  ok: np.ndarray, ev: Any, oracle: dict[float, Any]) -> list[dict[str, Any]]:
    """Fit learner ``name`` (value and cost heads) on the offers ``ok`` of one log; its PEHE
    rows on the evaluation users ``ev`` and its policy rows at every budget."""
    configs = {head: _head_config(name, getattr(cfg.learner, head), head) for head in HEADS}
    ok = _cross_fit_support(full_log, ok, list(configs.values()))
    if full_log.action_prob is not None and not ok[np.asarray(full_log.action)].all():
        fail("ConfoundedSuiteConfig.n_train", f"{name} cannot cross-fit every offer of the "
             "randomised log", "raise n_train")
    log = _restrict(full_log, ok)
    f, f_eval = features(log.x, log.segment), features(ev.x, ev.segment)
    actions = np.flatnonzero(ok)
    action_prob = log.action_prob
    if action_prob is None and name in NEEDS_PROPENSITY:
        action_prob = estimated_propensities(f, np.asarray(log.action), np.asarray(log.eligible),
                                             actions, cfg.propensity_floor)
    k1 = log.n_actions
    taus, truth = {}, {}
    for head in HEADS:
        learner = make_learner(configs[head])
        learner.fit(f, log.action, getattr(log, head), action_prob, k1)
        tau = np.zeros((ev.n, k1))  # columns of unidentified offers are never read (elig)
        tau[:, actions] = np.asarray(learner.predict_tau(f_eval, actions=actions))
        taus[head], truth[head] = tau, np.asarray(getattr(ev.truth, f"tau_{head}"))
    elig = np.asarray(ev.eligible) & ok[None, :]  # no policy offers what its log did not identify
    base = dict(logging=kind, estimator=name)
    nan = np.nan
    rows = []
    for head in HEADS:
        rows.append(dict(base, head=head, offer=nan, budget_per_user=nan, metric="pehe",
                         value=pehe(taus[head], truth[head], elig)))
        rows.append(dict(base, head=head, offer=nan, budget_per_user=nan,
                         metric="offers_identified", value=float(ok[1:].sum())))
        for a in actions[1:]:
            only = elig & (np.arange(k1) == a)[None, :]
            if only[:, 1:].any():
                rows.append(dict(base, head=head, offer=float(a), budget_per_user=nan,
                                 metric="pehe", value=pehe(taus[head], truth[head], only)))
    for b in cfg.budgets:
        alloc = allocate(taus["value"], taus["cost"], budget=b * ev.n, eligible=elig)
        t = policy_truth(ev.truth, np.asarray(alloc.action_dist), eligible=ev.eligible)
        spend = t.incremental_cost / b  # true cost over the budget
        capped = t.incremental_value * min(1.0, 1.0 / spend) if spend > 0 else \
            t.incremental_value
        best = oracle[b].incremental_value
        metrics = {"regret": 1.0 - t.incremental_value / best,
                   "regret_on_budget": 1.0 - capped / best, "cost_ratio": spend}
        rows += [dict(base, head="policy", offer=nan, budget_per_user=b, metric=m,
                      value=float(v)) for m, v in metrics.items()]
    return rows


# ------------------------------------------------------------------------------ tables, figure


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error (sd / sqrt(seeds); NaN from one seed) and number of seeds per
    (logging, estimator, head, offer, budget_per_user, metric)."""
    g = df.groupby(["logging", *KEYS], dropna=False, sort=False)["value"]
    out = g.agg(mean="mean", sd="std", seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["seeds"])
    return out.drop(columns="sd")


def paired_difference(df: pd.DataFrame) -> pd.DataFrame:
    """Per (estimator, head, offer, budget_per_user, metric): the mean over seeds of the
    confounded-log value minus the uniform-log value of the same seed, its standard error over
    seeds and the number of seeds with both."""
    keys = list(KEYS)
    na = -1.0  # stands for "does not apply" (NaN) while pivoting; no offer or budget is -1
    filled = df.fillna({"offer": na, "budget_per_user": na})
    wide = filled.pivot_table(index=[*keys, "seed"], columns="logging", values="value",
                              aggfunc="first").dropna(subset=list(LOGGINGS))
    diff = (wide["confounded"] - wide["uniform"]).rename("diff").reset_index()
    g = diff.groupby(keys, sort=False)["diff"]
    out = g.agg(mean="mean", sd="std", seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["seeds"])
    out[["offer", "budget_per_user"]] = out[["offer", "budget_per_user"]].replace(na, np.nan)
    return out.drop(columns="sd")


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """The headline table: per learner (and ``naive`` per offer, value head) the confounded and
    uniform means ± s.e. over seeds and their paired difference (confounded - uniform, same
    seed), for the naive contrast's bias, each learner's value and cost PEHE and its policy's
    regret, regret when stopped at the budget, and cost / budget."""
    s = aggregate(df)
    stats = _lookup(s, ["logging", *KEYS])
    diff = _lookup(paired_difference(df), KEYS)
    head = s[((s.estimator == "naive") & (s.metric == "bias") & (s["head"] == "value"))
             | ((s.metric == "pehe") & s.offer.isna())
             | s.metric.isin(POLICY_METRICS)]
    rows = []
    for key in dict.fromkeys(_norm(k) for k in head[list(KEYS)].itertuples(index=False)):
        cell = dict(zip(KEYS, key, strict=True))
        for kind in LOGGINGS:
            cell[kind] = _pm(*stats[(kind, *key)]) if (kind, *key) in stats else "n/a"
        cell["confounded - uniform"] = _pm(*diff[key]) if key in diff else "n/a"
        rows.append(cell)
    return pd.DataFrame(rows)


def _norm(key: tuple) -> tuple:
    """A row key with NaN (a key that does not apply) as ``None``, so keys compare equal."""
    return tuple(None if isinstance(v, float) and np.isnan(v) else v for v in key)


def _lookup(stats: pd.DataFrame, keys: list[str]) -> dict[tuple, tuple[float, float]]:
    """``{key (NaN as None): (mean, se)}`` of an :func:`aggregate`-shaped table."""
    return {_norm(tuple(r[:-2])): (r[-2], r[-1])
            for r in stats[[*keys, "mean", "se"]].itertuples(index=False)}


def _pm(mean: float, se: float) -> str:
    """``mean ± se`` (the mean alone from one seed, whose s.e. is NaN)."""
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.4g} ± {se:.2g}" if np.isfinite(se) else f"{mean:.4g}"


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure, four panels (mean ± 1 s.e. over seeds; confounded hatched / dashed, uniform
    plain / solid): the naive contrast's bias per offer (value head), each learner's value-head
    PEHE, and, against the budget, its policy's regret when stopped at the budget and its true
    cost / budget."""
    plt = pyplot()
    s = aggregate(df)
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    ls = {"confounded": "--", "uniform": "-"}
    ax = axes[0]
    width = 0.38
    for i, kind in enumerate(LOGGINGS):
        d = s[(s.logging == kind) & (s.estimator == "naive") & (s.metric == "bias")
              & (s["head"] == "value")].sort_values("offer")
        ax.bar(d.offer + (i - 0.5) * width, d["mean"], width, yerr=d.se.fillna(0.0), capsize=3,
               label=f"naive contrast ({kind} log)", color=NAIVE_COLOUR[kind], edgecolor="k",
               lw=0.5, hatch="//" if kind == "confounded" else None)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(sorted(s[s.estimator == "naive"].offer.dropna().unique()))
    ax.set_xlabel("offer")
    ax.set_ylabel("difference in means - true effect on the treated")
    ax.set_title("naive contrast bias (value)")
    learners = [e for e in dict.fromkeys(s.estimator) if e in LEARNER_HEADS]
    ax = axes[1]
    for i, kind in enumerate(LOGGINGS):
        d = s[(s.logging == kind) & (s.metric == "pehe") & (s["head"] == "value")
              & s.offer.isna()].set_index("estimator").reindex(learners)
        x = np.arange(len(learners)) + (i - 0.5) * width
        for j, name in enumerate(learners):
            ax.bar(x[j], d.loc[name, "mean"], width, yerr=np.nan_to_num(d.loc[name, "se"]),
                   capsize=3, color=series_style(name)["color"], edgecolor="k", lw=0.5,
                   hatch="//" if kind == "confounded" else None)
    ax.set_xticks(np.arange(len(learners)), learners)
    ax.set_xlabel("learner (hatched: confounded log)")
    ax.set_ylabel("PEHE, value head")
    ax.set_title("value PEHE: confounded vs randomised")
    budgets = sorted(s.budget_per_user.dropna().unique())
    for ax, metric, title in ((axes[2], "regret_on_budget", "regret, stopped at the budget, %"),
                              (axes[3], "cost_ratio", "true cost / budget")):
        for name in learners:
            for kind in LOGGINGS:
                d = s[(s.logging == kind) & (s.estimator == name) & (s.metric == metric)
                      ].sort_values("budget_per_user")
                scale = 100.0 if metric == "regret_on_budget" else 1.0
                ax.errorbar(d.budget_per_user, scale * d["mean"],
                            yerr=scale * d.se.fillna(0.0), capsize=3, ls=ls[kind], ms=4,
                            label=f"{name} ({kind} log)", **series_style(name))
        if metric == "cost_ratio":
            ax.axhline(1.0, color=series_style("budget")["color"], lw=1, ls=":")
            log_axis(ax, "y")
        log_axis(ax, "x", budgets)
        ax.set_xlabel("budget per user")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes, fontsize=8)
    return [save(fig, out_dir, "confounded.png")]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table of means ± s.e. over seeds, and the figure."""
    out_dir = Path(out_dir)
    csv = out_dir / "confounded.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    stats = _lookup(aggregate(df), ["logging", *KEYS])
    n_seeds = df.seed.nunique()

    def cell(kind: str, est: str, head: str, metric: str, offer: float | None = None,
             b: float | None = None, scale: float = 1.0) -> str:
        hit = stats.get((kind, est, head, offer, b, metric))
        return "n/a" if hit is None else _pm(scale * hit[0], scale * hit[1])

    offers = sorted(df[df.estimator == "log"].offer.dropna().unique())
    lines = [f"Confounded history vs a randomised log of the same size (mean ± s.e. over "
             f"{n_seeds} seeds; conf. = the confounded rule, unif. = the uniform randomised "
             "log). Naive contrast: difference in means, offer a vs no offer among the users "
             "eligible for a; ATT: the true mean effect of a on the users the log gave a; ATE: "
             "its true mean effect on all the log's users eligible for it; bias = contrast - "
             "ATT (selection bias), bias vs ATE = contrast - ATE.", ""]
    for head in HEADS:
        lines += [f"### naive contrasts, {head}", "",
                  "| offer | log | rows | contrast | ATT | ATE | bias | bias vs ATE |",
                  "|---|---|---|---|---|---|---|---|"]
        for a in offers[1:]:
            for kind in LOGGINGS:
                cells = [cell(kind, "log", "log", "rows", a),
                         cell(kind, "naive", head, "effect", a),
                         cell(kind, "truth", head, "effect", a),
                         cell(kind, "truth", head, "ate", a),
                         cell(kind, "naive", head, "bias", a),
                         cell(kind, "naive", head, "bias_ate", a)]
                lines.append(f"| {a:g} | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    learners = [e for e in dict.fromkeys(df.estimator) if e in LEARNER_HEADS]
    lines += ["### learners: PEHE on the evaluation users", "",
              "| learner | propensities (conf. / unif.) | offers identified (conf.) | "
              "value PEHE (conf.) | value PEHE (unif.) | cost PEHE (conf.) | cost PEHE (unif.) |",
              "|---|---|---|---|---|---|---|"]
    for name in learners:
        props = "estimated / logged" if name in NEEDS_PROPENSITY else "none / none (not needed)"
        lines.append(f"| {name} | {props} | "
                     f"{cell('confounded', name, 'value', 'offers_identified')} | "
                     + " | ".join(cell(kind, name, head, "pehe") for head in HEADS
                                  for kind in LOGGINGS) + " |")
    lines.append("")
    budgets = sorted(df.budget_per_user.dropna().unique())
    lines += ["### learners: the budgeted policy, scored by truth", "",
              "regret: % of the oracle's incremental value at the budget lost; on budget: the "
              "same policy stopped when its true spend reaches the budget (an overspending "
              "policy's regret is bought with money it was not given); cost / budget: true "
              "incremental cost over the budget (above 1 overspends).", "",
              "| learner | budget | regret (conf.) | regret (unif.) | on budget (conf.) | "
              "on budget (unif.) | cost / budget (conf.) | cost / budget (unif.) |",
              "|---|---|---|---|---|---|---|---|"]
    for name in learners:
        for b in budgets:
            cells = [cell(kind, name, "policy", m, b=b, scale=1.0 if m == "cost_ratio" else 100.0)
                     for m in POLICY_METRICS for kind in LOGGINGS]
            lines.append(f"| {name} | {b:g} | " + " | ".join(cells) + " |")
    lines.append("")
    md = out_dir / "confounded.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="confounded", config_class=ConfoundedSuiteConfig, run=run, plot=plot,
              write=write_results, summary=summary,
              key_columns=("logging", "estimator", "head", "offer", "budget_per_user"),
              result_seeds=(0, 1, 2, 3, 4))
