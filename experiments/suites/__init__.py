"""Registry of benchmark suites.

Every suite module exposes ``<Name>SuiteConfig`` (a dataclass with ``compact()``),
``run(cfg, *, seed, progress) -> DataFrame`` of tidy rows and ``plot(df, out_dir) -> [Path]``;
optionally ``run_batch(cfg, *, seeds, progress) -> DataFrame`` (rows with a ``seed`` column) that
runs a job's seeds as one ``vmap``-ed batch, and ``unavailable(cfg) -> str | None`` (why the suite
cannot run on this machine, e.g. missing real data; the default benchmark then skips it).
A suite may also be any importable module following the same contract, named by its dotted path
(``experiment.suite=my_package.my_suite``): that is how plug-ins run through the framework.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any, NamedTuple

__all__ = ["BUILTIN", "NOT_IN_DEFAULT", "Suite", "available", "load"]

BUILTIN = {
    "main": "experiments.main_benchmark",
    "learners": "experiments.suites.learners",
    "ope": "experiments.suites.ope",
    "allocation": "experiments.suites.allocation",
    "pacing": "experiments.suites.pacing",
    "horizons": "experiments.suites.horizons",
    "interference": "experiments.suites.interference",
    "drift": "experiments.suites.drift",
    "hillstrom": "experiments.suites.hillstrom",
    "byo": "experiments.suites.byo",
}

NOT_IN_DEFAULT = frozenset({"byo"})  # needs a plug-in to be meaningful


class Suite(NamedTuple):
    name: str
    module: ModuleType
    config_class: type

    def make_config(self, params: dict[str, Any], compact: bool) -> Any:
        """The suite's config from ``params`` over its defaults (or its ``compact()`` variant).
        Unknown keys or values of the wrong type fail here, before any work starts."""
        base = self.config_class.compact() if compact else self.config_class()
        fields = {f.name: f for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise ValueError(f"experiment.params: unknown key(s) {unknown} for suite "
                             f"{self.name!r}. Fix: use some of {sorted(fields)}.")
        full = self.config_class()
        coerced = {}
        for key, value in params.items():
            value = _coerce(f"experiment.params.{key}", value, getattr(base, key))
            # the typed schema fills every key with the full-size default; under compact=True a
            # value equal to that default means "not set", so the compact value stands
            if compact and value == getattr(full, key):
                continue
            coerced[key] = value
        return dataclasses.replace(base, **coerced)


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected a bool, got {value!r}.")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: expected an int, got {value!r}.")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: expected a number, got {value!r}.")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name}: expected a list, got {value!r}.")
        return tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {value!r}.")
    return value


def load(name: str) -> Suite:
    """Import a suite by registry name or dotted module path."""
    path = BUILTIN.get(name, name)
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as err:
        raise ValueError(f"experiment.suite: cannot import suite {name!r} ({err}). Fix: one of "
                         f"{available()} or an importable module path.") from err
    configs = [v for k, v in vars(module).items()
               if k.endswith("SuiteConfig") and dataclasses.is_dataclass(v)
               and getattr(v, "__module__", None) == module.__name__]
    if len(configs) != 1 or not all(hasattr(module, f) for f in ("run", "plot")):
        raise ValueError(f"experiment.suite: {path} does not follow the suite contract (one "
                         "*SuiteConfig dataclass, run(cfg, *, seed, progress), plot(df, out_dir)).")
    return Suite(name, module, configs[0])


def available() -> list[str]:
    """Built-in suites whose modules exist in this checkout."""
    out = []
    for name, path in BUILTIN.items():
        if importlib.util.find_spec(path) is not None:
            out.append(name)
    return out
