"""Worlds with ground truth, logging policies, the oracle, and real-data adapters."""

import jax

jax.config.update("jax_enable_x64", True)

from simulators.data import LoggedData, Truth  # noqa: E402
from simulators.logging_policies import LoggingConfig  # noqa: E402
from simulators.oracle import (  # noqa: E402
    PolicyTruth,
    optimal_policy,
    policy_truth,
    population_policy_truth,
)
from simulators.simulate import simulate, simulate_arrays, simulate_batch  # noqa: E402
from simulators.world import (  # noqa: E402
    SEGMENT_NAMES,
    TYPE_NAMES,
    Users,
    WorldConfig,
    WorldParams,
    default_params,
    expected_outcomes,
    sample_outcomes,
    sample_users,
    validate_params,
)

__all__ = [
    "SEGMENT_NAMES",
    "TYPE_NAMES",
    "LoggedData",
    "LoggingConfig",
    "PolicyTruth",
    "Truth",
    "Users",
    "WorldConfig",
    "WorldParams",
    "default_params",
    "expected_outcomes",
    "optimal_policy",
    "policy_truth",
    "population_policy_truth",
    "sample_outcomes",
    "sample_users",
    "simulate",
    "simulate_arrays",
    "simulate_batch",
    "validate_params",
]
