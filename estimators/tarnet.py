"""TARNet / DragonNet-style representation uplift learner (pure JAX).

Model (Shalit, Johansson & Sontag 2017, "TARNet"): a shared trunk ``phi(x)`` (an MLP) and one
output head per supported action, ``mu_hat(x, a) = h_a(phi(x))``; action 0 is no offer. The
loss is the *factual* loss: each logged row trains only the head of its logged action,

    L = sum_i w_i l(h_{A_i}(phi(x_i)), y_i) / sum_i w_i
        + propensity_weight * mean_i CE(softmax(g(phi(x_i))), A_i)

with ``l`` the squared error, the Huber loss (both in standardised target units) or the
zero-inflated log-normal (ZILN) negative log-likelihood (Wang, Liu & Miao 2019: a purchase
probability and a log-normal basket per head, ``mu = p exp(m + s^2/2)``), ``w_i = 1`` or
``1 / action_prob[i, A_i]`` (``weight_by_propensity``), and, with ``propensity_weight > 0``, the
DragonNet auxiliary head ``g`` (Shi, Blei & Veitch 2019): a linear softmax over the supported
actions on the representation, trained by cross-entropy on the logged action, which pushes
``phi`` to keep the information that predicts treatment. ``tau(x, a) = mu_hat(x, a) -
mu_hat(x, 0)`` (column 0 is 0). Identification is the usual one: unconfoundedness given ``x`` and
overlap (each head only sees its own arm's rows).

Training (:func:`_tarnet_fit`, one ``jit``): inputs standardised by their (weighted) moments,
targets pooled / per arm / not at all (``target_scaling``), both over all logged rows; hidden
layers He-initialised, output weights zero and each head's output bias at its own arm's
constant fit (training starts from the difference in means); a held-out split of
``validation_fraction`` of the rows drawn from ``jax.random.key(seed)``; optax ``adamw`` on
shuffled mini-batches of the training rows (``lax.scan`` over batches inside a
``lax.while_loop`` over epochs), keeping the parameters with the lowest weighted validation
outcome loss (the propensity term does not enter model selection: the outcome heads are what is
predicted), stopping after ``patience`` epochs without improvement or at ``max_epochs``.
Training runs in float32; the kept parameters, the standardisation moments and every output are
float64 (:mod:`estimators.precision`). Rows are padded to the size buckets of
:func:`estimators.crossfit.padded_rows` (multiples of 256 up to 4,096, then powers of two), so
logs of similar size share one compilation (about 3.5 s on the development CPU, against 3.3 s
for a warm 80-epoch fit on 20,000 rows); the padding never enters a loss, the split or a batch,
and the split and shuffles are those of the unpadded rows (:func:`_prefix_shuffle`), so a fit
does not depend on its bucket (tested). Five fits on the default world compared with the
unpadded implementation this replaced (n = 300 to 20,000; Huber with IPW rows, MSE, ZILN,
DragonNet) gave identical effects (max |diff| 0) except DragonNet at n = 300 (1.2e-6).

Ensembles (``n_members > 1``): the members are fitted by the same compiled program with their
seeds, one thread per core (:func:`member_seeds`; member ``m`` is exactly the one net of that
seed) and ``mu_hat`` is their mean, ``(1/M) sum_m h^m_a(phi^m(x))``.
Averaging nets that differ only in their randomness leaves the bias of one net and divides the
part of its variance that the seed causes (the model seed alone moves the PEHE by about 0.1,
below); where labels are noisy and the log small, that part is large (README, "Default heads").

Only the supported actions (:func:`estimators.uplift.supported_actions`) get a head; the
``predict_mu`` / ``predict_tau`` / ``actions=`` semantics are those of
:mod:`estimators.uplift` (an unsupported action is never predicted).

Measured defaults (default world ``WorldConfig()``, ``n = 20,000`` training users logged by
``logging`` and 20,000 independent evaluation users ``simulate(key(1000 + s), ...)``; training
seeds ``s = 0, 1, 2``; ``PEHE = estimators.metrics.pehe(tau, truth, ev.eligible)`` and the mean
effect error ``mean(tau_hat - tau)`` over eligible offer cells, mean +- s.e. over the three
training seeds (model seed fixed at 0); fit time = median seconds per fit, ``predict_tau``
included, on the shared 2-core development CPU). Ridge T-learners use ``alpha = 100`` for value
and ``alpha = 1`` for cost. Reproduce with ``python -m experiments.tarnet_tuning`` (about
8 minutes there):

    | logging | head | learner | PEHE | mean bias | fit s |
    | --- | --- | --- | --- | --- | --- |
    | uniform | value | ridge T (alpha=100) | 2.966 +- 0.083 | +0.407 +- 0.183 | 0.0 |
    | uniform | value | TARNet mse | 2.553 +- 0.035 | +0.343 +- 0.136 | 7.6 |
    | uniform | value | TARNet huber 1 | 2.378 +- 0.052 | -0.270 +- 0.047 | 3.0 |
    | uniform | value | TARNet huber 2 | 2.353 +- 0.033 | +0.045 +- 0.105 | 4.0 |
    | uniform | value | TARNet ziln | 2.505 +- 0.068 | +0.489 +- 0.176 | 6.2 |
    | uniform | value | DragonNet huber 2 | 2.335 +- 0.041 | +0.010 +- 0.105 | 3.3 |
    | uniform | value | ridge T (alpha=100), IPW | 2.996 +- 0.090 | +0.352 +- 0.195 | 0.0 |
    | uniform | value | TARNet mse, IPW | 2.564 +- 0.039 | +0.264 +- 0.129 | 2.2 |
    | uniform | value | TARNet huber 1, IPW | 2.417 +- 0.064 | -0.319 +- 0.043 | 3.6 |
    | uniform | value | TARNet huber 2, IPW | 2.386 +- 0.044 | -0.022 +- 0.104 | 3.0 |
    | uniform | value | TARNet ziln, IPW | 2.493 +- 0.062 | +0.394 +- 0.166 | 6.1 |
    | uniform | value | DragonNet huber 2, IPW | 2.359 +- 0.046 | -0.037 +- 0.085 | 4.2 |
    | uniform | cost | ridge T (alpha=1) | 1.362 +- 0.003 | -0.005 +- 0.045 | 0.0 |
    | uniform | cost | TARNet mse | 1.287 +- 0.006 | -0.045 +- 0.039 | 2.0 |
    | uniform | cost | TARNet huber 2 | 1.338 +- 0.012 | -0.187 +- 0.043 | 2.3 |
    | uniform | cost | ridge T (alpha=1), IPW | 1.365 +- 0.002 | -0.013 +- 0.046 | 0.0 |
    | uniform | cost | TARNet mse, IPW | 1.288 +- 0.007 | -0.042 +- 0.036 | 1.9 |
    | uniform | cost | TARNet huber 2, IPW | 1.336 +- 0.011 | -0.178 +- 0.041 | 1.9 |
    | eps-greedy | value | ridge T (alpha=100) | 6.254 +- 0.077 | -4.406 +- 0.100 | 0.0 |
    | eps-greedy | value | TARNet mse | 5.795 +- 0.051 | -4.481 +- 0.065 | 2.7 |
    | eps-greedy | value | TARNet huber 1 | 5.301 +- 0.018 | -4.066 +- 0.069 | 2.5 |
    | eps-greedy | value | TARNet huber 2 | 5.536 +- 0.029 | -4.299 +- 0.058 | 2.9 |
    | eps-greedy | value | TARNet ziln | 5.655 +- 0.114 | -4.408 +- 0.041 | 3.8 |
    | eps-greedy | value | DragonNet huber 2 | 5.354 +- 0.029 | -4.019 +- 0.112 | 3.3 |
    | eps-greedy | value | ridge T (alpha=100), IPW | 3.591 +- 0.228 | -0.047 +- 0.280 | 0.0 |
    | eps-greedy | value | TARNet mse, IPW | 3.234 +- 0.112 | -0.475 +- 0.246 | 2.1 |
    | eps-greedy | value | TARNet huber 1, IPW | 2.859 +- 0.066 | -0.847 +- 0.074 | 2.8 |
    | eps-greedy | value | TARNet huber 2, IPW | 2.917 +- 0.028 | -0.661 +- 0.103 | 2.2 |
    | eps-greedy | value | TARNet ziln, IPW | 2.996 +- 0.114 | -0.364 +- 0.241 | 3.8 |
    | eps-greedy | value | DragonNet huber 2, IPW | 2.885 +- 0.055 | -0.659 +- 0.028 | 2.5 |
    | eps-greedy | cost | ridge T (alpha=1) | 1.499 +- 0.011 | -0.330 +- 0.020 | 0.0 |
    | eps-greedy | cost | TARNet mse | 1.459 +- 0.036 | -0.371 +- 0.031 | 2.6 |
    | eps-greedy | cost | TARNet huber 2 | 1.835 +- 0.021 | -0.815 +- 0.016 | 2.4 |
    | eps-greedy | cost | ridge T (alpha=1), IPW | 1.461 +- 0.019 | -0.012 +- 0.042 | 0.0 |
    | eps-greedy | cost | TARNet mse, IPW | 1.416 +- 0.026 | -0.013 +- 0.057 | 0.8 |
    | eps-greedy | cost | TARNet huber 2, IPW | 1.459 +- 0.046 | -0.166 +- 0.036 | 2.1 |

One-field changes of the default (uniform logging, value head), reproduce with
``python -m experiments.tarnet_tuning --sweep`` (about 5 minutes):

    | logging | head | learner | PEHE | mean bias | fit s |
    | --- | --- | --- | --- | --- | --- |
    | uniform | value | T-learner, base.MLP() defaults | 6.043 +- 0.276 | +0.126 +- 0.314 | 3.9 |
    | uniform | value | TARNet target_scaling='per_arm' | 2.411 +- 0.022 | +0.357 +- 0.115 | 2.4 |
    | uniform | value | TARNet target_scaling='none' | 3.249 +- 0.102 | -0.542 +- 0.033 | 3.4 |
    | uniform | value | TARNet activation='relu' | 2.236 +- 0.003 | +0.064 +- 0.071 | 6.6 |
    | uniform | value | TARNet trunk=(64, 64), head=(32,) | 2.389 +- 0.073 | -0.031 +- 0.088 | 6.5 |
    | uniform | value | TARNet trunk=(32,) | 2.414 +- 0.030 | +0.049 +- 0.099 | 3.1 |
    | uniform | value | TARNet head=() | 2.457 +- 0.048 | +0.011 +- 0.112 | 2.1 |
    | uniform | value | TARNet weight_decay=0.3 | 2.633 +- 0.046 | +0.075 +- 0.108 | 1.9 |
    | uniform | value | TARNet weight_decay=3 | 2.614 +- 0.067 | -0.067 +- 0.105 | 1.8 |
    | uniform | value | TARNet learning_rate=1e-3 | 2.370 +- 0.011 | +0.210 +- 0.130 | 1.8 |
    | uniform | value | TARNet batch_size=1024 | 2.508 +- 0.038 | +0.073 +- 0.088 | 5.7 |
    | uniform | value | TARNet patience=20 | 2.350 +- 0.031 | +0.034 +- 0.092 | 5.4 |
    | uniform | value | TARNet huber_delta=4 | 2.443 +- 0.030 | +0.235 +- 0.162 | 3.1 |
    | uniform | value | TARNet seed=1 | 2.283 +- 0.018 | -0.054 +- 0.133 | 2.2 |
    | uniform | value | TARNet MLP settings | 3.507 +- 0.106 | +0.235 +- 0.277 | 1.2 |

What the numbers say, and the defaults chosen from them:

* Under uniform logging every TARNet beats the ridge T-learner on the value head
  (2.35 +- 0.03 against 2.97 +- 0.08 at the default; the x-only floor, a gradient-boosted fit of
  the *noise-free* effects on 200,000 users, is about 1.3: the truth also depends on the
  segment and the concurrent programs, which ``x`` only partly reveals). Both the shared
  trunk and the regularisation matter: the per-arm ``base.MLP`` T-learner gets 6.04, a TARNet
  with the same training settings ("MLP settings": trunk (64, 64), head (32,), ``lr = 1e-3``,
  weight decay ``1e-4``, squared error) 3.51, and the default 2.35. With the wide, weakly
  decayed net early stopping keeps the net of epoch 2 to 4, and a per-epoch trace (seed 0)
  shows the PEHE moving by up to 0.4 between epochs, then rising as the net fits the noise.
  A narrow net (32, 32) + (16,), ``lr = 3e-4`` and decoupled weight decay 1.0 on the weight
  matrices only (the biases, which carry each arm's mean, are not shrunk) trains smoothly for
  30-190 epochs with the validation loss and the PEHE falling together.
* Loss: Huber with ``huber_delta = 2`` standardised units (the default) has the best value PEHE
  and a mean effect error indistinguishable from 0 under uniform logging; ``delta = 1`` shrinks
  the effects (-0.27), squared error is noisier (2.55), and the ZILN likelihood, although
  consistent for the mean, does not help here (2.51). On the dense, bounded cost label Huber
  biases the effect down (-0.19) and the squared error is best (1.29 against ridge 1.36;
  1.42 against 1.46 under epsilon-greedy with IPW):
  use :data:`COST_CONFIG` (``loss="mse"``) for the cost head, :data:`VALUE_CONFIG` (the
  default) for the value head.
* Target scaling: pooled (default); per arm is no better (2.41) and none is worse (3.25).
* DragonNet's propensity head (the "DragonNet huber 2" rows: ``propensity_weight = 1``)
  changes nothing measurable (2.34 vs 2.35 uniform, 2.89 vs 2.92 epsilon-greedy with IPW) and
  is off by default.
* Inverse-propensity weights: under epsilon-greedy logging (the lifecycle rule, which depends
  on the segment, a confounder ``x`` does not fully carry) every unweighted outcome model is
  confounded (mean effect error about -4); ``weight_by_propensity=True`` removes most of it and
  the TARNet then beats the weighted ridge (2.92 +- 0.03 against 3.59 +- 0.23). It costs
  nothing under uniform logging. It stays off by default only because ``action_prob`` is
  optional in the learner protocol (a log without propensities must still fit); pass it and
  set ``weight_by_propensity=True`` for any non-uniform logger. Even weighted, the Huber
  value head underestimates the effects there (-0.66 +- 0.10), more than squared error
  (-0.48 +- 0.25) and ZILN (-0.36 +- 0.24), at a higher PEHE for those two.
* The model seed moves the default's PEHE by about 0.1 (model seeds 0, 1, 2: 2.35, 2.28,
  2.39; seed 2 and the ReLU seeds below by the same protocol, outside the table), so
  one-field changes within that are not differences: ReLU's 2.24 at model seed 0 becomes 2.27
  and 2.45 at seeds 1 and 2 (ELU is kept), ``lr = 1e-3`` (2.37) and
  ``patience = 20`` (2.35) only change the fit time. Weight decay 0.3 or 3 (2.63, 2.61), a
  batch of 1024 (2.51) and a linear head (2.46) are worse.

The evaluation users' truth was used once, to choose these defaults among the configurations
compared in :func:`benchmark`'s table; nothing in :class:`TARNet` looks at truth, and model
selection inside a fit is by the held-out factual loss only (what practice allows).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from estimators.checks import fail
from estimators.crossfit import padded_rows
from estimators.precision import float64_methods
from estimators.uplift import (
    _check_predict_x,
    _Predictions,
    check_fit_inputs,
    supported_actions,
)

__all__ = [
    "COST_CONFIG",
    "VALUE_CONFIG",
    "TARNet",
    "TARNetConfig",
    "TARNetFitInfo",
    "TARNetParams",
]

ACTIVATIONS = ("elu", "relu")
TARGET_SCALINGS = ("pooled", "per_arm", "none")
LOSSES = ("mse", "huber", "ziln")
# Floor on the ZILN log-normal sd (standardised log units): keeps the likelihood bounded when
# the positive labels of a head are (nearly) constant.
ZILN_MIN_SIGMA = 0.05


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool) and math.isfinite(v)


def _widths(field: str, value: Any, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        fail(field, f"must be a sequence of ints >= 1, got {value!r}", "use e.g. (64, 64)")
    widths = tuple(value)
    if (not widths and not allow_empty) or not all(_is_int(h) and h >= 1 for h in widths):
        fail(field, f"must be a {'' if allow_empty else 'non-empty '}sequence of ints >= 1, got "
             f"{value!r}", "use e.g. (64, 64)")
    return tuple(int(h) for h in widths)


@dataclasses.dataclass(frozen=True)
class TARNetConfig:
    """Architecture and training of :class:`TARNet` (hashable: a ``jit`` static argument).

    * ``trunk``: widths of the shared representation layers (non-empty);
      ``head``: hidden widths of each action's head (may be empty: a linear head on ``phi``);
      ``activation``: ``"elu"`` or ``"relu"``.
    * ``learning_rate``, ``weight_decay``: ``optax.adamw`` (decoupled decay on the weight
      matrices, not on the biases);
      ``batch_size``, ``max_epochs``, ``patience`` (epochs without a validation improvement
      before stopping), ``validation_fraction`` in ``(0, 1)``, ``seed`` (init, split, shuffles).
    * ``propensity_weight`` (>= 0): 0 is TARNet; > 0 adds the DragonNet softmax propensity head
      with that weight on its mean cross-entropy.
    * ``target_scaling``: ``"pooled"`` (one weighted mean / sd over all training rows),
      ``"per_arm"`` (each head its own arm's moments) or ``"none"``.
    * ``loss``: ``"mse"``; ``"huber"`` (quadratic within ``huber_delta`` standardised units,
      linear beyond: robust to the heavy tail, but it estimates a shrunk location, not the mean,
      for skewed labels); or ``"ziln"`` for labels ``>= 0`` (zero-inflated log-normal
      likelihood; targets are divided by the mean positive label, not centred).
    * ``weight_by_propensity``: row weight ``1 / action_prob[i, A_i]`` (needs ``action_prob``).
    * ``n_members`` (>= 1): a deep ensemble (Lakshminarayanan, Pritzel & Blundell 2017) of that
      many nets fitted on the same log with model seeds :func:`member_seeds` (each its own
      initialisation, validation split and batch order; one compilation); ``mu`` is the
      members' mean. 1 (the default) is one net.
    """

    trunk: tuple[int, ...] = (32, 32)
    head: tuple[int, ...] = (16,)
    activation: str = "elu"
    learning_rate: float = 3e-4
    weight_decay: float = 1.0
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10
    validation_fraction: float = 0.2
    seed: int = 0
    propensity_weight: float = 0.0
    target_scaling: str = "pooled"
    loss: str = "huber"
    huber_delta: float = 2.0
    weight_by_propensity: bool = False
    # added after results were published: out of the config hash at its default (the metadata of
    # experiments.store.OMIT_AT_DEFAULT, spelled here: estimators import no experiments)
    n_members: int = dataclasses.field(default=1, metadata={"omit_at_default": True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "trunk", _widths("TARNetConfig.trunk", self.trunk, False))
        object.__setattr__(self, "head", _widths("TARNetConfig.head", self.head, True))
        if self.activation not in ACTIVATIONS:
            fail("TARNetConfig.activation", f"unknown activation {self.activation!r}",
                 f"use one of {list(ACTIVATIONS)}")
        if not _is_real(self.learning_rate) or self.learning_rate <= 0:
            fail("TARNetConfig.learning_rate", f"must be a finite number > 0, got "
                 f"{self.learning_rate!r}", "use e.g. learning_rate=1e-3")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            fail("TARNetConfig.weight_decay", f"must be a finite number >= 0, got "
                 f"{self.weight_decay!r}", "use e.g. weight_decay=1e-4 (0 for none)")
        for name, example in (("batch_size", 256), ("max_epochs", 200), ("patience", 10)):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                fail(f"TARNetConfig.{name}", f"must be an int >= 1, got {value!r}",
                     f"use e.g. {name}={example}")
        if not _is_real(self.validation_fraction) or not 0.0 < self.validation_fraction < 1.0:
            fail("TARNetConfig.validation_fraction", f"must lie strictly inside (0, 1), got "
                 f"{self.validation_fraction!r}", "use e.g. validation_fraction=0.2")
        if not _is_int(self.seed) or self.seed < 0:
            fail("TARNetConfig.seed", f"must be an int >= 0, got {self.seed!r}", "use e.g. seed=0")
        if not _is_real(self.propensity_weight) or self.propensity_weight < 0:
            fail("TARNetConfig.propensity_weight", f"must be a finite number >= 0, got "
                 f"{self.propensity_weight!r}", "use 0 (TARNet) or e.g. 1.0 (DragonNet)")
        if self.target_scaling not in TARGET_SCALINGS:
            fail("TARNetConfig.target_scaling", f"unknown scaling {self.target_scaling!r}",
                 f"use one of {list(TARGET_SCALINGS)}")
        if self.loss not in LOSSES:
            fail("TARNetConfig.loss", f"unknown loss {self.loss!r}", f"use one of {list(LOSSES)}")
        if not _is_real(self.huber_delta) or self.huber_delta <= 0:
            fail("TARNetConfig.huber_delta", f"must be a finite number > 0, got "
                 f"{self.huber_delta!r}", "use e.g. huber_delta=1.0 (standardised units)")
        if not isinstance(self.weight_by_propensity, bool | np.bool_):
            fail("TARNetConfig.weight_by_propensity", f"must be a bool, got "
                 f"{self.weight_by_propensity!r}", "use True or False")
        if not _is_int(self.n_members) or self.n_members < 1:
            fail("TARNetConfig.n_members", f"must be an int >= 1, got {self.n_members!r}",
                 "use 1 (one net) or e.g. 5 (an ensemble of five)")


# The measured defaults per head (module docstring): Huber (delta 2) for the sparse, heavy-tailed
# value label, squared error for the dense, bounded cost label.
VALUE_CONFIG = TARNetConfig()
COST_CONFIG = TARNetConfig(loss="mse")


class TARNetParams(NamedTuple):
    """Fitted network (float64). Head arrays are stacked over the supported arms (axis 0)."""

    trunk_w: tuple[jax.Array, ...]  # (d, h1), (h1, h2), ...
    trunk_b: tuple[jax.Array, ...]
    head_w: tuple[jax.Array, ...]  # (A_s, r, g1), ..., (A_s, g_last, 1)
    head_b: tuple[jax.Array, ...]  # (A_s, g1), ..., (A_s, 1)
    prop_w: jax.Array  # (r, A_s) DragonNet head (unused, zeros, when propensity_weight = 0)
    prop_b: jax.Array  # (A_s,)
    x_mean: jax.Array  # (d,)
    x_scale: jax.Array  # (d,)
    y_mean: jax.Array  # (A_s,)
    y_scale: jax.Array  # (A_s,)


class TARNetFitInfo(NamedTuple):
    """Diagnostics of one fit: epochs run, the epoch whose parameters were kept (0-based,
    -1 = the initial parameters), its validation loss, the per-epoch validation outcome loss
    (``NaN`` after the stop; standardised units) and the validation mask."""

    n_epochs: int
    best_epoch: int
    best_val_loss: float
    val_history: np.ndarray  # (max_epochs,)
    is_val: np.ndarray  # (n,) bool


class _Net(NamedTuple):
    trunk_w: tuple[jax.Array, ...]
    trunk_b: tuple[jax.Array, ...]
    head_w: tuple[jax.Array, ...]
    head_b: tuple[jax.Array, ...]
    prop_w: jax.Array
    prop_b: jax.Array


def _act(name: str) -> Any:
    return jax.nn.elu if name == "elu" else jax.nn.relu


def _represent(net: Any, xs: jax.Array, activation: str) -> jax.Array:
    """``phi(x)``: the trunk's last hidden layer, ``(n, r)``."""
    act = _act(activation)
    h = xs
    for w, b in zip(net.trunk_w, net.trunk_b, strict=True):
        h = act(h @ w + b)
    return h


def _heads(net: Any, phi: jax.Array, activation: str) -> jax.Array:
    """Every head on every row: ``(n, A_s, n_out)`` raw outputs (standardised units)."""
    act = _act(activation)
    g = jnp.broadcast_to(phi, (net.head_w[0].shape[0], *phi.shape))  # (A_s, n, r)
    for w, b in zip(net.head_w[:-1], net.head_b[:-1], strict=True):
        g = act(jnp.einsum("anr,ars->ans", g, w) + b[:, None, :])
    return jnp.einsum("anr,aro->nao", g, net.head_w[-1]) + net.head_b[-1][None]


def _prop_logits(net: Any, phi: jax.Array) -> jax.Array:
    return phi @ net.prop_w + net.prop_b


def _init(cfg: TARNetConfig, key: jax.Array, d: int, n_arms: int, out_bias: jax.Array) -> _Net:
    """He-normal hidden layers (``sd = sqrt(2 / fan_in)``), zero biases; zero output weights with
    biases ``out_bias (A_s, n_out)`` (:func:`_out_bias`); a zero, i.e. uniform, propensity
    head."""
    k_trunk, k_head = jax.random.split(key)
    sizes = (d, *cfg.trunk)
    keys = jax.random.split(k_trunk, len(sizes) - 1)
    trunk_w = tuple((jax.random.normal(k, (a, b), jnp.float32) * jnp.sqrt(2.0 / a)
                     ).astype(jnp.float32) for k, a, b in zip(keys, sizes[:-1], sizes[1:],
                                                              strict=True))
    trunk_b = tuple(jnp.zeros(b, jnp.float32) for b in sizes[1:])
    hsizes = (cfg.trunk[-1], *cfg.head)
    hkeys = jax.random.split(k_head, len(hsizes))
    head_w = tuple((jax.random.normal(k, (n_arms, a, b), jnp.float32) * jnp.sqrt(2.0 / a)
                    ).astype(jnp.float32) for k, a, b in zip(hkeys[1:], hsizes[:-1], hsizes[1:],
                                                             strict=True))
    head_b = tuple(jnp.zeros((n_arms, b), jnp.float32) for b in hsizes[1:])
    n_out = out_bias.shape[1]
    head_w = (*head_w, jnp.zeros((n_arms, hsizes[-1], n_out), jnp.float32))
    head_b = (*head_b, out_bias.astype(jnp.float32))
    r = cfg.trunk[-1]
    return _Net(trunk_w, trunk_b, head_w, head_b, jnp.zeros((r, n_arms), jnp.float32),
                jnp.zeros(n_arms, jnp.float32))


def _softplus_sigma(raw: jax.Array) -> jax.Array:
    return jax.nn.softplus(raw) + ZILN_MIN_SIGMA


def _pointwise_loss(cfg: TARNetConfig, out: jax.Array, y: jax.Array) -> jax.Array:
    """Per-row loss of the logged head's raw output ``out (n, n_out)`` against the
    standardised label ``y (n,)``: squared error, Huber (scaled by 2 so that it equals the
    squared error within ``huber_delta``), or the ZILN negative log-likelihood up to constants,
    ``-1{y=0} log(1-p) - 1{y>0} [log p - log sigma - (log y - m)^2 / (2 sigma^2)]``."""
    if cfg.loss == "ziln":
        logit, m, sigma = out[:, 0], out[:, 1], _softplus_sigma(out[:, 2])
        positive = y > 0
        log_y = jnp.log(jnp.where(positive, y, 1.0))
        nll_pos = (jax.nn.softplus(-logit) + jnp.log(sigma)
                   + 0.5 * ((log_y - m) / sigma) ** 2)
        return jnp.where(positive, nll_pos, jax.nn.softplus(logit))
    resid = out[:, 0] - y
    if cfg.loss == "huber":
        a = jnp.abs(resid)
        delta = cfg.huber_delta
        return jnp.where(a <= delta, resid**2, delta * (2.0 * a - delta))
    return resid**2


def _mean(cfg: TARNetConfig, out: jax.Array) -> jax.Array:
    """``E[y | x, a]`` in standardised units from raw head outputs ``(..., n_out)``: the output
    itself, or for ZILN ``sigmoid(logit) exp(m + sigma^2 / 2)``."""
    if cfg.loss == "ziln":
        sigma = _softplus_sigma(out[..., 2])
        return jax.nn.sigmoid(out[..., 0]) * jnp.exp(out[..., 1] + 0.5 * sigma**2)
    return out[..., 0]


def _constant_fit(cfg: TARNetConfig, ys: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Raw output ``(n_out,)`` of the weighted constant fit: the mean (standardised), or for
    ZILN the logit of the positive share and the mean and sd of ``log y`` on the positive
    rows (the sd through the inverse of :func:`_softplus_sigma`)."""
    if cfg.loss != "ziln":
        return np.array([(w @ ys) / w.sum()])
    positive = ys > 0
    share = np.clip(w[positive].sum() / w.sum(), 1e-4, 1 - 1e-4)
    logit = np.log(share / (1 - share))
    if positive.sum() < 2:
        return np.array([logit, 0.0, 0.0])
    m, sd = _moments(np.log(ys[positive]), w[positive])
    sd = max(sd - ZILN_MIN_SIGMA, 1e-3)
    return np.array([logit, m, np.log(np.expm1(sd))])


def _out_bias(cfg: TARNetConfig, ys: np.ndarray, pos: np.ndarray, w: np.ndarray,
              n_arms: int) -> np.ndarray:
    """Initial output biases ``(A_s, n_out)``: each head starts at its own arm's weighted
    constant fit (all logged rows of the arm), so training starts from the per-arm constant
    model (difference in means) and the trunk only has to learn the heterogeneity."""
    return np.stack([_constant_fit(cfg, ys[pos == j], w[pos == j]) for j in range(n_arms)])


def _optimizer(cfg: TARNetConfig) -> optax.GradientTransformation:
    """``optax.adamw`` with decoupled weight decay on the weight matrices only (biases, among
    them the output biases that carry each arm's mean, are not shrunk)."""
    return optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay,
                       mask=lambda net: jax.tree.map(lambda a: a.ndim >= 2, net))


class _FitOut(NamedTuple):
    net: _Net
    n_epochs: jax.Array
    best_epoch: jax.Array
    best_val_loss: jax.Array
    val_history: jax.Array
    is_val: jax.Array


def shuffle_rounds(size: int) -> int:
    """The sorting rounds ``jax.random.permutation`` uses for ``size`` elements (its static
    heuristic: ``ceil(3 log(size) / log(2^32 - 1))``, 1 up to 1,625 elements, then 2)."""
    return int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))


def _prefix_shuffle(key: jax.Array, x: jax.Array, n_valid: jax.Array, rounds: int) -> jax.Array:
    """``jax.random.permutation(key, x[:n_valid])`` followed by the rest of ``x`` (in some
    order), for a traced ``n_valid``: the same sorts on the same random keys, with the keys of
    the positions ``>= n_valid`` set to the largest ``uint32`` so that the (stable) sort keeps
    them behind every valid element. Exact because the partitionable threefry generator's bits
    for shape ``(m,)`` are a prefix of those for any longer shape (checked in the tests)."""
    valid = jnp.arange(x.shape[0]) < n_valid
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        bits = jnp.where(valid, jax.random.bits(subkey, x.shape, jnp.uint32),
                         jnp.iinfo(jnp.uint32).max)
        _, x = jax.lax.sort_key_val(bits, x, 0, is_stable=True)
    return x


@functools.partial(jax.jit, static_argnames=("cfg", "n_arms", "batch", "split_rounds",
                                             "epoch_rounds"))
def _tarnet_fit(cfg: TARNetConfig, n_arms: int, batch: int, split_rounds: int,
                epoch_rounds: int, seed: jax.Array, n: jax.Array, n_val: jax.Array,
                xs: jax.Array, pos: jax.Array, ys: jax.Array, w: jax.Array,
                out_bias: jax.Array) -> _FitOut:
    """Train on the first ``n`` (traced; ``n_val`` of them for validation) rows of
    standardised float32 ``xs (N, d)``, arm positions ``pos (N,)`` (index into the supported
    arms), standardised targets ``ys (N,)`` and row weights ``w (N,)``. Rows ``>= n`` are
    padding that no loss, split or batch ever reads, so fits whose row counts share a bucket
    ``N`` (:func:`estimators.crossfit.padded_rows`) share one compilation; the split, the
    epochs' shuffles and so the fit are those of the unpadded ``n`` rows
    (:func:`_prefix_shuffle`). ``seed`` is traced (``cfg.seed`` is ignored here), so fits that
    differ only in seed share a compile too. ``batch``, ``split_rounds`` and ``epoch_rounds``
    are computed from ``n`` by :meth:`TARNet.fit`."""
    n_rows, d = xs.shape
    k_init, k_split, k_epochs = jax.random.split(jax.random.key(seed), 3)
    n_train = n - n_val
    order = _prefix_shuffle(k_split, jnp.arange(n_rows), n, split_rounds)
    # the validation rows are order[:n_val]: gathered into a static max_val slots, masked
    max_val = min(max(round(cfg.validation_fraction * n_rows), 1), n_rows - 1)
    val_idx = order[:max_val]
    in_val = jnp.arange(max_val) < n_val
    is_val = jnp.zeros(n_rows, bool).at[val_idx].set(in_val)
    train_idx = jnp.roll(order, -n_val)  # order[n_val:n] first, then padding and validation
    in_train = jnp.arange(n_rows) < n_train
    n_batches = n_train // batch
    max_batches = n_rows // batch
    mean_w = jnp.maximum(jnp.sum(jnp.where(in_train, w[train_idx], 0.0)) / n_train, 1e-12)
    w_val = jnp.where(in_val, w[val_idx], 0.0)

    net = _init(cfg, k_init, d, n_arms, out_bias)
    opt = _optimizer(cfg)
    opt_state = opt.init(net)

    def outcome_loss(net: _Net, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
        phi = _represent(net, xs[idx], cfg.activation)
        out = jnp.take_along_axis(_heads(net, phi, cfg.activation), pos[idx][:, None, None],
                                  1)[:, 0]
        return _pointwise_loss(cfg, out, ys[idx]), phi

    def batch_loss(net: _Net, idx: jax.Array) -> jax.Array:
        loss, phi = outcome_loss(net, idx)
        total = jnp.mean(w[idx] * loss) / mean_w
        if cfg.propensity_weight > 0:
            logp = jax.nn.log_softmax(_prop_logits(net, phi), axis=1)
            ce = -jnp.mean(jnp.take_along_axis(logp, pos[idx][:, None], 1))
            total = total + cfg.propensity_weight * ce
        return total

    def val_loss(net: _Net) -> jax.Array:
        loss, _ = outcome_loss(net, val_idx)
        return jnp.sum(w_val * loss) / jnp.maximum(jnp.sum(w_val), 1e-12)

    def sgd_step(carry: tuple[_Net, Any], idx: jax.Array) -> tuple[_Net, Any]:
        net, opt_state = carry
        grads = jax.grad(batch_loss)(net, idx)
        updates, opt_state = opt.update(grads, opt_state, net)
        return optax.apply_updates(net, updates), opt_state

    def maybe_step(carry: tuple[_Net, Any], step: tuple[jax.Array, jax.Array]
                   ) -> tuple[tuple[_Net, Any], None]:
        j, idx = step  # batches past the real rows' n_batches are skipped
        return jax.lax.cond(j < n_batches, sgd_step, lambda c, _: c, carry, idx), None

    def epoch(state: tuple) -> tuple:
        net, opt_state, best, best_loss, best_ep, ep, since, hist = state
        perm = _prefix_shuffle(jax.random.fold_in(k_epochs, ep), train_idx, n_train,
                               epoch_rounds)
        batches = perm[: max_batches * batch].reshape(max_batches, batch)
        (net, opt_state), _ = jax.lax.scan(maybe_step, (net, opt_state),
                                           (jnp.arange(max_batches), batches))
        loss = val_loss(net)
        improved = loss < best_loss
        best = jax.tree.map(lambda new, old: jnp.where(improved, new, old), net, best)
        return (net, opt_state, best, jnp.where(improved, loss, best_loss),
                jnp.where(improved, ep, best_ep), ep + 1, jnp.where(improved, 0, since + 1),
                hist.at[ep].set(loss))

    def keep_going(state: tuple) -> jax.Array:
        ep, since = state[5], state[6]
        return (ep < cfg.max_epochs) & (since < cfg.patience)

    hist0 = jnp.full(cfg.max_epochs, jnp.nan, jnp.float32)
    init = (net, opt_state, net, val_loss(net), jnp.int32(-1), jnp.int32(0), jnp.int32(0), hist0)
    _, _, best, best_loss, best_ep, ep, _, hist = jax.lax.while_loop(keep_going, epoch, init)
    return _FitOut(best, ep, best_ep, best_loss, hist, is_val)


def member_seeds(cfg: TARNetConfig) -> list[int]:
    """The model seeds of ``cfg``'s ensemble: ``seed * n_members + m`` for ``m = 0 ..
    n_members - 1`` (so one net, ``n_members = 1``, keeps ``seed``, and the ensembles of two seeds
    share no member)."""
    return [cfg.seed * cfg.n_members + m for m in range(cfg.n_members)]


def _moments(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and sd (axis 0), sd floored at 1e-8 (a constant column)."""
    mean = (w @ v) / w.sum()
    sd = np.sqrt((w @ (v - mean) ** 2) / w.sum())
    return mean, np.maximum(sd, 1e-8)


@float64_methods("fit", "predict_mu", "predict_tau", "predict_propensity")
@dataclasses.dataclass
class TARNet(_Predictions):
    """TARNet uplift learner (module docstring): shared trunk, one head per supported action,
    factual loss, optional DragonNet propensity head; ``tau(x, a) = mu(x, a) - mu(x, 0)``.

    ``TARNet()`` uses :data:`VALUE_CONFIG` (Huber, for the value label); fit the cost head with
    ``TARNet(COST_CONFIG)``, and under any non-uniform logger pass ``action_prob`` with
    ``weight_by_propensity=True``. After ``fit``: ``members_`` (one :class:`TARNetParams` per
    ensemble member, ``n_members`` of them) and ``member_fit_info_`` (their
    :class:`TARNetFitInfo`), ``params_`` / ``fit_info_`` (the first member's: the one net's when
    ``n_members = 1``), ``n_actions_``, ``n_features_``, ``supported_actions_``.
    """

    config: TARNetConfig = dataclasses.field(default_factory=TARNetConfig)
    members_: tuple[TARNetParams, ...] | None = dataclasses.field(default=None, repr=False)
    member_fit_info_: tuple[TARNetFitInfo, ...] | None = dataclasses.field(default=None,
                                                                            repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.config, TARNetConfig):
            fail("TARNet.config", f"expected a TARNetConfig, got {type(self.config).__name__}",
                 "pass TARNet(config=TARNetConfig(...))")

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> TARNet:
        """Fit on the log (module docstring). The validation split holds
        ``round(validation_fraction * n)`` rows (at least 1, at most ``n - 1``); a batch is
        ``min(batch_size, training rows)``. Every supported arm must keep a row in the training
        split, else its head would stay at its initial value: a ``ValueError`` naming
        ``action`` (after the fit; choose another ``seed`` or log more rows)."""
        cfg = self.config
        if not jax.config.jax_threefry_partitionable:
            # _prefix_shuffle relies on the partitionable threefry bits of a shape (m,) being a
            # prefix of those of any longer shape; the older generator breaks that, and the fit
            # would then depend on its padding bucket
            fail("jax_threefry_partitionable", "is False, so a TARNet fit would depend on the "
                 "row bucket it is padded to (estimators.crossfit.padded_rows)",
                 "jax.config.update('jax_threefry_partitionable', True) (the default of current "
                 "JAX releases) before fitting")
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "TARNet.fit",
            require_propensity=cfg.weight_by_propensity)
        n, d = x.shape
        if cfg.loss == "ziln" and np.any(reward < 0):
            fail("reward", f"the ZILN loss models a label >= 0 (zero or log-normal), got minimum "
                 f"{reward.min():.6g}", "use loss='mse' or 'huber' for signed labels")
        if n < 4:
            fail("x", f"TARNet needs at least 4 rows (training and validation splits), got {n}",
                 "log more rows")
        sup = supported_actions(action, action_prob, k1)
        pos_of = np.full(k1, -1, dtype=np.int64)
        pos_of[sup] = np.arange(len(sup))
        pos = pos_of[action]
        w = (1.0 / action_prob[np.arange(n), action] if cfg.weight_by_propensity
             else np.ones(n))
        x_mean, x_scale = _moments(x, w)
        y_mean, y_scale = self._target_moments(reward, pos, w, len(sup))
        xs = (x - x_mean) / x_scale
        ys = (reward - y_mean[pos]) / y_scale[pos]
        n_val = min(max(round(cfg.validation_fraction * n), 1), n - 1)
        bucket = padded_rows(n)
        pad = bucket - n

        def padded(a: np.ndarray, dtype: Any) -> jax.Array:
            return jnp.asarray(np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]),
                               dtype)

        args = (dataclasses.replace(cfg, seed=0, n_members=1), len(sup),
                min(cfg.batch_size, n - n_val), shuffle_rounds(n), shuffle_rounds(n - n_val))
        data = (jnp.int32(n), jnp.int32(n_val), padded(xs, jnp.float32), padded(pos, jnp.int32),
                padded(ys, jnp.float32), padded(w, jnp.float32),
                jnp.asarray(_out_bias(cfg, ys, pos, w, len(sup)), jnp.float32))
        seeds = member_seeds(cfg)
        # each member through the one-net program (the seed is traced: one compilation), on one
        # thread per core (XLA releases the GIL; the members' results do not depend on the
        # threads). Measured: a vmap over the seeds is slower, its epoch loop runs until the last
        # member stops (8,000 rows, 5 members: 5.6 s against 3.7 s one after another); two
        # threads on the 2 cores take 20,000 rows from 14.0 s to 6.9 s. JAX's x64 switch is
        # thread-local (estimators.precision): each worker runs in the caller's setting
        x64 = bool(jax.config.jax_enable_x64)

        def fit_member(seed: int) -> _FitOut:
            with jax.enable_x64(x64):
                return _tarnet_fit(*args, jnp.int32(seed), *data)

        workers = min(len(seeds), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outs = list(pool.map(fit_member, seeds))
        scaling = dict(x_mean=jnp.asarray(x_mean), x_scale=jnp.asarray(x_scale),
                       y_mean=jnp.asarray(y_mean), y_scale=jnp.asarray(y_scale))
        members, infos = [], []
        for m, out in enumerate(outs):
            is_val = np.asarray(out.is_val)[:n]
            trained = np.bincount(pos[~is_val], minlength=len(sup))
            if np.any(trained == 0):
                empty = sup[trained == 0].tolist()
                which = f" (ensemble member {m}, seed {seeds[m]})" if len(seeds) > 1 else ""
                fail("action", f"actions {empty} have no row in the training split{which} (all "
                     f"their {np.bincount(pos, minlength=len(sup))[trained == 0].tolist()} rows "
                     "were drawn for validation), so their heads cannot be fitted",
                     "use another TARNetConfig.seed, a smaller validation_fraction or more rows")
            net = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), out.net)
            members.append(TARNetParams(*net, **scaling))
            infos.append(TARNetFitInfo(int(out.n_epochs), int(out.best_epoch),
                                       float(out.best_val_loss), np.asarray(out.val_history),
                                       is_val))
        self.members_, self.member_fit_info_ = tuple(members), tuple(infos)
        self.n_actions_, self.n_features_, self.supported_actions_ = k1, d, sup
        return self

    def _target_moments(self, reward: np.ndarray, pos: np.ndarray, w: np.ndarray,
                        n_arms: int) -> tuple[np.ndarray, np.ndarray]:
        """``(y_mean, y_scale)`` per supported arm, ``(A_s,)`` each, by ``target_scaling``."""
        scaling = self.config.target_scaling
        if scaling == "none":
            return np.zeros(n_arms), np.ones(n_arms)
        if self.config.loss == "ziln":  # no centring (y >= 0): scale by the mean positive label
            def scale(rows: np.ndarray) -> float:
                rows = rows & (reward > 0)
                return float((w[rows] @ reward[rows]) / w[rows].sum()) if rows.any() else 1.0
            if scaling == "pooled":
                return np.zeros(n_arms), np.full(n_arms, scale(np.ones(len(reward), bool)))
            return np.zeros(n_arms), np.array([scale(pos == j) for j in range(n_arms)])
        if scaling == "pooled":
            m, s = _moments(reward, w)
            return np.full(n_arms, m), np.full(n_arms, s)
        means, sds = np.zeros(n_arms), np.ones(n_arms)
        for j in range(n_arms):
            rows = pos == j
            means[j], sds[j] = _moments(reward[rows], w[rows])
        return means, sds

    @property
    def params_(self) -> TARNetParams | None:
        """The first member's parameters (the one net's when ``n_members = 1``)."""
        return None if self.members_ is None else self.members_[0]

    @property
    def fit_info_(self) -> TARNetFitInfo | None:
        """The first member's fit diagnostics."""
        return None if self.member_fit_info_ is None else self.member_fit_info_[0]

    def _members_mean(self, per_member: Any) -> jax.Array:
        """``(1/M) sum_m per_member(params_m)`` over the ensemble's members."""
        return jnp.mean(jnp.stack([per_member(p) for p in self.members_]), axis=0)

    def _phi(self, p: TARNetParams, x: jax.Array) -> jax.Array:
        return _represent(p, (x - p.x_mean) / p.x_scale, self.config.activation)

    def _member_mu(self, p: TARNetParams, x: jax.Array) -> jax.Array:
        out = _heads(p, self._phi(p, x), self.config.activation)
        return _mean(self.config, out) * p.y_scale + p.y_mean

    def _mu(self, x: jax.Array) -> jax.Array:
        """``mu`` of the supported arms, ``(n, len(supported_actions_))``: the one net's, or the
        mean over the ensemble's members."""
        return self._members_mean(lambda p: self._member_mu(p, x))

    def predict_propensity(self, x: Any) -> jax.Array:
        """DragonNet head ``softmax(g(phi(x)))`` as ``(n, K+1)`` (0 on unsupported actions;
        rows sum to 1). Only meaningful when ``propensity_weight > 0`` (else uniform over the
        supported actions, the zero-initialised head)."""
        xj = _check_predict_x(self, x)
        probs = self._members_mean(
            lambda p: jax.nn.softmax(_prop_logits(p, self._phi(p, xj)), axis=1))
        full = jnp.zeros((xj.shape[0], self.n_actions_), probs.dtype)
        return full.at[:, self.supported_actions_].set(probs)
