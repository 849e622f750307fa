"""Portfolio effects as structure: our program's lift read from its own holdout while the other
programs run one portfolio state (``A``) and deployed while they run another (``B``), against the
exact truth of each state (:mod:`simulators.portfolio`).

States. ``A``: the other programs reach ``reach_a`` of the users at random (untargeted). ``B``:
program ``changed`` raises its reach to about ``reach_b`` and targets on our uplift's drivers:
``logit pi = logit(reach_b) - targeting * u + targeting * het_coef / |het_coef| . x`` (``u`` the
latent type score; lower ``u`` means sure things and persuadables, ``het_coef`` the world's effect
heterogeneity), so it reaches most where our offer works best, and damps it there
(``sub_additivity``).

Sections (column ``section``; ``design`` and ``level`` are the other keys):

* ``default``: per design (:data:`simulators.portfolio.DESIGNS`) the holdout estimate of offer
  ``offer``'s value and cost lift per eligible user on ``n_train`` users, its standard error, the
  true lift under ``B`` on the same users, ``bias`` (estimate minus truth under ``B``),
  ``relative_bias`` (bias / estimate, the Holtz et al. measure) and ``experiment_cost`` (true
  portfolio value forgone per experiment user against running the experiment in state ``A``);
  rows with ``design`` = ``exact_*`` are the population bias (no sampling).
* ``allocation``: the budgeted allocator (``policy.budget_per_user``) on per-user effects read
  under ``A`` with the other programs hidden (``holdout_a``: the limit of any x-only learner on a
  randomised log under ``A``), on the standalone effects (``partitioned``: others off) and on the
  truth under ``B`` (``oracle_b``), all scored by the truth under ``B`` on ``n_eval`` users:
  ``true_incremental_value``, ``true_incremental_cost``, ``regret``.
* ``learned``: the same allocation on learned heads (``learner``) fitted on a randomised log
  (``logging``, ``n_learn`` users) per design: ``independent`` (log under ``A``, features ``x``),
  ``partitioned`` (log with the others off, ``x``), ``conditional`` (log under ``A``, features
  ``[x, o]``: the competing-treatment features, predictions mixed over ``P_B(o | x)``) and
  ``factorial`` (log with every program ``Bernoulli(1/2)``, ``[x, o]``, mixed the same way);
  ``true_incremental_value``, ``true_incremental_cost`` and ``regret`` against ``oracle_b``
  (skipped when ``n_learn = 0``, as in the compact preset, which must run in < 30 s).
* ``coordinated``: the programs allocated jointly under a shared budget against independent
  per-program allocations (:func:`simulators.portfolio.coordinated_allocation`, state ``A``, exact
  effects, ``program_cost`` per treated user, our budget ``policy.budget_per_user`` and
  ``program_budget`` per program): ``independent``, ``joint_shared`` (the summed budget) and
  ``joint_matched`` (at the independent policy's true cost), each ``true_incremental_value`` and
  ``true_incremental_cost`` per user against nobody treating, and ``gain_over_independent``.
* ``control``: independent programs and ``A = B``: the holdout's bias must vanish within its s.e.
* ``sweep_reach`` / ``sweep_sub_additivity``: exact population relative bias and allocation regret
  as ``B``'s reach intercept (``level``: ``reach_b``; ``overlap``: the changed program's realised
  reach, i.e. the share of our audience it also treats) or the world's ``sub_additivity`` (all
  programs) varies.

Run ``python -m experiments.run experiment=experiments.suites.portfolio``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.heads import make_learner
from estimators.precision import float64
from experiments.configs import HeadsConfig, LoggingConfig, PolicyConfig, WorldConfig
from experiments.suites._plotting import figure_legend, pyplot, save, series_style
from experiments.suites.base import Suite, mean_se, quiet_bar, stream
from policies.allocation import allocate
from simulators import default_params, policy_truth
from simulators import portfolio as pf
from simulators.world import sample_users as _world_users

__all__ = ["SUITE", "PortfolioSuiteConfig", "plot", "run", "states", "summary"]


@dataclasses.dataclass(frozen=True)
class PortfolioSuiteConfig:
    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    policy: PolicyConfig = PolicyConfig()
    offer: int = 2  # the offer our holdout tests against no-offer
    reach_a: tuple[float, ...] = (0.2, 0.1)  # state A: untargeted reach per other program
    changed: int = -1  # the program that changes between A and B (an index; -1: the last)
    reach_b: float = 0.7  # its reach intercept under B (as a probability)
    targeting: float = 1.5  # its targeting strength under B
    sweep_reach: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    sweep_sub_additivity: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    program_cost: tuple[float, ...] = (0.5, 0.5)  # per treated user, per other program
    program_budget: tuple[float, ...] = (0.1, 0.1)  # per user, per other program (independent)
    n_train: int = 200_000
    n_eval: int = 100_000
    n_learn: int = 100_000  # the learned section's training log (0: skip the section)

    def __post_init__(self) -> None:
        name = "PortfolioSuiteConfig"
        p = self.world.n_programs
        if p < 1:
            raise ValueError(f"{name}: the portfolio suite needs other programs, got "
                             "world.n_programs=0. Fix: world.n_programs >= 1.")
        if not self.reach_a or not all(0 < r < 1 for r in self.reach_a):
            raise ValueError(f"{name}.reach_a: reaches in (0, 1), got {self.reach_a}.")
        if not -p <= self.changed < p:
            raise ValueError(f"{name}.changed: a program index in [-{p}, {p}) (negative from the "
                             f"end), got {self.changed}.")
        if not all(0 < r < 1 for r in (self.reach_b, *self.sweep_reach)):
            raise ValueError(f"{name}.reach_b/sweep_reach: reaches must lie in (0, 1).")
        if not all(0 <= s <= 1 for s in self.sweep_sub_additivity):
            raise ValueError(f"{name}.sweep_sub_additivity: values must lie in [0, 1].")
        if not 1 <= self.offer <= self.world.n_offers:
            raise ValueError(f"{name}.offer: in [1, {self.world.n_offers}], got {self.offer}.")
        for field in ("program_cost", "program_budget"):
            v = getattr(self, field)
            if not v or not all(c >= 0 for c in v):
                raise ValueError(f"{name}.{field}: values >= 0, got {v}.")
        if self.n_train < 100 or self.n_eval < 100 or not (self.n_learn == 0
                                                           or self.n_learn >= 100):
            raise ValueError(f"{name}.n_train/n_eval/n_learn: at least 100 users (n_learn: or "
                             "0).")

    def per_program(self, field: str) -> tuple[float, ...]:
        """``field`` (``reach_a``, ``program_cost``, ``program_budget``) for each of the
        world's ``n_programs`` programs: its first values, the last one repeated for programs
        beyond its length (so a ``world.n_programs`` sweep needs no other change)."""
        v = getattr(self, field)
        p = self.world.n_programs
        return tuple(v[:p]) + (v[-1],) * max(0, p - len(v))

    @property
    def changed_program(self) -> int:
        """The index (>= 0) of the program that changes between A and B."""
        return self.changed % self.world.n_programs

    @classmethod
    def compact(cls) -> PortfolioSuiteConfig:
        return cls(sweep_reach=(0.1, 0.5, 0.9), sweep_sub_additivity=(0.0, 0.4, 0.8),
                   n_train=60_000, n_eval=30_000, n_learn=0)  # no learned section


_jit_users = jax.jit(_world_users, static_argnums=(2, 3))


@float64
def sample_users(key, params, world: WorldConfig, n: int):
    """:func:`simulators.world.sample_users` at period 0, compiled as one call."""
    return _jit_users(key, params, world, n)


def _split(arrays, n: int):
    """A NamedTuple of arrays cut into its first ``n`` rows and the rest."""
    return type(arrays)(*(a[:n] for a in arrays)), type(arrays)(*(a[n:] for a in arrays))


def states(cfg: PortfolioSuiteConfig, params, reach_b: float | None = None
           ) -> tuple[pf.PortfolioState, pf.PortfolioState]:
    """The suite's states ``(A, B)`` (see the module docstring)."""
    a = pf.PortfolioState.untargeted(cfg.per_program("reach_a"))
    reach_b = cfg.reach_b if reach_b is None else reach_b
    het = np.asarray(params.het_coef, dtype=np.float64)
    feat = np.zeros((cfg.world.n_programs, het.shape[0]))
    score = np.zeros(cfg.world.n_programs)
    intercept = np.asarray(a.intercept)
    intercept[cfg.changed_program] = math.log(reach_b / (1 - reach_b))
    if np.linalg.norm(het) > 0:
        feat[cfg.changed_program] = cfg.targeting * het / np.linalg.norm(het)
    score[cfg.changed_program] = -cfg.targeting
    b = pf.PortfolioState(intercept=tuple(intercept), score_coef=tuple(score),
                          feature_coef=tuple(map(tuple, feat)))
    return a, b


def _tau(truth) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(truth.tau_value), np.asarray(truth.tau_cost)


def _allocation_rows(params, users, joint, state_a, state_b, budget):
    """Policies allocated on effects read under A (others hidden), standalone (others off) and
    the truth under B, all scored by the truth under B."""
    truth_b = pf.portfolio_truth(params, state_b, users, joint)
    standalone = type(truth_b)(joint.mu_value[:, 0], joint.mu_cost[:, 0],
                               joint.mu_value_accounting[:, 0], truth_b.response_type)
    effects = {"oracle_b": _tau(truth_b),
               "holdout_a": _tau(pf.portfolio_truth(params, state_a, users, joint)),
               "partitioned": _tau(standalone)}
    out = {}
    n = users.x.shape[0]
    elig = np.asarray(users.eligible)
    for name, (tv, tc) in effects.items():
        alloc = allocate(tv, tc, budget=budget * n, eligible=elig)
        t = policy_truth(truth_b, np.asarray(alloc.action_dist), eligible=elig)
        out[name] = (t.incremental_value, t.incremental_cost)
    best = out["oracle_b"][0]
    return {k: dict(true_incremental_value=v, true_incremental_cost=c, regret=best - v)
            for k, (v, c) in out.items()}


LEARNED = {  # design -> (the log's portfolio state, competing-treatment features)
    "independent": ("a", False), "partitioned": ("off", False), "conditional": ("a", True),
    "factorial": ("factorial", True)}


def _learned_rows(cfg, params, seed, evaluation, joint_eval, state_a, state_b):
    """Heads fitted per design (see the module docstring), allocated on the evaluation users and
    scored by the truth under B."""
    n_prog = cfg.world.n_programs
    log_states = {"a": state_a, "off": pf.PortfolioState(intercept=(-60.0,) * n_prog),
                  "factorial": pf.PortfolioState(intercept=(0.0,) * n_prog)}
    truth_b = pf.portfolio_truth(params, state_b, evaluation, joint_eval)
    elig = np.asarray(evaluation.eligible)
    n = elig.shape[0]
    w_b = np.asarray(pf.assignment_probabilities(params, state_b, evaluation))
    x_eval = np.asarray(evaluation.x)
    cells = pf.assignments(n_prog)

    def scored(tv, tc):
        alloc = allocate(tv, tc, budget=cfg.policy.budget_per_user * n, eligible=elig)
        t = policy_truth(truth_b, np.asarray(alloc.action_dist), eligible=elig)
        return t.incremental_value, t.incremental_cost

    best = scored(*_tau(truth_b))[0]
    logs = {}
    out = {}
    for design, (log_state, competing) in LEARNED.items():
        if log_state not in logs:
            logs[log_state] = pf.simulate_under_state(
                stream(seed, "learn", log_state), params, cfg.world, cfg.n_learn, cfg.logging,
                log_states[log_state])[0]
        log = logs[log_state]
        x = np.asarray(log.x)
        feats = np.hstack([x, np.asarray(log.other_actions)]) if competing else x
        taus = []
        for head, label in ((cfg.learner.value, log.value), (cfg.learner.cost, log.cost)):
            learner = make_learner(head)
            learner.fit(feats, log.action, np.asarray(label), action_prob=log.action_prob,
                        n_actions=log.n_actions)
            if not competing:
                taus.append(np.asarray(learner.predict_tau(x_eval)))
                continue
            taus.append(sum(w_b[:, j:j + 1] * np.asarray(learner.predict_tau(
                np.hstack([x_eval, np.broadcast_to(cells[j], (n, n_prog))])))
                for j in range(cells.shape[0])))
        v, c = scored(*taus)
        out[design] = dict(true_incremental_value=v, true_incremental_cost=c, regret=best - v)
    return out


def _design_cost(params, users, joint, state_a, design, offer, share=0.5) -> float:
    """True portfolio value forgone per experiment user by running ``design`` instead of the
    experiment with the programs in state A (exact, given the randomisation probabilities)."""
    n_j = joint.mu_value.shape[1]
    w_a = np.asarray(pf.assignment_probabilities(params, state_a, users))
    if design == "partitioned":
        w_d = np.zeros_like(w_a)
        w_d[:, 0] = 1.0
    elif design == "factorial":
        w_d = np.full_like(w_a, 1.0 / n_j)
    else:
        return 0.0
    mv = np.asarray(joint.mu_value)
    e = np.asarray(users.eligible[:, offer]).astype(np.float64)
    diff = np.einsum("nj,nja->na", w_a - w_d, mv[:, :, [0, offer]])
    return float(np.mean((1 - share * e) * diff[:, 0] + share * e * diff[:, 1]))


def _exact_bias(params, users, joint, state_a, state_b, offer):
    la = pf.true_lift(pf.portfolio_truth(params, state_a, users, joint), users, offer)
    lb = pf.true_lift(pf.portfolio_truth(params, state_b, users, joint), users, offer)
    return la, lb


def run(cfg: PortfolioSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams ``stream(seed, "users")`` (``n_train`` experiment users, then ``n_eval``
    allocation users, drawn as one batch) and ``stream(seed, "design", d)`` (each design's
    randomisation); the same users in every design and sweep level (common random numbers)."""
    world = cfg.world
    params = default_params(world)
    state_a, state_b = states(cfg, params)
    budget = cfg.policy.budget_per_user
    everyone = sample_users(stream(seed, "users"), params, world, cfg.n_train + cfg.n_eval)
    joint_all = pf.joint_outcomes(params, everyone)
    train, evaluation = _split(everyone, cfg.n_train)
    joint_train, joint_eval = _split(joint_all, cfg.n_train)
    rows: list[dict] = []

    def add(section, design, level, **metrics):
        rows.extend(dict(seed=seed, section=section, design=design, level=float(level), metric=m,
                         value=float(v)) for m, v in metrics.items())

    def lift_rows(section, design, est, true_b):
        for label, e, se, t in (("value", est.value, est.value_se, true_b[0]),
                                ("cost", est.cost, est.cost_se, true_b[1])):
            add(section, design, 0.0, **{f"lift_{label}": e, f"lift_{label}_se": se,
                                         f"true_lift_{label}_b": t, f"bias_{label}": e - t,
                                         f"bias_{label}_se": se,
                                         f"relative_bias_{label}": (e - t) / e})

    truth_b = pf.portfolio_truth(params, state_b, train, joint_train)
    true_b = pf.true_lift(truth_b, train, cfg.offer)
    bar = tqdm(total=len(pf.DESIGNS) + 3, desc="portfolio", disable=quiet_bar(progress),
               leave=False)
    for d in pf.DESIGNS:
        est = pf.design_lift(stream(seed, "design", d), params, d, train, cfg.offer,
                             state_a=state_a, state_b=state_b)
        lift_rows("default", d, est, true_b)
        add("default", d, 0.0, experiment_cost=_design_cost(params, train, joint_train, state_a,
                                                            d, cfg.offer),
            experiment_users=est.n)
        bar.update()
    la, lb = _exact_bias(params, train, joint_train, state_a, state_b, cfg.offer)
    for i, label in enumerate(("value", "cost")):
        add("default", "exact_independent", 0.0, **{f"bias_{label}": la[i] - lb[i],
                                                     f"relative_bias_{label}":
                                                     (la[i] - lb[i]) / la[i]})
    share_b = np.asarray(pf.program_propensity(params, state_b, train)).mean(0)
    add("default", "state_b", 0.0, **{f"reach_program_{p}": r for p, r in enumerate(share_b)})

    # control: independent (untargeted) programs, the same state in training and deployment
    est = pf.holdout_lift(stream(seed, "design", "control"), params, state_a, train, cfg.offer)
    lift_rows("control", "independent", est,
              pf.true_lift(pf.portfolio_truth(params, state_a, train, joint_train), train,
                           cfg.offer))
    bar.update()

    for policy, metrics in _allocation_rows(params, evaluation, joint_eval, state_a, state_b,
                                            budget).items():
        add("allocation", policy, 0.0, **metrics)
    if cfg.n_learn:
        for design, metrics in _learned_rows(cfg, params, seed, evaluation, joint_eval, state_a,
                                             state_b).items():
            add("learned", design, 0.0, **metrics)
    coord = pf.coordinated_allocation(params, state_a, evaluation, joint_eval, budget_ours=budget,
                                      budget_programs=cfg.per_program("program_budget"),
                                      program_cost=cfg.per_program("program_cost"))
    for policy, c in coord.items():
        add("coordinated", policy, 0.0, true_incremental_value=c.value,
            true_incremental_cost=c.cost,
            gain_over_independent=c.value - coord["independent"].value)
    bar.update()

    for reach in cfg.sweep_reach:
        a, b = states(cfg, params, reach_b=reach)
        la, lb = _exact_bias(params, train, joint_train, a, b, cfg.offer)
        reach_b = np.asarray(pf.program_propensity(params, b, train))
        overlap = float(reach_b[:, cfg.changed_program].mean())
        regret = _allocation_rows(params, evaluation, joint_eval, a, b, budget)
        add("sweep_reach", "exact_independent", reach, overlap=overlap,
            relative_bias_value=(la[0] - lb[0]) / la[0],
            relative_bias_cost=(la[1] - lb[1]) / la[1], bias_value=la[0] - lb[0],
            regret=regret["holdout_a"]["regret"])
    for sub in cfg.sweep_sub_additivity:
        p_s = params._replace(sub_additivity=np.full(world.n_programs, float(sub)))
        js, je = _split(pf.joint_outcomes(p_s, everyone), cfg.n_train)
        la, lb = _exact_bias(p_s, train, js, state_a, state_b, cfg.offer)
        regret = _allocation_rows(p_s, evaluation, je, state_a, state_b, budget)
        add("sweep_sub_additivity", "exact_independent", sub,
            relative_bias_value=(la[0] - lb[0]) / la[0],
            relative_bias_cost=(la[1] - lb[1]) / la[1], bias_value=la[0] - lb[0],
            regret=regret["holdout_a"]["regret"])
    bar.update()
    bar.close()
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error over seeds and count per (section, design, level, metric)."""
    return mean_se(df, ["section", "design", "level", "metric"])


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``portfolio.png``: the holdout's relative value bias per design (mean +- 1 s.e. of the
    per-seed estimates), the exact relative bias against the changed program's reach and against
    sub-additivity, and the allocation regret under B per policy (exact and learned effects)."""
    plt = pyplot()
    s = summary(df)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    d = s[(s.section == "default") & (s.metric == "relative_bias_value")
          & s.design.isin(pf.DESIGNS)]
    for i, row in enumerate(d.itertuples()):
        axes[0].errorbar([i], [row.mean], yerr=[row.se], fmt="o", capsize=3, label=row.design,
                         **{k: v for k, v in series_style(row.design).items() if k == "color"})
    axes[0].axhline(0.0, color="0.5", lw=0.8)
    axes[0].set_xticks(range(len(d)), list(d.design), rotation=20)
    axes[0].set_title("relative lift bias under B, per design", fontsize=10)
    for ax, section, xlabel in ((axes[1], "sweep_reach", "changed program's reach intercept (B)"),
                                (axes[2], "sweep_sub_additivity", "sub-additivity")):
        for metric in ("relative_bias_value", "relative_bias_cost"):
            m = s[(s.section == section) & (s.metric == metric)].sort_values("level")
            ax.errorbar(m.level, m["mean"], yerr=m.se, capsize=3, label=metric,
                        **series_style(metric))
        ax.set_xlabel(xlabel)
        ax.set_title("exact relative bias of the A holdout", fontsize=10)
        ax.grid(alpha=0.3)
    r = s[s.section.isin(["allocation", "learned"]) & (s.metric == "regret")
          & (s.design != "oracle_b")]
    labels = [f"{row.section}:{row.design}" for row in r.itertuples()]
    for i, row in enumerate(r.itertuples()):
        axes[3].errorbar([i], [row.mean], yerr=[row.se], fmt="s", capsize=3,
                         color=series_style(row.design)["color"])
    axes[3].set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    axes[3].set_title("regret under B (oracle on B's truth = 0)", fontsize=10)
    axes[3].grid(alpha=0.3)
    figure_legend(fig, axes)
    return [save(fig, Path(out_dir), "portfolio.png")]


SUITE = Suite(name="portfolio", config_class=PortfolioSuiteConfig, run=run, plot=plot,
              summary=summary, key_columns=("section", "design", "level"))
