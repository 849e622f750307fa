"""Peeking: valid online inference for an incentive A/B test that is looked at every day.

An analyst runs a 50/50 experiment on ``n_users`` users of the world and looks at the running
difference in mean purchase value after each of ``n_looks`` equal batches ("days"), stopping at the
first look whose interval excludes zero. Per job seed, ``n_null_seeds`` replicate experiments are
simulated (``vmap``-ed in chunks) in two scenarios:

- ``null`` (A/A): every user gets no offer and the two arms are labels, so the true difference is
  exactly 0 and every rejection is a false positive;
- ``alternative``: offer ``effect_offer`` against no offer; the true effect is the mean of the
  world's exact ``tau_value(x, effect_offer)`` over all simulated users (eligibility is a targeting
  constraint of the allocation problem, not part of the outcome model, so every user can be
  randomised).

Methods (:mod:`estimators.sequential`, on the Horvitz-Thompson terms ``phi_i = Y_i (1{t}/0.5 -
1{c}/0.5)``): ``naive_z`` (the fixed-sample z interval looked at every day), ``confidence_sequence``
(the asymptotic confidence sequence of Waudby-Smith et al. 2021, tightest at the last look),
``group_sequential`` (Lan-DeMets O'Brien-Fleming spending over the ``n_looks`` planned looks), and
``confidence_sequence_cuped``: the confidence sequence on CUPED-adjusted terms ``phi - theta psi``,
``psi_i`` the user's pre-period no-offer value through the same transform (mean 0 by
randomisation), ``theta`` estimated on the first look's users only (what is known at the first
look). Rows (key columns ``scenario``, ``method``, ``look``; ``stderr`` the Monte Carlo standard
error over the replicates): ``false_positive_rate`` (null) and ``power`` (alternative: rejected
with the right sign) by look ``k`` = rejected at one of the first ``k`` looks; at the last look
``wrong_sign_rate``, ``mean_stopping_look`` (among rejections), ``expected_looks`` (non-rejections
count as ``n_looks``), ``time_uniform_miscoverage`` (the interval missed the true effect at some
look), CUPED's ``variance_ratio`` and ``corr_phi_psi`` (method ``cuped``), and ``true_effect``
(method ``truth``).

Streams: replicate ``r`` of job ``seed`` uses ``fold_in(stream(seed, "replicates"), r)`` (its
users, pre-period values, arms and both scenarios' outcomes), so a replicate does not depend on
``n_null_seeds`` or on the chunking.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators import sequential as sq
from estimators.precision import float64
from experiments.configs import WorldConfig
from experiments.suites._plotting import figure_legend, pyplot, save, series_style
from experiments.suites.base import Suite, quiet_bar, stream
from simulators import default_params, expected_outcomes, sample_outcomes, sample_users

__all__ = ["SUITE", "PeekingSuiteConfig", "plot", "run", "summary"]

METHODS = ("naive_z", "confidence_sequence", "group_sequential", "confidence_sequence_cuped")
_CHUNK_USERS = 500_000  # users simulated per vmap-ed call (memory), not part of the config


@dataclasses.dataclass(frozen=True)
class PeekingSuiteConfig:
    world: WorldConfig = WorldConfig()
    n_users: int = 20_000  # users per experiment at the last look
    n_looks: int = 30  # equally spaced looks ("days")
    n_null_seeds: int = 500  # Monte Carlo replicate experiments per job seed and scenario
    alpha: float = 0.05
    effect_offer: int = 1  # the alternative: this offer vs no offer

    def __post_init__(self) -> None:
        for name in ("n_users", "n_looks", "n_null_seeds", "effect_offer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PeekingSuiteConfig.{name}: expected a positive int, got "
                                 f"{value!r}. Fix: e.g. {getattr(type(self)(), name)}.")
        if self.n_users // self.n_looks < 2:
            raise ValueError(f"PeekingSuiteConfig.n_looks: {self.n_looks} looks leave fewer than "
                             f"2 of the {self.n_users} users per look. Fix: fewer looks or more "
                             "users.")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"PeekingSuiteConfig.alpha: must lie in (0, 1), got {self.alpha}. "
                             "Fix: e.g. 0.05.")
        if self.effect_offer > self.world.n_offers:
            raise ValueError(f"PeekingSuiteConfig.effect_offer: {self.effect_offer} is not an "
                             f"offer of this world (1..{self.world.n_offers}). Fix: pick one.")

    @classmethod
    def compact(cls) -> PeekingSuiteConfig:
        return cls(n_users=8_000, n_null_seeds=200)

    @property
    def looks(self) -> np.ndarray:
        """Cumulative users at each look: ``n_users * k / n_looks`` (rounded down)."""
        return (np.arange(1, self.n_looks + 1) * self.n_users) // self.n_looks


@functools.partial(jax.jit, static_argnames=("config", "n", "offer"))
def _experiments(keys, params, config, n: int, offer: int):
    """Per key: the arm (True = treatment), pre-period value, the A/A and the A/B outcomes and
    the users' mean exact effect of ``offer``."""

    def one(key):
        k_users, k_pre, k_null, k_alt, k_arm = jax.random.split(key, 5)
        users = sample_users(k_users, params, config, n, 0)
        none = jnp.zeros(n, jnp.int32)
        arm = jax.random.bernoulli(k_arm, 0.5, (n,))
        pre = sample_outcomes(k_pre, params, users, none)[0]
        null = sample_outcomes(k_null, params, users, none)[0]
        alt = sample_outcomes(k_alt, params, users, arm.astype(jnp.int32) * offer)[0]
        mu = expected_outcomes(params, users)[0]
        return arm, pre, null, alt, jnp.mean(mu[:, offer] - mu[:, 0])

    return jax.vmap(one)(keys)


@float64
def _simulate_chunk(base: jax.Array, index: np.ndarray, params, cfg: PeekingSuiteConfig):
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(index, jnp.uint32))
    out = _experiments(keys, params, cfg.world, cfg.n_users, cfg.effect_offer)
    return [np.asarray(o) for o in out]


def _cuped_first_look(phi: np.ndarray, psi: np.ndarray, first: int) -> np.ndarray:
    """``phi - theta psi`` per replicate, ``theta`` from the first look's users (known mean 0)."""
    theta = np.array([sq.cuped(p[:first], q[:first], covariate_mean=0.0).theta
                      for p, q in zip(phi, psi, strict=True)])
    return phi - theta[:, None] * psi


def _methods(phi: np.ndarray, phi_cuped: np.ndarray, looks: np.ndarray, alpha: float,
             null: float = 0.0) -> dict[str, sq.SequentialResult]:
    return {
        "naive_z": sq.naive_z_looks_batch(phi, looks=looks, alpha=alpha, null=null),
        "confidence_sequence": sq.confidence_sequence_batch(phi, looks=looks, alpha=alpha,
                                                            null=null),
        "group_sequential": sq.group_sequential_batch(phi, looks=looks, alpha=alpha, null=null),
        "confidence_sequence_cuped": sq.confidence_sequence_batch(phi_cuped, looks=looks,
                                                                  alpha=alpha, null=null),
    }


def run(cfg: PeekingSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """One job seed: ``n_null_seeds`` replicate experiments per scenario, their rows."""
    params = default_params(cfg.world)
    looks = cfg.looks
    base = stream(seed, "replicates")
    chunk = max(1, _CHUNK_USERS // cfg.n_users)
    n_chunks = math.ceil(cfg.n_null_seeds / chunk)
    stops: dict[tuple[str, str], list[np.ndarray]] = {}  # (scenario, method) -> reject_at
    signs: dict[tuple[str, str], list[np.ndarray]] = {}
    misses: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    cuped_ratio, corr, effects, alt_phi, alt_cuped = [], [], [], [], []
    for c in tqdm(range(n_chunks), desc="peeking", disable=quiet_bar(progress), leave=False):
        index = np.arange(c * chunk, (c + 1) * chunk)  # padded to one shape: one compilation
        keep = index < cfg.n_null_seeds
        arm, pre, null, alt, effect = (a[keep] for a in _simulate_chunk(base, index, params, cfg))
        w = np.where(arm, 2.0, -2.0)  # 1{t}/0.5 - 1{c}/0.5
        psi = pre * w
        for scenario, y in (("null", null), ("alternative", alt)):
            phi = y * w
            phi_cuped = _cuped_first_look(phi, psi, int(looks[0]))
            for method, res in _methods(phi, phi_cuped, looks, cfg.alpha).items():
                stops.setdefault((scenario, method), []).append(res.reject_at)
                signs.setdefault((scenario, method), []).append(res.sign)
            for p, q in zip(phi, psi, strict=True):
                cuped_ratio.append((scenario, sq.cuped(p, q, covariate_mean=0.0).variance_ratio))
                corr.append((scenario, float(np.corrcoef(p, q)[0, 1])))
            if scenario == "alternative":
                alt_phi.append(phi)
                alt_cuped.append(phi_cuped)
        effects.append(effect)
    true_effect = float(np.concatenate(effects).mean())
    # time-uniform miscoverage of the true effect (the alternative's; 0 under the null)
    for phi, phi_cuped in zip(alt_phi, alt_cuped, strict=True):
        for method, res in _methods(phi, phi_cuped, looks, cfg.alpha, null=true_effect).items():
            misses[method].append(res.reject_at >= 0)
    r = cfg.n_null_seeds
    rows: list[dict] = []

    def add(scenario: str, method: str, look: int, metric: str, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else np.nan
        rows.append(dict(seed=seed, scenario=scenario, method=method, look=look, metric=metric,
                         value=float(values.mean()) if values.size else np.nan, stderr=se,
                         n_replicates=int(values.size), alpha=cfg.alpha))

    last = cfg.n_looks
    for (scenario, method), parts in stops.items():
        stop = np.concatenate(parts)
        sign = np.concatenate(signs[(scenario, method)])
        right = sign == (1 if true_effect > 0 else -1) if scenario == "alternative" else sign != 0
        metric = "false_positive_rate" if scenario == "null" else "power"
        for k in range(1, last + 1):
            add(scenario, method, k, metric, right & (stop >= 0) & (stop < k))
        if scenario == "alternative":
            add(scenario, method, last, "wrong_sign_rate", (sign != 0) & ~right)
            add(scenario, method, last, "mean_stopping_look", stop[right] + 1)
            add(scenario, method, last, "expected_looks", np.where(right, stop + 1, last))
            add(scenario, method, last, "time_uniform_miscoverage",
                np.concatenate(misses[method]))
    for scenario in ("null", "alternative"):
        add(scenario, "cuped", last, "variance_ratio",
            np.array([v for s, v in cuped_ratio if s == scenario]))
        add(scenario, "cuped", last, "corr_phi_psi",
            np.array([v for s, v in corr if s == scenario]))
    rows.append(dict(seed=seed, scenario="alternative", method="truth", look=last,
                     metric="true_effect", value=true_effect, stderr=0.0, n_replicates=r,
                     alpha=cfg.alpha))
    return pd.DataFrame(rows)


def _mean_se(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over job seeds of each row's value, and the standard error of that mean from the
    rows' Monte Carlo standard errors (independent seeds)."""
    g = df.groupby(keys, sort=False)
    return g.agg(value=("value", "mean"), se=("stderr", lambda s: float(
        np.sqrt(np.nansum(np.square(s))) / len(s)))).reset_index()


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``peeking.png``: false-positive rate against the number of looks (with the ``alpha``
    line) and power against the look, one line per method."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (scenario, metric, title) in zip(axes, (
            ("null", "false_positive_rate", "A/A: P(reject by look k)"),
            ("alternative", "power", "A/B: P(right-signed rejection by look k)")), strict=True):
        part = df[(df["scenario"] == scenario) & (df["metric"] == metric)]
        for method, g in _mean_se(part, ["method", "look"]).groupby("method", sort=False):
            g = g.sort_values("look")
            ax.errorbar(g["look"], g["value"], yerr=g["se"].fillna(0.0), ms=3, capsize=2,
                        label=method, **series_style(method))
        ax.set_xlabel("number of looks k")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if scenario == "null":
            alpha = float(df["alpha"].iloc[0]) if "alpha" in df and len(df) else None
            if alpha is not None:
                ax.axhline(alpha, color="k", lw=0.8, ls="--", label=f"alpha = {alpha:g}")
            ax.set_ylabel("false-positive rate")
        else:
            ax.set_ylabel("power")
    figure_legend(fig, axes, fontsize=8)
    return [save(fig, out_dir, "peeking.png")]


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method: false-positive rate at the first look and over all looks (null),
    power, wrong signs, mean stopping look and time-uniform miscoverage (alternative); then one
    ``cuped`` row with the variance ratio of the adjusted terms. Means over job seeds."""
    last = int(rows["look"].max())

    def at(m: pd.DataFrame, metric: str, look: int, scenario: str | None = None) -> float:
        sel = (m["metric"] == metric) & (m["look"] == look)
        if scenario is not None:
            sel &= m["scenario"] == scenario
        v = m[sel]["value"]
        return float(v.mean()) if len(v) else np.nan

    out = []
    for method in METHODS:
        m = rows[rows["method"] == method]
        out.append(dict(method=method, fpr_first_look=at(m, "false_positive_rate", 1),
                        fpr_all_looks=at(m, "false_positive_rate", last),
                        power=at(m, "power", last), wrong_sign=at(m, "wrong_sign_rate", last),
                        mean_stopping_look=at(m, "mean_stopping_look", last),
                        miscoverage=at(m, "time_uniform_miscoverage", last)))
    cuped = rows[rows["method"] == "cuped"]
    out.append(dict(method="cuped", variance_ratio=at(cuped, "variance_ratio", last, "null")))
    return pd.DataFrame(out)


SUITE = Suite(name="peeking", config_class=PeekingSuiteConfig, run=run, plot=plot,
              summary=summary, key_columns=("scenario", "method", "look"))
