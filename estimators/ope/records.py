"""The records the off-policy estimators return and warn with."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Estimate", "UnsupportedActionWarning"]


class Estimate(NamedTuple):
    """An off-policy estimate with its uncertainty and overlap diagnostics.

    ``ess = (sum w)^2 / sum w^2`` is the effective sample size of the importance weights (``n`` for
    DM); ``max_weight`` the largest weight; ``unsupported_mass`` the policy's average probability
    on actions the logger does not support (then IPS-type estimators cannot see that mass). From
    :func:`estimate_batch` every field is an ``(S,)`` array, one entry per seed."""

    value: Any
    stderr: Any
    ci_low: Any
    ci_high: Any
    n: Any
    ess: Any
    max_weight: Any
    unsupported_mass: Any


class UnsupportedActionWarning(UserWarning):
    """The evaluated policy puts mass on actions the logging policy never takes."""
