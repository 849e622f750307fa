"""The result store: tidy rows in a Parquet dataset, one file per completed job, written atomically.

Layout: ``<root>/<suite>/<config_hash>/seed=<seed>.parquet`` plus ``config.json`` (the resolved
suite config and the command that reproduces it). A job is complete iff its Parquet file exists:
it is written to a temporary file in the same directory and renamed into place (``os.replace`` is
atomic on POSIX), so an interrupted sweep leaves either the whole file or nothing, and a rerun skips
complete jobs and recomputes the rest: no lost and no duplicated rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["OMIT_AT_DEFAULT", "ResultStore", "atomic_write", "config_hash", "dotted", "flatten"]


# Field metadata of a config field added after results were published: at its default the field
# is left out of the flattened config (so out of the config hash), and every stored job keeps its
# hash; set to anything else, it is part of the job's identity like any field.
OMIT_AT_DEFAULT = {"omit_at_default": True}


def _plain(value: Any) -> Any:
    """A config value as plain Python, dataclasses recursively: fields marked
    :data:`OMIT_AT_DEFAULT` are dropped at their default, and a config class with a
    ``hashed_fields()`` method keeps only the fields it names (e.g. the active world's config of
    :class:`simulators.sources.SourceConfig`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        keep = value.hashed_fields() if hasattr(value, "hashed_fields") else None
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if keep is not None and f.name not in keep:
                continue
            if f.metadata.get("omit_at_default") and v == _default(f):
                continue
            out[f.name] = _plain(v)
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def flatten(config: Any) -> dict[str, Any]:
    """Dataclass -> ``{key: JSON-able value}`` (tuples become lists, nested configs dicts; fields
    marked :data:`OMIT_AT_DEFAULT` left out at their default)."""
    raw = _plain(config) if dataclasses.is_dataclass(config) else _plain(dict(config))
    return json.loads(json.dumps(raw, default=str))


def dotted(flat: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"world": {"n_offers": 4}} -> {"world.n_offers": 4}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_hash(suite: str, config: Any) -> str:
    """Stable 16-hex-digit hash of the suite name and its resolved config. A config class with a
    ``hashed_references()`` method (a mapping) adds what the names it holds stand for, e.g. the
    head configs behind a suite's learner names: a job's identity then moves when a name's
    definition does (the library default heads behind a ``default`` learner), not only when the
    list of names does. The references enter the hash only, not the stored ``cfg.*`` columns."""
    payload: dict[str, Any] = {"suite": suite, "config": flatten(config)}
    if hasattr(config, "hashed_references"):
        payload["references"] = flatten(config.hashed_references())
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it into place: a reader
    (or a parallel job) sees the old file or the new one, never half of one. The file gets the
    ordinary permissions of a new file (``0666`` less the umask: ``0644`` by default), not the
    ``0600`` of a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class ResultStore:
    """A directory of completed jobs. ``write`` is atomic; ``is_complete`` is the resume test."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def job_path(self, suite: str, chash: str, seed: int) -> Path:
        return self.root / suite / chash / f"seed={seed}.parquet"

    def is_complete(self, suite: str, chash: str, seed: int) -> bool:
        return self.job_path(suite, chash, seed).is_file()

    def write(self, suite: str, config: Any, seed: int, rows: pd.DataFrame,
              command: str = "") -> Path:
        """Store one job's tidy rows with the ``suite, config_hash, seed`` keys and the config's
        scalar keys as ``cfg.<key>`` columns. A ``seed`` column the suite wrote itself (inner
        replicates) is kept as ``replicate_seed`` when it differs from the job seed."""
        if "metric" not in rows.columns or "value" not in rows.columns:
            raise ValueError(f"rows: suite {suite!r} returned no 'metric'/'value' columns. Fix: "
                             "return tidy rows (one metric value per row).")
        chash = config_hash(suite, config)
        flat = flatten(config)
        meta = self.root / suite / chash / "config.json"
        if not meta.exists():
            text = json.dumps({"suite": suite, "config_hash": chash, "config": flat,
                               "command": command}, indent=2, sort_keys=True)
            atomic_write(meta, lambda tmp: Path(tmp).write_text(text))
        out = rows.copy()
        if "seed" in out.columns:  # a suite's own replicate seeds are kept, not overwritten
            same = (out["seed"] == seed).all()
            out = out.drop(columns=["seed"]) if same else out.rename(
                columns={"seed": "replicate_seed"})
        out.insert(0, "seed", seed)
        out.insert(0, "config_hash", chash)
        out.insert(0, "suite", suite)
        cfg_columns = {f"cfg.{key}": value for key, value in dotted(flat).items()
                       if isinstance(value, str | int | float | bool) and f"cfg.{key}" not in out}
        if cfg_columns:  # one concat (a column at a time fragments a wide nested config)
            out = pd.concat([out, pd.DataFrame(cfg_columns, index=out.index)], axis=1)
        path = self.job_path(suite, chash, seed)
        atomic_write(path, lambda tmp: out.to_parquet(tmp, index=False))
        return path

    def publish(self, dest: ResultStore, suite: str, chash: str, seed: int) -> None:
        """Copy one complete job (its rows and its config's metadata) into ``dest``, atomically:
        a reader of ``dest`` sees the old job or the new one, never half of it."""
        src = self.job_path(suite, chash, seed)
        if not src.is_file():
            return
        meta, dest_meta = src.parent / "config.json", dest.root / suite / chash / "config.json"
        copies = [(src, dest.job_path(suite, chash, seed))]
        if not dest_meta.exists():  # same hash, same config: keep the first command on record
            copies.insert(0, (meta, dest_meta))
        for path, target in copies:
            atomic_write(target, lambda tmp, path=path: shutil.copyfile(path, tmp))

    def read(self, suite: str | None = None, chash: str | None = None) -> pd.DataFrame:
        """All stored rows (optionally of one suite / config hash)."""
        pattern = f"{suite or '*'}/{chash or '*'}/seed=*.parquet"
        files = sorted(self.root.glob(pattern))
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def configs(self) -> list[dict[str, Any]]:
        """Metadata of every stored config (suite, hash, config, command)."""
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*/*/config.json"))]
