"""Nonlinear worlds against EconML's boosted DR-learner (``-m perf --benchmark-enable -s``).

Target (issue 11): on nonlinear synthetic worlds, Nie & Wager setups A-D and the default world,
the default learner's PEHE at or below EconML's ``DRLearner`` with GradientBoosting propensity,
outcome and final models, at >= 10x its speed (fit + predict, same machine, same run). Measured
and printed here, not asserted (only sanity is asserted: shapes, finite PEHE).

* **Nie & Wager A-D** (:mod:`simulators.nie_wager`, n = 2,000 training users, d = 6, sigma = 1,
  :data:`NW_SEEDS` seeds, :data:`NW_EVAL` fresh evaluation users with the exact ``tau``). Two
  rows of ours: the default value head ``HeadsConfig().value`` (five TARNets with inverse-propensity
  row weights on the logged ``e(x)``, raw features), and the learner the ``nie_wager`` suite
  finds best on these signed outcomes: its ``r_ridge``, the R-learner on the quadratic
  basis with every ridge penalty chosen by GCV (README, "Literature and semi-synthetic worlds":
  the paper's best method, below T where the nuisance is hard), through the suite's own
  ``_fit_predict`` with its default ``propensity="true"`` (the logged ``e(x)``). Its time
  includes building the basis. Beside it, like for like on the propensity (EconML estimates
  its own), ``r_ridge`` with the suite's ``"estimated"`` propensity (2-fold cross-fitted
  logistic on the basis, clipped to [0.01, 0.99]), its fit timed too.
* **Default world, value head** (``simulate`` / ``default_params``, K = 4 offers + no offer,
  uniform logging, :data:`DW_N` training users, :data:`DW_SEEDS` seeds, :data:`DW_EVAL` fresh
  evaluation users, truth ``tau_value``): the K-arm default head ``HeadsConfig().value`` (the
  five-TARNet value head, rows weighted by the logged propensity) against
  EconML's multi-treatment ``DRLearner`` on the categorical action (``effect(T0=0, T1=k)`` per
  offer), PEHE over the eligible offer cells (:func:`estimators.metrics.pehe`). EconML is not
  told who is eligible for which offer: its propensity model has to learn it.

EconML: ``DRLearner(model_propensity=GradientBoostingClassifier(),
model_regression=GradientBoostingRegressor(), model_final=GradientBoostingRegressor())``, all
else default (2-fold cross-fitting, propensities fitted, ``random_state=0`` for repeatability),
fit + effect timed once per seed. Ours: the first call of the first seed (JAX compilation
included) timed separately, then fit + predict over all seeds benchmarked (min of 3 rounds);
the speed ratio is EconML's time per fit over ours, warm (and, in brackets, over our first call,
compilation included; it depends on what is already compiled: earlier tests of the same
shapes and the persistent compilation cache of ``tests/conftest.py``).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np
import pytest

from estimators.heads import HeadsConfig, make_learner
from estimators.metrics import pehe
from experiments.suites.base import stream
from experiments.suites.nie_wager import (
    NieWagerSuiteConfig,
    _Cell,
    _estimated_propensity,
    _fit_predict,
    feature_basis,
)
from simulators import LoggingConfig, WorldConfig, default_params, simulate
from simulators.nie_wager import NieWagerConfig, nie_wager_logged_data

pytestmark = pytest.mark.perf

NW_N, NW_D, NW_SIGMA, NW_EVAL, NW_SEEDS = 2_000, 6, 1.0, 10_000, 5
DW_N, DW_EVAL, DW_SEEDS = 10_000, 20_000, 2
WORLD = WorldConfig()  # the default world: d = 10, K = 4

_ROWS: dict[str, dict[str, Any]] = {}  # world -> measured row, printed as one table at the end


def _econml_dr():
    econml_dr = pytest.importorskip("econml.dr")
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    return econml_dr.DRLearner(model_propensity=GradientBoostingClassifier(),
                               model_regression=GradientBoostingRegressor(),
                               model_final=GradientBoostingRegressor(), random_state=0)


def _mean_se(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0


def _record(world: str, n: int, seeds: int, ours: str, p_ours: list[float],
            t_ours: float, t_cold: float, p_econ: list[float], t_econ: float,
            extra: dict[str, Any] | None = None) -> None:
    """Store and print one world's row; times are totals over the seeds."""
    row = dict(world=world, n=n, seeds=seeds, ours=ours, pehe_ours=_mean_se(p_ours),
               pehe_econ=_mean_se(p_econ), t_ours=t_ours, t_cold=t_cold, t_econ=t_econ,
               **(extra or {}))
    _ROWS[world] = row
    print(f"\n{_line(row)}")


def _fmt(ms: tuple[float, float]) -> str:
    return f"{ms[0]:.4f} ± {ms[1]:.4f}"


def _line(r: dict[str, Any]) -> str:
    s = r["seeds"]
    line = (f"| {r['world']} | {r['n']} | {s} | {r['ours']} | {_fmt(r['pehe_ours'])} | "
            f"{_fmt(r['pehe_econ'])} | {r['pehe_ours'][0] / r['pehe_econ'][0]:.3f} | "
            f"{1e3 * r['t_ours'] / s:.1f} | {1e3 * r['t_cold']:.0f} | "
            f"{1e3 * r['t_econ'] / s:.0f} | {r['t_econ'] / r['t_ours']:.1f}x "
            f"({r['t_econ'] / s / r['t_cold']:.1f}x) |")
    for key in ("est", "default"):
        if key not in r:
            continue
        e = r[key]
        cold = f"{1e3 * e['t_cold']:.0f}" if "t_cold" in e else ""
        line += (f"\n| {r['world']} | {r['n']} | {s} | {e['label']} | "
                 f"{_fmt(e['pehe'])} | {_fmt(r['pehe_econ'])} | "
                 f"{e['pehe'][0] / r['pehe_econ'][0]:.3f} | {1e3 * e['t'] / s:.1f} | {cold} | "
                 f"{1e3 * r['t_econ'] / s:.0f} | {r['t_econ'] / e['t']:.1f}x |")
    return line


_HEADER = ("| world | n train | seeds | ours | PEHE ours | PEHE EconML | ours / EconML | "
           "ours ms/fit (warm) | ours first call ms (compile) | EconML ms/fit | "
           "speed-up warm (first call) |\n|---|---|---|---|---|---|---|---|---|---|---|")


@pytest.fixture(scope="module", autouse=True)
def _table():
    yield
    if _ROWS:
        print("\n\nNonlinear worlds vs EconML DRLearner(GBC, GBR, GBR): PEHE mean ± s.e. over "
              "seeds; times per fit + predict (ours warm: min of 3 rounds)\n" + _HEADER)
        for r in _ROWS.values():
            print(_line(r))
        print("first call: the first fit + predict of the world in this process, compilation "
              "included; compiled code is shared across the tests (a world whose shapes an "
              "earlier one compiled pays little) and tests/conftest.py's persistent JAX cache "
              "makes it cheaper on a rerun\ntargets (issue 11): PEHE ours <= EconML (ratio <= 1) "
              "and speed-up >= 10x")


# ------------------------------------------------------------------------ Nie & Wager A-D
def _nw_draws(setup: str, seed: int):
    name = f"perf_econml/{setup}/n={NW_N}/d={NW_D}/sigma={NW_SIGMA:g}"
    train = nie_wager_logged_data(stream(seed, "train", name),
                                  NieWagerConfig(setup=setup, n=NW_N, d=NW_D, sigma=NW_SIGMA))
    test = nie_wager_logged_data(stream(seed, "test", name),
                                 NieWagerConfig(setup=setup, n=NW_EVAL, d=NW_D, sigma=NW_SIGMA))
    tau = np.asarray(test.truth.mu_value[:, 1] - test.truth.mu_value[:, 0])
    return train, test, tau


def _r_ridge(setup: str, seed: int, train: Any, test: Any, estimated: bool) -> np.ndarray:
    """The suite's ``r_ridge`` end to end: basis on the training ``x``, (estimated)
    propensity, GCV-penalised R-learner, ``tau_hat`` on the evaluation users."""
    transform, mean, scale = feature_basis(train.x, "quadratic")
    f_train, f_test = transform(train.x), transform(test.x)
    prop = (_estimated_propensity(f_train, train.action, stream(seed, "propensity", setup))
            if estimated else train.action_prob)
    cell = _Cell(setup, train, f_train, f_test, test.x, prop, mean, scale)
    return _fit_predict(NieWagerSuiteConfig(), "r_ridge", seed, cell)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _pehe1(tau_hat: np.ndarray, tau: np.ndarray) -> float:
    z = np.zeros_like(tau)
    return pehe(np.column_stack([z, tau_hat]), np.column_stack([z, tau]))


@pytest.mark.parametrize("setup", ["A", "B", "C", "D"])
def test_nie_wager_vs_econml(benchmark, setup):
    _econml_dr()  # skips without econml
    draws = [_nw_draws(setup, s) for s in range(NW_SEEDS)]

    t0 = time.perf_counter()
    _r_ridge(setup, 0, *draws[0][:2], estimated=False)  # first call: compiles these shapes
    t_cold = time.perf_counter() - t0
    _r_ridge(setup, 0, *draws[0][:2], estimated=True)  # warm the estimated-propensity path

    def ours(estimated: bool = False):
        return [_r_ridge(setup, s, tr, te, estimated) for s, (tr, te, _) in enumerate(draws)]

    taus = benchmark.pedantic(ours, rounds=3, iterations=1)
    t_ours = benchmark.stats.stats.min
    est_runs = [_timed(lambda: ours(True)) for _ in range(3)]
    taus_est, t_est = est_runs[0][0], min(t for _, t in est_runs)

    def default_head(train: Any, test: Any) -> np.ndarray:
        head = make_learner(HeadsConfig().value)
        head.fit(train.x, train.action, train.value, train.action_prob, 2)
        return np.asarray(jax.block_until_ready(head.predict_tau(test.x)))[:, 1]

    _, t_cold_default = _timed(lambda: default_head(*draws[0][:2]))  # compiles these shapes
    default_runs = [_timed(lambda: [default_head(tr, te) for tr, te, _ in draws])
                    for _ in range(3)]
    taus_default, t_default = default_runs[0][0], min(t for _, t in default_runs)

    taus_econ, t_econ = [], 0.0
    for train, test, _ in draws:
        est = _econml_dr()
        t0 = time.perf_counter()
        est.fit(np.asarray(train.value), np.asarray(train.action), X=np.asarray(train.x))
        taus_econ.append(np.asarray(est.effect(np.asarray(test.x))))
        t_econ += time.perf_counter() - t0

    for th in (*taus, *taus_est, *taus_default, *taus_econ):
        assert th.shape == (NW_EVAL,)
    p_ours = [_pehe1(th, tau) for th, (_, _, tau) in zip(taus, draws, strict=True)]
    p_est = [_pehe1(th, tau) for th, (_, _, tau) in zip(taus_est, draws, strict=True)]
    p_default = [_pehe1(th, tau) for th, (_, _, tau) in zip(taus_default, draws, strict=True)]
    p_econ = [_pehe1(th, tau) for th, (_, _, tau) in zip(taus_econ, draws, strict=True)]
    assert np.all(np.isfinite(p_ours + p_est + p_default + p_econ))
    _record(f"nie_wager_{setup.lower()}", NW_N, NW_SEEDS, "r_ridge (quadratic, GCV), true e",
            p_ours, t_ours, t_cold, p_econ, t_econ,
            extra={"est": {"label": "r_ridge (quadratic, GCV), estimated e",
                           "pehe": _mean_se(p_est), "t": t_est},
                   "default": {"label": "default value head (five TARNets, IPW rows), true e",
                               "pehe": _mean_se(p_default), "t": t_default,
                               "t_cold": t_cold_default}})


# -------------------------------------------------------------- default world, value head
def test_default_world_value_head_vs_econml(benchmark):
    _econml_dr()  # skips without econml
    params = default_params(WORLD)
    logs = [(simulate(jax.random.key(100 + s), params, WORLD, DW_N, LoggingConfig(kind="uniform")),
             simulate(jax.random.key(200 + s), params, WORLD, DW_EVAL,
                      LoggingConfig(kind="uniform"))) for s in range(DW_SEEDS)]

    def fit_predict(train, evaluation) -> np.ndarray:
        head = make_learner(HeadsConfig().value)
        head.fit(train.x, train.action, train.value, train.action_prob, WORLD.n_actions)
        return np.asarray(jax.block_until_ready(head.predict_tau(evaluation.x)))

    _, t_cold = _timed(lambda: fit_predict(*logs[0]))  # first call: compiles these shapes
    taus = benchmark.pedantic(lambda: [fit_predict(tr, ev) for tr, ev in logs], rounds=3,
                              iterations=1)
    t_ours = benchmark.stats.stats.min

    taus_econ, t_econ = [], 0.0
    for train, evaluation in logs:
        est = _econml_dr()
        xe = np.asarray(evaluation.x)
        t0 = time.perf_counter()
        est.fit(np.asarray(train.value), np.asarray(train.action), X=np.asarray(train.x))
        tau = np.column_stack([np.zeros(len(xe))] + [
            np.asarray(est.effect(xe, T0=0, T1=k)) for k in range(1, WORLD.n_actions)])
        t_econ += time.perf_counter() - t0
        taus_econ.append(tau)

    for th in (*taus, *taus_econ):
        assert th.shape == (DW_EVAL, WORLD.n_actions)
    p_ours = [pehe(th, np.asarray(ev.truth.tau_value), ev.eligible)
              for th, (_, ev) in zip(taus, logs, strict=True)]
    p_econ = [pehe(th, np.asarray(ev.truth.tau_value), ev.eligible)
              for th, (_, ev) in zip(taus_econ, logs, strict=True)]
    assert np.all(np.isfinite(p_ours + p_econ))
    _record("default (value head, K=4)", DW_N, DW_SEEDS,
            "HeadsConfig().value (five TARNets, IPW rows)",
            p_ours, t_ours, t_cold, p_econ, t_econ)
