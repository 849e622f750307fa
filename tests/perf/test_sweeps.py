"""Seed batching: one ``vmap``-ed job of 64 seeds (simulate a log and estimate a policy's value
with IPS and DR) against a Python loop over the same 64 runs. Prints the time ratio, and its
breakdown into the simulation and the two estimators (each batched vs looped)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from estimators.ope import estimate_batch
from simulators import LoggingConfig, WorldConfig, default_params, simulate_batch

N_SEEDS = 64


@pytest.mark.perf
@pytest.mark.parametrize("N", [2_000, 20_000])
def test_vmapped_seed_batch_vs_python_loop(benchmark, N):
    cfg = WorldConfig()
    params = default_params(cfg)
    keys = jax.random.split(jax.random.key(0), N_SEEDS)

    def evaluate(batch):
        # target policy: the deepest eligible offer for everyone
        n_act = batch.eligible.shape[-1]
        deepest = n_act - 1 - jnp.argmax(batch.eligible[..., ::-1], axis=-1)
        dist = jax.nn.one_hot(deepest, n_act)
        pscore = jnp.take_along_axis(batch.action_prob, batch.action[..., None], -1)[..., 0]
        kw = dict(reward=batch.value, action=batch.action, pscore=pscore, action_dist=dist)
        return (estimate_batch("ips", **kw).value,
                estimate_batch("dr", q_hat=batch.truth.mu_value, **kw).value)

    def batched():
        return evaluate(simulate_batch(keys, params, cfg, N, LoggingConfig()))

    def looped():
        out = [evaluate(simulate_batch(keys[i:i + 1], params, cfg, N, LoggingConfig()))
               for i in range(N_SEEDS)]
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    b_ips, b_dr = batched()  # compile both shapes before timing
    l_ips, l_dr = looped()
    np.testing.assert_allclose(b_ips, l_ips, rtol=1e-9)
    np.testing.assert_allclose(b_dr, l_dr, rtol=1e-9)
    benchmark.pedantic(batched, rounds=3, warmup_rounds=0)
    batch_s = benchmark.stats.stats.median
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        looped()
        times.append(time.perf_counter() - t0)
    loop_s = float(np.median(times))
    print(f"\n[sweeps] {N_SEEDS} seeds x n={N:,} (simulate + IPS + DR): vmapped batch "
          f"{batch_s:.2f} s, Python loop {loop_s:.2f} s, loop/batch = {loop_s / batch_s:.2f}x")
    # where the time goes: the same two paths, simulation and estimation timed apart
    logs = jax.block_until_ready(simulate_batch(keys, params, cfg, N, LoggingConfig()))
    one_logs = [jax.block_until_ready(simulate_batch(keys[i:i + 1], params, cfg, N,
                                                     LoggingConfig())) for i in range(N_SEEDS)]
    sim_b = _best(lambda: simulate_batch(keys, params, cfg, N, LoggingConfig()))
    sim_l = _best(lambda: [simulate_batch(keys[i:i + 1], params, cfg, N, LoggingConfig())
                           for i in range(N_SEEDS)])
    ope_b = _best(lambda: evaluate(logs))
    ope_l = _best(lambda: [evaluate(b) for b in one_logs])
    print(f"[sweeps]   simulate: batch {sim_b:.3f} s, loop {sim_l:.3f} s ({sim_l / sim_b:.2f}x); "
          f"IPS + DR: batch {ope_b:.3f} s, loop {ope_l:.3f} s ({ope_l / ope_b:.2f}x); "
          f"simulate is {sim_b / (sim_b + ope_b):.0%} of the batch")


def _best(fn, rounds: int = 2) -> float:
    """Best wall time of ``rounds`` calls of ``fn`` (its JAX outputs waited for)."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.mark.perf
def test_main_job_seed_batch_vs_loop(benchmark):
    """The framework path: one main-job of 8 seeds through ``run_batch`` (logs vmapped, every
    seed's head fits in one compiled call per base model, OPE vmapped) against a loop of 8
    single-seed runs in the same process (both compiled beforehand)."""
    from experiments.main_benchmark import MainSuiteConfig, run, run_batch

    cfg = MainSuiteConfig(n_train=5_000, n_eval=5_000)
    seeds = list(range(8))
    run_batch(cfg, seeds=seeds, progress=False)  # compile
    run(cfg, seed=0, progress=False)
    benchmark.pedantic(lambda: run_batch(cfg, seeds=seeds, progress=False), rounds=2,
                       iterations=1)
    batched = benchmark.stats.stats.min
    t0 = time.perf_counter()
    for s in seeds:
        run(cfg, seed=s, progress=False)
    loop = time.perf_counter() - t0
    print(f"\n[main job, 8 seeds, n=5,000] run_batch {batched:.2f} s, loop of run {loop:.2f} s: "
          f"ratio {loop / batched:.2f}x (batched: the simulation, the heads' base fits and every "
          "OPE estimate; predictions, allocation and truth run per seed)")
