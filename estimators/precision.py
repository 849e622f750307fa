"""Float64 where it matters, without switching the caller's process.

allocbench never calls ``jax.config.update("jax_enable_x64", True)`` on import. Functions whose
results depend on float64 (estimator sums, the world's truth, the allocator's running totals,
learner fits) are wrapped by :func:`float64`, which runs them inside ``jax.enable_x64(True)``, a
context that is local to the call (and the thread): arrays created and computations traced inside
are float64, and the process setting is untouched afterwards, so Flax/optax code in the same
process keeps its float32 defaults. Their JAX outputs are float64 arrays; in a process running
without x64, arithmetic on them in the caller's own JAX code is done in float32 (JAX's usual
rule), NumPy conversion (``np.asarray``) keeps float64.

The one process-wide switch is :func:`enable_float64`, called by the experiment entry points
(``python -m experiments.run`` and the suite CLIs), which own their process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

__all__ = ["enable_float64", "float64", "float64_methods"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def float64(fn: F) -> F:
    """Run ``fn`` with 64-bit JAX types enabled for the duration of the call only. Called on
    traced values (inside the caller's own ``jit``/``vmap``/``grad``), it runs as traced, in the
    caller's precision: switching it mid-trace would mix dtypes in one computation."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(leaf, jax.core.Tracer)
               for leaf in jax.tree_util.tree_leaves((args, kwargs))):
            return fn(*args, **kwargs)  # under the caller's jit/vmap/grad: the caller's precision
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def float64_methods(*names: str) -> Callable[[C], C]:
    """Class decorator: wrap the named methods (e.g. ``"fit", "predict_tau"``) with
    :func:`float64`. Methods inherited from a base class are wrapped on this class."""

    def decorate(cls: C) -> C:
        for name in names:
            method = getattr(cls, name)
            if not getattr(method, "__wrapped__", None):
                setattr(cls, name, float64(method))
        return cls

    return decorate


def enable_float64() -> None:
    """Switch the whole process to 64-bit JAX types (for entry points that own the process)."""
    jax.config.update("jax_enable_x64", True)
