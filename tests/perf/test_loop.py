"""The default closed loop (12 rounds x 20,000 users, the default heads, OPE gate, online test,
monitoring) against the issue's target of 2 minutes on 2 cores, cold (first compilation in this
process included) and warm (the same loop again, compilations cached). No library runs this loop,
so the reference is the target itself; the print gives the per-round time as well."""

from __future__ import annotations

import time

import pytest

from experiments.loop import ClosedLoop, LoopConfig

TARGET_SECONDS = 120.0


@pytest.mark.perf
def test_default_loop_within_two_minutes(benchmark):
    cfg = LoopConfig()
    start = time.perf_counter()
    ClosedLoop(cfg, seed=0).run(progress=False)
    cold = time.perf_counter() - start
    benchmark.pedantic(lambda: ClosedLoop(cfg, seed=1).run(progress=False), rounds=1,
                       iterations=1)
    warm_s = benchmark.stats.stats.mean
    print(f"\ndefault loop {cfg.rounds} rounds x {cfg.users_per_round} users: cold {cold:.1f} s, "
          f"warm {warm_s:.1f} s ({warm_s / cfg.rounds:.2f} s per round); target "
          f"{TARGET_SECONDS:.0f} s: cold/target = {cold / TARGET_SECONDS:.2f}")
