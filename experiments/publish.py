"""``make results``: rebuild ``results/`` from the suites' documented jobs, all or nothing.

The jobs come from the suites (:attr:`Suite.result_seeds`, :attr:`Suite.result_variants`) plus the
default benchmark (the compact presets at seed 0, published under ``results/compact/``):

1. **compute** every job into the working store (``outputs/store``; resumable, complete jobs are
   skipped). Any failure stops here, before anything under ``results/`` is touched;
2. **stage**: publish every job into a fresh staging folder (``outputs/results-staging``): its
   store, the suites' tables and figures, and ``REPORT.md``;
3. **swap**: rename ``results/`` aside and the staging folder into its place, then delete the old
   copy. A failure in 2 leaves ``results/`` as it was; the swap is two renames.

``python -m experiments.publish --list`` prints the jobs; ``--dry-run`` stops after step 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
# folders of results/ that scripts outside the suites write (their own environments): kept as
# they are by the swap. obp/: scripts/obp_side_by_side.py (needs scripts/obp_env.sh)
EXTERNAL = ("obp",)


def jobs() -> list[list[str]]:
    """The Hydra overrides of every published job, in a fixed order: the default benchmark
    first (its main job is also the main suite's first seed), then each default suite's
    documented seeds and variants. Suites outside the default benchmark are published only
    with ``published=True`` (selection, net_score: too slow for make run; byo, which needs a
    plug-in, is not)."""
    from experiments import suites as registry

    out: list[list[str]] = [[]]  # the default benchmark: python -m experiments.run
    for name in registry.available():
        suite = registry.load(name)
        if not suite.is_published:
            continue
        seeds = f"seeds=[{','.join(map(str, suite.result_seeds))}]"
        out.append([f"experiment={name}", seeds])
        out += [[f"experiment={name}", *variant, seeds] for variant in suite.result_variants]
    return out


def _execute(job: list[str], options: list[str]) -> None:
    """``python -m experiments.run <job> <options>`` in this process; the job's overrides (not
    the options) are its recorded reproduce command."""
    from experiments.run import execute

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*job, *options, "progress=false"])
    execute(cfg, overrides=job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the folder to rebuild")
    parser.add_argument("--store", default="outputs/store", help="the working store")
    parser.add_argument("--list", action="store_true", help="print the jobs and stop")
    parser.add_argument("--dry-run", action="store_true", help="compute only; touch nothing")
    args = parser.parse_args(argv)
    from estimators.precision import enable_float64

    enable_float64()
    planned = jobs()
    if args.list:
        for job in planned:
            print("python -m experiments.run " + shlex.join(job))
        return 0
    results = Path(args.results)
    staging = results.parent / "outputs" / "results-staging"
    for job in planned:  # 1. compute (results/ untouched)
        print(f"== compute: {' '.join(job) or '(default benchmark)'}", flush=True)
        _execute(job, [f"store={args.store}", "write_outputs=false", "report=false"])
    if args.dry_run:
        return 0
    shutil.rmtree(staging, ignore_errors=True)
    for job in planned:  # 2. stage (every job is complete: this only publishes and draws)
        print(f"== publish: {' '.join(job) or '(default benchmark)'}", flush=True)
        _execute(job, [f"store={args.store}", "publish=true", f"results_root={staging}",
                       "report=false"])
    from experiments.report import write_report
    from experiments.store import ResultStore

    write_report(ResultStore(staging / "store"), staging / "REPORT.md",
                 source=str(results / "store"))
    for name in EXTERNAL:  # written by a documented script, not by a suite: carried over
        if (results / name).is_dir():
            shutil.copytree(results / name, staging / name)
    old = staging.with_name("results-previous")  # 3. swap
    shutil.rmtree(old, ignore_errors=True)
    if results.exists():
        os.replace(results, old)
    os.replace(staging, results)
    shutil.rmtree(old, ignore_errors=True)
    print(f"wrote {results}/ ({len(planned)} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
