"""The one cross-fitting mechanism (``estimators.crossfit``): folds, support rule, masked fits,
and the callers built on it (``cross_fit_q_hat*``, ``DRLearner``, ``RLearner``).

Exactness claims (masked fit == subset fit, batched == per seed, wrapper == core) are checked to
1e-10 or exactly; they are algebraic identities evaluated in float64, not statistical claims.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from estimators.base import Logistic, Ridge
from estimators.crossfit import (
    MIN_TRAIN_ROWS,
    check_fold_support,
    cross_fit,
    cross_fit_batch,
    fit_masked,
    fold_action_masks,
    fold_ids,
    fold_ids_batch,
    predict_stacked,
)
from estimators.ope_qhat import cross_fit_q_hat, cross_fit_q_hat_batch
from estimators.uplift import DRLearner, RLearner

ROOT = Path(__file__).resolve().parents[1]


def _data(n: int = 90, d: int = 3, k1: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    action = np.arange(n) % k1
    reward = x @ rng.normal(size=d) + action + rng.normal(size=n)
    return x, action, reward


# ----------------------------------------------------------------------------------- folds
@pytest.mark.parametrize("n, n_folds", [(10, 2), (11, 3), (97, 5), (40, 20)])
def test_fold_ids_are_balanced_random_and_keyed(n, n_folds):
    f = np.asarray(fold_ids(n, n_folds, jax.random.key(3)))
    assert f.shape == (n,) and np.issubdtype(f.dtype, np.integer)
    counts = np.bincount(f, minlength=n_folds)
    assert len(counts) == n_folds and counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(f, np.asarray(fold_ids(n, n_folds, jax.random.key(3))))
    assert not np.array_equal(f, np.asarray(fold_ids(n, n_folds, jax.random.key(4))))


def test_fold_ids_batch_is_fold_ids_per_key():
    keys = jax.random.split(jax.random.key(7), 4)
    batch = np.asarray(fold_ids_batch(50, 3, keys))
    assert batch.shape == (4, 50)
    for s in range(4):
        np.testing.assert_array_equal(batch[s], np.asarray(fold_ids(50, 3, keys[s])))


@pytest.mark.parametrize("n_folds", [1, 0, 11, 2.0, True])
def test_fold_ids_reject_bad_n_folds(n_folds):
    with pytest.raises(ValueError, match=r"^n_folds: cross-fitting needs .*\. Fix: "):
        fold_ids(10, n_folds, jax.random.key(0))


# ---------------------------------------------------------------------------- support rule
def test_support_rule_needs_one_training_row_per_fold_and_action():
    """MIN_TRAIN_ROWS = 1: a complement holding exactly 1 row of an action passes, 0 fails with
    the shared message shape naming ``action``, the reported labels and n_folds."""
    assert MIN_TRAIN_ROWS == 1
    folds = np.array([0, 0, 1, 1, 0, 1])
    check_fold_support(np.array([0, 1, 0, 1, 2, 2]), folds, 3, 2)  # action 2: 1 row per side
    with pytest.raises(ValueError, match=r"^action: actions \[2\] have no training rows in "
                                         r"some fold's complement \(logged \[2\] times, "
                                         r"n_folds=2.*\. Fix: lower n_folds"):
        check_fold_support(np.array([0, 1, 0, 1, 2, 2]), np.array([0, 0, 1, 1, 0, 0]), 3, 2)
    with pytest.raises(ValueError, match=r"^action: actions \[4\] "):  # reported label
        check_fold_support(np.array([0, 1, 0, 1, 2, 2]), np.array([0, 0, 1, 1, 0, 0]), 3, 2,
                           labels=np.array([0, 3, 4]))


def test_support_rule_names_the_failing_seed():
    good = np.array([0, 1, 0, 1])
    folds = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])  # seed 1: action 0 only in fold 0
    check_fold_support(np.stack([good, good]), np.array([[0, 0, 1, 1]] * 2), 2, 2)
    with pytest.raises(ValueError, match=r"^action: actions \[0, 1\] .* in seed 1 "):
        check_fold_support(np.stack([good, good]), folds, 2, 2)


# ---------------------------------------------------------------------------- masked fits
@pytest.mark.parametrize("base", [Ridge(alpha=1.0), Ridge(alpha=0.3), Logistic(alpha=1.0)])
def test_masked_fit_equals_fit_on_the_selected_rows(base):
    """A 0/1 sample-weight mask drops rows exactly: the weighted loss is a sum over rows, so the
    masked fit and the subset fit solve the same problem (ridge: the same normal equations;
    logistic: the same Newton iterates). Per-arm and per-fold masks alike, to 1e-10."""
    x, action, reward = _data()
    if isinstance(base, Logistic):
        reward = (reward > np.median(reward)).astype(np.float64)
    folds = np.asarray(fold_ids(len(reward), 3, jax.random.key(1)))
    masks = np.asarray(fold_action_masks(jnp.asarray(folds), jnp.asarray(action), 3, 3))
    stacked = fit_masked(base, x, reward, masks)
    for j, m in enumerate(masks):
        f, a = divmod(j, 3)
        sel = (folds != f) & (action == a)
        np.testing.assert_array_equal(m, sel.astype(np.float64))  # fold-major order f*A + a
        ref = base.fit(x[sel], reward[sel])
        got = jax.tree_util.tree_map(lambda p, j=j: np.asarray(p)[j], stacked)
        for g, r in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref),
                        strict=True):
            np.testing.assert_allclose(g, np.asarray(r), rtol=1e-10, atol=1e-10)
    preds = np.asarray(predict_stacked(base, stacked, x))
    assert preds.shape == (len(reward), 9)
    np.testing.assert_allclose(preds[:, 4], np.asarray(base.predict(
        jax.tree_util.tree_map(lambda p: p[4], stacked), x)), rtol=1e-12, atol=1e-12)


def test_cross_fit_predicts_each_row_from_its_held_out_fold():
    x, action, reward = _data(n=60)
    folds = np.asarray(fold_ids(60, 4, jax.random.key(2)))
    base = Ridge(alpha=2.0)
    per_action = cross_fit(base, x, reward, folds, n_folds=4, action=action, n_actions=3)
    marginal = cross_fit(base, x, reward, folds, n_folds=4)
    assert per_action.predictions.shape == (60, 3) and marginal.predictions.shape == (60,)
    for f in range(4):
        rows = folds == f
        for a in range(3):
            ref = base.fit(x[(folds != f) & (action == a)], reward[(folds != f) & (action == a)])
            np.testing.assert_allclose(np.asarray(per_action.predictions)[rows, a],
                                       np.asarray(base.predict(ref, x[rows])), atol=1e-10)
        ref = base.fit(x[folds != f], reward[folds != f])
        np.testing.assert_allclose(np.asarray(marginal.predictions)[rows],
                                   np.asarray(base.predict(ref, x[rows])), atol=1e-10)
    # a row's prediction never depends on its own label
    bumped = reward.copy()
    bumped[5] += 1e3
    again = cross_fit(base, x, bumped, folds, n_folds=4, action=action, n_actions=3)
    np.testing.assert_array_equal(np.asarray(again.predictions)[5],
                                  np.asarray(per_action.predictions)[5])


def test_cross_fit_batch_equals_cross_fit_per_seed():
    logs = [_data(n=48, seed=s) for s in range(3)]
    x, action, reward = (np.stack(v) for v in zip(*logs, strict=True))
    folds = np.asarray(fold_ids_batch(48, 2, jax.random.split(jax.random.key(0), 3)))
    batch = cross_fit_batch(Ridge(), x, reward, folds, n_folds=2, action=action, n_actions=3)
    marginal = cross_fit_batch(Ridge(), x, reward, folds, n_folds=2)
    assert batch.predictions.shape == (3, 48, 3) and marginal.predictions.shape == (3, 48)
    for s in range(3):
        one = cross_fit(Ridge(), x[s], reward[s], folds[s], n_folds=2, action=action[s],
                        n_actions=3)
        np.testing.assert_allclose(np.asarray(batch.predictions)[s], np.asarray(one.predictions),
                                   rtol=1e-12, atol=1e-12)
        one = cross_fit(Ridge(), x[s], reward[s], folds[s], n_folds=2)
        np.testing.assert_allclose(np.asarray(marginal.predictions)[s],
                                   np.asarray(one.predictions), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"^n_actions: pass action and n_actions together"):
        cross_fit(Ridge(), x[0], reward[0], folds[0], n_folds=2, action=action[0])


# ------------------------------------------------------------------------------- callers
def test_cross_fit_q_hat_is_cross_fit_on_the_folds_of_its_key():
    x, action, reward = _data(n=75)
    key = jax.random.key(11)
    q = np.asarray(cross_fit_q_hat(x, action, reward, n_actions=3, n_folds=3, key=key))
    ref = cross_fit(Ridge(alpha=1.0), x, reward, fold_ids(75, 3, key), n_folds=3, action=action,
                    n_actions=3)
    np.testing.assert_array_equal(q, np.asarray(ref.predictions))
    qb = np.asarray(cross_fit_q_hat_batch(np.stack([x, x]), np.stack([action, action]),
                                          np.stack([reward, -reward]), n_actions=3, n_folds=3,
                                          key=key))
    keys = jax.random.split(key, 2)
    for s, y in enumerate((reward, -reward)):
        one = cross_fit_q_hat(x, action, y, n_actions=3, n_folds=3, key=keys[s])
        np.testing.assert_allclose(qb[s], np.asarray(one), rtol=1e-12, atol=1e-12)


def test_cross_fit_q_hat_requires_a_key():
    x, action, reward = _data(n=30)
    with pytest.raises(TypeError, match="key"):
        cross_fit_q_hat(x, action, reward, n_actions=3)
    with pytest.raises(TypeError, match="key"):
        cross_fit_q_hat_batch(x[None], action[None], reward[None], n_actions=3)


def test_dr_and_r_learners_cross_fit_on_the_folds_of_their_seed():
    """DRLearner's outcome models are crossfit.cross_fit on fold_ids(n, n_folds, key(seed))
    (exactly); RLearner's residualised fit uses the same folds, so its theta changes with the
    seed while a repeated seed reproduces it exactly."""
    x, action, reward = _data(n=120)
    prob = np.full((120, 3), 1.0 / 3.0)
    dr = DRLearner(n_folds=3, seed=5).fit(x, action, reward, prob)
    ref = cross_fit(Ridge(), x, reward, fold_ids(120, 3, jax.random.key(5)), n_folds=3,
                    action=action, n_actions=3)
    for g, r in zip(jax.tree_util.tree_leaves(dr.outcome_params_),
                    jax.tree_util.tree_leaves(ref.params), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r))
    t1 = np.asarray(RLearner(seed=1).fit(x, action, reward, prob).theta_)
    np.testing.assert_array_equal(t1, np.asarray(RLearner(seed=1).fit(x, action, reward,
                                                                      prob).theta_))
    assert not np.array_equal(t1, np.asarray(RLearner(seed=2).fit(x, action, reward,
                                                                  prob).theta_))
    for bad in (-1, 1.5, None):
        with pytest.raises(ValueError, match=r"^DRLearner.seed: must be an int >= 0"):
            DRLearner(seed=bad).fit(x, action, reward, prob)


# --------------------------------------------------------------------------- float64 rule
_X64_OFF_SCRIPT = """
import json, sys
import jax, numpy as np
assert not jax.config.jax_enable_x64
from estimators.base import Ridge
from estimators.crossfit import cross_fit, fit_masked, fold_ids
from estimators.ope_qhat import cross_fit_q_hat
from estimators.uplift import DRLearner, RLearner
x, action, reward, prob = (np.asarray(v) for v in json.loads(sys.stdin.read()))
q = cross_fit_q_hat(x, action, reward, n_actions=3, n_folds=3, key=jax.random.key(1))
dr = DRLearner(seed=2).fit(x, action, reward, prob).predict_tau(x)
r = RLearner(seed=2).fit(x, action, reward, prob).predict_mu(x)
w = fit_masked(Ridge(), x, reward, (action[None, :] == np.arange(3)[:, None]) * 1.0).coef
assert not jax.config.jax_enable_x64  # nothing switched the process
out = {k: [str(v.dtype), np.asarray(v).tolist()] for k, v in
       dict(q=q, dr=dr, r=r, w=w).items()}
print(json.dumps(out))
"""


@pytest.mark.slow  # a subprocess; tests/test_precision.py covers the x64-off path by default
def test_public_functions_run_in_float64_without_the_global_switch():
    """In a fresh interpreter with x64 off, the decorated entry points return float64 results
    equal to this (x64) session's to 1e-12, and leave the process setting off."""
    x, action, reward = _data(n=90)
    prob = np.full((90, 3), 1.0 / 3.0)
    payload = json.dumps([x.tolist(), action.tolist(), reward.tolist(), prob.tolist()])
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run([sys.executable, "-c", _X64_OFF_SCRIPT], input=payload, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = dict(
        q=cross_fit_q_hat(x, action, reward, n_actions=3, n_folds=3, key=jax.random.key(1)),
        dr=DRLearner(seed=2).fit(x, action, reward, prob).predict_tau(x),
        r=RLearner(seed=2).fit(x, action, reward, prob).predict_mu(x),
        w=fit_masked(Ridge(), x, reward, (action[None, :] == np.arange(3)[:, None]) * 1.0).coef)
    for k, v in ref.items():
        dtype, values = out[k]
        assert dtype == "float64", (k, dtype)
        np.testing.assert_allclose(np.asarray(values), np.asarray(v), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("base", [Ridge(alpha=1.0), Logistic(alpha=1.0)])
def test_fit_masked_row_padding_is_exact(base):
    """Row buckets (zero-weight padding) leave ridge and logistic fits unchanged, and a log that
    grows inside one bucket reuses the compilation."""
    from estimators.crossfit import fit_masked, padded_rows

    rng = np.random.default_rng(3)
    n = 1000
    x = rng.normal(size=(n, 4))
    y = (rng.uniform(size=n) < 0.4).astype(float)
    w = (rng.uniform(size=(3, n)) < 0.7).astype(float)
    assert padded_rows(n) == 1024 and padded_rows(5000) >= 5000
    assert padded_rows(5000) == 8192 and padded_rows(4097) == 8192 and padded_rows(300) == 512
    padded = fit_masked(base, x, y, w)
    direct = jax.jit(lambda xx, yy, ww: jax.lax.map(lambda m: base.fit(xx, yy, m), ww))(
        jnp.asarray(x), jnp.asarray(y), jnp.asarray(w))
    for a, b in zip(jax.tree_util.tree_leaves(padded), jax.tree_util.tree_leaves(direct),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("base", [Ridge(alpha=1.0), Logistic(alpha=1.0)])
def test_seed_batched_masked_fits_equal_each_seed_alone(base):
    """``fit_masked_batch`` (one compiled call for S logs, fits on gathered rows) and
    ``fit_masked_each`` (grouping logs by shape, here two row counts) return what
    ``fit_masked`` returns seed by seed, for a shared label and for one label per fit."""
    from estimators.crossfit import fit_masked_batch, fit_masked_each

    rng = np.random.default_rng(5)
    sizes = (700, 700, 500)
    xs = [rng.normal(size=(n, 3)) for n in sizes]
    ys = [(rng.uniform(size=n) < 0.3).astype(float) for n in sizes]
    ws = [(rng.integers(0, 3, n)[None, :] == np.arange(3)[:, None]).astype(float)
          for n in sizes]
    each = fit_masked_each(base, xs, ys, ws)
    stacked = fit_masked_batch(base, np.stack(xs[:2]), np.stack(ys[:2]), np.stack(ws[:2]))
    per_fit_y = [np.stack([y, 1 - y, y]) for y in ys[:2]]
    per_fit = fit_masked_batch(base, np.stack(xs[:2]), np.stack(per_fit_y), np.stack(ws[:2]))
    for s in range(3):
        alone = fit_masked(base, xs[s], ys[s], ws[s])
        for a, b in zip(jax.tree_util.tree_leaves(each[s]), jax.tree_util.tree_leaves(alone),
                        strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
        if s < 2:
            for a, b in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(alone),
                            strict=True):
                np.testing.assert_allclose(np.asarray(a)[s], np.asarray(b), rtol=1e-10,
                                           atol=1e-12)
            ref = fit_masked(base, xs[s], per_fit_y[s], ws[s])
            for a, b in zip(jax.tree_util.tree_leaves(per_fit), jax.tree_util.tree_leaves(ref),
                            strict=True):
                np.testing.assert_allclose(np.asarray(a)[s], np.asarray(b), rtol=1e-10,
                                           atol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        fit_masked_batch(base, np.stack(xs[:2]), np.stack(ys[:2]), ws[0])


def test_logistic_stops_at_convergence_with_the_fixed_iteration_answer():
    """Newton steps until the largest coefficient change is <= tol: the same fit as all 25
    steps (tol=0) to 1e-10, and a bad tol is a ValueError naming it."""
    x, _, reward = _data()
    y = (reward > np.median(reward)).astype(np.float64)
    early, full = Logistic().fit(x, y), Logistic(tol=0.0).fit(x, y)
    for a, b in zip(early, full, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="Logistic.tol"):
        Logistic(tol=-1.0)
