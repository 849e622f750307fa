"""Bayesian hierarchical uplift in numpyro: per-action uplift with partial pooling across segments.

Model for one label (value or cost; fit one object per head), on the standardised label
``y~ = (y - ybar) / sd(y)``, rows ``i`` with segment ``s_i``, action ``a_i`` (0 = no offer):

    alpha_s ~ N(0, 1)                          segment baseline
    beta    ~ N(0, 1)^d                        linear baseline in (standardised) features
    mu_a    ~ N(0, prior_scale)                population uplift of offer a >= 1
    sd_a    ~ HalfNormal(pool_scale)           spread of offer a's uplift across segments
    tau_sa  = mu_a + sd_a z_sa, z_sa ~ N(0,1)  segment uplift (non-centred partial pooling)
    gamma_a ~ N(0, prior_scale)^d              optional linear effect modifiers (feature_effects)
    sigma_sa ~ 0.05 + HalfNormal(1)            noise scale per (segment, action) cell
    y~_i ~ N(alpha_s + x_i·beta + tau_{s,a} + x_i·gamma_a, sigma_{s,a}^2)   (tau_{s,0} = 0)

Inference by NUTS (default) or SVI (a multivariate-normal guide, faster, narrower intervals).
Posterior draws of ``tau`` per user feed Thompson-style exploration. Assumes the actions were
randomised given segment (uniform or holdout logs) or ignorable given ``(segment, x)`` with the
linear baseline above; it does not reweight by propensities.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoMultivariateNormal

from estimators import checks
from estimators.checks import fail
from estimators.precision import float64_methods

__all__ = ["HierarchicalUplift", "hierarchical_uplift_model"]

SIGMA_FLOOR = 0.05  # in standardised label units


def hierarchical_uplift_model(x: jax.Array, segment: jax.Array, action: jax.Array,
                              n_segments: int, n_actions: int, feature_effects: bool,
                              prior_scale: float, pool_scale: float,
                              y: jax.Array | None = None) -> None:
    """The numpyro model of the module docstring (standardised ``x`` and ``y``)."""
    d = x.shape[1]
    k = n_actions - 1
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0).expand([n_segments]).to_event(1))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([d]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0.0, prior_scale).expand([k]).to_event(1))
    sd = numpyro.sample("sd", dist.HalfNormal(pool_scale).expand([k]).to_event(1))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_segments, k]).to_event(2))
    tau = numpyro.deterministic("tau", mu + sd * z)  # (S, K)
    tau_full = jnp.concatenate([jnp.zeros((n_segments, 1)), tau], axis=1)
    sigma = numpyro.sample("sigma",
                           dist.HalfNormal(1.0).expand([n_segments, n_actions]).to_event(2))
    sigma = sigma + SIGMA_FLOOR  # a label constant in a cell (no-offer cost = 0) stays proper
    mean = alpha[segment] + x @ beta + tau_full[segment, action]
    if feature_effects:
        gamma = numpyro.sample("gamma", dist.Normal(0.0, prior_scale).expand([k, d]).to_event(2))
        gamma_full = jnp.concatenate([jnp.zeros((1, d)), gamma], axis=0)
        mean = mean + jnp.sum(x * gamma_full[action], axis=1)
    with numpyro.plate("rows", x.shape[0]):
        numpyro.sample("y", dist.Normal(mean, sigma[segment, action]), obs=y)


@float64_methods("fit", "segment_tau_draws", "interval", "predict_tau_draws", "predict_tau")
@dataclasses.dataclass
class HierarchicalUplift:
    """Fit the hierarchical uplift model; query posterior draws of segment and per-user uplift.

    ``fit(x, segment, action, reward, n_actions=None, n_segments=None)``;
    ``segment_tau_draws() -> (draws, S, K+1)`` (column 0 zero, label units);
    ``interval(level) -> (low, high)`` equal-tailed posterior intervals ``(S, K+1)``;
    ``predict_tau_draws(x, segment) -> (draws, n, K+1)``; ``predict_tau`` = posterior mean.
    ``seed`` is the inference's explicit randomness (NUTS / SVI key ``jax.random.key(seed)``).
    Every public method runs in float64 (:func:`estimators.precision.float64_methods`).
    """

    method: str = "nuts"
    n_warmup: int = 300
    n_samples: int = 300
    svi_steps: int = 3000
    svi_learning_rate: float = 0.01
    feature_effects: bool = False
    prior_scale: float = 1.0
    pool_scale: float = 0.5
    seed: int = 0
    samples_: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    scaling_: tuple[np.ndarray, np.ndarray, float, float] | None = dataclasses.field(
        default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_segments_: int | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.method not in ("nuts", "svi"):
            fail("HierarchicalUplift.method", f"'nuts' or 'svi', got {self.method!r}",
                 "pick one of the two")
        for name in ("n_warmup", "n_samples", "svi_steps"):
            if getattr(self, name) < 1:
                fail(f"HierarchicalUplift.{name}", f"must be >= 1, got {getattr(self, name)}",
                     "use a positive count")
        if self.prior_scale <= 0 or self.pool_scale <= 0:
            fail("HierarchicalUplift.prior_scale/pool_scale", "must be > 0",
                 "use positive prior scales")

    def fit(self, x: Any, segment: Any, action: Any, reward: Any, n_actions: int | None = None,
            n_segments: int | None = None) -> HierarchicalUplift:
        x = np.asarray(x)
        y = np.asarray(reward)
        segment = np.asarray(segment)
        action = np.asarray(action)
        n = len(y)
        if x.ndim != 2 or x.shape[0] != n or segment.shape != (n,) or action.shape != (n,):
            fail("HierarchicalUplift.fit", f"x must be (n, d) and segment, action, reward (n,) "
                 f"with n={n}; got x {x.shape}, segment {segment.shape}, action {action.shape}",
                 "pass one row per logged decision")
        x = checks.check_finite("HierarchicalUplift.fit.x", x).astype(np.float64)
        y = checks.check_finite("HierarchicalUplift.fit.reward", y).astype(np.float64)
        n_actions = int(action.max()) + 1 if n_actions is None else n_actions
        n_segments = int(segment.max()) + 1 if n_segments is None else n_segments
        if n_actions < 2:
            fail("HierarchicalUplift.fit.n_actions", f"must be >= 2, got {n_actions}",
                 "log no-offer and at least one offer")
        checks.check_actions("HierarchicalUplift.fit.action", action, n_actions)
        if segment.min() < 0 or segment.max() >= n_segments:
            row = int(np.flatnonzero((segment < 0) | (segment >= n_segments))[0])
            fail("HierarchicalUplift.fit.segment", f"segment must lie in [0, {n_segments - 1}], "
                 f"got {segment[row]}", "encode segments as 0..n_segments-1", row=row)
        per_action = np.bincount(action, minlength=n_actions)
        if np.any(per_action < 2):
            fail("HierarchicalUplift.fit.action", f"actions "
                 f"{np.flatnonzero(per_action < 2).tolist()} have fewer than 2 rows",
                 "more data, or restrict n_actions to logged actions")
        # (segment, action) cells without rows (e.g. an offer never eligible in a segment) are
        # allowed: their uplift posterior is the pooled one (mu_a, sd_a).
        x_mean, x_sd = x.mean(0), x.std(0) + 1e-12
        y_mean, y_sd = float(y.mean()), float(y.std() + 1e-12)
        xs = jnp.asarray((x - x_mean) / x_sd)
        ys = jnp.asarray((y - y_mean) / y_sd)
        args = (xs, jnp.asarray(segment), jnp.asarray(action), n_segments, n_actions,
                self.feature_effects, self.prior_scale, self.pool_scale)
        key = jax.random.key(self.seed)
        if self.method == "nuts":
            mcmc = MCMC(NUTS(hierarchical_uplift_model), num_warmup=self.n_warmup,
                        num_samples=self.n_samples, progress_bar=False)
            mcmc.run(key, *args, y=ys)
            samples = mcmc.get_samples()
        else:
            guide = AutoMultivariateNormal(hierarchical_uplift_model)
            svi = SVI(hierarchical_uplift_model, guide,
                      numpyro.optim.Adam(self.svi_learning_rate), Trace_ELBO())
            result = svi.run(key, self.svi_steps, *args, y=ys, progress_bar=False)
            samples = guide.sample_posterior(jax.random.fold_in(key, 1), result.params,
                                             sample_shape=(self.n_samples,))
            samples["tau"] = samples["mu"][:, None, :] + samples["sd"][:, None, :] * samples["z"]
        self.samples_ = {k: np.asarray(v) for k, v in samples.items()}
        self.scaling_ = (x_mean, x_sd, y_mean, y_sd)
        self.n_actions_, self.n_segments_ = n_actions, n_segments
        return self

    def _check(self) -> None:
        if self.samples_ is None:
            fail("HierarchicalUplift", "not fitted", "call .fit(...) first")

    def segment_tau_draws(self) -> np.ndarray:
        """Posterior draws of the segment uplift ``(draws, S, K+1)`` in label units."""
        self._check()
        tau = self.samples_["tau"] * self.scaling_[3]
        return np.concatenate([np.zeros((*tau.shape[:2], 1)), tau], axis=2)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed posterior interval of the segment uplift, ``(S, K+1)`` each."""
        if not 0.0 < level < 1.0:
            fail("HierarchicalUplift.interval.level", f"must lie in (0, 1), got {level}",
                 "e.g. level=0.9")
        draws = self.segment_tau_draws()
        q = (1 - level) / 2
        return np.quantile(draws, q, axis=0), np.quantile(draws, 1 - q, axis=0)

    def predict_tau_draws(self, x: Any, segment: Any) -> np.ndarray:
        """Posterior draws of per-user uplift ``(draws, n, K+1)``: ``tau_{s_i, a}`` plus
        ``x_i·gamma_a`` with feature effects (Thompson sampling takes one draw per decision)."""
        self._check()
        segment = np.asarray(segment)
        if segment.min() < 0 or segment.max() >= self.n_segments_:
            row = int(np.flatnonzero((segment < 0) | (segment >= self.n_segments_))[0])
            fail("HierarchicalUplift.predict.segment", f"segment must lie in "
                 f"[0, {self.n_segments_ - 1}], got {segment[row]}",
                 "use the segments the model was fitted on", row=row)
        draws = self.segment_tau_draws()[:, segment, :]
        if self.feature_effects:
            x_mean, x_sd, _, y_sd = self.scaling_
            xs = (np.asarray(x, dtype=np.float64) - x_mean) / x_sd
            extra = np.einsum("nd,skd->snk", xs, self.samples_["gamma"]) * y_sd
            draws = draws + np.concatenate([np.zeros((*extra.shape[:2], 1)), extra], axis=2)
        return draws

    def predict_tau(self, x: Any, segment: Any) -> np.ndarray:
        """Posterior mean uplift per user ``(n, K+1)``."""
        return self.predict_tau_draws(x, segment).mean(axis=0)
