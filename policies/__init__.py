"""Decision layer: pruning, per-user efficient frontiers, budgeted allocation, exact LP reference,
pacing, exploration and baselines. Plain arrays in, plain arrays and small records out; never
imports ``simulators``."""

from policies.allocation import Allocation, allocate, allocate_at_price
from policies.pruning import prune_mask

__all__ = ["Allocation", "allocate", "allocate_at_price", "prune_mask"]
