"""DR-learner, LightGBM base, against EconML's LightGBM DRLearner (``-m perf`` benchmark).

Target (issue 11): the DR-learner with the default nonlinear base, n = 200,000, d = 20, K = 4,
no slower than EconML's ``DRLearner`` with LightGBM nuisances in the same run. Measured and
printed here (fit + predict seconds of both, the ratio, PEHE against the truth), not asserted:
only sanity is asserted (shapes, finite values, and that both sides grow the same trees). Run:
``pytest -q -m perf tests/perf/test_dr_lightgbm_vs_econml.py --benchmark-enable -s``.

* **World**: the one of ``tests/perf/test_learners.py`` (16 continuous + 4 binary features,
  K = 4 offers + no offer, uniform logging over the eligible offers), n = 200,000 training
  users (key 1), 20,000 fresh evaluation users (key 2) with the exact ``tau_cost``; cost head
  (the label ``cost``), as the ridge comparison there.
* **Ours**: ``make_learner(HeadConfig(learner="dr", base="lightgbm"))``: ``DRLearner`` with
  2-fold cross-fitting, one ``LightGBM()`` outcome model per (fold, arm) (the default settings:
  100 rounds, learning rate 0.1, 7 leaves, 20 rows per leaf, no bagging, 1 thread), the logged
  propensities, a ``Ridge(alpha=1.0)`` final stage per offer. Fit + ``predict_tau`` on the
  evaluation users, after a warm-up fit of the same shapes (JAX compilation), min of
  :data:`ROUNDS` rounds.
* **EconML** 0.17 ``DRLearner(cv=2, random_state=0)`` with, on every LightGBM model, the same
  LightGBM settings as ours (:func:`_sklearn_kwargs`: trees, leaves, learning rate, rows per
  leaf, L2, seed, 1 thread, deterministic row-wise histograms; the test checks that
  ``LGBMRegressor`` with them grows the trees of our ``LightGBM`` bit for bit):

  - ``model_regression``: :class:`_PerArm` of that ``LGBMRegressor``, one booster per arm on
    EconML's ``[X, onehot(T)]`` input: the per-(fold, arm) outcome models our DR-learner fits
    (a single ``LGBMRegressor`` on ``[X, T]`` is the S-learner outcome model, timed as well);
  - ``model_propensity``: ``LGBMClassifier`` (multinomial, same settings); EconML has to
    estimate the propensities ours reads from the log, so, like for like, it is also timed with
    the logged propensities (:class:`_Logged`: they ride along as EconML's ``W`` columns, which
    its ``predict_proba`` returns and the outcome models drop; nothing to fit);
  - ``model_final``: ``sklearn.linear_model.Ridge(alpha=1.0)``, ours' final stage (a ridge of
    the AIPW pseudo-outcome on ``x`` with unpenalised intercept, one per offer), the closest
    like for like; EconML's final fit also uses the rows where an offer is ineligible, ours
    drops them.

  Fit + ``effect(T0=0, T1=k)`` for every offer on the evaluation users, min of
  :data:`ECON_ROUNDS` rounds each, after a small warm-up fit (imports).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np
import pytest

from estimators.gbm import LightGBM
from estimators.heads import HeadConfig, make_base, make_learner
from estimators.metrics import pehe
from simulators import LoggingConfig, WorldConfig, default_params, simulate

pytestmark = pytest.mark.perf

WORLD = WorldConfig(n_continuous=16, n_binary=4, n_offers=4)  # d = 20, K = 4
N, N_EVAL, ROUNDS, ECON_ROUNDS = 200_000, 20_000, 3, 2
HEAD = HeadConfig(learner="dr", base="lightgbm")  # default LightGBM(), Ridge(1.0) final, 2 folds


def _log(n: int, seed: int):
    return simulate(jax.random.key(seed), default_params(WORLD), WORLD, n,
                    LoggingConfig(kind="uniform"))


def _sklearn_kwargs(gbm: LightGBM) -> dict[str, Any]:
    """The scikit-learn-wrapper arguments of ``gbm``'s LightGBM parameters
    (:meth:`estimators.gbm.LightGBM.lightgbm_params`)."""
    return dict(n_estimators=gbm.n_estimators, learning_rate=gbm.learning_rate,
                num_leaves=gbm.num_leaves, min_child_samples=gbm.min_child_samples,
                subsample=gbm.subsample, subsample_freq=1 if gbm.subsample < 1.0 else 0,
                colsample_bytree=gbm.colsample, reg_lambda=gbm.reg_lambda,
                random_state=gbm.seed, n_jobs=gbm.n_jobs, deterministic=True,
                force_row_wise=True, verbosity=-1)


def _sklearn_classes():
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

    class _PerArm(RegressorMixin, BaseEstimator):
        """sklearn regressor over EconML's ``[X, W, onehot(T)[1:]]`` input: one clone of
        ``model`` per arm, fitted on that arm's rows of ``X`` (the T-learner outcome model of
        our DR-learner); the last ``n_w`` columns before ``T`` (``W``) are dropped."""

        def __init__(self, model: Any = None, n_offers: int = 4, n_w: int = 0) -> None:
            self.model = model
            self.n_offers = n_offers
            self.n_w = n_w

        def _split(self, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x, t = xt[:, : -(self.n_offers + self.n_w)], xt[:, -self.n_offers:]
            return x, np.where(t.max(axis=1) > 0, t.argmax(axis=1) + 1, 0)

        def fit(self, xt: np.ndarray, y: np.ndarray, sample_weight=None) -> _PerArm:
            x, arm = self._split(np.asarray(xt))
            y = np.asarray(y).ravel()
            self.models_ = [clone(self.model).fit(x[arm == a], y[arm == a])
                            for a in range(self.n_offers + 1)]
            return self

        def predict(self, xt: np.ndarray) -> np.ndarray:
            x, arm = self._split(np.asarray(xt))
            out = np.zeros(len(x))
            for a, m in enumerate(self.models_):
                if np.any(arm == a):
                    out[arm == a] = m.predict(x[arm == a])
            return out

    class _Logged(ClassifierMixin, BaseEstimator):
        """Propensity "model" over EconML's ``[X, W]`` input whose last ``n_actions`` columns
        (``W``) are the logged ``action_prob``: ``predict_proba`` returns them."""

        def __init__(self, n_actions: int = 5) -> None:
            self.n_actions = n_actions

        def fit(self, xw: np.ndarray, t: np.ndarray, sample_weight=None) -> _Logged:
            self.classes_ = np.arange(self.n_actions)
            return self

        def predict_proba(self, xw: np.ndarray) -> np.ndarray:
            return np.asarray(xw)[:, -self.n_actions:]

        def predict(self, xw: np.ndarray) -> np.ndarray:  # EconML scores each fold's model
            return self.predict_proba(xw).argmax(axis=1)

    return _PerArm, _Logged


def _econml_fit_effect(est: Any, y: np.ndarray, a: np.ndarray, x: np.ndarray,
                       xe: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    est.fit(y, a, X=x, W=w)
    return np.column_stack([np.zeros(len(xe))] + [
        np.asarray(est.effect(xe, T0=0, T1=k)) for k in range(1, WORLD.n_actions)])


def _min_time(fn, rounds: int) -> tuple[Any, float]:
    best, out = np.inf, None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def test_dr_lightgbm_against_econml(benchmark):
    econml_dr = pytest.importorskip("econml.dr")
    lgb = pytest.importorskip("lightgbm")
    from sklearn.linear_model import Ridge as SkRidge

    gbm = make_base(HEAD)
    assert isinstance(gbm, LightGBM)
    kw = _sklearn_kwargs(gbm)
    train, evaluation = _log(N, 1), _log(N_EVAL, 2)
    x, a, y, e = (np.asarray(train.x), np.asarray(train.action), np.asarray(train.cost),
                  np.asarray(train.action_prob))
    xe, truth = np.asarray(evaluation.x), np.asarray(evaluation.truth.tau_cost)

    # same LightGBM on both sides: the sklearn wrapper with these arguments grows our trees
    m = 5_000
    ours_gbm = gbm.predict(gbm.fit(x[:m], y[:m]), xe[:m])
    sk_gbm = lgb.LGBMRegressor(**kw).fit(x[:m], y[:m]).predict(xe[:m])
    np.testing.assert_allclose(np.asarray(ours_gbm), sk_gbm, rtol=0, atol=1e-12)

    def fit_ours() -> np.ndarray:
        learner = make_learner(HEAD).fit(x, a, y, e, WORLD.n_actions)
        return np.asarray(jax.block_until_ready(learner.predict_tau(xe)))

    fit_ours()  # warm-up: JAX compilation for these shapes
    tau_ours = benchmark.pedantic(fit_ours, rounds=ROUNDS, iterations=1)
    t_ours = benchmark.stats.stats.min

    per_arm, logged = _sklearn_classes()

    def econml(regression: Any, propensity: Any):
        return econml_dr.DRLearner(model_regression=regression, model_propensity=propensity,
                                   model_final=SkRidge(alpha=HEAD.alpha), cv=HEAD.n_folds,
                                   random_state=0)

    k1 = WORLD.n_actions
    variants = {  # name -> (outcome model, propensity model, W)
        "per-arm LGBM outcome, LGBM propensity": (
            per_arm(lgb.LGBMRegressor(**kw), WORLD.n_offers), lgb.LGBMClassifier(**kw), None),
        "per-arm LGBM outcome, logged propensity": (
            per_arm(lgb.LGBMRegressor(**kw), WORLD.n_offers, k1), logged(k1), e),
        "one LGBM on [X, T] outcome, LGBM propensity": (
            lgb.LGBMRegressor(**kw), lgb.LGBMClassifier(**kw), None),
    }
    m = 2_000  # warm-up (imports, first-call overheads), not timed
    _econml_fit_effect(econml(*variants["per-arm LGBM outcome, LGBM propensity"][:2]),
                       y[:m], a[:m], x[:m], xe[:m])
    results = {}
    for name, (reg, prop, w) in variants.items():
        results[name] = _min_time(lambda reg=reg, prop=prop, w=w: _econml_fit_effect(
            econml(reg, prop), y, a, x, xe, w), ECON_ROUNDS)

    p_ours = pehe(tau_ours, truth, evaluation.eligible)
    assert tau_ours.shape == truth.shape and np.isfinite(p_ours)
    print(f"\nDR-learner LightGBM base n={N} d=20 K=4 (cost head), {HEAD.n_folds} folds, "
          f"LightGBM {gbm.n_estimators} trees / {gbm.num_leaves} leaves / lr "
          f"{gbm.learning_rate:g} / {gbm.n_jobs} thread, ridge final (alpha {HEAD.alpha:g}), "
          f"fit + predict on {N_EVAL} users:\n"
          f"  ours (logged propensity): {t_ours:.2f}s (min of {ROUNDS}), PEHE {p_ours:.4f}")
    for name, (tau, t) in results.items():
        p = pehe(tau, truth, evaluation.eligible)
        assert tau.shape == truth.shape and np.isfinite(p)
        print(f"  EconML DRLearner ({name}, Ridge final): {t:.2f}s (min of {ECON_ROUNDS}), "
              f"PEHE {p:.4f}; ratio EconML / ours = {t / t_ours:.2f}x "
              f"(target >= 1), PEHE ours / EconML = {p_ours / p:.3f}")
