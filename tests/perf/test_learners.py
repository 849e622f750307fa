"""Learner benchmarks (run with ``-m perf --benchmark-enable -s``).

* DRLearner (ridge base, 2-fold cross-fitting), n = 1,000,000, d = 20, K = 4: fit time, against
  the same algorithm written in NumPy (``_numpy_dr``) measured in the same run.
* n = 200,000: the same DR-learner against EconML's ``DRLearner`` with equivalent linear models
  (per-arm ridge outcome models, ridge final stage, 2 folds); EconML must estimate propensities
  (multinomial logistic) where ours uses the logged ones. Prints the time ratio and both PEHEs.
* MLP T-learner at n = 200,000 (target <= 60 s), against the ridge T-learner in the same run.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest

from estimators.base import MLP, Ridge
from estimators.crossfit import fold_ids
from estimators.metrics import pehe
from estimators.uplift import DRLearner, TLearner
from simulators import LoggingConfig, WorldConfig, default_params, simulate

WORLD = WorldConfig(n_continuous=16, n_binary=4, n_offers=4)  # d = 20, K = 4


def _log(n: int, seed: int):
    return simulate(jax.random.key(seed), default_params(WORLD), WORLD, n,
                    LoggingConfig(kind="uniform"))


def _numpy_dr(x: np.ndarray, action: np.ndarray, y: np.ndarray, e: np.ndarray,
              alpha: float = 1.0, n_folds: int = 2, seed: int = 0) -> np.ndarray:
    """Reference: the same cross-fitted DR-learner (ridge everywhere) in NumPy, on the learner's
    folds (``estimators.crossfit.fold_ids`` of ``jax.random.key(seed)``); returns the
    final-stage coefficients ``(K, d+1)``."""
    n, d = x.shape
    k1 = e.shape[1]
    folds = np.asarray(fold_ids(n, n_folds, jax.random.key(seed)))

    def ridge(xx: np.ndarray, yy: np.ndarray, w: np.ndarray) -> np.ndarray:
        sw = w.sum()
        xm, ym = (w @ xx) / sw, (w @ yy) / sw
        xc = xx - xm
        beta = np.linalg.solve((xc * w[:, None]).T @ xc + alpha * np.eye(d),
                               (xc * w[:, None]).T @ (yy - ym))
        return np.concatenate([[ym - xm @ beta], beta])

    x1 = np.column_stack([np.ones(n), x])
    mu = np.zeros((n, k1))
    for f in range(n_folds):
        for a in range(k1):
            coef = ridge(x, y, ((folds != f) & (action == a)).astype(float))
            mu[folds == f, a] = x1[folds == f] @ coef
    onehot = np.eye(k1)[action]
    resid = onehot * (y[:, None] - mu) / np.where(e > 0, e, 1.0)
    phi = mu[:, 1:] - mu[:, :1] + resid[:, 1:] - resid[:, :1]
    return np.stack([ridge(x, phi[:, a], (e[:, a + 1] > 0).astype(float))
                     for a in range(k1 - 1)])


@pytest.mark.perf
def test_dr_learner_one_million_rows(benchmark):
    log = _log(1_000_000, 0)
    x, a, y, e = log.x, log.action, log.cost, log.action_prob

    def fit():
        learner = DRLearner(base=Ridge(1.0), final=Ridge(1.0), n_folds=2)
        learner.fit(x, a, y, e, WORLD.n_actions)
        return jax.block_until_ready(learner.final_params_)

    params = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=1)
    t_ours = benchmark.stats.stats.min
    t0 = time.perf_counter()
    ref = _numpy_dr(x, a, y, e)
    t_ref = time.perf_counter() - t0
    ours = np.column_stack([params.intercept, params.coef])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)  # same algorithm, same folds
    print(f"\nDRLearner n=1e6 d=20 K=4 2-fold: JAX {t_ours:.2f}s (min of 3), NumPy reference "
          f"{t_ref:.2f}s, ratio numpy/jax = {t_ref / t_ours:.2f}x")


class _PerArmRidge:
    """sklearn regressor over EconML's ``[X, onehot(T)[1:]]`` input: one ridge per arm (the
    T-learner outcome model our DR-learner uses)."""

    def __init__(self, n_offers: int = 4, alpha: float = 1.0) -> None:
        self.n_offers = n_offers
        self.alpha = alpha

    def get_params(self, deep: bool = True) -> dict:
        return {"n_offers": self.n_offers, "alpha": self.alpha}

    def set_params(self, **params) -> _PerArmRidge:
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def _split(self, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, t = xt[:, : -self.n_offers], xt[:, -self.n_offers:]
        arm = np.where(t.max(axis=1) > 0, t.argmax(axis=1) + 1, 0)
        return x, arm

    def fit(self, xt: np.ndarray, y: np.ndarray, sample_weight=None) -> _PerArmRidge:
        from sklearn.linear_model import Ridge as SkRidge

        x, arm = self._split(xt)
        self.models_ = [SkRidge(alpha=self.alpha).fit(x[arm == a], y[arm == a])
                        for a in range(self.n_offers + 1)]
        return self

    def predict(self, xt: np.ndarray) -> np.ndarray:
        x, arm = self._split(xt)
        out = np.zeros(len(x))
        for a, m in enumerate(self.models_):
            if np.any(arm == a):
                out[arm == a] = m.predict(x[arm == a])
        return out


@pytest.mark.perf
def test_dr_learner_against_econml(benchmark):
    econml_dr = pytest.importorskip("econml.dr")
    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model import Ridge as SkRidge

    n = 200_000
    train, evaluation = _log(n, 1), _log(20_000, 2)
    x, a, y, e = train.x, train.action, train.cost, train.action_prob
    truth = np.asarray(evaluation.truth.tau_cost)
    DRLearner().fit(x, a, y, e, WORLD.n_actions)  # warm-up: compile this shape

    def fit_ours():
        learner = DRLearner(base=Ridge(1.0), final=Ridge(1.0), n_folds=2).fit(
            x, a, y, e, WORLD.n_actions)
        return np.asarray(learner.predict_tau(evaluation.x))

    tau_ours = benchmark.pedantic(fit_ours, rounds=3, iterations=1)
    t_ours = benchmark.stats.stats.min
    est = econml_dr.DRLearner(model_regression=_PerArmRidge(WORLD.n_offers, 1.0),
                              model_propensity=LogisticRegression(max_iter=200),
                              model_final=SkRidge(alpha=1.0), cv=2, random_state=0)
    t0 = time.perf_counter()
    est.fit(y, a, X=x)
    tau_econ = np.column_stack([np.zeros(len(evaluation.x))] + [
        est.effect(evaluation.x, T0=0, T1=k) for k in range(1, WORLD.n_actions)])
    t_econ = time.perf_counter() - t0
    p_ours = pehe(tau_ours, truth, evaluation.eligible)
    p_econ = pehe(tau_econ, truth, evaluation.eligible)
    # like for like on the propensities: ours reads the logged ones, so also time EconML with a
    # propensity model that costs nothing (class frequencies; the log is uniform over eligible)
    from sklearn.dummy import DummyClassifier

    free = econml_dr.DRLearner(model_regression=_PerArmRidge(WORLD.n_offers, 1.0),
                               model_propensity=DummyClassifier(strategy="prior"),
                               model_final=SkRidge(alpha=1.0), cv=2, random_state=0)
    t0 = time.perf_counter()
    free.fit(y, a, X=x)
    for k in range(1, WORLD.n_actions):
        free.effect(evaluation.x, T0=0, T1=k)
    t_free = time.perf_counter() - t0
    print(f"\nDR-learner n=200k d=20 K=4 (cost head): ours {t_ours:.2f}s (min of 3), EconML "
          f"{t_econ:.2f}s with a logistic propensity model, {t_free:.2f}s with a free one "
          f"(speed-up {t_free / t_ours:.1f}x like for like); "
          f"speed-up {t_econ / t_ours:.1f}x (target >= 5x); PEHE ours "
          f"{p_ours:.4f}, EconML {p_econ:.4f}, relative {p_ours / p_econ - 1:+.2%} "
          f"(target within 5%)")
    assert np.isfinite(p_ours) and np.isfinite(p_econ)


@pytest.mark.perf
def test_mlp_t_learner_200k(benchmark):
    n = 200_000
    train = _log(n, 3)
    x, a, y = train.x, train.action, train.cost
    mlp = MLP(hidden=(64, 64), batch_size=512, max_epochs=30, patience=3)

    def fit_mlp():
        learner = TLearner(base=mlp).fit(x, a, y, n_actions=WORLD.n_actions)
        return np.asarray(learner.predict_tau(x[:20_000]))

    tau = benchmark.pedantic(fit_mlp, rounds=1, iterations=1)  # includes compilation
    t_mlp = benchmark.stats.stats.min
    t0 = time.perf_counter()
    tau_ridge = np.asarray(TLearner().fit(x, a, y, n_actions=WORLD.n_actions).predict_tau(
        x[:20_000]))
    t_ridge = time.perf_counter() - t0
    truth = np.asarray(train.truth.tau_cost)[:20_000]
    print(f"\nMLP T-learner n=200k d=20 K=4: {t_mlp:.1f}s incl. compile (target <= 60 s); "
          f"ridge T-learner reference {t_ridge:.2f}s (ratio {t_mlp / t_ridge:.0f}x); PEHE "
          f"MLP {pehe(tau, truth):.4f} vs ridge {pehe(tau_ridge, truth):.4f}")
