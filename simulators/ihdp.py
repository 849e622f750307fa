"""Real-data adapter: the IHDP semi-synthetic benchmark (Hill 2011, response surface B).

747 children of the Infant Health and Development Program, 25 covariates, a binary treatment and
simulated outcomes with their noiseless potential-outcome means ``mu0``/``mu1``, so the true
individual effect ``tau = mu1 - mu0`` is known (sqrt-PEHE is the usual metric). Ten replications
(``ihdp_npci_1..10``, the CEVAE distribution) ship with the package under
``simulators/datasets/ihdp/``; provenance in ``simulators/datasets/README.md``; each file's
sha256 is checked on load.

Treatment is NOT randomised: the treated group was made unrepresentative by removing a
non-random subset of treated children, and the propensity is unknown.
"""

from __future__ import annotations

import dataclasses
import io
import operator
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from estimators.checks import check_int, fail
from simulators.data import LoggedData, Truth
from simulators.hillstrom import _DATASETS, _checksums, _is_vendored, _read_checked

__all__ = ["IHDP", "IHDPWorldConfig", "ihdp_logged_data", "ihdp_world_logged_data", "load_ihdp"]

N_REPLICATIONS = 10
N_COVARIATES = 25
_N_COLUMNS = 5 + N_COVARIATES  # treatment, y_factual, y_cfactual, mu0, mu1, x1..x25
_PERSUADABLE, _LOST_CAUSE, _SLEEPING_DOG = 1, 2, 3  # simulators.world.TYPE_NAMES codes


class IHDP(NamedTuple):
    """One IHDP replication as NumPy arrays (``n = 747`` rows).

    ``x (n, 25)`` float64 covariates as distributed (x1..x6 standardised continuous, x7..x25
    binary; x14 is coded 1/2, not 0/1, in these files); ``treatment (n,)`` int64 in {0, 1};
    ``y_factual``/``y_cfactual (n,)`` the observed and the counterfactual simulated outcome;
    ``mu0``/``mu1 (n,)`` the noiseless potential-outcome means; ``tau = mu1 - mu0``.
    """

    x: np.ndarray
    treatment: np.ndarray
    y_factual: np.ndarray
    y_cfactual: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    tau: np.ndarray


def _name(replication: int) -> str:
    return f"ihdp/ihdp_npci_{replication}.csv"


def _check_replication(replication: Any) -> int:
    try:
        if isinstance(replication, bool):
            raise TypeError
        r = operator.index(replication)
    except TypeError:
        raise ValueError(f"replication: {replication!r} is not an integer. Fix: pass one of "
                         f"1..{N_REPLICATIONS}.") from None
    if not 1 <= r <= N_REPLICATIONS:
        raise ValueError(f"replication: {r} is out of range; IHDP has replications "
                         f"1..{N_REPLICATIONS}. Fix: pass an integer in 1..{N_REPLICATIONS}.")
    return r


def _resolve(replication: int, path: str | Path | None) -> Path:
    """The file of ``replication``: the vendored one, ``path`` itself, or, if ``path`` is a
    folder, its ``ihdp_npci_<r>.csv.gz`` (else ``.csv``)."""
    if path is None:
        return _DATASETS / f"{_name(replication)}.gz"
    path = Path(path)
    if path.is_dir():
        stem = f"ihdp_npci_{replication}.csv"
        gz = path / f"{stem}.gz"
        return gz if gz.is_file() else path / stem
    return path


def load_ihdp(replication: int, *, path: str | Path | None = None,
              verify: bool | None = None) -> IHDP:
    """Load IHDP replication ``replication`` (1..10).

    ``path=None`` reads the vendored ``simulators/datasets/ihdp/ihdp_npci_<r>.csv.gz``, always
    checked against its recorded sha256. ``path`` may instead name a ``.csv``/``.csv.gz`` file
    or a folder holding ``ihdp_npci_<r>.csv[.gz]``; such a file is checked only with
    ``verify=True`` (then it must be byte-identical to the original replication). A bad
    replication number, a missing, corrupted or truncated file, or one without the 30 numeric
    columns ``treatment, y_factual, y_cfactual, mu0, mu1, x1..x25`` is a ``ValueError``."""
    r = _check_replication(replication)
    file = _resolve(r, path)
    vendored = _is_vendored(file, _name(r))
    fix = (f"restore it from git (git checkout -- simulators/datasets/{_name(r)}.gz) or "
           "reinstall allocbench" if vendored else
           f"pass path= a complete copy of the CEVAE ihdp_npci_{r}.csv (.csv or .csv.gz), or "
           "path=None for the vendored file")
    if not file.is_file():
        raise ValueError(f"path: IHDP replication {r} not found at {file}. Fix: {fix}.")
    expected = _checksums()[_name(r)] if (vendored or verify) else None
    data = _read_checked(file, what=f"IHDP replication {r}", expected_sha256=expected, fix=fix)
    try:
        arr = pd.read_csv(io.BytesIO(data), header=None).to_numpy()
    except (ValueError, UnicodeDecodeError) as e:  # includes pandas' EmptyDataError
        raise ValueError(f"path: IHDP replication {r} at {file} does not parse as CSV ({e}). "
                         f"Fix: {fix}.") from e
    if arr.ndim != 2 or arr.shape[1] != _N_COLUMNS:
        raise ValueError(f"path: IHDP replication {r} at {file} has {arr.shape[-1]} columns, "
                         f"expected {_N_COLUMNS} (treatment, y_factual, y_cfactual, mu0, mu1, "
                         f"x1..x{N_COVARIATES}). Fix: {fix}.")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"path: IHDP replication {r} at {file} has non-numeric entries. "
                         f"Fix: {fix}.") from e
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"path: IHDP replication {r} at {file} contains NaN or inf. "
                         f"Fix: {fix}.")
    t = arr[:, 0]
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError(f"path: IHDP replication {r} at {file}: the treatment column (first) "
                         f"must be 0/1. Fix: {fix}.")
    mu0, mu1 = arr[:, 3].copy(), arr[:, 4].copy()
    return IHDP(x=np.ascontiguousarray(arr[:, 5:]), treatment=t.astype(np.int64),
                y_factual=arr[:, 1].copy(), y_cfactual=arr[:, 2].copy(), mu0=mu0, mu1=mu1,
                tau=mu1 - mu0)


def ihdp_logged_data(replication: int, *, indices: Any = None,
                     path: str | Path | None = None) -> LoggedData:
    """IHDP replication ``replication`` as :class:`LoggedData` with a binary action (0 control,
    1 treated), restricted to ``indices`` (an index array or a boolean mask over the 747 rows;
    ``None``: all).

    ``value`` and ``value_accounting`` are ``y_factual``; ``cost`` is zero (no incentive cost);
    ``truth.mu_value`` and ``truth.mu_value_accounting`` are ``[mu0, mu1]`` and ``truth.mu_cost``
    zero, so ``truth.tau_value[:, 1] = mu1 - mu0`` and PEHE against the truth works.

    Caveats (IHDP is an observational design, not a logged policy):

    - Treatment is NOT randomised and its propensity is unknown. ``action_prob`` is a
      placeholder so the record validates: every row gets the empirical treated share of the
      selected rows, ``[1 - p, p]``. It is not the logging propensity, so IPS/DR/SNIPS values
      and any learner that needs true propensities must not be trusted on this log; use it for
      CATE learners scored by PEHE against ``truth``.
    - ``segment`` is 0 for every row and ``period`` 0 (IHDP has no lifecycle or time);
      ``face_value`` is zero; ``redemption_lag`` -1; no concurrent programs.
    - ``truth.response_type`` is derived, not latent: 1 (persuadable) where ``tau > 0``, 3
      (sleeping dog) where ``tau < 0``, 2 (no effect) where ``tau == 0``.
    """
    d = load_ihdp(replication, path=path)
    n_all = d.treatment.shape[0]
    if indices is not None:
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (n_all,):
                raise ValueError(f"indices: a boolean mask must have shape ({n_all},), got "
                                 f"{idx.shape}. Fix: pass one entry per IHDP row.")
        elif not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
            raise ValueError("indices: expected a 1-D integer index array or a boolean mask. "
                             "Fix: e.g. np.arange(600).")
        elif idx.size and (idx.min() < 0 or idx.max() >= n_all):
            raise ValueError(f"indices: values must lie in [0, {n_all - 1}]. Fix: index the "
                             f"{n_all} IHDP rows.")
        d = IHDP(*(a[idx] for a in d))
    n = d.treatment.shape[0]
    if n == 0:
        raise ValueError("indices: selects no rows. Fix: select at least one IHDP row.")
    action = d.treatment.astype(np.int32)
    p = float(action.mean())
    mu = np.column_stack([d.mu0, d.mu1])
    rtype = np.where(d.tau > 0, _PERSUADABLE, np.where(d.tau < 0, _SLEEPING_DOG, _LOST_CAUSE))
    truth = Truth(mu_value=mu, mu_cost=np.zeros((n, 2)), mu_value_accounting=mu.copy(),
                  response_type=rtype.astype(np.int32))
    return LoggedData(
        x=d.x, segment=np.zeros(n, np.int32), period=np.zeros(n, np.int32),
        eligible=np.ones((n, 2), bool), action=action,
        action_prob=np.tile([1.0 - p, p], (n, 1)), value=d.y_factual.copy(),
        value_accounting=d.y_factual.copy(), cost=np.zeros(n),
        redemption_lag=np.full(n, -1, np.int32), other_actions=np.zeros((n, 0), np.int32),
        face_value=np.zeros(2), truth=truth,
    )


# ------------------------------------------------------------------------------- as a world
@dataclasses.dataclass(frozen=True)
class IHDPWorldConfig:
    """IHDP as a world to draw users from (:func:`ihdp_world_logged_data`): ``replication`` in
    1..10, whose 747 rows are resampled with replacement. No seed, no size."""

    replication: int = 1

    def __post_init__(self) -> None:
        check_int("IHDPWorldConfig.replication", self.replication, "use e.g. replication=1",
                  low=1, high=N_REPLICATIONS)


def ihdp_world_logged_data(key: jax.Array, config: IHDPWorldConfig, n: int, *,
                           logging: str = "uniform") -> LoggedData:
    """``n`` users of the replication's law: rows drawn uniformly with replacement from its 747
    children (``jax.random``), each *re-logged by a randomised trial*: treatment with
    probability 1/2, outcome the replication's simulated potential outcome of the drawn arm
    (``y_factual`` if it is the child's original treatment, else ``y_cfactual``: IHDP simulates
    both), truth ``[mu0, mu1]`` of the row. Only ``logging="uniform"``: the original assignment
    is not randomised and its propensity unknown, so there is no native log with propensities
    (``ValueError`` naming the fix)."""
    if logging != "uniform":
        fail("logging", f"{logging!r}: IHDP's own assignment is not randomised and its "
             "propensity is unknown, so it has no native log with propensities",
             "use source.logging=uniform (the rows re-logged by a randomised trial; "
             "experiment=ihdp runs the literature's protocol on the original assignment)")
    n = check_int("n", n, "e.g. n=2000", low=1)
    d = load_ihdp(config.replication)
    k_rows, k_w = jax.random.split(key)
    rows = np.asarray(jax.random.randint(k_rows, (n,), 0, d.treatment.shape[0]))
    action = np.asarray(jax.random.bernoulli(k_w, 0.5, (n,))).astype(np.int32)
    same = action == d.treatment[rows]
    y = np.where(same, d.y_factual[rows], d.y_cfactual[rows])
    mu = np.column_stack([d.mu0[rows], d.mu1[rows]])
    tau = d.tau[rows]
    rtype = np.where(tau > 0, _PERSUADABLE, np.where(tau < 0, _SLEEPING_DOG, _LOST_CAUSE))
    truth = Truth(mu_value=mu, mu_cost=np.zeros((n, 2)), mu_value_accounting=mu.copy(),
                  response_type=rtype.astype(np.int32))
    return LoggedData(
        x=d.x[rows], segment=np.zeros(n, np.int32), period=np.zeros(n, np.int32),
        eligible=np.ones((n, 2), bool), action=action, action_prob=np.full((n, 2), 0.5),
        value=y, value_accounting=y.copy(), cost=np.zeros(n),
        redemption_lag=np.full(n, -1, np.int32), other_actions=np.zeros((n, 0), np.int32),
        face_value=np.zeros(2), truth=truth)
