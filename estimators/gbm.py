"""LightGBM gradient-boosted trees as an optional, non-traceable base model.

:class:`LightGBM` follows the base-model contract of :mod:`estimators.base`
(``fit(x, y, sample_weight=None) -> params``, ``predict(params, x) -> (n,)``), but it runs the
``lightgbm`` C++ library on the host, so it cannot be traced under ``jit``/``vmap``: it sets
``traceable = False`` and :mod:`estimators.crossfit` then fits it once per mask, one fit after
another (:func:`estimators.crossfit.is_traceable`, :class:`estimators.crossfit.HostFits`).

Model: least-squares gradient boosting. Starting from the weighted mean
``F_0 = sum_i w_i y_i / sum_i w_i``, round ``t`` grows a regression tree ``h_t`` (at most
``num_leaves`` leaves, each holding ``>= min_child_samples`` training rows) on the weighted
residuals, with leaf values ``-sum_{i in leaf} w_i g_i / (sum_{i in leaf} w_i + reg_lambda)``
(``g_i = F_{t-1}(x_i) - y_i``), and sets ``F_t = F_{t-1} + learning_rate * h_t``. It minimises
``sum_i w_i (y_i - F(x_i))^2`` (plus the L2 leaf penalty), so a zero weight drops a row: rows with
``w_i = 0`` are removed before LightGBM sees them (the fit equals the fit on the positive-weight
rows; LightGBM's feature binning then uses those rows only, exactly as a fit on the subset).
``subsample < 1`` draws a fresh row fraction per round (bagging), ``colsample < 1`` a feature
fraction per tree. With ``validation_fraction`` set, that share of the positive-weight rows is
held out (a permutation drawn from ``seed``) and boosting stops after ``early_stopping_rounds``
rounds without a lower weighted validation MSE; ``predict`` then uses the best round.

Reproducibility: ``deterministic=True``, ``force_row_wise=True`` (no timing-based choice of the
histogram layout), ``num_threads=n_jobs`` and every LightGBM random stream seeded from ``seed``:
the same config and data give the same trees, bit for bit.

``lightgbm`` is an optional dependency (``pip install 'allocbench[gbm]'``), imported inside
:meth:`LightGBM.fit` only, so importing this module never needs it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import check_xy
from estimators.checks import check_int, check_real, fail
from estimators.precision import float64_methods

__all__ = ["LightGBM", "LightGBMParams"]

_INSTALL = "pip install 'allocbench[gbm]'"
_SEED_MAX = 2**31 - 1  # LightGBM seeds are C int32


class LightGBMParams(NamedTuple):
    """A fitted :class:`LightGBM`: the ``lightgbm.Booster``, the number of boosting rounds
    ``predict`` uses (the best round under early stopping, else every round grown) and the
    number of (positive-weight) rows the trees were grown on."""

    booster: Any
    n_iterations: int
    n_train: int


def _import_lightgbm() -> Any:
    try:
        return importlib.import_module("lightgbm")
    except ImportError as e:
        raise ImportError(f"LightGBM: the optional dependency lightgbm is not installed ({e}). "
                          f"Fix: {_INSTALL} (or pip install 'lightgbm>=4,<5').") from e


def _is_concrete(*arrays: Any) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def _check_int(name: str, value: Any, low: int, fix: str, high: int | None = None) -> None:
    check_int(f"LightGBM.{name}", value, fix, low=low, high=high)


def _check_real(name: str, value: Any, fix: str, *, low: float, high: float = math.inf,
                low_open: bool = False, high_open: bool = False) -> None:
    check_real(f"LightGBM.{name}", value, fix, low=low, high=high, low_open=low_open,
               high_open=high_open)


@float64_methods("fit", "predict")
@dataclasses.dataclass(frozen=True)
class LightGBM:
    """Gradient-boosted regression trees (LightGBM, squared loss) behind the base-model contract.

    Defaults are LightGBM's own regression defaults (100 rounds, learning rate 0.1, 20 rows per
    leaf, no bagging, no feature subsampling, no L2 leaf penalty) except ``num_leaves = 7``
    (LightGBM: 31) and ``n_jobs = 1`` (one thread: reproducible, and fair to a shared machine).
    Base models here fit per-arm and per-fold subsets of typically 10^2-10^4 rows, where 31-leaf
    trees chase noise: on the Nie & Wager setups (n = 2000, sigma = 1, held-out seeds) the
    T-learner's PEHE was 0.46-0.66 with 7 leaves against 0.67-0.82 with 31. Field names follow
    the scikit-learn wrapper; they map to LightGBM as ``n_estimators -> num_boost_round``,
    ``min_child_samples -> min_data_in_leaf``, ``subsample -> bagging_fraction`` (with
    ``bagging_freq = 1`` when below 1), ``colsample -> feature_fraction``,
    ``reg_lambda -> lambda_l2``, ``seed -> seed``, ``n_jobs -> num_threads``.
    ``validation_fraction = None`` (default) grows all ``n_estimators`` rounds; a value in
    ``(0, 1)`` holds out that share of the positive-weight rows for early stopping after
    ``early_stopping_rounds`` rounds without improvement (module docstring).
    """

    traceable: ClassVar[bool] = False

    n_estimators: int = 100
    learning_rate: float = 0.1
    num_leaves: int = 7
    min_child_samples: int = 20
    subsample: float = 1.0
    colsample: float = 1.0
    reg_lambda: float = 0.0
    validation_fraction: float | None = None
    early_stopping_rounds: int = 10
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        _check_int("n_estimators", self.n_estimators, 1, "use e.g. n_estimators=100")
        _check_real("learning_rate", self.learning_rate, "use e.g. learning_rate=0.1", low=0.0,
                    low_open=True)
        _check_int("num_leaves", self.num_leaves, 2,
                   "a tree needs >= 2 leaves; e.g. 7 (the default) or 31", high=131072)
        _check_int("min_child_samples", self.min_child_samples, 1,
                   "use e.g. min_child_samples=20 (rows per leaf)")
        _check_real("subsample", self.subsample, "use a row fraction in (0, 1], 1.0 = no "
                    "bagging", low=0.0, high=1.0, low_open=True)
        _check_real("colsample", self.colsample, "use a feature fraction in (0, 1], 1.0 = all "
                    "features", low=0.0, high=1.0, low_open=True)
        _check_real("reg_lambda", self.reg_lambda, "use an L2 leaf penalty >= 0, e.g. 0.0",
                    low=0.0)
        if self.validation_fraction is not None:
            _check_real("validation_fraction", self.validation_fraction,
                        "use None (no early stopping) or a held-out share in (0, 1), e.g. 0.2",
                        low=0.0, high=1.0, low_open=True, high_open=True)
        _check_int("early_stopping_rounds", self.early_stopping_rounds, 1,
                   "use e.g. early_stopping_rounds=10")
        _check_int("seed", self.seed, 0, "use e.g. seed=0 (LightGBM seeds are int32)",
                   high=_SEED_MAX)
        _check_int("n_jobs", self.n_jobs, 1, "use n_jobs=1 (threads; 1 is the reproducible "
                   "default)")

    def lightgbm_params(self) -> dict[str, Any]:
        """The parameter dict passed to ``lightgbm.train``."""
        return {
            "objective": "regression",
            "metric": "l2",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "bagging_fraction": float(self.subsample),
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "feature_fraction": float(self.colsample),
            "lambda_l2": float(self.reg_lambda),
            "seed": int(self.seed),
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": int(self.n_jobs),
            "verbosity": -1,
        }

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> LightGBMParams:
        """Boost on the rows with positive ``sample_weight`` (all rows when ``None``), those
        weights passed to LightGBM; zero-weight rows are dropped first."""
        if not _is_concrete(x, y, sample_weight):
            fail("LightGBM.fit", "called on traced arrays (inside jit/vmap/grad), but LightGBM "
                 "runs on the host (traceable = False)",
                 "call fit outside jit; estimators.crossfit fits non-traceable bases on the "
                 "host once per mask")
        check_xy(x, y, sample_weight, "LightGBM.fit")
        lgb = _import_lightgbm()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            keep = w > 0
            x, y, w = x[keep], y[keep], w[keep]
        m = y.shape[0]
        params = self.lightgbm_params()
        if self.validation_fraction is None:
            train = lgb.Dataset(x, y, weight=w, params=params, free_raw_data=True)
            booster = lgb.train(params, train, num_boost_round=int(self.n_estimators))
            return LightGBMParams(booster, int(booster.current_iteration()), m)
        n_val = round(self.validation_fraction * m)
        if n_val < 1 or n_val > m - 1:
            fail("LightGBM.validation_fraction",
                 f"{self.validation_fraction} of the {m} rows with positive weight leaves an "
                 f"empty {'validation' if n_val < 1 else 'training'} split",
                 "use validation_fraction=None (no early stopping) for so few rows, or pass "
                 "more rows")
        perm = np.random.default_rng(self.seed).permutation(m)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        wt, wv = (None, None) if w is None else (w[tr], w[val])
        train = lgb.Dataset(x[tr], y[tr], weight=wt, params=params, free_raw_data=True)
        valid = lgb.Dataset(x[val], y[val], weight=wv, reference=train, params=params)
        booster = lgb.train(params, train, num_boost_round=int(self.n_estimators),
                            valid_sets=[valid], valid_names=["validation"],
                            callbacks=[lgb.early_stopping(int(self.early_stopping_rounds),
                                                          verbose=False)])
        best = int(booster.best_iteration) or int(booster.current_iteration())
        return LightGBMParams(booster, best, len(tr))

    def predict(self, params: LightGBMParams, x: Any) -> jax.Array:
        """``F(x)`` of the fitted ensemble (its first ``params.n_iterations`` rounds),
        ``(n,)`` float64."""
        if not _is_concrete(x):
            fail("LightGBM.predict", "called on a traced array (inside jit/vmap/grad), but "
                 "LightGBM runs on the host (traceable = False)", "call predict outside jit")
        xa = np.asarray(x, dtype=np.float64)
        n_features = int(params.booster.num_feature())
        if xa.ndim != 2 or xa.shape[1] != n_features:
            fail("LightGBM.predict", f"x must have shape (n, {n_features}) as in fit, got "
                 f"{xa.shape}", "pass the same feature columns the model was fitted on")
        if xa.shape[0] == 0:
            return jnp.zeros((0,), dtype=jnp.float64)
        pred = params.booster.predict(xa, num_iteration=params.n_iterations)
        return jnp.asarray(np.asarray(pred, dtype=np.float64))
