"""Simulator throughput: 1,000,000 users x 8 offers with uniform logs and full truth.

Target (issue 2): <= 2 s after compilation on 2 cores. Reference: the plain NumPy implementation of
the same sampler (:mod:`simulators.numpy_reference`), timed in the same run; the printed ratio is
NumPy time / JAX time.
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np
import pytest

from simulators import LoggingConfig, WorldConfig, default_params
from simulators.numpy_reference import numpy_simulate
from simulators.simulate import _simulate_jit

N = 1_000_000
CONFIG = WorldConfig(n_offers=8)


@pytest.mark.perf
def test_simulate_one_million_users_eight_offers(benchmark):
    params = default_params(CONFIG)
    keys = iter(jax.random.split(jax.random.key(0), 100))

    def run_jax():
        return jax.block_until_ready(_simulate_jit(next(keys), params, CONFIG, N,
                                                   LoggingConfig(), 0))

    t0 = time.perf_counter()
    run_jax()
    compile_s = time.perf_counter() - t0
    benchmark.pedantic(run_jax, rounds=5, warmup_rounds=1)
    jax_s = benchmark.stats.stats.median

    rng = np.random.default_rng(0)
    numpy_times = []
    for _ in range(2):
        t0 = time.perf_counter()
        numpy_simulate(rng, params, CONFIG, N)
        numpy_times.append(time.perf_counter() - t0)
    numpy_s = statistics.median(numpy_times)
    print(f"\n[simulator] n={N:,} K={CONFIG.n_offers}: first call (compile+run) {compile_s:.2f} s; "
          f"JAX median {jax_s:.3f} s; NumPy reference median {numpy_s:.3f} s; "
          f"ratio NumPy/JAX = {numpy_s / jax_s:.2f}x (target JAX <= 2 s)")
