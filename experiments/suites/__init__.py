"""Registry of benchmark suites.

A suite is a module defining ``SUITE``, an instance of :class:`experiments.suites.base.Suite`
(the whole contract is in ``experiments/suites/base.py``). Built-in suites are listed in
:data:`BUILTIN`; any importable module following the same contract runs by its dotted path
(``experiment.suite=my_package.my_suite``): that is how plug-in suites run through the framework.
"""

from __future__ import annotations

import importlib

from experiments.suites.base import Suite, stream

__all__ = ["BUILTIN", "Suite", "available", "load", "stream"]

BUILTIN = {
    "main": "experiments.main_benchmark",
    "learners": "experiments.suites.learners",
    "ope": "experiments.suites.ope",
    "allocation": "experiments.suites.allocation",
    "pacing": "experiments.suites.pacing",
    "horizons": "experiments.suites.horizons",
    "interference": "experiments.suites.interference",
    "drift": "experiments.suites.drift",
    "peeking": "experiments.suites.peeking",
    "hillstrom": "experiments.suites.hillstrom",
    "ihdp": "experiments.suites.ihdp",
    "byo": "experiments.suites.byo",
    "online": "experiments.suites.online",
    "lessons": "experiments.suites.lessons",
    "confounded": "experiments.suites.confounded",
    "menu_size": "experiments.suites.menu_size",
    "lbcf": "experiments.suites.lbcf",
    "nie_wager": "experiments.suites.nie_wager",
    "portfolio": "experiments.suites.portfolio",
    "selection": "experiments.suites.selection",
    "net_score": "experiments.suites.net_score",
}


def load(name: str) -> Suite:
    """The suite of a registry name or a dotted module path (its module's ``SUITE``)."""
    path = BUILTIN.get(name, name)
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as err:
        raise ValueError(f"experiment.suite: cannot import suite {name!r} ({err}). Fix: one of "
                         f"{available()} or an importable module path.") from err
    suite = getattr(module, "SUITE", None)
    if not isinstance(suite, Suite):
        raise ValueError(f"experiment.suite: {path} does not follow the suite contract: it must "
                         "define SUITE = <a Suite subclass>() (see experiments/suites/base.py).")
    return suite


def available() -> list[str]:
    """Built-in suites whose modules exist in this checkout."""
    return [name for name, path in BUILTIN.items() if importlib.util.find_spec(path) is not None]
