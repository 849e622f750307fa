"""The batched paired difference is the vmap of the single one: equal to a loop of
``paired_difference`` per seed, and bad input in any seed is named."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from estimators import ope
from simulators import LoggingConfig, simulate_batch


@pytest.fixture(scope="module")
def batch(world_params, world_config):
    keys = jax.random.split(jax.random.key(7), 3)
    return jax.device_get(simulate_batch(keys, world_params, world_config, 1500,
                                         LoggingConfig()))


@pytest.mark.parametrize("name", ope.ESTIMATORS)
def test_paired_difference_batch_equals_a_loop(batch, name):
    k1 = batch.action_prob.shape[-1]
    deepest = np.zeros(batch.action_prob.shape)
    deepest[..., k1 - 1] = batch.eligible[..., k1 - 1]
    deepest[..., 0] = 1.0 - deepest[..., k1 - 1]
    baseline = np.zeros_like(deepest)
    baseline[..., 0] = 1.0
    lam = 20.0 if name in ope.NEEDS_LAMBDA else None
    kw = dict(reward=batch.value, action=batch.action, pscore=batch.pscore,
              action_dist=deepest, baseline_dist=baseline, q_hat=batch.truth.mu_value,
              lambda_=lam)
    got = ope.paired_difference_batch(name, **kw)
    for s in range(3):
        one = ope.paired_difference(name, **{k: (v[s] if isinstance(v, np.ndarray) else v)
                                             for k, v in kw.items()})
        for field in ("value", "stderr", "ci_low", "ci_high", "ess"):
            np.testing.assert_allclose(getattr(got, field)[s], getattr(one, field),
                                       rtol=1e-10, atol=1e-12)


def test_paired_difference_batch_names_the_bad_seed(batch):
    dist = np.array(batch.action_prob)
    dist[1, 4] *= 2.0
    with pytest.raises(ValueError, match=r"action_dist.*seed 1"):
        ope.paired_difference_batch("ips", reward=batch.value, action=batch.action,
                                    pscore=batch.pscore, action_dist=batch.action_prob,
                                    baseline_dist=dist)
