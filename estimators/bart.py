"""BART base model and a binary-design BCF uplift learner, through ``bartz`` (BART in JAX).

:class:`BART` is a base model (:mod:`estimators.base` contract) that samples the posterior of
Bayesian Additive Regression Trees (Chipman, George & McCulloch 2010)::

    y_i = f(x_i) + eps_i,   eps_i ~ N(0, sigma^2 / w_i),   f = offset + sum_{j=1}^{m} g(x; T_j, M_j)

with the BART priors: tree depth ``P(node at depth d splits) = base / (1 + d)^power``, leaves
``N(0, sigma_mu^2)`` with ``sigma_mu = (max y - min y) / 2 / (k sqrt(m))``, ``offset`` the
weighted mean of ``y``, and ``sigma^2 ~ nu lambda / chi^2_nu`` with ``lambda`` set so that
``P(sigma < sigest) = q`` (``sigest``: the weighted OLS residual standard deviation, as BART3's
``gbart``). ``predict`` is the posterior mean of ``f(x)`` (the average of the saved draws);
``predict_draws`` the saved draws themselves.

It is not pure JAX (bartz runs its own jitted MCMC, in float32, outside the caller's traces), so
``traceable = False``: meta-learners fit it on the host once per mask
(:mod:`estimators.crossfit`, :class:`~estimators.crossfit.HostFits`).

Implementation notes (they matter for cost and for the contract, not for the model):

* **zero weights** drop rows exactly: only the rows with ``w > 0`` define the binning, the
  priors, the likelihood and the random stream.
* **positive weights** are honoured as precision weights (``error_scale = 1 / sqrt(w)`` in
  bartz): the likelihood ``prod_i N(y_i; f(x_i), sigma^2 / w_i)`` is the weighted squared loss
  ``sum_i w_i (y_i - f(x_i))^2 / (2 sigma^2)`` every other base model minimises. Weights are
  rescaled to mean 1 inside (the sigma prior is set from the same weighted residuals, so the
  posterior of ``f`` does not depend on that scale); :meth:`BART.error_sd` reports ``sigma`` on
  the caller's weight scale.
* **static shapes**: bartz compiles its MCMC for each number of rows (10-30 s on a CPU). The
  kept rows are therefore padded to a bucket size (``min_rows``, then the next of ``2^j`` or
  ``3 * 2^(j-1)``, at most 1/3 of padding) with rows flagged *missing* (zero likelihood
  precision: they enter neither the leaves, nor ``sigma``, nor the priors), so per-arm and
  per-fold fits of similar size share one compilation. For that to be exact the bartz
  minimum-points-per-node rules (which would count the padding rows) are off: the tree prior is
  the plain Chipman et al. depth prior.
* **random stream**: the MCMC key is ``fold_in(key(seed), h)`` with ``h`` a digest of the kept
  rows ``(x, y, w)``: refitting the same data with the same seed is bit-identical (and fitting
  with zero weights equals fitting the subset), while fits on different data (the arms of a
  T-learner, the folds of a cross-fit) run on unrelated streams, i.e. independent chains.
  (Two fits on bit-identical kept rows share their stream: only a degenerate duplicated log.)
* **degenerate data**: a constant kept ``y``, or no predictor with two distinct values, has no
  tree to fit; ``params.model`` is ``None`` and every draw is the weighted mean of ``y``.
* bartz needs 32-bit JAX types: its calls run under a local ``jax.enable_x64(False)``; inputs
  are cast to float32 there and outputs returned as float64 (float32 resolution).

:class:`BCFLearner` is Bayesian Causal Forests (Hahn, Murray & Carvalho 2020) for the binary
holdout design, through ``bartz.bcf``: ``y = mu(x, pi(x)) + tau(x) z + eps``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import chi2

from estimators.base import Logistic, check_xy
from estimators.checks import fail
from estimators.precision import float64_methods
from estimators.uplift import _check_predict_x, _positions, check_fit_inputs, supported_actions

__all__ = ["BART", "BARTParams", "BCFLearner", "padded_rows"]

_MAX_DEPTH = 6  # bartz' default maximum tree depth (levels 0..5), as BART3
_PREDICT_CHUNK = 8192  # rows per bartz predict call (memory: n_draws x 8192 float32 per chunk)


def padded_rows(n: int, min_rows: int) -> int:
    """The bucket size ``n`` rows are padded to: ``min_rows`` if ``n <= min_rows``, else the
    smallest ``2^j`` or ``3 * 2^(j-1)`` that is ``>= n`` (padding below 1/3 of the bucket)."""
    if n <= min_rows:
        return int(min_rows)
    j = int(np.ceil(np.log2(n)))
    three = 3 * 2 ** (j - 2)  # 3 * 2^(j-2) lies in [2^(j-1), 2^j)
    return int(three if three >= n else 2 ** j)


class BARTParams(NamedTuple):
    """A fitted :class:`BART`: ``model`` the fitted ``bartz.Bart`` (its trace of trees, binner
    and state; ``None`` when the kept ``y`` is constant or no predictor has a cutpoint, then
    every draw is ``constant``), ``constant`` the weighted mean of the kept ``y``,
    ``n_features`` the ``d`` of the training ``x``, ``weight_mean`` the mean kept weight (the
    scale :meth:`BART.error_sd` reports ``sigma`` on), ``n_rows`` the kept rows."""

    model: Any
    constant: float
    n_features: int
    weight_mean: float
    n_rows: int


def _cutpoints(x: np.ndarray, max_cutpoints: int) -> np.ndarray:
    """``(d, max_cutpoints)`` cutpoints in bartz ``xinfo`` format (NaN-padded): per predictor the
    midpoints between consecutive unique values, evenly decimated to ``max_cutpoints`` when there
    are more (bartz' ``UniqueQuantileBinner`` rule, computed here in NumPy so that the shape does
    not depend on ``n``)."""
    out = np.full((x.shape[1], max_cutpoints), np.nan)
    for j in range(x.shape[1]):
        u = np.unique(x[:, j])
        mid = u[:-1] + np.diff(u) / 2
        if mid.size > max_cutpoints:
            mid = mid[np.round(np.linspace(-1, mid.size, max_cutpoints + 2)[1:-1]).astype(int)]
        out[j, :mid.size] = mid
    return out


def _digest(*arrays: np.ndarray) -> int:
    h = hashlib.blake2b(digest_size=4)
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF


def _sigma_prior(x: np.ndarray, y: np.ndarray, w: np.ndarray, nu: float,
                 q: float) -> float:
    """BART's ``lambda``: ``sigest^2 chi2.ppf(1 - q, nu) / nu``, so ``P(sigma < sigest) = q``
    under ``sigma^2 ~ nu lambda / chi^2_nu``. ``sigest^2`` is the weighted OLS (with intercept)
    residual variance ``sum w r^2 / (n - rank - 1)``; with ``n <= rank + 1`` the weighted
    variance of ``y``; floored at ``1e-6`` times that variance (an exactly linear ``y``)."""
    n = len(y)
    ybar = w @ y / w.sum()
    var_y = w @ (y - ybar) ** 2 / max(n - 1, 1)
    xc = x - (w @ x) / w.sum()
    sw = np.sqrt(w)
    coef, _, rank, _ = np.linalg.lstsq(xc * sw[:, None], (y - ybar) * sw, rcond=None)
    dof = n - rank - 1
    if dof > 0:
        r = (y - ybar) - xc @ coef
        s2 = float(w @ r ** 2 / dof)
    else:
        s2 = float(var_y)
    s2 = max(s2, 1e-6 * float(var_y))
    return s2 * float(chi2.ppf(1.0 - q, nu)) / nu


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _check_mcmc_fields(obj: Any, ints: tuple[tuple[str, int], ...],
                       positives: tuple[str, ...]) -> None:
    """The shared settings checks of :class:`BART` and :class:`BCFLearner`: each ``(name, low)``
    of ``ints`` an integer ``>= low``, each of ``positives`` a finite number ``> 0``, and
    ``n_draws`` (the total over chains) a multiple of ``n_chains``."""
    cls = type(obj).__name__
    defaults = type(obj).__dataclass_fields__
    for name, low in ints:
        v = getattr(obj, name)
        if not _is_int(v) or v < low:
            fail(f"{cls}.{name}", f"must be an integer >= {low}, got {v!r}",
                 f"e.g. {name}={defaults[name].default}")
    if obj.n_draws % obj.n_chains:
        fail(f"{cls}.n_draws", f"n_draws={obj.n_draws} (the total over chains) is not a "
             f"multiple of n_chains={obj.n_chains}",
             f"use n_draws={obj.n_chains * max(1, obj.n_draws // obj.n_chains)}")
    for name in positives:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not (
                np.isfinite(v) and v > 0):
            fail(f"{cls}.{name}", f"must be a finite number > 0, got {v!r}",
                 f"e.g. {name}={defaults[name].default}")


@float64_methods("fit", "predict", "predict_draws", "error_sd")
@dataclasses.dataclass(frozen=True)
class BART:
    """BART regression (module docstring: model, priors, weights, padding, random stream).

    MCMC: ``n_chains`` independent chains, each ``n_burn`` burn-in iterations then
    ``n_draws / n_chains`` saved draws, one every ``keep_every`` iterations; ``n_draws`` is the
    total number of saved draws (``predict_draws`` returns ``(n_draws, n)``). Prior knobs:
    ``k`` (leaf scale, larger = smoother), ``sigma_df`` (``nu``) and ``sigma_quantile`` (``q``)
    of the error-variance prior, ``power`` / ``base`` of the tree-depth prior; ``max_cutpoints``
    per predictor (unique-value midpoints, decimated); ``min_rows``: the smallest row bucket
    (module docstring). ``seed``: the integer seed of the MCMC key.
    """

    traceable: ClassVar[bool] = False

    n_trees: int = 200
    n_burn: int = 200
    n_draws: int = 1000
    keep_every: int = 1
    n_chains: int = 1
    seed: int = 0
    k: float = 2.0
    sigma_df: float = 3.0
    sigma_quantile: float = 0.9
    power: float = 2.0
    base: float = 0.95
    max_cutpoints: int = 100
    min_rows: int = 256

    def __post_init__(self) -> None:
        _check_mcmc_fields(self, (("n_trees", 1), ("n_burn", 0), ("n_draws", 1),
                                  ("keep_every", 1), ("n_chains", 1), ("seed", 0),
                                  ("max_cutpoints", 1), ("min_rows", 1)),
                           ("k", "sigma_df", "power"))
        for name in ("sigma_quantile", "base"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not (
                    0.0 < v < 1.0):
                fail(f"BART.{name}", f"must lie strictly between 0 and 1, got {v!r}",
                     f"e.g. {name}={BART.__dataclass_fields__[name].default}")

    # -- fit ------------------------------------------------------------------------------

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> BARTParams:
        """Sample the posterior on the rows with ``sample_weight > 0`` (all rows without
        weights); positive weights are precision weights (error variance ``sigma^2 / w``)."""
        check_xy(x, y, sample_weight, "BART.fit")
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        keep = w > 0
        x, y, w = x[keep], y[keep], w[keep]
        n, d = x.shape
        weight_mean = float(w.mean())
        w = w / weight_mean
        constant = float(w @ y / w.sum())
        xinfo = _cutpoints(x, self.max_cutpoints)
        if np.ptp(y) == 0 or np.all(np.isnan(xinfo)):
            return BARTParams(None, constant, d, weight_mean, n)
        lam = _sigma_prior(x, y, w, float(self.sigma_df), float(self.sigma_quantile))
        bucket = padded_rows(n, self.min_rows)
        pad = bucket - n
        xp = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]).T.astype(np.float32)
        yp = np.concatenate([y, np.full(pad, constant)]).astype(np.float32)
        scale = np.concatenate([1.0 / np.sqrt(w), np.ones(pad)]).astype(np.float32)
        missing = np.arange(bucket) >= n
        digest = _digest(x, y, w)
        model = _run_bart(self, xp, yp, scale, missing, xinfo.astype(np.float32), lam,
                          constant, float(np.ptp(y)) / 2.0, digest)
        return BARTParams(model, constant, d, weight_mean, n)

    # -- predict --------------------------------------------------------------------------

    def predict_draws(self, params: BARTParams, x: Any) -> jax.Array:
        """Posterior draws of ``f(x)``: ``(n_draws, n)`` float64 (chains concatenated)."""
        x = self._check_x(params, x, "BART.predict_draws")
        if params.model is None:
            return jnp.full((self.n_draws, x.shape[0]), params.constant, dtype=jnp.float64)
        return jnp.asarray(np.concatenate(list(self._draw_chunks(params, x)), axis=1),
                           dtype=jnp.float64)

    def predict(self, params: BARTParams, x: Any) -> jax.Array:
        """Posterior mean of ``f(x)``, ``(n,)`` float64: the mean of :meth:`predict_draws`
        (accumulated in float64, row chunk by row chunk: the draws are never all in memory)."""
        x = self._check_x(params, x, "BART.predict")
        if params.model is None:
            return jnp.full(x.shape[0], params.constant, dtype=jnp.float64)
        return jnp.asarray(np.concatenate([d.mean(axis=0, dtype=np.float64)
                                           for d in self._draw_chunks(params, x)]))

    def _draw_chunks(self, params: BARTParams, x: np.ndarray) -> Any:
        """float32 draws ``(n_draws, rows)`` of consecutive row chunks of ``x``: chunks of
        :data:`_PREDICT_CHUNK` rows, each padded to its row bucket (few compiled shapes)."""
        for start in range(0, x.shape[0], _PREDICT_CHUNK):
            part = x[start:start + _PREDICT_CHUNK]
            m = part.shape[0]
            bucket = padded_rows(m, self.min_rows)
            xp = np.concatenate([part, np.repeat(part[:1], bucket - m, axis=0)])
            with jax.enable_x64(False):
                draws = np.asarray(params.model.predict(xp.T.astype(np.float32),
                                                        kind="mean_samples"))
            yield draws[:, :m]

    def error_sd(self, params: BARTParams) -> jax.Array:
        """Posterior draws of ``sigma`` (``(n_draws,)``), on the scale of the caller's weights:
        the error variance of a row with weight ``w`` is ``sigma^2 / w`` (unweighted: the error
        standard deviation). Zeros for a constant fit."""
        if params.model is None:
            return jnp.zeros(self.n_draws, dtype=jnp.float64)
        with jax.enable_x64(False):
            s = np.asarray(params.model.get_error_sdev())
        return jnp.asarray(s.reshape(-1), dtype=jnp.float64) * np.sqrt(params.weight_mean)

    def _check_x(self, params: BARTParams, x: Any, where: str) -> np.ndarray:
        if not isinstance(params, BARTParams):
            fail(f"{where}: params", f"expected BARTParams from BART.fit, got "
                 f"{type(params).__name__}", "pass the result of BART.fit")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != params.n_features or x.shape[0] < 1:
            fail(f"{where}: x", f"must have shape (n >= 1, {params.n_features}) like the "
                 f"training x, got {x.shape}", "pass the same feature columns as at fit")
        if not np.all(np.isfinite(x)):
            fail(f"{where}: x", "contains NaN or inf", "impute or drop those rows")
        return x


def _run_bart(cfg: BART, x: np.ndarray, y: np.ndarray, scale: np.ndarray,
              missing: np.ndarray, xinfo: np.ndarray, lam: float, offset: float,
              tau_num: float, digest: int) -> Any:
    """One ``bartz.Bart`` fit on padded float32 arrays (``x`` is ``(d, bucket)``), in 32-bit
    JAX mode, progress printing off."""
    import functools

    from bartz import Bart
    from bartz.prepcovars import GivenSplitsBinner

    with jax.enable_x64(False):
        key = jax.random.fold_in(jax.random.key(cfg.seed), digest)
        return Bart(
            x, y, error_scale=scale, missing=missing,
            binner=functools.partial(GivenSplitsBinner, xinfo=jnp.asarray(xinfo)),
            sigma_df=float(cfg.sigma_df), sigma_scale=float(np.sqrt(lam)),
            sigma_init=float(np.sqrt(lam)), k=float(cfg.k), power=float(cfg.power),
            base=float(cfg.base), tau_num=tau_num, offset=offset, num_trees=cfg.n_trees,
            n_save=cfg.n_draws // cfg.n_chains, n_burn=cfg.n_burn, n_skip=cfg.keep_every,
            printevery=None, num_chains=None if cfg.n_chains == 1 else cfg.n_chains,
            num_chain_devices=None,  # chains vmapped on the arrays' device (no sharding)
            seed=key, maxdepth=_MAX_DEPTH,
            # Padding rows would count towards bartz' minimum-points rules: off. Blocking
            # splitless predictors through a fixed-size list (d entries) keeps the compiled
            # shapes independent of how many predictors are constant in this subset.
            init_kw={"min_points_per_decision_node": None, "min_points_per_leaf": None,
                     "filter_splitless_vars": x.shape[0]})


# ---------------------------------------------------------------------------------------------
# BCF (binary holdout design)
# ---------------------------------------------------------------------------------------------


@float64_methods("fit", "predict_mu", "predict_tau", "predict_tau_draws")
@dataclasses.dataclass
class BCFLearner:
    """Bayesian Causal Forests (Hahn, Murray & Carvalho 2020) for the binary holdout design.

    Model (``bartz.bcf``, continuous outcome, standardised inside): with ``z = 1{A = o}`` for the
    one supported offer ``o``,
    ``y = mu(x, pi(x)) + tau(x) z + eps``, ``eps ~ N(0, sigma^2)``, two sums of trees: a
    prognostic forest ``mu`` (``n_trees_mu`` trees, leaf scale ``k_mu``) that also splits on the
    propensity ``pi(x) = P(A = o | x)`` (the BCF remedy for regularisation-induced confounding)
    and an effect forest ``tau`` (``n_trees_tau`` trees, leaf scale ``k_tau``, a shallower tree
    prior, plus a global intercept) that does not. ``predict_tau`` is the posterior mean of
    ``tau(x)`` for ``o`` (0 for no offer), ``predict_mu`` that of ``[mu_0(x), mu_0(x) + tau(x)]``.

    Propensity: with ``action_prob`` the fit uses its offer column ``action_prob[:, o]`` (the
    logged truth) as ``pi`` on the training rows, and ``propensity`` (a :class:`Logistic`
    regression on those fractional labels) supplies ``pi(x)`` at new ``x``; without it
    ``propensity`` is fitted on ``z`` and used everywhere. Only ``predict_mu`` depends on
    ``pi`` at prediction time (the effect forest never splits on it).

    Supports the UpliftLearner protocol (:mod:`estimators.heads`) with ``supported_actions_ =
    [0, o]``; a log with more than one supported offer is a ``ValueError`` (use the T/X/DR
    learners of :mod:`estimators.uplift`). MCMC: ``n_chains`` chains of ``n_burn`` burn-in and
    ``n_draws / n_chains`` saved draws; the key is ``jax.random.key(seed)``. Every fit compiles
    bartz' BCF sampler for its number of rows (no padding: ``bartz.bcf`` has no missing-row
    mask).
    """

    n_trees_mu: int = 200
    n_trees_tau: int = 50
    n_burn: int = 200
    n_draws: int = 1000
    n_chains: int = 1
    seed: int = 0
    k_mu: float = 2.0
    k_tau: float = 10.0
    sigma_df: float = 3.0
    propensity: Logistic = dataclasses.field(default_factory=Logistic)
    model_: Any = dataclasses.field(default=None, repr=False)
    propensity_params_: Any = dataclasses.field(default=None, repr=False)
    offer_: int | None = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_mcmc_fields(self, (("n_trees_mu", 1), ("n_trees_tau", 1), ("n_burn", 0),
                                  ("n_draws", 1), ("n_chains", 1), ("seed", 0)),
                           ("k_mu", "k_tau", "sigma_df"))
        if not isinstance(self.propensity, Logistic):
            fail("BCFLearner.propensity", f"must be an estimators.base.Logistic, got "
                 f"{type(self.propensity).__name__}", "use e.g. Logistic(alpha=1.0)")

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> BCFLearner:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "BCFLearner.fit")
        sup = supported_actions(action, action_prob, k1)
        if len(sup) != 2:
            fail("action", f"BCFLearner fits the binary holdout design (no offer 0 against one "
                 f"offer), but the log supports offers {sup[1:].tolist()}",
                 "log one offer against no offer (action_prob zero for the others), or use "
                 "TLearner / DRLearner from estimators.uplift for several offers")
        offer = int(sup[1])
        z = (action == offer).astype(np.float64)
        if action_prob is not None:
            pi_train = action_prob[:, offer]
            self.propensity_params_ = self.propensity.fit(x, pi_train)
        else:
            self.propensity_params_ = self.propensity.fit(x, z)
            pi_train = np.asarray(self.propensity.predict(self.propensity_params_, x))
        from bartz.bcf import bcf

        with jax.enable_x64(False):
            self.model_ = bcf(
                x.astype(np.float32), reward.astype(np.float32), z.astype(np.float32),
                pihat_train=np.asarray(pi_train, np.float32), num_trees_mu=self.n_trees_mu,
                num_trees_tau=self.n_trees_tau, ndpost=self.n_draws // self.n_chains,
                nskip=self.n_burn, num_chains=None if self.n_chains == 1 else self.n_chains,
                k_mu=float(self.k_mu), k_tau=float(self.k_tau), sigma_df=float(self.sigma_df),
                seed=int(self.seed))
        self.offer_ = offer
        self.n_actions_, self.n_features_, self.supported_actions_ = k1, x.shape[1], sup
        return self

    def _draws(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws ``(S, n)`` of ``mu_0(x)`` and of ``tau(x)`` for the offer."""
        xj = np.asarray(_check_predict_x(self, x))
        pi = np.asarray(self.propensity.predict(self.propensity_params_, xj), np.float32)
        with jax.enable_x64(False):
            out = self.model_.predict(xj.astype(np.float32), pihat_test=pi)
            mu0, tau = np.asarray(out["mu"]), np.asarray(out["tau"])
        return mu0.astype(np.float64), tau.astype(np.float64)

    def _select(self, cols_all: np.ndarray, actions: Any | None, where: str) -> np.ndarray:
        """``cols_all (..., 2)`` over ``supported_actions_``, reduced to ``actions`` (or to all
        ``K+1`` when every action is supported)."""
        pos = _positions(self, actions, where)
        return cols_all if pos is None else cols_all[..., pos]

    def predict_tau_draws(self, x: Any, actions: Any | None = None) -> jax.Array:
        """Posterior draws ``(S, n, K+1)`` (or ``len(actions)`` columns) of ``tau``; the no-offer
        column is 0."""
        _, tau = self._draws(x)
        both = np.stack([np.zeros_like(tau), tau], axis=-1)
        return jnp.asarray(self._select(both, actions, "BCFLearner.predict_tau_draws"))

    def predict_tau(self, x: Any, actions: Any | None = None) -> jax.Array:
        """Posterior mean of ``tau``, ``(n, K+1)`` or the columns of ``actions``."""
        _, tau = self._draws(x)
        t = tau.mean(axis=0)
        both = np.stack([np.zeros_like(t), t], axis=-1)
        return jnp.asarray(self._select(both, actions, "BCFLearner.predict_tau"))

    def predict_mu(self, x: Any, actions: Any | None = None) -> jax.Array:
        """Posterior mean of ``[mu_0, mu_0 + tau]``, ``(n, K+1)`` or the columns of
        ``actions``."""
        mu0, tau = self._draws(x)
        m0, t = mu0.mean(axis=0), tau.mean(axis=0)
        both = np.stack([m0, m0 + t], axis=-1)
        return jnp.asarray(self._select(both, actions, "BCFLearner.predict_mu"))
