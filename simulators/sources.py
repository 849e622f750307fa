"""Where a suite's users come from: the synthetic world, or a literature world with exact truth.

The synthetic world (:class:`simulators.WorldConfig`, drawn by :func:`simulators.simulate`) is
the default. The literature and semi-synthetic worlds are registered here as
:class:`WorldSource` entries of :data:`SOURCES`, each a function ``draw(key, config, n, *,
logging) -> LoggedData`` with its full :class:`~simulators.data.Truth`, so a suite that nests a
:class:`SourceConfig` (``source``) runs on any of them unchanged:

``nie_wager``
    Nie & Wager (2021) setups A-D (:mod:`simulators.nie_wager`): one binary treatment, value
    ``Y``, no cost; native logging = the setup's propensity ``e(x)``.

``hillstrom``
    The semi-synthetic Hillstrom world (:mod:`simulators.hillstrom_world`): the real e-mail
    test's customers resampled, visit / conversion / spend surfaces fitted to the real outcomes
    per arm, a documented cost model (cost per e-mail, discount paid on conversion); native
    logging = the real design, 1/3 per arm.

``lbcf``
    The world of Ai et al. (WWW 2022, LBCF; :mod:`simulators.lbcf`): several arms whose value and
    cost share a latent factor, noise level ``uncertainty``; native logging = the paper's uniform
    randomised trial.

``obp``
    Open Bandit Pipeline's synthetic bandit world (Saito et al. 2021; :mod:`simulators.obp_world`):
    K arms with a linear-logistic binary reward, context dimension 5, behaviour ``softmax(beta
    q)``; no cost; action 0 is an ordinary arm (the effects are against it). OBP's own
    estimators agree with ours on its logs to 4.4e-16 (``scripts/obp_side_by_side.py``).

``ihdp``
    IHDP (Hill 2011; :mod:`simulators.ihdp`): a replication's 747 children resampled, re-logged
    by a randomised trial (both simulated potential outcomes are in the data); uniform logging
    only (the original assignment's propensity is unknown); no cost.

``logging`` is ``"native"`` (the world's own design: the setup's propensity, the real
experiment's randomisation, the bandit's behaviour policy) or ``"uniform"`` (the same users and
outcome surfaces re-logged by a uniform randomised trial). Every draw is a pure function of the
caller's key.

On the command line a world is a file of ``conf/world/`` (``world=nie_wager_a``): those files set
``source`` (``# @package _global_``); only suites whose config nests ``source`` accept them, any
other suite fails at start-up naming the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from estimators.checks import check_int, fail
from simulators import hillstrom_world, obp_world
from simulators.data import LoggedData
from simulators.hillstrom_world import HillstromWorldConfig, hillstrom_world_logged_data
from simulators.ihdp import IHDPWorldConfig, ihdp_world_logged_data
from simulators.lbcf import LBCFConfig, lbcf_logged_data
from simulators.logging_policies import LoggingConfig
from simulators.nie_wager import NieWagerConfig, nie_wager_logged_data
from simulators.obp_world import OBPWorldConfig, obp_world_logged_data
from simulators.simulate import simulate, simulate_batch
from simulators.world import WorldConfig, default_params

__all__ = ["LOGGINGS", "SOURCES", "SYNTHETIC", "SourceConfig", "WorldSource", "draw_log",
           "draw_log_batch", "draw_source"]

SYNTHETIC = "synthetic"
LOGGINGS = ("native", "uniform")


class WorldSource(NamedTuple):
    """A registered world: ``draw(key, config, n, logging=...)`` returns a validated
    :class:`LoggedData` of ``n`` rows with truth; ``n_actions(config)`` is its ``K + 1``;
    ``label(config)`` names the world in result rows (``nie_wager_A``); ``reference`` is the
    citation and the published figures it sits beside (markdown)."""

    name: str
    config_field: str  # the field of SourceConfig holding this world's config
    draw: Callable[..., LoggedData]
    n_actions: Callable[[Any], int]
    label: Callable[[Any], str]
    reference: str
    loggings: tuple[str, ...] = ("native", "uniform")  # the designs it can draw


def _lbcf_draw(key: jax.Array, config: LBCFConfig, n: int, *, logging: str) -> LoggedData:
    # the paper's log is a uniform randomised trial: native and uniform are the same design
    return lbcf_logged_data(key, dataclasses.replace(config, n=n))


def _nie_wager_draw(key: jax.Array, config: NieWagerConfig, n: int, *,
                    logging: str) -> LoggedData:
    return nie_wager_logged_data(key, dataclasses.replace(config, n=n), logging=logging)


SOURCES: dict[str, WorldSource] = {
    "nie_wager": WorldSource(
        name="nie_wager", config_field="nie_wager", draw=_nie_wager_draw,
        n_actions=lambda c: 2, label=lambda c: f"nie_wager_{c.setup}",
        reference=(
            "Nie, X. and Wager, S. (2021), *Quasi-oracle estimation of heterogeneous treatment "
            "effects*, Biometrika 108(2), 299-319, Section 6 (setups A-D; CausalML's "
            "`causalml.dataset.synthetic_data` modes 1-4). Published: mean-squared error of "
            "tau on an independent test set of size n, 500 runs, for S/T/X/U/R/RS learners "
            "with lasso, boosting and kernel ridge bases (Tables 2-5 and the authors' "
            "`xnie/rlearner` `experiments_for_paper/output_*.csv`); ours beside it in the "
            "`nie_wager` suite (`python -m experiments.run experiment=nie_wager`).")),
    "hillstrom": WorldSource(
        name="hillstrom", config_field="hillstrom", draw=hillstrom_world_logged_data,
        n_actions=hillstrom_world.n_actions, label=lambda c: "hillstrom_semi",
        reference=hillstrom_world.REFERENCE),
    "lbcf": WorldSource(
        name="lbcf", config_field="lbcf", draw=_lbcf_draw, n_actions=lambda c: c.n_actions,
        label=lambda c: f"lbcf_u{c.uncertainty:g}",
        reference=(
            "Ai, M. et al. (2022), *LBCF: A Large-Scale Budget-Constrained Causal Forest "
            "Algorithm*, WWW 2022, Section 5.1: arms 0..3 whose value and cost share a latent "
            "factor, noise level uW in {5, 10, 15, 20}. Published: the percentage mean gain "
            "(ITE / control value) of each allocator at a budget of 75 per user (its Figure "
            "4 bars); ours beside it, on the paper's own regenerated users, in the `lbcf` "
            "suite (`python -m experiments.run experiment=lbcf`).")),
    "obp": WorldSource(
        name="obp", config_field="obp", draw=obp_world_logged_data,
        n_actions=obp_world.n_actions, label=lambda c: f"obp_k{c.n_actions}_beta{c.beta:g}",
        reference=obp_world.REFERENCE),
    "ihdp": WorldSource(
        name="ihdp", config_field="ihdp", draw=ihdp_world_logged_data, n_actions=lambda c: 2,
        label=lambda c: f"ihdp_{c.replication}", loggings=("uniform",),
        reference=(
            "Hill, J. (2011), *Bayesian nonparametric modeling for causal inference*, JCGS 20(1) "
            "(response surface B), replications of Johansson, Shalit & Sontag (2016). "
            "Published: out-of-sample sqrt-PEHE on IHDP-1000 (Shalit et al. 2017, Table 1: "
            "OLS-1 5.8, BART 2.3, TARNet 0.95, CFR-WASS 0.76); ours beside it on the 10 "
            "vendored replications in the `ihdp` suite (`python -m experiments.run "
            "experiment=ihdp`), on the original observational assignment. As a `world=` the "
            "rows are resampled and re-logged by a randomised trial.")),
}


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """Which world draws a suite's users: ``name`` ``"synthetic"`` (the suite's ``world``
    config) or a key of :data:`SOURCES`, with that world's config in the field of its name, and
    ``logging``, the design of the suite's training / logged data (``"native"`` or
    ``"uniform"``; evaluation logs a suite draws for scoring are its own choice, uniform as a
    rule). Sizes are the suite's: a nested config's own ``n`` is ignored. Only ``name``,
    ``logging`` and the active world's config identify a job (:meth:`hashed_fields`)."""

    name: str = SYNTHETIC
    logging: str = "native"
    nie_wager: NieWagerConfig = NieWagerConfig()
    hillstrom: HillstromWorldConfig = HillstromWorldConfig()
    lbcf: LBCFConfig = LBCFConfig()
    obp: OBPWorldConfig = OBPWorldConfig()
    ihdp: IHDPWorldConfig = IHDPWorldConfig()

    def __post_init__(self) -> None:
        if self.name != SYNTHETIC and self.name not in SOURCES:
            fail("source.name", f"unknown world {self.name!r}",
                 f"use {SYNTHETIC!r} or one of {sorted(SOURCES)} (conf/world/ has a file per "
                 "world: world=nie_wager_a)")
        if self.logging not in LOGGINGS:
            fail("source.logging", f"unknown {self.logging!r}", f"use one of {LOGGINGS}")
        if not self.synthetic and self.logging not in SOURCES[self.name].loggings:
            fail("source.logging", f"world {self.name!r} cannot draw a {self.logging!r} log",
                 f"use one of {SOURCES[self.name].loggings}")

    @property
    def synthetic(self) -> bool:
        return self.name == SYNTHETIC

    @property
    def world(self) -> WorldSource:
        if self.synthetic:
            fail("source.name", "the synthetic world is drawn by simulators.simulate, not a "
                 "registered source", "check source.synthetic first")
        return SOURCES[self.name]

    @property
    def config(self) -> Any:
        """The active world's config."""
        return getattr(self, self.world.config_field)

    @property
    def label(self) -> str:
        return SYNTHETIC if self.synthetic else self.world.label(self.config)

    @property
    def n_actions(self) -> int:
        return self.world.n_actions(self.config)

    def hashed_fields(self) -> tuple[str, ...]:
        """The fields that identify a job (:func:`experiments.store.flatten`)."""
        if self.synthetic:
            return ("name",)
        return ("name", "logging", self.world.config_field)

    def require(self, suite: str, supported: tuple[str, ...]) -> None:
        """``ValueError`` unless this source is one ``suite`` supports."""
        if self.name not in supported:
            fail("source.name", f"suite {suite!r} runs on {list(supported)}, not "
                 f"{self.name!r}", "pick one of them with world=<file of conf/world/>")


def draw_source(key: jax.Array, source: SourceConfig, n: int, *,
                logging: str | None = None) -> LoggedData:
    """``n`` users of the registered world ``source`` from ``key``, logged by ``logging``
    (default ``source.logging``), with their truth; a design the world cannot draw is its
    draw's ``ValueError`` (IHDP's says why it has no native log)."""
    logging = source.logging if logging is None else logging
    if logging not in LOGGINGS:
        fail("logging", f"unknown {logging!r}", f"use one of {LOGGINGS}")
    return source.world.draw(key, source.config, check_int("n", n, "e.g. n=2000", low=1),
                             logging=logging)


_UNIFORM = LoggingConfig(kind="uniform")


def draw_log(key: jax.Array, source: SourceConfig, world: WorldConfig, n: int,
             logging: LoggingConfig, *, uniform: bool = False) -> LoggedData:
    """A suite's log of ``n`` users, the one place a suite that nests a ``source`` draws them:
    on the synthetic ``world`` :func:`simulators.simulate` under ``logging``; on a registered
    world :func:`draw_source` under its own design ``source.logging`` (``logging`` is the
    synthetic world's logger). ``uniform``: a uniform randomised log on either."""
    if source.synthetic:
        return simulate(key, default_params(world), world, n, _UNIFORM if uniform else logging)
    return draw_source(key, source, n, logging="uniform" if uniform else None)


def draw_log_batch(keys: jax.Array, source: SourceConfig, world: WorldConfig, n: int,
                   logging: LoggingConfig, *, uniform: bool = False) -> LoggedData:
    """One log per key stacked on a leading axis, as :func:`draw_log` draws them:
    :func:`simulators.simulate_batch` (one compiled call) on the synthetic world; each
    registered world's log validated by :func:`draw_source`, then stacked."""
    if source.synthetic:
        return simulate_batch(keys, default_params(world), world, n,
                              _UNIFORM if uniform else logging)
    logs = [draw_source(k, source, n, logging="uniform" if uniform else None) for k in keys]
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *logs)
