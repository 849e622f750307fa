"""Real-data adapter: the MineThatData (Hillstrom) e-mail experiment as :class:`LoggedData`.

64,000 customers randomised with probability 1/3 each to no e-mail (action 0), the men's e-mail (1)
and the women's e-mail (2); outcomes over two weeks. A true multi-action randomised incentive test
with a no-offer arm, so IPS/DR apply with the known propensities 1/3. Real data has no truth
(``truth=None``) and no longer horizon: ``value_accounting`` repeats the two-week outcome.

The file ships with the package (``simulators/datasets/hillstrom.csv.gz``, provenance in
``simulators/datasets/README.md``); its sha256 is checked on every load.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulators.data import LoggedData

__all__ = ["ARMS", "FEATURES", "default_path", "load_hillstrom"]

ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
FEATURES = ("recency", "log_history", "mens", "womens", "newbie", "zip_rural", "zip_suburban",
            "zip_urban", "channel_phone", "channel_web", "channel_multichannel")
_COLUMNS = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment",
            "visit", "conversion", "spend")

# ------------------------------------------------------------- vendored datasets (shared helpers)
_DATASETS = Path(__file__).resolve().parent / "datasets"
_GZIP_MAGIC = b"\x1f\x8b"


@functools.cache
def _checksums() -> dict[str, str]:
    """sha256 of each uncompressed vendored file, keyed by its name relative to
    ``simulators/datasets`` without ``.gz`` (``hillstrom.csv``, ``ihdp/ihdp_npci_1.csv``)."""
    with open(_DATASETS / "checksums.json", encoding="utf-8") as f:
        return dict(json.load(f)["sha256"])


def _is_vendored(path: Path, name: str) -> bool:
    """Whether ``path`` is the vendored copy of ``name`` (e.g. ``hillstrom.csv``)."""
    try:
        return path.resolve() == (_DATASETS / f"{name}.gz").resolve()
    except OSError:
        return False


def _read_checked(path: Path, *, what: str, expected_sha256: str | None, fix: str) -> bytes:
    """The (decompressed, if gzip) bytes of ``path``; ``ValueError`` naming ``path`` and ``fix``
    when it cannot be read, is not valid gzip (corrupted or truncated), or its sha256 differs
    from ``expected_sha256`` (``None``: not checked)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"path: cannot read the {what} at {path} ({e}). Fix: {fix}.") from e
    if path.suffix == ".gz" or data[:2] == _GZIP_MAGIC:
        if data[:2] != _GZIP_MAGIC:
            raise ValueError(f"path: the {what} at {path} is not a gzip file (corrupted or "
                             f"replaced). Fix: {fix}.")
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"path: the {what} at {path} is not valid gzip, it is corrupted or "
                             f"truncated ({e}). Fix: {fix}.") from e
    if expected_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != expected_sha256:
            raise ValueError(f"path: the {what} at {path} has sha256 {got}, expected "
                             f"{expected_sha256} (corrupted, truncated or a different file). "
                             f"Fix: {fix}.")
    return data


# ---------------------------------------------------------------------------------- Hillstrom
_NAME = "hillstrom.csv"
_VENDORED_FIX = ("restore it from git (git checkout -- simulators/datasets/hillstrom.csv.gz) or "
                 "reinstall allocbench")
_USER_FIX = ("pass path= (or set ALLOCBENCH_HILLSTROM to) a complete copy of the MineThatData "
             "hillstrom.csv (.csv or .csv.gz), or load the vendored file with path=None")


def default_path() -> Path:
    """The data path: ``$ALLOCBENCH_HILLSTROM`` if set, else the copy vendored with the package
    (``simulators/datasets/hillstrom.csv.gz``)."""
    env = os.environ.get("ALLOCBENCH_HILLSTROM")
    if env:
        return Path(env)
    return _DATASETS / f"{_NAME}.gz"


def load_hillstrom(
    path: str | Path | None = None, *, outcome: Literal["spend", "conversion", "visit"] = "spend",
    cost_per_email: float = 0.0, verify: bool | None = None,
) -> LoggedData:
    """Load the experiment. ``value`` is the chosen two-week ``outcome``; ``cost`` is
    ``cost_per_email`` for every e-mailed customer (the sending cost, caused by the action).
    Lifecycle segment: 0 new (``newbie``), 1 active (recency <= 6 months), 2 lapsed.

    ``path`` (default :func:`default_path`) may be ``.csv`` or ``.csv.gz``. The vendored file is
    always checked against its recorded sha256; another file is checked only with
    ``verify=True`` (then it must be byte-identical to the original CSV). A corrupted, truncated
    or wrong file is a ``ValueError`` naming ``path`` and the fix."""
    path = default_path() if path is None else Path(path)
    vendored = _is_vendored(path, _NAME)
    fix = _VENDORED_FIX if vendored else _USER_FIX
    if not path.is_file():
        raise ValueError(f"path: Hillstrom CSV not found at {path}. Fix: "
                         + (f"{fix}." if vendored else "pass path= or set ALLOCBENCH_HILLSTROM "
                            "to the MineThatData hillstrom.csv (.csv or .csv.gz)."))
    if outcome not in ("spend", "conversion", "visit"):
        raise ValueError(f"outcome: {outcome!r} is not a Hillstrom outcome. Fix: use 'spend', "
                         "'conversion' or 'visit'.")
    if not np.isfinite(cost_per_email) or cost_per_email < 0:
        raise ValueError("cost_per_email: must be a finite, non-negative number.")
    expected = _checksums()[_NAME] if (vendored or verify) else None
    data = _read_checked(path, what="Hillstrom CSV", expected_sha256=expected, fix=fix)
    try:
        df = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError) as e:  # pandas' parser errors are ValueErrors
        raise ValueError(f"path: the Hillstrom CSV at {path} does not parse as CSV ({e}). "
                         f"Fix: {fix}.") from e
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing or len(df) == 0:
        problem = f"lacks columns {missing}" if missing else "has no rows"
        raise ValueError(f"path: the Hillstrom CSV at {path} {problem}. Fix: {fix}.")
    unknown = set(df["segment"].unique()) - set(ARMS)
    if unknown:
        raise ValueError(f"segment: unexpected arms {sorted(unknown)} in {path}. Fix: use the "
                         "original MineThatData file.")
    numeric = ["recency", "history", "mens", "womens", "newbie", "visit", "conversion", "spend"]
    bad = [c for c in numeric if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"path: the Hillstrom CSV at {path} has non-numeric columns {bad}. "
                         f"Fix: {fix}.")
    action = df["segment"].map({a: i for i, a in enumerate(ARMS)}).to_numpy(np.int32)
    x = np.column_stack([
        df["recency"].to_numpy(float), np.log1p(df["history"].to_numpy(float)),
        df["mens"], df["womens"], df["newbie"],
        df["zip_code"] == "Rural", df["zip_code"] == "Surburban", df["zip_code"] == "Urban",
        df["channel"] == "Phone", df["channel"] == "Web", df["channel"] == "Multichannel",
    ]).astype(np.float64)
    segment = np.where(df["newbie"] == 1, 0, np.where(df["recency"] <= 6, 1, 2)).astype(np.int32)
    n = len(df)
    value = df[outcome].to_numpy(np.float64)
    face = np.array([0.0, cost_per_email, cost_per_email])
    return LoggedData(
        x=x, segment=segment, period=np.zeros(n, np.int32), eligible=np.ones((n, 3), bool),
        action=action, action_prob=np.full((n, 3), 1.0 / 3.0), value=value,
        value_accounting=value.copy(), cost=face[action], redemption_lag=np.full(n, -1, np.int32),
        other_actions=np.zeros((n, 0), np.int32), face_value=face, truth=None,
    )
