"""Real-data adapter: the MineThatData (Hillstrom) e-mail experiment as :class:`LoggedData`.

64,000 customers randomised with probability 1/3 each to no e-mail (action 0), the men's e-mail (1)
and the women's e-mail (2); outcomes over two weeks. A true multi-action randomised incentive test
with a no-offer arm, so IPS/DR apply with the known propensities 1/3. Real data has no truth
(``truth=None``) and no longer horizon: ``value_accounting`` repeats the two-week outcome.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulators.data import LoggedData

__all__ = ["ARMS", "FEATURES", "default_path", "load_hillstrom"]

ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
FEATURES = ("recency", "log_history", "mens", "womens", "newbie", "zip_rural", "zip_suburban",
            "zip_urban", "channel_phone", "channel_web", "channel_multichannel")


def default_path() -> Path:
    """The CSV path: ``$ALLOCBENCH_HILLSTROM`` if set, else the shared datasets folder
    beside the repository (``../shared/datasets/hillstrom/hillstrom.csv``)."""
    env = os.environ.get("ALLOCBENCH_HILLSTROM")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    return repo.parent / "shared" / "datasets" / "hillstrom" / "hillstrom.csv"


def load_hillstrom(
    path: str | Path | None = None, *, outcome: Literal["spend", "conversion", "visit"] = "spend",
    cost_per_email: float = 0.0,
) -> LoggedData:
    """Load the experiment. ``value`` is the chosen two-week ``outcome``; ``cost`` is
    ``cost_per_email`` for every e-mailed customer (the sending cost, caused by the action).
    Lifecycle segment: 0 new (``newbie``), 1 active (recency <= 6 months), 2 lapsed."""
    path = default_path() if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"path: Hillstrom CSV not found at {path}. Fix: pass path= or set "
                         "ALLOCBENCH_HILLSTROM to the MineThatData hillstrom.csv.")
    if outcome not in ("spend", "conversion", "visit"):
        raise ValueError(f"outcome: {outcome!r} is not a Hillstrom outcome. Fix: use 'spend', "
                         "'conversion' or 'visit'.")
    if not np.isfinite(cost_per_email) or cost_per_email < 0:
        raise ValueError("cost_per_email: must be a finite, non-negative number.")
    df = pd.read_csv(path)
    unknown = set(df["segment"].unique()) - set(ARMS)
    if unknown:
        raise ValueError(f"segment: unexpected arms {sorted(unknown)} in {path}. Fix: use the "
                         "original MineThatData file.")
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
