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
def full_log():
    """A synthetic log with known propensities: random (Dirichlet) logging distributions over K+1
    actions, a stochastic target policy, rewards heavy-ish tailed, and an imperfect q_hat; with
    the logging distribution as ``logging_dist``."""
    rng = np.random.default_rng(7)
    logging = rng.dirichlet(np.ones(K1) * 3, size=N)
    action = np.array([rng.choice(K1, p=p) for p in logging])
    pscore = logging[np.arange(N), action]
    target = rng.dirichlet(np.ones(K1), size=N)
    mu = rng.normal(1.0, 1.0, size=(N, K1))
    reward = mu[np.arange(N), action] + rng.standard_t(5, size=N)
    q_hat = mu + rng.normal(0, 0.3, size=(N, K1))
    return dict(reward=reward, action=action, pscore=pscore, action_dist=target, q_hat=q_hat,
                logging_dist=logging)


@pytest.fixture(scope="module")
def arrays(full_log):
    """The log without ``logging_dist`` (support from the logged actions)."""
    return {k: v for k, v in full_log.items() if k != "logging_dist"}


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


def _first_logged(arrays, a: int) -> int:
    return int(np.flatnonzero(arrays["action"] == a)[0])


@pytest.mark.parametrize("change, field, where", [
    (lambda a: dict(pscore=np.where(np.arange(N) == 5, 0.0, a["pscore"])), "pscore", "row 5"),
    (lambda a: dict(pscore=a["pscore"][:-1]), "pscore", None),
    (lambda a: dict(action=a["action"][:-1]), "action", None),
    (lambda a: dict(action=a["action"] + 1), "action", lambda a: f"row {_first_logged(a, K1 - 1)}"),
    (lambda a: dict(action_dist=a["action_dist"][:-1]), "action_dist", None),
    (lambda a: dict(action_dist=a["action_dist"] * 1.01), "action_dist", "row 0"),
    (lambda a: dict(q_hat=a["q_hat"][:, :-1]), "q_hat", None),
    (lambda a: dict(reward=np.where(np.arange(N) == 3, np.nan, a["reward"])), "reward", "row 3"),
    (lambda a: dict(q_hat=np.where(np.arange(N)[:, None] == 3, np.inf, a["q_hat"])), "q_hat",
     "row 3"),
    (lambda a: dict(action_dist=np.where(np.arange(N)[:, None] == 3, np.nan,
                                         a["action_dist"])), "action_dist", "row 3"),
    (lambda a: dict(pscore=np.where(np.arange(N) == 5, np.nan, a["pscore"])), "pscore", "row 5"),
])
def test_bad_input_raises_value_error_naming_field(arrays, change, field, where):
    """The message starts with the one field at fault (``action:`` does not match
    ``action_dist:``, and a NaN reward is not reported as ``reward/action_dist/q_hat``), then
    the first offending row for a data defect (``estimators.checks.fail``'s shape); shape
    errors name no row."""
    where = where(arrays) if callable(where) else where
    loc = rf" \({where}\)" if where else ""
    with pytest.raises(ValueError, match=rf"^{field}{loc}: "):
        ope.dr(**_bad(arrays, **change(arrays)))


@pytest.mark.parametrize("field", ["reward", "action_dist", "q_hat"])
def test_nonfinite_input_names_only_that_field(arrays, field):
    """A NaN in exactly one of the big inputs names that input and no other."""
    bad = np.array(arrays[field], dtype=float)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=rf"^{field} \(row 7\): contains NaN or inf") as info:
        ope.dr(**_bad(arrays, **{field: bad}))
    others = {"reward", "action_dist", "q_hat"} - {field}
    assert not any(o in str(info.value) for o in others), str(info.value)


# ------------------------------------------------------------------------------ logging_dist
def _logging_case(full_log, kind):
    """A copy of the log with one defect in ``logging_dist`` (or in ``pscore`` against it)."""
    d = {k: np.array(v, copy=True) for k, v in full_log.items()}
    ld, a = d["logging_dist"], d["action"]
    i = 11
    if kind == "row_sum":  # row i scaled: no longer a distribution, pscore scaled alike
        ld[i] *= 1.5
        d["pscore"][i] = ld[i, a[i]]
    elif kind == "pscore_mismatch":  # a consistent distribution, but pscore from elsewhere
        d["pscore"][i] = 0.5 * ld[i, a[i]]
    elif kind == "logged_zero":  # the logged action has logging probability 0
        other = (a[i] + 1) % K1
        ld[i, other] += ld[i, a[i]]
        ld[i, a[i]] = 0.0
    elif kind == "nan":
        ld[i, 0] = np.nan
    elif kind == "negative":
        other = (a[i] + 1) % K1
        ld[i, other] -= 2.0
        ld[i, (a[i] + 2) % K1] += 2.0
    elif kind == "shape":
        d["logging_dist"] = ld[:, :-1]
    return d


@pytest.mark.parametrize("kind, message", [
    ("row_sum", "rows must sum to 1"),
    ("pscore_mismatch", "disagrees with pscore"),
    ("logged_zero", "probability 0 to a logged action"),
    ("nan", "NaN or inf"),
    ("negative", "negative probabilities"),
    ("shape", "expected shape"),
])
def test_logging_dist_is_validated(full_log, kind, message):
    """logging_dist must be a distribution per row with logging_dist[i, a_i] = pscore_i > 0;
    a defect names its row (11), a wrong shape none."""
    ope.dr(**full_log)  # the consistent log is accepted
    loc = "" if kind == "shape" else r" \(row 11\)"
    with pytest.raises(ValueError, match=rf"^logging_dist{loc}: .*{message}"):
        ope.dr(**_logging_case(full_log, kind))


@pytest.mark.parametrize("kind", ["row_sum", "pscore_mismatch", "logged_zero"])
def test_chunked_reduction_validates_logging_dist(full_log, small_chunks, kind):
    """The logging_dist checks hold on the chunked path too (defect in the first chunk)."""
    with pytest.raises(ValueError, match=r"^logging_dist \(row 11\): "):
        ope.ips(**{k: v for k, v in _logging_case(full_log, kind).items() if k != "q_hat"})


def test_logging_dist_gives_the_same_estimate_when_fully_supported(full_log, arrays):
    """A consistent, everywhere-positive logging_dist changes only the support, not the value."""
    with_ld = ope.dr(**full_log)
    assert with_ld == ope.dr(**arrays)
    assert with_ld.unsupported_mass == 0.0


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
        ope.bootstrap("ips", **arrays, n_boot=5, key=jax.random.key(0))


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
    # per-row support from the logging distribution (pscore consistent with it)
    logging_dist = np.ones((keep.sum(), K1)) / K1
    logging_dist[:10, -1] = 0.0
    logging_dist[:10, :-1] = 1 / (K1 - 1)
    pscore = logging_dist[np.arange(keep.sum()), sub["action"]]
    with pytest.warns(ope.UnsupportedActionWarning):
        est = ope.ips(**{**sub, "action_dist": pi, "pscore": pscore}, logging_dist=logging_dist)
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


def test_bootstrap_takes_logging_dist_and_an_explicit_key(full_log, arrays):
    """``bootstrap`` accepts ``logging_dist`` like ``estimate`` (a consistent, positive one
    changes nothing; an inconsistent one is rejected; unsupported mass is warned and reported),
    and draws its resamples only from the caller's key (same key, same interval)."""
    kw = dict(n_boot=40, key=jax.random.key(4))
    plain = ope.bootstrap("dr", **arrays, **kw)
    assert ope.bootstrap("dr", **full_log, **kw) == plain
    assert ope.bootstrap("dr", **arrays, n_boot=40, key=jax.random.key(5)) != plain
    with pytest.raises(TypeError, match="key"):
        ope.bootstrap("dr", **arrays, n_boot=40)
    with pytest.raises(ValueError, match="^key: "):
        ope.bootstrap("dr", **arrays, n_boot=40, key=None)
    with pytest.raises(ValueError, match=r"^logging_dist \(row 11\): .*disagrees with pscore"):
        ope.bootstrap("dr", **_logging_case(full_log, "pscore_mismatch"), **kw)
    # the logger never supports action K in these rows: warned, and reported as in estimate
    keep = full_log["action"] != K1 - 1
    sub = {k: v[keep] for k, v in full_log.items()}
    ld = sub["logging_dist"].copy()
    ld[:, -1] = 0.0
    ld /= ld.sum(axis=1, keepdims=True)
    sub.update(logging_dist=ld, pscore=ld[np.arange(keep.sum()), sub["action"]])
    with pytest.warns(ope.UnsupportedActionWarning):
        est = ope.bootstrap("ips", **{k: v for k, v in sub.items() if k != "q_hat"}, **kw)
    assert est.unsupported_mass == pytest.approx(sub["action_dist"][:, -1].mean(), rel=1e-12)


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
    key = jax.random.key(0)
    q = np.asarray(cross_fit_q_hat(d.x, d.action, d.value, n_actions=k1, key=key))
    r2 = d.value.copy()
    r2[0] += 1e4
    q2 = np.asarray(cross_fit_q_hat(d.x, d.action, r2, n_actions=k1, key=key))
    assert q.shape == (len(d.value), k1)
    np.testing.assert_array_equal(q[0], q2[0])
    assert not np.allclose(q, q2)
    # a useful model: correlated with the true mean outcome
    assert np.corrcoef(q.ravel(), d.truth.mu_value.ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit_q_hat(d.x, d.action, d.value, n_actions=k1, n_folds=1, key=key)
    with pytest.raises(ValueError, match="action"):
        cross_fit_q_hat(d.x, d.action, d.value, n_actions=2, key=key)


# -------------------------------------------------------------------- chunked host reduction
@pytest.fixture
def small_chunks(monkeypatch):
    """Force the chunked path (NumPy inputs with n > 4 chunks) on the 3,000-row log: 64-row
    chunks, the last one partial."""
    monkeypatch.setattr(ope.passes, "CHUNK_ROWS", 64)


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_chunked_reduction_equals_the_single_pass(arrays, name, monkeypatch):
    lam = 3.0 if name in ("clipped_ips", "switch_dr", "dr_os") else None
    whole, phi_whole = ope.estimate(name, **arrays, lambda_=lam, return_influence=True)
    monkeypatch.setattr(ope.passes, "CHUNK_ROWS", 64)
    calls = []
    real = ope.passes._rows_and_checks_jit
    monkeypatch.setattr(ope.passes, "_rows_and_checks_jit",
                        lambda *a: calls.append(1) or real(*a))
    chunked, phi_chunked = ope.estimate(name, **arrays, lambda_=lam, return_influence=True)
    assert len(calls) == -(-N // 64), "the chunked path was not taken"
    for a, b in zip(whole, chunked, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(phi_whole, phi_chunked, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("change, field, row", [
    (lambda a: dict(action_dist=np.where(np.arange(N)[:, None] == N - 2, 0.5,
                                         a["action_dist"])), "action_dist", N - 2),
    (lambda a: dict(q_hat=np.where(np.arange(N)[:, None] == N - 1, np.inf, a["q_hat"])), "q_hat",
     N - 1),
    (lambda a: dict(reward=np.where(np.arange(N) == 1000, np.nan, a["reward"])), "reward", 1000),
    (lambda a: dict(action=np.where(np.arange(N) == 2000, K1, a["action"])), "action", 2000),
    (lambda a: dict(pscore=np.where(np.arange(N) == 2999, 1.5, a["pscore"])), "pscore", 2999),
])
def test_chunked_reduction_still_rejects_bad_rows(arrays, small_chunks, change, field, row):
    """A bad row in any chunk (here the middle and the last, partial one) is still an error,
    naming the row of the whole log (not of its chunk)."""
    with pytest.raises(ValueError, match=rf"^{field} \(row {row}\): "):
        ope.dr(**_bad(arrays, **change(arrays)))


def test_chunked_reduction_reports_unsupported_mass(arrays, small_chunks):
    pi = np.full((N, K1), 0.8 / (K1 - 1))
    pi[:, -1] = 0.2
    logging_dist = np.ones((N, K1)) / K1
    logging_dist[-100:, -1] = 0.0  # rows in the last two chunks never support action K
    logging_dist[-100:, :-1] = 1 / (K1 - 1)
    action = np.where(np.arange(N) >= N - 100, arrays["action"] % (K1 - 1), arrays["action"])
    pscore = logging_dist[np.arange(N), action]
    with pytest.warns(ope.UnsupportedActionWarning):
        est = ope.ips(**{**arrays, "action_dist": pi, "action": action, "pscore": pscore},
                      logging_dist=logging_dist)
    assert est.unsupported_mass == pytest.approx(0.2 * 100 / N, rel=1e-12)


# --------------------------------------------------------------------------- estimate_batch
S_SEEDS = 3


def _split(log: dict) -> dict:
    """The 3,000-row log as S_SEEDS = 3 logs of 1,000 rows (leading seed axis)."""
    return {k: np.asarray(v).reshape(S_SEEDS, N // S_SEEDS, *np.shape(v)[1:])
            for k, v in log.items()}


def test_estimate_batch_equals_estimate_per_seed(full_log):
    batch = _split(full_log)
    for kw in ({}, {"logging_dist": batch["logging_dist"]}):
        est = ope.estimate_batch("dr", **{k: v for k, v in batch.items() if k != "logging_dist"},
                                 **kw)
        for s in range(S_SEEDS):
            one = ope.dr(**{k: v[s] for k, v in batch.items() if k != "logging_dist"},
                         **{k: v[s] for k, v in kw.items()})
            for a, b in zip(one, (v[s] for v in est), strict=True):
                assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", [n if n in ("ips", "snips", "dr", "switch_dr") else
                                  pytest.param(n, marks=pytest.mark.slow)
                                  for n in ope.ESTIMATORS])
def test_estimate_batch_is_a_loop_of_estimate_for_every_estimator(full_log, name):
    """Every field of every seed of ``estimate_batch`` equals ``estimate`` on that seed alone
    (one vmapped pass vs S single passes: the same float64 arithmetic), for NumPy and JAX inputs
    and with a batched ``logging_dist``."""
    lam = 3.0 if name in ope.NEEDS_LAMBDA else None
    batch = _split(full_log)
    plain = {k: v for k, v in batch.items() if k != "logging_dist"}
    on_device = {k: jax.numpy.asarray(v) for k, v in plain.items()}
    for kw in (plain, on_device, batch):
        est = ope.estimate_batch(name, **kw, lambda_=lam)
        assert all(np.shape(v) == (S_SEEDS,) for v in est)
        for s in range(S_SEEDS):
            one = ope.estimate(name, **{k: v[s] for k, v in kw.items()}, lambda_=lam)
            for field, a, b in zip(one._fields, one, (v[s] for v in est), strict=True):
                assert a == pytest.approx(b, rel=1e-12, abs=1e-15), (field, s)


def test_float64_accumulation_in_estimate_batch():
    """The batched pass accumulates float32 inputs in float64 too: per seed, the IPS value and
    stderr (all weights 1) of 2^18 rewards near 1e4 (spread 0.29) agree with NumPy's float64 mean
    and sd to 1e-10 and 1e-8 (float32 sums carry ~6e-8 relative error per rounding; the sd of
    values near 1e4 loses ~8 digits to cancellation in float32)."""
    rng = np.random.default_rng(2)
    s, n = 2, 1 << 18
    reward = (1e4 + rng.random((s, n))).astype(np.float32)
    pi = np.full((s, n, 2), 0.5, np.float32)
    est = ope.estimate_batch("ips", reward=reward, action=rng.integers(0, 2, (s, n)),
                             pscore=np.full((s, n), 0.5, np.float32), action_dist=pi)
    r64 = reward.astype(np.float64)
    np.testing.assert_allclose(est.value, r64.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(est.stderr, r64.std(axis=1, ddof=1) / np.sqrt(n), rtol=1e-8)


@pytest.mark.parametrize("change, field, message", [
    (lambda b: dict(action=_set(b["action"], (2, 5), K1)), r"action \(seed 2, row 5\)",
     r"\[0, 5\]"),
    (lambda b: dict(action=_set(b["action"], (2, 5), -1)), r"action \(seed 2, row 5\)",
     r"\[-1, 4\]"),
    (lambda b: dict(action=b["action"].astype(float)), "action", "not integer"),
    (lambda b: dict(action=b["action"][:2]), "action", "expected shape"),
    (lambda b: dict(pscore=_set(b["pscore"], (2, 5), 0.0)), r"pscore \(seed 2, row 5\)", ""),
    (lambda b: dict(reward=_set(b["reward"], (2, 5), np.nan)), r"reward \(seed 2, row 5\)",
     "NaN"),
    (lambda b: dict(action_dist=_set(b["action_dist"], (2, 5), np.inf)),
     r"action_dist \(seed 2, row 5\)", "NaN or inf"),
    (lambda b: dict(action_dist=_set(b["action_dist"], (1, 5), 0.9)),
     r"action_dist \(seed 1, row 5\)", "sum to 1"),
    (lambda b: dict(q_hat=_set(b["q_hat"], (2, 5), np.nan)), r"q_hat \(seed 2, row 5\)", "NaN"),
    (lambda b: dict(q_hat=b["q_hat"][:, :, :-1]), "q_hat", "expected shape"),
])
def test_estimate_batch_validates_every_seed(full_log, change, field, message):
    """Defects in a later seed (not seed 0) are errors naming the field (and the seed and row),
    never a silent NaN (action > K) or a wrapped index (action -1 -> last column)."""
    batch = {k: v for k, v in _split(full_log).items() if k != "logging_dist"}
    with pytest.raises(ValueError, match=rf"^{field}: .*{message}"):
        ope.estimate_batch("dr", **{**batch, **change(batch)})


def _set(a, index, value):
    out = np.array(a, copy=True)
    out[index] = value
    return out


@pytest.mark.parametrize("kind", ["row_sum", "pscore_mismatch", "logged_zero"])
def test_estimate_batch_validates_logging_dist(full_log, kind):
    """The logging_dist checks run in every seed (the defect is at row 11, in seed 0; moved to
    the last seed by rolling the seed axis)."""
    bad = {k: np.roll(v, 1, axis=0) for k, v in _split(_logging_case(full_log, kind)).items()}
    with pytest.raises(ValueError, match=r"^logging_dist \(seed 1, row 11\): "):
        ope.estimate_batch("ips", **{k: v for k, v in bad.items() if k != "q_hat"})


def test_estimate_batch_reports_per_seed_unsupported_mass(full_log):
    """Seed 1 never logs action K and the policy puts 0.3 on it: only that seed reports 0.3 of
    unsupported mass (from its own log) and a warning is raised; with a batched logging_dist
    that removes action K from 100 rows of seed 2, seed 2 reports 0.3 * 100 / n."""
    batch = {k: v for k, v in _split(full_log).items()}
    m = N // S_SEEDS
    pi = np.full((S_SEEDS, m, K1), 0.7 / (K1 - 1))
    pi[..., -1] = 0.3
    action = batch["action"].copy()
    action[1] = action[1] % (K1 - 1)  # seed 1: action K never logged
    ld = batch["logging_dist"].copy()
    pscore = np.take_along_axis(ld, action[..., None], axis=2)[..., 0]
    kw = dict(reward=batch["reward"], action=action, pscore=pscore, action_dist=pi)
    with pytest.warns(ope.UnsupportedActionWarning,
                      match="in 1 of 3 seeds the evaluated policy puts up to 0.3000"):
        est = ope.estimate_batch("ips", **kw)
    np.testing.assert_allclose(est.unsupported_mass, [0.0, 0.3, 0.0], rtol=1e-12)
    # per-row support from a batched logging_dist (consistent with the logged actions)
    ld[1] = np.ones((m, K1)) / K1
    ld[2, :100, -1] = 0.0
    ld[2, :100] /= ld[2, :100].sum(axis=1, keepdims=True)
    action[2, :100] %= K1 - 1
    pscore = np.take_along_axis(ld, action[..., None], axis=2)[..., 0]
    kw.update(action=action, pscore=pscore)
    with pytest.warns(ope.UnsupportedActionWarning, match="in 1 of 3 seeds"):
        est = ope.estimate_batch("ips", **kw, logging_dist=ld)
    np.testing.assert_allclose(est.unsupported_mass, [0.0, 0.0, 0.3 * 100 / m], rtol=1e-12)


# -------------------------------------------------------------------------------- registry
def test_registry_lists_every_estimator_with_its_needs(arrays):
    """``REGISTRY`` is the one list: names in ``ESTIMATORS`` order, ``NEEDS_Q_HAT`` /
    ``NEEDS_LAMBDA`` from the specs and enforced by ``estimate``, the summary is the named
    function's docstring, and the mapping is read-only."""
    assert tuple(ope.REGISTRY) == ope.ESTIMATORS
    assert ope.NEEDS_Q_HAT == {"dm", "dr", "sndr", "switch_dr", "dr_os"}
    assert ope.NEEDS_LAMBDA == {"clipped_ips", "switch_dr", "dr_os"}
    no_q = {k: v for k, v in arrays.items() if k != "q_hat"}
    for name, spec in ope.REGISTRY.items():
        assert isinstance(spec, ope.EstimatorSpec) and spec.name == name
        assert (name in ope.NEEDS_Q_HAT) == spec.needs_q_hat
        assert (name in ope.NEEDS_LAMBDA) == spec.needs_lambda
        assert getattr(ope, name).__doc__.startswith(spec.summary)
        lam = 3.0 if spec.needs_lambda else None
        if spec.needs_q_hat:
            with pytest.raises(ValueError, match=rf"^q_hat: {name} needs an outcome model"):
                ope.estimate(name, **no_q, lambda_=lam)
        else:
            ope.estimate(name, **no_q, lambda_=lam)
        if spec.needs_lambda:
            with pytest.raises(ValueError, match=rf"^lambda_: {name} needs"):
                ope.estimate(name, **arrays)
    with pytest.raises(TypeError):
        ope.REGISTRY["mine"] = ope.REGISTRY["ips"]  # type: ignore[index]


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_kernel_weights_are_row_multiplicities(arrays, name):
    """``kernel(rows, c, lambda_)`` with integer weights ``c`` is the estimator on the log with
    row ``i`` repeated ``c_i`` times (what the bootstrap relies on, self-normalisation included),
    and with ``c = 1`` it is the estimate, whose value is the mean of its influence terms."""
    spec = ope.REGISTRY[name]
    lam = 3.0 if spec.needs_lambda else np.inf
    q = arrays["q_hat"] if spec.needs_q_hat else None
    args = (arrays["reward"], arrays["action"], arrays["pscore"], arrays["action_dist"])
    with jax.enable_x64(True):
        rows = ope.passes.rows_jit(*args, q)
        c = np.random.default_rng(5).integers(0, 3, N).astype(np.float64)
        weighted = float(spec.kernel(rows, jax.numpy.asarray(c), lam)[0])
        idx = np.repeat(np.arange(N), c.astype(int))
        repeated = ope.passes.rows_jit(*(a[idx] for a in args), None if q is None else q[idx])
        ones = jax.numpy.ones(len(idx))
        assert weighted == pytest.approx(float(spec.kernel(repeated, ones, lam)[0]), rel=1e-12)
    est, phi = ope.estimate(name, **arrays, lambda_=lam if spec.needs_lambda else None,
                            return_influence=True)
    assert phi.mean() == pytest.approx(est.value, rel=1e-12)


# ------------------------------------------------------------------------------- docstrings
FORMULAS = {
    "dm": "mean_i dm_i", "ips": "mean_i w_i r_i", "snips": "sum_i w_i r_i / sum_i w_i",
    "clipped_ips": "min(w_i, lambda_) r_i", "dr": "dm_i + w_i (r_i - q_i)",
    "sndr": "sum_i w_i (r_i - q_i) / sum_i w_i", "switch_dr": "1{w_i <= lambda_}",
    "dr_os": "lambda_ w / (w^2 + lambda_)",
}


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_each_estimator_documents_its_formula_and_assumption(name):
    doc = getattr(ope, name).__doc__
    assert FORMULAS[name] in doc and "Assumption:" in doc, doc
    assert "see the module docstring" not in doc
    # the module table lists every estimator with an assumption too
    row = ope.__doc__.split(f"``{name}``", 1)[1].split("\n``", 1)[0]
    assert any(word in row for word in ("Needs", "Unbiased", "Consistent", "unbiased")), row


# ---------------------------------------------------------------------- cross-fit fold support
def test_cross_fit_q_hat_rejects_an_action_confined_to_one_fold():
    """Action 2 appears 3 times (>= n_folds = 2). When all 3 rows land in one fold, the other
    fold's model for action 2 has no training rows (it would silently predict the ridge prior 0):
    a ValueError naming ``action``. When they are split, the fit is accepted and finite."""
    from estimators.ope_qhat import _fold_ids, cross_fit_q_hat_batch

    rng = np.random.default_rng(0)
    n = 40
    x = rng.normal(size=(n, 2))
    action = np.tile([0, 1], n // 2)
    action[[3, 17, 30]] = 2
    reward = rng.normal(size=n)
    confined, split = None, None
    for seed in range(64):
        folds = np.asarray(_fold_ids(n, 2, jax.random.key(seed)))[[3, 17, 30]]
        if len(set(folds)) == 1 and confined is None:
            confined = seed
        elif len(set(folds)) > 1 and split is None:
            split = seed
    assert confined is not None and split is not None
    with pytest.raises(ValueError, match=r"^action: .*\[2\].*no training rows"):
        cross_fit_q_hat(x, action, reward, n_actions=3, n_folds=2,
                        key=jax.random.key(confined))
    q = np.asarray(cross_fit_q_hat(x, action, reward, n_actions=3, n_folds=2,
                                   key=jax.random.key(split)))
    assert np.isfinite(q).all()
    # an action with a single row can never be cross-fitted
    one = action.copy()
    one[[17, 30]] = 0
    with pytest.raises(ValueError, match=r"^action: "):
        cross_fit_q_hat(x, one, reward, n_actions=3, n_folds=2, key=jax.random.key(split))
    # batched: the check covers every seed
    with pytest.raises(ValueError, match=r"^action: .*seed"):
        cross_fit_q_hat_batch(np.stack([x, x]), np.stack([action, one]), np.stack([reward] * 2),
                              n_actions=3, n_folds=2, key=jax.random.key(0))


def test_cross_fit_q_hat_can_zero_an_action_the_log_never_took():
    """``unsupported="zero"`` (the closed loop's gate: a candidate's action the incumbent never
    logged) predicts 0 for the missing (fold, action) pairs and the cross-fitted model for the
    others; the default still raises naming ``action``; a bad option names itself."""
    from estimators.base import Ridge
    from estimators.crossfit import cross_fit, fold_ids

    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=(n, 3))
    action = rng.integers(0, 2, n)  # action 2 never logged
    reward = x[:, 0] + action + rng.normal(size=n)
    key = jax.random.key(4)
    with pytest.raises(ValueError, match="^action"):
        cross_fit_q_hat(x, action, reward, n_actions=3, key=key)
    q = np.asarray(cross_fit_q_hat(x, action, reward, n_actions=3, key=key, unsupported="zero"))
    folds = fold_ids(n, 5, key)
    ref = np.asarray(cross_fit(Ridge(alpha=1.0), x, reward, folds, n_folds=5, action=action,
                               n_actions=3).predictions)
    np.testing.assert_array_equal(q[:, 2], 0.0)
    np.testing.assert_allclose(q[:, :2], ref[:, :2], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="^unsupported"):
        cross_fit_q_hat(x, action, reward, n_actions=3, key=key, unsupported="nan")
