"""The OPE entry points compute in float64 in a process that never switched ``jax_enable_x64``
on: every public function of :mod:`estimators.ope` (the single, batched and chunked passes, the
bootstrap, paired differences and the ROI ratio), called in a fresh x64-off interpreter, returns
the same numbers as in this (x64-on) test session, and leaves the process setting off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

REPO = Path(__file__).resolve().parents[1]

# Inputs chosen so that float32 arithmetic would show: rewards near 1e4 with spread ~0.3 (a
# float32 sum is off by ~1e-7 relative, a float32 variance loses most of its digits).
CASES = r'''
import numpy as np
import jax
from estimators import ope


def run():
    rng = np.random.default_rng(0)
    n, k1, s = 3_000, 4, 3
    logging = rng.dirichlet(np.ones(k1) * 3, size=(s, n))
    action = (logging.cumsum(-1) > rng.random((s, n, 1))).argmax(-1)
    pscore = np.take_along_axis(logging, action[..., None], -1)[..., 0]
    target = rng.dirichlet(np.ones(k1), size=(s, n))
    reward = 1e4 + rng.random((s, n))
    q_hat = 1e4 + rng.random((s, n, k1))
    cost = (action > 0) * (1.0 + rng.random((s, n)))
    base = np.zeros((n, k1))
    base[:, 0] = 1.0
    one = dict(reward=reward[0], action=action[0], pscore=pscore[0], action_dist=target[0],
               q_hat=q_hat[0])
    out = {}
    for name in ope.ESTIMATORS:
        lam = 3.0 if name in ope.NEEDS_LAMBDA else None
        out[name] = list(ope.estimate(name, **one, lambda_=lam, logging_dist=logging[0]))
        out[name + "/batch"] = [np.asarray(v).tolist() for v in ope.estimate_batch(
            name, reward=reward, action=action, pscore=pscore, action_dist=target, q_hat=q_hat,
            lambda_=lam)]
    out["named"] = list(ope.dr(**one)) + list(ope.snips(**one))  # one factory makes them all
    out["bootstrap"] = list(ope.bootstrap("snips", **one, n_boot=30, key=jax.random.key(1)))
    out["paired"] = list(ope.paired_difference("dr", **one, baseline_dist=base))
    out["roi"] = list(ope.incremental_roi(
        "ips", value_reward=reward[0], cost_reward=cost[0], action=action[0],
        pscore=pscore[0], action_dist=target[0], baseline_dist=base))
    big = 5 * ope.CHUNK_ROWS  # the chunked host path
    rb = 1e4 + rng.random(big)
    half = np.full((big, 2), 0.5)
    out["chunked"] = list(ope.ips(reward=rb, action=rng.integers(0, 2, big),
                                  pscore=np.full(big, 0.5), action_dist=half))
    out["chunked_ref"] = [float(rb.mean()), float(rb.std(ddof=1) / np.sqrt(big))]
    return out
'''

SCRIPT = CASES + r'''
import json
assert not jax.config.jax_enable_x64
result = run()
result["x64_after"] = bool(jax.config.jax_enable_x64)
print(json.dumps(result))
'''


def _flat(v):
    if isinstance(v, list):
        return [x for item in v for x in _flat(item)]
    return [float(v)]


@pytest.mark.slow  # ~35 s; tests/test_precision.py covers the x64-off path in the default run
def test_ope_is_float64_in_an_x64_off_process():
    assert jax.config.jax_enable_x64  # the session reference runs with x64 on (conftest)
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    off = json.loads(proc.stdout.strip().splitlines()[-1])
    assert off.pop("x64_after") is False
    namespace: dict = {}
    exec(CASES, namespace)
    on = namespace["run"]()
    assert off.keys() == on.keys()
    for key in on:
        assert _flat(off[key]) == pytest.approx(_flat(on[key]), rel=1e-12, abs=0), key
    # and float64 for real: the chunked IPS value and stderr match NumPy's float64 ones
    assert off["chunked"][0] == pytest.approx(off["chunked_ref"][0], rel=1e-12)
    assert off["chunked"][1] == pytest.approx(off["chunked_ref"][1], rel=1e-9)
