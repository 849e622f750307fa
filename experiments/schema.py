"""Structured (dataclass) schemas of the Hydra config, registered in Hydra's ConfigStore.

``conf/config.yaml`` starts from :class:`RunSchema`, so every group file merges into a typed node:
a misspelt key or a value of the wrong type fails when Hydra composes the config, before any work.
Suite parameters (``experiment.params``) are checked against the suite's own dataclass at start-up
(:meth:`experiments.suites.Suite.make_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from simulators import LoggingConfig, WorldConfig

__all__ = ["RunSchema", "register"]


def _params_schema(config_class: type) -> type:
    """A mutable, OmegaConf-typed mirror of a suite's (frozen) config dataclass: same keys and
    defaults, tuples as lists; so ``experiment.params.<typo>=...`` fails at composition."""
    default = config_class()
    fields = []
    for f in dataclasses.fields(config_class):
        value = getattr(default, f.name)
        if isinstance(value, bool | int | float | str):
            typ = type(value)
        elif value is None:  # e.g. an optional plug-in spec: any value may replace it
            typ = Optional[Any]  # noqa: UP045 (OmegaConf needs typing.Optional)
        elif isinstance(value, tuple):
            typ, value = list[Any], _listify(value)
        else:
            typ = Any
        fields.append((f.name, typ, field(default_factory=lambda v=value: v)))
    return dataclasses.make_dataclass(f"{config_class.__name__}Params", fields)


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, tuple | list) else value


# the world and logging groups mirror the simulator's own config dataclasses (one source of truth)
WorldSchema = _params_schema(WorldConfig)
LoggingSchema = _params_schema(LoggingConfig)


@dataclass
class LearnerSchema:
    name: str = "t_ridge"
    value_alpha: float = 1.0
    cost_alpha: float = 1.0


@dataclass
class PolicySchema:
    budget_per_user: float = 1.0


@dataclass
class OPESchema:
    estimators: list[str] = field(default_factory=lambda: ["ips", "dr"])
    ci_level: float = 0.95


@dataclass
class ExperimentSchema:
    suite: str = "default"  # a registry name, a dotted module path, or "default" (all, compact)
    compact: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class MlflowSchema:
    enabled: bool = False
    tracking_uri: str = "sqlite:///mlruns.db"  # a local file (SQLite) store
    experiment_name: str = "allocbench"


@dataclass
class RunSchema:
    world: WorldSchema = field(default_factory=WorldSchema)
    logging: LoggingSchema = field(default_factory=LoggingSchema)
    learner: LearnerSchema = field(default_factory=LearnerSchema)
    policy: PolicySchema = field(default_factory=PolicySchema)
    ope: OPESchema = field(default_factory=OPESchema)
    experiment: ExperimentSchema = field(default_factory=ExperimentSchema)
    mlflow: MlflowSchema = field(default_factory=MlflowSchema)
    seeds: list[int] = field(default_factory=lambda: [0])
    results_root: str = "results"
    store: str = "outputs/store"  # the working (resumable) store
    publish_store: Optional[str] = "results/store"  # noqa: UP045 (OmegaConf needs Optional)
    report: bool = True
    progress: bool = True
    write_outputs: bool = True


def register() -> None:
    """Register the run schema, the group schemas and one experiment schema per suite."""
    from experiments import suites as registry

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunSchema)
    for group, node in (("world", WorldSchema), ("logging", LoggingSchema),
                        ("learner", LearnerSchema), ("policy", PolicySchema),
                        ("ope", OPESchema), ("experiment", ExperimentSchema)):
        cs.store(group=group, name=f"{group}_schema", node=node)
    for name in registry.available():
        params = _params_schema(registry.load(name).config_class)
        node = dataclasses.make_dataclass(
            f"{name.capitalize()}Experiment",
            [("suite", str, field(default=name)), ("compact", bool, field(default=False)),
             ("params", params, field(default_factory=params))],
            bases=(ExperimentSchema,))
        cs.store(group="experiment", name=f"{name}_schema", node=node)
