"""How the TARNet defaults of :mod:`estimators.tarnet` were chosen: PEHE (and mean effect bias)
of TARNet configurations against the ridge T-learner on the default world, several seeds.

Run ``python -m experiments.tarnet_tuning`` (about 8 minutes on 2 cores) or ``--sweep`` (the
configuration sweep, about 5 minutes); the measured tables are in :mod:`estimators.tarnet`'s
docstring. Lives in ``experiments/`` because it simulates worlds (``estimators/`` never imports
``simulators/``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from estimators.tarnet import COST_CONFIG, VALUE_CONFIG, TARNet, TARNetConfig  # noqa: F401

# ---------------------------------------------------------------------------------------------
# benchmark (python -m estimators.tarnet): the measurements behind the defaults
# ---------------------------------------------------------------------------------------------


def _benchmark_rows() -> list[tuple[str, str, str, Any]]:
    """(logging, label, name, learner factory) of the table in the module docstring. Every
    TARNet row is ``TARNetConfig()`` with only the named fields changed."""
    from estimators.base import Ridge
    from estimators.uplift import TLearner

    def tarnet(**changes: Any) -> Any:
        return lambda: TARNet(dataclasses.replace(TARNetConfig(), **changes))

    def ridge(alpha: float, ipw: bool) -> Any:
        return lambda: TLearner(base=Ridge(alpha=alpha), weight_by_propensity=ipw)

    value = [("mse", {"loss": "mse"}), ("huber 1", {"loss": "huber", "huber_delta": 1.0}),
             ("huber 2", {"loss": "huber", "huber_delta": 2.0}), ("ziln", {"loss": "ziln"}),
             ("DragonNet huber 2", {"loss": "huber", "huber_delta": 2.0,
                                           "propensity_weight": 1.0})]
    cost = [("mse", {"loss": "mse"}), ("huber 2", {"loss": "huber", "huber_delta": 2.0})]
    rows: list[tuple[str, str, str, Any]] = []
    for logging in ("uniform", "epsilon_greedy"):
        for label, alpha, models in (("value", 100.0, value), ("cost", 1.0, cost)):
            for ipw in (False, True):
                tag = ", IPW" if ipw else ""
                rows.append((logging, label, f"ridge T (alpha={alpha:g}){tag}", ridge(alpha, ipw)))
                for name, changes in models:
                    full = name if name.startswith("DragonNet") else f"TARNet {name}"
                    rows.append((logging, label, full + tag,
                                 tarnet(**changes, weight_by_propensity=ipw)))
    return rows


def _sweep_rows() -> list[tuple[str, str, str, Any]]:
    """One-field changes of ``TARNetConfig()`` (uniform logging, value head), plus the
    T-learner on :class:`estimators.base.MLP` at its defaults and a TARNet with the MLP's
    training settings (what the defaults were chosen against)."""
    from estimators.base import MLP
    from estimators.uplift import TLearner

    def tarnet(**changes: Any) -> Any:
        return lambda: TARNet(dataclasses.replace(TARNetConfig(), **changes))

    changes: list[tuple[str, dict[str, Any]]] = [
        ("target_scaling='per_arm'", {"target_scaling": "per_arm"}),
        ("target_scaling='none'", {"target_scaling": "none"}),
        ("activation='relu'", {"activation": "relu"}),
        ("trunk=(64, 64), head=(32,)", {"trunk": (64, 64), "head": (32,)}),
        ("trunk=(32,)", {"trunk": (32,)}),
        ("head=()", {"head": ()}),
        ("weight_decay=0.3", {"weight_decay": 0.3}),
        ("weight_decay=3", {"weight_decay": 3.0}),
        ("learning_rate=1e-3", {"learning_rate": 1e-3}),
        ("batch_size=1024", {"batch_size": 1024}),
        ("patience=20", {"patience": 20}),
        ("huber_delta=4", {"huber_delta": 4.0}),
        ("seed=1", {"seed": 1}),
        ("MLP settings",
         {"trunk": (64, 64), "head": (32,), "learning_rate": 1e-3, "weight_decay": 1e-4,
          "loss": "mse"}),
    ]
    rows = [("uniform", "value", "T-learner, base.MLP() defaults",
             lambda: TLearner(base=MLP()))]
    rows += [("uniform", "value", f"TARNet {name}", tarnet(**kw)) for name, kw in changes]
    return rows


def benchmark(seeds: tuple[int, ...] = (0, 1, 2), n: int = 20_000,
              only: str | None = None, sweep: bool = False) -> list[str]:
    """PEHE (and mean effect bias) of the rows of :func:`_benchmark_rows` on the default world:
    training log ``simulate(key(s), ..., n, logging)``, evaluation users
    ``simulate(key(1000 + s), ..., n, uniform)`` (truth does not depend on the logger),
    ``pehe(tau, truth, ev.eligible)``; mean +- s.e. over ``seeds``. Prints and returns the
    table lines. ``only`` filters row names by substring; ``sweep`` runs :func:`_sweep_rows`
    instead of :func:`_benchmark_rows`."""
    import time

    from estimators.metrics import pehe
    from simulators import LoggingConfig, WorldConfig, default_params, simulate

    world = WorldConfig()
    params = default_params(world)
    configs = {"uniform": LoggingConfig(kind="uniform"),
               "epsilon_greedy": LoggingConfig(kind="epsilon_greedy", epsilon=0.2)}
    if sweep:
        configs = {"uniform": configs["uniform"]}
    data = {(lg, s): (simulate(jax.random.key(s), params, world, n, cfg),
                      simulate(jax.random.key(1000 + s), params, world, n, configs["uniform"]))
            for lg, cfg in configs.items() for s in seeds}
    lines = ["| logging | head | learner | PEHE | mean bias | fit s |",
             "| --- | --- | --- | --- | --- | --- |"]
    print("\n".join(lines), flush=True)
    for logging, label, name, make in (_sweep_rows() if sweep else _benchmark_rows()):
        if only is not None and only not in name:
            continue
        scores, biases, times = [], [], []
        for s in seeds:
            log, ev = data[(logging, s)]
            y = log.value if label == "value" else log.cost
            truth = np.asarray(ev.truth.tau_value if label == "value" else ev.truth.tau_cost)
            start = time.perf_counter()
            learner = make().fit(log.x, log.action, y, log.action_prob, world.n_actions)
            tau = np.asarray(learner.predict_tau(ev.x))
            times.append(time.perf_counter() - start)
            scores.append(pehe(tau, truth, ev.eligible))
            cells = np.asarray(ev.eligible)[:, 1:]
            biases.append(float(np.mean((tau - truth)[:, 1:][cells])))
        sc, bi = np.array(scores), np.array(biases)
        se = sc.std(ddof=1) / np.sqrt(len(sc)) if len(sc) > 1 else float("nan")
        bse = bi.std(ddof=1) / np.sqrt(len(bi)) if len(bi) > 1 else float("nan")
        shown = "eps-greedy" if logging == "epsilon_greedy" else logging
        line = (f"| {shown} | {label} | {name} | {sc.mean():.3f} +- {se:.3f} | "
                f"{bi.mean():+.3f} +- {bse:.3f} | {np.median(times):.1f} |")
        lines.append(line)
        print(line, flush=True)
    return lines


if __name__ == "__main__":  # pragma: no cover
    import argparse

    parser = argparse.ArgumentParser(description="TARNet vs ridge T-learner on the default world")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--only", default=None)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    benchmark(tuple(int(s) for s in args.seeds.split(",")), args.n, args.only, args.sweep)
