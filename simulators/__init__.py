"""Worlds with ground truth, logging policies, the oracle, and real-data adapters."""

from simulators.data import LoggedData, Truth
from simulators.logging_policies import LoggingConfig
from simulators.oracle import (
    PolicyTruth,
    optimal_policy,
    policy_truth,
    population_policy_truth,
)
from simulators.simulate import simulate, simulate_arrays, simulate_batch
from simulators.world import (
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
