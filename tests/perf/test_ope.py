"""OPE benchmarks (run with -m perf --benchmark-enable -s): DR with analytic CI at n = 10M, K = 10
against a one-pass NumPy reduction over the same arrays (the memory-bandwidth floor; target <= 3x),
and a B = 200 bootstrap CI at n = 1M (target <= 10 s)."""

from __future__ import annotations

import gc
import time

import jax
import numpy as np
import pytest

from estimators import ope

pytestmark = pytest.mark.perf


def _arrays(n: int, k1: int, seed: int = 0) -> dict[str, np.ndarray]:
    """float64 log: uniform logging over k1 actions, a Dirichlet target policy, a q_hat."""
    rng = np.random.default_rng(seed)
    action_dist = rng.random((n, k1))
    action_dist /= action_dist.sum(axis=1, keepdims=True)
    q_hat = rng.random((n, k1))
    return dict(reward=rng.random(n), action=rng.integers(0, k1, n).astype(np.int32),
                pscore=np.full(n, 1.0 / k1), action_dist=action_dist, q_hat=q_hat)


def _numpy_floor(reward, action, pscore, action_dist, q_hat) -> tuple[float, float]:
    """One pass: DM term by einsum plus the weighted residual sum, and the stderr's sum of
    squares (what the DR estimate with an analytic CI must at least read and reduce)."""
    idx = np.arange(len(reward))
    phi = np.einsum("ij,ij->i", action_dist, q_hat)
    phi += action_dist[idx, action] / pscore * (reward - q_hat[idx, action])
    return float(phi.mean()), float(phi.std(ddof=1))


def test_dr_analytic_ci_10m_vs_numpy_floor(benchmark):
    """Two timings: NumPy inputs (this JAX version does not alias NumPy buffers, so they are
    copied host -> device; ``estimate`` does it chunk by chunk into reused buffers, see
    ``ope.passes.CHUNK_ROWS``) and JAX-resident inputs (what a JAX learner/policy upstream
    produces)."""
    n, k1 = 10_000_000, 11
    arrays = _arrays(n, k1)
    ope.dr(**arrays)  # compile once outside the timing
    ref_mean, _ = _numpy_floor(**arrays)
    floor = min(_timed(lambda: _numpy_floor(**arrays)) for _ in range(3))
    est = benchmark.pedantic(lambda: ope.dr(**arrays), rounds=3, iterations=1)
    assert est.value == pytest.approx(ref_mean, rel=1e-10)
    ours = benchmark.stats.stats.min
    on_device = {k: jax.device_put(v) for k, v in arrays.items()}
    arrays.clear()  # free the NumPy copies (~2 GB) before the JAX-resident run
    gc.collect()
    ope.dr(**on_device)
    resident = min(_timed(lambda: ope.dr(**on_device)) for _ in range(3))
    print(f"\nDR + analytic CI, n={n:,}, K+1={k1}: NumPy one-pass floor {floor:.3f} s; "
          f"ope.dr on NumPy inputs {ours:.3f} s ({ours / floor:.2f}x, incl. the chunked "
          f"host->device copy); "
          f"on JAX arrays {resident:.3f} s ({resident / floor:.2f}x; target <= 3x)")
    on_device.clear()
    gc.collect()


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_bootstrap_b200_n1m(benchmark):
    n, k1 = 1_000_000, 11
    arrays = _arrays(n, k1, seed=1)
    del arrays["q_hat"]
    ope.bootstrap("snips", **arrays, n_boot=200, key=jax.random.key(3))  # compile first
    est = benchmark.pedantic(
        lambda: ope.bootstrap("snips", **arrays, n_boot=200, key=jax.random.key(3)),
        rounds=2, iterations=1)
    analytic = ope.snips(**arrays)
    one_call = _timed(lambda: ope.snips(**arrays))
    t = benchmark.stats.stats.min
    print(f"\nbootstrap SNIPS CI, B=200, n={n:,}: {t:.2f} s (target <= 10 s); ratio vs one "
          f"analytic SNIPS call {t / one_call:.1f}x; bootstrap sd / analytic sd = "
          f"{est.stderr / analytic.stderr:.3f}")
    assert t <= 10.0
