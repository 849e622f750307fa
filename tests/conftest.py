"""Shared, session-scoped fixtures: one small default world and a few logs of fixed shapes, so JAX
compiles each shape once per test session.

The test session runs with 64-bit JAX types on, as the experiment entry points do
(:func:`estimators.precision.enable_float64`); that the library needs no global switch (its
float64 functions run under a local ``jax.enable_x64`` context, nothing is switched on import) is
checked in a fresh x64-off interpreter by ``tests/test_precision.py``."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

from estimators.precision import enable_float64
from simulators import LoggingConfig, WorldConfig, default_params, simulate

enable_float64()

# A persistent XLA compilation cache shared by this session, its xdist workers and the
# subprocesses the sweep tests start (they inherit the environment): each shape compiles once
# per machine instead of once per process. Delete .jax_cache/ to start cold.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))

SMALL_N = 4_000


@pytest.fixture(scope="session")
def world_config() -> WorldConfig:
    return WorldConfig()


@pytest.fixture(scope="session")
def world_params(world_config):
    return default_params(world_config)


@pytest.fixture(scope="session")
def uniform_log(world_params, world_config):
    return simulate(jax.random.key(0), world_params, world_config, SMALL_N, LoggingConfig())


@pytest.fixture(scope="session")
def warm_start_log(world_params, world_config):
    return simulate(jax.random.key(1), world_params, world_config, SMALL_N,
                    LoggingConfig(kind="warm_start"))


# pytest-xdist (--dist loadscope) hands out modules in collection order; the heaviest go first
# (longest-processing-time-first), so the run does not end with one worker alone on a heavy
# module. Measured order (make test, 2 workers); modules not listed keep their order after these.
_HEAVY_FIRST = (
    "test_experiments", "test_bayes", "test_loop", "test_precision", "test_bart",
    "test_world", "test_policies_pacing", "test_ope_suite", "test_learners_suite",
    "test_main_benchmark", "test_protocol", "test_learners", "test_ope_statistical",
    "test_peeking_suite", "test_allocation_suites", "test_world_suites", "test_heads",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).stem, len(rank)))
