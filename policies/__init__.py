"""Decision layer: pruning, per-user efficient frontiers, budgeted allocation, exact LP reference,
pacing, exploration and baselines. Plain arrays in, plain arrays and small records out; never
imports ``simulators``."""

import jax

jax.config.update("jax_enable_x64", True)

from policies.allocation import Allocation, allocate, allocate_at_price  # noqa: E402
from policies.pruning import prune_mask  # noqa: E402

__all__ = ["Allocation", "allocate", "allocate_at_price", "prune_mask"]
