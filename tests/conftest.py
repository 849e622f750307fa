"""Shared, session-scoped fixtures: one small default world and a few logs of fixed shapes, so JAX
compiles each shape once per test session."""

from __future__ import annotations

import jax
import pytest

from simulators import LoggingConfig, WorldConfig, default_params, simulate

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
