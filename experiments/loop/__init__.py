"""The closed loop: deploy with exploration and a holdout, log, test online, monitor, retrain,
gate by OPE, promote, keep or roll back; every stage scored against the world's truth.

Library API (:class:`ClosedLoop`, round by round with any learner or allocator) and its configs;
the benchmark suite over it is :mod:`experiments.suites.online`.
"""

from experiments.loop.config import ExplorationConfig, GateConfig, LoopConfig, OnlineTestConfig
from experiments.loop.core import ClosedLoop, LoopState, default_fit_heads
from experiments.loop.gate import GateResult, ope_gate
from experiments.loop.online_test import OnlineTest
from experiments.loop.serving import FittedPolicy, budgeted_allocator, serve

__all__ = [
    "ClosedLoop",
    "ExplorationConfig",
    "FittedPolicy",
    "GateConfig",
    "GateResult",
    "LoopConfig",
    "LoopState",
    "OnlineTest",
    "OnlineTestConfig",
    "budgeted_allocator",
    "default_fit_heads",
    "ope_gate",
    "serve",
]
