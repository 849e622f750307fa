"""The shared typed configs a suite nests, each defined once, next to the code it configures.

=============  =====================================  =============================================
Hydra group    config class                           defined in
=============  =====================================  =============================================
``world``      :class:`simulators.WorldConfig`        ``simulators/world.py`` (sizes of a world)
``logging``    :class:`simulators.LoggingConfig`      ``simulators/logging_policies.py``
``learner``    :class:`estimators.heads.HeadsConfig`  ``estimators/heads.py`` (value and cost head)
``policy``     :class:`PolicyConfig`                  here (the decision layer's constraints)
``ope``        :class:`OPEConfig`                     here (which estimators, CI level, lambda_)
``source``     :class:`simulators.sources.SourceConfig` ``simulators/sources.py`` (synthetic or a
                                                      literature world; ``world=<file>`` sets it)
=============  =====================================  =============================================

A suite config declares a field of one of these types under the group's name (``world:
WorldConfig = WorldConfig()``); :mod:`experiments.schema` derives the Hydra schemas from these
classes (adding a field to ``WorldConfig`` touches ``simulators/world.py`` only) and
:meth:`experiments.suites.base.Suite.make_config` applies the group values set on the command line
or in a group file to every suite that nests that config.
"""

from __future__ import annotations

import dataclasses

from estimators.heads import HeadConfig, HeadsConfig
from estimators.ope import ESTIMATORS, NEEDS_LAMBDA
from simulators import LoggingConfig, WorldConfig
from simulators.sources import SourceConfig

__all__ = ["GROUPS", "HeadConfig", "HeadsConfig", "LoggingConfig", "OPEConfig", "PolicyConfig",
           "SourceConfig", "WorldConfig"]


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """The budgeted allocator's constraint: ``budget_per_user`` is the allowed expected
    incremental cost per evaluated user (total budget = ``budget_per_user * n_eval``)."""

    budget_per_user: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.budget_per_user, bool) or not isinstance(self.budget_per_user,
                                                                    int | float):
            raise ValueError(f"policy.budget_per_user: expected a number, got "
                             f"{self.budget_per_user!r}. Fix: e.g. 1.0.")
        if not self.budget_per_user >= 0 or self.budget_per_user == float("inf"):
            raise ValueError(f"policy.budget_per_user: must be finite and >= 0, got "
                             f"{self.budget_per_user}. Fix: e.g. 1.0.")


@dataclasses.dataclass(frozen=True)
class OPEConfig:
    """Off-policy estimators to run (names of :data:`estimators.ope.ESTIMATORS`), the level of
    their confidence intervals, and ``lambda_``, the threshold of the estimators that need one
    (:data:`estimators.ope.NEEDS_LAMBDA`: clipped IPS, switch-DR, DR-os)."""

    estimators: tuple[str, ...] = ("ips", "dr")
    ci_level: float = 0.95
    lambda_: float = 20.0

    def __post_init__(self) -> None:
        bad = [e for e in self.estimators if e not in ESTIMATORS]
        if bad or not self.estimators:
            raise ValueError(f"ope.estimators: {bad or 'empty'} not known. Fix: a non-empty "
                             f"subset of {ESTIMATORS}.")
        if not 0.0 < self.ci_level < 1.0:
            raise ValueError(f"ope.ci_level: must lie in (0, 1), got {self.ci_level}. Fix: e.g. "
                             "0.95.")
        if not self.lambda_ > 0:
            raise ValueError(f"ope.lambda_: must be > 0, got {self.lambda_}. Fix: e.g. 20.0.")

    @property
    def alpha(self) -> float:
        """Miscoverage of the intervals, ``1 - ci_level``."""
        return 1.0 - self.ci_level

    def lambda_for(self, name: str) -> float | None:
        """The ``lambda_`` argument of estimator ``name`` (``None`` for those without one)."""
        return self.lambda_ if name in NEEDS_LAMBDA else None


# Hydra group name -> the config class a suite nests under that field name
GROUPS: dict[str, type] = {
    "world": WorldConfig,
    "logging": LoggingConfig,
    "learner": HeadsConfig,
    "policy": PolicyConfig,
    "ope": OPEConfig,
    # set by the literature-world files of conf/world/ (world=nie_wager_a: ``# @package
    # _global_``); nested only by the suites that run on any world
    "source": SourceConfig,
}
