"""LightGBM base model: honours the base-model contract (zero weights drop rows, positive weights
are weights, float64 (n,) predictions), is reproducible from its seed, fits a step function to
within a noise-derived bound (where ridge cannot), and runs through the host path of
estimators.crossfit inside the T- and DR-learners."""

from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("lightgbm")

from estimators.base import Ridge
from estimators.crossfit import HostFits, cross_fit, fit_masked, fold_ids, predict_stacked
from estimators.gbm import LightGBM, LightGBMParams
from estimators.metrics import pehe
from estimators.uplift import DRLearner, TLearner

SMALL = LightGBM()  # the defaults: 100 rounds of 7-leaf trees, learning rate 0.1
SIGMA = 0.5


def _step(x: np.ndarray) -> np.ndarray:
    """Two axis-aligned steps: 4 cells, piecewise constant (trees can represent it exactly)."""
    return 2.0 * (x[:, 0] > 0.5) + 1.0 * (x[:, 1] > 0.3)


def _step_data(seed: int, n: int, d: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d))
    f = _step(x)
    return x, f, f + SIGMA * rng.normal(size=n)


def test_fits_a_step_function_to_within_a_noise_derived_bound_and_beats_ridge():
    x, _, y = _step_data(0, 2000)
    xt, ft, _ = _step_data(1, 5000)
    params = SMALL.fit(x, y)
    assert isinstance(params, LightGBMParams) and params.n_iterations == 100
    pred = SMALL.predict(params, xt)
    assert pred.shape == (5000,) and pred.dtype == np.float64
    mse = float(np.mean((np.asarray(pred) - ft) ** 2))
    ridge = Ridge(1.0)
    mse_ridge = float(np.mean((np.asarray(ridge.predict(ridge.fit(x, y), xt)) - ft) ** 2))
    # Bound from the noise: the fit error must stay below a quarter of the noise variance,
    # sigma^2 / 4 = 0.0625. The cell-mean oracle (knows the 4 cells) reaches sigma^2 * 4 / n =
    # 5e-4; predicting the mean leaves Var(f) = 1 + 0.21 = 1.21; the best linear fit leaves
    # 0.25 (1 - 0.75) + 0.21 (1 - 0.63) = 0.33 (a step 1{x > c} of x ~ U(0,1) has R^2 = 3c(1-c)
    # on x: 0.75 at c = 0.5, 0.63 at c = 0.3), so ridge cannot meet the bound, nor can an
    # underfitted (too few rounds) or a noise-chasing boosted fit (both measured: 0.65, 0.14).
    assert mse < SIGMA**2 / 4, mse
    assert mse_ridge > 0.3 and mse < 0.25 * mse_ridge, (mse, mse_ridge)


def test_zero_weight_rows_are_dropped_exactly():
    x, _, y = _step_data(2, 600)
    rng = np.random.default_rng(3)
    w = rng.uniform(0.2, 3.0, size=600)
    w[rng.uniform(size=600) < 0.3] = 0.0
    keep = w > 0
    cfg = LightGBM(subsample=0.8, colsample=0.67, seed=5)
    full = cfg.fit(x, y, w)
    sub = cfg.fit(x[keep], y[keep], w[keep])
    assert full.n_train == int(keep.sum()) == sub.n_train
    assert full.booster.model_to_string() == sub.booster.model_to_string()
    np.testing.assert_array_equal(np.asarray(cfg.predict(full, x)), np.asarray(cfg.predict(sub, x)))
    # A 0/1 mask is the unweighted fit on the selected rows (weights of one change nothing).
    mask = cfg.fit(x, y, keep.astype(np.float64))
    plain = cfg.fit(x[keep], y[keep])
    np.testing.assert_array_equal(np.asarray(cfg.predict(mask, x)),
                                  np.asarray(cfg.predict(plain, x)))
    # The zero-weight rows really were dropped: with them kept (weight 1) the model differs.
    ones = cfg.fit(x, y)
    gap = np.asarray(cfg.predict(ones, x)) - np.asarray(cfg.predict(plain, x))
    assert np.max(np.abs(gap)) > 1e-3


def test_positive_weights_are_passed_to_lightgbm():
    # One stump (2 leaves, learning rate 1, no penalty) on a binary feature: each leaf predicts the
    # weighted mean of its group, sum w y / sum w, which differs from the plain mean here.
    rng = np.random.default_rng(4)
    g = (rng.uniform(size=1000) < 0.5).astype(np.float64)
    y = g + rng.normal(size=1000)
    w = rng.uniform(0.1, 3.0, size=1000)
    stump = LightGBM(n_estimators=1, learning_rate=1.0, num_leaves=2, min_child_samples=1)
    pred = np.asarray(stump.predict(stump.fit(g[:, None], y, w), np.array([[0.0], [1.0]])))
    ref = np.array([np.sum(w[g == k] * y[g == k]) / np.sum(w[g == k]) for k in (0, 1)])
    plain = np.array([y[g == k].mean() for k in (0, 1)])
    # LightGBM stores labels as float32 (relative rounding 6e-8, |y| < 5): <= 3e-7 in a mean.
    np.testing.assert_allclose(pred, ref, atol=1e-6)
    assert np.min(np.abs(ref - plain)) > 1e-3  # the check can tell weighted from unweighted


def test_reproducible_from_seed():
    x, _, y = _step_data(5, 800)
    cfg = LightGBM(subsample=0.7, colsample=0.67, seed=11)
    a, b = cfg.fit(x, y), cfg.fit(x, y)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    np.testing.assert_array_equal(np.asarray(cfg.predict(a, x)), np.asarray(cfg.predict(b, x)))
    # (n_jobs > 1 is not tested: OpenMP threads on a shared 2-core machine can take minutes.)
    # The seed drives bagging / feature sampling: another seed gives other trees.
    d = dataclasses.replace(cfg, seed=12).fit(x, y)
    assert np.max(np.abs(np.asarray(cfg.predict(a, x)) - np.asarray(cfg.predict(d, x)))) > 1e-3


def test_early_stopping_on_a_seeded_validation_split():
    x, f, y = _step_data(6, 1500)
    cfg = LightGBM(n_estimators=2000, validation_fraction=0.25, early_stopping_rounds=10, seed=3)
    p = cfg.fit(x, y)
    assert p.n_train == 1500 - round(0.25 * 1500)
    assert 1 <= p.n_iterations < 2000  # stopped long before the cap
    assert cfg.fit(x, y).booster.model_to_string() == p.booster.model_to_string()
    mse = float(np.mean((np.asarray(cfg.predict(p, x)) - f) ** 2))
    assert mse < SIGMA**2 / 4, mse
    with pytest.raises(ValueError, match="LightGBM.validation_fraction"):
        LightGBM(validation_fraction=0.2).fit(x[:2], y[:2])  # round(0.4) = 0 validation rows


def _uplift_data(seed: int, n: int) -> dict[str, np.ndarray]:
    """x ~ U(0,1)^3, e(x) = 0.25 + 0.5 x0 (confounded through x0), mu0 = 1{x1>0.5} + x2,
    tau = 2 * 1{x0>0.5} - 1{x1>0.5}, y = mu0 + a tau + sigma eps."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 3))
    e = 0.25 + 0.5 * x[:, 0]
    a = (rng.uniform(size=n) < e).astype(np.int64)
    mu0 = 1.0 * (x[:, 1] > 0.5) + x[:, 2]
    tau = 2.0 * (x[:, 0] > 0.5) - 1.0 * (x[:, 1] > 0.5)
    y = mu0 + a * tau + SIGMA * rng.normal(size=n)
    return {"x": x, "a": a, "y": y, "prob": np.column_stack([1 - e, e]), "tau": tau, "e": e}


def _truth_tau(tau: np.ndarray) -> np.ndarray:
    return np.column_stack([np.zeros_like(tau), tau])


def test_t_and_dr_learners_run_the_host_path_and_recover_a_step_tau():
    tr, te = _uplift_data(7, 4000), _uplift_data(8, 4000)
    truth = _truth_tau(te["tau"])
    sd_tau = float(np.std(te["tau"]))  # PEHE of the best constant effect, about 1.12

    t = TLearner(base=SMALL).fit(tr["x"], tr["a"], tr["y"], tr["prob"])
    assert isinstance(t.params_, HostFits) and len(t.params_) == 2
    t_pehe = pehe(np.asarray(t.predict_tau(te["x"])), truth)
    ridge_pehe = pehe(np.asarray(TLearner().fit(tr["x"], tr["a"], tr["y"]).predict_tau(te["x"])),
                      truth)
    # T: PEHE^2 ~ MSE(mu1) + MSE(mu0), each held to sigma^2/4 by the rule of the step-function
    # test, so PEHE <= sigma / sqrt(2) = 0.35; no linear tau gets below sqrt(0.25 + 0.0625) =
    # 0.56 on U(0,1)^3 (the steps' R^2 on x, as above), so ridge cannot.
    assert t_pehe < SIGMA / np.sqrt(2), t_pehe
    assert t_pehe < 0.7 * ridge_pehe < 0.7 * sd_tau, (t_pehe, ridge_pehe, sd_tau)

    dr = DRLearner(base=SMALL, final=SMALL, n_folds=2, seed=0).fit(tr["x"], tr["a"], tr["y"],
                                                                   tr["prob"])
    assert isinstance(dr.outcome_params_, HostFits) and len(dr.outcome_params_) == 4
    assert isinstance(dr.final_params_, HostFits) and len(dr.final_params_) == 1
    dr_pehe = pehe(np.asarray(dr.predict_tau(te["x"])), truth)
    # DR: the final fit regresses phi with conditional noise variance
    # sigma^2 (1/e + 1/(1-e)) (plus out-of-fold nuisance error); the same rule (final-fit MSE
    # below a quarter of its noise variance) gives PEHE <= sigma sqrt(E[1/e + 1/(1-e)]) / 2.
    phi_sd = SIGMA * np.sqrt(np.mean(1 / tr["e"] + 1 / (1 - tr["e"])))
    assert dr_pehe < phi_sd / 2 < 0.5 * sd_tau, (dr_pehe, phi_sd, sd_tau)
    mu = np.asarray(dr.predict_mu(te["x"]))
    np.testing.assert_allclose(mu - mu[:, :1], np.asarray(dr.predict_tau(te["x"])), atol=1e-12)


def test_crossfit_host_path_matches_per_mask_fits():
    x, _, y = _step_data(9, 300)
    folds = fold_ids(300, 3, jax.random.key(0))
    cf = cross_fit(SMALL, x, y, folds, n_folds=3)
    assert isinstance(cf.params, HostFits) and len(cf.params) == 3
    f = np.asarray(folds)
    for k in range(3):
        own = SMALL.fit(x[f != k], y[f != k])
        np.testing.assert_array_equal(np.asarray(cf.predictions)[f == k],
                                      np.asarray(SMALL.predict(own, x[f == k])))
    masks = np.stack([(f != k).astype(np.float64) for k in range(3)])
    stacked = fit_masked(SMALL, x, y, masks)
    assert isinstance(stacked, HostFits)
    assert predict_stacked(SMALL, stacked, x).shape == (300, 3)


@pytest.mark.parametrize(("field", "value"), [
    ("n_estimators", 0), ("n_estimators", 2.5), ("learning_rate", 0.0),
    ("learning_rate", float("nan")), ("num_leaves", 1), ("min_child_samples", 0),
    ("subsample", 0.0), ("subsample", 1.5), ("colsample", 0.0), ("reg_lambda", -1.0),
    ("validation_fraction", 0.0), ("validation_fraction", 1.0), ("early_stopping_rounds", 0),
    ("seed", -1), ("seed", True), ("n_jobs", 0),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"LightGBM.{field}:.*Fix:"):
        LightGBM(**{field: value})


def test_bad_inputs_and_traced_calls_raise():
    x, _, y = _step_data(10, 100)
    with pytest.raises(ValueError, match="sample_weight"):
        SMALL.fit(x, y, -np.ones(100))
    with pytest.raises(ValueError, match="zero everywhere"):
        SMALL.fit(x, y, np.zeros(100))
    with pytest.raises(ValueError, match="x must be 2-D"):
        SMALL.fit(x[:, 0], y)
    p = SMALL.fit(x, y)
    with pytest.raises(ValueError, match=r"LightGBM.predict: x must have shape \(n, 3\)"):
        SMALL.predict(p, x[:, :2])
    with pytest.raises(ValueError, match="traceable = False"):
        jax.jit(lambda xx: SMALL.fit(xx, y))(x)


def test_missing_lightgbm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` fail
    x, _, y = _step_data(11, 50)
    with pytest.raises(ImportError, match=r"pip install 'allocbench\[gbm\]'"):
        SMALL.fit(x, y)
