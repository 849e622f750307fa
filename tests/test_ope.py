"""Fast tests of estimators.ope: input errors, unsupported-mass warning, float64 agreement with a
NumPy reference, per-resample self-normalisation in the bootstrap, and the cross-fitted q_hat."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from estimators import ope
from estimators.ope_qhat import cross_fit_q_hat

N, K1 = 3_000, 5


@pytest.fixture(scope="module")
def arrays():
    """A synthetic log with known propensities: uniform logging over K+1 actions, a stochastic
    target policy, rewards heavy-ish tailed, and an imperfect q_hat."""
    rng = np.random.default_rng(7)
    logging = rng.dirichlet(np.ones(K1) * 3, size=N)
    action = np.array([rng.choice(K1, p=p) for p in logging])
    pscore = logging[np.arange(N), action]
    target = rng.dirichlet(np.ones(K1), size=N)
    mu = rng.normal(1.0, 1.0, size=(N, K1))
    reward = mu[np.arange(N), action] + rng.standard_t(5, size=N)
    q_hat = mu + rng.normal(0, 0.3, size=(N, K1))
    return dict(reward=reward, action=action, pscore=pscore, action_dist=target, q_hat=q_hat)


# ------------------------------------------------------------------------ NumPy reference
def _np_reference(name: str, reward, action, pscore, action_dist, q_hat, lam):
    """Plain float64 NumPy implementation of each estimator and its influence-function stderr."""
    n = len(reward)
    idx = np.arange(n)
    w = action_dist[idx, action] / pscore
    q = q_hat[idx, action]
    dmv = (action_dist * q_hat).sum(1)
    if name == "dm":
        phi = dmv
    elif name == "ips":
        phi = w * reward
    elif name == "clipped_ips":
        phi = np.minimum(w, lam) * reward
    elif name == "dr":
        phi = dmv + w * (reward - q)
    elif name == "switch_dr":
        phi = dmv + np.where(w <= lam, w, 0.0) * (reward - q)
    elif name == "dr_os":
        phi = dmv + lam * w / (w**2 + lam) * (reward - q)
    elif name == "snips":
        v = (w * reward).sum() / w.sum()
        phi = v + w * (reward - v) / w.mean()
        return v, phi.std(ddof=1) / np.sqrt(n)
    elif name == "sndr":
        b = (w * (reward - q)).sum() / w.sum()
        v = dmv.mean() + b
        phi = dmv + b + w * (reward - q - b) / w.mean()
        return v, phi.std(ddof=1) / np.sqrt(n)
    return phi.mean(), phi.std(ddof=1) / np.sqrt(n)


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_float64_agrees_with_numpy_reference(arrays, name):
    lam = 3.0 if name in ("clipped_ips", "switch_dr", "dr_os") else None
    est = ope.estimate(name, **arrays, lambda_=lam)
    v_ref, se_ref = _np_reference(name, **arrays, lam=lam if lam else np.inf)
    assert est.value == pytest.approx(v_ref, rel=1e-10)
    assert est.stderr == pytest.approx(se_ref, rel=1e-10)
    assert est.ci_low == pytest.approx(v_ref - 1.959963984540054 * se_ref, rel=1e-10)
    w = arrays["action_dist"][np.arange(N), arrays["action"]] / arrays["pscore"]
    if name != "dm":
        assert est.ess == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-10)
    assert est.max_weight == pytest.approx(w.max(), rel=1e-12)
    assert est.n == N and est.unsupported_mass == 0.0


def test_named_functions_match_estimate(arrays):
    assert ope.dr(**arrays) == ope.estimate("dr", **arrays)
    assert ope.snips(**{k: v for k, v in arrays.items() if k != "q_hat"}).value == \
        ope.estimate("snips", **arrays).value


def test_float64_accumulation_with_float32_inputs():
    """Float32 inputs are accumulated in float64: a sum of 2^20 values near 1e4 with small
    spread agrees with the float64 NumPy mean to 1e-10 (a float32 accumulator would be ~1e-4)."""
    rng = np.random.default_rng(0)
    n = 1 << 20
    reward = (1e4 + rng.random(n)).astype(np.float32)
    pi = np.ones((n, 2), np.float32) / 2
    est = ope.ips(reward=reward, action=np.zeros(n, np.int32), pscore=np.full(n, 0.5, np.float32),
                  action_dist=pi, logging_dist=pi)
    assert est.value == pytest.approx(reward.astype(np.float64).mean(), rel=1e-10)


# ------------------------------------------------------------------------------ bad inputs
def _bad(arrays, **change):
    return {**arrays, **change}


@pytest.mark.parametrize("change, field", [
    (lambda a: dict(pscore=np.where(np.arange(N) == 5, 0.0, a["pscore"])), "pscore"),
    (lambda a: dict(pscore=a["pscore"][:-1]), "pscore"),
    (lambda a: dict(action=a["action"][:-1]), "action"),
    (lambda a: dict(action=a["action"] + 1), "action"),
    (lambda a: dict(action_dist=a["action_dist"][:-1]), "action_dist"),
    (lambda a: dict(action_dist=a["action_dist"] * 1.01), "action_dist"),
    (lambda a: dict(q_hat=a["q_hat"][:, :-1]), "q_hat"),
    (lambda a: dict(reward=np.where(np.arange(N) == 3, np.nan, a["reward"])), "reward"),
    (lambda a: dict(q_hat=np.where(np.arange(N)[:, None] == 3, np.inf, a["q_hat"])), "q_hat"),
    (lambda a: dict(action_dist=np.where(np.arange(N)[:, None] == 3, np.nan,
                                         a["action_dist"])), "action_dist"),
    (lambda a: dict(pscore=np.where(np.arange(N) == 5, np.nan, a["pscore"])), "pscore"),
])
def test_bad_input_raises_value_error_naming_field(arrays, change, field):
    with pytest.raises(ValueError, match=field):
        ope.dr(**_bad(arrays, **change(arrays)))


def test_missing_options_raise(arrays):
    no_q = {k: v for k, v in arrays.items() if k != "q_hat"}
    with pytest.raises(ValueError, match="q_hat"):
        ope.dr(**no_q)
    with pytest.raises(ValueError, match="lambda_"):
        ope.switch_dr(**arrays)
    with pytest.raises(ValueError, match="alpha"):
        ope.ips(**arrays, alpha=1.5)
    with pytest.raises(ValueError, match="name"):
        ope.estimate("nope", **arrays)
    with pytest.raises(ValueError, match="n_boot"):
        ope.bootstrap("ips", **arrays, n_boot=5)


def test_unsupported_mass_is_warned_and_reported(arrays):
    """The logger never takes action K; a policy with 0.3 mass there is warned and reported."""
    a = arrays["action"].copy()
    keep = a != K1 - 1
    sub = {k: v[keep] for k, v in arrays.items()}
    pi = np.full((keep.sum(), K1), 0.7 / (K1 - 1))
    pi[:, -1] = 0.3
    with pytest.warns(ope.UnsupportedActionWarning, match="0.3000"):
        est = ope.ips(**{**sub, "action_dist": pi})
    assert est.unsupported_mass == pytest.approx(0.3, rel=1e-12)
    # per-row support from the logging distribution
    logging_dist = np.ones((keep.sum(), K1)) / K1
    logging_dist[:10, -1] = 0.0
    logging_dist[:10, :-1] = 1 / (K1 - 1)
    with pytest.warns(ope.UnsupportedActionWarning):
        est = ope.ips(**{**sub, "action_dist": pi}, logging_dist=logging_dist)
    assert est.unsupported_mass == pytest.approx(0.3 * 10 / keep.sum(), rel=1e-12)


# ------------------------------------------------------------------------------- bootstrap
def test_bootstrap_renormalises_inside_each_resample():
    """SNIPS is shift-equivariant: SNIPS(r + c) = SNIPS(r) + c, so its sampling sd does not grow
    with c. A bootstrap that normalises the weights once on the full sample (w_i / mean(w), then
    resamples the mean) ignores the randomness of the denominator; its sd grows like
    c * sd(w)/mean(w)/sqrt(n). With c = 100, sd(w)/mean(w) ~ 1 and n = 3,000 that is ~1.8, versus
    the true ~0.06, so the naive interval is > 5x too wide; ours matches the delta-method sd
    (a bootstrap sd with B = 400 has relative sd ~ 1/sqrt(2B) = 3.5%, so 20% is > 5 sd)."""
    rng = np.random.default_rng(3)
    n = N
    action = rng.integers(0, K1, n)
    pscore = np.full(n, 1 / K1)
    pi = rng.dirichlet(np.ones(K1) * 0.5, size=n)
    reward = 100.0 + rng.normal(0, 1, n)
    kw = dict(reward=reward, action=action, pscore=pscore, action_dist=pi)
    ours = ope.bootstrap("snips", **kw, n_boot=400, key=jax.random.key(1))
    analytic = ope.snips(**kw)
    assert ours.stderr == pytest.approx(analytic.stderr, rel=0.2)
    assert ours.ci_low <= ours.value <= ours.ci_high
    # naive: normalise once, then bootstrap the mean of w_norm * r
    w = pi[np.arange(n), action] / pscore
    contrib = w / w.mean() * reward
    naive = np.array([contrib[rng.integers(0, n, n)].mean() for _ in range(400)])
    assert naive.std(ddof=1) > 5 * ours.stderr


def test_bootstrap_ips_matches_analytic(arrays):
    """For a linear estimator the bootstrap sd estimates the same sd as the analytic stderr
    (relative Monte Carlo sd of the bootstrap sd with B = 400 is ~3.5%; 20% tolerance)."""
    b = ope.bootstrap("dr", **arrays, n_boot=400, key=jax.random.key(2))
    a = ope.dr(**arrays)
    assert b.value == a.value
    assert b.stderr == pytest.approx(a.stderr, rel=0.2)
    assert b.ci_high - b.ci_low == pytest.approx(a.ci_high - a.ci_low, rel=0.25)


# ----------------------------------------------------------------- differences and ratios
def test_paired_difference_equals_difference_and_is_tighter(arrays):
    base_pi = np.ones((N, K1)) / K1
    d = ope.paired_difference("dr", **arrays, baseline_dist=base_pi)
    new, old = ope.dr(**arrays), ope.dr(**{**arrays, "action_dist": base_pi})
    assert d.value == pytest.approx(new.value - old.value, rel=1e-12)
    assert d.stderr < np.hypot(new.stderr, old.stderr)


def test_incremental_roi_matches_ratio_and_rejects_zero_cost(arrays):
    rng = np.random.default_rng(1)
    cost = (arrays["action"] > 0) * (1.0 + rng.random(N))
    pi0 = np.zeros((N, K1))
    pi0[:, 0] = 1.0
    kw = dict(value_reward=arrays["reward"], cost_reward=cost, action=arrays["action"],
              pscore=arrays["pscore"], action_dist=arrays["action_dist"], baseline_dist=pi0)
    roi = ope.incremental_roi("ips", **kw)
    dv = ope.paired_difference("ips", reward=arrays["reward"], action=arrays["action"],
                               pscore=arrays["pscore"], action_dist=arrays["action_dist"],
                               baseline_dist=pi0)
    dc = ope.paired_difference("ips", reward=cost, action=arrays["action"],
                               pscore=arrays["pscore"], action_dist=arrays["action_dist"],
                               baseline_dist=pi0)
    assert roi.value == pytest.approx(dv.value / dc.value, rel=1e-12)
    assert roi.ci_low < roi.value < roi.ci_high
    with pytest.raises(ValueError, match="cost_reward"):
        ope.incremental_roi("ips", **{**kw, "baseline_dist": arrays["action_dist"]})


# ----------------------------------------------------------------------------- cross-fit q_hat
def test_cross_fit_q_hat_is_out_of_fold(uniform_log):
    """A row's q_hat must not depend on its own reward: changing one row's reward only changes
    predictions of rows in other folds, never its own."""
    d = uniform_log
    k1 = d.action_prob.shape[1]
    q = np.asarray(cross_fit_q_hat(d.x, d.action, d.value, n_actions=k1))
    r2 = d.value.copy()
    r2[0] += 1e4
    q2 = np.asarray(cross_fit_q_hat(d.x, d.action, r2, n_actions=k1))
    assert q.shape == (len(d.value), k1)
    np.testing.assert_array_equal(q[0], q2[0])
    assert not np.allclose(q, q2)
    # a useful model: correlated with the true mean outcome
    assert np.corrcoef(q.ravel(), d.truth.mu_value.ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit_q_hat(d.x, d.action, d.value, n_actions=k1, n_folds=1)
    with pytest.raises(ValueError, match="action"):
        cross_fit_q_hat(d.x, d.action, d.value, n_actions=2)


# -------------------------------------------------------------------- chunked host reduction
@pytest.fixture
def small_chunks(monkeypatch):
    """Force the chunked path (NumPy inputs with n > 4 chunks) on the 3,000-row log: 64-row
    chunks, the last one partial."""
    monkeypatch.setattr(ope, "CHUNK_ROWS", 64)


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_chunked_reduction_equals_the_single_pass(arrays, name, monkeypatch):
    lam = 3.0 if name in ("clipped_ips", "switch_dr", "dr_os") else None
    whole, phi_whole = ope.estimate(name, **arrays, lambda_=lam, return_influence=True)
    monkeypatch.setattr(ope, "CHUNK_ROWS", 64)
    calls = []
    real = ope._rows_and_checks_jit
    monkeypatch.setattr(ope, "_rows_and_checks_jit", lambda *a: calls.append(1) or real(*a))
    chunked, phi_chunked = ope.estimate(name, **arrays, lambda_=lam, return_influence=True)
    assert len(calls) == -(-N // 64), "the chunked path was not taken"
    for a, b in zip(whole, chunked, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(phi_whole, phi_chunked, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("change, field", [
    (lambda a: dict(action_dist=np.where(np.arange(N)[:, None] == N - 2, 0.5,
                                         a["action_dist"])), "action_dist"),
    (lambda a: dict(q_hat=np.where(np.arange(N)[:, None] == N - 1, np.inf, a["q_hat"])), "q_hat"),
    (lambda a: dict(reward=np.where(np.arange(N) == 1000, np.nan, a["reward"])), "reward"),
])
def test_chunked_reduction_still_rejects_bad_rows(arrays, small_chunks, change, field):
    """A bad row in any chunk (here the middle and the last, partial one) is still an error."""
    with pytest.raises(ValueError, match=field):
        ope.dr(**_bad(arrays, **change(arrays)))


def test_chunked_reduction_reports_unsupported_mass(arrays, small_chunks):
    pi = np.full((N, K1), 0.8 / (K1 - 1))
    pi[:, -1] = 0.2
    logging_dist = np.ones((N, K1)) / K1
    logging_dist[-100:, -1] = 0.0  # rows in the last two chunks never support action K
    logging_dist[-100:, :-1] = 1 / (K1 - 1)
    with pytest.warns(ope.UnsupportedActionWarning):
        est = ope.ips(**{**arrays, "action_dist": pi}, logging_dist=logging_dist)
    assert est.unsupported_mass == pytest.approx(0.2 * 100 / N, rel=1e-12)
