"""Structured (dataclass) schemas of the Hydra config, derived from the library's own configs.

Nothing here restates a field: every schema is generated from a frozen config dataclass
(:data:`experiments.configs.GROUPS` for the global groups, each suite's ``config_class`` for its
``experiment.params``), with the same keys and types and every leaf ``MISSING`` ("not set"). So a
misspelt key or a value of the wrong type fails when Hydra composes the config, before any work,
and :meth:`experiments.suites.base.Suite.make_config` applies exactly the values that were set (by
a group file, an experiment file or the command line) over the suite's preset.

Schemas are stored at the root of Hydra's ConfigStore (``run_schema``,
``<suite>_experiment_schema``), so they are not listed as selectable group options; the group
files under ``conf/`` merge into the typed nodes of ``run_schema``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

__all__ = ["RunSchema", "mirror", "register", "set_values"]


@functools.cache
def mirror(config_class: type, *, skip: frozenset[str] = frozenset()) -> type:
    """A mutable, OmegaConf-typed mirror of a frozen config dataclass: same keys, the type of
    each default (tuples as lists, nested dataclasses mirrored), every leaf ``MISSING``."""
    default = config_class()
    fields = []
    for f in dataclasses.fields(config_class):
        if f.name in skip:
            continue
        value = getattr(default, f.name)
        nullable = "None" in str(f.type)
        if dataclasses.is_dataclass(value):
            sub = mirror(type(value))
            fields.append((f.name, sub, field(default_factory=sub)))
            continue
        if isinstance(value, bool | int | float | str):
            typ: Any = type(value)
        elif isinstance(value, tuple):
            typ, nullable = list[Any], False
        else:  # e.g. an optional plug-in spec: any value may replace it
            typ, nullable = Any, False
        typ = Optional[typ] if nullable else typ  # noqa: UP045 (OmegaConf needs typing.Optional)
        fields.append((f.name, typ, field(default=MISSING)))
    return dataclasses.make_dataclass(f"{config_class.__name__}Schema", fields)


def set_values(node: Any) -> dict[str, Any]:
    """The values set in a (nested) config node, as plain Python: ``MISSING`` leaves dropped,
    lists kept as lists; an empty dict when nothing is set."""
    if isinstance(node, DictConfig):
        out = {}
        for key in node:
            if OmegaConf.is_missing(node, key):
                continue
            value = node[key]
            if isinstance(value, DictConfig):
                sub = set_values(value)
                if sub:
                    out[str(key)] = sub
            else:
                out[str(key)] = (OmegaConf.to_container(value, resolve=True)
                                 if isinstance(value, ListConfig) else value)
        return out
    return dict(node or {})


def _group_schemas() -> dict[str, type]:
    from experiments.configs import GROUPS

    return {group: mirror(cls) for group, cls in GROUPS.items()}


@dataclass
class ExperimentSchema:
    suite: str = "default"  # a registry name, a dotted module path, or "default" (all, compact)
    compact: bool = False  # the suite's named fast preset (its config_class.compact())
    params: Any = field(default_factory=dict)


@dataclass
class MlflowSchema:
    enabled: bool = False
    tracking_uri: str = "sqlite:///mlruns.db"  # a local file (SQLite) store
    experiment_name: str = "allocbench"


def _run_schema() -> type:
    groups = _group_schemas()
    fields = [(g, s, field(default_factory=s)) for g, s in groups.items()]
    fields += [
        ("experiment", ExperimentSchema, field(default_factory=ExperimentSchema)),
        ("mlflow", MlflowSchema, field(default_factory=MlflowSchema)),
        ("seeds", list[int], field(default_factory=lambda: [0])),
        ("output_root", str, field(default="outputs")),  # every run's tables, figures, report
        ("store", str, field(default="outputs/store")),  # the working (resumable) store
        ("results_root", str, field(default="results")),  # written only with publish=true
        ("publish", bool, field(default=False)),
        ("report", bool, field(default=True)),
        ("progress", bool, field(default=True)),
        ("write_outputs", bool, field(default=True)),
    ]
    return dataclasses.make_dataclass("RunSchema", fields)


RunSchema = _run_schema()


def experiment_schema(suite: Any) -> type:
    """The ``experiment`` node of one suite: its own knobs (the shared configs come from the
    global groups) under ``params``."""
    from experiments.suites.base import group_fields

    params = mirror(suite.config_class, skip=frozenset(group_fields(suite.config_class)))
    return dataclasses.make_dataclass(
        f"{suite.name.capitalize()}Experiment",
        [("suite", str, field(default=suite.name)), ("compact", bool, field(default=False)),
         ("params", params, field(default_factory=params))],
        bases=(ExperimentSchema,))


def _range(start: int, stop: int) -> list[int]:
    return list(range(int(start), int(stop)))


def register() -> None:
    """Register the run schema and one experiment schema per built-in suite; add the ``range``
    resolver (``'seeds=${range:0,100}'``)."""
    from experiments import suites as registry

    if not OmegaConf.has_resolver("range"):
        OmegaConf.register_new_resolver("range", _range)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunSchema)
    for name in registry.available():
        cs.store(name=f"{name}_experiment_schema", node=experiment_schema(registry.load(name)))
