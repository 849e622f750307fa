r"""Valid online inference for randomised experiments that are looked at while they run.

**Setting.** Units arrive in order (e.g. one day's users after another) and are randomised to
arm ``g`` with a known probability ``p_g`` (the same for every unit, or ``p_g(x_i)`` per unit).
For a treatment arm ``t`` and a control arm ``c`` the per-unit influence term

    ``phi_i = Y_i (1{A_i = t} / p_t - 1{A_i = c} / p_c)``            (:func:`ab_influence`)

has ``E[phi_i] = E[Y(t)] - E[Y(c)] = Delta`` under randomisation (Horvitz-Thompson), and the
``phi_i`` are i.i.d. when the units are i.i.d. and assignments are independent across units.
Everything below is inference on the mean ``Delta`` of an i.i.d. sequence ``phi_1, phi_2, ...``
with finite variance (``2 + delta`` moments for the strong approximation behind the confidence
sequence), read at increasing sample sizes ``looks = (n_1 < n_2 < ... < n_L)`` (e.g. each day's
cumulative count). At ``t`` units the running mean and standard deviation are

    ``m_t = (1/t) sum_{i<=t} phi_i``,    ``s_t^2 = (1/(t-1)) sum_{i<=t} (phi_i - m_t)^2``

(accumulated in float64). Each method reports, per look, ``m_t -/+ s_t w_t`` for a width
multiplier ``w_t``, and the first look whose interval excludes the null value (0 by default):
stopping there is the decision ``positive`` / ``negative``; never excluding is ``inconclusive``.

``naive_z`` (:func:`naive_z_looks`)
    The fixed-sample interval ``w_t = z_{1-alpha/2} / sqrt(t)``. Valid at one sample size fixed
    in advance. Looked at after every look and stopped at the first exclusion ("peeking"), its
    false-positive rate grows with the number of looks (towards 1 as looks grow, by the law of
    the iterated logarithm); this is what teams wrongly read off a dashboard.
``confidence_sequence`` (:func:`confidence_sequence`)
    The asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2021,
    "Time-uniform central limit theory and asymptotic confidence sequences", arXiv:2103.06476,
    Ann. Statist. 2024), the two-sided Gaussian-mixture (Robbins normal-mixture) boundary with
    the empirical variance:

        ``w_t = sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )``,
        ``rho^2 = ( -2 log alpha + log(-2 log alpha + 1) ) / t_star``,

    ``rho`` making the boundary (approximately) tightest at ``t = t_star`` (default: the last
    look). These are the authors' own reference functions ``std_conjmix_margin`` and
    ``best_rho2_approx`` (R packages ``drconfseq`` / ``sequential.causal`` by I. Waudby-Smith).
    Guarantee: asymptotic time-uniform coverage, ``P(Delta in C_t for all t >= m) -> >= 1 -
    alpha`` as the start ``m`` grows, so the error stays ``<= alpha`` (asymptotically) for any
    number of looks and any data-dependent stopping time; no maximum sample size is planned.
    Price: at ``t_star`` it is about 1.5 times as wide as the z interval at ``alpha = 0.05``.
    The guarantee is asymptotic in the start time, as the z interval's is in ``n``: with
    strongly skewed terms (the one-sample mean of zero-inflated revenue while few buyers have
    arrived) the early intervals sit too low and miss more often than ``alpha``, so start
    looking after a burn-in; A/B difference terms of similar arms are close to symmetric and
    behave from a few dozen units on (both measured in ``tests/test_sequential.py``).
``group_sequential`` (:func:`group_sequential`)
    A group-sequential test with Lan & DeMets (1983) O'Brien-Fleming-type alpha spending
    ``alpha(tau) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(tau))`` at the information fractions
    ``tau_k = n_k / n_L`` (i.i.d. terms: information is proportional to ``n``). The two-sided
    symmetric critical values ``c_k`` solve ``P(|Z_j| < c_j for j < k, |Z_k| >= c_k) =
    alpha(tau_k) - alpha(tau_{k-1})`` under the canonical joint law ``Z_k = W(tau_k) /
    sqrt(tau_k)`` (``W`` a standard Brownian motion), computed by recursive numerical
    integration of the density of ``W`` on the continuation region (Armitage, McPherson & Rowe
    1969; Jennison & Turnbull 2000, ch. 19; :func:`lan_demets_obf_bounds`). Its intervals are the
    repeated confidence intervals ``w_k = c_k / sqrt(n_k)``. Valid (asymptotically, like the z
    test) for the ``L`` planned looks with ``n_L`` fixed in advance, not beyond.

**CUPED** (Deng, Xu, Kohavi & Walker 2013, :func:`cuped`): ``Y - theta (X - mu_X)`` for a
pre-period covariate ``X`` unaffected by the treatment, ``theta = Cov(Y, X) / Var(X)`` (the
variance-minimising coefficient), ``mu_X`` the known mean of ``X`` or its sample mean; the variance
drops by the factor ``1 - corr(Y, X)^2``. For an A/B difference pass ``phi`` as ``Y`` and the
pre-period value run through the same influence transform, ``psi_i = X_i (1{A_i = t}/p_t -
1{A_i = c}/p_c)``, as ``X``: ``E[psi] = 0`` by randomisation (``X`` is pre-treatment), so with
``covariate_mean=0`` the adjusted terms keep mean ``Delta`` and, for a fixed ``theta``, stay
i.i.d.: they can go straight into the sequential methods. ``theta`` estimated on the same data is
the usual plug-in (it converges to the optimal coefficient, so the adjusted mean is
asymptotically equivalent to the one with the true ``theta``; its finite-sample bias is
``O(1/n)``); in a live experiment estimate it from data seen before the looks it is used at.

Inputs are plain NumPy-convertible arrays; outputs are small NamedTuples of NumPy float64 arrays.
Bad input is a ``ValueError`` naming the field and the fix (:func:`estimators.checks.fail`).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, special

from estimators.checks import ROW_SUM_ATOL, check_actions, check_finite, fail
from estimators.precision import float64

__all__ = [
    "CupedResult",
    "SequentialResult",
    "ab_influence",
    "confidence_sequence",
    "confidence_sequence_batch",
    "cs_rho2",
    "cuped",
    "group_sequential",
    "group_sequential_batch",
    "lan_demets_obf_bounds",
    "naive_z_looks",
    "naive_z_looks_batch",
    "sequential_decision",
]


class CupedResult(NamedTuple):
    """``adjusted = Y - theta (X - mu_X)`` (n,), the coefficient used, and ``var(adjusted) /
    var(Y)`` (ddof 1 both)."""

    adjusted: np.ndarray
    theta: float
    variance_ratio: float


class SequentialResult(NamedTuple):
    """Per look ``j`` (last axis; a leading seed axis ``(S, L)`` for the batch forms): the
    sample size ``n[j]``, ``estimate = m_t``, ``std = s_t`` (running sd of the terms) and the
    interval ``[ci_low, ci_high] = m_t -/+ s_t * width[j]``. ``reject_at``: index of the first
    look whose interval excludes ``null`` (``-1``: none; an int, or ``(S,)``); ``sign``: ``+1``
    (interval above ``null``) / ``-1`` (below) at that look, ``0`` without a rejection."""

    method: str
    n: np.ndarray
    estimate: np.ndarray
    std: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    width: np.ndarray
    reject_at: Any
    sign: Any
    alpha: float
    null: float


# ------------------------------------------------------------------------------------ checks


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < alpha < 1.0:
        fail("alpha", f"the error level must be a number in (0, 1), got {alpha!r}",
             "e.g. alpha=0.05")
    return float(alpha)


def _check_null(null: Any) -> float:
    if isinstance(null, bool) or not isinstance(null, numbers.Real) or not math.isfinite(null):
        fail("null", f"must be a finite number, got {null!r}", "e.g. null=0.0 (no difference)")
    return float(null)


def _check_phi(phi: Any, *, batched: bool) -> np.ndarray:
    a = np.asarray(phi)
    want = "(S, n)" if batched else "(n,)"
    if a.ndim != (2 if batched else 1):
        fail("phi", f"expected shape {want}, got {a.shape}",
             "pass one influence term per unit" + (" and seed" if batched else "")
             + (" (confidence_sequence for one seed)" if not batched and a.ndim == 2 else ""))
    check_finite("phi", a, "drop or repair units with NaN or infinite rewards", batched=batched)
    return a.astype(np.float64, copy=False)


def _check_looks(looks: Any, n: int) -> np.ndarray:
    raw = np.asarray(looks)
    if raw.ndim != 1 or raw.size == 0:
        fail("looks", f"expected a non-empty 1-D array of sample sizes, got shape {raw.shape}",
             "pass the cumulative unit counts at which you look, e.g. [1000, 2000, 3000]")
    if not (np.issubdtype(raw.dtype, np.number) and np.all(np.isfinite(raw))
            and np.all(raw == np.round(raw))):
        fail("looks", "sample sizes must be whole numbers", "pass integer unit counts")
    lk = raw.astype(np.int64)
    if np.any(np.diff(lk) <= 0):
        j = int(np.flatnonzero(np.diff(lk) <= 0)[0])
        fail("looks", f"must be strictly increasing, look {j + 1} ({lk[j + 1]}) follows "
             f"{lk[j]}", "sort the looks and drop repeats (each look sees more units)")
    if lk[0] < 2:
        fail("looks", f"the first look has {lk[0]} unit(s); a standard deviation needs at least "
             "2", "start looking after at least 2 units")
    if lk[-1] > n:
        fail("looks", f"the last look ({lk[-1]}) is beyond the {n} units in phi",
             f"drop looks after n = {n} or pass more units")
    return lk


def _check_t_star(t_star: Any, looks: np.ndarray) -> float:
    if t_star is None:
        return float(looks[-1])
    if (isinstance(t_star, bool) or not isinstance(t_star, numbers.Real)
            or not math.isfinite(t_star) or t_star <= 0):
        fail("t_star", f"the sample size at which to optimise the boundary must be a positive "
             f"number, got {t_star!r}", "e.g. the planned final sample size, or None (last look)")
    return float(t_star)


# ------------------------------------------------------------------------- influence, CUPED


def ab_influence(reward: Any, arm: Any, arm_prob: Any, *, treatment: int,
                 control: int) -> np.ndarray:
    """Per-unit Horvitz-Thompson terms of the difference ``E[Y(t)] - E[Y(c)]``:

    ``phi_i = reward_i * (1{arm_i = treatment} / p_t - 1{arm_i = control} / p_c)``,

    ``arm_prob`` either the length-``G`` vector of the arms' randomisation probabilities or an
    ``(n, G)`` matrix of per-unit probabilities (each row summing to at most 1: arms outside
    ``0..G-1`` may take the rest). ``mean(phi)`` is unbiased for the difference under
    randomisation with ``p_t, p_c > 0`` for every unit; the terms are i.i.d. across units.
    Returns ``phi (n,)`` float64."""
    y = np.asarray(reward)
    if y.ndim != 1:
        fail("reward", f"expected shape (n,), got {y.shape}", "pass one reward per unit")
    y = check_finite("reward", y, "drop or repair units with NaN or infinite rewards"
                     ).astype(np.float64)
    n = y.shape[0]
    p = np.asarray(arm_prob)
    if p.ndim not in (1, 2) or (p.ndim == 2 and p.shape[0] != n) or p.shape[-1] < 2:
        fail("arm_prob", f"expected shape (G,) or ({n}, G) with G >= 2 arms, got {p.shape}",
             "pass the arms' randomisation probabilities, or one row per unit")
    p = check_finite("arm_prob", p, "pass probabilities in [0, 1]").astype(np.float64)
    g = p.shape[-1]
    a = np.asarray(arm)
    if a.shape != (n,):
        fail("arm", f"expected shape ({n},) like reward, got {a.shape}",
             "pass the arm each unit was randomised to")
    a = check_actions("arm", a, g)
    for name, value in (("treatment", treatment), ("control", control)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
                not 0 <= value < g:
            fail(name, f"must be an arm index in 0..{g - 1}, got {value!r}",
                 "pass the index of the arm in arm_prob")
    if treatment == control:
        fail("control", f"equals treatment ({treatment}); the difference would be 0",
             "compare two different arms")
    rows = np.atleast_2d(p)
    bad = ((rows < 0) | (rows > 1 + ROW_SUM_ATOL)).any(axis=1)
    if bad.any():
        fail("arm_prob", "has entries outside [0, 1]", "pass probabilities",
             row=int(np.flatnonzero(bad)[0]) if p.ndim == 2 else None)
    sums = rows.sum(axis=1)
    if np.any(sums > 1 + ROW_SUM_ATOL):
        j = int(np.flatnonzero(sums > 1 + ROW_SUM_ATOL)[0])
        fail("arm_prob", f"the arms' probabilities sum to {sums[j]:.10g} > 1",
             "normalise the probabilities (they may sum to less than 1 if other arms exist)",
             row=j if p.ndim == 2 else None)
    for name, k in (("treatment", treatment), ("control", control)):
        col = rows[:, k]
        if np.any(col <= 0):
            j = int(np.flatnonzero(col <= 0)[0])
            used = " and that unit was assigned to it" if p.ndim == 2 and a[j] == k else ""
            fail("arm_prob", f"the {name} arm {k} has probability 0{used}; the difference is "
                 "not identified without positivity", f"give arm {k} positive probability for "
                 "every unit, or restrict to units randomised to both arms",
                 row=j if p.ndim == 2 else None)
    p_t = p[..., treatment]
    p_c = p[..., control]
    return y * ((a == treatment) / p_t - (a == control) / p_c)


def cuped(reward: Any, covariate: Any, *, theta: float | None = None,
          covariate_mean: float | None = None) -> CupedResult:
    """CUPED (Deng et al. 2013): ``adjusted_i = Y_i - theta (X_i - mu_X)``.

    ``theta = Cov(Y, X) / Var(X)`` on the data when not given (the plug-in of the variance-
    minimising coefficient); ``mu_X = covariate_mean`` if given (e.g. 0 for an influence-like
    pre-period term ``psi_i = X_i (1{t}/p_t - 1{c}/p_c)``, whose mean is 0 by randomisation)
    else ``mean(X)``. ``variance_ratio = var(adjusted) / var(Y)``; with the plug-in ``theta`` it
    equals ``1 - corr(Y, X)^2`` on the sample. With ``mu_X = mean(X)`` the adjusted mean equals
    ``mean(Y)`` exactly (the gain is in its variance); with the known ``mu_X`` it is unbiased for
    ``E[Y]`` for a fixed ``theta`` (``O(1/n)`` bias for the plug-in)."""
    y = np.asarray(reward)
    x = np.asarray(covariate)
    if y.ndim != 1:
        fail("reward", f"expected shape (n,), got {y.shape}", "pass one value per unit")
    if x.shape != y.shape:
        fail("covariate", f"expected shape {y.shape} like reward, got {x.shape}",
             "pass one pre-period value per unit")
    y = check_finite("reward", y).astype(np.float64)
    x = check_finite("covariate", x).astype(np.float64)
    if y.shape[0] < 2:
        fail("reward", f"needs at least 2 units, got {y.shape[0]}", "pass more units")
    var_y = float(np.var(y, ddof=1))
    if var_y <= 0:
        fail("reward", "has zero variance; there is nothing to reduce",
             "pass a reward that varies across units")
    mu_x = float(np.mean(x)) if covariate_mean is None else _check_null(covariate_mean)
    if theta is None:
        xc = x - x.mean()
        var_x = float(np.mean(xc**2))
        if var_x <= 0:
            fail("covariate", "has zero variance, so theta = Cov(Y, X) / Var(X) is undefined",
                 "pass a covariate that varies, or give theta")
        theta = float(np.mean((y - y.mean()) * xc) / var_x)
    elif isinstance(theta, bool) or not isinstance(theta, numbers.Real) or \
            not math.isfinite(theta):
        fail("theta", f"must be a finite number or None, got {theta!r}",
             "pass a coefficient, or None to estimate Cov(Y, X) / Var(X)")
    adjusted = y - float(theta) * (x - mu_x)
    return CupedResult(adjusted, float(theta), float(np.var(adjusted, ddof=1) / var_y))


# ------------------------------------------------------------------------------ boundaries


def cs_rho2(alpha: float, t_star: float) -> float:
    """``rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / t_star``: the mixture parameter that
    makes the boundary of :func:`confidence_sequence` (approximately) tightest at ``t_star``."""
    la = -2.0 * math.log(alpha)
    return (la + math.log(la + 1.0)) / t_star


def _cs_width(t: np.ndarray, alpha: float, t_star: float) -> np.ndarray:
    """``sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha))`` (unit sd)."""
    rho2 = cs_rho2(alpha, t_star)
    t = t.astype(np.float64)
    return np.sqrt(2.0 * (t * rho2 + 1.0) / (t**2 * rho2)
                   * np.log(np.sqrt(t * rho2 + 1.0) / alpha))


def _z_width(t: np.ndarray, alpha: float) -> np.ndarray:
    return special.ndtri(1.0 - alpha / 2.0) / np.sqrt(t.astype(np.float64))


def _simpson_weights(m: int, h: float) -> np.ndarray:
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w * h / 3.0


def _grid(half: float, h_target: float) -> tuple[np.ndarray, np.ndarray]:
    """An odd Simpson grid on ``[-half, half]`` with spacing at most ``h_target``."""
    m = 2 * max(math.ceil(half / h_target), 2) + 1
    u = np.linspace(-half, half, m)
    return u, _simpson_weights(m, u[1] - u[0])


_SD_RANGE = 9.0  # continuation-region grids cover +-9 sd of W(tau_k): mass outside < 3e-19
_POINTS_PER_SD = 40  # grid spacing <= min(sd of the increment, sd of W(tau_k)) / 40
_MAX_CHUNK = 2048  # rows of the convolution computed at once (memory: chunk x grid)


def lan_demets_obf_bounds(fractions: Any, *, alpha: float = 0.05,
                          per_side: bool = False) -> np.ndarray:
    """Two-sided symmetric critical values ``c_k`` (z scale) of the Lan-DeMets O'Brien-Fleming-
    type spending function ``alpha(tau) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(tau))`` (Lan & DeMets
    1983, spending the two-sided ``alpha``) at the information fractions ``0 < tau_1 < ... <
    tau_K <= 1``: reject at the first ``k`` with ``|Z_k| >= c_k``; ``P_0(reject by look k) =
    alpha(tau_k)``. ``per_side=True``: the convention of gsDesign's ``sfLDOF`` and R ``ldbounds``
    for a two-sided test, the function applied to ``alpha/2`` on each side, ``alpha(tau) = 2 (2 -
    2 Phi(z_{1-alpha/4} / sqrt(tau)))`` (more conservative early; both spend ``alpha`` at 1).

    Recursive numerical integration on the score scale ``W_k = Z_k sqrt(tau_k)`` (a Brownian
    motion at times ``tau_k``): ``c_1 = z_{1 - alpha(tau_1)/2}``; given the density ``f_{k-1}``
    of ``W_{k-1}`` on the continuation region ``|w| < b_{k-1} = c_{k-1} sqrt(tau_{k-1})``,
    ``b_k`` solves ``int f_{k-1}(u) [Phi((-b-u)/d) + Phi((u-b)/d)] du = alpha(tau_k) -
    alpha(tau_{k-1})`` (``d^2 = tau_k - tau_{k-1}``; Brent's method on the log scale, so the
    tiny early spends are resolved) and ``f_k(w) = int f_{k-1}(u) phi((w-u)/d)/d du`` on
    ``|w| < b_k``. Integrals by Simpson's rule on grids truncated at ``+-9`` sd of ``W(tau_k)``,
    spacing at most ``min(d, sqrt(tau_k)) / 40``: the crossing probabilities agree with the
    multivariate normal CDF to about ``1e-8``."""
    alpha = _check_alpha(alpha)
    raw = np.asarray(fractions)
    if not np.issubdtype(raw.dtype, np.number):
        fail("fractions", f"expected numbers, got dtype {raw.dtype}", "pass n_k / n_K")
    tau = raw.astype(np.float64)
    if tau.ndim != 1 or tau.size == 0 or not np.all(np.isfinite(tau)):
        fail("fractions", f"expected a non-empty 1-D array of information fractions, got "
             f"shape {tau.shape}", "pass n_k / n_K for the planned looks")
    if tau[0] <= 0 or tau[-1] > 1 + 1e-12 or np.any(np.diff(tau) <= 0):
        fail("fractions", "must be strictly increasing in (0, 1]",
             "pass n_k / n_K for strictly increasing planned sample sizes")
    return _obf_bounds(tuple(np.minimum(tau, 1.0).tolist()), alpha, bool(per_side)).copy()


@functools.lru_cache(maxsize=64)
def _obf_bounds(fractions: tuple[float, ...], alpha: float, per_side: bool) -> np.ndarray:
    tau = np.asarray(fractions)
    if per_side:
        spent = 4.0 * special.ndtr(-special.ndtri(1.0 - alpha / 4.0) / np.sqrt(tau))
    else:  # 2 - 2 Phi(z_{1-alpha/2} / sqrt(tau))
        spent = 2.0 * special.ndtr(-special.ndtri(1.0 - alpha / 2.0) / np.sqrt(tau))
    inc = np.diff(np.r_[0.0, spent])
    c = np.empty(tau.size)
    c[0] = -special.ndtri(inc[0] / 2.0)
    b = c[0] * math.sqrt(tau[0])
    sd0 = math.sqrt(tau[0])
    u, wt = _grid(min(b, _SD_RANGE * sd0), sd0 / _POINTS_PER_SD)
    f = np.exp(-0.5 * (u / sd0) ** 2) / (sd0 * math.sqrt(2 * math.pi))
    for k in range(1, tau.size):
        d = math.sqrt(tau[k] - tau[k - 1])
        with np.errstate(divide="ignore"):
            log_mass = np.log(wt * f)
        target = math.log(inc[k])

        def log_cross(bk: float, log_mass=log_mass, u=u, d=d) -> float:
            lo = special.log_ndtr((-bk - u) / d)
            hi = special.log_ndtr((u - bk) / d)
            return float(special.logsumexp(np.r_[log_mass + lo, log_mass + hi]))

        b_hi = float(np.max(np.abs(u))) + 40.0 * d
        while log_cross(b_hi) > target:  # pragma: no cover - 40 sd is always enough in practice
            b_hi *= 2.0
        bk = optimize.brentq(lambda x, t=target: log_cross(x) - t, 0.0, b_hi,
                             xtol=1e-12, rtol=1e-13, maxiter=500)
        c[k] = bk / math.sqrt(tau[k])
        sdk = math.sqrt(tau[k])
        w_new, wt_new = _grid(min(bk, _SD_RANGE * sdk), min(d, sdk) / _POINTS_PER_SD)
        f_new = np.empty_like(w_new)
        mass = wt * f
        for s in range(0, w_new.size, _MAX_CHUNK):
            diff = (w_new[s:s + _MAX_CHUNK, None] - u[None, :]) / d
            f_new[s:s + _MAX_CHUNK] = (np.exp(-0.5 * diff**2) @ mass) / (d * math.sqrt(2 * math.pi))
        u, wt, f = w_new, wt_new, f_new
    return c


# ------------------------------------------------------------------------------- the looks


def _looks_numpy(method: str, phi: np.ndarray, looks: np.ndarray, width: np.ndarray,
                 alpha: float, null: float) -> SequentialResult:
    """The reference: each look's mean and sd recomputed (two-pass, float64) on its units."""
    est = np.array([phi[:t].mean() for t in looks])
    sd = np.array([phi[:t].std(ddof=1) for t in looks])
    lo, hi = est - sd * width, est + sd * width
    excl = np.flatnonzero((lo > null) | (hi < null))
    reject_at = int(excl[0]) if excl.size else -1
    sign = 0 if reject_at < 0 else (1 if lo[reject_at] > null else -1)
    return SequentialResult(method, looks.copy(), est, sd, lo, hi, width, reject_at, sign,
                            alpha, null)


@jax.jit
def _looks_kernel(phi: jax.Array, looks: jax.Array, width: jax.Array, null: jax.Array):
    """Running moments at ``looks`` by ``cumsum`` over units (shifted by each seed's first term,
    so large offsets do not cancel), the intervals and the first exclusion of ``null``."""
    t = looks.astype(phi.dtype)
    x = phi - phi[:, :1]
    s1 = jnp.cumsum(x, axis=1)[:, looks - 1]
    s2 = jnp.cumsum(x * x, axis=1)[:, looks - 1]
    est = phi[:, :1] + s1 / t
    var = jnp.maximum(s2 - s1 * s1 / t, 0.0) / (t - 1.0)
    sd = jnp.sqrt(var)
    lo, hi = est - sd * width, est + sd * width
    excl = (lo > null) | (hi < null)
    first = jnp.argmax(excl, axis=1)
    any_ = excl.any(axis=1)
    reject_at = jnp.where(any_, first, -1)
    lo_first = jnp.take_along_axis(lo, first[:, None], axis=1)[:, 0]
    sign = jnp.where(any_, jnp.where(lo_first > null, 1, -1), 0)
    return est, sd, lo, hi, reject_at, sign


@float64
def _looks_batch(method: str, phi: np.ndarray, looks: np.ndarray, width: np.ndarray,
                 alpha: float, null: float) -> SequentialResult:
    est, sd, lo, hi, reject_at, sign = _looks_kernel(
        jnp.asarray(phi, dtype=jnp.float64), jnp.asarray(looks, dtype=jnp.int64),
        jnp.asarray(width, dtype=jnp.float64), jnp.asarray(null, dtype=jnp.float64))
    return SequentialResult(method, looks.copy(), np.asarray(est), np.asarray(sd),
                            np.asarray(lo), np.asarray(hi), width,
                            np.asarray(reject_at).astype(np.int64),
                            np.asarray(sign).astype(np.int64), alpha, null)


def _prepare(phi: Any, looks: Any, alpha: Any, null: Any, *, batched: bool):
    a = _check_phi(phi, batched=batched)
    return a, _check_looks(looks, a.shape[-1]), _check_alpha(alpha), _check_null(null)


def confidence_sequence(phi: Any, *, looks: Any, alpha: float = 0.05,
                        t_star: float | None = None, null: float = 0.0) -> SequentialResult:
    """Asymptotic confidence sequence (Waudby-Smith et al. 2021, two-sided Gaussian mixture)
    for the mean of i.i.d. ``phi (n,)`` read at ``looks``:

    ``m_t -/+ s_t sqrt(2 (t rho^2 + 1) / (t^2 rho^2) log(sqrt(t rho^2 + 1) / alpha))``,
    ``rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / t_star`` (default ``t_star``: the last
    look). Time-uniform (asymptotically): the chance that any interval, at any look and any
    number of looks, misses the mean is at most ``alpha``; stopping at ``reject_at`` is valid."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=False)
    width = _cs_width(lk, alpha, _check_t_star(t_star, lk))
    return _looks_numpy("confidence_sequence", a, lk, width, alpha, null)


def confidence_sequence_batch(phi: Any, *, looks: Any, alpha: float = 0.05,
                              t_star: float | None = None,
                              null: float = 0.0) -> SequentialResult:
    """:func:`confidence_sequence` for ``S`` seeds at once, ``phi (S, n)``: running moments by a
    float64 ``jax.numpy.cumsum`` (one compilation per shape); fields gain the seed axis."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=True)
    width = _cs_width(lk, alpha, _check_t_star(t_star, lk))
    return _looks_batch("confidence_sequence", a, lk, width, alpha, null)


def naive_z_looks(phi: Any, *, looks: Any, alpha: float = 0.05,
                  null: float = 0.0) -> SequentialResult:
    """The fixed-sample z interval ``m_t -/+ z_{1-alpha/2} s_t / sqrt(t)`` at every look: valid
    at one pre-planned look only; ``reject_at`` is what a peeking analyst would stop at."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=False)
    return _looks_numpy("naive_z", a, lk, _z_width(lk, alpha), alpha, null)


def naive_z_looks_batch(phi: Any, *, looks: Any, alpha: float = 0.05,
                        null: float = 0.0) -> SequentialResult:
    """:func:`naive_z_looks` for ``phi (S, n)`` (float64 ``cumsum``)."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=True)
    return _looks_batch("naive_z", a, lk, _z_width(lk, alpha), alpha, null)


def group_sequential(phi: Any, *, looks: Any, alpha: float = 0.05, null: float = 0.0,
                     per_side: bool = False) -> SequentialResult:
    """Group-sequential test with Lan-DeMets O'Brien-Fleming-type spending over the planned
    ``looks`` (information fractions ``n_k / n_K``): reject at the first ``k`` with
    ``|m_k - null| >= c_k s_k / sqrt(n_k)`` (:func:`lan_demets_obf_bounds`); the intervals are
    the repeated confidence intervals ``m_k -/+ c_k s_k / sqrt(n_k)`` (``per_side``: the
    gsDesign / ldbounds spending convention, see :func:`lan_demets_obf_bounds`)."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=False)
    width = lan_demets_obf_bounds(lk / lk[-1], alpha=alpha, per_side=per_side) / np.sqrt(lk)
    return _looks_numpy("group_sequential", a, lk, width, alpha, null)


def group_sequential_batch(phi: Any, *, looks: Any, alpha: float = 0.05, null: float = 0.0,
                           per_side: bool = False) -> SequentialResult:
    """:func:`group_sequential` for ``phi (S, n)`` (float64 ``cumsum``)."""
    a, lk, alpha, null = _prepare(phi, looks, alpha, null, batched=True)
    width = lan_demets_obf_bounds(lk / lk[-1], alpha=alpha, per_side=per_side) / np.sqrt(lk)
    return _looks_batch("group_sequential", a, lk, width, alpha, null)


def sequential_decision(result: SequentialResult) -> Any:
    """``"positive"`` / ``"negative"`` (the first interval that excludes ``null`` lies above /
    below it) or ``"inconclusive"``: a ``str``, or an ``(S,)`` array for a batch result."""
    if not isinstance(result, SequentialResult):
        fail("result", f"expected a SequentialResult, got {type(result).__name__}",
             "pass the output of confidence_sequence, naive_z_looks or group_sequential")
    sign = np.asarray(result.sign)
    out = np.where(sign > 0, "positive", np.where(sign < 0, "negative", "inconclusive"))
    return str(out) if out.ndim == 0 else out
