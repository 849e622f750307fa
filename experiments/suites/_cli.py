"""The command line every suite module shares: ``python -m experiments.suites.<name>
[--compact] [--out DIR]`` runs the suite once (seed 0) and writes its outputs. Sweeps, seeds and
the result store go through ``python -m experiments.run`` instead."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["suite_main"]


def suite_main(doc: str | None, config_class: Any, run: Callable[..., Any],
               write_results: Callable[..., list[Path]], default_out: Path) -> None:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--compact", action="store_true", help="the fast variant of the suite")
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    cfg = config_class.compact() if args.compact else config_class()
    for path in write_results(run(cfg, seed=0), args.out):
        print(path)
