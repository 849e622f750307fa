"""The suite protocol: everything a benchmark suite author needs, in one file.

A suite is a module that defines ``SUITE``, a :class:`Suite`::

    @dataclasses.dataclass(frozen=True)
    class MySuiteConfig:                      # frozen; every field has a default (the full size)
        world: WorldConfig = WorldConfig()    # shared configs under their group's name
        n_train: int = 20_000                 # the suite's own knobs
        @classmethod
        def compact(cls) -> MySuiteConfig:    # the named fast preset (experiment.compact=true)
            return cls(n_train=2_000)

    def run(config, *, seed, progress=True) -> pd.DataFrame: ...   # tidy rows: metric, value, keys
    def plot(rows, out_dir) -> list[Path]: ...                      # figures from stored rows

    SUITE = Suite(name="my_suite", config_class=MySuiteConfig, run=run, plot=plot,
                  key_columns=("n", "policy"))   # what identifies a row besides seed and metric

and is run by ``python -m experiments.run experiment=my_suite`` (a built-in name, or the module's
dotted path for a plug-in suite). Optional functions: ``run_batch(config, *, seeds, progress)``
(several seeds in one ``vmap``-ed batch; default: ``run`` seed by seed), ``write(rows, out_dir)``
(tables and figures; default: ``<name>.csv`` and ``plot``), ``unavailable(config)`` (why the suite
cannot run on this machine; the default benchmark then skips it), ``summary(rows)`` (the headline
table printed after a run); flags ``in_default`` and ``default_preset``; ``result_seeds`` and
``result_variants``, the jobs ``make results`` publishes (:mod:`experiments.publish`; a suite
outside the default benchmark is published with ``published=True``).

**Where outputs go.** A run writes its tables, figures and report under ``outputs/`` (keyed by
the whole job, config and seeds: :func:`experiments.run.suite_output_dir`); only ``publish=true``
(``make results``) writes ``results/``.

**Seeds.** One seed axis: the job's ``seed`` (Hydra's ``seeds=[...]``). Every random stream of a
job is derived from it one way, :func:`stream`: ``stream(seed, "train", n)`` is
``fold_in(fold_in(key(seed), id("train")), n)`` with a stable integer ``id`` per name, so adding a
stream never shifts another and a row is reproducible from its seed alone.

**Configs.** :meth:`Suite.make_config` builds the config: the preset (full size, or
``compact()``), then every global group value that was set (``world.n_offers=8``) on the nested
config of that group, then every ``experiment.params`` value that was set. Unset values are
``MISSING`` in the Hydra schema, so nothing is ever inferred by comparing with a default.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

__all__ = ["Suite", "mean_se", "quiet_bar", "stream", "stream_id"]


def quiet_bar(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a run's ``progress`` flag: off when asked, and otherwise tqdm's
    own rule (``None``: shown only when the output is a terminal), so logs and CI output get no
    carriage-return bars or escape codes."""
    return None if progress else True


def stream_id(name: str | int) -> int:
    """A stable non-negative 31-bit integer for a stream name (ints pass through)."""
    if isinstance(name, bool):
        raise ValueError(f"stream name: got a bool {name!r}. Fix: use a string or an int.")
    if isinstance(name, int):
        if name < 0:
            raise ValueError(f"stream name: integers must be >= 0, got {name}.")
        return name
    return zlib.crc32(str(name).encode()) & 0x7FFFFFFF


def mean_se(rows: pd.DataFrame, keys: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Per group of ``keys``: ``mean``, ``count`` and ``se`` of ``value`` over the seeds (the
    standard error ``sd / sqrt(count)``; 0 for a single seed; NaN where every value is NaN)."""
    g = rows.groupby(list(keys))["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"].fillna(0.0) / np.sqrt(out["count"].where(out["count"] > 0))
    return out.drop(columns="std")


@functools.partial(jax.jit, static_argnums=1)
def _fold_chain(seed: jax.Array, ids: tuple[int, ...]) -> jax.Array:
    key = jax.random.key(seed)
    for i in ids:
        key = jax.random.fold_in(key, i)
    return key


def stream(seed: int, *names: str | int) -> jax.Array:
    """The PRNG key of the named stream of job ``seed``: ``key(seed)`` folded in with each name
    in turn (``stream(0, "eval")``, ``stream(0, "train", 2000)``); one compiled call."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}. Fix: e.g. seeds=[0,1,2].")
    return _fold_chain(np.uint32(seed), tuple(stream_id(n) for n in names))


@dataclasses.dataclass(frozen=True)
class Suite:
    """A benchmark suite: its name, config class, functions and the key columns of its rows
    (see the module docstring for the contract). The framework calls only the methods below,
    which supply the defaults of the optional functions."""

    name: str
    config_class: type
    run: Callable[..., pd.DataFrame]  # run(config, *, seed, progress) -> tidy rows of one seed
    key_columns: tuple[str, ...]  # what identifies a row besides seed and metric
    plot: Callable[[pd.DataFrame, Path], list[Path]] | None = None
    write: Callable[[pd.DataFrame, Path], list[Path]] | None = None
    run_batch: Callable[..., pd.DataFrame] | None = None  # (config, *, seeds, progress)
    summary: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    unavailable: Callable[[Any], str | None] | None = None
    in_default: bool = True  # part of the default benchmark (make run)
    published: bool | None = None  # published by make results (None: same as in_default)
    default_preset: str = "compact"  # its preset there: "compact" or "full"
    # the published jobs (make results): the full-size config at these seeds, written to
    # results/<name>/; each entry of ``result_variants`` is one more published job, the
    # experiment.params overrides of a documented sweep point (results/sweeps/<name>/...)
    result_seeds: tuple[int, ...] = (0, 1, 2)
    result_variants: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_class) or not hasattr(self.config_class,
                                                                          "compact"):
            raise ValueError(f"Suite.config_class: {self.config_class!r} must be a frozen "
                             "dataclass with a compact() classmethod. Fix: see "
                             "experiments/suites/base.py.")
        if not self.key_columns or not all(isinstance(c, str) for c in self.key_columns):
            raise ValueError(f"Suite.key_columns: give the columns that identify a row of suite "
                             f"{self.name!r} besides seed and metric, got {self.key_columns!r}.")
        if self.default_preset not in ("compact", "full"):
            raise ValueError(f"Suite.default_preset: 'compact' or 'full', got "
                             f"{self.default_preset!r}.")
        seeds = self.result_seeds
        if not seeds or len(set(seeds)) != len(seeds) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ValueError(f"Suite.result_seeds: distinct ints >= 0, got {seeds!r}. Fix: e.g. "
                             "(0, 1, 2).")

    def rows(self, config: Any, *, seeds: list[int], progress: bool = True) -> pd.DataFrame:
        """Every seed's rows (with a ``seed`` column): ``run_batch`` if the suite has one (its
        seeds ``vmap``-ed; it must equal the seed-by-seed rows), else ``run`` seed by seed;
        checked against the row contract."""
        if self.run_batch is not None:
            return self.check_rows(self.run_batch(config, seeds=seeds, progress=progress))
        frames = []
        for seed in seeds:
            rows = self.run(config, seed=seed, progress=progress)
            frames.append(rows.assign(seed=seed) if "seed" not in rows else rows)
        return self.check_rows(pd.concat(frames, ignore_index=True))

    def check_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The protocol's row contract: ``metric``, ``value``, ``seed`` and the key columns."""
        missing = [c for c in ("metric", "value", "seed", *self.key_columns) if c not in rows]
        if missing:
            raise ValueError(f"rows: suite {self.name!r} returned rows without the columns "
                             f"{missing}. Fix: return tidy rows with metric, value, seed and its "
                             f"key_columns {self.key_columns}.")
        return rows

    @property
    def is_published(self) -> bool:
        """Whether ``make results`` publishes its jobs (``published``, else ``in_default``)."""
        return self.in_default if self.published is None else self.published

    def figures(self, rows: pd.DataFrame, out_dir: Path) -> list[Path]:
        """The suite's figures from its stored rows (none without ``plot``)."""
        return [] if self.plot is None else self.plot(rows, Path(out_dir))

    def outputs(self, rows: pd.DataFrame, out_dir: Path) -> list[Path]:
        """Tables and figures under ``out_dir``: ``write``, else ``<name>.csv`` and the
        figures."""
        if self.write is not None:
            return self.write(rows, Path(out_dir))
        from experiments.store import atomic_write

        csv = Path(out_dir) / f"{self.name}.csv"
        atomic_write(csv, lambda tmp: rows.to_csv(tmp, index=False))
        return [csv, *self.figures(rows, out_dir)]

    def headline(self, rows: pd.DataFrame) -> pd.DataFrame | None:
        """The headline table printed after a run (``summary``; none without it)."""
        return None if self.summary is None else self.summary(rows)

    def why_unavailable(self, config: Any) -> str | None:
        """Why this suite cannot run here (e.g. missing data), or ``None``."""
        return None if self.unavailable is None else self.unavailable(config)

    def nests(self, group: str) -> bool:
        """Whether the config nests the shared config of a global ``group`` (``"world"``...):
        a field of that name whose default is an instance of the group's config class."""
        return group in group_fields(self.config_class)

    def compact_config(self) -> Any:
        return self.config_class.compact()

    def full_config(self) -> Any:
        return self.config_class()

    def make_config(self, params: dict[str, Any] | None = None,
                    groups: dict[str, dict[str, Any]] | None = None, *,
                    compact: bool = False) -> Any:
        """The suite's config: the preset, then the set global ``groups`` values (``{"world":
        {"n_offers": 8}}``) on the nested configs, then the set ``params``. Unknown keys, values
        of the wrong type and a group set for a suite that does not nest it are ``ValueError``s
        here, before any work starts."""
        base = self.compact_config() if compact else self.full_config()
        nested = group_fields(self.config_class)
        changes: dict[str, Any] = {}
        for group, values in (groups or {}).items():
            if not values:
                continue
            if group not in nested:
                where = sorted(_paths(group, values))[0]
                raise ValueError(f"{where}: suite {self.name!r} does not use a {group} config "
                                 f"(it nests {sorted(nested) or 'none'}). Fix: drop the override, "
                                 f"or use experiment.params.* (conf/experiment/{self.name}.yaml).")
            changes[group] = _replace_nested(getattr(base, group), values, group)
        own = {f.name for f in dataclasses.fields(self.config_class)} - nested
        unknown = sorted(set(params or {}) - own)
        if unknown:
            hint = [k for k in unknown if k in nested]
            raise ValueError(f"experiment.params: unknown key(s) {unknown} for suite "
                             f"{self.name!r}" + (f" ({hint} are set through their global group, "
                                                 f"e.g. {hint[0]}.<field>=...)" if hint else "")
                             + f". Fix: use some of {sorted(own)}.")
        nullable = {f.name for f in dataclasses.fields(self.config_class) if "None" in str(f.type)}
        for key, value in (params or {}).items():
            if value is None and key in nullable:  # e.g. pacing's lag_mean=null: the world's own
                changes[key] = None
                continue
            current = getattr(base, key)
            if dataclasses.is_dataclass(current) and isinstance(value, dict):  # e.g. loop.rounds
                changes[key] = _replace_nested(current, value, f"experiment.params.{key}")
            else:
                changes[key] = _coerce(f"experiment.params.{key}", value, current)
        return dataclasses.replace(base, **changes)


def group_fields(config_class: type) -> set[str]:
    """The fields of a suite config that nest a global group's config (name and type match)."""
    from experiments.configs import GROUPS

    default = config_class()
    return {f.name for f in dataclasses.fields(config_class)
            if f.name in GROUPS and isinstance(getattr(default, f.name), GROUPS[f.name])}


def _paths(prefix: str, values: dict[str, Any]) -> list[str]:
    out = []
    for k, v in values.items():
        out += _paths(f"{prefix}.{k}", v) if isinstance(v, dict) else [f"{prefix}.{k}"]
    return out


def _replace_nested(config: Any, values: dict[str, Any], where: str) -> Any:
    """``config`` (a frozen dataclass) with ``values`` applied, recursing into nested ones."""
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise ValueError(f"{where}.{key}: not a field of {type(config).__name__}. Fix: one of "
                             f"{sorted(names)}.")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = _replace_nested(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(f"{where}.{key}", value, current)
    return dataclasses.replace(config, **changes)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """A config value as the type of its default (lists become tuples)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected a bool, got {value!r}.")
        return value
    if isinstance(default, int):
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
