"""True regret of learned cost-aware policies on the default world, per pair of heads (README,
"Default heads, chosen by benchmark").

``python -m experiments.heads_regret N BUDGETS N_SEEDS HEADS [LOGGING]``, e.g.
``python -m experiments.heads_regret 20000 1.0,0.05 3 ridge,hurdle,tarnet_v``: training log
``simulate(key(100 + s))`` of N users under LOGGING (default uniform), evaluation on 20,000
independent users ``simulate(key(200 + s))``, the exact allocator on each pair's predictions and on
the truth (the oracle); prints regret (1 - incremental value / the oracle's), true incremental
cost / budget, value-head PEHE and fit time, mean ± s.e. over seeds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np
from omegaconf import OmegaConf

from estimators.heads import (
    HURDLE_COST_HEAD,
    HURDLE_VALUE_HEAD,
    ONE_NET_HEADS,
    HeadConfig,
    HeadsConfig,
    make_learner,
)
from estimators.metrics import pehe
from policies.allocation import allocate
from simulators import LoggingConfig, WorldConfig, default_params, policy_truth, simulate
from simulators.oracle import optimal_policy

_PRESETS = Path(__file__).resolve().parents[1] / "conf" / "learner"


def _preset(name: str) -> tuple[HeadConfig, HeadConfig]:
    """The (value, cost) heads of the ``learner=<name>`` preset, read from its conf file."""
    heads = HeadsConfig(**OmegaConf.to_container(OmegaConf.load(_PRESETS / f"{name}.yaml")))
    return heads.value, heads.cost


HEADS: dict[str, tuple[HeadConfig, HeadConfig]] = {
    "ridge": (HeadConfig(alpha=100.0), HeadConfig(alpha=1.0)),
    "hurdle": (HURDLE_VALUE_HEAD, HURDLE_COST_HEAD),
    "hurdle_lgbm": (HeadConfig(learner="hurdle", base="lightgbm"),
                    HeadConfig(learner="hurdle", base="lightgbm", hurdle_amount="constant")),
    "t_lgbm": (HeadConfig(base="lightgbm"), HeadConfig(base="lightgbm")),
    "tarnet": (HeadConfig(learner="tarnet"), HeadConfig(learner="tarnet")),
    "tarnet_v": (HeadConfig(learner="tarnet"), HURDLE_COST_HEAD),
    "hurdle_ipw": _preset("hurdle_ipw"),
    "dr_ridge": (HeadConfig(learner="dr", alpha=100.0), HeadConfig(learner="dr")),
    "tarnet_v_ipw": _preset("tarnet_value"),  # the default: five nets
    "tarnet_v_ipw_1": (ONE_NET_HEADS.value, ONE_NET_HEADS.cost),  # one net (stop 26's default)
}


def main(n: int, budgets: list[float], n_seeds: int, names: list[str],
         kind: str = "uniform") -> None:
    world = WorldConfig()
    params = default_params(world)
    logging = LoggingConfig(kind=kind) if kind == "uniform" else LoggingConfig(kind=kind,
                                                                               epsilon=0.2)
    out: dict[tuple[str, float], list[tuple[float, ...]]] = {}
    for s in range(n_seeds):
        log = simulate(jax.random.key(100 + s), params, world, n, logging)
        ev = simulate(jax.random.key(200 + s), params, world, 20_000,
                      LoggingConfig(kind="uniform"))
        oracle = {b: policy_truth(ev.truth, np.asarray(optimal_policy(
            ev.truth, b * ev.n, eligible=ev.eligible).action_dist), eligible=ev.eligible)
            for b in budgets}
        for name in names:
            value_head, cost_head = (make_learner(c) for c in HEADS[name])
            t0 = time.perf_counter()
            value_head.fit(log.x, log.action, log.value, log.action_prob, world.n_actions)
            cost_head.fit(log.x, log.action, log.cost, log.action_prob, world.n_actions)
            tv = np.asarray(value_head.predict_tau(ev.x))
            tc = np.asarray(cost_head.predict_tau(ev.x))
            seconds = time.perf_counter() - t0
            pehe_value = pehe(tv, np.asarray(ev.truth.tau_value), ev.eligible)
            for b in budgets:
                alloc = allocate(tv, tc, budget=b * ev.n, eligible=ev.eligible)
                t = policy_truth(ev.truth, np.asarray(alloc.action_dist), eligible=ev.eligible)
                regret = 1 - t.incremental_value / oracle[b].incremental_value
                out.setdefault((name, b), []).append(
                    (regret, t.incremental_cost / b, pehe_value, seconds))
    for (name, b), rows in out.items():
        v = np.array(rows)
        se = v[:, 0].std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        print(f"{name:12s} budget {b:5.2f}: regret {100 * v[:, 0].mean():5.1f}% ± {100 * se:.1f}"
              f"  cost/budget {v[:, 1].mean():.3f}  value PEHE {v[:, 2].mean():.3f}"
              f"  fit {v[:, 3].mean():.1f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]), [float(b) for b in sys.argv[2].split(",")], int(sys.argv[3]),
         sys.argv[4].split(","), *(sys.argv[5:6]))
