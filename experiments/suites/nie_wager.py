r"""Nie & Wager (2021): the paper's CATE simulation protocol, our learners beside its tables.

Protocol (Nie, X. and Wager, S. (2021), "Quasi-oracle estimation of heterogeneous treatment
effects", Biometrika 108(2), 299-319, Section 6; the authors' ``experiments_for_paper/run_simu.R``
in github.com/xnie/rlearner): per run and grid cell ``(setup, n, d, sigma)``, a training sample of
``n`` rows and an independent test sample of ``n`` rows are drawn from the setup
(:mod:`simulators.nie_wager`); each learner fits on the training ``(X, W, Y)`` and the metric is the
test-sample mean squared error of the effect, ``mse = mean_i (tau_hat(x_i) - tau(x_i))^2``. One job
seed is one run (fresh draws: ``stream(seed, "train" | "test", "<setup>/n=<n>/d=<d>/sigma=<s>")``);
the tables average over seeds with the standard error. The paper averages 500 runs (lasso) and
200 runs (boosting, kernel ridge); its means (:data:`PUBLISHED`) sit beside ours.

**Our learners** (:data:`NW_LEARNERS`, built by :func:`estimators.heads.make_learner`): S, T, X,
DR and R on ridge, the analogue of the paper's lasso column, and S, T, X, DR and R on LightGBM,
the analogue of its (cross-validated xgboost) boosting column, plus ``oracle``: the R-learner
given the true nuisances ``e(x)`` and ``m(x) = b(x) + (e(x) - 1/2) tau(x)``, the paper's oracle
(the :class:`~estimators.uplift.RLearner` takes ``e`` as the logged ``action_prob`` and has no
``m_hat`` argument, so ``m`` enters as its outcome base model, :class:`TrueMean`, a fixed
function that ignores the training data).
Three choices make them comparable with the paper, and are part of what is compared:

- **Feature basis** (``basis``). The paper's lasso sees a natural-spline basis (7 df per feature)
  with all pairwise products and squares (945 columns at d = 6); the heads offer no basis (only
  the S-learner's ``x * onehot(a)`` interactions), so the suite builds one and passes it as ``x``:
  ``"linear"`` (the standardised ``x``), ``"quadratic"`` (default: ``x``, squares and pairwise
  products, 27 columns at d = 6) or ``"spline"`` (the paper's basis; far slower, and in a
  two-run pilot on setup A no better than quadratic). Knots and standardisation come from the
  training sample only (the paper computes the spline knots on training and test ``X``
  together). The first ``d`` columns are always the standardised raw ``x``: LightGBM nuisance
  models read only those (:class:`RawColumns`, trees on raw ``x`` as the paper's boosting),
  while the effect stages (X's and DR's ``final``, R's effect model, linear in their ``x``) read
  the whole basis. So our "boosting" X/DR/R have boosted nuisances but a linear-in-basis
  effect, where the paper boosts the effect too; our S/T-LightGBM get the raw ``x`` only.
- **Penalty** (``tune_penalty``). The paper picks every lasso penalty by cross-validation
  (``cv.glmnet``, ``lambda.min``). With ``tune_penalty`` (default) every ridge of a learner (the
  outcome models, the X/DR effect stages) is :class:`GCVRidge`, the ridge whose penalty is chosen
  per fit by generalised cross-validation over :data:`GCV_ALPHAS`, and R's effect penalty is
  chosen the same way on its own weighted least-squares problem (:func:`r_learner_penalty`);
  without it every ridge has the fixed ``alpha`` (the library's ``Ridge(alpha)``). LightGBM
  (``LGBM``: 1,000 rounds at learning rate 0.05, 7 leaves, early stopping on a 20 % validation
  split) stands in for the paper's cross-validated xgboost.
- **Propensity** (``propensity``). The log carries the true ``e(x)``, which X, DR and R use by
  default (``"true"``); the paper's learners estimate it (cross-fitted). ``"estimated"`` gives
  them a 2-fold cross-fitted L2 logistic regression on the basis, clipped to [0.01, 0.99], in its
  place (``oracle`` always gets the truth).

Paper method of each learner (:data:`NW_LEARNERS`): ``s_*`` S, ``t_*`` T, ``x_*`` X, ``r_*`` R,
``oracle`` oracle; ``dr_*`` has no counterpart (the paper's U-learner is a different estimator,
and its RS variant, R with an added S-learner term, has none of ours).

Run ``python -m experiments.run experiment=nie_wager 'seeds=${range:0,50}'``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.base import Logistic, RidgeParams
from estimators.crossfit import cross_fit, fold_ids, is_traceable, pads_exactly
from estimators.gbm import LightGBM
from estimators.heads import HeadConfig, make_learner
from estimators.precision import float64, float64_methods
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, mean_se, quiet_bar, stream
from simulators.nie_wager import (
    MIN_FEATURES,
    SETUPS,
    NieWagerConfig,
    nie_wager_logged_data,
    nie_wager_surfaces,
)

__all__ = ["BASES", "DEFAULT_LEARNERS", "GCV_ALPHAS", "LGBM", "NW_LEARNERS", "PAPER_GRID",
           "PUBLISHED", "PUBLISHED_METHODS", "SUITE", "GCVRidge", "NieWagerSuiteConfig",
           "RawColumns", "TrueMean", "feature_basis", "plot", "published", "r_learner_penalty",
           "run", "summary", "write_results"]

# The published means, cited as facts: Nie & Wager (2021), Section 6 and its Tables (setups A-D),
# as released in the authors' repository github.com/xnie/rlearner (GPL-3; numbers only, no code),
# files experiments_for_paper/output_lasso.csv, output_boost.csv and output_kernel.csv (the
# tables/*.tex print the same means rounded to two decimals); here rounded to four decimals.
# Key (setup, n, d, sigma); value: the mean over runs (500 for lasso, 200 for boost and kernel) of
# the test-sample MSE of each method, in the order of PUBLISHED_METHODS[family] (U: the U-learner;
# RS: R plus an S-learner term, lasso only; CB: causal boosting, boost only).
PUBLISHED_METHODS: dict[str, tuple[str, ...]] = {
    "lasso": ("S", "T", "X", "U", "R", "RS", "oracle"),
    "boost": ("S", "T", "X", "U", "CB", "R", "oracle"),
    "kernel": ("S", "T", "X", "U", "R", "oracle"),
}
PUBLISHED_RUNS: dict[str, int] = {"lasso": 500, "boost": 200, "kernel": 200}
PUBLISHED: dict[str, dict[tuple[str, int, int, float], tuple[float, ...]]] = {
    "lasso": {  # S, T, X, U, R, RS, oracle
        ("A", 500, 6, 0.5): (0.1297, 0.1859, 0.0957, 0.1160, 0.0627, 0.0552, 0.0471),
        ("A", 500, 6, 1.0): (0.2102, 0.2689, 0.1644, 0.3749, 0.1004, 0.0740, 0.0734),
        ("A", 500, 6, 2.0): (0.2742, 0.3467, 0.2507, 1.2523, 0.2134, 0.1190, 0.1935),
        ("A", 500, 6, 4.0): (0.5057, 0.6585, 0.4092, 1.9489, 0.5497, 0.2596, 0.6089),
        ("A", 500, 12, 0.5): (0.1499, 0.2015, 0.1170, 0.1668, 0.0737, 0.0619, 0.0519),
        ("A", 500, 12, 1.0): (0.2172, 0.2646, 0.1817, 0.4584, 0.1142, 0.0852, 0.0849),
        ("A", 500, 12, 2.0): (0.2965, 0.3499, 0.2574, 1.1816, 0.2266, 0.1376, 0.2254),
        ("A", 500, 12, 4.0): (0.4739, 0.5619, 0.4251, 1.9758, 0.5882, 0.2763, 0.6316),
        ("A", 1000, 6, 0.5): (0.0870, 0.1300, 0.0638, 0.0648, 0.0437, 0.0479, 0.0385),
        ("A", 1000, 6, 1.0): (0.1544, 0.2074, 0.1147, 0.2545, 0.0703, 0.0578, 0.0578),
        ("A", 1000, 6, 2.0): (0.2345, 0.2884, 0.1976, 0.8526, 0.1324, 0.0843, 0.1111),
        ("A", 1000, 6, 4.0): (0.3418, 0.4279, 0.3105, 2.4023, 0.3416, 0.1620, 0.3160),
        ("A", 1000, 12, 0.5): (0.1058, 0.1445, 0.0765, 0.1119, 0.0523, 0.0538, 0.0416),
        ("A", 1000, 12, 1.0): (0.1782, 0.2176, 0.1376, 0.3362, 0.0768, 0.0657, 0.0607),
        ("A", 1000, 12, 2.0): (0.2512, 0.2961, 0.2126, 0.9378, 0.1405, 0.0889, 0.1187),
        ("A", 1000, 12, 4.0): (0.3258, 0.4017, 0.2936, 1.9505, 0.3502, 0.1806, 0.3280),
        ("B", 500, 6, 0.5): (0.2625, 0.4291, 0.2173, 0.4619, 0.2754, 0.2890, 0.1565),
        ("B", 500, 6, 1.0): (0.4438, 0.6578, 0.3751, 0.8309, 0.4337, 0.7208, 0.3301),
        ("B", 500, 6, 2.0): (0.8436, 1.1153, 0.7063, 1.2700, 0.8486, 1.2569, 0.7545),
        ("B", 500, 6, 4.0): (1.5168, 1.7305, 1.2920, 1.4023, 1.5096, 1.4078, 1.4630),
        ("B", 500, 12, 0.5): (0.3035, 0.4607, 0.2514, 0.5370, 0.3321, 0.4061, 0.1766),
        ("B", 500, 12, 1.0): (0.5167, 0.7126, 0.4276, 0.8958, 0.5048, 0.9535, 0.3784),
        ("B", 500, 12, 2.0): (0.9337, 1.1160, 0.7817, 1.2829, 0.9583, 1.3083, 0.8411),
        ("B", 500, 12, 4.0): (1.6223, 1.7658, 1.3329, 1.4210, 1.5535, 1.4047, 1.5376),
        ("B", 1000, 6, 0.5): (0.1439, 0.2440, 0.1304, 0.2419, 0.1518, 0.1482, 0.0975),
        ("B", 1000, 6, 1.0): (0.2654, 0.4292, 0.2307, 0.4553, 0.2515, 0.3603, 0.2034),
        ("B", 1000, 6, 2.0): (0.5355, 0.7253, 0.4484, 1.1224, 0.5221, 0.9169, 0.4733),
        ("B", 1000, 6, 4.0): (1.0594, 1.3053, 0.9233, 1.3414, 1.0716, 1.3379, 1.0589),
        ("B", 1000, 12, 0.5): (0.1666, 0.2783, 0.1460, 0.2891, 0.1769, 0.1845, 0.1134),
        ("B", 1000, 12, 1.0): (0.3035, 0.4483, 0.2564, 0.5466, 0.2992, 0.5197, 0.2342),
        ("B", 1000, 12, 2.0): (0.6142, 0.7619, 0.5046, 1.1941, 0.5924, 1.1403, 0.5374),
        ("B", 1000, 12, 4.0): (1.1457, 1.3032, 1.0076, 1.3307, 1.1922, 1.3383, 1.1273),
        ("C", 500, 6, 0.5): (0.1796, 0.7972, 0.1795, 0.5333, 0.0538, 0.0191, 0.0068),
        ("C", 500, 6, 1.0): (0.3288, 1.1758, 0.2902, 0.6650, 0.0971, 0.0346, 0.0331),
        ("C", 500, 6, 2.0): (0.7455, 1.9465, 0.5803, 1.4163, 0.2107, 0.0941, 0.1201),
        ("C", 500, 6, 4.0): (1.6792, 3.1284, 1.2384, 3.5563, 0.6361, 0.2614, 0.5122),
        ("C", 500, 12, 0.5): (0.1822, 0.8832, 0.1895, 0.5479, 0.0835, 0.0338, 0.0084),
        ("C", 500, 12, 1.0): (0.3355, 1.2940, 0.3130, 0.8551, 0.1181, 0.0598, 0.0387),
        ("C", 500, 12, 2.0): (0.8070, 2.0835, 0.6492, 1.8151, 0.2437, 0.1302, 0.1448),
        ("C", 500, 12, 4.0): (1.7916, 3.2750, 1.4272, 4.0178, 0.6152, 0.3261, 0.5784),
        ("C", 1000, 6, 0.5): (0.0960, 0.4898, 0.0972, 0.2322, 0.0196, 0.0061, 0.0033),
        ("C", 1000, 6, 1.0): (0.1858, 0.7343, 0.1694, 0.3371, 0.0342, 0.0134, 0.0135),
        ("C", 1000, 6, 2.0): (0.4095, 1.2901, 0.3532, 0.8202, 0.0787, 0.0376, 0.0672),
        ("C", 1000, 6, 4.0): (0.9678, 2.3808, 0.8156, 2.3129, 0.2735, 0.1100, 0.2218),
        ("C", 1000, 12, 0.5): (0.0921, 0.5755, 0.0999, 0.4122, 0.0260, 0.0106, 0.0043),
        ("C", 1000, 12, 1.0): (0.1814, 0.8249, 0.1838, 0.5401, 0.0426, 0.0214, 0.0133),
        ("C", 1000, 12, 2.0): (0.4298, 1.4018, 0.3678, 1.2051, 0.1087, 0.0506, 0.0520),
        ("C", 1000, 12, 4.0): (1.0974, 2.4316, 0.8666, 3.1995, 0.2879, 0.1357, 0.2050),
        ("D", 500, 6, 0.5): (0.4630, 0.3707, 0.4470, 1.1962, 0.5124, 0.7175, 0.4651),
        ("D", 500, 6, 1.0): (0.7710, 0.6551, 0.7526, 1.6803, 0.8127, 1.5712, 0.7995),
        ("D", 500, 6, 2.0): (1.3241, 1.2267, 1.2879, 1.8115, 1.4275, 1.7873, 1.4228),
        ("D", 500, 6, 4.0): (2.0159, 2.1957, 1.9693, 2.0957, 2.2036, 1.9050, 2.1949),
        ("D", 500, 12, 0.5): (0.5876, 0.4370, 0.5593, 1.1914, 0.6311, 1.0794, 0.5738),
        ("D", 500, 12, 1.0): (0.9360, 0.7688, 0.8783, 1.7040, 0.9622, 1.7415, 0.9548),
        ("D", 500, 12, 2.0): (1.4741, 1.3846, 1.4487, 1.8421, 1.5906, 1.8126, 1.5922),
        ("D", 500, 12, 4.0): (2.0624, 2.2134, 1.9771, 2.1179, 2.2810, 1.9446, 2.1709),
        ("D", 1000, 6, 0.5): (0.2749, 0.2126, 0.2685, 0.7438, 0.3042, 0.4076, 0.2802),
        ("D", 1000, 6, 1.0): (0.4991, 0.4093, 0.4756, 1.5696, 0.5392, 0.8660, 0.5328),
        ("D", 1000, 6, 2.0): (0.9273, 0.7942, 0.9115, 1.7645, 0.9743, 1.7422, 0.9859),
        ("D", 1000, 6, 4.0): (1.6127, 1.5833, 1.5631, 1.9465, 1.7284, 1.8258, 1.7014),
        ("D", 1000, 12, 0.5): (0.3516, 0.2600, 0.3442, 0.7576, 0.3830, 0.5528, 0.3593),
        ("D", 1000, 12, 1.0): (0.6068, 0.4782, 0.5743, 1.5362, 0.6329, 1.2768, 0.6405),
        ("D", 1000, 12, 2.0): (1.0999, 0.9277, 1.0512, 1.7832, 1.1128, 1.7640, 1.1683),
        ("D", 1000, 12, 4.0): (1.7556, 1.7290, 1.6816, 1.9434, 1.8227, 1.8251, 1.8440),
    },
    "boost": {  # S, T, X, U, CB, R, oracle
        ("A", 500, 6, 0.5): (0.0562, 0.0979, 0.0366, 0.0483, 0.0442, 0.0344, 0.0354),
        ("A", 500, 6, 1.0): (0.1212, 0.1974, 0.0788, 0.1127, 0.0888, 0.0609, 0.0582),
        ("A", 500, 6, 2.0): (0.2588, 0.4426, 0.1621, 0.2023, 0.2119, 0.1261, 0.1085),
        ("A", 500, 6, 4.0): (0.5295, 0.9049, 0.3177, 1.0352, 0.3253, 0.3522, 0.3223),
        ("A", 500, 12, 0.5): (0.0660, 0.1107, 0.0380, 0.0549, 0.0488, 0.0382, 0.0369),
        ("A", 500, 12, 1.0): (0.1279, 0.2283, 0.0797, 0.1187, 0.0964, 0.0620, 0.0536),
        ("A", 500, 12, 2.0): (0.2658, 0.4862, 0.1736, 0.3817, 0.2096, 0.1293, 0.1143),
        ("A", 500, 12, 4.0): (0.4751, 0.8769, 0.3427, 1.2068, 0.3397, 0.3294, 0.3221),
        ("A", 1000, 6, 0.5): (0.0467, 0.0721, 0.0235, 0.0478, 0.0273, 0.0234, 0.0263),
        ("A", 1000, 6, 1.0): (0.0947, 0.1465, 0.0533, 0.0704, 0.0610, 0.0461, 0.0438),
        ("A", 1000, 6, 2.0): (0.2015, 0.3596, 0.1147, 0.1987, 0.1613, 0.0944, 0.0771),
        ("A", 1000, 6, 4.0): (0.3756, 0.6762, 0.2319, 0.5017, 0.2728, 0.1913, 0.1915),
        ("A", 1000, 12, 0.5): (0.0515, 0.0775, 0.0251, 0.0477, 0.0285, 0.0264, 0.0286),
        ("A", 1000, 12, 1.0): (0.0939, 0.1626, 0.0549, 0.1004, 0.0615, 0.0492, 0.0458),
        ("A", 1000, 12, 2.0): (0.2059, 0.3606, 0.1123, 0.2132, 0.1532, 0.0825, 0.0761),
        ("A", 1000, 12, 4.0): (0.4110, 0.7248, 0.2429, 0.5965, 0.2871, 0.2184, 0.2448),
        ("B", 500, 6, 0.5): (0.1876, 0.2784, 0.1390, 0.2047, 0.2783, 0.1979, 0.1379),
        ("B", 500, 6, 1.0): (0.3285, 0.4778, 0.2651, 0.4082, 0.3736, 0.3288, 0.2835),
        ("B", 500, 6, 2.0): (0.6684, 0.8889, 0.5643, 0.8437, 0.6681, 0.6843, 0.6211),
        ("B", 500, 6, 4.0): (1.4000, 1.7555, 1.0966, 1.5006, 1.3314, 1.2018, 1.1873),
        ("B", 500, 12, 0.5): (0.2158, 0.3030, 0.1480, 0.2206, 0.3496, 0.2145, 0.1452),
        ("B", 500, 12, 1.0): (0.3722, 0.5012, 0.2894, 0.4311, 0.4566, 0.3701, 0.3086),
        ("B", 500, 12, 2.0): (0.7688, 0.9526, 0.5833, 0.8897, 0.7945, 0.7371, 0.6812),
        ("B", 500, 12, 4.0): (1.6259, 1.8671, 1.1036, 1.5572, 1.4125, 1.4061, 1.2661),
        ("B", 1000, 6, 0.5): (0.1269, 0.1912, 0.0819, 0.1310, 0.1818, 0.1149, 0.0873),
        ("B", 1000, 6, 1.0): (0.2147, 0.3335, 0.1722, 0.2492, 0.2419, 0.2208, 0.1880),
        ("B", 1000, 6, 2.0): (0.4545, 0.6532, 0.3878, 0.5840, 0.4269, 0.4611, 0.4339),
        ("B", 1000, 6, 4.0): (1.0117, 1.3402, 0.8241, 1.2049, 0.8944, 1.0059, 0.9962),
        ("B", 1000, 12, 0.5): (0.1422, 0.2059, 0.0894, 0.1347, 0.2021, 0.1292, 0.0914),
        ("B", 1000, 12, 1.0): (0.2471, 0.3396, 0.1811, 0.2650, 0.2843, 0.2362, 0.2089),
        ("B", 1000, 12, 2.0): (0.5046, 0.6864, 0.4100, 0.6316, 0.5088, 0.5172, 0.4948),
        ("B", 1000, 12, 4.0): (1.1582, 1.3317, 0.8434, 1.2426, 1.0056, 1.1203, 1.0787),
        ("C", 500, 6, 0.5): (0.2956, 0.6467, 0.1308, 0.9725, 0.6474, 0.0801, 0.0265),
        ("C", 500, 6, 1.0): (0.4625, 0.9668, 0.2292, 0.7280, 0.7031, 0.1506, 0.0846),
        ("C", 500, 6, 2.0): (0.9044, 1.7270, 0.4398, 0.8629, 0.8246, 0.2601, 0.2585),
        ("C", 500, 6, 4.0): (1.6476, 2.9092, 0.9067, 1.7417, 0.9595, 0.5686, 0.4306),
        ("C", 500, 12, 0.5): (0.3208, 0.6813, 0.1550, 0.8986, 0.6877, 0.0937, 0.0279),
        ("C", 500, 12, 1.0): (0.5337, 1.0194, 0.2455, 0.9253, 0.7183, 0.1682, 0.0972),
        ("C", 500, 12, 2.0): (0.9785, 1.8338, 0.4719, 0.9505, 0.8431, 0.2890, 0.2317),
        ("C", 500, 12, 4.0): (1.7252, 3.3563, 0.9086, 2.0227, 0.9712, 0.5269, 0.5620),
        ("C", 1000, 6, 0.5): (0.1971, 0.4321, 0.0765, 0.9016, 0.3480, 0.0473, 0.0228),
        ("C", 1000, 6, 1.0): (0.3122, 0.6731, 0.1424, 0.8220, 0.4121, 0.1063, 0.0707),
        ("C", 1000, 6, 2.0): (0.6518, 1.2003, 0.2868, 0.6485, 0.5423, 0.2026, 0.1853),
        ("C", 1000, 6, 4.0): (1.2839, 2.3339, 0.6340, 1.0926, 0.7892, 0.4162, 0.3809),
        ("C", 1000, 12, 0.5): (0.2084, 0.4602, 0.0875, 1.0183, 0.3772, 0.0621, 0.0255),
        ("C", 1000, 12, 1.0): (0.3631, 0.7026, 0.1540, 0.8633, 0.4207, 0.1195, 0.0736),
        ("C", 1000, 12, 2.0): (0.7408, 1.2750, 0.3087, 0.8384, 0.6113, 0.2336, 0.2040),
        ("C", 1000, 12, 4.0): (1.3849, 2.4470, 0.6496, 1.3103, 0.8209, 0.3997, 0.3702),
        ("D", 500, 6, 0.5): (0.3647, 0.3029, 0.3667, 0.5694, 0.5041, 0.4273, 0.3881),
        ("D", 500, 6, 1.0): (0.5549, 0.5257, 0.5670, 0.9605, 0.7624, 0.6639, 0.6459),
        ("D", 500, 6, 2.0): (0.9241, 0.9941, 1.0173, 1.6023, 1.2091, 1.1207, 1.1278),
        ("D", 500, 6, 4.0): (1.4817, 1.8605, 1.6016, 2.3587, 1.5984, 1.8068, 1.7073),
        ("D", 500, 12, 0.5): (0.4395, 0.3371, 0.4342, 0.6334, 0.5506, 0.4807, 0.4348),
        ("D", 500, 12, 1.0): (0.6477, 0.5738, 0.6420, 1.0371, 0.8360, 0.7425, 0.7407),
        ("D", 500, 12, 2.0): (1.0486, 1.0606, 1.0962, 1.6636, 1.3516, 1.2415, 1.2638),
        ("D", 500, 12, 4.0): (1.6601, 1.8843, 1.6722, 2.2888, 1.6826, 1.8801, 1.9115),
        ("D", 1000, 6, 0.5): (0.2417, 0.1970, 0.2488, 0.4221, 0.4097, 0.2935, 0.2620),
        ("D", 1000, 6, 1.0): (0.3878, 0.3580, 0.3981, 0.7253, 0.5624, 0.4623, 0.4536),
        ("D", 1000, 6, 2.0): (0.6826, 0.7075, 0.7329, 1.3290, 0.9430, 0.8114, 0.8274),
        ("D", 1000, 6, 4.0): (1.2306, 1.4490, 1.3447, 1.9822, 1.4132, 1.4423, 1.5062),
        ("D", 1000, 12, 0.5): (0.2916, 0.2170, 0.2842, 0.4717, 0.4113, 0.3177, 0.2955),
        ("D", 1000, 12, 1.0): (0.4519, 0.3822, 0.4523, 0.7844, 0.6194, 0.5191, 0.5060),
        ("D", 1000, 12, 2.0): (0.7964, 0.7700, 0.8331, 1.4630, 1.0784, 0.9354, 0.9305),
        ("D", 1000, 12, 4.0): (1.3777, 1.5303, 1.4330, 1.9942, 1.5346, 1.6500, 1.6235),
    },
    "kernel": {  # S, T, X, U, R, oracle
        ("A", 500, 6, 0.5): (0.0616, 0.0807, 0.0500, 0.1146, 0.0294, 0.0287),
        ("A", 500, 6, 1.0): (0.0919, 0.1488, 0.0954, 0.5797, 0.0752, 0.0736),
        ("A", 500, 6, 2.0): (0.1387, 0.3154, 0.1881, 2.2074, 0.2210, 0.2220),
        ("A", 500, 6, 4.0): (0.3123, 0.6550, 0.3943, 8.0994, 0.7816, 0.7582),
        ("A", 500, 12, 0.5): (0.0677, 0.0866, 0.0643, 0.0996, 0.0515, 0.0375),
        ("A", 500, 12, 1.0): (0.0993, 0.1628, 0.0998, 0.3293, 0.0930, 0.0735),
        ("A", 500, 12, 2.0): (0.1640, 0.3222, 0.2169, 1.4151, 0.2495, 0.1775),
        ("A", 500, 12, 4.0): (0.2999, 0.6149, 0.4070, 5.0929, 0.6130, 0.6826),
        ("A", 1000, 6, 0.5): (0.0477, 0.0579, 0.0336, 0.0661, 0.0154, 0.0167),
        ("A", 1000, 6, 1.0): (0.0751, 0.1027, 0.0703, 0.3832, 0.0446, 0.0455),
        ("A", 1000, 6, 2.0): (0.1107, 0.2021, 0.1280, 1.7965, 0.1122, 0.1134),
        ("A", 1000, 6, 4.0): (0.1844, 0.4533, 0.2813, 6.1158, 0.3452, 0.3752),
        ("A", 1000, 12, 0.5): (0.0577, 0.0715, 0.0493, 0.0928, 0.0305, 0.0237),
        ("A", 1000, 12, 1.0): (0.0773, 0.1040, 0.0723, 0.2237, 0.0661, 0.0535),
        ("A", 1000, 12, 2.0): (0.1262, 0.2348, 0.1302, 0.8394, 0.1365, 0.1116),
        ("A", 1000, 12, 4.0): (0.2038, 0.4126, 0.2951, 3.3013, 0.5270, 0.3585),
        ("B", 500, 6, 0.5): (0.0877, 0.0997, 0.0549, 0.0527, 0.0528, 0.0372),
        ("B", 500, 6, 1.0): (0.2123, 0.2347, 0.1340, 0.1020, 0.1053, 0.0882),
        ("B", 500, 6, 2.0): (0.4642, 0.5677, 0.3567, 0.3556, 0.3354, 0.3038),
        ("B", 500, 6, 4.0): (0.8900, 1.3302, 0.9395, 1.2097, 1.1548, 1.1225),
        ("B", 500, 12, 0.5): (0.2097, 0.2196, 0.1034, 0.0881, 0.0879, 0.0511),
        ("B", 500, 12, 1.0): (0.3392, 0.3716, 0.2062, 0.1827, 0.1832, 0.1380),
        ("B", 500, 12, 2.0): (0.5774, 0.6571, 0.5520, 0.4688, 0.4832, 0.4509),
        ("B", 500, 12, 4.0): (1.2142, 1.3827, 1.1135, 1.3019, 1.2431, 1.2363),
        ("B", 1000, 6, 0.5): (0.0506, 0.0607, 0.0360, 0.0293, 0.0304, 0.0236),
        ("B", 1000, 6, 1.0): (0.1178, 0.1346, 0.0766, 0.0601, 0.0603, 0.0540),
        ("B", 1000, 6, 2.0): (0.2979, 0.3501, 0.2067, 0.1651, 0.1751, 0.1563),
        ("B", 1000, 6, 4.0): (0.6594, 0.8386, 0.5421, 0.6342, 0.5862, 0.5502),
        ("B", 1000, 12, 0.5): (0.1124, 0.1253, 0.0584, 0.0473, 0.0481, 0.0355),
        ("B", 1000, 12, 1.0): (0.2402, 0.2564, 0.1286, 0.0913, 0.0945, 0.0809),
        ("B", 1000, 12, 2.0): (0.4080, 0.4401, 0.2981, 0.2562, 0.2724, 0.2338),
        ("B", 1000, 12, 4.0): (0.8395, 0.9361, 0.7086, 0.7831, 0.8260, 0.7917),
        ("C", 500, 6, 0.5): (0.1065, 0.1076, 0.0406, 0.3906, 0.0153, 0.0089),
        ("C", 500, 6, 1.0): (0.3250, 0.3428, 0.1334, 0.6080, 0.0434, 0.0347),
        ("C", 500, 6, 2.0): (0.8328, 0.9549, 0.4350, 2.4283, 0.1403, 0.1455),
        ("C", 500, 6, 4.0): (1.6200, 2.2295, 1.1299, 12.5291, 0.7077, 0.5518),
        ("C", 500, 12, 0.5): (0.3180, 0.3245, 0.1203, 1.0175, 0.0214, 0.0073),
        ("C", 500, 12, 1.0): (0.6941, 0.7247, 0.3211, 2.8171, 0.0447, 0.0320),
        ("C", 500, 12, 2.0): (1.1778, 1.3095, 0.6678, 6.4530, 0.3449, 0.1455),
        ("C", 500, 12, 4.0): (2.1013, 2.7109, 1.1270, 14.8714, 1.5127, 0.5654),
        ("C", 1000, 6, 0.5): (0.0525, 0.0525, 0.0201, 0.3283, 0.0113, 0.0053),
        ("C", 1000, 6, 1.0): (0.1654, 0.1693, 0.0650, 0.3968, 0.0219, 0.0218),
        ("C", 1000, 6, 2.0): (0.4849, 0.5499, 0.2418, 1.2600, 0.2572, 0.0818),
        ("C", 1000, 6, 4.0): (1.0431, 1.4204, 0.6934, 5.3660, 0.2531, 0.3309),
        ("C", 1000, 12, 0.5): (0.1536, 0.1532, 0.0498, 0.3260, 0.1804, 0.0036),
        ("C", 1000, 12, 1.0): (0.4051, 0.4309, 0.1666, 1.1000, 0.0234, 0.0159),
        ("C", 1000, 12, 2.0): (0.8550, 0.9346, 0.4434, 5.1599, 0.0751, 0.0620),
        ("C", 1000, 12, 4.0): (1.4747, 1.9127, 0.8972, 11.9316, 0.2432, 0.3325),
        ("D", 500, 6, 0.5): (0.1477, 0.1503, 0.1475, 0.5279, 0.1821, 0.1533),
        ("D", 500, 6, 1.0): (0.3210, 0.3357, 0.3262, 0.9623, 0.3827, 0.3523),
        ("D", 500, 6, 2.0): (0.6542, 0.7075, 0.7108, 2.0807, 0.7696, 0.7866),
        ("D", 500, 6, 4.0): (1.2682, 1.7541, 1.4461, 5.2639, 1.8090, 1.6836),
        ("D", 500, 12, 0.5): (0.3141, 0.2967, 0.3090, 0.6270, 0.3656, 0.3033),
        ("D", 500, 12, 1.0): (0.5272, 0.5290, 0.5530, 0.9176, 0.5817, 0.5545),
        ("D", 500, 12, 2.0): (0.8044, 0.9485, 0.9164, 1.6849, 0.9616, 0.9940),
        ("D", 500, 12, 4.0): (1.4093, 1.7716, 1.6935, 4.8318, 1.8997, 1.8919),
        ("D", 1000, 6, 0.5): (0.0995, 0.0997, 0.1033, 0.3877, 0.1150, 0.1048),
        ("D", 1000, 6, 1.0): (0.1987, 0.2005, 0.2003, 0.5313, 0.2362, 0.2103),
        ("D", 1000, 6, 2.0): (0.4409, 0.4761, 0.4720, 1.2516, 0.5539, 0.4829),
        ("D", 1000, 6, 4.0): (0.8781, 1.0168, 0.9704, 3.3242, 1.0966, 1.1598),
        ("D", 1000, 12, 0.5): (0.1958, 0.1828, 0.1889, 0.4383, 0.2213, 0.1903),
        ("D", 1000, 12, 1.0): (0.3799, 0.3656, 0.3783, 0.7149, 0.3991, 0.3944),
        ("D", 1000, 12, 2.0): (0.6375, 0.6466, 0.6536, 1.2483, 0.6938, 0.7065),
        ("D", 1000, 12, 4.0): (1.0559, 1.2675, 1.2068, 3.0802, 1.3352, 1.4168),
    },
}
PAPER_GRID: dict[str, tuple] = {"setup": SETUPS, "n": (500, 1000), "d": (6, 12),
                                "sigma": (0.5, 1.0, 2.0, 4.0)}


def published(family: str, method: str, setup: str, n: int, d: int, sigma: float) -> float:
    """The published mean MSE of ``method`` (a name of ``PUBLISHED_METHODS[family]``) in a grid
    cell, or NaN where the paper has no such method or cell."""
    methods = PUBLISHED_METHODS.get(family, ())
    row = PUBLISHED.get(family, {}).get((setup, int(n), int(d), float(sigma)))
    if row is None or method not in methods:
        return math.nan
    return row[methods.index(method)]


# ------------------------------------------------------------------------------ base models
GCV_ALPHAS: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.arange(-2.0, 5.01, 0.25))


@jax.jit
def _gcv_ridge(x: jax.Array, y: jax.Array, w: jax.Array,
               alphas: jax.Array) -> tuple[RidgeParams, jax.Array]:
    """Weighted ridge (unpenalised intercept) at the penalty of least GCV score among ``alphas``:
    ``GCV(a) = m RSS_w(a) / (m - df(a))^2`` with ``m`` the rows of positive weight and ``df(a) =
    1 + sum_j l_j / (l_j + a)`` from the eigenvalues ``l`` of the weighted, centred Gram matrix
    (Golub, Heath & Wahba 1979). Zero-weight rows change nothing (padding is exact). The
    ``p x p`` eigendecomposition (not an SVD of the ``n x p`` design) keeps LAPACK's work small:
    a threaded SVD of the tall design ran ~60x slower on a busy two-core machine."""
    wsum = jnp.sum(w)
    x_mean, y_mean = (w @ x) / wsum, (w @ y) / wsum
    xc = x - x_mean
    yc = y - y_mean
    gram = (xc * w[:, None]).T @ xc
    lam, vec = jnp.linalg.eigh(gram)
    lam = jnp.maximum(lam, 0.0)
    proj = vec.T @ (xc.T @ (w * yc))  # = s * (U' b) per component
    pos = lam > jnp.max(lam) * 1e-12 * x.shape[1]
    utb2 = jnp.where(pos, proj ** 2 / jnp.where(pos, lam, 1.0), 0.0)  # (U' b)^2
    keep = jnp.where(pos[None, :], lam[None, :] / (lam[None, :] + alphas[:, None]), 0.0)
    rss = (w @ (yc * yc) - jnp.sum(utb2)) + jnp.sum((1.0 - keep) ** 2 * utb2[None, :], axis=1)
    m = jnp.sum(w > 0).astype(x.dtype)
    dof = 1.0 + jnp.sum(keep, axis=1)
    score = m * rss / jnp.maximum(m - dof, 1e-3) ** 2
    alpha = alphas[jnp.argmin(score)]
    coef = vec @ (proj / (lam + alpha))
    return RidgeParams(coef=coef, intercept=y_mean - x_mean @ coef), alpha


@jax.jit
def _linear_predict(params: RidgeParams, x: jax.Array) -> jax.Array:
    return x @ params.coef + params.intercept


@float64_methods("fit", "predict", "penalty")
@dataclasses.dataclass(frozen=True)
class GCVRidge:
    """Ridge regression whose penalty is chosen per fit by generalised cross-validation over
    ``alphas`` (:func:`_gcv_ridge`); the base-model contract of :mod:`estimators.base` (fit
    returns ``RidgeParams``, as ``Ridge``). The suite's stand-in for ``cv.glmnet``'s choice."""

    alphas: tuple[float, ...] = GCV_ALPHAS
    pads_exactly: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.alphas or not all(math.isfinite(a) and a > 0 for a in self.alphas):
            raise ValueError(f"GCVRidge.alphas: non-empty, each finite and > 0, got "
                             f"{self.alphas!r}. Fix: e.g. GCV_ALPHAS.")

    def _solve(self, x: Any, y: Any, sample_weight: Any | None) -> tuple[RidgeParams, jax.Array]:
        x = jnp.asarray(x, dtype=jnp.float64)
        y = jnp.asarray(y, dtype=jnp.float64)
        w = (jnp.ones_like(y) if sample_weight is None
             else jnp.asarray(sample_weight, dtype=jnp.float64))
        return _gcv_ridge(x, y, w, jnp.asarray(self.alphas, dtype=jnp.float64))

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> RidgeParams:
        return self._solve(x, y, sample_weight)[0]

    def penalty(self, x: Any, y: Any, sample_weight: Any | None = None) -> float:
        """The penalty GCV chooses on this data."""
        return float(self._solve(x, y, sample_weight)[1])

    def predict(self, params: RidgeParams, x: Any) -> jax.Array:
        return _linear_predict(params, jnp.asarray(x, dtype=jnp.float64))


@dataclasses.dataclass(frozen=True)
class RawColumns:
    """``inner`` fitted and evaluated on the first ``k`` columns of ``x`` only (the raw features
    at the front of :func:`feature_basis`): trees on raw ``x`` inside a learner whose effect
    stage reads the whole basis."""

    inner: Any
    k: int

    @property
    def traceable(self) -> bool:
        return is_traceable(self.inner)

    @property
    def pads_exactly(self) -> bool:
        return pads_exactly(self.inner)

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> Any:
        return self.inner.fit(x[:, : self.k], y, sample_weight)

    def predict(self, params: Any, x: Any) -> jax.Array:
        return self.inner.predict(params, x[:, : self.k])


@dataclasses.dataclass(frozen=True)
class TrueMean:
    """The oracle's outcome model: no fit, ``predict`` is the setup's true
    ``m(x) = E[Y | x] = b(x) + (e(x) - 1/2) tau(x)`` at the raw ``x`` recovered from the first
    ``d`` (standardised) columns, ``x_raw = z * scale + mean``. Host-side (not traceable)."""

    setup: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    traceable: ClassVar[bool] = False

    def fit(self, x: Any, y: Any, sample_weight: Any | None = None) -> Any:
        return ()

    def predict(self, params: Any, x: Any) -> jax.Array:
        d = len(self.mean)
        raw = np.asarray(x)[:, :d] * np.asarray(self.scale) + np.asarray(self.mean)
        s = nie_wager_surfaces(self.setup, raw)
        return s.b + (s.e - 0.5) * s.tau


# ---------------------------------------------------------------------------- feature basis
BASES: tuple[str, ...] = ("linear", "quadratic", "spline")
SPLINE_DF = 7  # natural-spline degrees of freedom per feature (the paper's ns(df = 7))


def _natural_spline(v: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The non-linear natural cubic spline functions of ``v`` at ``knots`` (``K`` of them, the
    outer two the boundary): ``N_{k+2} = d_k - d_{K-1}``, ``d_k = ((v - xi_k)_+^3 - (v - xi_K)_+^3)
    / (xi_K - xi_k)``, ``k = 1..K-2`` (Hastie, Tibshirani & Friedman, ESL, eq. 5.4-5.5); with
    ``v`` itself they span the natural cubic splines at those knots (``K - 1`` functions)."""
    last = knots[-1]

    def dk(k: int) -> np.ndarray:
        return (np.maximum(v - knots[k], 0.0) ** 3 - np.maximum(v - last, 0.0) ** 3) / (
            last - knots[k])

    return np.column_stack([dk(k) - dk(len(knots) - 2) for k in range(len(knots) - 2)])


def feature_basis(x_train: np.ndarray, kind: str):
    """The map ``x -> features`` of a basis fitted on the training ``x (n, d)``, every column
    standardised by its training mean and standard deviation, the first ``d`` the raw ``x``:
    ``linear`` (``x``), ``quadratic`` (``x``, ``x_j^2``, ``x_j x_k`` for ``j < k``) or ``spline``
    (per feature ``x_j`` and 6 natural-spline functions at the training quantiles 0, 1/7, ..., 1,
    i.e. ``ns(df = 7)``; then all pairwise products and squares of those ``7 d`` columns: the
    paper's lasso basis). Returns ``(transform, mean, scale)`` (``mean``/``scale`` of the first
    ``d`` columns, for :class:`TrueMean`)."""
    if kind not in BASES:
        raise ValueError(f"basis: unknown {kind!r}. Fix: one of {list(BASES)}.")
    x_train = np.asarray(x_train, dtype=np.float64)
    d = x_train.shape[1]
    if kind == "spline":
        knots = [np.quantile(x_train[:, j], np.linspace(0.0, 1.0, SPLINE_DF + 1))
                 for j in range(d)]

    def raw(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if kind == "linear":
            return x
        if kind == "quadratic":
            pairs = [x[:, j] * x[:, k] for j, k in itertools.combinations(range(d), 2)]
            return np.column_stack([x, x * x, *pairs])
        s = np.column_stack([x] + [_natural_spline(x[:, j], knots[j]) for j in range(d)])
        pairs = [s[:, j] * s[:, k] for j, k in itertools.combinations(range(s.shape[1]), 2)]
        return np.column_stack([s, *pairs, s * s])

    f = raw(x_train)
    mean, scale = f.mean(axis=0), f.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (lambda x: (raw(x) - mean) / scale), mean[:d], scale[:d]


# -------------------------------------------------------------------------------- learners
# The boosting analogue: LightGBM with early stopping on a 20 % validation split (the paper's
# cvboost cross-validates xgboost's settings and stops early; ours tunes the round count only).
LGBM = LightGBM(n_estimators=1000, learning_rate=0.05, validation_fraction=0.2,
                early_stopping_rounds=20)


class NWLearner(NamedTuple):
    """A compared learner: its head, the paper's method it stands beside (``None``: none), and
    whether it sees only the raw ``x`` (S/T on LightGBM: trees, no effect stage)."""

    head: HeadConfig
    method: str | None
    raw_x: bool = False


NW_LEARNERS: dict[str, NWLearner] = {
    "s_ridge": NWLearner(HeadConfig(learner="s", base="ridge", interactions=True), "S"),
    "t_ridge": NWLearner(HeadConfig(learner="t", base="ridge"), "T"),
    "x_ridge": NWLearner(HeadConfig(learner="x", base="ridge"), "X"),
    "dr_ridge": NWLearner(HeadConfig(learner="dr", base="ridge"), None),
    "r_ridge": NWLearner(HeadConfig(learner="r", base="ridge"), "R"),
    "oracle": NWLearner(HeadConfig(learner="r", base="ridge"), "oracle"),
    "s_lgbm": NWLearner(HeadConfig(learner="s", base="lightgbm", lightgbm=LGBM), "S", True),
    "t_lgbm": NWLearner(HeadConfig(learner="t", base="lightgbm", lightgbm=LGBM), "T", True),
    "x_lgbm": NWLearner(HeadConfig(learner="x", base="lightgbm", lightgbm=LGBM), "X"),
    "dr_lgbm": NWLearner(HeadConfig(learner="dr", base="lightgbm", lightgbm=LGBM), None),
    "r_lgbm": NWLearner(HeadConfig(learner="r", base="lightgbm", lightgbm=LGBM), "R"),
}
PROPENSITIES: tuple[str, ...] = ("true", "estimated")


def family(learner: str) -> str:
    """The paper's column a learner stands beside: ``boost`` for LightGBM, else ``lasso``."""
    return "boost" if learner.endswith("_lgbm") else "lasso"


@float64
def r_learner_penalty(base: Any, x: np.ndarray, w: np.ndarray, y: np.ndarray, e: np.ndarray,
                      *, n_folds: int, seed: int) -> float:
    """The GCV penalty of the R-learner's effect stage. With the cross-fitted ``m_hat`` (the same
    folds ``fold_ids(n, n_folds, key(seed))`` and base model the
    :class:`~estimators.uplift.RLearner` uses), its objective ``sum_i (y_i - m_i - (w_i - e_i)
    (b + x_i theta))^2 + alpha |theta|^2`` is the weighted ridge of ``(y - m) / (w - e)`` on ``x``
    with weights ``(w - e)^2``; :class:`GCVRidge` picks ``alpha`` for it."""
    folds = fold_ids(len(y), n_folds, jax.random.key(seed))
    m_hat = np.asarray(cross_fit(base, x, y, folds, n_folds=n_folds).predictions)
    resid_w = w - e
    ok = np.abs(resid_w) > 1e-12
    target = np.where(ok, (y - m_hat) / np.where(ok, resid_w, 1.0), 0.0)
    return GCVRidge().penalty(x, target, np.where(ok, resid_w ** 2, 0.0))


# ---------------------------------------------------------------------------------- config
DEFAULT_LEARNERS: tuple[str, ...] = ("s_ridge", "t_ridge", "x_ridge", "dr_ridge", "r_ridge",
                                     "oracle", "s_lgbm", "t_lgbm", "x_lgbm", "dr_lgbm",
                                     "r_lgbm")


def _fail(field: str, problem: str, fix: str) -> None:
    raise ValueError(f"NieWagerSuiteConfig.{field}: {problem}. Fix: {fix}.")


def _ints(field: str, values: Any, low: int, fix: str) -> tuple[int, ...]:
    if not isinstance(values, tuple) or not values or len(set(values)) != len(values) or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low
            for v in values):
        _fail(field, f"distinct integers >= {low}, got {values!r}", fix)
    return tuple(int(v) for v in values)


@dataclasses.dataclass(frozen=True)
class NieWagerSuiteConfig:
    """The grid ``setups x ns x ds x sigmas`` (the paper's: A-D x {500, 1000} x {6, 12} x
    {0.5, 1, 2, 4}; default d = 6 only), the ``learners`` (names of :data:`NW_LEARNERS`), the
    feature ``basis`` of the ridge and effect stages (:data:`BASES`), ``tune_penalty`` (GCV per
    fit; else the fixed ridge penalty ``alpha``) and the ``propensity`` given to X, DR and R
    (``"true"``: the logged ``e(x)``; ``"estimated"``: cross-fitted logistic). Module docstring:
    what each choice means against the paper."""

    setups: tuple[str, ...] = SETUPS
    ns: tuple[int, ...] = (500, 1000)
    ds: tuple[int, ...] = (6,)
    sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    learners: tuple[str, ...] = DEFAULT_LEARNERS
    basis: str = "quadratic"
    tune_penalty: bool = True
    alpha: float = 1.0
    propensity: str = "true"

    def __post_init__(self) -> None:
        setups = self.setups
        if not isinstance(setups, tuple) or not setups or len(set(setups)) != len(setups) or (
                not set(setups) <= set(SETUPS)):
            _fail("setups", f"distinct names of {list(SETUPS)}, got {setups!r}",
                  "e.g. setups=[A,B,C,D] (the paper's)")
        object.__setattr__(self, "ns", _ints("ns", self.ns, 50, "e.g. ns=[500,1000] (the "
                                             "paper's); >= 50 rows for the cross-fitting"))
        low = max(MIN_FEATURES[s] for s in setups)
        object.__setattr__(self, "ds", _ints("ds", self.ds, low, f"e.g. ds=[6,12] (the paper's); "
                                             f"setups {list(setups)} read X1..X{low}"))
        sig = self.sigmas
        if not isinstance(sig, tuple) or not sig or len(set(sig)) != len(sig) or not all(
                isinstance(s, int | float | np.number) and not isinstance(s, bool)
                and math.isfinite(float(s)) and float(s) >= 0 for s in sig):
            _fail("sigmas", f"distinct finite numbers >= 0, got {sig!r}",
                  "e.g. sigmas=[0.5,1,2,4] (the paper's)")
        object.__setattr__(self, "sigmas", tuple(float(s) for s in sig))
        lr = self.learners
        unknown = sorted(set(lr) - set(NW_LEARNERS)) if isinstance(lr, tuple) else lr
        if not isinstance(lr, tuple) or not lr or unknown or len(set(lr)) != len(lr):
            _fail("learners", f"distinct names, unknown or empty: {unknown!r}",
                  f"choose from {list(NW_LEARNERS)}")
        if self.basis not in BASES:
            _fail("basis", f"unknown {self.basis!r}", f"one of {list(BASES)}")
        if not isinstance(self.tune_penalty, bool):
            _fail("tune_penalty", f"must be a bool, got {self.tune_penalty!r}", "true or false")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a) or a <= 0:
            _fail("alpha", f"must be a finite number > 0, got {a!r}", "e.g. alpha=1.0")
        if self.propensity not in PROPENSITIES:
            _fail("propensity", f"unknown {self.propensity!r}", f"one of {list(PROPENSITIES)}")

    @classmethod
    def compact(cls) -> NieWagerSuiteConfig:
        return cls(setups=("C",), ns=(500,), sigmas=(1.0,),
                   learners=("t_ridge", "r_ridge", "oracle"))


# ------------------------------------------------------------------------------------- run
def _cell(setup: str, n: int, d: int, sigma: float) -> str:
    return f"{setup}/n={n}/d={d}/sigma={sigma:g}"


def _estimated_propensity(features: np.ndarray, action: np.ndarray, key: jax.Array) -> np.ndarray:
    """``(n, 2)`` rows ``[1 - e_hat, e_hat]``: a 2-fold cross-fitted L2 logistic regression of
    the treatment on the features, clipped to [0.01, 0.99]."""
    folds = fold_ids(len(action), 2, key)
    fit = cross_fit(Logistic(alpha=1.0), features, action.astype(np.float64), folds, n_folds=2)
    e = np.clip(np.asarray(fit.predictions), 0.01, 0.99)
    return np.column_stack([1.0 - e, e])


class _Cell(NamedTuple):
    setup: str
    train: Any  # LoggedData
    f_train: np.ndarray
    f_test: np.ndarray
    x_test: np.ndarray
    prop: np.ndarray  # the propensity given to X/DR/R
    mean: np.ndarray
    scale: np.ndarray


def _fit_predict(cfg: NieWagerSuiteConfig, name: str, seed: int, c: _Cell) -> np.ndarray:
    """The test-sample ``tau_hat`` of learner ``name`` fitted on the cell's training sample."""
    spec = NW_LEARNERS[name]
    head = dataclasses.replace(spec.head, alpha=float(cfg.alpha), seed=seed)
    learner = make_learner(head)
    train = c.train
    d = train.x.shape[1]
    x_fit, x_new = (train.x, c.x_test) if spec.raw_x else (c.f_train, c.f_test)
    changes: dict[str, Any] = {}
    if cfg.tune_penalty and head.base == "ridge":
        changes["base"] = GCVRidge()
    if head.base == "lightgbm" and not spec.raw_x:
        changes["base"] = RawColumns(learner.base, d)
    if name == "oracle":
        changes["base"] = TrueMean(c.setup, tuple(map(float, c.mean)), tuple(map(float, c.scale)))
    if cfg.tune_penalty and hasattr(learner, "final"):
        changes["final"] = GCVRidge()
    prop = train.action_prob if name == "oracle" else c.prop
    if head.learner == "r" and cfg.tune_penalty:
        changes["alpha"] = r_learner_penalty(changes.get("base", learner.base), x_fit,
                                             train.action.astype(np.float64), train.value,
                                             prop[:, 1], n_folds=learner.n_folds,
                                             seed=learner.seed)
    learner = dataclasses.replace(learner, **changes)
    learner.fit(x_fit, train.action, train.value,
                action_prob=prop if head.learner in ("x", "dr", "r") else None, n_actions=2)
    return np.asarray(jax.block_until_ready(learner.predict_tau(x_new)))[:, 1]


def _cell_rows(cfg: NieWagerSuiteConfig, seed: int, setup: str, n: int, d: int,
               sigma: float) -> list[dict[str, Any]]:
    name = _cell(setup, n, d, sigma)
    world = NieWagerConfig(setup=setup, n=n, d=d, sigma=sigma)
    train = nie_wager_logged_data(stream(seed, "train", name), world)
    test = nie_wager_logged_data(stream(seed, "test", name), world)
    tau = test.truth.mu_value[:, 1] - test.truth.mu_value[:, 0]
    transform, mean, scale = feature_basis(train.x, cfg.basis)
    f_train, f_test = transform(train.x), transform(test.x)
    prop = (train.action_prob if cfg.propensity == "true" else
            _estimated_propensity(f_train, train.action, stream(seed, "propensity", name)))
    c = _Cell(setup, train, f_train, f_test, test.x, prop, mean, scale)
    rows = []
    key = dict(setup=setup, n=n, d=d, sigma=sigma, seed=seed)
    for learner in cfg.learners:
        t0 = time.perf_counter()
        tau_hat = _fit_predict(cfg, learner, seed, c)
        seconds = time.perf_counter() - t0
        rows.append({**key, "learner": learner, "metric": "mse",
                     "value": float(np.mean((tau_hat - tau) ** 2))})
        rows.append({**key, "learner": learner, "metric": "fit_seconds", "value": seconds})
    return rows


def run(cfg: NieWagerSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows ``(setup, n, d, sigma, learner, seed, metric, value)``, metrics ``mse`` (the
    test-sample MSE of ``tau``) and ``fit_seconds`` (fit and predict, including compilation the
    first time a shape is seen), one run of the paper per grid cell."""
    cells = list(itertools.product(cfg.setups, cfg.ns, cfg.ds, cfg.sigmas))
    rows: list[dict[str, Any]] = []
    for cell in tqdm(cells, desc=f"nie_wager seed {seed}", disable=quiet_bar(progress),
                     leave=False):
        rows += _cell_rows(cfg, seed, *cell)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- tables, figures
_KEYS = ["setup", "n", "d", "sigma", "learner"]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell and learner: the mean test MSE over seeds (runs), its standard error, the count,
    the mean fit time, the paper's method and its published lasso and boost means there."""
    mse = df[df.metric == "mse"]
    out = mean_se(mse, _KEYS)
    secs = df[df.metric == "fit_seconds"].groupby(_KEYS)["value"].mean().rename("fit_seconds")
    out = out.merge(secs.reset_index(), on=_KEYS, how="left")
    out["method"] = [NW_LEARNERS[lr].method if lr in NW_LEARNERS else None
                     for lr in out.learner]
    for fam in ("lasso", "boost"):
        out[f"published_{fam}"] = [
            published(fam, m, s, n, d, sg) if m else math.nan
            for m, s, n, d, sg in zip(out.method, out.setup, out.n, out.d, out.sigma,
                                      strict=True)]
    order = {lr: i for i, lr in enumerate(NW_LEARNERS)}
    out = out.assign(_o=out.learner.map(order).fillna(len(order)))
    return out.sort_values(["setup", "n", "d", "sigma", "_o"]).drop(columns="_o").reset_index(
        drop=True)


def _fmt(mean: float, se: float) -> str:
    return f"{mean:.3f} ± {se:.3f}"


def _verdicts(s: pd.DataFrame) -> list[str]:
    """Per learner: cells where ours is below / above its published counterpart of the same
    family by more than two standard errors, and the rest."""
    lines = ["| learner | published column | ours lower (> 2 s.e.) | ours higher (> 2 s.e.) | "
             "within 2 s.e. | mean ratio ours / published |", "|---|---|---|---|---|---|"]
    for lr, g in s.groupby("learner", sort=False):
        fam = family(lr)
        pub = g[f"published_{fam}"]
        ok = pub.notna()
        if not ok.any():
            continue
        g, pub = g[ok], pub[ok]
        lower = int((g["mean"] + 2 * g.se < pub).sum())
        higher = int((g["mean"] - 2 * g.se > pub).sum())
        ratio = float(np.exp(np.mean(np.log(g["mean"] / pub))))
        lines.append(f"| {lr} | {NW_LEARNERS[lr].method} ({fam}) | {lower} | {higher} | "
                     f"{len(g) - lower - higher} | {ratio:.2f} |")
    return lines


def _table(s: pd.DataFrame, fam: str) -> list[str]:
    ours = [lr for lr in NW_LEARNERS if family(lr) == fam and lr in set(s.learner)]
    if not ours:
        return []
    methods = [m for m in PUBLISHED_METHODS[fam] if m != "U"]
    by_method = {NW_LEARNERS[lr].method: lr for lr in ours if NW_LEARNERS[lr].method}
    cols = []  # (header, kind, name)
    for m in methods:
        if m in by_method:
            cols.append((by_method[m], "ours", by_method[m]))
        cols.append((f"{m} (published)", "pub", m))
    cols += [(lr, "ours", lr) for lr in ours if NW_LEARNERS[lr].method is None]
    lines = [f"### {fam}: ours beside the published {fam} means", "",
             "| setup | n | d | sigma | " + " | ".join(h for h, _, _ in cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for (setup, n, d, sg), g in s.groupby(["setup", "n", "d", "sigma"], sort=True):
        cells = {r.learner: _fmt(r["mean"], r.se) for _, r in g.iterrows()}
        vals = []
        for _, kind, name in cols:
            if kind == "ours":
                vals.append(cells.get(name, ""))
            else:
                v = published(fam, name, setup, n, d, sg)
                vals.append("" if math.isnan(v) else f"{v:.3f}")
        lines.append(f"| {setup} | {n} | {d} | {sg:g} | " + " | ".join(vals) + " |")
    return [*lines, ""]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``nie_wager.csv`` (all rows), ``nie_wager.md`` (ours beside the published means, the
    verdict per learner), the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / "nie_wager.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    seeds = sorted(df.seed.unique().tolist()) if "seed" in df else []
    lines = ["## Nie & Wager (2021), Section 6: test-sample MSE of tau", "",
             f"Ours: mean ± s.e. over {len(seeds)} runs (seeds). Published: the authors' means "
             "(experiments_for_paper/output_lasso.csv, output_boost.csv in github.com/xnie/"
             "rlearner; 500 runs for lasso, 200 for boost). Ridge learners stand beside the "
             "lasso column, LightGBM ones beside the boost column (module docstring of "
             "experiments/suites/nie_wager.py: basis, penalty and propensity differ).", "",
             "Reproduce: `python -m experiments.run experiment=nie_wager "
             f"'seeds=[{','.join(str(x) for x in seeds)}]'`", "", "### verdict per learner", "",
             *_verdicts(s), "", *_table(s, "lasso"), *_table(s, "boost")]
    md = out_dir / "nie_wager.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


_FAMILY_BASE = {"lasso": "ridge", "boost": "lgbm"}


def _series_label(learner: str) -> str:
    """The figure label of a learner: the meta-learner variant ``t@ridge`` / ``r@lgbm`` (the
    shared style's variant rule gives it the meta-learner's colour, so our R and the published
    R share a colour), ``oracle`` as is."""
    if "_" not in learner:
        return learner
    meta, base = learner.rsplit("_", 1)
    return f"{meta}@{base}"


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``nie_wager_mse.png``: a panel per setup (columns) and per family and ``(n, d)`` (rows:
    our ridge learners beside the published lasso, then our LightGBM learners beside the
    published boosting) of test MSE against sigma (log-log): ours as lines with s.e. bars
    (``oracle`` in the ridge rows), the published R- and T-learner means as dotted lines with
    crosses in the colour of our R and T."""
    plt = pyplot()
    s = summary(df)
    setups = [x for x in SETUPS if x in set(s.setup)]
    nds = sorted({(int(n), int(d)) for n, d in zip(s.n, s.d, strict=True)})
    sigmas = sorted(s.sigma.unique())
    fams = [f for f in ("lasso", "boost") if any(family(lr) == f for lr in set(s.learner))]
    panel_rows = [(f, n, d) for f in fams for n, d in nds]
    fig, axes = plt.subplots(len(panel_rows), len(setups),
                             figsize=(4.2 * len(setups), 3.4 * len(panel_rows)), squeeze=False)
    learners = [lr for lr in NW_LEARNERS if lr in set(s.learner)]
    learners += sorted(set(s.learner) - set(learners))
    for i, (fam, n, d) in enumerate(panel_rows):
        for j, setup in enumerate(setups):
            ax = axes[i][j]
            cell = s[(s.setup == setup) & (s.n == n) & (s.d == d)]
            for lr in learners:
                g = cell[cell.learner == lr].sort_values("sigma")
                if family(lr) != fam or g.empty:
                    continue
                label = _series_label(lr)
                ax.errorbar(g.sigma, g["mean"], yerr=g.se, capsize=3, label=label,
                            **series_style(label))
            for method in ("R", "T"):
                ys = [published(fam, method, setup, n, d, sg) for sg in sigmas]
                if not all(math.isnan(y) for y in ys):
                    ax.plot(sigmas, ys, ls=":", lw=1.4, marker="x", ms=8,
                            color=series_style(method.lower())["color"],
                            label=f"published {method} ({fam})")
            log_axis(ax, "x", sigmas)
            log_axis(ax, "y")
            ax.set_xlabel("noise sigma")
            ax.set_ylabel("test MSE of tau")
            ax.set_title(f"{setup}, n = {n}, d = {d}: {_FAMILY_BASE[fam]} vs {fam}", fontsize=10)
            ax.grid(alpha=0.3)
    figure_legend(fig, axes)
    return [save(fig, Path(out_dir), "nie_wager_mse.png")]


SUITE = Suite(name="nie_wager", config_class=NieWagerSuiteConfig, run=run, plot=plot,
              write=write_results, summary=summary, key_columns=tuple(_KEYS),
              result_seeds=tuple(range(50)))
