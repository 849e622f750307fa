"""Monitoring detectors for the closed loop: assignment health, feature drift, overlap, alarms.

Plain NumPy/SciPy arrays in, small ``NamedTuple`` records out. Nothing here imports
``simulators`` or ``experiments``; inputs are checked through :mod:`estimators.checks`, and bad
input raises the one ``ValueError`` shape ``<field>: <problem>. Fix: <fix>.``

Detectors (``n`` units, ``K+1`` actions, ``p_ia`` the logged probability of action ``a`` for unit
``i``):

- :func:`sample_ratio_mismatch` (SRM): do the realised assignment counts ``O_a = #{i: A_i = a}``
  match the logged propensities? Expected counts ``E_a = sum_i p_ia`` (exact when each ``A_i`` is
  drawn from its own logged row). Pearson ``X^2 = sum_a (O_a - E_a)^2 / E_a`` over the actions
  with ``E_a > 0``, referred to ``chi2(dof = #{a: E_a > 0} - 1)``. *Assumes* independent draws
  from the logged rows. ``O_a`` is Poisson-binomial with variance ``V_a = sum_i p_ia (1 - p_ia) =
  E_a - sum_i p_ia^2 <= E_a (1 - E_a / n)``, the multinomial value, with equality only when all
  rows agree; so under heterogeneous propensities ``E[X^2] = sum_a V_a / E_a = dof + 1 -
  sum_a sum_i p_ia^2 / E_a <= dof`` and the Pearson test is *conservative* (the alert rate under
  correct logging is at most ``alpha``, up to the chi-square approximation). The exact-variance
  version is reported alongside: per-action ``z_a = (O_a - E_a) / sqrt(V_a)`` and the Wald
  statistic ``W = d' Sigma^+ d`` with ``d = O - E`` and the exact covariance ``Sigma = diag(E) -
  sum_i p_i p_i'``, referred to ``chi2(rank Sigma)``; ``method="exact"`` alerts on it.
  An action taken where its logged probability is 0 is an impossible event: ``p_value = 0``,
  alert. Default alert: ``p < alpha = 0.001`` (the usual SRM threshold).
- :func:`population_stability_index` (PSI): ``sum_b (c_b - r_b) ln(c_b / r_b)`` over bins
  ``(-inf, e_1], (e_1, e_2], ..., (e_{B-1}, inf)`` whose interior edges are the unique reference
  quantiles at ``1/B, ..., (B-1)/B`` (ties and discrete features give fewer, still unique, edges);
  ``r_b``, ``c_b`` the reference and current shares, an empty bin's share floored at
  :data:`PSI_EMPTY_FLOOR` ``= 1e-4`` (Evidently's value). *Assumes* nothing about the
  distribution; it is a binned divergence whose null value is ``~ (B - 1)(1/n_r + 1/n_c)``.
  Default alert: ``PSI >= 0.1`` (Evidently's default).
- :func:`wasserstein_normed`: ``W1(reference, current) / std(reference)`` (population std), with
  ``W1`` from :func:`scipy.stats.wasserstein_distance` (Evidently's "normed Wasserstein"; its
  default numerical test when the reference has more than 1,000 rows). *Assumes* a non-constant
  reference; a constant reference gives 0 when the current sample equals it and ``inf`` otherwise
  (any movement of a feature that never moved). Default alert: ``>= 0.1``.
- :func:`ks_test`: two-sample Kolmogorov-Smirnov p-value (:func:`scipy.stats.ks_2samp`,
  two-sided; Evidently's default numerical test for <= 1,000 reference rows). *Assumes*
  continuous features (ties make it conservative). Default alert: ``p < 0.05``.
- :func:`proportion_z_test`: two-proportion z-test for binary columns, ``z = (c - r) /
  sqrt(q (1 - q)(1/n_r + 1/n_c))`` with the pooled share ``q``, two-sided normal p-value
  (Evidently's test for binary categorical columns). *Assumes* large counts. Alert: ``p < 0.05``.
- :func:`feature_drift`: the per-column tests above on a ``(n, d)`` feature table. Numerical
  columns use ``"wasserstein"`` when ``n_ref > 1000`` else ``"ks"`` (as Evidently); columns with
  at most 2 distinct values (reference and current together) use the two-proportion ``"z"`` test
  at every size (Evidently switches categorical columns to Jensen-Shannon above 1,000 rows; a
  binary share is better tested directly). PSI is reported for every column with its own alert.
- :func:`overlap_summary`: overlap of a target policy ``pi`` with the logger ``pi0``, with the
  importance weight ``w = pi / pi0`` taken in expectation over the logged action per row:
  ``ESS = (sum_i sum_a pi_ia)^2 / sum_i sum_a pi_ia^2 / pi0_ia`` over supported pairs
  (``pi0_ia > 0``), i.e. ``n E[w]^2 / E[w^2]`` (``= n`` when ``pi = pi0``); ``unsupported_mass =
  mean_i sum_a pi_ia 1{pi0_ia = 0}``; ``min_propensity = min pi0_ia`` over pairs with
  ``pi_ia > 0``; ``max_weight = max pi_ia / pi0_ia`` over supported pairs. *Assumes* both tables
  are probability rows for the same units. No built-in alert (compare ESS with ``n``, and
  ``unsupported_mass`` with 0).
- :func:`alarm_metrics`: false-alarm rate, detection rate and detection delay of a detector's
  ``(n_runs, n_periods)`` alert matrix given the drift onset period.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import stats

from estimators import checks
from estimators.checks import fail

__all__ = [
    "KS_ALPHA",
    "PSI_EMPTY_FLOOR",
    "PSI_THRESHOLD",
    "SRM_ALPHA",
    "WASSERSTEIN_MIN_REFERENCE",
    "WASSERSTEIN_THRESHOLD",
    "AlarmMetrics",
    "FeatureDrift",
    "OverlapSummary",
    "SRMResult",
    "alarm_metrics",
    "feature_drift",
    "ks_test",
    "overlap_summary",
    "population_stability_index",
    "proportion_z_test",
    "sample_ratio_mismatch",
    "wasserstein_normed",
]

SRM_ALPHA = 0.001
"""Default SRM alert level: alert when the p-value is below it."""
PSI_THRESHOLD = 0.1
"""Default PSI alert threshold (Evidently): alert when ``PSI >= 0.1``."""
PSI_EMPTY_FLOOR = 1e-4
"""Share given to an empty PSI bin (in the reference or the current sample) so the log is finite
(Evidently's value); shares are not renormalised after flooring."""
WASSERSTEIN_THRESHOLD = 0.1
"""Default normed-Wasserstein alert threshold (Evidently): alert when ``>= 0.1``."""
WASSERSTEIN_MIN_REFERENCE = 1000
"""Numerical columns use the normed Wasserstein distance when the reference has more rows than
this, the KS test otherwise (Evidently's rule)."""
KS_ALPHA = 0.05
"""Default level of the KS and two-proportion z-tests: drift when ``p < 0.05``."""
# Relative eigenvalue cut below which a direction of the exact SRM covariance counts as
# deterministic (its deviation is then zero up to round-off once impossible events are excluded).
_EIG_RTOL = 1e-9


class SRMResult(NamedTuple):
    """Sample-ratio-mismatch test (:func:`sample_ratio_mismatch`).

    ``statistic``/``dof``/``p_value``: Pearson chi-square; ``observed``/``expected``: counts per
    action (or per group); ``alert``: ``p < alpha`` for the chosen ``method``; ``z``: per-action
    exact-variance z-scores (0 where the variance is 0, NaN for dropped actions);
    ``exact_statistic``/``exact_dof``/``exact_p_value``: the Wald test with the exact covariance;
    ``impossible``: some unit took an action its logged row gives probability 0; ``method``."""

    statistic: float
    dof: int
    p_value: float
    observed: np.ndarray
    expected: np.ndarray
    alert: bool
    z: np.ndarray
    exact_statistic: float
    exact_dof: int
    exact_p_value: float
    impossible: bool
    method: str


class FeatureDrift(NamedTuple):
    """Per-feature drift of a current table against a reference (:func:`feature_drift`).

    Arrays have one entry per feature. ``method``: ``"ks"``, ``"wasserstein"`` or ``"z"``
    (binary); ``drift_score``: that method's score (a p-value for ``"ks"``/``"z"``, the normed
    distance for ``"wasserstein"``); ``drifted``: its alert; ``psi_drifted``: ``psi >=
    psi_threshold``; ``z_p_value``: the two-proportion p-value (NaN for non-binary columns);
    ``share_drifted``: mean of ``drifted``."""

    names: tuple[str, ...]
    psi: np.ndarray
    wasserstein_normed: np.ndarray
    ks_p_value: np.ndarray
    z_p_value: np.ndarray
    method: tuple[str, ...]
    drift_score: np.ndarray
    drifted: np.ndarray
    psi_drifted: np.ndarray
    share_drifted: float


class AlarmMetrics(NamedTuple):
    """Operating characteristics of an alert matrix (:func:`alarm_metrics`).

    ``false_alarm_rate``: share of pre-onset (run, period) cells that alert (NaN if there are
    none); ``detection_rate``: share of drifting runs with an alert at or after onset (NaN if no
    run drifts); ``mean_delay``: mean of ``delays`` over detected runs (NaN if none);
    ``delays (n_runs,)``: first alert period at or after onset minus onset, NaN when not
    detected or when the run has no drift."""

    false_alarm_rate: float
    detection_rate: float
    mean_delay: float
    delays: np.ndarray


class OverlapSummary(NamedTuple):
    """Overlap of a target policy with the logger (:func:`overlap_summary`; formulas in the
    module docstring)."""

    min_propensity: float
    ess: float
    max_weight: float
    unsupported_mass: float


# --------------------------------------------------------------------------------------------
# input checks


def _check_level(field: str, value: float) -> float:
    """A significance level in (0, 1)."""
    if not (isinstance(value, int | float | np.floating) and 0.0 < float(value) < 1.0):
        fail(field, f"must be a level in (0, 1), got {value!r}", "pass e.g. 0.05")
    return float(value)


def _check_threshold(field: str, value: float) -> float:
    """A positive finite alert threshold."""
    if not (isinstance(value, int | float | np.floating) and np.isfinite(value) and value > 0):
        fail(field, f"must be a positive finite threshold, got {value!r}", "pass e.g. 0.1")
    return float(value)


def _check_sample(field: str, x: Any) -> np.ndarray:
    """A non-empty 1-D finite numeric sample, as float64."""
    a = np.asarray(x)
    if a.ndim != 1:
        fail(field, f"expected a 1-D sample, got shape {a.shape}",
             "pass one value per row (use feature_drift for tables)")
    if a.size == 0:
        fail(field, "is empty", "pass at least one row")
    return checks.check_finite(field, a, "drop or impute the NaN/infinite rows").astype(np.float64)


def _check_table(field: str, x: Any) -> np.ndarray:
    """A non-empty 2-D finite numeric table ``(n, d)``, as float64."""
    a = np.asarray(x)
    if a.ndim != 2:
        fail(field, f"expected shape (n, d), got {a.shape}", "pass one row per unit")
    if a.shape[0] == 0 or a.shape[1] == 0:
        fail(field, f"is empty (shape {a.shape})", "pass at least one row and one feature")
    return checks.check_finite(field, a, "drop or impute the NaN/infinite rows").astype(np.float64)


# --------------------------------------------------------------------------------------------
# sample ratio mismatch


def _group_table(groups: Any, k1: int) -> np.ndarray:
    """``(K+1, G)`` one-hot map from actions to group labels ``0..G-1``."""
    g = np.asarray(groups)
    if g.shape != (k1,):
        fail("groups", f"expected shape ({k1},) (one arm label per action), got {g.shape}",
             "map every action column of action_dist to an arm label")
    if not np.issubdtype(g.dtype, np.integer) or (g.size and g.min() < 0):
        fail("groups", f"labels must be non-negative integers, got {g.tolist()}",
             "label arms 0..G-1, e.g. [0, 1, 1] for holdout vs offers")
    return np.eye(int(g.max()) + 1)[g]


def sample_ratio_mismatch(action: Any, action_dist: Any, *, alpha: float = SRM_ALPHA,
                          groups: Any | None = None,
                          method: Literal["pearson", "exact"] = "pearson") -> SRMResult:
    """Test whether realised assignment counts match the logged propensities (SRM).

    ``action (n,)`` are the logged actions (ints in ``[0, K]``), ``action_dist (n, K+1)`` the
    logged probability rows they were drawn from (rows summing to 1 within
    :data:`estimators.checks.ROW_SUM_ATOL`; renormalised here). Observed counts are
    ``bincount(action)``, expected ``action_dist.sum(axis=0)``; actions with zero expected count
    (never possible, hence never observed unless impossible) are dropped from the dof.

    The Pearson chi-square ``sum_a (O_a - E_a)^2 / E_a ~ chi2(#kept - 1)`` takes the counts as
    multinomial; they are Poisson-binomial, whose variance ``sum_i p_ia (1 - p_ia)`` is below the
    multinomial's when propensities vary across units, so the test is conservative there (the
    ``z`` and ``exact_*`` fields use the exact variance and covariance instead; module
    docstring). ``groups (K+1,)`` (optional) maps each action to an arm label ``0..G-1``; the
    test then runs on arm counts against arm probabilities (``action_dist`` summed within each
    arm), e.g. ``groups=[0, 1, 1]`` tests holdout against offer assignment.

    A unit whose action has logged probability 0 (in its own row, or its arm's) is an impossible
    event: both statistics are ``inf``, both p-values 0 and ``alert`` is True. ``alert`` is
    ``p_value < alpha`` (``method="pearson"``, the default) or ``exact_p_value < alpha``
    (``method="exact"``)."""
    alpha = _check_level("alpha", alpha)
    if method not in ("pearson", "exact"):
        fail("method", f"must be 'pearson' or 'exact', got {method!r}",
             "pick the Pearson chi-square or the exact-covariance Wald test")
    p = checks.check_probability_rows("action_dist", action_dist,
                                      fix="pass the logged probability rows the actions were "
                                          "drawn from (each row summing to 1)")
    if p.ndim != 2:
        fail("action_dist", f"expected shape (n, K+1), got {p.shape}", "one row per unit")
    act = np.asarray(action)
    if act.shape != (p.shape[0],):
        fail("action", f"expected shape ({p.shape[0]},) like action_dist's rows, got "
             f"{act.shape}", "pass one logged action per row of action_dist")
    if act.size == 0:
        fail("action", "is empty", "pass at least one logged unit")
    act = checks.check_actions("action", act, p.shape[1])
    p = p / p.sum(axis=1, keepdims=True)
    if groups is not None:
        onehot = _group_table(groups, p.shape[1])
        p = p @ onehot
        act = np.asarray(groups)[act].astype(np.int64)
    n_cat = p.shape[1]
    observed = np.bincount(act, minlength=n_cat).astype(np.float64)
    expected = p.sum(axis=0)
    impossible = bool(np.any(p[np.arange(len(act)), act] <= 0.0))
    keep = expected > 0.0
    variance = expected - (p * p).sum(axis=0)
    z = np.full(n_cat, np.nan)
    if impossible:
        stat = exact = np.inf
        dof = max(int(keep.sum()) - 1, 0)
        p_val = exact_p = 0.0
        z[keep] = np.where(variance[keep] > 0, (observed[keep] - expected[keep])
                           / np.sqrt(np.maximum(variance[keep], 1e-300)), 0.0)
        return SRMResult(stat, dof, p_val, observed, expected, True, z, exact, dof, exact_p,
                         True, method)
    d = observed[keep] - expected[keep]
    stat = float(np.sum(d * d / expected[keep]))
    dof = int(keep.sum()) - 1
    p_val = float(stats.chi2.sf(stat, dof)) if dof > 0 else 1.0
    v = variance[keep]
    # zero variance: the count is deterministic and, with no impossible event, equals E_a
    z[keep] = np.where(v > _EIG_RTOL * max(float(v.max()), 1.0), d / np.sqrt(np.maximum(v, 1e-300)),
                       0.0)
    pk = p[:, keep]
    sigma = np.diag(expected[keep]) - pk.T @ pk
    eig, vec = np.linalg.eigh(sigma)
    pos = eig > _EIG_RTOL * max(float(eig.max()), 1.0)
    proj = vec[:, pos].T @ d
    exact = float(np.sum(proj * proj / eig[pos]))
    exact_dof = int(pos.sum())
    exact_p = float(stats.chi2.sf(exact, exact_dof)) if exact_dof > 0 else 1.0
    alert = (p_val if method == "pearson" else exact_p) < alpha
    return SRMResult(stat, dof, p_val, observed, expected, bool(alert), z, exact, exact_dof,
                     exact_p, False, method)


# --------------------------------------------------------------------------------------------
# feature drift


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 2:
        fail("n_bins", f"must be an integer >= 2, got {n_bins!r}", "pass e.g. n_bins=10")
    return int(n_bins)


def _psi(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> float:
    """PSI of validated 1-D samples (see :func:`population_stability_index`)."""
    edges = np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins))
    # right-closed bins (-inf, e1], (e1, e2], ..., (e_last, inf): a value above every reference
    # value lands in the last bin, empty in the reference
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
    r = np.where(r == 0.0, PSI_EMPTY_FLOOR, r)
    c = np.where(c == 0.0, PSI_EMPTY_FLOOR, c)
    return float(np.sum((c - r) * np.log(c / r)))


def population_stability_index(reference: Any, current: Any, *, n_bins: int = 10) -> float:
    """PSI ``sum_b (c_b - r_b) ln(c_b / r_b)`` of ``current`` against ``reference`` (1-D).

    Bins: interior edges at the unique reference quantiles ``1/n_bins, ..., (n_bins-1)/n_bins``
    (``numpy.quantile``, linear interpolation), outer edges infinite, bins closed on the right;
    a discrete or tied feature gets fewer bins. An empty bin's share is floored at
    :data:`PSI_EMPTY_FLOOR` (1e-4). Alert when ``PSI >= 0.1`` (:data:`PSI_THRESHOLD`)."""
    n_bins = _check_n_bins(n_bins)
    return _psi(_check_sample("reference", reference), _check_sample("current", current), n_bins)


def _wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
    dist = float(stats.wasserstein_distance(ref, cur))
    sd = float(np.std(ref))
    if sd == 0.0:
        return 0.0 if dist == 0.0 else float("inf")
    return dist / sd


def wasserstein_normed(reference: Any, current: Any) -> float:
    """``scipy.stats.wasserstein_distance(reference, current) / std(reference)`` (population std).

    A constant reference (std 0) gives 0.0 if the distance is 0 (the current sample equals the
    constant) and ``inf`` otherwise, so any movement of a never-moving feature alerts. Alert
    when ``>= 0.1`` (:data:`WASSERSTEIN_THRESHOLD`)."""
    return _wasserstein_normed(_check_sample("reference", reference),
                               _check_sample("current", current))


def ks_test(reference: Any, current: Any) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value (:func:`scipy.stats.ks_2samp`, method
    ``"auto"``). Drift when ``p < 0.05`` (:data:`KS_ALPHA`)."""
    return float(stats.ks_2samp(_check_sample("reference", reference),
                                _check_sample("current", current)).pvalue)


def _z_two_proportions(ref: np.ndarray, cur: np.ndarray, value: float) -> float:
    r = float(np.mean(ref == value))
    c = float(np.mean(cur == value))
    q = (r * len(ref) + c * len(cur)) / (len(ref) + len(cur))
    var = q * (1.0 - q) * (1.0 / len(ref) + 1.0 / len(cur))
    if var <= 0.0:  # one value everywhere: nothing moved
        return 1.0
    return float(2.0 * stats.norm.sf(abs(c - r) / np.sqrt(var)))


def proportion_z_test(reference: Any, current: Any) -> float:
    """Two-sided p-value of the pooled two-proportion z-test for a binary column (at most two
    distinct values over both samples): is the share of the larger value the same in both?
    A column with a single value gives 1.0. Drift when ``p < 0.05``."""
    ref = _check_sample("reference", reference)
    cur = _check_sample("current", current)
    values = np.unique(np.concatenate([ref, cur]))
    if len(values) > 2:
        fail("reference", f"has {len(values)} distinct values (with current); the two-proportion "
             "test needs a binary column", "use ks_test or wasserstein_normed for numerical "
             "columns")
    return _z_two_proportions(ref, cur, float(values[-1]))


def feature_drift(reference: Any, current: Any, *, names: Any | None = None,
                  psi_threshold: float = PSI_THRESHOLD,
                  wasserstein_threshold: float = WASSERSTEIN_THRESHOLD,
                  ks_alpha: float = KS_ALPHA, z_alpha: float = KS_ALPHA,
                  n_bins: int = 10) -> FeatureDrift:
    """Column-wise drift of ``current (n_cur, d)`` against ``reference (n_ref, d)``.

    Every column gets PSI (alert ``>= psi_threshold``), the normed Wasserstein distance and the
    KS p-value (asymptotic for binary columns, which are all ties). The deciding method per
    column: ``"z"`` (two-proportion z-test, drift when ``p < z_alpha``) for columns with at most
    2 distinct values over both samples; otherwise ``"wasserstein"`` (drift when ``>=
    wasserstein_threshold``) if ``n_ref > 1000`` and ``"ks"`` (drift when ``p < ks_alpha``) if
    not, Evidently's defaults. ``names`` (``d`` strings) label the columns (default ``x0, x1,
    ...``). A new value in ``current`` makes a reference-binary column numerical."""
    ref = _check_table("reference", reference)
    cur = _check_table("current", current)
    if cur.shape[1] != ref.shape[1]:
        fail("current", f"has {cur.shape[1]} features, reference has {ref.shape[1]}",
             "pass the same columns in the same order")
    d = ref.shape[1]
    if names is None:
        labels = tuple(f"x{j}" for j in range(d))
    else:
        labels = tuple(str(s) for s in names)
        if len(labels) != d:
            fail("names", f"has {len(labels)} entries for {d} features", "one name per column")
    psi_threshold = _check_threshold("psi_threshold", psi_threshold)
    wasserstein_threshold = _check_threshold("wasserstein_threshold", wasserstein_threshold)
    ks_alpha = _check_level("ks_alpha", ks_alpha)
    z_alpha = _check_level("z_alpha", z_alpha)
    n_bins = _check_n_bins(n_bins)
    numeric_method = "wasserstein" if ref.shape[0] > WASSERSTEIN_MIN_REFERENCE else "ks"
    psi, wd, ks, zp = (np.empty(d), np.empty(d), np.empty(d), np.full(d, np.nan))
    score, drifted = np.empty(d), np.zeros(d, dtype=bool)
    methods = []
    for j in range(d):
        r, c = ref[:, j], cur[:, j]
        psi[j] = _psi(r, c, n_bins)
        wd[j] = _wasserstein_normed(r, c)
        values = np.unique(np.concatenate([r, c]))
        binary = len(values) <= 2
        # a binary column is all ties: the exact KS distribution does not apply (and SciPy warns)
        ks[j] = float(stats.ks_2samp(r, c, method="asymp" if binary else "auto").pvalue)
        if binary:
            zp[j] = _z_two_proportions(r, c, float(values[-1]))
            methods.append("z")
            score[j], drifted[j] = zp[j], zp[j] < z_alpha
        elif numeric_method == "wasserstein":
            methods.append("wasserstein")
            score[j], drifted[j] = wd[j], wd[j] >= wasserstein_threshold
        else:
            methods.append("ks")
            score[j], drifted[j] = ks[j], ks[j] < ks_alpha
    return FeatureDrift(labels, psi, wd, ks, zp, tuple(methods), score, drifted,
                        psi >= psi_threshold, float(drifted.mean()))


# --------------------------------------------------------------------------------------------
# overlap


def overlap_summary(action_dist_policy: Any, logging_dist: Any) -> OverlapSummary:
    """Overlap of a target policy's rows ``pi (n, K+1)`` with the logger's ``pi0 (n, K+1)``.

    ``ESS = (sum_i sum_a pi_ia)^2 / sum_i sum_a pi_ia^2 / pi0_ia`` with both sums over supported
    pairs (``pi0_ia > 0``): ``n E[w]^2 / E[w^2]`` for ``w = pi / pi0``, its moments taken exactly
    over the logged action in each row (``E_pi0[w | i] = sum_a pi_ia``, ``E_pi0[w^2 | i] =
    sum_a pi_ia^2 / pi0_ia``); 0 when no policy mass is supported. ``unsupported_mass = mean_i
    sum_a pi_ia 1{pi0_ia = 0}`` (the share of policy mass no logged row can evaluate);
    ``min_propensity = min pi0_ia`` over pairs with ``pi_ia > 0`` (0 when some policy mass is
    unsupported); ``max_weight = max pi_ia / pi0_ia`` over supported pairs."""
    pi = checks.check_probability_rows("action_dist_policy", action_dist_policy,
                                       fix="pass the target policy's probability rows")
    pi0 = checks.check_probability_rows("logging_dist", logging_dist,
                                        fix="pass the logger's probability rows")
    if pi.ndim != 2:
        fail("action_dist_policy", f"expected shape (n, K+1), got {pi.shape}", "one row per unit")
    if pi0.shape != pi.shape:
        fail("logging_dist", f"shape {pi0.shape} does not match action_dist_policy's {pi.shape}",
             "pass both tables for the same units and actions")
    if pi.shape[0] == 0:
        fail("action_dist_policy", "is empty", "pass at least one unit")
    supported = pi0 > 0.0
    safe = np.where(supported, pi0, 1.0)
    first = np.where(supported, pi, 0.0).sum()
    second = np.where(supported, pi * pi / safe, 0.0).sum()
    ess = float(first * first / second) if second > 0 else 0.0
    return OverlapSummary(
        min_propensity=float(pi0[pi > 0.0].min()),
        ess=ess,
        max_weight=float(np.where(supported, pi / safe, 0.0).max()),
        unsupported_mass=float(np.where(supported, 0.0, pi).sum(axis=1).mean()))


# --------------------------------------------------------------------------------------------
# alarm metrics


def alarm_metrics(alerts: Any, *, onset: Any) -> AlarmMetrics:
    """False alarms and detection delay of an alert matrix ``alerts (n_runs, n_periods)`` (bool,
    or 0/1) given the drift ``onset`` period: an int in ``[0, n_periods)`` shared by all runs, a
    ``(n_runs,)`` int array (per run), or ``None``/``-1`` for no drift (then every alert is a
    false alarm).

    ``false_alarm_rate`` = alerting cells among the pre-onset ``(run, period)`` cells (periods
    ``< onset``; every period of a run without drift); ``delays[r]`` = first alerting period
    ``>= onset`` minus onset (NaN if none, or no drift); ``detection_rate`` = share of drifting
    runs with a finite delay; ``mean_delay`` = mean delay over detected runs only."""
    a = np.asarray(alerts)
    if a.ndim != 2 or 0 in a.shape:
        fail("alerts", f"expected a non-empty (n_runs, n_periods) matrix, got shape {a.shape}",
             "pass one row of per-period alerts per run")
    if a.dtype != np.bool_:
        if not (np.issubdtype(a.dtype, np.number) and np.all((a == 0) | (a == 1))):
            fail("alerts", f"entries must be boolean (0/1), got dtype {a.dtype} with other values",
                 "pass the detector's alert flags")
        a = a.astype(bool)
    n_runs, n_periods = a.shape
    on = np.full(n_runs, -1) if onset is None else np.asarray(onset)
    if on.ndim == 0:
        on = np.full(n_runs, on)
    if on.shape != (n_runs,) or not np.issubdtype(on.dtype, np.integer):
        fail("onset", f"must be an int or an (n_runs,) = ({n_runs},) int array, got "
             f"{np.asarray(onset).dtype} of shape {np.shape(onset)}",
             "pass the first drifting period (or None / -1 for no drift)")
    if np.any((on < -1) | (on >= n_periods)):
        fail("onset", f"values must lie in [0, {n_periods - 1}] or be -1 (no drift), got "
             f"{on[(on < -1) | (on >= n_periods)][0]}",
             "pass a period inside the horizon, or -1 / None for a run without drift")
    drift = on >= 0
    cut = np.where(drift, on, n_periods)
    t = np.arange(n_periods)
    pre = t[None, :] < cut[:, None]
    n_pre = int(pre.sum())
    false_alarm_rate = float(a[pre].sum() / n_pre) if n_pre else float("nan")
    post_alert = a & ~pre
    detected = post_alert.any(axis=1) & drift
    first = np.argmax(post_alert, axis=1)
    delays = np.where(detected, first - cut, np.nan).astype(np.float64)
    detection_rate = float(detected[drift].mean()) if drift.any() else float("nan")
    mean_delay = float(delays[detected].mean()) if detected.any() else float("nan")
    return AlarmMetrics(false_alarm_rate, detection_rate, mean_delay, delays)
