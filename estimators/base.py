"""Base regression models in JAX behind one small interface.

A base model is a frozen, hashable config object with two methods:

* ``fit(x, y, sample_weight=None) -> params`` returns a fitted-parameter pytree (a NamedTuple);
* ``predict(params, x) -> (n,)`` evaluates it.

Fits are pure and jit-compiled (the config is a static argument), so a meta-learner can fit many
models with one compilation by changing only ``sample_weight`` (zero weights drop rows: that is how
per-arm and per-fold fits keep static shapes). Row loops never appear in Python.

Models: :class:`Ridge` (closed form, float64 solve), :class:`Logistic` (L2 penalised, damped
Newton, for binary or fractional labels), :class:`MLP` (optax Adam, mini-batches, early stopping on
a validation split). ``fit`` and ``predict`` run in float64 (:mod:`estimators.precision`) whatever
the caller's ``jax_enable_x64`` setting (the MLP trains in float32 inside, as before).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from estimators.precision import float64_methods

__all__ = [
    "MLP",
    "BaseModel",
    "Logistic",
    "LogisticParams",
    "MLPParams",
    "Ridge",
    "RidgeParams",
    "check_xy",
]


class BaseModel(Protocol):
    """What every learner needs from a base model."""

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> Any:
        """Fit on ``x (n,d)``, ``y (n,)`` with optional non-negative ``sample_weight (n,)``."""
        ...

    def predict(self, params: Any, x: Any) -> jax.Array:
        """Predictions ``(n,)`` for ``x (n,d)`` from fitted ``params``."""
        ...


def _is_concrete(*arrays: Any) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def check_xy(x: Any, y: Any, sample_weight: Any | None, where: str) -> None:
    """Raise ``ValueError`` naming the argument for wrong shapes, non-finite values or weights
    that are negative or all zero. Skipped for traced arrays (inside ``vmap``/``jit``)."""
    if not _is_concrete(x, y, sample_weight):
        return
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{where}: x must be 2-D (n, d), got shape {x.shape}. "
                         f"Fix: reshape to (n_rows, n_features).")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{where}: y must have shape ({x.shape[0]},) to match x, got {y.shape}. "
                         f"Fix: pass one label per row of x.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: x contains NaN or inf. Fix: impute or drop those rows.")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{where}: y contains NaN or inf. Fix: impute or drop those rows.")
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        if w.shape != y.shape:
            raise ValueError(f"{where}: sample_weight must have shape {y.shape}, got {w.shape}. "
                             f"Fix: one weight per row.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"{where}: sample_weight must be finite and >= 0. "
                             f"Fix: clip or drop negative/non-finite weights.")
        if not np.any(w > 0):
            raise ValueError(f"{where}: sample_weight is zero everywhere, nothing to fit. "
                             f"Fix: give at least one row a positive weight.")


def _weights(y: jax.Array, sample_weight: Any | None) -> jax.Array:
    if sample_weight is None:
        return jnp.ones_like(y, dtype=jnp.float64)
    return jnp.asarray(sample_weight, dtype=jnp.float64)


# ---------------------------------------------------------------------------------------------
# Ridge
# ---------------------------------------------------------------------------------------------


class RidgeParams(NamedTuple):
    coef: jax.Array  # (d,)
    intercept: jax.Array  # ()


@jax.jit
def _ridge_fit(x: jax.Array, y: jax.Array, w: jax.Array, alpha: jax.Array) -> RidgeParams:
    wsum = jnp.sum(w)
    x_mean = (w @ x) / wsum
    y_mean = (w @ y) / wsum
    xc = x - x_mean
    xw = xc * w[:, None]
    gram = xw.T @ xc + alpha * jnp.eye(x.shape[1], dtype=x.dtype)
    rhs = xw.T @ (y - y_mean)
    chol = jax.scipy.linalg.cho_factor(gram)
    coef = jax.scipy.linalg.cho_solve(chol, rhs)
    return RidgeParams(coef=coef, intercept=y_mean - x_mean @ coef)


@float64_methods("fit", "predict")
@dataclasses.dataclass(frozen=True)
class Ridge:
    """Weighted ridge regression in closed form.

    Minimises ``sum_i w_i (y_i - b - x_i·beta)^2 + alpha |beta|^2`` (intercept ``b`` not
    penalised): centre ``x, y`` by their weighted means, solve
    ``(Xc' W Xc + alpha I) beta = Xc' W yc`` by a float64 Cholesky solve, ``b = ybar - xbar·beta``.
    Requires ``alpha > 0``: the matrix is then positive definite (eigenvalues ``>= alpha``) for
    any design, including the rank-deficient ones of small per-arm or per-fold fits, where
    ``alpha = 0`` (OLS) has no unique solution and the solve returns NaN. A concrete (not traced)
    fit whose solve is still non-finite (``alpha`` negligible against ``|Xc' W Xc|``) raises.
    """

    alpha: float = 1.0
    pads_exactly: ClassVar[bool] = True  # weighted sums only: zero-weight rows change nothing

    def __post_init__(self) -> None:
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"Ridge.alpha: must be finite and > 0 (alpha = 0 has no unique "
                             f"solution on a rank-deficient design), got {self.alpha}. "
                             f"Fix: use e.g. alpha=1.0, or a small positive alpha for near-OLS.")

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> RidgeParams:
        check_xy(x, y, sample_weight, "Ridge.fit")
        concrete = _is_concrete(x, y, sample_weight)
        x = jnp.asarray(x, dtype=jnp.float64)
        y = jnp.asarray(y, dtype=jnp.float64)
        params = _ridge_fit(x, y, _weights(y, sample_weight), jnp.float64(self.alpha))
        if concrete and not bool(jnp.all(jnp.isfinite(params.coef))
                                 & jnp.isfinite(params.intercept)):
            raise ValueError(f"Ridge.alpha: the solve is not finite with alpha={self.alpha} "
                             f"(the weighted design is numerically rank-deficient and alpha is "
                             f"negligible against it). Fix: increase alpha, e.g. alpha=1.0.")
        return params

    def predict(self, params: RidgeParams, x: Any) -> jax.Array:
        return jnp.asarray(x, dtype=jnp.float64) @ params.coef + params.intercept


# ---------------------------------------------------------------------------------------------
# Logistic (GLM with logit link)
# ---------------------------------------------------------------------------------------------


class LogisticParams(NamedTuple):
    coef: jax.Array  # (d,)
    intercept: jax.Array  # ()


@functools.partial(jax.jit, static_argnames=("n_iter",))
def _logistic_fit(x: jax.Array, y: jax.Array, w: jax.Array, alpha: jax.Array,
                  n_iter: int, tol: jax.Array) -> LogisticParams:
    n, d = x.shape
    z = jnp.concatenate([jnp.ones((n, 1), x.dtype), x], axis=1)
    penalty = alpha * jnp.diag(jnp.concatenate([jnp.zeros(1), jnp.ones(d)]))
    wsum = jnp.sum(w)
    prior = jnp.clip((w @ y) / wsum, 1e-6, 1 - 1e-6)
    theta0 = jnp.zeros(d + 1).at[0].set(jnp.log(prior / (1 - prior)))

    def objective(theta: jax.Array) -> jax.Array:
        eta = z @ theta
        nll = jnp.sum(w * (jnp.logaddexp(0.0, eta) - y * eta))
        return nll + 0.5 * theta @ penalty @ theta

    def newton_step(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
        eta = z @ theta
        p = jax.nn.sigmoid(eta)
        grad = z.T @ (w * (p - y)) + penalty @ theta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z + penalty + 1e-10 * jnp.eye(d + 1)
        step = jnp.linalg.solve(hess, grad)
        # Damped Newton: halve the step until the objective does not increase (at most 20 times).
        f0 = objective(theta)

        def shrink(carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            t, k = carry
            return t * 0.5, k + 1

        def worse(carry: tuple[jax.Array, jax.Array]) -> jax.Array:
            t, k = carry
            return (objective(theta - t * step) > f0) & (k < 20)

        t, _ = jax.lax.while_loop(worse, shrink, (jnp.float64(1.0), 0))
        # converged when the full Newton step is negligible (not the damped one: near the
        # optimum the objective test can reject a full step on round-off alone)
        return theta - t * step, jnp.max(jnp.abs(step))

    def not_converged(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        k, _, change = carry
        return (k < n_iter) & (change > tol)

    def iterate(carry: tuple[jax.Array, jax.Array, jax.Array]
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
        k, theta, _ = carry
        new, full_step = newton_step(theta)
        return k + 1, new, full_step

    _, theta, _ = jax.lax.while_loop(not_converged, iterate,
                                     (0, theta0, jnp.asarray(jnp.inf, theta0.dtype)))
    return LogisticParams(coef=theta[1:], intercept=theta[0])


@float64_methods("fit", "predict")
@dataclasses.dataclass(frozen=True)
class Logistic:
    """L2-penalised logistic regression (a GLM with logit link) fitted by damped Newton.

    Newton steps (halved until the objective does not increase) run until the largest entry of
    the full Newton step is at most ``tol`` or ``n_iter`` steps were taken (quadratic
    convergence: about 6 steps on the default world's purchase models). Minimises
    ``sum_i w_i [log(1 + e^{eta_i}) - y_i eta_i] + alpha/2 |beta|^2`` with
    ``eta_i = b + x_i·beta`` (intercept not penalised); labels ``y`` in ``[0, 1]`` (binary or
    fractional). ``predict`` returns ``sigmoid(eta)``, the modelled ``E[y | x]``.
    """

    alpha: float = 1.0
    n_iter: int = 25
    tol: float = 1e-10
    pads_exactly: ClassVar[bool] = True  # weighted sums only: zero-weight rows change nothing

    def __post_init__(self) -> None:
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"Logistic.alpha: must be finite and >= 0, got {self.alpha}.")
        if self.n_iter < 1:
            raise ValueError(f"Logistic.n_iter: must be >= 1, got {self.n_iter}.")
        if not np.isfinite(self.tol) or self.tol < 0:
            raise ValueError(f"Logistic.tol: must be finite and >= 0 (0 runs all n_iter "
                             f"steps), got {self.tol}. Fix: e.g. tol=1e-10.")

    def validate_labels(self, y: Any, where: str = "Logistic.fit") -> None:
        """Raise ``ValueError`` unless every label lies in ``[0, 1]``. Learners call this on the
        host before their jitted fits, where the in-``fit`` check is skipped for tracers."""
        yy = np.asarray(y, dtype=np.float64)
        if np.any((yy < 0) | (yy > 1)):
            raise ValueError(f"{where}: y must lie in [0, 1] (the reward labels; binary or a "
                             f"fraction) for a Logistic base, got range [{yy.min()}, "
                             f"{yy.max()}]. Fix: use Ridge or MLP for unbounded labels.")

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> LogisticParams:
        check_xy(x, y, sample_weight, "Logistic.fit")
        if _is_concrete(y):
            self.validate_labels(y)
        x = jnp.asarray(x, dtype=jnp.float64)
        y = jnp.asarray(y, dtype=jnp.float64)
        return _logistic_fit(x, y, _weights(y, sample_weight), jnp.float64(self.alpha),
                             self.n_iter, jnp.float64(self.tol))

    def predict(self, params: LogisticParams, x: Any) -> jax.Array:
        x = jnp.asarray(x, dtype=jnp.float64)
        return jax.nn.sigmoid(x @ params.coef + params.intercept)


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


class MLPParams(NamedTuple):
    weights: tuple[jax.Array, ...]
    biases: tuple[jax.Array, ...]
    x_mean: jax.Array
    x_scale: jax.Array
    y_mean: jax.Array
    y_scale: jax.Array
    n_epochs: jax.Array  # epochs actually run (early stopping)
    best_val_loss: jax.Array


def _mlp_forward(weights: tuple[jax.Array, ...], biases: tuple[jax.Array, ...],
                 x: jax.Array) -> jax.Array:
    h = x
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        h = jax.nn.relu(h @ w + b)
    return (h @ weights[-1] + biases[-1])[:, 0]


@float64_methods("fit", "predict")
@dataclasses.dataclass(frozen=True)
class MLP:
    """Multi-layer perceptron regressor (ReLU), squared loss, Adam with weight decay (optax).

    Standardises ``x`` and ``y`` with weighted moments, holds out ``validation_fraction`` of the
    rows (by a key derived from ``seed``), trains on shuffled mini-batches and keeps the parameters
    with the lowest weighted validation MSE, stopping after ``patience`` epochs without improvement
    or at ``max_epochs``. Minimises ``sum_i w_i (y_i - f(x_i))^2 / sum_i w_i``.
    """

    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 50
    patience: int = 5
    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"MLP.hidden: need at least one layer of width >= 1, got "
                             f"{self.hidden}. Fix: e.g. hidden=(64, 64).")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("MLP.validation_fraction: must lie in (0, 1). Fix: e.g. 0.2.")
        for name in ("batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"MLP.{name}: must be >= 1, got {getattr(self, name)}.")
        if self.learning_rate <= 0:
            raise ValueError("MLP.learning_rate: must be > 0. Fix: e.g. 1e-3.")

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> MLPParams:
        check_xy(x, y, sample_weight, "MLP.fit")
        x = jnp.asarray(x, dtype=jnp.float64)
        y = jnp.asarray(y, dtype=jnp.float64)
        if x.shape[0] < 2 * self.batch_size:  # static shape: fine under jit/vmap too
            # Keep at least one full batch in the training split.
            cfg = dataclasses.replace(self, batch_size=max(1, x.shape[0] // 4))
        else:
            cfg = self
        return _mlp_fit(cfg, x, y, _weights(y, sample_weight))

    def predict(self, params: MLPParams, x: Any) -> jax.Array:
        x = (jnp.asarray(x, dtype=jnp.float64) - params.x_mean) / params.x_scale
        return _mlp_forward(params.weights, params.biases, x) * params.y_scale + params.y_mean


def _safe_scale(sd: jax.Array) -> jax.Array:
    """Standardisation scale: the weighted s.d., or 1 for a column that is (numerically)
    constant on the fitted rows. Dividing by ``sd + 1e-8`` there would send any other value of
    that column (a binary covariate constant within one arm) to ``~1e8`` at prediction."""
    return jnp.where(sd > 1e-6, sd, 1.0)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _mlp_fit(cfg: MLP, x: jax.Array, y: jax.Array, w: jax.Array) -> MLPParams:
    n, d = x.shape
    key = jax.random.key(cfg.seed)
    k_init, k_split, k_epochs = jax.random.split(key, 3)
    wsum = jnp.sum(w)
    x_mean = (w @ x) / wsum
    x_scale = _safe_scale(jnp.sqrt((w @ (x - x_mean) ** 2) / wsum))
    y_mean = (w @ y) / wsum
    y_scale = _safe_scale(jnp.sqrt((w @ (y - y_mean) ** 2) / wsum))
    xs = ((x - x_mean) / x_scale).astype(jnp.float32)
    ys = ((y - y_mean) / y_scale).astype(jnp.float32)
    is_val = jax.random.uniform(k_split, (n,)) < cfg.validation_fraction
    w_train = jnp.where(is_val, 0.0, w).astype(jnp.float32)
    w_val = jnp.where(is_val, w, 0.0).astype(jnp.float32)
    # Mean training weight per row: per-batch losses are unbiased for the full weighted MSE.
    mean_w = jnp.maximum(jnp.sum(w_train) / n, 1e-12)

    sizes = (d, *cfg.hidden, 1)
    keys = jax.random.split(k_init, len(sizes) - 1)
    weights = tuple(
        (jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a)).astype(jnp.float32)
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True))
    biases = tuple(jnp.zeros(b, jnp.float32) for b in sizes[1:])
    net = (weights, biases)
    opt = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)
    opt_state = opt.init(net)
    n_batches = n // cfg.batch_size

    def batch_loss(net: Any, idx: jax.Array) -> jax.Array:
        pred = _mlp_forward(net[0], net[1], xs[idx])
        return jnp.mean(w_train[idx] * (pred - ys[idx]) ** 2) / mean_w

    def val_loss(net: Any) -> jax.Array:
        pred = _mlp_forward(net[0], net[1], xs)
        return jnp.sum(w_val * (pred - ys) ** 2) / jnp.maximum(jnp.sum(w_val), 1e-12)

    def sgd_step(carry: tuple[Any, Any], idx: jax.Array) -> tuple[tuple[Any, Any], None]:
        net, opt_state = carry
        grads = jax.grad(batch_loss)(net, idx)
        updates, opt_state = opt.update(grads, opt_state, net)
        return (optax.apply_updates(net, updates), opt_state), None

    def epoch(state: tuple) -> tuple:
        net, opt_state, best, best_loss, ep, since = state
        perm = jax.random.permutation(jax.random.fold_in(k_epochs, ep), n)
        batches = perm[: n_batches * cfg.batch_size].reshape(n_batches, cfg.batch_size)
        (net, opt_state), _ = jax.lax.scan(sgd_step, (net, opt_state), batches)
        loss = val_loss(net)
        improved = loss < best_loss
        best = jax.tree.map(lambda new, old: jnp.where(improved, new, old), net, best)
        return (net, opt_state, best, jnp.where(improved, loss, best_loss), ep + 1,
                jnp.where(improved, 0, since + 1))

    def keep_going(state: tuple) -> jax.Array:
        *_, ep, since = state
        return (ep < cfg.max_epochs) & (since < cfg.patience)

    init = (net, opt_state, net, val_loss(net), jnp.int32(0), jnp.int32(0))
    _, _, best, best_loss, ep, _ = jax.lax.while_loop(keep_going, epoch, init)
    weights64 = tuple(a.astype(jnp.float64) for a in best[0])
    biases64 = tuple(a.astype(jnp.float64) for a in best[1])
    return MLPParams(weights64, biases64, x_mean, x_scale, y_mean, y_scale, ep, best_loss)
