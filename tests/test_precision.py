"""No global side effect on import, float64 where it matters: in a fresh interpreter with JAX's
default 32-bit mode, importing every allocbench package leaves ``jax_enable_x64`` off, and the
public functions still compute in float64 (same results as a process running with x64 on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import numpy as np
import jax
X64 = sys.argv[1] == "on"
if X64:
    jax.config.update("jax_enable_x64", True)
import estimators, policies, simulators, experiments  # noqa: F401
import estimators.ope, estimators.uplift, estimators.heads, estimators.calibration  # noqa: F401
import estimators.metrics, estimators.bayes, estimators.ope_qhat, estimators.crossfit  # noqa: F401
import policies.allocation, policies.frontier, policies.exploration  # noqa: F401
import experiments.run, experiments.main_benchmark  # noqa: F401
after_import = bool(jax.config.jax_enable_x64)
from simulators import WorldConfig, LoggingConfig, default_params, simulate, policy_truth
from estimators.heads import HeadsConfig, make_heads
from estimators.ope import estimate
from policies.allocation import allocate
world = WorldConfig()
params = default_params(world)
log = simulate(jax.random.key(0), params, world, 3000, LoggingConfig())
heads = make_heads(HeadsConfig()).fit(log.x, log.action, value=log.value, cost=log.cost,
                                      action_prob=log.action_prob, n_actions=world.n_actions)
tv, tc = (np.asarray(t) for t in heads.predict_tau(log.x))
alloc = allocate(tv, tc, budget=1.0 * log.n, eligible=log.eligible)
dist = np.asarray(alloc.action_dist)
truth = policy_truth(log.truth, dist, eligible=log.eligible)
mu_v, _ = heads.predict_mu(log.x)
est = estimate("dr", reward=log.value, action=log.action, pscore=log.pscore, action_dist=dist,
               q_hat=np.asarray(mu_v))
print(json.dumps({
    "after_import": after_import,
    "after_calls": bool(jax.config.jax_enable_x64),
    "dtypes": [str(np.asarray(log.value).dtype), str(np.asarray(tv).dtype),
               str(np.asarray(alloc.action_dist).dtype)],
    "x_sum": float(np.asarray(log.x, np.float64).sum()),
    "value_sum": float(np.asarray(log.value, np.float64).sum()),
    "tau": float(tv.sum()),
    "truth": float(truth.incremental_value),
    "dr": float(est.value), "dr_se": float(est.stderr),
}))
"""


def _run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_switches_nothing_and_results_are_float64_without_x64():
    off, on = _run("off"), _run("on")
    assert off["after_import"] is False and off["after_calls"] is False
    assert on["after_import"] is True
    assert off["dtypes"] == ["float64", "float64", "float64"], off["dtypes"]
    for key in ("x_sum", "value_sum", "tau", "truth", "dr", "dr_se"):
        assert abs(off[key] - on[key]) <= 1e-9 * max(1.0, abs(on[key])), (key, off, on)
